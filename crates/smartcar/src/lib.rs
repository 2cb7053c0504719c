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
//! # Where things are
//!
//! The crate root holds only what a program starts from or meets on almost every call:
//! [`Client`] and [`ClientBuilder`]; the two sessions, [`ApplicationSession`] (the application
//! token, the v3 API) and [`Session`] (a user's tokens, the legacy v2.0 vehicle API); [`Error`] and
//! [`ErrorKind`]; [`Response`] and [`Meta`] (what every call returns); the values passed to
//! calls of both API versions, [`Permission`], [`ChargeLimit`], [`Destination`], [`Vin`];
//! [`Redirect`] (matched right after [`Client::handle_redirect`]); and [`api`]. Every other item
//! has exactly one path, in the module of the task it belongs to:
//!
//! | Module | For |
//! |---|---|
//! | [`connect`] | the authorization URL and its options, `State`, the authorization code, exchange options |
//! | [`tokens`] | access, refresh and application tokens, and their lifetimes |
//! | [`store`] | where a [`Session`] keeps tokens: the [`store::TokenStore`] trait, the memory and SQL stores, encryption at rest |
//! | [`v2`] | legacy: the Vehicle API v2.0, deprecated by Smartcar (use [`v3`]): [`v2::Vehicle`], batch requests, the vehicle stream |
//! | [`v3`] | the Vehicle API v3: [`v3::UserV3`], [`v3::VehicleV3`], signals and their codes |
//! | [`management`] | the management API (application management token): connections |
//! | [`fleet`] | one call per vehicle over a whole fleet: bounded concurrency, a result per vehicle, progress, cancellation, the cheapest fresh reads |
//! | [`webhooks`] | verifying webhook deliveries (and an axum extractor) |
//! | `pipeline` (features `sqlite`/`postgres`) | the durable webhook receiver: verify → enqueue (SQLite/PostgreSQL) → consumers with per-vehicle order, leases, retries, dead letters |
//! | [`limits`] | the platform's request limits kept on the client: bucket, per-vehicle throttle, monthly budget, and where their counts live |
//! | [`config`] | client configuration: hosts, mode, units, retries, clock and sleep, timing constants |
//! | [`error`] | the details an [`Error`] carries (API, OAuth, Connect, decode, transport) |
//!
//! The v2.0 authorization-code flow (legacy: Smartcar has deprecated the Vehicle API v2.0, with
//! retirement announced for Q3 2026; new integrations use [`v3`] and the machine-to-machine flow
//! shown below):
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
//! Tokens and vehicles: a [`Session`] keeps one user's tokens in a [`store::TokenStore`],
//! refreshes ahead of expiry (once for any number of concurrent callers) and saves the rotated
//! refresh token before using the new access token. [`v2::Vehicle::batch`] reads several things in one
//! request, with one `Result` per read:
//!
//! ```no_run
//! # async fn demo(client: smartcar::Client, tokens: smartcar::tokens::Tokens) -> Result<(), smartcar::Error> {
//! use std::sync::Arc;
//! use smartcar::Session;
//! use smartcar::store::MemoryTokenStore;
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
//! # async fn demo(client: smartcar::Client, redirect_url: &str, state: smartcar::connect::State) -> Result<(), smartcar::Error> {
//! use smartcar::{ApplicationSession, Redirect};
//! use smartcar::v3::SignalCode;
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
//! Choosing a token store (where a [`Session`] keeps a user's tokens; see [`store`]):
//! - [`store::MemoryTokenStore`]: tests, examples, a process that may lose tokens on restart.
//! - `SqliteTokenStore` (feature `sqlite`): a file, nothing to run; the durable default for one
//!   process.
//! - `PostgresTokenStore` (feature `postgres`): several instances of a service; a refresh is
//!   single-flight across all of them (an advisory lock per key, released on commit, when the
//!   holder's connection dies, or after a lease timeout).
//! - `TokenCipher` (feature `encryption`): the SQL stores encrypt token values at rest with your
//!   key (off by default).
//! - Your own database: implement [`store::TokenStore`]; override
//!   [`store::TokenStore::lock_for_refresh`] for cross-process single flight.
//!
//! ```no_run
//! # async fn demo(client: smartcar::Client, tokens: smartcar::tokens::Tokens) -> Result<(), smartcar::Error> {
//! use std::sync::Arc;
//! use smartcar::Session;
//! use smartcar::store::{MemoryTokenStore, TokenStore};
//!
//! // With the `postgres` feature: `smartcar::store::PostgresTokenStore::connect(&url).await?`.
//! let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
//! let session = Session::create(&client, store, "user-42", tokens).await?;
//! # let _ = session;
//! # Ok(()) }
//! ```
//!
//! Secrets (client secret, tokens, authorization codes, state) are held in types whose `Debug`
//! shows `[redacted]`, and are never part of an error message.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Implementation modules. Where a public module below has the same name, the implementation
// file is loaded under an `_impl` name and the public module re-exports what users need (and,
// `pub(crate)`, everything else, so that `crate::<module>::…` keeps working inside the crate).
mod checks;
mod client;
pub mod compatibility;
#[path = "config.rs"]
mod config_impl;
#[path = "connect.rs"]
mod connect_impl;
#[path = "error.rs"]
mod error_impl;
pub mod fleet;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod management;
mod oauth;
mod paging;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod pipeline;
mod request;
mod runtime;
mod schedules;
mod send;
mod session;
#[path = "store/mod.rs"]
mod store_impl;
pub mod tokens;
#[path = "v3.rs"]
mod v3_impl;
mod values;
mod vehicle;
mod vin;
pub mod webhooks;

