//! The whole Smartcar flow, start to finish:
//!
//! ```sh
//! cargo run -p smartcar-sdk --example quickstart
//! ```
//!
//! With no configuration it runs against the embedded simulator (no credentials, no network):
//!
//! 1. start the simulator in-process (127.0.0.1, a free port);
//! 2. build the Connect URL and approve it as the simulated user;
//! 3. exchange the code for tokens and keep them in a token store;
//! 4. list the user's vehicles and print a table of what each reports;
//! 5. lock one;
//! 6. read several things of it in one batch request;
//! 7. move the clock two hours and watch the session refresh its token;
//! 8. the machine-to-machine (v3) flow: `user_id` redirect, application token, connections,
//!    signals, a command and its recorded execution;
//! 9. subscribe the vehicle to a webhook (Management API v3); on the simulator a local receiver
//!    answers the verification challenge and checks the signature of the first delivery.
//!
//! With `SMARTCAR_CLIENT_ID`, `SMARTCAR_CLIENT_SECRET` and `SMARTCAR_REDIRECT_URI` set (a
//! `http://localhost:PORT/...` URI registered in the Smartcar Dashboard; `SMARTCAR_MODE=simulated`
//! for Smartcar's own simulated vehicles) it does the same against the real platform: it prints
//! the Connect URL and waits (5 minutes at most) for the browser to come back to the redirect
//! URI on that local port. The refresh is then forced by a session whose refresh margin exceeds
//! the token's lifetime, and the v3 step uses the same user's id with the application token.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use smartcar::store::{MemoryTokenStore, TokenStore};
use smartcar::{ApplicationSession, Client, ErrorKind, Permission, Redirect, Session};
use smartcar_sim::{ApproveOptions, Simulator};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The redirect the simulator's application has registered for each flow.
const SIM_CALLBACK: &str = "http://localhost:8000/callback";
const SIM_EXCHANGE: &str = "http://localhost:8000/exchange";
/// How long the real-platform mode waits for the browser to come back from Connect.
const REDIRECT_WAIT: Duration = Duration::from_secs(300);
const STEPS: usize = 9;

/// Where the flow runs.
enum Backend {
    /// The embedded simulator.
    Sim(Simulator),
    /// The real Smartcar platform (credentials from the environment).
    Platform,
}

/// A numbered line per step.
struct Progress {
    n: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.n += 1;
        println!("\n[{}/{STEPS}] {what}", self.n);
    }
}

/// A spinner on the terminal while a step waits (a plain line when not a terminal).
struct Spinner {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn spinner(message: &str) -> Spinner {
    let stop = Arc::new(AtomicBool::new(false));
    if !std::io::stderr().is_terminal() {
        println!("    {message}");
        return Spinner { stop, task: None };
    }
    let (flag, message) = (stop.clone(), message.to_owned());
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let mut i = 0;
        while !flag.load(Ordering::Relaxed) {
            eprint!(
                "\r    {} {message} ({:.0} s) ",
                frames[i % frames.len()],
                started.elapsed().as_secs_f64()
            );
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprint!("\r\x1b[2K");
    });
    Spinner {
        stop,
        task: Some(task),
    }
}

