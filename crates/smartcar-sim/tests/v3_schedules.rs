//! Charge schedules of the Vehicle API v3 over real HTTP: creation of each kind, the make rules
//! (Tesla: daily, weekly, workweek; Volvo: daily; others: 501), request checks, the LOCATION
//! timers of the `charge-chargetimers` signal, and deletion.

use serde_json::{Value, json};
use smartcar_api::{ops, types};
use smartcar_sim::model::Powertrain;
use smartcar_sim::testing::assert_typed;
use smartcar_sim::testing::v3::*;

const DAILY: &str = r#"{"data":{"attributes":{"location":{"latitude":37.7749,"longitude":-122.4194},"startTime":"08:00","stopTime":"10:00"}}}"#;
const WEEKLY: &str = r#"{"data":{"attributes":{"location":{"latitude":48.1,"longitude":11.5},"days":{"wednesday":{"startTime":"01:30","stopTime":"05:00"},"monday":{"startTime":"22:00","stopTime":"06:00"}}}}}"#;
const WORKWEEK: &str = r#"{"data":{"attributes":{"location":{"latitude":-33.9,"longitude":151.2},"weekdays":{"startTime":"22:00","stopTime":"06:00"},"weekends":{"startTime":"00:00","stopTime":"08:00"}}}}"#;

/// A plug-in vehicle of `make` connected by user 0 with `perms`; returns (user, vehicle).
fn car(env: &Env, make: &str, powertrain: Powertrain, perms: &[&str]) -> (String, String) {
    let u0 = user(&env.sim, 0);
    let id = add_vehicle(&env.sim, &u0, powertrain);
    env.sim.edit_vehicle(&id, |v| v.make = make.to_owned());
    connect(&env.sim, &u0, &id, perms);
    (u0, id)
}

fn create_path(kind: &str, vehicle: &str) -> String {
    match kind {
        "daily" => ops::SetDailyChargeScheduleV3::path(vehicle),
        "weekly" => ops::SetWeeklyChargeScheduleV3::path(vehicle),
        "workweek" => ops::SetWorkweekChargeScheduleV3::path(vehicle),
        other => panic!("no schedule kind {other}"),
    }
}

async fn create(env: &Env, vehicle: &str, user: &str, kind: &str, body: &str) -> Answer {
    post(
        env,
        &create_path(kind, vehicle),
        Some(&env.app),
        Some(user),
        Some(body),
    )
    .await
}

async fn remove(env: &Env, vehicle: &str, user: &str, schedule: &str) -> Answer {
    call(
        env,
        reqwest::Method::DELETE,
        &ops::DeleteChargeScheduleV3::path(vehicle, schedule),
        Some(&env.app),
        Some(user),
        None,
    )
    .await
}

/// Checks a successful execution record and returns it.
fn executed(
    answer: &Answer,
    vehicle: &str,
    action: &str,
    kind: &str,
) -> types::ChargeScheduleExecution {
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert!(answer.request_id.is_some());
    let response: types::ChargeScheduleExecutionResponse = assert_typed(&answer.body);
    let data = response.data;
    assert!(data.id.starts_with("exec_"), "{}", data.id);
    assert_eq!(data.type_, "charge-schedule-execution");
    let a = &data.attributes;
    assert_eq!(a.action.as_str(), action);
    assert_eq!(a.schedule_type.as_ref().map(|t| t.as_str()), Some(kind));
    assert_eq!(a.status.value.as_str(), "SUCCESS");
    assert_eq!(answer.body["data"]["attributes"]["executionMode"], "sync");
    let schedule = a.schedule_id.clone().expect("scheduleId");
    assert!(schedule.starts_with("sched_"), "{schedule}");
    assert_eq!(
        data.links.as_ref().and_then(|l| l.schedule.clone()),
        Some(format!("/vehicles/{vehicle}/charge-schedules/{schedule}"))
    );
    let meta = data.meta.clone().expect("meta");
    assert!(meta.executed_at.is_some());
    assert_eq!(meta.executed_at, meta.completed_at);
    assert_eq!(meta.duration_in_seconds, Some(0.0));
    data
}

async fn timers(env: &Env, vehicle: &str, user: &str) -> Value {
    let answer = get(
        env,
        &ops::GetSignal::path(vehicle, "charge-chargetimers"),
        Some(&env.app),
        Some(user),
    )
    .await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let _: types::SignalResource = typed(&answer.body);
    answer.body
}

