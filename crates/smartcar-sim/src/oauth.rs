//! The token endpoints: `POST /oauth/token` (auth host: authorization code, refresh token) and
//! `POST /oauth2/token` (iam host: client credentials).
//!
//! Choices where Smartcar's behaviour is not documented or not verified:
//! - Client authentication on `/oauth/token` is HTTP Basic (what the real endpoint and every
//!   official SDK use); `client_id` + `client_secret` in the form are accepted too (RFC 6749
//!   §2.3.1 allows it and the `oauth2` crate can send either). Missing or wrong credentials:
//!   401 `invalid_client`. `/oauth2/token` takes them in the form (the docs) or as Basic.
//! - A bad, expired, used or foreign authorization code: 400 `invalid_request`,
//!   `Invalid code: <code>.` (what production answered to the SDKs' integration tests). A
//!   `redirect_uri` that differs from the one given to Connect: 400 `invalid_request`. A code
//!   presented a second time also revokes every token issued from it (RFC 6749 §10.5).
//! - Refresh tokens rotate: each refresh returns a new access token and a new refresh token;
//!   the old access token stays valid until its own expiry. The used refresh token, presented
//!   again within `Config::refresh_grace` (1 minute), returns the same new pair (a client that
//!   lost the response can retry); after that, presenting it is reuse of a stolen token: 400
//!   `invalid_grant` (the spec's example; production's code is unverified, its description
//!   `Invalid refresh_token: <token>.` is observed) and the whole token family is revoked
//!   (OAuth 2.0 Security BCP §4.14). Unknown or expired refresh tokens get the same 400.
//! - Unknown `grant_type`: 400 `unsupported_grant_type`; missing: 400 `invalid_request`.
//! - `?flags=` is accepted and ignored. Also served at `/oauth/token/` and
//!   `/oauth/token/oauth/token`, so that one `SMARTCAR_AUTH_ORIGIN` value (the full token URL)
//!   serves SDKs that use it as the token URL and SDKs that append `/oauth/token` to it.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use smartcar_api::{ops, types};

use crate::auth::{basic, secret_eq};
use crate::error::ApiError;
use crate::model::{AccessToken, AppToken, Grant, RefreshToken, World};
use crate::routing::Route;
use crate::state::{AppState, Shared, random_id};

/// Routes of this part of the platform.
pub(crate) fn routes() -> Router<AppState> {
    let exchange = ops::EXCHANGE_TOKEN.path;
    let app_token = ops::REQUEST_APPLICATION_TOKEN.path;
    let token = || Route::new(ops::EXCHANGE_TOKEN, token).handlers();
    let client_credentials =
        || Route::new(ops::REQUEST_APPLICATION_TOKEN, client_credentials).handlers();
    Router::new()
        .route(exchange, token())
        .route(&format!("{exchange}/"), token())
        // The path doubled: what a client that joins an auth origin ending in the path with
        // the path again sends.
        .route(&format!("{exchange}{exchange}"), token())
        .route(app_token, client_credentials())
        .route(&format!("{app_token}/"), client_credentials())
}

fn form(body: &Bytes) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn invalid_client(basic_used: bool) -> Response {
    let mut response =
        ApiError::oauth("invalid_client", "Invalid client credentials.").into_response();
    if basic_used {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Smartcar\""),
        );
    }
    response
}

/// Authenticates the registered application by Basic header or form fields; the error is the
/// 401 response.
fn authenticate(
    world: &World,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), Box<Response>> {
    let (id, secret, basic_used) = match basic(headers) {
        Some((id, secret)) => (id, secret, true),
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone(), false),
            _ => {
                return Err(Box::new(invalid_client(
                    headers.contains_key(header::AUTHORIZATION),
                )));
            }
        },
    };
    if secret_eq(&id, &world.app.client_id) && secret_eq(&secret, &world.app.client_secret) {
        Ok(())
    } else {
        Err(Box::new(invalid_client(basic_used)))
    }
}

fn std_to_chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

