//! A small web app on the Smartcar SDK, the Rust counterpart of Smartcar's Node/Express
//! getting-started app and of its Connect + machine-to-machine tutorial:
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | a page with the two ways to connect a vehicle |
//! | `GET /login` (`?flow=v3`) | seals a fresh `state` (and the login's start) into the `sc_login` cookie and redirects to Smartcar Connect |
//! | `GET /callback` | authorization-code flow (v2): checks the state, exchanges the code, keeps the tokens server-side |
//! | `GET /exchange` | machine-to-machine flow (v3): checks the state, then that the `user_id` connected a vehicle during this login; calls use the application token |
//! | `GET /vehicles` | an HTML table of the connected vehicles (make, model, year, VIN, odometer, battery or fuel, lock status) with a Lock button, and for v3 sessions a Subscribe to webhook button; after a v3 lock, the command's execution (id, status, mode); after a subscription, the webhook's name; the latest signal values webhooks brought for these vehicles |
//! | `POST /vehicles/{id}/lock` | locks a vehicle (form with the session's CSRF token) |
//! | `POST /vehicles/{id}/subscribe` | v3 sessions: subscribes the vehicle to the webhook [`Config::webhook_id`] names, or else to the first webhook the application has (form with the session's CSRF token) |
//! | `POST /logout` | ends the session and deletes its tokens (form with the session's CSRF token) |
//! | `POST /webhooks` | webhook deliveries through the SDK's durable pipeline ([`smartcar::pipeline`], an SQLite file): verified, stored, then answered 2xx; challenges answered; duplicates stored once; every delivery refused without a management token |
//!
//! Webhooks: `/webhooks` only verifies and stores each delivery (the platform wants a 2xx
//! within 15 s); a consumer in the background hands the stored events to
//! [`apply_webhook`](self#webhooks-the-latest-values), in `oemUpdatedAt` order per vehicle,
//! retried on failure. It keeps the newest value of every signal per vehicle in the table
//! `example_latest_signals` of the same file, which `/vehicles` shows for the session's
//! vehicles. The file is [`Options::webhook_queue`] (by default one in the temp directory per
//! app instance, removed when it stops).
//!
//! # Webhooks: the latest values
//!
//! The handler writes each signal with an upsert that keeps the row with the newest
//! `oemUpdatedAt`: running it twice for an event (a consumer that crashed after writing and
//! before the event was marked done) changes nothing, and a late event never overwrites newer
//! values. That is how a handler's effect is made exactly-once on SQLite (on PostgreSQL,
//! [`smartcar::pipeline::Consumer::run_in_transaction`] also does it). `TEST`-mode
//! deliveries are acknowledged and stored, but change nothing.
//!
//! Security choices, in the order a request meets them:
//!
//! - The server closes connections that do not send their request headers within
//!   [`Options::header_read_timeout`] or their body within [`Options::body_timeout`].
//! - Every response carries a strict `Content-Security-Policy` (no scripts, no frames, forms
//!   only to this app), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
//!   `Cache-Control: no-store`.
//! - A login's `state`, flow and start time live in a cookie sealed with ChaCha20-Poly1305
//!   under a key only the server knows (random per process unless [`Options::cookie_key`] is
//!   set): no server-side table of pending logins for a flood to evict, and a forged redirect
//!   consumes nothing. A redirect whose `state` matches is remembered until the login expires,
//!   so each login is used once.
//! - A v3 redirect's `user_id` is only an identifier: it is accepted through
//!   [`smartcar::ApplicationSession::verify_user_id`], that is, only if that user connected a
//!   vehicle to this application after the login started.
//! - New sessions are rate limited ([`Options::new_sessions_per_minute`], for the whole app),
//!   bounded in number ([`Options::max_sessions`]: when full, new sign-ins are refused rather
//!   than older users logged out) and expire on the server after [`Options::session_ttl`]. A new
//!   sign-in ends the browser's previous session; `POST /logout` ends it on demand.
//! - The browser holds only an opaque random session id (HttpOnly, SameSite=Lax; `Secure` and
//!   `__Host-` names when the public URL is https). Tokens never reach the browser: they live
//!   in a [`smartcar::store::TokenStore`] under a SHA-256 hash of that id, not the id itself.
//! - Error pages show the SDK's message only for errors meant for the user (Connect errors,
//!   invalid input); otherwise a fixed message and Smartcar's request id. Everything shown is
//!   HTML-escaped.
//!
//! Run it on the embedded simulator (no credentials) and open <http://localhost:8000/login>:
//!
//! ```sh
//! cargo run -p smartcar-example-web
//! ```
//!
//! With `SMARTCAR_CLIENT_ID`, `SMARTCAR_CLIENT_SECRET` and `SMARTCAR_REDIRECT_URI`
//! (e.g. `http://localhost:8000/callback`, registered in the Smartcar Dashboard) it talks to
//! the real platform instead; a non-empty `SMARTCAR_MANAGEMENT_TOKEN` lets `/webhooks` accept
//! deliveries and `SMARTCAR_WEBHOOK_ID` chooses the webhook the Subscribe button uses (else the
//! first webhook of the application; create one in the Smartcar Dashboard).
//!
//! In a test, [`start_on_simulator`] serves the app on a free port next to a simulator:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let sim = smartcar_sim::Simulator::start().await?;
//! let app = smartcar_example_web::start_on_simulator(&sim, "127.0.0.1:0".parse()?, "127.0.0.1").await?;
//! println!("open {}/login", app.url());
//! app.stop().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect as HttpRedirect, Response};
use axum::routing::{get, post};
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use sha2::{Digest, Sha256};
use smartcar::pipeline::{Accepted, Event, PipelineConfig, WebhookPipeline};
use smartcar::store::sqlx::{self, SqlitePool};
use smartcar::store::{MemoryTokenStore, TokenStore as _};
use smartcar::v3::{SignalCode, UserIdError, UserV3};
use smartcar::webhooks::{Delivery, SIGNATURE_HEADER, WebhookEvent, WebhookVerifier};
use smartcar::{ApplicationSession, Client, Error, ErrorKind, Permission, Redirect, Session};
use smartcar_sim::Simulator;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