fn timer_values(signal: &Value) -> Vec<Value> {
    assert_eq!(
        signal["attributes"]["status"]["value"], "SUCCESS",
        "{signal:#}"
    );
    let body = &signal["attributes"]["body"];
    let _: types::ChargeTimersBody = assert_typed(body);
    body["values"].as_array().expect("values").clone()
}

#[tokio::test]
async fn a_tesla_takes_every_kind_and_the_timers_show_them() {
    let env = start().await;
    let (u0, tesla) = car(&env, "TESLA", Powertrain::Bev, ALL);
    // No schedule yet: the signal is there, with no timer.
    assert!(timer_values(&timers(&env, &tesla, &u0).await).is_empty());
    let before = env.sim.now();
    env.sim.advance(std::time::Duration::from_secs(5));

    let daily = create(&env, &tesla, &u0, "daily", DAILY).await;
    let daily = executed(&daily, &tesla, "create", "daily");
    assert_eq!(
        Value::Object(daily.attributes.parameters.clone()),
        json!({"location": {"latitude": 37.7749, "longitude": -122.4194}, "startTime": "08:00", "stopTime": "10:00"})
    );
    let reported = env.sim.edit_vehicle(&tesla, |v| v.data_age).unwrap();
    assert!(reported > before, "the vehicle reported");
    let weekly = create(&env, &tesla, &u0, "weekly", WEEKLY).await;
    let weekly = executed(&weekly, &tesla, "create", "weekly");
    assert_eq!(
        Value::Object(weekly.attributes.parameters.clone())["days"],
        json!({"monday": {"startTime": "22:00", "stopTime": "06:00"}, "wednesday": {"startTime": "01:30", "stopTime": "05:00"}})
    );
    let workweek = create(&env, &tesla, &u0, "workweek", WORKWEEK).await;
    let workweek = executed(&workweek, &tesla, "create", "workweek");
    let ids: Vec<String> = [&daily, &weekly, &workweek]
        .iter()
        .map(|e| e.attributes.schedule_id.clone().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);

    // The timers: one LOCATION timer per schedule, oldest first.
    let values = timer_values(&timers(&env, &tesla, &u0).await);
    assert_eq!(values.len(), 3);
    let week = [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ];
    assert_eq!(
        values[0],
        json!({
            "type": "LOCATION",
            "condition": {"latitude": 37.7749, "longitude": -122.4194},
            "schedules": [{"start": "08:00:00", "end": "10:00:00", "days": week}],
            "departureTimers": [],
            "isOEMOptimizationEnabled": false,
            "scheduleType": "daily",
            "scheduleId": ids[0],
        })
    );
    assert_eq!(values[1]["scheduleType"], "weekly");
    assert_eq!(values[1]["scheduleId"], ids[1].as_str());
    assert_eq!(
        values[1]["schedules"],
        json!([
            {"start": "22:00:00", "end": "06:00:00", "days": ["MONDAY"]},
            {"start": "01:30:00", "end": "05:00:00", "days": ["WEDNESDAY"]},
        ])
    );
    assert_eq!(values[2]["scheduleType"], "workweek");
    assert_eq!(
        values[2]["schedules"],
        json!([
            {"start": "22:00:00", "end": "06:00:00", "days": &week[..5]},
            {"start": "00:00:00", "end": "08:00:00", "days": &week[5..]},
        ])
    );
    assert_eq!(
        values[2]["condition"],
        json!({"latitude": -33.9, "longitude": 151.2})
    );
    // The signal list carries it too.
    let list = get(
        &env,
        &format!("{}?pageSize=100", ops::ListSignals::path(&tesla)),
        Some(&env.app),
        Some(&u0),
    )
    .await;
    let listed = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "charge-chargetimers")
        .expect("charge-chargetimers listed")
        .clone();
    assert_eq!(listed["attributes"]["body"]["values"], json!(values));

    // Delete the weekly one: the record, and gone from the timers.
    let deleted = remove(&env, &tesla, &u0, &ids[1]).await;
    let deleted = executed(&deleted, &tesla, "delete", "weekly");
    assert_eq!(
        deleted.attributes.schedule_id.as_deref(),
        Some(ids[1].as_str())
    );
    assert!(deleted.attributes.parameters.is_empty());
    assert_ne!(deleted.id, weekly.id);
    let left: Vec<Value> = timer_values(&timers(&env, &tesla, &u0).await)
        .iter()
        .map(|t| t["scheduleId"].clone())
        .collect();
    assert_eq!(left, [json!(ids[0]), json!(ids[2])]);
    assert_eq!(
        env.sim
            .edit_vehicle(&tesla, |v| v.charge_schedules.len())
            .unwrap(),
        2
    );

    // Deleting it again, an unknown id, or an id of another vehicle: 404.
    assert_v3_error(
        &remove(&env, &tesla, &u0, &ids[1]).await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );
    assert_v3_error(
        &remove(&env, &tesla, &u0, "sched_nope").await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );
    let (_, other) = car(&env, "TESLA", Powertrain::Bev, ALL);
    assert_v3_error(
        &remove(&env, &other, &u0, &ids[0]).await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );
    // Schedule executions are not command executions.
    let as_command = get(
        &env,
        &ops::GetCommandExecution::path(&tesla, &daily.id),
        Some(&env.app),
        Some(&u0),
    )
    .await;
    assert_v3_error(&as_command, 404, "RESOURCE_NOT_FOUND", Some("PATH"));
}

