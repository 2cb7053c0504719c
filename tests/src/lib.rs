//! End-to-end tests of the Smartcar SDK.
//!
//! The tests in `tests/` run the high-level `smartcar` crate against the simulator
//! (`smartcar-sim`) on 127.0.0.1 — never against mocks of our own client — and snapshot wire
//! requests with insta. This library will hold the helpers they share (starting a simulator,
//! building a client pointed at it, redacting secrets from captured requests).

#![deny(missing_docs)]

pub mod crash;
pub mod pg;
pub mod pipeline;
pub mod platform;
pub mod rust_source;
pub mod spec;
pub mod store_conformance;
pub mod trace;

/// Helpers for driving the SDK against the simulator.
pub mod flow {
    use std::sync::Arc;

    use smartcar::store::MemoryTokenStore;
    use smartcar::{Client, Permission, Redirect, Session};
    use smartcar_sim::{ApproveOptions, Simulator};

    /// The redirect URI of the authorization-code flow registered in the simulator.
    pub const CALLBACK: &str = "http://localhost:8000/callback";

    /// Permissions the flows ask for.
    pub const PERMISSIONS: [Permission; 6] = [
        Permission::ReadVehicleInfo,
        Permission::ReadOdometer,
        Permission::ReadLocation,
        Permission::ReadSecurity,
        Permission::ControlSecurity,
        Permission::ReadVin,
    ];

    /// A client builder for the simulator's application, with `redirect`, following the
    /// simulator's clock.
    pub fn client_for(sim: &Simulator, redirect: &str) -> smartcar::ClientBuilder {
        let state = sim.state().clone();
        client_on_system_clock(sim, redirect).clock(move || state.now())
    }

    /// As [`client_for`], but on the system clock: the SDK then learns of an expiry the
    /// simulator's clock moved past only from the platform's 401.
    pub fn client_on_system_clock(sim: &Simulator, redirect: &str) -> smartcar::ClientBuilder {
        let app = sim.app();
        Client::builder()
            .client_id(app.client_id.clone())
            .client_secret(app.client_secret.clone())
            .redirect_uri(redirect)
            .origin(&sim.base_url())
    }

    /// Connect in the simulator: the URL `auth` approved as `options` say, and what the SDK reads
    /// from the redirect (its state checked against `auth`'s).
    pub fn approve(
        sim: &Simulator,
        client: &Client,
        auth: &smartcar::connect::AuthorizationUrl,
        options: ApproveOptions,
    ) -> (url::Url, Redirect) {
        let redirect = sim
            .approve(auth.url.as_str(), options)
            .expect("Connect redirects");
        let read = client
            .handle_redirect(redirect.as_str(), &auth.state)
            .unwrap_or_else(|e| panic!("{redirect}: {e}"));
        (redirect, read)
    }

    /// The machine-to-machine Connect flow for `scopes` (the client's redirect URI must be
    /// one the simulator answers with a `user_id`, e.g. `/exchange`): the user id of the
    /// redirect.
    pub fn connect_user_id(
        sim: &Simulator,
        client: &Client,
        scopes: impl IntoIterator<Item = Permission>,
    ) -> String {
        let auth = client.authorize().scopes(scopes).build().unwrap();
        let (redirect, read) = approve(sim, client, &auth, ApproveOptions::new());
        let Redirect::UserId(user_id) = read else {
            panic!("expected a user_id, got {redirect}")
        };
        user_id
    }

    /// Connect → approval → code → tokens → a session stored under `user-1` in a fresh store.
    pub async fn connect(sim: &Simulator, client: &Client) -> (Session, Arc<MemoryTokenStore>) {
        let auth = client.authorize().scopes(PERMISSIONS).build().unwrap();
        let (redirect, read) = approve(sim, client, &auth, ApproveOptions::new());
        let Redirect::Code(code) = read else {
            panic!("expected a code, got {redirect}")
        };
        let tokens = client.exchange_code(&code).await.unwrap();
        let store = Arc::new(MemoryTokenStore::new());
        let session = Session::create(client, store.clone(), "user-1", tokens)
            .await
            .unwrap();
        (session, store)
    }
}

/// The workspace README's Rust examples, compiled as doc-tests so that they stay true. (Here
/// rather than in `smartcar-sdk`, whose published package holds no file outside its directory.)
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
