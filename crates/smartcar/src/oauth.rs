//! Token exchange with the `oauth2` crate: authorization code, refresh (with rotation) and
//! client credentials.
//!
//! `oauth2` is used without its `reqwest` feature (which would pull a second reqwest); the
//! [`OAuthHttp`] adapter sends its requests through the client's own `reqwest::Client`, so the
//! token endpoints share the connection pool, the user agent and the no-redirect policy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AuthType, ClientId, ClientSecret as OAuthSecret, HttpClientError, HttpRequest, HttpResponse,
    RedirectUrl, RequestTokenError, TokenResponse, TokenUrl,
};

use smartcar_api::ops;

use crate::Error;
use crate::client::Client;
use crate::connect::AuthorizationCode;
use crate::error::{ApiError, DecodeError, OAuthError, TransportKind, redact};
use crate::tokens::{
    AccessToken, ApplicationToken, ApplicationTokenValue, REFRESH_TOKEN_LIFETIME, RefreshToken,
    Tokens,
};

type ReqwestError = HttpClientError<reqwest::Error>;

/// An `oauth2` client with its token endpoint set.
type TokenClient = BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// How long [`Client::refresh_tokens`] keeps retrying the same refresh token after a failure
/// that may have hidden a rotation: 50 seconds, inside the platform's grace period. Smartcar's
/// documentation gives the grace period as 1 minute on some pages and 10 minutes on another
/// (unverified which holds); the SDK assumes the shorter one.
pub const REFRESH_RETRY_WINDOW: Duration = Duration::from_secs(50);

/// Whether a failed refresh may be sent again with the same refresh token: when the platform
/// may or may not have rotated it (the answer was lost, broken, or a server-side failure).
fn refresh_retryable(error: &Error) -> bool {
    match error {
        Error::Transport { .. } | Error::Timeout { .. } | Error::Decode(_) => true,
        Error::Api(api) => api.status == 429 || api.status >= 500,
        Error::OAuth(oauth) => oauth.status == 429 || oauth.status >= 500,
        _ => false,
    }
}

/// `oauth2`'s HTTP client, over our `reqwest::Client`. Remembers the status and headers of the
/// response so that errors keep them (oauth2's error types do not).
pub(crate) struct OAuthHttp {
    http: reqwest::Client,
    pub(crate) last: Mutex<Option<(u16, http::HeaderMap)>>,
    retry_after: Mutex<Option<Duration>>,
}

impl OAuthHttp {
    pub(crate) fn new(http: reqwest::Client) -> Self {
        OAuthHttp {
            http,
            last: Mutex::new(None),
            retry_after: Mutex::new(None),
        }
    }

    /// The `Retry-After` of the last response.
    fn retry_after(&self) -> Option<Duration> {
        *self.retry_after.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn last(&self) -> (Option<u16>, http::HeaderMap) {
        match self.last.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some((status, headers)) => (Some(status), headers),
            None => (None, http::HeaderMap::new()),
        }
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = ReqwestError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, ReqwestError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request: reqwest::Request = request.try_into().map_err(Box::new)?;
            let response = self.http.execute(request).await.map_err(Box::new)?;
            let status = response.status();
            let headers = response.headers().clone();
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((status.as_u16(), headers.clone()));
            *self.retry_after.lock().unwrap_or_else(|e| e.into_inner()) = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::error::parse_retry_after);
            // An oversized answer is cut at the limit: it then fails to parse (a decode error)
            // without being read whole.
            let (body, _complete) =
                crate::request::read_body(response, crate::request::MAX_RESPONSE_BODY)
                    .await
                    .map_err(Box::new)?;
            oauth_response(status, &headers, &body)
        })
    }
}

