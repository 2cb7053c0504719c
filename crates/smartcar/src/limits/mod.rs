//! The platform's request limits, kept on the client side so that a fleet stays inside them
//! instead of discovering them through 429 and 430 answers.
//!
//! Smartcar enforces three limits ([API limits](https://smartcar.com/docs/help/api-limits)):
//!
//! | Limit | Answer when exceeded | Value |
//! |---|---|---|
//! | an application-wide request bucket | 429 `RATE_LIMIT`/`SMARTCAR_API` | 120 requests, refilling 2 a minute, by default; support raises it |
//! | a per-vehicle throttle | 429 `RATE_LIMIT`/`VEHICLE` with `retry-after` | not published (users report 2 requests, then "retry after 120 s") |
//! | a monthly allowance of calls per vehicle | 430 `BILLING`/`VEHICLE_REQUEST_LIMIT` until the month ends | plan-dependent (500 on the free plan's example) |
//!
//! The platform does not say how much of any limit is left. Every call a [`Client`] sends
//! about the vehicle APIs (the v2.0 API host and the Vehicle API v3 host; the same rule as the
//! simulator's) goes through its [`Limiter`] first, which:
//!
//! - **waits** for a token of the application bucket and for the vehicle's throttle, when you
//!   configured them ([`Limits::app_bucket`], [`Limits::vehicle_throttle`]); a wait longer
//!   than [`Limits::max_wait`] is refused with [`Error::RateLimited`] before anything is sent;
//! - **charges** the vehicle's monthly budget ([`Limits::monthly_budget`]): one call per request,
//!   one per item of a batch, once per call however many times it is retried; a call that
//!   would go over it fails with [`Error::BudgetExhausted`] before anything is sent, and reads
//!   stop short of the end by a reserve kept for commands. A call the platform answers with an
//!   error is refunded (the platform bills successful calls: unverified, it is what the
//!   simulator does);
//! - **learns** from the answers (on by default): a 429 `SMARTCAR_API` pauses the whole
//!   application until its `retry-after` and empties a configured bucket; a 429 `VEHICLE` (or
//!   an `UPSTREAM` `RATE_LIMIT`, the manufacturer's) pauses that vehicle until its
//!   `retry-after` (or for the configured throttle's window); a 430 `VEHICLE_REQUEST_LIMIT`
//!   marks the vehicle's budget exhausted until the month ends. The calls after them wait, or
//!   fail without spending a request. Without a `retry-after` and a configured limit, nothing
//!   is learned: the [retry policy](crate::config::RetryPolicy) backs off as usual.
//!
//! # Defaults and off switches
//!
//! [`Limits::default`] only learns: the SDK cannot know your plan, and a bucket smaller than
//! yours would slow you down for nothing. Set what your plan says, or start from
//! [`Limits::platform`] (the docs' values). [`ClientBuilder::limits`] sets them,
//! [`ClientBuilder::disable_limits`] turns the limiter off for one client, and
//! [`Limits::learn`]`(false)` stops the learning.
//!
//! # Where the state lives
//!
//! In a [`LimiterStore`]: [`MemoryLimiterStore`] (the default: one process), or with the
//! `sqlite` feature `SqliteLimiterStore` (a file: survives restarts), or with the `postgres`
//! feature `PostgresLimiterStore` (every instance of a service shares one bucket and one budget
//! per vehicle, each decision one transaction). The state is keyed by the client id, so
//! several applications may share one database.
//!
//! ```no_run
//! # async fn demo() -> Result<(), smartcar::Error> {
//! use std::time::Duration;
//! use smartcar::limits::{Limits, MonthlyBudget};
//!
//! let client = smartcar::Client::builder()
//!     .client_id("8229df9f-91a0-4ff0-a1ae-a1f38ee24d07")
//!     .client_secret("secret")
//!     .limits(
//!         Limits::default()
//!             .app_bucket(120, 2.0)
//!             .monthly_budget(MonthlyBudget::new(500).command_reserve(20))
//!             .max_wait(Duration::from_secs(120)),
//!     )
//!     .build()?;
//! let usage = client.limiter().unwrap().usage("36ab27d0-fd9d-4455-823a-ce30af709ffc").await?;
//! println!("{} calls used this month", usage.used);
//! # Ok(()) }
//! ```
//!
//! [`Client`]: crate::Client
//! [`ClientBuilder::limits`]: crate::ClientBuilder::limits
//! [`ClientBuilder::disable_limits`]: crate::ClientBuilder::disable_limits
//! [`Error::RateLimited`]: crate::Error::RateLimited
//! [`Error::BudgetExhausted`]: crate::Error::BudgetExhausted

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use smartcar_api::op::{Host, Operation};
use smartcar_api::open_enums::ErrorType;

use crate::Error;
pub use crate::error_impl::LimitScope;
use crate::store::BoxFuture;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PostgresLimiterStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteLimiterStore;

/// What the limiter enforces. [`Limits::default`] learns from the platform's answers and
/// enforces nothing else; [`Limits::platform`] is the values of Smartcar's docs.
///
/// ```
/// use std::time::Duration;
/// use smartcar::limits::{Limits, MonthlyBudget};
///
/// let limits = Limits::default()
///     .app_bucket(1_000, 100.0)
///     .vehicle_throttle(2, Duration::from_secs(120))
///     .monthly_budget(MonthlyBudget::new(500).command_reserve(10));
/// assert_eq!(limits.app.unwrap().capacity, 1_000);
/// assert!(limits.learns());
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// The application-wide bucket, when known.
    pub app: Option<AppBucket>,
    /// The per-vehicle throttle, when known.
    pub vehicle: Option<VehicleThrottle>,
    /// The monthly budget of calls per vehicle, when known.
    pub budget: Option<MonthlyBudget>,
    learn: bool,
    max_wait: Duration,
    latency: Duration,
}

