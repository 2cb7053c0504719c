//! The one error type of the SDK.
//!
//! Every failure is an [`Error`]; [`Error::kind`] says coarsely what happened (for matching and
//! metrics), and the variants carry the details. API errors keep every field Smartcar sends
//! ([`ApiError`]), whatever the body's shape (v2.0, v1.0, v3 `errors[]`, or a non-JSON gateway
//! page), and always the HTTP status and `sc-request-id`. No variant ever holds a secret:
//! - the credential a request sent (client secret, code, refresh token, bearer token,
//!   management token) is redacted wherever an answer echoes it, as sent, URL-encoded or
//!   JSON-escaped;
//! - nothing of a token endpoint's answer that the SDK could not read is kept (no excerpt,
//!   no serde message quoting a value): such an answer may hold freshly issued tokens. The
//!   error keeps the status, the request id and, in the SDK's words, what was wrong.
//!
//! Errors of API calls may quote the start of a response body
//! ([`DecodeError::body_excerpt`]), which can hold the vehicle owner's personal data: show
//! users a fixed message and the request id rather than the error's text.

use std::fmt;
use std::time::Duration;

use smartcar_api::open_enums::{ErrorType, ResolutionType};

/// Coarse classification of an [`Error`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The client was configured wrongly (missing or invalid setting).
    Configuration,
    /// An argument was rejected before any request was sent (VIN, charge limit, id, scope…).
    InvalidInput,
    /// The API answered with an error body (see [`ApiError`]).
    Api,
    /// A token endpoint answered an OAuth error (see [`OAuthError`]).
    OAuth,
    /// The user's authorization is gone (refresh token expired, revoked or already used): send
    /// them through Smartcar Connect again.
    ReauthorizationRequired,
    /// Smartcar Connect redirected back with an error (`access_denied`, …).
    Connect,
    /// The `state` of a Connect redirect did not match the one issued (possible CSRF).
    StateMismatch,
    /// The request did not complete in time.
    Timeout,
    /// The request could not be sent or the response not received (DNS, connect, reset, TLS).
    Transport,
    /// The response could not be understood (malformed or unexpected body).
    Decode,
    /// The token store failed.
    TokenStore,
    /// A rate limit would hold the call back longer than the limiter waits; nothing was sent.
    RateLimited,
    /// The vehicle's monthly budget of calls is used up; nothing was sent.
    BudgetExhausted,
    /// The limiter's store failed; nothing was sent.
    LimiterStore,
}

/// What part of an exchange failed, for an [`Error::Transport`] (a timeout is
/// [`Error::Timeout`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// The connection could not be opened (DNS, refused, TLS handshake): the request surely
    /// did not reach the server.
    Connect,
    /// The connection failed while the response (its body) was being read.
    Body,
    /// The request could not be built or sent whole.
    Request,
    /// The server redirected; the SDK follows no redirect.
    Redirect,
    /// Anything else.
    Other,
}

impl TransportKind {
    /// What failed, in words (the [`Error::Transport`] message).
    pub fn message(self) -> &'static str {
        match self {
            TransportKind::Connect => "could not connect",
            TransportKind::Body => "the connection failed while reading the response",
            TransportKind::Request => "the request could not be sent",
            TransportKind::Redirect => "the server redirected, and redirects are not followed",
            TransportKind::Other => "the request failed",
        }
    }

    /// The kind of a `reqwest` error (not a timeout: that is [`Error::Timeout`]).
    pub(crate) fn of(e: &reqwest::Error) -> TransportKind {
        if e.is_connect() {
            TransportKind::Connect
        } else if e.is_body() || e.is_decode() {
            TransportKind::Body
        } else if e.is_redirect() {
            TransportKind::Redirect
        } else if e.is_request() {
            TransportKind::Request
        } else {
            TransportKind::Other
        }
    }
}

