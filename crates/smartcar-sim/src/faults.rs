//! Faults on demand: a middleware that, for requests matching a rule, answers with an error or
//! alters the real handler's response (rate limits, 5xx, HTML pages, empty or truncated bodies,
//! unknown enum values, extra fields, wrong content types, delays, stalls, huge bodies, dropped
//! connections, non-HTTP garbage, vehicle-state / upstream / compatibility errors).
//!
//! Rules are installed through the simulator handle:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use smartcar_sim::{Fault, Simulator};
//!
//! let sim = Simulator::start().await?;
//! // The next two odometer reads of any vehicle get 429 with `Retry-After: 30`.
//! sim.faults()
//!     .inject(Fault::rate_limit(30))
//!     .on("/v2.0/vehicles/*/odometer")
//!     .times(2);
//! // One refresh fails with a 500 (OAuth error body on the token endpoint).
//! sim.faults().inject(Fault::status(500)).on("/oauth/token").method("POST").once();
//! // A tenth of the reads of one vehicle are slow (seeded, so reproducible).
//! let id = sim.vehicles()[0].id.clone();
//! let rule = sim
//!     .faults()
//!     .inject(Fault::delay(Duration::from_millis(300)))
//!     .vehicle(&id)
//!     .with_probability(0.1)
//!     .always();
//! assert_eq!(sim.faults().hits(rule), 0);
//! sim.faults().clear();
//! # Ok(()) }
//! ```
//!
//! Error bodies take the shape of the path they answer: the v3 `errors[]` shape on `/v3/...`,
//! the OAuth `{error, error_description}` shape on the token endpoints, the v2 shape elsewhere.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Frame;

use crate::error::ApiError;
use crate::fleet::Rng;

/// What an injected fault does to a matching request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// 429 `RATE_LIMIT` / `VEHICLE`, with `Retry-After: <secs>` when `retry_after` is set.
    RateLimit {
        /// Seconds for the `Retry-After` header; `None` sends no header.
        retry_after: Option<u64>,
    },
    /// An error status with the error body of the matching type: 500 `SERVER`/`INTERNAL`,
    /// 501 `COMPATIBILITY`/`VEHICLE_NOT_CAPABLE`, 502 `UPSTREAM`/`UNKNOWN_ISSUE`, 503
    /// `SERVER`/`INTERNAL` (status 503), 504 `UPSTREAM`/`NO_RESPONSE` (status 504), 429 as
    /// [`Fault::RateLimit`] without the header; any other status `SERVER`/`INTERNAL` with it.
    Status(u16),
    /// A catalogue error by `type` and `code`: `VEHICLE_STATE`/`ASLEEP`,
    /// `UPSTREAM`/`NO_RESPONSE`, `COMPATIBILITY`/`VEHICLE_NOT_CAPABLE`, `BILLING`/…
    /// (unknown pairs become `SERVER`/`INTERNAL`).
    Error {
        /// `type`.
        kind: String,
        /// `code`.
        code: Option<String>,
    },
    /// A gateway's HTML error page (`text/html`) with this status (usually 502).
    HtmlPage(u16),
    /// This status and an empty body (no content type).
    EmptyBody(u16),
    /// The real response with its body cut in half (still labelled JSON).
    TruncatedJson,
    /// The real response with every upper-case enum value the spec lists (`CHARGING`,
    /// `LOCKED`, `OK`, `BEV`, error `type`s, …) replaced by this value, which the spec does not
    /// list.
    UnknownEnumValue(String),
    /// The real response labelled `text/plain`.
    WrongContentType,
    /// Waits (real time) before running the real handler.
    Delay(Duration),
    /// Sends the first half of the real body, waits (real time), then the rest.
    StallBody(Duration),
    /// 200 with a JSON body of about this many bytes.
    HugeBody(usize),
    /// Drops the connection without a complete response.
    ConnectionReset,
    /// The real response with an undocumented field added to every JSON object (a platform
    /// that grew a field the spec does not list yet).
    ExtraFields,
    /// Bytes that are not HTTP at all (a TLS alert record, as a TLS-only port answers a
    /// plain-text client), then the connection is closed. Needs the simulator's own listener
    /// (it knows the connection); elsewhere it degrades to [`Fault::ConnectionReset`].
    Garbage,
}

