//! The per-vehicle reads of the v2.0 API: one [`Read`] per endpoint, shared by its route and
//! by batch.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::Value;
use smartcar_api::op::Operation;
use smartcar_api::open_enums::{CapacitySource, ClosureStatus, Permission, SystemHealth};
use smartcar_api::{ops, types};

use super::{Query, Units, fill, fill_nulls, millis, timestamp, to_value};
use crate::error::ApiError;
use crate::model::{Grant, Powertrain, Vehicle, World};
use crate::routing::v2_relative;
use crate::state::Shared;

/// Everything a read may look at.
pub(crate) struct Ctx<'a> {
    /// The vehicle.
    pub vehicle: &'a Vehicle,
    /// The token's grant.
    pub grant: &'a Grant,
    /// The world (application credentials for URLs).
    pub world: &'a World,
    /// The unit system of the body.
    pub units: Units,
    /// The request's query.
    pub query: &'a Query,
    /// The simulator's base URL.
    pub base_url: &'a str,
}

/// One GET endpoint under the vehicle (`/v2.0/vehicles/{vehicle_id}…`): its operation and how
/// the simulator answers it.
pub(crate) struct Read {
    /// The operation of the spec (path, permission).
    pub op: Operation,
    /// The body depends on `sc-unit-system` (the response echoes it).
    pub units: bool,
    /// Vehicle data: `sc-data-age` and `sc-fetched-at` headers, and a test VIN's forced error
    /// applies. `false` for platform-side data (permissions).
    pub vehicle_data: bool,
    /// Builds the body.
    pub run: fn(&Ctx<'_>) -> Result<Value, ApiError>,
}

impl Read {
    /// Path relative to the vehicle: `""` (attributes), `/odometer`, `/tires/pressure`, …
    /// (the operation's template without `/v2.0/vehicles/{vehicle_id}`).
    pub fn path(&self) -> &'static str {
        v2_relative(&self.op).unwrap_or(self.op.path)
    }

    /// The permission it needs (the spec's `security: smartcarConnect: [...]`).
    pub fn permission(&self) -> Option<&'static str> {
        self.op.permissions.first().copied()
    }
}

/// A read's successful answer.
pub(crate) struct Reply {
    /// The JSON body.
    pub body: Value,
    /// `sc-data-age`, `sc-fetched-at`, `sc-unit-system` (as applicable).
    pub headers: Vec<(&'static str, String)>,
}

macro_rules! read {
    ($op:ident, $units:literal, $run:path) => {
        Read {
            op: ops::$op,
            units: $units,
            vehicle_data: true,
            run: $run,
        }
    };
}

/// Every per-vehicle GET endpoint of the spec.
pub(crate) static READS: &[Read] = &[
    read!(GET_VEHICLE_ATTRIBUTES, false, attributes),
    read!(GET_VIN, false, vin),
    read!(GET_ODOMETER, true, odometer),
    read!(GET_LOCATION, false, location),
    read!(GET_FUEL, true, fuel),
    read!(GET_BATTERY, true, battery),
    read!(GET_BATTERY_CAPACITY, false, battery_capacity),
    read!(GET_NOMINAL_CAPACITY, false, nominal_capacity),
    read!(GET_CHARGE_STATUS, false, charge),
    read!(GET_CHARGE_LIMIT, false, charge_limit),
    read!(GET_ENGINE_OIL, false, engine_oil),
    read!(GET_TIRE_PRESSURE, true, tires),
    read!(GET_LOCK_STATUS, false, security),
    read!(GET_SERVICE_HISTORY, true, service_history),
    read!(GET_DIAGNOSTIC_SYSTEM_STATUS, false, system_status),
    read!(GET_DIAGNOSTIC_TROUBLE_CODES, false, dtcs),
    Read {
        op: ops::GET_PERMISSIONS,
        units: false,
        vehicle_data: false,
        run: permissions,
    },
];

/// The read for a path relative to the vehicle (`/` and `""` are the attributes).
pub(crate) fn find(path: &str) -> Option<&'static Read> {
    let path = if path == "/" { "" } else { path };
    READS.iter().find(|r| r.path() == path)
}

