//! Commands of the Vehicle API v3. What a command does to the simulated vehicle, and when the
//! vehicle refuses it, is [`vehicle_commands`], shared with the v2.0 commands: the change shows
//! in the v2 reads and in the v3 signals alike, and both APIs refuse alike.
//!
//! | Command | Permission | Effect | Refusals |
//! |---|---|---|---|
//! | `charge/start`, `charge/stop` | `control_charge` | starts / stops charging | 501 `COMPATIBILITY`/`VEHICLE_NOT_CAPABLE` without a traction battery that plugs in; 409 `VEHICLE_STATE`/`CHARGING_PLUG_NOT_CONNECTED` when unplugged; start only: 409 `VEHICLE_STATE`/`FULLY_CHARGED` when not charging and at or above the limit |
//! | `charge/set-limit` | `control_charge` | sets the charge limit (`percent` 50–100, else 400; kept as the fraction `percent / 100`); charging stops when the new limit is already reached | 501 without a plug-in battery |
//! | `security/lock`, `security/unlock` | `control_security` | locks / unlocks the doors | 409 `VEHICLE_STATE`/`IN_MOTION` while moving; lock only: 409 `VEHICLE_STATE`/`DOOR_OPEN` with a door open |
//! | `navigation/set-destination` | `control_navigation` | sets the destination (`latitude` −90–90, `longitude` −180–180, else 400) | — |
//!
//! By default every accepted command completes synchronously: 200 with `executionMode: sync`,
//! status `SUCCESS`, `executedAt` = `completedAt` = the simulated now, `durationInSeconds: 0`.
//! With `Config::command_duration` above zero it is the docs' long-running case instead: `202
//! Accepted` ("the command is in process but long-running: read the body"), status `PENDING`,
//! `executionMode: async`, no `completedAt`; the recorded execution turns `SUCCESS` (with
//! `completedAt` and `durationInSeconds`) once that much simulated time has passed (unverified:
//! Smartcar documents the 202 but shows no pending body). The vehicle's data age becomes now (it
//! reported its new state). The execution is kept (the last 10 000 per simulator) for
//! `GET /v3/vehicles/{vehicle_id}/commands/{execution_id}`, which needs the same access to the
//! vehicle and answers 404 for an id of another vehicle.
//! A body that is not JSON or misses a field is 400 `VALIDATION`.
//!
//! The charge schedules (`POST …/charge-schedules/{daily,weekly,workweek}`, `DELETE
//! …/charge-schedules/{schedule_id}`) are commands too, with their own record
//! (`charge-schedule-execution`): see `schedules`, which shares the body, coordinate and
//! execution helpers here.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use smartcar_api::op::Operation;
use smartcar_api::open_enums::{CommandStatusValue, CommandType, ExecutionMode};
use smartcar_api::{ops, types};

use super::{V3Result, body_bytes, invalid, json, not_found, path1, path2, vehicle_access};
use crate::error::ApiError;
use crate::state::{AppState, random_id};
use crate::vehicle_commands;

/// A v3 command with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Command {
    /// Start charging.
    ChargeStart,
    /// Stop charging.
    ChargeStop,
    /// Set the charge limit, percent 50–100.
    SetLimit(f64),
    /// Lock the doors.
    Lock,
    /// Unlock the doors.
    Unlock,
    /// Send a destination (latitude, longitude).
    SetDestination(f64, f64),
}

impl Command {
    /// The operation of the spec that sends this command (its permission is the one needed).
    fn op(self) -> Operation {
        match self {
            Command::ChargeStart => ops::START_CHARGE_V3,
            Command::ChargeStop => ops::STOP_CHARGE_V3,
            Command::SetLimit(_) => ops::SET_CHARGE_LIMIT_V3,
            Command::Lock => ops::LOCK_V3,
            Command::Unlock => ops::UNLOCK_V3,
            Command::SetDestination(..) => ops::SET_DESTINATION_V3,
        }
    }

    fn command_type(self) -> CommandType {
        match self {
            Command::ChargeStart => CommandType::ChargeStart,
            Command::ChargeStop => CommandType::ChargeStop,
            Command::SetLimit(_) => CommandType::ChargeSetLimit,
            Command::Lock => CommandType::SecurityLock,
            Command::Unlock => CommandType::SecurityUnlock,
            Command::SetDestination(..) => CommandType::NavigationSetDestination,
        }
    }

