//! The simulator handle: its builder, the origins and credentials to give a client, the
//! simulated clock, in-process Connect approval, token minting for tests, the request log and
//! counters, and fault injection.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::connect::{Action, Decision, approve_in_process};
use crate::faults::Faults;
use crate::model::{Grant, SimUser, Vehicle};
use crate::oauth;
use crate::observe::RecordedRequest;
use crate::state::Config;
pub use crate::state::{DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT};

mod webhooks;
pub use crate::server::{Simulator, SimulatorBuilder};

/// Where each host of the platform is served. The simulator serves every host on one port (the
/// paths of the hosts do not collide), so all of these are the same base URL; they are kept
/// apart so that client code stays written against the real topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origins {
    /// Connect (`https://connect.smartcar.com`): `/oauth/authorize`, `/oauth/reauthenticate`.
    pub connect: String,
    /// Auth host (`https://auth.smartcar.com`).
    pub auth: String,
    /// The full token URL (`https://auth.smartcar.com/oauth/token`).
    pub token_url: String,
    /// iam host (`https://iam.smartcar.com`).
    pub iam: String,
    /// The client-credentials token URL (`https://iam.smartcar.com/oauth2/token`).
    pub iam_token_url: String,
    /// API v2.0 and compatibility (`https://api.smartcar.com`).
    pub api: String,
    /// Management API v2.0 (`https://management.smartcar.com`).
    pub management: String,
    /// Vehicle API v3 (`https://vehicle.api.smartcar.com`).
    pub vehicle_v3: String,
    /// Management API v3 (`https://management.api.smartcar.com`).
    pub management_v3: String,
    /// Compatibility API v3 (`https://compatibility.api.smartcar.com`).
    pub compatibility: String,
}

impl Origins {
    fn all(base: &str) -> Self {
        Origins {
            connect: base.to_owned(),
            auth: base.to_owned(),
            token_url: format!("{base}{}", smartcar_api::ops::EXCHANGE_TOKEN.path),
            iam: base.to_owned(),
            iam_token_url: format!(
                "{base}{}",
                smartcar_api::ops::REQUEST_APPLICATION_TOKEN.path
            ),
            api: base.to_owned(),
            management: base.to_owned(),
            vehicle_v3: base.to_owned(),
            management_v3: base.to_owned(),
            compatibility: base.to_owned(),
        }
    }

    /// The environment variables that point Smartcar's official SDKs at the simulator (set
    /// them together with [`AppCredentials::env`]):
    ///
    /// | variable | read by |
    /// |---|---|
    /// | `SMARTCAR_API_ORIGIN` | Python, Node (also for its Connect URL), Java, Ruby, Rust crate |
    /// | `SMARTCAR_AUTH_ORIGIN` | all; see below |
    /// | `SMARTCAR_CONNECT_ORIGIN` | Python, Java, Ruby |
    /// | `SMARTCAR_CONNECT_URL` | Rust crate `smartcar` |
    /// | `SMARTCAR_MANAGEMENT_API_ORIGIN` | Python, Node, Java, Ruby, Rust crate |
    /// | `SMARTCAR_VEHICLE_API_V3_ORIGIN` | Python |
    /// | `SMARTCAR_API_V3_ORIGIN` | Node, Java |
    /// | `SMARTCAR_VEHICLE_API_ORIGIN` | Ruby |
    /// | `SMARTCAR_IAM_ORIGIN` | Rust crate `smartcar` (application tokens) |
    /// | `SMARTCAR_MANAGEMENT_API_V3_ORIGIN` | Rust crate `smartcar` |
    /// | `SMARTCAR_COMPATIBILITY_API_ORIGIN` | Rust crate `smartcar` |
    ///
    /// `SMARTCAR_AUTH_ORIGIN` means the FULL token URL to Python and the Rust crate, but the
    /// origin (to which they append `/oauth/token`) to Node, Java and Ruby. The value given
    /// here is the full token URL, and the simulator also answers
    /// `POST /oauth/token/oauth/token`, so the same value works for every SDK. The Go SDK has
    /// no overrides.
    pub fn sdk_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SMARTCAR_API_ORIGIN", self.api.clone()),
            ("SMARTCAR_AUTH_ORIGIN", self.token_url.clone()),
            ("SMARTCAR_CONNECT_ORIGIN", self.connect.clone()),
            ("SMARTCAR_CONNECT_URL", self.connect.clone()),
            ("SMARTCAR_MANAGEMENT_API_ORIGIN", self.management.clone()),
            ("SMARTCAR_VEHICLE_API_V3_ORIGIN", self.vehicle_v3.clone()),
            ("SMARTCAR_API_V3_ORIGIN", self.vehicle_v3.clone()),
            ("SMARTCAR_VEHICLE_API_ORIGIN", self.vehicle_v3.clone()),
            ("SMARTCAR_IAM_ORIGIN", self.iam.clone()),
            (
                "SMARTCAR_MANAGEMENT_API_V3_ORIGIN",
                self.management_v3.clone(),
            ),
            (
                "SMARTCAR_COMPATIBILITY_API_ORIGIN",
                self.compatibility.clone(),
            ),
        ]
    }
}