/// The access checks of `read` on vehicle `id`: 404 unknown, 403 outside the grant or without
/// the permission, and (for vehicle data) the test VIN's forced error.
pub(crate) fn access<'w>(
    state: &Shared,
    world: &'w World,
    grant: &Grant,
    id: &str,
    read: &Read,
) -> Result<&'w Vehicle, ApiError> {
    super::vehicle_access(
        state,
        world,
        grant,
        id,
        read.permission(),
        read.vehicle_data,
    )
}

/// Runs `read` on a vehicle that passed [`access`]: the body and its headers.
pub(crate) fn reply(
    state: &Shared,
    world: &World,
    grant: &Grant,
    vehicle: &Vehicle,
    read: &Read,
    units: Units,
    query: &Query,
) -> Result<Reply, ApiError> {
    let ctx = Ctx {
        vehicle,
        grant,
        world,
        units,
        query,
        base_url: &state.base_url,
    };
    let body = (read.run)(&ctx)?;
    let mut headers = Vec::with_capacity(3);
    if read.vehicle_data {
        headers.push(("sc-data-age", timestamp(vehicle.data_age)));
        headers.push(("sc-fetched-at", timestamp(state.now())));
    }
    if read.units {
        headers.push(("sc-unit-system", units.as_str().to_owned()));
    }
    Ok(Reply { body, headers })
}

/// The route of one read: token, vehicle, `sc-unit-system`, then the read.
pub(crate) fn serve(
    state: &Shared,
    id: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    query: Option<&str>,
    read: &Read,
) -> Response {
    let query = Query::parse(query);
    let result = super::path_param(id).and_then(|id| {
        let world = state.world();
        let grant = super::grant(state, &world, headers)?;
        let vehicle = access(state, &world, grant, &id, read)?;
        let units = Units::from_headers(headers)?;
        reply(state, &world, grant, vehicle, read, units, &query)
    });
    match result {
        Ok(reply) => super::json(StatusCode::OK, &reply.body, &reply.headers),
        Err(e) => e.into_response(),
    }
}

/// The vehicle's traction battery, or 501 `VEHICLE_NOT_CAPABLE` without one.
fn traction_battery<'a>(c: &Ctx<'a>) -> Result<&'a crate::model::Battery, ApiError> {
    c.vehicle.battery.as_ref().ok_or_else(ApiError::not_capable)
}

fn attributes(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let v = c.vehicle;
    Ok(to_value(&types::VehicleAttributes {
        id: v.id.clone(),
        make: v.make.clone(),
        model: v.model.clone(),
        year: v.year.into(),
    }))
}

fn vin(c: &Ctx<'_>) -> Result<Value, ApiError> {
    Ok(to_value(&types::Vin {
        vin: c.vehicle.vin.clone(),
    }))
}

fn odometer(c: &Ctx<'_>) -> Result<Value, ApiError> {
    Ok(to_value(&types::Odometer {
        distance: c.units.distance(c.vehicle.odometer_km),
    }))
}

fn location(c: &Ctx<'_>) -> Result<Value, ApiError> {
    Ok(to_value(&types::Location {
        latitude: c.vehicle.latitude,
        longitude: c.vehicle.longitude,
    }))
}

fn fuel(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let f = c.vehicle.fuel.as_ref().ok_or_else(ApiError::not_capable)?;
    let mut body = to_value(&types::FuelTank {
        amount_remaining: Some(c.units.volume(f.amount_liters())),
        percent_remaining: Some(f.percent),
        range: Some(c.units.distance(f.range_km())),
    });
    fill_nulls(&mut body, &["amountRemaining", "percentRemaining", "range"]);
    Ok(body)
}

fn battery(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let b = traction_battery(c)?;
    Ok(to_value(&types::Battery {
        percent_remaining: b.percent,
        range: c.units.distance(b.range_km()),
    }))
}

fn battery_capacity(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let b = traction_battery(c)?;
    Ok(to_value(&types::BatteryCapacity {
        capacity: b.capacity_kwh,
    }))
}