/// The response handed to `oauth2` for parsing.
pub(crate) fn oauth_response(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<HttpResponse, ReqwestError> {
    let mut builder = http::Response::builder().status(status);
    // A JSON body under another label (`text/plain`, as some gateways and proxies
    // rewrite it) is still read as JSON; `oauth2` would otherwise refuse it.
    let looks_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    for (name, value) in headers {
        if looks_json && name == http::header::CONTENT_TYPE {
            continue;
        }
        builder = builder.header(name, value);
    }
    if looks_json {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    builder.body(body.to_vec()).map_err(HttpClientError::Http)
}

/// Which grant, for error mapping.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    Code,
    Refresh,
    ClientCredentials,
}

impl Grant {
    fn operation(self) -> String {
        match self {
            Grant::Code | Grant::Refresh => ops::EXCHANGE_TOKEN.describe(),
            Grant::ClientCredentials => ops::REQUEST_APPLICATION_TOKEN.describe(),
        }
    }
}

/// Options of a code exchange.
#[derive(Clone, Debug, Default)]
pub struct ExchangeOptions {
    /// The redirect URI given to Connect, when it differs from the client's.
    pub redirect_uri: Option<String>,
    /// Feature flags (`?flags=name:value …` on the token request).
    pub flags: Vec<(String, String)>,
}

impl Client {
    /// Exchanges the authorization code of a Connect redirect for tokens.
    ///
    /// ```no_run
    /// # async fn demo(client: smartcar::Client, code: smartcar::connect::AuthorizationCode) -> Result<(), smartcar::Error> {
    /// let tokens = client.exchange_code(&code).await?;
    /// assert!(!tokens.is_expired());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::OAuth`] when the platform refuses the code (unknown, used, expired, wrong
    /// redirect URI: `invalid_request`/`invalid_grant`; wrong credentials: `invalid_client`);
    /// [`Error::Configuration`] without a client secret; transport, timeout and decode errors.
    pub async fn exchange_code(&self, code: &AuthorizationCode) -> Result<Tokens, Error> {
        self.exchange_code_with(code, ExchangeOptions::default())
            .await
    }

    /// [`exchange_code`](Self::exchange_code) with options (redirect URI override, flags).
    ///
    /// # Errors
    ///
    /// As [`exchange_code`](Self::exchange_code).
    pub async fn exchange_code_with(
        &self,
        code: &AuthorizationCode,
        options: ExchangeOptions,
    ) -> Result<Tokens, Error> {
        let redirect = match options.redirect_uri {
            Some(uri) => Some(RedirectUrl::from_url(
                crate::checks::check_redirect_uri(&uri)
                    .map_err(|e| Error::invalid("redirect URI", e))?,
            )),
            None => self.redirect_uri().cloned().map(RedirectUrl::from_url),
        };
        let mut token_url = self.origins().token_url();
        add_flags(&mut token_url, &options.flags)?;
        let (mut oauth, _) = self.oauth_client(token_url, AuthType::BasicAuth)?;
        if let Some(r) = redirect {
            oauth = oauth.set_redirect_uri(r);
        }
        let http = OAuthHttp::new(self.http().clone());
        let started = self.now();
        let result = oauth
            .exchange_code(oauth2::AuthorizationCode::new(code.secret().to_owned()))
            .request_async(&http)
            .await;
        let response = self.map_token_result(result, &http, Grant::Code, &[code.secret()])?;
        user_tokens(&response, started, Grant::Code)
    }

    /// Exchanges a refresh token for new tokens. The platform rotates refresh tokens: the one
    /// returned replaces the one given, which stops working shortly after. Persist the result
    /// before using it ([`crate::Session`] does this for you).
    ///
    /// **Retries of the same refresh.** When an attempt fails in a way that leaves open
    /// whether the platform rotated the token (the connection broke, the answer timed out,
    /// 5xx, 429, or a 2xx body that cannot be read), the same refresh token is sent again,
    /// following the client's [`RetryPolicy`](crate::config::RetryPolicy), but never for longer than
    /// [`REFRESH_RETRY_WINDOW`] after the first attempt: within the platform's grace period
    /// the old refresh token answers with the same new pair, so a retry recovers a rotation
    /// whose answer was lost instead of leaving the caller with a token the platform already
    /// replaced. A refused token (4xx OAuth error) is never retried.
    ///
    /// # Errors
    ///
    /// [`Error::ReauthorizationRequired`] when the platform rejects the refresh token (expired,
    /// revoked or already used); otherwise as [`exchange_code`](Self::exchange_code), for the
    /// last attempt.
    pub async fn refresh_tokens(&self, refresh_token: &RefreshToken) -> Result<Tokens, Error> {
        let policy = self.retry_policy().clone();
        let budget = policy.max_total.min(REFRESH_RETRY_WINDOW);
        let started = std::time::Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let (outcome, retry_after) = self.refresh_once(refresh_token).await;
            let error = match &outcome {
                Ok(_) => return outcome,
                Err(e) => e,
            };
            if !refresh_retryable(error) {
                return outcome;
            }
            // No jitter: the same refresh token is replayed on a fixed schedule.
            let Some(wait) = policy.delay(attempt, started.elapsed(), budget, retry_after, None)
            else {
                return outcome;
            };
            tracing::debug!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying the refresh with the same refresh token (grace period)"
            );
            self.inner.sleep.sleep(wait).await;
        }
    }

    /// One refresh request, and the `Retry-After` of its answer.
    async fn refresh_once(
        &self,
        refresh_token: &RefreshToken,
    ) -> (Result<Tokens, Error>, Option<Duration>) {
        let oauth = match self.oauth_client(self.origins().token_url(), AuthType::BasicAuth) {
            Ok((oauth, _)) => oauth,
            Err(e) => return (Err(e), None),
        };
        let http = OAuthHttp::new(self.http().clone());
        let started = self.now();
        let token = oauth2::RefreshToken::new(refresh_token.secret().to_owned());
        let result = oauth
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await;
        let retry_after = http.retry_after();
        let outcome = self
            .map_token_result(result, &http, Grant::Refresh, &[refresh_token.secret()])
            .and_then(|response| user_tokens(&response, started, Grant::Refresh));
        (outcome, retry_after)
    }

    /// Requests an application token (client-credentials grant, for the v3 API and the M2M
    /// flow). The client id and secret travel in the form body, as the platform documents.
    ///
    /// # Errors
    ///
    /// [`Error::OAuth`] (`invalid_client` for wrong credentials); [`Error::Configuration`]
    /// without a client secret; transport, timeout and decode errors.
    pub async fn request_application_token(&self) -> Result<ApplicationToken, Error> {
        let (oauth, secret) = self.oauth_client(
            self.origins().application_token_url(),
            AuthType::RequestBody,
        )?;
        let http = OAuthHttp::new(self.http().clone());
        let started = self.now();
        let result = oauth
            .exchange_client_credentials()
            .request_async(&http)
            .await;
        let response =
            self.map_token_result(result, &http, Grant::ClientCredentials, &[secret.secret()])?;
        Ok(application_token(&response, started))
    }

    /// The `oauth2` client of this application for one token endpoint: the one place the
    /// client id and secret go into a token request (`auth`: in a Basic header or in the
    /// body). Also gives the secret, for redaction.
    fn oauth_client(
        &self,
        token_url: url::Url,
        auth: AuthType,
    ) -> Result<(TokenClient, &crate::ClientSecret), Error> {
        let secret = self.client_secret()?;
        let oauth = BasicClient::new(ClientId::new(self.client_id().to_owned()))
            .set_client_secret(OAuthSecret::new(secret.secret().to_owned()))
            .set_auth_type(auth)
            .set_token_uri(TokenUrl::from_url(token_url));
        Ok((oauth, secret))
    }

    pub(crate) fn map_token_result(
        &self,
        result: Result<BasicTokenResponse, RequestTokenError<ReqwestError, BasicErrorResponse>>,
        http: &OAuthHttp,
        grant: Grant,
        secrets: &[&str],
    ) -> Result<BasicTokenResponse, Error> {
        let error = match result {
            Ok(response) => return Ok(response),
            Err(e) => e,
        };
        let (status, headers) = http.last();
        let operation = grant.operation();
        Err(match error {
            RequestTokenError::ServerResponse(body) => {
                let oauth = OAuthError {
                    status: status.unwrap_or(400),
                    // The code too: a platform that echoes a token may echo it anywhere.
                    error: redact(body.error().as_ref(), secrets).as_str().into(),
                    description: body.error_description().map(|d| redact(d, secrets)),
                };
                // A refused refresh token (the platform answers invalid_grant or
                // invalid_request) means the user's authorization is gone. A 429 (rate
                // limited, `temporarily_unavailable`) says nothing about the token.
                if grant == Grant::Refresh
                    && oauth.status < 500
                    && !matches!(oauth.status, 401 | 429)
                {
                    Error::ReauthorizationRequired {
                        reason: format!("the refresh token was refused ({})", oauth.error),
                        source: Some(Box::new(oauth)),
                    }
                } else {
                    Error::OAuth(Box::new(oauth))
                }
            }
            RequestTokenError::Parse(e, body) => match status {
                // An error status with a body that is not an OAuth error (an HTML 502 page…).
                Some(s) if s >= 400 => {
                    Error::Api(Box::new(token_endpoint_error(s, &headers, &body, secrets)))
                }
                // A 2xx answer that is not a token response may still carry freshly issued
                // tokens (a bad `expires_in`, a truncated body): nothing of it is kept, and
                // serde's message, which quotes values, is replaced by the SDK's own words.
                _ => Error::Decode(Box::new(DecodeError {
                    operation,
                    status,
                    request_id: request_id(&headers, secrets),
                    message: unreadable_token_answer(&e.path().to_string(), e.inner()),
                    body_excerpt: String::new(),
                })),
            },
            RequestTokenError::Request(HttpClientError::Reqwest(e)) => {
                if e.is_timeout() {
                    Error::Timeout {
                        operation,
                        timeout: self.inner.timeout,
                    }
                } else {
                    let kind = TransportKind::of(&e);
                    Error::Transport {
                        message: kind.message().to_owned(),
                        kind,
                        operation,
                        source: Some(e),
                    }
                }
            }
            RequestTokenError::Request(other) => Error::Transport {
                operation,
                kind: TransportKind::Other,
                message: other.to_string(),
                source: Some(Box::new(other)),
            },
            // oauth2 reports an error status with an empty body this way.
            RequestTokenError::Other(_) if status.is_some_and(|s| s >= 400) => {
                Error::Api(Box::new(token_endpoint_error(
                    status.unwrap_or(500),
                    &headers,
                    b"",
                    secrets,
                )))
            }
            // A 2xx answer with an empty body or one that is not labelled JSON (an HTML page
            // with status 200): oauth2's message quotes the content type; ours names it only
            // when it is a plain media type, with the secrets sent redacted as in every other
            // field of a token error, and never shows the body.
            RequestTokenError::Other(_) => Error::Decode(Box::new(DecodeError {
                operation,
                status,
                request_id: request_id(&headers, secrets),
                message: format!(
                    "the token endpoint answered with an empty body or one that is not JSON \
                     ({}); the body is not shown, as a token answer carries credentials: \
                     quote the request id to Smartcar support",
                    crate::error::media_type(&headers)
                        .map(|media| redact(media, secrets))
                        .unwrap_or_else(|| "no or an unusual content type".to_owned())
                ),
                body_excerpt: String::new(),
            })),
        })
    }
}