/// The pre-registered application. `Debug` hides the secret and the management token.
#[derive(Clone, PartialEq, Eq)]
pub struct AppCredentials {
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret (a secret).
    pub client_secret: String,
    /// Every registered redirect URI (exact match). Those also in `user_id_redirect_uris` get
    /// the v3 `user_id` redirect; the others the authorization `code`.
    pub redirect_uris: Vec<String>,
    /// Redirect URIs that use the v3 / application-token flow (`user_id` + `state`).
    pub user_id_redirect_uris: Vec<String>,
    /// Application management token (a secret): webhook signatures, management API v2.0.
    pub amt: String,
    /// Display name.
    pub name: String,
}

impl AppCredentials {
    /// `SMARTCAR_CLIENT_ID`, `SMARTCAR_CLIENT_SECRET` and `SMARTCAR_REDIRECT_URI` (the first
    /// redirect URI, an authorization-code one), as the official SDKs read them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SMARTCAR_CLIENT_ID", self.client_id.clone()),
            ("SMARTCAR_CLIENT_SECRET", self.client_secret.clone()),
            (
                "SMARTCAR_REDIRECT_URI",
                self.redirect_uris.first().cloned().unwrap_or_default(),
            ),
        ]
    }
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .field("user_id_redirect_uris", &self.user_id_redirect_uris)
            .field("amt", &"[redacted]")
            .field("name", &self.name)
            .finish()
    }
}

/// Tokens issued by [`Simulator::mint_access_token`]. `Debug` hides them.
#[derive(Clone, PartialEq, Eq)]
pub struct MintedTokens {
    /// Access token (valid for `Config::access_token_ttl`).
    pub access_token: String,
    /// Refresh token (valid for `Config::refresh_token_ttl`).
    pub refresh_token: String,
}

impl fmt::Debug for MintedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MintedTokens([redacted])")
    }
}

/// How [`Simulator::approve`] answers the Connect page.
#[derive(Clone, Debug, Default)]
pub struct ApproveOptions {
    /// Login e-mail (default: the first user). Test identities work as on the page.
    pub email: Option<String>,
    /// Vehicles to approve (default: every vehicle the page offers; the first with single
    /// select).
    pub vehicle_ids: Option<Vec<String>>,
    /// Press Deny instead of Allow.
    pub deny: bool,
}

impl ApproveOptions {
    /// Approve every offered vehicle of the first user.
    pub fn new() -> Self {
        Self::default()
    }

    /// Log in as this e-mail.
    pub fn user(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    /// Approve only these vehicles.
    pub fn vehicles<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.vehicle_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// Press Deny.
    pub fn deny(mut self) -> Self {
        self.deny = true;
        self
    }
}

/// Connect did not redirect: it showed an error page (bad client id or redirect URI) or asked
/// for more input (unknown e-mail, no vehicle chosen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectError {
    /// HTTP status of the page (400 for error pages, 200 when the page asks again).
    pub status: u16,
    /// What the page says.
    pub message: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Connect answered {} without redirecting: {}",
            self.status, self.message
        )
    }
}

impl std::error::Error for ConnectError {}

impl Simulator {
    /// The URL of every host (all this simulator's base URL) and the SDK env vars.
    pub fn origins(&self) -> Origins {
        Origins::all(&self.base_url())
    }

    /// The pre-registered application.
    pub fn app(&self) -> AppCredentials {
        let world = self.state().world();
        let app = &world.app;
        let mut redirect_uris = app.redirect_uris.clone();
        for uri in &app.user_id_redirect_uris {
            if !redirect_uris.contains(uri) {
                redirect_uris.push(uri.clone());
            }
        }
        AppCredentials {
            client_id: app.client_id.clone(),
            client_secret: app.client_secret.clone(),
            redirect_uris,
            user_id_redirect_uris: app.user_id_redirect_uris.clone(),
            amt: app.amt.clone(),
            name: app.name.clone(),
        }
    }

    /// A snapshot of the users (the first is Connect's default login).
    pub fn users(&self) -> Vec<SimUser> {
        self.state().world().users.clone()
    }

    /// A snapshot of the vehicles, ordered by id: the fleet and the vehicles Connect created,
    /// not Smartcar's v3 test-data vehicle (`tst2e255-…`, read with the static token
    /// `test-data-token`), which every simulator also holds but no user owns.
    pub fn vehicles(&self) -> Vec<Vehicle> {
        self.state()
            .world()
            .vehicles
            .values()
            .filter(|v| !crate::v3::test_data::is_test_data_vehicle(&v.id))
            .cloned()
            .collect()
    }