impl Fault {
    /// 429 `RATE_LIMIT`/`VEHICLE` with `Retry-After: secs`.
    pub fn rate_limit(secs: u64) -> Self {
        Fault::RateLimit {
            retry_after: Some(secs),
        }
    }

    /// 429 `RATE_LIMIT`/`VEHICLE` without a `Retry-After` header.
    pub fn rate_limit_without_retry_after() -> Self {
        Fault::RateLimit { retry_after: None }
    }

    /// An error status (500, 502, 503, 504, …) with the matching error body.
    pub fn status(status: u16) -> Self {
        Fault::Status(status)
    }

    /// A catalogue error by type and code (`Fault::error("UPSTREAM", Some("NO_RESPONSE"))`).
    pub fn error(kind: &str, code: Option<&str>) -> Self {
        Fault::Error {
            kind: kind.to_owned(),
            code: code.map(str::to_owned),
        }
    }

    /// 409 `VEHICLE_STATE` with this code (`ASLEEP`, `UNREACHABLE`, …).
    pub fn vehicle_state(code: &str) -> Self {
        Self::error("VEHICLE_STATE", Some(code))
    }

    /// 502 `UPSTREAM` with this code (`NO_RESPONSE`, `INVALID_DATA`, …).
    pub fn upstream(code: &str) -> Self {
        Self::error("UPSTREAM", Some(code))
    }

    /// 501 `COMPATIBILITY` with this code (`VEHICLE_NOT_CAPABLE`, …).
    pub fn compatibility(code: &str) -> Self {
        Self::error("COMPATIBILITY", Some(code))
    }

    /// A 502 HTML page, as a load balancer in front of the API sends.
    pub fn html_502() -> Self {
        Fault::HtmlPage(502)
    }

    /// This status with an empty body.
    pub fn empty_body(status: u16) -> Self {
        Fault::EmptyBody(status)
    }

    /// The real body cut in half.
    pub fn truncated_json() -> Self {
        Fault::TruncatedJson
    }

    /// Enum values replaced with `SOMETHING_NEW`.
    pub fn unknown_enum() -> Self {
        Fault::UnknownEnumValue("SOMETHING_NEW".to_owned())
    }

    /// The real body labelled `text/plain`.
    pub fn wrong_content_type() -> Self {
        Fault::WrongContentType
    }

    /// Wait `by` before answering.
    pub fn delay(by: Duration) -> Self {
        Fault::Delay(by)
    }

    /// Send half the body, wait `by`, send the rest.
    pub fn stall(by: Duration) -> Self {
        Fault::StallBody(by)
    }

    /// A 10 MB JSON body.
    pub fn huge_body() -> Self {
        Fault::HugeBody(10 * 1024 * 1024)
    }

    /// Drop the connection.
    pub fn connection_reset() -> Self {
        Fault::ConnectionReset
    }

    /// Undocumented fields added to every object of the real body.
    pub fn extra_fields() -> Self {
        Fault::ExtraFields
    }

    /// Non-HTTP bytes on the socket instead of a response.
    pub fn garbage() -> Self {
        Fault::Garbage
    }

    /// A short name for logs (`rate_limit`, `status`, …): [`FaultKind::name`].
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Which kind of fault this is, without its parameters.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::RateLimit { .. } => FaultKind::RateLimit,
            Fault::Status(_) => FaultKind::Status,
            Fault::Error { .. } => FaultKind::Error,
            Fault::HtmlPage(_) => FaultKind::HtmlPage,
            Fault::EmptyBody(_) => FaultKind::EmptyBody,
            Fault::TruncatedJson => FaultKind::TruncatedJson,
            Fault::UnknownEnumValue(_) => FaultKind::UnknownEnumValue,
            Fault::WrongContentType => FaultKind::WrongContentType,
            Fault::Delay(_) => FaultKind::Delay,
            Fault::StallBody(_) => FaultKind::StallBody,
            Fault::HugeBody(_) => FaultKind::HugeBody,
            Fault::ConnectionReset => FaultKind::ConnectionReset,
            Fault::ExtraFields => FaultKind::ExtraFields,
            Fault::Garbage => FaultKind::Garbage,
        }
    }
}

