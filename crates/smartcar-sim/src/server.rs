//! The composition root: assembles the simulated platform from its parts and runs it. Every
//! route module's router, the observability and fault middleware (one layer), the listener
//! that counts connections and lets faults reach them, the accept loop, and the handle that
//! owns the server task ([`Simulator`], its [`SimulatorBuilder`]). Nothing else in the crate
//! imports this module except the handle's controls (`handle`) and the crate root.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::fleet::{self, FleetOptions};
use crate::limits::{self, Metered, Refusal};
use crate::observe::{self, Observed, Observer};
use crate::routing::{self, sim_paths};
use crate::state::{
    AppState, Clock, Config, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, Shared,
};
use crate::{compat, connect, control, faults, management, oauth, serve, v2, v3, webhooks};

/// Every route of the simulated platform, with the observability and fault middlewares.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(connect::routes())
        .merge(oauth::routes())
        .merge(v2::routes())
        .merge(v3::routes())
        .merge(management::routes())
        .merge(compat::routes())
        .merge(webhooks::routes())
        .merge(control::routes(state.clone()))
        .route(sim_paths::HEALTHZ, axum::routing::get(|| async { "ok" }))
        .fallback(not_found)
        // One layer for both: the log sees what faults did (see `observe::middleware`).
        .layer(from_fn_with_state(
            state.clone(),
            observe::middleware::<AppState>,
        ))
        .layer(from_fn_with_state(state.clone(), date_header))
        .with_state(state)
}

/// Every answer's `Date` is the simulated clock's (RFC 9110 IMF-fixdate), as the platform's is
/// its own clock: a client comparing clocks (`smartcar doctor`) sees a skew once the clock is
/// moved (`POST /_sim/clock/advance`).
async fn date_header(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let date = Shared::now(&state)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(value) = axum::http::HeaderValue::from_str(&date) {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, value);
    }
    response
}

/// `http://ADDR` for links; an unspecified address (`0.0.0.0`, listening everywhere) is
/// named by the loopback address of its family.
fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// No route: a well-formed version segment the spec does not have is served as v2.0
/// ([`latest_version`]); anything else is 404 `RESOURCE_NOT_FOUND` in the shape of the API the
/// path belongs to (`VERSION` for a malformed version segment such as `vJohnny%20Appleseed`).
async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    let error = ApiError::not_found();
    let segment = routing::first_segment(path);
    let more = path.len() > segment.len() + 1;
    if more && routing::is_version_alias(segment) {
        return latest_version(state, req).await;
    }
    if segment == routing::v3_segment() && more {
        error.into_v3().into_response()
    } else if path.starts_with("/v") && !(more && routing::is_known_version(segment)) {
        ApiError::v2("RESOURCE_NOT_FOUND", Some("VERSION")).into_response()
    } else {
        error.into_response()
    }
}

/// `/v99999999.99/vehicles/{id}/odometer` answered as `/v2.0/vehicles/{id}/odometer`: the
/// platform serves any `v<digits>.<digits>` it does not know as its latest version (see
/// `routing::is_version_alias`). The request goes, with its version segment replaced, through
/// the routes that own the v2.0 paths (vehicle API, compatibility, management), built once;
/// the request log and the counters keep the path as sent.
async fn latest_version(state: AppState, mut req: Request) -> Response {
    static V2_PATHS: std::sync::OnceLock<Router<AppState>> = std::sync::OnceLock::new();
    let path = routing::with_segment(req.uri().path(), routing::v2_segment());
    let uri = match req.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    match uri.parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return ApiError::not_found().into_response(),
    }
    let mut routes = V2_PATHS
        .get_or_init(|| {
            Router::new()
                .merge(v2::routes())
                .merge(compat::routes())
                .merge(management::routes())
        })
        .clone()
        .with_state(state);
    match tower_service::Service::call(&mut routes, req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The observing middleware runs on the simulator's state: its log and clock, its body
/// timeout, and the fault rules before the routes.
impl Observed for AppState {
    fn observer(&self) -> &Observer {
        &self.observer
    }

    fn now(&self) -> DateTime<Utc> {
        Shared::now(self)
    }

    fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// The platform's limits (when on), then the fault rules, then the routes; a successful
    /// metered call is billed to its vehicle.
    fn forward(&self, req: Request, next: Next) -> impl Future<Output = Response> + Send {
        let state = self.clone();
        async move {
            let metered = if state.limits.on() {
                req.extensions()
                    .get::<axum::extract::MatchedPath>()
                    .and_then(|t| {
                        limits::metered(req.method().as_str(), t.as_str(), req.uri().path())
                    })
            } else {
                None
            };
            if let Some(m) = &metered
                && let Err(refusal) = state.limits.admit(m, state.now())
            {
                let path = req.uri().path();
                return match refusal {
                    Refusal::App(wait) => {
                        faults::limit_response(path, "RATE_LIMIT", "SMARTCAR_API", Some(wait))
                    }
                    Refusal::Vehicle(wait) => {
                        faults::limit_response(path, "RATE_LIMIT", "VEHICLE", Some(wait))
                    }
                    Refusal::Billing => {
                        faults::limit_response(path, "BILLING", "VEHICLE_REQUEST_LIMIT", None)
                    }
                };
            }
            let response = faults::run(&state.faults, req, next).await;
            if let Some(Metered {
                vehicle: Some(vehicle),
            }) = metered
                && response.status().is_success()
            {
                let calls = response
                    .extensions()
                    .get::<limits::BilledCalls>()
                    .map_or(1, |b| b.0);
                state.limits.bill(&vehicle, calls, state.now());
            }
            response
        }
    }
}

/// Options of a simulator; [`SimulatorBuilder::start`] runs it.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use smartcar_sim::{Config, Simulator};
///
/// let sim = Simulator::builder()
///     .seed(42)
///     .users(2)
///     .vehicles(10)
///     .config(Config { refresh_grace: std::time::Duration::from_secs(600), ..Config::default() })
///     .log_requests(false) // benchmarks
///     .start()
///     .await?;
/// # drop(sim); Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SimulatorBuilder {
    pub(crate) seed: u64,
    pub(crate) users: usize,
    pub(crate) vehicles: usize,
    pub(crate) port: u16,
    pub(crate) config: Config,
    pub(crate) log_requests: bool,
    pub(crate) log_max_bytes: usize,
    pub(crate) epoch: Option<DateTime<Utc>>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) application: ApplicationSettings,
    pub(crate) host: std::net::IpAddr,
    pub(crate) limits: crate::limits::Limits,
}