/// The `sc-request-id` of a token endpoint's answer, with the secrets sent redacted.
fn request_id(headers: &http::HeaderMap, secrets: &[&str]) -> Option<String> {
    headers
        .get("sc-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|id| redact(id, secrets))
}

/// What was wrong with a 2xx token answer, in the SDK's own words: the kind of problem, the
/// field when it is one of a token response's, the line and column. Never a value of the body
/// (serde's messages quote them: `invalid type: string "…", expected u64`).
fn unreadable_token_answer(path: &str, e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    const FIELDS: [&str; 5] = [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
    ];
    let what = match e.classify() {
        Category::Eof => "it ends before its JSON does (truncated?)".to_owned(),
        Category::Syntax => "it is not valid JSON".to_owned(),
        Category::Io => "it could not be read".to_owned(),
        Category::Data => {
            let text = e.to_string();
            let missing = text
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| name)
                .and_then(|name| FIELDS.iter().find(|f| **f == name));
            match (missing, FIELDS.iter().find(|f| **f == path)) {
                (Some(name), _) => format!("it has no `{name}`"),
                (None, Some(field)) => format!("`{field}` has a value of the wrong type"),
                (None, None) => "a field has a value of the wrong type".to_owned(),
            }
        }
    };
    format!(
        "the token endpoint's answer is not a token response: {what} (line {}, column {}); the \
         body is not shown, as a token answer carries credentials: quote the request id to \
         Smartcar support",
        e.line(),
        e.column()
    )
}

