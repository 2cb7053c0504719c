//! The compatibility API (`api.smartcar.com`, client id + secret in HTTP Basic):
//! `GET /v1.0/compatibility`, `GET /v2.0/compatibility` and `GET /v2.0/compatibility/matrix`.
//!
//! Answers come from the fleet catalogue (`fleet::CATALOGUE`): a VIN whose World Manufacturer
//! Identifier (first three characters) is a catalogue model is compatible, with one capability
//! per requested permission and v2 endpoint, capable when the model's powertrain has what the
//! endpoint reads (no `/fuel` on a BEV, no `/battery` on an ICE: `VEHICLE_NOT_CAPABLE`).
//! Permissions without a v2.0 endpoint (`read_climate`, `control_trunk`, …) are reported not
//! capable (`SMARTCAR_NOT_CAPABLE`) with the endpoint `/<name without read_/control_>`, a
//! placeholder. An unknown WMI is `MAKE_NOT_COMPATIBLE` with no capabilities.
//!
//! Simulator choices (the real rules are unverified):
//! - The VIN must be 17 VIN characters; the check digit is enforced for North American countries
//!   (`US`, `CA`, `MX`, where it is mandatory), not elsewhere. Smartcar's test VINs (`0SC…`)
//!   carry none and pass.
//! - A test VIN that forces no error (not in `fleet::TEST_ERROR_VINS`) answers as a
//!   battery-electric test vehicle, in every region. Evidence: python-sdk's live e2e
//!   `test_get_compatibility_v2` asserts `0SCGMCT0386A85356` compatible, `/odometer` capable and
//!   `/fuel` not (`VEHICLE_NOT_CAPABLE`), in scope order. That every other such VIN is a BEV is
//!   this simulator's choice (unverified). The error-forcing test VINs (`0SCLR…`) answer
//!   `MAKE_NOT_COMPATIBLE`, as before (unverified).
//! - Makes Smartcar supports that the catalogue has no model of ([`COMPAT_ONLY_MAKES`], by
//!   WMI: Audi, Porsche, Mercedes-Benz, …) are compatible in every region, with every capability
//!   not capable (`SMARTCAR_NOT_CAPABLE`): the simulator knows no model to judge. Evidence for
//!   Audi: python-sdk's live `test_get_compatibility_with_non_test_mode_vin` asserts
//!   `WAUAFAFL1GN014882` compatible, and node-sdk's live `getCompatibility` asserts it compatible
//!   with both capabilities (`read_odometer`, `read_location`) `capable: false`. The reason code
//!   and the other makes are unverified. The matrix does not list them (no models).
//! - Regions: `US` and `CA` offer the whole catalogue; every other country is treated as
//!   `EUROPE`, which lacks Chevrolet, Jeep and the F-150. Capabilities are listed for `US` only
//!   (as documented); elsewhere `capabilities` is empty.
//! - `mode=test` needs `test_mode_compatibility_level`: `compatible` (every permission capable),
//!   `bev`, `phev`, `fuel` (an ICE) answer as that powertrain; `incompatible` and `dinosaur`
//!   answer `compatible: false`, reason `VEHICLE_NOT_COMPATIBLE`.
//! - The matrix lists each catalogue model with the years 2018–2025.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use smartcar_api::op::Operation;
use smartcar_api::open_enums::{CapabilityReason, CompatibilityReason, Permission, PowertrainType};
use smartcar_api::{ops, types};

use crate::auth;
use crate::error::ApiError;
use crate::fleet::{CATALOGUE, test_vin_error, vin_check_digit, vin_is_valid};
use crate::model::Powertrain;
use crate::routing::{Route, v2_relative};
use crate::state::AppState;
use crate::v2::{Query, both, fill, json as json_response, powertrain_capable, respond, to_value};

/// Routes of the compatibility API.
pub(crate) fn routes() -> Router<AppState> {
    let v1 = Route::new(ops::GET_COMPATIBILITY_V1, v1);
    let path = v1.path();
    let v1 = v1.methods(v1_not_found);
    let mut r = Router::new()
        .route(path, v1.clone())
        .route(&format!("{path}/"), v1);
    r = both(r, Route::new(ops::GET_COMPATIBILITY, v2));
    both(r, Route::new(ops::GET_COMPATIBILITY_MATRIX, matrix))
}

