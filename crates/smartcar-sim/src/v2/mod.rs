//! The Vehicle API v2.0 (`api.smartcar.com/v2.0`): the user, the vehicle list, every per-vehicle
//! read, the commands, batch and the v2 webhook subscribe/unsubscribe.
//!
//! Every read is one entry of [`reads::READS`]: a function from the vehicle to the JSON body,
//! used both by its own route and by batch, so the two can never answer differently.
//!
//! Conventions of this module (and of `compat.rs` and `management.rs`, which share its helpers):
//! - Checks run in this order: the token (401 `AUTHENTICATION`), the vehicle (400 `VALIDATION`
//!   for an id not shaped like one, 404 `RESOURCE_NOT_FOUND` for an unknown id, 403
//!   `PERMISSION` outside the grant or without the permission, the forced error of a test VIN),
//!   then the request's header, query and body (400
//!   `VALIDATION`), then the vehicle's capability (501 `COMPATIBILITY`) and state (409
//!   `VEHICLE_STATE`). A command that fails changes nothing.
//! - Validation messages are worded like the platform's one documented message, `"requests" is
//!   required` (Joi's style: `"limit" must be less than or equal to 50`), with `detail`
//!   `[{field: [name], message}]`; the exact wording of the others is unverified.
//! - Any path under `/v2.0/` that is not an endpoint, and any endpoint called with a method it
//!   does not have, answers 404 `RESOURCE_NOT_FOUND` / `PATH` (the platform answers unknown routes
//!   that way; we do not answer 405, which Smartcar's error catalogue has no entry for).
//! - Every path is also served with a trailing slash (`/v2.0/vehicles/`, `/v2.0/user/`: the Node
//!   and Go SDKs send those; Python's attributes call sends `/v2.0/vehicles/{id}/`).
//! - The same routes answer under `/v1.0` with v1.0 error bodies ([`v1_errors`]); a
//!   well-formed version segment the spec does not have (`/v99999999.99/…`) is served as v2.0
//!   by the composition root's fallback (`routing::is_version_alias`).
//! - The world is locked once per request, never across an `.await`; bodies are built under the
//!   lock and serialised after it is released.

mod batch;
mod commands;
mod reads;
mod units;
mod webhooks;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use smartcar_api::{ops, types};

use crate::auth;
use crate::error::ApiError;
use crate::model::{Grant, Vehicle, World};
use crate::routing::{Route, v1_segment, v2_segment};
use crate::state::{AppState, Shared};

pub(crate) use batch::Item as BatchItem;
pub(crate) use reads::powertrain_capable;
pub(crate) use units::Units;

/// Routes of the Vehicle API v2.0, and the same routes under `/v1.0`, whose errors come in
/// the v1.0 shape (see [`v1_errors`]).
pub(crate) fn routes() -> Router<AppState> {
    // Unknown paths under /v2.0 (this module owns every /v2.0 path: vehicle API, compatibility,
    // management): 404 with the v2 body instead of the router's empty 404.
    let v2 = table(None).route(&format!("/{}/{{*rest}}", v2_segment()), any(not_found));
    // The same under /v1.0 (the compatibility v1.0 route, `compat`, wins over the catch-all).
    let v1 = table(Some(v1_segment()))
        .route(&format!("/{}/{{*rest}}", v1_segment()), any(not_found))
        .layer(axum::middleware::map_response(v1_errors));
    v2.merge(v1)
}

/// Every route of the vehicle API v2.0 (user, vehicles, reads, commands, batch, webhook
/// subscriptions), under its own path or, with `segment`, under another version segment.
fn table(segment: Option<&'static str>) -> Router<AppState> {
    let add = |r: Router<AppState>, route: Route<AppState>| match segment {
        Some(segment) => both(r, route.under(segment)),
        None => both(r, route),
    };
    let mut r = Router::new();
    r = add(r, Route::new(ops::GET_USER, user));
    r = add(r, Route::new(ops::LIST_VEHICLES, vehicles));
    for read in reads::READS {
        let get_read = move |State(state): State<AppState>,
                             id: Result<Path<String>, PathRejection>,
                             headers: HeaderMap,
                             RawQuery(query): RawQuery| async move {
            reads::serve(&state, id, &headers, query.as_deref(), read)
        };
        let mut route = Route::new(read.op, get_read);
        route = match read.op.id {
            id if id == ops::GET_LOCK_STATUS.id => {
                route.and(ops::CONTROL_SECURITY, commands::security)
            }
            id if id == ops::GET_CHARGE_STATUS.id => {
                route.and(ops::CONTROL_CHARGE, commands::charge)
            }
            id if id == ops::GET_CHARGE_LIMIT.id => {
                route.and(ops::SET_CHARGE_LIMIT, commands::charge_limit)
            }
            _ => route,
        };
        r = add(r, route);
    }
    r = add(r, Route::new(ops::SEND_DESTINATION, commands::destination));
    r = add(r, Route::new(ops::DISCONNECT, commands::disconnect));
    r = add(r, Route::new(ops::BATCH, batch::batch));
    add(
        r,
        Route::new(ops::SUBSCRIBE_WEBHOOK, webhooks::subscribe)
            .and(ops::UNSUBSCRIBE_WEBHOOK, webhooks::unsubscribe),
    )
}

