//! Observability for tests and benchmarks: a middleware on the whole router that gives every
//! response an `sc-request-id`, counts requests per (method, path template), and — while
//! logging is on — records each exchange (request and response, secrets masked) in a bounded
//! in-memory log; and a listener wrapper that counts accepted TCP connections.
//!
//! What is masked in the log: the `authorization` header (`Bearer ***` / `Basic ***`),
//! `cookie`, the values of the form fields `client_secret`, `refresh_token`, `code`,
//! `access_token`, `challenge`, `password` and `token` (in form bodies and in the query
//! string), the same keys in JSON bodies (except `code`, which in JSON bodies is an error code,
//! not a secret), and secrets in a redirect's `Location` query (`code`). Every secret the
//! request carried (those values, the bearer token, the Basic password) is also masked wherever
//! the response echoes it: `"error_description": "Invalid code: ***."`. Tokens therefore never
//! reach a wire snapshot.
//!
//! Memory: the log keeps at most [`LOG_CAPACITY`] exchanges and at most
//! [`DEFAULT_LOG_MAX_BYTES`] (64 MiB; `SimulatorBuilder::log_max_bytes`, `--log-max-bytes`)
//! of retained data, whichever is reached first; the oldest exchanges are dropped first. Of
//! each request and response body it keeps a copy of at most [`BODY_CAPTURE_LIMIT`] (1 MiB),
//! so a large upload is freed as soon as its request ends.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http_body::Frame;
use smartcar_api::op::Operation;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::faults::{FaultApplied, FaultKind};

/// How many exchanges the log keeps (the oldest are dropped first).
pub const LOG_CAPACITY: usize = 10_000;
/// How many bytes of each request and response body the log keeps (a copy: the rest of a
/// large body is never retained).
pub const BODY_CAPTURE_LIMIT: usize = 1024 * 1024;
/// Default bound of the bytes the whole log retains (bodies, headers, paths and a fixed
/// overhead per exchange; see [`RecordedRequest::retained_bytes`]): 64 MiB.
pub const DEFAULT_LOG_MAX_BYTES: usize = 64 * 1024 * 1024;
/// What [`RecordedRequest::retained_bytes`] counts for an exchange besides its text and bodies.
const ENTRY_OVERHEAD: usize = 256;
/// Shortest echoed secret that is masked in free text (a shorter value would mask ordinary
/// words; such values are not real secrets of the platform).
const MIN_ECHO_LEN: usize = 4;
/// Largest request body accepted (bodies are buffered, within the body timeout, before a
/// handler runs).
const REQUEST_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Distinct (path template) keys counted; past this, requests count under `<other>`.
const MAX_COUNTED_PATHS: usize = 4096;

/// Form fields whose values never reach the log.
const SECRET_FORM_FIELDS: &[&str] = &[
    "client_secret",
    "refresh_token",
    "code",
    "access_token",
    "challenge",
    "password",
    "token",
];
/// JSON keys whose values never reach the log (`code` is an error code in JSON bodies).
const SECRET_JSON_KEYS: &[&str] = &[
    "client_secret",
    "refresh_token",
    "access_token",
    "challenge",
    "password",
    "token",
    "amt",
];
/// The mask that replaces a secret value.
pub const MASK: &str = "***";

/// One HTTP exchange as the simulator saw it, secrets masked.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Position in the log since the simulator started (1, 2, …).
    pub seq: u64,
    /// Simulated time the request arrived.
    pub at: DateTime<Utc>,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path as sent (`/v2.0/vehicles/36ab…/odometer`).
    pub path: String,
    /// The route template that matched (`/v2.0/vehicles/{vehicle_id}/odometer`), if any.
    pub template: Option<String>,
    /// The raw query string, if any (never holds secrets on this platform's endpoints).
    pub query: Option<String>,
    /// Request headers in arrival order, lower-case names, secrets masked.
    pub headers: Vec<(String, String)>,
    /// Request body (first [`BODY_CAPTURE_LIMIT`] bytes), secret fields masked.
    pub body: Bytes,
    /// Response status.
    pub status: u16,
    /// Response headers, secrets masked.
    pub response_headers: Vec<(String, String)>,
    /// Response body (first [`BODY_CAPTURE_LIMIT`] bytes), secret fields masked. For a
    /// streamed response (a fault that stalls or resets) this is what was sent.
    pub response_body: Bytes,
    /// The injected fault that produced or altered the response, if any (its kind's name,
    /// [`FaultKind::name`]).
    pub fault: Option<&'static str>,
    /// The kind of the injected fault that produced or altered the response, if any.
    pub fault_kind: Option<FaultKind>,
}

