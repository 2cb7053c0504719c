//! A fleet read under the platform's limits (issue 19): 10 000 vehicles, each read once, by
//! clients whose limiter knows the application bucket, against the simulator enforcing the
//! same bucket, the per-vehicle throttle and the monthly allowance.
//!
//! ```text
//! cargo bench -p smartcar-sdk --features postgres --bench fleet_limits
//! cargo bench -p smartcar-sdk --features postgres --bench fleet_limits -- --vehicles 2000 --rate 300
//! DATABASE_URL=postgres://… cargo bench … -- --processes 4     # one PostgreSQL limiter, 4 clients
//! DATABASE_URL=postgres://… cargo bench … -- --postgres        # one client, its limiter in PostgreSQL
//! ```
//!
//! The parent starts the simulator (one user owning every vehicle, a token for all of them)
//! and runs the clients as child processes (this binary re-executed), so each client's peak
//! RSS (`VmHWM`) is its own. Each child reads its share of the vehicles with at most
//! `--concurrency` calls in flight; its limiter holds `--capacity`/`--rate` for the bucket, the
//! throttle (2 per 120 s) and a budget of 500 calls a month. It prints one line of counts.
//! The parent prints the achieved request rate against the rate the bucket allows over the
//! same time (`capacity + rate × seconds`), the refusals the simulator counted, and each
//! child's peak RSS.
//!
//! With `--processes N` above 1 the children share one `PostgresLimiterStore` on
//! `DATABASE_URL` (a fresh database `smartcar_bench_limits` is created), the setting of
//! several instances of one service.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use smartcar::limits::{LimiterStore, Limits, MemoryLimiterStore, MonthlyBudget};
use smartcar::store::MemoryTokenStore;
use smartcar::tokens::{AccessToken, RefreshToken, Tokens};
use smartcar::{Client, ErrorKind, Session};
use smartcar_sim::Simulator;
use smartcar_sim::limits::{AppBucket, Limits as PlatformLimits, VehicleThrottle};

mod common;

struct Options {
    vehicles: usize,
    capacity: u32,
    /// Tokens a second.
    rate: f64,
    concurrency: usize,
    processes: usize,
    /// The limiter in PostgreSQL even with one process.
    postgres: bool,
}

