//! Sending one API call: authentication header, retries with backoff that honours
//! `retry-after`, a tracing span, error mapping, response meta.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use smartcar_api::op::{Operation, Security};

use crate::Error;
use crate::client::Client;
use crate::config::{Origins, UnitSystem};
use crate::error::{ApiError, DecodeError, TransportKind, excerpt, redact};
use crate::limits::Limiter;
use crate::tokens::{AccessToken, ApplicationTokenValue};

/// Response metadata Smartcar sends in headers.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// `sc-data-age`: when the vehicle recorded the data.
    pub data_age: Option<DateTime<Utc>>,
    /// `sc-fetched-at`: when Smartcar fetched it from the manufacturer.
    pub fetched_at: Option<DateTime<Utc>>,
    /// `sc-unit-system`: the units of the body.
    pub unit_system: Option<UnitSystem>,
    /// `sc-request-id`: quote it to Smartcar support.
    pub request_id: Option<String>,
}

// The meta headers as constants: looking a `&str` name up parses it on every call.
const SC_DATA_AGE: HeaderName = HeaderName::from_static("sc-data-age");
const SC_FETCHED_AT: HeaderName = HeaderName::from_static("sc-fetched-at");
const SC_UNIT_SYSTEM: HeaderName = HeaderName::from_static("sc-unit-system");
const SC_REQUEST_ID: HeaderName = HeaderName::from_static("sc-request-id");

impl Meta {
    /// Reads the meta headers (malformed values are left out, never an error).
    pub fn from_headers(headers: &HeaderMap) -> Meta {
        let get = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let time = |name: &HeaderName| {
            get(name)
                .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        Meta {
            data_age: time(&SC_DATA_AGE),
            fetched_at: time(&SC_FETCHED_AT),
            unit_system: get(&SC_UNIT_SYSTEM).and_then(UnitSystem::parse),
            request_id: get(&SC_REQUEST_ID).map(str::to_owned),
        }
    }
}

/// A typed response body with its [`Meta`].
#[derive(Clone, Debug, PartialEq)]
pub struct Response<T> {
    /// The body.
    pub data: T,
    /// The headers' metadata.
    pub meta: Meta,
}

impl<T> Response<T> {
    /// Maps the body, keeping the meta.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            data: f(self.data),
            meta: self.meta,
        }
    }
}

/// Whether a call may be sent again after a failure: read from its operation
/// ([`Operation::idempotent`], [`Operation::command`]), never chosen by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads and other idempotent calls: retried on 429, 5xx and transport errors.
    Idempotent,
    /// Commands and other non-idempotent calls: retried only when the platform certainly did
    /// not execute them (the connection could not be opened, or 429 — rate limiting happens
    /// before execution).
    Once,
}

impl Retry {
    /// The retry class of `op`.
    pub(crate) fn of(op: &Operation) -> Retry {
        if op.idempotent && !op.command {
            Retry::Idempotent
        } else {
            Retry::Once
        }
    }

    /// Whether a failure of this class may be sent again.
    fn allows(self, error: &Error) -> bool {
        match (self, error) {
            (Retry::Idempotent, Error::Api(api)) => matches!(api.status, 429 | 500..=599),
            (Retry::Once, Error::Api(api)) => api.status == 429,
            (Retry::Idempotent, Error::Transport { .. } | Error::Timeout { .. }) => true,
            (Retry::Once, Error::Transport { kind, .. }) => *kind == TransportKind::Connect,
            _ => false,
        }
    }
}

/// The `Authorization` of one attempt, built by [`crate::send::Authorizer`] only.
#[derive(Clone)]
pub(crate) enum Credential {
    /// A user's access token (bearer).
    User(AccessToken),
    /// The application token (bearer).
    App(ApplicationTokenValue),
    /// Another bearer token (the application management token).
    Bearer(String),
    /// User and password (client id/secret, `default`/management token).
    Basic(String, String),
    /// No `Authorization` header (a public endpoint).
    None,
}

impl Credential {
    /// The secret part: the bearer token, or the Basic password.
    pub(crate) fn secret(&self) -> &str {
        match self {
            Credential::User(token) => token.secret(),
            Credential::App(token) => token.secret(),
            Credential::Bearer(token) => token,
            Credential::Basic(_, password) => password,
            Credential::None => "",
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::Basic(..) => "Basic([redacted])",
            Credential::None => "None",
            _ => "Bearer([redacted])",
        })
    }
}

