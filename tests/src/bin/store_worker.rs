//! A process of the multi-process token-store tests (`tests/tests/token_stores.rs`): one
//! instance of a service, with its own client, PostgreSQL store and session on a shared key.
//!
//! Configuration comes from the environment: `DATABASE_URL`, `STORE_KEY`, and for `calls`
//! `SIM_URL`, `SIM_CLIENT_ID`, `SIM_CLIENT_SECRET`, `VEHICLE_ID`, `CALLS`.
//!
//! - `store_worker calls`: prints `ready`, then for each stdin line `round <offset_ms>` sets its
//!   clock to the wall clock plus `offset_ms` (the simulator's time, as the parent knows it),
//!   makes `CALLS` concurrent odometer reads and prints `done <ok> <failed> <millis>`; `quit`
//!   (or end of input) ends it.
//! - `store_worker hold-lock`: takes the refresh lock of `STORE_KEY`, prints `locked` and sleeps
//!   (at most 120 s) until killed: a crashed refresher.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use smartcar::store::{PostgresTokenStore, TokenStore};
use smartcar::{Client, Session};
use tokio::io::{AsyncBufReadExt, BufReader};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let store = PostgresTokenStore::connect(&var("DATABASE_URL"))
        .await
        .unwrap_or_else(|e| panic!("cannot connect the store: {e}"));
    let key = var("STORE_KEY");
    match mode.as_str() {
        "hold-lock" => {
            let lock = store.lock_for_refresh(&key).await.unwrap();
            println!("locked");
            tokio::time::sleep(Duration::from_secs(120)).await;
            drop(lock);
        }
        "calls" => calls(store, key).await,
        other => panic!("unknown mode {other:?}"),
    }
}

async fn calls(store: PostgresTokenStore, key: String) {
    let offset_ms = Arc::new(AtomicI64::new(0));
    let clock_offset = offset_ms.clone();
    let client = Client::builder()
        .client_id(var("SIM_CLIENT_ID"))
        .client_secret(var("SIM_CLIENT_SECRET"))
        .origin(&var("SIM_URL"))
        .clock(move || {
            chrono::Utc::now()
                + chrono::Duration::milliseconds(clock_offset.load(Ordering::Relaxed))
        })
        .build()
        .unwrap();
    let session = Session::resume(&client, Arc::new(store), key)
        .await
        .unwrap();
    let vehicle = session.vehicle(var("VEHICLE_ID")).unwrap();
    let n: usize = var("CALLS").parse().unwrap();
    println!("ready");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("round"), Some(offset)) => {
                offset_ms.store(offset.parse().unwrap(), Ordering::Relaxed);
                let start = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let v = vehicle.clone();
                        tokio::spawn(async move { v.odometer().await })
                    })
                    .collect();
                let (mut ok, mut failed) = (0, 0);
                for t in tasks {
                    match t.await {
                        Ok(Ok(_)) => ok += 1,
                        Ok(Err(e)) => {
                            failed += 1;
                            eprintln!("call failed: {e}");
                        }
                        Err(e) => {
                            failed += 1;
                            eprintln!("task failed: {e}");
                        }
                    }
                }
                println!("done {ok} {failed} {}", start.elapsed().as_millis());
            }
            (Some("quit"), _) => break,
            _ => panic!("unknown command {line:?}"),
        }
    }
}
