//! `GET /v3/compatible-vehicles` (`compatibility.api.smartcar.com`, no authentication): the
//! models the simulated platform supports, by region, make and powertrain, each with the
//! signals and commands it offers.
//!
//! # Verified (Smartcar's docs, api-reference/compatible-vehicles)
//!
//! - No authentication; `filter[region]` and `filter[make]`; the answer `{data: [{id, type:
//!   vehicle-model-capability, attributes: {make, model, region, powertrainType, years: {start,
//!   end}, capabilities: [{type, name, group, code, capability, permission}]}}], meta: {page,
//!   pageSize, totalCount}, links: {self: /compatible-vehicles}}`, everything in one page; the
//!   id `TESLA-Model 3-2017-2026-BEV-US`; a signal capability `{type: signal, name: "State Of
//!   Charge", group: TractionBattery, code: StateOfCharge, capability:
//!   tractionbattery-stateofcharge, permission: read_battery}`; a command capability `{type:
//!   command, name: "Start charge", group: "", code: charge-start, capability: charge-start,
//!   permission: ""}`.
//!
//! # Simulator choices (unverified)
//!
//! - **The models** are the fleet's catalogue (`fleet::CATALOGUE`) in the regions and years of
//!   the v2.0 compatibility matrix (`compat`: `US` and `CA` everything, `EUROPE` without
//!   Chevrolet, Jeep and the F-150; every model 2018–2025): one entry per (make, model,
//!   powertrain, region), sorted by make, model, then region `US`, `CA`, `EUROPE`. The make is
//!   in title case as elsewhere in v3 (`Tesla`), upper case in the id.
//! - **Signals** are those every vehicle of that make and powertrain provides
//!   (`signals::provided`, the same rule the signal endpoints follow), in code order, with the
//!   catalogue's group, name (`code`), permission, and the name split into words (`name`).
//! - **Commands** follow the signals: lock, unlock and set destination for every vehicle; start,
//!   stop, set limit for plug-in vehicles; the charge schedules the make takes (Tesla: daily,
//!   weekly, workweek; Volvo: daily) for plug-in vehicles. `code` and `capability` are the
//!   command's path below the vehicle with `-` for `/` (`charge-start`, `security-lock`: the v3
//!   `commandType`s; `charge-schedules-daily`, the simulator's spelling); `group` and
//!   `permission` are empty, as in the docs' example.
//! - **Filters**: `filter[region]` one of `US`, `CA`, `EUROPE`; `filter[powertrainType]` one of
//!   `BEV`, `ICE`, `PHEV`, `HEV` (anything else in either: 400 `VALIDATION`); `filter[make]`
//!   any case (an unknown make: an empty list). An empty value is no filter. Other parameters
//!   are ignored. `links.self` is `/compatible-vehicles` whatever the filters.

use axum::extract::RawQuery;
use axum::http::StatusCode;
use smartcar_api::op::Operation;
use smartcar_api::open_enums::{CompatibleRegion, PowertrainType};
use smartcar_api::{ops, types};

use super::schedules::takes;
use super::signals::{SIGNALS, provided};
use super::{Query, V3Result, display_make, invalid, json};
use crate::compat::{MODEL_YEARS, REGIONS, in_region};
use crate::error::ApiError;
use crate::fleet::CATALOGUE;
use crate::model::{ChargeScheduleKind, Powertrain};
use crate::routing::v3_link;

/// Which vehicles a command needs.
#[derive(Clone, Copy)]
enum Needs {
    /// Any vehicle.
    Nothing,
    /// A traction battery that plugs in.
    PlugIn,
    /// A plug-in whose make takes this kind of schedule.
    Schedule(ChargeScheduleKind),
}