    /// Changes the vehicle `id` in place (to set up a scenario: park it, unlock it, open a
    /// door…); `None` when there is no such vehicle.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let sim = smartcar_sim::Simulator::start().await?;
    /// let id = sim.vehicles()[0].id.clone();
    /// let vin = sim.edit_vehicle(&id, |v| {
    ///     v.in_motion = false;
    ///     v.locked = false;
    ///     v.vin.clone()
    /// });
    /// # let _ = vin;
    /// # Ok(()) }
    /// ```
    pub fn edit_vehicle<R>(&self, id: &str, f: impl FnOnce(&mut Vehicle) -> R) -> Option<R> {
        self.state().world().vehicles.get_mut(id).map(f)
    }

    /// Simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        self.state().now()
    }

    /// Moves simulated time forward (token and code expiry, grace periods).
    pub fn advance(&self, by: Duration) {
        self.state().clock.advance(by);
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.state().config
    }

    /// Answers a Connect URL (`…/oauth/authorize?…` or `…/oauth/reauthenticate?…`, absolute
    /// or a path) as a user would on the page, without a browser, and returns the URL Connect
    /// redirects to: `code`/`user_id`/`vehicle_id` + `state`, or `error=…`.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] when Connect would not redirect: an error page (unknown client id,
    /// unregistered redirect URI) or the page asking again (unknown e-mail, no vehicle).
    pub fn approve(
        &self,
        authorize_url: &str,
        options: ApproveOptions,
    ) -> Result<url::Url, ConnectError> {
        let decision = Decision {
            action: if options.deny {
                Action::Deny
            } else {
                Action::Approve
            },
            email: options.email,
            vehicle_ids: options.vehicle_ids,
        };
        approve_in_process(self.state(), authorize_url, decision)
            .map_err(|(status, message)| ConnectError { status, message })
    }

    /// Issues an access + refresh token pair as if `user_id` had approved `vehicle_ids` with
    /// `scopes` in Connect (the connections are recorded too), skipping Connect and the code
    /// exchange.
    pub fn mint_access_token(
        &self,
        user_id: &str,
        vehicle_ids: &[&str],
        scopes: &[&str],
    ) -> MintedTokens {
        let state = self.state();
        let now = state.now();
        let mut world = state.world();
        let scopes: BTreeSet<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        for vehicle_id in vehicle_ids {
            world.connect(user_id, vehicle_id, &scopes, now, crate::state::random_id);
        }
        let family = world.next_family;
        world.next_family += 1;
        let grant = Grant {
            client_id: world.app.client_id.clone(),
            user_id: user_id.to_owned(),
            vehicle_ids: vehicle_ids.iter().map(|v| (*v).to_owned()).collect(),
            scopes,
            family,
        };
        let (access_token, refresh_token) = oauth::issue_pair(state, &mut world, grant, now);
        MintedTokens {
            access_token,
            refresh_token,
        }
    }

    /// Issues an application token (what `POST /oauth2/token` returns).
    pub fn mint_app_token(&self) -> String {
        let state = self.state();
        let now = state.now();
        let mut world = state.world();
        oauth::issue_app_token(state, &mut world, now)
    }

    /// The platform's request limits: set them (`sim.limits().set(Limits::platform())`), read
    /// their counters and the calls billed to a vehicle this month.
    pub fn limits(&self) -> &crate::limits::LimitSet {
        &self.state().limits
    }

    /// Fault injection: `sim.faults().inject(Fault::rate_limit(5)).on("/v2.0/vehicles/*/odometer").times(2)`.
    pub fn faults(&self) -> Faults<'_> {
        Faults::new(&self.state().faults)
    }

    /// The request log, oldest first (at most the last 10 000 exchanges and
    /// [`SimulatorBuilder::log_max_bytes`] of data; empty while logging is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().observer.requests()
    }

    /// The bytes the request log retains now (at most [`SimulatorBuilder::log_max_bytes`];
    /// see [`RecordedRequest::retained_bytes`]).
    pub fn request_log_bytes(&self) -> usize {
        self.state().observer.retained_bytes()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.state().observer.clear_requests();
    }

    /// Turns the request log on or off.
    pub fn set_request_logging(&self, on: bool) {
        self.state().observer.set_logging(on);
    }

    /// Requests received for `method` and a route template as registered
    /// (`request_count("GET", "/v2.0/vehicles/{vehicle_id}/odometer")`); for a path no route
    /// matched, the raw path.
    pub fn request_count(&self, method: &str, template: &str) -> u64 {
        self.state().observer.request_count(method, template)
    }

    /// Every request received.
    pub fn total_requests(&self) -> u64 {
        self.state().observer.total_requests()
    }

    /// Requests received for operation `op` of the spec (`&ops::GET_ODOMETER`), counted on its
    /// route (with or without a trailing `/`).
    pub fn operation_count(&self, op: &smartcar_api::op::Operation) -> u64 {
        self.state().observer.operation_count(op)
    }

    /// Refresh-token rotations performed.
    pub fn refresh_count(&self) -> u64 {
        self.state().observer.refresh_count()
    }

    /// TCP connections accepted.
    pub fn connections_accepted(&self) -> u64 {
        self.state().observer.connections_accepted()
    }
}
