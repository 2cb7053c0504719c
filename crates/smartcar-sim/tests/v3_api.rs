//! Vehicle API v3 over real HTTP: the vehicle resource, signals (paging, bodies, consistency
//! with the vehicle state, permissions), commands and their effect on the signals, and the
//! authentication rules.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use smartcar_api::types;
use smartcar_sim::model::Powertrain;
use smartcar_sim::testing::v3::*;

fn vehicle_path(id: &str) -> String {
    format!("/v3/vehicles/{id}")
}

#[tokio::test]
async fn vehicle_resource_and_authentication() {
    let env = start().await;
    let (u0, u1) = (user(&env.sim, 0), user(&env.sim, 1));
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, ALL);
    let path = vehicle_path(&ev);

    let ok = get(&env, &path, Some(&env.app), Some(&u0)).await;
    assert_eq!(ok.status, 200, "{:#}", ok.body);
    assert!(ok.request_id.is_some());
    // The live platform answers the resource unwrapped (no `data`): so does the simulator.
    assert!(ok.body.get("data").is_none(), "{:#}", ok.body);
    let body: types::VehicleResource = typed(&ok.body);
    let (make, model, year) = {
        let world = env.sim.state().world();
        let v = &world.vehicles[&ev];
        (v.make.clone(), v.model.clone(), v.year)
    };
    assert_eq!(body.id, ev);
    assert_eq!(body.type_, "vehicle");
    assert_eq!(body.attributes.model, model);
    assert_eq!(body.attributes.year.number(), Some(year));
    assert_eq!(body.attributes.make.to_uppercase(), make);
    assert_ne!(body.attributes.make, make, "title case, not TESLA");
    assert_eq!(ok.body["attributes"]["powertrainType"], "BEV");
    assert_eq!(ok.body["attributes"]["mode"], "live");
    assert_eq!(ok.body["links"]["self"], format!("/vehicles/{ev}"));

    // sc-user-id is optional here.
    assert_eq!(get(&env, &path, Some(&env.app), None).await.status, 200);

    // No, unknown, malformed or expired token: 401 in the v3 shape.
    assert_v3_error(
        &get(&env, &path, None, Some(&u0)).await,
        401,
        "AUTHENTICATION",
        None,
    );
    assert_v3_error(
        &get(&env, &path, Some("not-a-token"), Some(&u0)).await,
        401,
        "AUTHENTICATION",
        None,
    );
    let short = app_token(&env.sim, Duration::from_secs(60));
    assert_eq!(get(&env, &path, Some(&short), Some(&u0)).await.status, 200);
    env.sim.state().clock.advance(Duration::from_secs(61));
    assert_v3_error(
        &get(&env, &path, Some(&short), Some(&u0)).await,
        401,
        "AUTHENTICATION",
        None,
    );

    // Unknown vehicle: 404; a user without a connection to it: 403.
    assert_v3_error(
        &get(&env, &vehicle_path("nope"), Some(&env.app), Some(&u0)).await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );
    assert_v3_error(
        &get(&env, &path, Some(&env.app), Some(&u1)).await,
        403,
        "PERMISSION",
        None,
    );
    assert_v3_error(
        &get(&env, &path, Some(&env.app), Some("no-such-user")).await,
        403,
        "PERMISSION",
        None,
    );
    // A vehicle nobody connected is invisible to the application without sc-user-id.
    let lonely = add_vehicle(&env.sim, &u1, Powertrain::Ice);
    assert_v3_error(
        &get(&env, &vehicle_path(&lonely), Some(&env.app), None).await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );

    // A user access token without sc-user-id (the Python SDK's habit): the grant decides.
    let user_token = user_token(&env.sim, &u0, &[&ev], &["read_vehicle_info"]);
    assert_eq!(get(&env, &path, Some(&user_token), None).await.status, 200);
    assert_v3_error(
        &get(&env, &path, Some(&user_token), Some(&u1)).await,
        403,
        "PERMISSION",
        None,
    );
    assert_v3_error(
        &get(&env, &vehicle_path(&lonely), Some(&user_token), None).await,
        403,
        "PERMISSION",
        None,
    );

    // Signal reads take an application token without sc-user-id (the official SDKs send
    // none): the vehicle's newest connection decides.
    let app_only = get(&env, &format!("{path}/signals"), Some(&env.app), None).await;
    assert_eq!(app_only.status, 200, "{:#}", app_only.body);
    // The user token reads signals without it.
    let signals = get(&env, &format!("{path}/signals"), Some(&user_token), None).await;
    assert_eq!(signals.status, 200, "{:#}", signals.body);
}

#[tokio::test]
async fn a_test_vin_forces_its_error() {
    let env = start().await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, ALL);
    env.sim
        .state()
        .world()
        .vehicles
        .get_mut(&ev)
        .unwrap()
        .forced_error = Some(("VEHICLE_STATE".into(), "ASLEEP".into()));
    let answer = get(
        &env,
        &format!("/v3/vehicles/{ev}/signals"),
        Some(&env.app),
        Some(&u0),
    )
    .await;
    assert_v3_error(&answer, 409, "VEHICLE_STATE", Some("ASLEEP"));
    assert_eq!(answer.body["errors"][0]["title"], "Asleep");
}