impl Options {
    fn parse(args: &[String]) -> Options {
        let mut o = Options {
            vehicles: 10_000,
            capacity: 100,
            rate: 500.0,
            concurrency: 256,
            processes: 1,
            postgres: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = || -> String {
                it.clone()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| panic!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--vehicles" => o.vehicles = value().parse().expect("--vehicles N"),
                "--capacity" => o.capacity = value().parse().expect("--capacity N"),
                "--rate" => o.rate = value().parse().expect("--rate PER_SECOND"),
                "--concurrency" => o.concurrency = value().parse().expect("--concurrency N"),
                "--processes" => o.processes = value().parse().expect("--processes N"),
                "--postgres" => {
                    o.postgres = true;
                    continue;
                }
                "--bench" => continue,
                other => panic!("unknown option {other}"),
            }
            it.next();
        }
        o
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if args.first().map(String::as_str) == Some("child") {
        runtime.block_on(child(&args[1..]));
    } else {
        runtime.block_on(parent(Options::parse(&args)));
    }
}

/// `child BASE TOKEN CLIENT_ID CAPACITY RATE CONCURRENCY DATABASE_URL|- IDS_FILE`
async fn child(args: &[String]) {
    let [
        base,
        token,
        client_id,
        capacity,
        rate,
        concurrency,
        database,
        ids,
    ] = args
    else {
        panic!("child: wrong arguments");
    };
    let capacity: u32 = capacity.parse().unwrap();
    let rate: f64 = rate.parse().unwrap();
    let concurrency: usize = concurrency.parse().unwrap();
    let ids: Vec<String> = std::fs::read_to_string(ids)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let store: Arc<dyn LimiterStore> = if database == "-" {
        Arc::new(MemoryLimiterStore::new())
    } else {
        Arc::new(
            smartcar::limits::PostgresLimiterStore::connect(database)
                .await
                .expect("PostgreSQL limiter store"),
        )
    };
    let client = Client::builder()
        .client_id(client_id.clone())
        .client_secret("bench-secret")
        .origin(base)
        .limits(
            Limits::default()
                .app_bucket(capacity, rate * 60.0)
                .vehicle_throttle(2, Duration::from_secs(120))
                .monthly_budget(MonthlyBudget::new(500))
                .max_wait(Duration::from_secs(3600)),
        )
        .limiter_store(store)
        .build()
        .unwrap();
    let now = chrono::Utc::now();
    let session = Session::create(
        &client,
        Arc::new(MemoryTokenStore::new()),
        "fleet",
        Tokens {
            access_token: AccessToken::new(token.clone()),
            refresh_token: RefreshToken::new("unused"),
            expires_at: now + chrono::Duration::hours(2),
            refresh_expires_at: now + chrono::Duration::days(60),
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    let results: Vec<Result<(), smartcar::Error>> = futures_util::stream::iter(ids)
        .map(|id| {
            let session = session.clone();
            async move { session.vehicle(id)?.odometer().await.map(|_| ()) }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let (mut ok, mut app429, mut vehicle429, mut billing, mut other) = (0, 0, 0, 0, 0);
    for r in &results {
        match r {
            Ok(()) => ok += 1,
            Err(e) => match (e.status(), e.api().and_then(|a| a.code.as_deref())) {
                (Some(429), Some("VEHICLE")) => vehicle429 += 1,
                (Some(429), _) => app429 += 1,
                (Some(430), _) => billing += 1,
                _ if e.kind() == ErrorKind::BudgetExhausted => billing += 1,
                _ => {
                    other += 1;
                    if other <= 3 {
                        eprintln!("child error: {e}");
                    }
                }
            },
        }
    }
    println!(
        "ok={ok} app429={app429} vehicle429={vehicle429} billing={billing} other={other} seconds={:.3} rss_kib={}",
        elapsed.as_secs_f64(),
        common::status_kib("VmHWM")
    );
}

async fn parent(o: Options) {
    let sim = Simulator::builder()
        .users(1)
        .vehicles(o.vehicles)
        .log_requests(false)
        .limits(PlatformLimits {
            app: Some(AppBucket {
                capacity: o.capacity,
                refill_per_minute: o.rate * 60.0,
            }),
            vehicle: Some(VehicleThrottle {
                burst: 2,
                window: Duration::from_secs(120),
            }),
            monthly_allowance: Some(500),
        })
        .start()
        .await
        .expect("simulator");
    let owner = sim.users()[0].id.clone();
    let ids = sim.users()[0].vehicle_ids.clone();
    assert_eq!(
        ids.len(),
        o.vehicles,
        "the simulator seeded another number of vehicles"
    );
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let token = sim
        .mint_access_token(&owner, &refs, &["read_odometer"])
        .access_token;
    let database = if o.processes > 1 || o.postgres {
        let url = std::env::var("DATABASE_URL")
            .expect("--processes above 1 shares a PostgreSQL limiter: set DATABASE_URL");
        common::fresh_database(&url, "smartcar_bench_limits").await
    } else {
        "-".to_owned()
    };
    let dir = std::env::temp_dir().join(format!("smartcar-fleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let client_id = sim.app().client_id.clone();
    let started = Instant::now();
    let mut children = Vec::new();
    for p in 0..o.processes {
        let share: Vec<&str> = refs.iter().skip(p).step_by(o.processes).copied().collect();
        let file = dir.join(format!("ids-{p}"));
        std::fs::write(&file, share.join("\n")).unwrap();
        children.push(
            Command::new(&exe)
                .args([
                    "child",
                    &sim.base_url(),
                    &token,
                    &client_id,
                    &o.capacity.to_string(),
                    &o.rate.to_string(),
                    &(o.concurrency / o.processes).max(1).to_string(),
                    &database,
                    file.to_str().unwrap(),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .expect("child"),
        );
    }
    let mut lines = Vec::new();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        lines.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let counters = sim.limits().counters();
    let ok: u64 = lines.iter().map(|l| field(l, "ok")).sum();
    // The children's own time (from their first call to their last answer), the slowest.
    let busy = lines
        .iter()
        .map(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix("seconds="))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(seconds)
        })
        .fold(0.0, f64::max);
    let allowed = f64::from(o.capacity) + o.rate * busy;
    println!(
        "fleet_limits: {} vehicles, {} process(es), bucket {}+{}/s, concurrency {}",
        o.vehicles, o.processes, o.capacity, o.rate, o.concurrency
    );
    for (i, l) in lines.iter().enumerate() {
        println!("  child {i}: {l}");
    }
    println!(
        "  {ok} reads in {busy:.2} s: {:.1}/s; the bucket allows {:.0} in that time: ratio {:.3}",
        ok as f64 / busy,
        allowed,
        ok as f64 / allowed
    );
    println!(
        "  simulator: 429 SMARTCAR_API {}, 429 VEHICLE {}, 430 {}, billed {}",
        counters.app_limited, counters.vehicle_throttled, counters.billing_refused, counters.billed
    );
    println!(
        "  peak RSS per client: {} MiB",
        lines
            .iter()
            .map(|l| format!("{:.1}", field(l, "rss_kib") as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