/// Errors of the Smartcar SDK.
///
/// ```
/// # fn check(e: smartcar::Error) {
/// match e.kind() {
///     smartcar::ErrorKind::ReauthorizationRequired => { /* send the user to Connect again */ }
///     smartcar::ErrorKind::Api if e.api().is_some_and(|a| a.is_retryable()) => { /* later */ }
///     _ => eprintln!("{e}"),
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required setting is missing or invalid.
    #[error("invalid configuration: {setting}: {message}")]
    Configuration {
        /// The setting (builder method or environment variable), e.g. `SMARTCAR_CLIENT_ID`.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// An argument was rejected before sending anything.
    #[error("invalid {what}: {message}")]
    InvalidInput {
        /// What was invalid (e.g. `VIN`, `charge limit`).
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The API answered an error.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// A token endpoint answered an OAuth error.
    #[error("{0}")]
    OAuth(Box<OAuthError>),
    /// The user must reconnect through Smartcar Connect.
    #[error("the user must reconnect their vehicle through Smartcar Connect: {reason}")]
    ReauthorizationRequired {
        /// Why (expired refresh token, refresh token rejected, connection removed…).
        reason: String,
        /// The token endpoint's answer, when there was one.
        #[source]
        source: Option<Box<OAuthError>>,
    },
    /// Smartcar Connect redirected back with an error.
    #[error("{0}")]
    Connect(Box<ConnectError>),
    /// The `state` of a Connect redirect is not the one issued.
    #[error(
        "the state of the Connect redirect does not match the one issued: the redirect may be forged (CSRF) or belong to another login attempt; start the login again"
    )]
    StateMismatch,
    /// The request timed out.
    #[error(
        "{operation}: no response within {timeout:?}; the request may or may not have reached the vehicle"
    )]
    Timeout {
        /// Method and path template, e.g. `GET /v2.0/vehicles/{vehicle_id}/odometer`.
        operation: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// Sending the request or receiving the response failed.
    #[error("{operation}: {message}")]
    Transport {
        /// Method and path template.
        operation: String,
        /// What failed, as a type (retries decide on it: only [`TransportKind::Connect`]
        /// proves a command was not sent).
        kind: TransportKind,
        /// What failed, in words (the underlying error is the source).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The response could not be decoded.
    #[error("{0}")]
    Decode(Box<DecodeError>),
    /// The token store failed.
    #[error("token store: {message}")]
    TokenStore {
        /// What failed.
        message: String,
        /// The store's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The client's limiter ([`crate::limits`]) would have to wait longer than its
    /// [`max_wait`](crate::limits::Limits::max_wait) for `scope`; nothing was sent.
    #[error(
        "{operation}: {scope} allows the next request in {retry_after:?}, longer than the limiter waits; nothing was sent. Try again later, raise `Limits::max_wait` for batch jobs, or spread the calls out"
    )]
    RateLimited {
        /// Method and path template.
        operation: String,
        /// Which limit.
        scope: LimitScope,
        /// When a request could go.
        retry_after: Duration,
    },
    /// The vehicle's monthly budget of calls ([`crate::limits::MonthlyBudget`], or the
    /// platform's 430 `VEHICLE_REQUEST_LIMIT` learned earlier) does not cover this call;
    /// nothing was sent.
    #[error(
        "{operation}: vehicle {vehicle_id} has used {used} calls this month{}; nothing was sent. The budget renews {renews_at}; subscribe the vehicle to a webhook instead of polling it, or raise the allowance",
        allowance.map(|a| format!(" of its {a}")).unwrap_or_else(|| " and the platform refused more (430 VEHICLE_REQUEST_LIMIT)".to_owned())
    )]
    BudgetExhausted {
        /// Method and path template.
        operation: String,
        /// The vehicle.
        vehicle_id: String,
        /// Calls charged this month.
        used: u32,
        /// The configured allowance (`None`: learned from the platform's 430).
        allowance: Option<u32>,
        /// When the budget renews (the first day of next month, UTC).
        renews_at: chrono::DateTime<chrono::Utc>,
    },
    /// The limiter's store failed; nothing was sent.
    #[error("limiter store: {message}")]
    LimiterStore {
        /// What failed.
        message: String,
        /// The store's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Configuration { .. } => ErrorKind::Configuration,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Api(_) => ErrorKind::Api,
            Error::OAuth(_) => ErrorKind::OAuth,
            Error::ReauthorizationRequired { .. } => ErrorKind::ReauthorizationRequired,
            Error::Connect(_) => ErrorKind::Connect,
            Error::StateMismatch => ErrorKind::StateMismatch,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Transport { .. } => ErrorKind::Transport,
            Error::Decode(_) => ErrorKind::Decode,
            Error::TokenStore { .. } => ErrorKind::TokenStore,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::BudgetExhausted { .. } => ErrorKind::BudgetExhausted,
            Error::LimiterStore { .. } => ErrorKind::LimiterStore,
        }
    }

    /// The API error, when this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The OAuth error, when this is one (directly or as the cause of a required
    /// re-authorization).
    pub fn oauth(&self) -> Option<&OAuthError> {
        match self {
            Error::OAuth(e) => Some(e),
            Error::ReauthorizationRequired {
                source: Some(e), ..
            } => Some(e),
            _ => None,
        }
    }

    /// The HTTP status of the response that caused this error, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::OAuth(e) => Some(e.status),
            Error::Decode(e) => e.status,
            _ => None,
        }
    }

    /// The `sc-request-id` of the failed response, if any (quote it to Smartcar support).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.request_id.as_deref(),
            Error::Decode(e) => e.request_id.as_deref(),
            _ => None,
        }
    }

    /// What part of the exchange failed, when this is an [`Error::Transport`].
    ///
    /// ```
    /// # fn check(e: smartcar::Error) {
    /// if e.transport_kind() == Some(smartcar::error::TransportKind::Connect) {
    ///     // the request never left: sending it again is safe, even for a command
    /// }
    /// # }
    /// ```
    pub fn transport_kind(&self) -> Option<TransportKind> {
        match self {
            Error::Transport { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// How long the server asked to wait before retrying (`retry-after`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api(e) => e.retry_after,
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            what,
            message: message.into(),
        }
    }

    pub(crate) fn config(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Configuration {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// Which limit holds a call back (an [`Error::RateLimited`]; `smartcar::limits::LimitScope`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// The application-wide bucket (configured, or learned from a 429 `SMARTCAR_API`).
    Application,
    /// The vehicle's throttle (configured, or learned from a 429 `VEHICLE`).
    Vehicle,
}

impl fmt::Display for LimitScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitScope::Application => "the application's rate limit",
            LimitScope::Vehicle => "the vehicle's rate limit",
        })
    }
}