// The crate root: the entry points a user starts from.

/// The low-level client generated from the OpenAPI description (the `smartcar-api` crate).
pub use smartcar_api as api;

pub use client::{Client, ClientBuilder};
pub use connect_impl::Redirect;
pub use error_impl::{Error, ErrorKind};
pub use request::{Meta, Response};
pub use session::{ApplicationSession, Session};
pub use values::{ChargeLimit, Destination};
pub use vin::Vin;

/// A Smartcar permission (OAuth scope), e.g. [`Permission::ReadOdometer`]. Unknown names are
/// kept as `Permission::Unknown(name)`.
pub use smartcar_api::open_enums::Permission;

// Crate-internal short paths (`crate::Tokens`, …) used by the implementation modules; the public
// path of each of these items is in its module below.
pub(crate) use client::ClientSecret;
pub(crate) use runtime::{Clock, Sleep, SystemClock, TokioSleep};
pub(crate) use store_impl::store_key_hash;
#[cfg(test)]
pub(crate) use {
    config_impl::{Origins, RetryPolicy},
    error_impl::TransportKind,
    store_impl::MemoryTokenStore,
    tokens::{AccessToken, RefreshToken, Tokens},
};

pub mod connect {
    //! Smartcar Connect: the authorization URL a user is sent to, and what comes back.
    //!
    //! [`Client::authorize`](crate::Client::authorize) returns an [`AuthorizeBuilder`] (scopes,
    //! mode, make, single select, flags, …) whose `build()` gives an [`AuthorizationUrl`]: the URL
    //! and the [`State`] to keep in the user's session.
    //! [`Client::handle_redirect`](crate::Client::handle_redirect) reads the redirect back into a
    //! [`Redirect`] (at the crate root: it is matched right away; [`RedirectExtras`] reads the
    //! `external_id` and `virtual_key_url` it may carry besides), whose [`AuthorizationCode`]
    //! [`Client::exchange_code`](crate::Client::exchange_code) trades for tokens
    //! ([`ExchangeOptions`] for [`Client::exchange_code_with`](crate::Client::exchange_code_with)).
    //!
    //! ```no_run
    //! # fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
    //! use smartcar::Permission;
    //! use smartcar::connect::{AuthorizationUrl, ScopeRequest};
    //!
    //! let auth: AuthorizationUrl = client
    //!     .authorize()
    //!     .scope(ScopeRequest::required(Permission::ReadOdometer))
    //!     .scope(ScopeRequest::optional(Permission::ReadLocation))
    //!     .build()?;
    //! println!("send the browser to {}", auth.url);
    //! # Ok(()) }
    //! ```

    pub use crate::connect_impl::{
        AuthorizationCode, AuthorizationUrl, AuthorizeBuilder, RedirectExtras, ScopeRequest, State,
    };
    pub use crate::oauth::ExchangeOptions;

    #[allow(unused_imports)]
    pub(crate) use crate::connect_impl::*;
}

