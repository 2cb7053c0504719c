//! A small web app on the Smartcar SDK, the Rust counterpart of Smartcar's Node/Express
//! getting-started app and of its Connect + machine-to-machine tutorial:
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | a page with the two ways to connect a vehicle |
//! | `GET /login` (`?flow=v3`) | remembers a fresh `state` under a `sc_login` cookie and redirects to Smartcar Connect |
//! | `GET /callback` | authorization-code flow (v2): checks the state, exchanges the code, keeps the tokens server-side |
//! | `GET /exchange` | machine-to-machine flow (v3): checks the state, keeps the `user_id`; calls use the application token |
//! | `GET /vehicles` | an HTML table of the connected vehicles (make, model, year, VIN, odometer, battery or fuel, lock status) with a Lock button |
//! | `POST /vehicles/{id}/lock` | locks a vehicle (form with the session's CSRF token) |
//! | `POST /webhooks` | webhook deliveries, verified by the SDK's axum extractor; challenges answered |
//!
//! Tokens never reach the browser: the browser holds only an opaque random `sc_session`
//! cookie (HttpOnly, SameSite=Lax); the tokens live in a [`smartcar::TokenStore`] keyed by it.
//! Everything shown is HTML-escaped.
//!
//! Run it on the embedded simulator (no credentials) and open <http://localhost:8000/login>:
//!
//! ```sh
//! cargo run -p smartcar-example-web
//! ```
//!
//! With `SMARTCAR_CLIENT_ID`, `SMARTCAR_CLIENT_SECRET` and `SMARTCAR_REDIRECT_URI`
//! (e.g. `http://localhost:8000/callback`, registered in the Smartcar Dashboard) it talks to
//! the real platform instead; `SMARTCAR_MANAGEMENT_TOKEN` enables `/webhooks`.
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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRef, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect as HttpRedirect, Response};
use axum::routing::{get, post};
use smartcar::webhooks::axum::VerifiedDelivery;
use smartcar::webhooks::{WebhookEvent, WebhookVerifier};
use smartcar::{
    ApplicationSession, Client, Error, ErrorKind, MemoryTokenStore, Permission, Redirect, Session,
    SignalCode, TokenStore as _, UserV3,
};
use smartcar_sim::Simulator;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

/// Cookie naming the pending login (its `state` is kept server-side).
const LOGIN_COOKIE: &str = "sc_login";
/// Cookie naming the user's session (its tokens are kept server-side).
const SESSION_COOKIE: &str = "sc_session";
/// How long a started login may take.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// At most this many logins are pending at once (the oldest are dropped).
const MAX_PENDING_LOGINS: usize = 10_000;
/// At most this many signed-in sessions are kept (the oldest are dropped: sign in again).
const MAX_SESSIONS: usize = 10_000;
/// Webhook deliveries remembered for the page.
const WEBHOOK_LOG: usize = 20;

