//! Signals of the Vehicle API v3: the catalogue (code, name, group, permission), each signal's
//! body derived from the simulated vehicle's state, and the two signal endpoints.
//!
//! Choices where the platform's behaviour is unverified:
//!
//! - **Which signals a vehicle has.** Every vehicle: odometer, precise location, lock state,
//!   doors, windows, tires (kPa, no unit field, as the docs' body has none), VIN, nickname,
//!   online/asleep status, diagnostic systems and trouble codes, service records. Plug-in
//!   vehicles (BEV, PHEV) add the traction battery (state of charge, range, nominal capacity)
//!   and charging (is charging, cable connected, detailed status, charge limits); those of the
//!   makes that take charge schedules (Tesla, Volvo) also the charge timers, which list the
//!   schedules created through the API (see `schedules`). Vehicles with a tank (ICE, HEV, PHEV)
//!   add the engine (fuel level, amount, range, oil life) and the oil-life diagnostic. The other
//!   catalogue signals are ones the simulated vehicles cannot provide. [`provided`] says the same
//!   per make and powertrain, for the compatible-vehicles list (a unit test holds the two
//!   together over a generated fleet).
//! - **List** (`GET …/signals`): the signals the vehicle can provide, sorted by code, paged by
//!   `page` (from 1, default 1) and `pageSize` (1–100, default 10); anything else is 400. A page
//!   past the last is empty. A signal whose permission the connection lacks is listed with
//!   `status.value: ERROR` and `status.error.type: PERMISSION` (no body); signals the vehicle
//!   cannot provide are left out.
//! - **One signal** (`GET …/signals/{code}`): an unknown code is 404; a known code the vehicle
//!   cannot provide answers 200 with `status.value: ERROR`, `error: {type: COMPATIBILITY, code:
//!   VEHICLE_NOT_CAPABLE}` and no body; a missing permission is 403 `PERMISSION`.
//! - Units are metric whatever `sc-unit-system` says (`kilometers`, `liters`, `percent`, `kWh`,
//!   tire pressures in kPa); percentages are 0–100.
//! - `meta.retrievedAt` is the simulated now and `meta.oemUpdatedAt` the vehicle's last report
//!   (its data age), both epoch milliseconds.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use smartcar_api::open_enums::{ResolutionType, SignalCode, SignalStatusValue};
use smartcar_api::{ops, types};

use super::{
    Page, Query, V3Result, epoch_ms, json, not_found, path1, path2, permission, vehicle_access,
    vehicle_resource,
};
use crate::error::lookup;
use crate::model::{Powertrain, Vehicle, round};
use crate::routing::v3_link;
use crate::state::AppState;
use crate::v2::timestamp;

/// One signal of the catalogue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignalDef {
    /// `group-name` in lower case.
    pub code: &'static str,
    /// PascalCase name.
    pub name: &'static str,
    /// PascalCase group.
    pub group: &'static str,
    /// The permission that reads it.
    pub permission: &'static str,
}

const fn sig(
    code: &'static str,
    name: &'static str,
    group: &'static str,
    permission: &'static str,
) -> SignalDef {
    SignalDef {
        code,
        name,
        group,
        permission,
    }
}