impl Default for Limits {
    /// Learning only: no bucket, no throttle, no budget; waits of up to 60 s.
    fn default() -> Self {
        Limits {
            app: None,
            vehicle: None,
            budget: None,
            learn: true,
            max_wait: Duration::from_secs(60),
            latency: Duration::from_millis(250),
        }
    }
}

impl Limits {
    /// The values of Smartcar's docs: a bucket of 120 requests refilling 2 a minute, a budget of
    /// 500 calls per vehicle a month (the free plan's example) with no reserve, and the
    /// per-vehicle throttle users report (2 requests per 120 s; not published, unverified).
    /// Waits of up to 60 s.
    pub fn platform() -> Self {
        Limits::default()
            .app_bucket(120, 2.0)
            .vehicle_throttle(2, Duration::from_secs(120))
            .monthly_budget(MonthlyBudget::new(500))
    }

    /// The application bucket: `capacity` requests at once, refilling `per_minute` a minute.
    /// A zero capacity or a rate that is not above zero turns it off.
    pub fn app_bucket(mut self, capacity: u32, per_minute: f64) -> Self {
        self.app =
            (capacity > 0 && per_minute > 0.0 && per_minute.is_finite()).then_some(AppBucket {
                capacity,
                refill_per_minute: per_minute,
            });
        self
    }

    /// The per-vehicle throttle: at most `burst` requests about one vehicle in any `window`.
    /// A zero burst or window turns it off.
    pub fn vehicle_throttle(mut self, burst: u32, window: Duration) -> Self {
        self.vehicle =
            (burst > 0 && !window.is_zero()).then_some(VehicleThrottle { burst, window });
        self
    }

    /// The monthly budget of calls per vehicle.
    pub fn monthly_budget(mut self, budget: MonthlyBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Whether to learn from 429 and 430 answers (default: yes).
    pub fn learn(mut self, learn: bool) -> Self {
        self.learn = learn;
        self
    }

    /// Whether the limiter learns from 429 and 430 answers.
    pub fn learns(&self) -> bool {
        self.learn
    }

    /// The longest a call waits for a limit before failing with
    /// [`Error::RateLimited`] (default 60 s). A fleet job that should
    /// wait as long as it takes sets hours.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The longest a call waits for a limit.
    pub fn wait_limit(&self) -> Duration {
        self.max_wait
    }

    /// How much later than it leaves a request may reach the platform (default 250 ms: a
    /// connection's set-up and a TLS handshake). When the bucket is full, the platform's stops
    /// refilling until the request arrives; the limiter counts the refill from this much later,
    /// so that it never runs ahead of the platform's bucket. It costs `rate × latency` tokens each
    /// time the bucket fills up (one token at 240 a minute).
    pub fn latency_allowance(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
}

/// A token bucket: `capacity` requests at once, refilling `refill_per_minute` a minute.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppBucket {
    /// Tokens when full.
    pub capacity: u32,
    /// Tokens added per minute.
    pub refill_per_minute: f64,
}

impl AppBucket {
    fn millis_per_token(&self) -> f64 {
        60_000.0 / self.refill_per_minute
    }
}

/// At most `burst` requests about one vehicle in any `window`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VehicleThrottle {
    /// Requests allowed in a window.
    pub burst: u32,
    /// The sliding window.
    pub window: Duration,
}

/// Calls allowed per vehicle per calendar month (UTC), and how many of them only commands may
/// use.
///
/// ```
/// let budget = smartcar::limits::MonthlyBudget::new(500).command_reserve(25);
/// assert_eq!((budget.allowance, budget.command_reserve), (500, 25));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonthlyBudget {
    /// Calls per vehicle per month.
    pub allowance: u32,
    /// The last calls of the month, kept for commands: reads stop at `allowance - reserve`.
    pub command_reserve: u32,
}

impl MonthlyBudget {
    /// `allowance` calls per vehicle per month, no reserve.
    pub fn new(allowance: u32) -> Self {
        MonthlyBudget {
            allowance,
            command_reserve: 0,
        }
    }

    /// Keeps the last `reserve` calls of each month for commands (capped at the allowance).
    pub fn command_reserve(mut self, reserve: u32) -> Self {
        self.command_reserve = reserve.min(self.allowance);
        self
    }
}

/// The shared state of the application's limits, as a [`LimiterStore`] keeps it.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppState {
    /// Tokens in the bucket at `updated_ms` (negative: reserved ahead); `None`: full.
    pub tokens: Option<f64>,
    /// When `tokens` was computed (Unix milliseconds).
    pub updated_ms: i64,
    /// No request before this (Unix milliseconds), learned from a 429 `SMARTCAR_API`.
    pub cooldown_until_ms: i64,
}

/// The state of one vehicle's limits, as a [`LimiterStore`] keeps it.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VehicleState {
    /// When the last requests about the vehicle were (Unix milliseconds, oldest first; at
    /// most the throttle's burst).
    pub hits: Vec<i64>,
    /// No request about the vehicle before this (Unix milliseconds), learned from a 429
    /// `VEHICLE`.
    pub cooldown_until_ms: i64,
    /// The month `used` counts (`2026-12`); empty before the first charge.
    pub month: String,
    /// Calls charged in `month`.
    pub used: u32,
    /// The platform answered 430 `VEHICLE_REQUEST_LIMIT` in `month`.
    pub exhausted: bool,
}