pub mod store {
    //! Where a [`Session`](crate::Session) keeps one user's tokens between calls and restarts.
    //!
    //! - [`MemoryTokenStore`]: tests, examples, a process that may lose tokens on restart.
    //! - `SqliteTokenStore` (feature `sqlite`): a file, nothing to run; the durable default for one
    //!   process.
    //! - `PostgresTokenStore` (feature `postgres`): several instances of a service; a refresh is
    //!   single-flight across all of them.
    //! - `TokenCipher` (feature `encryption`): the SQL stores encrypt token values at rest.
    //! - Your own database: implement [`TokenStore`] (override [`TokenStore::lock_for_refresh`] for
    //!   cross-process single flight).
    //!
    //! ```no_run
    //! # async fn demo(client: smartcar::Client, tokens: smartcar::tokens::Tokens) -> Result<(), smartcar::Error> {
    //! use std::sync::Arc;
    //! use smartcar::Session;
    //! use smartcar::store::{MemoryTokenStore, TokenStore};
    //!
    //! let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    //! let session = Session::create(&client, store, "user-42", tokens).await?;
    //! # let _ = session;
    //! # Ok(()) }
    //! ```

    /// The `sqlx` the SQL token stores are built on (to hand them a pool of your own).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub use sqlx;

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub use crate::store_impl::LockTimeouts;
    #[cfg(feature = "postgres")]
    pub use crate::store_impl::PostgresTokenStore;
    #[cfg(feature = "sqlite")]
    pub use crate::store_impl::SqliteTokenStore;
    pub use crate::store_impl::{
        BoxFuture, CasOutcome, HeldLock, MemoryTokenStore, RefreshLock, TokenStore, store_key_hash,
    };
    #[cfg(feature = "encryption")]
    pub use crate::store_impl::{ClearTokensRefused, TokenCipher};

    #[allow(unused_imports)]
    pub(crate) use crate::store_impl::*;
}

pub mod v2 {
    //! The Vehicle API v2.0 with a user's tokens: a [`Vehicle`] handle from
    //! [`Session::vehicle`](crate::Session::vehicle), its reads, commands and [`Vehicle::batch`].
    //!
    //! Legacy: Smartcar has deprecated the Vehicle API v2.0 (retirement announced for Q3 2026).
    //! It stays supported here for existing integrations; new ones use [`v3`](crate::v3)
    //! ([`VehicleV3`](crate::v3::VehicleV3), from
    //! [`ApplicationSession::user`](crate::ApplicationSession::user)) and the machine-to-machine
    //! flow. Each method of [`Vehicle`] names its v3 equivalent where there is one.
    //!
    //! ```no_run
    //! # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    //! use smartcar::v2::{BatchResponse, Vehicle};
    //!
    //! for id in session.vehicle_ids(None, None).await?.data.vehicles {
    //!     let vehicle: Vehicle = session.vehicle(id)?;
    //!     let batch: BatchResponse = vehicle.batch().odometer().battery().send().await?;
    //!     println!("{} km", batch.odometer()?.data.distance);
    //! }
    //! # Ok(()) }
    //! ```

    pub use crate::vehicle::{BatchBuilder, BatchResponse, Vehicle, VehicleStream};
}

pub mod v3 {
    //! The Vehicle API v3 with an application token (the machine-to-machine flow): a [`UserV3`]
    //! from [`ApplicationSession::user`](crate::ApplicationSession::user), its [`VehicleV3`]s,
    //! typed [`Signal`]s and commands.
    //!
    //! ```no_run
    //! # async fn demo(app: smartcar::ApplicationSession, user_id: String) -> Result<(), smartcar::Error> {
    //! use smartcar::v3::SignalCode;
    //!
    //! let user = app.user(user_id)?;
    //! for vehicle_id in user.vehicle_ids().await? {
    //!     let soc = user.vehicle(vehicle_id)?.signal(SignalCode::TractionbatteryStateofcharge).await?;
    //!     println!("{:?} {:?}", soc.number(), soc.unit());
    //! }
    //! # Ok(()) }
    //! ```

    pub use crate::schedules::{ChargeLocation, ChargingWindow, TimeOfDay, WeeklySchedule};
    pub use crate::v3_impl::{
        ChargeSchedules, ConnectionQuery, EmptySignalsHint, Signal, Signals, USER_ID_SKEW,
        UserIdError, UserV3, VehicleV3,
    };

    /// A v3 signal code, e.g. [`SignalCode::OdometerTraveleddistance`]. Unknown codes are kept
    /// as `SignalCode::Unknown(code)`.
    pub use smartcar_api::open_enums::SignalCode;

    #[allow(unused_imports)]
    pub(crate) use crate::v3_impl::*;
}