/// The application a test suite registered with Smartcar, for the simulator to play instead of
/// the one derived from the seed: what is `None` (or empty) keeps the seeded value.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use smartcar_sim::{ApplicationSettings, Simulator};
///
/// let sim = Simulator::builder()
///     .application(ApplicationSettings {
///         client_id: Some("my-client-id".into()),
///         client_secret: Some("my-client-secret".into()),
///         redirect_uris: vec!["http://localhost:3000/callback".into()],
///         ..ApplicationSettings::default()
///     })
///     .start()
///     .await?;
/// assert_eq!(sim.app().client_id, "my-client-id");
/// assert_eq!(sim.app().redirect_uris, ["http://localhost:3000/callback"]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplicationSettings {
    /// The OAuth client id.
    pub client_id: Option<String>,
    /// The OAuth client secret.
    pub client_secret: Option<String>,
    /// Redirect URIs of the authorization-code flow (Connect answers them with a `code`).
    /// When this or [`user_id_redirect_uris`](Self::user_id_redirect_uris) lists any, the two
    /// lists replace every seeded redirect URI.
    pub redirect_uris: Vec<String>,
    /// Redirect URIs of the machine-to-machine flow (Connect answers them with a `user_id`).
    pub user_id_redirect_uris: Vec<String>,
    /// The application management token (webhook signatures, management API v2.0).
    pub management_token: Option<String>,
    /// Webhooks the application has (what creating them in the Dashboard does), registered at
    /// start, unverified: verify one with [`Simulator::verify_webhook`] or
    /// `POST /_sim/webhooks/{id}/verify` before expecting deliveries.
    pub webhooks: Vec<WebhookSettings>,
}

/// A webhook of [`ApplicationSettings::webhooks`]: the id your test suite knows it by (the one
/// Smartcar's Dashboard gave yours, for example), where deliveries go, and what they carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Its id (`None`: a random one).
    pub id: Option<String>,
    /// Where deliveries are POSTed (http or https).
    pub callback_url: String,
    /// The payload version (`V3` unless your suite subscribes through v2.0 webhooks only; v2.0
    /// subscriptions accept either).
    pub version: crate::model::WebhookVersion,
    /// Display name (`None`: "Webhook").
    pub name: Option<String>,
    /// v3: the signal codes every `VEHICLE_STATE` event carries; v2: the data paths.
    pub signals: Vec<String>,
}

impl WebhookSettings {
    /// A v3 webhook with this id delivering to `callback_url`.
    pub fn new(id: &str, callback_url: &str) -> Self {
        WebhookSettings {
            id: Some(id.to_owned()),
            callback_url: callback_url.to_owned(),
            version: crate::model::WebhookVersion::V3,
            name: None,
            signals: Vec::new(),
        }
    }
}