impl RecordedRequest {
    /// The operation of the spec this request reached (by method and matched route template),
    /// if any: `None` for paths no operation has (unknown paths, a Connect form post, the
    /// simulator's own endpoints).
    pub fn operation(&self) -> Option<&'static Operation> {
        crate::routing::operation_at(&self.method, self.template.as_deref()?)
    }

    /// The first request header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The first response header named `name` (case-insensitive).
    pub fn response_header(&self, name: &str) -> Option<&str> {
        find_header(&self.response_headers, name)
    }

    /// The request body as text (lossy UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The request body as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The request body as form fields, in order (masked values stay masked).
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The response body as text (lossy UTF-8).
    pub fn response_text(&self) -> String {
        String::from_utf8_lossy(&self.response_body).into_owned()
    }

    /// The response body as JSON, if it is JSON.
    pub fn response_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.response_body).ok()
    }

    /// The bytes this entry holds in memory as the log counts them against its bound: both
    /// bodies, every header, the path, template and query, plus a fixed overhead.
    pub fn retained_bytes(&self) -> usize {
        let text = |pairs: &[(String, String)]| -> usize {
            pairs.iter().map(|(k, v)| k.len() + v.len() + 48).sum()
        };
        ENTRY_OVERHEAD
            + self.method.len()
            + self.path.len()
            + self.template.as_ref().map_or(0, String::len)
            + self.query.as_ref().map_or(0, String::len)
            + text(&self.headers)
            + text(&self.response_headers)
            + self.body.len()
            + self.response_body.len()
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

const METHODS: [Method; 8] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
    Method::TRACE,
];

fn method_index(method: &Method) -> usize {
    METHODS.iter().position(|m| m == method).unwrap_or(7)
}

type Counts = [AtomicU64; 8];

/// The recorded exchanges and the bytes they retain.
#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<RecordedRequest>,
    bytes: usize,
}

/// Request log and counters of one simulator (reached through the handle).
#[derive(Debug)]
pub struct Observer {
    logging: AtomicBool,
    log: Mutex<Log>,
    max_bytes: std::sync::atomic::AtomicUsize,
    seq: AtomicU64,
    total: AtomicU64,
    counts: RwLock<HashMap<String, Counts>>,
    refreshes: AtomicU64,
    connections: Arc<AtomicU64>,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            logging: AtomicBool::new(true),
            log: Mutex::new(Log::default()),
            max_bytes: std::sync::atomic::AtomicUsize::new(DEFAULT_LOG_MAX_BYTES),
            seq: AtomicU64::new(0),
            total: AtomicU64::new(0),
            counts: RwLock::new(HashMap::new()),
            refreshes: AtomicU64::new(0),
            connections: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Observer {
    /// Whether exchanges are recorded.
    pub fn logging(&self) -> bool {
        self.logging.load(Ordering::Relaxed)
    }

    /// Turns recording on or off (counters always run).
    pub fn set_logging(&self, on: bool) {
        self.logging.store(on, Ordering::Relaxed);
    }

    /// A copy of the log, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock_log().entries.iter().cloned().collect()
    }

    /// Empties the log (the counters keep counting).
    pub fn clear_requests(&self) {
        let mut log = self.lock_log();
        log.entries = VecDeque::new();
        log.bytes = 0;
    }

    /// The bytes the log retains now (the sum of [`RecordedRequest::retained_bytes`]); never
    /// more than [`Observer::log_max_bytes`].
    pub fn retained_bytes(&self) -> usize {
        self.lock_log().bytes
    }

    /// The bound of [`Observer::retained_bytes`] (default [`DEFAULT_LOG_MAX_BYTES`]).
    pub fn log_max_bytes(&self) -> usize {
        self.max_bytes.load(Ordering::Relaxed)
    }

    /// Sets the bound of the retained bytes; the oldest exchanges are dropped at once until
    /// the log fits.
    pub fn set_log_max_bytes(&self, max: usize) {
        self.max_bytes.store(max, Ordering::Relaxed);
        let mut log = self.lock_log();
        while log.bytes > max {
            let Some(old) = log.entries.pop_front() else {
                break;
            };
            log.bytes = log.bytes.saturating_sub(old.retained_bytes());
        }
    }