/// The vehicle API under `/v1.0`: the v2.0 routes answer, and every v2 error body becomes the
/// v1.0 body of the same status ([`ApiError::into_v1`]): `{"error": "validation_error",
/// "message": …, "code": null, "statusCode": 400, "requestId": …}`. The official Python SDK
/// 6.17's live end-to-end suite reads `/v1.0/vehicles/bad_id/` as a `validation_error`, an
/// ungranted `/v1.0/…/odometer` as a 403 with `code` null, and `/v1.0/…/odometer` and
/// `/v1.0/…/batch` as successes (Smartcar retired v1.0 in 2023; what else it answered is
/// unverified). Batch items keep v2 error bodies (that suite accepts either shape).
async fn v1_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::v2("SERVER", Some("INTERNAL"))
            .into_v1()
            .into_response();
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v2) if v2.get("type").is_some() => {
            let v1 = ApiError::from_v2_body(status, v2).into_v1();
            let body = serde_json::to_vec(v1.body()).unwrap_or_default();
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// Registers the route at its path and at its path with a trailing `/`, with the same
/// handlers; a method the route lacks answers 404 `RESOURCE_NOT_FOUND` with the v2 body.
pub(crate) fn both(r: Router<AppState>, route: Route<AppState>) -> Router<AppState> {
    route.register(r, not_found)
}

/// 404 `RESOURCE_NOT_FOUND` / `PATH` with the v2 body.
pub(crate) async fn not_found() -> Response {
    ApiError::not_found().into_response()
}

// ---------------------------------------------------------------------------------------------
// Account-level endpoints
// ---------------------------------------------------------------------------------------------

/// `GET /v2.0/user`.
async fn user(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = {
        let world = state.world();
        grant(&state, &world, &headers).map(|g| types::User {
            id: g.user_id.clone(),
        })
    };
    respond(result.map(|body| json(StatusCode::OK, &body, &[])))
}

/// `GET /v2.0/vehicles`: the grant's vehicles (tokens lose a vehicle when its connection is
/// deleted, see `World::disconnect`), paged by `limit` (1–50, default 10) and `offset`.
async fn vehicles(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = Query::parse(query.as_deref());
    let result = {
        let world = state.world();
        grant(&state, &world, &headers).and_then(|g| {
            let limit = query.int("limit", 10, 1, 50)?;
            let offset = query.int("offset", 0, 0, i64::from(i32::MAX))?;
            let ids: Vec<&String> = g
                .vehicle_ids
                .iter()
                .filter(|id| world.vehicles.contains_key(id.as_str()))
                .collect();
            Ok(types::VehicleList {
                paging: types::Paging {
                    count: clamp_i32(ids.len()),
                    offset: clamp_i32(offset as usize),
                },
                vehicles: ids
                    .into_iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .cloned()
                    .collect(),
            })
        })
    };
    respond(result.map(|body| json(StatusCode::OK, &body, &[])))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by compat.rs and management.rs)
// ---------------------------------------------------------------------------------------------

/// The grant of the request's user access token, borrowed from the world (no clone on the hot
/// path): 401 `AUTHENTICATION` when the token is missing, unknown or expired.
pub(crate) use crate::auth::user_grant as grant;

/// Checks that `grant` reaches vehicle `id` with `permission`.
///
/// `contact`: the request goes to the vehicle (reads, commands), so a test VIN's forced error
/// applies; `AUTHENTICATION_FAILED` then carries the re-authentication URL of this simulator in
/// `resolution.url`, as the platform's does. Platform-side requests (permissions, disconnect,
/// webhook subscriptions) never reach the vehicle and are not affected by its forced error.
pub(crate) fn vehicle_access<'w>(
    state: &Shared,
    world: &'w World,
    grant: &Grant,
    id: &str,
    permission: Option<&str>,
    contact: bool,
) -> Result<&'w Vehicle, ApiError> {
    if !world.vehicles.contains_key(id) && !id_shaped(id) {
        // Observed live (python-sdk e2e `test_vehicle_state_error`): `GET
        // /v2.0/vehicles/bad_id/` with a valid token is a 400 whose resolution has no type,
        // not the 404 of an unknown, well-formed id. The message is Joi's (unverified).
        return Err(ApiError::validation(
            "vehicle_id",
            "\"vehicle_id\" must be a valid GUID",
        ));
    }
    if contact {
        return auth::vehicle(world, grant, id, permission).map_err(|e| {
            if e.body().get("code").and_then(Value::as_str) == Some("AUTHENTICATION_FAILED") {
                e.with_resolution_url(reauthenticate_url(
                    &state.base_url,
                    &world.app.client_id,
                    id,
                ))
            } else {
                e
            }
        });
    }
    auth::granted_vehicle(world, grant, id, permission)
}