impl ApplicationSettings {
    /// Applies the settings to `app`.
    ///
    /// # Errors
    ///
    /// An empty id, secret or token, or a redirect URI that is not an absolute http(s) URL.
    fn apply(&self, app: &mut crate::model::App) -> Result<(), String> {
        let set = |value: &Option<String>, what: &str, to: &mut String| {
            if let Some(v) = value {
                if v.trim().is_empty() {
                    return Err(format!("the {what} may not be empty"));
                }
                v.clone_into(to);
            }
            Ok(())
        };
        set(&self.client_id, "client id", &mut app.client_id)?;
        set(&self.client_secret, "client secret", &mut app.client_secret)?;
        set(&self.management_token, "management token", &mut app.amt)?;
        for uri in self.redirect_uris.iter().chain(&self.user_id_redirect_uris) {
            let parsed = url::Url::parse(uri)
                .map_err(|e| format!("redirect URI `{uri}` is not a URL ({e})"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("redirect URI `{uri}` is not http(s)"));
            }
        }
        if !self.redirect_uris.is_empty() || !self.user_id_redirect_uris.is_empty() {
            app.redirect_uris.clone_from(&self.redirect_uris);
            app.user_id_redirect_uris
                .clone_from(&self.user_id_redirect_uris);
        }
        // Every user_id redirect URI is registered too.
        for uri in &app.user_id_redirect_uris {
            if !app.redirect_uris.contains(uri) {
                app.redirect_uris.push(uri.clone());
            }
        }
        Ok(())
    }

    /// Registers [`ApplicationSettings::webhooks`] in `world`.
    ///
    /// # Errors
    ///
    /// An empty or repeated id, a callback URL that is not an absolute http(s) URL.
    fn register_webhooks(&self, world: &mut crate::model::World) -> Result<(), String> {
        for hook in &self.webhooks {
            let url = url::Url::parse(&hook.callback_url).map_err(|e| {
                format!(
                    "webhook callback URL `{}` is not a URL ({e})",
                    hook.callback_url
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "webhook callback URL `{}` is not http(s)",
                    hook.callback_url
                ));
            }
            let id = match &hook.id {
                Some(id)
                    if id.trim().is_empty()
                        || id.chars().any(|c| c.is_whitespace() || c == '/') =>
                {
                    return Err(format!(
                        "webhook id `{id}` may not be empty nor hold spaces or `/`"
                    ));
                }
                Some(id) => id.clone(),
                None => crate::state::random_id(),
            };
            if world.webhooks.contains_key(&id) {
                return Err(format!("webhook id `{id}` is given twice"));
            }
            let signals = hook.signals.clone();
            world.webhooks.insert(
                id.clone(),
                crate::model::Webhook {
                    id,
                    name: hook.name.clone().unwrap_or_else(|| "Webhook".to_owned()),
                    callback_url: hook.callback_url.clone(),
                    version: hook.version,
                    signals,
                },
            );
        }
        Ok(())
    }
}

impl Default for SimulatorBuilder {
    fn default() -> Self {
        SimulatorBuilder {
            seed: 1,
            users: 3,
            vehicles: 6,
            port: 0,
            config: Config::default(),
            log_requests: true,
            log_max_bytes: crate::observe::DEFAULT_LOG_MAX_BYTES,
            epoch: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            application: ApplicationSettings::default(),
            host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            limits: crate::limits::Limits::default(),
        }
    }
}

impl SimulatorBuilder {
    /// Seed of the fleet, the application's credentials and the fault dice (default 1).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Number of users (default 3, at least 1).
    pub fn users(mut self, users: usize) -> Self {
        self.users = users.max(1);
        self
    }

    /// Number of vehicles (default 6, at least 1).
    pub fn vehicles(mut self, vehicles: usize) -> Self {
        self.vehicles = vehicles.max(1);
        self
    }

    /// Port on 127.0.0.1 (default 0: a free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Token lifetimes and the refresh grace period.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Records every exchange in the request log (default on; counters run either way).
    ///
    /// Memory: the log keeps the last 10 000 exchanges, and of each at most 1 MiB of the
    /// request body and 1 MiB of the response body (copies), but never more than
    /// [`SimulatorBuilder::log_max_bytes`] in all (64 MiB by default): the oldest exchanges are
    /// dropped first.
    pub fn log_requests(mut self, on: bool) -> Self {
        self.log_requests = on;
        self
    }

    /// Bound of the memory the request log retains, in bytes (default 64 MiB,
    /// [`crate::observe::DEFAULT_LOG_MAX_BYTES`]); past it the oldest exchanges are dropped.
    /// [`Simulator::request_log_bytes`] tells what the log holds now.
    pub fn log_max_bytes(mut self, bytes: usize) -> Self {
        self.log_max_bytes = bytes;
        self
    }