/// The kind of a [`Fault`], without its parameters: what the request log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// [`Fault::RateLimit`].
    RateLimit,
    /// [`Fault::Status`].
    Status,
    /// [`Fault::Error`].
    Error,
    /// [`Fault::HtmlPage`].
    HtmlPage,
    /// [`Fault::EmptyBody`].
    EmptyBody,
    /// [`Fault::TruncatedJson`].
    TruncatedJson,
    /// [`Fault::UnknownEnumValue`].
    UnknownEnumValue,
    /// [`Fault::WrongContentType`].
    WrongContentType,
    /// [`Fault::Delay`].
    Delay,
    /// [`Fault::StallBody`].
    StallBody,
    /// [`Fault::HugeBody`].
    HugeBody,
    /// [`Fault::ConnectionReset`].
    ConnectionReset,
    /// [`Fault::ExtraFields`].
    ExtraFields,
    /// [`Fault::Garbage`].
    Garbage,
}

impl FaultKind {
    /// A short name for logs (`rate_limit`, `status`, …).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::RateLimit => "rate_limit",
            FaultKind::Status => "status",
            FaultKind::Error => "error",
            FaultKind::HtmlPage => "html_page",
            FaultKind::EmptyBody => "empty_body",
            FaultKind::TruncatedJson => "truncated_json",
            FaultKind::UnknownEnumValue => "unknown_enum_value",
            FaultKind::WrongContentType => "wrong_content_type",
            FaultKind::Delay => "delay",
            FaultKind::StallBody => "stall_body",
            FaultKind::HugeBody => "huge_body",
            FaultKind::ConnectionReset => "connection_reset",
            FaultKind::ExtraFields => "extra_fields",
            FaultKind::Garbage => "garbage",
        }
    }

    /// Whether the response streams on purpose (a stall, a reset): whoever records it must not
    /// buffer its body, only note what was sent when it ends.
    pub fn streams(self) -> bool {
        matches!(self, FaultKind::StallBody | FaultKind::ConnectionReset)
    }
}

/// Marks a response as produced or altered by an injected fault (read by the request log).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FaultApplied(pub FaultKind);

/// Identifies an installed fault rule (to remove it or read its hit count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

impl FaultId {
    /// The number the control API shows for this rule.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The rule a number of [`FaultId::get`] names.
    pub fn from_raw(id: u64) -> Self {
        FaultId(id)
    }
}

#[derive(Clone, Debug)]
struct Rule {
    id: u64,
    fault: Fault,
    method: Option<Method>,
    path: Option<Vec<String>>,
    vehicle_id: Option<String>,
    remaining: Option<u64>,
    probability: Option<f64>,
    hits: u64,
}

#[derive(Debug, Default)]
struct Rules {
    rules: Vec<Rule>,
    next_id: u64,
    /// Hits of rules already used up (their ids stay readable).
    spent: Vec<(u64, u64)>,
}

/// The fault rules of one simulator (reached through [`crate::Simulator::faults`]).
#[derive(Debug)]
pub struct FaultSet {
    active: AtomicUsize,
    connections: Connections,
    rules: Mutex<Rules>,
    rng: Mutex<Rng>,
}

