//! The v2.0 commands: lock/unlock, start/stop charging, charge limit, navigation destination,
//! and disconnect. A command that fails (validation, capability, vehicle state) changes nothing;
//! one that succeeds updates the vehicle at once (the next read shows it) and its data age.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use smartcar_api::types;

use super::reads::not_capable;
use super::{
    RequestBody, grant, json, json_object, number_field, path_param, request_bytes, respond,
    vehicle_access,
};
use crate::error::ApiError;
use crate::model::Vehicle;
use crate::state::{AppState, Shared};

/// The body of a successful command.
fn sent() -> types::ActionResponse {
    types::ActionResponse {
        status: "success".to_owned(),
        message: Some("Successfully sent request to vehicle".to_owned()),
    }
}

/// Runs a command: token, vehicle and permission checks, then the body's validation, then
/// `apply` on the vehicle (which must leave it untouched when it fails).
fn command<T>(
    state: &Shared,
    id: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    permission: &str,
    body: &RequestBody,
    parse: impl FnOnce(&Map<String, Value>) -> Result<T, ApiError>,
    apply: impl FnOnce(&mut Vehicle, T, DateTime<Utc>) -> Result<(), ApiError>,
) -> Response {
    let input = request_bytes(body)
        .and_then(json_object)
        .and_then(|b| parse(&b));
    let result = path_param(id).and_then(|id| {
        let mut world = state.world();
        {
            let g = grant(state, &world, headers)?;
            vehicle_access(state, &world, g, &id, Some(permission), true)?;
        }
        let input = input?;
        let now = state.now();
        let vehicle = world
            .vehicles
            .get_mut(&id)
            .ok_or_else(ApiError::not_found)?;
        apply(vehicle, input, now)?;
        vehicle.data_age = now;
        Ok(())
    });
    respond(result.map(|()| json(StatusCode::OK, &sent(), &[])))
}

/// `"action"`, one of `allowed`, case-sensitive (the spec's enums are upper case; `lock` is
/// refused).
fn action<'b>(body: &'b Map<String, Value>, allowed: &[&str]) -> Result<&'b str, ApiError> {
    match body.get("action") {
        None | Some(Value::Null) => Err(ApiError::validation("action", "\"action\" is required")),
        Some(Value::String(a)) if allowed.contains(&a.as_str()) => Ok(a.as_str()),
        Some(_) => Err(ApiError::validation(
            "action",
            &format!("\"action\" must be one of [{}]", allowed.join(", ")),
        )),
    }
}

/// `POST /v2.0/vehicles/{id}/security` `{"action": "LOCK" | "UNLOCK"}` (`control_security`).
/// Moving: 409 `IN_MOTION`; locking with a door open: 409 `DOOR_OPEN`.
pub(crate) async fn security(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    command(
        &state,
        id,
        &headers,
        "control_security",
        &body,
        |b| {
            action(b, &["LOCK", "UNLOCK"]).map(|a| match a {
                "LOCK" => types::SecurityAction::Lock,
                _ => types::SecurityAction::Unlock,
            })
        },
        |v, action, _| {
            if v.in_motion {
                return Err(ApiError::v2("VEHICLE_STATE", Some("IN_MOTION")));
            }
            let lock = action == types::SecurityAction::Lock;
            if lock && v.doors_open.iter().any(|open| *open) {
                return Err(ApiError::v2("VEHICLE_STATE", Some("DOOR_OPEN")));
            }
            v.locked = lock;
            Ok(())
        },
    )
}

/// `POST /v2.0/vehicles/{id}/charge` `{"action": "START" | "STOP"}` (`control_charge`).
/// No traction battery: 501 `VEHICLE_NOT_CAPABLE`; unplugged: 409
/// `CHARGING_PLUG_NOT_CONNECTED`; START at or above the charge limit: 409 `FULLY_CHARGED`.
/// START while charging and STOP while not charging succeed (idempotent).
pub(crate) async fn charge(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    command(
        &state,
        id,
        &headers,
        "control_charge",
        &body,
        |b| {
            action(b, &["START", "STOP"]).map(|a| match a {
                "START" => types::ChargeAction::Start,
                _ => types::ChargeAction::Stop,
            })
        },
        |v, action, _| {
            let b = v.battery.as_mut().ok_or_else(not_capable)?;
            if !b.plugged_in {
                return Err(ApiError::v2(
                    "VEHICLE_STATE",
                    Some("CHARGING_PLUG_NOT_CONNECTED"),
                ));
            }
            match action {
                types::ChargeAction::Start => {
                    if !b.charging && b.percent >= b.charge_limit {
                        return Err(ApiError::v2("VEHICLE_STATE", Some("FULLY_CHARGED")));
                    }
                    b.charging = true;
                }
                types::ChargeAction::Stop => b.charging = false,
            }
            Ok(())
        },
    )
}

/// `POST /v2.0/vehicles/{id}/charge/limit` `{"limit": 0.5..=1}` (`control_charge`). A numeric
/// string (`"0.7"`, what the Node SDK sends) is accepted, as a converting validator (Joi's
/// default) would; whether the real API accepts it is unverified. Charging stops when the new
/// limit is already reached.
pub(crate) async fn charge_limit(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    command(
        &state,
        id,
        &headers,
        "control_charge",
        &body,
        |b| number_field(b, "limit", 0.5, 1.0),
        |v, limit, _| {
            let b = v.battery.as_mut().ok_or_else(not_capable)?;
            b.charge_limit = limit;
            if b.charging && b.percent >= limit {
                b.charging = false;
            }
            Ok(())
        },
    )
}

/// `POST /v2.0/vehicles/{id}/navigation/destination` `{"latitude", "longitude"}`
/// (`control_navigation`), degrees in [-90, 90] and [-180, 180].
pub(crate) async fn destination(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    command(
        &state,
        id,
        &headers,
        "control_navigation",
        &body,
        |b| {
            let latitude = number_field(b, "latitude", -90.0, 90.0)?;
            let longitude = number_field(b, "longitude", -180.0, 180.0)?;
            Ok((latitude, longitude))
        },
        |v, destination, _| {
            v.destination = Some(destination);
            Ok(())
        },
    )
}

/// `DELETE /v2.0/vehicles/{id}/application`: removes this user's connection of the vehicle
/// (and with it every token's access to it, and its webhook subscriptions). Needs no
/// permission and never reaches the vehicle (a test VIN's forced error does not apply).
pub(crate) async fn disconnect(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result = path_param(id).and_then(|id| {
        let mut world = state.world();
        let user_id = {
            let g = grant(&state, &world, &headers)?;
            vehicle_access(&state, &world, g, &id, None, false)?;
            g.user_id.clone()
        };
        world.disconnect(Some(&user_id), Some(&id));
        // A token may reach a vehicle without a recorded connection (tokens minted by hand):
        // the grant loses it all the same.
        for token in world.access_tokens.values_mut() {
            if token.grant.user_id == user_id {
                token.grant.vehicle_ids.retain(|v| *v != id);
            }
        }
        for token in world.refresh_tokens.values_mut() {
            if token.grant.user_id == user_id {
                token.grant.vehicle_ids.retain(|v| *v != id);
            }
        }
        Ok(())
    });
    respond(result.map(|()| {
        json(
            StatusCode::OK,
            &types::StatusResponse {
                status: Some("success".to_owned()),
            },
            &[],
        )
    }))
}
