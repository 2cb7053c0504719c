//! Helpers shared by the v3 and webhook integration tests: a simulator with tokens minted in
//! its world, vehicles of a chosen powertrain, HTTP calls, and the check that a body is exactly
//! its generated type (nothing outside the spec).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use smartcar_sim::Simulator;
use smartcar_sim::fleet::{Rng, make_vehicle};
use smartcar_sim::model::{AccessToken, AppToken, Grant, Powertrain};
use smartcar_sim::state::random_id;

/// Every read permission plus the control permissions of the v3 commands.
pub const ALL: &[&str] = &[
    "read_vehicle_info",
    "read_vin",
    "read_odometer",
    "read_location",
    "read_battery",
    "read_charge",
    "read_fuel",
    "read_engine_oil",
    "read_tires",
    "read_security",
    "read_diagnostics",
    "read_service_history",
    "read_extended_vehicle_info",
    "control_charge",
    "control_security",
    "control_navigation",
];

pub struct Env {
    pub sim: Simulator,
    pub http: reqwest::Client,
    pub base: String,
    /// A valid application token (1 hour).
    pub app: String,
}

pub async fn start() -> Env {
    let sim = Simulator::start().await.expect("simulator starts");
    let base = sim.base_url();
    let app = app_token(&sim, Duration::from_secs(3600));
    Env {
        sim,
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        base,
        app,
    }
}

pub fn scopes(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Mints an application token valid for `ttl` of simulated time.
pub fn app_token(sim: &Simulator, ttl: Duration) -> String {
    let token = random_id();
    let now = sim.state().now();
    let mut world = sim.state().world();
    let client_id = world.app.client_id.clone();
    world.app_tokens.insert(
        token.clone(),
        AppToken {
            client_id,
            expires_at: now + chrono::Duration::from_std(ttl).expect("ttl"),
        },
    );
    token
}

/// Mints a user access token (2 hours) reaching `vehicles` with `perms`.
pub fn user_token(sim: &Simulator, user_id: &str, vehicles: &[&str], perms: &[&str]) -> String {
    let token = random_id();
    let now = sim.state().now();
    let mut world = sim.state().world();
    let client_id = world.app.client_id.clone();
    world.access_tokens.insert(
        token.clone(),
        AccessToken {
            grant: Grant {
                client_id,
                user_id: user_id.to_owned(),
                vehicle_ids: vehicles.iter().map(|v| (*v).to_owned()).collect(),
                scopes: scopes(perms),
                family: 99,
            },
            expires_at: now + chrono::Duration::hours(2),
        },
    );
    token
}

/// The id of the fleet's `i`-th user.
pub fn user(sim: &Simulator, i: usize) -> String {
    sim.state().world().users[i].id.clone()
}

/// Adds a vehicle of powertrain `p` to user `user_id`'s account and returns its id.
pub fn add_vehicle(sim: &Simulator, user_id: &str, p: Powertrain) -> String {
    let now = sim.state().now();
    for seed in 10_000..20_000u64 {
        let v = make_vehicle(&mut Rng::new(seed), now);
        if v.powertrain != p {
            continue;
        }
        let mut world = sim.state().world();
        if world.vehicles.contains_key(&v.id) {
            continue;
        }
        let id = v.id.clone();
        world.vehicles.insert(id.clone(), v);
        if let Some(u) = world.users.iter_mut().find(|u| u.id == user_id) {
            u.vehicle_ids.push(id.clone());
        }
        return id;
    }
    panic!("no vehicle with powertrain {p:?}");
}

/// Records a connection of `vehicle_id` by `user_id` with `perms`; returns the connection id.
pub fn connect(sim: &Simulator, user_id: &str, vehicle_id: &str, perms: &[&str]) -> String {
    let now = sim.state().now();
    sim.state()
        .world()
        .connect(user_id, vehicle_id, &scopes(perms), now, random_id)
}

/// A response: status, `sc-request-id` present, JSON body (`Null` when empty).
pub struct Answer {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Value,
}

pub async fn call(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    user: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut request = env.http.request(method, format!("{}{path}", env.base));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(u) = user {
        request = request.header("sc-user-id", u);
    }
    if let Some(b) = body {
        request = request
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("sc-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Answer {
        status,
        request_id,
        body,
    }
}

pub async fn get(env: &Env, path: &str, token: Option<&str>, user: Option<&str>) -> Answer {
    call(env, reqwest::Method::GET, path, token, user, None).await
}

pub async fn post(
    env: &Env,
    path: &str,
    token: Option<&str>,
    user: Option<&str>,
    body: Option<&str>,
) -> Answer {
    call(env, reqwest::Method::POST, path, token, user, body).await
}

pub async fn delete(env: &Env, path: &str, token: Option<&str>) -> Answer {
    call(env, reqwest::Method::DELETE, path, token, None, None).await
}

/// Decodes `value` as `T` and checks that re-serialising the typed value gives exactly the
/// same JSON: no field outside the spec, no field of the wrong type.
pub fn typed<T: DeserializeOwned + Serialize>(value: &Value) -> T {
    let parsed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("not a {}: {e}\n{value:#}", std::any::type_name::<T>()));
    let again = serde_json::to_value(&parsed).expect("serialises");
    assert_eq!(
        &again,
        value,
        "{} does not round-trip (a field outside the spec?)",
        std::any::type_name::<T>()
    );
    parsed
}

/// Asserts a v3 error: the status, `errors[0].status` as a string, the type and code, the
/// `sc-request-id` header, and that the body is exactly a `V3ErrorResponse`.
pub fn assert_v3_error(answer: &Answer, status: u16, kind: &str, code: Option<&str>) {
    assert_eq!(answer.status, status, "{:#}", answer.body);
    typed::<smartcar_api::types::V3ErrorResponse>(&answer.body);
    let error = &answer.body["errors"][0];
    assert_eq!(error["status"], status.to_string());
    assert_eq!(error["type"], kind, "{:#}", answer.body);
    match code {
        Some(c) => assert_eq!(error["code"], c, "{:#}", answer.body),
        None => assert!(error.get("code").is_none_or(Value::is_null)),
    }
    assert!(answer.request_id.is_some(), "sc-request-id");
}