/// Each permission's v2.0 operations (their paths relative to the vehicle are the
/// capabilities' `endpoint`s) and the matrix's display name.
const PERMISSION_ENDPOINTS: &[(&str, &[Operation], &str)] = &[
    (
        "read_vehicle_info",
        &[ops::GET_VEHICLE_ATTRIBUTES],
        "Vehicle info",
    ),
    ("read_vin", &[ops::GET_VIN], "VIN"),
    ("read_odometer", &[ops::GET_ODOMETER], "Odometer"),
    ("read_location", &[ops::GET_LOCATION], "Location"),
    ("read_fuel", &[ops::GET_FUEL], "Fuel tank"),
    (
        "read_battery",
        &[
            ops::GET_BATTERY,
            ops::GET_BATTERY_CAPACITY,
            ops::GET_NOMINAL_CAPACITY,
        ],
        "EV battery",
    ),
    (
        "read_charge",
        &[ops::GET_CHARGE_STATUS, ops::GET_CHARGE_LIMIT],
        "EV charging status",
    ),
    ("read_engine_oil", &[ops::GET_ENGINE_OIL], "Engine oil life"),
    ("read_tires", &[ops::GET_TIRE_PRESSURE], "Tire pressure"),
    ("read_security", &[ops::GET_LOCK_STATUS], "Lock status"),
    (
        "read_service_history",
        &[ops::GET_SERVICE_HISTORY],
        "Service history",
    ),
    (
        "read_diagnostics",
        &[
            ops::GET_DIAGNOSTIC_SYSTEM_STATUS,
            ops::GET_DIAGNOSTIC_TROUBLE_CODES,
        ],
        "Diagnostics",
    ),
    (
        "control_security",
        &[ops::CONTROL_SECURITY],
        "Lock & unlock",
    ),
    (
        "control_charge",
        &[ops::CONTROL_CHARGE, ops::SET_CHARGE_LIMIT],
        "EV start & stop charge",
    ),
    (
        "control_navigation",
        &[ops::SEND_DESTINATION],
        "Send destination",
    ),
];

/// The capability `endpoint` of an operation: its path relative to the vehicle, `/` for the
/// attributes.
fn endpoint_of(op: &Operation) -> String {
    match v2_relative(op) {
        Some("") | None => "/".to_owned(),
        Some(path) => path.to_owned(),
    }
}

const TEST_LEVELS: &[&str] = &[
    "compatible",
    "phev",
    "incompatible",
    "fuel",
    "dinosaur",
    "bev",
];

/// Makes Smartcar supports that [`CATALOGUE`] has no model of, with the World Manufacturer
/// Identifiers (first three VIN characters) their VINs start with (the manufacturers' common
/// ones; a WMI the catalogue has wins). Compatibility only: the fleet never holds these (adding
/// them to the catalogue would change every seeded fleet).
pub(crate) const COMPAT_ONLY_MAKES: &[(&str, &[&str])] = &[
    ("ACURA", &["19U", "19V", "JH4", "5J8"]),
    ("AUDI", &["WAU", "WA1", "WUA", "TRU"]),
    ("BUICK", &["1G4", "KL4", "LRB"]),
    ("CADILLAC", &["1G6", "1GY"]),
    ("CHRYSLER", &["1C3", "2C4"]),
    ("DODGE", &["2C3", "2B3", "1B3"]),
    ("GMC", &["1GT", "3GT", "1GK"]),
    ("INFINITI", &["JNK", "3PC"]),
    ("JAGUAR", &["SAJ", "SAD"]),
    ("KIA", &["KNA", "KND", "5XY", "KNM"]),
    ("LAND ROVER", &["SAL"]),
    ("LEXUS", &["JTH", "JTJ", "2T2"]),
    ("LINCOLN", &["1LN", "5LM"]),
    ("MAZDA", &["JM1", "JM3", "3MZ"]),
    ("MERCEDES-BENZ", &["WDD", "WDC", "WDB", "W1K", "W1N", "4JG"]),
    ("MINI", &["WMW"]),
    ("POLESTAR", &["LPS"]),
    ("PORSCHE", &["WP0", "WP1"]),
    ("RAM", &["1C6", "3C6"]),
    ("RIVIAN", &["7FC", "7PD"]),
    ("SUBARU", &["JF1", "JF2", "4S3", "4S4"]),
    ("VOLVO", &["YV1", "YV4", "7JR"]),
];