impl FaultSet {
    /// No rules; probabilities drawn from a generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        FaultSet {
            active: AtomicUsize::new(0),
            connections: Connections::default(),
            rules: Mutex::new(Rules::default()),
            rng: Mutex::new(Rng::new(seed ^ 0xFA17_FA17_FA17_FA17)),
        }
    }

    /// The registry of open connections the listener fills (for [`Fault::Garbage`]).
    pub(crate) fn connections(&self) -> &Connections {
        &self.connections
    }

    fn lock(&self) -> MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn install(&self, mut rule: Rule) -> FaultId {
        let mut rules = self.lock();
        rules.next_id += 1;
        rule.id = rules.next_id;
        let id = FaultId(rule.id);
        rules.rules.push(rule);
        self.active.store(rules.rules.len(), Ordering::Release);
        id
    }

    /// The fault to apply to this request, if a rule matches (consumes one of its `times`).
    fn take(&self, method: &Method, path: &str, query: Option<&str>) -> Option<Fault> {
        if self.active.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut rules = self.lock();
        let vehicle = vehicle_of(path, query);
        let mut chosen = None;
        for (i, rule) in rules.rules.iter_mut().enumerate() {
            if rule.method.as_ref().is_some_and(|m| m != method)
                || rule.path.as_ref().is_some_and(|p| !path_matches(p, path))
                || rule
                    .vehicle_id
                    .as_deref()
                    .is_some_and(|v| vehicle != Some(v))
            {
                continue;
            }
            if let Some(p) = rule.probability {
                let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                if !rng.chance(p) {
                    continue;
                }
            }
            rule.hits += 1;
            if let Some(n) = rule.remaining.as_mut() {
                *n = n.saturating_sub(1);
            }
            chosen = Some((i, rule.fault.clone()));
            break;
        }
        let (i, fault) = chosen?;
        if rules.rules[i].remaining == Some(0) {
            let rule = rules.rules.remove(i);
            rules.spent.push((rule.id, rule.hits));
            self.active.store(rules.rules.len(), Ordering::Release);
        }
        Some(fault)
    }
}

/// The vehicle a request is about: the path segment after `vehicles`, or a `vehicle_id` query
/// parameter (management API).
fn vehicle_of<'a>(path: &'a str, query: Option<&'a str>) -> Option<&'a str> {
    let mut segments = path.split('/');
    while let Some(s) = segments.next() {
        if s == "vehicles" {
            return segments.next().filter(|s| !s.is_empty());
        }
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("vehicle_id="))
}

fn split_path(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `*` and `{name}` match one segment, `**` the rest of the path; anything else literally.
fn path_matches(pattern: &[String], path: &str) -> bool {
    let mut actual = path.split('/').filter(|s| !s.is_empty());
    for p in pattern {
        if p == "**" {
            return true;
        }
        let Some(segment) = actual.next() else {
            return false;
        };
        let wildcard = p == "*" || (p.starts_with('{') && p.ends_with('}'));
        if !wildcard && p != segment {
            return false;
        }
    }
    actual.next().is_none()
}

/// Installs and removes fault rules: `sim.faults()`.
#[derive(Clone, Copy, Debug)]
pub struct Faults<'a> {
    set: &'a FaultSet,
}

impl<'a> Faults<'a> {
    pub(crate) fn new(set: &'a FaultSet) -> Self {
        Faults { set }
    }

    /// Starts a rule for `fault`; narrow it with [`FaultRule::on`], [`FaultRule::method`],
    /// [`FaultRule::vehicle`], [`FaultRule::with_probability`], then install it with
    /// [`FaultRule::times`], [`FaultRule::once`] or [`FaultRule::always`].
    pub fn inject(&self, fault: Fault) -> FaultRule<'a> {
        FaultRule {
            set: self.set,
            rule: Rule {
                id: 0,
                fault,
                method: None,
                path: None,
                vehicle_id: None,
                remaining: None,
                probability: None,
                hits: 0,
            },
        }
    }

    /// Removes a rule (no effect if it was used up already).
    pub fn remove(&self, id: FaultId) {
        let mut rules = self.set.lock();
        if let Some(i) = rules.rules.iter().position(|r| r.id == id.0) {
            let rule = rules.rules.remove(i);
            rules.spent.push((rule.id, rule.hits));
        }
        self.set.active.store(rules.rules.len(), Ordering::Release);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut rules = self.set.lock();
        let drained: Vec<_> = rules.rules.drain(..).map(|r| (r.id, r.hits)).collect();
        rules.spent.extend(drained);
        self.set.active.store(0, Ordering::Release);
    }

    /// How many requests the rule has answered so far.
    pub fn hits(&self, id: FaultId) -> u64 {
        let rules = self.set.lock();
        rules
            .rules
            .iter()
            .find(|r| r.id == id.0)
            .map(|r| r.hits)
            .or_else(|| {
                rules
                    .spent
                    .iter()
                    .find(|(i, _)| *i == id.0)
                    .map(|(_, h)| *h)
            })
            .unwrap_or(0)
    }

    /// Rules still installed.
    pub fn active(&self) -> usize {
        self.set.active.load(Ordering::Acquire)
    }
}

