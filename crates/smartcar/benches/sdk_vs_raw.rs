//! What the SDK costs over hand-written HTTP, in one run (`cargo xtask bench`).
//!
//! ```text
//! cargo xtask bench                      # the full run: prints the table (about 1 minute)
//! cargo xtask bench -- --quick           # shorter rounds, for a smoke run
//! cargo bench -p smartcar-sdk --bench sdk_vs_raw -- --rounds 5 --seconds 3
//! ```
//!
//! The parent process starts a minimal axum server on 127.0.0.1 that answers
//! `GET /v2.0/vehicles/{id}/odometer` with a fixed body and the `sc-*` headers the platform
//! sends (it counts TCP accepts and requests, and checks nothing), and the simulator. The
//! clients run in child processes (this binary re-executed in `child` mode), so that each
//! child's peak RSS (`VmHWM` from `/proc/self/status`) is the client's own:
//!
//! - `sdk`: `session.vehicle(id)?.odometer()` through the public API;
//! - `raw`: a `reqwest::Client` GET of the same URL with the same headers (`authorization`,
//!   `sc-unit-system`, the same user agent), the body decoded into the same generated
//!   `Odometer` type — what hand-written code does;
//! - `raw-url` (instruction counts only): `raw` with the URL parsed once, a `Url` cloned per call;
//! - `raw-timeout`: `raw` with the SDK's default timeouts (310 s per request, 10 s to connect),
//!   to tell the cost of a per-request timer from the SDK's own;
//! - `wire`: a minimal HTTP/1.1 keep-alive loop over tokio sockets (no reqwest, no hyper), for
//!   the server's own ceiling on this machine.
//!
//! Throughput rounds alternate raw and SDK; the table shows the median of the rounds and, as
//! SDK/raw, the median of each round's ratio (raw and SDK ran back to back). The
//! parent itself measures TCP connections for 1 000 sequential calls, a batch of 10 reads against
//! 10 single reads, and the token path (1 000 concurrent calls across an expiry) against the
//! simulator.
//!
//! Two more modes help profiling (see BENCHMARKS.md):
//! `serve` runs the minimal server alone and prints its URL; `count <sdk|raw> <base-url> <n>`
//! sends `n` sequential calls to it and exits (run it under `valgrind --tool=callgrind` with two
//! values of `n`; the difference of the instruction counts over the difference of `n` is the
//! cost of one call).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use smartcar::api::{ops, types};
use smartcar::store::MemoryTokenStore;
use smartcar::tokens::{AccessToken, RefreshToken, Tokens};
use smartcar::v2::Vehicle;
use smartcar::{Client, Error, Session};
use smartcar_sim::Simulator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

/// The vehicle id the minimal server is asked about.
const VEHICLE_ID: &str = "36ab27d0-fd9d-4455-823a-ce30af709ffc";
/// The token the clients send to the minimal server (it checks nothing).
const TOKEN: &str = "bench-access-token-0123456789abcdef";
const ODOMETER_BODY: &str = r#"{"distance":104.32}"#;
const USER_AGENT: &str = concat!("smartcar-rs/", env!("CARGO_PKG_VERSION"));

// ---------------------------------------------------------------------------------------------
// The minimal server.

/// Counters of the minimal server.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    requests: AtomicU64,
}

struct CountingListener {
    inner: TcpListener,
    counters: Arc<Counters>,
}

impl axum::serve::Listener for CountingListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (TcpStream, std::net::SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    return (stream, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

/// Starts the minimal server on the current runtime; returns its base URL and counters.
async fn start_minimal_server() -> (String, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    let seen = counters.clone();
    let app = axum::Router::new().route(
        ops::GET_ODOMETER.path,
        axum::routing::get(move || {
            seen.requests.fetch_add(1, Ordering::Relaxed);
            async {
                (
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        ),
                        (
                            header::HeaderName::from_static("sc-data-age"),
                            HeaderValue::from_static("2026-11-23T10:00:00.000Z"),
                        ),
                        (
                            header::HeaderName::from_static("sc-fetched-at"),
                            HeaderValue::from_static("2026-11-23T10:00:01.000Z"),
                        ),
                        (
                            header::HeaderName::from_static("sc-unit-system"),
                            HeaderValue::from_static("metric"),
                        ),
                        (
                            header::HeaderName::from_static("sc-request-id"),
                            HeaderValue::from_static("5d8b1d3c-6f0a-4f8e-9a55-0c1f3b2a9e77"),
                        ),
                    ],
                    ODOMETER_BODY,
                )
                    .into_response()
            }
        }),
    );
    let listener = CountingListener {
        inner: listener,
        counters: counters.clone(),
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), counters)
}

