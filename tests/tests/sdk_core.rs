//! The high-level crate's core against the simulator over real HTTP: the v2 Connect flow,
//! token rotation, single-flight refresh, retries, error mapping, and the M2M flow.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smartcar::config::RetryPolicy;
use smartcar::store::TokenStore;
use smartcar::{ApplicationSession, Error, ErrorKind, Permission, Redirect};
use smartcar_sim::{ApproveOptions, Fault, Simulator};
use smartcar_tests::flow::{
    CALLBACK, client_for, client_on_system_clock, connect, connect_user_id,
};

const ODOMETER: &str = smartcar_api::ops::GET_ODOMETER.path;
const SECURITY: &str = smartcar_api::ops::CONTROL_SECURITY.path;

/// Records the backoffs the client asks for instead of sleeping through them.
#[derive(Clone, Default)]
struct RecordingSleep(Arc<Mutex<Vec<Duration>>>);

impl smartcar::config::Sleep for RecordingSleep {
    fn sleep(&self, d: Duration) -> smartcar::store::BoxFuture<'static, ()> {
        self.0.lock().unwrap().push(d);
        Box::pin(async {})
    }
}

impl RecordingSleep {
    fn taken(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn v2_flow_with_refresh_and_rotation() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, store) = connect(&sim, &client).await;

    let user_id = session.fetch_user_id().await.unwrap();
    assert_eq!(user_id.data, sim.users()[0].id);
    let ids = session.vehicle_ids(None, None).await.unwrap();
    assert_eq!(ids.data.vehicles, sim.users()[0].vehicle_ids);
    assert_eq!(ids.data.paging.count as usize, ids.data.vehicles.len());

    let vehicle = session.vehicle(ids.data.vehicles[0].clone()).unwrap();
    let expected = sim
        .vehicles()
        .into_iter()
        .find(|v| v.id == vehicle.id())
        .unwrap();
    let attrs = vehicle.attributes().await.unwrap();
    assert_eq!(attrs.data.make, expected.make);
    assert_eq!(vehicle.vin().await.unwrap().data.vin, expected.vin);
    let odo = vehicle.odometer().await.unwrap();
    assert!((odo.data.distance - expected.odometer_km).abs() < 0.01);
    assert_eq!(
        odo.meta.unit_system,
        Some(smartcar::config::UnitSystem::Metric)
    );
    assert!(odo.meta.data_age.is_some() && odo.meta.request_id.is_some());
    let miles = vehicle
        .clone()
        .with_unit_system(smartcar::config::UnitSystem::Imperial)
        .odometer()
        .await
        .unwrap();
    assert!((miles.data.distance - expected.odometer_km / 1.609344).abs() < 0.05);

    vehicle.unlock().await.unwrap();
    assert!(!vehicle.lock_status().await.unwrap().data.is_locked);
    vehicle.lock().await.unwrap();
    assert!(vehicle.lock_status().await.unwrap().data.is_locked);

    // Expiry: the next call refreshes once, rotates the refresh token and saves it first.
    let before = store.load("user-1").await.unwrap().unwrap();
    sim.advance(Duration::from_secs(2 * 3600));
    vehicle.odometer().await.unwrap();
    assert_eq!(sim.refresh_count(), 1);
    let after = store.load("user-1").await.unwrap().unwrap();
    assert_ne!(after.refresh_token, before.refresh_token);
    assert_ne!(after.access_token, before.access_token);
    // After the grace period, the rotated-out refresh token is refused: re-authorization.
    sim.advance(Duration::from_secs(120));
    let e = client
        .refresh_tokens(&before.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired, "{e}");
    // The echoed token never reaches the error message.
    assert!(
        !e.to_string().contains(before.refresh_token.secret()),
        "{e}"
    );
    assert!(!format!("{e:?}").contains(before.refresh_token.secret()));
    sim.shutdown().await;
}