impl Spinner {
    async fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nerror: {e}");
            if let Some(e) = e.downcast_ref::<smartcar::Error>() {
                eprintln!("what to do: {}", advice(e));
                if let Some(id) = e.request_id() {
                    eprintln!("Smartcar request id (quote it to support): {id}");
                }
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// What the user can do about an error, by its kind.
fn advice(e: &smartcar::Error) -> String {
    match e.kind() {
        ErrorKind::Configuration => "check SMARTCAR_CLIENT_ID, SMARTCAR_CLIENT_SECRET and \
            SMARTCAR_REDIRECT_URI (or unset all three to run against the embedded simulator)"
            .into(),
        ErrorKind::OAuth => "the token endpoint refused: check that the client id and secret \
            are the application's and that SMARTCAR_REDIRECT_URI is registered in the Smartcar \
            Dashboard exactly as given; an authorization code is single use and expires after \
            10 minutes, so run again"
            .into(),
        ErrorKind::ReauthorizationRequired => {
            "the user's authorization is gone: run again to go through Connect".into()
        }
        ErrorKind::Connect => "Connect did not grant access (denied, or the vehicle is not \
            compatible): run again and approve with a compatible vehicle"
            .into(),
        ErrorKind::StateMismatch => "the redirect does not belong to this run's Connect URL: \
            run again and use the URL printed by this run"
            .into(),
        ErrorKind::Api => match e.api() {
            Some(api) if api.is_retryable() => format!(
                "a temporary condition{}: try again later",
                e.retry_after()
                    .map(|d| format!(" (Smartcar asks to wait {} s)", d.as_secs()))
                    .unwrap_or_default()
            ),
            Some(api) if api.needs_reauthentication() => {
                "the user must grant this permission: run again and approve it in Connect".into()
            }
            Some(api) => api
                .doc_url
                .as_ref()
                .map(|u| format!("see {u}"))
                .unwrap_or_else(|| "see https://smartcar.com/docs/errors".into()),
            None => "see https://smartcar.com/docs/errors".into(),
        },
        ErrorKind::Timeout | ErrorKind::Transport => "Smartcar could not be reached: check the \
            network and any SMARTCAR_*_ORIGIN override, then run again"
            .into(),
        _ => "run again; if it persists, report it with the message above".into(),
    }
}

async fn run() -> Result<(), BoxError> {
    let started = Instant::now();
    let mut p = Progress { n: 0 };

    let (backend, client) = if std::env::var_os("SMARTCAR_CLIENT_ID").is_some() {
        p.step("using the Smartcar platform (SMARTCAR_CLIENT_ID is set)");
        let client = Client::from_env()?;
        if client.redirect_uri().is_none() {
            return Err(smartcar::Error::Configuration {
                setting: "SMARTCAR_REDIRECT_URI".into(),
                message: "needed for Connect, e.g. http://localhost:8000/callback".into(),
            }
            .into());
        }
        println!("    mode {:?}", client.mode());
        (Backend::Platform, client)
    } else {
        p.step(
            "starting the Smartcar simulator (no SMARTCAR_CLIENT_ID: nothing leaves this machine)",
        );
        let sim = Simulator::start().await?;
        let app = sim.app();
        println!(
            "    listening on {} (every Smartcar host on one port)",
            sim.base_url()
        );
        let client = Client::builder()
            .client_id(app.client_id.clone())
            .client_secret(app.client_secret.clone())
            .redirect_uri(SIM_CALLBACK)
            .origin(&sim.base_url())
            // The SDK follows the simulator's clock, which the demo moves forward.
            .clock({
                let state = sim.state().clone();
                move || state.now()
            })
            .build()?;
        (Backend::Sim(sim), client)
    };

    p.step("Smartcar Connect");
    let auth = client
        .authorize()
        .scopes([
            Permission::ReadVehicleInfo,
            Permission::ReadVin,
            Permission::ReadOdometer,
            Permission::ReadBattery,
            Permission::ReadFuel,
            Permission::ReadLocation,
            Permission::ReadSecurity,
            Permission::ControlSecurity,
        ])
        .build()?;
    println!("    Connect URL: {}", auth.url);
    let redirect = approve(&backend, &auth.url, client.redirect_uri()).await?;
    println!("    redirected to {}", redirect.path());

    p.step("exchanging the authorization code");
    let Redirect::Code(code) = client.handle_redirect(redirect.as_str(), &auth.state)? else {
        return Err("Connect did not return an authorization code".into());
    };
    let tokens = client.exchange_code(&code).await?;
    println!(
        "    access token valid until {} (kept in a token store, never printed)",
        tokens.expires_at
    );
    let store: Arc<MemoryTokenStore> = Arc::new(MemoryTokenStore::new());
    let session = Session::create(&client, store.clone(), "demo-user", tokens).await?;

    p.step("the user's vehicles");
    let user_id = session.fetch_user_id().await?.data;
    println!("    Smartcar user {user_id}");
    let ids = session.vehicle_ids(None, None).await?.data.vehicles;
    if ids.is_empty() {
        return Err("the user connected no vehicle".into());
    }
    println!(
        "    {:<26} {:<17} {:>10} {:>13} {:>20} {:>8}",
        "vehicle", "VIN", "odometer", "battery/fuel", "location", "doors"
    );
    for id in &ids {
        let v = session.vehicle(id.clone())?;
        let a = v.attributes().await?.data;
        let vin = v.vin().await?.data.vin;
        let odo = v.odometer().await?.data.distance;
        let energy = match v.battery().await {
            Ok(b) => format!("{:.0}% battery", b.data.percent_remaining * 100.0),
            Err(_) => match v.fuel().await {
                Ok(f) => f
                    .data
                    .percent_remaining
                    .map(|p| format!("{:.0}% fuel", p * 100.0))
                    .unwrap_or_else(|| "fuel n/a".into()),
                Err(e) => format!("n/a ({:?})", e.kind()),
            },
        };
        let loc = v.location().await?.data;
        let locked = v.lock_status().await?.data.is_locked;
        println!(
            "    {:<26} {:<17} {:>7.0} km {:>13} {:>20} {:>8}",
            format!("{} {} {}", a.year, a.make, a.model),
            vin,
            odo,
            energy,
            format!("{:.4}, {:.4}", loc.latitude, loc.longitude),
            if locked { "locked" } else { "unlocked" }
        );
    }

    let first = session.vehicle(ids[0].clone())?;
    p.step("lock the first vehicle");
    if let Backend::Sim(sim) = &backend {
        // Park the simulated car and leave it unlocked, so the lock has something to do (a
        // moving car refuses to lock, as a real one does).
        sim.edit_vehicle(&ids[0], |v| {
            v.in_motion = false;
            v.locked = false;
        });
        println!(
            "    (simulator: the car is parked and its doors unlocked, so the lock has work to do)"
        );
    }
    let doors = |locked: bool| if locked { "locked" } else { "unlocked" };
    println!(
        "    doors before: {}",
        doors(first.lock_status().await?.data.is_locked)
    );
    let waiting = spinner("sending the lock command (a real car can take a while)");
    let locked = first.lock().await;
    waiting.finish().await;
    let locked = locked?.data;
    println!(
        "    {}: {}",
        locked.status,
        locked.message.unwrap_or_default()
    );
    println!(
        "    doors after: {}",
        doors(first.lock_status().await?.data.is_locked)
    );

    p.step("one batch request for several reads");
    let batch = first
        .batch()
        .odometer()
        .battery()
        .fuel()
        .location()
        .tire_pressure() // not granted above: this one item fails
        .lock_status()
        .send()
        .await?;
    // One result per read: a read the car or the grant cannot serve fails alone.
    for item in batch.items() {
        let why = item
            .body
            .as_ref()
            .filter(|_| item.code != 200)
            .and_then(|b| b.get("type").or_else(|| b.get("error")))
            .and_then(|t| t.as_str())
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        println!("    {:<16} HTTP {}{why}", item.path, item.code);
    }
    if let Ok(odometer) = batch.odometer() {
        println!(
            "    odometer from the batch: {:.0} km",
            odometer.data.distance
        );
    }

    p.step("token refresh");
    let before = store.load("demo-user").await?.map(|t| t.expires_at);
    match &backend {
        Backend::Sim(sim) => {
            sim.advance(Duration::from_secs(2 * 3600));
            println!("    (simulated clock moved 2 hours ahead: the access token has expired)");
            first.odometer().await?;
        }
        Backend::Platform => {
            // A refresh margin longer than the token's life makes the next call refresh.
            let eager = session
                .clone()
                .with_refresh_skew(Duration::from_secs(3 * 3600));
            eager.vehicle(ids[0].clone())?.odometer().await?;
        }
    }
    let after = store.load("demo-user").await?.map(|t| t.expires_at);
    println!(
        "    the session refreshed and saved the rotated tokens: expiry {} -> {}",
        before.map(|t| t.to_rfc3339()).unwrap_or_default(),
        after.map(|t| t.to_rfc3339()).unwrap_or_default()
    );
    if let Backend::Sim(sim) = &backend {
        println!(
            "    refresh requests the simulator saw: {}",
            sim.refresh_count()
        );
    }

    p.step("machine-to-machine flow (Vehicle API v3)");
    let user_id = match &backend {
        Backend::Sim(_) => {
            let m2m = client
                .authorize()
                .redirect_uri(SIM_EXCHANGE)
                .scopes([
                    Permission::ReadVehicleInfo,
                    Permission::ReadOdometer,
                    Permission::ControlSecurity,
                ])
                .build()?;
            let redirect = approve(&backend, &m2m.url, None).await?;
            let Redirect::UserId(user_id) =
                client.handle_redirect(redirect.as_str(), &m2m.state)?
            else {
                return Err("Connect did not return a user_id".into());
            };
            println!("    Connect returned user_id {user_id}");
            user_id
        }
        Backend::Platform => {
            println!("    using the connected user's id with the application token");
            user_id.clone()
        }
    };
    let app_session = ApplicationSession::new(&client);
    app_session.token().await?;
    println!(
        "    application token obtained (client credentials; cached and renewed by the session)"
    );
    let v3_user = app_session.user(user_id)?;
    let connections = v3_user.connections().await?;
    println!("    {} connection(s) for this user", connections.len());
    let vehicle_ids = v3_user.vehicle_ids().await?;
    if let Some(id) = vehicle_ids.first() {
        let vehicle = v3_user.vehicle(id.clone())?;
        let info = vehicle.info().await?.data.attributes;
        let signals = vehicle.signals().await?;
        println!(
            "    {} {} {}: {} signals, for example:",
            info.year,
            info.make,
            info.model,
            signals.len()
        );
        for s in signals.iter().filter(|s| s.number().is_some()).take(5) {
            println!(
                "      {:<40} {} {}",
                s.code,
                s.number().unwrap_or_default(),
                s.unit().unwrap_or("")
            );
        }
        let lock = vehicle.lock().await?;
        let recorded = vehicle.command_execution(&lock.data.id).await?;
        println!(
            "    lock sent: execution {} is {:?} ({:?})",
            recorded.data.id,
            recorded.data.attributes.status.value,
            recorded.data.attributes.execution_mode
        );

        p.step("webhook subscription (Management API v3)");
        subscribe_vehicle(&backend, &app_session, v3_user.id(), id).await?;
    }

    if let Backend::Sim(sim) = backend {
        sim.shutdown().await;
    }
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Subscribes the vehicle to a webhook. On the simulator: a receiver on 127.0.0.1 verifies every
/// delivery with the application management token, a webhook pointing at it is added and
/// verified, and the subscription's first delivery (`FIRST_DELIVERY`) is awaited (10 s at
/// most). On the platform: the first webhook configured in the Dashboard, if any.
async fn subscribe_vehicle(
    backend: &Backend,
    app: &ApplicationSession,
    user_id: &str,
    vehicle_id: &str,
) -> Result<(), BoxError> {
    use smartcar::webhooks::{WebhookEvent, WebhookVerifier};

    let Backend::Sim(sim) = backend else {
        let webhooks = app.webhooks(None, None).await?;
        let Some(webhook) = webhooks.first() else {
            println!("    no webhook in the Dashboard: create one to subscribe vehicles to it");
            return Ok(());
        };
        app.subscribe(&webhook.id, vehicle_id, user_id).await?;
        println!("    subscribed the vehicle to webhook {}", webhook.id);
        return Ok(());
    };
    // Deliveries carry the simulator's time (moved 2 hours ahead in step 7): the replay check
    // reads the same clock.
    let clock = sim.state().clone();
    let verifier = WebhookVerifier::new(sim.app().amt.clone())?.clock(move || clock.now());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(8);
    let receiver = axum::Router::new().route(
        "/webhooks",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                let signature = headers.get("sc-signature").and_then(|v| v.to_str().ok());
                match verifier.verify(signature, &body) {
                    Ok(delivery) => {
                        let reply = match &delivery.event {
                            WebhookEvent::Verify { challenge } => {
                                verifier.challenge_response(challenge)
                            }
                            WebhookEvent::VehicleState(state) => {
                                let triggers: Vec<String> = state
                                    .triggers
                                    .iter()
                                    .filter_map(|t| t.code.clone())
                                    .collect();
                                let _ = tx
                                    .send(format!(
                                        "VEHICLE_STATE, triggers {triggers:?}, {} signals",
                                        state.signals.len()
                                    ))
                                    .await;
                                serde_json::json!({})
                            }
                            other => {
                                let _ = tx.send(format!("{other:?}")).await;
                                serde_json::json!({})
                            }
                        };
                        (axum::http::StatusCode::OK, axum::Json(reply))
                    }
                    Err(e) => (
                        axum::http::StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({"error": e.to_string()})),
                    ),
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, receiver).await;
    });
    let webhook = sim.add_webhook(
        &url,
        smartcar_sim::model::WebhookVersion::V3,
        "Quickstart",
        &["odometer-traveleddistance"],
    );
    let verified = sim.verify_webhook(&webhook).await?;
    println!("    webhook {webhook} added; its verification challenge answered: {verified}");
    app.subscribe(&webhook, vehicle_id, user_id).await?;
    println!("    subscribed the vehicle to it");
    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        Ok(Some(first)) => {
            println!("    first delivery received and its signature checked: {first}")
        }
        _ => println!("    no delivery within 10 s"),
    }
    server.abort();
    Ok(())
}