/// Cookie holding the sealed pending login (`__Host-` prefixed over https).
const LOGIN_COOKIE: &str = "sc_login";
/// Cookie naming the user's session (`__Host-` prefixed over https).
const SESSION_COOKIE: &str = "sc_session";
/// Logins whose redirect was already used are remembered (until they expire) up to this many;
/// past it the oldest are forgotten (a replayed code still fails at the token endpoint).
const MAX_USED_LOGINS: usize = 100_000;
/// Webhook deliveries remembered for the page.
const WEBHOOK_LOG: usize = 20;
/// Request bodies larger than this are refused: one byte over the webhook verifier's limit, so
/// that the verifier still answers its own 413.
const MAX_BODY: usize = smartcar::webhooks::DEFAULT_MAX_BODY + 1;
/// The security headers of every response.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// What the app needs: the SDK client (credentials and origins), where browsers reach the app,
/// the application management token that signs webhooks, and the security [`Options`].
pub struct Config {
    /// The SDK client. Its redirect URI is not used: the app sends `{public_url}/callback`
    /// (code flow) or `{public_url}/exchange` (v3 flow), which must be registered.
    pub client: Client,
    /// Where browsers reach this app, e.g. `http://localhost:8000`. With `https`, cookies are
    /// `Secure` and named with the `__Host-` prefix.
    pub public_url: Url,
    /// The application management token (verifies webhook signatures). `None` or an empty
    /// string: `/webhooks` refuses every delivery.
    pub webhook_amt: Option<String>,
    /// The webhook that `POST /vehicles/{id}/subscribe` subscribes vehicles to
    /// (`SMARTCAR_WEBHOOK_ID`). `None`: the first webhook the application lists.
    pub webhook_id: Option<String>,
    /// Limits, lifetimes and the cookie key.
    pub options: Options,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("client_id", &self.client.client_id())
            .field("public_url", &self.public_url.as_str())
            .field(
                "webhook_amt",
                &self.webhook_amt.as_ref().map(|_| "[redacted]"),
            )
            .field("webhook_id", &self.webhook_id)
            .field("options", &self.options)
            .finish()
    }
}

/// The app's limits and lifetimes. [`Options::default`] is what `cargo run` uses.
#[derive(Clone)]
pub struct Options {
    /// The 32-byte key sealing the login cookie (ChaCha20-Poly1305). `None`: a random key per
    /// process (logins in progress fail after a restart; several instances need one shared key).
    pub cookie_key: Option<[u8; 32]>,
    /// How long a started login may take (default 10 minutes).
    pub login_ttl: Duration,
    /// How long a session lasts on the server (default 24 hours).
    pub session_ttl: Duration,
    /// At most this many sessions at once (default 10 000). When full, new sign-ins are refused
    /// (503) until sessions expire or log out: no one is logged out by a flood of sign-ins.
    pub max_sessions: usize,
    /// Sessions created per minute, for the whole app (default 60); beyond it sign-ins are
    /// answered 429. Only sign-ins that would succeed count (a flood of failing attempts
    /// cannot spend the budget). A global limit keeps the example simple; behind a proxy,
    /// also limit per client address there.
    pub new_sessions_per_minute: u32,
    /// The clock skew allowed between this server and Smartcar when checking that a v3
    /// `user_id` connected during the login (default [`smartcar::v3::USER_ID_SKEW`]).
    pub user_id_skew: Duration,
    /// A connection that has not sent its request headers within this time is closed
    /// (default 10 s).
    pub header_read_timeout: Duration,
    /// A request whose body has not fully arrived within this time is answered 408
    /// (default 10 s).
    pub body_timeout: Duration,
    /// The SQLite file of the webhook pipeline and the latest signal values (created if
    /// missing; deliveries accepted but not yet handled survive a restart). `None` (the
    /// default): a new file in the temp directory for this app instance, removed by
    /// [`Running::stop`].
    pub webhook_queue: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cookie_key: None,
            login_ttl: Duration::from_secs(600),
            session_ttl: Duration::from_secs(24 * 3600),
            max_sessions: 10_000,
            new_sessions_per_minute: 60,
            user_id_skew: smartcar::v3::USER_ID_SKEW,
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            webhook_queue: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("cookie_key", &self.cookie_key.map(|_| "[redacted]"))
            .field("login_ttl", &self.login_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("max_sessions", &self.max_sessions)
            .field("new_sessions_per_minute", &self.new_sessions_per_minute)
            .field("user_id_skew", &self.user_id_skew)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("webhook_queue", &self.webhook_queue)
            .finish()
    }
}

/// Which Connect flow a login uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Authorization code → tokens (Vehicle API v2.0).
    Code,
    /// `user_id` → application token + `sc-user-id` (Vehicle API v3).
    UserId,
}

/// A login in progress, as sealed into the login cookie.
struct PendingLogin {
    state: String,
    flow: Flow,
    /// When the browser was sent to Connect (wall clock: compared with Smartcar's `createdAt`).
    started: SystemTime,
}

#[derive(Clone)]
enum Connected {
    V2(Session),
    V3(UserV3),
}

#[derive(Clone)]
struct UserSession {
    /// Echoed by every form of this session (checked on POST).
    csrf: String,
    created: Instant,
    connected: Connected,
}

/// A fixed one-minute window counting created sessions.
struct RateWindow {
    started: Instant,
    count: u32,
}

struct Inner {
    client: Client,
    public_url: String,
    /// Whether browsers reach the app over https (`Secure`, `__Host-` cookies).
    secure: bool,
    options: Options,
    cipher: ChaCha20Poly1305,
    store: Arc<MemoryTokenStore>,
    app_session: ApplicationSession,
    /// See [`Config::webhook_id`].
    webhook_id: Option<String>,
    /// Logins whose redirect was used: their `state`, until they expire.
    used_logins: Mutex<HashMap<String, Instant>>,
    /// Sessions by [`store_key`] of the cookie value (the value itself is not kept).
    sessions: Mutex<HashMap<String, UserSession>>,
    rate: Mutex<RateWindow>,
    /// Recent deliveries (stored, duplicates left out): event id and summary.
    webhooks: Mutex<Vec<(Option<String>, String)>>,
    /// The webhook pipeline and its consumer.
    queue: Arc<WebhookQueue>,
}

impl Inner {
    fn login_cookie(&self) -> &'static str {
        if self.secure {
            "__Host-sc_login"
        } else {
            LOGIN_COOKIE
        }
    }

    fn session_cookie(&self) -> &'static str {
        if self.secure {
            "__Host-sc_session"
        } else {
            SESSION_COOKIE
        }
    }

    fn set_cookie(&self, name: &str, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The app's shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The webhook pipeline of the app: opened on first use (a delivery, or a page showing the
/// latest values), with its consumer in the background until [`Running::stop`]. It exists
/// only with a verifier keyed by a non-empty management token.
struct WebhookQueue {
    verifier: Option<WebhookVerifier>,
    path: PathBuf,
    /// A file of this app instance in the temp directory: removed on stop.
    temporary: bool,
    pipeline: tokio::sync::OnceCell<WebhookPipeline>,
    stop: watch::Sender<bool>,
    consumer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for WebhookQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookQueue")
            .field("path", &self.path)
            .field("open", &self.pipeline.initialized())
            .finish_non_exhaustive()
    }
}

