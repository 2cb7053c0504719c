//! The v3 platform beyond signals and commands (issue 17): charge schedules, the Compatibility
//! API v3 and its 24-hour cache, one webhook by id, connections by `external_id`, and the hint
//! of an empty signal list. The SDK against the simulator over HTTP; a small platform of the
//! test's own serves the one shape the simulator does not (an empty signal list).

use std::time::Duration;

use axum::Json;
use axum::routing::get;
use chrono::Weekday;
use serde_json::json;
use smartcar::api::open_enums::{ChargeScheduleAction, CompatibleRegion, PowertrainType};
use smartcar::compatibility::CompatibleVehiclesFilter;
use smartcar::v3::{
    ChargeLocation, ChargingWindow, ConnectionQuery, EmptySignalsHint, VehicleV3, WeeklySchedule,
};
use smartcar::{ApplicationSession, Client, ErrorKind, Permission, Redirect};
use smartcar_api::ops;
use smartcar_sim::model::WebhookVersion;
use smartcar_sim::{ApproveOptions, Simulator};
use smartcar_tests::flow::client_for;

/// The redirect URI the simulator answers with a `user_id`.
const EXCHANGE: &str = "http://localhost:8000/exchange";

/// Connect (machine to machine) as the owner of the first vehicle of `make`, for
/// `control_charge` and `read_charge`, with `external_id` if given: the user id and that
/// vehicle's id.
fn owner_of(
    sim: &Simulator,
    client: &Client,
    make: &str,
    external_id: Option<&str>,
) -> (String, String) {
    let vehicle = sim
        .vehicles()
        .into_iter()
        .find(|v| v.make == make)
        .unwrap_or_else(|| panic!("the default fleet has a {make}"));
    let owner = sim
        .users()
        .into_iter()
        .find(|u| u.vehicle_ids.contains(&vehicle.id))
        .unwrap();
    let mut auth = client
        .authorize()
        .scopes([Permission::ControlCharge, Permission::ReadCharge]);
    if let Some(id) = external_id {
        auth = auth.external_id(id);
    }
    let auth = auth.build().unwrap();
    // All of the owner's vehicles: the one of `make` among them.
    let options = ApproveOptions::new().user(&owner.email);
    let (redirect, read) = smartcar_tests::flow::approve(sim, client, &auth, options);
    let Redirect::UserId(user_id) = read else {
        panic!("expected a user id: {redirect}")
    };
    (user_id, vehicle.id)
}

fn vehicle(client: &Client, user_id: &str, vehicle_id: &str) -> VehicleV3 {
    ApplicationSession::new(client)
        .user(user_id)
        .unwrap()
        .vehicle(vehicle_id)
        .unwrap()
}

#[tokio::test]
async fn charge_schedules_are_created_read_back_and_deleted() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    let (user_id, tesla) = owner_of(&sim, &client, "TESLA", None);
    let car = vehicle(&client, &user_id, &tesla);
    let home = ChargeLocation::new(37.7749, -122.4194).unwrap();
    let night = ChargingWindow::parse("22:00", "06:00").unwrap();

    let daily = car.set_daily_charge_schedule(home, night).await.unwrap();
    let attributes = &daily.data.attributes;
    assert_eq!(attributes.action, ChargeScheduleAction::Create);
    let daily_id = attributes.schedule_id.clone().expect("a schedule id");
    let week = WeeklySchedule::new().day(Weekday::Mon, night).day(
        Weekday::Sat,
        ChargingWindow::parse("00:00", "08:00").unwrap(),
    );
    let weekly = car.set_weekly_charge_schedule(home, &week).await.unwrap();
    let workweek = car
        .set_workweek_charge_schedule(
            home,
            night,
            ChargingWindow::parse("01:00", "07:00").unwrap(),
        )
        .await
        .unwrap();
    let ids = [
        daily_id.clone(),
        weekly.data.attributes.schedule_id.clone().unwrap(),
        workweek.data.attributes.schedule_id.clone().unwrap(),
    ];

    let read = car.charge_schedules().await.unwrap();
    assert!(read.error.is_none(), "{read:?}");
    for id in &ids {
        assert!(
            read.timers
                .iter()
                .any(|t| t.schedule_id.as_deref() == Some(id.as_str())),
            "{id} is read back from charge-chargetimers: {:?}",
            read.timers
        );
    }

    let deleted = car.delete_charge_schedule(&daily_id).await.unwrap();
    assert_eq!(deleted.data.attributes.action, ChargeScheduleAction::Delete);
    let read = car.charge_schedules().await.unwrap();
    assert!(
        !read
            .timers
            .iter()
            .any(|t| t.schedule_id.as_deref() == Some(daily_id.as_str()))
    );
    let gone = car.delete_charge_schedule(&daily_id).await.unwrap_err();
    assert_eq!(gone.status(), Some(404), "{gone}");

    // Nothing invalid is sent.
    assert!(ChargingWindow::parse("22:00", "24:00").is_err());
    let before = sim.operation_count(&ops::SET_WEEKLY_CHARGE_SCHEDULE_V3);
    let empty = car
        .set_weekly_charge_schedule(home, &WeeklySchedule::new())
        .await
        .unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        sim.operation_count(&ops::SET_WEEKLY_CHARGE_SCHEDULE_V3),
        before
    );
}