/// Whether `id` has the shape of a vehicle id: 36 characters, letters and digits in groups of
/// 8-4-4-4-12 (UUIDs; Smartcar's test-data vehicle `tst2e255-…` has letters beyond `f`).
pub(super) fn id_shaped(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_alphanumeric(),
        })
}

/// The Connect re-authentication URL of `AUTHENTICATION_FAILED` (partially built, as the
/// platform's: the application appends `redirect_uri` and `state`).
fn reauthenticate_url(base_url: &str, client_id: &str, vehicle_id: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "vehicle_id")
        .append_pair("client_id", client_id)
        .append_pair("vehicle_id", vehicle_id)
        .finish();
    format!("{base_url}{}?{query}", ops::REAUTHENTICATE.path)
}

/// A path parameter, or 404 when it could not be decoded.
pub(crate) fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(id)| id).map_err(|_| ApiError::not_found())
}

/// A JSON response (`application/json`) with extra headers.
pub(crate) fn json(
    status: StatusCode,
    body: &impl Serialize,
    headers: &[(&'static str, String)],
) -> Response {
    let Ok(bytes) = serde_json::to_vec(body) else {
        return ApiError::v2("SERVER", Some("INTERNAL")).into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            h.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// The response of a handler's result.
pub(crate) fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A typed body as a JSON value (the generated types always serialise).
pub(crate) fn to_value(body: &impl Serialize) -> Value {
    serde_json::to_value(body).unwrap_or(Value::Null)
}

/// Puts `key: value` into a JSON object that lacks it. The generated types leave out `None`
/// and empty lists, while the platform sends explicit `null`s (and `[]`s) for nullable fields
/// the spec lists: this restores them.
pub(crate) fn fill(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.entry(key).or_insert(value);
    }
}

/// `fill` with `null` for every key.
pub(crate) fn fill_nulls(object: &mut Value, keys: &[&str]) {
    for key in keys {
        fill(object, key, Value::Null);
    }
}

/// RFC 3339 with milliseconds and `Z`, as the platform's headers and bodies carry times.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `t` without sub-millisecond digits (bodies then serialise with at most 3 fraction digits).
pub(crate) fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound as _;
    t.trunc_subsecs(3)
}

fn clamp_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The query string's pairs, percent-decoded.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (absent = empty).
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Query(
            raw.map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The first value of `name` (v2.0).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The last value of `name` (v3).
    pub(crate) fn last(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer parameter in `min..=max`, `default` when absent; otherwise 400 `VALIDATION`
    /// with the validator's message.
    pub(crate) fn int(
        &self,
        name: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let raw = raw.trim();
        let n = match raw.parse::<i64>() {
            Ok(n) => n,
            Err(_) => match raw.parse::<f64>() {
                Ok(x) if x.is_finite() && x.fract() != 0.0 => {
                    return Err(ApiError::validation(
                        name,
                        &format!("\"{name}\" must be an integer"),
                    ));
                }
                Ok(x) if x.is_finite() => {
                    // Integral but out of i64: certainly out of range.
                    if x < 0.0 { i64::MIN } else { i64::MAX }
                }
                _ => {
                    return Err(ApiError::validation(
                        name,
                        &format!("\"{name}\" must be a number"),
                    ));
                }
            },
        };
        in_range(name, n, min, max)
    }
}

/// `x` when `min <= x <= max`, else 400 `VALIDATION` with the validator's message.
fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    x: T,
    min: T,
    max: T,
) -> Result<T, ApiError> {
    if x < min {
        return Err(ApiError::validation(
            name,
            &format!("\"{name}\" must be greater than or equal to {min}"),
        ));
    }
    if x > max {
        return Err(ApiError::validation(
            name,
            &format!("\"{name}\" must be less than or equal to {max}"),
        ));
    }
    Ok(x)
}

/// A request body as axum hands it over: a body axum refuses (over its 2 MB limit, or a broken
/// stream) is a rejection we answer ourselves.
pub(crate) type RequestBody = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// The bytes of a request body, or 400 `VALIDATION` when axum could not read it (too large).
pub(crate) fn request_bytes(body: &RequestBody) -> Result<&[u8], ApiError> {
    body.as_deref()
        .map_err(|_| ApiError::validation("body", "\"body\" could not be read (at most 2 MB)"))
}

/// A JSON request body that must be an object: malformed JSON or another type is 400
/// `VALIDATION`.
pub(crate) fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::validation(
            "value",
            "\"value\" must be of type object",
        )),
        Err(_) => Err(ApiError::validation("body", "Invalid JSON in request body")),
    }
}