/// Which shape the error body had.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyShape {
    /// The v2.0 body (`type`, `code`, `description`, `docURL`, `statusCode`, …).
    V2,
    /// The v1.0 body (`error`, `message`, `code`).
    V1,
    /// The v3 list (`errors: [{status, type, code, title, detail, …}]`); the first entry is used.
    V3,
    /// No recognisable JSON error body (an HTML gateway page, an empty body, …).
    Unrecognized,
}

/// An error answered by the Smartcar API, with every field of its body.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `type` (v2/v3) or the v1 `error` mapped to a type; `None` when the body had none.
    pub error_type: Option<ErrorType>,
    /// `code`, e.g. `ASLEEP`, `VEHICLE`; `None` for AUTHENTICATION, PERMISSION….
    pub code: Option<String>,
    /// `description` (v2), `message` (v1) or `detail` (v3); for unrecognised bodies a short
    /// excerpt of the body.
    pub description: String,
    /// `docURL` (v2) or `links.about` (v3).
    pub doc_url: Option<String>,
    /// `requestId` of the body, or the `sc-request-id` header.
    pub request_id: Option<String>,
    /// `resolution.type`: what to do about it.
    pub resolution: Option<ResolutionType>,
    /// `resolution.url`: where to send the user (e.g. the re-authentication page).
    pub resolution_url: Option<String>,
    /// `detail` (v2 validation errors) as sent.
    pub detail: Vec<serde_json::Value>,
    /// `suggestedUserMessage`: a message fit to show the vehicle's owner.
    pub suggested_user_message: Option<String>,
    /// The `retry-after` header.
    pub retry_after: Option<Duration>,
    /// v3 `title`.
    pub title: Option<String>,
    /// Which body shape this came from.
    pub shape: BodyShape,
}

impl ApiError {
    /// Whether retrying the same request later may succeed: rate limits, server and upstream
    /// errors, and the transient vehicle states (`ASLEEP`, `UNREACHABLE`, `UNKNOWN`…), or
    /// whenever the platform's resolution says `RETRY_LATER`.
    pub fn is_retryable(&self) -> bool {
        if self.resolution == Some(ResolutionType::RetryLater) {
            return true;
        }
        matches!(self.status, 429 | 500 | 502 | 503 | 504)
    }

    /// Whether the user must go through Connect again (`REAUTHENTICATE`).
    pub fn needs_reauthentication(&self) -> bool {
        self.resolution == Some(ResolutionType::Reauthenticate)
    }

