//! An offline simulator of the Smartcar platform: one axum server on 127.0.0.1 that answers
//! every host's paths (Connect, auth, iam, API v2.0, compatibility, management, Vehicle API v3,
//! management v3) on one port, for tests, examples and demos. Responses are serialised from the
//! generated types of `smartcar-api`, so the simulator cannot drift from the OpenAPI spec.
//!
//! Limits that keep a long-running simulator healthy against careless or hostile clients:
//!
//! - a client must send a request's line and headers within 10 seconds (also the longest a
//!   kept-alive connection stays idle) and its body within 30 seconds after that (408), see
//!   [`SimulatorBuilder::header_read_timeout`] and [`SimulatorBuilder::body_timeout`];
//!   request bodies over 16 MiB are refused (413);
//! - the request log keeps at most 10 000 exchanges and 64 MiB
//!   ([`SimulatorBuilder::log_max_bytes`]), of each body a copy of at most 1 MiB, secrets
//!   masked (see [`observe`]);
//! - showing a Connect page changes nothing; only the user's answer does (see the Connect
//!   notes in the crate's `connect` module: a `single_select_vin` vehicle is created on
//!   Approve, at most 1 000 in a simulator's life).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use smartcar_sim::{ApproveOptions, Fault, Simulator};
//!
//! let sim = Simulator::builder().seed(7).vehicles(4).start().await?;
//! let app = sim.app();
//! // Point a client at every host (all the same base URL).
//! let origins = sim.origins();
//! assert_eq!(origins.api, sim.base_url());
//! // Run Connect without a browser.
//! let url = format!(
//!     "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read_odometer",
//!     origins.connect, app.client_id, app.redirect_uris[0]
//! );
//! let redirect = sim.approve(&url, ApproveOptions::new())?;
//! assert!(redirect.query_pairs().any(|(k, _)| k == "code"));
//! // Make the next token request fail, move the clock, look at the traffic.
//! sim.faults().inject(Fault::status(500)).on("/oauth/token").once();
//! sim.advance(Duration::from_secs(2 * 3600));
//! println!("{} requests so far", sim.requests().len());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod auth;
pub mod error;
pub mod faults;
pub mod fleet;
pub mod handle;
pub mod model;
pub mod observe;
pub mod state;

mod compat;
mod connect;
mod management;
mod oauth;
mod routing;
mod serve;
mod v2;
mod v3;
mod vehicle_commands;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

pub use crate::faults::{Fault, FaultId, FaultRule, Faults};
pub use crate::handle::{
    AppCredentials, ApproveOptions, ConnectError, DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, MintedTokens, Origins, SimulatorBuilder,
};
pub use crate::observe::RecordedRequest;
pub use crate::state::Config;

use crate::error::ApiError;
use crate::fleet::FleetOptions;
use crate::state::{AppState, Clock, Shared};

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
        .route(
            routing::sim_paths::HEALTHZ,
            axum::routing::get(|| async { "ok" }),
        )
        .fallback(not_found)
        // One layer for both: the log sees what faults did (see `observe::middleware`).
        .layer(from_fn_with_state(state.clone(), observe::middleware))
        .with_state(state)
}

/// No route: 404 `RESOURCE_NOT_FOUND` in the shape of the API the path belongs to.
async fn not_found(State(_state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    let error = ApiError::not_found();
    let segment = routing::first_segment(path);
    let more = path.len() > segment.len() + 1;
    if segment == routing::v3_segment() && more {
        error.into_v3().into_response()
    } else if path.starts_with("/v") && !(more && routing::is_known_version(segment)) {
        ApiError::v2("RESOURCE_NOT_FOUND", Some("VERSION")).into_response()
    } else {
        error.into_response()
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
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let now = options.epoch.unwrap_or_else(chrono::Utc::now);
        let world = fleet::generate(&FleetOptions {
            seed: options.seed,
            users: options.users,
            vehicles: options.vehicles,
            now,
        });
        let clock = options.epoch.map(Clock::fixed).unwrap_or_default();
        let mut shared = Shared::new(
            options.config.clone(),
            clock,
            world,
            format!("http://{addr}"),
            options.seed,
        );
        shared.observer.set_logging(options.log_requests);
        shared.observer.set_log_max_bytes(options.log_max_bytes);
        shared.body_timeout = options.body_timeout;
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
        format!("http://{}", self.addr)
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