    /// How long a client may take to send a request's line and headers (default 10 seconds,
    /// also the longest a kept-alive connection may stay idle); past it the connection is
    /// closed without an answer. A zero duration means the default.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = if timeout.is_zero() {
            DEFAULT_HEADER_READ_TIMEOUT
        } else {
            timeout
        };
        self
    }

    /// How long a client may take to send a request's body once its headers arrived (default
    /// 30 seconds); past it the request fails with 408 and the connection is closed. A zero
    /// duration means the default.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = if timeout.is_zero() {
            DEFAULT_BODY_TIMEOUT
        } else {
            timeout
        };
        self
    }

    /// A fixed "now": simulated time starts there and moves only with
    /// [`Simulator::advance`], so every timestamp the simulator sends is reproducible.
    /// Without it, simulated time is the wall clock (plus what `advance` added).
    pub fn epoch(mut self, epoch: DateTime<Utc>) -> Self {
        self.epoch = Some(epoch);
        self
    }

    /// Plays this application instead of the seeded one (see [`ApplicationSettings`]).
    pub fn application(mut self, settings: ApplicationSettings) -> Self {
        self.application = settings;
        self
    }

    /// The address to listen on (default 127.0.0.1; `0.0.0.0` for a container).
    pub fn host(mut self, host: std::net::IpAddr) -> Self {
        self.host = host;
        self
    }

    /// The platform's request limits (default: all off; [`Limits::platform`] for the docs'
    /// values). Change them while running with [`Simulator::limits`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use smartcar_sim::Simulator;
    /// use smartcar_sim::limits::Limits;
    ///
    /// let sim = Simulator::builder()
    ///     .limits(Limits { monthly_allowance: Some(500), ..Limits::default() })
    ///     .start()
    ///     .await?;
    /// assert_eq!(sim.limits().get().monthly_allowance, Some(500));
    /// # Ok(()) }
    /// ```
    ///
    /// [`Limits::platform`]: crate::limits::Limits::platform
    pub fn limits(mut self, limits: crate::limits::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Binds the port and serves in the background of the current tokio runtime.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound, or the [`application`](Self::application) settings or
    /// the [`limits`](Self::limits) are invalid (`InvalidInput`).
    pub async fn start(self) -> std::io::Result<Simulator> {
        Simulator::launch(&self).await
    }
}

/// A simulator serving in the background of the current tokio runtime. Dropping it stops the
/// server at once; [`Simulator::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    state: AppState,
    task: Option<tokio::task::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Simulator {
    /// Options: seed, fleet size, port, configuration, request logging, epoch.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder::default()
    }

    /// Starts a simulator with the default fleet (seed 1, 3 users, 6 vehicles) on a free port
    /// of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    pub(crate) async fn launch(options: &SimulatorBuilder) -> std::io::Result<Self> {
        let now = options.epoch.unwrap_or_else(chrono::Utc::now);
        let mut world = fleet::generate(&FleetOptions {
            seed: options.seed,
            users: options.users,
            vehicles: options.vehicles,
            now,
        });
        options
            .application
            .apply(&mut world.app)
            .and_then(|()| options.application.register_webhooks(&mut world))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // Smartcar's v3 test-data vehicle and its static token, after the fleet (its own
        // values: the fleet's stream is untouched) and the application (the token is its).
        v3::test_data::seed(&mut world, now);
        let listener = TcpListener::bind((options.host, options.port)).await?;
        let addr = listener.local_addr()?;
        let clock = options.epoch.map(Clock::fixed).unwrap_or_default();
        let mut shared = Shared::new(
            options.config.clone(),
            clock,
            world,
            base_url(addr),
            options.seed,
        );
        shared.observer.set_logging(options.log_requests);
        shared.observer.set_log_max_bytes(options.log_max_bytes);
        shared.body_timeout = options.body_timeout;
        shared
            .limits
            .set(options.limits.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let state = AppState(Arc::new(shared));
        let app = router(state.clone());
        let listener = observe::CountingListener {
            inner: listener,
            accepted: state.observer.connection_counter(),
            connections: state.faults.connections().clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Serving ends when the handle asks (or is dropped); accept errors are retried by the
        // listener.
        let task = tokio::spawn(serve::serve(
            listener,
            app,
            options.header_read_timeout,
            stopped,
        ));
        Ok(Self {
            addr,
            state,
            task: Some(task),
            stop: Some(stop),
        })
    }

    /// The base URL, such as `http://127.0.0.1:43121` (no trailing slash). Every host of the
    /// platform is served here (see [`Simulator::origins`]).
    pub fn base_url(&self) -> String {
        base_url(self.addr)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (world, clock, log, faults).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting connections, closes idle ones, lets requests in flight finish (at most
    /// 5 seconds, then they are cut), and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
