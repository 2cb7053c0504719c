//! The [`Client`]: one application's credentials and settings, one connection pool.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::Error;
use crate::config::{Mode, Origins, RetryPolicy, UnitSystem};

/// The application's client secret. `Debug` never shows it; `==` compares in constant time
/// (for values of equal length); the value is wiped from memory when dropped.
#[derive(Clone)]
pub struct ClientSecret(String);

impl PartialEq for ClientSecret {
    fn eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), other.0.as_bytes()).into()
    }
}

impl Eq for ClientSecret {}

impl Drop for ClientSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(secret.into())
    }

    /// The secret itself.
    ///
    /// # Security warning
    /// Do not log or display it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<ClientSecret>,
    pub(crate) redirect_uri: Option<Url>,
    pub(crate) mode: Mode,
    pub(crate) unit_system: UnitSystem,
    pub(crate) origins: Origins,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    pub(crate) sleep: crate::runtime::SharedSleep,
    pub(crate) clock: crate::runtime::SharedClock,
    /// Answers of the Compatibility API v3, by filter (see `compatibility.rs`).
    pub(crate) compatible_vehicles: CompatibleCache,
    /// The request limits every vehicle-API call goes through (`None`: turned off).
    pub(crate) limiter: Option<crate::limits::Limiter>,
}

/// Answers of the Compatibility API v3 by filter query (filled by `compatibility.rs`).
#[derive(Default)]
pub(crate) struct CompatibleCache {
    pub(crate) entries:
        std::sync::Mutex<std::collections::HashMap<Vec<(&'static str, String)>, CompatibleCached>>,
}

/// One cached answer.
pub(crate) struct CompatibleCached {
    pub(crate) fetched_at: chrono::DateTime<chrono::Utc>,
    pub(crate) models: Arc<Vec<smartcar_api::types::CompatibleVehicle>>,
}

/// A Smartcar application: its credentials, settings and one HTTP connection pool shared by
/// every host and every user. Cheap to clone (an `Arc`); build one per application and share it.
///
/// ```
/// let client = smartcar::Client::builder()
///     .client_id("8229df9f-91a0-4ff0-a1ae-a1f38ee24d07")
///     .client_secret("secret")
///     .redirect_uri("https://example.com/callback")
///     .build()?;
/// assert_eq!(client.client_id(), "8229df9f-91a0-4ff0-a1ae-a1f38ee24d07");
/// assert!(!format!("{client:?}").contains("secret\""));
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &self.inner.client_secret)
            .field(
                "redirect_uri",
                &self.inner.redirect_uri.as_ref().map(Url::as_str),
            )
            .field("mode", &self.inner.mode)
            .field("unit_system", &self.inner.unit_system)
            .field("origins", &self.inner.origins)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment: `SMARTCAR_CLIENT_ID` and
    /// `SMARTCAR_CLIENT_SECRET` (required), `SMARTCAR_REDIRECT_URI` (optional; needed for the
    /// Connect flow), `SMARTCAR_MODE` (`live`, `simulated`, `test`; optional) and the origin
    /// overrides of [`Origins::from_env`].
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming the missing or invalid variable.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_lookup(|k| std::env::var(k).ok())?.build()
    }

    /// The application's client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The configured redirect URI.
    pub fn redirect_uri(&self) -> Option<&Url> {
        self.inner.redirect_uri.as_ref()
    }

    /// The Connect mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The default unit system of v2.0 reads.
    pub fn unit_system(&self) -> UnitSystem {
        self.inner.unit_system
    }

    /// The hosts.
    pub fn origins(&self) -> &Origins {
        &self.inner.origins
    }

    /// The shared HTTP client (one connection pool for every host).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The retry policy of reads.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The limiter every vehicle-API call goes through (`None` after
    /// [`ClientBuilder::disable_limits`]): its limits and each vehicle's budget this month.
    pub fn limiter(&self) -> Option<&crate::limits::Limiter> {
        self.inner.limiter.as_ref()
    }

    /// A low-level generated client for `origin`, authenticated with `auth` and sharing this
    /// client's connection pool: for power users who need an operation exactly as the spec
    /// describes it.
    ///
    /// ```
    /// use smartcar::api::prelude::*;
    /// # async fn demo(client: smartcar::Client) {
    /// let raw = client.low_level(&client.origins().api, smartcar::api::Auth::bearer("token"));
    /// let _req = raw.get_odometer().vehicle_id("36ab27d0-fd9d-4455-823a-ce30af709ffc");
    /// # }
    /// ```
    pub fn low_level(&self, origin: &Url, auth: smartcar_api::Auth) -> smartcar_api::Client {
        smartcar_api::Client::new_with_client(
            origin.as_str().trim_end_matches('/'),
            self.inner.http.clone(),
            auth,
        )
    }

    /// Now, by the client's [`crate::Clock`].
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn client_secret(&self) -> Result<&ClientSecret, Error> {
        self.inner.client_secret.as_ref().ok_or_else(|| {
            Error::config(
                "client_secret",
                "this call needs the client secret; set it with ClientBuilder::client_secret or SMARTCAR_CLIENT_SECRET",
            )
        })
    }
}