pub mod config {
    //! How a [`Client`](crate::Client) is configured: hosts ([`Origins`]), [`Mode`],
    //! [`UnitSystem`], retries ([`RetryPolicy`]), time ([`Sleep`], [`Clock`]), and the SDK's
    //! timing constants. A [`Sleep`] of your own returns a
    //! [`store::BoxFuture`](crate::store::BoxFuture), the boxed future the token stores use too.
    //!
    //! ```no_run
    //! # fn demo() -> Result<(), smartcar::Error> {
    //! use std::time::Duration;
    //! use smartcar::Client;
    //! use smartcar::config::{Mode, RetryPolicy};
    //!
    //! let client = Client::builder()
    //!     .client_id("id")
    //!     .client_secret("secret")
    //!     .redirect_uri("https://example.com/callback")
    //!     .mode(Mode::Simulated)
    //!     .retry_policy(RetryPolicy::default().max_attempts(5).max_backoff(Duration::from_secs(10)))
    //!     .build()?;
    //! # let _ = client;
    //! # Ok(()) }
    //! ```

    pub use crate::client::{ClientSecret, DEFAULT_TIMEOUT};
    pub use crate::config_impl::{Mode, Origins, RetryPolicy, UnitSystem};
    pub use crate::oauth::REFRESH_RETRY_WINDOW;
    pub use crate::runtime::{Clock, Sleep, SystemClock, TokioSleep};
    pub use crate::session::DEFAULT_REFRESH_SKEW;
    /// HTTP methods, for [`Vehicle::request`](crate::v2::Vehicle::request).
    pub use http::Method;

    #[allow(unused_imports)]
    pub(crate) use crate::config_impl::*;
}

pub mod error {
    //! The details an [`Error`] carries: API errors with every field Smartcar sends
    //! ([`ApiError`]), token-endpoint errors ([`OAuthError`]), Connect errors ([`ConnectError`]),
    //! undecodable bodies ([`DecodeError`]), and the kind of a transport failure ([`TransportKind`]).
    //!
    //! ```no_run
    //! # async fn demo(vehicle: smartcar::v2::Vehicle) {
    //! use smartcar::ErrorKind;
    //!
    //! if let Err(e) = vehicle.lock().await {
    //!     match (e.kind(), e.api()) {
    //!         (ErrorKind::Api, Some(api)) => println!("{} {:?}", api.status, api.code),
    //!         (kind, _) => println!("{kind:?}: {e}"),
    //!     }
    //! }
    //! # }
    //! ```

    pub use crate::error_impl::{
        ApiError, BodyShape, ConnectError, DecodeError, OAuthError, TransportKind,
    };

    #[allow(unused_imports)]
    pub(crate) use crate::error_impl::*;
}

/// One public path per item: the module paths compile, and the old crate-root paths and the
/// implementation modules do not.
///
/// ```
/// #[allow(unused_imports)]
/// use smartcar::{
///     ApplicationSession, ChargeLimit, Client, ClientBuilder, Destination, Error, ErrorKind, Meta,
///     Permission, Redirect, Response, Session, Vin, api,
///     config::{
///         Clock, ClientSecret, DEFAULT_REFRESH_SKEW, DEFAULT_TIMEOUT, Method, Mode, Origins,
///         REFRESH_RETRY_WINDOW, RetryPolicy, Sleep, SystemClock, TokioSleep, UnitSystem,
///     },
///     connect::{
///         AuthorizationCode, AuthorizationUrl, AuthorizeBuilder, ExchangeOptions, ScopeRequest,
///         State,
///     },
///     error::{ApiError, BodyShape, ConnectError, DecodeError, OAuthError, TransportKind},
///     management::{ConnectionFilter, ConnectionStream, Management},
///     store::{
///         BoxFuture, CasOutcome, HeldLock, MemoryTokenStore, RefreshLock, TokenStore,
///         store_key_hash,
///     },
///     tokens::{
///         AccessToken, ApplicationToken, ApplicationTokenValue, REFRESH_TOKEN_LIFETIME,
///         RefreshToken, Tokens,
///     },
///     v2::{BatchBuilder, BatchResponse, Vehicle, VehicleStream},
///     v3::{Signal, SignalCode, USER_ID_SKEW, UserIdError, UserV3, VehicleV3},
///     webhooks::WebhookVerifier,
/// };
/// ```
///
/// ```compile_fail,E0432
/// use smartcar::Tokens; // now smartcar::tokens::Tokens
/// ```
///
/// ```compile_fail,E0432
/// use smartcar::Vehicle; // now smartcar::v2::Vehicle
/// ```
///
/// ```compile_fail,E0603
/// use smartcar::error::Error; // only at the root
/// ```
///
/// ```compile_fail,E0603
/// use smartcar::connect::Redirect; // only at the root
/// ```
///
/// ```compile_fail,E0603
/// use smartcar::connect_impl::State; // implementation modules are private
/// ```
#[cfg(doctest)]
pub struct OnePathPerItem;