/// A fault rule being built; nothing happens until [`FaultRule::times`], [`FaultRule::once`]
/// or [`FaultRule::always`] installs it.
#[derive(Debug)]
#[must_use = "a fault rule is installed only by .times(n), .once() or .always()"]
pub struct FaultRule<'a> {
    set: &'a FaultSet,
    rule: Rule,
}

impl FaultRule<'_> {
    /// Only requests to this path: exact (`/oauth/token`), or a pattern where `*` or `{name}`
    /// matches one segment and `**` the rest (`/v2.0/vehicles/*/odometer`,
    /// `/v2.0/vehicles/{vehicle_id}/charge`, `/v3/**`). Trailing slashes are ignored.
    pub fn on(mut self, path: &str) -> Self {
        self.rule.path = Some(split_path(path));
        self
    }

    /// Only requests with this method (`"GET"`, `"POST"`, …; case-sensitive as HTTP is).
    pub fn method(mut self, method: &str) -> Self {
        self.rule.method = Some(Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET));
        self
    }

    /// Only requests about this vehicle (v2 or v3 path, or `vehicle_id` query parameter).
    pub fn vehicle(mut self, vehicle_id: &str) -> Self {
        self.rule.vehicle_id = Some(vehicle_id.to_owned());
        self
    }

    /// Applies to each matching request with probability `p` (0–1), drawn from the simulator's
    /// seeded generator.
    pub fn with_probability(mut self, p: f64) -> Self {
        self.rule.probability = Some(p.clamp(0.0, 1.0));
        self
    }

    /// Installs the rule for the next `n` matching requests.
    pub fn times(mut self, n: u64) -> FaultId {
        self.rule.remaining = Some(n);
        if n == 0 {
            return FaultId(0);
        }
        self.set.install(self.rule)
    }

    /// Installs the rule for the next matching request.
    pub fn once(self) -> FaultId {
        self.times(1)
    }

    /// Installs the rule until it is removed.
    pub fn always(mut self) -> FaultId {
        self.rule.remaining = None;
        self.set.install(self.rule)
    }
}

/// Which error body shape a path answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    V2,
    V3,
    OAuth,
}

fn shape_of(path: &str) -> Shape {
    if crate::routing::first_segment(path) == crate::routing::v3_segment() {
        Shape::V3
    } else if crate::routing::is_token_endpoint(path) {
        Shape::OAuth
    } else {
        Shape::V2
    }
}

/// The error body for `status`/`kind`/`code` in the path's shape.
/// The answer to a request the platform's limits refused (`crate::limits`), in the shape of
/// the API the path belongs to, with `retry-after` when given.
pub(crate) fn limit_response(
    path: &str,
    kind: &str,
    code: &str,
    retry_after: Option<u64>,
) -> Response {
    error_response(shape_of(path), kind, Some(code), None, retry_after)
}

fn error_response(
    shape: Shape,
    kind: &str,
    code: Option<&str>,
    status: Option<u16>,
    retry_after: Option<u64>,
) -> Response {
    let mut error = ApiError::v2(kind, code);
    if let Some(s) = status.and_then(|s| StatusCode::from_u16(s).ok()) {
        error = error.with_status(s);
    }
    let error = match shape {
        Shape::V2 => error,
        Shape::V3 => error.into_v3(),
        Shape::OAuth => {
            // Token endpoints speak OAuth: the standard codes for an overloaded or failing
            // server (RFC 6749 §4.1.2.1 names them for Connect; the token endpoint's own
            // 5xx/429 body is unverified).
            let (oauth, text) = match error.status().as_u16() {
                429 | 503 => (
                    "temporarily_unavailable",
                    "The server is temporarily unable to handle the request.",
                ),
                s if s >= 500 => ("server_error", "An internal error occurred."),
                _ => ("invalid_request", "The request could not be processed."),
            };
            ApiError::oauth(oauth, text).with_status(error.status())
        }
    };
    let error = match retry_after {
        Some(secs) => error.with_retry_after(secs),
        None => error,
    };
    error.into_response()
}

