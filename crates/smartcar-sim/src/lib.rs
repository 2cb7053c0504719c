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
//! # Layers
//!
//! Every route, method and permission comes from the spec's operation table
//! ([`smartcar_api::ops`]), registered through the crate's `routing` module. The modules form
//! layers; a module imports only from the layers above it (no import circle):
//!
//! 1. leaves: `ids` (random ids), [`model`] (the world's data), `routing` (routes from
//!    operations, the simulator-only paths);
//! 2. [`fleet`] (model), [`error`] (ids): the seeded fleet, the error catalogue;
//! 3. [`faults`] (error, fleet, routing) then [`observe`] (error, faults, routing): fault rules
//!    and the request log, with no knowledge of the state or the routes; [`limits`] (routing):
//!    the platform's request limits and their usage;
//! 4. [`state`] (model, faults, observe, limits): the shared state handlers see;
//! 5. [`auth`], `vehicle_commands`: how requests authenticate, what commands do to a car;
//! 6. the routes: `connect`, `oauth`, `v2`, then `compat`, `management` (which use `v2`'s
//!    helpers), `v3` (uses `v2`'s helpers and `compat`'s regions and years for the v3
//!    compatible-vehicles list), then `webhooks` (deliveries, the v3 webhooks and
//!    subscriptions; uses `v2`, `v3`), then `control` (the control API under `/_sim`: the
//!    handle's controls over HTTP for test suites in any language; uses `connect`, `webhooks`);
//! 7. `serve` (the accept loop) and `server`, the composition root: router, middleware,
//!    listener, [`Simulator`] and [`SimulatorBuilder`];
//! 8. [`handle`]: the handle's controls (Connect without a browser, minted tokens, clock,
//!    faults, log, webhooks); `testing` (feature `test-support`): the test harness.
//! 9. [`cli`]: the command line (flags, `SMARTCAR_SIM_*` variables, `--config` file, banner,
//!    stop signals) of the `smartcar-sim` binary and of the `smartcar` CLI's `smartcar sim`.
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

// Leaves: import nothing of the crate (or only other leaves).
pub mod error;
pub mod fleet;
mod ids;
pub mod model;
mod routing;
// Traffic concerns, below the state they are part of.
pub mod faults;
pub mod limits;
pub mod observe;
pub mod state;
// The platform's rules and its routes.
pub mod auth;
mod compat;
mod connect;
mod management;
mod oauth;
mod v2;
mod v3;
mod vehicle_commands;
mod webhooks;
// The control API over HTTP (uses `connect` and `webhooks`).
mod control;
// The composition root, its accept loop, and the handle's controls.
pub mod handle;
// The test harness (feature `test-support`), over the public API only.
mod serve;
mod server;
#[cfg(feature = "test-support")]
pub mod testing;
// The command line, over everything above.
pub mod cli;

pub use crate::faults::{Fault, FaultId, FaultKind, FaultRule, Faults};
pub use crate::handle::{AppCredentials, ApproveOptions, ConnectError, MintedTokens, Origins};
pub use crate::observe::RecordedRequest;
pub use crate::server::{
    ApplicationSettings, Simulator, SimulatorBuilder, WebhookSettings, router,
};
pub use crate::state::{Config, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT};
