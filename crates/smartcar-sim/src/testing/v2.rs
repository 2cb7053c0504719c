//! The v2.0 environment: a simulator, a client, tokens minted for a user's vehicles, and
//! answers with the v2 error assertions.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

pub use super::{assert_typed, round2};
use crate::Simulator;
use crate::fleet::{Rng, make_vehicle};
use crate::model::{Powertrain, Vehicle};

/// Every permission some operation of the spec needs (`Operation::all_permissions`).
pub static ALL_SCOPES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(smartcar_api::op::Operation::all_permissions);

/// A running simulator and an HTTP client.
pub struct Env {
    /// The simulator.
    pub sim: Simulator,
    /// A client (20-second timeout).
    pub http: reqwest::Client,
    /// The simulator's base URL.
    pub base: String,
}

/// A response: status, headers, JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Resp {
    /// The status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The JSON body (`Null` when the body is empty).
    pub body: Value,
}

impl Resp {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a v2 error body of this status, type and code, and returns the body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, kind: &str, code: Option<&str>) -> &Value {
        assert_eq!(self.status, status, "{:#}", self.body);
        assert_eq!(self.body["type"], kind, "{:#}", self.body);
        assert_eq!(self.body["statusCode"], status, "{:#}", self.body);
        match code {
            Some(code) => assert_eq!(self.body["code"], code, "{:#}", self.body),
            None => assert!(
                self.body.get("code").is_none_or(Value::is_null),
                "{:#}",
                self.body
            ),
        }
        assert_typed::<smartcar_api::types::V2Error>(&self.body);
        &self.body
    }

    /// Asserts a 400 `VALIDATION` whose first detail has this message.
    #[track_caller]
    pub fn assert_validation(&self, message: &str) {
        self.assert_error(400, "VALIDATION", None);
        assert_eq!(
            self.body["detail"][0]["message"], message,
            "{:#}",
            self.body
        );
    }
}

impl Env {
    /// Starts a simulator with the default fleet.
    pub async fn start() -> Env {
        let sim = Simulator::start().await.expect("simulator starts");
        let base = sim.base_url();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Env { sim, http, base }
    }

    /// The id of user `i` of the fleet.
    pub fn user(&self, i: usize) -> String {
        self.sim.state().world().users[i].id.clone()
    }

    /// Adds a vehicle of `powertrain` to user 0's account (deterministic: the first vehicle of
    /// that powertrain the catalogue draws from `seed`) and returns its id.
    pub fn add_vehicle(&self, powertrain: Powertrain, seed: u64) -> String {
        let now = self.sim.state().now();
        let mut rng = Rng::new(seed);
        for _ in 0..10_000 {
            let v = make_vehicle(&mut rng, now);
            if v.powertrain == powertrain {
                let id = v.id.clone();
                let mut w = self.sim.state().world();
                w.users[0].vehicle_ids.push(id.clone());
                w.vehicles.insert(id.clone(), v);
                return id;
            }
        }
        panic!("no {powertrain:?} in 10000 draws");
    }

    /// Changes a vehicle in the world.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Vehicle)) {
        self.sim.edit_vehicle(id, f).expect("vehicle exists");
    }

    /// A copy of a vehicle's state.
    pub fn vehicle(&self, id: &str) -> Vehicle {
        self.sim.state().world().vehicles[id].clone()
    }

    /// Mints a 2-hour access token for user `user` reaching `vehicles` with `scopes`, and
    /// records the connections, as a Connect approval would.
    pub fn token(&self, user: &str, vehicles: &[&str], scopes: &[&str]) -> String {
        self.sim
            .mint_access_token(user, vehicles, scopes)
            .access_token
    }

    /// The URL of `path` on the simulator.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends `req` and reads the answer.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// GET with a bearer token.
    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    /// GET with a bearer token and `sc-unit-system`.
    pub async fn get_units(&self, token: &str, path: &str, units: &str) -> Resp {
        self.send(
            self.http
                .get(self.url(path))
                .bearer_auth(token)
                .header("sc-unit-system", units),
        )
        .await
    }

    /// POST a JSON body with a bearer token.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    /// POST a raw body with a bearer token.
    pub async fn post_raw(&self, token: &str, path: &str, body: &'static str) -> Resp {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    /// DELETE with a bearer token.
    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    /// The application's management token and client credentials.
    pub fn app(&self) -> (String, String, String) {
        let w = self.sim.state().world();
        (
            w.app.amt.clone(),
            w.app.client_id.clone(),
            w.app.client_secret.clone(),
        )
    }
}