/// The v3 commands: operation, display name, what the vehicle needs.
const COMMANDS: [(Operation, &str, Needs); 9] = [
    (ops::START_CHARGE_V3, "Start charge", Needs::PlugIn),
    (ops::STOP_CHARGE_V3, "Stop charge", Needs::PlugIn),
    (ops::SET_CHARGE_LIMIT_V3, "Set charge limit", Needs::PlugIn),
    (ops::LOCK_V3, "Lock", Needs::Nothing),
    (ops::UNLOCK_V3, "Unlock", Needs::Nothing),
    (ops::SET_DESTINATION_V3, "Set destination", Needs::Nothing),
    (
        ops::SET_DAILY_CHARGE_SCHEDULE_V3,
        "Set daily charge schedule",
        Needs::Schedule(ChargeScheduleKind::Daily),
    ),
    (
        ops::SET_WEEKLY_CHARGE_SCHEDULE_V3,
        "Set weekly charge schedule",
        Needs::Schedule(ChargeScheduleKind::Weekly),
    ),
    (
        ops::SET_WORKWEEK_CHARGE_SCHEDULE_V3,
        "Set workweek charge schedule",
        Needs::Schedule(ChargeScheduleKind::Workweek),
    ),
];

/// A command's code: its path below the vehicle (below `commands/` for the commands there),
/// `/` replaced by `-`.
fn command_code(op: &Operation) -> String {
    let vehicle = ops::GET_VEHICLE_V3.path;
    let commands = ops::GET_COMMAND_EXECUTION
        .path
        .rsplit_once('/')
        .map_or(vehicle, |(prefix, _)| prefix);
    let tail = op
        .path
        .strip_prefix(commands)
        .or_else(|| op.path.strip_prefix(vehicle))
        .unwrap_or(op.path);
    tail.trim_start_matches('/').replace('/', "-")
}

/// `StateOfCharge` → `State Of Charge`, `DTCCount` → `DTC Count`.
fn words(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let before = chars[i - 1];
            let after_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            // A word starts after a lower-case letter or a digit (`StateOf`), or at the last
            // capital of an acronym followed by lower case (`DTCCount`).
            let starts = before.is_ascii_lowercase()
                || before.is_ascii_digit()
                || (before.is_ascii_uppercase() && after_lower);
            if starts {
                out.push(' ');
            }
        }
        out.push(c);
    }
    out
}

/// The capabilities of `make` with `powertrain`: signals, then commands.
fn capabilities(make: &str, powertrain: Powertrain) -> Vec<types::CompatibleCapability> {
    let signals = SIGNALS
        .iter()
        .filter(|d| provided(make, powertrain, d.code))
        .map(|d| types::CompatibleCapability {
            type_: "signal".to_owned(),
            name: Some(words(d.name)),
            group: Some(d.group.to_owned()),
            code: Some(d.name.to_owned()),
            capability: d.code.to_owned(),
            permission: Some(d.permission.to_owned()),
        });
    let commands = COMMANDS
        .iter()
        .filter(|(_, _, needs)| match needs {
            Needs::Nothing => true,
            Needs::PlugIn => powertrain.plugs_in(),
            Needs::Schedule(kind) => takes(make, powertrain, *kind),
        })
        .map(|(op, name, _)| {
            let code = command_code(op);
            types::CompatibleCapability {
                type_: "command".to_owned(),
                name: Some((*name).to_owned()),
                group: Some(String::new()),
                code: Some(code.clone()),
                capability: code,
                permission: Some(String::new()),
            }
        });
    signals.chain(commands).collect()
}