    /// Reads an error response like [`from_response`](Self::from_response), with every form
    /// of each of `secrets` (the credential the call sent) redacted: from the body before it
    /// is read (so that no field, nor the cut excerpt, keeps part of one) and from every field
    /// after (so that a JSON-escaped echo is caught too). With `show_body` false an
    /// unrecognised body is not quoted at all.
    pub(crate) fn from_response_redacted(
        status: u16,
        headers: &http::HeaderMap,
        body: &[u8],
        secrets: &[&str],
        show_body: bool,
    ) -> ApiError {
        if !secrets.iter().any(|s| s.len() >= MIN_SECRET_LEN) {
            return ApiError::read(status, headers, body, show_body);
        }
        let text = redact(&String::from_utf8_lossy(body), secrets);
        let mut error = ApiError::read(status, headers, text.as_bytes(), show_body);
        error.redact(secrets);
        error
    }

    /// Redacts every form of each of `secrets` from every field.
    pub(crate) fn redact(&mut self, secrets: &[&str]) {
        let fix = |s: &mut String| *s = redact(s, secrets);
        fix(&mut self.description);
        for field in [
            &mut self.code,
            &mut self.doc_url,
            &mut self.request_id,
            &mut self.resolution_url,
            &mut self.suggested_user_message,
            &mut self.title,
        ]
        .into_iter()
        .flatten()
        {
            fix(field);
        }
        if let Some(t) = &self.error_type {
            let redacted = redact(t.as_ref(), secrets);
            if redacted != t.as_ref() {
                self.error_type = Some(ErrorType::from(redacted.as_str()));
            }
        }
        if let Some(r) = &self.resolution {
            let redacted = redact(r.as_ref(), secrets);
            if redacted != r.as_ref() {
                self.resolution = Some(ResolutionType::from(redacted.as_str()));
            }
        }
        for value in &mut self.detail {
            redact_json(value, secrets);
        }
    }

    /// Reads an error response: any status ≥ 400, any body. Never fails.
    pub fn from_response(status: u16, headers: &http::HeaderMap, body: &[u8]) -> ApiError {
        ApiError::read(status, headers, body, true)
    }

