//! Commands: state changes visible in the next read, and every refusal leaves the state alone.

use serde_json::json;
use smartcar_api::types;
use smartcar_sim::model::Powertrain;

use crate::support::*;

struct Setup {
    env: Env,
    bev: String,
    ice: String,
    token: String,
}

async fn setup() -> Setup {
    let env = Env::start().await;
    let bev = env.add_vehicle(Powertrain::Bev, 21);
    let ice = env.add_vehicle(Powertrain::Ice, 22);
    let user = env.user(0);
    let token = env.token(&user, &[&bev, &ice], &ALL_SCOPES);
    Setup {
        env,
        bev,
        ice,
        token,
    }
}

fn sent() -> serde_json::Value {
    json!({"status": "success", "message": "Successfully sent request to vehicle"})
}

#[tokio::test]
async fn lock_and_unlock() {
    let s = setup().await;
    let p = format!("/v2.0/vehicles/{}/security", s.bev);
    s.env.edit(&s.bev, |v| v.locked = false);
    let r = s.env.post(&s.token, &p, json!({"action": "LOCK"})).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(r.body, sent());
    assert_typed::<types::ActionResponse>(&r.body);
    assert_eq!(s.env.get(&s.token, &p).await.body["isLocked"], true);
    let r = s.env.post(&s.token, &p, json!({"action": "UNLOCK"})).await;
    assert_eq!(r.body, sent());
    assert_eq!(s.env.get(&s.token, &p).await.body["isLocked"], false);
    // The command refreshed the data age.
    let now = s.env.sim.state().now();
    let age = s.env.vehicle(&s.bev).data_age;
    assert!((now - age).num_seconds().abs() < 5);

    // Moving: 409 IN_MOTION, still unlocked.
    s.env.edit(&s.bev, |v| v.in_motion = true);
    let r = s.env.post(&s.token, &p, json!({"action": "LOCK"})).await;
    r.assert_error(409, "VEHICLE_STATE", Some("IN_MOTION"));
    assert!(!s.env.vehicle(&s.bev).locked);
    s.env.edit(&s.bev, |v| {
        v.in_motion = false;
        v.doors_open[2] = true;
    });
    let r = s.env.post(&s.token, &p, json!({"action": "LOCK"})).await;
    r.assert_error(409, "VEHICLE_STATE", Some("DOOR_OPEN"));
    assert!(!s.env.vehicle(&s.bev).locked);

    for (body, message) in [
        (
            json!({"action": "lock"}),
            "\"action\" must be one of [LOCK, UNLOCK]",
        ),
        (
            json!({"action": 1}),
            "\"action\" must be one of [LOCK, UNLOCK]",
        ),
        (json!({}), "\"action\" is required"),
        (json!({"action": null}), "\"action\" is required"),
        (json!(["LOCK"]), "\"value\" must be of type object"),
    ] {
        s.env
            .post(&s.token, &p, body)
            .await
            .assert_validation(message);
    }
    for raw in ["{\"action\": \"LOCK\"", "not json", "\"LOCK\""] {
        let r = s.env.post_raw(&s.token, &p, raw).await;
        r.assert_error(400, "VALIDATION", None);
    }
    assert!(!s.env.vehicle(&s.bev).locked);

    // Needs control_security (read_security alone is not enough).
    let user = s.env.user(0);
    let reader = s.env.token(&user, &[&s.bev], &["read_security"]);
    s.env
        .post(&reader, &p, json!({"action": "LOCK"}))
        .await
        .assert_error(403, "PERMISSION", None);
    s.env
        .post("bad", &p, json!({"action": "LOCK"}))
        .await
        .assert_error(401, "AUTHENTICATION", None);
}

#[tokio::test]
async fn start_and_stop_charging() {
    let s = setup().await;
    let p = format!("/v2.0/vehicles/{}/charge", s.bev);
    s.env.edit(&s.bev, |v| {
        let b = v.battery.as_mut().expect("battery");
        b.plugged_in = true;
        b.charging = false;
        b.percent = 0.4;
        b.charge_limit = 0.8;
    });
    let r = s.env.post(&s.token, &p, json!({"action": "START"})).await;
    assert_eq!(r.body, sent());
    assert_eq!(
        s.env.get(&s.token, &p).await.body,
        json!({"isPluggedIn": true, "state": "CHARGING"})
    );
    // Idempotent.
    let r = s.env.post(&s.token, &p, json!({"action": "START"})).await;
    assert_eq!(r.status, 200);
    let r = s.env.post(&s.token, &p, json!({"action": "STOP"})).await;
    assert_eq!(r.body, sent());
    assert_eq!(
        s.env.get(&s.token, &p).await.body,
        json!({"isPluggedIn": true, "state": "NOT_CHARGING"})
    );
    let r = s.env.post(&s.token, &p, json!({"action": "STOP"})).await;
    assert_eq!(r.status, 200);

    // Full: START refused.
    s.env.edit(&s.bev, |v| {
        v.battery.as_mut().expect("battery").percent = 0.8
    });
    s.env
        .post(&s.token, &p, json!({"action": "START"}))
        .await
        .assert_error(409, "VEHICLE_STATE", Some("FULLY_CHARGED"));
    // Unplugged: both refused.
    s.env.edit(&s.bev, |v| {
        let b = v.battery.as_mut().expect("battery");
        b.plugged_in = false;
        b.percent = 0.4;
    });
    for action in ["START", "STOP"] {
        s.env
            .post(&s.token, &p, json!({ "action": action }))
            .await
            .assert_error(409, "VEHICLE_STATE", Some("CHARGING_PLUG_NOT_CONNECTED"));
    }
    assert!(!s.env.vehicle(&s.bev).battery.expect("battery").charging);
    // A combustion car cannot charge; validation comes first.
    let ice = format!("/v2.0/vehicles/{}/charge", s.ice);
    s.env
        .post(&s.token, &ice, json!({"action": "START"}))
        .await
        .assert_error(501, "COMPATIBILITY", Some("VEHICLE_NOT_CAPABLE"));
    s.env
        .post(&s.token, &ice, json!({"action": "GO"}))
        .await
        .assert_validation("\"action\" must be one of [START, STOP]");
}