    /// The command as the vehicle takes it: the v3 percentage limit becomes the fraction the
    /// vehicle keeps (and the v2.0 API takes).
    fn vehicle_command(self) -> vehicle_commands::Command {
        use vehicle_commands::Command as V;
        match self {
            Command::ChargeStart => V::StartCharge,
            Command::ChargeStop => V::StopCharge,
            Command::SetLimit(percent) => V::SetChargeLimit(percent / 100.0),
            Command::Lock => V::Lock,
            Command::Unlock => V::Unlock,
            Command::SetDestination(latitude, longitude) => V::SetDestination(latitude, longitude),
        }
    }

    fn parameters(self) -> Map<String, Value> {
        let mut map = Map::new();
        match self {
            Command::SetLimit(percent) => {
                map.insert("percent".to_owned(), json!(percent));
            }
            Command::SetDestination(latitude, longitude) => {
                map.insert("latitude".to_owned(), json!(latitude));
                map.insert("longitude".to_owned(), json!(longitude));
            }
            _ => {}
        }
        map
    }
}

/// The body as `T` (a generated request type), or 400 `VALIDATION`.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        invalid(
            "body",
            &format!("The request body is not valid for this command: {e}"),
        )
    })
}

fn set_limit_command(body: &[u8]) -> Result<Command, ApiError> {
    let request: types::SetChargeLimitCommand = parse_body(body)?;
    let percent = request.data.attributes.percent;
    if !(50.0..=100.0).contains(&percent) {
        return Err(invalid(
            "data.attributes.percent",
            "`percent` must be a number from 50 to 100.",
        ));
    }
    Ok(Command::SetLimit(percent))
}

fn set_destination_command(body: &[u8]) -> Result<Command, ApiError> {
    let request: types::SetDestinationCommand = parse_body(body)?;
    let types::SetDestinationCommandDataAttributes {
        latitude,
        longitude,
    } = request.data.attributes;
    check_coordinates(latitude, longitude, "data.attributes")?;
    Ok(Command::SetDestination(latitude, longitude))
}

/// 400 `VALIDATION` unless `latitude` is in −90–90 and `longitude` in −180–180 (`at`: the
/// object holding them, for the error's field).
pub(super) fn check_coordinates(latitude: f64, longitude: f64, at: &str) -> Result<(), ApiError> {
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(invalid(
            &format!("{at}.latitude"),
            "`latitude` must be a number from -90 to 90.",
        ));
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(invalid(
            &format!("{at}.longitude"),
            "`longitude` must be a number from -180 to 180.",
        ));
    }
    Ok(())
}

/// `status` of an execution that succeeded.
pub(super) fn succeeded() -> types::CommandStatus {
    types::CommandStatus {
        value: CommandStatusValue::Success,
        error: None,
    }
}

/// `meta` of an execution that ran synchronously at `now`.
pub(super) fn completed_at_once(now: chrono::DateTime<chrono::Utc>) -> types::CommandExecutionMeta {
    types::CommandExecutionMeta {
        executed_at: Some(now),
        completed_at: Some(now),
        duration_in_seconds: Some(0.0),
    }
}

/// Authenticates, checks the permission, parses the body, applies the command and records the
/// execution.
fn execute(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    op: Operation,
    parse: impl FnOnce() -> Result<Command, ApiError>,
) -> V3Result {
    let vehicle_id = path1(path)?;
    let now = state.now();
    let execution = {
        let mut world = state.world();
        vehicle_access(
            state,
            &world,
            headers,
            &vehicle_id,
            true,
            op.permissions.first().copied(),
        )?;
        let command = parse()?;
        let vehicle = world.vehicles.get_mut(&vehicle_id).ok_or_else(not_found)?;
        vehicle_commands::apply(vehicle, command.vehicle_command(), now)
            .map_err(ApiError::into_v3)?;
        let running = !state.config.command_duration.is_zero();
        let execution = types::CommandExecution {
            id: random_id(),
            type_: "command-execution".to_owned(),
            attributes: types::CommandExecutionAttributes {
                command_type: command.command_type(),
                status: if running { pending() } else { succeeded() },
                execution_mode: Some(if running {
                    ExecutionMode::Async
                } else {
                    ExecutionMode::Sync
                }),
                parameters: command.parameters(),
            },
            meta: Some(if running {
                types::CommandExecutionMeta {
                    executed_at: Some(now),
                    completed_at: None,
                    duration_in_seconds: None,
                }
            } else {
                completed_at_once(now)
            }),
        };
        let v3 = &mut world.v3;
        v3.executions.insert(
            execution.id.clone(),
            (vehicle_id.clone(), execution.clone()),
        );
        v3.execution_order.push_back(execution.id.clone());
        while v3.execution_order.len() > crate::model::V3State::MAX_EXECUTIONS {
            if let Some(old) = v3.execution_order.pop_front() {
                v3.executions.remove(&old);
            }
        }
        execution
    };
    let status = if state.config.command_duration.is_zero() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json(
        status,
        &types::CommandExecutionResponse { data: execution },
    ))
}