/// Issues an access + refresh token pair for `grant` (and counts nothing).
pub(crate) fn issue_pair(
    shared: &Shared,
    world: &mut World,
    grant: Grant,
    now: DateTime<Utc>,
) -> (String, String) {
    prune(world, now);
    let access = random_id();
    let refresh = random_id();
    world.access_tokens.insert(
        access.clone(),
        AccessToken {
            grant: grant.clone(),
            expires_at: now + std_to_chrono(shared.config.access_token_ttl),
        },
    );
    world.refresh_tokens.insert(
        refresh.clone(),
        RefreshToken {
            grant,
            expires_at: now + std_to_chrono(shared.config.refresh_token_ttl),
            used_at: None,
            rotated_to: None,
        },
    );
    (access, refresh)
}

/// Drops expired tokens and codes now and then, so long runs do not grow without bound.
fn prune(world: &mut World, now: DateTime<Utc>) {
    const THRESHOLD: usize = 50_000;
    if world.access_tokens.len() > THRESHOLD {
        world.access_tokens.retain(|_, t| t.expires_at > now);
    }
    if world.refresh_tokens.len() > THRESHOLD {
        world.refresh_tokens.retain(|_, t| t.expires_at > now);
    }
    if world.app_tokens.len() > THRESHOLD {
        world.app_tokens.retain(|_, t| t.expires_at > now);
    }
    if world.codes.len() > THRESHOLD {
        world.codes.retain(|_, c| c.expires_at > now && !c.used);
    }
}

fn token_response(access: String, refresh: String, expires_in: i64) -> Response {
    let body = types::TokenResponse {
        access_token: access,
        expires_in,
        refresh_token: refresh,
        token_type: "Bearer".into(),
    };
    no_store(axum::Json(body).into_response())
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let now = state.now();
    let mut world = state.world();
    if let Err(response) = authenticate(&world, &headers, &form) {
        return *response;
    }
    match form.get("grant_type").map(String::as_str) {
        None => ApiError::oauth("invalid_request", "Missing grant_type.").into_response(),
        Some("authorization_code") => exchange_code(&state, &mut world, &form, now),
        Some("refresh_token") => refresh(&state, &mut world, &form, now),
        Some(other) => ApiError::oauth(
            "unsupported_grant_type",
            &format!("Unsupported grant_type: {other}."),
        )
        .into_response(),
    }
}