impl VehicleState {
    /// `hits` as text (`1700000000000,1700000001000`), for a store's column.
    pub fn hits_text(&self) -> String {
        let mut out = String::new();
        for (i, hit) in self.hits.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&hit.to_string());
        }
        out
    }

    /// Reads [`hits_text`](Self::hits_text) back (unreadable entries are dropped).
    pub fn parse_hits(text: &str) -> Vec<i64> {
        text.split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }
}

/// What the limiter decided for one step, returned through a [`LimiterStore`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send at this time (Unix milliseconds; later than now when a bucket token was reserved
    /// ahead).
    Go {
        /// When.
        at_ms: i64,
    },
    /// Nothing was reserved: try again at this time.
    Wait {
        /// When.
        until_ms: i64,
        /// Which limit.
        scope: LimitScope,
    },
    /// The wait would be longer than [`Limits::max_wait`]: nothing was reserved.
    TooLong {
        /// When a request could go.
        until_ms: i64,
        /// Which limit.
        scope: LimitScope,
    },
    /// The vehicle's budget does not cover the call: nothing was reserved.
    Exhausted {
        /// Calls charged this month.
        used: u32,
        /// The allowance, when configured.
        allowance: Option<u32>,
    },
    /// A state update without a decision (learning, a refund).
    Done,
}

/// One state change: the limiter builds it, a [`LimiterStore`] applies it inside its
/// transaction with [`Step::apply`].
#[derive(Clone)]
pub struct Step {
    kind: StepKind,
    /// "Now", or the earliest "now" when the step reads the clock itself.
    now_ms: i64,
    /// Read when the step is applied, inside the store's transaction: a decision waits for the
    /// rows it reads, and must not be taken at the time it started waiting.
    clock: Option<crate::runtime::SharedClock>,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("kind", &self.kind)
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

/// A calendar month (UTC), compared with a store's `2026-12` text without formatting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Month {
    year: i32,
    month: u32,
}