    /// Requests received for `method` and `template` (the route as registered, such as
    /// `/v2.0/vehicles/{vehicle_id}/odometer`; for paths no route matched, the raw path).
    pub fn request_count(&self, method: &str, template: &str) -> u64 {
        let index = Method::from_bytes(method.as_bytes())
            .map(|m| method_index(&m))
            .unwrap_or(7);
        let counts = self.counts.read().unwrap_or_else(|e| e.into_inner());
        counts
            .get(template)
            .map_or(0, |c| c[index].load(Ordering::Relaxed))
    }

    /// Requests received for operation `op` (at its path, with or without a trailing `/`).
    pub fn operation_count(&self, op: &Operation) -> u64 {
        let method = op.method.as_str();
        self.request_count(method, op.path) + self.request_count(method, &format!("{}/", op.path))
    }

    /// Every (method, template, count) with a non-zero count, sorted.
    pub fn request_counts(&self) -> Vec<(String, String, u64)> {
        let counts = self.counts.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = counts
            .iter()
            .flat_map(|(template, c)| {
                METHODS.iter().zip(c.iter()).filter_map(|(m, n)| {
                    let n = n.load(Ordering::Relaxed);
                    (n > 0).then(|| (m.to_string(), template.clone(), n))
                })
            })
            .collect();
        out.sort();
        out
    }

    /// Every request received.
    pub fn total_requests(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Refresh-token grants performed (rotations; idempotent retries within the grace period
    /// are not counted).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// TCP connections accepted.
    pub fn connections_accepted(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn count_refresh(&self) {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_counter(&self) -> Arc<AtomicU64> {
        self.connections.clone()
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, method: &Method, template: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let index = method_index(method);
        {
            let counts = self.counts.read().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = counts.get(template) {
                c[index].fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        let key = if counts.len() < MAX_COUNTED_PATHS {
            template
        } else {
            "<other>"
        };
        counts.entry(key.to_owned()).or_default()[index].fetch_add(1, Ordering::Relaxed);
    }

    fn push(&self, mut entry: RecordedRequest) {
        entry.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let size = entry.retained_bytes();
        let max = self.log_max_bytes();
        let mut log = self.lock_log();
        // Oldest first, until both the count and the byte bound hold with the new entry.
        while !log.entries.is_empty()
            && (log.entries.len() >= LOG_CAPACITY || log.bytes + size > max)
        {
            if let Some(old) = log.entries.pop_front() {
                log.bytes = log.bytes.saturating_sub(old.retained_bytes());
            }
        }
        if size > max {
            // Larger than the whole bound on its own (a tiny bound): not kept.
            return;
        }
        log.bytes += size;
        log.entries.push_back(entry);
    }
}

/// What the observing [`middleware`] needs from the state it runs with. The composition root
/// (`server.rs`) implements it for the simulator's state, so that this module depends on
/// neither the state nor the routes.
pub(crate) trait Observed: Clone + Send + Sync + Unpin + 'static {
    /// The request log and counters.
    fn observer(&self) -> &Observer;
    /// Simulated now (the log's timestamps).
    fn now(&self) -> DateTime<Utc>;
    /// How long a request's body may take to arrive once its headers did (408 past it).
    fn body_timeout(&self) -> std::time::Duration;
    /// Runs the request on: the fault rules, then the routes.
    fn forward(&self, req: Request, next: Next) -> impl Future<Output = Response> + Send;
}

/// The middleware: request id, counters, and (when on) the log.
pub(crate) async fn middleware<S: Observed>(
    State(state): State<S>,
    req: Request,
    next: Next,
) -> Response {
    let observer = state.observer();
    match req.extensions().get::<MatchedPath>() {
        Some(template) => observer.count(req.method(), template.as_str()),
        None => observer.count(req.method(), req.uri().path()),
    }
    // A request with a body: read it whole within the body timeout (a client trickling it,
    // or announcing more than it sends, cannot hold the connection open).
    let (parts, body) = req.into_parts();
    let body = if body.is_end_stream() {
        None
    } else {
        match read_body(state.body_timeout(), body).await {
            Ok(bytes) => Some(bytes),
            Err(response) => {
                let mut response = *response;
                ensure_request_id(response.headers_mut());
                return response;
            }
        }
    };
    if !observer.logging() {
        let req = Request::from_parts(parts, body.map_or_else(Body::empty, Body::from));
        let mut response = state.forward(req, next).await;
        ensure_request_id(response.headers_mut());
        return response;
    }
    let body = body.unwrap_or_default();
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("x-www-form-urlencoded"));
    let secrets = received_secrets(&parts.headers, parts.uri.query(), &body, form);
    let entry = RecordedRequest {
        seq: 0,
        at: state.now(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        template: parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned()),
        query: parts.uri.query().map(mask_query),
        headers: masked_headers(&parts.headers),
        // Masked on the whole body (a cut JSON body would not parse), then copied: the log
        // never shares the request's buffer.
        body: capture(&mask_body(&body, form)),
        status: 0,
        response_headers: Vec::new(),
        response_body: Bytes::new(),
        fault: None,
        fault_kind: None,
    };
    let req = Request::from_parts(parts, Body::from(body));
    let mut response = state.forward(req, next).await;
    ensure_request_id(response.headers_mut());

    let mut entry = entry;
    entry.status = response.status().as_u16();
    entry.response_headers = masked_headers(response.headers());
    let fault = response.extensions().get::<FaultApplied>().map(|f| f.0);
    entry.fault = fault.map(FaultKind::name);
    entry.fault_kind = fault;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));

    // Faults that stream on purpose must not be buffered here.
    let streamed = fault.is_some_and(FaultKind::streams);
    if !streamed && response.body().size_hint().exact().is_some() {
        // A buffered body (every normal response): record it now, before the client can see
        // the response, so a test reading the log right after its request finds the entry.
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        entry.response_body = mask_response(&bytes, json, &secrets);
        observer.push(entry);
        Response::from_parts(parts, Body::from(bytes))
    } else {
        // A streamed body (stalls, resets): record what was sent when it ends or is dropped.
        let (parts, body) = response.into_parts();
        let recording = RecordingBody {
            inner: body,
            captured: Vec::new(),
            entry: Some(entry),
            json,
            secrets,
            state: state.clone(),
        };
        Response::from_parts(parts, Body::new(recording))
    }
}

/// Reads a request body whole: at most [`REQUEST_BODY_LIMIT`] bytes (413 past it), within
/// the body timeout counted from now (408 past it, and the connection is closed).
async fn read_body(timeout: std::time::Duration, body: Body) -> Result<Bytes, Box<Response>> {
    let error = |status: StatusCode, message: &str| {
        let mut response = ApiError::validation("body", message)
            .with_status(status)
            .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        Box::new(response)
    };
    match tokio::time::timeout(timeout, collect(body)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(BodyError::TooLarge)) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large: send at most 16 MiB.",
        )),
        Ok(Err(BodyError::Broken)) => Err(error(
            StatusCode::BAD_REQUEST,
            "The request body could not be read: send it again, whole.",
        )),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "The request body did not arrive within {} seconds of its headers: send the whole body at once.",
                timeout.as_secs_f64()
            ),
        )),
    }
}