/// Without a shared clock the SDK believes the token is still valid; the platform's 401 makes
/// it refresh once and retry.
#[tokio::test]
async fn a_refused_access_token_is_refreshed_once_and_the_call_retried() {
    let sim = Simulator::start().await.unwrap();
    let client = client_on_system_clock(&sim, CALLBACK).build().unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    sim.advance(Duration::from_secs(3 * 3600));
    vehicle.odometer().await.unwrap();
    assert_eq!(sim.refresh_count(), 1);
    assert_eq!(
        sim.request_count("GET", ODOMETER),
        2,
        "one 401, one success"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn thousand_concurrent_calls_across_an_expiry_refresh_once() {
    let sim = Simulator::builder()
        .log_requests(false)
        .start()
        .await
        .unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    sim.advance(Duration::from_secs(2 * 3600 - 60)); // inside the refresh skew
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let v = vehicle.clone();
            tokio::spawn(async move { v.odometer().await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        t.await.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 1000);
    assert_eq!(
        sim.refresh_count(),
        1,
        "one refresh for 1000 concurrent callers"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn reads_are_retried_commands_are_not() {
    let sim = Simulator::start().await.unwrap();
    let sleep = RecordingSleep::default();
    let client = client_for(&sim, CALLBACK)
        .sleep(sleep.clone())
        .build()
        .unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();

    // A read succeeds after two 503s.
    sim.faults()
        .inject(Fault::status(503))
        .on("/v2.0/vehicles/*/odometer")
        .times(2);
    vehicle.odometer().await.unwrap();
    assert_eq!(sim.request_count("GET", ODOMETER), 3);
    assert_eq!(sleep.taken().len(), 2);

    // A 429 with Retry-After: 1 waits exactly that long.
    sim.faults()
        .inject(Fault::rate_limit(1))
        .on("/v2.0/vehicles/*/odometer")
        .once();
    vehicle.odometer().await.unwrap();
    assert_eq!(sleep.taken().last(), Some(&Duration::from_secs(1)));

    // A lock answered 503 is not sent again: it may have reached the car.
    sim.faults()
        .inject(Fault::status(503))
        .on("/v2.0/vehicles/*/security")
        .method("POST")
        .once();
    let e = vehicle.lock().await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert_eq!(sim.request_count("POST", SECURITY), 1);
    // …but a 429 (refused before execution) is.
    sim.faults()
        .inject(Fault::rate_limit(2))
        .on("/v2.0/vehicles/*/security")
        .method("POST")
        .once();
    vehicle.lock().await.unwrap();
    assert_eq!(sim.request_count("POST", SECURITY), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_responses_become_typed_errors() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK)
        .retry_policy(RetryPolicy::disabled())
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    let odometer = "/v2.0/vehicles/*/odometer";

    sim.faults().inject(Fault::html_502()).on(odometer).once();
    let e = vehicle.odometer().await.unwrap_err();
    let api = e.api().expect("an API error");
    assert_eq!(
        (api.status, api.shape),
        (502, smartcar::error::BodyShape::Unrecognized)
    );
    assert!(
        api.request_id.is_some(),
        "the request id survives an HTML body"
    );

    sim.faults()
        .inject(Fault::truncated_json())
        .on(odometer)
        .once();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert_eq!(e.status(), Some(200));

    sim.faults()
        .inject(Fault::empty_body(503))
        .on(odometer)
        .once();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Api, Some(503)));

    sim.faults()
        .inject(Fault::vehicle_state("ASLEEP"))
        .on(odometer)
        .once();
    let e = vehicle.odometer().await.unwrap_err();
    let api = e.api().unwrap();
    assert_eq!(api.code.as_deref(), Some("ASLEEP"));
    assert_eq!(api.status, 409);
    assert!(e.to_string().starts_with("VEHICLE_STATE:ASLEEP - "), "{e}");

    sim.faults()
        .inject(Fault::delay(Duration::from_secs(3)))
        .on(odometer)
        .once();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");

    sim.faults()
        .inject(Fault::connection_reset())
        .on(odometer)
        .once();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e:?}");

    // An unknown enum value does not fail decoding.
    sim.faults()
        .inject(Fault::unknown_enum())
        .on("/v2.0/vehicles/*/security")
        .once();
    vehicle.lock_status().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn m2m_flow_user_id_redirect_and_application_token() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, "http://localhost:8000/exchange")
        .build()
        .unwrap();
    let auth = client
        .authorize()
        .scopes([Permission::ReadVehicleInfo, Permission::ReadOdometer])
        .mode(smartcar::config::Mode::Simulated)
        .build()
        .unwrap();
    let redirect = sim
        .approve(auth.url.as_str(), ApproveOptions::new())
        .unwrap();
    let Redirect::UserId(user_id) = client
        .handle_redirect(redirect.as_str(), &auth.state)
        .unwrap()
    else {
        panic!("expected user_id, got {redirect}")
    };
    assert_eq!(user_id, sim.users()[0].id);
    let app = ApplicationSession::new(&client);
    let token = app.token().await.unwrap();
    assert_eq!(app.token().await.unwrap(), token, "cached");

    use smartcar::api::prelude::*;
    let raw = client.low_level(
        &client.origins().vehicle,
        smartcar::api::Auth::bearer(token.secret()),
    );
    let connections = raw
        .list_connections_v3()
        .filter_user_id(user_id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!connections.data.is_empty());
    let vehicle_id = connections.data[0].relationships.vehicle.data.id.clone();
    let signals = raw
        .list_signals()
        .vehicle_id(vehicle_id)
        .sc_user_id(user_id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!signals.data.is_empty());

    // Wrong secret: typed OAuth error, secret not echoed.
    let bad = client_for(&sim, CALLBACK)
        .client_secret("wrong-secret-value")
        .build()
        .unwrap();
    let e = bad.request_application_token().await.unwrap_err();
    assert_eq!(e.oauth().map(|o| o.status), Some(401), "{e:?}");
    assert!(!format!("{e:?}{e}").contains("wrong-secret-value"));
    sim.shutdown().await;
}

#[tokio::test]
async fn secrets_never_reach_debug_output() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let tokens = session.tokens().unwrap();
    let printed = format!("{client:?} {session:?} {tokens:?}");
    for secret in [
        app.client_secret.as_str(),
        tokens.access_token.secret(),
        tokens.refresh_token.secret(),
    ] {
        assert!(!printed.contains(secret), "secret in {printed}");
    }
    let e: Error = client
        .exchange_code(&smartcar::connect::AuthorizationCode::new(
            "not-a-real-code-123",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuth);
    assert!(
        !format!("{e}{e:?}").contains("not-a-real-code-123"),
        "{e:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn v3_user_handle_signals_and_commands() {
    let sim = Simulator::start().await.unwrap();
    // No shared clock here: the expired application token is found by the platform's 401.
    let client = client_on_system_clock(&sim, "http://localhost:8000/exchange")
        .build()
        .unwrap();
    let user_id = connect_user_id(
        &sim,
        &client,
        [
            Permission::ReadVehicleInfo,
            Permission::ReadOdometer,
            Permission::ReadSecurity,
            Permission::ControlSecurity,
            Permission::ReadBattery,
            Permission::ReadCharge,
            Permission::ControlCharge,
        ],
    );
    let app_session = ApplicationSession::new(&client);
    let user = app_session.user(user_id.clone()).unwrap();
    let mut ids = user.vehicle_ids().await.unwrap();
    ids.sort();
    let mut expected = sim.users()[0].vehicle_ids.clone();
    expected.sort();
    assert_eq!(ids, expected);

    let sim_vehicle = sim.vehicles().into_iter().find(|v| v.id == ids[0]).unwrap();
    let vehicle = user.vehicle(ids[0].clone()).unwrap();
    let info = vehicle.info().await.unwrap();
    assert_eq!(info.data.id, sim_vehicle.id);
    assert_eq!(info.data.attributes.year.number(), Some(sim_vehicle.year));

    let signals = vehicle.signals().await.unwrap();
    assert!(signals.len() > 10, "{} signals", signals.len());
    let odo = vehicle
        .signal(smartcar::v3::SignalCode::OdometerTraveleddistance)
        .await
        .unwrap();
    assert!(odo.is_success());
    assert!((odo.number().unwrap() - sim_vehicle.odometer_km).abs() < 0.01);
    assert_eq!(odo.unit(), Some("kilometers"));
    assert!(odo.retrieved_at.is_some());

    vehicle.unlock().await.unwrap();
    let locked = vehicle.signal("closure-islocked").await.unwrap();
    assert_eq!(locked.flag(), Some(false));
    let exec = vehicle.lock().await.unwrap();
    assert_eq!(
        vehicle.signal("closure-islocked").await.unwrap().flag(),
        Some(true)
    );
    let again = vehicle.command_execution(&exec.data.id).await.unwrap();
    assert_eq!(again.data.id, exec.data.id);

    // The same limit reaches v3 as a percentage (the v2.0 fraction is checked by sdk_wire).
    let limit = smartcar::ChargeLimit::fraction(0.8).unwrap();
    vehicle.set_charge_limit(limit).await.unwrap();
    let sent = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/commands/charge/set-limit"))
        .expect("the set-limit command reached the simulator");
    let body = String::from_utf8_lossy(&sent.body);
    assert!(body.contains(r#""percent":80.0"#), "{body}");
    let unknown = vehicle.signal("warpdrive-flux").await.unwrap_err();
    assert_eq!(unknown.status(), Some(404), "{unknown}");
    assert_eq!(
        vehicle.signal("Not A Code").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    // The application token expires on the platform's clock; the 401 renews it once.
    let requests_before =
        sim.request_count("POST", smartcar_api::ops::REQUEST_APPLICATION_TOKEN.path);
    sim.advance(Duration::from_secs(2 * 3600));
    vehicle.info().await.unwrap();
    assert_eq!(
        sim.request_count("POST", smartcar_api::ops::REQUEST_APPLICATION_TOKEN.path),
        requests_before + 1
    );
    sim.shutdown().await;
}

/// Broken token-endpoint answers become typed errors, and a failed refresh leaves the stored
/// refresh token usable: the next call refreshes successfully.
#[tokio::test]
async fn broken_token_responses_are_typed_and_lose_nothing() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK)
        .retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap();
    let (session, store) = connect(&sim, &client).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    let before = store.load("user-1").await.unwrap().unwrap();
    sim.advance(Duration::from_secs(2 * 3600));

    let token = smartcar_api::ops::EXCHANGE_TOKEN.path;
    sim.faults()
        .inject(Fault::truncated_json())
        .on(token)
        .once();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!(
        (e.kind(), e.status()),
        (ErrorKind::Decode, Some(200)),
        "{e:?}"
    );

    sim.faults().inject(Fault::html_502()).on(token).once();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Api, Some(502)), "{e:?}");

    sim.faults().inject(Fault::empty_body(503)).on(token).once();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Api, Some(503)), "{e:?}");

    // The refreshes above may have rotated the token on the platform before the answer broke;
    // the store still holds the last refresh token, which the grace period honours.
    assert_eq!(
        store.load("user-1").await.unwrap().unwrap().refresh_token,
        before.refresh_token
    );
    vehicle.odometer().await.unwrap();
    let after = store.load("user-1").await.unwrap().unwrap();
    assert_ne!(after.refresh_token, before.refresh_token);
    sim.shutdown().await;
}

