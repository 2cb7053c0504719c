//! The SDK's limiter against the simulator's platform limits, over real HTTP (issue 19): a
//! configured bucket and throttle keep a burst inside the platform's limits (and the same burst
//! without them is refused, so the tests can fail); an unknown throttle and the platform's 430
//! are learned from the first refusal; the monthly budget fails before sending, keeps a
//! reserve for commands, counts batch items and never double-counts a retried call; the SQLite
//! store survives a restart; clients sharing a PostgreSQL store share the bucket and the budget.

use std::sync::Arc;
use std::time::Duration;

use smartcar::limits::{
    LimitScope, LimiterStore, Limits, MonthlyBudget, PostgresLimiterStore, SqliteLimiterStore,
};
use smartcar::{ErrorKind, Session};
use smartcar_sim::Simulator;
use smartcar_sim::faults::Fault;
use smartcar_sim::limits::{AppBucket, Limits as PlatformLimits, VehicleThrottle};
use smartcar_tests::flow::{CALLBACK, client_for, connect};

/// A simulator (on the wall clock) enforcing `platform`.
async fn platform(platform: PlatformLimits) -> Simulator {
    Simulator::builder().limits(platform).start().await.unwrap()
}

/// A session of the simulator's first user, through a client with `limits` (retries off, so
/// every refusal shows).
async fn session(sim: &Simulator, limits: Option<Limits>) -> Session {
    let builder = client_for(sim, CALLBACK).disable_retries();
    let builder = match limits {
        Some(l) => builder.limits(l),
        None => builder.disable_limits(),
    };
    connect(sim, &builder.build().unwrap()).await.0
}

fn vehicles(sim: &Simulator) -> Vec<String> {
    sim.users()[0].vehicle_ids.clone()
}

/// Reads every vehicle's odometer `rounds` times, all at once: the failures' kinds.
async fn burst(session: &Session, ids: &[String], rounds: usize) -> Vec<ErrorKind> {
    let mut tasks = Vec::new();
    for _ in 0..rounds {
        for id in ids {
            let vehicle = session.vehicle(id.clone()).unwrap();
            tasks.push(tokio::spawn(async move { vehicle.odometer().await }));
        }
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failures.push(e.kind());
        }
    }
    failures
}

fn bucket(capacity: u32, per_minute: f64) -> PlatformLimits {
    PlatformLimits {
        app: Some(AppBucket {
            capacity,
            refill_per_minute: per_minute,
        }),
        ..PlatformLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_bucket_keeps_a_burst_inside_the_platform_bucket() {
    // 4 at once, then 20 a second.
    let sim = platform(bucket(4, 1_200.0)).await;
    let ids = vehicles(&sim);
    let limited = session(&sim, Some(Limits::default().app_bucket(4, 1_200.0))).await;
    let failures = burst(&limited, &ids, 6).await;
    assert_eq!(
        failures,
        vec![],
        "the limiter let the burst exceed the bucket"
    );
    assert_eq!(sim.limits().counters().app_limited, 0);

    // The same burst without the limiter is refused: the platform's bucket is real.
    sim.limits().reset_usage();
    let unlimited = session(&sim, None).await;
    let failures = burst(&unlimited, &ids, 6).await;
    assert!(
        !failures.is_empty() && failures.iter().all(|k| *k == ErrorKind::Api),
        "{failures:?}"
    );
    assert!(sim.limits().counters().app_limited > 0);
}

#[tokio::test]
async fn a_known_vehicle_throttle_sends_no_429() {
    let throttle = VehicleThrottle {
        burst: 2,
        window: Duration::from_millis(800),
    };
    let sim = platform(PlatformLimits {
        vehicle: Some(throttle),
        ..PlatformLimits::default()
    })
    .await;
    let id = vehicles(&sim)[0].clone();
    let session = session(
        &sim,
        Some(Limits::default().vehicle_throttle(2, Duration::from_millis(800))),
    )
    .await;
    let vehicle = session.vehicle(id).unwrap();
    for i in 0..5 {
        vehicle
            .odometer()
            .await
            .unwrap_or_else(|e| panic!("read {i}: {e}"));
    }
    assert_eq!(sim.limits().counters().vehicle_throttled, 0);
}

#[tokio::test]
async fn an_unknown_throttle_is_learned_from_the_first_429() {
    let sim = platform(PlatformLimits {
        vehicle: Some(VehicleThrottle {
            burst: 1,
            window: Duration::from_secs(60),
        }),
        ..PlatformLimits::default()
    })
    .await;
    let ids = vehicles(&sim);
    let session = session(
        &sim,
        Some(Limits::default().max_wait(Duration::from_secs(5))),
    )
    .await;
    let first = session.vehicle(ids[0].clone()).unwrap();
    first.odometer().await.unwrap();
    let refused = first.odometer().await.unwrap_err();
    assert_eq!(refused.status(), Some(429), "{refused}");
    let sent = sim.requests().len();

    // Learned: the next call fails at once, without a request, and says when to retry.
    let e = first.odometer().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    let smartcar::Error::RateLimited {
        scope, retry_after, ..
    } = &e
    else {
        unreachable!()
    };
    assert_eq!(*scope, LimitScope::Vehicle);
    assert!(*retry_after > Duration::from_secs(50), "{retry_after:?}");
    assert!(e.to_string().contains("nothing was sent"), "{e}");
    assert_eq!(sim.requests().len(), sent);
    assert_eq!(sim.limits().counters().vehicle_throttled, 1);

    // Other vehicles are not held back.
    session
        .vehicle(ids[1].clone())
        .unwrap()
        .odometer()
        .await
        .unwrap();
}

/// The platform billing calls, with an allowance the tests never reach.
fn billing() -> PlatformLimits {
    PlatformLimits {
        monthly_allowance: Some(1_000),
        ..PlatformLimits::default()
    }
}

#[tokio::test]
async fn the_monthly_budget_fails_before_sending_and_keeps_a_reserve_for_commands() {
    let sim = platform(billing()).await;
    let id = vehicles(&sim)[0].clone();
    let session = session(
        &sim,
        Some(Limits::default().monthly_budget(MonthlyBudget::new(3).command_reserve(1))),
    )
    .await;
    let vehicle = session.vehicle(id.clone()).unwrap();
    vehicle.odometer().await.unwrap();
    vehicle.location().await.unwrap();
    let sent = sim.requests().len();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BudgetExhausted, "{e}");
    assert!(
        e.to_string().contains("used 2 calls this month of its 3"),
        "{e}"
    );
    assert_eq!(sim.requests().len(), sent, "a request was sent over budget");
    // The reserve is for commands.
    vehicle.lock().await.unwrap();
    let e = vehicle.unlock().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BudgetExhausted, "{e}");
    let limiter = session.client().limiter().unwrap();
    let usage = limiter.usage(&id).await.unwrap();
    assert_eq!((usage.used, usage.allowance), (3, Some(3)));
    assert_eq!(sim.limits().billed(&id, sim.state().now()), 3);
}

