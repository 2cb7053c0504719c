//! An offline simulator of the Smartcar platform: one axum server that answers every host's
//! paths (Connect, auth, API, management) on one port, for tests, examples and demos.
//!
//! A placeholder for now: it answers `GET /healthz` only.

#![deny(missing_docs)]

use std::net::SocketAddr;

use axum::{Router, routing::get};
use tokio::net::TcpListener;

/// The simulator's routes.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}

/// A simulator serving in the background of the current tokio runtime.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Starts a simulator on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            // Serving only ends with an I/O error of the listener; the simulator then stops.
            let _ = axum::serve(listener, router()).await;
        });
        Ok(Self { addr, task })
    }

    /// The base URL, such as `http://127.0.0.1:43121` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