/// One call of an operation of the spec, before sending: its method, host, path template,
/// authentication scheme and retry class all come from the [`Operation`].
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: url::Url,
    /// The path template for tracing and errors (`/v2.0/vehicles/{vehicle_id}/odometer`).
    pub(crate) template: &'static str,
    /// How the operation authenticates (picks Basic or Bearer for the management token).
    pub(crate) security: Security,
    pub(crate) retry: Retry,
    pub(crate) headers: HeaderMap,
    /// `sc-unit-system`, set on the request directly (no header map to fill and clone).
    pub(crate) units: Option<UnitSystem>,
    pub(crate) body: Option<Vec<u8>>,
    /// How the limiter counts the call (`None`: not a vehicle-API call).
    pub(crate) metering: Option<crate::limits::Metering>,
    /// Calls billed: 1, or a batch's number of items.
    pub(crate) cost: u32,
}

impl Call {
    /// A call of `op` at `path` (from the operation's `ops::X::path(..)`) on the operation's
    /// host, with `query`.
    pub(crate) fn new(
        op: &'static Operation,
        origins: &Origins,
        path: &str,
        query: &[(&str, String)],
    ) -> Call {
        let mut url = crate::config::join(origins.origin(op.host), path);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Call::to(op, url)
    }

    /// A call of `op` to a URL built beforehand from it (the vehicle handles keep theirs:
    /// building a URL percent-encodes its path, which costs more than the rest of a call's own
    /// work).
    pub(crate) fn to(op: &'static Operation, url: url::Url) -> Call {
        Call {
            method: op.method.http(),
            url,
            template: op.path,
            security: op.security,
            retry: Retry::of(op),
            headers: HeaderMap::new(),
            units: None,
            body: None,
            metering: crate::limits::Metering::of(op),
            cost: 1,
        }
    }

    /// The escape hatch's call: a path the spec does not describe, under `base` (its host and
    /// authentication), retried as a read only for `GET`.
    pub(crate) fn unlisted(
        base: &'static Operation,
        method: Method,
        url: url::Url,
        template: &'static str,
    ) -> Call {
        let retry = if method == Method::GET {
            Retry::Idempotent
        } else {
            Retry::Once
        };
        Call {
            method,
            template,
            retry,
            metering: crate::limits::Metering::at(base.host, template, false),
            ..Call::to(base, url)
        }
    }

    /// Bills the call as `cost` calls (a batch: one per item).
    pub(crate) fn cost(mut self, cost: u32) -> Call {
        self.cost = cost.max(1);
        self
    }

    /// Adds a header, when `value` is given.
    pub(crate) fn header(mut self, name: &'static str, value: Option<&str>) -> Result<Call, Error> {
        if let Some(v) = value {
            header(&mut self.headers, name, v)?;
        }
        Ok(self)
    }

    /// Sends `sc-unit-system`, when `units` is given.
    pub(crate) fn unit_system(mut self, units: Option<UnitSystem>) -> Call {
        self.units = units;
        self
    }

    /// Sets a JSON body, when one is given.
    pub(crate) fn json<B: serde::Serialize + ?Sized>(
        mut self,
        body: Option<&B>,
    ) -> Result<Call, Error> {
        self.body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::invalid("request body", e.to_string()))?;
        Ok(self)
    }

    /// `GET /v2.0/...`: how errors name this call (formatted only when an error needs it).
    pub(crate) fn operation(&self) -> String {
        OperationName(&self.method, self.template).to_string()
    }
}

/// `GET /v2.0/…`: how errors name a call, formatted only when an error needs it.
pub(crate) struct OperationName<'a>(pub(crate) &'a Method, pub(crate) &'a str);