/// `status` of an execution still running.
fn pending() -> types::CommandStatus {
    types::CommandStatus {
        value: CommandStatusValue::Pending,
        error: None,
    }
}

/// The execution as it stands at `now`: a pending one completes once `duration` has passed
/// since it was accepted.
fn as_of(
    mut execution: types::CommandExecution,
    now: chrono::DateTime<chrono::Utc>,
    duration: std::time::Duration,
) -> types::CommandExecution {
    if execution.attributes.status.value != CommandStatusValue::Pending {
        return execution;
    }
    let Some(accepted) = execution.meta.as_ref().and_then(|m| m.executed_at) else {
        return execution;
    };
    let takes = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
    if now - accepted >= takes {
        execution.attributes.status = succeeded();
        execution.meta = Some(types::CommandExecutionMeta {
            executed_at: Some(accepted),
            completed_at: Some(accepted + takes),
            duration_in_seconds: Some(duration.as_secs_f64()),
        });
    }
    execution
}

macro_rules! simple_command {
    ($(#[$doc:meta])* $name:ident, $command:expr) => {
        $(#[$doc])*
        pub(super) async fn $name(
            State(state): State<AppState>,
            path: Result<Path<String>, PathRejection>,
            headers: HeaderMap,
        ) -> V3Result {
            let command: Command = $command;
            execute(&state, path, &headers, command.op(), || Ok(command))
        }
    };
}

simple_command!(
    /// `POST /v3/vehicles/{vehicle_id}/commands/charge/start`.
    charge_start,
    Command::ChargeStart
);
simple_command!(
    /// `POST /v3/vehicles/{vehicle_id}/commands/charge/stop`.
    charge_stop,
    Command::ChargeStop
);
simple_command!(
    /// `POST /v3/vehicles/{vehicle_id}/commands/security/lock`.
    lock,
    Command::Lock
);
simple_command!(
    /// `POST /v3/vehicles/{vehicle_id}/commands/security/unlock`.
    unlock,
    Command::Unlock
);

/// `POST /v3/vehicles/{vehicle_id}/commands/charge/set-limit`.
pub(super) async fn set_limit(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> V3Result {
    execute(&state, path, &headers, ops::SET_CHARGE_LIMIT_V3, || {
        set_limit_command(&body_bytes(body)?)
    })
}

/// `POST /v3/vehicles/{vehicle_id}/commands/navigation/set-destination`.
pub(super) async fn set_destination(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> V3Result {
    execute(&state, path, &headers, ops::SET_DESTINATION_V3, || {
        set_destination_command(&body_bytes(body)?)
    })
}

/// `GET /v3/vehicles/{vehicle_id}/commands/{execution_id}`.
pub(super) async fn get_execution(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let (vehicle_id, execution_id) = path2(path)?;
    let execution = {
        let world = state.world();
        vehicle_access(&state, &world, &headers, &vehicle_id, true, None)?;
        match world.v3.executions.get(&execution_id) {
            Some((v, execution)) if *v == vehicle_id => as_of(
                execution.clone(),
                state.now(),
                state.config.command_duration,
            ),
            _ => return Err(not_found()),
        }
    };
    Ok(json(
        StatusCode::OK,
        &types::CommandExecutionResponse { data: execution },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_bodies() {
        assert_eq!(
            set_limit_command(br#"{"data":{"attributes":{"percent":80}}}"#).ok(),
            Some(Command::SetLimit(80.0))
        );
        for bad in [
            &br#"{"data":{"attributes":{"percent":49.9}}}"#[..],
            br#"{"data":{"attributes":{"percent":101}}}"#,
            br#"{"data":{"attributes":{"percent":"80"}}}"#,
            br#"{"data":{"attributes":{}}}"#,
            br#"{"data":"#,
            b"",
            b"null",
        ] {
            let err = set_limit_command(bad).err();
            assert_eq!(err.map(|e| e.status()), Some(StatusCode::BAD_REQUEST));
        }
        assert_eq!(
            set_destination_command(
                br#"{"data":{"attributes":{"latitude":51.5,"longitude":0.12}}}"#
            )
            .ok(),
            Some(Command::SetDestination(51.5, 0.12))
        );
        assert!(
            set_destination_command(br#"{"data":{"attributes":{"latitude":91,"longitude":0}}}"#)
                .is_err()
        );
        assert!(
            set_destination_command(br#"{"data":{"attributes":{"latitude":0,"longitude":-181}}}"#)
                .is_err()
        );
    }
}
