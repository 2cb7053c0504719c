//! Crash-safe token rotation: a process is killed (SIGKILL) at each step of a refresh, and a
//! restarted client resumes from the durable store.
//!
//! | killed at                                  | restart within the grace period | restart after it            |
//! |--------------------------------------------|---------------------------------|-----------------------------|
//! | before the refresh request                 | works (refreshes normally)      | works                       |
//! | platform rotated, store not yet written    | works: the old refresh token is replayed and the platform answers the same new pair | **user must reconnect** (the old token is refused, its family revoked) |
//! | answer lost on the wire (future aborted)   | works (same replay)             | **user must reconnect**     |
//! | after the store was written                | works, no refresh needed        | works                       |
//!
//! The unsafe window is therefore: the platform rotated, the store write did not complete, and
//! no client retries within the grace period (1 minute in the simulator; Smartcar documents
//! 1 or 10 minutes). The SDK keeps it as small as the platform allows: it saves before it uses
//! the new tokens, it retries a refresh whose answer was lost with the same token
//! (`REFRESH_RETRY_WINDOW`), and a restarted process replays the stored token.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use smartcar::store::{MemoryTokenStore, TokenStore};
use smartcar::{ErrorKind, Session};
use smartcar_sim::{Fault, Simulator};
use smartcar_tests::crash::{FileStore, Step};
use smartcar_tests::flow::{CALLBACK, client_for, connect};

fn store_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "smartcar-crash-{}-{name}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("tokens.json")
}

/// A simulator, and a store file holding a connected user's tokens whose access token has
/// expired (so the next call refreshes).
async fn setup(name: &str) -> (Simulator, PathBuf, smartcar::tokens::Tokens) {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (_session, memory) = connect(&sim, &client).await;
    let mut tokens = memory.load("user-1").await.unwrap().unwrap();
    tokens.expires_at = sim.now() - chrono::Duration::hours(1);
    let path = store_path(name);
    FileStore::new(&path).save("user-1", &tokens).await.unwrap();
    (sim, path, tokens)
}

/// Runs the worker and SIGKILLs it when it reports `step`; returns the steps it reported.
async fn run_worker_until(sim: &Simulator, path: &std::path::Path, step: Step) -> Vec<String> {
    let app = sim.app();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_worker"))
        .arg(sim.base_url())
        .arg(&app.client_id)
        .arg(path)
        .arg(step.name())
        .env("CRASH_WORKER_SECRET", &app.client_secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("worker starts");
    let stdout = child.stdout.take().unwrap();
    let wanted = format!("AT {}", step.name());
    let (lines, child) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            let reached = line == wanted;
            seen.push(line);
            if reached {
                // The kill -9 of the test: no destructor, no flush, nothing runs.
                child.kill().unwrap();
                break;
            }
            if seen.len() > 20 {
                break;
            }
        }
        let status = child.wait().unwrap();
        (seen, status)
    })
    .await
    .unwrap();
    assert!(
        lines.last() == Some(&format!("AT {}", step.name())),
        "the worker never reached {step:?}: {lines:?}"
    );
    assert!(!child.success(), "the worker was killed");
    lines
}

