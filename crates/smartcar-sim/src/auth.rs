//! Authentication of incoming requests, as each host of the platform does it: user access tokens
//! (v2.0 vehicle API), application tokens (v3), client id + secret (token endpoint Basic auth,
//! compatibility), and the application management token (management API, webhook unsubscribe).
//!
//! Failures come back as the [`ApiError`] the real platform sends (v2 shape; v3 handlers convert
//! with [`ApiError::into_v3`]).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::model::{Grant, Vehicle, World};
use crate::state::Shared;

/// Compares two secrets in constant time (for equal lengths).
pub fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The bearer token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The user name and password of `Authorization: Basic base64(user:password)`.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The grant of a valid (known, unexpired) user access token, borrowed from the world, or 401
/// `AUTHENTICATION`.
pub fn user_grant<'w>(
    shared: &Shared,
    world: &'w World,
    headers: &HeaderMap,
) -> Result<&'w Grant, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::authentication)?;
    let access = world
        .access_tokens
        .get(token)
        .ok_or_else(ApiError::authentication)?;
    if access.expires_at <= shared.now() {
        return Err(ApiError::authentication());
    }
    Ok(&access.grant)
}

/// Checks that `grant` reaches `vehicle_id` with `permission` (when one is needed) and returns
/// the vehicle; a vehicle forced into an error state (test VINs) fails with that error
/// ([`forced_error`]).
///
/// - unknown vehicle id, or one this token does not reach: 403 `PERMISSION` would leak whether
///   the id exists; the platform answers 404 `RESOURCE_NOT_FOUND` / `PATH` for ids it does not
///   know and 403 `PERMISSION` for known vehicles outside the grant. We do the same.
/// - permission not granted: 403 `PERMISSION`.
pub fn vehicle<'w>(
    world: &'w World,
    grant: &Grant,
    vehicle_id: &str,
    permission: Option<&str>,
) -> Result<&'w Vehicle, ApiError> {
    let vehicle = granted_vehicle(world, grant, vehicle_id, permission)?;
    forced_error(vehicle)?;
    Ok(vehicle)
}

/// [`vehicle`] for requests that never reach the vehicle (permissions, disconnect, webhook
/// subscriptions): the same checks, but a vehicle's forced error does not apply.
pub fn granted_vehicle<'w>(
    world: &'w World,
    grant: &Grant,
    vehicle_id: &str,
    permission: Option<&str>,
) -> Result<&'w Vehicle, ApiError> {
    let vehicle = world
        .vehicles
        .get(vehicle_id)
        .ok_or_else(ApiError::not_found)?;
    if !grant.vehicle_ids.iter().any(|v| v == vehicle_id) {
        return Err(ApiError::permission());
    }
    if permission.is_some_and(|p| !grant.scopes.contains(p)) {
        return Err(ApiError::permission());
    }
    Ok(vehicle)
}

/// The error every request that reaches a vehicle forced into an error state answers (v2
/// shape): Smartcar's test VINs (`0SCLR…`) and test e-mails set one.
pub fn forced_error(vehicle: &Vehicle) -> Result<(), ApiError> {
    match &vehicle.forced_error {
        // An error without a code (`AUTHENTICATION`, `PERMISSION`) is stored with an empty one.
        Some((kind, code)) => Err(ApiError::v2(
            kind,
            (!code.is_empty()).then_some(code.as_str()),
        )),
        None => Ok(()),
    }
}

/// The client id of a valid application token (v3), or 401 in the v3 shape.
pub fn app_token(shared: &Shared, world: &World, headers: &HeaderMap) -> Result<String, ApiError> {
    let unauthorized = || ApiError::authentication().into_v3();
    let token = bearer(headers).ok_or_else(unauthorized)?;
    let app = world.app_tokens.get(token).ok_or_else(unauthorized)?;
    if app.expires_at <= shared.now() {
        return Err(unauthorized());
    }
    Ok(app.client_id.clone())
}

/// `Authorization: Basic base64(client_id:client_secret)` of the registered application
/// (compatibility API), or 401 `AUTHENTICATION`.
pub fn client_basic(world: &World, headers: &HeaderMap) -> Result<(), ApiError> {
    match basic(headers) {
        Some((id, secret))
            if secret_eq(&id, &world.app.client_id)
                && secret_eq(&secret, &world.app.client_secret) =>
        {
            Ok(())
        }
        _ => Err(ApiError::authentication()),
    }
}

/// `Authorization: Basic base64("default:" + AMT)` (management API v2.0), or 401.
pub fn management_basic(world: &World, headers: &HeaderMap) -> Result<(), ApiError> {
    match basic(headers) {
        Some((user, amt)) if user == "default" && secret_eq(&amt, &world.app.amt) => Ok(()),
        _ => Err(ApiError::authentication()),
    }
}

/// `Authorization: Bearer <AMT>` (v2.0 webhook unsubscribe), or 401.
pub fn management_bearer(world: &World, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(amt) if secret_eq(amt, &world.app.amt) => Ok(()),
        _ => Err(ApiError::authentication()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn parses_bearer_and_basic() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic ZGVmYXVsdDphbXQ="),
        );
        assert_eq!(basic(&h), Some(("default".into(), "amt".into())));
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