/// Where the app keeps the newest value of each signal per vehicle (same file as the queue).
const LATEST_SIGNALS: &str = "CREATE TABLE IF NOT EXISTS example_latest_signals (
    vehicle_id TEXT NOT NULL,
    code TEXT NOT NULL,
    body TEXT NOT NULL,
    oem_updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, code)
)";

/// The newest value of one signal of a vehicle, as the page shows it.
struct LatestSignal {
    vehicle_id: String,
    code: String,
    value: String,
    updated: String,
}

impl WebhookQueue {
    fn new(verifier: Option<WebhookVerifier>, path: Option<PathBuf>) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let temporary = path.is_none();
        let path = path.unwrap_or_else(|| {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::env::temp_dir().join(format!(
                "smartcar-example-web-{}-{n}-{}.db",
                std::process::id(),
                random_id()
            ))
        });
        WebhookQueue {
            verifier,
            path,
            temporary,
            pipeline: tokio::sync::OnceCell::new(),
            stop: watch::channel(false).0,
            consumer: Mutex::new(None),
        }
    }

    /// The pipeline (opened, migrated and consumed from the first call on); `Ok(None)`
    /// without a management token.
    async fn open(&self) -> Result<Option<&WebhookPipeline>, String> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let pipeline = self
            .pipeline
            .get_or_try_init(|| async {
                let pipeline = WebhookPipeline::sqlite(&self.path, verifier.clone())
                    .await
                    .map_err(|e| e.to_string())?
                    .with_config(
                        PipelineConfig::default().poll_interval(Duration::from_millis(200)),
                    );
                let pool = pipeline
                    .sqlite_pool()
                    .ok_or("the webhook pipeline is not on SQLite")?
                    .clone();
                sqlx::query(LATEST_SIGNALS)
                    .execute(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                let consumer = pipeline.consumer();
                let mut stop = self.stop.subscribe();
                let task = tokio::spawn(async move {
                    consumer
                        .run(
                            move |event| apply_webhook(pool.clone(), event),
                            async move {
                                let _ = stop.wait_for(|stopped| *stopped).await;
                            },
                        )
                        .await;
                });
                *lock(&self.consumer) = Some(task);
                Ok::<_, String>(pipeline)
            })
            .await?;
        Ok(Some(pipeline))
    }

    /// The latest values of `vehicles` (none before the first delivery, unless the file holds
    /// values from a previous run).
    async fn latest(&self, vehicles: &[&str]) -> Vec<LatestSignal> {
        if !self.pipeline.initialized() && !self.path.exists() {
            return Vec::new();
        }
        let Ok(Some(pipeline)) = self.open().await else {
            return Vec::new();
        };
        let Some(pool) = pipeline.sqlite_pool() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for vehicle in vehicles {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT code, body, oem_updated_at_ms FROM example_latest_signals \
                 WHERE vehicle_id = ? ORDER BY code",
            )
            .bind(vehicle)
            .fetch_all(pool)
            .await
            .unwrap_or_default();
            for (code, body, updated) in rows {
                out.push(LatestSignal {
                    vehicle_id: (*vehicle).to_owned(),
                    code,
                    value: signal_value(&body),
                    updated: chrono::DateTime::from_timestamp_millis(updated)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                        .unwrap_or_default(),
                });
            }
        }
        out
    }

    /// Stops the consumer (the events in flight finish) and removes a temporary file.
    async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = lock(&self.consumer).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        if let Some(pipeline) = self.pipeline.get()
            && let Some(pool) = pipeline.sqlite_pool()
        {
            pool.close().await;
        }
        if self.temporary {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.path.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The consumer's handler: keeps the newest value of each signal of a `VEHICLE_STATE` event
/// (see the [module documentation](self#webhooks-the-latest-values)). An error (the database)
/// makes the pipeline retry the event later.
async fn apply_webhook(pool: SqlitePool, event: Event) -> Result<(), sqlx::Error> {
    if event.is_test {
        return Ok(()); // about no real vehicle: act on nothing
    }
    let WebhookEvent::VehicleState(state) = &event.delivery.event else {
        return Ok(());
    };
    let fallback = event
        .oem_updated_at
        .unwrap_or(event.received_at)
        .timestamp_millis();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for signal in &state.signals {
        if signal.body.is_empty() {
            continue; // a signal the vehicle could not read: its status says why
        }
        let updated = signal
            .meta
            .as_ref()
            .and_then(|m| m.oem_updated_at.as_ref())
            .and_then(|t| t.to_datetime())
            .map_or(fallback, |t| t.timestamp_millis());
        sqlx::query(
            "INSERT INTO example_latest_signals (vehicle_id, code, body, oem_updated_at_ms)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (vehicle_id, code) DO UPDATE
             SET body = excluded.body, oem_updated_at_ms = excluded.oem_updated_at_ms
             WHERE excluded.oem_updated_at_ms >= example_latest_signals.oem_updated_at_ms",
        )
        .bind(&state.vehicle.id)
        .bind(signal.code.to_string())
        .bind(serde_json::Value::Object(signal.body.clone()).to_string())
        .bind(updated)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// A signal body as text: `value unit` when it has a `value`, else its JSON (cut at 200
/// characters).
fn signal_value(body: &str) -> String {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cut = |s: &str| s.chars().take(200).collect::<String>();
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => match (map.get("value"), map.get("unit").and_then(Value::as_str))
        {
            (Some(v), Some(unit)) => cut(&format!("{} {unit}", scalar(v))),
            (Some(v), None) => cut(&scalar(v)),
            _ => cut(&Value::Object(map).to_string()),
        },
        _ => cut(body),
    }
}

/// The state of the `/webhooks` route: it exists only with a verifier keyed by a non-empty
/// management token, so no verifier is ever made from an empty key.
#[derive(Clone)]
struct WebhookRoute {
    app: AppState,
}

/// The verifier for a configured management token; `None` for none or an empty one (an empty
/// HMAC key is public: anyone could sign deliveries with it).
fn webhook_verifier(amt: Option<&str>) -> Option<WebhookVerifier> {
    WebhookVerifier::new(amt?).ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The app's routes over `config`. Call it within a Tokio runtime; the webhook pipeline's
/// consumer runs until the process ends (use [`serve`] to stop it with the server).
pub fn router(config: Config) -> Router {
    build(config).0
}

fn build(config: Config) -> (Router, AppState) {
    let public_url = config.public_url.as_str().trim_end_matches('/').to_owned();
    let key = config.options.cookie_key.unwrap_or_else(|| {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        key
    });
    let verifier = webhook_verifier(config.webhook_amt.as_deref());
    let body_timeout = config.options.body_timeout;
    let queue = Arc::new(WebhookQueue::new(
        verifier.clone(),
        config.options.webhook_queue.clone(),
    ));
    let state = AppState(Arc::new(Inner {
        app_session: ApplicationSession::new(&config.client),
        webhook_id: config.webhook_id,
        client: config.client,
        secure: config.public_url.scheme() == "https",
        public_url,
        options: config.options,
        cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        store: Arc::new(MemoryTokenStore::new()),
        used_logins: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        rate: Mutex::new(RateWindow {
            started: Instant::now(),
            count: 0,
        }),
        webhooks: Mutex::new(Vec::new()),
        queue,
    }));
    let hooks = match verifier {
        Some(_) => Router::new()
            .route("/webhooks", post(webhooks))
            .with_state(WebhookRoute { app: state.clone() }),
        // No management token: every delivery (and every challenge) is refused.
        None => Router::new().route("/webhooks", post(|| async { StatusCode::UNAUTHORIZED })),
    };
    let router = Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/exchange", get(exchange))
        .route("/vehicles", get(vehicles))
        .route("/vehicles/{id}/lock", post(lock_vehicle))
        .route("/vehicles/{id}/subscribe", post(subscribe_vehicle))
        .route("/logout", post(logout))
        .with_state(state.clone())
        .merge(hooks)
        .layer(middleware::from_fn_with_state(body_timeout, read_body))
        .layer(middleware::map_response(security_headers));
    (router, state)
}

/// Reads a request's body completely within `timeout` (at most [`MAX_BODY`] bytes), so that a
/// client sending it slowly cannot hold a handler; 408 or 413 otherwise.
async fn read_body(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Pages show vehicle data and carry CSRF tokens: never cached.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The app serving in the background; [`Running::stop`] ends it.
#[derive(Debug)]
pub struct Running {
    url: String,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    queue: Arc<WebhookQueue>,
}

impl Running {
    /// Where browsers reach the app (no trailing slash), e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops serving and waits for the server to finish (open connections get 5 s), then
    /// for the webhook consumer (the events it is handling finish; the others stay queued in
    /// [`Options::webhook_queue`]).
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
        self.queue.stop().await;
    }
}

/// Serves [`router`]`(config)` on `listener` in the background (HTTP/1.1), closing
/// connections that do not send their headers within [`Options::header_read_timeout`].
pub fn serve(listener: TcpListener, config: Config) -> Running {
    let url = config.public_url.as_str().trim_end_matches('/').to_owned();
    let header_timeout = config.options.header_read_timeout;
    let (app, state) = build(config);
    let queue = state.0.queue.clone();
    drop(state);
    let (shutdown, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (closing, close) = watch::channel(false);
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => accepted,
            };
            while connections.try_join_next().is_some() {}
            let Ok((stream, _)) = accepted else {
                // Out of file descriptors and the like: let it pass, do not spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            let mut close = close.clone();
            connections.spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = close.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                    }
                }
            });
        }
        drop(listener);
        let _ = closing.send(true);
        while connections.join_next().await.is_some() {}
    });
    Running {
        url,
        shutdown,
        task,
        queue,
    }
}