/// Approves a Connect URL: on the simulator as its first user; on the platform by waiting for
/// the browser to come back to `redirect_uri` on this machine.
async fn approve(
    backend: &Backend,
    url: &Url,
    redirect_uri: Option<&Url>,
) -> Result<Url, BoxError> {
    match backend {
        Backend::Sim(sim) => {
            let redirect = sim.approve(url.as_str(), ApproveOptions::new())?;
            println!(
                "    approved as the simulated user {}",
                sim.users()[0].email
            );
            Ok(redirect)
        }
        Backend::Platform => {
            let redirect_uri = redirect_uri.ok_or("no redirect URI")?;
            println!("    open the Connect URL above in a browser and approve");
            let waiting = spinner(&format!("waiting for the redirect to {redirect_uri}"));
            let result = wait_for_redirect(redirect_uri).await;
            waiting.finish().await;
            result
        }
    }
}

/// Serves `redirect_uri`'s port on 127.0.0.1 until a browser requests its path; returns the
/// full URL it requested. Other paths (favicon) get 404. Bounded by [`REDIRECT_WAIT`].
async fn wait_for_redirect(redirect_uri: &Url) -> Result<Url, BoxError> {
    if !matches!(redirect_uri.host_str(), Some("localhost" | "127.0.0.1")) {
        return Err(format!(
            "SMARTCAR_REDIRECT_URI must point to this machine (http://localhost:PORT/...) for \
             the quickstart to receive it; it is {redirect_uri}"
        )
        .into());
    }
    let port = redirect_uri.port_or_known_default().unwrap_or(80);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port} for the redirect: {e}"))?;
    let deadline = tokio::time::Instant::now() + REDIRECT_WAIT;
    loop {
        let (mut socket, _) = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| "no redirect within 5 minutes: run again and approve in the browser")??;
        let mut buf = vec![0u8; 16 * 1024];
        let mut len = 0;
        while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf[len..])).await
            {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                Ok(Ok(n)) => len += n,
            }
        }
        let head = String::from_utf8_lossy(&buf[..len]);
        let target = head
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or("");
        let full = redirect_uri.join(target).ok();
        if let Some(url) = full.filter(|u| u.path() == redirect_uri.path()) {
            let body = "<!doctype html><title>Smartcar</title><p>Done: you can close this \
                        window and go back to the terminal.</p>";
            let _ = socket
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            return Ok(url);
        }
        let _ = socket
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    }
}