#[tokio::test]
async fn schedules_follow_the_make() {
    let env = start().await;
    let (u0, volvo) = car(&env, "VOLVO", Powertrain::Bev, ALL);
    let created = create(&env, &volvo, &u0, "daily", DAILY).await;
    executed(&created, &volvo, "create", "daily");
    assert_eq!(timer_values(&timers(&env, &volvo, &u0).await).len(), 1);
    for (kind, body) in [("weekly", WEEKLY), ("workweek", WORKWEEK)] {
        assert_v3_error(
            &create(&env, &volvo, &u0, kind, body).await,
            501,
            "COMPATIBILITY",
            Some("VEHICLE_NOT_CAPABLE"),
        );
    }
    // Another make takes none, and has no charge timers.
    let (_, ford) = car(&env, "FORD", Powertrain::Bev, ALL);
    for (kind, body) in [("daily", DAILY), ("weekly", WEEKLY), ("workweek", WORKWEEK)] {
        assert_v3_error(
            &create(&env, &ford, &u0, kind, body).await,
            501,
            "COMPATIBILITY",
            Some("VEHICLE_NOT_CAPABLE"),
        );
    }
    let signal = timers(&env, &ford, &u0).await;
    assert_eq!(signal["attributes"]["status"]["value"], "ERROR");
    assert_eq!(
        signal["attributes"]["status"]["error"]["code"],
        "VEHICLE_NOT_CAPABLE"
    );
    // Neither does a Volvo without a traction battery.
    let (_, ice) = car(&env, "VOLVO", Powertrain::Ice, ALL);
    assert_v3_error(
        &create(&env, &ice, &u0, "daily", DAILY).await,
        501,
        "COMPATIBILITY",
        Some("VEHICLE_NOT_CAPABLE"),
    );
    assert_eq!(
        timers(&env, &ice, &u0).await["attributes"]["status"]["value"],
        "ERROR"
    );
    assert!(
        env.sim
            .edit_vehicle(&ford, |v| v.charge_schedules.is_empty())
            .unwrap()
    );
}