#[tokio::test]
async fn a_make_without_schedules_answers_compatibility() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    let make = sim
        .vehicles()
        .into_iter()
        .map(|v| v.make)
        .find(|m| m != "TESLA" && m != "VOLVO")
        .expect("the default fleet has another make");
    let (user_id, id) = owner_of(&sim, &client, &make, None);
    let error = vehicle(&client, &user_id, &id)
        .set_daily_charge_schedule(
            ChargeLocation::new(48.137, 11.575).unwrap(),
            ChargingWindow::parse("23:00", "05:00").unwrap(),
        )
        .await
        .unwrap_err();
    let api = error.api().expect("an API error");
    assert_eq!(api.status, 501, "{error}");
    assert_eq!(api.code.as_deref(), Some("VEHICLE_NOT_CAPABLE"));
}

#[tokio::test]
async fn compatible_vehicles_are_public_filtered_and_cached_for_a_day() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    let teslas = CompatibleVehiclesFilter {
        region: Some(CompatibleRegion::Us),
        make: Some("tesla".into()),
        powertrain: Some(PowertrainType::Bev),
    };
    let models = client.compatible_vehicles(&teslas).await.unwrap();
    assert!(!models.is_empty());
    for m in models.iter() {
        assert!(m.attributes.make.eq_ignore_ascii_case("tesla"), "{m:?}");
        assert_eq!(m.attributes.region, CompatibleRegion::Us);
        assert!(!m.attributes.capabilities.is_empty());
    }
    let request = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == ops::LIST_COMPATIBLE_VEHICLES.path)
        .unwrap();
    assert!(
        !request.headers.iter().any(|(k, _)| k == "authorization"),
        "a public endpoint gets no credential: {:?}",
        request.headers
    );

    // Cached: the same filter does not reach the platform again within 24 hours.
    let again = client.compatible_vehicles(&teslas).await.unwrap();
    assert_eq!(again, models);
    assert_eq!(sim.operation_count(&ops::LIST_COMPATIBLE_VEHICLES), 1);
    sim.advance(Duration::from_secs(23 * 3600));
    client.compatible_vehicles(&teslas).await.unwrap();
    assert_eq!(sim.operation_count(&ops::LIST_COMPATIBLE_VEHICLES), 1);
    sim.advance(Duration::from_secs(2 * 3600));
    client.compatible_vehicles(&teslas).await.unwrap();
    assert_eq!(sim.operation_count(&ops::LIST_COMPATIBLE_VEHICLES), 2);
    // Another filter is another entry; clearing forgets them.
    let all = client
        .compatible_vehicles(&CompatibleVehiclesFilter::default())
        .await
        .unwrap();
    assert!(all.len() > models.len());
    client.clear_compatible_vehicles_cache();
    client.compatible_vehicles(&teslas).await.unwrap();
    assert_eq!(sim.operation_count(&ops::LIST_COMPATIBLE_VEHICLES), 4);
}

#[tokio::test]
async fn one_webhook_is_read_by_id() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    let id = sim.add_webhook(
        "http://127.0.0.1:9/hook",
        WebhookVersion::V3,
        "Battery monitor",
        &["tractionbattery-stateofcharge"],
    );
    let app = ApplicationSession::new(&client);
    let webhook = app.webhook(&id).await.unwrap();
    assert_eq!(webhook.data.id, id);
    let listed = app.webhooks(None, None).await.unwrap();
    assert!(listed.iter().any(|w| w == &webhook.data), "{listed:?}");
    let unknown = app
        .webhook("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(404));
}