/// The configuration that runs the app against `sim`, reached by browsers at `public_url`:
/// registers `{public_url}/callback` (code flow) and `{public_url}/exchange` (`user_id`
/// flow) as the simulated application's redirect URIs, as one would in the Smartcar
/// Dashboard. No [`Config::webhook_id`]: the Subscribe button uses the simulator's first
/// webhook (add one with [`Simulator::add_webhook`]).
///
/// # Errors
///
/// When the client cannot be built (it cannot for the simulator's own credentials).
pub fn simulator_config(sim: &Simulator, public_url: Url) -> Result<Config, Error> {
    let base = public_url.as_str().trim_end_matches('/').to_owned();
    {
        let mut world = sim.state().world();
        let callback = format!("{base}/callback");
        let exchange = format!("{base}/exchange");
        if !world.app.redirect_uris.contains(&callback) {
            world.app.redirect_uris.push(callback);
        }
        if !world.app.user_id_redirect_uris.contains(&exchange) {
            world.app.user_id_redirect_uris.push(exchange);
        }
    }
    let app = sim.app();
    let client = Client::builder()
        .client_id(app.client_id)
        .client_secret(app.client_secret)
        .redirect_uri(format!("{base}/callback"))
        .origin(&sim.base_url())
        .build()?;
    Ok(Config {
        client,
        public_url,
        webhook_amt: Some(app.amt),
        webhook_id: None,
        options: Options::default(),
    })
}

/// Binds `addr`, points the app at `sim` and serves it in the background. Browsers reach it
/// at `http://{public_host}:{port}`.
///
/// # Errors
///
/// When `addr` cannot be bound or the client cannot be built.
pub async fn start_on_simulator(
    sim: &Simulator,
    addr: SocketAddr,
    public_host: &str,
) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let listener = TcpListener::bind(addr).await?;
    let port = listener.local_addr()?.port();
    let public_url = Url::parse(&format!("http://{public_host}:{port}"))?;
    let config = simulator_config(sim, public_url)?;
    Ok(serve(listener, config))
}