/// The v3 signal catalogue, sorted by code (the spec's `SignalCode` enum; names and groups from
/// Smartcar's signal reference; permissions per the facts file's mapping, guessed where the
/// docs are silent).
pub(crate) const SIGNALS: &[SignalDef] = &[
    sig("charge-amperage", "Amperage", "Charge", "read_charge"),
    sig("charge-amperagemax", "AmperageMax", "Charge", "read_charge"),
    sig(
        "charge-amperagerequested",
        "AmperageRequested",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-chargelimits",
        "ChargeLimits",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-chargeportstatuscolor",
        "ChargePortStatusColor",
        "Charge",
        "read_charge",
    ),
    sig("charge-chargerate", "ChargeRate", "Charge", "read_charge"),
    sig(
        "charge-chargerecords",
        "ChargeRecords",
        "Charge",
        "read_charge_records",
    ),
    sig(
        "charge-chargerphases",
        "ChargerPhases",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-chargetimers",
        "ChargeTimers",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-chargingconnectortype",
        "ChargingConnectorType",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-detailedchargingstatus",
        "DetailedChargingStatus",
        "Charge",
        "read_charge",
    ),
    sig("charge-energyadded", "EnergyAdded", "Charge", "read_charge"),
    sig(
        "charge-fastchargertype",
        "FastChargerType",
        "Charge",
        "read_charge",
    ),
    sig("charge-ischarging", "IsCharging", "Charge", "read_charge"),
    sig(
        "charge-ischargingcableconnected",
        "IsChargingCableConnected",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-ischargingcablelatched",
        "IsChargingCableLatched",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-ischargingportflapopen",
        "IsChargingPortFlapOpen",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-isfastchargerpresent",
        "IsFastChargerPresent",
        "Charge",
        "read_charge",
    ),
    sig(
        "charge-timetocomplete",
        "TimeToComplete",
        "Charge",
        "read_charge",
    ),
    sig("charge-voltage", "Voltage", "Charge", "read_charge"),
    sig("charge-wattage", "Wattage", "Charge", "read_charge"),
    sig(
        "climate-externaltemperature",
        "ExternalTemperature",
        "Climate",
        "read_climate",
    ),
    sig(
        "climate-internaltemperature",
        "InternalTemperature",
        "Climate",
        "read_climate",
    ),
    sig("closure-doors", "Doors", "Closure", "read_security"),
    sig(
        "closure-enginecover",
        "EngineCover",
        "Closure",
        "read_security",
    ),
    sig(
        "closure-fronttrunk",
        "FrontTrunk",
        "Closure",
        "read_security",
    ),
    sig("closure-islocked", "IsLocked", "Closure", "read_security"),
    sig("closure-reartrunk", "RearTrunk", "Closure", "read_security"),
    sig("closure-sunroof", "Sunroof", "Closure", "read_security"),
    sig("closure-tailgate", "Tailgate", "Closure", "read_security"),
    sig("closure-windows", "Windows", "Closure", "read_security"),
    sig(
        "connectivitysoftware-currentfirmwareversion",
        "CurrentFirmwareVersion",
        "ConnectivitySoftware",
        "read_extended_vehicle_info",
    ),
    sig(
        "connectivitystatus-isasleep",
        "IsAsleep",
        "ConnectivityStatus",
        "read_vehicle_info",
    ),
    sig(
        "connectivitystatus-isdigitalkeypaired",
        "IsDigitalKeyPaired",
        "ConnectivityStatus",
        "read_vehicle_info",
    ),
    sig(
        "connectivitystatus-isonline",
        "IsOnline",
        "ConnectivityStatus",
        "read_vehicle_info",
    ),
    sig("diagnostics-abs", "ABS", "Diagnostics", "read_diagnostics"),
    sig(
        "diagnostics-activesafety",
        "ActiveSafety",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-airbag",
        "Airbag",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-brakefluid",
        "BrakeFluid",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-driverassistance",
        "DriverAssistance",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-dtccount",
        "DTCCount",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-dtclist",
        "DTCList",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-emissions",
        "Emissions",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-evbatteryconditioning",
        "EVBatteryConditioning",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-evcharging",
        "EVCharging",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-evdriveunit",
        "EVDriveUnit",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-evhvbattery",
        "EVHVBattery",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-lighting",
        "Lighting",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig("diagnostics-mil", "MIL", "Diagnostics", "read_diagnostics"),
    sig(
        "diagnostics-oillife",
        "OilLife",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-oilpressure",
        "OilPressure",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-oiltemperature",
        "OilTemperature",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-telematics",
        "Telematics",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-tirepressure",
        "TirePressure",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-tirepressuremonitoring",
        "TirePressureMonitoring",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-transmission",
        "Transmission",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-washerfluid",
        "WasherFluid",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "diagnostics-waterinfuel",
        "WaterInFuel",
        "Diagnostics",
        "read_diagnostics",
    ),
    sig(
        "hvac-cabintargettemperature",
        "CabinTargetTemperature",
        "HVAC",
        "read_climate",
    ),
    sig(
        "hvac-iscabinhvacactive",
        "IsCabinHVACActive",
        "HVAC",
        "read_climate",
    ),
    sig(
        "hvac-isfrontdefrosteractive",
        "IsFrontDefrosterActive",
        "HVAC",
        "read_climate",
    ),
    sig(
        "hvac-isreardefrosteractive",
        "IsRearDefrosterActive",
        "HVAC",
        "read_climate",
    ),
    sig(
        "hvac-issteeringheateractive",
        "IsSteeringHeaterActive",
        "HVAC",
        "read_climate",
    ),
    sig(
        "internalcombustionengine-amountremaining",
        "AmountRemaining",
        "InternalCombustionEngine",
        "read_fuel",
    ),
    sig(
        "internalcombustionengine-fuellevel",
        "FuelLevel",
        "InternalCombustionEngine",
        "read_fuel",
    ),
    sig(
        "internalcombustionengine-oillife",
        "OilLife",
        "InternalCombustionEngine",
        "read_engine_oil",
    ),
    sig(
        "internalcombustionengine-range",
        "Range",
        "InternalCombustionEngine",
        "read_fuel",
    ),
    sig("location-isathome", "IsAtHome", "Location", "read_location"),
    sig(
        "location-preciselocation",
        "PreciseLocation",
        "Location",
        "read_location",
    ),
    sig(
        "lowvoltagebattery-stateofcharge",
        "StateOfCharge",
        "LowVoltageBattery",
        "read_battery",
    ),
    sig(
        "lowvoltagebattery-status",
        "Status",
        "LowVoltageBattery",
        "read_battery",
    ),
    sig(
        "motion-currentspeed",
        "CurrentSpeed",
        "Motion",
        "read_speedometer",
    ),
    sig(
        "odometer-traveleddistance",
        "TraveledDistance",
        "Odometer",
        "read_odometer",
    ),
    sig(
        "service-isinservice",
        "IsInService",
        "Service",
        "read_service_history",
    ),
    sig(
        "service-records",
        "Records",
        "Service",
        "read_service_history",
    ),
    sig(
        "surveillance-brand",
        "Brand",
        "Surveillance",
        "read_security",
    ),
    sig(
        "surveillance-isenabled",
        "IsEnabled",
        "Surveillance",
        "read_security",
    ),
    sig(
        "tractionbattery-isheateractive",
        "IsHeaterActive",
        "TractionBattery",
        "read_battery",
    ),
    sig(
        "tractionbattery-maxrangechargecounter",
        "MaxRangeChargeCounter",
        "TractionBattery",
        "read_battery",
    ),
    sig(
        "tractionbattery-nominalcapacity",
        "NominalCapacity",
        "TractionBattery",
        "read_battery",
    ),
    sig(
        "tractionbattery-range",
        "Range",
        "TractionBattery",
        "read_battery",
    ),
    sig(
        "tractionbattery-stateofcharge",
        "StateOfCharge",
        "TractionBattery",
        "read_battery",
    ),
    sig(
        "transmission-drivemode",
        "DriveMode",
        "Transmission",
        "read_vehicle_info",
    ),
    sig(
        "transmission-gearstate",
        "GearState",
        "Transmission",
        "read_vehicle_info",
    ),
    sig(
        "vehicleidentification-exteriorcolor",
        "ExteriorColor",
        "VehicleIdentification",
        "read_extended_vehicle_info",
    ),
    sig(
        "vehicleidentification-nickname",
        "Nickname",
        "VehicleIdentification",
        "read_extended_vehicle_info",
    ),
    sig(
        "vehicleidentification-packages",
        "Packages",
        "VehicleIdentification",
        "read_extended_vehicle_info",
    ),
    sig(
        "vehicleidentification-trim",
        "Trim",
        "VehicleIdentification",
        "read_extended_vehicle_info",
    ),
    sig(
        "vehicleidentification-vin",
        "VIN",
        "VehicleIdentification",
        "read_vin",
    ),
    sig(
        "vehicleuseraccount-permissions",
        "Permissions",
        "VehicleUserAccount",
        "read_user_profile",
    ),
    sig(
        "vehicleuseraccount-role",
        "Role",
        "VehicleUserAccount",
        "read_user_profile",
    ),
    sig(
        "wheel-style",
        "Style",
        "Wheel",
        "read_extended_vehicle_info",
    ),
    sig("wheel-tires", "Tires", "Wheel", "read_tires"),
];

/// The catalogue entry of `code`.
pub(crate) fn def(code: &str) -> Option<&'static SignalDef> {
    SIGNALS
        .binary_search_by(|d| d.code.cmp(code))
        .ok()
        .map(|i| &SIGNALS[i])
}