/// Why a request body could not be read.
enum BodyError {
    /// Longer than [`REQUEST_BODY_LIMIT`].
    TooLarge,
    /// The client went away or sent a broken encoding.
    Broken,
}

/// Buffers a body of at most [`REQUEST_BODY_LIMIT`] bytes (a body in one frame is not copied).
async fn collect(mut body: Body) -> Result<Bytes, BodyError> {
    // The announced length (hyper's hint from `content-length`), so that joining the frames
    // allocates once.
    let expected = usize::try_from(body.size_hint().lower())
        .unwrap_or(usize::MAX)
        .min(REQUEST_BODY_LIMIT);
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
            continue; // trailers
        };
        len += data.len();
        if len > REQUEST_BODY_LIMIT {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            previous => {
                if joined.is_empty() {
                    joined.reserve(expected.max(len));
                }
                if let Some(previous) = previous {
                    joined.extend_from_slice(&previous);
                }
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// A copy of the first [`BODY_CAPTURE_LIMIT`] bytes of `body` (never a view of its buffer).
fn capture(body: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&body[..body.len().min(BODY_CAPTURE_LIMIT)])
}

/// Every secret value a request carried: the bearer token, the Basic password, the secret form
/// fields and JSON keys of its body, secret query parameters. Longest first, so that masking
/// one never leaves part of a longer one.
fn received_secrets(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    form: bool,
) -> Vec<String> {
    let mut secrets = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION) {
        let Ok(text) = value.to_str() else { continue };
        let Some((scheme, credential)) = text.trim().split_once(' ') else {
            secrets.push(text.trim().to_owned());
            continue;
        };
        let credential = credential.trim();
        secrets.push(credential.to_owned());
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credential)
                && let Ok(decoded) = String::from_utf8(decoded)
            {
                if let Some((_, password)) = decoded.split_once(':') {
                    secrets.push(password.to_owned());
                }
                secrets.push(decoded);
            }
        }
    }
    let secret_pairs = |raw: &[u8], secrets: &mut Vec<String>| {
        for (k, v) in url::form_urlencoded::parse(raw) {
            if SECRET_FORM_FIELDS.contains(&k.as_ref()) {
                secrets.push(v.into_owned());
            }
        }
    };
    if let Some(query) = query {
        secret_pairs(query.as_bytes(), &mut secrets);
    }
    if form {
        secret_pairs(body, &mut secrets);
    } else if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        json_secrets(&value, &mut secrets);
    }
    secrets.retain(|s| s.len() >= MIN_ECHO_LEN);
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    secrets
}

