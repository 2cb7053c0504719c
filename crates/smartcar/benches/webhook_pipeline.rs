//! The durable webhook pipeline (`smartcar::pipeline`, issue 19), measured.
//!
//! ```text
//! cargo bench -p smartcar-sdk --bench webhook_pipeline --features sqlite,postgres,axum
//! cargo bench -p smartcar-sdk --bench webhook_pipeline --features sqlite,postgres,axum -- \
//!     --deliveries 30000 --senders 64 --vehicles 500 --consumers 4
//! ```
//!
//! 1. **Receiving** (SQLite, then PostgreSQL when `DATABASE_URL` is set): the pipeline's axum
//!    route on 127.0.0.1; `--senders` concurrent HTTP/1.1 clients (keep-alive) POST
//!    `--deliveries` distinct signed v3 `VEHICLE_STATE` bodies about `--vehicles` vehicles;
//!    each answer is a 2xx only once the delivery is committed (verify + durable enqueue).
//!    Prints accepted deliveries/s and the time to 2xx (p50, p99, max). Targets: ≥ 5 000/s,
//!    p99 < 50 ms. Senders, server and database share the machine.
//! 2. **Consuming** (PostgreSQL): the queue filled in step 1 (each vehicle's events sent in a
//!    scrambled `oemUpdatedAt` order) is drained by `--consumers` processes (this binary
//!    re-executed with `--consumer-child`) with `Consumer::run_in_transaction`, the effect a
//!    counter row per event in `bench_effects` written in the same transaction as the
//!    completion. When a third of the events are done, one process is SIGKILLed. At the end:
//!    every accepted delivery's counter must be exactly 1, and each vehicle's effects must
//!    have been written in `oemUpdatedAt` order.
//!
//! Other flags: `--lease-ms` (consumers' lease, default 2000), `--skip-sqlite`,
//! `--skip-postgres`, `--skip-consumers`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use smartcar::pipeline::{PipelineConfig, WebhookPipeline};
use smartcar::webhooks::{SIGNATURE_HEADER, WebhookVerifier, sign};

mod common;

const AMT: &str = "bench-application-management-token";
/// The database the PostgreSQL rounds use (dropped and created again).
const BENCH_DB: &str = "smartcar_bench_webhook_pipeline";
/// Deliveries sent before measuring (connections opened, caches warm).
const WARMUP: usize = 500;

