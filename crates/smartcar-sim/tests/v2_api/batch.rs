//! `POST /v2.0/vehicles/{id}/batch`.

use serde_json::{Value, json};
use smartcar_api::types;
use smartcar_sim::model::Powertrain;

use crate::support::*;

#[tokio::test]
async fn mixed_success_and_failure() {
    let env = Env::start().await;
    let bev = env.add_vehicle(Powertrain::Bev, 31);
    env.edit(&bev, |v| {
        v.odometer_km = 1609.344;
        v.tires_kpa = [240.0, 240.0, 240.0, 240.0];
    });
    let v = env.vehicle(&bev);
    let user = env.user(0);
    // Everything but read_security.
    let scopes: Vec<&str> = ALL_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != "read_security")
        .collect();
    let token = env.token(&user, &[&bev], &scopes);
    let p = format!("/v2.0/vehicles/{bev}/batch");
    let body = json!({"requests": [
        {"path": "/odometer"},
        {"path": "tires/pressure"},
        {"path": "/fuel"},
        {"path": "/security"},
        {"path": "/"},
        {"path": "/permissions?limit=1"},
        {"path": "/location/"},
    ]});
    let r = env
        .send(
            env.http
                .post(env.url(&p))
                .bearer_auth(&token)
                .header("sc-unit-system", "imperial")
                .json(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_typed::<types::BatchResponse>(&r.body);
    let items = r.body["responses"].as_array().expect("responses");
    assert_eq!(items.len(), 7);
    let age = v
        .data_age
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    assert_eq!(items[0]["path"], "/odometer");
    assert_eq!(items[0]["code"], 200);
    assert_eq!(items[0]["body"], json!({"distance": 1000.0}));
    assert_eq!(items[0]["headers"]["sc-unit-system"], "imperial");
    assert_eq!(items[0]["headers"]["sc-data-age"], age);
    assert!(items[0]["headers"]["sc-fetched-at"].is_string());

    assert_eq!(items[1]["path"], "/tires/pressure");
    assert_eq!(items[1]["code"], 200);
    assert_eq!(items[1]["body"]["frontLeft"], 34.81);
    assert_typed::<types::TirePressure>(&items[1]["body"]);

    assert_eq!(items[2]["path"], "/fuel");
    assert_eq!(items[2]["code"], 501);
    assert_eq!(items[2]["body"]["type"], "COMPATIBILITY");
    assert_eq!(items[2]["body"]["code"], "VEHICLE_NOT_CAPABLE");
    assert_eq!(items[2]["headers"], json!({}));
    assert_typed::<types::V2Error>(&items[2]["body"]);

    assert_eq!(items[3]["path"], "/security");
    assert_eq!(items[3]["code"], 403);
    assert_eq!(items[3]["body"]["type"], "PERMISSION");

    assert_eq!(items[4]["path"], "/");
    assert_eq!(
        items[4]["body"],
        json!({"id": v.id, "make": v.make, "model": v.model, "year": v.year})
    );
    assert_eq!(items[4]["headers"].get("sc-unit-system"), None);

    assert_eq!(items[5]["path"], "/permissions?limit=1");
    assert_eq!(
        items[5]["body"]["permissions"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(items[5]["body"]["paging"]["count"], scopes.len());
    assert_eq!(items[5]["headers"], json!({}));

    assert_eq!(items[6]["path"], "/location");
    assert_eq!(items[6]["code"], 200);

    // The same answers as the single endpoints (metric this time).
    let r = env
        .post(&token, &p, json!({"requests": [{"path": "/odometer"}]}))
        .await;
    let single = env
        .get(&token, &format!("/v2.0/vehicles/{bev}/odometer"))
        .await;
    assert_eq!(r.body["responses"][0]["body"], single.body);
    assert_eq!(
        r.body["responses"][0]["headers"]["sc-unit-system"],
        "metric"
    );
}

#[tokio::test]
async fn forced_errors_fail_items_not_the_batch() {
    let env = Env::start().await;
    let bev = env.add_vehicle(Powertrain::Bev, 32);
    env.edit(&bev, |v| {
        v.forced_error = Some(("UPSTREAM".into(), "NO_RESPONSE".into()))
    });
    let token = env.token(&env.user(0), &[&bev], &ALL_SCOPES);
    let r = env
        .post(
            &token,
            &format!("/v2.0/vehicles/{bev}/batch"),
            json!({"requests": [{"path": "/odometer"}, {"path": "/permissions"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["responses"][0]["code"], 502);
    assert_eq!(r.body["responses"][0]["body"]["code"], "NO_RESPONSE");
    assert_eq!(r.body["responses"][1]["code"], 200);
}

#[tokio::test]
async fn invalid_batches_fail_whole() {
    let env = Env::start().await;
    let bev = env.add_vehicle(Powertrain::Bev, 33);
    let token = env.token(&env.user(0), &[&bev], &ALL_SCOPES);
    let p = format!("/v2.0/vehicles/{bev}/batch");

    let r = env.post(&token, &p, json!({})).await;
    r.assert_validation("\"requests\" is required");
    assert_eq!(
        r.body["detail"],
        json!([{"field": ["requests"], "message": "\"requests\" is required"}])
    );
    for (body, message) in [
        (
            json!({"requests": "/odometer"}),
            "\"requests\" must be an array",
        ),
        (
            json!({"requests": []}),
            "\"requests\" must contain at least 1 items",
        ),
        (
            json!({"requests": [{"path": "/odometer"}, {}]}),
            "\"requests[1].path\" is required",
        ),
        (
            json!({"requests": [{"path": 3}]}),
            "\"requests[0].path\" must be a string",
        ),
        (
            json!({"requests": [{"path": "/odometer"}, {"path": "/nope"}]}),
            "\"requests[1].path\" \"/nope\" is not a GET endpoint of the vehicle",
        ),
        (
            json!({"requests": [{"path": "/application"}]}),
            "\"requests[0].path\" \"/application\" is not a GET endpoint of the vehicle",
        ),
        (
            json!({"requests": [{"path": "/batch"}]}),
            "\"requests[0].path\" \"/batch\" is not a GET endpoint of the vehicle",
        ),
    ] {
        env.post(&token, &p, body).await.assert_validation(message);
    }
    let r = env
        .post(&token, &p, json!({"requests": [{"path": "/nope"}]}))
        .await;
    assert_eq!(r.body["detail"][0]["field"], json!(["requests", 0, "path"]));
    let many: Vec<Value> = (0..101).map(|_| json!({"path": "/vin"})).collect();
    env.post(&token, &p, json!({ "requests": many }))
        .await
        .assert_validation("\"requests\" must contain less than or equal to 100 items");
    let huge = format!(
        "{{\"requests\": [{{\"path\": \"{}\"}}]}}",
        "x".repeat(3 << 20)
    );
    let r = env
        .send(
            env.http
                .post(env.url(&p))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(huge),
        )
        .await;
    r.assert_validation("\"body\" could not be read (at most 2 MB)");
    env.post_raw(&token, &p, "{\"requests\": [")
        .await
        .assert_error(400, "VALIDATION", None);
    let r = env
        .send(
            env.http
                .post(env.url(&p))
                .bearer_auth(&token)
                .header("sc-unit-system", "kelvin")
                .json(&json!({"requests": [{"path": "/odometer"}]})),
        )
        .await;
    r.assert_validation("\"sc-unit-system\" must be one of [metric, imperial]");

    let ok = json!({"requests": [{"path": "/odometer"}]});
    env.post("bad", &p, ok.clone())
        .await
        .assert_error(401, "AUTHENTICATION", None);
    env.post(
        &token,
        "/v2.0/vehicles/00000000-0000-4000-8000-000000000000/batch",
        ok.clone(),
    )
    .await
    .assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
    let foreign = env.sim.state().world().users[1].vehicle_ids[0].clone();
    env.post(&token, &format!("/v2.0/vehicles/{foreign}/batch"), ok)
        .await
        .assert_error(403, "PERMISSION", None);
}