#[tokio::test]
async fn schedule_requests_are_checked() {
    let env = start().await;
    let (u0, tesla) = car(&env, "TESLA", Powertrain::Bev, ALL);

    // Bodies: 400 VALIDATION, nothing stored.
    let location = r#""location":{"latitude":1,"longitude":2}"#;
    let bad_daily = [
        r#"{"data":{"attributes":{"location":{"latitude":90.5,"longitude":0},"startTime":"08:00","stopTime":"10:00"}}}"#.to_owned(),
        r#"{"data":{"attributes":{"location":{"latitude":0,"longitude":180.1},"startTime":"08:00","stopTime":"10:00"}}}"#.to_owned(),
        format!(r#"{{"data":{{"attributes":{{{location},"startTime":"24:00","stopTime":"10:00"}}}}}}"#),
        format!(r#"{{"data":{{"attributes":{{{location},"startTime":"8:00","stopTime":"10:00"}}}}}}"#),
        format!(r#"{{"data":{{"attributes":{{{location},"startTime":"08:00","stopTime":"10:60"}}}}}}"#),
        format!(r#"{{"data":{{"attributes":{{{location},"startTime":"08:00","stopTime":"08:00"}}}}}}"#),
        format!(r#"{{"data":{{"attributes":{{{location},"startTime":"08:00"}}}}}}"#),
        r#"{"data":{"attributes":{"startTime":"08:00","stopTime":"10:00"}}}"#.to_owned(),
        r#"{"data":"#.to_owned(),
        String::new(),
    ];
    for body in &bad_daily {
        let answer = create(&env, &tesla, &u0, "daily", body).await;
        assert_v3_error(&answer, 400, "VALIDATION", None);
    }
    let bad_weekly = [
        format!(r#"{{"data":{{"attributes":{{{location},"days":{{}}}}}}}}"#),
        format!(r#"{{"data":{{"attributes":{{{location},"days":{{"monday":null}}}}}}}}"#),
        format!(
            r#"{{"data":{{"attributes":{{{location},"days":{{"funday":{{"startTime":"01:00","stopTime":"02:00"}}}}}}}}}}"#
        ),
        format!(
            r#"{{"data":{{"attributes":{{{location},"days":{{"monday":{{"startTime":"01:00","stopTime":"02:00"}},"Tuesday":{{"startTime":"01:00","stopTime":"02:00"}}}}}}}}}}"#
        ),
        format!(
            r#"{{"data":{{"attributes":{{{location},"days":{{"monday":{{"startTime":"01:00"}}}}}}}}}}"#
        ),
        format!(r#"{{"data":{{"attributes":{{{location}}}}}}}"#),
    ];
    for body in &bad_weekly {
        let answer = create(&env, &tesla, &u0, "weekly", body).await;
        assert_v3_error(&answer, 400, "VALIDATION", None);
    }
    let bad_workweek = format!(
        r#"{{"data":{{"attributes":{{{location},"weekdays":{{"startTime":"22:00","stopTime":"06:00"}},"weekends":{{"startTime":"00:00","stopTime":"99:00"}}}}}}}}"#
    );
    assert_v3_error(
        &create(&env, &tesla, &u0, "workweek", &bad_workweek).await,
        400,
        "VALIDATION",
        None,
    );
    assert!(timer_values(&timers(&env, &tesla, &u0).await).is_empty());

    // sc-user-id required, token required, the vehicle must exist and be the user's.
    let no_user = post(
        &env,
        &create_path("daily", &tesla),
        Some(&env.app),
        None,
        Some(DAILY),
    )
    .await;
    assert_v3_error(&no_user, 400, "VALIDATION", None);
    let no_token = post(
        &env,
        &create_path("daily", &tesla),
        None,
        Some(&u0),
        Some(DAILY),
    )
    .await;
    assert_v3_error(&no_token, 401, "AUTHENTICATION", None);
    assert_v3_error(
        &create(&env, "no-such-vehicle", &u0, "daily", DAILY).await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );
    let u1 = user(&env.sim, 1);
    assert_v3_error(
        &create(&env, &tesla, &u1, "daily", DAILY).await,
        403,
        "PERMISSION",
        None,
    );
    let no_user_delete = call(
        &env,
        reqwest::Method::DELETE,
        &ops::DeleteChargeScheduleV3::path(&tesla, "sched_x"),
        Some(&env.app),
        None,
        None,
    )
    .await;
    assert_v3_error(&no_user_delete, 400, "VALIDATION", None);

    // Without control_charge: 403, for creation and deletion.
    let (_, reader) = car(&env, "TESLA", Powertrain::Bev, &["read_charge"]);
    for (kind, body) in [("daily", DAILY), ("weekly", WEEKLY), ("workweek", WORKWEEK)] {
        assert_v3_error(
            &create(&env, &reader, &u0, kind, body).await,
            403,
            "PERMISSION",
            None,
        );
    }
    assert_v3_error(
        &remove(&env, &reader, &u0, "sched_x").await,
        403,
        "PERMISSION",
        None,
    );
    // The reader still sees the (empty) timers.
    assert!(timer_values(&timers(&env, &reader, &u0).await).is_empty());

    // A vehicle keeps at most 32 schedules.
    for _ in 0..32 {
        assert_eq!(create(&env, &tesla, &u0, "daily", DAILY).await.status, 200);
    }
    assert_v3_error(
        &create(&env, &tesla, &u0, "daily", DAILY).await,
        400,
        "VALIDATION",
        None,
    );
    let first = timer_values(&timers(&env, &tesla, &u0).await)[0]["scheduleId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(remove(&env, &tesla, &u0, &first).await.status, 200);
    assert_eq!(create(&env, &tesla, &u0, "daily", DAILY).await.status, 200);
}