#[derive(Clone, Debug)]
struct Args {
    deliveries: usize,
    senders: usize,
    vehicles: usize,
    consumers: usize,
    lease_ms: u64,
    sqlite: bool,
    postgres: bool,
    consume: bool,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: usize| -> usize {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} takes a number"))
            })
            .unwrap_or(default)
    };
    let flag = |name: &str| argv.iter().any(|a| a == name);
    Args {
        deliveries: value("--deliveries", 30_000),
        senders: value("--senders", 64),
        vehicles: value("--vehicles", 500),
        consumers: value("--consumers", 4),
        lease_ms: value("--lease-ms", 2_000) as u64,
        sqlite: !flag("--skip-sqlite"),
        postgres: !flag("--skip-postgres"),
        consume: !flag("--skip-consumers"),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--consumer-child") {
        let name = argv[i + 1].clone();
        let db = argv[i + 2].clone();
        let lease_ms: u64 = argv[i + 3].parse().unwrap();
        runtime().block_on(consumer_child(name, db, lease_ms));
        return;
    }
    let args = args();
    println!("webhook pipeline benchmark: {args:?}");
    println!(
        "machine: {} CPUs; senders, receiver and database on one machine",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    runtime().block_on(parent(args));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn parent(args: Args) {
    if args.sqlite {
        let dir =
            std::env::temp_dir().join(format!("smartcar-bench-pipeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pipeline = WebhookPipeline::sqlite(dir.join("webhooks.db"), verifier())
            .await
            .unwrap();
        receive_round("SQLite (WAL, synchronous=FULL)", &pipeline, &args).await;
        drop(pipeline);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!(
                "\nPostgreSQL: skipped (DATABASE_URL is not set; `cargo xtask setup` prints one)"
            );
            return;
        }
    };
    if !args.postgres {
        return;
    }
    let db = common::fresh_database(&url, BENCH_DB).await;
    let pipeline = WebhookPipeline::postgres(&db, verifier()).await.unwrap();
    let accepted = receive_round("PostgreSQL", &pipeline, &args).await;
    if args.consume {
        consume_round(&db, &pipeline, accepted, &args).await;
    }
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(AMT).unwrap()
}

/// The body of delivery `i`: vehicle `i % vehicles`, its `k`-th event, with an
/// `oemUpdatedAt` that scrambles the vehicle's events (a permutation of its indexes).
fn body(prefix: &str, i: usize, vehicles: usize, per_vehicle: usize) -> String {
    let v = i % vehicles;
    let k = i / vehicles;
    let scrambled = (k * 7919 + v * 13) % per_vehicle;
    let oem = 1_760_000_000_000i64 + scrambled as i64 * 1_000;
    let now = chrono::Utc::now().timestamp_millis();
    format!(
        r#"{{"eventId":"{prefix}-{i}","eventType":"VEHICLE_STATE","vehicleId":"veh-{v}","data":{{"user":{{"id":"u-{v}"}},"vehicle":{{"id":"veh-{v}","make":"TESLA","model":"Model 3","year":2020}},"triggers":[{{"code":"tractionbattery-stateofcharge","name":"StateOfCharge","group":"TractionBattery"}}],"signals":[{{"code":"tractionbattery-stateofcharge","name":"StateOfCharge","group":"TractionBattery","body":{{"unit":"percent","value":{}}},"meta":{{"oemUpdatedAt":{oem},"fetchedAt":{now}}}}},{{"code":"odometer-traveleddistance","name":"TraveledDistance","group":"Odometer","body":{{"unit":"km","value":{k}.5}},"meta":{{"oemUpdatedAt":{oem},"fetchedAt":{now}}}}}]}},"meta":{{"version":"4.0","deliveryId":"d-{prefix}-{i}","deliveredAt":{now},"webhookId":"5a8e5e38-1e12-4011-a36d-56f120053f9e","webhookName":"Bench","signalCount":2,"mode":"LIVE"}}}}"#,
        k % 100
    )
}

/// Sends `total` deliveries with `senders` concurrent clients: the time to 2xx of each.
async fn send_all(
    url: &str,
    prefix: &'static str,
    total: usize,
    args: &Args,
) -> (Duration, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.senders)
        .build()
        .unwrap();
    let per_vehicle = total.div_ceil(args.vehicles).max(1);
    assert!(!per_vehicle.is_multiple_of(7919));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.senders)
        .map(|_| {
            let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
            let vehicles = args.vehicles;
            tokio::spawn(async move {
                let mut times = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return times;
                    }
                    let body = body(prefix, i, vehicles, per_vehicle);
                    let signature = sign(AMT, body.as_bytes());
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header(SIGNATURE_HEADER, signature)
                        .body(body)
                        .send()
                        .await
                        .expect("the receiver answers");
                    let status = response.status();
                    let _ = response.bytes().await;
                    assert!(status.is_success(), "delivery {i} answered {status}");
                    times.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut times = Vec::with_capacity(total);
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    (start.elapsed(), times)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Step 1 on one database: returns how many deliveries were accepted (warm-up included).
async fn receive_round(name: &str, pipeline: &WebhookPipeline, args: &Args) -> u64 {
    let app: axum::Router =
        axum::Router::new().route("/webhooks", smartcar::pipeline::axum::route(pipeline));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    send_all(&url, "warmup", WARMUP, args).await;
    let (elapsed, mut times) = send_all(&url, "bench", args.deliveries, args).await;
    times.sort();
    let rate = args.deliveries as f64 / elapsed.as_secs_f64();
    let p99 = percentile(&times, 0.99);
    let queued = pipeline.stats().await.unwrap().queued;
    let expected = (WARMUP + args.deliveries) as u64;
    println!("\n== receiving: {name} ==");
    println!(
        "{} deliveries, {} concurrent senders, {} vehicles: {:.2} s",
        args.deliveries,
        args.senders,
        args.vehicles,
        elapsed.as_secs_f64()
    );
    println!(
        "accepted: {rate:.0} deliveries/s   (target >= 5000: {})",
        if rate >= 5000.0 { "met" } else { "MISSED" }
    );
    println!(
        "time to 2xx: p50 {}  p90 {}  p99 {}  max {}   (target p99 < 50 ms: {})",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(p99),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
        if p99 < Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("in the queue afterwards: {queued} (expected {expected}: every 2xx was stored)");
    assert_eq!(queued, expected, "every accepted delivery is in the queue");
    server.abort();
    queued
}

const EFFECTS: &str = "CREATE TABLE IF NOT EXISTS bench_effects (
    dedup_key TEXT PRIMARY KEY,
    vehicle TEXT NOT NULL,
    oem_ms BIGINT NOT NULL,
    seq BIGSERIAL,
    count INTEGER NOT NULL DEFAULT 1,
    attempt INTEGER NOT NULL,
    consumer TEXT NOT NULL
)";

/// Step 2: `--consumers` processes drain the queue, one is killed.
async fn consume_round(db: &str, pipeline: &WebhookPipeline, accepted: u64, args: &Args) {
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    sqlx::query(EFFECTS).execute(&pool).await.unwrap();
    println!(
        "\n== consuming: {} processes on PostgreSQL, one SIGKILLed after a third ==",
        args.consumers
    );
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let mut children: Vec<std::process::Child> = (0..args.consumers)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--consumer-child",
                    &format!("consumer-{i}"),
                    db,
                    &args.lease_ms.to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM bench_effects")
            .fetch_one(&pool)
            .await
            .unwrap() as u64
    };
    let mut killed_at = None;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let done = count().await;
        if killed_at.is_none() && done >= accepted / 3 {
            children[0].kill().unwrap(); // SIGKILL
            children[0].wait().unwrap();
            killed_at = Some((start.elapsed(), done));
            println!(
                "killed consumer-0 (SIGKILL) at {:.2} s, {done} effects committed",
                start.elapsed().as_secs_f64()
            );
        }
        if killed_at.is_some()
            && children[1..]
                .iter_mut()
                .all(|c| c.try_wait().unwrap().is_some())
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the consumers never finished"
        );
    }
    let elapsed = start.elapsed();
    for (i, child) in children.iter_mut().enumerate().skip(1) {
        let status = child.wait().unwrap();
        let mut out = String::new();
        use std::io::Read;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        println!("consumer-{i}: {} ({status})", out.trim());
    }

    let stats = pipeline.stats().await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM smartcar_webhook_seen")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (rows, min, max, retaken): (i64, Option<i32>, Option<i32>, i64) = sqlx::query_as(
        "SELECT count(*), min(count), max(count), count(*) FILTER (WHERE attempt > 1) FROM bench_effects",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM smartcar_webhook_seen s \
         WHERE NOT EXISTS (SELECT 1 FROM bench_effects e WHERE e.dedup_key = s.dedup_key)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let order_breaks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
            SELECT oem_ms < lag(oem_ms) OVER (PARTITION BY vehicle ORDER BY seq) AS broken
            FROM bench_effects) t WHERE broken",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let per_consumer: Vec<(String, i64)> = sqlx::query_as(
        "SELECT consumer, count(*) FROM bench_effects GROUP BY consumer ORDER BY consumer",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    println!(
        "drained {rows} events in {:.2} s ({:.0} events/s including the {} ms lease wait after the kill)",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        args.lease_ms
    );
    println!("effects per consumer: {per_consumer:?}");
    println!(
        "accepted deliveries: {seen}; effects: {rows}; missing: {missing}; counter min {} max {} (exactly once: {})",
        min.unwrap_or(0),
        max.unwrap_or(0),
        if rows == seen && missing == 0 && min == Some(1) && max == Some(1) {
            "yes"
        } else {
            "NO"
        }
    );
    println!(
        "events handed over again after the kill (attempt > 1): {retaken}; per-vehicle oemUpdatedAt order breaks: {order_breaks} ({})",
        if order_breaks == 0 {
            "in order"
        } else {
            "BROKEN"
        }
    );
    println!(
        "queue afterwards: {} queued, {} in flight, {} expired leases, {} dead letters",
        stats.queued, stats.in_flight, stats.expired_leases, stats.dead_letters
    );
    assert_eq!(rows, seen);
    assert_eq!((missing, min, max, order_breaks), (0, Some(1), Some(1), 0));
}

