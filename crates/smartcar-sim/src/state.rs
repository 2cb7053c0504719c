//! Shared state of a running simulator: configuration, the simulated clock and the [`World`],
//! plus the request log, the counters, the fault rules and the pending Connect authorizations.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::faults::FaultSet;
use crate::limits::LimitSet;
use crate::model::World;
use crate::observe::Observer;

/// Default of [`SimulatorBuilder::header_read_timeout`]: 10 seconds.
///
/// [`SimulatorBuilder::header_read_timeout`]: crate::SimulatorBuilder::header_read_timeout
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`SimulatorBuilder::body_timeout`]: 30 seconds.
///
/// [`SimulatorBuilder::body_timeout`]: crate::SimulatorBuilder::body_timeout
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Lifetimes and behaviours of the simulated platform. The defaults are the real platform's.
#[derive(Clone, Debug)]
pub struct Config {
    /// Access-token lifetime (real: 2 hours).
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime (real: 60 days).
    pub refresh_token_ttl: Duration,
    /// Application-token lifetime (real: 1 hour).
    pub app_token_ttl: Duration,
    /// Authorization-code lifetime (real: 10 minutes).
    pub code_ttl: Duration,
    /// How long a used refresh token may be presented again and get the same new tokens back
    /// (Smartcar's docs say 1 minute in one place and 10 in another; we take 1 minute, the
    /// stricter). After that, presenting it is treated as token theft: the whole token family is
    /// revoked (OAuth 2.0 Security BCP, refresh-token rotation with reuse detection).
    pub refresh_grace: Duration,
    /// How long a v3 command runs. Zero (the default): every command completes at once (200,
    /// `executionMode: sync`, the docs' usual answer). Above zero: the platform's long-running
    /// case — the command is answered `202 Accepted` with status `PENDING` and
    /// `executionMode: async`, and `GET …/commands/{execution_id}` shows it `SUCCESS` once this
    /// much simulated time has passed. The command's effect on the vehicle applies at once
    /// either way (a simplification: the real vehicle changes when the command completes).
    pub command_duration: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access_token_ttl: Duration::from_secs(2 * 3600),
            refresh_token_ttl: Duration::from_secs(60 * 24 * 3600),
            app_token_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(600),
            refresh_grace: Duration::from_secs(60),
            command_duration: Duration::ZERO,
        }
    }
}

/// The simulated clock: wall-clock time (or a fixed epoch) plus an offset that tests move
/// forward with `advance`, so that expiry can be tested without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    /// When set, "now" is this instant plus the offset: time stands still unless advanced,
    /// which makes every timestamp reproducible.
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    /// A clock that starts at `epoch` and only moves with [`Clock::advance`].
    pub fn fixed(epoch: DateTime<Utc>) -> Self {
        Clock {
            offset_ms: AtomicI64::new(0),
            fixed: Some(epoch),
        }
    }

    /// Simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        let base = self.fixed.unwrap_or_else(Utc::now);
        base + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves simulated time forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// How far simulated time is ahead of the wall clock (or of the fixed epoch).
    pub fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::Relaxed).max(0) as u64)
    }
}

/// Which page a pending authorization belongs to.
#[derive(Clone, Debug)]
pub(crate) enum PendingKind {
    /// `/oauth/authorize`.
    Authorize,
    /// `/oauth/reauthenticate` for this vehicle.
    Reauthenticate(String),
}

/// Where a Connect request stands. `live` mode (and re-authentication) shows one page
/// ([`Step::Single`]); `test` and `simulated` mode walk the platform's page sequence, whose
/// element ids browser-driven suites written for the real Connect rely on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The one-page form: log in, choose vehicles, allow or deny.
    Single,
    /// The preamble (`button#continue-button`).
    Preamble,
    /// The brand list (`button#<BRAND>.brand-list-item`, `input#brand-search`), with the
    /// search text typed so far.
    Brands(String),
    /// The brand's login (`input#username`, `input#password`, `button#sign-in-button`).
    Login,
    /// The permissions page (`.page-content`, `button#approval-button`, `button#deny-button`).
    Permissions,
}

/// A validated Connect request waiting for the user's answer (kept here, with the rest of the
/// shared state; the Connect routes fill and read it).
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) kind: PendingKind,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    /// Permissions in the order asked, without `required:`.
    pub(crate) scopes: Vec<String>,
    pub(crate) required: BTreeSet<String>,
    pub(crate) make: Option<String>,
    pub(crate) single_select: bool,
    pub(crate) single_select_vin: Option<String>,
    pub(crate) mode: String,
    /// The `user_id` (v3) flow instead of the authorization-code flow.
    pub(crate) user_flow: bool,
    /// `response_type=none`: no code nor user id on the redirect; with `redirect_uri` absent
    /// the flow ends on a completion page instead of redirecting.
    pub(crate) no_code: bool,
    /// `redirect_uri` was left out with `response_type=none`: end on a completion page.
    pub(crate) hosted_finish: bool,
    /// Connect's `external_id`, echoed on the redirect and kept on the connections.
    pub(crate) external_id: Option<String>,
    /// The user whose vehicles the page shows.
    pub(crate) shown_user: String,
    /// The page the request is on.
    pub(crate) step: Step,
    /// The brand chosen on the brand list (or given as `make`), in test and simulated mode.
    pub(crate) brand: Option<String>,
    /// The vehicles the login of a test or simulated account gave: the ones the page offers.
    pub(crate) login_vehicles: Option<Vec<String>>,
    pub(crate) expires_at: DateTime<Utc>,
    /// The fleet seed: what a `single_select_vin` vehicle would be is derived from it.
    pub(crate) seed: u64,
}

/// Everything a request handler can reach.
pub struct Shared {
    /// Lifetimes and behaviours.
    pub config: Config,
    /// The simulated clock.
    pub clock: Clock,
    /// Users, vehicles, tokens, webhooks.
    pub world: Mutex<World>,
    /// The simulator's own base URL (`http://127.0.0.1:PORT`), for links and Connect URLs.
    pub base_url: String,
    /// Request log and counters.
    pub observer: Observer,
    /// Faults injected on demand.
    pub faults: FaultSet,
    /// The platform's request limits (off unless set) and their usage.
    pub limits: LimitSet,
    /// Connect authorizations shown to a user and not yet answered, by opaque id.
    pub(crate) pending: Mutex<HashMap<String, Pending>>,
    /// The fleet seed (also seeds the fault RNG and the accounts of test identities).
    pub seed: u64,
    /// How long a request's body may take to arrive once its headers did (408 past it).
    pub(crate) body_timeout: Duration,
}

impl Shared {
    /// Shared state around `world`.
    pub fn new(config: Config, clock: Clock, world: World, base_url: String, seed: u64) -> Self {
        Shared {
            config,
            clock,
            world: Mutex::new(world),
            base_url,
            observer: Observer::default(),
            faults: FaultSet::new(seed),
            limits: LimitSet::default(),
            pending: Mutex::new(HashMap::new()),
            seed,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }

    /// Locks the world. A handler that panicked while holding the lock cannot leave the
    /// simulator wedged: the poison is ignored (the world is plain data).
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn pending(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The world holds the client secret, tokens and the management token: `Debug` shows none of it.
impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("base_url", &self.base_url)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// The axum state: a cheap handle on [`Shared`].
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub use crate::ids::random_id;