/// Whether `vin` is one of Smartcar's test VINs: `0SC` and 14 more VIN characters, no check
/// digit (`0SCGMCT0386A85356`, the `0SCLR…` error VINs).
pub(crate) fn is_test_vin(vin: &str) -> bool {
    vin.get(..3)
        .is_some_and(|wmi| wmi.eq_ignore_ascii_case("0SC"))
        && vin_check_digit(vin).is_some()
}

/// The regions of the compatibility matrix and of the v3 compatible-vehicles list.
pub(crate) const REGIONS: [&str; 3] = ["US", "CA", "EUROPE"];

/// The model years every catalogue model is compatible for (first, last): what the matrix and
/// the v3 compatible-vehicles list say, and the years the fleet draws from.
pub(crate) const MODEL_YEARS: (i32, i32) = (2018, 2025);

/// Whether a catalogue model is offered in `region` (one of [`REGIONS`]): `EUROPE` lacks
/// Chevrolet, Jeep and the F-150.
pub(crate) fn in_region(make: &str, model: &str, region: &str) -> bool {
    region != "EUROPE" || !(matches!(make, "CHEVROLET" | "JEEP") || model == "F-150")
}

/// A validation failure, shaped per API version by the caller.
struct Invalid {
    field: &'static str,
    message: String,
    /// The test-mode level error carries its `field` as a plain string (as the platform's does).
    plain_field: bool,
}

impl Invalid {
    fn new(field: &'static str, message: String) -> Self {
        Invalid {
            field,
            message,
            plain_field: false,
        }
    }

    fn v2(self) -> ApiError {
        let e = ApiError::validation(self.field, &self.message);
        if self.plain_field {
            e.with_detail(vec![json!({"field": self.field, "message": self.message})])
        } else {
            e
        }
    }

    fn v1(self) -> ApiError {
        ApiError::v1(
            StatusCode::BAD_REQUEST,
            "validation_error",
            &self.message,
            None,
        )
    }
}

/// What a VIN + scope check concluded.
struct Verdict {
    compatible: bool,
    reason: Option<CompatibilityReason>,
    capabilities: Vec<types::Capability>,
}

/// How the capabilities are judged.
enum Judge {
    /// As this powertrain.
    Powertrain(Powertrain),
    /// Everything capable (`test_mode_compatibility_level=compatible`).
    Everything,
    /// Nothing capable (`SMARTCAR_NOT_CAPABLE`): a compatible make whose models the simulator
    /// does not know ([`COMPAT_ONLY_MAKES`]).
    Nothing,
}