/// Builds a [`Client`]. Only the client id is required; the secret is needed for token
/// exchange and compatibility, the redirect URI for the Connect flow.
#[derive(Default)]
pub struct ClientBuilder {
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    redirect_uri: Option<String>,
    mode: Mode,
    unit_system: UnitSystem,
    origins: Option<Origins>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent: Option<String>,
    http: Option<reqwest::Client>,
    retry: Option<RetryPolicy>,
    sleep: Option<crate::runtime::SharedSleep>,
    clock: Option<crate::runtime::SharedClock>,
    /// `None`: the default limits; `Some(None)`: no limiter.
    limits: Option<Option<crate::limits::Limits>>,
    limiter_store: Option<Arc<dyn crate::limits::LimiterStore>>,
    errors: Vec<Error>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("redirect_uri", &self.redirect_uri)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Default timeout of one request. Smartcar's SDKs wait 310 s because some makes take minutes
/// to answer a command; reads usually answer in seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(310);

impl ClientBuilder {
    /// The application's client id (required).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The application's client secret.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(ClientSecret::new(secret));
        self
    }

    /// The redirect URI registered for the application (Connect flow).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Which vehicles Connect offers (default [`Mode::Live`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Default unit system of v2.0 reads (default metric); vehicle handles can override it.
    pub fn unit_system(mut self, units: UnitSystem) -> Self {
        self.unit_system = units;
        self
    }

    /// The hosts (default [`Origins::production`]).
    pub fn origins(mut self, origins: Origins) -> Self {
        self.origins = Some(origins);
        self
    }

