//! The platform's request limits over real HTTP (issue 19): the application bucket, the
//! per-vehicle throttle and the monthly allowance, with the platform's error bodies and
//! `retry-after`, batch items billed one by one, the simulated clock moving through windows
//! and months, and the control API setting them at run time.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use smartcar_sim::Simulator;
use smartcar_sim::limits::{AppBucket, Limits, VehicleThrottle};
use smartcar_sim::testing::{client, user, user_token};

/// A simulator at a fixed time (the last day of January, 23:00) with `limits`, a user's first
/// two vehicles and a token for both with every read permission.
async fn start(limits: Limits) -> (Simulator, [String; 2], String) {
    let sim = Simulator::builder()
        .epoch(Utc.with_ymd_and_hms(2026, 1, 31, 23, 0, 0).unwrap())
        .limits(limits)
        .start()
        .await
        .unwrap();
    let owner = user(&sim, 0);
    let ids = sim.users()[0].vehicle_ids.clone();
    let cars = [ids[0].clone(), ids[1].clone()];
    let token = user_token(
        &sim,
        &owner,
        &[&cars[0], &cars[1]],
        &["read_odometer", "read_vehicle_info", "read_vin"],
    );
    (sim, cars, token)
}

async fn get(sim: &Simulator, token: &str, path: &str) -> (u16, Option<String>, Value) {
    let r = client()
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = r.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

fn odometer(car: &str) -> String {
    smartcar_api::ops::GetOdometer::path(car)
}

#[tokio::test]
async fn the_application_bucket_refuses_then_refills() {
    let (sim, cars, token) = start(Limits {
        app: Some(AppBucket {
            capacity: 3,
            refill_per_minute: 60.0,
        }),
        ..Limits::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(get(&sim, &token, &odometer(&cars[0])).await.0, 200);
    }
    let (status, retry, body) = get(&sim, &token, &odometer(&cars[1])).await;
    assert_eq!(status, 429);
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["type"], "RATE_LIMIT");
    assert_eq!(body["code"], "SMARTCAR_API");
    assert_eq!(body["statusCode"], 429);
    assert_eq!(body["resolution"]["type"], "RETRY_LATER");
    // The v3 API answers in its own shape; Connect and the token endpoint are not limited.
    let (status, _, body) = get(&sim, &token, "/v3/vehicles/x/signals").await;
    assert_eq!(status, 429);
    assert_eq!(body["errors"][0]["type"], "RATE_LIMIT", "{body}");
    assert_eq!(body["errors"][0]["code"], "SMARTCAR_API", "{body}");
    let health = client()
        .get(format!("{}/healthz", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // One second of simulated time refills one token.
    sim.advance(Duration::from_secs(1));
    assert_eq!(get(&sim, &token, &odometer(&cars[1])).await.0, 200);
    assert_eq!(get(&sim, &token, &odometer(&cars[1])).await.0, 429);
    assert_eq!(sim.limits().counters().app_limited, 3);
}

#[tokio::test]
async fn the_vehicle_throttle_is_per_vehicle_with_retry_after() {
    let (sim, cars, token) = start(Limits {
        vehicle: Some(VehicleThrottle {
            burst: 2,
            window: Duration::from_secs(120),
        }),
        ..Limits::default()
    })
    .await;
    assert_eq!(get(&sim, &token, &odometer(&cars[0])).await.0, 200);
    sim.advance(Duration::from_secs(20));
    assert_eq!(get(&sim, &token, &odometer(&cars[0])).await.0, 200);
    let (status, retry, body) = get(&sim, &token, &odometer(&cars[0])).await;
    assert_eq!(status, 429);
    assert_eq!(
        retry.as_deref(),
        Some("100"),
        "the first slot frees at 120 s"
    );
    assert_eq!(body["code"], "VEHICLE");
    assert_eq!(
        get(&sim, &token, &odometer(&cars[1])).await.0,
        200,
        "another car"
    );
    sim.advance(Duration::from_secs(100));
    assert_eq!(get(&sim, &token, &odometer(&cars[0])).await.0, 200);
    // A list of the user's vehicles names no vehicle: never throttled.
    for _ in 0..5 {
        let list = smartcar_api::ops::LIST_VEHICLES.path;
        assert_eq!(get(&sim, &token, list).await.0, 200);
    }
    assert_eq!(sim.limits().counters().vehicle_throttled, 1);
}

#[tokio::test]
async fn the_monthly_allowance_bills_batch_items_and_resets_with_the_month() {
    let (sim, cars, token) = start(Limits {
        monthly_allowance: Some(5),
        ..Limits::default()
    })
    .await;
    let batch = client()
        .post(format!(
            "{}{}",
            sim.base_url(),
            smartcar_api::ops::Batch::path(&cars[0])
        ))
        .bearer_auth(&token)
        .json(&json!({"requests": [{"path": "/odometer"}, {"path": "/vin"}, {"path": "/"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 200);
    assert_eq!(sim.limits().billed(&cars[0], sim.now()), 3, "three items");
    // A refused read bills nothing.
    let location = smartcar_api::ops::GetLocation::path(&cars[0]);
    assert_eq!(get(&sim, &token, &location).await.0, 403);
    assert_eq!(sim.limits().billed(&cars[0], sim.now()), 3);
    for _ in 0..2 {
        assert_eq!(get(&sim, &token, &odometer(&cars[0])).await.0, 200);
    }
    let (status, retry, body) = get(&sim, &token, &odometer(&cars[0])).await;
    assert_eq!(status, 430);
    assert_eq!(retry, None);
    assert_eq!(body["type"], "BILLING");
    assert_eq!(body["code"], "VEHICLE_REQUEST_LIMIT");
    assert_eq!(body["statusCode"], 430);
    assert_eq!(
        get(&sim, &token, &odometer(&cars[1])).await.0,
        200,
        "per vehicle"
    );
    // February: a new allowance.
    sim.advance(Duration::from_secs(3600 + 1));
    assert_eq!(get(&sim, &token, &odometer(&cars[0])).await.0, 200);
    let counters = sim.limits().counters();
    assert_eq!((counters.billing_refused, counters.billed), (1, 7));
}

/// A control API call with the management token: status and JSON body.
async fn control(
    sim: &Simulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client()
        .request(method, format!("{}/_sim{path}", sim.base_url()))
        .bearer_auth(sim.app().amt);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_control_api_sets_and_reads_the_limits() {
    use reqwest::Method;
    let (sim, cars, token) = start(Limits::default()).await;
    let set = |body: Value| control(&sim, Method::PUT, "/limits", Some(body));
    let (status, shown) = set(json!({"vehicle": "1/60", "monthly_allowance": 100})).await;
    assert_eq!(status, 200);
    assert_eq!(shown["vehicle"], "1/60");
    assert_eq!(shown["app"], Value::Null);
    assert_eq!(shown["monthly_allowance"], 100);
    assert_eq!(get(&sim, &token, &odometer(&cars[0])).await.0, 200);
    assert_eq!(get(&sim, &token, &odometer(&cars[0])).await.0, 429);
    let usage = format!("/limits/usage/{}", cars[0]);
    let (_, usage) = control(&sim, Method::GET, &usage, None).await;
    assert_eq!(usage["billed"], 1);
    assert_eq!(usage["month"], "2026-01");

    let (status, error) = set(json!({"vehicle": "0/60"})).await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("BURST/SECONDS"),
        "{error}"
    );
    assert_eq!(
        sim.limits().get().vehicle.map(|t| t.burst),
        Some(1),
        "unchanged"
    );

    assert_eq!(set(json!({"platform": true})).await.0, 200);
    assert_eq!(sim.limits().get(), Limits::platform());
    assert_eq!(set(json!({})).await.0, 200);
    assert!(!sim.limits().on());
    let (_, read) = control(&sim, Method::GET, "/limits", None).await;
    assert_eq!(read["counters"]["vehicle_throttled"], 1);
    let (status, _) = control(&sim, Method::DELETE, "/limits/usage", None).await;
    assert_eq!(status, 204);
    assert_eq!(sim.limits().billed(&cars[0], sim.now()), 0);
}
