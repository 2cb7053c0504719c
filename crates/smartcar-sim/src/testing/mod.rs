//! The simulator's test harness (feature `test-support`): what the simulator's own tests, and
//! any other crate's tests, need around a running [`Simulator`]: an HTTP client that does not
//! follow redirects, Connect and token-endpoint calls, tokens and vehicles minted straight into
//! the world (the token endpoints are tested on their own), and checks that a body is exactly
//! a generated type of the spec.
//!
//! [`v2`] and [`v3`] add an environment per API (a simulator, a client, typed answers and the
//! error assertions of each API's shape).
//!
//! These are test helpers: they panic (with a message saying what went wrong) instead of
//! returning errors.

pub mod v2;
pub mod v3;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use smartcar_api::ops;

use crate::Simulator;
use crate::fleet::{Rng, make_vehicle};
use crate::model::{AccessToken, AppToken, Grant, Powertrain};
use crate::state::random_id;

/// A client that does not follow redirects (Connect answers 302s the tests inspect).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// An authorize URL for the simulator's app with the code-flow redirect URI, plus `extra`.
pub fn authorize_url(sim: &Simulator, extra: &str) -> String {
    let app = sim.app();
    let mut url = url::Url::parse(&format!("{}{}", sim.base_url(), ops::AUTHORIZE.path)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", &app.redirect_uris[0])
        .append_pair("scope", "read_odometer required:read_vehicle_info")
        .append_pair("state", "st-1");
    let mut s = url.to_string();
    if !extra.is_empty() {
        s.push('&');
        s.push_str(extra);
    }
    s
}

/// The `Location` of a redirect, parsed.
pub fn location(response: &reqwest::Response) -> url::Url {
    let value = response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header (status {})", response.status()))
        .to_str()
        .unwrap();
    url::Url::parse(value).unwrap()
}

/// A query parameter of a URL.
pub fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The hidden `request` id of a rendered Connect page.
pub fn request_id(html: &str) -> String {
    let marker = "name=\"request\" value=\"";
    let start = html.find(marker).expect("request field") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// Runs Connect in-process and returns the code.
pub fn code_for(sim: &Simulator, extra: &str) -> String {
    let redirect = sim
        .approve(&authorize_url(sim, extra), crate::ApproveOptions::new())
        .expect("approve");
    param(&redirect, "code").expect("code in redirect")
}

/// Exchanges a code with Basic auth; returns (status, JSON body).
pub async fn exchange(sim: &Simulator, code: &str) -> (u16, serde_json::Value) {
    let app = sim.app();
    let response = client()
        .post(format!("{}{}", sim.base_url(), ops::EXCHANGE_TOKEN.path))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", app.redirect_uris[0].as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Refreshes with Basic auth; returns (status, JSON body).
pub async fn refresh(sim: &Simulator, token: &str) -> (u16, serde_json::Value) {
    let app = sim.app();
    let response = client()
        .post(format!("{}{}", sim.base_url(), ops::EXCHANGE_TOKEN.path))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The permissions as a set.
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
    "departureTimers",
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