// ---------------------------------------------------------------------------------------------
// The clients.

/// One way of reading the odometer.
#[derive(Clone)]
enum Caller {
    Sdk(Vehicle),
    Raw {
        http: reqwest::Client,
        url: Arc<str>,
        auth: HeaderValue,
    },
    /// Raw with the URL parsed once (`raw-url`).
    RawUrl {
        http: reqwest::Client,
        url: reqwest::Url,
        auth: HeaderValue,
    },
}

impl Caller {
    async fn new(kind: &str, base: &str) -> Caller {
        match kind {
            "sdk" => Caller::Sdk(sdk_vehicle(base).await),
            "raw" | "raw-timeout" => {
                let mut builder = reqwest::Client::builder()
                    .user_agent(USER_AGENT)
                    .redirect(reqwest::redirect::Policy::none());
                if kind == "raw-timeout" {
                    // The SDK's defaults: a timer per request.
                    builder = builder
                        .timeout(smartcar::config::DEFAULT_TIMEOUT)
                        .connect_timeout(Duration::from_secs(10));
                }
                let http = builder.build().expect("reqwest client");
                let mut auth =
                    HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("header value");
                auth.set_sensitive(true);
                Caller::Raw {
                    http,
                    url: format!("{base}{}", ops::GetOdometer::path(VEHICLE_ID)).into(),
                    auth,
                }
            }
            "raw-url" => match Box::pin(Caller::new("raw", base)).await {
                Caller::Raw { http, url, auth } => Caller::RawUrl {
                    http,
                    url: reqwest::Url::parse(&url).expect("URL"),
                    auth,
                },
                _ => unreachable!("`raw` builds a raw caller"),
            },
            other => panic!("unknown client `{other}` (sdk, raw, raw-url or raw-timeout)"),
        }
    }

    async fn call(&self) -> Result<f64, String> {
        match self {
            Caller::Sdk(vehicle) => vehicle
                .odometer()
                .await
                .map(|r| r.data.distance)
                .map_err(|e| e.to_string()),
            // As hand-written code does: the URL parsed from a string on every call…
            Caller::Raw { http, url, auth } => raw_odometer(http.get(&**url), auth).await,
            // …or kept parsed and cloned.
            Caller::RawUrl { http, url, auth } => raw_odometer(http.get(url.clone()), auth).await,
        }
    }
}

/// Sends a raw odometer request with the headers the SDK sends, and decodes the body into the
/// same generated type.
async fn raw_odometer(request: reqwest::RequestBuilder, auth: &HeaderValue) -> Result<f64, String> {
    let response = request
        .header(header::AUTHORIZATION, auth.clone())
        .header("sc-unit-system", "metric")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    let odometer: types::Odometer = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(odometer.distance)
}

/// A vehicle handle of an SDK session on `base` (every host there), with a token valid for two
/// hours.
async fn sdk_vehicle(base: &str) -> Vehicle {
    let client = Client::builder()
        .client_id("bench-client")
        .client_secret("bench-secret")
        .origin(base)
        .build()
        .expect("SDK client");
    let now = chrono::Utc::now();
    let tokens = Tokens {
        access_token: AccessToken::new(TOKEN),
        refresh_token: RefreshToken::new("bench-refresh-token"),
        expires_at: now + chrono::Duration::hours(2),
        refresh_expires_at: now + chrono::Duration::days(60),
    };
    let session = Session::create(
        &client,
        Arc::new(MemoryTokenStore::new()),
        "bench-user",
        tokens,
    )
    .await
    .expect("session");
    session.vehicle(VEHICLE_ID).expect("vehicle id")
}

/// CPU time this process has used (user + system, every thread), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in clock
    // ticks, which are 1/100 s on Linux (USER_HZ).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// What a load run measured.
struct Measured {
    rps: f64,
    failed: u64,
    /// Client CPU time per completed call.
    cpu_per_call: Duration,
}