/// Runs the request through the fault rules: the real handler (`next`) when no rule matches.
/// Called by the observability middleware (one layer instead of two keeps the hot path short).
pub(crate) async fn run(faults: &FaultSet, req: Request, next: Next) -> Response {
    // The control API is never faulted (a rule on `/**` must not lock a test out of it).
    if crate::routing::sim_paths::is_control_path(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(fault) = faults.take(req.method(), req.uri().path(), req.uri().query()) else {
        return next.run(req).await;
    };
    let kind = fault.kind();
    let shape = shape_of(req.uri().path());
    let mut response = apply(fault, shape, &faults.connections, req, next).await;
    response.extensions_mut().insert(FaultApplied(kind));
    response
}

async fn apply(
    fault: Fault,
    shape: Shape,
    connections: &Connections,
    req: Request,
    next: Next,
) -> Response {
    match fault {
        Fault::RateLimit { retry_after } => {
            error_response(shape, "RATE_LIMIT", Some("VEHICLE"), None, retry_after)
        }
        Fault::Status(status) => {
            let (kind, code) = match status {
                429 => ("RATE_LIMIT", Some("VEHICLE")),
                501 => ("COMPATIBILITY", Some("VEHICLE_NOT_CAPABLE")),
                502 => ("UPSTREAM", Some("UNKNOWN_ISSUE")),
                504 => ("UPSTREAM", Some("NO_RESPONSE")),
                _ => ("SERVER", Some("INTERNAL")),
            };
            error_response(shape, kind, code, Some(status), None)
        }
        Fault::Error { kind, code } => error_response(shape, &kind, code.as_deref(), None, None),
        Fault::HtmlPage(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let reason = status.canonical_reason().unwrap_or("Error");
            let html = format!(
                "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n</body>\r\n</html>\r\n",
                code = status.as_u16()
            );
            (status, [(header::CONTENT_TYPE, "text/html")], html).into_response()
        }
        Fault::EmptyBody(status) => StatusCode::from_u16(status)
            .unwrap_or(StatusCode::BAD_GATEWAY)
            .into_response(),
        Fault::TruncatedJson => {
            let (mut parts, bytes) = run_buffered(req, next).await;
            let cut = bytes.len() / 2;
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(bytes.slice(..cut)))
        }
        Fault::UnknownEnumValue(value) => {
            let (mut parts, bytes) = run_buffered(req, next).await;
            let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(mut json) => {
                    replace_enums(&mut json, &value);
                    serde_json::to_vec(&json).map_or(bytes, Bytes::from)
                }
                Err(_) => bytes,
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(bytes))
        }
        Fault::WrongContentType => {
            let mut response = next.run(req).await;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Fault::Delay(by) => {
            tokio::time::sleep(by).await;
            next.run(req).await
        }
        Fault::StallBody(by) => {
            let (mut parts, bytes) = run_buffered(req, next).await;
            parts.headers.remove(header::CONTENT_LENGTH);
            let half = bytes.len() / 2;
            let body = StallBody {
                first: Some(bytes.slice(..half)),
                rest: Some(bytes.slice(half..)),
                total: bytes.len() as u64,
                sleep: Box::pin(tokio::time::sleep(by)),
            };
            Response::from_parts(parts, Body::new(body))
        }
        Fault::HugeBody(size) => {
            let filler = size.saturating_sub(11).max(1);
            let mut body = Vec::with_capacity(filler + 12);
            body.extend_from_slice(b"{\"data\":\"");
            body.resize(body.len() + filler, b'a');
            body.extend_from_slice(b"\"}");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Fault::ConnectionReset => Response::new(Body::new(ResetBody)),
        Fault::ExtraFields => {
            let (mut parts, bytes) = run_buffered(req, next).await;
            let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(mut json) => {
                    add_fields(&mut json);
                    serde_json::to_vec(&json).map_or(bytes, Bytes::from)
                }
                Err(_) => bytes,
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(bytes))
        }
        Fault::Garbage => {
            let poisoned = req
                .extensions()
                .get::<axum::extract::ConnectInfo<Peer>>()
                .is_some_and(|info| poison(connections, info.0.0));
            if poisoned {
                // Whatever hyper writes now is replaced by the garbage (see `FaultyIo`).
                StatusCode::OK.into_response()
            } else {
                Response::new(Body::new(ResetBody))
            }
        }
    }
}