/// An error status with a body that is not an OAuth error: its error fields (type, code,
/// description of a v2, v1 or v3 error body), with every form of the secrets sent redacted;
/// no excerpt of an unrecognised body (an HTML page) and no `detail`, since a token endpoint's
/// answers may carry credentials.
fn token_endpoint_error(
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> ApiError {
    let mut api = ApiError::from_response_redacted(status, headers, body, secrets, false);
    api.detail.clear();
    api
}

fn add_flags(url: &mut url::Url, flags: &[(String, String)]) -> Result<(), Error> {
    if flags.is_empty() {
        return Ok(());
    }
    for (k, v) in flags {
        if k.is_empty() || k.contains([' ', ':']) || v.contains(' ') {
            return Err(Error::invalid("flag", format!("`{k}:{v}`")));
        }
    }
    let joined: Vec<String> = flags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    url.query_pairs_mut()
        .append_pair("flags", &joined.join(" "));
    Ok(())
}

/// The application token of a client-credentials answer.
pub(crate) fn application_token(
    response: &BasicTokenResponse,
    started: chrono::DateTime<Utc>,
) -> ApplicationToken {
    ApplicationToken {
        token: ApplicationTokenValue::new(response.access_token().secret().clone()),
        expires_at: expiry(response, started, Duration::from_secs(3600)),
    }
}

/// The longest token lifetime believed from `expires_in`; a longer (or absurd) value is read as
/// this, so that no answer can overflow the expiry time.
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// When the token of `response` expires, measured from `started`.
fn expiry(
    response: &BasicTokenResponse,
    started: chrono::DateTime<Utc>,
    default: Duration,
) -> chrono::DateTime<Utc> {
    let lifetime = response.expires_in().unwrap_or(default).min(MAX_LIFETIME);
    chrono::Duration::from_std(lifetime)
        .ok()
        .and_then(|d| started.checked_add_signed(d))
        .unwrap_or(started)
}

pub(crate) fn user_tokens(
    response: &BasicTokenResponse,
    started: chrono::DateTime<Utc>,
    grant: Grant,
) -> Result<Tokens, Error> {
    let refresh = response.refresh_token().ok_or_else(|| {
        Error::Decode(Box::new(DecodeError {
            operation: grant.operation(),
            status: Some(200),
            request_id: None,
            message: "the token response has no refresh_token".to_owned(),
            body_excerpt: String::new(),
        }))
    })?;
    Ok(Tokens {
        access_token: AccessToken::new(response.access_token().secret().clone()),
        refresh_token: RefreshToken::new(refresh.secret().clone()),
        // Measured from when the request was sent, so a slow answer errs on the early side.
        expires_at: expiry(response, started, Duration::from_secs(7200)),
        refresh_expires_at: started
            + chrono::Duration::from_std(REFRESH_TOKEN_LIFETIME)
                .unwrap_or(chrono::Duration::zero()),
    })
}
