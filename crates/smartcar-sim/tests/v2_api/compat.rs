//! The compatibility API (v1.0, v2.0, matrix).

use serde_json::{Value, json};
use smartcar_api::types;
use smartcar_sim::fleet::{Rng, make_vin};

use crate::support::*;

fn vin(wmi: &str) -> String {
    make_vin(&mut Rng::new(5), wmi, 2022)
}

async fn get(env: &Env, path: &str, basic: Option<(&str, &str)>) -> Resp {
    let mut req = env.http.get(env.url(path));
    if let Some((user, password)) = basic {
        req = req.basic_auth(user, Some(password));
    }
    env.send(req).await
}

#[tokio::test]
async fn v2_compatibility_from_the_catalogue() {
    let env = Env::start().await;
    let (_, id, secret) = env.app();
    let auth = Some((id.as_str(), secret.as_str()));
    let tesla = vin("5YJ");
    let r = get(
        &env,
        &format!("/v2.0/compatibility?vin={tesla}&scope=read_battery%20read_fuel%20read_vin%20required:read_charge"),
        auth,
    )
    .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(
        r.body,
        json!({
            "compatible": true,
            "reason": null,
            "capabilities": [
                {"permission": "read_battery", "endpoint": "/battery", "capable": true, "reason": null},
                {"permission": "read_battery", "endpoint": "/battery/capacity", "capable": true, "reason": null},
                {"permission": "read_battery", "endpoint": "/battery/nominal_capacity", "capable": true, "reason": null},
                {"permission": "read_fuel", "endpoint": "/fuel", "capable": false, "reason": "VEHICLE_NOT_CAPABLE"},
                {"permission": "read_vin", "endpoint": "/vin", "capable": true, "reason": null},
                {"permission": "read_charge", "endpoint": "/charge", "capable": true, "reason": null},
                {"permission": "read_charge", "endpoint": "/charge/limit", "capable": true, "reason": null},
            ],
        })
    );
    assert_typed::<types::CompatibilityV2>(&r.body);

    // An F-150 burns fuel: no battery. A permission without a v2 endpoint is not capable.
    let ford = vin("1FT");
    let r = get(
        &env,
        &format!("/v2.0/compatibility?vin={ford}&scope=read_battery+read_engine_oil+read_climate"),
        auth,
    )
    .await;
    assert_eq!(
        r.body["capabilities"],
        json!([
            {"permission": "read_battery", "endpoint": "/battery", "capable": false, "reason": "VEHICLE_NOT_CAPABLE"},
            {"permission": "read_battery", "endpoint": "/battery/capacity", "capable": false, "reason": "VEHICLE_NOT_CAPABLE"},
            {"permission": "read_battery", "endpoint": "/battery/nominal_capacity", "capable": false, "reason": "VEHICLE_NOT_CAPABLE"},
            {"permission": "read_engine_oil", "endpoint": "/engine/oil", "capable": true, "reason": null},
            {"permission": "read_climate", "endpoint": "/climate", "capable": false, "reason": "SMARTCAR_NOT_CAPABLE"},
        ])
    );

    // Unknown manufacturer.
    let unknown = vin("ZZZ");
    let r = get(
        &env,
        &format!("/v2.0/compatibility?vin={unknown}&scope=read_vin"),
        auth,
    )
    .await;
    assert_eq!(
        r.body,
        json!({"compatible": false, "reason": "MAKE_NOT_COMPATIBLE", "capabilities": []})
    );
    assert_typed::<types::CompatibilityV2>(&r.body);

    // Outside the US: compatible by make, no capabilities; Europe has no Jeep.
    let r = get(
        &env,
        &format!("/v2.0/compatibility?vin={tesla}&scope=read_vin&country=DE"),
        auth,
    )
    .await;
    assert_eq!(
        r.body,
        json!({"compatible": true, "reason": null, "capabilities": []})
    );
    let jeep = vin("1C4");
    let r = get(
        &env,
        &format!("/v2.0/compatibility?vin={jeep}&scope=read_vin&country=FR"),
        auth,
    )
    .await;
    assert_eq!(r.body["reason"], "MAKE_NOT_COMPATIBLE");
}