/// Follows `links.next` from the first page to the last; returns every signal resource.
async fn all_signals(env: &Env, vehicle: &str, user: &str, page_size: usize) -> Vec<Value> {
    let mut next = Some(format!(
        "/vehicles/{vehicle}/signals?page=1&pageSize={page_size}"
    ));
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut total = None;
    while let Some(link) = next {
        pages += 1;
        assert!(pages < 50, "paging does not end");
        let answer = get(env, &format!("/v3{link}"), Some(&env.app), Some(user)).await;
        assert_eq!(answer.status, 200, "{:#}", answer.body);
        let page: types::SignalsResponse = typed(&answer.body);
        let meta = page.meta.expect("meta");
        assert_eq!(meta.page, Some(pages));
        assert_eq!(meta.page_size, Some(page_size as i32));
        let count = meta.total_count.expect("totalCount");
        assert_eq!(*total.get_or_insert(count), count);
        let links = page.links.expect("links");
        assert_eq!(links.self_.as_deref(), Some(link.as_str()));
        assert_eq!(
            links.first.as_deref(),
            Some(format!("/vehicles/{vehicle}/signals?page=1&pageSize={page_size}").as_str())
        );
        let last = (count as usize).div_ceil(page_size).max(1);
        assert_eq!(
            links.last.as_deref(),
            Some(format!("/vehicles/{vehicle}/signals?page={last}&pageSize={page_size}").as_str())
        );
        assert_eq!(links.previous.is_some(), pages > 1);
        let included = page
            .included
            .and_then(|i| i.vehicle)
            .expect("included.vehicle");
        assert_eq!(included.id, vehicle);
        let data = answer.body["data"].as_array().expect("data").clone();
        if links.next.is_some() {
            assert_eq!(data.len(), page_size);
        } else {
            assert_eq!(pages as usize, last);
        }
        seen.extend(data);
        next = links.next;
    }
    assert_eq!(seen.len(), total.unwrap_or_default() as usize);
    seen
}

fn codes(signals: &[Value]) -> Vec<String> {
    signals
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn signal_list_pages_through_the_powertrains_signals() {
    let env = start().await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    let ice = add_vehicle(&env.sim, &u0, Powertrain::Ice);
    let phev = add_vehicle(&env.sim, &u0, Powertrain::Phev);
    for v in [&ev, &ice, &phev] {
        connect(&env.sim, &u0, v, ALL);
    }

    let ev_signals = all_signals(&env, &ev, &u0, 7).await;
    let ev_codes = codes(&ev_signals);
    let mut sorted = ev_codes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ev_codes, sorted, "sorted by code, each once");
    for code in [
        "odometer-traveleddistance",
        "location-preciselocation",
        "closure-islocked",
        "closure-doors",
        "closure-windows",
        "wheel-tires",
        "vehicleidentification-vin",
        "vehicleidentification-nickname",
        "connectivitystatus-isonline",
        "diagnostics-dtccount",
        "diagnostics-dtclist",
        "tractionbattery-stateofcharge",
        "tractionbattery-range",
        "tractionbattery-nominalcapacity",
        "charge-ischarging",
        "charge-chargelimits",
        "charge-detailedchargingstatus",
    ] {
        assert!(ev_codes.iter().any(|c| c == code), "BEV lacks {code}");
    }
    assert!(
        !ev_codes
            .iter()
            .any(|c| c.starts_with("internalcombustionengine-"))
    );
    for s in &ev_signals {
        let resource: types::SignalResource = typed(s);
        assert_eq!(resource.attributes.status.value.as_str(), "SUCCESS");
        assert_eq!(resource.attributes.code.as_str(), resource.id);
        assert!(!resource.attributes.code.is_unknown());
        assert_eq!(
            s["links"]["self"],
            format!("/vehicles/{ev}/signals/{}", resource.id)
        );
    }

    let ice_codes = codes(&all_signals(&env, &ice, &u0, 10).await);
    assert!(
        ice_codes
            .iter()
            .any(|c| c == "internalcombustionengine-fuellevel")
    );
    assert!(
        ice_codes
            .iter()
            .any(|c| c == "internalcombustionengine-oillife")
    );
    assert!(
        !ice_codes
            .iter()
            .any(|c| c.starts_with("tractionbattery-") || c.starts_with("charge-"))
    );
    let phev_codes = codes(&all_signals(&env, &phev, &u0, 100).await);
    assert!(
        phev_codes
            .iter()
            .any(|c| c == "internalcombustionengine-range")
    );
    assert!(
        phev_codes
            .iter()
            .any(|c| c == "tractionbattery-stateofcharge")
    );

    // Page size 100 gives everything at once; a page past the last is empty.
    let base = format!("/v3/vehicles/{ev}/signals");
    let past = get(&env, &format!("{base}?page=40"), Some(&env.app), Some(&u0)).await;
    assert_eq!(past.status, 200);
    assert_eq!(past.body["data"], json!([]));
    assert!(past.body["links"].get("next").is_none());
    let default = get(&env, &base, Some(&env.app), Some(&u0)).await;
    assert_eq!(default.body["meta"]["pageSize"], 10);
    assert_eq!(default.body["meta"]["page"], 1);
    assert_eq!(default.body["data"].as_array().map(Vec::len), Some(10));
    for bad in [
        "page=0",
        "page=-1",
        "page=x",
        "pageSize=0",
        "pageSize=101",
        "pageSize=2.5",
    ] {
        let answer = get(&env, &format!("{base}?{bad}"), Some(&env.app), Some(&u0)).await;
        assert_v3_error(&answer, 400, "VALIDATION", None);
    }
}