fn permissions_of(raw: &str) -> Result<Vec<&str>, Invalid> {
    let mut out = Vec::new();
    for p in raw.split([' ', ',']).filter(|p| !p.is_empty()) {
        let p = p.strip_prefix("required:").unwrap_or(p);
        if !Permission::KNOWN.contains(&p) {
            return Err(Invalid::new(
                "scope",
                format!("\"scope\" contains an unknown permission: {p}"),
            ));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn capabilities(scope: &[&str], judge: &Judge) -> Vec<types::Capability> {
    let mut out = Vec::new();
    for permission in scope {
        match PERMISSION_ENDPOINTS
            .iter()
            .find(|(p, _, _)| p == permission)
        {
            Some((_, endpoints, _)) => {
                for endpoint in *endpoints {
                    let (capable, reason) = match judge {
                        Judge::Everything => (true, None),
                        Judge::Nothing => (false, Some(CapabilityReason::SmartcarNotCapable)),
                        Judge::Powertrain(pt) => {
                            let capable = powertrain_capable(endpoint, *pt);
                            (
                                capable,
                                (!capable).then_some(CapabilityReason::VehicleNotCapable),
                            )
                        }
                    };
                    out.push(types::Capability {
                        permission: Permission::from(*permission),
                        endpoint: endpoint_of(endpoint),
                        capable,
                        reason,
                    });
                }
            }
            None => {
                let capable = matches!(judge, Judge::Everything);
                let name = permission
                    .strip_prefix("read_")
                    .or_else(|| permission.strip_prefix("control_"))
                    .unwrap_or(permission);
                out.push(types::Capability {
                    permission: Permission::from(*permission),
                    endpoint: format!("/{name}"),
                    capable,
                    reason: (!capable).then_some(CapabilityReason::SmartcarNotCapable),
                });
            }
        }
    }
    out
}

/// Validates the query and judges the VIN (shared by v1.0 and v2.0).
fn evaluate(q: &Query) -> Result<Verdict, Invalid> {
    let vin = q
        .get("vin")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Invalid::new("vin", "\"vin\" is required".into()))?
        .trim()
        .to_ascii_uppercase();
    let scope = q
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Invalid::new("scope", "\"scope\" is required".into()))?;
    let scope = permissions_of(scope)?;
    let country = q.get("country").unwrap_or("US").trim().to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Invalid::new(
            "country",
            "\"country\" must be an ISO 3166-1 alpha-2 country code".into(),
        ));
    }
    let north_america = matches!(country.as_str(), "US" | "CA" | "MX");
    let vin_ok = if north_america {
        vin_is_valid(&vin) || is_test_vin(&vin)
    } else {
        vin_check_digit(&vin).is_some()
    };
    if !vin_ok {
        return Err(Invalid::new(
            "vin",
            "\"vin\" must be a valid 17-character VIN".into(),
        ));
    }
    let mode = q.get("mode").unwrap_or("live");
    if !matches!(mode, "live" | "simulated" | "test") {
        return Err(Invalid::new(
            "mode",
            "\"mode\" must be one of [live, simulated, test]".into(),
        ));
    }
    let with_capabilities = country == "US";
    let verdict = |judge: Option<Judge>| match judge {
        Some(judge) => Verdict {
            compatible: true,
            reason: None,
            capabilities: if with_capabilities {
                capabilities(&scope, &judge)
            } else {
                Vec::new()
            },
        },
        None => Verdict {
            compatible: false,
            reason: Some(CompatibilityReason::VehicleNotCompatible),
            capabilities: Vec::new(),
        },
    };
    if mode == "test" {
        let level = q
            .get("test_mode_compatibility_level")
            .filter(|l| TEST_LEVELS.contains(l))
            .ok_or_else(|| Invalid {
                field: "test_mode_compatibility_level",
                message: format!("Field must be one of: [{}]", TEST_LEVELS.join(", ")),
                plain_field: true,
            })?;
        return Ok(verdict(match level {
            "compatible" => Some(Judge::Everything),
            "bev" => Some(Judge::Powertrain(Powertrain::Bev)),
            "phev" => Some(Judge::Powertrain(Powertrain::Phev)),
            "fuel" => Some(Judge::Powertrain(Powertrain::Ice)),
            _ => None,
        }));
    }
    if is_test_vin(&vin) && test_vin_error(&vin).is_none() {
        return Ok(verdict(Some(Judge::Powertrain(Powertrain::Bev))));
    }
    let region = if north_america { "US" } else { "EUROPE" };
    let model = CATALOGUE
        .iter()
        .find(|(make, model, _, wmi, _, _)| vin.starts_with(wmi) && in_region(make, model, region));
    let compat_only = || {
        COMPAT_ONLY_MAKES
            .iter()
            .any(|(_, wmis)| wmis.iter().any(|wmi| vin.starts_with(wmi)))
    };
    Ok(match model {
        Some(&(_, _, powertrain, _, _, _)) => verdict(Some(Judge::Powertrain(powertrain))),
        None if compat_only() => verdict(Some(Judge::Nothing)),
        None => Verdict {
            compatible: false,
            reason: Some(CompatibilityReason::MakeNotCompatible),
            capabilities: Vec::new(),
        },
    })
}

/// `GET /v1.0/compatibility`: `{"compatible": bool}` (compatible and every capability
/// capable); errors in the v1.0 shape.
async fn v1(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let authorised = auth::client_basic(&state.world(), &headers).is_ok();
    if !authorised {
        return ApiError::v1(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Invalid or expired token provided.",
            None,
        )
        .into_response();
    }
    let q = Query::parse(q.as_deref());
    respond(evaluate(&q).map_err(Invalid::v1).map(|v| {
        let body = types::CompatibilityV1 {
            compatible: v.compatible && v.capabilities.iter().all(|c| c.capable),
        };
        json_response(StatusCode::OK, &body, &[])
    }))
}