/// `in_flight` tasks call back to back; counts completions over `measure` after `warmup`.
async fn load(caller: Caller, in_flight: usize, warmup: Duration, measure: Duration) -> Measured {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (caller, ok, failed, stop) =
                (caller.clone(), ok.clone(), failed.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match caller.call().await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let before = ok.load(Ordering::Relaxed);
    let (started, cpu_before) = (Instant::now(), cpu_time());
    tokio::time::sleep(measure).await;
    let done = ok.load(Ordering::Relaxed) - before;
    let (elapsed, cpu) = (started.elapsed().as_secs_f64(), cpu_time() - cpu_before);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Measured {
        rps: done as f64 / elapsed,
        failed: failed.load(Ordering::Relaxed),
        cpu_per_call: cpu / u32::try_from(done.max(1)).unwrap_or(u32::MAX),
    }
}

/// The minimal HTTP/1.1 client: `connections` keep-alive sockets sending `request` back to back.
async fn wire_load(
    addr: String,
    request: Arc<Vec<u8>>,
    connections: usize,
    warmup: Duration,
    measure: Duration,
) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, request, ok, failed, stop) = (
                addr.clone(),
                request.clone(),
                ok.clone(),
                failed.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let Ok(mut stream) = TcpStream::connect(&addr).await else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let _ = stream.set_nodelay(true);
                let mut buf = Vec::with_capacity(4096);
                while !stop.load(Ordering::Relaxed) {
                    match exchange(&mut stream, &request, &mut buf).await {
                        Ok(200..=299) => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => failed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let before = ok.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    let done = ok.load(Ordering::Relaxed) - before;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (done as f64 / elapsed, failed.load(Ordering::Relaxed))
}

/// Writes one request and reads one response (`content-length` framed); returns the status.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    let (head_end, status, length) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            break (end, status, length);
        }
        if buf.len() > 1 << 20 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    };
    while buf.len() < head_end + 4 + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// `child <sdk|raw> <in-flight> <base-url> <warmup-ms> <measure-ms>` or
/// `child wire <connections> <host:port> <warmup-ms> <measure-ms> <path> <token>`:
/// prints `rps=<f64> failed=<n> cpu_ns=<per call> base_kib=<n> hwm_kib=<n>` (`base`: resident set once the
/// runtime and the client are built, before the first call).
fn child(args: &[String]) {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let kind = arg(0).to_owned();
    let in_flight: usize = arg(1).parse().expect("in-flight count");
    let base = arg(2).to_owned();
    let warmup = Duration::from_millis(arg(3).parse().expect("warm-up ms"));
    let measure = Duration::from_millis(arg(4).parse().expect("measure ms"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut base_kib = 0;
    let m = runtime.block_on(async {
        if kind == "wire" {
            let request = format!(
                "GET {} HTTP/1.1\r\nHost: {base}\r\nAuthorization: Bearer {}\r\nsc-unit-system: metric\r\n\r\n",
                arg(5),
                arg(6)
            );
            let (rps, failed) = wire_load(
                base.clone(),
                Arc::new(request.into_bytes()),
                in_flight,
                warmup,
                measure,
            )
            .await;
            Measured {
                rps,
                failed,
                cpu_per_call: Duration::ZERO,
            }
        } else {
            let caller = Caller::new(&kind, &base).await;
            base_kib = common::status_kib("VmRSS");
            load(caller, in_flight, warmup, measure).await
        }
    });
    println!(
        "rps={} failed={} cpu_ns={} base_kib={base_kib} hwm_kib={}",
        m.rps,
        m.failed,
        m.cpu_per_call.as_nanos(),
        common::status_kib("VmHWM")
    );
}

/// `count <sdk|raw> <base-url> <n>`: `n` sequential calls, on a current-thread runtime.
fn count(args: &[String]) {
    let kind = args.first().expect("sdk or raw").clone();
    let base = args.get(1).expect("base URL").clone();
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).expect("count");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let caller = Caller::new(&kind, &base).await;
        for _ in 0..n {
            caller.call().await.expect("call");
        }
    });
}

/// `serve`: the minimal server alone, until killed.
fn serve() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (url, _) = start_minimal_server().await;
        println!("{url}");
        std::future::pending::<()>().await;
    });
}

// ---------------------------------------------------------------------------------------------
// The parent: runs the children and its own measurements, prints the table.

struct Options {
    callgrind: bool,
    rounds: usize,
    warmup_ms: u64,
    measure_ms: u64,
}