/// Whether every vehicle of `make` (`TESLA`) and `powertrain` provides signal `code`, as
/// [`read`] answers for the fleet's vehicles (they all report the TPMS, airbag and ABS
/// systems): what the compatible-vehicles list publishes.
pub(crate) fn provided(make: &str, powertrain: Powertrain, code: &str) -> bool {
    match code {
        "odometer-traveleddistance"
        | "location-preciselocation"
        | "closure-islocked"
        | "closure-doors"
        | "closure-windows"
        | "wheel-tires"
        | "vehicleidentification-vin"
        | "vehicleidentification-nickname"
        | "connectivitystatus-isonline"
        | "connectivitystatus-isasleep"
        | "diagnostics-dtccount"
        | "diagnostics-dtclist"
        | "diagnostics-abs"
        | "diagnostics-airbag"
        | "diagnostics-tirepressuremonitoring"
        | "service-records" => true,
        "tractionbattery-stateofcharge"
        | "tractionbattery-range"
        | "tractionbattery-nominalcapacity"
        | "charge-ischarging"
        | "charge-ischargingcableconnected"
        | "charge-detailedchargingstatus"
        | "charge-chargelimits" => powertrain.plugs_in(),
        "charge-chargetimers" => {
            powertrain.plugs_in() && !super::schedules::kinds_of(make).is_empty()
        }
        "diagnostics-oillife"
        | "internalcombustionengine-fuellevel"
        | "internalcombustionengine-amountremaining"
        | "internalcombustionengine-range"
        | "internalcombustionengine-oillife" => powertrain.burns_fuel(),
        _ => false,
    }
}

