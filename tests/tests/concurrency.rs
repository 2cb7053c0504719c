//! Concurrency around token expiry: 1 000 tasks on one session across several expiries, and
//! two `Client`s (each with its own `Session`) sharing one token store. Every call must
//! succeed, and the platform must rotate the refresh token exactly once per expiry.

use std::sync::Arc;
use std::time::Duration;

use smartcar::Session;
use smartcar::store::TokenStore;
use smartcar_sim::Simulator;
use smartcar_tests::flow::{CALLBACK, client_for, client_on_system_clock, connect};
use tokio::sync::Barrier;

const TASKS: usize = 1000;
const EXPIRIES: u64 = 4;
const TOKEN: &str = smartcar_api::ops::EXCHANGE_TOKEN.path;

/// Runs `TASKS` tasks over `sessions` (round robin) for `EXPIRIES` rounds; before each round the
/// simulator's clock moves past the access token's expiry. Returns the failures.
async fn rounds(sim: &Simulator, sessions: &[Session]) -> Vec<String> {
    let vehicle_id = sim.users()[0].vehicle_ids[0].clone();
    let start = Arc::new(Barrier::new(TASKS + 1));
    let done = Arc::new(Barrier::new(TASKS + 1));
    let mut tasks = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        let vehicle = sessions[i % sessions.len()]
            .vehicle(vehicle_id.clone())
            .unwrap();
        let (start, done) = (start.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for round in 0..EXPIRIES {
                start.wait().await;
                if let Err(e) = vehicle.odometer().await {
                    failures.push(format!("task {i}, round {round}: {e}"));
                }
                done.wait().await;
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for round in 0..EXPIRIES {
        let rotations = sim.refresh_count();
        // Past the 2-hour access token (and the grace period of the last rotation).
        sim.advance(Duration::from_secs(2 * 3600 + 60));
        start.wait().await;
        done.wait().await;
        let now = sim.refresh_count();
        if now != rotations + 1 {
            failures.push(format!(
                "round {round}: {} rotations for one expiry",
                now - rotations
            ));
        }
    }
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_on_one_session_across_expiries() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, store) = connect(&sim, &client).await;
    let failures = rounds(&sim, std::slice::from_ref(&session)).await;
    assert!(failures.is_empty(), "{failures:#?}");
    // The session saw every expiry itself: one token request per expiry, no 401.
    assert_eq!(sim.request_count("POST", TOKEN), 1 + EXPIRIES); // + the code exchange
    assert_eq!(
        store.load("user-1").await.unwrap().unwrap(),
        session.tokens().unwrap()
    );
    sim.shutdown().await;
}

/// On the system clock the SDK does not see the simulator's clock move: it learns of each
/// expiry from 1 000 401s, and still refreshes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_learning_of_expiry_from_401s() {
    let sim = Simulator::start().await.unwrap();
    let client = client_on_system_clock(&sim, CALLBACK).build().unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let failures = rounds(&sim, std::slice::from_ref(&session)).await;
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(sim.request_count("POST", TOKEN), 1 + EXPIRIES);
    sim.shutdown().await;
}

/// Two clients (two connection pools, two sessions, no shared memory) over one store: the
/// store's compare-and-swap and the platform's grace period keep them on one token family;
/// each expiry rotates the token once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_one_store() {
    let sim = Simulator::start().await.unwrap();
    let a = client_for(&sim, CALLBACK).build().unwrap();
    let b = client_for(&sim, CALLBACK).build().unwrap();
    let (session_a, store) = connect(&sim, &a).await;
    let session_b = Session::resume(&b, store.clone() as Arc<dyn TokenStore>, "user-1")
        .await
        .unwrap();
    let token_requests_before = sim.request_count("POST", TOKEN);
    let failures = rounds(&sim, &[session_a.clone(), session_b.clone()]).await;
    assert!(failures.is_empty(), "{failures:#?}");
    // At most one token request per session per expiry (the second one, if any, is answered
    // from the grace period with the same pair).
    let token_requests = sim.request_count("POST", TOKEN) - token_requests_before;
    assert!(
        (EXPIRIES..=2 * EXPIRIES).contains(&token_requests),
        "{token_requests} token requests"
    );
    println!(
        "two clients, {EXPIRIES} expiries: {token_requests} token requests, {EXPIRIES} rotations"
    );
    let stored = store.load("user-1").await.unwrap().unwrap();
    assert_eq!(
        session_a.tokens().unwrap().refresh_token,
        stored.refresh_token
    );
    assert_eq!(
        session_b.tokens().unwrap().refresh_token,
        stored.refresh_token
    );
    sim.shutdown().await;
}
