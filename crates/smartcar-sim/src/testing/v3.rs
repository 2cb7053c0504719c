//! The v3 environment: a simulator with an application token, calls with a bearer token and
//! `sc-user-id`, and the v3 error assertion.

use std::time::Duration;

use serde_json::Value;

pub use super::{add_vehicle, app_token, connect, scopes, typed, user, user_token};
use crate::Simulator;

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

/// A running simulator, a client, and an application token.
pub struct Env {
    /// The simulator.
    pub sim: Simulator,
    /// A client.
    pub http: reqwest::Client,
    /// The simulator's base URL.
    pub base: String,
    /// A valid application token (1 hour).
    pub app: String,
}

/// Starts a simulator (default fleet) and mints a 1-hour application token.
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

/// A response: status, `sc-request-id` present, JSON body (`Null` when empty).
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The `sc-request-id` header.
    pub request_id: Option<String>,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

/// Sends `method path` with an optional bearer token, `sc-user-id` and JSON body.
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

/// `GET`, see [`call`].
pub async fn get(env: &Env, path: &str, token: Option<&str>, user: Option<&str>) -> Answer {
    call(env, reqwest::Method::GET, path, token, user, None).await
}

/// `POST`, see [`call`].
pub async fn post(
    env: &Env,
    path: &str,
    token: Option<&str>,
    user: Option<&str>,
    body: Option<&str>,
) -> Answer {
    call(env, reqwest::Method::POST, path, token, user, body).await
}

/// `DELETE` with a bearer token, see [`call`].
pub async fn delete(env: &Env, path: &str, token: Option<&str>) -> Answer {
    call(env, reqwest::Method::DELETE, path, token, None, None).await
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