/// The string values of [`SECRET_JSON_KEYS`] anywhere in `value`.
fn json_secrets(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) if SECRET_JSON_KEYS.contains(&k.as_str()) => {
                        out.push(s.clone());
                    }
                    other => json_secrets(other, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_secrets(v, out)),
        _ => {}
    }
}

/// Replaces every occurrence of a secret in `text`; true when something was replaced.
fn mask_echoes(text: &mut String, secrets: &[String]) -> bool {
    let mut changed = false;
    for secret in secrets {
        if text.contains(secret.as_str()) {
            *text = text.replace(secret.as_str(), MASK);
            changed = true;
        }
    }
    changed
}

/// Masks echoed secrets in every string value of `value`; true when something was masked.
fn mask_json_echoes(value: &mut serde_json::Value, secrets: &[String]) -> bool {
    match value {
        serde_json::Value::String(s) => mask_echoes(s, secrets),
        serde_json::Value::Object(map) => map
            .values_mut()
            .fold(false, |changed, v| mask_json_echoes(v, secrets) | changed),
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| mask_json_echoes(v, secrets) | changed),
        _ => false,
    }
}

/// What the log keeps of a response body: at most [`BODY_CAPTURE_LIMIT`] bytes, a copy,
/// secret JSON keys masked, and every secret of the request masked where it is echoed.
fn mask_response(body: &[u8], json: bool, secrets: &[String]) -> Bytes {
    let captured = &body[..body.len().min(BODY_CAPTURE_LIMIT)];
    if json && let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(captured) {
        let masked = mask_json(&mut value) | mask_json_echoes(&mut value, secrets);
        if masked && let Ok(out) = serde_json::to_vec(&value) {
            return Bytes::from(out);
        }
        return Bytes::copy_from_slice(captured);
    }
    if !secrets.is_empty()
        && let Ok(text) = std::str::from_utf8(captured)
    {
        let mut text = text.to_owned();
        mask_echoes(&mut text, secrets);
        return Bytes::from(text);
    }
    Bytes::copy_from_slice(captured)
}

/// Masks secret parameters ([`SECRET_FORM_FIELDS`]) of a query string.
fn mask_query(query: &str) -> String {
    let secret = url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, _)| SECRET_FORM_FIELDS.contains(&k.as_ref()));
    if !secret {
        return query.to_owned();
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if SECRET_FORM_FIELDS.contains(&k.as_ref()) {
            out.append_pair(&k, MASK);
        } else {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

fn ensure_request_id(headers: &mut HeaderMap) {
    static SC_REQUEST_ID: HeaderName = HeaderName::from_static("sc-request-id");
    if !headers.contains_key(&SC_REQUEST_ID)
        && let Ok(value) = HeaderValue::from_str(&fast_request_id())
    {
        headers.insert(SC_REQUEST_ID.clone(), value);
    }
}

/// A request id in UUID v4 layout without a system call per request: a process-wide counter
/// run through SplitMix64 (request ids must be unique, not unguessable; tokens and codes still
/// come from the OS generator).
fn fast_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let bytes = *uuid::Uuid::new_v4().as_bytes();
        u64::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        ])
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut rng = crate::fleet::Rng::new(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn masked_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let masked = match name.as_str() {
                "authorization" | "proxy-authorization" => match text.split_once(' ') {
                    Some((scheme, _)) => format!("{scheme} {MASK}"),
                    None => MASK.to_owned(),
                },
                "cookie" | "set-cookie" => MASK.to_owned(),
                "location" => mask_location(&text),
                _ => text,
            };
            (name.as_str().to_owned(), masked)
        })
        .collect()
}