impl Month {
    fn of(t: DateTime<Utc>) -> Month {
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    fn at(ms: i64) -> Month {
        Month::of(DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default())
    }

    fn is(self, text: &str) -> bool {
        text.split_once('-')
            .is_some_and(|(y, m)| y.parse() == Ok(self.year) && m.parse() == Ok(self.month))
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[derive(Clone, Debug)]
enum StepKind {
    Acquire {
        cost: u32,
        command: bool,
        charge: bool,
        /// The latency allowance in force (the configured one, grown by refusals).
        latency_ms: i64,
    },
    AppCooldown(i64),
    VehicleCooldown(i64),
    Exhausted,
    Refund(u32),
}

impl Step {
    /// Applies this step to the state a store holds (the vehicle's, when the call is about a
    /// vehicle), under `limits`. A store calls it inside one transaction, between reading and
    /// writing the state; it is pure, so a store may call it again when it retries the
    /// transaction.
    pub fn apply(
        &self,
        limits: &Limits,
        app: &mut AppState,
        vehicle: Option<&mut VehicleState>,
    ) -> Decision {
        let now = match &self.clock {
            Some(clock) => clock.now().timestamp_millis().max(self.now_ms),
            None => self.now_ms,
        };
        let month = Month::at(now);
        let mut vehicle = vehicle;
        // A new month: the budget starts again.
        if let Some(v) = vehicle.as_deref_mut()
            && !v.month.is_empty()
            && !month.is(&v.month)
        {
            v.month.clear();
            v.used = 0;
            v.exhausted = false;
        }
        match self.kind {
            StepKind::AppCooldown(until) => {
                app.cooldown_until_ms = app.cooldown_until_ms.max(until);
                if limits.app.is_some() {
                    // The platform's bucket is empty: so is ours.
                    app.tokens = Some(app.tokens.unwrap_or(0.0).min(0.0));
                    app.updated_ms = app.updated_ms.max(now);
                }
                Decision::Done
            }
            StepKind::VehicleCooldown(until) => {
                if let Some(v) = vehicle {
                    v.cooldown_until_ms = v.cooldown_until_ms.max(until);
                }
                Decision::Done
            }
            StepKind::Exhausted => {
                if let Some(v) = vehicle {
                    v.exhausted = true;
                    v.month = month.to_string();
                }
                Decision::Done
            }
            StepKind::Refund(cost) => {
                if let Some(v) = vehicle {
                    v.used = v.used.saturating_sub(cost);
                }
                Decision::Done
            }
            StepKind::Acquire {
                cost,
                command,
                charge,
                latency_ms,
            } => {
                // Only a configured budget is charged: without one, nothing per vehicle is kept.
                let charge = charge && vehicle.is_some() && limits.budget.is_some();
                let decision = acquire(
                    limits,
                    app,
                    vehicle.as_deref_mut(),
                    now,
                    cost,
                    command,
                    charge,
                    latency_ms,
                );
                if let (Some(v), Decision::Go { .. }, true) = (vehicle, &decision, charge)
                    && v.month.is_empty()
                {
                    v.month = month.to_string();
                }
                decision
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn acquire(
    limits: &Limits,
    app: &mut AppState,
    mut vehicle: Option<&mut VehicleState>,
    now: i64,
    cost: u32,
    command: bool,
    charge: bool,
    latency_ms: i64,
) -> Decision {
    // 1. The budget: refused before anything is reserved.
    if let Some(v) = vehicle.as_deref() {
        if v.exhausted {
            return Decision::Exhausted {
                used: v.used,
                allowance: limits.budget.map(|b| b.allowance),
            };
        }
        if let (Some(budget), true) = (limits.budget, charge) {
            let limit = if command {
                budget.allowance
            } else {
                budget.allowance - budget.command_reserve
            };
            if u64::from(v.used) + u64::from(cost) > u64::from(limit) {
                return Decision::Exhausted {
                    used: v.used,
                    allowance: Some(budget.allowance),
                };
            }
        }
    }
    // 2. Cool-downs and the vehicle's throttle: wait without reserving anything.
    let mut until = now;
    let mut scope = LimitScope::Application;
    if app.cooldown_until_ms > until {
        until = app.cooldown_until_ms;
    }
    if let Some(v) = vehicle.as_deref_mut() {
        if v.cooldown_until_ms > until {
            until = v.cooldown_until_ms;
            scope = LimitScope::Vehicle;
        }
        if let Some(throttle) = limits.vehicle {
            let window = throttle.window.as_millis() as i64;
            v.hits.retain(|&hit| hit + window > now);
            let burst = throttle.burst as usize;
            if v.hits.len() >= burst {
                // The slot frees when the burst-th newest hit leaves the window.
                let frees = v.hits[v.hits.len() - burst] + window;
                if frees > until {
                    until = frees;
                    scope = LimitScope::Vehicle;
                }
            }
        }
    }
    let max_wait = limits.max_wait.as_millis() as i64;
    if until > now {
        return if until - now > max_wait {
            Decision::TooLong {
                until_ms: until,
                scope,
            }
        } else {
            Decision::Wait {
                until_ms: until,
                scope,
            }
        };
    }
    // 3. The bucket: take a token, perhaps one that refills later (the call then waits for
    // it; reserving keeps concurrent callers in order instead of all polling).
    let mut at = now;
    if let Some(bucket) = limits.app {
        let capacity = f64::from(bucket.capacity);
        let per_ms = 1.0 / bucket.millis_per_token();
        let refilled = match app.tokens {
            None => capacity,
            Some(t) => t + (now - app.updated_ms).max(0) as f64 * per_ms,
        };
        let full = refilled >= capacity;
        let tokens = refilled.min(capacity);
        // The refill accrues from `updated_ms`, which may be ahead of now (see below).
        let base = now.max(app.updated_ms);
        let left = tokens - 1.0;
        if left < 0.0 {
            // One millisecond more: the state counts whole milliseconds, the platform's clock
            // finer ones.
            at = base + (-left / per_ms).ceil() as i64 + 1;
            if at - now > max_wait {
                return Decision::TooLong {
                    until_ms: at,
                    scope: LimitScope::Application,
                };
            }
        }
        app.tokens = Some(left);
        // A full bucket does not refill. The platform's stays full until this request
        // *arrives*, later than it leaves here: counting the refill from then on (now plus the
        // latency allowance) keeps this bucket behind the platform's, never ahead of it.
        app.updated_ms = if full { now + latency_ms } else { base };
    }
    // 4. Record the request against the vehicle.
    if let Some(v) = vehicle {
        if let Some(throttle) = limits.vehicle {
            v.hits.push(at);
            let burst = throttle.burst as usize;
            if v.hits.len() > burst {
                let extra = v.hits.len() - burst;
                v.hits.drain(..extra);
            }
        }
        if charge {
            v.used = v.used.saturating_add(cost);
        }
    }
    Decision::Go { at_ms: at }
}

/// Where the limiter's state lives. [`MemoryLimiterStore`] for one process; with the `sqlite`
/// and `postgres` features `SqliteLimiterStore` and `PostgresLimiterStore`. Or your own
/// database: read the rows, call [`Step::apply`], write them back, all in one transaction.
///
/// ```
/// use smartcar::Error;
/// use smartcar::limits::{AppState, Decision, LimiterStore, Limits, Step, VehicleState};
/// use smartcar::store::BoxFuture;
/// use std::sync::Mutex;
///
/// /// Everything under one lock (what `MemoryLimiterStore` does, without its clean-up).
/// #[derive(Default)]
/// struct Simple(Mutex<(AppState, std::collections::HashMap<String, VehicleState>)>);
///
/// impl LimiterStore for Simple {
///     fn apply<'a>(
///         &'a self,
///         _scope: &'a str,
///         vehicle: Option<&'a str>,
///         limits: &'a Limits,
///         step: &'a Step,
///     ) -> BoxFuture<'a, Result<Decision, Error>> {
///         Box::pin(async move {
///             let mut guard = self.0.lock().unwrap();
///             let (app, vehicles) = &mut *guard;
///             let v = vehicle.map(|id| vehicles.entry(id.to_owned()).or_default());
///             Ok(step.apply(limits, app, v))
///         })
///     }
///
///     fn vehicle<'a>(
///         &'a self,
///         _scope: &'a str,
///         vehicle: &'a str,
///     ) -> BoxFuture<'a, Result<Option<VehicleState>, Error>> {
///         Box::pin(async move { Ok(self.0.lock().unwrap().1.get(vehicle).cloned()) })
///     }
/// }
/// ```
pub trait LimiterStore: Send + Sync + 'static {
    /// Applies `step` atomically to the application's state under `scope` (the client id) and,
    /// when given, to `vehicle`'s, and returns its decision. Two processes applying steps at
    /// once must see each other's changes (a transaction that locks both rows).
    fn apply<'a>(
        &'a self,
        scope: &'a str,
        vehicle: Option<&'a str>,
        limits: &'a Limits,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Decision, Error>>;

    /// The stored state of `vehicle`, for [`Limiter::usage`].
    fn vehicle<'a>(
        &'a self,
        scope: &'a str,
        vehicle: &'a str,
    ) -> BoxFuture<'a, Result<Option<VehicleState>, Error>>;
}

/// The limiter's state in memory: one process, lost on restart. Vehicles whose state is back
/// to nothing (no budget used, no cool-down, no recent request) are not kept.
#[derive(Debug, Default)]
pub struct MemoryLimiterStore {
    state: Mutex<HashMap<String, MemoryScope>>,
}

#[derive(Debug, Default)]
struct MemoryScope {
    app: AppState,
    vehicles: HashMap<String, VehicleState>,
}

impl MemoryLimiterStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LimiterStore for MemoryLimiterStore {
    fn apply<'a>(
        &'a self,
        scope: &'a str,
        vehicle: Option<&'a str>,
        limits: &'a Limits,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Decision, Error>> {
        let decision = {
            let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let state = match guard.get_mut(scope) {
                Some(s) => s,
                None => guard.entry(scope.to_owned()).or_default(),
            };
            match vehicle {
                None => step.apply(limits, &mut state.app, None),
                Some(id) => match state.vehicles.get_mut(id) {
                    Some(v) => {
                        let decision = step.apply(limits, &mut state.app, Some(v));
                        if *v == VehicleState::default() {
                            state.vehicles.remove(id);
                        }
                        decision
                    }
                    None => {
                        let mut v = VehicleState::default();
                        let decision = step.apply(limits, &mut state.app, Some(&mut v));
                        if v != VehicleState::default() {
                            state.vehicles.insert(id.to_owned(), v);
                        }
                        decision
                    }
                },
            }
        };
        Box::pin(std::future::ready(Ok(decision)))
    }

    fn vehicle<'a>(
        &'a self,
        scope: &'a str,
        vehicle: &'a str,
    ) -> BoxFuture<'a, Result<Option<VehicleState>, Error>> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(scope)
            .and_then(|s| s.vehicles.get(vehicle).cloned());
        Box::pin(std::future::ready(Ok(state)))
    }
}

/// A vehicle's budget this month, as the limiter counted it (the platform has no endpoint
/// that tells).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The month (`2026-12`, UTC).
    pub month: String,
    /// Calls charged this month (by this application's clients sharing the store).
    pub used: u32,
    /// The configured allowance.
    pub allowance: Option<u32>,
    /// Whether the platform answered 430 `VEHICLE_REQUEST_LIMIT` this month.
    pub exhausted: bool,
    /// When the budget renews (the first day of next month, UTC).
    pub renews_at: DateTime<Utc>,
}

/// A [`Client`](crate::Client)'s limiter: its [`Limits`] and [`LimiterStore`]. Every call
/// about the vehicle APIs goes through it; see the [module docs](self).
#[derive(Clone)]
pub struct Limiter {
    limits: Limits,
    store: Arc<dyn LimiterStore>,
    /// The client id: the key of the application's state in the store.
    scope: String,
    clock: crate::runtime::SharedClock,
    /// Added to the latency allowance by each 429 `SMARTCAR_API` (doubling, at most 1 s):
    /// requests of this process reach the platform later than allowed for.
    extra_latency_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter enforcing `limits` for the application `scope` (its client id), with its
    /// state in `store`.
    pub(crate) fn new(
        limits: Limits,
        store: Arc<dyn LimiterStore>,
        scope: String,
        clock: crate::runtime::SharedClock,
    ) -> Self {
        Limiter {
            limits,
            store,
            scope,
            clock,
            extra_latency_ms: Arc::default(),
        }
    }

