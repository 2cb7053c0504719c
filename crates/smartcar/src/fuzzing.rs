//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never a default).
//!
//! Thin wrappers that feed bytes to the SDK's own readers of untrusted input — the ones that
//! are private to their modules — without a server: token-endpoint answers go through `oauth2`'s
//! real parsing and the SDK's mapping, response bodies through the decoder every call uses,
//! batch items and v3 signals through their typed accessors. Not part of the public API: no
//! stability promise, hidden from the documentation.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret as OAuthSecret, HttpClientError, TokenUrl};
use serde::de::DeserializeOwned;
use smartcar_api::types;

use crate::oauth::{Grant, OAuthHttp, user_tokens};
use crate::request::{RawResponse, Response};
use crate::tokens::{ApplicationToken, Tokens};
use crate::v3::Signal;
use crate::vehicle::BatchResponse;
use crate::{Client, Error};

/// Which token request a fuzzed token-endpoint answer replies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenGrant {
    /// `authorization_code` (the secret planted is the code).
    Code,
    /// `refresh_token` (the secret planted is the refresh token).
    Refresh,
    /// `client_credentials` (the secret planted is the client secret).
    ClientCredentials,
}

/// What a token request produced.
#[derive(Debug)]
pub enum TokenOutcome {
    /// User tokens (code and refresh grants).
    User(Tokens),
    /// An application token (client credentials).
    Application(ApplicationToken),
}

/// The client secret of the client used by [`token_response`].
pub const CLIENT_SECRET: &str = "fuzz-client-secret-7c1d5e0a9b";

/// Answers one token request of `grant` with `status`, `headers` and `body`, through the
/// response `OAuthHttp` hands to `oauth2`, `oauth2`'s parsing and the SDK's error mapping;
/// `secret` is the code or refresh token sent (ignored for client credentials, whose secret is
/// [`CLIENT_SECRET`]).
pub fn token_response(
    grant: TokenGrant,
    secret: &str,
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<TokenOutcome, Error> {
    // Building a client (TLS configuration, root certificates) costs far more than one input.
    static CLIENT: OnceLock<Client> = OnceLock::new();
    let client = match CLIENT.get() {
        Some(client) => client,
        None => {
            let built = Client::builder()
                .client_id("fuzz-client")
                .client_secret(CLIENT_SECRET)
                .redirect_uri("https://app.example/callback")
                .build()?;
            CLIENT.get_or_init(|| built)
        }
    };
    let status_code =
        http::StatusCode::from_u16(status).map_err(|e| Error::invalid("status", e.to_string()))?;
    let response = crate::oauth::oauth_response(status_code, headers, body)
        .map_err(|e| Error::invalid("response", e.to_string()))?;
    let canned = Canned(std::sync::Mutex::new(Some(response)));
    let http = OAuthHttp::new(client.http().clone());
    *http.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((status, headers.clone()));
    let oauth = BasicClient::new(ClientId::new("fuzz-client".to_owned()))
        .set_client_secret(OAuthSecret::new(CLIENT_SECRET.to_owned()))
        .set_token_uri(TokenUrl::from_url(client.origins().token_url()));
    let started = Utc::now();
    let ready = |f: Pin<Box<dyn Future<Output = _> + '_>>| {
        futures_util::FutureExt::now_or_never(f).expect("the canned answer is ready at once")
    };
    match grant {
        TokenGrant::Code => {
            let result = ready(Box::pin(
                oauth
                    .set_auth_type(AuthType::BasicAuth)
                    .exchange_code(oauth2::AuthorizationCode::new(secret.to_owned()))
                    .request_async(&canned),
            ));
            let r = client.map_token_result(result, &http, Grant::Code, &[secret])?;
            user_tokens(&r, started, Grant::Code).map(TokenOutcome::User)
        }
        TokenGrant::Refresh => {
            let token = oauth2::RefreshToken::new(secret.to_owned());
            let oauth = oauth.set_auth_type(AuthType::BasicAuth);
            let result = ready(Box::pin(
                oauth.exchange_refresh_token(&token).request_async(&canned),
            ));
            let r = client.map_token_result(result, &http, Grant::Refresh, &[secret])?;
            user_tokens(&r, started, Grant::Refresh).map(TokenOutcome::User)
        }
        TokenGrant::ClientCredentials => {
            let oauth = oauth.set_auth_type(AuthType::RequestBody);
            let result = ready(Box::pin(
                oauth.exchange_client_credentials().request_async(&canned),
            ));
            let r = client.map_token_result(
                result,
                &http,
                Grant::ClientCredentials,
                &[CLIENT_SECRET],
            )?;
            Ok(TokenOutcome::Application(crate::oauth::application_token(
                &r, started,
            )))
        }
    }
}

/// An `oauth2` HTTP client that answers one canned response.
struct Canned(std::sync::Mutex<Option<http::Response<Vec<u8>>>>);

impl<'c> oauth2::AsyncHttpClient<'c> for Canned {
    type Error = HttpClientError<reqwest::Error>;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, Self::Error>> + Send + Sync + 'c>>;

    fn call(&'c self, _request: oauth2::HttpRequest) -> Self::Future {
        let answer = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        Box::pin(async move { answer.ok_or_else(|| HttpClientError::Other("asked twice".into())) })
    }
}

/// Decodes a response to a call as `T`, the way every API call does: a non-2xx status is an
/// [`Error::Api`] read from the body, an empty body decodes as `null`, otherwise JSON.
pub fn decode_response<T: DeserializeOwned>(
    operation: &str,
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Response<T>, Error> {
    decode_response_with_token(operation, "", status, headers, body)
}

/// [`decode_response`] for a call that sent `token` as its bearer token (redacted from API
/// errors that echo it).
pub fn decode_response_with_token<T: DeserializeOwned>(
    operation: &str,
    token: &str,
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Response<T>, Error> {
    let raw = RawResponse::checked(
        status,
        headers.clone(),
        bytes::Bytes::copy_from_slice(body),
        token,
    )?;
    // `operation` is "METHOD /template", as errors name calls.
    raw.decode(&operation)
}

/// A batch answer as [`BatchResponse`] (what `vehicle.batch()…send()` returns for this body).
pub fn batch_response(headers: &http::HeaderMap, body: &[u8]) -> Result<BatchResponse, Error> {
    let r: Response<types::BatchResponse> =
        decode_response(&smartcar_api::ops::BATCH.describe(), 200, headers, body)?;
    Ok(BatchResponse {
        items: r.data.responses,
        meta: r.meta,
    })
}

/// A v3 signal resource as the SDK's [`Signal`].
pub fn signal(resource: types::SignalResource) -> Signal {
    Signal::from_resource(resource)
}

/// `retry-after` as the retry loop reads it.
pub fn retry_after(value: &str) -> Option<Duration> {
    crate::error::parse_retry_after(value)
}

/// The excerpt of a body kept in errors.
pub fn excerpt(body: &[u8]) -> String {
    crate::error::excerpt(body)
}