/// A consumer process of step 2: drains the queue with effects in the completion's
/// transaction, then prints what it did.
async fn consumer_child(name: String, db: String, lease_ms: u64) {
    let pipeline = WebhookPipeline::postgres(&db, verifier())
        .await
        .unwrap()
        .with_config(
            PipelineConfig::default()
                .lease(Duration::from_millis(lease_ms))
                .concurrency(8)
                .poll_interval(Duration::from_millis(20)),
        );
    let watcher = pipeline.clone();
    let empty = async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if watcher.stats().await.is_ok_and(|s| s.queued == 0) {
                return;
            }
        }
    };
    let started = Instant::now();
    let stats = pipeline
        .consumer()
        .run_in_transaction(
            |event, conn| {
                let name = name.clone();
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO bench_effects (dedup_key, vehicle, oem_ms, attempt, consumer)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (dedup_key) DO UPDATE SET count = bench_effects.count + 1",
                    )
                    .bind(&event.dedup_key)
                    .bind(event.vehicle_id.as_deref().unwrap_or(""))
                    .bind(event.oem_updated_at.map_or(0, |t| t.timestamp_millis()))
                    .bind(event.attempt as i32)
                    .bind(&name)
                    .execute(&mut *conn)
                    .await?;
                    Ok::<(), sqlx::Error>(())
                })
            },
            empty,
        )
        .await
        .unwrap();
    println!(
        "handled {} (retried {}, lost {}) in {:.2} s",
        stats.handled,
        stats.retried,
        stats.lost,
        started.elapsed().as_secs_f64()
    );
}