    fn latency_ms(&self) -> i64 {
        let base = self.limits.latency.as_millis() as i64;
        base + self
            .extra_latency_ms
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A 429 `SMARTCAR_API` despite a configured bucket: this process's requests arrive later
    /// than the allowance says; allow twice as much (at most 1 s more).
    fn grow_latency(&self) {
        use std::sync::atomic::Ordering;
        let base = self.limits.latency.as_millis().max(50) as i64;
        let _ = self
            .extra_latency_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |extra| {
                Some((extra.max(base / 2) * 2).min(1_000))
            });
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn LimiterStore> {
        &self.store
    }

    /// `vehicle`'s budget this month.
    ///
    /// # Errors
    ///
    /// The store's, when it cannot be read.
    pub async fn usage(&self, vehicle: &str) -> Result<Usage, Error> {
        let now = self.clock.now();
        let month = month_of(now);
        let state = self.store.vehicle(&self.scope, vehicle).await?;
        let (used, exhausted) = match state {
            Some(s) if s.month == month => (s.used, s.exhausted),
            _ => (0, false),
        };
        Ok(Usage {
            month,
            used,
            allowance: self.limits.budget.map(|b| b.allowance),
            exhausted,
            renews_at: next_month(now),
        })
    }
}

/// `2026-12`.
pub(crate) fn month_of(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", t.year(), t.month())
}

/// The first instant of the month after `t`'s.
pub(crate) fn next_month(t: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().unwrap_or(t)
}

/// What the limiter needs to know about one call: set by [`crate::request::Call`] from its
/// operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Metering {
    /// Counting the path's segments from the end, where the vehicle id is.
    pub(crate) vehicle_from_end: Option<u8>,
    /// A command (may use the budget's reserve).
    pub(crate) command: bool,
}

impl Metering {
    /// How `op` is metered: requests to the v2.0 API host and the Vehicle API v3 host take a
    /// bucket token; those whose path names a vehicle also count against it.
    pub(crate) fn of(op: &Operation) -> Option<Metering> {
        Metering::at(op.host, op.path, op.command)
    }