/// A number field of a command body. Numeric strings (`"0.7"`) are accepted, as a converting
/// validator would (the Node SDK sends the charge limit as a string; the real API's behaviour
/// is unverified).
pub(crate) fn number_field(
    body: &serde_json::Map<String, Value>,
    name: &str,
    min: f64,
    max: f64,
) -> Result<f64, ApiError> {
    let x = match body.get(name) {
        None | Some(Value::Null) => {
            return Err(ApiError::validation(
                name,
                &format!("\"{name}\" is required"),
            ));
        }
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let Some(x) = x.filter(|x| x.is_finite()) else {
        return Err(ApiError::validation(
            name,
            &format!("\"{name}\" must be a number"),
        ));
    };
    in_range(name, x, min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_params() {
        let q = Query::parse(Some("limit=5&offset=x&big=1e30&frac=1.5&neg=-1"));
        assert_eq!(q.int("limit", 10, 1, 50).ok(), Some(5));
        assert_eq!(q.int("absent", 10, 1, 50).ok(), Some(10));
        for (name, msg) in [
            ("offset", "\"offset\" must be a number"),
            ("big", "\"big\" must be less than or equal to 50"),
            ("frac", "\"frac\" must be an integer"),
            ("neg", "\"neg\" must be greater than or equal to 1"),
        ] {
            let e = q.int(name, 10, 1, 50).err();
            let got = e.as_ref().map(|e| e.body()["detail"][0]["message"].clone());
            assert_eq!(got, Some(Value::from(msg)));
        }
    }

    #[test]
    fn vehicle_id_shapes() {
        assert!(id_shaped("0f6f7c4e-0000-4000-8000-000000000000"));
        assert!(id_shaped("tst2e255-d3c8-4f90-9fec-e6e68b98e9cb"));
        for bad in [
            "bad_id",
            "",
            "0f6f7c4e-0000-4000-8000-00000000000",
            "0f6f7c4e_0000-4000-8000-000000000000",
            "0f6f7c4e-0000-4000-8000-00000000000!",
        ] {
            assert!(!id_shaped(bad), "{bad}");
        }
    }

    #[test]
    fn repeated_names() {
        let q = Query::parse(Some("a=1&b=x%20y&a=2"));
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.last("a"), Some("2"));
        assert_eq!(q.last("b"), Some("x y"));
        assert_eq!(q.last("c"), None);
    }

    #[test]
    fn number_fields() {
        let body = json_object(br#"{"a": 0.7, "b": "0.8", "c": "x", "d": true, "e": 2}"#)
            .unwrap_or_default();
        assert_eq!(number_field(&body, "a", 0.5, 1.0).ok(), Some(0.7));
        assert_eq!(number_field(&body, "b", 0.5, 1.0).ok(), Some(0.8));
        for name in ["c", "d", "e", "missing"] {
            assert!(number_field(&body, name, 0.5, 1.0).is_err(), "{name}");
        }
        assert!(json_object(b"[1]").is_err());
        assert!(json_object(b"{").is_err());
        assert_eq!(json_object(b" ").ok().map(|m| m.len()), Some(0));
    }
}