/// Masks secret query parameters (`code`) of a redirect target.
fn mask_location(location: &str) -> String {
    let Ok(mut url) = url::Url::parse(location) else {
        return location.to_owned();
    };
    if url.query().is_none() {
        return location.to_owned();
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if SECRET_FORM_FIELDS.contains(&k.as_ref()) {
                MASK.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

/// Masks secrets in a form or JSON body; anything else is kept as is.
pub(crate) fn mask_body(body: &Bytes, form: bool) -> Bytes {
    if body.is_empty() {
        return body.clone();
    }
    if form {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(body) {
            if SECRET_FORM_FIELDS.contains(&k.as_ref()) {
                out.append_pair(&k, MASK);
            } else {
                out.append_pair(&k, &v);
            }
        }
        return Bytes::from(out.finish());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            if mask_json(&mut value) {
                serde_json::to_vec(&value).map_or_else(|_| body.clone(), Bytes::from)
            } else {
                body.clone()
            }
        }
        Err(_) => body.clone(),
    }
}

/// Replaces secret values in place; true when something was masked.
fn mask_json(value: &mut serde_json::Value) -> bool {
    let mut changed = false;
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_JSON_KEYS.contains(&k.as_str()) && !v.is_null() {
                    *v = serde_json::Value::String(MASK.to_owned());
                    changed = true;
                } else {
                    changed |= mask_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                changed |= mask_json(v);
            }
        }
        _ => {}
    }
    changed
}

/// A response body that copies what it streams and records the exchange when it ends, fails
/// or is dropped (the client went away).
struct RecordingBody<S: Observed> {
    inner: Body,
    captured: Vec<u8>,
    entry: Option<RecordedRequest>,
    json: bool,
    /// Secrets the request carried, masked where the response echoes them.
    secrets: Vec<String>,
    state: S,
}

impl<S: Observed> RecordingBody<S> {
    fn finish(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            let captured = std::mem::take(&mut self.captured);
            entry.response_body = mask_response(&captured, self.json, &self.secrets);
            self.state.observer().push(entry);
        }
    }
}

impl<S: Observed> HttpBody for RecordingBody<S> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let room = BODY_CAPTURE_LIMIT.saturating_sub(this.captured.len());
                    this.captured
                        .extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Poll::Ready(_) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S: Observed> Drop for RecordingBody<S> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A TCP listener that counts the connections it accepts and turns Nagle's algorithm off on
/// each (small request/response exchanges would otherwise wait on delayed ACKs).
pub(crate) struct CountingListener {
    pub(crate) inner: TcpListener,
    pub(crate) accepted: Arc<AtomicU64>,
    /// Where each connection registers, so that a garbage fault can reach it.
    pub(crate) connections: crate::faults::Connections,
}

impl axum::serve::Listener for CountingListener {
    type Io = crate::faults::FaultyIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (crate::faults::FaultyIo, std::net::SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    self.accepted.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    let io = crate::faults::FaultyIo::new(stream, addr, &self.connections);
                    return (io, addr);
                }
                // Too many open files and the like: back off briefly, as axum's own listener.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_form_json_headers_and_locations() {
        let form = mask_body(
            &Bytes::from_static(b"grant_type=refresh_token&refresh_token=abc&client_secret=s"),
            true,
        );
        assert_eq!(
            form,
            "grant_type=refresh_token&refresh_token=***&client_secret=***"
        );
        let json = mask_body(
            &Bytes::from_static(br#"{"access_token":"a","code":"ASLEEP","x":[{"challenge":"c"}]}"#),
            false,
        );
        assert_eq!(
            json,
            r#"{"access_token":"***","code":"ASLEEP","x":[{"challenge":"***"}]}"#
        );
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        h.insert(
            "location",
            HeaderValue::from_static("http://localhost:8000/cb?code=xyz&state=s"),
        );
        let masked = masked_headers(&h);
        assert_eq!(find_header(&masked, "Authorization"), Some("Basic ***"));
        assert_eq!(
            find_header(&masked, "location"),
            Some("http://localhost:8000/cb?code=***&state=s")
        );
    }
}
