//! Shared helpers: a simulator per test, tokens minted straight into the world (the token
//! endpoints are tested elsewhere), vehicles of a chosen powertrain, HTTP helpers, and the check
//! that a body is exactly a generated type of the spec.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use smartcar_sim::Simulator;
use smartcar_sim::fleet::{Rng, make_vehicle};
use smartcar_sim::model::{AccessToken, Grant, Powertrain, Vehicle};
use smartcar_sim::state::random_id;

/// Every permission the v2 API knows.
pub const ALL_SCOPES: &[&str] = &[
    "read_vehicle_info",
    "read_vin",
    "read_odometer",
    "read_location",
    "read_fuel",
    "read_battery",
    "read_charge",
    "read_engine_oil",
    "read_tires",
    "read_security",
    "read_service_history",
    "read_diagnostics",
    "control_security",
    "control_charge",
    "control_navigation",
];

/// A running simulator and an HTTP client.
pub struct Env {
    pub sim: Simulator,
    pub http: reqwest::Client,
    pub base: String,
}

/// A response: status, headers, JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
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
        let state = self.sim.state();
        let now = state.now();
        let scopes: BTreeSet<String> = scopes.iter().map(|s| s.to_string()).collect();
        let mut w = state.world();
        for v in vehicles {
            w.connect(user, v, &scopes, now, random_id);
        }
        let family = w.next_family;
        w.next_family += 1;
        let token = random_id();
        let grant = Grant {
            client_id: w.app.client_id.clone(),
            user_id: user.to_owned(),
            vehicle_ids: vehicles.iter().map(|v| v.to_string()).collect(),
            scopes,
            family,
        };
        w.access_tokens.insert(
            token.clone(),
            AccessToken {
                grant,
                expires_at: now + chrono::Duration::hours(2),
            },
        );
        token
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

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

/// Fields the spec declares nullable (the simulator sends them as explicit `null`) or as
/// lists the simulator sends empty (`[]`), which the generated types leave out when they
/// re-serialise.
const NULLABLE_OR_EMPTY: &[&str] = &[
    "amountRemaining",
    "percentRemaining",
    "range",
    "capacity",
    "url",
    "description",
    "timestamp",
    "serviceId",
    "serviceDate",
    "odometerDistance",
    "taskId",
    "taskDescription",
    "totalCost",
    "currency",
    "serviceTasks",
    "serviceDetails",
    "doors",
    "windows",
    "sunroof",
    "storage",
    "chargingPort",
    "cursor",
    "reason",
    "code",
    "headers",
    "detail",
    "type",
    "value",
];

/// Asserts that `body` decodes as `T` and carries nothing outside it: re-serialising the
/// decoded value gives the same JSON, except for keys `T` leaves out when they are `null` or
/// empty (and those must be known nullable fields).
#[track_caller]
pub fn assert_typed<T: DeserializeOwned + Serialize>(body: &Value) -> T {
    let typed: T = serde_json::from_value(body.clone()).unwrap_or_else(|e| {
        panic!(
            "does not decode as {}: {e}\n{body:#}",
            std::any::type_name::<T>()
        )
    });
    let again = serde_json::to_value(&typed).expect("re-serialises");
    compare(body, &again, "$");
    typed
}

#[track_caller]
fn compare(sent: &Value, typed: &Value, at: &str) {
    match (sent, typed) {
        (Value::Object(s), Value::Object(t)) => {
            for (k, v) in s {
                match t.get(k) {
                    Some(tv) => compare(v, tv, &format!("{at}.{k}")),
                    None => {
                        let empty = v.is_null()
                            || v.as_array().is_some_and(Vec::is_empty)
                            || v.as_object().is_some_and(serde_json::Map::is_empty);
                        assert!(
                            empty && NULLABLE_OR_EMPTY.contains(&k.as_str()),
                            "{at}.{k} = {v} is not in the spec's type"
                        );
                    }
                }
            }
            for k in t.keys() {
                assert!(s.contains_key(k), "{at}.{k} lost");
            }
        }
        (Value::Array(s), Value::Array(t)) => {
            assert_eq!(s.len(), t.len(), "{at}");
            for (i, (a, b)) in s.iter().zip(t).enumerate() {
                compare(a, b, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "{at}");
        }
        (a, b) => assert_eq!(a, b, "{at}"),
    }
}

/// Rounds to two decimals, as the simulator rounds unit-bearing values.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
