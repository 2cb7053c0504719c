//! Per-vehicle reads: exact bodies, headers, units, capability, permissions.

use chrono::SecondsFormat;
use serde_json::{Value, json};
use smartcar_api::types;
use smartcar_sim::model::Powertrain;

use crate::support::*;

const KM_PER_MILE: f64 = 1.609_344;
const L_PER_GAL: f64 = 3.785_411_784;
const KPA_PER_PSI: f64 = 6.894_757_293_168_361;

/// A BEV, an ICE and a PHEV on user 0, one token with every permission.
struct Fleet {
    env: Env,
    bev: String,
    ice: String,
    phev: String,
    token: String,
}

async fn fleet() -> Fleet {
    let env = Env::start().await;
    let bev = env.add_vehicle(Powertrain::Bev, 11);
    let ice = env.add_vehicle(Powertrain::Ice, 12);
    let phev = env.add_vehicle(Powertrain::Phev, 13);
    let user = env.user(0);
    let token = env.token(&user, &[&bev, &ice, &phev], &ALL_SCOPES);
    Fleet {
        env,
        bev,
        ice,
        phev,
        token,
    }
}

fn path(id: &str, rest: &str) -> String {
    format!("/v2.0/vehicles/{id}{rest}")
}

#[tokio::test]
async fn attributes_vin_location_with_meta_headers() {
    let f = fleet().await;
    let v = f.env.vehicle(&f.bev);
    let before = f.env.sim.state().now();
    for p in [path(&f.bev, ""), path(&f.bev, "/")] {
        let r = f.env.get(&f.token, &p).await;
        assert_eq!(r.status, 200, "{p}: {:#}", r.body);
        assert_eq!(
            r.body,
            json!({"id": v.id, "make": v.make, "model": v.model, "year": v.year})
        );
        assert_typed::<types::VehicleAttributes>(&r.body);
        assert_eq!(
            r.header("sc-data-age"),
            Some(
                v.data_age
                    .to_rfc3339_opts(SecondsFormat::Millis, true)
                    .as_str()
            )
        );
        let fetched = r.header("sc-fetched-at").expect("sc-fetched-at");
        assert!(fetched.ends_with('Z') && fetched.len() == 24, "{fetched}");
        let fetched = chrono::DateTime::parse_from_rfc3339(fetched).expect("RFC 3339");
        assert!(fetched >= before - chrono::Duration::seconds(1));
        assert_eq!(
            r.header("sc-unit-system"),
            None,
            "attributes carry no units"
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    let r = f.env.get(&f.token, &path(&f.bev, "/vin")).await;
    assert_eq!(r.body, json!({"vin": v.vin}));
    assert_typed::<types::Vin>(&r.body);

    let r = f.env.get(&f.token, &path(&f.bev, "/location")).await;
    assert_eq!(
        r.body,
        json!({"latitude": v.latitude, "longitude": v.longitude})
    );
    assert_typed::<types::Location>(&r.body);
    assert!(r.header("sc-data-age").is_some());
}

#[tokio::test]
async fn odometer_in_both_unit_systems() {
    let f = fleet().await;
    f.env.edit(&f.ice, |v| v.odometer_km = 16_093.44);
    let p = path(&f.ice, "/odometer");

    let r = f.env.get(&f.token, &p).await;
    assert_eq!(r.body, json!({"distance": 16093.44}));
    assert_eq!(r.header("sc-unit-system"), Some("metric"));
    assert_typed::<types::Odometer>(&r.body);

    let r = f.env.get_units(&f.token, &p, "imperial").await;
    assert_eq!(r.body, json!({"distance": 10000.0}));
    assert_eq!(r.header("sc-unit-system"), Some("imperial"));

    // Case-insensitive, echoed in lower case.
    let r = f.env.get_units(&f.token, &p, "IMPERIAL").await;
    assert_eq!(r.body, json!({"distance": 10000.0}));
    assert_eq!(r.header("sc-unit-system"), Some("imperial"));

    let r = f.env.get_units(&f.token, &p, "metric").await;
    assert_eq!(r.body, json!({"distance": 16093.44}));

    let r = f.env.get_units(&f.token, &p, "furlongs").await;
    r.assert_validation("\"sc-unit-system\" must be one of [metric, imperial]");
    assert_eq!(r.body["detail"][0]["field"], json!(["sc-unit-system"]));
}

#[tokio::test]
async fn fuel_for_combustion_vehicles_only() {
    let f = fleet().await;
    f.env.edit(&f.ice, |v| {
        let fuel = v.fuel.as_mut().expect("ICE has fuel");
        fuel.capacity_liters = 60.0;
        fuel.percent = 0.5;
        fuel.full_range_km = 800.0;
    });
    let p = path(&f.ice, "/fuel");
    let r = f.env.get(&f.token, &p).await;
    assert_eq!(
        r.body,
        json!({"amountRemaining": 30.0, "percentRemaining": 0.5, "range": 400.0})
    );
    assert_eq!(r.header("sc-unit-system"), Some("metric"));
    assert_typed::<types::FuelTank>(&r.body);

    let r = f.env.get_units(&f.token, &p, "imperial").await;
    assert_eq!(
        r.body,
        json!({
            "amountRemaining": round2(30.0 / L_PER_GAL),
            "percentRemaining": 0.5,
            "range": round2(400.0 / KM_PER_MILE),
        })
    );
    assert_eq!(r.body["amountRemaining"], 7.93);
    assert_eq!(r.body["range"], 248.55);

    // A PHEV has a tank too; a BEV has none.
    let r = f.env.get(&f.token, &path(&f.phev, "/fuel")).await;
    assert_eq!(r.status, 200);
    let r = f.env.get(&f.token, &path(&f.bev, "/fuel")).await;
    r.assert_error(501, "COMPATIBILITY", Some("VEHICLE_NOT_CAPABLE"));
}

#[tokio::test]
async fn battery_capacity_charge_and_limit() {
    let f = fleet().await;
    f.env.edit(&f.bev, |v| {
        let b = v.battery.as_mut().expect("BEV battery");
        b.percent = 0.5;
        b.full_range_km = 400.0;
        b.capacity_kwh = 75.0;
        b.plugged_in = true;
        b.charging = true;
        b.charge_limit = 0.9;
    });
    let r = f.env.get(&f.token, &path(&f.bev, "/battery")).await;
    assert_eq!(r.body, json!({"percentRemaining": 0.5, "range": 200.0}));
    assert_eq!(r.header("sc-unit-system"), Some("metric"));
    assert_typed::<types::Battery>(&r.body);
    let r = f
        .env
        .get_units(&f.token, &path(&f.bev, "/battery"), "imperial")
        .await;
    assert_eq!(
        r.body,
        json!({"percentRemaining": 0.5, "range": round2(200.0 / KM_PER_MILE)})
    );
    assert_eq!(r.body["range"], 124.27);

    let r = f
        .env
        .get(&f.token, &path(&f.bev, "/battery/capacity"))
        .await;
    assert_eq!(r.body, json!({"capacity": 75.0}));
    assert_eq!(r.header("sc-unit-system"), None);
    assert_typed::<types::BatteryCapacity>(&r.body);

    let r = f.env.get(&f.token, &path(&f.bev, "/charge")).await;
    assert_eq!(r.body, json!({"isPluggedIn": true, "state": "CHARGING"}));
    assert_typed::<types::ChargeStatus>(&r.body);
    f.env.edit(&f.bev, |v| {
        let b = v.battery.as_mut().expect("battery");
        b.charging = false;
        b.percent = 0.9;
    });
    let r = f.env.get(&f.token, &path(&f.bev, "/charge")).await;
    assert_eq!(
        r.body,
        json!({"isPluggedIn": true, "state": "FULLY_CHARGED"})
    );
    f.env.edit(&f.bev, |v| {
        v.battery.as_mut().expect("battery").plugged_in = false
    });
    let r = f.env.get(&f.token, &path(&f.bev, "/charge")).await;
    assert_eq!(
        r.body,
        json!({"isPluggedIn": false, "state": "NOT_CHARGING"})
    );

    let r = f.env.get(&f.token, &path(&f.bev, "/charge/limit")).await;
    assert_eq!(r.body, json!({"limit": 0.9}));
    assert_typed::<types::ChargeLimit>(&r.body);

    for rest in [
        "/battery",
        "/battery/capacity",
        "/battery/nominal_capacity",
        "/charge",
        "/charge/limit",
    ] {
        let r = f.env.get(&f.token, &path(&f.ice, rest)).await;
        r.assert_error(501, "COMPATIBILITY", Some("VEHICLE_NOT_CAPABLE"));
        let r = f.env.get(&f.token, &path(&f.phev, rest)).await;
        assert_eq!(r.status, 200, "PHEV {rest}");
    }
}

#[tokio::test]
async fn nominal_capacity_determined_and_not() {
    let f = fleet().await;
    f.env.edit(&f.bev, |v| {
        let b = v.battery.as_mut().expect("battery");
        b.capacity_kwh = 75.0;
        b.nominal_determined = true;
    });
    let p = path(&f.bev, "/battery/nominal_capacity");
    let r = f.env.get(&f.token, &p).await;
    assert_eq!(
        r.body,
        json!({
            "availableCapacities": [{"capacity": 75.0, "description": "BEV:Standard"}],
            "capacity": {"nominal": 75.0, "source": "SMARTCAR"},
            "url": null,
        })
    );
    assert_typed::<types::NominalCapacity>(&r.body);

    f.env.edit(&f.bev, |v| {
        v.battery.as_mut().expect("battery").nominal_determined = false
    });
    let r = f.env.get(&f.token, &p).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["capacity"], Value::Null);
    assert_eq!(
        r.body["availableCapacities"],
        json!([
            {"capacity": 65.0, "description": "BEV:Standard Range"},
            {"capacity": 75.0, "description": "BEV:Long Range"},
            {"capacity": 85.0, "description": "BEV:Extended Range"},
        ])
    );
    let url = r.body["url"].as_str().expect("url");
    let client_id = f.env.app().1;
    let expected = format!(
        "{}/battery-capacity?vehicle_id={}&client_id={client_id}&token=",
        f.env.base, f.bev
    );
    assert!(url.starts_with(&expected), "{url}");
    assert!(
        url.ends_with("&response_type=vehicle_id&redirect_uri="),
        "{url}"
    );
    assert_typed::<types::NominalCapacity>(&r.body);
}

#[tokio::test]
async fn engine_oil_and_tires() {
    let f = fleet().await;
    f.env.edit(&f.ice, |v| {
        v.oil_life = Some(0.35);
        v.tires_kpa = [240.0, 241.5, 220.0, 219.3];
    });
    let r = f.env.get(&f.token, &path(&f.ice, "/engine/oil")).await;
    assert_eq!(r.body, json!({"lifeRemaining": 0.35}));
    assert_typed::<types::EngineOil>(&r.body);
    let r = f.env.get(&f.token, &path(&f.bev, "/engine/oil")).await;
    r.assert_error(501, "COMPATIBILITY", Some("VEHICLE_NOT_CAPABLE"));

    let p = path(&f.ice, "/tires/pressure");
    let r = f.env.get(&f.token, &p).await;
    assert_eq!(
        r.body,
        json!({"frontLeft": 240.0, "frontRight": 241.5, "backLeft": 220.0, "backRight": 219.3})
    );
    assert_eq!(r.header("sc-unit-system"), Some("metric"));
    assert_typed::<types::TirePressure>(&r.body);
    let r = f.env.get_units(&f.token, &p, "imperial").await;
    assert_eq!(
        r.body,
        json!({
            "frontLeft": round2(240.0 / KPA_PER_PSI),
            "frontRight": round2(241.5 / KPA_PER_PSI),
            "backLeft": round2(220.0 / KPA_PER_PSI),
            "backRight": round2(219.3 / KPA_PER_PSI),
        })
    );
    assert_eq!(r.body["frontLeft"], 34.81);
    assert_eq!(r.body["backRight"], 31.81);
}

#[tokio::test]
async fn security_reports_locks_and_closures() {
    let f = fleet().await;
    f.env.edit(&f.bev, |v| {
        v.locked = false;
        v.doors_open = [false, true, false, false];
        v.windows_open = [false, false, false, true];
        v.battery.as_mut().expect("battery").plugged_in = true;
    });
    let r = f.env.get(&f.token, &path(&f.bev, "/security")).await;
    assert_eq!(
        r.body,
        json!({
            "isLocked": false,
            "doors": [
                {"type": "frontLeft", "status": "CLOSED"},
                {"type": "frontRight", "status": "OPEN"},
                {"type": "backLeft", "status": "CLOSED"},
                {"type": "backRight", "status": "CLOSED"},
            ],
            "windows": [
                {"type": "frontLeft", "status": "CLOSED"},
                {"type": "frontRight", "status": "CLOSED"},
                {"type": "backLeft", "status": "CLOSED"},
                {"type": "backRight", "status": "OPEN"},
            ],
            "sunroof": [{"type": "sunroof", "status": "CLOSED"}],
            "storage": [{"type": "rear", "status": "CLOSED"}, {"type": "front", "status": "CLOSED"}],
            "chargingPort": [{"type": "chargingPort", "status": "OPEN"}],
        })
    );
    assert_typed::<types::LockStatus>(&r.body);

    // No charging port on a combustion car: an empty list, not a missing key.
    f.env.edit(&f.ice, |v| v.locked = true);
    let r = f.env.get(&f.token, &path(&f.ice, "/security")).await;
    assert_eq!(r.body["isLocked"], true);
    assert_eq!(r.body["chargingPort"], json!([]));
    assert_typed::<types::LockStatus>(&r.body);
}

#[tokio::test]
async fn service_history_filters_and_units() {
    use chrono::TimeZone;
    use smartcar_sim::model::ServiceRecord;
    let f = fleet().await;
    let at = |y, m, d| {
        chrono::Utc
            .with_ymd_and_hms(y, m, d, 12, 0, 0)
            .single()
            .expect("date")
    };
    f.env.edit(&f.ice, |v| {
        v.service_records = vec![
            ServiceRecord {
                id: "3".into(),
                date: at(2024, 6, 1),
                odometer_km: 30_000.0,
                tasks: vec!["Oil change".into(), "Tire rotation".into()],
                cost: Some((149.5, "USD".into())),
            },
            ServiceRecord {
                id: "2".into(),
                date: at(2024, 1, 15),
                odometer_km: 20_000.0,
                tasks: vec!["Brake inspection".into()],
                cost: None,
            },
            ServiceRecord {
                id: "1".into(),
                date: at(2023, 6, 1),
                odometer_km: 10_000.0,
                tasks: vec![],
                cost: None,
            },
        ];
    });
    let p = path(&f.ice, "/service/history");
    let r = f.env.get(&f.token, &p).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("sc-unit-system"), Some("metric"));
    assert_eq!(
        r.body[0],
        json!({
            "serviceId": "3",
            "serviceDate": "2024-06-01T12:00:00Z",
            "odometerDistance": 30000.0,
            "serviceTasks": [
                {"taskId": "3-1", "taskDescription": "Oil change"},
                {"taskId": "3-2", "taskDescription": "Tire rotation"},
            ],
            "serviceDetails": [],
            "serviceCost": {"totalCost": 149.5, "currency": "USD"},
        })
    );
    assert_eq!(
        r.body[1]["serviceCost"],
        json!({"totalCost": null, "currency": null})
    );
    assert_eq!(r.body[2]["serviceTasks"], json!([]));
    assert_typed::<Vec<types::ServiceRecord>>(&r.body);

    let ids = |r: &Resp| -> Vec<String> {
        r.body
            .as_array()
            .expect("top-level array")
            .iter()
            .map(|x| x["serviceId"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // Both spellings, dates (whole days) and date-times.
    for q in [
        "?startDate=2024-01-15",
        "?start_date=2024-01-15",
        "?startDate=2024-01-15T00:00:00Z&endDate=2024-12-31",
        "?start_date=2024-01-15&end_date=2024-06-01",
    ] {
        let r = f.env.get(&f.token, &format!("{p}{q}")).await;
        assert_eq!(ids(&r), ["3", "2"], "{q}");
    }
    let r = f
        .env
        .get(&f.token, &format!("{p}?endDate=2024-01-15"))
        .await;
    assert_eq!(ids(&r), ["2", "1"]);
    let r = f
        .env
        .get(&f.token, &format!("{p}?endDate=2024-01-15T11:59:59.999Z"))
        .await;
    assert_eq!(ids(&r), ["1"]);
    // The Node SDK's `undefined` means no filter.
    let r = f
        .env
        .get(
            &f.token,
            &format!("{p}?start_date=undefined&end_date=undefined"),
        )
        .await;
    assert_eq!(ids(&r), ["3", "2", "1"]);

    let r = f
        .env
        .get(&f.token, &format!("{p}?startDate=yesterday"))
        .await;
    r.assert_validation("\"startDate\" must be a valid ISO 8601 date");
    let r = f
        .env
        .get(&f.token, &format!("{p}?end_date=2024-13-01"))
        .await;
    r.assert_validation("\"end_date\" must be a valid ISO 8601 date");
    let r = f
        .env
        .get(
            &f.token,
            &format!("{p}?startDate=2024-06-02&endDate=2024-06-01"),
        )
        .await;
    r.assert_validation("\"endDate\" must be greater than or equal to \"startDate\"");

    let r = f.env.get_units(&f.token, &p, "imperial").await;
    assert_eq!(r.header("sc-unit-system"), Some("imperial"));
    assert_eq!(
        r.body[0]["odometerDistance"],
        round2(30_000.0 / KM_PER_MILE)
    );
    assert_eq!(r.body[0]["odometerDistance"], 18641.14);
}

#[tokio::test]
async fn diagnostics() {
    let f = fleet().await;
    let t = chrono::DateTime::parse_from_rfc3339("2024-09-05T14:48:00.123456Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    f.env.edit(&f.ice, |v| {
        v.systems = vec![
            (
                "SYSTEM_TPMS".into(),
                false,
                Some("Left rear tire sensor battery low".into()),
            ),
            ("SYSTEM_AIRBAG".into(), true, None),
        ];
        v.dtcs = vec![("P302D".into(), Some(t)), ("P0420".into(), None)];
    });
    let r = f
        .env
        .get(&f.token, &path(&f.ice, "/diagnostics/system_status"))
        .await;
    assert_eq!(
        r.body,
        json!({"systems": [
            {"systemId": "SYSTEM_TPMS", "status": "ALERT", "description": "Left rear tire sensor battery low"},
            {"systemId": "SYSTEM_AIRBAG", "status": "OK", "description": null},
        ]})
    );
    assert_typed::<types::DiagnosticSystemStatus>(&r.body);
    let r = f
        .env
        .get(&f.token, &path(&f.ice, "/diagnostics/dtcs"))
        .await;
    assert_eq!(
        r.body,
        json!({"activeCodes": [
            {"code": "P302D", "timestamp": "2024-09-05T14:48:00.123Z"},
            {"code": "P0420", "timestamp": null},
        ]})
    );
    assert_typed::<types::DiagnosticTroubleCodes>(&r.body);
}

#[tokio::test]
async fn permissions_are_paged_and_need_no_permission() {
    let f = fleet().await;
    let user = f.env.user(0);
    let scopes = [
        "read_vin",
        "read_odometer",
        "control_security",
        "read_battery",
    ];
    let token = f.env.token(&user, &[&f.bev], &scopes);
    let p = path(&f.bev, "/permissions");
    let r = f.env.get(&token, &p).await;
    assert_eq!(
        r.body,
        json!({
            "permissions": ["control_security", "read_battery", "read_odometer", "read_vin"],
            "paging": {"count": 4, "offset": 0},
        })
    );
    assert_eq!(
        r.header("sc-data-age"),
        None,
        "platform data, not vehicle data"
    );
    assert_typed::<types::Permissions>(&r.body);
    let r = f.env.get(&token, &format!("{p}?limit=2&offset=1")).await;
    assert_eq!(
        r.body,
        json!({"permissions": ["read_battery", "read_odometer"], "paging": {"count": 4, "offset": 1}})
    );
    let r = f.env.get(&token, &format!("{p}?offset=10")).await;
    assert_eq!(
        r.body,
        json!({"permissions": [], "paging": {"count": 4, "offset": 10}})
    );
    let r = f.env.get(&token, &format!("{p}?limit=0")).await;
    r.assert_validation("\"limit\" must be greater than or equal to 1");
    let r = f.env.get(&token, &format!("{p}?offset=-1")).await;
    r.assert_validation("\"offset\" must be greater than or equal to 0");

    // No permission needed at all, and a vehicle forced into an error still answers (the
    // permissions live on the platform, not in the car).
    let bare = f.env.token(&user, &[&f.bev], &[]);
    f.env.edit(&f.bev, |v| {
        v.forced_error = Some(("VEHICLE_STATE".into(), "ASLEEP".into()))
    });
    let r = f.env.get(&bare, &p).await;
    assert_eq!(
        r.body,
        json!({"permissions": [], "paging": {"count": 0, "offset": 0}})
    );
}

/// Every read with its permission.
const READS: &[(&str, &str)] = &[
    ("", "read_vehicle_info"),
    ("/vin", "read_vin"),
    ("/odometer", "read_odometer"),
    ("/location", "read_location"),
    ("/fuel", "read_fuel"),
    ("/battery", "read_battery"),
    ("/battery/capacity", "read_battery"),
    ("/battery/nominal_capacity", "read_battery"),
    ("/charge", "read_charge"),
    ("/charge/limit", "read_charge"),
    ("/engine/oil", "read_engine_oil"),
    ("/tires/pressure", "read_tires"),
    ("/security", "read_security"),
    ("/service/history", "read_service_history"),
    ("/diagnostics/system_status", "read_diagnostics"),
    ("/diagnostics/dtcs", "read_diagnostics"),
];

#[tokio::test]
async fn every_read_enforces_its_permission() {
    let f = fleet().await;
    let user = f.env.user(0);
    for (rest, permission) in READS {
        // PHEV: has both fuel and battery, so every read applies.
        let others: Vec<&str> = ALL_SCOPES
            .iter()
            .copied()
            .filter(|s| s != permission)
            .collect();
        let without = f.env.token(&user, &[&f.phev], &others);
        let r = f.env.get(&without, &path(&f.phev, rest)).await;
        r.assert_error(403, "PERMISSION", None);
        assert_eq!(r.body["resolution"]["type"], "REAUTHENTICATE");
        let with = f.env.token(&user, &[&f.phev], &[permission]);
        let r = f.env.get(&with, &path(&f.phev, rest)).await;
        assert_eq!(r.status, 200, "{rest} with {permission}: {:#}", r.body);
    }
}

#[tokio::test]
async fn bad_tokens_unknown_and_foreign_vehicles() {
    let f = fleet().await;
    let other_user = f.env.user(1);
    let foreign = f.env.sim.state().world().users[1].vehicle_ids[0].clone();
    let _ = f.env.token(&other_user, &[&foreign], &ALL_SCOPES);
    for (rest, _) in READS.iter().chain([("/permissions", "")].iter()) {
        let p = path(&f.phev, rest);
        let r = f.env.get("not-a-token", &p).await;
        r.assert_error(401, "AUTHENTICATION", None);
        let r = f.env.send(f.env.http.get(f.env.url(&p))).await;
        r.assert_error(401, "AUTHENTICATION", None);
        let r = f
            .env
            .get(
                &f.token,
                &path("0f6f7c4e-0000-4000-8000-000000000000", rest),
            )
            .await;
        r.assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
        let r = f.env.get(&f.token, &path(&foreign, rest)).await;
        r.assert_error(403, "PERMISSION", None);
    }
    // Order of checks: token, then vehicle, then the unit header.
    let unknown = path("0f6f7c4e-0000-4000-8000-000000000000", "/odometer");
    f.env
        .get_units("bad", &unknown, "kelvin")
        .await
        .assert_error(401, "AUTHENTICATION", None);
    f.env
        .get_units(&f.token, &unknown, "kelvin")
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
    f.env
        .get_units(&f.token, &path(&foreign, "/odometer"), "kelvin")
        .await
        .assert_error(403, "PERMISSION", None);
    // Expiry follows the simulated clock.
    let p = path(&f.bev, "/odometer");
    assert_eq!(f.env.get(&f.token, &p).await.status, 200);
    f.env
        .sim
        .state()
        .clock
        .advance(std::time::Duration::from_secs(2 * 3600 + 1));
    f.env
        .get(&f.token, &p)
        .await
        .assert_error(401, "AUTHENTICATION", None);
}

#[tokio::test]
async fn test_vin_errors_apply_to_reads() {
    let f = fleet().await;
    f.env.edit(&f.bev, |v| {
        v.forced_error = Some(("VEHICLE_STATE".into(), "ASLEEP".into()))
    });
    let r = f.env.get(&f.token, &path(&f.bev, "/odometer")).await;
    let body = r.assert_error(409, "VEHICLE_STATE", Some("ASLEEP"));
    assert_eq!(
        body["suggestedUserMessage"],
        "Your car is asleep. Please wake it up and try again."
    );

    f.env.edit(&f.bev, |v| {
        v.forced_error = Some((
            "CONNECTED_SERVICES_ACCOUNT".into(),
            "AUTHENTICATION_FAILED".into(),
        ))
    });
    let r = f.env.get(&f.token, &path(&f.bev, "/location")).await;
    let body = r.assert_error(
        400,
        "CONNECTED_SERVICES_ACCOUNT",
        Some("AUTHENTICATION_FAILED"),
    );
    let client_id = f.env.app().1;
    assert_eq!(body["resolution"]["type"], "REAUTHENTICATE");
    assert_eq!(
        body["resolution"]["url"],
        format!(
            "{}/oauth/reauthenticate?response_type=vehicle_id&client_id={client_id}&vehicle_id={}",
            f.env.base, f.bev
        )
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths() {
    let f = fleet().await;
    let r = f
        .env
        .post(&f.token, &path(&f.bev, "/odometer"), json!({}))
        .await;
    r.assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
    let r = f.env.delete(&f.token, &path(&f.bev, "/location")).await;
    r.assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
    let r = f.env.get(&f.token, &path(&f.bev, "/application")).await;
    r.assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
    let r = f
        .env
        .get(&f.token, &path(&f.bev, "/tesla/speedometer"))
        .await;
    r.assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
    let r = f.env.get(&f.token, "/v2.0/nothing").await;
    r.assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
}