/// A fraction 0–1 of the model as the percentage v3 reports, two decimals.
fn percent(fraction: f64) -> f64 {
    round(fraction * 100.0, 2)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn typed<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    object(serde_json::to_value(value).unwrap_or(Value::Null))
}

/// `{unit, value}` from the spec's `SignalUnitValue`.
fn unit_value(unit: &str, value: f64) -> Map<String, Value> {
    typed(&types::SignalUnitValue {
        unit: Some(unit.to_owned()),
        value,
    })
}

/// `{value}`.
fn single(value: impl Into<Value>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("value".to_owned(), value.into());
    map
}

/// `{status, description?}` of a diagnostic system.
fn system(ok: bool, description: Option<&str>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("status".to_owned(), json!(if ok { "OK" } else { "ALERT" }));
    if let Some(d) = description {
        map.insert("description".to_owned(), json!(d));
    }
    map
}

/// Compass direction of a heading in degrees.
fn direction(heading: f64) -> &'static str {
    const POINTS: [&str; 8] = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
    let i = ((heading.rem_euclid(360.0) + 22.5) / 45.0) as usize % 8;
    POINTS[i]
}

/// Positions of the four doors / windows / tires: front left, front right, back left, back
/// right as (row, column).
const POSITIONS: [(u8, u8); 4] = [(0, 0), (0, 1), (1, 0), (1, 1)];

fn grid(items: Vec<Value>) -> Map<String, Value> {
    object(json!({"values": items, "rowCount": 2, "columnCount": 2}))
}

/// The diagnostic system (`SYSTEM_ABS` …) reported as this signal, if any.
fn system_of<'v>(v: &'v Vehicle, code: &str) -> Option<&'v (String, bool, Option<String>)> {
    let name = code.strip_prefix("diagnostics-")?;
    v.systems.iter().find(|(id, _, _)| {
        let id = id.strip_prefix("SYSTEM_").unwrap_or(id);
        let compact: String = id
            .chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        compact == name || (name == "tirepressuremonitoring" && compact == "tpms")
    })
}