// ---------------------------------------------------------------------------------------------
// Pages.

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2rem;color:#1d2433}}\
         table{{border-collapse:collapse;margin:1rem 0}}\
         th,td{{border:1px solid #c9ced8;padding:.4rem .7rem;text-align:left}}\
         th{{background:#eef1f6}} .locked{{color:#0a7d32;font-weight:600}}\
         .unlocked{{color:#b3261e;font-weight:600}} .error{{color:#b3261e}}\
         .notice{{background:#e8f5ec;padding:.5rem}} form{{display:inline}}\
         a.button,button{{padding:.3rem .8rem}}\
         </style></head><body>\n{}\n</body></html>\n",
        esc(title),
        body
    ))
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1>\n<p class=\"error\" id=\"error\">{}</p>\n\
         <p><a class=\"button\" id=\"retry\" href=\"/login\">Connect a vehicle again</a> · \
         <a href=\"/\">Home</a></p>",
        esc(title),
        esc(message)
    );
    (status, page(title, &body)).into_response()
}

/// A page for an SDK error: what happened and what the user can do.
///
/// Only errors meant for the user show the SDK's message (a Connect error: what the user did
/// on Connect; invalid input: what the browser sent). Any other message may quote what a
/// server answered, and a token endpoint's answer holds tokens: those pages show a fixed text
/// and Smartcar's request id (for support) instead.
fn sdk_error_page(e: &Error) -> Response {
    match e.kind() {
        ErrorKind::Connect => {
            let denied = matches!(e, Error::Connect(c) if c.error.to_string() == "access_denied");
            if denied {
                error_page(
                    StatusCode::FORBIDDEN,
                    "No vehicle connected",
                    "You chose not to share access to your vehicle, so there is nothing to \
                     show. You can connect a vehicle whenever you like.",
                )
            } else {
                error_page(
                    StatusCode::BAD_REQUEST,
                    "Smartcar Connect did not finish",
                    &e.to_string(),
                )
            }
        }
        ErrorKind::InvalidInput => {
            error_page(StatusCode::BAD_REQUEST, "Invalid request", &e.to_string())
        }
        ErrorKind::StateMismatch => error_page(
            StatusCode::BAD_REQUEST,
            "This login link is not valid",
            "The answer from Smartcar Connect does not belong to a login started in this \
             browser (or it was already used). Start again.",
        ),
        ErrorKind::ReauthorizationRequired => error_page(
            StatusCode::UNAUTHORIZED,
            "Please connect your vehicle again",
            "The access you gave has ended or was revoked.",
        ),
        _ => {
            let mut message = String::from(
                "Smartcar did not answer as expected. Try again in a moment; if it keeps \
                 happening, contact the site's operator",
            );
            match e.request_id() {
                Some(id) => {
                    let _ = write!(message, " with Smartcar request id {id}.");
                }
                None => message.push('.'),
            }
            error_page(
                StatusCode::BAD_GATEWAY,
                "Smartcar did not answer as expected",
                &message,
            )
        }
    }
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// 256 random bits, hex.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The key under which a session (and its tokens) is kept: a hash of the cookie value, so that
/// neither the store nor the session table holds what a browser presents.
fn store_key(cookie_value: &str) -> String {
    let digest = Sha256::digest(format!("smartcar-example-web session\0{cookie_value}"));
    hex::encode(digest)
}

/// Constant-time comparison of two strings.
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl AppState {
    /// `nonce || ChaCha20-Poly1305(flow | started ms | state)`, hex; the cookie's name is the
    /// associated data.
    fn seal(&self, login: &PendingLogin) -> Option<String> {
        let flow = match login.flow {
            Flow::Code => 'c',
            Flow::UserId => 'u',
        };
        let started = login.started.duration_since(UNIX_EPOCH).ok()?.as_millis();
        let plain = format!("{flow}|{started}|{}", login.state);
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .0
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: LOGIN_COOKIE.as_bytes(),
                },
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(hex::encode(out))
    }

    /// The login sealed in `value`, if this server sealed it.
    fn unseal(&self, value: &str) -> Option<PendingLogin> {
        if value.len() > 2048 {
            return None;
        }
        let bytes = hex::decode(value).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self
            .0
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: LOGIN_COOKIE.as_bytes(),
                },
            )
            .ok()?;
        let plain = String::from_utf8(plain).ok()?;
        let mut parts = plain.splitn(3, '|');
        let flow = match parts.next()? {
            "c" => Flow::Code,
            "u" => Flow::UserId,
            _ => return None,
        };
        let started_ms: u64 = parts.next()?.parse().ok()?;
        let state = parts.next()?.to_owned();
        Some(PendingLogin {
            state,
            flow,
            started: UNIX_EPOCH.checked_add(Duration::from_millis(started_ms))?,
        })
    }

    /// Counts one new session against the per-minute limit; `false` when over it.
    fn admit_session(&self) -> bool {
        let mut rate = lock(&self.0.rate);
        if rate.started.elapsed() >= Duration::from_secs(60) {
            rate.started = Instant::now();
            rate.count = 0;
        }
        if rate.count >= self.0.options.new_sessions_per_minute {
            return false;
        }
        rate.count += 1;
        true
    }

    /// Removes a session and deletes its tokens.
    fn drop_session(&self, key: &str) {
        let removed = lock(&self.0.sessions).remove(key);
        if let Some(UserSession {
            connected: Connected::V2(_),
            ..
        }) = removed
        {
            let store = self.0.store.clone();
            let key = key.to_owned();
            tokio::spawn(async move {
                let _ = store.delete(&key).await;
            });
        }
    }
}

async fn index() -> Html<String> {
    page(
        "Smartcar example",
        "<h1>Smartcar example</h1>\n\
         <p><a class=\"button\" id=\"connect\" href=\"/login\">Connect a vehicle</a> \
         (authorization code, Vehicle API v2.0)</p>\n\
         <p><a class=\"button\" id=\"connect-v3\" href=\"/login?flow=v3\">Connect a vehicle \
         with the machine-to-machine flow</a> (<code>user_id</code>, application token, \
         Vehicle API v3)</p>",
    )
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    flow: Option<String>,
}

async fn login(State(app): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let flow = match q.flow.as_deref() {
        Some("v3") => Flow::UserId,
        _ => Flow::Code,
    };
    let redirect_uri = match flow {
        Flow::Code => format!("{}/callback", app.0.public_url),
        Flow::UserId => format!("{}/exchange", app.0.public_url),
    };
    let auth = app
        .0
        .client
        .authorize()
        .redirect_uri(redirect_uri)
        .scopes([
            Permission::ReadVehicleInfo,
            Permission::ReadVin,
            Permission::ReadOdometer,
            Permission::ReadBattery,
            Permission::ReadFuel,
            Permission::ReadSecurity,
            Permission::ControlSecurity,
        ])
        .build();
    let auth = match auth {
        Ok(a) => a,
        Err(e) => return sdk_error_page(&e),
    };
    let pending = PendingLogin {
        state: auth.state.secret().to_owned(),
        flow,
        started: SystemTime::now(),
    };
    let Some(sealed) = app.seal(&pending) else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not start the login",
            "Try again.",
        );
    };
    let mut response = HttpRedirect::to(auth.url.as_str()).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        app.0.set_cookie(
            app.0.login_cookie(),
            &sealed,
            app.0.options.login_ttl.as_secs(),
        ),
    );
    response
}

/// Checks the redirect against the login sealed in this browser's cookie. Nothing
/// server-side is consumed by a redirect whose state does not match (a forged redirect cannot
/// spend the victim's login); a matching one marks the login used (single use).
fn finish_login(
    app: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    flow: Flow,
) -> Result<(Redirect, SystemTime), Error> {
    let ttl = app.0.options.login_ttl;
    let pending = cookie(headers, app.0.login_cookie())
        .and_then(|value| app.unseal(value))
        .filter(|p| p.flow == flow)
        .filter(|p| p.started.elapsed().is_ok_and(|age| age < ttl));
    let Some(pending) = pending else {
        return Err(Error::StateMismatch);
    };
    let state = smartcar::connect::State::new(pending.state.clone());
    let result = app.0.client.handle_redirect(query.unwrap_or(""), &state);
    if matches!(result, Err(Error::StateMismatch)) {
        return Err(Error::StateMismatch);
    }
    {
        let mut used = lock(&app.0.used_logins);
        used.retain(|_, at| at.elapsed() < ttl);
        if used.contains_key(&pending.state) {
            return Err(Error::StateMismatch);
        }
        if used.len() >= MAX_USED_LOGINS {
            let oldest = used
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                used.remove(&k);
            }
        }
        used.insert(pending.state, Instant::now());
    }
    result.map(|redirect| (redirect, pending.started))
}