#[tokio::test]
async fn batch_items_count_one_by_one_and_a_retried_call_once() {
    let sim = platform(billing()).await;
    let id = vehicles(&sim)[0].clone();
    let client = client_for(&sim, CALLBACK)
        .limits(Limits::default().monthly_budget(MonthlyBudget::new(10)))
        .build()
        .unwrap();
    let session = connect(&sim, &client).await.0;
    let vehicle = session.vehicle(id.clone()).unwrap();
    let usage = || async { client.limiter().unwrap().usage(&id).await.unwrap().used };

    vehicle
        .batch()
        .odometer()
        .location()
        .vin()
        .send()
        .await
        .unwrap();
    assert_eq!(usage().await, 3);

    // A 500 then a success: retried (a read), charged once.
    sim.faults()
        .inject(Fault::status(500))
        .on(smartcar_api::ops::GET_ODOMETER.path)
        .once();
    vehicle.odometer().await.unwrap();
    assert_eq!(usage().await, 4);

    // A call the platform refuses is refunded.
    sim.faults()
        .inject(Fault::status(400))
        .on(smartcar_api::ops::GET_ODOMETER.path)
        .once();
    vehicle.odometer().await.unwrap_err();
    assert_eq!(usage().await, 4);
    assert_eq!(sim.limits().billed(&id, sim.state().now()), 4);

    // A batch that does not fit is refused whole.
    let e = vehicle
        .batch()
        .odometer()
        .location()
        .vin()
        .fuel()
        .battery()
        .engine_oil()
        .tire_pressure()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BudgetExhausted, "{e}");
    assert_eq!(usage().await, 4);
}

#[tokio::test]
async fn the_platforms_430_is_learned_for_the_rest_of_the_month() {
    let sim = platform(PlatformLimits {
        monthly_allowance: Some(2),
        ..PlatformLimits::default()
    })
    .await;
    let ids = vehicles(&sim);
    let session = session(&sim, Some(Limits::default())).await;
    let vehicle = session.vehicle(ids[0].clone()).unwrap();
    vehicle.odometer().await.unwrap();
    vehicle.odometer().await.unwrap();
    let refused = vehicle.odometer().await.unwrap_err();
    assert_eq!(refused.status(), Some(430), "{refused}");
    let e = vehicle.lock().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BudgetExhausted, "{e}");
    assert!(e.to_string().contains("430 VEHICLE_REQUEST_LIMIT"), "{e}");
    assert_eq!(sim.limits().counters().billing_refused, 1);
    assert!(
        session
            .client()
            .limiter()
            .unwrap()
            .usage(&ids[0])
            .await
            .unwrap()
            .exhausted
    );
    session
        .vehicle(ids[1].clone())
        .unwrap()
        .odometer()
        .await
        .unwrap();
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let sim = platform(PlatformLimits {
        monthly_allowance: Some(1),
        ..PlatformLimits::default()
    })
    .await;
    let id = vehicles(&sim)[0].clone();
    let session = session(&sim, None).await;
    assert!(session.client().limiter().is_none());
    let vehicle = session.vehicle(id).unwrap();
    vehicle.odometer().await.unwrap();
    // Nothing learned: each call reaches the platform.
    for _ in 0..2 {
        assert_eq!(vehicle.odometer().await.unwrap_err().status(), Some(430));
    }
    assert_eq!(sim.limits().counters().billing_refused, 2);
}