impl fmt::Display for OperationName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// The raw answer of a successful call.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl RawResponse {
    /// A whole answer as the SDK accepts it: any non-2xx status (a 3xx too: no redirect is
    /// followed) is an [`Error::Api`] read from the body, with the call's own credential
    /// (`secret`: the bearer token or the Basic password) redacted wherever the body echoes
    /// it, as sent or URL-encoded.
    pub(crate) fn checked(
        status: u16,
        headers: HeaderMap,
        body: bytes::Bytes,
        secret: &str,
    ) -> Result<RawResponse, Error> {
        if !(200..300).contains(&status) {
            return Err(Error::Api(Box::new(ApiError::from_response_redacted(
                status,
                &headers,
                &body,
                &[secret],
                true,
            ))));
        }
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// The body decoded as `T` (an empty body decodes as `null`), with the response's [`Meta`];
    /// `operation` names the call in a decode error (`GET /v2.0/…`).
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        operation: &dyn fmt::Display,
    ) -> Result<Response<T>, Error> {
        let data = if self.body.is_empty() {
            serde_json::from_slice(b"null").or_else(|_| self.json(operation))?
        } else {
            self.json(operation)?
        };
        Ok(Response {
            data,
            meta: Meta::from_headers(&self.headers),
        })
    }

    /// Decodes the body as `T`, keeping status and request id in the error.
    fn json<T: DeserializeOwned>(&self, operation: &dyn fmt::Display) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Decode(Box::new(DecodeError {
                operation: operation.to_string(),
                status: Some(self.status),
                request_id: Meta::from_headers(&self.headers).request_id,
                message: e.to_string(),
                body_excerpt: excerpt(&self.body),
            }))
        })
    }
}

static JITTER: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);

/// A pseudo-random fraction in [0, 1) for backoff jitter (xorshift; quality is irrelevant here).
fn jitter_fraction() -> f64 {
    let mut x = JITTER.load(Ordering::Relaxed) ^ (Instant::now().elapsed().as_nanos() as u64);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    JITTER.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl Client {
    /// Sends one call with `credential`, retrying as its [`Retry`] class allows with the
    /// backoff of [`RetryPolicy::delay`](crate::RetryPolicy); any non-2xx status becomes an
    /// error. One tracing span per attempt.
    pub(crate) async fn execute(
        &self,
        call: &Call,
        credential: &Credential,
    ) -> Result<RawResponse, Error> {
        let limited = match (&self.inner.limiter, call.metering) {
            (Some(limiter), Some(metering)) => {
                Some((limiter, metering.vehicle(&call.url), metering))
            }
            _ => None,
        };
        let mut charged = false;
        let outcome = self.attempts(call, credential, limited, &mut charged).await;
        // A call the platform refused was not billed: its charge comes back.
        if let (Some((limiter, Some(vehicle), _)), Err(error), true) = (limited, &outcome, charged)
            && limiter.charges()
            && Limiter::refunds(error)
            && let Err(e) = limiter.refund(vehicle, call.cost).await
        {
            tracing::warn!(error = %e, "the limiter could not refund a failed call");
        }
        outcome
    }

    /// The attempts of one call, each admitted by the limiter (when the call has one).
    async fn attempts(
        &self,
        call: &Call,
        credential: &Credential,
        limited: Option<(&Limiter, Option<&str>, crate::limits::Metering)>,
        charged: &mut bool,
    ) -> Result<RawResponse, Error> {
        let policy = &self.inner.retry;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        // Where the last backoff ended: the limiter counts it as waited.
        let mut waited_until = i64::MIN;
        loop {
            attempt += 1;
            if let Some((limiter, vehicle, metering)) = limited {
                // The budget is charged once per call, however many attempts it takes.
                limiter
                    .admit(
                        vehicle,
                        call.cost,
                        metering.command,
                        attempt == 1,
                        self.inner.sleep.as_ref(),
                        &OperationName(&call.method, call.template),
                        waited_until,
                    )
                    .await?;
                *charged = true;
            }
            let span = tracing::info_span!(
                "smartcar.request",
                method = %call.method,
                path = call.template,
                attempt,
                status = tracing::field::Empty,
                request_id = tracing::field::Empty,
            );
            let outcome = self
                .send_once(call, credential)
                .instrument(span.clone())
                .await;
            let error = match &outcome {
                Ok(_) => return outcome,
                Err(e) => e,
            };
            if let Error::Api(api) = error {
                span.record("status", api.status);
                if let Some(id) = &api.request_id {
                    span.record("request_id", id.as_str());
                }
                if let Some((limiter, vehicle, _)) = limited
                    && let Err(e) = limiter.learn(vehicle, error).await
                {
                    tracing::warn!(parent: &span, error = %e, "the limiter could not record a refusal");
                }
            }
            if !call.retry.allows(error) {
                return outcome;
            }
            // Full jitter, unless the server said how long to wait.
            let Some(wait) = policy.delay(
                attempt,
                started.elapsed(),
                policy.max_total,
                error.retry_after(),
                Some(jitter_fraction()),
            ) else {
                return outcome;
            };
            tracing::debug!(
                parent: &span,
                wait_ms = wait.as_millis() as u64,
                "retrying {} after a retryable failure",
                call.operation()
            );
            waited_until = self
                .inner
                .clock
                .now()
                .timestamp_millis()
                .saturating_add(wait.as_millis().min(i64::MAX as u128) as i64);
            self.inner.sleep.sleep(wait).await;
        }
    }

    async fn send_once(&self, call: &Call, credential: &Credential) -> Result<RawResponse, Error> {
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone());
        if !call.headers.is_empty() {
            request = request.headers(call.headers.clone());
        }
        if let Some(units) = call.units {
            // A static value: nothing to check.
            request = request.header(SC_UNIT_SYSTEM, HeaderValue::from_static(units.as_str()));
        }
        match credential {
            Credential::Basic(user, password) => {
                request = request.basic_auth(user, Some(password));
            }
            Credential::None => {}
            bearer => {
                let token = bearer.secret();
                // Built in place and handed over without a copy.
                let mut value = Vec::with_capacity(7 + token.len());
                value.extend_from_slice(b"Bearer ");
                value.extend_from_slice(token.as_bytes());
                let mut v =
                    HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).map_err(|_| {
                        Error::invalid("token", "contains characters not allowed in a header")
                    })?;
                v.set_sensitive(true);
                request = request.header(http::header::AUTHORIZATION, v);
            }
        }
        if let Some(body) = &call.body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let mut response = request.send().await.map_err(|e| self.transport(call, e))?;
        let status = response.status().as_u16();
        // Taken, not cloned: reading the body does not need them.
        let headers = std::mem::take(response.headers_mut());
        let (body, complete) = read_body(response, MAX_RESPONSE_BODY)
            .await
            .map_err(|e| self.transport(call, e))?;
        if !complete {
            return Err(Error::Decode(Box::new(DecodeError {
                operation: call.operation(),
                status: Some(status),
                request_id: Meta::from_headers(&headers).request_id,
                message: format!(
                    "the response body exceeds {} MiB; no Smartcar response is that large",
                    MAX_RESPONSE_BODY / (1024 * 1024)
                ),
                // Redacted before the cut: a truncated token is still a leak.
                body_excerpt: excerpt(
                    redact(&String::from_utf8_lossy(&body), &[credential.secret()]).as_bytes(),
                ),
            })));
        }
        let span = tracing::Span::current();
        span.record("status", status);
        if let Some(id) = headers.get(&SC_REQUEST_ID).and_then(|v| v.to_str().ok()) {
            span.record("request_id", id);
        }
        RawResponse::checked(status, headers, body, credential.secret())
    }

    fn transport(&self, call: &Call, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                operation: call.operation(),
                timeout: self.inner.timeout,
            }
        } else {
            let kind = TransportKind::of(&e);
            Error::Transport {
                operation: call.operation(),
                kind,
                message: kind.message().to_owned(),
                source: Some(Box::new(e)),
            }
        }
    }
}

