//! The v2.0 commands: lock/unlock, start/stop charging, charge limit, navigation destination,
//! and disconnect. This module checks the request and validates the body; what the command then
//! does to the vehicle (and when the vehicle refuses it) is [`vehicle_commands`], shared with
//! the v3 commands. A command that fails (validation, capability, vehicle state) changes
//! nothing; one that succeeds updates the vehicle at once (the next read shows it) and its data
//! age.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};
use smartcar_api::op::Operation;
use smartcar_api::{ops, types};

use super::{
    RequestBody, grant, json, json_object, number_field, path_param, request_bytes, respond,
    vehicle_access,
};
use crate::error::ApiError;
use crate::state::{AppState, Shared};
use crate::vehicle_commands::{self, Command};

/// The body of a successful command.
fn sent() -> types::ActionResponse {
    types::ActionResponse {
        status: "success".to_owned(),
        message: Some("Successfully sent request to vehicle".to_owned()),
    }
}

/// Runs a command: token, vehicle and permission checks, then the body's validation into a
/// [`Command`], then [`vehicle_commands::apply`] (the rules both APIs share).
fn command(
    state: &Shared,
    id: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    op: Operation,
    body: &RequestBody,
    parse: impl FnOnce(&Map<String, Value>) -> Result<Command, ApiError>,
) -> Response {
    let input = request_bytes(body)
        .and_then(json_object)
        .and_then(|b| parse(&b));
    let result = path_param(id).and_then(|id| {
        let mut world = state.world();
        {
            let g = grant(state, &world, headers)?;
            vehicle_access(state, &world, g, &id, op.permissions.first().copied(), true)?;
        }
        let command = input?;
        let now = state.now();
        let vehicle = world
            .vehicles
            .get_mut(&id)
            .ok_or_else(ApiError::not_found)?;
        vehicle_commands::apply(vehicle, command, now)
    });
    respond(result.map(|()| json(StatusCode::OK, &sent(), &[])))
}

/// `"action"`, one of the `choices`' names (case-sensitive: the spec's enums are upper case;
/// `lock` is refused), as its command.
fn action(body: &Map<String, Value>, choices: [(&str, Command); 2]) -> Result<Command, ApiError> {
    let given = match body.get("action") {
        None | Some(Value::Null) => {
            return Err(ApiError::validation("action", "\"action\" is required"));
        }
        Some(value) => value.as_str(),
    };
    choices
        .iter()
        .find(|(name, _)| Some(*name) == given)
        .map(|(_, command)| *command)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            ApiError::validation(
                "action",
                &format!("\"action\" must be one of [{}]", names.join(", ")),
            )
        })
}

/// `POST /v2.0/vehicles/{id}/security` `{"action": "LOCK" | "UNLOCK"}` (`control_security`).
/// Refusals (moving, a door open): see [`vehicle_commands`].
pub(crate) async fn security(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    command(&state, id, &headers, ops::CONTROL_SECURITY, &body, |b| {
        action(b, [("LOCK", Command::Lock), ("UNLOCK", Command::Unlock)])
    })
}

/// `POST /v2.0/vehicles/{id}/charge` `{"action": "START" | "STOP"}` (`control_charge`).
/// Refusals (no plug-in battery, unplugged, full): see [`vehicle_commands`].
pub(crate) async fn charge(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    command(&state, id, &headers, ops::CONTROL_CHARGE, &body, |b| {
        action(
            b,
            [
                ("START", Command::StartCharge),
                ("STOP", Command::StopCharge),
            ],
        )
    })
}

/// `POST /v2.0/vehicles/{id}/charge/limit` `{"limit": 0.5..=1}` (`control_charge`). A numeric
/// string (`"0.7"`, what the Node SDK sends) is accepted, as a converting validator (Joi's
/// default) would; whether the real API accepts it is unverified. Effect and refusals: see
/// [`vehicle_commands`].
pub(crate) async fn charge_limit(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    command(&state, id, &headers, ops::SET_CHARGE_LIMIT, &body, |b| {
        number_field(b, "limit", 0.5, 1.0).map(Command::SetChargeLimit)
    })
}

/// `POST /v2.0/vehicles/{id}/navigation/destination` `{"latitude", "longitude"}`
/// (`control_navigation`), degrees in [-90, 90] and [-180, 180].
pub(crate) async fn destination(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    command(&state, id, &headers, ops::SEND_DESTINATION, &body, |b| {
        let latitude = number_field(b, "latitude", -90.0, 90.0)?;
        let longitude = number_field(b, "longitude", -180.0, 180.0)?;
        Ok(Command::SetDestination(latitude, longitude))
    })
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
            vehicle_access(
                &state,
                &world,
                g,
                &id,
                ops::DISCONNECT.permissions.first().copied(),
                false,
            )?;
            g.user_id.clone()
        };
        world.disconnect(Some(&user_id), Some(&id));
        // A token may reach a vehicle without a recorded connection (tokens minted by hand):
        // the grant loses it all the same.
        world.revoke_vehicle(&user_id, &id);
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