    /// How a call to `template` on `host` is metered.
    pub(crate) fn at(host: Host, template: &str, command: bool) -> Option<Metering> {
        if !matches!(host, Host::Api | Host::Vehicle) {
            return None;
        }
        let vehicle_from_end = template
            .rsplit('/')
            .position(|s| s == "{vehicle_id}")
            .and_then(|i| u8::try_from(i).ok());
        Some(Metering {
            vehicle_from_end,
            command,
        })
    }

    /// The vehicle id in `url`'s path.
    pub(crate) fn vehicle<'u>(&self, url: &'u url::Url) -> Option<&'u str> {
        let from_end = self.vehicle_from_end? as usize;
        let mut segments = url.path_segments()?.rev();
        segments.nth(from_end).filter(|s| !s.is_empty())
    }
}

impl Limiter {
    /// Waits until `vehicle`'s call may be sent (charging its budget when `charge`), or fails
    /// without sending. `floor_ms`: the caller has already waited until then (a retry's
    /// backoff).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn admit(
        &self,
        vehicle: Option<&str>,
        cost: u32,
        command: bool,
        charge: bool,
        sleep: &dyn crate::Sleep,
        operation: &(dyn fmt::Display + Sync),
        mut floor_ms: i64,
    ) -> Result<(), Error> {
        // Bounded: each round either goes, fails, or waits until a later time. After a wait,
        // "now" is at least its end, even if the clock says otherwise (a test's sleep that
        // does not sleep), so no round repeats the previous one.
        for _ in 0..64 {
            let clock = self.clock.now();
            let now_ms = clock.timestamp_millis().max(floor_ms);
            let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or(clock);
            let step = Step {
                kind: StepKind::Acquire {
                    cost,
                    command,
                    charge,
                    latency_ms: self.latency_ms(),
                },
                now_ms,
                clock: Some(self.clock.clone()),
            };
            let decision = self
                .store
                .apply(&self.scope, vehicle, &self.limits, &step)
                .await?;
            // The decision was taken at the store's "now": wait from the clock's now on.
            let now_ms = self.clock.now().timestamp_millis().max(now_ms);
            let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or(now);
            match decision {
                Decision::Go { at_ms } => {
                    if at_ms > now_ms {
                        sleep.sleep(millis(at_ms - now_ms)).await;
                    }
                    return Ok(());
                }
                Decision::Wait { until_ms, .. } => {
                    sleep.sleep(millis(until_ms - now_ms)).await;
                    floor_ms = until_ms;
                }
                Decision::TooLong { until_ms, scope } => {
                    return Err(Error::RateLimited {
                        operation: operation.to_string(),
                        scope,
                        retry_after: millis(until_ms - now_ms),
                    });
                }
                Decision::Exhausted { used, allowance } => {
                    return Err(Error::BudgetExhausted {
                        operation: operation.to_string(),
                        vehicle_id: vehicle.unwrap_or_default().to_owned(),
                        used,
                        allowance,
                        renews_at: next_month(now),
                    });
                }
                Decision::Done => return Ok(()),
            }
        }
        Err(Error::RateLimited {
            operation: operation.to_string(),
            scope: LimitScope::Application,
            retry_after: self.limits.max_wait,
        })
    }

    /// Learns from a failed attempt's answer.
    pub(crate) async fn learn(&self, vehicle: Option<&str>, error: &Error) -> Result<(), Error> {
        if !self.limits.learn {
            return Ok(());
        }
        let Error::Api(api) = error else {
            return Ok(());
        };
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let code = api.code.as_deref().unwrap_or_default();
        let after =
            |wait: Duration| now_ms.saturating_add(wait.as_millis().min(i64::MAX as u128) as i64);
        let upstream = matches!(api.error_type, Some(ErrorType::Upstream));
        let (kind, vehicle) = match (api.status, code) {
            // The vehicle's throttle, or its manufacturer's limit: that vehicle waits. Without
            // `retry-after`, the configured throttle's window (or nothing: the retry policy
            // backs off).
            (429, "VEHICLE") | (429, "RATE_LIMIT")
                if vehicle.is_some() && (code == "VEHICLE" || upstream) =>
            {
                let Some(wait) = api.retry_after.or(self.limits.vehicle.map(|t| t.window)) else {
                    return Ok(());
                };
                (StepKind::VehicleCooldown(after(wait)), vehicle)
            }
            // The application's bucket (`SMARTCAR_API`, or a 429 without a known code): every
            // call waits for `retry-after`, and a configured bucket is emptied.
            (429, _) if !upstream => {
                if self.limits.app.is_some() {
                    self.grow_latency();
                }
                let until = api.retry_after.map_or(now_ms, after);
                if until == now_ms && self.limits.app.is_none() {
                    return Ok(());
                }
                (StepKind::AppCooldown(until), None)
            }
            (430, "VEHICLE_REQUEST_LIMIT") if vehicle.is_some() => (StepKind::Exhausted, vehicle),
            _ => return Ok(()),
        };
        tracing::debug!(
            status = api.status,
            code,
            "the limiter learned from a refusal"
        );
        let step = Step {
            kind,
            now_ms,
            clock: None,
        };
        self.store
            .apply(&self.scope, vehicle, &self.limits, &step)
            .await
            .map(|_| ())
    }

    /// Gives back a call's charge (the platform answered an error: not billed).
    pub(crate) async fn refund(&self, vehicle: &str, cost: u32) -> Result<(), Error> {
        let now = self.clock.now();
        let step = Step {
            kind: StepKind::Refund(cost),
            now_ms: now.timestamp_millis(),
            clock: None,
        };
        self.store
            .apply(&self.scope, Some(vehicle), &self.limits, &step)
            .await
            .map(|_| ())
    }

    /// Whether the budget is charged at all (a configured budget).
    pub(crate) fn charges(&self) -> bool {
        self.limits.budget.is_some()
    }

    /// Whether a failed call's charge comes back: the platform answered (an error is not
    /// billed), or the request never left. A timeout or a lost response may have been billed:
    /// its charge stays.
    pub(crate) fn refunds(error: &Error) -> bool {
        match error {
            // A later attempt the limiter held back: the call was charged, never billed.
            Error::Api(_) | Error::RateLimited { .. } | Error::BudgetExhausted { .. } => true,
            Error::Transport { kind, .. } => *kind == crate::error::TransportKind::Connect,
            _ => false,
        }
    }
}