/// The body of signal `code` for vehicle `v`, or `None` when the vehicle cannot provide it.
pub(crate) fn read(v: &Vehicle, code: &str) -> Option<Map<String, Value>> {
    let battery = v.battery.as_ref();
    let fuel = v.fuel.as_ref();
    Some(match code {
        "odometer-traveleddistance" => unit_value("kilometers", round(v.odometer_km, 2)),
        "location-preciselocation" => typed(&types::SignalPreciseLocation {
            latitude: v.latitude,
            longitude: v.longitude,
            heading: Some(v.heading),
            direction: Some(direction(v.heading).to_owned()),
            location_type: Some("CURRENT".to_owned()),
        }),
        "closure-islocked" => single(v.locked),
        "closure-doors" => grid(
            POSITIONS
                .iter()
                .zip(v.doors_open)
                .map(|(&(row, column), open)| {
                    json!({"row": row, "column": column, "isOpen": open, "isLocked": v.locked})
                })
                .collect(),
        ),
        "closure-windows" => grid(
            POSITIONS
                .iter()
                .zip(v.windows_open)
                .map(|(&(row, column), open)| json!({"row": row, "column": column, "isOpen": open}))
                .collect(),
        ),
        "wheel-tires" => grid(
            POSITIONS
                .iter()
                .zip(v.tires_kpa)
                .map(|(&(row, column), kpa)| {
                    json!({"row": row, "column": column, "tirePressure": kpa})
                })
                .collect(),
        ),
        "vehicleidentification-vin" => single(v.vin.as_str()),
        "vehicleidentification-nickname" => single(format!("My {}", v.model)),
        "connectivitystatus-isonline" => single(true),
        "connectivitystatus-isasleep" => single(false),
        "diagnostics-dtccount" => {
            object(json!({"unit": "count", "value": v.dtcs.len()}))
        }
        "diagnostics-dtclist" => object(json!({
            "values": v.dtcs.iter().map(|(code, at)| {
                let mut item = Map::new();
                item.insert("code".to_owned(), json!(code));
                if let Some(at) = at {
                    item.insert(
                        "timestamp".to_owned(),
                        json!(timestamp(*at)),
                    );
                }
                Value::Object(item)
            }).collect::<Vec<_>>()
        })),
        "diagnostics-oillife" => {
            let life = v.oil_life?;
            system(
                life >= 0.2,
                Some(if life >= 0.2 {
                    "Oil life is sufficient"
                } else {
                    "Oil change needed soon"
                }),
            )
        }
        "service-records" => object(json!({
            "values": v.service_records.iter().map(|r| {
                let mut item = Map::new();
                item.insert("id".to_owned(), json!(r.id));
                if let Some((amount, currency)) = &r.cost {
                    item.insert("cost".to_owned(), json!({"amount": amount, "currency": currency}));
                }
                item.insert(
                    "time".to_owned(),
                    json!(timestamp(r.date)),
                );
                item.insert(
                    "tasks".to_owned(),
                    json!(r.tasks.iter().enumerate().map(|(i, t)| {
                        json!({"id": (i + 1).to_string(), "description": t})
                    }).collect::<Vec<_>>()),
                );
                item.insert("details".to_owned(), json!([]));
                item.insert("odometer".to_owned(), json!(r.odometer_km));
                Value::Object(item)
            }).collect::<Vec<_>>()
        })),
        c if c.starts_with("diagnostics-") => {
            let (_, ok, description) = system_of(v, c)?;
            system(*ok, description.as_deref())
        }
        // Traction battery and charging (BEV, PHEV).
        "tractionbattery-stateofcharge" => unit_value("percent", percent(battery?.percent)),
        "tractionbattery-range" => unit_value("kilometers", round(battery?.range_km(), 1)),
        "tractionbattery-nominalcapacity" => {
            let b = battery?;
            let available: Vec<Value> = b
                .nominal_capacities(v.powertrain)
                .into_iter()
                .map(|(kwh, description)| json!({"capacity": kwh, "description": description}))
                .collect();
            let (source, capacity) = if b.nominal_determined {
                (json!("SMARTCAR"), json!(b.capacity_kwh))
            } else {
                (Value::Null, Value::Null)
            };
            object(json!({
                "source": source,
                "capacity": capacity,
                "availableCapacities": available,
                "unit": "kWh"
            }))
        }
        "charge-ischarging" => single(battery?.charging),
        "charge-ischargingcableconnected" => single(battery?.plugged_in),
        "charge-detailedchargingstatus" => single(battery?.charge_state().as_str()),
        "charge-chargetimers" => super::schedules::timers(v)?,
        "charge-chargelimits" => {
            let limit = percent(battery?.charge_limit);
            object(json!({
                "values": [{"type": "GLOBAL", "limit": limit, "condition": null}],
                "activeLimit": limit,
                "unit": "percent"
            }))
        }
        // Engine (ICE, HEV, PHEV).
        "internalcombustionengine-fuellevel" => unit_value("percent", percent(fuel?.percent)),
        "internalcombustionengine-amountremaining" => {
            unit_value("liters", round(fuel?.amount_liters(), 2))
        }
        "internalcombustionengine-range" => unit_value("kilometers", round(fuel?.range_km(), 1)),
        "internalcombustionengine-oillife" => unit_value("percent", percent(v.oil_life?)),
        _ => return None,
    })
}

