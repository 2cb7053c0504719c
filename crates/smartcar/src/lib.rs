//! The Rust SDK for the [Smartcar](https://smartcar.com) connected-car API.
//!
//! - [`Client`]: one application (client id, secret, redirect URI), one connection pool for
//!   every Smartcar host; [`Client::builder`] or [`Client::from_env`].
//! - Smartcar Connect: [`Client::authorize`] builds the URL (every Connect option),
//!   [`Client::handle_redirect`] reads the redirect back and checks its `state` in constant time.
//! - Tokens: [`Client::exchange_code`], [`Client::refresh_tokens`] (rotation),
//!   [`Client::request_application_token`] (client credentials, for the v3 API).
//! - Errors: one [`Error`] with [`Error::kind`]; API errors keep every field Smartcar sends.
//! - The generated low-level client is [`api`] (and [`Client::low_level`]).
//!
//! The v2 authorization-code flow:
//!
//! ```no_run
//! # async fn demo() -> Result<(), smartcar::Error> {
//! use smartcar::{Client, Permission, Redirect};
//!
//! let client = Client::from_env()?; // SMARTCAR_CLIENT_ID, _SECRET, _REDIRECT_URI
//! let auth = client
//!     .authorize()
//!     .scopes([Permission::ReadOdometer, Permission::ReadVehicleInfo])
//!     .build()?;
//! // Send the browser to auth.url; keep auth.state in the user's session. Then, on the
//! // redirect back to your redirect URI:
//! # let redirect_url = "";
//! match client.handle_redirect(redirect_url, &auth.state)? {
//!     Redirect::Code(code) => {
//!         let tokens = client.exchange_code(&code).await?;
//!         # let _ = tokens;
//!     }
//!     other => println!("unexpected redirect {other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! Tokens and vehicles: a [`Session`] keeps one user's tokens in a [`TokenStore`], refreshes
//! ahead of expiry (once for any number of concurrent callers) and saves the rotated refresh
//! token before using the new access token. [`Vehicle::batch`] reads several things in one
//! request, with one `Result` per read:
//!
//! ```no_run
//! # async fn demo(client: smartcar::Client, tokens: smartcar::Tokens) -> Result<(), smartcar::Error> {
//! use std::sync::Arc;
//! use smartcar::{MemoryTokenStore, Session};
//!
//! let session = Session::create(&client, Arc::new(MemoryTokenStore::new()), "user-1", tokens).await?;
//! for id in session.vehicle_ids(None, None).await?.data.vehicles {
//!     let vehicle = session.vehicle(id)?;
//!     vehicle.lock().await?;
//!     let batch = vehicle.batch().odometer().battery().lock_status().send().await?;
//!     println!("{} km", batch.odometer()?.data.distance);
//!     if let Err(e) = batch.battery() {
//!         println!("no battery reading: {e}"); // e.g. a fuel car
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The machine-to-machine flow (Vehicle API v3): Connect redirects with a `user_id`, and one
//! application token serves every user, named by the `sc-user-id` header:
//!
//! ```no_run
//! # async fn demo(client: smartcar::Client, redirect_url: &str, state: smartcar::State) -> Result<(), smartcar::Error> {
//! use smartcar::{ApplicationSession, Redirect, SignalCode};
//!
//! let app = ApplicationSession::new(&client); // client credentials, cached and renewed
//! if let Redirect::UserId(user_id) = client.handle_redirect(redirect_url, &state)? {
//!     let user = app.user(user_id)?;
//!     for vehicle_id in user.vehicle_ids().await? {
//!         let vehicle = user.vehicle(vehicle_id)?;
//!         let soc = vehicle.signal(SignalCode::TractionbatteryStateofcharge).await?;
//!         println!("{:?} {:?}", soc.number(), soc.unit());
//!         vehicle.lock().await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Webhooks: [`webhooks`] verifies deliveries (and, with the `axum` feature, gives an extractor):
//!
//! ```no_run
//! # fn demo(amt: &str, signature: Option<&str>, body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use smartcar::webhooks::{WebhookEvent, WebhookVerifier};
//!
//! // The application management token; an empty one is refused.
//! let verifier = WebhookVerifier::new(amt)?;
//! // `sc-signature` in constant time, then (v3) the signed `deliveredAt` within 5 minutes.
//! let delivery = verifier.verify(signature, body)?;
//! if let WebhookEvent::Verify { challenge } = &delivery.event {
//!     println!("{}", verifier.challenge_response(challenge));
//! }
//! # Ok(()) }
//! ```
//!
//! Runnable programs: the quickstart (`cargo run -p smartcar-sdk --example quickstart`) runs
//! the whole flow against the embedded simulator, or the real platform when `SMARTCAR_*`
//! credentials are set; `crates/smartcar-example-web` is an axum web app (Connect login, the
//! code and `user_id` flows, a vehicle table with a Lock button, webhooks).
//!
//! Choosing a token store (where a [`Session`] keeps a user's tokens; see [`TokenStore`]):
//! - [`MemoryTokenStore`]: tests, examples, a process that may lose tokens on restart.
//! - `SqliteTokenStore` (feature `sqlite`): a file, nothing to run; the durable default for one
//!   process.
//! - `PostgresTokenStore` (feature `postgres`): several instances of a service; a refresh is
//!   single-flight across all of them (an advisory lock per key, released on commit, when the
//!   holder's connection dies, or after a lease timeout).
//! - `TokenCipher` (feature `encryption`): the SQL stores encrypt token values at rest with your
//!   key (off by default).
//! - Your own database: implement [`TokenStore`]; override
//!   [`TokenStore::lock_for_refresh`] for cross-process single flight.
//!
//! ```no_run
//! # async fn demo(client: smartcar::Client, tokens: smartcar::Tokens) -> Result<(), smartcar::Error> {
//! use std::sync::Arc;
//! use smartcar::{MemoryTokenStore, Session, TokenStore};
//!
//! // With the `postgres` feature: `smartcar::PostgresTokenStore::connect(&url).await?`.
//! let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
//! let session = Session::create(&client, store, "user-42", tokens).await?;
//! # let _ = session;
//! # Ok(()) }
//! ```
//!
//! Secrets (client secret, tokens, authorization codes, state) are held in types whose `Debug`
//! shows `[redacted]`, and are never part of an error message.