    /// [`from_response`](Self::from_response); with `show_body` false an unrecognised body is
    /// described by its status, media type and size only, never quoted.
    fn read(status: u16, headers: &http::HeaderMap, body: &[u8], show_body: bool) -> ApiError {
        let unrecognized = |status, headers, body: &[u8]| {
            if show_body {
                describe_unrecognized(status, headers, body)
            } else {
                describe_withheld(status, headers, body.len())
            }
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut error = ApiError {
            status,
            error_type: None,
            code: None,
            description: String::new(),
            doc_url: None,
            request_id: header("sc-request-id"),
            resolution: None,
            resolution_url: None,
            detail: Vec::new(),
            suggested_user_message: None,
            retry_after: header("retry-after").and_then(|v| parse_retry_after(&v)),
            title: None,
            shape: BodyShape::Unrecognized,
        };
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let obj = json.as_ref().and_then(|j| j.as_object());
        let str_of = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        match obj {
            Some(o) if o.get("errors").is_some_and(|e| e.is_array()) => {
                let first = o["errors"].get(0).and_then(|e| e.as_object());
                error.shape = BodyShape::V3;
                if let Some(e) = first {
                    error.error_type = str_of(e.get("type")).map(|t| ErrorType::from(t.as_str()));
                    error.code = str_of(e.get("code"));
                    error.title = str_of(e.get("title"));
                    error.description = str_of(e.get("detail"))
                        .or_else(|| error.title.clone())
                        .unwrap_or_default();
                    error.doc_url = e.get("links").and_then(|l| str_of(l.get("about")));
                    read_resolution(&mut error, e.get("resolution"));
                }
            }
            Some(o) if o.get("type").is_some_and(|t| t.is_string()) => {
                error.shape = BodyShape::V2;
                error.error_type = str_of(o.get("type")).map(|t| ErrorType::from(t.as_str()));
                error.code = str_of(o.get("code"));
                error.description = str_of(o.get("description"))
                    .or_else(|| str_of(o.get("message")))
                    .unwrap_or_default();
                error.doc_url = str_of(o.get("docURL"));
                if let Some(id) = str_of(o.get("requestId")) {
                    error.request_id = Some(id);
                }
                read_resolution(&mut error, o.get("resolution"));
                if let Some(d) = o.get("detail").and_then(|d| d.as_array()) {
                    error.detail = d.clone();
                }
                error.suggested_user_message = str_of(o.get("suggestedUserMessage"));
            }
            Some(o) if o.get("error").is_some_and(|t| t.is_string()) => {
                error.shape = BodyShape::V1;
                let v1 = str_of(o.get("error")).unwrap_or_default();
                error.error_type = Some(v1_type(&v1));
                error.code = str_of(o.get("code")).or(Some(v1));
                error.description = str_of(o.get("message"))
                    .or_else(|| str_of(o.get("error_description")))
                    .unwrap_or_default();
                if let Some(id) = str_of(o.get("requestId")) {
                    error.request_id = Some(id);
                }
            }
            _ => {
                error.description = unrecognized(status, headers, body);
            }
        }
        if error.description.is_empty() {
            error.description = unrecognized(status, headers, body);
        }
        error
    }
}

fn read_resolution(error: &mut ApiError, value: Option<&serde_json::Value>) {
    match value {
        // Older responses send a bare string.
        Some(serde_json::Value::String(s)) => {
            error.resolution = Some(ResolutionType::from(s.as_str()))
        }
        Some(serde_json::Value::Object(r)) => {
            error.resolution = r
                .get("type")
                .and_then(|t| t.as_str())
                .map(ResolutionType::from);
            error.resolution_url = r.get("url").and_then(|u| u.as_str()).map(str::to_owned);
        }
        _ => {}
    }
}

/// v1.0 `error` values mapped to the v2 types they correspond to.
fn v1_type(error: &str) -> ErrorType {
    match error {
        "validation_error" => ErrorType::Validation,
        "authentication_error" => ErrorType::Authentication,
        "permission_error" => ErrorType::Permission,
        "resource_not_found" => ErrorType::ResourceNotFound,
        "vehicle_state_error" => ErrorType::VehicleState,
        "rate_limit_error" => ErrorType::RateLimit,
        "monthly_limit_exceeded" => ErrorType::Billing,
        "server_error" => ErrorType::Server,
        "vehicle_not_capable_error" => ErrorType::Compatibility,
        "version_error" => ErrorType::ResourceNotFound,
        "vehicle_owner_action_required" => ErrorType::ConnectedServicesAccount,
        other => ErrorType::from(other),
    }
}

/// At most this many characters of an unexpected body are kept in an error.
pub(crate) const EXCERPT_CHARS: usize = 200;

/// A short, single-line excerpt of a body for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if trimmed.chars().count() > EXCERPT_CHARS {
        let cut: String = trimmed.chars().take(EXCERPT_CHARS).collect();
        format!("{cut}…")
    } else {
        trimmed
    }
}

fn describe_unrecognized(status: u16, headers: &http::HeaderMap, body: &[u8]) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content type");
    if body.is_empty() {
        format!("HTTP {status} {reason} with an empty body")
    } else {
        format!(
            "HTTP {status} {reason} with an unexpected body ({content_type}): {}",
            excerpt(body)
        )
    }
}

/// The media type of a response (`text/html`), when it is a plain one; what a message may say
/// of a body it does not show.
pub(crate) fn media_type(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '+' | '-');
    (!media.is_empty() && media.len() <= 64 && media.chars().all(plain)).then_some(media)
}

/// What an error says of a body it does not show: its status, media type and size.
pub(crate) fn describe_withheld(status: u16, headers: &http::HeaderMap, size: usize) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    if size == 0 {
        return format!("HTTP {status} {reason} with an empty body");
    }
    format!(
        "HTTP {status} {reason} with an unexpected body ({}, {size} bytes; not shown, as a \
         token endpoint's answers may carry credentials)",
        media_type(headers).unwrap_or("no or an unusual content type")
    )
}