/// What the app needs: the SDK client (credentials and origins), where browsers reach the app,
/// and the application management token that signs webhooks (none: no `/webhooks` route).
pub struct Config {
    /// The SDK client. Its redirect URI is not used: the app sends `{public_url}/callback`
    /// (code flow) or `{public_url}/exchange` (v3 flow), which must be registered.
    pub client: Client,
    /// Where browsers reach this app, e.g. `http://localhost:8000`.
    pub public_url: Url,
    /// The application management token (verifies webhook signatures).
    pub webhook_amt: Option<String>,
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

struct PendingLogin {
    state: smartcar::State,
    flow: Flow,
    started: Instant,
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
    started: Instant,
    connected: Connected,
}

struct Inner {
    client: Client,
    public_url: String,
    store: Arc<MemoryTokenStore>,
    app_session: ApplicationSession,
    logins: Mutex<HashMap<String, PendingLogin>>,
    sessions: Mutex<HashMap<String, UserSession>>,
    verifier: Option<WebhookVerifier>,
    /// Recent deliveries: event id (deliveries are retried: deduplicated on it) and summary.
    webhooks: Mutex<Vec<(Option<String>, String)>>,
}

/// The app's shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl FromRef<AppState> for WebhookVerifier {
    fn from_ref(state: &AppState) -> WebhookVerifier {
        // The route is mounted only with a verifier; an empty key would reject every delivery.
        state
            .0
            .verifier
            .clone()
            .unwrap_or_else(|| WebhookVerifier::new(""))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The app's routes over `config`.
pub fn router(config: Config) -> Router {
    let public_url = config.public_url.as_str().trim_end_matches('/').to_owned();
    let with_webhooks = config.webhook_amt.is_some();
    let state = AppState(Arc::new(Inner {
        app_session: ApplicationSession::new(&config.client),
        client: config.client,
        public_url,
        store: Arc::new(MemoryTokenStore::new()),
        logins: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        verifier: config.webhook_amt.map(WebhookVerifier::new),
        webhooks: Mutex::new(Vec::new()),
    }));
    let mut router = Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/exchange", get(exchange))
        .route("/vehicles", get(vehicles))
        .route("/vehicles/{id}/lock", post(lock_vehicle));
    if with_webhooks {
        router = router.route("/webhooks", post(webhooks));
    }
    router.with_state(state)
}

/// The app serving in the background; [`Running::stop`] ends it.
#[derive(Debug)]
pub struct Running {
    url: String,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Where browsers reach the app (no trailing slash), e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Serves [`router`]`(config)` on `listener` in the background.
pub fn serve(listener: TcpListener, config: Config) -> Running {
    let url = config.public_url.as_str().trim_end_matches('/').to_owned();
    let app = router(config);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Running {
        url,
        shutdown,
        task,
    }
}

/// The configuration that runs the app against `sim`, reached by browsers at `public_url`:
/// registers `{public_url}/callback` (code flow) and `{public_url}/exchange` (`user_id`
/// flow) as the simulated application's redirect URIs, as one would in the Smartcar
/// Dashboard.
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
        _ => error_page(
            StatusCode::BAD_GATEWAY,
            "Smartcar did not answer as expected",
            &e.to_string(),
        ),
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

fn set_cookie(name: &str, value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
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
    let id = random_id();
    {
        let mut logins = lock(&app.0.logins);
        logins.retain(|_, p| p.started.elapsed() < LOGIN_TTL);
        if logins.len() >= MAX_PENDING_LOGINS {
            let oldest = logins
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                logins.remove(&k);
            }
        }
        logins.insert(
            id.clone(),
            PendingLogin {
                state: auth.state,
                flow,
                started: Instant::now(),
            },
        );
    }
    let mut response = HttpRedirect::to(auth.url.as_str()).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &id, LOGIN_TTL.as_secs()),
    );
    response
}

/// Takes the login this browser started (single use) and checks the redirect against it.
fn finish_login(
    app: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    flow: Flow,
) -> Result<Redirect, Error> {
    let pending = cookie(headers, LOGIN_COOKIE).and_then(|id| lock(&app.0.logins).remove(id));
    let Some(pending) = pending.filter(|p| p.flow == flow && p.started.elapsed() < LOGIN_TTL)
    else {
        return Err(Error::StateMismatch);
    };
    app.0
        .client
        .handle_redirect(query.unwrap_or(""), &pending.state)
}

fn start_session(app: &AppState, id: String, connected: Connected) -> Response {
    {
        let mut sessions = lock(&app.0.sessions);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                sessions.remove(&k);
                // Its tokens go too (v2 sessions keep them under the session id).
                let store = app.0.store.clone();
                tokio::spawn(async move {
                    let _ = store.delete(&k).await;
                });
            }
        }
        sessions.insert(
            id.clone(),
            UserSession {
                csrf: random_id(),
                started: Instant::now(),
                connected,
            },
        );
    }
    let mut response = HttpRedirect::to("/vehicles").into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, 86_400));
    headers.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
    response
}

async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let code = match finish_login(&app, &headers, query.as_deref(), Flow::Code) {
        Ok(Redirect::Code(code)) => code,
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
    let id = random_id();
    match Session::create(&app.0.client, app.0.store.clone(), id.clone(), tokens).await {
        Ok(session) => start_session(&app, id, Connected::V2(session)),
        Err(e) => sdk_error_page(&e),
    }
}

async fn exchange(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let user_id = match finish_login(&app, &headers, query.as_deref(), Flow::UserId) {
        Ok(Redirect::UserId(user_id)) => user_id,
        Ok(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unexpected answer from Smartcar Connect",
                "Connect did not return a user id.",
            );
        }
        Err(e) => return sdk_error_page(&e),
    };
    match app.0.app_session.user(user_id) {
        Ok(user) => start_session(&app, random_id(), Connected::V3(user)),
        Err(e) => sdk_error_page(&e),
    }
}