#![deny(missing_docs)]

mod checks;
mod client;
mod compatibility;
mod config;
mod connect;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod management;
mod oauth;
mod paging;
mod request;
mod runtime;
mod send;
mod session;
mod store;
mod tokens;
mod v3;
mod values;
mod vehicle;
mod vin;
pub mod webhooks;

/// The low-level client generated from the OpenAPI description (the `smartcar-api` crate).
pub use smartcar_api as api;

pub use client::{Client, ClientBuilder, ClientSecret, DEFAULT_TIMEOUT};
pub use config::{Mode, Origins, RetryPolicy, UnitSystem};
pub use connect::{
    AuthorizationCode, AuthorizationUrl, AuthorizeBuilder, Redirect, ScopeRequest, State,
};
pub use error::{
    ApiError, BodyShape, ConnectError, DecodeError, Error, ErrorKind, OAuthError, TransportKind,
};
/// HTTP methods, for [`Vehicle::request`].
pub use http::Method;
pub use management::{ConnectionFilter, ConnectionStream, Management};
pub use oauth::{ExchangeOptions, REFRESH_RETRY_WINDOW};
pub use request::{Meta, Response};
pub use runtime::{Clock, Sleep, SystemClock, TokioSleep};
pub use session::{ApplicationSession, DEFAULT_REFRESH_SKEW, Session};
/// The `sqlx` the SQL token stores are built on (to hand them a pool of your own).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sqlx;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use store::LockTimeouts;
#[cfg(feature = "postgres")]
pub use store::PostgresTokenStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteTokenStore;
pub use store::{
    BoxFuture, CasOutcome, HeldLock, MemoryTokenStore, RefreshLock, TokenStore, store_key_hash,
};
#[cfg(feature = "encryption")]
pub use store::{ClearTokensRefused, TokenCipher};
pub use tokens::{
    AccessToken, ApplicationToken, ApplicationTokenValue, REFRESH_TOKEN_LIFETIME, RefreshToken,
    Tokens,
};
pub use v3::{Signal, USER_ID_SKEW, UserIdError, UserV3, VehicleV3};
pub use values::{ChargeLimit, Destination};
pub use vehicle::{BatchBuilder, BatchResponse, Vehicle, VehicleStream};
pub use vin::Vin;

/// A Smartcar permission (OAuth scope), e.g. [`Permission::ReadOdometer`]. Unknown names are
/// kept as `Permission::Unknown(name)`.
pub use smartcar_api::open_enums::Permission;

/// A v3 signal code, e.g. [`SignalCode::OdometerTraveleddistance`]. Unknown codes are kept as
/// `SignalCode::Unknown(code)`.
pub use smartcar_api::open_enums::SignalCode;

/// The README's Rust examples, compiled as doc-tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