async fn signal(env: &Env, vehicle: &str, user: &str, code: &str) -> Value {
    let answer = get(
        env,
        &format!("/v3/vehicles/{vehicle}/signals/{code}"),
        Some(&env.app),
        Some(user),
    )
    .await;
    assert_eq!(answer.status, 200, "{code}: {:#}", answer.body);
    let resource: types::SignalResource = typed(&answer.body);
    assert_eq!(resource.id, code);
    answer.body
}

fn unit_value(s: &Value) -> types::SignalUnitValue {
    typed(&s["attributes"]["body"])
}

#[tokio::test]
async fn signal_bodies_follow_the_vehicle_state() {
    let env = start().await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    let ice = add_vehicle(&env.sim, &u0, Powertrain::Ice);
    connect(&env.sim, &u0, &ev, ALL);
    connect(&env.sim, &u0, &ice, ALL);
    let before = env.sim.state().now().timestamp_millis();
    let (v, i) = {
        let mut world = env.sim.state().world();
        let v = world.vehicles.get_mut(&ev).unwrap();
        v.doors_open = [false, true, false, false];
        v.dtcs = vec![("P0420".into(), None)];
        let v = v.clone();
        (v, world.vehicles[&ice].clone())
    };
    let battery = v.battery.clone().unwrap();

    // {unit, value}
    let odometer = signal(&env, &ev, &u0, "odometer-traveleddistance").await;
    let body = unit_value(&odometer);
    assert_eq!(body.unit.as_deref(), Some("kilometers"));
    assert!((body.value - v.odometer_km).abs() < 0.01);
    assert_eq!(odometer["attributes"]["name"], "TraveledDistance");
    assert_eq!(odometer["attributes"]["group"], "Odometer");
    assert_eq!(
        odometer["meta"]["oemUpdatedAt"],
        v.data_age.timestamp_millis()
    );
    let retrieved = odometer["meta"]["retrievedAt"].as_i64().unwrap();
    assert!(retrieved >= before && retrieved < before + 60_000);

    let soc = unit_value(&signal(&env, &ev, &u0, "tractionbattery-stateofcharge").await);
    assert_eq!(soc.unit.as_deref(), Some("percent"));
    assert!((soc.value - battery.percent * 100.0).abs() < 0.01);
    let range = unit_value(&signal(&env, &ev, &u0, "tractionbattery-range").await);
    assert!((range.value - battery.percent * battery.full_range_km).abs() < 0.1);

    // A specific object.
    let location = signal(&env, &ev, &u0, "location-preciselocation").await;
    let location: types::SignalPreciseLocation = typed(&location["attributes"]["body"]);
    assert_eq!(
        (location.latitude, location.longitude),
        (v.latitude, v.longitude)
    );
    assert_eq!(location.heading, Some(v.heading));
    assert!(
        ["N", "NE", "E", "SE", "S", "SW", "W", "NW"]
            .contains(&location.direction.as_deref().unwrap())
    );

    // {value}
    let locked = signal(&env, &ev, &u0, "closure-islocked").await;
    assert_eq!(locked["attributes"]["body"], json!({"value": v.locked}));
    let vin = signal(&env, &ev, &u0, "vehicleidentification-vin").await;
    assert_eq!(vin["attributes"]["body"], json!({"value": v.vin}));

    // {values: [...]} grids.
    let doors = signal(&env, &ev, &u0, "closure-doors").await;
    let body = &doors["attributes"]["body"];
    assert_eq!(
        (body["rowCount"].clone(), body["columnCount"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(
        body["values"][1],
        json!({"row": 0, "column": 1, "isOpen": true, "isLocked": v.locked})
    );
    assert_eq!(body["values"][0]["isOpen"], false);
    let tires = signal(&env, &ev, &u0, "wheel-tires").await;
    for (i, t) in tires["attributes"]["body"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(t["tirePressure"], json!(v.tires_kpa[i]));
    }
    let dtcs = signal(&env, &ev, &u0, "diagnostics-dtclist").await;
    assert_eq!(
        dtcs["attributes"]["body"],
        json!({"values": [{"code": "P0420"}]})
    );
    let count = signal(&env, &ev, &u0, "diagnostics-dtccount").await;
    assert_eq!(
        count["attributes"]["body"],
        json!({"unit": "count", "value": 1})
    );
    let limits = signal(&env, &ev, &u0, "charge-chargelimits").await;
    assert_eq!(
        limits["attributes"]["body"]["activeLimit"],
        json!((battery.charge_limit * 100.0 * 100.0).round() / 100.0)
    );

    // The engine of an ICE.
    let fuel = i.fuel.clone().unwrap();
    let level = unit_value(&signal(&env, &ice, &u0, "internalcombustionengine-fuellevel").await);
    assert_eq!(level.unit.as_deref(), Some("percent"));
    assert!((level.value - fuel.percent * 100.0).abs() < 0.01);
    let amount =
        unit_value(&signal(&env, &ice, &u0, "internalcombustionengine-amountremaining").await);
    assert_eq!(amount.unit.as_deref(), Some("liters"));
    assert!((amount.value - fuel.percent * fuel.capacity_liters).abs() < 0.01);

    // A known signal the vehicle cannot provide: 200, status ERROR, no body.
    let absent = signal(&env, &ev, &u0, "internalcombustionengine-fuellevel").await;
    assert_eq!(absent["attributes"]["status"]["value"], "ERROR");
    assert_eq!(
        absent["attributes"]["status"]["error"]["type"],
        "COMPATIBILITY"
    );
    assert_eq!(
        absent["attributes"]["status"]["error"]["code"],
        "VEHICLE_NOT_CAPABLE"
    );
    assert!(absent["attributes"].get("body").is_none());
    assert!(absent["meta"].get("oemUpdatedAt").is_none());
    // An unknown code: 404.
    let unknown = get(
        &env,
        &format!("/v3/vehicles/{ev}/signals/tractionbattery-flux"),
        Some(&env.app),
        Some(&u0),
    )
    .await;
    assert_v3_error(&unknown, 404, "RESOURCE_NOT_FOUND", Some("PATH"));
}

#[tokio::test]
async fn missing_permissions_per_signal() {
    let env = start().await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, &["read_battery", "read_vehicle_info"]);
    // One signal: 403.
    let odometer = get(
        &env,
        &format!("/v3/vehicles/{ev}/signals/odometer-traveleddistance"),
        Some(&env.app),
        Some(&u0),
    )
    .await;
    assert_v3_error(&odometer, 403, "PERMISSION", None);
    signal(&env, &ev, &u0, "tractionbattery-stateofcharge").await;
    // The list: every signal the vehicle has, the unreadable ones as ERROR / PERMISSION.
    let list = all_signals(&env, &ev, &u0, 100).await;
    let mut readable = BTreeSet::new();
    for s in &list {
        let status = &s["attributes"]["status"];
        if status["value"] == "SUCCESS" {
            readable.insert(s["id"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(status["value"], "ERROR");
            assert_eq!(status["error"]["type"], "PERMISSION");
            assert_eq!(status["error"]["resolution"]["type"], "REAUTHENTICATE");
            assert!(s["attributes"].get("body").is_none());
        }
    }
    let expected: BTreeSet<String> = [
        "connectivitystatus-isasleep",
        "connectivitystatus-isonline",
        "tractionbattery-nominalcapacity",
        "tractionbattery-range",
        "tractionbattery-stateofcharge",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(readable, expected);
    assert!(list.iter().any(|s| s["id"] == "odometer-traveleddistance"));
}

async fn command(env: &Env, vehicle: &str, user: &str, path: &str, body: Option<&str>) -> Answer {
    post(
        env,
        &format!("/v3/vehicles/{vehicle}/commands/{path}"),
        Some(&env.app),
        Some(user),
        body,
    )
    .await
}

async fn assert_executed(env: &Env, vehicle: &str, user: &str, answer: &Answer, kind: &str) {
    assert_eq!(answer.status, 200, "{kind}: {:#}", answer.body);
    let execution: types::CommandExecutionResponse = typed(&answer.body);
    assert_eq!(execution.data.type_, "command-execution");
    assert_eq!(execution.data.attributes.command_type.as_str(), kind);
    assert_eq!(execution.data.attributes.status.value.as_str(), "SUCCESS");
    assert_eq!(answer.body["data"]["attributes"]["executionMode"], "sync");
    let meta = execution.data.meta.clone().expect("meta");
    assert!(meta.executed_at.is_some() && meta.completed_at.is_some());
    assert_eq!(meta.duration_in_seconds, Some(0.0));
    // The execution can be read back, from this vehicle only.
    let again = get(
        env,
        &format!("/v3/vehicles/{vehicle}/commands/{}", execution.data.id),
        Some(&env.app),
        Some(user),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, answer.body);
}

async fn value_of(env: &Env, vehicle: &str, user: &str, code: &str) -> Value {
    signal(env, vehicle, user, code).await["attributes"]["body"].clone()
}

#[tokio::test]
async fn nominal_capacity_candidates_are_the_v2_ones() {
    let env = start().await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, ALL);
    let set = |determined: bool| {
        let mut world = env.sim.state().world();
        let b = world
            .vehicles
            .get_mut(&ev)
            .unwrap()
            .battery
            .as_mut()
            .unwrap();
        b.capacity_kwh = 75.0;
        b.nominal_determined = determined;
    };
    set(true);
    assert_eq!(
        value_of(&env, &ev, &u0, "tractionbattery-nominalcapacity").await,
        json!({
            "source": "SMARTCAR",
            "capacity": 75.0,
            "availableCapacities": [{"capacity": 75.0, "description": "BEV:Standard"}],
            "unit": "kWh"
        })
    );
    set(false);
    assert_eq!(
        value_of(&env, &ev, &u0, "tractionbattery-nominalcapacity").await,
        json!({
            "source": null,
            "capacity": null,
            "availableCapacities": [
                {"capacity": 65.0, "description": "BEV:Standard Range"},
                {"capacity": 75.0, "description": "BEV:Long Range"},
                {"capacity": 85.0, "description": "BEV:Extended Range"}
            ],
            "unit": "kWh"
        })
    );
}

#[tokio::test]
async fn commands_change_the_vehicle_and_its_signals() {
    let env = start().await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, ALL);
    {
        let mut world = env.sim.state().world();
        let v = world.vehicles.get_mut(&ev).unwrap();
        v.locked = false;
        let b = v.battery.as_mut().unwrap();
        b.plugged_in = true;
        b.charging = false;
        b.percent = 0.4;
    }

    let lock = command(&env, &ev, &u0, "security/lock", None).await;
    assert_executed(&env, &ev, &u0, &lock, "security-lock").await;
    assert_eq!(
        value_of(&env, &ev, &u0, "closure-islocked").await,
        json!({"value": true})
    );
    let unlock = command(&env, &ev, &u0, "security/unlock", None).await;
    assert_executed(&env, &ev, &u0, &unlock, "security-unlock").await;
    assert_eq!(
        value_of(&env, &ev, &u0, "closure-islocked").await,
        json!({"value": false})
    );
    assert!(!env.sim.state().world().vehicles[&ev].locked);

    let start = command(&env, &ev, &u0, "charge/start", None).await;
    assert_executed(&env, &ev, &u0, &start, "charge-start").await;
    assert_eq!(
        value_of(&env, &ev, &u0, "charge-ischarging").await,
        json!({"value": true})
    );
    assert_eq!(
        value_of(&env, &ev, &u0, "charge-detailedchargingstatus").await,
        json!({"value": "CHARGING"})
    );
    let stop = command(&env, &ev, &u0, "charge/stop", None).await;
    assert_executed(&env, &ev, &u0, &stop, "charge-stop").await;
    assert_eq!(
        value_of(&env, &ev, &u0, "charge-ischarging").await,
        json!({"value": false})
    );

    let limit = command(
        &env,
        &ev,
        &u0,
        "charge/set-limit",
        Some(r#"{"data":{"attributes":{"percent":65}}}"#),
    )
    .await;
    assert_executed(&env, &ev, &u0, &limit, "charge-set-limit").await;
    assert_eq!(
        limit.body["data"]["attributes"]["parameters"],
        json!({"percent": 65.0})
    );
    assert_eq!(
        value_of(&env, &ev, &u0, "charge-chargelimits").await["activeLimit"],
        json!(65.0)
    );
    let stored = env.sim.state().world().vehicles[&ev]
        .battery
        .clone()
        .unwrap();
    assert!((stored.charge_limit - 0.65).abs() < 1e-9);

    let destination = command(
        &env,
        &ev,
        &u0,
        "navigation/set-destination",
        Some(r#"{"data":{"attributes":{"latitude":51.5007,"longitude":0.1246}}}"#),
    )
    .await;
    assert_executed(&env, &ev, &u0, &destination, "navigation-set-destination").await;
    assert_eq!(
        env.sim.state().world().vehicles[&ev].destination,
        Some((51.5007, 0.1246))
    );
    // A command makes the vehicle report: oemUpdatedAt is now.
    let odometer = signal(&env, &ev, &u0, "odometer-traveleddistance").await;
    let now = env.sim.state().now().timestamp_millis();
    assert!(now - odometer["meta"]["oemUpdatedAt"].as_i64().unwrap() < 60_000);

    // An execution id of another vehicle, or none: 404.
    let other = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &other, ALL);
    let id = lock.body["data"]["id"].as_str().unwrap();
    let wrong = get(
        &env,
        &format!("/v3/vehicles/{other}/commands/{id}"),
        Some(&env.app),
        Some(&u0),
    )
    .await;
    assert_v3_error(&wrong, 404, "RESOURCE_NOT_FOUND", Some("PATH"));
    let none = get(
        &env,
        &format!("/v3/vehicles/{ev}/commands/nope"),
        Some(&env.app),
        Some(&u0),
    )
    .await;
    assert_v3_error(&none, 404, "RESOURCE_NOT_FOUND", Some("PATH"));
}

#[tokio::test]
async fn commands_are_refused_like_v2() {
    let env = start().await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    let ice = add_vehicle(&env.sim, &u0, Powertrain::Ice);
    connect(&env.sim, &u0, &ev, ALL);
    connect(&env.sim, &u0, &ice, ALL);
    {
        let mut world = env.sim.state().world();
        let v = world.vehicles.get_mut(&ev).unwrap();
        v.in_motion = true;
        v.locked = false;
        v.battery.as_mut().unwrap().plugged_in = false;
    }

    // Moving: lock refused, nothing changes.
    let moving = command(&env, &ev, &u0, "security/lock", None).await;
    assert_v3_error(&moving, 409, "VEHICLE_STATE", Some("IN_MOTION"));
    assert!(!env.sim.state().world().vehicles[&ev].locked);
    // Unplugged: charging refused.
    for path in ["charge/start", "charge/stop"] {
        let unplugged = command(&env, &ev, &u0, path, None).await;
        assert_v3_error(
            &unplugged,
            409,
            "VEHICLE_STATE",
            Some("CHARGING_PLUG_NOT_CONNECTED"),
        );
    }
    // No traction battery: 501.
    let ice_charge = command(&env, &ice, &u0, "charge/start", None).await;
    assert_v3_error(
        &ice_charge,
        501,
        "COMPATIBILITY",
        Some("VEHICLE_NOT_CAPABLE"),
    );
    let ice_limit = command(
        &env,
        &ice,
        &u0,
        "charge/set-limit",
        Some(r#"{"data":{"attributes":{"percent":80}}}"#),
    )
    .await;
    assert_v3_error(
        &ice_limit,
        501,
        "COMPATIBILITY",
        Some("VEHICLE_NOT_CAPABLE"),
    );
    // The same vehicle rules as v2.0: a door open refuses lock, a full battery refuses start,
    // a limit already reached stops charging.
    {
        let mut world = env.sim.state().world();
        let v = world.vehicles.get_mut(&ev).unwrap();
        v.in_motion = false;
        v.doors_open[1] = true;
        let b = v.battery.as_mut().unwrap();
        b.plugged_in = true;
        b.charging = false;
        b.percent = 0.8;
        b.charge_limit = 0.8;
    }
    let door_open = command(&env, &ev, &u0, "security/lock", None).await;
    assert_v3_error(&door_open, 409, "VEHICLE_STATE", Some("DOOR_OPEN"));
    assert!(!env.sim.state().world().vehicles[&ev].locked);
    let full = command(&env, &ev, &u0, "charge/start", None).await;
    assert_v3_error(&full, 409, "VEHICLE_STATE", Some("FULLY_CHARGED"));
    assert_eq!(
        value_of(&env, &ev, &u0, "charge-detailedchargingstatus").await,
        json!({"value": "FULLY_CHARGED"})
    );
    {
        let mut world = env.sim.state().world();
        let b = world
            .vehicles
            .get_mut(&ev)
            .unwrap()
            .battery
            .as_mut()
            .unwrap();
        b.charging = true;
        b.charge_limit = 0.9;
    }
    let reached = command(
        &env,
        &ev,
        &u0,
        "charge/set-limit",
        Some(r#"{"data":{"attributes":{"percent":70}}}"#),
    )
    .await;
    assert_executed(&env, &ev, &u0, &reached, "charge-set-limit").await;
    assert_eq!(
        value_of(&env, &ev, &u0, "charge-ischarging").await,
        json!({"value": false})
    );

    // Bad bodies: 400.
    for body in [
        r#"{"data":{"attributes":{"percent":49}}}"#,
        r#"{"data":{"attributes":{"percent":100.5}}}"#,
        r#"{"data":{"attributes":{"percent":"80"}}}"#,
        r#"{"data":{}}"#,
        r#"{"data":"#,
        "",
    ] {
        let bad = command(&env, &ev, &u0, "charge/set-limit", Some(body)).await;
        assert_v3_error(&bad, 400, "VALIDATION", None);
    }
    let huge = format!(
        r#"{{"data":{{"attributes":{{"percent":80}}}},"pad":"{}"}}"#,
        "x".repeat(3 << 20)
    );
    let too_big = command(&env, &ev, &u0, "charge/set-limit", Some(&huge)).await;
    assert_v3_error(&too_big, 400, "VALIDATION", None);
    let far = command(
        &env,
        &ev,
        &u0,
        "navigation/set-destination",
        Some(r#"{"data":{"attributes":{"latitude":95,"longitude":0}}}"#),
    )
    .await;
    assert_v3_error(&far, 400, "VALIDATION", None);

    // Permissions, sc-user-id, tokens.
    let u1 = user(&env.sim, 1);
    let ev1 = add_vehicle(&env.sim, &u1, Powertrain::Bev);
    connect(&env.sim, &u1, &ev1, &["read_battery"]);
    let denied = command(&env, &ev1, &u1, "security/unlock", None).await;
    assert_v3_error(&denied, 403, "PERMISSION", None);
    let denied = command(
        &env,
        &ev1,
        &u1,
        "charge/set-limit",
        Some(r#"{"data":{"attributes":{"percent":80}}}"#),
    )
    .await;
    assert_v3_error(&denied, 403, "PERMISSION", None);
    let no_user = post(
        &env,
        &format!("/v3/vehicles/{ev}/commands/security/lock"),
        Some(&env.app),
        None,
        None,
    )
    .await;
    assert_v3_error(&no_user, 400, "VALIDATION", None);
    let no_token = post(
        &env,
        &format!("/v3/vehicles/{ev}/commands/security/lock"),
        None,
        Some(&u0),
        None,
    )
    .await;
    assert_v3_error(&no_token, 401, "AUTHENTICATION", None);
    let not_theirs = command(&env, &ev, &u1, "security/lock", None).await;
    assert_v3_error(&not_theirs, 403, "PERMISSION", None);
}

#[tokio::test]
async fn other_methods_get_a_v3_not_found() {
    let env = start().await;
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, ALL);
    for (method, path) in [
        (reqwest::Method::DELETE, format!("/v3/vehicles/{ev}")),
        (reqwest::Method::POST, format!("/v3/vehicles/{ev}/signals")),
        (
            reqwest::Method::GET,
            format!("/v3/vehicles/{ev}/commands/security/lock"),
        ),
        (reqwest::Method::PUT, "/v3/subscriptions".to_owned()),
        (reqwest::Method::PATCH, "/v3/connections/x".to_owned()),
        (reqwest::Method::GET, "/v3/users/x".to_owned()),
    ] {
        let answer = call(&env, method.clone(), &path, Some(&env.app), Some(&u0), None).await;
        assert_v3_error(&answer, 404, "RESOURCE_NOT_FOUND", Some("PATH"));
    }
}

/// `GET /v3/compatible-vehicles` with `query`: 200, exactly a `CompatibleVehicleList`.
async fn compatible(env: &Env, query: &str) -> (types::CompatibleVehicleList, Value) {
    let path = format!(
        "{}{query}",
        smartcar_api::ops::ListCompatibleVehicles::path()
    );
    let answer = get(env, &path, None, None).await;
    assert_eq!(answer.status, 200, "{path}: {:#}", answer.body);
    let list: types::CompatibleVehicleList = smartcar_sim::testing::assert_typed(&answer.body);
    (list, answer.body)
}

#[tokio::test]
async fn compatible_vehicles_by_region_make_and_powertrain() {
    let env = start().await;
    // No credential needed; one page with everything.
    let (all, body) = compatible(&env, "").await;
    let n = all.data.len();
    assert!(n > 20, "{n} entries");
    let meta = all.meta.clone().expect("meta");
    let n32 = i32::try_from(n).unwrap();
    assert_eq!(
        (meta.page, meta.page_size, meta.total_count),
        (Some(1), Some(n32), Some(n32))
    );
    assert_eq!(body["links"], json!({"self": "/compatible-vehicles"}));
    let ids: BTreeSet<&str> = all.data.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), n, "ids are unique");
    assert!(ids.contains("TESLA-Model 3-2018-2025-BEV-US"), "{ids:?}");
    assert!(ids.contains("TESLA-Model 3-2018-2025-BEV-EUROPE"));
    assert!(ids.contains("FORD-F-150-2018-2025-ICE-CA"));
    assert!(
        !ids.contains("FORD-F-150-2018-2025-ICE-EUROPE"),
        "no F-150 in Europe"
    );
    // Deterministic.
    assert_eq!(compatible(&env, "").await.1, body);
    // An Authorization header is ignored.
    let with_token = get(
        &env,
        &smartcar_api::ops::ListCompatibleVehicles::path(),
        Some("whatever"),
        None,
    )
    .await;
    assert_eq!(with_token.body, body);

    let model3 = all
        .data
        .iter()
        .find(|v| v.id == "TESLA-Model 3-2018-2025-BEV-US")
        .unwrap();
    assert_eq!(model3.type_, "vehicle-model-capability");
    let a = &model3.attributes;
    assert_eq!((a.make.as_str(), a.model.as_str()), ("Tesla", "Model 3"));
    assert_eq!(a.region.as_str(), "US");
    assert_eq!(a.powertrain_type.as_ref().map(|p| p.as_str()), Some("BEV"));
    assert_eq!((a.years.start, a.years.end), (2018, 2025));
    // As the docs' example writes a signal and a command.
    let capability = |name: &str| {
        let found = a.capabilities.iter().find(|c| c.capability == name);
        serde_json::to_value(found.unwrap_or_else(|| panic!("no {name}"))).unwrap()
    };
    assert_eq!(
        capability("tractionbattery-stateofcharge"),
        json!({"type": "signal", "name": "State Of Charge", "group": "TractionBattery", "code": "StateOfCharge", "capability": "tractionbattery-stateofcharge", "permission": "read_battery"})
    );
    assert_eq!(
        capability("charge-start"),
        json!({"type": "command", "name": "Start charge", "group": "", "code": "charge-start", "capability": "charge-start", "permission": ""})
    );
    let names: Vec<&str> = a
        .capabilities
        .iter()
        .map(|c| c.capability.as_str())
        .collect();
    for expected in [
        "charge-chargetimers",
        "charge-schedules-daily",
        "charge-schedules-weekly",
        "charge-schedules-workweek",
        "security-lock",
    ] {
        assert!(names.contains(&expected), "a Tesla offers {expected}");
    }
    assert!(
        !names
            .iter()
            .any(|c| c.starts_with("internalcombustionengine-"))
    );

    // The signals listed are exactly those a vehicle of that make and powertrain answers.
    let u0 = user(&env.sim, 0);
    let tesla = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    env.sim.edit_vehicle(&tesla, |v| v.make = "TESLA".into());
    connect(&env.sim, &u0, &tesla, ALL);
    let answered: BTreeSet<String> = codes(&all_signals(&env, &tesla, &u0, 100).await)
        .into_iter()
        .collect();
    let listed: BTreeSet<String> = a
        .capabilities
        .iter()
        .filter(|c| c.type_ == "signal")
        .map(|c| c.capability.clone())
        .collect();
    assert_eq!(listed, answered);

    // Filters.
    let (us, _) = compatible(&env, "?filter[region]=US").await;
    assert!(us.data.iter().all(|v| v.attributes.region.as_str() == "US"));
    assert_eq!(
        us.meta.as_ref().unwrap().total_count,
        Some(us.data.len() as i32)
    );
    let (europe, _) = compatible(&env, "?filter[region]=EUROPE").await;
    assert!(europe.data.len() < us.data.len());
    assert_eq!(
        us.data.len()
            + compatible(&env, "?filter[region]=CA").await.0.data.len()
            + europe.data.len(),
        n
    );
    for make in ["tesla", "TESLA", "Tesla"] {
        let (teslas, _) = compatible(&env, &format!("?filter[make]={make}")).await;
        assert_eq!(teslas.data.len(), 6, "2 models × 3 regions");
        assert!(teslas.data.iter().all(|v| v.attributes.make == "Tesla"));
    }
    let (none, _) = compatible(&env, "?filter[make]=DeLorean").await;
    assert!(none.data.is_empty());
    let (phev, _) = compatible(&env, "?filter[powertrainType]=PHEV&filter[region]=CA").await;
    assert!(!phev.data.is_empty());
    assert!(phev.data.iter().all(|v| {
        v.attributes.powertrain_type.as_ref().map(|p| p.as_str()) == Some("PHEV")
            && v.attributes.region.as_str() == "CA"
    }));
    let (bmw_ice, _) = compatible(&env, "?filter[make]=bmw&filter[powertrainType]=ICE").await;
    assert!(bmw_ice.data.is_empty());
    for bad in [
        "filter[region]=MARS",
        "filter[region]=us",
        "filter[powertrainType]=STEAM",
    ] {
        let answer = get(
            &env,
            &format!(
                "{}?{bad}",
                smartcar_api::ops::ListCompatibleVehicles::path()
            ),
            None,
            None,
        )
        .await;
        assert_v3_error(&answer, 400, "VALIDATION", None);
    }
}

#[tokio::test]
async fn long_running_commands_are_accepted_then_complete() {
    let sim = smartcar_sim::Simulator::builder()
        .config(smartcar_sim::Config {
            command_duration: Duration::from_secs(60),
            ..smartcar_sim::Config::default()
        })
        .start()
        .await
        .unwrap();
    let env = Env {
        base: sim.base_url(),
        app: app_token(&sim, Duration::from_secs(3600)),
        http: reqwest::Client::new(),
        sim,
    };
    let u0 = user(&env.sim, 0);
    let ev = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    connect(&env.sim, &u0, &ev, ALL);
    let accepted = command(&env, &ev, &u0, "security/lock", None).await;
    assert_eq!(accepted.status, 202, "{:#}", accepted.body);
    let execution: types::CommandExecutionResponse = typed(&accepted.body);
    assert_eq!(execution.data.attributes.status.value.as_str(), "PENDING");
    assert_eq!(
        accepted.body["data"]["attributes"]["executionMode"],
        "async"
    );
    assert!(accepted.body["data"]["meta"].get("completedAt").is_none());
    let path = format!("/v3/vehicles/{ev}/commands/{}", execution.data.id);
    let running = get(&env, &path, Some(&env.app), Some(&u0)).await;
    assert_eq!(
        running.body["data"]["attributes"]["status"]["value"],
        "PENDING"
    );
    env.sim.advance(Duration::from_secs(59));
    let still = get(&env, &path, Some(&env.app), Some(&u0)).await;
    assert_eq!(
        still.body["data"]["attributes"]["status"]["value"],
        "PENDING"
    );
    env.sim.advance(Duration::from_secs(1));
    let done = get(&env, &path, Some(&env.app), Some(&u0)).await;
    let done: types::CommandExecutionResponse = typed(&done.body);
    assert_eq!(done.data.attributes.status.value.as_str(), "SUCCESS");
    let meta = done.data.meta.unwrap();
    assert_eq!(meta.duration_in_seconds, Some(60.0));
    assert_eq!(
        meta.completed_at.unwrap() - meta.executed_at.unwrap(),
        chrono::Duration::seconds(60)
    );
}

/// Smartcar's v3 test-data vehicle, read with the static token `test-data-token` and no
/// `sc-user-id`, as python-sdk's e2e (`v3_vehicle`: `get_vehicle`, `get_signals`,
/// `get_signal("odometer-traveleddistance")`) and node-sdk's e2e (`getVehicle` answers the id,
/// `data[0]` and the odometer signal are `SUCCESS`) read it live.
#[tokio::test]
async fn the_test_data_vehicle_answers_its_static_token() {
    const ID: &str = "tst2e255-d3c8-4f90-9fec-e6e68b98e9cb";
    const TOKEN: &str = "test-data-token";
    let env = start().await;

    let r = get(&env, &vehicle_path(ID), Some(TOKEN), None).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert!(r.request_id.is_some());
    assert_eq!(r.body["id"], ID);
    let body: types::VehicleResource = typed(&r.body);
    assert_eq!(body.attributes.model, "Model 3");
    assert_eq!(r.body["attributes"]["powertrainType"], "BEV");
    assert_eq!(r.body["attributes"]["mode"], "test");

    let r = get(
        &env,
        &format!("{}/signals", vehicle_path(ID)),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let data = r.body["data"].as_array().cloned().unwrap_or_default();
    assert!(!data.is_empty());
    assert!(
        data.iter()
            .all(|s| s["attributes"]["status"]["value"] == "SUCCESS"),
        "every permission: {:#}",
        r.body
    );

    let r = get(
        &env,
        &format!("{}/signals/odometer-traveleddistance", vehicle_path(ID)),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    for key in ["id", "type", "attributes", "meta", "links"] {
        assert!(r.body.get(key).is_some(), "{key}: {:#}", r.body);
    }
    assert_eq!(r.body["attributes"]["status"]["value"], "SUCCESS");
    assert_eq!(
        r.body["attributes"]["body"],
        json!({"unit": "kilometers", "value": 115071.5})
    );
    assert_eq!(
        r.body["links"]["self"],
        format!("/vehicles/{ID}/signals/odometer-traveleddistance")
    );

    // Another token, or none: 401. The application token reaches it through no connection.
    assert_v3_error(
        &get(&env, &vehicle_path(ID), Some("test-data-tokeN"), None).await,
        401,
        "AUTHENTICATION",
        None,
    );
    assert_v3_error(
        &get(&env, &vehicle_path(ID), Some(&env.app), None).await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );

    // No user owns it, no connection lists it, `Simulator::vehicles` leaves it out, and the
    // seeded fleet is the one the seed alone gives.
    let world = env.sim.state().world().clone();
    assert!(world.vehicles.contains_key(ID));
    assert!(
        world
            .users
            .iter()
            .all(|u| !u.vehicle_ids.iter().any(|v| v == ID))
    );
    assert!(world.connections.iter().all(|c| c.vehicle_id != ID));
    let fleet = smartcar_sim::fleet::generate(&smartcar_sim::fleet::FleetOptions {
        seed: 1,
        users: 3,
        vehicles: 6,
        now: env.sim.now(),
    });
    let listed: Vec<_> = env.sim.vehicles().into_iter().map(|v| v.id).collect();
    let seeded: Vec<_> = fleet.vehicles.keys().cloned().collect();
    assert_eq!(listed, seeded);
    assert_eq!(env.sim.users().len(), 3);
}