fn too_many_sign_ins() -> Response {
    error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-ins right now",
        "This site is receiving more sign-ins than it accepts. Wait a minute and connect \
         your vehicle again.",
    )
}

/// Records a new session (ending the one this browser had) and sets its cookie.
fn start_session(
    app: &AppState,
    headers: &HeaderMap,
    cookie_value: &str,
    connected: Connected,
) -> Response {
    let key = store_key(cookie_value);
    if let Some(old) = cookie(headers, app.0.session_cookie()) {
        app.drop_session(&store_key(old));
    }
    let ttl = app.0.options.session_ttl;
    let expired: Vec<String> = lock(&app.0.sessions)
        .iter()
        .filter(|(_, s)| s.created.elapsed() >= ttl)
        .map(|(k, _)| k.clone())
        .collect();
    for k in &expired {
        app.drop_session(k);
    }
    {
        let mut sessions = lock(&app.0.sessions);
        if sessions.len() >= app.0.options.max_sessions {
            drop(sessions);
            // The v2 tokens were saved under the new key already.
            let store = app.0.store.clone();
            tokio::spawn(async move {
                let _ = store.delete(&key).await;
            });
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many people are signed in",
                "This site has reached the number of sessions it keeps. Try again later.",
            );
        }
        sessions.insert(
            key,
            UserSession {
                csrf: random_id(),
                created: Instant::now(),
                connected,
            },
        );
    }
    let mut response = HttpRedirect::to("/vehicles").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        app.0
            .set_cookie(app.0.session_cookie(), cookie_value, ttl.as_secs()),
    );
    headers.append(
        header::SET_COOKIE,
        app.0.set_cookie(app.0.login_cookie(), "", 0),
    );
    response
}

async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let code = match finish_login(&app, &headers, query.as_deref(), Flow::Code) {
        Ok((Redirect::Code(code), _)) => code,
        Ok(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unexpected answer from Smartcar Connect",
                "Connect did not return an authorization code.",
            );
        }
        Err(e) => return sdk_error_page(&e),
    };
    let tokens = match app.0.client.exchange_code(&code).await {
        Ok(t) => t,
        Err(e) => return sdk_error_page(&e),
    };
    // Counted only for a sign-in that succeeds: failed attempts cannot spend the budget.
    if !app.admit_session() {
        return too_many_sign_ins();
    }
    let cookie_value = random_id();
    let key = store_key(&cookie_value);
    match Session::create(&app.0.client, app.0.store.clone(), key, tokens).await {
        Ok(session) => start_session(&app, &headers, &cookie_value, Connected::V2(session)),
        Err(e) => sdk_error_page(&e),
    }
}

async fn exchange(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (user_id, started) = match finish_login(&app, &headers, query.as_deref(), Flow::UserId) {
        Ok((Redirect::UserId(user_id), started)) => (user_id, started),
        Ok(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unexpected answer from Smartcar Connect",
                "Connect did not return a user id.",
            );
        }
        Err(e) => return sdk_error_page(&e),
    };
    // The user id is an identifier anyone can type into the URL: accept it only if that user
    // connected a vehicle to this application during this login.
    let verified = app
        .0
        .app_session
        .verify_user_id(&user_id, started, app.0.options.user_id_skew)
        .await;
    match verified {
        Ok(_) if !app.admit_session() => too_many_sign_ins(),
        Ok(user) => start_session(&app, &headers, &random_id(), Connected::V3(user)),
        Err(UserIdError::Check(e)) if e.kind() != ErrorKind::InvalidInput => sdk_error_page(&e),
        Err(_) => error_page(
            StatusCode::FORBIDDEN,
            "This login could not be verified",
            "Smartcar did not confirm that you connected a vehicle during this login. \
             Connect your vehicle again.",
        ),
    }
}

/// The browser's session (and its key), unless it expired (then it is removed).
fn current_session(app: &AppState, headers: &HeaderMap) -> Option<(String, UserSession)> {
    let key = store_key(cookie(headers, app.0.session_cookie())?);
    let session = lock(&app.0.sessions).get(&key).cloned()?;
    if session.created.elapsed() >= app.0.options.session_ttl {
        app.drop_session(&key);
        return None;
    }
    Some((key, session))
}

/// One row of the vehicle table.
struct Row {
    id: String,
    name: String,
    vin: String,
    odometer: String,
    energy: String,
    locked: Option<bool>,
}

async fn v2_row(session: &Session, id: &str) -> Result<Row, Error> {
    let vehicle = session.vehicle(id)?;
    // One request for every read of the row.
    let batch = vehicle
        .batch()
        .attributes()
        .vin()
        .odometer()
        .battery()
        .fuel()
        .lock_status()
        .send()
        .await?;
    let name = match batch.attributes() {
        Ok(a) => format!("{} {} {}", a.data.year, a.data.make, a.data.model),
        // The error may quote the server's answer: not shown.
        Err(_) => "unavailable".to_owned(),
    };
    let energy = match (batch.battery(), batch.fuel()) {
        (Ok(b), _) => format!("{:.0}% battery", b.data.percent_remaining * 100.0),
        (_, Ok(f)) => f
            .data
            .percent_remaining
            .map(|p| format!("{:.0}% fuel", p * 100.0))
            .unwrap_or_else(|| "fuel: n/a".into()),
        _ => "n/a".into(),
    };
    Ok(Row {
        id: id.to_owned(),
        name,
        vin: batch
            .vin()
            .map(|v| v.data.vin)
            .unwrap_or_else(|_| "n/a".into()),
        odometer: batch
            .odometer()
            .map(|o| format!("{:.0} km", o.data.distance))
            .unwrap_or_else(|_| "n/a".into()),
        energy,
        locked: batch.lock_status().ok().map(|l| l.data.is_locked),
    })
}

async fn v3_row(user: &UserV3, id: &str) -> Result<Row, Error> {
    let vehicle = user.vehicle(id)?;
    let info = vehicle.info().await?.data.attributes;
    let signals = vehicle.signals().await?;
    let find = |code: SignalCode| signals.iter().find(|s| s.code == code);
    let energy = if let Some(soc) =
        find(SignalCode::TractionbatteryStateofcharge).and_then(|s| s.number())
    {
        format!("{soc:.0}% battery")
    } else if let Some(fuel) =
        find(SignalCode::InternalcombustionengineFuellevel).and_then(|s| s.number())
    {
        format!("{fuel:.0}% fuel")
    } else {
        "n/a".into()
    };
    Ok(Row {
        id: id.to_owned(),
        name: format!("{} {} {}", info.year, info.make, info.model),
        vin: find(SignalCode::VehicleidentificationVin)
            .and_then(|s| s.text().map(str::to_owned))
            .unwrap_or_else(|| "n/a".into()),
        odometer: find(SignalCode::OdometerTraveleddistance)
            .and_then(|s| {
                s.number()
                    .map(|n| format!("{n:.0} {}", s.unit().unwrap_or("")))
            })
            .unwrap_or_else(|| "n/a".into()),
        energy,
        locked: find(SignalCode::ClosureIslocked).and_then(|s| s.flag()),
    })
}