#[tokio::test]
async fn charge_limit() {
    let s = setup().await;
    let p = format!("/v2.0/vehicles/{}/charge/limit", s.bev);
    s.env.edit(&s.bev, |v| {
        let b = v.battery.as_mut().expect("battery");
        b.charge_limit = 0.9;
        b.percent = 0.6;
        b.plugged_in = true;
        b.charging = true;
    });
    let r = s.env.post(&s.token, &p, json!({"limit": 0.7})).await;
    assert_eq!(r.body, sent());
    assert_eq!(s.env.get(&s.token, &p).await.body, json!({"limit": 0.7}));
    // The Node SDK sends a string.
    let r = s.env.post(&s.token, &p, json!({"limit": "0.65"})).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(s.env.get(&s.token, &p).await.body, json!({"limit": 0.65}));
    // Bounds are inclusive; a limit below the charge stops charging.
    for limit in [1.0, 0.5] {
        let r = s.env.post(&s.token, &p, json!({ "limit": limit })).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            s.env.get(&s.token, &p).await.body,
            json!({ "limit": limit })
        );
    }
    let charge = format!("/v2.0/vehicles/{}/charge", s.bev);
    assert_eq!(
        s.env.get(&s.token, &charge).await.body["state"],
        "FULLY_CHARGED"
    );

    for (body, message) in [
        (
            json!({"limit": 0.49}),
            "\"limit\" must be greater than or equal to 0.5",
        ),
        (
            json!({"limit": 1.01}),
            "\"limit\" must be less than or equal to 1",
        ),
        (
            json!({"limit": 80}),
            "\"limit\" must be less than or equal to 1",
        ),
        (json!({"limit": "high"}), "\"limit\" must be a number"),
        (json!({"limit": true}), "\"limit\" must be a number"),
        (json!({}), "\"limit\" is required"),
    ] {
        let r = s.env.post(&s.token, &p, body).await;
        r.assert_validation(message);
        assert_eq!(r.body["detail"][0]["field"], json!(["limit"]));
    }
    assert_eq!(s.env.get(&s.token, &p).await.body, json!({"limit": 0.5}));
    s.env
        .post(
            &s.token,
            &format!("/v2.0/vehicles/{}/charge/limit", s.ice),
            json!({"limit": 0.8}),
        )
        .await
        .assert_error(501, "COMPATIBILITY", Some("VEHICLE_NOT_CAPABLE"));
}

#[tokio::test]
async fn navigation_destination() {
    let s = setup().await;
    let p = format!("/v2.0/vehicles/{}/navigation/destination", s.ice);
    let r = s
        .env
        .post(
            &s.token,
            &p,
            json!({"latitude": 51.5007, "longitude": 0.1246}),
        )
        .await;
    assert_eq!(r.body, sent());
    assert_eq!(s.env.vehicle(&s.ice).destination, Some((51.5007, 0.1246)));
    for (body, message) in [
        (
            json!({"latitude": 91, "longitude": 0}),
            "\"latitude\" must be less than or equal to 90",
        ),
        (
            json!({"latitude": 0, "longitude": -180.5}),
            "\"longitude\" must be greater than or equal to -180",
        ),
        (json!({"longitude": 0}), "\"latitude\" is required"),
        (
            json!({"latitude": "north", "longitude": 0}),
            "\"latitude\" must be a number",
        ),
    ] {
        s.env
            .post(&s.token, &p, body)
            .await
            .assert_validation(message);
    }
    assert_eq!(s.env.vehicle(&s.ice).destination, Some((51.5007, 0.1246)));
    let user = s.env.user(0);
    let t = s.env.token(&user, &[&s.ice], &["control_security"]);
    s.env
        .post(&t, &p, json!({"latitude": 1, "longitude": 1}))
        .await
        .assert_error(403, "PERMISSION", None);
}

#[tokio::test]
async fn disconnect_revokes_access() {
    let s = setup().await;
    let user = s.env.user(0);
    // A token without any permission may disconnect.
    let bare = s.env.token(&user, &[&s.bev], &[]);
    let r = s
        .env
        .delete(&bare, &format!("/v2.0/vehicles/{}/application", s.bev))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"status": "success"}));
    assert_typed::<types::StatusResponse>(&r.body);
    assert!(
        s.env
            .sim
            .state()
            .world()
            .connection(&user, &s.bev)
            .is_none(),
        "connection removed"
    );
    // Every token of the user lost the vehicle; the other vehicle still answers.
    s.env
        .get(&s.token, &format!("/v2.0/vehicles/{}/odometer", s.bev))
        .await
        .assert_error(403, "PERMISSION", None);
    let r = s
        .env
        .get(&s.token, &format!("/v2.0/vehicles/{}/odometer", s.ice))
        .await;
    assert_eq!(r.status, 200);
    let r = s.env.get(&s.token, "/v2.0/vehicles").await;
    assert_eq!(r.body["vehicles"], json!([s.ice]));
    // Again: the vehicle is no longer reachable.
    s.env
        .delete(&s.token, &format!("/v2.0/vehicles/{}/application", s.bev))
        .await
        .assert_error(403, "PERMISSION", None);
}