fn options(args: &[String]) -> Options {
    let mut o = Options {
        callgrind: true,
        rounds: 5,
        warmup_ms: 300,
        measure_ms: 1500,
    };
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<f64>().ok());
        match args[i].as_str() {
            "--no-callgrind" => o.callgrind = false,
            "--quick" => {
                o.rounds = 1;
                o.warmup_ms = 200;
                o.measure_ms = 500;
            }
            "--rounds" => {
                o.rounds = value.expect("--rounds N").max(1.0) as usize;
                i += 1;
            }
            "--seconds" => {
                o.measure_ms = (value.expect("--seconds S") * 1000.0) as u64;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    o
}

/// One child run's result.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rps: f64,
    failed: u64,
    cpu_ns: f64,
    base_kib: u64,
    hwm_kib: u64,
}

fn run_child(args: &[&str]) -> Sample {
    let exe = std::env::current_exe().expect("current executable");
    let out = Command::new(exe)
        .arg("child")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child {args:?} failed: {text}");
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("child {args:?} printed no {name}: {text}"))
            .to_owned()
    };
    Sample {
        rps: field("rps").parse().expect("rps"),
        failed: field("failed").parse().expect("failed"),
        cpu_ns: field("cpu_ns").parse().expect("cpu"),
        base_kib: field("base_kib").parse().expect("base"),
        hwm_kib: field("hwm_kib").parse().expect("hwm"),
    }
}

/// Instructions of one sequential call (SDK, raw, raw with its URL parsed once) by callgrind: the `count` mode with 500 and
/// 1 500 calls, the difference over 1 000 (start-up cancels out).
fn instructions_per_call(base: &str) -> Result<(f64, f64, f64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir();
    let run = |kind: &str, n: u64| -> Result<f64, String> {
        let out_file = dir.join(format!(
            "sdk_vs_raw.callgrind.{}.{kind}.{n}",
            std::process::id()
        ));
        let out = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .arg(&exe)
            .args(["count", kind, base, &n.to_string()])
            .output()
            .map_err(|e| format!("cannot run valgrind: {e}"))?;
        let _ = std::fs::remove_file(&out_file);
        let text = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!("valgrind failed: {text}"));
        }
        text.lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| "no instruction count in valgrind's output".to_owned())
    };
    eprintln!("  callgrind: counting instructions of 500 and 1500 sequential calls…");
    let per =
        |kind: &str| -> Result<f64, String> { Ok((run(kind, 1500)? - run(kind, 500)?) / 1000.0) };
    Ok((per("sdk")?, per("raw")?, per("raw-url")?))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `a - b` with its sign.
fn ms_delta(a: Duration, b: Duration) -> String {
    if a >= b {
        format!("+{}", ms(a - b))
    } else {
        format!("−{}", ms(b - a))
    }
}

/// Table rows: (measurement, SDK, raw/other, ratio or note, target, met?).
struct Row {
    what: String,
    sdk: String,
    other: String,
    ratio: String,
    target: &'static str,
    met: Option<bool>,
}

fn row(
    what: impl Into<String>,
    sdk: impl Into<String>,
    other: impl Into<String>,
    ratio: impl Into<String>,
    target: &'static str,
    met: Option<bool>,
) -> Row {
    Row {
        what: what.into(),
        sdk: sdk.into(),
        other: other.into(),
        ratio: ratio.into(),
        target,
        met,
    }
}

/// Connections the minimal server accepts for 1 000 sequential calls of a fresh client.
async fn connections_for_1000(kind: &str, base: &str, counters: &Counters) -> (u64, u64) {
    let caller = Caller::new(kind, base).await;
    let before = counters.accepted.load(Ordering::Relaxed);
    let mut failed = 0;
    for _ in 0..1000 {
        if caller.call().await.is_err() {
            failed += 1;
        }
    }
    (counters.accepted.load(Ordering::Relaxed) - before, failed)
}