async fn restarted(sim: &Simulator, path: &std::path::Path) -> (smartcar::Client, Session) {
    let client = client_for(sim, CALLBACK).build().unwrap();
    let session = Session::resume(&client, Arc::new(FileStore::new(path)), "user-1")
        .await
        .unwrap();
    (client, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_the_request() {
    let (sim, path, before) = setup("before").await;
    run_worker_until(&sim, &path, Step::BeforeRequest).await;
    assert_eq!(sim.refresh_count(), 0, "nothing was sent");
    sim.advance(Duration::from_secs(600));
    let (_client, session) = restarted(&sim, &path).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    vehicle.lock_status().await.unwrap();
    assert_eq!(sim.refresh_count(), 1);
    let stored = FileStore::new(&path).load("user-1").await.unwrap().unwrap();
    assert_ne!(stored.refresh_token, before.refresh_token);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_rotation_before_save_restart_within_grace() {
    let (sim, path, before) = setup("rotated").await;
    run_worker_until(&sim, &path, Step::RotatedNotSaved).await;
    assert_eq!(sim.refresh_count(), 1, "the platform rotated");
    let stored = FileStore::new(&path).load("user-1").await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token, before.refresh_token,
        "nothing was saved"
    );

    sim.advance(Duration::from_secs(30)); // within the 1-minute grace period
    let (_client, session) = restarted(&sim, &path).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    vehicle.lock_status().await.unwrap();
    // The replay got the pair the killed process was given: no second rotation.
    assert_eq!(sim.refresh_count(), 1);
    let recovered = FileStore::new(&path).load("user-1").await.unwrap().unwrap();
    assert_ne!(recovered.refresh_token, before.refresh_token);

    // And that pair is a first-class one: it keeps working long after the grace period.
    sim.advance(Duration::from_secs(3 * 3600));
    vehicle.lock_status().await.unwrap();
    assert_eq!(sim.refresh_count(), 2);
    sim.shutdown().await;
}

/// The window the platform makes unsafe: rotated, not saved, and no retry within the grace
/// period. The restarted client gets a typed `ReauthorizationRequired`, never a panic or a
/// silent failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_rotation_before_save_restart_after_grace() {
    let (sim, path, _before) = setup("late").await;
    run_worker_until(&sim, &path, Step::RotatedNotSaved).await;
    sim.advance(Duration::from_secs(120)); // the grace period (1 minute) is over
    let (_client, session) = restarted(&sim, &path).await;
    let e = session.access_token().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired, "{e:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_save() {
    let (sim, path, before) = setup("saved").await;
    run_worker_until(&sim, &path, Step::Saved).await;
    assert_eq!(sim.refresh_count(), 1);
    let stored = FileStore::new(&path).load("user-1").await.unwrap().unwrap();
    assert_ne!(
        stored.refresh_token, before.refresh_token,
        "saved before use"
    );

    sim.advance(Duration::from_secs(120)); // past the grace period of the old token
    let (_client, session) = restarted(&sim, &path).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    vehicle.lock_status().await.unwrap();
    assert_eq!(
        sim.refresh_count(),
        1,
        "the saved access token is used as is"
    );
    sim.advance(Duration::from_secs(3 * 3600));
    vehicle.lock_status().await.unwrap();
    assert_eq!(sim.refresh_count(), 2);
    sim.shutdown().await;
}

/// The answer of the refresh is lost on the wire: the platform rotated, then the caller's future
/// is dropped (a cancelled request handler, a timeout around the call). The store still holds
/// the old token; within the grace period a new session recovers the same pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_future_aborted_while_the_answer_is_on_the_wire() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, store) = connect(&sim, &client).await;
    let before = store.load("user-1").await.unwrap().unwrap();
    sim.advance(Duration::from_secs(2 * 3600));
    // The handler runs (the token rotates), then the body stalls.
    sim.faults()
        .inject(Fault::stall(Duration::from_secs(5)))
        .on("/oauth/token")
        .once();
    let task = tokio::spawn({
        let session = session.clone();
        async move { session.access_token().await }
    });
    let mut waited = 0;
    while sim.refresh_count() == 0 {
        assert!(waited < 500, "the refresh never reached the platform");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        store.load("user-1").await.unwrap().unwrap().refresh_token,
        before.refresh_token
    );

    sim.advance(Duration::from_secs(20));
    let restarted = Session::resume(&client, store.clone() as Arc<dyn TokenStore>, "user-1")
        .await
        .unwrap();
    restarted.access_token().await.unwrap();
    assert_eq!(sim.refresh_count(), 1, "recovered through the grace period");

    // Without the recovery, the same loss turns into a reconnect once the grace period is over.
    let other = Arc::new(MemoryTokenStore::new());
    let (session2, store2) = connect(&sim, &client).await;
    drop(session2);
    let tokens2 = store2.load("user-1").await.unwrap().unwrap();
    other.save("user-1", &tokens2).await.unwrap();
    sim.advance(Duration::from_secs(2 * 3600));
    sim.faults()
        .inject(Fault::stall(Duration::from_secs(5)))
        .on("/oauth/token")
        .once();
    let lost = Session::resume(&client, other.clone() as Arc<dyn TokenStore>, "user-1")
        .await
        .unwrap();
    let task = tokio::spawn(async move { lost.access_token().await });
    let mut waited = 0;
    while sim.refresh_count() == 1 {
        assert!(waited < 500, "the refresh never reached the platform");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    task.abort();
    let _ = task.await;
    sim.advance(Duration::from_secs(120));
    let late = Session::resume(&client, other as Arc<dyn TokenStore>, "user-1")
        .await
        .unwrap();
    let e = late.access_token().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired, "{e:?}");
    sim.shutdown().await;
}
