//! Webhooks end to end: the simulator delivers signed v2 and v3 webhooks to an axum app built
//! with the SDK's handler; the app verifies and records them; a tampered delivery is refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use smartcar::ApplicationSession;
use smartcar::webhooks::{Delivery, WebhookEvent, WebhookVerifier, axum::handler, sign};
use smartcar_sim::Simulator;
use smartcar_sim::model::WebhookVersion;
use smartcar_tests::flow::{CALLBACK, client_for, connect};

/// An axum app on 127.0.0.1 recording every verified delivery its handler sees.
async fn receiver(
    amt: &str,
) -> (
    String,
    Arc<Mutex<Vec<Delivery>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let record = seen.clone();
    let app: Router = Router::new().route(
        "/webhooks",
        handler(
            WebhookVerifier::new(amt).unwrap(),
            move |delivery: Delivery| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(delivery);
                    StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, seen, task)
}

#[tokio::test]
async fn signed_deliveries_are_verified_and_tampered_ones_refused() {
    let sim = Simulator::start().await.unwrap();
    sim.set_webhook_retry_delays(&[]);
    let amt = sim.app().amt.clone();
    let (url, seen, server) = receiver(&amt).await;
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let user_id = sim.users()[0].id.clone();
    let vehicle_id = sim.users()[0].vehicle_ids[0].clone();

    // v3: the verification challenge is answered by the SDK's handler.
    let hook3 = sim.add_webhook(
        &url,
        WebhookVersion::V3,
        "e2e v3",
        &["odometer-traveleddistance"],
    );
    assert!(
        sim.verify_webhook(&hook3).await.unwrap(),
        "VERIFY answered correctly"
    );
    let app = ApplicationSession::new(&client);
    app.subscribe(&hook3, &vehicle_id, &user_id).await.unwrap();
    let outcome = sim
        .trigger_vehicle_state(&hook3, &vehicle_id, &["odometer-traveleddistance"])
        .await
        .unwrap();
    assert!(outcome.delivered, "{outcome:?}");
    let outcome = sim
        .trigger_vehicle_error(
            &hook3,
            &vehicle_id,
            "VEHICLE_STATE",
            Some("ASLEEP"),
            false,
            &[],
        )
        .await
        .unwrap();
    assert!(outcome.delivered, "{outcome:?}");

    // v2: subscribe through the vehicle handle, then a charging event.
    let hook2 = sim.add_webhook(&url, WebhookVersion::V2, "e2e v2", &[]);
    assert!(sim.verify_webhook(&hook2).await.unwrap());
    let vehicle = session.vehicle(vehicle_id.clone()).unwrap();
    let sub = vehicle.subscribe(&hook2).await.unwrap();
    assert_eq!(sub.data.webhook_id, hook2);
    let outcome = sim
        .trigger_charging_event(&hook2, &vehicle_id, "CHARGING_STARTED")
        .await
        .unwrap();
    assert!(outcome.delivered, "{outcome:?}");

    // Give the background FIRST_DELIVERY of the v3 subscription time to land.
    for _ in 0..50 {
        let has_first = seen.lock().unwrap().iter().any(|d| {
            matches!(&d.event, WebhookEvent::VehicleState(s)
                if s.triggers.iter().any(|t| t.code.as_deref() == Some("FIRST_DELIVERY")))
        });
        if has_first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let deliveries = seen.lock().unwrap().clone();
    let state = deliveries
        .iter()
        .find_map(|d| match &d.event {
            WebhookEvent::VehicleState(s)
                if s.triggers
                    .iter()
                    .any(|t| t.code.as_deref() == Some("odometer-traveleddistance")) =>
            {
                Some((d, s))
            }
            _ => None,
        })
        .expect("a VEHICLE_STATE delivery");
    assert_eq!(state.1.vehicle.id, vehicle_id);
    assert_eq!(
        state.1.user.as_ref().map(|u| u.id.as_str()),
        Some(user_id.as_str())
    );
    assert!(state.0.event_id.is_some() && state.0.delivery_id.is_some());
    assert!(deliveries.iter().any(|d| matches!(&d.event, WebhookEvent::VehicleError(e) if e.errors[0].code.as_deref() == Some("ASLEEP"))));
    assert!(
        deliveries
            .iter()
            .any(|d| matches!(&d.event, WebhookEvent::V2(e) if e.envelope.webhook_id == hook2 && matches!(&e.payload, smartcar::webhooks::V2Payload::EventBased(p) if p.vehicle_id == vehicle_id)))
    );
    assert!(
        deliveries
            .iter()
            .any(|d| matches!(&d.event, WebhookEvent::VehicleState(s) if s.triggers.iter().any(|t| t.code.as_deref() == Some("FIRST_DELIVERY")))),
        "FIRST_DELIVERY after subscribing"
    );
    assert!(
        !deliveries
            .iter()
            .any(|d| matches!(d.event, WebhookEvent::Verify { .. })),
        "challenges are answered by the SDK, not handed to the app"
    );
    let count = deliveries.len();

    // A tampered delivery (signature of another body) and an unsigned one: 401, not recorded.
    let http = reqwest::Client::new();
    let body = |vehicle: &str, delivered_at: i64| {
        format!(r#"{{"eventId":"e","eventType":"VEHICLE_STATE","data":{{"vehicle":{{"id":"{vehicle}"}},"signals":[]}},"meta":{{"deliveryId":"d","deliveredAt":{delivered_at}}}}}"#).into_bytes()
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let genuine = &body("v", now_ms)[..];
    let tampered = &body("x", now_ms)[..];
    let resp = http
        .post(&url)
        .header("SC-Signature", sign(&amt, genuine))
        .body(tampered.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().is_empty(), "no detail leaks");
    let resp = http.post(&url).body(genuine.to_vec()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .post(&url)
        .header("SC-Signature", sign(&amt, genuine))
        .body(genuine.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the genuine body passes");
    assert_eq!(seen.lock().unwrap().len(), count + 1);
    // A correctly signed delivery captured 10 minutes ago and replayed: 401, not recorded.
    let replayed = body("v", now_ms - 10 * 60 * 1000);
    let resp = http
        .post(&url)
        .header("SC-Signature", sign(&amt, &replayed))
        .body(replayed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "a replay outside the max age is refused"
    );
    assert!(resp.text().await.unwrap().is_empty(), "no detail leaks");
    // Forged with the empty key (what an unset management token used to verify with).
    let resp = http
        .post(&url)
        .header("SC-Signature", sign("", genuine))
        .body(genuine.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(seen.lock().unwrap().len(), count + 1);

    // Unsubscribe with the management token: no more deliveries to that vehicle.
    vehicle.unsubscribe(&amt, &hook2).await.unwrap();
    let outcome = sim
        .trigger_charging_event(&hook2, &vehicle_id, "CHARGING_STOPPED")
        .await;
    assert!(outcome.map(|o| !o.delivered).unwrap_or(true));
    server.abort();
    sim.shutdown().await;
}
