//! The control API (`/_sim`) over plain HTTP, as a test suite in another language drives it:
//! JSON bodies, the management token as Bearer or Basic `default:<token>`, and every effect
//! checked through the platform's own API (v2.0 reads, Connect, the token endpoint) or a
//! webhook receiver of the test's own on 127.0.0.1.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use smartcar_sim::Simulator;
use smartcar_sim::model::Powertrain;
use smartcar_sim::testing::{add_vehicle, client, param, user};

/// The fixed start of simulated time of every simulator here.
const EPOCH: &str = "2025-01-01T00:00:00Z";

struct Env {
    sim: Simulator,
    http: reqwest::Client,
    base: String,
    amt: String,
}

/// A simulator (seed 7, the default fleet, clock fixed at [`EPOCH`]) and a client that does
/// not follow redirects.
async fn start() -> Env {
    let epoch = chrono::DateTime::parse_from_rfc3339(EPOCH)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let sim = Simulator::builder()
        .seed(7)
        .epoch(epoch)
        .start()
        .await
        .expect("simulator");
    let base = sim.base_url();
    let amt = sim.app().amt;
    Env {
        sim,
        http: client(),
        base,
        amt,
    }
}

/// Status and JSON body (`null` for an empty body).
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

impl Env {
    /// A control request with `Authorization: Bearer <management token>`.
    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.amt);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("send")).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.control(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.control(Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.control(Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.control(Method::DELETE, path, None).await
    }

    /// A v2.0 read with a user access token.
    async fn api(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("send");
        answer(response).await
    }

    /// The first user's first vehicle and a token reaching it with `scopes`.
    fn first_vehicle(&self, scopes: &[&str]) -> (String, String) {
        let owner = &self.sim.users()[0];
        let vehicle = owner.vehicle_ids[0].clone();
        let token = self
            .sim
            .mint_access_token(&owner.id, &[vehicle.as_str()], scopes)
            .access_token;
        (vehicle, token)
    }
}

fn odometer(vehicle: &str) -> String {
    format!("/v2.0/vehicles/{vehicle}/odometer")
}

#[tokio::test]
async fn every_control_request_needs_the_management_token() {
    let env = start().await;
    let url = |path: &str| format!("{}{path}", env.base);
    let unauthorized = |body: &Value| {
        assert_eq!(body["error"], "unauthorized", "{body}");
        let message = body["message"].as_str().expect("message");
        assert!(message.contains("management token"), "{message}");
    };
    for path in ["/_sim", "/_sim/clock", "/_sim/vehicles", "/_sim/requests"] {
        // No token.
        let (status, body) = answer(env.http.get(url(path)).send().await.unwrap()).await;
        assert_eq!(status, 401, "{path}");
        unauthorized(&body);
        // A wrong Bearer token, a wrong Basic password, the right token under another user.
        for request in [
            env.http.get(url(path)).bearer_auth("not-the-token"),
            env.http.get(url(path)).basic_auth("default", Some("wrong")),
            env.http.get(url(path)).basic_auth("admin", Some(&env.amt)),
            // The client secret is not the management token.
            env.http
                .get(url(path))
                .bearer_auth(env.sim.app().client_secret),
        ] {
            let (status, body) = answer(request.send().await.unwrap()).await;
            assert_eq!(status, 401, "{path}");
            unauthorized(&body);
        }
        // Bearer and Basic `default:<token>` both pass.
        let bearer = env.http.get(url(path)).bearer_auth(&env.amt);
        assert_eq!(bearer.send().await.unwrap().status(), 200, "{path}");
        let basic = env
            .http
            .get(url(path))
            .basic_auth("default", Some(&env.amt));
        assert_eq!(basic.send().await.unwrap().status(), 200, "{path}");
    }
    // A refused request changes nothing.
    let refused = env
        .http
        .post(url("/_sim/clock/advance"))
        .json(&json!({"seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let (_, clock) = env.get("/_sim/clock").await;
    assert_eq!(clock["now"], EPOCH);
}

#[tokio::test]
async fn the_overview_names_the_application_without_its_secrets() {
    let env = start().await;
    let app = env.sim.app();
    let response = env
        .http
        .get(format!("{}/_sim", env.base))
        .basic_auth("default", Some(&env.amt))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(&app.client_secret),
        "client secret in {text}"
    );
    assert!(!text.contains(&env.amt), "management token in {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["base_url"], env.base);
    assert_eq!(body["seed"], 7);
    assert_eq!(body["now"], EPOCH);
    let application = body["application"].as_object().expect("application");
    let mut keys: Vec<&str> = application.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_id",
            "name",
            "redirect_uris",
            "user_id_redirect_uris"
        ]
    );
    assert_eq!(application["client_id"], app.client_id.as_str());
    assert_eq!(application["name"], app.name.as_str());
    assert_eq!(application["redirect_uris"], json!(app.redirect_uris));
    assert_eq!(
        application["user_id_redirect_uris"],
        json!(app.user_id_redirect_uris)
    );
    // The users and their vehicles, as the handle sees them.
    let users: Vec<Value> = env
        .sim
        .users()
        .iter()
        .map(|u| json!({"id": u.id, "email": u.email, "vehicle_ids": u.vehicle_ids}))
        .collect();
    assert_eq!(body["users"], json!(users));
    // The fleet's vehicles (Smartcar's v3 test-data vehicle, `tst2e255-…`, which no user
    // owns, aside).
    let mut listed: Vec<&str> = body["vehicles"]
        .as_array()
        .expect("vehicles")
        .iter()
        .map(|v| v["id"].as_str().expect("id"))
        .filter(|id| !id.starts_with("tst2e255-"))
        .collect();
    listed.sort_unstable();
    let fleet = env.sim.vehicles();
    let mut expected: Vec<&str> = fleet.iter().map(|v| v.id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert_eq!(expected.len(), 6);
}

#[tokio::test]
async fn advancing_the_clock_moves_now_and_expires_tokens() {
    let env = start().await;
    let (vehicle, token) = env.first_vehicle(&["read_odometer"]);
    let (status, clock) = env.get("/_sim/clock").await;
    assert_eq!(status, 200);
    assert_eq!(clock["now"], EPOCH);
    assert_eq!(clock["offset_seconds"].as_f64(), Some(0.0));
    assert_eq!(env.api(&token, &odometer(&vehicle)).await.0, 200);

    // One hour: the token (two hours) still works.
    let (status, clock) = env
        .post("/_sim/clock/advance", json!({"seconds": 3600}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(clock["now"], "2025-01-01T01:00:00Z");
    assert_eq!(clock["offset_seconds"].as_f64(), Some(3600.0));
    assert_eq!(env.api(&token, &odometer(&vehicle)).await.0, 200);

    // Three hours in all: expired.
    let (status, clock) = env
        .post("/_sim/clock/advance", json!({"seconds": 7200}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(clock["now"], "2025-01-01T03:00:00Z");
    assert_eq!(clock["offset_seconds"].as_f64(), Some(10800.0));
    let (status, body) = env.api(&token, &odometer(&vehicle)).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "AUTHENTICATION");
    assert_eq!(env.sim.now().to_rfc3339(), "2025-01-01T03:00:00+00:00");

    // Backwards, too far, not a number: 400 with a message, and the clock stays.
    for seconds in [json!(-1), json!(-3600.5), json!(1e12), json!(315_360_001)] {
        let (status, body) = env
            .post("/_sim/clock/advance", json!({ "seconds": seconds }))
            .await;
        assert_eq!(status, 400, "{seconds}");
        assert_eq!(
            body,
            json!({
                "error": "invalid_request",
                "message": "`seconds` must be a number from 0 to 315360000 (time only moves forward)",
            })
        );
    }
    for bad in [json!({"seconds": "7200"}), json!({}), json!({"secs": 1})] {
        let (status, body) = env.post("/_sim/clock/advance", bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"], "invalid_request");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("invalid JSON body: "), "{message}");
    }
    let (_, clock) = env.get("/_sim/clock").await;
    assert_eq!(clock["now"], "2025-01-01T03:00:00Z");
}

#[tokio::test]
async fn a_counted_fault_answers_once_then_the_route_answers() {
    let env = start().await;
    let (vehicle, token) = env.first_vehicle(&["read_odometer"]);
    let (status, created) = env
        .post(
            "/_sim/faults",
            json!({
                "fault": {"type": "status", "status": 503},
                "path": "/v2.0/vehicles/*/odometer",
                "times": 1,
            }),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_u64().expect("numeric id");
    assert_eq!(created, json!({ "id": id }));

    let (status, _) = env.api(&token, &odometer(&vehicle)).await;
    assert_eq!(status, 503);
    let (status, body) = env.api(&token, &odometer(&vehicle)).await;
    assert_eq!(status, 200);
    assert!(body["distance"].is_number(), "{body}");

    let (status, hits) = env.get(&format!("/_sim/faults/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(hits, json!({ "id": id, "hits": 1 }));

    // Another path is untouched by a rule on the odometer.
    let (status, _) = env
        .post(
            "/_sim/faults",
            json!({"fault": {"type": "status", "status": 500}, "path": "/v2.0/vehicles/*/location"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(env.api(&token, &odometer(&vehicle)).await.0, 200);

    let (status, body) = env.delete(&format!("/_sim/faults/{id}")).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) = env.get("/_sim/faults/not-a-number").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn malformed_fault_rules_are_refused_with_a_message() {
    let env = start().await;
    let cases = [
        (
            json!({"fault": {"type": "error", "error_type": "NOPE", "code": "NEVER"}}),
            "no error NOPE.NEVER in the platform's catalogue (see smartcar.com/docs/errors)",
        ),
        (
            json!({"fault": {"type": "status", "status": 99}}),
            "`status` must be an HTTP status, found 99",
        ),
        (
            json!({"fault": {"type": "status", "status": 500}, "path": "v2.0/vehicles"}),
            "`path` must start with `/` (`/v2.0/vehicles/*/odometer`)",
        ),
        (
            json!({"fault": {"type": "status", "status": 500}, "times": 0}),
            "`times` must be at least 1 (leave it out: always)",
        ),
        (
            json!({"fault": {"type": "status", "status": 500}, "probability": 1.5}),
            "`probability` must be between 0 and 1",
        ),
        (
            json!({"fault": {"type": "delay", "ms": 3_600_001}}),
            "`ms` must be at most 3600000 (one hour)",
        ),
    ];
    for (rule, message) in cases {
        let (status, body) = env.post("/_sim/faults", rule.clone()).await;
        assert_eq!(status, 400, "{rule}");
        assert_eq!(
            body,
            json!({"error": "invalid_request", "message": message}),
            "{rule}"
        );
    }
    // An unknown fault type: the JSON decoder's message names it.
    let (status, body) = env
        .post("/_sim/faults", json!({"fault": {"type": "meteor"}}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid JSON body: unknown variant `meteor`"),
        "{message}"
    );
    // Nothing was installed: reads succeed.
    let (vehicle, token) = env.first_vehicle(&["read_odometer"]);
    assert_eq!(env.api(&token, &odometer(&vehicle)).await.0, 200);
}

#[tokio::test]
async fn a_rule_on_every_path_never_locks_out_the_control_api() {
    let env = start().await;
    let (vehicle, token) = env.first_vehicle(&["read_odometer"]);
    let (status, created) = env
        .post(
            "/_sim/faults",
            json!({"fault": {"type": "status", "status": 500}, "path": "/**"}),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_u64().unwrap();
    assert_eq!(env.api(&token, &odometer(&vehicle)).await.0, 500);
    assert_eq!(env.api(&token, "/v2.0/vehicles").await.0, 500);

    // The control API itself still answers.
    let (status, clock) = env.get("/_sim/clock").await;
    assert_eq!(status, 200);
    assert_eq!(clock["now"], EPOCH);
    let (status, hits) = env.get(&format!("/_sim/faults/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(hits, json!({ "id": id, "hits": 2 }));

    let (status, body) = env.delete("/_sim/faults").await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) = env.api(&token, &odometer(&vehicle)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.api(&token, "/v2.0/vehicles").await.0, 200);
}

#[tokio::test]
async fn vehicle_edits_show_through_the_api() {
    let env = start().await;
    let owner = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &owner, Powertrain::Bev);
    let token = env
        .sim
        .mint_access_token(
            &owner,
            &[ev.as_str()],
            &["read_security", "read_odometer", "read_battery"],
        )
        .access_token;

    let (status, edited) = env
        .patch(
            &format!("/_sim/vehicles/{ev}"),
            json!({"locked": false, "battery_percent": 0.42, "odometer_km": 12345.6}),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["id"], ev.as_str());
    assert_eq!(edited["locked"], false);
    assert_eq!(edited["battery_percent"].as_f64(), Some(0.42));
    assert_eq!(edited["odometer_km"].as_f64(), Some(12345.6));
    assert_eq!(edited["powertrain"], "BEV");
    // The control API's view of the vehicle is the edited one.
    let (status, read) = env.get(&format!("/_sim/vehicles/{ev}")).await;
    assert_eq!(status, 200);
    assert_eq!(read, edited);

    // And so is the platform's.
    let (status, security) = env
        .api(&token, &format!("/v2.0/vehicles/{ev}/security"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(security["isLocked"], false);
    let (status, distance) = env.api(&token, &odometer(&ev)).await;
    assert_eq!(status, 200);
    assert_eq!(distance["distance"].as_f64(), Some(12345.6));
    let (status, battery) = env
        .api(&token, &format!("/v2.0/vehicles/{ev}/battery"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(battery["percentRemaining"].as_f64(), Some(0.42));

    // Back the other way.
    let (status, _) = env
        .patch(&format!("/_sim/vehicles/{ev}"), json!({"locked": true}))
        .await;
    assert_eq!(status, 200);
    let (_, security) = env
        .api(&token, &format!("/v2.0/vehicles/{ev}/security"))
        .await;
    assert_eq!(security["isLocked"], true);

    let (status, body) = env
        .patch("/_sim/vehicles/nope", json!({"locked": true}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": "not_found", "message": "no vehicle nope"})
    );
    let (status, body) = env
        .patch(
            &format!("/_sim/vehicles/{ev}"),
            json!({"battery_percent": 1.5}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "`battery_percent` is a fraction from 0 to 1, found 1.5"
    );
}

#[tokio::test]
async fn battery_fields_on_an_ice_vehicle_are_refused_and_change_nothing() {
    let env = start().await;
    let owner = user(&env.sim, 0);
    let ice = add_vehicle(&env.sim, &owner, Powertrain::Ice);
    let path = format!("/_sim/vehicles/{ice}");
    let (status, before) = env.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(before["powertrain"], "ICE");
    assert_eq!(before["battery_percent"], Value::Null);
    let locked = before["locked"].as_bool().unwrap();

    for patch in [
        json!({"battery_percent": 0.5, "locked": !locked, "odometer_km": 1.0}),
        json!({"plugged_in": true}),
        json!({"charging": true}),
        json!({"charge_limit": 0.8}),
    ] {
        let (status, body) = env.patch(&path, patch.clone()).await;
        assert_eq!(status, 400, "{patch}");
        assert_eq!(
            body,
            json!({
                "error": "invalid_request",
                "message": format!("vehicle {ice} (ICE) has no traction battery"),
            }),
            "{patch}"
        );
    }
    let (_, after) = env.get(&path).await;
    assert_eq!(after, before);
    // Fuel is fine on it.
    let (status, edited) = env.patch(&path, json!({"fuel_percent": 0.25})).await;
    assert_eq!(status, 200);
    assert_eq!(edited["fuel_percent"].as_f64(), Some(0.25));
}

#[tokio::test]
async fn a_forced_error_fails_reads_until_cleared() {
    let env = start().await;
    let (vehicle, token) = env.first_vehicle(&["read_odometer"]);
    let path = format!("/_sim/vehicles/{vehicle}");

    let (status, edited) = env
        .patch(
            &path,
            json!({"forced_error": {"type": "VEHICLE_STATE", "code": "ASLEEP"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        edited["forced_error"],
        json!({"type": "VEHICLE_STATE", "code": "ASLEEP"})
    );
    for _ in 0..2 {
        let (status, body) = env.api(&token, &odometer(&vehicle)).await;
        assert_eq!(status, 409);
        assert_eq!(body["type"], "VEHICLE_STATE");
        assert_eq!(body["code"], "ASLEEP");
    }

    // Unknown errors are refused (and the forced one stays).
    let (status, body) = env
        .patch(
            &path,
            json!({"forced_error": {"type": "VEHICLE_STATE", "code": "DREAMING"}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "no error VEHICLE_STATE.DREAMING in the platform's catalogue"
    );
    assert_eq!(env.api(&token, &odometer(&vehicle)).await.0, 409);

    // Another field leaves it in place; `null` clears it.
    let (_, edited) = env.patch(&path, json!({"locked": true})).await;
    assert_eq!(
        edited["forced_error"],
        json!({"type": "VEHICLE_STATE", "code": "ASLEEP"})
    );
    let (status, edited) = env.patch(&path, json!({"forced_error": null})).await;
    assert_eq!(status, 200);
    assert_eq!(edited["forced_error"], Value::Null);
    let (status, body) = env.api(&token, &odometer(&vehicle)).await;
    assert_eq!(status, 200, "{body}");
}

fn hmac_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// A webhook receiver on 127.0.0.1: answers `VERIFY` challenges with their HMAC and records
/// every delivery (headers and raw body).
#[derive(Clone)]
struct Receiver {
    amt: String,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    url: String,
}

impl Receiver {
    async fn start(amt: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let receiver = Receiver {
            amt: amt.to_owned(),
            got: Arc::new(Mutex::new(Vec::new())),
            url,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    fn deliveries(&self) -> Vec<(HeaderMap, Bytes)> {
        self.got.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.got.lock().unwrap().push((headers, body));
    match json["data"]["challenge"].as_str() {
        Some(challenge) => {
            axum::Json(json!({ "challenge": hmac_hex(&r.amt, challenge.as_bytes()) }))
                .into_response()
        }
        None => axum::http::StatusCode::OK.into_response(),
    }
}

#[tokio::test]
async fn a_webhook_registered_verified_and_triggered_over_http() {
    let env = start().await;
    let receiver = Receiver::start(&env.amt).await;
    let (vehicle, _) = env.first_vehicle(&["read_odometer"]);
    let owner = &env.sim.users()[0];
    let user_token = env
        .sim
        .mint_access_token(&owner.id, &[vehicle.as_str()], &["read_odometer"])
        .access_token;

    let (status, created) = env
        .post(
            "/_sim/webhooks",
            json!({"callback_url": receiver.url, "version": "v3", "name": "Control"}),
        )
        .await;
    assert_eq!(status, 201);
    let webhook = created["id"].as_str().expect("id").to_owned();

    // Not verified yet: a trigger is refused.
    let trigger = format!("/_sim/webhooks/{webhook}/trigger");
    let event = json!({"event": "VEHICLE_STATE", "vehicle_id": vehicle});
    let (status, body) = env.post(&trigger, event.clone()).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "webhook_error");

    let (status, verified) = env
        .post(&format!("/_sim/webhooks/{webhook}/verify"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["delivery"]["webhook_id"], webhook.as_str());
    assert_eq!(verified["delivery"]["event_type"], "VERIFY");
    assert_eq!(verified["delivery"]["delivered"], true);
    assert_eq!(receiver.deliveries().len(), 1);

    // Verified but the vehicle is not subscribed: still refused.
    let (status, body) = env.post(&trigger, event.clone()).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "webhook_error");

    // Subscribe through the v2.0 API with the user's token.
    let subscribed = env
        .http
        .post(format!(
            "{}/v2.0/vehicles/{vehicle}/webhooks/{webhook}",
            env.base
        ))
        .bearer_auth(&user_token)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(subscribed).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"webhookId": webhook, "vehicleId": vehicle}));

    let (status, delivery) = env.post(&trigger, event).await;
    assert_eq!(status, 200, "{delivery}");
    assert_eq!(delivery["delivered"], true);
    assert_eq!(delivery["webhook_id"], webhook.as_str());
    assert_eq!(delivery["event_type"], "VEHICLE_STATE");
    assert_eq!(delivery["vehicle_ids"], json!([vehicle]));
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], 200);

    // The receiver got it, signed over the raw body with the management token.
    let got = receiver.deliveries();
    assert_eq!(got.len(), 2);
    let (headers, raw) = &got[1];
    let signature = headers["sc-signature"].to_str().unwrap();
    assert_eq!(signature, hmac_hex(&env.amt, raw));
    assert_eq!(attempts[0]["signature"], signature);
    assert_eq!(attempts[0]["body"].as_str().unwrap().as_bytes(), &raw[..]);
    let body: Value = serde_json::from_slice(raw).unwrap();
    assert_eq!(body["eventType"], "VEHICLE_STATE");
    assert_eq!(body["vehicleId"], vehicle.as_str());
    assert_eq!(body["meta"]["webhookId"], webhook.as_str());
    assert_eq!(
        Some(body["eventId"].clone()),
        Some(delivery["event_id"].clone())
    );

    // The delivery log lists both.
    let (status, log) = env.get("/_sim/webhooks/deliveries").await;
    assert_eq!(status, 200);
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0]["event_type"], "VERIFY");
    assert_eq!(deliveries[1], delivery);

    // Removed: unknown from then on.
    let (status, _) = env.delete(&format!("/_sim/webhooks/{webhook}")).await;
    assert_eq!(status, 204);
    let (status, body) = env.delete(&format!("/_sim/webhooks/{webhook}")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn the_request_log_names_operations_masks_credentials_and_empties() {
    let env = start().await;
    let (vehicle, token) = env.first_vehicle(&["read_odometer"]);
    assert_eq!(env.api(&token, &odometer(&vehicle)).await.0, 200);

    let response = env
        .http
        .get(format!("{}/_sim/requests", env.base))
        .bearer_auth(&env.amt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains(&token), "access token in the log: {text}");
    assert!(!text.contains(&env.amt), "management token in the log");
    let log: Value = serde_json::from_str(&text).unwrap();
    let requests = log["requests"].as_array().unwrap();
    // Nothing but the read was sent before (the log's own listing is logged once answered).
    assert_eq!(requests.len(), 1, "{text}");
    let read = &requests[0];
    assert_eq!(read["method"], "GET");
    assert_eq!(read["path"], odometer(&vehicle));
    assert_eq!(read["template"], "/v2.0/vehicles/{vehicle_id}/odometer");
    assert_eq!(read["operation"], "get_odometer");
    assert_eq!(read["status"], 200);
    assert_eq!(read["fault"], Value::Null);
    let headers = read["headers"].as_array().unwrap();
    assert!(
        headers.contains(&json!(["authorization", "Bearer ***"])),
        "{headers:?}"
    );

    // The control request itself is logged, its credential masked too.
    let (_, log) = env.get("/_sim/requests").await;
    let requests = log["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1]["path"], "/_sim/requests");
    assert_eq!(requests[1]["operation"], Value::Null);
    assert!(
        requests[1]["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["authorization", "Bearer ***"]))
    );

    let (status, body) = env.delete("/_sim/requests").await;
    assert_eq!((status, body), (204, Value::Null));
    // Only the emptying request itself, logged once it answered.
    let (status, log) = env.get("/_sim/requests").await;
    assert_eq!(status, 200);
    let requests = log["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{log}");
    assert_eq!(requests[0]["method"], "DELETE");
    assert_eq!(requests[0]["path"], "/_sim/requests");
    assert_eq!(requests[0]["status"], 204);
}

#[tokio::test]
async fn counters_count_each_operation() {
    let env = start().await;
    let owner = &env.sim.users()[0];
    let vehicle = owner.vehicle_ids[0].clone();
    let token = env
        .sim
        .mint_access_token(
            &owner.id,
            &[vehicle.as_str()],
            &["read_odometer", "read_security"],
        )
        .access_token;
    for _ in 0..3 {
        assert_eq!(env.api(&token, &odometer(&vehicle)).await.0, 200);
    }
    let security = format!("/v2.0/vehicles/{vehicle}/security");
    assert_eq!(env.api(&token, &security).await.0, 200);

    let (status, counters) = env.get("/_sim/counters").await;
    assert_eq!(status, 200);
    assert_eq!(
        counters["operations"],
        json!({"get_odometer": 3, "get_lock_status": 1})
    );
    // Four reads and this request.
    assert_eq!(counters["total_requests"], 5);
    assert_eq!(counters["refreshes"], 0);
    let (_, again) = env.get("/_sim/counters").await;
    assert_eq!(again["total_requests"], 6);
    assert_eq!(again["operations"], counters["operations"]);
}

/// A Connect URL for the simulator's application, built from `sim.app()`.
fn connect_url(env: &Env, client_id: &str) -> String {
    let app = env.sim.app();
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", env.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &app.redirect_uris[0])
        .append_pair("scope", "read_odometer")
        .append_pair("state", "ctl-1");
    url.into()
}

#[tokio::test]
async fn connect_is_answered_without_a_browser() {
    let env = start().await;
    let app = env.sim.app();
    let (status, body) = env
        .post(
            "/_sim/connect/approve",
            json!({"url": connect_url(&env, &app.client_id)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let redirect = url::Url::parse(body["redirect"].as_str().expect("redirect")).unwrap();
    assert_eq!(
        redirect.as_str().split('?').next(),
        Some(app.redirect_uris[0].as_str())
    );
    let code = param(&redirect, "code").expect("code");
    assert!(redirect.as_str().contains("code="));
    assert_eq!(param(&redirect, "state").as_deref(), Some("ctl-1"));

    // The code is a real one: the token endpoint takes it once.
    let (status, tokens) = smartcar_sim::testing::exchange(&env.sim, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, permissions) = env
        .api(
            access,
            &format!(
                "/v2.0/vehicles/{}/permissions",
                env.sim.users()[0].vehicle_ids[0]
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(permissions["permissions"], json!(["read_odometer"]));

    // Deny: the redirect carries the error.
    let (status, body) = env
        .post(
            "/_sim/connect/approve",
            json!({"url": connect_url(&env, &app.client_id), "deny": true}),
        )
        .await;
    assert_eq!(status, 200);
    let redirect = url::Url::parse(body["redirect"].as_str().unwrap()).unwrap();
    assert_eq!(param(&redirect, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&redirect, "code"), None);

    // A client id no application has: Connect shows an error page, no redirect.
    let (status, body) = env
        .post(
            "/_sim/connect/approve",
            json!({"url": connect_url(&env, "not-a-client")}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({
            "error": "connect_did_not_redirect",
            "message": "Connect answered 400 without redirecting: Invalid client_id: no \
                        application is registered with this id.",
        })
    );
}

#[tokio::test]
async fn a_connect_code_expires_with_the_advanced_clock() {
    // The clock moved through the control API governs codes too (ten minutes).
    let env = start().await;
    let app = env.sim.app();
    let (_, body) = env
        .post(
            "/_sim/connect/approve",
            json!({"url": connect_url(&env, &app.client_id)}),
        )
        .await;
    let redirect = url::Url::parse(body["redirect"].as_str().unwrap()).unwrap();
    let code = param(&redirect, "code").unwrap();
    let (status, _) = env
        .post("/_sim/clock/advance", json!({"seconds": 601}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = smartcar_sim::testing::exchange(&env.sim, &code).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        format!("Invalid code: {code}.").as_str()
    );
}