/// A filter that must be one of `allowed` (`None`: absent or empty).
fn one_of<'q>(query: &'q Query, key: &str, allowed: &[&str]) -> Result<Option<&'q str>, ApiError> {
    match query.last(key).filter(|v| !v.is_empty()) {
        Some(v) if !allowed.contains(&v) => Err(invalid(
            key,
            &format!("`{key}` must be one of {}.", allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

/// `GET /v3/compatible-vehicles`.
pub(super) async fn list(RawQuery(raw): RawQuery) -> V3Result {
    let query = Query::parse(raw.as_deref());
    let region = one_of(&query, "filter[region]", &REGIONS)?;
    let powertrains = Powertrain::ALL.map(Powertrain::as_str);
    let powertrain = one_of(&query, "filter[powertrainType]", &powertrains)?;
    let make = query.last("filter[make]").filter(|m| !m.is_empty());
    let mut models: Vec<_> = CATALOGUE
        .iter()
        .filter(|(m, _, p, _, _, _)| {
            make.is_none_or(|f| f.eq_ignore_ascii_case(m))
                && powertrain.is_none_or(|f| f == p.as_str())
        })
        .collect();
    models.sort_by_key(|(make, model, p, _, _, _)| (*make, *model, p.as_str()));
    let (start, end) = MODEL_YEARS;
    let data: Vec<types::CompatibleVehicle> = models
        .into_iter()
        .flat_map(|&(make, model, powertrain, _, _, _)| {
            REGIONS
                .into_iter()
                .filter(move |r| region.is_none_or(|f| f == *r) && in_region(make, model, r))
                .map(move |r| types::CompatibleVehicle {
                    id: format!("{make}-{model}-{start}-{end}-{}-{r}", powertrain.as_str()),
                    type_: "vehicle-model-capability".to_owned(),
                    attributes: types::CompatibleVehicleAttributes {
                        make: display_make(make),
                        model: model.to_owned(),
                        region: CompatibleRegion::from(r),
                        powertrain_type: Some(PowertrainType::from(powertrain.as_str())),
                        years: types::CompatibleVehicleAttributesYears { start, end },
                        capabilities: capabilities(make, powertrain),
                    },
                })
        })
        .collect();
    let count = i32::try_from(data.len()).unwrap_or(i32::MAX);
    let body = types::CompatibleVehicleList {
        data,
        meta: Some(types::PageMeta {
            page: Some(1),
            page_size: Some(count),
            total_count: Some(count),
        }),
        links: Some(types::CompatibleVehicleListLinks {
            self_: Some(v3_link(ops::ListCompatibleVehicles::path())),
        }),
    };
    Ok(json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::schedules::create_op;
    use smartcar_api::open_enums::CommandType;

    #[test]
    fn command_codes_are_the_command_types() {
        let codes: Vec<String> = COMMANDS.iter().map(|(op, _, _)| command_code(op)).collect();
        assert_eq!(&codes[..6], CommandType::KNOWN);
        assert_eq!(
            &codes[6..],
            [
                "charge-schedules-daily",
                "charge-schedules-weekly",
                "charge-schedules-workweek"
            ]
        );
        for kind in ChargeScheduleKind::ALL {
            let entry = COMMANDS
                .iter()
                .find(|(_, _, needs)| matches!(needs, Needs::Schedule(k) if *k == kind));
            assert_eq!(entry.map(|(op, _, _)| op.id), Some(create_op(kind).id));
        }
    }

    #[test]
    fn names_in_words() {
        assert_eq!(words("StateOfCharge"), "State Of Charge");
        assert_eq!(words("DTCCount"), "DTC Count");
        assert_eq!(words("IsCabinHVACActive"), "Is Cabin HVAC Active");
        assert_eq!(words("VIN"), "VIN");
        assert_eq!(words("ABS"), "ABS");
    }

    #[test]
    fn capabilities_follow_the_powertrain_and_make() {
        let names = |make, p| -> Vec<String> {
            capabilities(make, p)
                .into_iter()
                .map(|c| c.capability)
                .collect()
        };
        let tesla = names("TESLA", Powertrain::Bev);
        assert!(tesla.iter().any(|c| c == "tractionbattery-stateofcharge"));
        assert!(tesla.iter().any(|c| c == "charge-chargetimers"));
        assert!(tesla.iter().any(|c| c == "charge-schedules-workweek"));
        assert!(
            !tesla
                .iter()
                .any(|c| c.starts_with("internalcombustionengine-"))
        );
        let ford = names("FORD", Powertrain::Bev);
        assert!(ford.iter().any(|c| c == "charge-start"));
        assert!(
            !ford
                .iter()
                .any(|c| c.contains("schedule") || c == "charge-chargetimers")
        );
        let ice = names("TOYOTA", Powertrain::Ice);
        assert!(
            ice.iter()
                .any(|c| c == "internalcombustionengine-fuellevel")
        );
        assert!(ice.iter().any(|c| c == "security-lock"));
        assert!(!ice.iter().any(|c| c.starts_with("charge-")));
    }
}