/// The per-signal error (`status.error`) of a catalogue error.
pub(crate) fn signal_error(kind: &str, code: Option<&str>) -> types::SignalError {
    let spec = lookup(kind, code);
    types::SignalError {
        type_: Some(kind.to_owned()),
        code: code.map(str::to_owned),
        description: spec.map(|s| s.description.to_owned()),
        resolution: spec.and_then(|s| s.resolution).map(|r| {
            types::ResolutionDetails {
                type_: Some(ResolutionType::from(r)),
                url: None,
            }
            .into()
        }),
    }
}

/// How one signal of one vehicle reads for a connection.
pub(crate) enum Reading {
    /// The value.
    Value(Map<String, Value>),
    /// The connection lacks the signal's permission.
    NoPermission,
    /// The vehicle cannot provide it.
    NotCapable,
}

impl Reading {
    /// Reads `def` for `v` with the permissions `allowed`.
    pub fn of(v: &Vehicle, def: &SignalDef, allowed: impl Fn(&str) -> bool) -> Self {
        match read(v, def.code) {
            None => Reading::NotCapable,
            Some(_) if !allowed(def.permission) => Reading::NoPermission,
            Some(body) => Reading::Value(body),
        }
    }

    /// `(status, body)` of a signal resource or webhook signal.
    pub fn status_body(self) -> (types::SignalStatus, Map<String, Value>) {
        let error = |kind, code| types::SignalStatus {
            value: SignalStatusValue::Error,
            error: Some(signal_error(kind, code)),
        };
        match self {
            Reading::Value(body) => (
                types::SignalStatus {
                    value: SignalStatusValue::Success,
                    error: None,
                },
                body,
            ),
            Reading::NoPermission => (error("PERMISSION", None), Map::new()),
            Reading::NotCapable => (
                error("COMPATIBILITY", Some("VEHICLE_NOT_CAPABLE")),
                Map::new(),
            ),
        }
    }
}

/// A signal resource of the REST API.
fn resource(v: &Vehicle, def: &SignalDef, reading: Reading, now_ms: i64) -> types::SignalResource {
    let ok = matches!(reading, Reading::Value(_));
    let (status, body) = reading.status_body();
    types::SignalResource {
        id: def.code.to_owned(),
        type_: "signal".to_owned(),
        attributes: types::SignalAttributes {
            code: SignalCode::from(def.code),
            name: Some(def.name.to_owned()),
            group: Some(def.group.to_owned()),
            status,
            body,
        },
        meta: Some(types::SignalMeta {
            retrieved_at: Some(now_ms.into()),
            oem_updated_at: ok.then(|| epoch_ms(v.data_age).into()),
        }),
        links: Some(types::SignalLinks {
            self_: Some(v3_link(ops::GetSignal::path(&v.id, def.code))),
            values: None,
            vehicle: Some(v3_link(ops::GetVehicleV3::path(&v.id))),
        }),
    }
}

