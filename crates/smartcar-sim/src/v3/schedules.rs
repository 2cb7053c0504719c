//! Charge schedules of the Vehicle API v3: `POST /v3/vehicles/{vehicle_id}/charge-schedules/`
//! `daily`, `weekly`, `workweek`, `DELETE …/charge-schedules/{schedule_id}`, and the LOCATION
//! timers the schedules become in the `charge-chargetimers` signal.
//!
//! # Verified (Smartcar's docs)
//!
//! - The daily schedule's body `{data: {attributes: {location: {latitude, longitude},
//!   startTime: "HH:mm", stopTime: "HH:mm"}}}` and the record answered: `id`, `type:
//!   charge-schedule-execution`, `attributes` (`action`, `scheduleType`, `status`,
//!   `executionMode`, `scheduleId`, `parameters`), `links.schedule`, `meta` (api-reference
//!   set-daily-charge-schedule).
//! - Tesla takes daily, weekly and workweek schedules, Volvo daily ones; schedules are read back
//!   from the `charge-chargetimers` signal, whose LOCATION timers created through the API carry
//!   `scheduleType` and `scheduleId`, the id the DELETE takes (commands/overview).
//!
//! # Simulator choices (unverified)
//!
//! - **Checks**, in the order of the other v3 commands: 401 `AUTHENTICATION`, 400 without
//!   `sc-user-id`, 404 for an unknown vehicle, 403 `PERMISSION` (no connection, or
//!   `control_charge` not granted: the permission is itself the spec's guess), the error a test
//!   VIN forces; then the body (400 `VALIDATION`); then the vehicle: 501
//!   `COMPATIBILITY`/`VEHICLE_NOT_CAPABLE` for a make that does not take that kind of schedule
//!   (see [`kinds_of`]) or a vehicle without a traction battery.
//! - **Bodies**: `latitude` −90–90, `longitude` −180–180; times exactly `HH:mm`, 00:00–23:59;
//!   a window's start and stop differ (a stop before the start spans midnight). Weekly: `days`
//!   keyed by lower-case weekday names (`monday` … `sunday`; another key is 400), at least one
//!   day with a window. The weekly day shape and the workweek window shape are the spec's
//!   guesses. JSON that does not parse or misses a field: 400.
//! - **At most [`MAX_SCHEDULES`] schedules per vehicle** (the next is 400 `VALIDATION`): a
//!   long-running simulator keeps bounded state.
//! - **Executions** complete synchronously: 200, `executionMode: sync`, status `SUCCESS`,
//!   `executedAt` = `completedAt` = the simulated now, `durationInSeconds: 0`, id
//!   `exec_<32 hex>`; `parameters` echo the request's attributes as the spec's types read them
//!   (unknown fields dropped); `links.schedule` is the schedule's path relative to the v3 base
//!   URL. The schedule id is `sched_<32 hex>`. The vehicle's data age becomes now (it
//!   reported), as after the other commands.
//! - **DELETE** answers the same record with `action: delete`, the deleted schedule's
//!   `scheduleType` and `scheduleId`, no `parameters` (the request has no body); an id the
//!   vehicle does not have (another vehicle's included) is 404 `RESOURCE_NOT_FOUND`/`PATH`.
//! - Schedule executions are **not** kept for `GET …/commands/{execution_id}`: the spec answers
//!   that operation with a command execution (`commandType` among the six commands), which a
//!   schedule's record does not fit.
//! - **The signal**: a vehicle with a traction battery whose make takes schedules provides
//!   `charge-chargetimers`: `{values: [one timer per schedule, oldest first]}`, each `{type:
//!   LOCATION, condition: {latitude, longitude}, schedules: [{start: "HH:MM:SS", end, days:
//!   ["MONDAY", …]}], departureTimers: [], isOEMOptimizationEnabled: false, scheduleType,
//!   scheduleId}`. A daily schedule is one entry for the whole week, a weekly one an entry per
//!   day, a workweek one an entry for Monday–Friday then one for Saturday–Sunday. The condition
//!   has no `name`, `address` or `connectorType` (the simulator knows none for a location given
//!   as coordinates). The simulated cars have no timers set in the car or its app, so without
//!   API schedules `values` is empty. Other vehicles cannot provide the signal (as before
//!   schedules existed).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc, Weekday};
use serde_json::{Map, Value, json};
use smartcar_api::op::Operation;
use smartcar_api::open_enums::{ChargeScheduleAction, ChargeScheduleType, ExecutionMode};
use smartcar_api::{ops, types};