#[tokio::test]
async fn v2_compatibility_validation_and_auth() {
    let env = Env::start().await;
    let (amt, id, secret) = env.app();
    let auth = Some((id.as_str(), secret.as_str()));
    let tesla = vin("5YJ");
    let mut bad_digit = tesla.clone().into_bytes();
    bad_digit[8] = if bad_digit[8] == b'1' { b'2' } else { b'1' };
    let bad_digit = String::from_utf8(bad_digit).expect("ascii");
    for (q, message) in [
        ("scope=read_vin".to_owned(), "\"vin\" is required"),
        (format!("vin={tesla}"), "\"scope\" is required"),
        (
            "vin=123&scope=read_vin".to_owned(),
            "\"vin\" must be a valid 17-character VIN",
        ),
        (
            format!("vin={bad_digit}&scope=read_vin"),
            "\"vin\" must be a valid 17-character VIN",
        ),
        (
            format!("vin={tesla}&scope=read_everything"),
            "\"scope\" contains an unknown permission: read_everything",
        ),
        (
            format!("vin={tesla}&scope=read_vin&country=USA"),
            "\"country\" must be an ISO 3166-1 alpha-2 country code",
        ),
        (
            format!("vin={tesla}&scope=read_vin&mode=prod"),
            "\"mode\" must be one of [live, simulated, test]",
        ),
    ] {
        let r = get(&env, &format!("/v2.0/compatibility?{q}"), auth).await;
        r.assert_validation(message);
    }
    // The check digit is not enforced outside North America.
    let r = get(
        &env,
        &format!("/v2.0/compatibility?vin={bad_digit}&scope=read_vin&country=DE"),
        auth,
    )
    .await;
    assert_eq!(r.status, 200);

    // Test mode needs a level.
    let r = get(
        &env,
        &format!("/v2.0/compatibility?vin={tesla}&scope=read_vin&mode=test"),
        auth,
    )
    .await;
    r.assert_error(400, "VALIDATION", None);
    assert_eq!(
        r.body["detail"],
        json!([{
            "field": "test_mode_compatibility_level",
            "message": "Field must be one of: [compatible, phev, incompatible, fuel, dinosaur, bev]",
        }])
    );
    let unknown = vin("ZZZ");
    for (level, compatible, fuel_capable) in [
        ("compatible", true, Some(true)),
        ("bev", true, Some(false)),
        ("fuel", true, Some(true)),
        ("phev", true, Some(true)),
        ("incompatible", false, None),
        ("dinosaur", false, None),
    ] {
        let r = get(
            &env,
            &format!("/v2.0/compatibility?vin={unknown}&scope=read_fuel&mode=test&test_mode_compatibility_level={level}"),
            auth,
        )
        .await;
        assert_eq!(r.status, 200, "{level}");
        assert_eq!(r.body["compatible"], compatible, "{level}");
        match fuel_capable {
            Some(c) => assert_eq!(r.body["capabilities"][0]["capable"], c, "{level}"),
            None => {
                assert_eq!(r.body["reason"], "VEHICLE_NOT_COMPATIBLE");
                assert_eq!(r.body["capabilities"], json!([]));
            }
        }
    }

    let q = format!("/v2.0/compatibility?vin={tesla}&scope=read_vin");
    get(&env, &q, None)
        .await
        .assert_error(401, "AUTHENTICATION", None);
    get(&env, &q, Some((id.as_str(), "wrong")))
        .await
        .assert_error(401, "AUTHENTICATION", None);
    get(&env, &q, Some(("default", amt.as_str())))
        .await
        .assert_error(401, "AUTHENTICATION", None);
}

