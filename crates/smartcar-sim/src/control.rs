//! The control API: what the Rust handle's controls do, over HTTP, for test suites in any
//! language. Every path is under [`sim_paths::CONTROL`] (`/_sim`), which no Smartcar host uses,
//! and every request must carry the application management token, as `Authorization: Bearer
//! <token>` or Basic `default:<token>` (the Management API's two forms). Bodies are JSON;
//! errors are `{"error": "...", "message": "..."}` with a 4xx status. Faults never apply to
//! these paths (a fault rule on `/**` cannot lock a test out of clearing it).
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /_sim` | the application (no secrets), the clock, users and vehicles |
//! | `GET /_sim/clock` | simulated now and the offset from the wall clock |
//! | `POST /_sim/clock/advance` `{"seconds": 7200}` | moves simulated time forward |
//! | `POST /_sim/faults` `{"fault": {...}, "path", "method", "vehicle_id", "probability", "times"}` | installs a fault rule, answers `{"id"}` |
//! | `GET /_sim/faults/{id}` | `{"id", "hits"}` |
//! | `DELETE /_sim/faults/{id}` / `DELETE /_sim/faults` | removes one rule / every rule |
//! | `GET /_sim/vehicles` / `GET /_sim/vehicles/{id}` | vehicles' state |
//! | `PATCH /_sim/vehicles/{id}` `{"locked": false, "battery_percent": 0.8, ...}` | edits a vehicle |
//! | `POST /_sim/webhooks` `{"callback_url", "version": "v3", "name", "signals": [...]}` | registers a webhook (as the Dashboard does), answers `{"id"}` |
//! | `DELETE /_sim/webhooks/{id}` | removes it |
//! | `POST /_sim/webhooks/{id}/verify` | sends the `VERIFY` challenge, answers the delivery |
//! | `POST /_sim/webhooks/{id}/trigger` `{"event": "VEHICLE_STATE", ...}` | sends an event, answers the delivery |
//! | `GET /_sim/webhooks/deliveries` | every delivery with its attempts |
//! | `PUT /_sim/webhooks/retry-delays` `{"seconds": [25, 50, 100]}` | waits before each retry |
//! | `GET /_sim/requests` / `DELETE /_sim/requests` | the request log (secrets masked) / empties it |
//! | `GET /_sim/counters` | requests in all and per operation, refreshes, connections |
//! | `POST /_sim/connect/approve` `{"url", "email", "vehicle_ids", "deny"}` | answers a Connect URL without a browser, answers `{"redirect"}` |
//! | `GET /_sim/limits` | the request limits in force and their counters |
//! | `PUT /_sim/limits` `{"app": "120/2", "vehicle": "2/120", "monthly_allowance": 500}` | sets them (`null` or absent: off; `{"platform": true}`: the docs' values) |
//! | `DELETE /_sim/limits/usage` | forgets usage: bucket full, windows and months start over |
//! | `GET /_sim/limits/usage/{vehicle_id}` | calls billed to the vehicle this (simulated) month |
//!
//! The handle ([`crate::Simulator`]) calls the same functions.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::connect::{self, Action, Decision};
use crate::faults::{Fault, Faults};
use crate::model::{DeliveryOutcome, Vehicle, WebhookError, WebhookVersion};
use crate::routing::sim_paths;
use crate::state::{AppState, Shared};
use crate::{auth, webhooks};

/// Routes of the control API, every one behind the management token ([`require_token`]).
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let p = |tail: &str| format!("{}{tail}", sim_paths::CONTROL);
    Router::new()
        .route(&p(""), get(overview))
        .route(&p("/clock"), get(clock))
        .route(&p("/clock/advance"), post(advance))
        .route(&p("/faults"), post(add_fault).delete(clear_faults))
        .route(&p("/faults/{id}"), get(fault_hits).delete(remove_fault))
        .route(&p("/vehicles"), get(vehicles))
        .route(&p("/vehicles/{id}"), get(vehicle).patch(edit_vehicle))
        .route(&p("/webhooks"), post(add_webhook))
        .route(&p("/webhooks/deliveries"), get(deliveries)) // path-literal: under /_sim
        .route(&p("/webhooks/retry-delays"), put(retry_delays)) // path-literal: under /_sim
        .route(&p("/webhooks/{id}"), delete(remove_webhook)) // path-literal: under /_sim
        .route(&p("/webhooks/{id}/verify"), post(verify_webhook))
        .route(&p("/webhooks/{id}/trigger"), post(trigger_webhook))
        .route(&p("/requests"), get(requests).delete(clear_requests))
        .route(&p("/counters"), get(counters))
        .route(&p("/connect/approve"), post(approve))
        .route(&p("/limits"), get(limits).put(set_limits))
        .route(&p("/limits/usage"), delete(reset_usage))
        .route(&p("/limits/usage/{vehicle_id}"), get(vehicle_usage))
        .route_layer(axum::middleware::from_fn_with_state(state, require_token))
}

/// The one place the control API checks the management token: in front of every route.
async fn require_token(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match authorize(&state, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused.into_response(),
    }
}

/// A failed control request: status, machine-readable code, what to do.
struct Failure(StatusCode, &'static str, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let Failure(status, error, message) = self;
        (
            status,
            axum::Json(json!({ "error": error, "message": message })),
        )
            .into_response()
    }
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, "invalid_request", message.into())
}

fn not_found(message: impl Into<String>) -> Failure {
    Failure(StatusCode::NOT_FOUND, "not_found", message.into())
}

type Answer = Result<Response, Failure>;

fn ok(value: Value) -> Answer {
    Ok(axum::Json(value).into_response())
}

/// The management token, as Bearer or Basic `default:<token>`.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Failure> {
    let world = shared.world();
    if auth::management_bearer(&world, headers).is_ok()
        || auth::management_basic(&world, headers).is_ok()
    {
        return Ok(());
    }
    Err(Failure(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "The control API needs the application management token: send `Authorization: Bearer \
         <token>` or Basic `default:<token>` (the token smartcar-sim prints at start, or \
         --management-token)."
            .into(),
    ))
}

/// A JSON body of type `T` (an empty body reads as `{}`).
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Failure> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("invalid JSON body: {e}")))
}

fn vehicle_json(v: &Vehicle) -> Value {
    json!({
        "id": v.id,
        "vin": v.vin,
        "make": v.make,
        "model": v.model,
        "year": v.year,
        "powertrain": v.powertrain.as_str(),
        "mode": v.mode,
        "odometer_km": v.odometer_km,
        "latitude": v.latitude,
        "longitude": v.longitude,
        "heading": v.heading,
        "locked": v.locked,
        "in_motion": v.in_motion,
        "doors_open": v.doors_open,
        "windows_open": v.windows_open,
        "tires_kpa": v.tires_kpa,
        "oil_life": v.oil_life,
        "fuel_percent": v.fuel.as_ref().map(|f| f.percent),
        "battery_percent": v.battery.as_ref().map(|b| b.percent),
        "plugged_in": v.battery.as_ref().map(|b| b.plugged_in),
        "charging": v.battery.as_ref().map(|b| b.charging),
        "charge_limit": v.battery.as_ref().map(|b| b.charge_limit),
        "forced_error": v
            .forced_error
            .as_ref()
            .map(|(t, c)| json!({"type": t, "code": (!c.is_empty()).then_some(c)})),
    })
}

async fn overview(State(state): State<AppState>) -> Answer {
    let world = state.world();
    let users: Vec<Value> = world
        .users
        .iter()
        .map(|u| json!({ "id": u.id, "email": u.email, "vehicle_ids": u.vehicle_ids }))
        .collect();
    let vehicles: Vec<Value> = world.vehicles.values().map(vehicle_json).collect();
    ok(json!({
        "base_url": state.base_url,
        "now": state.now(),
        "seed": state.seed,
        "application": {
            "client_id": world.app.client_id,
            "redirect_uris": world.app.redirect_uris,
            "user_id_redirect_uris": world.app.user_id_redirect_uris,
            "name": world.app.name,
        },
        "users": users,
        "vehicles": vehicles,
    }))
}

fn clock_json(shared: &Shared) -> Value {
    json!({
        "now": shared.now(),
        "offset_seconds": shared.clock.offset().as_secs_f64(),
    })
}

async fn clock(State(state): State<AppState>) -> Answer {
    ok(clock_json(&state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: f64,
}

async fn advance(State(state): State<AppState>, bytes: Bytes) -> Answer {
    let Advance { seconds } = body(&bytes)?;
    // At most ten years at once: enough for any expiry, far from overflowing the clock.
    if !seconds.is_finite() || !(0.0..=315_360_000.0).contains(&seconds) {
        return Err(invalid(
            "`seconds` must be a number from 0 to 315360000 (time only moves forward)",
        ));
    }
    state.clock.advance(Duration::from_secs_f64(seconds));
    ok(clock_json(&state))
}

/// A fault as JSON: `{"type": "rate_limit", "retry_after": 5}`, `{"type": "status", "status":
/// 500}`, `{"type": "error", "error_type": "VEHICLE_STATE", "code": "ASLEEP"}`, …
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum FaultSpec {
    RateLimit {
        retry_after: Option<u64>,
    },
    Status {
        status: u16,
    },
    Error {
        error_type: String,
        code: Option<String>,
    },
    HtmlPage {
        status: Option<u16>,
    },
    EmptyBody {
        status: Option<u16>,
    },
    TruncatedJson,
    UnknownEnumValue,
    WrongContentType,
    Delay {
        ms: u64,
    },
    StallBody {
        ms: u64,
    },
    HugeBody,
    ConnectionReset,
    ExtraFields,
    Garbage,
}

impl FaultSpec {
    fn into_fault(self) -> Result<Fault, Failure> {
        // An hour bounds every wait: a test asking for more is a mistake.
        let wait = |ms: u64| {
            if ms > 3_600_000 {
                Err(invalid("`ms` must be at most 3600000 (one hour)"))
            } else {
                Ok(Duration::from_millis(ms))
            }
        };
        let status = |s: u16| {
            if (100..=599).contains(&s) {
                Ok(s)
            } else {
                Err(invalid(format!(
                    "`status` must be an HTTP status, found {s}"
                )))
            }
        };
        Ok(match self {
            FaultSpec::RateLimit {
                retry_after: Some(s),
            } => Fault::rate_limit(s),
            FaultSpec::RateLimit { retry_after: None } => Fault::rate_limit_without_retry_after(),
            FaultSpec::Status { status: s } => Fault::status(status(s)?),
            FaultSpec::Error { error_type, code } => {
                let error_type = error_type.to_ascii_uppercase();
                let code = code.map(|c| c.to_ascii_uppercase());
                if crate::error::lookup(&error_type, code.as_deref()).is_none() {
                    return Err(invalid(format!(
                        "no error {error_type}{} in the platform's catalogue \
                         (see smartcar.com/docs/errors)",
                        code.as_deref().map(|c| format!(".{c}")).unwrap_or_default()
                    )));
                }
                Fault::error(&error_type, code.as_deref())
            }
            FaultSpec::HtmlPage { status: s } => Fault::HtmlPage(status(s.unwrap_or(502))?),
            FaultSpec::EmptyBody { status: s } => Fault::empty_body(status(s.unwrap_or(500))?),
            FaultSpec::TruncatedJson => Fault::truncated_json(),
            FaultSpec::UnknownEnumValue => Fault::unknown_enum(),
            FaultSpec::WrongContentType => Fault::wrong_content_type(),
            FaultSpec::Delay { ms } => Fault::delay(wait(ms)?),
            FaultSpec::StallBody { ms } => Fault::stall(wait(ms)?),
            FaultSpec::HugeBody => Fault::huge_body(),
            FaultSpec::ConnectionReset => Fault::connection_reset(),
            FaultSpec::ExtraFields => Fault::extra_fields(),
            FaultSpec::Garbage => Fault::garbage(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    fault: FaultSpec,
    path: Option<String>,
    method: Option<String>,
    vehicle_id: Option<String>,
    probability: Option<f64>,
    /// How many matching requests it answers; absent: until removed.
    times: Option<u64>,
}

async fn add_fault(State(state): State<AppState>, bytes: Bytes) -> Answer {
    let request: FaultRequest = body(&bytes)?;
    let fault = request.fault.into_fault()?;
    let mut rule = Faults::new(&state.faults).inject(fault);
    if let Some(path) = &request.path {
        if !path.starts_with('/') {
            return Err(invalid(
                // path-literal: an example in an error message
                "`path` must start with `/` (`/v2.0/vehicles/*/odometer`)",
            ));
        }
        rule = rule.on(path);
    }
    if let Some(method) = &request.method {
        let method = method.to_ascii_uppercase();
        if !matches!(
            method.as_str(),
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
        ) {
            return Err(invalid(format!("`method` is not an HTTP method: {method}")));
        }
        rule = rule.method(&method);
    }
    if let Some(vehicle) = &request.vehicle_id {
        rule = rule.vehicle(vehicle);
    }
    if let Some(p) = request.probability {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid("`probability` must be between 0 and 1"));
        }
        rule = rule.with_probability(p);
    }
    let id = match request.times {
        Some(0) => return Err(invalid("`times` must be at least 1 (leave it out: always)")),
        Some(n) => rule.times(n),
        None => rule.always(),
    };
    Ok((StatusCode::CREATED, axum::Json(json!({ "id": id.get() }))).into_response())
}

fn fault_id(raw: &str) -> Result<crate::faults::FaultId, Failure> {
    raw.parse::<u64>()
        .map(crate::faults::FaultId::from_raw)
        .map_err(|_| not_found(format!("no fault rule {raw}: ids are numbers")))
}

async fn fault_hits(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let id = fault_id(&id)?;
    let hits = Faults::new(&state.faults).hits(id);
    ok(json!({ "id": id.get(), "hits": hits }))
}

async fn remove_fault(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    Faults::new(&state.faults).remove(fault_id(&id)?);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn clear_faults(State(state): State<AppState>) -> Answer {
    Faults::new(&state.faults).clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn vehicles(State(state): State<AppState>) -> Answer {
    let list: Vec<Value> = state.world().vehicles.values().map(vehicle_json).collect();
    ok(json!({ "vehicles": list }))
}

async fn vehicle(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let world = state.world();
    let v = world
        .vehicles
        .get(&id)
        .ok_or_else(|| not_found(format!("no vehicle {id}")))?;
    ok(vehicle_json(v))
}

/// The fields of a vehicle the control API edits (absent: unchanged).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct VehiclePatch {
    odometer_km: Option<f64>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    heading: Option<f64>,
    locked: Option<bool>,
    in_motion: Option<bool>,
    doors_open: Option<[bool; 4]>,
    windows_open: Option<[bool; 4]>,
    tires_kpa: Option<[f64; 4]>,
    oil_life: Option<f64>,
    fuel_percent: Option<f64>,
    battery_percent: Option<f64>,
    plugged_in: Option<bool>,
    charging: Option<bool>,
    charge_limit: Option<f64>,
    /// `{"type": "VEHICLE_STATE", "code": "ASLEEP"}` makes every request fail with that
    /// error; `null` clears it.
    #[serde(default, deserialize_with = "some_or_null")]
    forced_error: Option<Option<ForcedError>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForcedError {
    #[serde(rename = "type")]
    kind: String,
    code: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn some_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl VehiclePatch {
    /// Checks every value, then applies them all (nothing changes when one is wrong).
    pub(crate) fn apply(self, v: &mut Vehicle) -> Result<(), String> {
        let fraction = |name: &str, x: Option<f64>| match x {
            Some(x) if !(0.0..=1.0).contains(&x) => {
                Err(format!("`{name}` is a fraction from 0 to 1, found {x}"))
            }
            _ => Ok(()),
        };
        fraction("battery_percent", self.battery_percent)?;
        fraction("fuel_percent", self.fuel_percent)?;
        fraction("oil_life", self.oil_life)?;
        if let Some(limit) = self.charge_limit
            && !(0.5..=1.0).contains(&limit)
        {
            return Err(format!(
                "`charge_limit` is a fraction from 0.5 to 1, found {limit}"
            ));
        }
        if self.latitude.is_some_and(|x| !(-90.0..=90.0).contains(&x))
            || self
                .longitude
                .is_some_and(|x| !(-180.0..=180.0).contains(&x))
        {
            return Err("`latitude` is -90 to 90 and `longitude` -180 to 180 degrees".into());
        }
        if self.odometer_km.is_some_and(|x| !x.is_finite() || x < 0.0) {
            return Err("`odometer_km` must be a number of kilometres, at least 0".into());
        }
        if self
            .tires_kpa
            .is_some_and(|t| t.iter().any(|x| !x.is_finite() || *x < 0.0))
        {
            return Err("`tires_kpa` are four pressures in kPa, at least 0".into());
        }
        let battery_fields = self.battery_percent.is_some()
            || self.plugged_in.is_some()
            || self.charging.is_some()
            || self.charge_limit.is_some();
        if battery_fields && v.battery.is_none() {
            return Err(format!(
                "vehicle {} ({}) has no traction battery",
                v.id,
                v.powertrain.as_str()
            ));
        }
        if (self.fuel_percent.is_some() || self.oil_life.is_some()) && v.fuel.is_none() {
            return Err(format!(
                "vehicle {} ({}) has no fuel tank",
                v.id,
                v.powertrain.as_str()
            ));
        }
        if let Some(Some(e)) = &self.forced_error
            && crate::error::lookup(
                &e.kind.to_ascii_uppercase(),
                e.code.as_deref().map(str::to_ascii_uppercase).as_deref(),
            )
            .is_none()
        {
            return Err(format!(
                "no error {}{} in the platform's catalogue",
                e.kind,
                e.code
                    .as_deref()
                    .map(|c| format!(".{c}"))
                    .unwrap_or_default()
            ));
        }
        macro_rules! set {
            ($($field:ident),*) => {$(if let Some(x) = self.$field { v.$field = x; })*};
        }
        set!(
            odometer_km,
            latitude,
            longitude,
            heading,
            locked,
            in_motion,
            doors_open,
            windows_open,
            tires_kpa
        );
        if let Some(x) = self.oil_life {
            v.oil_life = Some(x);
        }
        if let Some(f) = v.fuel.as_mut()
            && let Some(x) = self.fuel_percent
        {
            f.percent = x;
        }
        if let Some(b) = v.battery.as_mut() {
            if let Some(x) = self.battery_percent {
                b.percent = x;
            }
            if let Some(x) = self.plugged_in {
                b.plugged_in = x;
                b.charging &= x;
            }
            if let Some(x) = self.charging {
                b.charging = x && b.plugged_in;
            }
            if let Some(x) = self.charge_limit {
                b.charge_limit = x;
            }
        }
        if let Some(e) = self.forced_error {
            v.forced_error = e.map(|e| {
                (
                    e.kind.to_ascii_uppercase(),
                    e.code.unwrap_or_default().to_ascii_uppercase(),
                )
            });
        }
        Ok(())
    }
}

async fn edit_vehicle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let patch: VehiclePatch = body(&bytes)?;
    let mut world = state.world();
    let v = world
        .vehicles
        .get_mut(&id)
        .ok_or_else(|| not_found(format!("no vehicle {id}")))?;
    patch.apply(v).map_err(invalid)?;
    ok(vehicle_json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    callback_url: String,
    version: Option<String>,
    name: Option<String>,
    #[serde(default)]
    signals: Vec<String>,
}

async fn add_webhook(State(state): State<AppState>, bytes: Bytes) -> Answer {
    let hook: NewWebhook = body(&bytes)?;
    let url = url::Url::parse(&hook.callback_url)
        .map_err(|e| invalid(format!("`callback_url` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("`callback_url` must be an http or https URL"));
    }
    let version = match hook.version.as_deref().unwrap_or("v3") {
        "v3" | "3" | "3.0" => WebhookVersion::V3,
        "v2" | "2" | "2.0" => WebhookVersion::V2,
        other => return Err(invalid(format!("`version` is v3 or v2, found {other}"))),
    };
    let signals: Vec<&str> = hook.signals.iter().map(String::as_str).collect();
    let id = webhooks::add_webhook(
        &state,
        url.as_str(),
        version,
        hook.name.as_deref().unwrap_or("Webhook"),
        &signals,
    );
    Ok((StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response())
}

async fn remove_webhook(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    if webhooks::remove_webhook(&state, &id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(format!("no webhook {id}")))
    }
}

fn delivery_json(d: &DeliveryOutcome) -> Value {
    let attempts: Vec<Value> = d
        .attempts
        .iter()
        .map(|a| {
            json!({
                "delivery_id": a.delivery_id,
                "sent_at": a.sent_at,
                "body": a.body,
                "signature": a.signature,
                "status": a.status,
                "error": a.error,
            })
        })
        .collect();
    json!({
        "webhook_id": d.webhook_id,
        "event_type": d.event_type,
        "event_id": d.event_id,
        "vehicle_ids": d.vehicle_ids,
        "delivered": d.delivered,
        "attempts": attempts,
    })
}

fn webhook_failure(e: WebhookError) -> Failure {
    match e {
        WebhookError::UnknownWebhook(_) | WebhookError::UnknownVehicle(_) => {
            not_found(e.to_string())
        }
        other => Failure(StatusCode::CONFLICT, "webhook_error", other.to_string()),
    }
}

async fn verify_webhook(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let verified = webhooks::verify_webhook(&state, &id)
        .await
        .map_err(webhook_failure)?;
    let last = webhooks::webhook_deliveries(&state)
        .into_iter()
        .rev()
        .find(|d| d.webhook_id == id);
    ok(json!({
        "verified": verified,
        "delivery": last.as_ref().map(delivery_json),
    }))
}

#[derive(Deserialize)]
#[serde(
    tag = "event",
    rename_all = "SCREAMING_SNAKE_CASE",
    deny_unknown_fields
)]
enum Trigger {
    VehicleState {
        vehicle_id: String,
        #[serde(default)]
        signals: Vec<String>,
    },
    VehicleError {
        vehicle_id: String,
        error_type: String,
        code: Option<String>,
        #[serde(default)]
        resolved: bool,
        #[serde(default)]
        signals: Vec<String>,
    },
    ChargingEvent {
        vehicle_id: String,
        event_type: String,
    },
    V2Data {
        #[serde(default)]
        scheduled: bool,
    },
}

async fn trigger_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let trigger: Trigger = body(&bytes)?;
    let outcome = match trigger {
        Trigger::VehicleState {
            vehicle_id,
            signals,
        } => {
            let signals: Vec<&str> = signals.iter().map(String::as_str).collect();
            webhooks::trigger_vehicle_state(&state, &id, &vehicle_id, &signals).await
        }
        Trigger::VehicleError {
            vehicle_id,
            error_type,
            code,
            resolved,
            signals,
        } => {
            let signals: Vec<&str> = signals.iter().map(String::as_str).collect();
            webhooks::trigger_vehicle_error(
                &state,
                &id,
                &vehicle_id,
                &error_type,
                code.as_deref(),
                resolved,
                &signals,
            )
            .await
        }
        Trigger::ChargingEvent {
            vehicle_id,
            event_type,
        } => webhooks::trigger_charging_event(&state, &id, &vehicle_id, &event_type).await,
        Trigger::V2Data { scheduled } => webhooks::trigger_v2_data(&state, &id, scheduled).await,
    }
    .map_err(webhook_failure)?;
    ok(delivery_json(&outcome))
}

async fn deliveries(State(state): State<AppState>) -> Answer {
    let list: Vec<Value> = webhooks::webhook_deliveries(&state)
        .iter()
        .map(delivery_json)
        .collect();
    ok(json!({ "deliveries": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryDelays {
    seconds: Vec<f64>,
}

async fn retry_delays(State(state): State<AppState>, bytes: Bytes) -> Answer {
    let RetryDelays { seconds } = body(&bytes)?;
    if seconds.len() > 10 || seconds.iter().any(|s| !(0.0..=3600.0).contains(s)) {
        return Err(invalid(
            "`seconds`: at most 10 waits, each from 0 to 3600 seconds",
        ));
    }
    let delays: Vec<Duration> = seconds
        .iter()
        .map(|s| Duration::from_secs_f64(*s))
        .collect();
    webhooks::set_webhook_retry_delays(&state, &delays);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn requests(State(state): State<AppState>) -> Answer {
    let list: Vec<Value> = state
        .observer
        .requests()
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "at": r.at,
                "method": r.method,
                "path": r.path,
                "template": r.template,
                "operation": r.operation().map(|op| op.id),
                "query": r.query,
                "headers": r.headers,
                "body": String::from_utf8_lossy(&r.body),
                "status": r.status,
                "response_headers": r.response_headers,
                "response_body": String::from_utf8_lossy(&r.response_body),
                "fault": r.fault,
            })
        })
        .collect();
    ok(json!({ "requests": list }))
}

async fn clear_requests(State(state): State<AppState>) -> Answer {
    state.observer.clear_requests();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn counters(State(state): State<AppState>) -> Answer {
    let observer = &state.observer;
    let operations: serde_json::Map<String, Value> = smartcar_api::ops::ALL
        .iter()
        .map(|op| (op.id.to_owned(), observer.operation_count(op)))
        .filter(|(_, n)| *n > 0)
        .map(|(id, n)| (id, n.into()))
        .collect();
    ok(json!({
        "total_requests": observer.total_requests(),
        "refreshes": observer.refresh_count(),
        "connections_accepted": observer.connections_accepted(),
        "operations": operations,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approve {
    url: String,
    email: Option<String>,
    vehicle_ids: Option<Vec<String>>,
    #[serde(default)]
    deny: bool,
}

async fn approve(State(state): State<AppState>, bytes: Bytes) -> Answer {
    let request: Approve = body(&bytes)?;
    let decision = Decision {
        action: if request.deny {
            Action::Deny
        } else {
            Action::Approve
        },
        email: request.email,
        vehicle_ids: request.vehicle_ids,
    };
    match connect::approve_in_process(&state, &request.url, decision) {
        Ok(url) => ok(json!({ "redirect": url.as_str() })),
        Err((status, message)) => Err(Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "connect_did_not_redirect",
            format!("Connect answered {status} without redirecting: {message}"),
        )),
    }
}

fn limits_json(shared: &Shared) -> Value {
    let l = shared.limits.get();
    let c = shared.limits.counters();
    json!({
        "app": l.app.map(|b| format!("{}/{}", b.capacity, b.refill_per_minute)),
        "vehicle": l.vehicle.map(|t| format!("{}/{}", t.burst, t.window.as_secs())),
        "monthly_allowance": l.monthly_allowance,
        "counters": {
            "app_limited": c.app_limited,
            "vehicle_throttled": c.vehicle_throttled,
            "billing_refused": c.billing_refused,
            "billed": c.billed,
        },
    })
}

async fn limits(State(state): State<AppState>) -> Answer {
    ok(limits_json(&state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetLimits {
    #[serde(default)]
    platform: bool,
    app: Option<String>,
    vehicle: Option<String>,
    monthly_allowance: Option<u32>,
}

async fn set_limits(State(state): State<AppState>, bytes: Bytes) -> Answer {
    let request: SetLimits = body(&bytes)?;
    let limits = if request.platform {
        if request.app.is_some() || request.vehicle.is_some() || request.monthly_allowance.is_some()
        {
            return Err(invalid("`platform: true` takes no other field"));
        }
        crate::limits::Limits::platform()
    } else {
        crate::limits::Limits {
            app: request
                .app
                .as_deref()
                .map(crate::limits::parse_app_bucket)
                .transpose()
                .map_err(invalid)?,
            vehicle: request
                .vehicle
                .as_deref()
                .map(crate::limits::parse_vehicle_throttle)
                .transpose()
                .map_err(invalid)?,
            monthly_allowance: request.monthly_allowance,
        }
    };
    state.limits.set(limits).map_err(invalid)?;
    ok(limits_json(&state))
}

async fn reset_usage(State(state): State<AppState>) -> Answer {
    state.limits.reset_usage();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn vehicle_usage(State(state): State<AppState>, Path(vehicle_id): Path<String>) -> Answer {
    let now = state.now();
    ok(json!({
        "vehicle_id": vehicle_id,
        "month": now.format("%Y-%m").to_string(),
        "billed": state.limits.billed(&vehicle_id, now),
        "monthly_allowance": state.limits.get().monthly_allowance,
    }))
}