use super::commands::{check_coordinates, completed_at_once, parse_body, succeeded};
use super::{V3Result, body_bytes, invalid, json, not_found, path1, path2, vehicle_access};
use crate::error::ApiError;
use crate::model::{ChargeSchedule, ChargeScheduleKind, ChargeScheduleWindow, Powertrain, Vehicle};
use crate::routing::v3_link;
use crate::state::{AppState, random_id};

/// The most schedules one vehicle keeps.
const MAX_SCHEDULES: usize = 32;

/// The weekdays, Monday first: the `days` keys of a weekly schedule and the day names of the
/// timers.
const DAYS: [(&str, &str, Weekday); 7] = [
    ("monday", "MONDAY", Weekday::Mon),
    ("tuesday", "TUESDAY", Weekday::Tue),
    ("wednesday", "WEDNESDAY", Weekday::Wed),
    ("thursday", "THURSDAY", Weekday::Thu),
    ("friday", "FRIDAY", Weekday::Fri),
    ("saturday", "SATURDAY", Weekday::Sat),
    ("sunday", "SUNDAY", Weekday::Sun),
];

/// The kinds of schedule a make (as the v2 API spells it, `TESLA`) takes; empty: none.
pub(crate) fn kinds_of(make: &str) -> &'static [ChargeScheduleKind] {
    if make.eq_ignore_ascii_case("TESLA") {
        &ChargeScheduleKind::ALL
    } else if make.eq_ignore_ascii_case("VOLVO") {
        &[ChargeScheduleKind::Daily]
    } else {
        &[]
    }
}

/// Whether the vehicles of `make` with `powertrain` take `kind` schedules.
pub(crate) fn takes(make: &str, powertrain: Powertrain, kind: ChargeScheduleKind) -> bool {
    powertrain.plugs_in() && kinds_of(make).contains(&kind)
}

/// The operation that creates a `kind` schedule.
pub(crate) fn create_op(kind: ChargeScheduleKind) -> Operation {
    match kind {
        ChargeScheduleKind::Daily => ops::SET_DAILY_CHARGE_SCHEDULE_V3,
        ChargeScheduleKind::Weekly => ops::SET_WEEKLY_CHARGE_SCHEDULE_V3,
        ChargeScheduleKind::Workweek => ops::SET_WORKWEEK_CHARGE_SCHEDULE_V3,
    }
}

/// A validated creation request.
#[derive(Debug)]
struct Request {
    latitude: f64,
    longitude: f64,
    windows: Vec<ChargeScheduleWindow>,
    /// The attributes as the spec's type reads them (the execution's `parameters`).
    parameters: Map<String, Value>,
}

/// A local time `HH:mm` (00:00–23:59), or 400 naming `field`.
fn time(value: &str, field: &str) -> Result<String, ApiError> {
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    let valid = match value.split_once(':') {
        Some((h, m)) if digits(h) && digits(m) => {
            h.parse::<u8>().is_ok_and(|h| h < 24) && m.parse::<u8>().is_ok_and(|m| m < 60)
        }
        _ => false,
    };
    if valid {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            field,
            &format!("`{field}` must be a local time HH:mm from 00:00 to 23:59."),
        ))
    }
}