/// `retry-after`: delay-seconds, or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error_type, &self.code) {
            (Some(t), Some(c)) => write!(f, "{t}:{c} - {}", self.description)?,
            (Some(t), None) => write!(f, "{t} - {}", self.description)?,
            (None, _) => write!(f, "{}", self.description)?,
        }
        write!(f, " (HTTP {}", self.status)?;
        if let Some(id) = &self.request_id {
            write!(f, ", request id {id}")?;
        }
        write!(f, ")")?;
        match &self.resolution {
            Some(ResolutionType::RetryLater) => match self.retry_after {
                Some(d) => write!(f, "; retry after {}s", d.as_secs())?,
                None => write!(f, "; retry later")?,
            },
            Some(ResolutionType::Reauthenticate) => {
                write!(f, "; the user must reconnect through Smartcar Connect")?
            }
            Some(ResolutionType::ContactSupport) => write!(f, "; contact Smartcar support")?,
            Some(other) => write!(f, "; resolution: {other}")?,
            None => {}
        }
        if let Some(url) = &self.resolution_url {
            write!(f, " ({url})")?;
        }
        Ok(())
    }
}

/// An OAuth 2.0 error answered by a token endpoint (`{"error", "error_description"}`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthError {
    /// HTTP status.
    pub status: u16,
    /// `error`, e.g. `invalid_grant`, `invalid_client`.
    pub error: smartcar_api::open_enums::OAuthErrorCode,
    /// `error_description`, with any token the platform echoed redacted.
    pub description: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token endpoint answered {} (HTTP {})",
            self.error, self.status
        )?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {}

/// Secrets shorter than this are not searched for (they would match ordinary words).
const MIN_SECRET_LEN: usize = 4;

/// Replaces every occurrence of each secret in `text` with `[redacted]`: the secret as sent,
/// URL-encoded (percent-encoded with upper- or lower-case hex, and form-encoded, as a server
/// quoting a query string or a form body would show it) and JSON-escaped (`/` as `\/`).
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
        for form in secret_forms(s) {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), "[redacted]");
            }
        }
    }
    out
}

/// The forms in which a secret may be echoed back.
fn secret_forms(secret: &str) -> Vec<String> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let mut upper = String::with_capacity(secret.len() * 3);
    let mut lower = String::with_capacity(secret.len() * 3);
    for &b in secret.as_bytes() {
        if unreserved(b) {
            upper.push(b as char);
            lower.push(b as char);
        } else {
            upper.push_str(&format!("%{b:02X}"));
            lower.push_str(&format!("%{b:02x}"));
        }
    }
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = secret.replace('/', "\\/");
    let mut forms = vec![secret.to_owned()];
    for f in [upper, lower, form, json] {
        if !forms.contains(&f) {
            forms.push(f);
        }
    }
    forms
}

/// Redacts every string (and object key) of a JSON value.
fn redact_json(value: &mut serde_json::Value, secrets: &[&str]) {
    match value {
        serde_json::Value::String(s) => *s = redact(s, secrets),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, secrets)),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                redact_json(&mut v, secrets);
                map.insert(redact(&k, secrets), v);
            }
        }
        _ => {}
    }
}

/// Smartcar Connect's error redirect (`error`, `error_description`, and for incompatible
/// vehicles the vehicle's make, model, year and VIN).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectError {
    /// `error`, e.g. `access_denied`, `vehicle_incompatible`.
    pub error: smartcar_api::open_enums::ConnectErrorCode,
    /// `error_description`.
    pub description: Option<String>,
    /// `vin` (incompatible vehicle).
    pub vin: Option<String>,
    /// `make` (incompatible vehicle).
    pub make: Option<String>,
    /// `model` (incompatible vehicle).
    pub model: Option<String>,
    /// `year` (incompatible vehicle).
    pub year: Option<String>,
    /// `status_code` (configuration errors).
    pub status_code: Option<String>,
    /// `error_message`: what the user saw (configuration errors).
    pub error_message: Option<String>,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Smartcar Connect returned `{}`", self.error)?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        let vehicle: Vec<&str> = [&self.year, &self.make, &self.model, &self.vin]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .collect();
        if !vehicle.is_empty() {
            write!(f, " (vehicle: {})", vehicle.join(" "))?;
        }
        Ok(())
    }
}

