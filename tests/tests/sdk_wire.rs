//! The exact requests the SDK sends for each endpoint, as the simulator received them (method,
//! path, query, headers — secrets masked by the simulator's log, `host` and `user-agent`
//! dropped —, body), as one insta snapshot: any change to what goes on the wire shows up in
//! review.

use smartcar::api::types::CompatibilityRegion;
use smartcar::management::ConnectionFilter;
use smartcar::{ApplicationSession, ChargeLimit, Destination, Permission, Redirect};
use smartcar_sim::{ApproveOptions, Simulator};
use smartcar_tests::flow::{CALLBACK, client_for, connect};

/// One request per block; the vehicle and user ids are those of the seeded fleet, the rest of
/// the random values (tokens, codes, state) are masked or removed.
fn render(sim: &Simulator, skip: usize, random: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for r in sim.requests().into_iter().skip(skip) {
        out.push_str(&format!("{} {}", r.method, r.path));
        if let Some(q) = &r.query {
            out.push_str(&format!("?{q}"));
        }
        out.push('\n');
        let mut headers: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "host" | "user-agent"))
            .collect();
        headers.sort();
        for (k, v) in headers {
            out.push_str(&format!("  {k}: {v}\n"));
        }
        if !r.body.is_empty() {
            out.push_str(&format!("  body: {}\n", String::from_utf8_lossy(&r.body)));
        }
        out.push_str(&format!("  -> {}\n", r.status));
    }
    // Ids the simulator draws at random (not from the seed) get stable names.
    for (value, name) in random {
        out = out.replace(value, name);
    }
    out
}

#[tokio::test]
async fn wire_requests_of_every_endpoint() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let user = sim.users()[0].clone();
    let ev = sim
        .vehicles()
        .into_iter()
        .find(|v| v.battery.is_some() && user.vehicle_ids.contains(&v.id))
        .expect("the first user has an EV in the seeded fleet");
    // The code exchange is in the log (code and secrets masked); a refresh joins it.
    let start = 0;
    let refresh = session.tokens().unwrap().refresh_token;
    client.refresh_tokens(&refresh).await.unwrap();

    let v = session.vehicle(ev.id.clone()).unwrap();
    session.fetch_user_id().await.unwrap();
    session.vehicle_ids(Some(10), Some(0)).await.unwrap();
    v.attributes().await.unwrap();
    v.vin().await.unwrap();
    v.odometer().await.unwrap();
    v.clone()
        .with_unit_system(smartcar::config::UnitSystem::Imperial)
        .odometer()
        .await
        .unwrap();
    v.location().await.unwrap();
    let _ = v.battery().await;
    let _ = v.battery_capacity().await;
    let _ = v.nominal_capacity().await;
    let _ = v.charge().await;
    let _ = v.charge_limit().await;
    let _ = v.fuel().await;
    let _ = v.engine_oil().await;
    let _ = v.tire_pressure().await;
    v.lock_status().await.unwrap();
    let _ = v.diagnostic_system_status().await;
    let _ = v.diagnostic_trouble_codes().await;
    let from = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let _ = v.service_history(Some(from), None).await;
    v.permissions(Some(25), Some(0)).await.unwrap();
    v.lock().await.unwrap();
    v.unlock().await.unwrap();
    let _ = v.start_charge().await;
    let _ = v.stop_charge().await;
    // A percentage goes out as the fraction v2.0 expects.
    let _ = v
        .set_charge_limit(ChargeLimit::percent(80.0).unwrap())
        .await;
    let _ = v
        .set_destination(Destination::new(51.5007, 0.1246).unwrap())
        .await;
    v.batch().odometer().location().send().await.unwrap();
    let _ = v
        .request(smartcar::config::Method::GET, "/odometer", None)
        .await;
    let _ = client
        .compatibility(&ev.vin, &[Permission::ReadOdometer], Some("US"))
        .await;
    let _ = client
        .compatibility_v1(&ev.vin, &[Permission::ReadOdometer], None)
        .await;
    let _ = client
        .compatibility_matrix(
            CompatibilityRegion::Us,
            None,
            &["TESLA"],
            &[Permission::ReadBattery],
        )
        .await;
    let mgmt = client.management(app.amt.clone());
    let _ = mgmt
        .connections_page(
            &ConnectionFilter {
                user_id: Some(user.id.clone()),
                limit: Some(5),
                ..Default::default()
            },
            None,
        )
        .await;
    let app_session = ApplicationSession::new(&client);
    let u = app_session.user(user.id.clone()).unwrap();
    let v3 = u.vehicle(ev.id.clone()).unwrap();
    v3.info().await.unwrap();
    v3.signal("odometer-traveleddistance").await.unwrap();
    // A fraction goes out as the percentage v3 expects.
    let _ = v3
        .set_charge_limit(ChargeLimit::fraction(0.8).unwrap())
        .await;
    v3.lock().await.unwrap();
    let _ = u.connections().await;
    let auth = client
        .authorize()
        .scope(Permission::ReadVin)
        .state("fixed")
        .build()
        .unwrap();
    assert!(matches!(
        client
            .handle_redirect(
                sim.approve(auth.url.as_str(), ApproveOptions::new())
                    .unwrap()
                    .as_str(),
                &auth.state
            )
            .unwrap(),
        Redirect::Code(_)
    ));
    let exec = v3.unlock().await.unwrap();
    let _ = v3.start_charge().await;
    let _ = v3.stop_charge().await;
    let _ = v3
        .set_destination(Destination::new(51.5007, 0.1246).unwrap())
        .await;
    let _ = v3.command_execution(&exec.data.id).await;
    let _ = v3.signals().await;
    let hook = sim.add_webhook(
        "http://127.0.0.1:9/hook",
        smartcar_sim::model::WebhookVersion::V2,
        "wire",
        &[],
    );
    v.subscribe(&hook).await.unwrap();
    v.unsubscribe(&app.amt, &hook).await.unwrap();
    let hook3 = sim.add_webhook(
        "http://127.0.0.1:9/hook3",
        smartcar_sim::model::WebhookVersion::V3,
        "wire3",
        &[],
    );
    app_session
        .subscribe(&hook3, &ev.id, &user.id)
        .await
        .unwrap();
    let subs = app_session
        .subscriptions(Some(&hook3), None, None)
        .await
        .unwrap();
    let _ = app_session.subscription(&subs[0].id).await;
    app_session.unsubscribe(&subs[0].id).await.unwrap();
    let connections = app_session.connections(Some(&user.id), None).await.unwrap();
    let other = connections
        .iter()
        .find(|c| c.relationships.vehicle.data.id != ev.id)
        .unwrap();
    let _ = app_session.connection(&other.id).await;
    app_session.delete_connection(&other.id).await.unwrap();
    let _ = mgmt.delete_connections(Some(&user.id), Some(&ev.id)).await;
    let last = app_session.user(sim.users()[2].id.clone()).unwrap();
    last.delete().await.unwrap();
    v.disconnect().await.unwrap_err();

    let wire = render(
        &sim,
        start,
        &[
            (&exec.data.id, "{execution_id}"),
            (&hook, "{webhook_id}"),
            (&hook3, "{webhook_v3_id}"),
            (&subs[0].id, "{subscription_id}"),
            (&other.id, "{connection_id}"),
        ],
    );
    // The client-credentials request (its form carries the secret, masked by the simulator).
    assert!(wire.contains("POST /oauth2/token"));
    assert!(!wire.contains(&app.client_secret) && !wire.contains(&app.amt));
    insta::assert_snapshot!("sdk_wire_requests", wire);
    sim.shutdown().await;
}
