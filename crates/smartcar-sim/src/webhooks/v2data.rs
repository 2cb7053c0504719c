//! The per-vehicle items of v2.0 `scheduled` / `dynamic` deliveries: one batch-like item
//! (`{path, code, headers, body}`) per v2.0 read path the webhook delivers, with the v2.0 body
//! of that path or its v2.0 error (metric units).
//!
//! Paths served here: `/` (attributes), `/vin`, `/odometer`, `/location`, `/fuel`, `/battery`,
//! `/charge`, `/charge/limit`, `/engine/oil`, `/tires/pressure`, `/security`; any other path
//! is a 404 `RESOURCE_NOT_FOUND` item. A path whose permission the connection lacks is a 403
//! `PERMISSION` item; a path the powertrain cannot answer (fuel of a BEV, battery of an ICE) a
//! 501 `COMPATIBILITY`/`VEHICLE_NOT_CAPABLE` item; a vehicle forced into an error (test VINs)
//! answers that error for every path.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use smartcar_api::open_enums::ClosureStatus;
use smartcar_api::types;

use crate::error::ApiError;
use crate::model::Vehicle;

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn value<T: serde::Serialize>(body: &T) -> Result<Value, ApiError> {
    serde_json::to_value(body).map_err(|_| ApiError::v2("SERVER", Some("INTERNAL")))
}

fn closures(names: [&str; 4], open: [bool; 4]) -> Vec<types::ClosureState> {
    names
        .iter()
        .zip(open)
        .map(|(name, open)| types::ClosureState {
            type_: (*name).to_owned(),
            status: if open {
                ClosureStatus::Open
            } else {
                ClosureStatus::Closed
            },
        })
        .collect()
}

fn body(v: &Vehicle, path: &str, scopes: &BTreeSet<String>) -> Result<Value, ApiError> {
    let need = |permission: &str| {
        if scopes.contains(permission) {
            Ok(())
        } else {
            Err(ApiError::permission())
        }
    };
    let not_capable = || ApiError::v2("COMPATIBILITY", Some("VEHICLE_NOT_CAPABLE"));
    let permission = match path {
        "/" => "read_vehicle_info",
        "/vin" => "read_vin",
        "/odometer" => "read_odometer",
        "/location" => "read_location",
        "/fuel" => "read_fuel",
        "/battery" => "read_battery",
        "/charge" | "/charge/limit" => "read_charge",
        "/engine/oil" => "read_engine_oil",
        "/tires/pressure" => "read_tires",
        "/security" => "read_security",
        _ => return Err(ApiError::not_found()),
    };
    need(permission)?;
    if let Some((kind, code)) = &v.forced_error {
        return Err(ApiError::v2(kind, Some(code)));
    }
    match path {
        "/" => value(&types::VehicleAttributes {
            id: v.id.clone(),
            make: v.make.to_ascii_uppercase(),
            model: v.model.clone(),
            year: v.year,
        }),
        "/vin" => value(&types::Vin { vin: v.vin.clone() }),
        "/odometer" => value(&types::Odometer {
            distance: v.odometer_km,
        }),
        "/location" => value(&types::Location {
            latitude: v.latitude,
            longitude: v.longitude,
        }),
        "/fuel" => {
            let f = v.fuel.as_ref().ok_or_else(not_capable)?;
            value(&types::FuelTank {
                amount_remaining: Some(round(f.percent * f.capacity_liters, 2)),
                percent_remaining: Some(f.percent),
                range: Some(round(f.percent * f.full_range_km, 1)),
            })
        }
        "/battery" => {
            let b = v.battery.as_ref().ok_or_else(not_capable)?;
            value(&types::Battery {
                percent_remaining: b.percent,
                range: round(b.percent * b.full_range_km, 1),
            })
        }
        "/charge" => {
            let b = v.battery.as_ref().ok_or_else(not_capable)?;
            value(&types::ChargeStatus {
                is_plugged_in: b.plugged_in,
                state: b.charge_state(),
            })
        }
        "/charge/limit" => {
            let b = v.battery.as_ref().ok_or_else(not_capable)?;
            value(&types::ChargeLimit {
                limit: b.charge_limit,
            })
        }
        "/engine/oil" => value(&types::EngineOil {
            life_remaining: v.oil_life.ok_or_else(not_capable)?,
        }),
        "/tires/pressure" => value(&types::TirePressure {
            front_left: v.tires_kpa[0],
            front_right: v.tires_kpa[1],
            back_left: v.tires_kpa[2],
            back_right: v.tires_kpa[3],
        }),
        _ => {
            let names = ["frontLeft", "frontRight", "backLeft", "backRight"];
            value(&types::LockStatus {
                is_locked: v.locked,
                doors: closures(names, v.doors_open),
                windows: closures(names, v.windows_open),
                sunroof: Vec::new(),
                storage: Vec::new(),
                charging_port: Vec::new(),
            })
        }
    }
}

/// The batch-like item of `path` (normalised with a leading `/`) for `v`.
pub(crate) fn item(v: &Vehicle, path: &str, scopes: &BTreeSet<String>) -> types::BatchResponseItem {
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    match body(v, &path, scopes) {
        Ok(body) => {
            let mut headers = HashMap::new();
            headers.insert(
                "sc-data-age".to_owned(),
                v.data_age
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            );
            headers.insert("sc-unit-system".to_owned(), "metric".to_owned());
            types::BatchResponseItem {
                path,
                code: 200,
                headers,
                body: Some(body),
            }
        }
        Err(e) => types::BatchResponseItem {
            path,
            code: i32::from(e.status().as_u16()),
            headers: HashMap::new(),
            body: Some(e.body().clone()),
        },
    }
}