async fn v1_not_found() -> Response {
    ApiError::v1(
        StatusCode::NOT_FOUND,
        "resource_not_found_error",
        "The requested resource does not exist.",
        None,
    )
    .into_response()
}

/// `GET /v2.0/compatibility`.
async fn v2(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let authorised = auth::client_basic(&state.world(), &headers);
    let q = Query::parse(q.as_deref());
    respond(authorised.and_then(|()| {
        let v = evaluate(&q).map_err(Invalid::v2)?;
        let mut body = to_value(&types::CompatibilityV2 {
            compatible: v.compatible,
            reason: v.reason,
            capabilities: v.capabilities,
        });
        fill(&mut body, "reason", serde_json::Value::Null);
        if let Some(serde_json::Value::Array(caps)) = body.get_mut("capabilities") {
            for c in caps {
                fill(c, "reason", serde_json::Value::Null);
            }
        }
        Ok(json_response(StatusCode::OK, &body, &[]))
    }))
}

/// `GET /v2.0/compatibility/matrix?region=US|CA|EUROPE[&type][&make][&scope][&mode]`.
async fn matrix(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let authorised = auth::client_basic(&state.world(), &headers);
    let q = Query::parse(q.as_deref());
    respond(authorised.and_then(|()| {
        let body = build_matrix(&q).map_err(Invalid::v2)?;
        Ok(json_response(StatusCode::OK, &body, &[]))
    }))
}

fn build_matrix(q: &Query) -> Result<types::CompatibilityMatrix, Invalid> {
    let region = match q.get("region") {
        None | Some("") => return Err(Invalid::new("region", "\"region\" is required".into())),
        Some(r) if REGIONS.contains(&r) => r,
        Some(_) => {
            return Err(Invalid::new(
                "region",
                "\"region\" must be one of [US, CA, EUROPE]".into(),
            ));
        }
    };
    let kind = match q.get("type").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            Powertrain::ALL
                .into_iter()
                .find(|p| p.as_str() == t)
                .ok_or_else(|| {
                    Invalid::new(
                        "type",
                        "\"type\" must be one of [ICE, BEV, PHEV, HEV]".into(),
                    )
                })?,
        ),
    };
    let makes: Vec<String> = q
        .get("make")
        .map(|m| m.split_whitespace().map(str::to_ascii_uppercase).collect())
        .unwrap_or_default();
    let scope = permissions_of(q.get("scope").unwrap_or(""))?;
    if let Some(mode) = q.get("mode")
        && !matches!(mode, "live" | "simulated" | "test")
    {
        return Err(Invalid::new(
            "mode",
            "\"mode\" must be one of [live, simulated, test]".into(),
        ));
    }
    let mut matrix =
        std::collections::HashMap::<String, Vec<types::CompatibilityMatrixEntry>>::new();
    for &(make, model, powertrain, _, _, _) in CATALOGUE {
        if !in_region(make, model, region)
            || kind.is_some_and(|k| k != powertrain)
            || (!makes.is_empty() && !makes.iter().any(|m| m == make))
        {
            continue;
        }
        let capable: Vec<&(&str, &[Operation], &str)> = PERMISSION_ENDPOINTS
            .iter()
            .filter(|(_, endpoints, _)| endpoints.iter().all(|e| powertrain_capable(e, powertrain)))
            .collect();
        if !scope.iter().all(|s| capable.iter().any(|(p, _, _)| p == s)) {
            continue;
        }
        let mut endpoints: Vec<String> = Vec::new();
        for (_, _, name) in &capable {
            if !endpoints.iter().any(|e| e == name) {
                endpoints.push((*name).to_owned());
            }
        }
        matrix
            .entry(make.to_owned())
            .or_default()
            .push(types::CompatibilityMatrixEntry {
                model: model.to_owned(),
                start_year: MODEL_YEARS.0,
                end_year: MODEL_YEARS.1,
                type_: PowertrainType::from(powertrain.as_str()),
                endpoints,
                permissions: capable
                    .iter()
                    .map(|(p, _, _)| Permission::from(*p))
                    .collect(),
            });
    }
    Ok(types::CompatibilityMatrix(matrix))
}