/// A validated window on `days` (`at`: where it is in the body, for the error's field).
fn window(
    start: &str,
    stop: &str,
    days: &[Weekday],
    at: &str,
) -> Result<ChargeScheduleWindow, ApiError> {
    let start = time(start, &format!("{at}.startTime"))?;
    let stop = time(stop, &format!("{at}.stopTime"))?;
    if start == stop {
        return Err(invalid(
            &format!("{at}.stopTime"),
            "`stopTime` must differ from `startTime`.",
        ));
    }
    Ok(ChargeScheduleWindow {
        start,
        stop,
        days: days.to_vec(),
    })
}

/// The attributes as the execution's `parameters`.
fn parameters<T: serde::Serialize>(attributes: &T) -> Map<String, Value> {
    match serde_json::to_value(attributes) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

const ATTRIBUTES: &str = "data.attributes";

fn every_day() -> Vec<Weekday> {
    DAYS.iter().map(|(_, _, d)| *d).collect()
}

/// A request at `location` (checked first), with the windows `windows` validates, echoing
/// `attributes`.
fn request<T: serde::Serialize>(
    location: &types::ChargeScheduleLocation,
    attributes: &T,
    windows: impl FnOnce() -> Result<Vec<ChargeScheduleWindow>, ApiError>,
) -> Result<Request, ApiError> {
    let types::ChargeScheduleLocation {
        latitude,
        longitude,
    } = *location;
    check_coordinates(latitude, longitude, &format!("{ATTRIBUTES}.location"))?;
    Ok(Request {
        latitude,
        longitude,
        windows: windows()?,
        parameters: parameters(attributes),
    })
}

fn daily(body: &[u8]) -> Result<Request, ApiError> {
    let request: types::DailyChargeScheduleRequest = parse_body(body)?;
    let a = request.data.attributes;
    self::request(&a.location, &a, || {
        Ok(vec![window(
            &a.start_time,
            &a.stop_time,
            &every_day(),
            ATTRIBUTES,
        )?])
    })
}

/// The window of `day` in a weekly body.
fn day_window(days: &types::WeeklyChargeDays, day: Weekday) -> Option<&types::ChargeWindow> {
    match day {
        Weekday::Mon => days.monday.as_ref(),
        Weekday::Tue => days.tuesday.as_ref(),
        Weekday::Wed => days.wednesday.as_ref(),
        Weekday::Thu => days.thursday.as_ref(),
        Weekday::Fri => days.friday.as_ref(),
        Weekday::Sat => days.saturday.as_ref(),
        Weekday::Sun => days.sunday.as_ref(),
    }
}

fn weekly(body: &[u8]) -> Result<Request, ApiError> {
    let request: types::WeeklyChargeScheduleRequest = parse_body(body)?;
    let field = format!("{ATTRIBUTES}.days");
    // The generated type ignores keys it does not know: the raw body says which were sent.
    let raw: Value = parse_body(body)?;
    if let Some(days) = raw
        .pointer("/data/attributes/days")
        .and_then(Value::as_object)
        && let Some(unknown) = days.keys().find(|k| !DAYS.iter().any(|(d, _, _)| d == k))
    {
        return Err(invalid(
            &field,
            &format!("`{unknown}` is not a day: `days` takes monday, tuesday, … sunday."),
        ));
    }
    let a = request.data.attributes;
    self::request(&a.location, &a, || {
        let mut windows = Vec::new();
        for (name, _, day) in DAYS {
            if let Some(w) = day_window(&a.days, day) {
                windows.push(window(
                    &w.start_time,
                    &w.stop_time,
                    &[day],
                    &format!("{field}.{name}"),
                )?);
            }
        }
        if windows.is_empty() {
            return Err(invalid(
                &field,
                "`days` must give a window for at least one day.",
            ));
        }
        Ok(windows)
    })
}

fn workweek(body: &[u8]) -> Result<Request, ApiError> {
    let request: types::WorkweekChargeScheduleRequest = parse_body(body)?;
    let a = request.data.attributes;
    let days = every_day();
    let (weekdays, weekend) = days.split_at(5);
    self::request(&a.location, &a, || {
        Ok(vec![
            window(
                &a.weekdays.start_time,
                &a.weekdays.stop_time,
                weekdays,
                &format!("{ATTRIBUTES}.weekdays"),
            )?,
            window(
                &a.weekends.start_time,
                &a.weekends.stop_time,
                weekend,
                &format!("{ATTRIBUTES}.weekends"),
            )?,
        ])
    })
}

fn parse(kind: ChargeScheduleKind, body: &[u8]) -> Result<Request, ApiError> {
    match kind {
        ChargeScheduleKind::Daily => daily(body),
        ChargeScheduleKind::Weekly => weekly(body),
        ChargeScheduleKind::Workweek => workweek(body),
    }
}

/// A random id of 32 hex digits.
fn hex_id() -> String {
    random_id().replace('-', "")
}

/// The record of an execution on `schedule` of vehicle `vehicle_id`, done at `now`.
fn execution(
    vehicle_id: &str,
    action: ChargeScheduleAction,
    schedule: &ChargeSchedule,
    parameters: Map<String, Value>,
    now: DateTime<Utc>,
) -> types::ChargeScheduleExecutionResponse {
    types::ChargeScheduleExecutionResponse {
        data: types::ChargeScheduleExecution {
            id: format!("exec_{}", hex_id()),
            type_: "charge-schedule-execution".to_owned(),
            attributes: types::ChargeScheduleExecutionAttributes {
                action,
                execution_mode: Some(ExecutionMode::Sync),
                parameters,
                schedule_id: Some(schedule.id.clone()),
                schedule_type: Some(ChargeScheduleType::from(schedule.kind.as_str())),
                status: succeeded(),
            },
            links: Some(types::ChargeScheduleExecutionLinks {
                schedule: Some(v3_link(ops::DeleteChargeScheduleV3::path(
                    vehicle_id,
                    &schedule.id,
                ))),
            }),
            meta: Some(completed_at_once(now)),
        },
    }
}

/// Authenticates, checks the permission, validates the body and the vehicle, stores the
/// schedule and answers its execution.
fn create(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: ChargeScheduleKind,
) -> V3Result {
    let vehicle_id = path1(path)?;
    let now = state.now();
    let permission = create_op(kind).permissions.first().copied();
    let body = {
        let mut world = state.world();
        vehicle_access(state, &world, headers, &vehicle_id, true, permission)?;
        let request = parse(kind, &body_bytes(body)?)?;
        let vehicle = world.vehicles.get_mut(&vehicle_id).ok_or_else(not_found)?;
        if vehicle.battery.is_none() || !kinds_of(&vehicle.make).contains(&kind) {
            return Err(ApiError::not_capable().into_v3());
        }
        if vehicle.charge_schedules.len() >= MAX_SCHEDULES {
            return Err(invalid(
                "data",
                &format!(
                    "The vehicle keeps at most {MAX_SCHEDULES} charge schedules: delete one first."
                ),
            ));
        }
        let schedule = ChargeSchedule {
            id: format!("sched_{}", hex_id()),
            kind,
            latitude: request.latitude,
            longitude: request.longitude,
            windows: request.windows,
        };
        let body = execution(
            &vehicle_id,
            ChargeScheduleAction::Create,
            &schedule,
            request.parameters,
            now,
        );
        vehicle.charge_schedules.push(schedule);
        vehicle.data_age = now;
        body
    };
    Ok(json(StatusCode::OK, &body))
}

macro_rules! create_handler {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        pub(super) async fn $name(
            State(state): State<AppState>,
            path: Result<Path<String>, PathRejection>,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> V3Result {
            create(&state, path, &headers, body, $kind)
        }
    };
}

create_handler!(
    /// `POST /v3/vehicles/{vehicle_id}/charge-schedules/daily`.
    set_daily,
    ChargeScheduleKind::Daily
);
create_handler!(
    /// `POST /v3/vehicles/{vehicle_id}/charge-schedules/weekly`.
    set_weekly,
    ChargeScheduleKind::Weekly
);
create_handler!(
    /// `POST /v3/vehicles/{vehicle_id}/charge-schedules/workweek`.
    set_workweek,
    ChargeScheduleKind::Workweek
);

/// `DELETE /v3/vehicles/{vehicle_id}/charge-schedules/{schedule_id}`.
pub(super) async fn delete(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let (vehicle_id, schedule_id) = path2(path)?;
    let now = state.now();
    let permission = ops::DELETE_CHARGE_SCHEDULE_V3.permissions.first().copied();
    let body = {
        let mut world = state.world();
        vehicle_access(&state, &world, &headers, &vehicle_id, true, permission)?;
        let vehicle = world.vehicles.get_mut(&vehicle_id).ok_or_else(not_found)?;
        let index = vehicle
            .charge_schedules
            .iter()
            .position(|s| s.id == schedule_id)
            .ok_or_else(not_found)?;
        let schedule = vehicle.charge_schedules.remove(index);
        vehicle.data_age = now;
        execution(
            &vehicle_id,
            ChargeScheduleAction::Delete,
            &schedule,
            Map::new(),
            now,
        )
    };
    Ok(json(StatusCode::OK, &body))
}

/// The body of `charge-chargetimers` for `v`, or `None` when the vehicle cannot provide it (see
/// the module documentation).
pub(crate) fn timers(v: &Vehicle) -> Option<Map<String, Value>> {
    v.battery.as_ref()?;
    if kinds_of(&v.make).is_empty() {
        return None;
    }
    let values: Vec<Value> = v.charge_schedules.iter().map(timer).collect();
    let mut body = Map::new();
    body.insert("values".to_owned(), Value::Array(values));
    Some(body)
}

/// The LOCATION timer of a schedule.
fn timer(s: &ChargeSchedule) -> Value {
    let day_name = |day: &Weekday| {
        DAYS.iter()
            .find(|(_, _, d)| d == day)
            .map_or("", |(_, name, _)| *name)
    };
    let schedules: Vec<Value> = s
        .windows
        .iter()
        .map(|w| {
            json!({
                "start": format!("{}:00", w.start),
                "end": format!("{}:00", w.stop),
                "days": w.days.iter().map(day_name).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "type": "LOCATION",
        "condition": {"latitude": s.latitude, "longitude": s.longitude},
        "schedules": schedules,
        "departureTimers": [],
        "isOEMOptimizationEnabled": false,
        "scheduleType": s.kind.as_str(),
        "scheduleId": s.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(result: Result<Request, ApiError>) -> Option<StatusCode> {
        result.err().map(|e| e.status())
    }

    #[test]
    fn times() {
        for ok in ["00:00", "23:59", "08:30"] {
            assert_eq!(time(ok, "t").ok().as_deref(), Some(ok));
        }
        for bad in [
            "24:00", "12:60", "8:00", "08:0", "08:00:00", "0800", "ab:cd", "", "+1:00",
        ] {
            assert!(time(bad, "t").is_err(), "{bad}");
        }
    }

    #[test]
    fn daily_bodies() {
        let ok = daily(
            br#"{"data":{"attributes":{"location":{"latitude":37.7,"longitude":-122.4},"startTime":"22:00","stopTime":"06:00"}}}"#,
        );
        let ok = ok
            .ok()
            .unwrap_or_else(|| panic!("valid daily body refused"));
        assert_eq!((ok.latitude, ok.longitude), (37.7, -122.4));
        assert_eq!(ok.windows.len(), 1);
        assert_eq!(ok.windows[0].days.len(), 7);
        assert_eq!(
            Value::Object(ok.parameters),
            json!({"location": {"latitude": 37.7, "longitude": -122.4}, "startTime": "22:00", "stopTime": "06:00"})
        );
        for bad in [
            &br#"{"data":{"attributes":{"location":{"latitude":91,"longitude":0},"startTime":"22:00","stopTime":"06:00"}}}"#[..],
            br#"{"data":{"attributes":{"location":{"latitude":0,"longitude":-180.5},"startTime":"22:00","stopTime":"06:00"}}}"#,
            br#"{"data":{"attributes":{"location":{"latitude":0,"longitude":0},"startTime":"25:00","stopTime":"06:00"}}}"#,
            br#"{"data":{"attributes":{"location":{"latitude":0,"longitude":0},"startTime":"06:00","stopTime":"06:00"}}}"#,
            br#"{"data":{"attributes":{"location":{"latitude":0,"longitude":0},"startTime":"06:00"}}}"#,
            br#"{"data":{"attributes":{"startTime":"06:00","stopTime":"07:00"}}}"#,
            b"{",
            b"",
        ] {
            assert_eq!(status(daily(bad)), Some(StatusCode::BAD_REQUEST));
        }
    }

    #[test]
    fn weekly_and_workweek_bodies() {
        let ok = weekly(
            br#"{"data":{"attributes":{"location":{"latitude":1,"longitude":2},"days":{"wednesday":{"startTime":"01:00","stopTime":"02:00"},"monday":{"startTime":"22:00","stopTime":"06:00"}}}}}"#,
        );
        let ok = ok
            .ok()
            .unwrap_or_else(|| panic!("valid weekly body refused"));
        let days: Vec<Vec<Weekday>> = ok.windows.iter().map(|w| w.days.clone()).collect();
        assert_eq!(days, [vec![Weekday::Mon], vec![Weekday::Wed]], "week order");
        for bad in [
            &br#"{"data":{"attributes":{"location":{"latitude":1,"longitude":2},"days":{}}}}"#[..],
            br#"{"data":{"attributes":{"location":{"latitude":1,"longitude":2},"days":{"funday":{"startTime":"01:00","stopTime":"02:00"}}}}}"#,
            br#"{"data":{"attributes":{"location":{"latitude":1,"longitude":2},"days":{"Monday":{"startTime":"01:00","stopTime":"02:00"}}}}}"#,
            br#"{"data":{"attributes":{"location":{"latitude":1,"longitude":2},"days":{"monday":{"startTime":"1:00","stopTime":"02:00"}}}}}"#,
            br#"{"data":{"attributes":{"location":{"latitude":1,"longitude":2}}}}"#,
        ] {
            assert_eq!(status(weekly(bad)), Some(StatusCode::BAD_REQUEST));
        }
        let ok = workweek(
            br#"{"data":{"attributes":{"location":{"latitude":1,"longitude":2},"weekdays":{"startTime":"22:00","stopTime":"06:00"},"weekends":{"startTime":"00:00","stopTime":"08:00"}}}}"#,
        );
        let ok = ok
            .ok()
            .unwrap_or_else(|| panic!("valid workweek body refused"));
        assert_eq!(ok.windows[0].days.len(), 5);
        assert_eq!(ok.windows[1].days, [Weekday::Sat, Weekday::Sun]);
        assert_eq!(
            status(workweek(
                br#"{"data":{"attributes":{"location":{"latitude":1,"longitude":2},"weekdays":{"startTime":"22:00","stopTime":"06:00"}}}}"#
            )),
            Some(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn makes() {
        assert_eq!(kinds_of("TESLA"), &ChargeScheduleKind::ALL);
        assert_eq!(kinds_of("Volvo"), &[ChargeScheduleKind::Daily]);
        assert!(kinds_of("FORD").is_empty());
        assert!(takes("TESLA", Powertrain::Bev, ChargeScheduleKind::Weekly));
        assert!(!takes("VOLVO", Powertrain::Bev, ChargeScheduleKind::Weekly));
        assert!(!takes("VOLVO", Powertrain::Ice, ChargeScheduleKind::Daily));
        for kind in ChargeScheduleKind::ALL {
            assert_eq!(create_op(kind).permissions, ["control_charge"]);
        }
    }
}