#[tokio::test]
async fn v1_compatibility() {
    let env = Env::start().await;
    let (_, id, secret) = env.app();
    let auth = Some((id.as_str(), secret.as_str()));
    let tesla = vin("5YJ");
    let r = get(
        &env,
        &format!("/v1.0/compatibility?vin={tesla}&scope=read_battery read_vin"),
        auth,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"compatible": true}));
    assert_typed::<types::CompatibilityV1>(&r.body);
    let r = get(
        &env,
        &format!("/v1.0/compatibility?vin={tesla}&scope=read_fuel"),
        auth,
    )
    .await;
    assert_eq!(r.body, json!({"compatible": false}));
    let r = get(
        &env,
        &format!("/v1.0/compatibility?vin={}&scope=read_vin", vin("ZZZ")),
        auth,
    )
    .await;
    assert_eq!(r.body, json!({"compatible": false}));

    let r = get(&env, "/v1.0/compatibility?vin=short&scope=read_vin", auth).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "validation_error");
    assert_eq!(
        r.body["message"],
        "\"vin\" must be a valid 17-character VIN"
    );
    assert_typed::<types::V1Error>(&r.body);
    let r = get(
        &env,
        &format!("/v1.0/compatibility?vin={tesla}&scope=read_vin"),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "authentication_error");
    assert_eq!(r.body["statusCode"], 401);
    assert_typed::<types::V1Error>(&r.body);
}

#[tokio::test]
async fn matrix() {
    let env = Env::start().await;
    let (_, id, secret) = env.app();
    let auth = Some((id.as_str(), secret.as_str()));
    let r = get(&env, "/v2.0/compatibility/matrix?region=US", auth).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let typed = assert_typed::<types::CompatibilityMatrix>(&r.body);
    let makes: std::collections::BTreeSet<&str> = typed.keys().map(String::as_str).collect();
    assert_eq!(
        makes,
        [
            "BMW",
            "CHEVROLET",
            "FORD",
            "HONDA",
            "HYUNDAI",
            "JEEP",
            "NISSAN",
            "TESLA",
            "TOYOTA",
            "VOLKSWAGEN"
        ]
        .into()
    );
    assert_eq!(
        r.body["NISSAN"],
        json!([{
            "model": "LEAF",
            "startYear": 2018,
            "endYear": 2025,
            "type": "BEV",
            "endpoints": [
                "Vehicle info", "VIN", "Odometer", "Location", "EV battery", "EV charging status",
                "Tire pressure", "Lock status", "Service history", "Diagnostics", "Lock & unlock",
                "EV start & stop charge", "Send destination",
            ],
            "permissions": [
                "read_vehicle_info", "read_vin", "read_odometer", "read_location", "read_battery",
                "read_charge", "read_tires", "read_security", "read_service_history",
                "read_diagnostics", "control_security", "control_charge", "control_navigation",
            ],
        }])
    );

    let r = get(
        &env,
        "/v2.0/compatibility/matrix?region=EUROPE&make=ford%20jeep",
        auth,
    )
    .await;
    assert_eq!(r.body.as_object().map(|m| m.len()), Some(1));
    let fords: Vec<&Value> = r.body["FORD"].as_array().expect("FORD").iter().collect();
    assert_eq!(fords.len(), 1);
    assert_eq!(fords[0]["model"], "Mustang Mach-E");

    let r = get(&env, "/v2.0/compatibility/matrix?region=CA&type=PHEV", auth).await;
    let mut models: Vec<&str> = r
        .body
        .as_object()
        .expect("object")
        .values()
        .flat_map(|v| v.as_array().into_iter().flatten())
        .map(|e| e["model"].as_str().unwrap_or_default())
        .collect();
    models.sort_unstable();
    assert_eq!(models, ["Prius Prime", "Wrangler 4xe"]);

    // Scope filter: only models that can do all of it.
    let r = get(
        &env,
        "/v2.0/compatibility/matrix?region=US&scope=read_fuel%20control_charge",
        auth,
    )
    .await;
    let entries: Vec<(&String, &Value)> = r
        .body
        .as_object()
        .expect("object")
        .iter()
        .flat_map(|(make, v)| v.as_array().into_iter().flatten().map(move |e| (make, e)))
        .collect();
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|(_, e)| e["type"] == "PHEV"),
        "{:#}",
        r.body
    );

    for (q, message) in [
        ("", "\"region\" is required"),
        ("region=ASIA", "\"region\" must be one of [US, CA, EUROPE]"),
        (
            "region=US&type=EV",
            "\"type\" must be one of [ICE, BEV, PHEV, HEV]",
        ),
        (
            "region=US&scope=read_mind",
            "\"scope\" contains an unknown permission: read_mind",
        ),
    ] {
        get(&env, &format!("/v2.0/compatibility/matrix?{q}"), auth)
            .await
            .assert_validation(message);
    }
    get(&env, "/v2.0/compatibility/matrix?region=US", None)
        .await
        .assert_error(401, "AUTHENTICATION", None);
}