fn current_session(app: &AppState, headers: &HeaderMap) -> Option<UserSession> {
    let id = cookie(headers, SESSION_COOKIE)?;
    lock(&app.0.sessions).get(id).cloned()
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
        Err(e) => format!("unavailable ({e})"),
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

#[derive(serde::Deserialize)]
struct VehiclesQuery {
    locked: Option<String>,
}

async fn vehicles(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<VehiclesQuery>,
) -> Response {
    let Some(session) = current_session(&app, &headers) else {
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
    if let Some(id) = &q.locked {
        let _ = writeln!(
            body,
            "<p class=\"notice\" id=\"notice\">Lock command sent to {}.</p>",
            esc(id)
        );
    }
    body.push_str(
        "<table id=\"vehicles\">\n<thead><tr><th>Vehicle</th><th>VIN</th><th>Odometer</th>\
         <th>Battery / fuel</th><th>Doors</th><th></th></tr></thead>\n<tbody>\n",
    );
    for row in &rows {
        let (class, doors) = match row.locked {
            Some(true) => ("locked", "locked"),
            Some(false) => ("unlocked", "unlocked"),
            None => ("", "unknown"),
        };
        let _ = writeln!(
            body,
            "<tr data-vehicle=\"{id}\"><td class=\"name\">{}</td><td class=\"vin\">{}</td>\
             <td class=\"odometer\">{}</td><td class=\"energy\">{}</td>\
             <td class=\"lock-status {class}\">{doors}</td><td>\
             <form method=\"post\" action=\"/vehicles/{id}/lock\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" class=\"lock\">Lock</button></form></td></tr>",
            esc(&row.name),
            esc(&row.vin),
            esc(&row.odometer),
            esc(&row.energy),
            esc(&session.csrf),
            id = esc(&row.id),
        );
    }
    body.push_str("</tbody></table>\n");
    let webhooks = lock(&app.0.webhooks).clone();
    if !webhooks.is_empty() {
        body.push_str("<h2>Recent webhook deliveries</h2>\n<ul id=\"webhooks\">\n");
        for (_, summary) in &webhooks {
            let _ = writeln!(body, "<li>{}</li>", esc(summary));
        }
        body.push_str("</ul>\n");
    }
    body.push_str("<p><a href=\"/\">Connect another vehicle</a></p>");
    page("Your vehicles", &body).into_response()
}

#[derive(serde::Deserialize)]
struct LockForm {
    csrf: String,
}

async fn lock_vehicle(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<LockForm>,
) -> Response {
    let Some(session) = current_session(&app, &headers) else {
        return HttpRedirect::to("/").into_response();
    };
    let expected = session.csrf.as_bytes();
    if form.csrf.len() != expected.len()
        || !form
            .csrf
            .bytes()
            .zip(expected)
            .fold(true, |ok, (a, b)| ok & (a == *b))
    {
        return error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form does not belong to your session. Reload the page and try again.",
        );
    }
    let result = match &session.connected {
        Connected::V2(s) => match s.vehicle(id.as_str()) {
            Ok(v) => v.lock().await.map(|_| ()),
            Err(e) => Err(e),
        },
        Connected::V3(u) => match u.vehicle(id.as_str()) {
            Ok(v) => v.lock().await.map(|_| ()),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => {
            let target = format!(
                "/vehicles?locked={}",
                url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            );
            HttpRedirect::to(&target).into_response()
        }
        Err(e) => sdk_error_page(&e),
    }
}

async fn webhooks(
    State(app): State<AppState>,
    VerifiedDelivery(delivery): VerifiedDelivery,
) -> Response {
    let summary = match &delivery.event {
        WebhookEvent::Verify { challenge } => {
            let Some(verifier) = &app.0.verifier else {
                return StatusCode::NOT_FOUND.into_response();
            };
            return axum::Json(verifier.challenge_response(challenge)).into_response();
        }
        WebhookEvent::VehicleState(_) => "VEHICLE_STATE (v3)".to_owned(),
        WebhookEvent::VehicleError(_) => "VEHICLE_ERROR (v3)".to_owned(),
        WebhookEvent::V2(e) => format!("{} (v2)", e.envelope.event_name),
        WebhookEvent::Unknown { event_type } => format!("{event_type} (not modelled)"),
        _ => "other event".to_owned(),
    };
    let mut log = lock(&app.0.webhooks);
    let repeat = delivery.event_id.is_some()
        && log
            .iter()
            .any(|(id, _)| id.as_ref() == delivery.event_id.as_ref());
    if !repeat {
        if log.len() >= WEBHOOK_LOG {
            log.remove(0);
        }
        log.push((delivery.event_id.clone(), summary));
    }
    StatusCode::OK.into_response()
}