/// The simulator, its first user's first vehicle, and an SDK session on it that follows the
/// simulator's clock, with tokens minted for all permissions.
async fn sim_session(sim: &Simulator) -> (Vehicle, String, String) {
    let state = sim.state().clone();
    let app = sim.app();
    let client = Client::builder()
        .client_id(app.client_id.clone())
        .client_secret(app.client_secret.clone())
        .origin(&sim.base_url())
        .clock(move || state.now())
        .build()
        .expect("client");
    let user = sim.users()[0].clone();
    let vehicle_ids: Vec<&str> = user.vehicle_ids.iter().map(String::as_str).collect();
    let minted = sim.mint_access_token(
        &user.id,
        &vehicle_ids,
        smartcar::api::open_enums::Permission::KNOWN,
    );
    let now = sim.now();
    let tokens = Tokens {
        access_token: AccessToken::new(minted.access_token.clone()),
        refresh_token: RefreshToken::new(minted.refresh_token),
        expires_at: now + chrono::Duration::from_std(sim.config().access_token_ttl).expect("ttl"),
        refresh_expires_at: now
            + chrono::Duration::from_std(sim.config().refresh_token_ttl).expect("ttl"),
    };
    let session = Session::create(
        &client,
        Arc::new(MemoryTokenStore::new()),
        "bench-user",
        tokens,
    )
    .await
    .expect("session");
    let id = user.vehicle_ids[0].clone();
    (
        session.vehicle(id.clone()).expect("vehicle"),
        ops::GetOdometer::path(&id),
        minted.access_token,
    )
}

/// The 15 v2.0 reads a batch can carry, by index. Kept as a list of SDK methods on purpose:
/// the bench measures the public API (`Vehicle`'s and `BatchBuilder`'s methods), which names
/// each read by method, not by operation.
const READS: usize = 15;

async fn single_read(v: &Vehicle, i: usize) -> Result<(), Error> {
    match i {
        0 => v.attributes().await.map(drop),
        1 => v.vin().await.map(drop),
        2 => v.odometer().await.map(drop),
        3 => v.location().await.map(drop),
        4 => v.fuel().await.map(drop),
        5 => v.battery().await.map(drop),
        6 => v.battery_capacity().await.map(drop),
        7 => v.nominal_capacity().await.map(drop),
        8 => v.charge().await.map(drop),
        9 => v.charge_limit().await.map(drop),
        10 => v.engine_oil().await.map(drop),
        11 => v.tire_pressure().await.map(drop),
        12 => v.lock_status().await.map(drop),
        13 => v.diagnostic_system_status().await.map(drop),
        _ => v.diagnostic_trouble_codes().await.map(drop),
    }
}