/// `GET /v3/vehicles/{vehicle_id}/signals`.
pub(super) async fn list(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> V3Result {
    let vehicle_id = path1(path)?;
    let (vehicle, scopes) = {
        let world = state.world();
        let access = vehicle_access(&state, &world, &headers, &vehicle_id, false, None)?;
        (
            access.vehicle.clone(),
            access.scopes.cloned().unwrap_or_default(),
        )
    };
    let page = Page::from_query(&Query::parse(raw.as_deref()), "page", "pageSize")?;
    let now_ms = epoch_ms(state.now());
    let readable: Vec<(&SignalDef, Reading)> = SIGNALS
        .iter()
        .filter_map(
            |def| match Reading::of(&vehicle, def, |p| scopes.contains(p)) {
                Reading::NotCapable => None,
                reading => Some((def, reading)),
            },
        )
        .collect();
    let total = readable.len();
    let start = (page.number - 1).saturating_mul(page.size).min(total);
    let data = readable
        .into_iter()
        .skip(start)
        .take(page.size)
        .map(|(def, reading)| resource(&vehicle, def, reading, now_ms))
        .collect();
    let (meta, links) = page.meta_links(total, |n| {
        format!(
            "{}?page={n}&pageSize={}",
            v3_link(ops::ListSignals::path(&vehicle.id)),
            page.size
        )
    });
    let body = types::SignalsResponse {
        data,
        meta: Some(meta),
        links: Some(links),
        included: Some(types::SignalsIncluded {
            vehicle: Some({
                // The live platform sends the included vehicle's year as a string (ruby-sdk's
                // end-to-end `vehicle_spec.rb`); `GET /v3/vehicles/{id}` sends a number.
                let mut resource = vehicle_resource(&vehicle);
                resource.attributes.year =
                    types::ModelYear::String(resource.attributes.year.to_string());
                resource
            }),
        }),
    };
    Ok(json(StatusCode::OK, &body))
}

/// `GET /v3/vehicles/{vehicle_id}/signals/{signal_code}`.
pub(super) async fn get_one(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let (vehicle_id, code) = path2(path)?;
    let body = {
        let world = state.world();
        let access = vehicle_access(&state, &world, &headers, &vehicle_id, false, None)?;
        let def = def(&code).ok_or_else(not_found)?;
        let reading = Reading::of(access.vehicle, def, |p| access.allows(p));
        if matches!(reading, Reading::NoPermission) {
            return Err(permission());
        }
        resource(access.vehicle, def, reading, epoch_ms(state.now()))
    };
    Ok(json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_the_specs_signal_code_enum() {
        let codes: Vec<&str> = SIGNALS.iter().map(|d| d.code).collect();
        assert_eq!(codes, SignalCode::KNOWN, "same codes, same (sorted) order");
        for d in SIGNALS {
            let group = d.code.split('-').next().unwrap_or_default();
            assert_eq!(group, d.group.to_ascii_lowercase(), "{}", d.code);
            assert_eq!(
                &d.code[group.len() + 1..],
                d.name.to_ascii_lowercase(),
                "{}",
                d.code
            );
            assert!(
                smartcar_api::open_enums::Permission::KNOWN.contains(&d.permission),
                "{}",
                d.permission
            );
        }
    }

    #[test]
    fn provided_is_what_the_fleet_reads() {
        let now = crate::fleet::default_epoch();
        let mut rng = crate::fleet::Rng::new(3);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let mut v = crate::fleet::make_vehicle(&mut rng, now);
            if i % 3 == 0 {
                v.make = "VOLVO".to_owned();
            }
            seen.insert((v.make.clone(), v.powertrain.as_str()));
            for d in SIGNALS {
                assert_eq!(
                    read(&v, d.code).is_some(),
                    provided(&v.make, v.powertrain, d.code),
                    "{} {} {}",
                    v.make,
                    v.powertrain.as_str(),
                    d.code
                );
            }
        }
        assert!(seen.contains(&("TESLA".to_owned(), "BEV")));
        assert!(seen.contains(&("VOLVO".to_owned(), "BEV")));
        assert!(seen.contains(&("VOLVO".to_owned(), "ICE")));
    }

    #[test]
    fn directions() {
        assert_eq!(direction(0.0), "N");
        assert_eq!(direction(44.0), "NE");
        assert_eq!(direction(359.0), "N");
        assert_eq!(direction(180.0), "S");
        assert_eq!(direction(-90.0), "W");
    }
}