/// A response that could not be understood.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeError {
    /// Method and path template.
    pub operation: String,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// `sc-request-id`.
    pub request_id: Option<String>,
    /// What was wrong (e.g. the serde error with its JSON path, which for an API call may
    /// quote a value of the response: see [`body_excerpt`](Self::body_excerpt)). For a token
    /// endpoint's answer only the SDK's own words: the kind of problem, the field when it is
    /// one of the token response's, the line and column; never a value of the body.
    pub message: String,
    /// The first characters of the body (at most 200, on one line), to tell what came back.
    ///
    /// **Always empty for a token endpoint's answer**: a 2xx answer the SDK cannot read (a
    /// bad `expires_in`, a truncated body, an HTML page) may still hold freshly issued access
    /// and refresh tokens, so none of it is kept.
    ///
    /// For an API call it is the start of the response body, which may carry **personal
    /// data** of the vehicle's owner (a VIN, a location, a name): like the response itself,
    /// do not show it to other users nor send it to logs that must not hold personal data;
    /// show the error's request id instead (`Error::request_id`).
    pub body_excerpt: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: could not decode the response", self.operation)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s}")?;
            if let Some(id) = &self.request_id {
                write!(f, ", request id {id}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.body_excerpt.is_empty() {
            write!(f, "; body starts: {}", self.body_excerpt)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_a_v2_body() {
        let body = br#"{"type":"RATE_LIMIT","code":"VEHICLE","description":"Slow down.","docURL":"https://d","statusCode":429,"requestId":"r-1","resolution":{"type":"RETRY_LATER"},"suggestedUserMessage":"Wait."}"#;
        let e = ApiError::from_response(429, &headers(&[("retry-after", "30")]), body);
        assert_eq!(e.shape, BodyShape::V2);
        assert_eq!(e.error_type, Some(ErrorType::RateLimit));
        assert_eq!(e.code.as_deref(), Some("VEHICLE"));
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
        assert_eq!(e.resolution, Some(ResolutionType::RetryLater));
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "RATE_LIMIT:VEHICLE - Slow down. (HTTP 429, request id r-1); retry after 30s"
        );
    }

    #[test]
    fn reads_v1_v3_string_resolution_and_unknown_types() {
        let v1 = ApiError::from_response(
            409,
            &HeaderMap::new(),
            br#"{"error":"vehicle_state_error","message":"Vehicle state cannot be determined.","code":"VS_000"}"#,
        );
        assert_eq!(v1.shape, BodyShape::V1);
        assert_eq!(v1.error_type, Some(ErrorType::VehicleState));
        assert_eq!(v1.code.as_deref(), Some("VS_000"));

        let v3 = ApiError::from_response(
            501,
            &headers(&[("sc-request-id", "h-1")]),
            br#"{"errors":[{"status":"501","type":"COMPATIBILITY","code":"MAKE_NOT_COMPATIBLE","title":"Make Not Compatible","detail":"Nope.","links":{"about":"https://d"},"resolution":{"type":null}}]}"#,
        );
        assert_eq!(v3.shape, BodyShape::V3);
        assert_eq!(v3.code.as_deref(), Some("MAKE_NOT_COMPATIBLE"));
        assert_eq!(v3.request_id.as_deref(), Some("h-1"));
        assert_eq!(v3.doc_url.as_deref(), Some("https://d"));

        let odd = ApiError::from_response(
            400,
            &HeaderMap::new(),
            br#"{"type":"BRAND_NEW","description":"x","resolution":"REAUTHENTICATE"}"#,
        );
        assert_eq!(odd.error_type, Some(ErrorType::Unknown("BRAND_NEW".into())));
        assert!(odd.needs_reauthentication());
    }

    #[test]
    fn html_and_empty_bodies_keep_status_and_request_id() {
        let page = b"<html><body><h1>502 Bad Gateway</h1>\n</body></html>";
        let e = ApiError::from_response(
            502,
            &headers(&[("content-type", "text/html"), ("sc-request-id", "r-2")]),
            page,
        );
        assert_eq!(e.shape, BodyShape::Unrecognized);
        assert_eq!(e.status, 502);
        assert_eq!(e.request_id.as_deref(), Some("r-2"));
        assert!(
            e.description.contains("502 Bad Gateway"),
            "{}",
            e.description
        );
        assert!(e.is_retryable());
        let empty = ApiError::from_response(503, &HeaderMap::new(), b"");
        assert_eq!(
            empty.description,
            "HTTP 503 Service Unavailable with an empty body"
        );
    }

    #[test]
    fn excerpts_are_short_and_single_line() {
        let long = "x".repeat(10_000) + "\n";
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(!e.contains('\n'));
    }

    #[test]
    fn redacts_echoed_secrets() {
        assert_eq!(
            redact("Invalid refresh_token: abc-123-def.", &["abc-123-def"]),
            "Invalid refresh_token: [redacted]."
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