/// The candidates of `Battery::nominal_capacities`. Determined: `capacity.source` `SMARTCAR`,
/// `url` null. Undetermined: `capacity` null, `url` a Connect `battery-capacity` page of this
/// simulator (the page itself is not simulated).
fn nominal_capacity(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let v = c.vehicle;
    let b = traction_battery(c)?;
    let available_capacities = b
        .nominal_capacities(v.powertrain)
        .into_iter()
        .map(|(kwh, description)| types::AvailableCapacity {
            capacity: Some(kwh),
            description: Some(description),
        })
        .collect();
    let body = if b.nominal_determined {
        types::NominalCapacity {
            available_capacities,
            capacity: Some(types::SelectedCapacity {
                nominal: Some(b.capacity_kwh),
                source: CapacitySource::Smartcar,
            }),
            url: None,
        }
    } else {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("vehicle_id", &v.id)
            .append_pair("client_id", &c.world.app.client_id)
            .append_pair("token", &crate::state::random_id())
            .append_pair("response_type", "vehicle_id")
            .append_pair("redirect_uri", "")
            .finish();
        types::NominalCapacity {
            available_capacities,
            capacity: None,
            url: Some(format!("{}/battery-capacity?{query}", c.base_url)),
        }
    };
    let mut body = to_value(&body);
    fill_nulls(&mut body, &["capacity", "url"]);
    Ok(body)
}

fn charge(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let b = traction_battery(c)?;
    Ok(to_value(&types::ChargeStatus {
        is_plugged_in: b.plugged_in,
        state: b.charge_state(),
    }))
}

fn charge_limit(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let b = traction_battery(c)?;
    Ok(to_value(&types::ChargeLimit {
        limit: b.charge_limit,
    }))
}

fn engine_oil(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let life = c.vehicle.oil_life.ok_or_else(ApiError::not_capable)?;
    Ok(to_value(&types::EngineOil {
        life_remaining: life,
    }))
}

fn tires(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let [fl, fr, bl, br] = c.vehicle.tires_kpa.map(|kpa| c.units.pressure(kpa));
    Ok(to_value(&types::TirePressure {
        front_left: fl,
        front_right: fr,
        back_left: bl,
        back_right: br,
    }))
}

const SIDES: [&str; 4] = ["frontLeft", "frontRight", "backLeft", "backRight"];

fn closure(kind: &str, open: bool) -> types::ClosureState {
    types::ClosureState {
        type_: kind.to_owned(),
        status: if open {
            ClosureStatus::Open
        } else {
            ClosureStatus::Closed
        },
    }
}

/// Doors and windows from the vehicle's state; sunroof, storage closed; the charging port open
/// while plugged in (only vehicles that plug in have one: `[]` otherwise).
fn security(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let v = c.vehicle;
    let body = types::LockStatus {
        is_locked: v.locked,
        doors: SIDES
            .iter()
            .zip(v.doors_open)
            .map(|(s, open)| closure(s, open))
            .collect(),
        windows: SIDES
            .iter()
            .zip(v.windows_open)
            .map(|(s, open)| closure(s, open))
            .collect(),
        sunroof: vec![closure("sunroof", false)],
        storage: vec![closure("rear", false), closure("front", false)],
        charging_port: v
            .battery
            .iter()
            .map(|b| closure("chargingPort", b.plugged_in))
            .collect(),
    };
    let mut body = to_value(&body);
    for key in ["doors", "windows", "sunroof", "storage", "chargingPort"] {
        fill(&mut body, key, Value::Array(Vec::new()));
    }
    Ok(body)
}

/// A date filter of service history: `startDate`/`endDate` or `start_date`/`end_date` (the SDKs
/// disagree), a date (`2024-05-01`, the whole day) or a date-time. Empty values and the Node
/// SDK's literal `undefined` count as absent.
fn date_filter(q: &Query, names: [&str; 2], end: bool) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some((name, raw)) = names
        .iter()
        .find_map(|n| q.get(n).map(|v| (*n, v.trim())))
        .filter(|(_, v)| !v.is_empty() && *v != "undefined" && *v != "null")
    else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let time = if end {
            NaiveTime::from_hms_milli_opt(23, 59, 59, 999)
        } else {
            NaiveTime::from_hms_opt(0, 0, 0)
        };
        if let Some(time) = time {
            return Ok(Some(d.and_time(time).and_utc()));
        }
    }
    Err(ApiError::validation(
        name,
        &format!("\"{name}\" must be a valid ISO 8601 date"),
    ))
}