#[tokio::test]
async fn vehicle_stream_batch_permissions_and_escape_hatch() {
    use futures_util::StreamExt;
    let sim = Simulator::builder()
        .vehicles(12)
        .users(1)
        .start()
        .await
        .unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, _store) = connect(&sim, &client).await;

    // The stream pages by itself (50 per page, 12 vehicles: one page, then it stops).
    let streamed: Vec<String> = session
        .vehicles()
        .map(|v| v.unwrap().id().to_owned())
        .collect()
        .await;
    assert_eq!(streamed, sim.users()[0].vehicle_ids);
    assert_eq!(
        sim.request_count("GET", smartcar_api::ops::LIST_VEHICLES.path),
        1
    );

    let ev = sim
        .vehicles()
        .into_iter()
        .find(|v| v.battery.is_some() && v.fuel.is_none())
        .expect("a BEV");
    let vehicle = session.vehicle(ev.id.clone()).unwrap();

    // One failing item never fails the others.
    let batch = vehicle
        .batch()
        .odometer()
        .fuel()
        .location()
        .send()
        .await
        .unwrap();
    assert!((batch.odometer().unwrap().data.distance - ev.odometer_km).abs() < 0.01);
    let fuel = batch.fuel().unwrap_err();
    // read_fuel was not granted: the item carries its own 403, the others succeed.
    assert_eq!(fuel.status(), Some(403));
    assert_eq!(
        fuel.api().and_then(|a| a.error_type.clone()),
        Some(smartcar::api::open_enums::ErrorType::Permission)
    );
    assert!(fuel.request_id().is_some());
    assert!(batch.location().is_ok());
    assert_eq!(
        batch.battery().unwrap_err().kind(),
        ErrorKind::InvalidInput,
        "not requested"
    );
    assert_eq!(
        vehicle.batch().send().await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(sim.request_count("POST", smartcar_api::ops::BATCH.path), 1);

    let perms = vehicle.permissions(None, None).await.unwrap();
    assert!(perms.data.permissions.contains(&Permission::ReadOdometer));
    assert!(
        vehicle
            .has_permissions(&[Permission::ReadOdometer, Permission::ReadVin])
            .await
            .unwrap()
    );
    assert!(
        !vehicle
            .has_permissions(&[Permission::ControlCharge])
            .await
            .unwrap()
    );

    // Escape hatch: any path, same auth and errors.
    let raw = vehicle
        .request(smartcar::config::Method::GET, "/odometer", None)
        .await
        .unwrap();
    assert!(raw.data["distance"].is_number());
    let e = vehicle
        .request(smartcar::config::Method::GET, "/no/such/path", None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(
        vehicle
            .request(smartcar::config::Method::GET, "odometer", None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    sim.shutdown().await;
}