fn add_read(b: smartcar::v2::BatchBuilder<'_>, i: usize) -> smartcar::v2::BatchBuilder<'_> {
    match i {
        0 => b.attributes(),
        1 => b.vin(),
        2 => b.odometer(),
        3 => b.location(),
        4 => b.fuel(),
        5 => b.battery(),
        6 => b.battery_capacity(),
        7 => b.nominal_capacity(),
        8 => b.charge(),
        9 => b.charge_limit(),
        10 => b.engine_oil(),
        11 => b.tire_pressure(),
        12 => b.lock_status(),
        13 => b.diagnostic_system_status(),
        _ => b.diagnostic_trouble_codes(),
    }
}

/// Batch of 10 reads vs the same 10 as single calls (sequential and concurrent), against the
/// simulator: time per 10 reads and HTTP requests sent.
async fn batch_vs_single(sim: &Simulator, vehicle: &Vehicle, iterations: u32) -> Vec<Row> {
    // Ten reads this vehicle answers (a 501 would be retried as a single call).
    let mut chosen = Vec::new();
    for i in 0..READS {
        if chosen.len() == 10 {
            break;
        }
        if single_read(vehicle, i).await.is_ok() {
            chosen.push(i);
        }
    }
    let n = chosen.len();
    let before = sim.total_requests();
    let started = Instant::now();
    for _ in 0..iterations {
        let mut b = vehicle.batch();
        for &i in &chosen {
            b = add_read(b, i);
        }
        let r = b.send().await.expect("batch");
        assert_eq!(r.items().len(), n);
    }
    let batch = started.elapsed() / iterations;
    let batch_requests = (sim.total_requests() - before) as f64 / f64::from(iterations);

    let before = sim.total_requests();
    let started = Instant::now();
    for _ in 0..iterations {
        for &i in &chosen {
            single_read(vehicle, i).await.expect("single read");
        }
    }
    let sequential = started.elapsed() / iterations;
    let sequential_requests = (sim.total_requests() - before) as f64 / f64::from(iterations);

    let started = Instant::now();
    for _ in 0..iterations {
        let calls = chosen.iter().map(|&i| single_read(vehicle, i));
        for r in futures_util::future::join_all(calls).await {
            r.expect("single read");
        }
    }
    let concurrent = started.elapsed() / iterations;
    vec![
        row(
            format!("{n} reads: one batch vs {n} sequential single calls (simulator)"),
            format!("{} ({batch_requests:.0} request)", ms(batch)),
            format!("{} ({sequential_requests:.0} requests)", ms(sequential)),
            format!(
                "batch is {:.1}× faster",
                sequential.as_secs_f64() / batch.as_secs_f64()
            ),
            "reported",
            None,
        ),
        row(
            format!("{n} reads: one batch vs {n} concurrent single calls (simulator)"),
            ms(batch),
            ms(concurrent),
            format!(
                "batch is {:.1}× faster",
                concurrent.as_secs_f64() / batch.as_secs_f64()
            ),
            "reported",
            None,
        ),
    ]
}

/// `calls` concurrent odometer reads; sorted latencies and wall time.
async fn burst(vehicle: &Vehicle, calls: usize) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..calls)
        .map(|_| {
            let v = vehicle.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                v.odometer().await.map(|_| t.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(calls);
    for t in tasks {
        latencies.push(t.await.expect("task").expect("odometer"));
    }
    let wall = started.elapsed();
    latencies.sort();
    (latencies, wall)
}

/// 1 000 concurrent calls with a valid token, then 1 000 across an expiry; `rounds` times.
async fn token_path(sim: &Simulator, vehicle: &Vehicle, rounds: usize) -> Vec<Row> {
    let ttl = sim.config().access_token_ttl;
    let mut refreshes = Vec::new();
    let (mut base_wall, mut exp_wall, mut base_p50, mut exp_p50, mut base_max, mut exp_max) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    // Fill the pool first: the first burst opens its connections.
    burst(vehicle, 1000).await;
    for _ in 0..rounds {
        let (lat, wall) = burst(vehicle, 1000).await;
        base_wall.push(wall.as_secs_f64());
        base_p50.push(percentile(&lat, 0.5).as_secs_f64());
        base_max.push(percentile(&lat, 1.0).as_secs_f64());
        // Into the refresh skew (5 minutes) of the token in use.
        sim.advance(ttl - Duration::from_secs(60));
        let before = sim.refresh_count();
        let (lat, wall) = burst(vehicle, 1000).await;
        refreshes.push(sim.refresh_count() - before);
        exp_wall.push(wall.as_secs_f64());
        exp_p50.push(percentile(&lat, 0.5).as_secs_f64());
        exp_max.push(percentile(&lat, 1.0).as_secs_f64());
    }
    let d = |v: Vec<f64>| Duration::from_secs_f64(median(v));
    let (bw, ew, bp, ep, bm, em) = (
        d(base_wall),
        d(exp_wall),
        d(base_p50),
        d(exp_p50),
        d(base_max),
        d(exp_max),
    );
    let all_one = refreshes.iter().all(|&r| r == 1);
    vec![
        row(
            "refresh requests per expiry, 1000 concurrent calls (simulator)",
            format!("{refreshes:?}"),
            "",
            "",
            "1",
            Some(all_one),
        ),
        row(
            "1000 concurrent calls: wall time across an expiry vs valid token",
            ms(ew),
            ms(bw),
            ms_delta(ew, bw),
            "reported",
            None,
        ),
        row(
            "  same, median call latency",
            ms(ep),
            ms(bp),
            ms_delta(ep, bp),
            "reported",
            None,
        ),
        row(
            "  same, slowest call",
            ms(em),
            ms(bm),
            ms_delta(em, bm),
            "reported",
            None,
        ),
    ]
}

fn parent(o: &Options) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (base, counters) = runtime.block_on(start_minimal_server());
    let sim = runtime
        .block_on(Simulator::builder().log_requests(false).start())
        .expect("start the simulator");
    let (sim_vehicle, sim_path, sim_token) = runtime.block_on(sim_session(&sim));
    let (w, m) = (o.warmup_ms.to_string(), o.measure_ms.to_string());
    let minimal_addr = base.trim_start_matches("http://").to_owned();
    let minimal_path = ops::GetOdometer::path(VEHICLE_ID);
    let sim_addr = sim.addr().to_string();

    eprintln!(
        "sdk_vs_raw: {} round(s) of {} ms (+{} ms warm-up) per client and concurrency",
        o.rounds, o.measure_ms, o.warmup_ms
    );
    let modes = [
        ("raw", "1"),
        ("sdk", "1"),
        ("raw", "64"),
        ("sdk", "64"),
        ("raw-timeout", "1"),
        ("raw-timeout", "64"),
    ];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); modes.len()];
    let mut wire_minimal = Vec::new();
    let mut wire_sim = Vec::new();
    for round in 0..o.rounds {
        for (i, (kind, n)) in modes.iter().enumerate() {
            let s = run_child(&[kind, n, &base, &w, &m]);
            eprintln!(
                "  round {}: {kind} x{n}: {:.0} req/s, {:.1} µs CPU/call, {} failed, RSS {} KiB before the first call, peak {} KiB",
                round + 1,
                s.rps,
                s.cpu_ns / 1000.0,
                s.failed,
                s.base_kib,
                s.hwm_kib
            );
            samples[i].push(s);
        }
        let s = run_child(&["wire", "64", &minimal_addr, &w, &m, &minimal_path, TOKEN]);
        eprintln!(
            "  round {}: wire x64 → minimal server: {:.0} req/s",
            round + 1,
            s.rps
        );
        wire_minimal.push(s);
        let s = run_child(&["wire", "64", &sim_addr, &w, &m, &sim_path, &sim_token]);
        eprintln!(
            "  round {}: wire x64 → simulator odometer: {:.0} req/s, {} failed",
            round + 1,
            s.rps,
            s.failed
        );
        wire_sim.push(s);
    }
    let rps = |i: usize| median(samples[i].iter().map(|s| s.rps).collect());
    let hwm = |i: usize| samples[i].iter().map(|s| s.hwm_kib).max().unwrap_or(0);
    let base_rss = |i: usize| samples[i].iter().map(|s| s.base_kib).max().unwrap_or(0);
    let failed: u64 = samples.iter().flatten().map(|s| s.failed).sum();
    let (raw1, sdk1, raw64, sdk64) = (rps(0), rps(1), rps(2), rps(3));
    // Each round runs raw then SDK back to back: the ratio of a round compares neighbours, which
    // a shared machine's drifting load disturbs less than the ratio of the medians.
    let paired = |sdk: usize, raw: usize| {
        let ratios: Vec<f64> = samples[sdk]
            .iter()
            .zip(&samples[raw])
            .map(|(s, r)| s.rps / r.rps)
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        (median(ratios), lo, hi)
    };
    let (ratio1, lo1, hi1) = paired(1, 0);
    let (ratio64, lo64, hi64) = paired(3, 2);
    let cpu = |i: usize| median(samples[i].iter().map(|s| s.cpu_ns / 1000.0).collect());
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);

    let mut rows = vec![
        row(
            "odometer req/s, sequential (minimal server)",
            format!("{sdk1:.0}"),
            format!("{raw1:.0}"),
            format!("{ratio1:.2} (rounds {lo1:.2}–{hi1:.2})"),
            "≥ 0.9",
            Some(ratio1 >= 0.9),
        ),
        row(
            "odometer req/s, 64 in flight (minimal server)",
            format!("{sdk64:.0}"),
            format!("{raw64:.0}"),
            format!("{ratio64:.2} (rounds {lo64:.2}–{hi64:.2})"),
            "≥ 0.9",
            Some(ratio64 >= 0.9),
        ),
        row(
            "client CPU per call, sequential (µs; SDK/raw = raw CPU / SDK CPU)",
            format!("{:.1}", cpu(1)),
            format!("{:.1}", cpu(0)),
            format!("{:.2}", cpu(0) / cpu(1)),
            "≥ 0.9",
            Some(cpu(0) / cpu(1) >= 0.9),
        ),
        row(
            "client CPU per call, 64 in flight (µs)",
            format!("{:.1}", cpu(3)),
            format!("{:.1}", cpu(2)),
            format!("{:.2}", cpu(2) / cpu(3)),
            "≥ 0.9",
            Some(cpu(2) / cpu(3) >= 0.9),
        ),
        row(
            "  raw reqwest with the SDK's timeouts (310 s request, 10 s connect): CPU µs/call, sequential / 64 in flight",
            format!("{:.1} / {:.1}", cpu(1), cpu(3)),
            format!("{:.1} / {:.1}", cpu(4), cpu(5)),
            format!("{:.2} / {:.2}", cpu(4) / cpu(1), cpu(5) / cpu(3)),
            "reported",
            None,
        ),
        row(
            "  raw reqwest with the SDK's timeouts: req/s, sequential / 64 in flight",
            format!("{sdk1:.0} / {sdk64:.0}"),
            format!("{:.0} / {:.0}", rps(4), rps(5)),
            format!("{:.2} / {:.2}", sdk1 / rps(4), sdk64 / rps(5)),
            "reported",
            None,
        ),
        row(
            "peak RSS of the client process, 64 in flight",
            mib(hwm(3)),
            mib(hwm(2)),
            format!("{:.2}", hwm(3) as f64 / hwm(2).max(1) as f64),
            "< 10 MiB",
            Some(hwm(3) < 10 * 1024),
        ),
        row(
            "  of which resident before the first call (runtime + client built)",
            mib(base_rss(3)),
            mib(base_rss(2)),
            "",
            "reported",
            None,
        ),
    ];
    // Fresh clients, several times: the count depends on a race inside hyper's pool.
    let (mut sdk_conns, mut raw_conns, mut sdk_failed, mut raw_failed) = (vec![], vec![], 0, 0);
    for _ in 0..5 {
        let (c, f) = runtime.block_on(connections_for_1000("sdk", &base, &counters));
        sdk_conns.push(c);
        sdk_failed += f;
        let (c, f) = runtime.block_on(connections_for_1000("raw", &base, &counters));
        raw_conns.push(c);
        raw_failed += f;
    }
    rows.push(row(
        "TCP connections opened for 1000 sequential calls (5 fresh clients each)",
        format!("{sdk_conns:?}"),
        format!("{raw_conns:?}"),
        "",
        "1",
        Some(sdk_conns.iter().all(|&c| c == 1)),
    ));
    let iterations = if o.rounds > 1 { 200 } else { 50 };
    rows.extend(runtime.block_on(batch_vs_single(&sim, &sim_vehicle, iterations)));
    rows.extend(runtime.block_on(token_path(&sim, &sim_vehicle, o.rounds)));
    if o.callgrind {
        match instructions_per_call(&base) {
            Ok((sdk, raw, raw_url)) => {
                rows.push(row(
                    "instructions per sequential call (callgrind, client process)",
                    format!("{sdk:.0}"),
                    format!("{raw:.0}"),
                    format!("{:.3}", raw / sdk),
                    "≥ 0.9",
                    Some(raw / sdk >= 0.9),
                ));
                rows.push(row(
                    "  same, raw reqwest with its URL parsed once (`Url`, cloned per call)",
                    format!("{sdk:.0}"),
                    format!("{raw_url:.0}"),
                    format!("{:.3}", raw_url / sdk),
                    "≥ 0.9",
                    Some(raw_url / sdk >= 0.9),
                ));
            }
            Err(e) => eprintln!("callgrind skipped: {e}"),
        }
    }
    let wm = median(wire_minimal.iter().map(|s| s.rps).collect());
    let ws = median(wire_sim.iter().map(|s| s.rps).collect());
    let sim_failed: u64 = wire_sim.iter().map(|s| s.failed).sum();
    rows.push(row(
        "simulator req/s: authenticated odometer, 64 connections, minimal client",
        format!("{ws:.0}"),
        format!("{wm:.0} (minimal server)"),
        format!("{:.2}", ws / wm),
        "≥ 50000",
        Some(ws >= 50_000.0 && sim_failed == 0),
    ));

    println!();
    println!(
        "req/s are medians of {} rounds; SDK/raw is the median of the rounds' ratios",
        o.rounds
    );
    println!();
    println!(
        "| measurement | SDK (or simulator) | raw reqwest (or reference) | SDK/raw | target | met |"
    );
    println!("|---|---:|---:|---:|---|---|");
    for r in &rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.what, r.sdk, r.other, r.ratio, r.target, met
        );
    }
    println!();
    println!(
        "failed calls: {failed} in the throughput runs, {sdk_failed} SDK / {raw_failed} raw in the \
         connection count, {sim_failed} against the simulator; minimal server: {} requests on {} \
         connections",
        counters.requests.load(Ordering::Relaxed),
        counters.accepted.load(Ordering::Relaxed)
    );
    runtime.block_on(sim.shutdown());
}

fn main() {
    // `cargo bench` passes `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        Some("count") => count(&args[1..]),
        Some("serve") => serve(),
        _ => parent(&options(&args)),
    }
}
