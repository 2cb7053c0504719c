//! Throughput of the simulator: 64 keep-alive HTTP/1.1 connections send requests back to back
//! for about 5 seconds; prints requests per second.
//!
//! ```text
//! cargo bench -p smartcar-sim --bench throughput                       # GET /healthz
//! cargo bench -p smartcar-sim --bench throughput -- /v2.0/vehicles/{vehicle_id}/odometer
//! cargo bench -p smartcar-sim --bench throughput -- get_odometer      # an operationId: its path
//! cargo bench -p smartcar-sim --bench throughput -- /healthz 10 128   # path, seconds, connections
//! cargo bench -p smartcar-sim --bench throughput -- baseline          # bare axum, for scale
//! ```
//!
//! `baseline` serves `GET /healthz` from a bare axum router (no simulator, no middleware) with
//! the same client: the ceiling this machine and client allow.
//!
//! `{vehicle_id}` is replaced by a vehicle of the first user; every request carries a valid
//! access token for that user (all permissions). The client is a minimal hand-written HTTP/1.1
//! loop over tokio sockets, so that on a 2-core machine most of the CPU is left to the server.
//! The simulator runs in the same process with request logging off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smartcar_api::open_enums::Permission;
use smartcar_sim::Simulator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    path: String,
    seconds: u64,
    connections: usize,
}

fn options() -> Options {
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    Options {
        path: args.first().cloned().unwrap_or_else(|| "/healthz".into()),
        seconds: args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5),
        connections: args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64),
    }
}

/// Sends `request` and reads one response; returns the status.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buf[..head_end]).unwrap_or("");
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
        let total = head_end + 4 + length;
        while buf.len() < total {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Ok(status);
    }
}

#[tokio::main]
async fn main() {
    let options = options();
    let sim = Simulator::builder()
        .log_requests(false)
        .start()
        .await
        .expect("start the simulator");
    let user = sim.users()[0].clone();
    let vehicle_ids: Vec<&str> = user.vehicle_ids.iter().map(String::as_str).collect();
    let tokens = sim.mint_access_token(&user.id, &vehicle_ids, Permission::KNOWN);
    // An operationId of the spec (`get_odometer`) stands for its path template.
    let template = smartcar_api::op::Operation::by_id(&options.path)
        .map_or(options.path.as_str(), |op| op.path);
    let path = template.replace("{vehicle_id}", &user.vehicle_ids[0]);
    let mut addr = sim.addr();
    let mut bare = None;
    if options.path == "baseline" {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        bare = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }
    let path = if bare.is_some() {
        "/healthz".to_owned()
    } else {
        path
    };
    let request = Arc::new(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\n\r\n",
            tokens.access_token
        )
        .into_bytes(),
    );

    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..options.connections {
        let (request, ok, failed, stop) =
            (request.clone(), ok.clone(), failed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = stream.set_nodelay(true);
            while !stop.load(Ordering::Relaxed) {
                match exchange(&mut stream, &request, &mut buf).await {
                    Ok(status) if (200..300).contains(&status) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    // Warm up for half a second, then measure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_ok = ok.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    let done = ok.load(Ordering::Relaxed) - start_ok;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    println!(
        "GET {} — {} connections, {:.1} s: {} responses, {:.0} requests/s, {} failed",
        options.path,
        options.connections,
        elapsed,
        done,
        done as f64 / elapsed,
        failed.load(Ordering::Relaxed)
    );
    println!(
        "server counted {} requests on {} connections",
        sim.total_requests(),
        sim.connections_accepted()
    );
    if let Some(task) = bare {
        task.abort();
    }
    sim.shutdown().await;
}