#[tokio::test]
async fn smartcar_test_vins_and_makes_without_a_catalogue_model() {
    let env = Env::start().await;
    let (_, id, secret) = env.app();
    let auth = Some((id.as_str(), secret.as_str()));
    let v2 = |q: String| {
        let env = &env;
        async move { get(env, &format!("/v2.0/compatibility?{q}"), auth).await }
    };

    // python-sdk e2e test_get_compatibility_v2 (live): a test VIN has no check digit; it is
    // compatible, odometer capable, fuel not (a BEV), in scope order.
    let r = v2("vin=0SCGMCT0386A85356&scope=read_odometer+read_fuel&country=US".into()).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(
        r.body,
        json!({
            "compatible": true,
            "reason": null,
            "capabilities": [
                {"permission": "read_odometer", "endpoint": "/odometer", "capable": true, "reason": null},
                {"permission": "read_fuel", "endpoint": "/fuel", "capable": false, "reason": "VEHICLE_NOT_CAPABLE"},
            ],
        })
    );
    assert_typed::<types::CompatibilityV2>(&r.body);
    // Any other test VIN answers the same way (the simulator's choice); outside the US without
    // capabilities; one with a letter VINs never hold is refused.
    let r = v2("vin=0SCABCDE012345678&scope=read_battery+read_engine_oil".into()).await;
    assert_eq!(r.body["compatible"], true);
    assert_eq!(r.body["capabilities"][0]["capable"], true);
    assert_eq!(r.body["capabilities"][3]["reason"], "VEHICLE_NOT_CAPABLE");
    let r = v2("vin=0SCGMCT0386A85356&scope=read_vin&country=DE".into()).await;
    assert_eq!(
        r.body,
        json!({"compatible": true, "reason": null, "capabilities": []})
    );
    v2("vin=0SCGMCT0386A8535O&scope=read_vin".into())
        .await
        .assert_validation("\"vin\" must be a valid 17-character VIN");
    // The error-forcing test VINs keep their answer.
    let r = v2("vin=0SCLR0002E8896323&scope=read_vin".into()).await;
    assert_eq!(r.body["reason"], "MAKE_NOT_COMPATIBLE");

    // An Audi (no catalogue model): compatible (python-sdk
    // test_get_compatibility_with_non_test_mode_vin), every capability not capable (node-sdk's
    // live getCompatibility: both capabilities `capable: false`).
    let r = v2("vin=WAUAFAFL1GN014882&scope=read_vehicle_info&country=US".into()).await;
    assert_eq!(
        r.body,
        json!({
            "compatible": true,
            "reason": null,
            "capabilities": [
                {"permission": "read_vehicle_info", "endpoint": "/", "capable": false, "reason": "SMARTCAR_NOT_CAPABLE"},
            ],
        })
    );
    assert_typed::<types::CompatibilityV2>(&r.body);
    let r = v2("vin=WAUAFAFL1GN014882&scope=read_odometer+read_location".into()).await;
    let caps = r.body["capabilities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(caps.len(), 2);
    assert!(caps.iter().all(|c| c["capable"] == false));
    // node-sdk's live Tesla VIN, every capability capable.
    let r = v2("vin=5YJXCDE22HF068739&scope=read_odometer+read_location".into()).await;
    let caps = r.body["capabilities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(caps.len(), 2);
    assert!(caps.iter().all(|c| c["capable"] == true), "{:#}", r.body);
    // Makes without a catalogue model are compatible in every region.
    let r = v2(format!("vin={}&scope=read_vin&country=DE", vin("WP0"))).await;
    assert_eq!(r.body["compatible"], true);
    // The matrix lists catalogue models only.
    let r = get(&env, "/v2.0/compatibility/matrix?region=US", auth).await;
    assert!(r.body.get("AUDI").is_none() && r.body.get("TESLA").is_some());
}