/// What `/vehicles` says after a redirect from a form. Only ids: the words shown are read from
/// Smartcar (and only for a vehicle of the page), so a crafted link cannot put words on it.
#[derive(serde::Deserialize)]
struct VehiclesQuery {
    /// The vehicle a Lock button locked.
    locked: Option<String>,
    /// v3: the lock's command execution (re-read with `command_execution`).
    execution: Option<String>,
    /// v3: the vehicle a Subscribe button subscribed ...
    subscribed: Option<String>,
    /// ... to this webhook (re-read for its name).
    webhook: Option<String>,
}

/// A v3 command execution as the page shows it: `<id> <STATUS> (<mode>)`, HTML. `None` when
/// Smartcar does not know it (a crafted link) or cannot answer now.
async fn execution_html(user: &UserV3, vehicle_id: &str, execution_id: &str) -> Option<String> {
    let execution = user
        .vehicle(vehicle_id)
        .ok()?
        .command_execution(execution_id)
        .await
        .ok()?
        .data;
    let mut html = format!(
        "<span id=\"execution\">{}</span> <span id=\"execution-status\">{}</span>",
        esc(&execution.id),
        esc(execution.attributes.status.value.as_str())
    );
    if let Some(mode) = &execution.attributes.execution_mode {
        let _ = write!(html, " ({})", esc(mode.as_str()));
    }
    if let Some(error) = &execution.attributes.status.error {
        let reason = [&error.code, &error.description]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(": ");
        if !reason.is_empty() {
            let _ = write!(html, ", {}", esc(&reason));
        }
    }
    Some(html)
}

async fn vehicles(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<VehiclesQuery>,
) -> Response {
    let Some((_, session)) = current_session(&app, &headers) else {
        return HttpRedirect::to("/").into_response();
    };
    let (api, ids) = match &session.connected {
        Connected::V2(s) => (
            "Vehicle API v2.0",
            s.vehicle_ids(None, None).await.map(|r| r.data.vehicles),
        ),
        Connected::V3(u) => ("Vehicle API v3", u.vehicle_ids().await),
    };
    let ids = match ids {
        Ok(ids) => ids,
        Err(e) => return sdk_error_page(&e),
    };
    let mut rows = Vec::with_capacity(ids.len());
    for id in &ids {
        let row = match &session.connected {
            Connected::V2(s) => v2_row(s, id).await,
            Connected::V3(u) => v3_row(u, id).await,
        };
        match row {
            Ok(row) => rows.push(row),
            Err(e) => return sdk_error_page(&e),
        }
    }

    let mut body = String::from("<h1>Your vehicles</h1>\n");
    let _ = writeln!(
        body,
        "<p>Read through the {} ({} vehicle(s)).</p>",
        esc(api),
        rows.len()
    );
    // Only for a vehicle of this page: a crafted link cannot put words on it.
    let row_of = |id: Option<&str>| id.and_then(|id| rows.iter().find(|r| r.id == id));
    if let Some(row) = row_of(q.locked.as_deref()) {
        let execution = match (&session.connected, q.execution.as_deref()) {
            (Connected::V3(u), Some(execution)) => execution_html(u, &row.id, execution).await,
            _ => None,
        };
        match execution {
            Some(execution) => {
                let _ = writeln!(
                    body,
                    "<p class=\"notice\" id=\"notice\">Lock sent to {} ({}): execution \
                     {execution}.</p>",
                    esc(&row.name),
                    esc(&row.id)
                );
            }
            None => {
                let _ = writeln!(
                    body,
                    "<p class=\"notice\" id=\"notice\">Lock command sent to {} ({}).</p>",
                    esc(&row.name),
                    esc(&row.id)
                );
            }
        }
    }
    if let (Connected::V3(_), Some(row), Some(webhook_id)) = (
        &session.connected,
        row_of(q.subscribed.as_deref()),
        q.webhook.as_deref(),
    ) {
        // Named only if it is a webhook of this application.
        if let Ok(webhook) = app.0.app_session.webhook(webhook_id).await {
            let webhook = webhook.data;
            let name = webhook
                .attributes
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(webhook.id);
            let _ = writeln!(
                body,
                "<p class=\"notice\" id=\"subscribed\">Subscribed to webhook {} for {} \
                 ({}).</p>",
                esc(&name),
                esc(&row.name),
                esc(&row.id)
            );
        }
    }
    body.push_str(
        "<table id=\"vehicles\">\n<thead><tr><th>Vehicle</th><th>VIN</th><th>Odometer</th>\
         <th>Battery / fuel</th><th>Doors</th><th></th></tr></thead>\n<tbody>\n",
    );
    let v3 = matches!(session.connected, Connected::V3(_));
    for row in &rows {
        let (class, doors) = match row.locked {
            Some(true) => ("locked", "locked"),
            Some(false) => ("unlocked", "unlocked"),
            None => ("", "unknown"),
        };
        let id = esc(&row.id);
        let csrf = esc(&session.csrf);
        // Webhook subscriptions are made with the application token for a v3 user.
        let subscribe = if v3 {
            format!(
                " <form method=\"post\" action=\"/vehicles/{id}/subscribe\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\" class=\"subscribe\">Subscribe to webhook</button>\
                 </form>"
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            body,
            "<tr data-vehicle=\"{id}\"><td class=\"name\">{}</td><td class=\"vin\">{}</td>\
             <td class=\"odometer\">{}</td><td class=\"energy\">{}</td>\
             <td class=\"lock-status {class}\">{doors}</td><td>\
             <form method=\"post\" action=\"/vehicles/{id}/lock\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" class=\"lock\">Lock</button></form>{subscribe}</td></tr>",
            esc(&row.name),
            esc(&row.vin),
            esc(&row.odometer),
            esc(&row.energy),
        );
    }
    body.push_str("</tbody></table>\n");
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let latest = app.0.queue.latest(&ids).await;
    if !latest.is_empty() {
        body.push_str(
            "<h2>Latest values from webhooks</h2>\n<table id=\"webhook-signals\">\n\
             <thead><tr><th>Vehicle</th><th>Signal</th><th>Value</th>\
             <th>Updated (oemUpdatedAt)</th></tr></thead>\n<tbody>\n",
        );
        for signal in &latest {
            let name = rows
                .iter()
                .find(|r| r.id == signal.vehicle_id)
                .map_or(signal.vehicle_id.as_str(), |r| r.name.as_str());
            let _ = writeln!(
                body,
                "<tr data-vehicle=\"{}\" data-signal=\"{}\"><td>{}</td><td>{}</td>\
                 <td class=\"value\">{}</td><td class=\"updated\">{}</td></tr>",
                esc(&signal.vehicle_id),
                esc(&signal.code),
                esc(name),
                esc(&signal.code),
                esc(&signal.value),
                esc(&signal.updated),
            );
        }
        body.push_str("</tbody></table>\n");
    }
    let webhooks = lock(&app.0.webhooks).clone();
    if !webhooks.is_empty() {
        body.push_str("<h2>Recent webhook deliveries</h2>\n<ul id=\"webhooks\">\n");
        for (_, summary) in &webhooks {
            let _ = writeln!(body, "<li>{}</li>", esc(summary));
        }
        body.push_str("</ul>\n");
    }
    let _ = write!(
        body,
        "<p><a href=\"/\">Connect another vehicle</a> · \
         <form method=\"post\" action=\"/logout\" id=\"logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" class=\"logout\">Sign out</button></form></p>",
        esc(&session.csrf)
    );
    page("Your vehicles", &body).into_response()
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// The session a form was posted from: without one, back to the start page; with a CSRF
/// token that is not the session's, refused.
fn form_session(
    app: &AppState,
    headers: &HeaderMap,
    form: &CsrfForm,
) -> Result<(String, UserSession), Box<Response>> {
    let Some((key, session)) = current_session(app, headers) else {
        return Err(Box::new(HttpRedirect::to("/").into_response()));
    };
    if !same(&form.csrf, &session.csrf) {
        return Err(Box::new(forged_form()));
    }
    Ok((key, session))
}

fn forged_form() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form does not belong to your session. Reload the page and try again.",
    )
}