fn service_history(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let start = date_filter(c.query, ["startDate", "start_date"], false)?;
    let end = date_filter(c.query, ["endDate", "end_date"], true)?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(ApiError::validation(
            "endDate",
            "\"endDate\" must be greater than or equal to \"startDate\"",
        ));
    }
    let records = c
        .vehicle
        .service_records
        .iter()
        .filter(|r| start.is_none_or(|s| r.date >= s) && end.is_none_or(|e| r.date <= e))
        .map(|r| {
            let record = types::ServiceRecord {
                service_id: Some(types::TextOrNumber::String(r.id.clone())),
                service_date: Some(millis(r.date).into()),
                odometer_distance: Some(c.units.distance(r.odometer_km)),
                service_tasks: r
                    .tasks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| types::ServiceTask {
                        task_id: Some(types::TextOrNumber::String(format!("{}-{}", r.id, i + 1))),
                        task_description: Some(t.clone()),
                    })
                    .collect(),
                service_details: Some(types::ServiceDetails::Array(Vec::new())),
                service_cost: Some(types::ServiceCost {
                    total_cost: r.cost.as_ref().map(|(amount, _)| *amount),
                    currency: r.cost.as_ref().map(|(_, cur)| cur.clone()),
                }),
            };
            let mut v = to_value(&record);
            fill(&mut v, "serviceTasks", Value::Array(Vec::new()));
            fill(&mut v, "serviceDetails", Value::Array(Vec::new()));
            if let Some(cost) = v.get_mut("serviceCost") {
                fill_nulls(cost, &["totalCost", "currency"]);
            }
            v
        })
        .collect();
    Ok(Value::Array(records))
}

fn system_status(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let body = types::DiagnosticSystemStatus {
        systems: c
            .vehicle
            .systems
            .iter()
            .map(|(id, ok, description)| types::DiagnosticSystem {
                system_id: id.clone(),
                status: if *ok {
                    SystemHealth::Ok
                } else {
                    SystemHealth::Alert
                },
                description: description.clone(),
            })
            .collect(),
    };
    let mut body = to_value(&body);
    if let Some(Value::Array(systems)) = body.get_mut("systems") {
        for s in systems {
            fill_nulls(s, &["description"]);
        }
    }
    Ok(body)
}

fn dtcs(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let body = types::DiagnosticTroubleCodes {
        active_codes: c
            .vehicle
            .dtcs
            .iter()
            .map(|(code, at)| types::TroubleCode {
                code: code.clone(),
                timestamp: at.map(millis),
            })
            .collect(),
    };
    let mut body = to_value(&body);
    if let Some(Value::Array(codes)) = body.get_mut("activeCodes") {
        for code in codes {
            fill_nulls(code, &["timestamp"]);
        }
    }
    Ok(body)
}

/// The token's permissions, sorted, paged by `limit` (default 25) and `offset`.
fn permissions(c: &Ctx<'_>) -> Result<Value, ApiError> {
    let limit = c.query.int("limit", 25, 1, i64::from(i32::MAX))?;
    let offset = c.query.int("offset", 0, 0, i64::from(i32::MAX))?;
    let scopes = &c.grant.scopes;
    Ok(to_value(&types::Permissions {
        paging: types::Paging {
            count: i32::try_from(scopes.len()).unwrap_or(i32::MAX),
            offset: offset as i32,
        },
        permissions: scopes
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|p| Permission::from(p.as_str()))
            .collect(),
    }))
}

/// Whether the powertrain has what operation `op` needs (for compatibility answers): fuel and
/// engine oil need an engine, battery and charging a plug.
pub(crate) fn powertrain_capable(op: &Operation, powertrain: Powertrain) -> bool {
    match op.permissions.first().copied() {
        Some("read_fuel" | "read_engine_oil") => powertrain.burns_fuel(),
        Some("read_battery" | "read_charge" | "control_charge") => powertrain.plugs_in(),
        _ => true,
    }
}
