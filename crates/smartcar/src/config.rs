//! Client configuration: hosts, mode, units, timeouts, retries.

use std::fmt;
use std::time::Duration;

use smartcar_api::op::{Host, Operation};
use smartcar_api::ops;
use url::Url;

use crate::Error;

/// Which vehicles Smartcar Connect offers the user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Real vehicles (the default).
    #[default]
    Live,
    /// Vehicles created in the Dashboard's vehicle simulator.
    Simulated,
    /// Randomised test vehicles (deprecated by Smartcar).
    Test,
}

impl Mode {
    /// The value of Connect's `mode` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Simulated => "simulated",
            Mode::Test => "test",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Units of v2.0 response bodies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UnitSystem {
    /// Kilometres, litres, kilopascals (the default).
    #[default]
    Metric,
    /// Miles, US gallons, psi.
    Imperial,
}

impl UnitSystem {
    /// The `sc-unit-system` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitSystem::Metric => "metric",
            UnitSystem::Imperial => "imperial",
        }
    }

    /// Parses a `sc-unit-system` value (case-insensitive).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("metric") {
            Some(UnitSystem::Metric)
        } else if value.eq_ignore_ascii_case("imperial") {
            Some(UnitSystem::Imperial)
        } else {
            None
        }
    }
}

impl fmt::Display for UnitSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The platform's hosts. Each is an origin (scheme, host, port) without a trailing slash; the
/// SDK appends the paths.
///
/// ```
/// let real = smartcar::config::Origins::production();
/// assert_eq!(real.api.as_str(), "https://api.smartcar.com/");
/// // One server for every host, as the simulator does:
/// let sim = smartcar::config::Origins::all("http://127.0.0.1:8080").unwrap();
/// assert_eq!(sim.vehicle, sim.connect);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origins {
    /// Vehicle API v2.0 and compatibility (`https://api.smartcar.com`).
    pub api: Url,
    /// Authorization-code and refresh-token grants (`https://auth.smartcar.com`).
    pub auth: Url,
    /// Client-credentials application tokens (`https://iam.smartcar.com`).
    pub iam: Url,
    /// Smartcar Connect pages (`https://connect.smartcar.com`).
    pub connect: Url,
    /// Management API v2.0 (`https://management.smartcar.com`).
    pub management: Url,
    /// Vehicle API v3 (`https://vehicle.api.smartcar.com`).
    pub vehicle: Url,
    /// Management API v3 (`https://management.api.smartcar.com`).
    pub management_v3: Url,
    /// Compatibility API v3 (`https://compatibility.api.smartcar.com`).
    pub compatibility: Url,
}

impl Origins {
    /// Smartcar's production hosts.
    pub fn production() -> Self {
        let u = |s: &str| Url::parse(s).expect("static URL");
        Origins {
            api: u("https://api.smartcar.com"),
            auth: u("https://auth.smartcar.com"),
            iam: u("https://iam.smartcar.com"),
            connect: u("https://connect.smartcar.com"),
            management: u("https://management.smartcar.com"),
            vehicle: u("https://vehicle.api.smartcar.com"),
            management_v3: u("https://management.api.smartcar.com"),
            compatibility: u("https://compatibility.api.smartcar.com"),
        }
    }

    /// Every host at one origin (the simulator serves them all on one port).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when `origin` is not an http(s) URL.
    pub fn all(origin: &str) -> Result<Self, Error> {
        let o = parse_origin("origin", origin)?;
        Ok(Origins {
            api: o.clone(),
            auth: o.clone(),
            iam: o.clone(),
            connect: o.clone(),
            management: o.clone(),
            vehicle: o.clone(),
            management_v3: o.clone(),
            compatibility: o,
        })
    }

