//! An offline simulator of the Smartcar platform: one axum server on 127.0.0.1 that answers
//! every host's paths (Connect, auth, iam, API v2.0, compatibility, management, Vehicle API v3,
//! management v3) on one port, for tests, examples and demos. Responses are serialised from the
//! generated types of `smartcar-api`, so the simulator cannot drift from the OpenAPI spec.

#![deny(missing_docs)]

pub mod auth;
pub mod error;
pub mod fleet;
pub mod model;
pub mod state;

mod compat;
mod connect;
mod management;
mod oauth;
mod v2;
mod v3;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use tokio::net::TcpListener;

use crate::fleet::FleetOptions;
use crate::state::{AppState, Clock, Config, Shared};

/// Every route of the simulated platform.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(connect::routes())
        .merge(oauth::routes())
        .merge(v2::routes())
        .merge(v3::routes())
        .merge(management::routes())
        .merge(compat::routes())
        .merge(webhooks::routes())
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(state)
}

/// A simulator serving in the background of the current tokio runtime.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Starts a simulator with the default fleet (seed 1, 3 users, 6 vehicles) on a free port
    /// of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let world = fleet::generate(&FleetOptions {
            seed: 1,
            users: 3,
            vehicles: 6,
            now: chrono::Utc::now(),
        });
        let state = AppState(Arc::new(Shared {
            config: Config::default(),
            clock: Clock::default(),
            world: Mutex::new(world),
            base_url: format!("http://{addr}"),
        }));
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            // Serving only ends with an I/O error of the listener; the simulator then stops.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state, task })
    }

    /// The base URL, such as `http://127.0.0.1:43121` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state (world, clock).
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
