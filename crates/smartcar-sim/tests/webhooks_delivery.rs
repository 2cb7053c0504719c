//! Webhook deliveries to a real receiver on 127.0.0.1: the receiver recomputes every
//! signature over the raw body and answers verification challenges; the envelopes must be
//! exactly their generated types.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use smartcar_api::types;
use smartcar_sim::model::{Powertrain, WebhookError, WebhookVersion};
use smartcar_sim::testing::v3::*;

fn hmac_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn signature_test_vectors() {
    assert_eq!(
        hmac_hex("amt", b"challenge"),
        "9baf5a7464bd86740ad5a06e439dcf535a075022ed2c92d74efacf646d79328e"
    );
    assert_eq!(
        hmac_hex("amt", br#"{"pizza":"pasta"}"#),
        "4c05a8da471f05156ad717baa4017acd13a3a809850b9ca7d3301dcaaa854f70"
    );
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Answers challenges correctly, 200 to data.
    Good,
    /// Answers challenges with the challenge itself (not its HMAC).
    WrongAnswer,
    /// 500 to everything.
    Fail,
    /// Waits a second before answering.
    Slow,
}

struct Received {
    headers: HeaderMap,
    body: Bytes,
    json: Value,
}

#[derive(Clone)]
struct Receiver {
    amt: String,
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<Received>>>,
    url: String,
}

impl Receiver {
    async fn start(amt: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let receiver = Receiver {
            amt,
            mode: Arc::new(Mutex::new(Mode::Good)),
            got: Arc::new(Mutex::new(Vec::new())),
            url,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// Waits (up to 5 s) until `n` deliveries arrived; returns the `n`-th body and headers.
    async fn nth(&self, n: usize) -> (Value, HeaderMap, Bytes) {
        for _ in 0..500 {
            {
                let got = self.got.lock().unwrap();
                if let Some(r) = got.get(n - 1) {
                    return (r.json.clone(), r.headers.clone(), r.body.clone());
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("delivery {n} never arrived");
    }
}

/// The receiver: checks the signature over the raw bytes (a bad one fails the test), records
/// the delivery, answers per its mode.
async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("sc-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        signature,
        hmac_hex(&r.amt, &body),
        "SC-Signature over the raw body"
    );
    let json: Value = serde_json::from_slice(&body).expect("JSON body");
    let challenge = json["data"]["challenge"]
        .as_str()
        .or(json["payload"]["challenge"].as_str())
        .map(str::to_owned);
    r.got.lock().unwrap().push(Received {
        headers,
        body,
        json,
    });
    let mode = *r.mode.lock().unwrap();
    match mode {
        Mode::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            StatusCode::OK.into_response()
        }
        Mode::Good | Mode::WrongAnswer => match challenge {
            Some(c) => {
                let answer = if mode == Mode::Good {
                    hmac_hex(&r.amt, c.as_bytes())
                } else {
                    c
                };
                axum::Json(json!({ "challenge": answer })).into_response()
            }
            None => StatusCode::OK.into_response(),
        },
    }
}

/// A URL nobody listens on (a port just bound and released).
async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/hook")
}

/// The delivery log once it holds `n` entries (the sender logs after the receiver answered).
async fn log_of(env: &Env, n: usize) -> Vec<smartcar_sim::model::DeliveryOutcome> {
    for _ in 0..500 {
        let log = env.sim.webhook_deliveries();
        if log.len() >= n {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the log never reached {n} deliveries");
}

fn amt(env: &Env) -> String {
    env.sim.state().world().app.amt.clone()
}

/// Subscribes `vehicle` to `webhook` through the management API v3 (the subscriber is the
/// vehicle's connected user).
async fn subscribe(env: &Env, webhook: &str, vehicle: &str) -> Answer {
    let body = json!({"data": {"attributes": {"webhookId": webhook, "vehicleId": vehicle}}});
    post(
        env,
        "/v3/subscriptions",
        Some(&env.app),
        None,
        Some(&body.to_string()),
    )
    .await
}

fn assert_delivery_headers(headers: &HeaderMap) {
    assert_eq!(headers["content-type"], "application/json");
    let agent = headers["user-agent"].to_str().unwrap();
    assert!(agent.starts_with("Smartcar/"), "{agent}");
}

#[tokio::test]
async fn verification_challenges() {
    let env = start().await;
    let receiver = Receiver::start(amt(&env)).await;

    // v3: VERIFY answered right.
    let v3 = env
        .sim
        .add_webhook(&receiver.url, WebhookVersion::V3, "Fleet", &[]);
    assert_eq!(env.sim.verify_webhook(&v3).await, Ok(true));
    let (body, headers, raw) = receiver.nth(1).await;
    assert_delivery_headers(&headers);
    let event: types::WebhookEvent = typed(&body);
    assert_eq!(event.event_type.as_str(), "VERIFY");
    assert_eq!(event.vehicle_id, None);
    assert_eq!(event.meta.version.as_deref(), Some("4.0"));
    assert_eq!(event.meta.webhook_id.as_deref(), Some(v3.as_str()));
    assert_eq!(event.meta.webhook_name.as_deref(), Some("Fleet"));
    assert!(!event.meta.delivery_id.is_empty());
    let now = env.sim.state().now().timestamp_millis();
    assert!((now - event.meta.delivered_at).abs() < 60_000);
    let data: types::WebhookVerifyData = typed(&body["data"]);
    assert!(!data.challenge.is_empty());
    // The log holds exactly what was sent.
    let log = env.sim.webhook_deliveries();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_type, "VERIFY");
    assert!(log[0].delivered);
    assert_eq!(log[0].event_id.as_deref(), Some(event.event_id.as_str()));
    assert_eq!(log[0].attempts[0].body.as_bytes(), &raw[..]);
    assert_eq!(
        log[0].attempts[0].signature,
        headers["sc-signature"].to_str().unwrap()
    );
    assert_eq!(log[0].attempts[0].status, Some(200));
    assert_eq!(
        env.sim.webhook_signature(&raw),
        headers["sc-signature"].to_str().unwrap()
    );

    // A wrong answer: not verified (and a verified webhook re-verified wrongly loses it).
    receiver.set(Mode::WrongAnswer);
    let wrong = env
        .sim
        .add_webhook(&receiver.url, WebhookVersion::V3, "Wrong", &[]);
    assert_eq!(env.sim.verify_webhook(&wrong).await, Ok(false));
    assert_eq!(env.sim.verify_webhook(&v3).await, Ok(false));
    let log = env.sim.webhook_deliveries();
    assert_eq!(
        log.last().unwrap().attempts[0].error.as_deref(),
        Some("wrong challenge answer")
    );
    assert!(!env.sim.state().world().v3.verified_webhooks.contains(&v3));
    receiver.set(Mode::Fail);
    assert_eq!(env.sim.verify_webhook(&v3).await, Ok(false));
    receiver.set(Mode::Good);
    assert_eq!(env.sim.verify_webhook(&v3).await, Ok(true));

    // v2.0: `verify` envelope.
    let v2 = env
        .sim
        .add_webhook(&receiver.url, WebhookVersion::V2, "Legacy", &["/odometer"]);
    let before = receiver.count();
    assert_eq!(env.sim.verify_webhook(&v2).await, Ok(true));
    let (body, headers, _) = receiver.nth(before + 1).await;
    assert_delivery_headers(&headers);
    let event: types::V2WebhookEvent = typed(&body);
    assert_eq!(event.version, "2.0");
    assert_eq!(event.webhook_id, v2);
    assert_eq!(event.event_name.as_str(), "verify");
    typed::<types::V2VerifyPayload>(&body["payload"]);

    assert_eq!(
        env.sim.verify_webhook("nope").await,
        Err(WebhookError::UnknownWebhook("nope".into()))
    );
    // Nobody listening: not verified.
    let closed = env
        .sim
        .add_webhook(&closed_url().await, WebhookVersion::V3, "Closed", &[]);
    assert_eq!(env.sim.verify_webhook(&closed).await, Ok(false));
}

const STATE_SIGNALS: [&str; 4] = [
    "tractionbattery-stateofcharge",
    "odometer-traveleddistance",
    "location-preciselocation",
    "internalcombustionengine-fuellevel",
];

#[tokio::test]
async fn vehicle_state_and_vehicle_error_events() {
    let env = start().await;
    let receiver = Receiver::start(amt(&env)).await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    let other = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, &["read_battery", "read_odometer"]);
    connect(&env.sim, &u0, &other, &["read_battery"]);
    let webhook = env
        .sim
        .add_webhook(&receiver.url, WebhookVersion::V3, "Battery", &STATE_SIGNALS);

    // Unverified: nothing.
    assert_eq!(
        env.sim.trigger_vehicle_state(&webhook, &ev, &[]).await,
        Err(WebhookError::NotVerified(webhook.clone()))
    );
    assert_eq!(env.sim.verify_webhook(&webhook).await, Ok(true));

    // Subscribing sends FIRST_DELIVERY.
    let body =
        json!({"data": {"attributes": {"webhookId": webhook, "vehicleId": ev, "userId": u0}}});
    let created = post(
        &env,
        "/v3/subscriptions",
        Some(&env.app),
        None,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(created.status, 202);
    let (first, headers, _) = receiver.nth(2).await;
    assert_delivery_headers(&headers);
    let event: types::WebhookEvent = typed(&first);
    assert_eq!(event.event_type.as_str(), "VEHICLE_STATE");
    assert_eq!(event.vehicle_id.as_deref(), Some(ev.as_str()));
    assert_eq!(event.meta.signal_count, Some(4));
    assert_eq!(
        event.meta.mode,
        Some(smartcar_api::open_enums::WebhookMode::Live)
    );
    assert_eq!(event.meta.version.as_deref(), Some("4.0"));
    let data: types::VehicleStateData = typed(&first["data"]);
    assert_eq!(
        first["data"]["triggers"],
        json!([{"code": "FIRST_DELIVERY"}])
    );
    assert_eq!(data.user.unwrap().id, u0);
    let vehicle = env.sim.state().world().vehicles[&ev].clone();
    assert_eq!(data.vehicle.id, ev);
    assert_eq!(data.vehicle.make.as_deref(), Some(vehicle.make.as_str()));
    assert_eq!(
        data.vehicle.year.and_then(|y| y.number()),
        Some(vehicle.year)
    );
    let codes: Vec<&str> = data.signals.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(codes, STATE_SIGNALS);
    let signals = first["data"]["signals"].as_array().unwrap();
    let soc: types::SignalUnitValue = typed(&signals[0]["body"]);
    let battery = vehicle.battery.clone().unwrap();
    assert!((soc.value - battery.percent * 100.0).abs() < 0.01);
    assert_eq!(signals[0]["name"], "StateOfCharge");
    assert_eq!(signals[0]["group"], "TractionBattery");
    assert!(signals[0].get("status").is_none());
    assert_eq!(
        signals[0]["meta"]["oemUpdatedAt"],
        vehicle.data_age.timestamp_millis()
    );
    assert!(signals[0]["meta"]["fetchedAt"].is_i64());
    // No read_location: ERROR / PERMISSION; an ICE signal of a BEV: COMPATIBILITY.
    assert_eq!(signals[2]["status"]["value"], "ERROR");
    assert_eq!(signals[2]["status"]["error"]["type"], "PERMISSION");
    assert!(signals[2].get("body").is_none());
    assert_eq!(signals[3]["status"]["error"]["code"], "VEHICLE_NOT_CAPABLE");
    let log = log_of(&env, 2).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].event_type, "VEHICLE_STATE");
    assert_eq!(log[1].vehicle_ids, vec![ev.clone()]);

    // A change, then a triggered delivery carrying the new state.
    env.sim
        .state()
        .world()
        .vehicles
        .get_mut(&ev)
        .unwrap()
        .battery
        .as_mut()
        .unwrap()
        .percent = 0.5;
    let outcome = env
        .sim
        .trigger_vehicle_state(&webhook, &ev, &["tractionbattery-stateofcharge"])
        .await
        .expect("sent");
    assert!(outcome.delivered);
    assert_eq!(outcome.attempts.len(), 1);
    assert_eq!(outcome.attempts[0].status, Some(200));
    let (state, _, raw) = receiver.nth(3).await;
    assert_eq!(outcome.attempts[0].body.as_bytes(), &raw[..]);
    assert_eq!(state["eventId"], outcome.event_id.clone().unwrap().as_str());
    assert_eq!(
        state["meta"]["deliveryId"],
        outcome.attempts[0].delivery_id.clone().unwrap().as_str()
    );
    assert_eq!(
        state["data"]["triggers"],
        json!([{"code": "tractionbattery-stateofcharge", "name": "StateOfCharge", "group": "TractionBattery"}])
    );
    assert_eq!(
        state["data"]["signals"][0]["body"],
        json!({"unit": "percent", "value": 50.0})
    );
    typed::<types::WebhookEvent>(&state);
    typed::<types::VehicleStateData>(&state["data"]);

    // VEHICLE_ERROR.
    let outcome = env
        .sim
        .trigger_vehicle_error(
            &webhook,
            &ev,
            "VEHICLE_STATE",
            Some("ASLEEP"),
            false,
            &["tractionbattery-stateofcharge"],
        )
        .await
        .expect("sent");
    assert!(outcome.delivered);
    let (error, _, _) = receiver.nth(4).await;
    let event: types::WebhookEvent = typed(&error);
    assert_eq!(event.event_type.as_str(), "VEHICLE_ERROR");
    assert_eq!(event.meta.signal_count, None);
    assert_eq!(event.vehicle_id.as_deref(), Some(ev.as_str()));
    let data: types::VehicleErrorData = typed(&error["data"]);
    assert_eq!(data.user.unwrap().id, u0);
    let item = &error["data"]["errors"][0];
    assert_eq!(item["type"], "VEHICLE_STATE");
    assert_eq!(item["code"], "ASLEEP");
    assert_eq!(item["state"], "ERROR");
    assert!(item["description"].as_str().unwrap().contains("sleep"));
    assert!(item["suggestedUserMessage"].is_string());
    assert_eq!(
        item["docURL"],
        "https://smartcar.com/docs/errors/api-errors/vehicle-state-errors#asleep"
    );
    assert_eq!(
        item["signals"],
        json!([{"code": "tractionbattery-stateofcharge", "name": "StateOfCharge", "group": "TractionBattery"}])
    );
    env.sim
        .trigger_vehicle_error(&webhook, &ev, "PERMISSION", None, true, &[])
        .await
        .expect("sent");
    let (resolved, _, _) = receiver.nth(5).await;
    let item = &resolved["data"]["errors"][0];
    assert_eq!(
        (item["type"].clone(), item["state"].clone()),
        (json!("PERMISSION"), json!("RESOLVED"))
    );
    assert!(item.get("code").is_none());
    assert_eq!(item["resolution"]["type"], "REAUTHENTICATE");
    typed::<types::VehicleErrorData>(&resolved["data"]);

    // Refusals.
    assert_eq!(
        env.sim
            .trigger_vehicle_error(&webhook, &ev, "VEHICLE_STATE", Some("ON_FIRE"), false, &[])
            .await
            .map(|o| o.delivered),
        Err(WebhookError::InvalidArgument(
            "no error VEHICLE_STATE/Some(\"ON_FIRE\")".into()
        ))
    );
    assert!(matches!(
        env.sim.trigger_vehicle_state(&webhook, &other, &[]).await,
        Err(WebhookError::NotSubscribed { .. })
    ));
    assert!(matches!(
        env.sim.trigger_vehicle_state(&webhook, "nope", &[]).await,
        Err(WebhookError::UnknownVehicle(_))
    ));
    assert!(matches!(
        env.sim
            .trigger_charging_event(&webhook, &ev, "CHARGING_STARTED")
            .await,
        Err(WebhookError::WrongVersion(_))
    ));
    assert_eq!(receiver.count(), 5, "nothing else was sent");
}

#[tokio::test]
async fn v2_envelopes() {
    let env = start().await;
    let receiver = Receiver::start(amt(&env)).await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    let ice = add_vehicle(&env.sim, &u0, Powertrain::Ice);
    let perms = ["read_odometer", "read_battery", "read_fuel", "read_charge"];
    connect(&env.sim, &u0, &ev, &perms);
    connect(&env.sim, &u0, &ice, &perms);
    let paths = ["/odometer", "battery", "/fuel", "/location", "/nope"];
    let webhook = env
        .sim
        .add_webhook(&receiver.url, WebhookVersion::V2, "Legacy", &paths);
    assert_eq!(env.sim.verify_webhook(&webhook).await, Ok(true));
    assert!(matches!(
        env.sim.trigger_v2_data(&webhook, true).await,
        Err(WebhookError::NotSubscribed {
            vehicle_id: None,
            ..
        })
    ));
    for v in [&ev, &ice] {
        assert_eq!(subscribe(&env, &webhook, v).await.status, 202);
        env.sim.state().clock.advance(Duration::from_secs(1));
    }

    // eventBased.
    let outcome = env
        .sim
        .trigger_charging_event(&webhook, &ev, "CHARGING_STARTED")
        .await
        .expect("sent");
    assert!(outcome.delivered);
    assert_eq!(outcome.attempts[0].delivery_id, None);
    let (body, headers, _) = receiver.nth(2).await;
    assert_delivery_headers(&headers);
    let event: types::V2WebhookEvent = typed(&body);
    assert_eq!(event.event_name.as_str(), "eventBased");
    assert_eq!(body["mode"], "live");
    let payload: types::V2EventBasedPayload = typed(&body["payload"]);
    assert_eq!(payload.vehicle_id, ev);
    assert_eq!(payload.event_type.as_str(), "CHARGING_STARTED");
    assert_eq!(Some(payload.event_id), outcome.event_id);
    assert!(payload.event_time.is_some());
    assert!(matches!(
        env.sim
            .trigger_charging_event(&webhook, &ev, "CHARGING_EXPLODED")
            .await,
        Err(WebhookError::InvalidArgument(_))
    ));

    // scheduled / dynamic: batch-like items per subscribed vehicle.
    for (scheduled, name, n) in [(true, "scheduled", 3), (false, "dynamic", 4)] {
        let outcome = env
            .sim
            .trigger_v2_data(&webhook, scheduled)
            .await
            .expect("sent");
        assert!(outcome.delivered);
        assert_eq!(outcome.event_type, name);
        assert_eq!(outcome.vehicle_ids, vec![ev.clone(), ice.clone()]);
        let (body, _, _) = receiver.nth(n).await;
        let event: types::V2WebhookEvent = typed(&body);
        assert_eq!(event.event_name.as_str(), name);
        let payload: types::V2DynamicPayload = typed(&body["payload"]);
        assert_eq!(payload.vehicles.len(), 2);
        let (v, i) = {
            let world = env.sim.state().world();
            (world.vehicles[&ev].clone(), world.vehicles[&ice].clone())
        };
        let ev_items = &payload.vehicles[0];
        assert_eq!(ev_items.vehicle_id, ev);
        let codes: Vec<(&str, i32)> = ev_items
            .data
            .iter()
            .map(|d| (d.path.as_str(), d.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("/odometer", 200),
                ("/battery", 200),
                ("/fuel", 501),
                ("/location", 403),
                ("/nope", 404)
            ]
        );
        let odometer: types::Odometer = typed(ev_items.data[0].body.as_ref().unwrap());
        assert_eq!(odometer.distance, v.odometer_km);
        assert_eq!(ev_items.data[0].headers["sc-unit-system"], "metric");
        let battery: types::Battery = typed(ev_items.data[1].body.as_ref().unwrap());
        assert_eq!(battery.percent_remaining, v.battery.unwrap().percent);
        // The platform's explicit nulls (`"code": null`, `"resolution": {"type": null}`) do not
        // survive a round trip through the generated type: the tolerant check.
        let error: types::V2Error =
            smartcar_sim::testing::assert_typed(ev_items.data[2].body.as_ref().unwrap());
        assert_eq!(error.code.as_deref(), Some("VEHICLE_NOT_CAPABLE"));
        let ice_items = &payload.vehicles[1];
        let codes: Vec<i32> = ice_items.data.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec![200, 501, 200, 403, 404]);
        let fuel: types::FuelTank = typed(ice_items.data[2].body.as_ref().unwrap());
        assert_eq!(fuel.percent_remaining, Some(i.fuel.unwrap().percent));
    }
}

/// An item without what differs from one request to the next: the error's `requestId` and the
/// `sc-fetched-at` header.
fn comparable(item: &types::BatchResponseItem) -> types::BatchResponseItem {
    let mut item = item.clone();
    item.headers.remove("sc-fetched-at");
    if let Some(Value::Object(body)) = item.body.as_mut() {
        body.remove("requestId");
    }
    item
}

#[tokio::test]
async fn v2_data_items_are_batch_items() {
    let env = start().await;
    let receiver = Receiver::start(amt(&env)).await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Phev);
    if let Some(b) = env
        .sim
        .state()
        .world()
        .vehicles
        .get_mut(&ev)
        .unwrap()
        .battery
        .as_mut()
    {
        // An undetermined capacity's URL carries a fresh token each time.
        b.nominal_determined = true;
    }
    let perms: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|p| *p != "read_location")
        .collect();
    connect(&env.sim, &u0, &ev, &perms);
    // Every GET path of the vehicle (odd spellings and a query included), one it lacks the
    // permission for, and one that is not a path.
    let paths = [
        "/",
        "/vin",
        "odometer/",
        "/location",
        "/fuel",
        "/battery",
        "/battery/capacity",
        "/battery/nominal_capacity",
        "/charge",
        "/charge/limit",
        "/engine/oil",
        "/tires/pressure",
        "/security",
        "/service/history",
        "/diagnostics/system_status",
        "/diagnostics/dtcs",
        "/permissions?limit=2&offset=1",
        "/nope",
    ];
    let webhook = env
        .sim
        .add_webhook(&receiver.url, WebhookVersion::V2, "Everything", &paths);
    assert_eq!(env.sim.verify_webhook(&webhook).await, Ok(true));
    assert_eq!(subscribe(&env, &webhook, &ev).await.status, 202);

    let outcome = env
        .sim
        .trigger_v2_data(&webhook, false)
        .await
        .expect("sent");
    assert!(outcome.delivered);
    let (body, _, _) = receiver.nth(2).await;
    let payload: types::V2DynamicPayload = typed(&body["payload"]);
    let delivered = &payload.vehicles[0].data;

    // The same paths in a batch, with a token of the subscriber's permissions (without the
    // path that is not one: a batch refuses it whole).
    let token = user_token(&env.sim, &u0, &[&ev], &perms);
    let requests: Vec<Value> = paths[..paths.len() - 1]
        .iter()
        .map(|p| json!({ "path": p }))
        .collect();
    let batch = post(
        &env,
        &format!("/v2.0/vehicles/{ev}/batch"),
        Some(&token),
        None,
        Some(&json!({ "requests": requests }).to_string()),
    )
    .await;
    assert_eq!(batch.status, 200, "{:#}", batch.body);
    // (Not `typed`: the batch answers `"headers": {}` where the type leaves an empty map out.)
    let batch: types::BatchResponse = serde_json::from_value(batch.body).expect("a batch");

    assert_eq!(delivered.len(), paths.len());
    for (delivered, answered) in delivered.iter().zip(&batch.responses) {
        assert_eq!(comparable(delivered), comparable(answered));
    }
    let code = |i: usize| (delivered[i].path.as_str(), delivered[i].code);
    assert_eq!(code(2), ("/odometer", 200), "normalised as a batch does");
    assert_eq!(code(3), ("/location", 403), "no read_location");
    assert_eq!(code(16), ("/permissions?limit=2&offset=1", 200));
    assert_eq!(code(17), ("/nope", 404));
    assert_eq!(delivered[2].headers["sc-unit-system"], "metric");
}