    /// Production hosts, overridden by the environment variables Smartcar's official SDKs read:
    /// `SMARTCAR_API_ORIGIN`, `SMARTCAR_AUTH_ORIGIN` (an origin, or the full token URL as the
    /// Python SDK takes it), `SMARTCAR_CONNECT_ORIGIN`, `SMARTCAR_MANAGEMENT_API_ORIGIN`,
    /// `SMARTCAR_VEHICLE_API_V3_ORIGIN` (Python) or `SMARTCAR_API_V3_ORIGIN` (Node) or
    /// `SMARTCAR_VEHICLE_API_ORIGIN` (Ruby), and two of this SDK: `SMARTCAR_IAM_ORIGIN`,
    /// `SMARTCAR_MANAGEMENT_API_V3_ORIGIN`.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming the variable whose value is not an http(s) URL.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut o = Origins::production();
        let set = |slot: &mut Url, names: &[&str]| -> Result<(), Error> {
            for name in names {
                if let Some(v) = get(name).filter(|v| !v.trim().is_empty()) {
                    *slot = parse_origin(name, &v)?;
                    return Ok(());
                }
            }
            Ok(())
        };
        set(&mut o.api, &["SMARTCAR_API_ORIGIN"])?;
        set(&mut o.auth, &["SMARTCAR_AUTH_ORIGIN"])?;
        set(&mut o.iam, &["SMARTCAR_IAM_ORIGIN"])?;
        set(&mut o.connect, &["SMARTCAR_CONNECT_ORIGIN"])?;
        set(&mut o.management, &["SMARTCAR_MANAGEMENT_API_ORIGIN"])?;
        set(
            &mut o.vehicle,
            &[
                "SMARTCAR_VEHICLE_API_V3_ORIGIN",
                "SMARTCAR_API_V3_ORIGIN",
                "SMARTCAR_VEHICLE_API_ORIGIN",
            ],
        )?;
        set(&mut o.management_v3, &["SMARTCAR_MANAGEMENT_API_V3_ORIGIN"])?;
        set(&mut o.compatibility, &["SMARTCAR_COMPATIBILITY_API_ORIGIN"])?;
        Ok(o)
    }

    /// The authorization-code / refresh-token endpoint.
    pub fn token_url(&self) -> Url {
        self.url(&ops::EXCHANGE_TOKEN)
    }

    /// The client-credentials endpoint.
    pub fn application_token_url(&self) -> Url {
        self.url(&ops::REQUEST_APPLICATION_TOKEN)
    }

    /// The Connect authorization page.
    pub fn authorize_url(&self) -> Url {
        self.url(&ops::AUTHORIZE)
    }

    /// The origin serving `host`: the one place a spec host becomes one of these URLs.
    ///
    /// ```
    /// use smartcar::api::op::Host;
    /// let origins = smartcar::config::Origins::production();
    /// assert_eq!(origins.origin(Host::Vehicle).as_str(), "https://vehicle.api.smartcar.com/");
    /// ```
    pub fn origin(&self, host: Host) -> &Url {
        match host {
            Host::Connect => &self.connect,
            Host::Auth => &self.auth,
            Host::Iam => &self.iam,
            Host::Api => &self.api,
            Host::Management => &self.management,
            Host::Vehicle => &self.vehicle,
            Host::ManagementV3 => &self.management_v3,
            Host::Compatibility => &self.compatibility,
        }
    }

    /// The URL of an operation without path parameters, on its host.
    pub(crate) fn url(&self, op: &'static Operation) -> Url {
        debug_assert!(op.path_params.is_empty(), "{op} has path parameters");
        join(self.origin(op.host), op.path)
    }
}

/// `origin` + absolute `path`.
pub(crate) fn join(origin: &Url, path: &str) -> Url {
    let mut u = origin.clone();
    u.set_path(path);
    u.set_query(None);
    u
}

/// Parses an origin; a path (such as the Python SDK's full token URL) is dropped.
fn parse_origin(setting: &str, value: &str) -> Result<Url, Error> {
    let mut url = Url::parse(value.trim())
        .map_err(|e| Error::config(setting, format!("`{value}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::config(
            setting,
            format!("`{value}` is not an http(s) origin"),
        ));
    }
    url.set_path("/");
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// When and how reads are retried. Commands are never retried unless the server says they were
/// not executed (429 before execution).
///
/// ```
/// use std::time::Duration;
/// let policy = smartcar::config::RetryPolicy::default()
///     .max_attempts(5)
///     .initial_backoff(Duration::from_millis(200));
/// let never = smartcar::config::RetryPolicy::disabled();
/// # let _ = (policy, never);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) max_total: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 250 ms doubling up to 8 s (with full jitter), at most 30 s waiting in all;
    /// a `retry-after` longer than what is left is not waited for.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_total: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn disabled() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Attempts in all, first included (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Backoff before the second attempt; it doubles each time.
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// Upper bound of one backoff.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Upper bound of all waiting of one call.
    pub fn max_total(mut self, d: Duration) -> Self {
        self.max_total = d;
        self
    }

    /// The one backoff schedule of the SDK, used by API calls and token calls alike: how long
    /// to wait after failed attempt number `attempt` (1 for the first) before the next one, or
    /// `None` when no attempt is left or the wait would take the time spent so far (`elapsed`)
    /// beyond `budget`.
    ///
    /// The wait is the server's `retry-after` when it said one; otherwise `initial_backoff`
    /// doubling per attempt up to `max_backoff`, scaled by `jitter` (a fraction in [0, 1):
    /// full jitter) when one is given.
    pub(crate) fn delay(
        &self,
        attempt: u32,
        elapsed: Duration,
        budget: Duration,
        retry_after: Option<Duration>,
        jitter: Option<f64>,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let wait = retry_after.unwrap_or_else(|| match jitter {
            Some(fraction) => exp.mul_f64(fraction.clamp(0.0, 1.0)),
            None => exp,
        });
        (elapsed.saturating_add(wait) <= budget).then_some(wait)
    }
}