/// A store's failure as an [`Error::LimiterStore`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn store_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| Error::LimiterStore {
        message: format!(
            "{what}: {e}; no request was sent (check the database, or build the client with another limiter store)"
        ),
        source: Some(Box::new(e)),
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: StepKind, now_ms: i64) -> Step {
        Step {
            kind,
            now_ms,
            clock: None,
        }
    }

    fn read(now_ms: i64) -> Step {
        step(
            StepKind::Acquire {
                cost: 1,
                command: false,
                charge: true,
                latency_ms: 0,
            },
            now_ms,
        )
    }

    #[test]
    fn the_bucket_reserves_tokens_ahead_in_order() {
        let limits = Limits::default()
            .app_bucket(2, 60.0)
            .max_wait(Duration::from_secs(10))
            .latency_allowance(Duration::ZERO);
        let mut app = AppState::default();
        let go = |app: &mut AppState| read(0).apply(&limits, app, None);
        assert_eq!(go(&mut app), Decision::Go { at_ms: 0 });
        assert_eq!(go(&mut app), Decision::Go { at_ms: 0 });
        assert_eq!(go(&mut app), Decision::Go { at_ms: 1_001 });
        assert_eq!(go(&mut app), Decision::Go { at_ms: 2_001 });
        // Ten seconds ahead is the limit: the eleventh reservation is refused, unreserved.
        for i in 3..10 {
            assert_eq!(
                go(&mut app),
                Decision::Go {
                    at_ms: i * 1_000 + 1
                }
            );
        }
        assert!(matches!(
            go(&mut app),
            Decision::TooLong {
                until_ms: 10_001,
                ..
            }
        ));
        assert!(matches!(
            go(&mut app),
            Decision::TooLong {
                until_ms: 10_001,
                ..
            }
        ));
    }

    #[test]
    fn a_full_bucket_refills_from_the_latency_allowance_on() {
        let limits = Limits::default()
            .app_bucket(2, 60.0)
            .latency_allowance(Duration::from_millis(250));
        let mut app = AppState::default();
        let go = |app: &mut AppState, now| {
            let step = step(
                StepKind::Acquire {
                    cost: 1,
                    command: false,
                    charge: true,
                    latency_ms: 250,
                },
                now,
            );
            step.apply(&limits, app, None)
        };
        assert_eq!(go(&mut app, 0), Decision::Go { at_ms: 0 });
        assert_eq!(go(&mut app, 100), Decision::Go { at_ms: 100 });
        // The platform's bucket refills from the first arrival, up to 250 ms late.
        assert_eq!(go(&mut app, 200), Decision::Go { at_ms: 1_251 });
        assert_eq!(go(&mut app, 300), Decision::Go { at_ms: 2_251 });
        // Idle until full again: the shift starts over.
        assert_eq!(go(&mut app, 10_000), Decision::Go { at_ms: 10_000 });
        assert_eq!(go(&mut app, 10_000), Decision::Go { at_ms: 10_000 });
        assert_eq!(go(&mut app, 10_000), Decision::Go { at_ms: 11_251 });
    }

    #[test]
    fn the_vehicle_throttle_is_a_sliding_window() {
        let limits = Limits::default().vehicle_throttle(2, Duration::from_secs(120));
        let mut app = AppState::default();
        let mut v = VehicleState::default();
        assert_eq!(
            read(0).apply(&limits, &mut app, Some(&mut v)),
            Decision::Go { at_ms: 0 }
        );
        assert_eq!(
            read(50_000).apply(&limits, &mut app, Some(&mut v)),
            Decision::Go { at_ms: 50_000 }
        );
        assert!(matches!(
            read(60_000).apply(&limits, &mut app, Some(&mut v)),
            Decision::Wait {
                until_ms: 120_000,
                scope: LimitScope::Vehicle
            }
        ));
        assert_eq!(
            read(120_000).apply(&limits, &mut app, Some(&mut v)),
            Decision::Go { at_ms: 120_000 }
        );
        // The window still holds the hit at 50 s.
        assert!(matches!(
            read(130_000).apply(&limits, &mut app, Some(&mut v)),
            Decision::Wait {
                until_ms: 170_000,
                ..
            }
        ));
    }

    #[test]
    fn the_budget_keeps_a_reserve_for_commands_and_renews_monthly() {
        let limits = Limits::default().monthly_budget(MonthlyBudget::new(3).command_reserve(1));
        let mut app = AppState::default();
        let mut v = VehicleState::default();
        let command = step(
            StepKind::Acquire {
                cost: 1,
                command: true,
                charge: true,
                latency_ms: 0,
            },
            0,
        );
        assert!(matches!(
            read(0).apply(&limits, &mut app, Some(&mut v)),
            Decision::Go { .. }
        ));
        assert!(matches!(
            read(0).apply(&limits, &mut app, Some(&mut v)),
            Decision::Go { .. }
        ));
        assert_eq!(
            read(0).apply(&limits, &mut app, Some(&mut v)),
            Decision::Exhausted {
                used: 2,
                allowance: Some(3)
            }
        );
        assert!(matches!(
            command.apply(&limits, &mut app, Some(&mut v)),
            Decision::Go { .. }
        ));
        assert!(matches!(
            command.apply(&limits, &mut app, Some(&mut v)),
            Decision::Exhausted { used: 3, .. }
        ));
        // A refund gives one back; a batch of two does not fit in one.
        step(StepKind::Refund(1), 0).apply(&limits, &mut app, Some(&mut v));
        let batch = step(
            StepKind::Acquire {
                cost: 2,
                command: true,
                charge: true,
                latency_ms: 0,
            },
            0,
        );
        assert!(matches!(
            batch.apply(&limits, &mut app, Some(&mut v)),
            Decision::Exhausted { .. }
        ));
        // A new month (February 1970, the tests' times being since the epoch) starts from zero.
        let next = read(40 * 24 * 3_600 * 1_000);
        assert!(matches!(
            next.apply(&limits, &mut app, Some(&mut v)),
            Decision::Go { .. }
        ));
        assert_eq!(v.used, 1);
    }

    #[test]
    fn learned_refusals_hold_calls_back() {
        let limits = Limits::default();
        let mut app = AppState::default();
        let mut v = VehicleState::default();
        step(StepKind::VehicleCooldown(5_000), 0).apply(&limits, &mut app, Some(&mut v));
        assert!(matches!(
            read(1_000).apply(&limits, &mut app, Some(&mut v)),
            Decision::Wait {
                until_ms: 5_000,
                scope: LimitScope::Vehicle
            }
        ));
        step(StepKind::AppCooldown(90_000), 0).apply(&limits, &mut app, None);
        assert!(matches!(
            read(6_000).apply(&limits, &mut app, None),
            Decision::TooLong {
                until_ms: 90_000,
                scope: LimitScope::Application
            }
        ));
        step(StepKind::Exhausted, 0).apply(&limits, &mut app, Some(&mut v));
        assert!(matches!(
            read(100_000).apply(&limits, &mut app, Some(&mut v)),
            Decision::Exhausted {
                allowance: None,
                ..
            }
        ));
    }

    #[test]
    fn the_memory_store_keeps_nothing_per_vehicle_when_nothing_is_limited() {
        let store = MemoryLimiterStore::new();
        let limits = Limits::default();
        for i in 0..100 {
            let id = format!("vehicle-{i}");
            let step = read(i);
            let decision = store.apply("app", Some(&id), &limits, &step);
            let decision = futures_util::FutureExt::now_or_never(decision).unwrap();
            assert_eq!(decision.unwrap(), Decision::Go { at_ms: i });
        }
        let state = store.state.lock().unwrap();
        assert!(state["app"].vehicles.is_empty());
        // With a budget, each vehicle's count is kept.
        drop(state);
        let limits = Limits::default().monthly_budget(MonthlyBudget::new(10));
        let step = read(0);
        let decision = store.apply("app", Some("v"), &limits, &step);
        futures_util::FutureExt::now_or_never(decision)
            .unwrap()
            .unwrap();
        assert_eq!(store.state.lock().unwrap()["app"].vehicles["v"].used, 1);
    }

    #[test]
    fn metering_follows_the_operation_table() {
        use smartcar_api::ops;
        let odometer = Metering::of(&ops::GET_ODOMETER).unwrap();
        // Counted from the end: an origin with a path prefix (a proxy) reads the same id.
        let url = url::Url::parse("https://proxy.example/smartcar/v2.0/vehicles/abc-123/odometer")
            .unwrap();
        assert_eq!(odometer.vehicle(&url), Some("abc-123"));
        assert!(!odometer.command);
        let lock = Metering::of(&ops::LOCK_V3).unwrap();
        assert!(lock.command);
        // Every operation on the two vehicle-API hosts is metered, no other.
        for op in ops::ALL {
            assert_eq!(
                Metering::of(op).is_some(),
                matches!(op.host, Host::Api | Host::Vehicle),
                "{op}"
            );
            if op.path.contains("{vehicle_id}") && Metering::of(op).is_some() {
                assert!(Metering::of(op).unwrap().vehicle_from_end.is_some(), "{op}");
            }
        }
        // Not about a vehicle: a bucket token, no vehicle.
        let vehicles = Metering::of(&ops::LIST_VEHICLES).unwrap();
        let url = url::Url::parse("https://api.smartcar.com/v2.0/vehicles").unwrap();
        assert_eq!(vehicles.vehicle(&url), None);
    }

    #[test]
    fn hits_round_trip_as_text() {
        let v = VehicleState {
            hits: vec![1, 20, 300],
            ..VehicleState::default()
        };
        assert_eq!(VehicleState::parse_hits(&v.hits_text()), v.hits);
        assert!(VehicleState::parse_hits("").is_empty());
        assert_eq!(VehicleState::parse_hits("1,x,3"), vec![1, 3]);
    }

    #[test]
    fn months_roll_over_in_december() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
        assert_eq!(month_of(t), "2026-12");
        assert_eq!(
            next_month(t),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
    }
}