    /// Every host at one origin, e.g. the simulator's base URL.
    pub fn origin(mut self, origin: &str) -> Self {
        match Origins::all(origin) {
            Ok(o) => self.origins = Some(o),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Timeout of one request attempt (default [`DEFAULT_TIMEOUT`]). Ignored with
    /// [`ClientBuilder::http_client`], whose own settings apply.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Timeout of establishing a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The `User-Agent` (default `smartcar-rs/<version>`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// Use this `reqwest::Client` (its pool, proxy, TLS and timeouts). Configure it not to follow
    /// redirects (`redirect::Policy::none()`): the token endpoint must never be redirected.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Retry policy of reads (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// No retries at all.
    pub fn disable_retries(self) -> Self {
        self.retry_policy(RetryPolicy::disabled())
    }

    /// How retry backoffs wait (default [`crate::TokioSleep`]); tests install one that records
    /// the delays.
    pub fn sleep(mut self, sleep: impl crate::Sleep) -> Self {
        self.sleep = Some(std::sync::Arc::new(sleep));
        self
    }

    /// Where "now" comes from for token expiry and the limiter (default [`crate::SystemClock`]).
    pub fn clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Some(std::sync::Arc::new(clock));
        self
    }

    /// The request limits the client keeps to (default [`Limits::default`]: learn from the
    /// platform's 429 and 430 answers, enforce nothing else). See [`crate::limits`].
    ///
    /// ```
    /// use smartcar::limits::{Limits, MonthlyBudget};
    /// let client = smartcar::Client::builder()
    ///     .client_id("8229df9f-91a0-4ff0-a1ae-a1f38ee24d07")
    ///     .limits(Limits::platform().monthly_budget(MonthlyBudget::new(1_000).command_reserve(50)))
    ///     .build()?;
    /// assert_eq!(client.limiter().unwrap().limits().budget.unwrap().allowance, 1_000);
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    ///
    /// [`Limits::default`]: crate::limits::Limits::default
    pub fn limits(mut self, limits: crate::limits::Limits) -> Self {
        self.limits = Some(Some(limits));
        self
    }

    /// No limiter: calls are sent as they come, 429s are only retried (the retry policy) and
    /// nothing is learned.
    pub fn disable_limits(mut self) -> Self {
        self.limits = Some(None);
        self
    }

    /// Where the limiter keeps its state (default a
    /// [`MemoryLimiterStore`](crate::limits::MemoryLimiterStore) of this client's own). Share an
    /// SQL store between processes or instances to share the bucket and the budgets.
    pub fn limiter_store(mut self, store: Arc<dyn crate::limits::LimiterStore>) -> Self {
        self.limiter_store = Some(store);
        self
    }

    /// A builder configured from the settings `get` returns, by the names
    /// [`Client::from_env`] reads (`SMARTCAR_CLIENT_ID`, `SMARTCAR_CLIENT_SECRET`,
    /// `SMARTCAR_REDIRECT_URI`, `SMARTCAR_MODE`, the origin overrides): for settings that come
    /// from somewhere else than the process environment (a config file, a secret manager).
    ///
    /// ```
    /// let settings = std::collections::HashMap::from([
    ///     ("SMARTCAR_CLIENT_ID", "8229df9f-91a0-4ff0-a1ae-a1f38ee24d07"),
    ///     ("SMARTCAR_CLIENT_SECRET", "a-secret"),
    /// ]);
    /// let client = smartcar::ClientBuilder::from_lookup(|name| settings.get(name).map(|v| v.to_string()))?
    ///     .build()?;
    /// assert_eq!(client.client_id(), "8229df9f-91a0-4ff0-a1ae-a1f38ee24d07");
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming the missing or invalid setting.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let required = |name: &str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::config(name, "not set"))
        };
        let mut b = ClientBuilder::default()
            .client_id(required("SMARTCAR_CLIENT_ID")?)
            .client_secret(required("SMARTCAR_CLIENT_SECRET")?)
            .origins(Origins::from_lookup(&get)?);
        if let Some(uri) = get("SMARTCAR_REDIRECT_URI").filter(|v| !v.trim().is_empty()) {
            b = b.redirect_uri(uri);
        }
        if let Some(mode) = get("SMARTCAR_MODE").filter(|v| !v.trim().is_empty()) {
            b = b.mode(match mode.trim().to_ascii_lowercase().as_str() {
                "live" => Mode::Live,
                "simulated" => Mode::Simulated,
                "test" => Mode::Test,
                _ => {
                    return Err(Error::config(
                        "SMARTCAR_MODE",
                        format!("`{mode}` is not one of live, simulated, test"),
                    ));
                }
            });
        }
        Ok(b)
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming the first missing or invalid setting.
    pub fn build(mut self) -> Result<Client, Error> {
        if let Some(e) = self.errors.drain(..).next() {
            return Err(e);
        }
        let client_id = self
            .client_id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| Error::config("client_id", "not set"))?;
        let redirect_uri = match self.redirect_uri {
            None => None,
            Some(uri) => Some(
                crate::checks::check_redirect_uri(&uri)
                    .map_err(|e| Error::config("redirect_uri", e))?,
            ),
        };
        if self
            .client_secret
            .as_ref()
            .is_some_and(|s| s.secret().trim().is_empty())
        {
            return Err(Error::config("client_secret", "empty"));
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .user_agent(
                    self.user_agent
                        .unwrap_or_else(|| format!("smartcar-rs/{}", env!("CARGO_PKG_VERSION"))),
                )
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(10)))
                .build()
                .map_err(|e| Error::config("http_client", format!("cannot build: {e}")))?,
        };
        let clock: crate::runtime::SharedClock = self
            .clock
            .unwrap_or_else(|| std::sync::Arc::new(crate::SystemClock));
        let store = self.limiter_store;
        let limiter = self
            .limits
            .unwrap_or_else(|| Some(Default::default()))
            .map(|limits| {
                crate::limits::Limiter::new(
                    limits,
                    store.unwrap_or_else(|| Arc::new(crate::limits::MemoryLimiterStore::new())),
                    client_id.clone(),
                    clock.clone(),
                )
            });
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                client_id,
                client_secret: self.client_secret,
                redirect_uri,
                mode: self.mode,
                unit_system: self.unit_system,
                origins: self.origins.unwrap_or_else(Origins::production),
                retry: self.retry.unwrap_or_default(),
                timeout,
                sleep: self
                    .sleep
                    .unwrap_or_else(|| std::sync::Arc::new(crate::TokioSleep)),
                clock,
                compatible_vehicles: CompatibleCache::default(),
                limiter,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn client_secret_compares_in_constant_time_and_hides_its_value() {
        let a = ClientSecret::new("client-secret-0123");
        assert_eq!(a, ClientSecret::new("client-secret-0123"));
        assert_ne!(a, ClientSecret::new("client-secret-0124"));
        assert_ne!(a, ClientSecret::new("client-secret-012"));
        assert_eq!(a.clone(), a);
        assert_eq!(format!("{a:?}"), "ClientSecret([redacted])");
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let e = ClientBuilder::from_lookup(env(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: SMARTCAR_CLIENT_ID: not set"
        );
        let e = ClientBuilder::from_lookup(env(&[("SMARTCAR_CLIENT_ID", "id")])).unwrap_err();
        assert!(e.to_string().contains("SMARTCAR_CLIENT_SECRET"), "{e}");
        let e = ClientBuilder::from_lookup(env(&[
            ("SMARTCAR_CLIENT_ID", "id"),
            ("SMARTCAR_CLIENT_SECRET", "s"),
            ("SMARTCAR_API_ORIGIN", "ftp://x"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("SMARTCAR_API_ORIGIN"), "{e}");
    }

    #[test]
    fn from_env_reads_origins_like_the_official_sdks() {
        let c = ClientBuilder::from_lookup(env(&[
            ("SMARTCAR_CLIENT_ID", "id"),
            ("SMARTCAR_CLIENT_SECRET", "s3cr3t-value"),
            ("SMARTCAR_REDIRECT_URI", "http://localhost:8000/callback"),
            ("SMARTCAR_MODE", "simulated"),
            // Python's form: the full token URL.
            ("SMARTCAR_AUTH_ORIGIN", "http://127.0.0.1:9/oauth/token"),
            ("SMARTCAR_API_V3_ORIGIN", "http://127.0.0.1:9"),
        ]))
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(
            c.origins().token_url().as_str(),
            "http://127.0.0.1:9/oauth/token"
        );
        assert_eq!(c.origins().vehicle.as_str(), "http://127.0.0.1:9/");
        assert_eq!(c.origins().api.as_str(), "https://api.smartcar.com/");
        assert_eq!(c.mode(), Mode::Simulated);
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn builder_rejects_bad_settings() {
        assert!(
            Client::builder()
                .build()
                .unwrap_err()
                .to_string()
                .contains("client_id")
        );
        let e = Client::builder()
            .client_id("id")
            .redirect_uri("not a url")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("redirect_uri"), "{e}");
        let e = Client::builder()
            .client_id("id")
            .origin("nope")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("origin"), "{e}");
    }
}