/// The largest response body the SDK reads (8 MiB); a larger one is refused with a
/// [`Error::Decode`] as soon as it is seen, before it is all in memory.
pub(crate) const MAX_RESPONSE_BODY: usize = 8 * 1024 * 1024;

/// Reads a response body up to `limit` bytes; `false` when there was more (the rest is not
/// read: the connection is dropped).
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(bytes::Bytes, bool), reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok((bytes::Bytes::new(), false));
    }
    // Most bodies arrive in one chunk: return it without copying.
    let Some(first) = response.chunk().await? else {
        return Ok((bytes::Bytes::new(), true));
    };
    if first.len() > limit {
        return Ok((first.slice(..limit), false));
    }
    let Some(second) = response.chunk().await? else {
        return Ok((first, true));
    };
    let mut body = bytes::BytesMut::from(&first[..]);
    let mut next = Some(second);
    while let Some(chunk) = next {
        if body.len() + chunk.len() > limit {
            return Ok((body.freeze(), false));
        }
        body.extend_from_slice(&chunk);
        next = response.chunk().await?;
    }
    Ok((body.freeze(), true))
}

/// Builds a header map entry, rejecting values that cannot be headers.
pub(crate) fn header(
    headers: &mut HeaderMap,
    name: &'static str,
    value: &str,
) -> Result<(), Error> {
    let v = HeaderValue::from_str(value)
        .map_err(|_| Error::invalid("header", format!("`{name}` has an invalid value")))?;
    headers.insert(HeaderName::from_static(name), v);
    Ok(())
}