async fn lock_vehicle(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let (_, session) = match form_session(&app, &headers, &form) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    // v3 answers with the command's execution record: its id goes to the page, which reads
    // the record back.
    let result = match &session.connected {
        Connected::V2(s) => match s.vehicle(id.as_str()) {
            Ok(v) => v.lock().await.map(|_| None),
            Err(e) => Err(e),
        },
        Connected::V3(u) => match u.vehicle(id.as_str()) {
            Ok(v) => v.lock().await.map(|r| Some(r.data.id)),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(execution) => {
            let mut target = format!("/vehicles?locked={}", query_value(&id));
            if let Some(execution) = execution {
                let _ = write!(target, "&execution={}", query_value(&execution));
            }
            HttpRedirect::to(&target).into_response()
        }
        Err(e) => sdk_error_page(&e),
    }
}

/// `value` encoded for a query string.
fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn no_webhook() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No webhook to subscribe to",
        "This application has no webhook yet. Create one in the Smartcar Dashboard \
         (Webhooks), then subscribe the vehicle again.",
    )
}

/// v3 sessions: subscribes the vehicle to [`Config::webhook_id`]'s webhook, or else to the
/// application's first webhook, and goes back to the vehicle page.
async fn subscribe_vehicle(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let (_, session) = match form_session(&app, &headers, &form) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let Connected::V3(user) = &session.connected else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Webhook subscriptions need the machine-to-machine flow",
            "This example subscribes vehicles connected with the machine-to-machine flow \
             (Vehicle API v3). Connect your vehicle with that flow to subscribe it.",
        );
    };
    let sdk = &app.0.app_session;
    let webhook_id = match &app.0.webhook_id {
        // The configured webhook must exist: a clear page rather than a failed subscription.
        Some(configured) => match sdk.webhook(configured).await {
            Ok(webhook) => webhook.data.id,
            Err(e) if e.status() == Some(404) => {
                return error_page(
                    StatusCode::NOT_FOUND,
                    "Webhook not found",
                    "The webhook SMARTCAR_WEBHOOK_ID names does not exist for this \
                     application. Check its id in the Smartcar Dashboard (Webhooks), or unset \
                     it to use the application's first webhook.",
                );
            }
            Err(e) => return sdk_error_page(&e),
        },
        None => match sdk.webhooks(None, None).await {
            Ok(webhooks) => match webhooks.into_iter().next() {
                Some(webhook) => webhook.id,
                None => return no_webhook(),
            },
            Err(e) => return sdk_error_page(&e),
        },
    };
    match sdk.subscribe(&webhook_id, &id, user.id()).await {
        Ok(()) => HttpRedirect::to(&format!(
            "/vehicles?subscribed={}&webhook={}",
            query_value(&id),
            query_value(&webhook_id)
        ))
        .into_response(),
        Err(e) => sdk_error_page(&e),
    }
}

/// Ends the session: removes it and deletes its tokens, clears the cookie.
async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let (key, _) = match form_session(&app, &headers, &form) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let removed = lock(&app.0.sessions).remove(&key);
    if let Some(UserSession {
        connected: Connected::V2(_),
        ..
    }) = removed
    {
        let _ = app.0.store.delete(&key).await;
    }
    let mut response = HttpRedirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        app.0.set_cookie(app.0.session_cookie(), "", 0),
    );
    response
}

async fn webhooks(State(route): State<WebhookRoute>, request: Request) -> Response {
    let signature = request
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The body was read whole (at most MAX_BODY bytes) by `read_body`.
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let pipeline = match route.app.0.queue.open().await {
        Ok(Some(pipeline)) => pipeline,
        // Not stored: 503 makes the platform retry.
        _ => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let accepted = match pipeline.accept(signature.as_deref(), &body).await {
        Ok(accepted) => accepted,
        Err(e) => {
            return StatusCode::from_u16(e.status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
                .into_response();
        }
    };
    let summary = match &accepted {
        Accepted::Challenge(reply) => return axum::Json(reply.clone()).into_response(),
        Accepted::Enqueued { .. } => match Delivery::parse(&body).map(|d| d.event) {
            Ok(WebhookEvent::VehicleState(_)) => "VEHICLE_STATE (v3)".to_owned(),
            Ok(WebhookEvent::VehicleError(_)) => "VEHICLE_ERROR (v3)".to_owned(),
            Ok(WebhookEvent::V2(e)) => format!("{} (v2)", e.envelope.event_name),
            Ok(WebhookEvent::Unknown { event_type }) => format!("{event_type} (not modelled)"),
            _ => "other event".to_owned(),
        },
        Accepted::DeadLettered { .. } => "an unreadable delivery (dead-lettered)".to_owned(),
        // A duplicate (the platform's retry): already listed.
        _ => return StatusCode::OK.into_response(),
    };
    let event_id = Delivery::parse(&body).ok().and_then(|d| d.event_id);
    let mut log = lock(&route.app.0.webhooks);
    if log.len() >= WEBHOOK_LOG {
        log.remove(0);
    }
    log.push((event_id, summary));
    StatusCode::OK.into_response()
}