fn add_fields(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => items.iter_mut().for_each(add_fields),
        serde_json::Value::Object(map) => {
            map.values_mut().for_each(add_fields);
            map.insert(
                "x_simulator_extra".to_owned(),
                serde_json::json!({"added": true, "list": [1, 2]}),
            );
        }
        _ => {}
    }
}

/// What a [`Fault::Garbage`] connection receives: a TLS alert record (`handshake_failure`)
/// followed by binary noise; nothing an HTTP client can parse.
const GARBAGE: &[u8] = b"\x15\x03\x01\x00\x02\x02\x28\x00\xff\xfe\x00garbage\r\n\r\n";

/// Open connections of the simulator's listener, by peer address: the flag a [`Fault::Garbage`]
/// sets so that the connection's next write is replaced by [`GARBAGE`].
pub(crate) type Connections =
    Arc<Mutex<std::collections::HashMap<std::net::SocketAddr, std::sync::Weak<AtomicBool>>>>;

/// The peer address of a connection of the simulator's listener (axum's connect info, set by
/// the accept loop).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub(crate) std::net::SocketAddr);

/// Marks the connection from `peer` so that its next write is garbage; false when the
/// connection is not known (served by another listener).
fn poison(connections: &Connections, peer: std::net::SocketAddr) -> bool {
    let map = connections.lock().unwrap_or_else(|e| e.into_inner());
    match map.get(&peer).and_then(std::sync::Weak::upgrade) {
        Some(flag) => {
            flag.store(true, Ordering::Release);
            true
        }
        None => false,
    }
}

/// A connection of the simulator's listener: a TCP stream that a [`Fault::Garbage`] can make
/// write non-HTTP bytes instead of the response, then fail (hyper then closes it).
#[derive(Debug)]
pub(crate) struct FaultyIo {
    inner: tokio::net::TcpStream,
    poisoned: Arc<AtomicBool>,
    garbage_left: &'static [u8],
    connections: Connections,
}

impl FaultyIo {
    /// Wraps a connection accepted from `peer`.
    pub(crate) fn new(
        inner: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        connections: &Connections,
    ) -> Self {
        let poisoned = Arc::new(AtomicBool::new(false));
        let mut map = connections.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 1024 {
            map.retain(|_, flag| flag.strong_count() > 0);
        }
        map.insert(peer, Arc::downgrade(&poisoned));
        drop(map);
        FaultyIo {
            inner,
            poisoned,
            garbage_left: GARBAGE,
            connections: connections.clone(),
        }
    }
}

impl tokio::io::AsyncRead for FaultyIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for FaultyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if !self.poisoned.load(Ordering::Acquire) {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        while !self.garbage_left.is_empty() {
            let left = self.garbage_left;
            match Pin::new(&mut self.inner).poll_write(cx, left) {
                Poll::Ready(Ok(n)) => self.garbage_left = &left[n.min(left.len())..],
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected garbage",
        )))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Drop for FaultyIo {
    fn drop(&mut self) {
        if let Ok(peer) = self.inner.peer_addr() {
            let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
            if map
                .get(&peer)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.poisoned)))
            {
                map.remove(&peer);
            }
        }
    }
}

/// Runs the real handler and buffers its body.
async fn run_buffered(req: Request, next: Next) -> (axum::http::response::Parts, Bytes) {
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (parts, bytes)
}

/// Every upper-case value of the spec's open enums (the values an unknown-enum fault replaces).
fn is_known_enum_value(s: &str) -> bool {
    use smartcar_api::open_enums as e;
    let upper = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && s.bytes().any(|b| b.is_ascii_uppercase());
    if !upper {
        return false;
    }
    let lists: &[&[&str]] = &[
        e::CapabilityReason::KNOWN,
        e::CapacitySource::KNOWN,
        e::ChargeEventType::KNOWN,
        e::ChargeState::KNOWN,
        e::ErrorType::KNOWN,
        e::ClosureStatus::KNOWN,
        e::CommandStatusValue::KNOWN,
        e::CommandType::KNOWN,
        e::CompatibilityReason::KNOWN,
        e::ExecutionMode::KNOWN,
        e::PowertrainType::KNOWN,
        e::ResolutionType::KNOWN,
        e::SignalStatusValue::KNOWN,
        e::SystemHealth::KNOWN,
        e::VehicleErrorState::KNOWN,
        e::WebhookEventType::KNOWN,
        e::V2WebhookEventName::KNOWN,
    ];
    lists.iter().any(|list| list.contains(&s))
}