#[tokio::test]
async fn the_sqlite_store_keeps_the_budget_across_a_restart() {
    let sim = platform(billing()).await;
    let id = vehicles(&sim)[0].clone();
    let dir = std::env::temp_dir().join(format!("smartcar-limiter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("limits.db");
    let _ = std::fs::remove_file(&path);
    let limits = Limits::default().monthly_budget(MonthlyBudget::new(3));
    let with_store = |store: SqliteLimiterStore| {
        client_for(&sim, CALLBACK)
            .limits(limits.clone())
            .limiter_store(Arc::new(store))
            .build()
            .unwrap()
    };
    {
        let client = with_store(SqliteLimiterStore::open(&path).await.unwrap());
        let session = connect(&sim, &client).await.0;
        let vehicle = session.vehicle(id.clone()).unwrap();
        vehicle.odometer().await.unwrap();
        vehicle.odometer().await.unwrap();
    }
    let client = with_store(SqliteLimiterStore::open(&path).await.unwrap());
    assert_eq!(client.limiter().unwrap().usage(&id).await.unwrap().used, 2);
    let session = connect(&sim, &client).await.0;
    let vehicle = session.vehicle(id.clone()).unwrap();
    vehicle.odometer().await.unwrap();
    assert_eq!(
        vehicle.odometer().await.unwrap_err().kind(),
        ErrorKind::BudgetExhausted
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_a_postgres_store_share_the_bucket_and_the_budget() {
    let Some(url) = smartcar_tests::pg::fresh_database("limiter_shared").await else {
        return;
    };
    let sim = platform(bucket(3, 1_200.0)).await;
    let ids = vehicles(&sim);
    let limits = Limits::default()
        .app_bucket(3, 1_200.0)
        .monthly_budget(MonthlyBudget::new(5));
    // Four clients, each with its own pool: four "instances".
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let store: Arc<dyn LimiterStore> =
            Arc::new(PostgresLimiterStore::connect(&url).await.unwrap());
        let client = client_for(&sim, CALLBACK)
            .disable_retries()
            .limits(limits.clone())
            .limiter_store(store)
            .build()
            .unwrap();
        sessions.push(connect(&sim, &client).await.0);
    }
    // Each instance reads every vehicle twice, all at once: 4 × 2 reads of each vehicle
    // against a budget of 5, and more requests than the bucket holds.
    let mut tasks = Vec::new();
    for session in &sessions {
        for _ in 0..2 {
            for id in &ids {
                let vehicle = session.vehicle(id.clone()).unwrap();
                tasks.push(tokio::spawn(async move { vehicle.odometer().await }));
            }
        }
    }
    let mut ok = 0;
    let mut exhausted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) if e.kind() == ErrorKind::BudgetExhausted => exhausted += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 5 * ids.len());
    assert_eq!(exhausted, 3 * ids.len());
    assert_eq!(sim.limits().counters().app_limited, 0);
    for id in &ids {
        assert_eq!(sim.limits().billed(id, sim.state().now()), 5);
    }
}

#[tokio::test]
async fn a_failing_limiter_store_fails_the_call_before_sending() {
    let Some(url) = smartcar_tests::pg::fresh_database("limiter_store_down").await else {
        return;
    };
    let sim = platform(billing()).await;
    let id = vehicles(&sim)[0].clone();
    let store = PostgresLimiterStore::connect(&url).await.unwrap();
    let pool = store.pool().clone();
    let client = client_for(&sim, CALLBACK)
        .limits(Limits::default().monthly_budget(MonthlyBudget::new(10)))
        .limiter_store(Arc::new(store))
        .build()
        .unwrap();
    let session = connect(&sim, &client).await.0;
    let vehicle = session.vehicle(id.clone()).unwrap();
    vehicle.odometer().await.unwrap();
    // The database goes away: the limiter fails closed, nothing is sent, and the error says
    // what to check.
    pool.close().await;
    let sent = sim.requests().len();
    let e = vehicle.odometer().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimiterStore, "{e}");
    assert!(e.to_string().contains("no request was sent"), "{e}");
    assert_eq!(sim.requests().len(), sent);
    assert_eq!(sim.limits().billed(&id, sim.state().now()), 1);
}