#[tokio::test]
async fn connections_are_found_by_the_external_id_given_to_connect() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    let (user_id, tesla) = owner_of(&sim, &client, "TESLA", Some("customer-4711"));
    let app = ApplicationSession::new(&client);
    let found = app
        .connections_matching(&ConnectionQuery {
            external_id: Some("customer-4711".into()),
            ..ConnectionQuery::default()
        })
        .await
        .unwrap();
    // Every vehicle approved in that Connect session, and only those.
    let owned = sim
        .users()
        .into_iter()
        .find(|u| u.id == user_id)
        .unwrap()
        .vehicle_ids;
    assert_eq!(found.len(), owned.len(), "{found:?}");
    assert!(
        found
            .iter()
            .all(|c| c.relationships.user.data.id == user_id)
    );
    assert!(
        found
            .iter()
            .any(|c| c.relationships.vehicle.data.id == tesla)
    );
    let none = app
        .connections_matching(&ConnectionQuery {
            external_id: Some("someone-else".into()),
            ..ConnectionQuery::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn an_empty_signal_list_comes_with_a_hint() {
    // The simulator answers the signals of a connected vehicle: no hint.
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    let (user_id, tesla) = owner_of(&sim, &client, "TESLA", None);
    let signals = vehicle(&client, &user_id, &tesla).signals().await.unwrap();
    assert!(!signals.is_empty());
    assert_eq!(signals.empty_hint(), None);

    // The platform's `200` with `data: []` for a vehicle without stored values.
    let routes = axum::Router::new().route(
        "/v3/vehicles/{id}/signals",
        get(|| async {
            Json(json!({"data": [], "meta": {"page": 1, "pageSize": 100, "totalCount": 0},
                        "links": {"self": "/vehicles/v/signals?page=1&pageSize=100", "next": null}}))
        }),
    );
    let (client, server) = smartcar_tests::platform::serve(routes).await;
    let signals = vehicle(&client, "user-1", "vehicle-1")
        .signals()
        .await
        .unwrap();
    assert!(signals.is_empty());
    let hint = signals.empty_hint().expect("a hint");
    assert_eq!(hint, EmptySignalsHint::NoStoredValues);
    assert!(hint.to_string().contains("subscribe"), "{hint}");
    server.abort();
}

/// A `Sleep` that moves the simulator's clock instead of waiting.
struct SimulatedSleep(smartcar_sim::state::AppState);

impl smartcar::config::Sleep for SimulatedSleep {
    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        self.0.clock.advance(duration);
        Box::pin(async {})
    }
}

#[tokio::test]
async fn a_long_running_command_is_accepted_and_followed_to_its_end() {
    use smartcar::api::open_enums::{CommandStatusValue, ExecutionMode};

    let sim = Simulator::builder()
        .config(smartcar_sim::Config {
            command_duration: Duration::from_secs(90),
            ..smartcar_sim::Config::default()
        })
        .start()
        .await
        .unwrap();
    let client = client_for(&sim, EXCHANGE)
        .sleep(SimulatedSleep(sim.state().clone()))
        .build()
        .unwrap();
    let (user_id, tesla) = owner_of(&sim, &client, "TESLA", None);
    let car = vehicle(&client, &user_id, &tesla);
    let limit = smartcar::ChargeLimit::percent(80.0).unwrap();
    let accepted = car.set_charge_limit(limit).await.unwrap().data;
    let answer = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == ops::SetChargeLimitV3::path(&tesla))
        .unwrap();
    assert_eq!(answer.status, 202);
    assert_eq!(
        accepted.attributes.status.value,
        CommandStatusValue::Pending
    );
    assert_eq!(
        accepted.attributes.execution_mode,
        Some(ExecutionMode::Async)
    );
    let sent = sim.operation_count(&ops::SET_CHARGE_LIMIT_V3);

    // Too short a wait: still running, returned as is.
    let early = car
        .wait_for_command(accepted.clone(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(early.attributes.status.value, CommandStatusValue::Pending);
    let done = car
        .wait_for_command(accepted, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(done.attributes.status.value, CommandStatusValue::Success);
    let meta = done.meta.unwrap();
    assert_eq!(meta.duration_in_seconds, Some(90.0));
    assert!(meta.completed_at > meta.executed_at);
    assert_eq!(
        sim.operation_count(&ops::SET_CHARGE_LIMIT_V3),
        sent,
        "the command itself is never sent again"
    );
    assert!(sim.operation_count(&ops::GET_COMMAND_EXECUTION) >= 2);
}