fn replace_enums(value: &mut serde_json::Value, with: &str) {
    match value {
        serde_json::Value::String(s) if is_known_enum_value(s) => *s = with.to_owned(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| replace_enums(v, with)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| replace_enums(v, with)),
        _ => {}
    }
}

/// Sends the first part, sleeps, sends the rest. The size hint stays exact so that the client
/// waits for the whole body.
struct StallBody {
    first: Option<Bytes>,
    rest: Option<Bytes>,
    total: u64,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for StallBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.rest.is_none() {
            return Poll::Ready(None);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(self.rest.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.total)
    }
}

/// A body that fails at once: hyper then closes the connection without a complete response.
struct ResetBody;

impl HttpBody for ResetBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        )))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_segments() {
        use smartcar_api::ops;
        let odometer = |id: &str| ops::GetOdometer::path(id);
        let p = split_path(&ops::GET_ODOMETER.path.replace("{vehicle_id}", "*"));
        assert!(path_matches(&p, &odometer("abc")));
        assert!(path_matches(&p, &format!("{}/", odometer("abc"))));
        assert!(!path_matches(&p, &ops::GetLocation::path("abc")));
        assert!(!path_matches(&p, &format!("{}/x", odometer("abc"))));
        let p = split_path(ops::GET_ODOMETER.path);
        assert!(path_matches(&p, &odometer("abc")));
        let p = split_path(&format!("/{}/**", crate::routing::v3_segment()));
        assert!(path_matches(&p, &ops::ListSignals::path("x")));
        assert!(!path_matches(&p, &ops::GetUser::path()));
        assert_eq!(vehicle_of(&odometer("abc"), None), Some("abc"));
        assert_eq!(
            vehicle_of(&ops::ListConnections::path(), Some("limit=1&vehicle_id=v")),
            Some("v")
        );
    }

    #[test]
    fn fault_kinds_name_faults_and_know_which_stream() {
        let streaming = [
            Fault::stall(Duration::from_millis(1)),
            Fault::connection_reset(),
        ];
        for fault in streaming {
            assert!(fault.kind().streams(), "{fault:?}");
        }
        for fault in [
            Fault::rate_limit(1),
            Fault::status(500),
            Fault::truncated_json(),
            Fault::delay(Duration::from_millis(1)),
            Fault::huge_body(),
            Fault::garbage(),
        ] {
            assert!(!fault.kind().streams(), "{fault:?}");
        }
        assert_eq!(Fault::stall(Duration::from_millis(1)).name(), "stall_body");
        assert_eq!(Fault::connection_reset().kind().name(), "connection_reset");
    }

    #[test]
    fn enum_values_are_replaced_but_free_text_is_not() {
        let mut v = serde_json::json!({"state": "CHARGING", "make": "TESLA", "x": ["OK", "ok"]});
        replace_enums(&mut v, "SOMETHING_NEW");
        assert_eq!(
            v,
            serde_json::json!({"state": "SOMETHING_NEW", "make": "TESLA", "x": ["SOMETHING_NEW", "ok"]})
        );
    }

    #[test]
    fn rules_count_down_and_roll_dice() {
        let set = FaultSet::new(1);
        let faults = Faults::new(&set);
        let id = faults.inject(Fault::status(500)).on("/a").times(2);
        assert_eq!(set.take(&Method::GET, "/b", None), None);
        assert_eq!(set.take(&Method::GET, "/a", None), Some(Fault::Status(500)));
        assert_eq!(set.take(&Method::GET, "/a", None), Some(Fault::Status(500)));
        assert_eq!(set.take(&Method::GET, "/a", None), None);
        assert_eq!(faults.hits(id), 2);
        let id = faults
            .inject(Fault::status(503))
            .with_probability(0.5)
            .always();
        let hits = (0..1000)
            .filter(|_| set.take(&Method::GET, "/x", None).is_some())
            .count();
        assert!((400..600).contains(&hits), "{hits}");
        faults.remove(id);
        assert_eq!(faults.active(), 0);
    }
}