#[tokio::test]
async fn failing_receivers_and_retries() {
    let env = start().await;
    let receiver = Receiver::start(amt(&env)).await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, &["read_battery"]);
    let webhook = env.sim.add_webhook(
        &receiver.url,
        WebhookVersion::V3,
        "Flaky",
        &["tractionbattery-stateofcharge"],
    );
    assert_eq!(env.sim.verify_webhook(&webhook).await, Ok(true));
    subscribe(&env, &webhook, &ev).await;
    receiver.nth(2).await; // FIRST_DELIVERY

    // 500 every time: three attempts (two retries), same event id, new delivery ids.
    receiver.set(Mode::Fail);
    env.sim
        .set_webhook_retry_delays(&[Duration::from_millis(10), Duration::from_millis(20)]);
    let outcome = env
        .sim
        .trigger_vehicle_state(&webhook, &ev, &[])
        .await
        .expect("sent");
    assert!(!outcome.delivered);
    assert_eq!(outcome.attempts.len(), 3);
    let mut delivery_ids = std::collections::BTreeSet::new();
    for (i, attempt) in outcome.attempts.iter().enumerate() {
        assert_eq!(attempt.status, Some(500));
        assert_eq!(attempt.error.as_deref(), Some("the receiver answered 500"));
        let (body, _, raw) = receiver.nth(3 + i).await;
        assert_eq!(attempt.body.as_bytes(), &raw[..]);
        assert_eq!(body["eventId"], outcome.event_id.clone().unwrap().as_str());
        delivery_ids.insert(body["meta"]["deliveryId"].as_str().unwrap().to_owned());
    }
    assert_eq!(delivery_ids.len(), 3);
    assert_eq!(receiver.count(), 5);

    // No retries configured: one attempt.
    env.sim.set_webhook_retry_delays(&[]);
    let outcome = env
        .sim
        .trigger_vehicle_state(&webhook, &ev, &[])
        .await
        .expect("sent");
    assert_eq!(outcome.attempts.len(), 1);

    // Too slow: timed out.
    receiver.set(Mode::Slow);
    env.sim.state().world().v3.delivery_timeout = Duration::from_millis(200);
    let outcome = env
        .sim
        .trigger_vehicle_state(&webhook, &ev, &[])
        .await
        .expect("sent");
    assert!(!outcome.delivered);
    assert_eq!(outcome.attempts[0].status, None);
    assert_eq!(outcome.attempts[0].error.as_deref(), Some("timed out"));

    // Nobody listening.
    let closed = env.sim.add_webhook(
        &closed_url().await,
        WebhookVersion::V3,
        "Closed",
        &["tractionbattery-stateofcharge"],
    );
    env.sim
        .state()
        .world()
        .v3
        .verified_webhooks
        .insert(closed.clone());
    subscribe(&env, &closed, &ev).await;
    let outcome = env
        .sim
        .trigger_vehicle_state(&closed, &ev, &[])
        .await
        .expect("sent");
    assert!(!outcome.delivered);
    assert_eq!(
        outcome.attempts[0].error.as_deref(),
        Some("could not connect")
    );

    // Every outcome is in the log, failed ones included.
    let failed = env
        .sim
        .webhook_deliveries()
        .iter()
        .filter(|d| d.event_type == "VEHICLE_STATE" && !d.delivered)
        .count();
    assert!(failed >= 4, "{failed}");
}