fn exchange_code(
    shared: &Shared,
    world: &mut World,
    form: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Response {
    let Some(code) = form.get("code").filter(|c| !c.is_empty()) else {
        return ApiError::oauth("invalid_request", "Missing code.").into_response();
    };
    let invalid =
        || ApiError::oauth("invalid_request", &format!("Invalid code: {code}.")).into_response();
    let client_id = world.app.client_id.clone();
    let Some(entry) = world.codes.get_mut(code.as_str()) else {
        return invalid();
    };
    if entry.used {
        // Replay: revoke what the first exchange issued (RFC 6749 §10.5).
        if let Some(family) = entry.issued_family.take() {
            world.revoke_family(family);
        }
        return invalid();
    }
    if entry.client_id != client_id || entry.expires_at <= now {
        return invalid();
    }
    match form.get("redirect_uri") {
        Some(uri) if *uri == entry.redirect_uri => {}
        Some(uri) => {
            return ApiError::oauth("invalid_request", &format!("Invalid redirect_uri: {uri}."))
                .into_response();
        }
        None => return ApiError::oauth("invalid_request", "Missing redirect_uri.").into_response(),
    }
    entry.used = true;
    let family = world.next_family;
    world.next_family += 1;
    let Some(entry) = world.codes.get_mut(code.as_str()) else {
        return invalid();
    };
    entry.issued_family = Some(family);
    let grant = Grant {
        client_id: entry.client_id.clone(),
        user_id: entry.user_id.clone(),
        vehicle_ids: entry.vehicle_ids.clone(),
        scopes: entry.scopes.clone(),
        family,
    };
    let (access, refresh) = issue_pair(shared, world, grant, now);
    token_response(
        access,
        refresh,
        shared.config.access_token_ttl.as_secs() as i64,
    )
}

fn refresh(
    shared: &Shared,
    world: &mut World,
    form: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Response {
    let Some(token) = form.get("refresh_token").filter(|t| !t.is_empty()) else {
        return ApiError::oauth("invalid_request", "Missing refresh_token.").into_response();
    };
    let invalid = || {
        ApiError::oauth("invalid_grant", &format!("Invalid refresh_token: {token}."))
            .into_response()
    };
    let client_id = world.app.client_id.clone();
    let Some(entry) = world.refresh_tokens.get(token.as_str()) else {
        return invalid();
    };
    if entry.grant.client_id != client_id || entry.expires_at <= now {
        return invalid();
    }
    if let Some(used_at) = entry.used_at {
        let family = entry.grant.family;
        let within_grace = now - used_at <= std_to_chrono(shared.config.refresh_grace);
        if within_grace && let Some((access, refresh)) = entry.rotated_to.clone() {
            // The same answer again: an idempotent retry of a refresh whose response was lost.
            if let Some(a) = world.access_tokens.get(&access)
                && world.refresh_tokens.contains_key(&refresh)
            {
                // Whole seconds left, rounded up (the pair was issued a moment ago).
                let ms = (a.expires_at - now).num_milliseconds().max(0);
                let expires_in = (ms + 999) / 1000;
                return token_response(access, refresh, expires_in);
            }
            return invalid();
        }
        // Reuse after rotation: treat as theft and revoke the family.
        world.revoke_family(family);
        return invalid();
    }
    let grant = entry.grant.clone();
    let (access, refresh) = issue_pair(shared, world, grant, now);
    if let Some(entry) = world.refresh_tokens.get_mut(token.as_str()) {
        entry.used_at = Some(now);
        entry.rotated_to = Some((access.clone(), refresh.clone()));
    }
    shared.observer.count_refresh();
    token_response(
        access,
        refresh,
        shared.config.access_token_ttl.as_secs() as i64,
    )
}

/// Issues an application token (client credentials).
pub(crate) fn issue_app_token(shared: &Shared, world: &mut World, now: DateTime<Utc>) -> String {
    prune(world, now);
    let expires_at = now + std_to_chrono(shared.config.app_token_ttl);
    let token = jwt_like(&world.app.client_id, now, expires_at);
    world.app_tokens.insert(
        token.clone(),
        AppToken {
            client_id: world.app.client_id.clone(),
            expires_at,
        },
    );
    token
}

/// An opaque token shaped like the JWTs the real iam host issues (header.payload.signature,
/// base64url); nothing verifies it but the simulator's own table.
fn jwt_like(client_id: &str, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = serde_json::json!({
        "iss": "smartcar-sim",
        "sub": client_id,
        "iat": now.timestamp(),
        "exp": expires_at.timestamp(),
        "jti": random_id(),
    });
    let payload = b64.encode(payload.to_string());
    let signature = b64.encode(uuid::Uuid::new_v4().as_bytes());
    format!("{header}.{payload}.{signature}")
}

async fn client_credentials(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form(&body);
    match form.get("grant_type").map(String::as_str) {
        None => return ApiError::oauth("invalid_request", "Missing grant_type.").into_response(),
        Some("client_credentials") => {}
        Some(other) => {
            // Credentials first: an unauthenticated caller learns nothing about grants.
            let world = state.world();
            if let Err(response) = authenticate(&world, &headers, &form) {
                return *response;
            }
            return ApiError::oauth(
                "unsupported_grant_type",
                &format!("Unsupported grant_type: {other}. Use client_credentials."),
            )
            .into_response();
        }
    }
    let now = state.now();
    let mut world = state.world();
    if let Err(response) = authenticate(&world, &headers, &form) {
        return *response;
    }
    let token = issue_app_token(&state, &mut world, now);
    drop(world);
    let body = types::ApplicationTokenResponse {
        access_token: token,
        expires_in: state.config.app_token_ttl.as_secs() as i64,
        token_type: "Bearer".into(),
    };
    no_store(axum::Json(body).into_response())
}
