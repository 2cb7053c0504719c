//! Valid access tokens on demand: refresh ahead of expiry, once for all concurrent callers,
//! persisting the rotated refresh token before the new access token is used.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::Error;
use crate::client::Client;
use crate::store::{CasOutcome, TokenStore};
use crate::tokens::{AccessToken, ApplicationToken, ApplicationTokenValue, Tokens};

/// Refresh this long before the access token expires (default).
pub const DEFAULT_REFRESH_SKEW: Duration = Duration::from_secs(5 * 60);

/// One user's authorization: hands out a valid access token, refreshing when needed.
///
/// Guarantees:
/// - **Single flight.** However many tasks call [`access_token`](Self::access_token) at once
///   around an expiry, this session sends one refresh request; the others wait for it and share
///   its result. Sessions in other tasks or processes over the same store and key are
///   coordinated by the store: [`TokenStore::lock_for_refresh`] is held around
///   load → refresh → save (the SQLite and PostgreSQL stores lock across processes, the
///   in-memory store within the process), and compare-and-swap covers stores without a lock
///   (the loser of a race adopts the winner's tokens).
/// - **Save before use.** After a refresh the new tokens are written to the [`TokenStore`]
///   (compare-and-swap on the old refresh token) *before* the new access token is returned. If
///   the process dies in between, the store still holds the refresh token the platform issued
///   last, so a restarted process can go on. The unavoidable window is between the platform
///   rotating the token and the store write completing; Smartcar's grace period (the old refresh
///   token keeps answering with the same new pair for a short while) covers a retry within it.
/// - **Refresh ahead.** A token within `skew` of expiry (default 5 minutes) is refreshed.
/// - **Re-authorization is typed.** An expired or refused refresh token gives
///   [`Error::ReauthorizationRequired`]: send the user through Connect again.
///
/// Cheap to clone; clones share the same state.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    client: Client,
    key: String,
    store: Arc<dyn TokenStore>,
    skew: Duration,
    cached: RwLock<Option<Tokens>>,
    refresh_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("key_hash", &crate::store_key_hash(&self.inner.key))
            .field("skew", &self.inner.skew)
            .field(
                "tokens",
                &*self.inner.cached.read().unwrap_or_else(|e| e.into_inner()),
            )
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for fresh tokens (e.g. from [`Client::exchange_code`]); saves them under `key`.
    ///
    /// ```no_run
    /// # async fn demo(client: smartcar::Client, code: smartcar::connect::AuthorizationCode) -> Result<(), smartcar::Error> {
    /// use std::sync::Arc;
    /// use smartcar::Session;
    /// use smartcar::store::MemoryTokenStore;
    ///
    /// let tokens = client.exchange_code(&code).await?;
    /// let session = Session::create(&client, Arc::new(MemoryTokenStore::new()), "user-42", tokens).await?;
    /// # let _ = session;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TokenStore`] when saving fails.
    pub async fn create(
        client: &Client,
        store: Arc<dyn TokenStore>,
        key: impl Into<String>,
        tokens: Tokens,
    ) -> Result<Session, Error> {
        let key = key.into();
        store.save(&key, &tokens).await?;
        Ok(Self::with(client, store, key, Some(tokens)))
    }

    /// A session over tokens already in the store (after a restart).
    ///
    /// ```no_run
    /// # async fn demo(client: smartcar::Client, store: std::sync::Arc<dyn smartcar::store::TokenStore>) -> Result<(), smartcar::Error> {
    /// let session = smartcar::Session::resume(&client, store, "user-42").await?;
    /// let user_id = session.fetch_user_id().await?;
    /// # let _ = user_id;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ReauthorizationRequired`] when nothing is stored under `key`;
    /// [`Error::TokenStore`] when loading fails.
    pub async fn resume(
        client: &Client,
        store: Arc<dyn TokenStore>,
        key: impl Into<String>,
    ) -> Result<Session, Error> {
        let key = key.into();
        let tokens = store
            .load(&key)
            .await?
            .ok_or_else(|| Error::ReauthorizationRequired {
                reason: format!(
                    "no tokens are stored under key {}",
                    crate::store_key_hash(&key)
                ),
                source: None,
            })?;
        Ok(Self::with(client, store, key, Some(tokens)))
    }

    fn with(
        client: &Client,
        store: Arc<dyn TokenStore>,
        key: String,
        tokens: Option<Tokens>,
    ) -> Self {
        Session {
            inner: Arc::new(SessionInner {
                client: client.clone(),
                key,
                store,
                skew: DEFAULT_REFRESH_SKEW,
                cached: RwLock::new(tokens),
                refresh_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// This session, refreshing `skew` before expiry instead of the default 5 minutes.
    ///
    /// ```no_run
    /// # fn demo(session: smartcar::Session) {
    /// let session = session.with_refresh_skew(std::time::Duration::from_secs(60));
    /// # let _ = session;
    /// # }
    /// ```
    pub fn with_refresh_skew(self, skew: Duration) -> Session {
        let inner = &self.inner;
        let tokens = inner
            .cached
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Session {
            inner: Arc::new(SessionInner {
                client: inner.client.clone(),
                key: inner.key.clone(),
                store: inner.store.clone(),
                skew,
                cached: RwLock::new(tokens),
                refresh_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The client this session belongs to.
    ///
    /// ```no_run
    /// # fn demo(session: smartcar::Session) {
    /// println!("client {}", session.client().client_id());
    /// # }
    /// ```
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The store key. It may be a credential (a session-cookie value) or personal data: to
    /// log it, log [`crate::store_key_hash`] of it, as the SDK does.
    ///
    /// ```no_run
    /// # fn demo(session: smartcar::Session) {
    /// println!("tokens stored under {}", session.key());
    /// # }
    /// ```
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The tokens as last seen (they may be about to expire).
    ///
    /// ```no_run
    /// # fn demo(session: smartcar::Session) {
    /// if let Some(tokens) = session.tokens() {
    ///     println!("access token expires at {}", tokens.expires_at);
    /// }
    /// # }
    /// ```
    pub fn tokens(&self) -> Option<Tokens> {
        self.inner
            .cached
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A valid access token, refreshing first when it expires within the skew.
    ///
    /// ```no_run
    /// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    /// let token = session.access_token().await?;
    /// let header = format!("Bearer {}", token.secret());
    /// # let _ = header;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ReauthorizationRequired`] when the refresh token is expired or refused;
    /// [`Error::TokenStore`]; the errors of [`Client::refresh_tokens`].
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        self.ensure(None).await
    }

    /// A new access token after the platform refused `rejected` (401): refreshes unless another
    /// caller already replaced it. Used by the SDK's calls, which retry once after a 401.
    ///
    /// ```no_run
    /// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    /// let token = session.access_token().await?;
    /// // ... the platform answered 401 to a call made with `token`:
    /// let fresh = session.access_token_after_rejection(&token).await?;
    /// # let _ = fresh;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`access_token`](Self::access_token).
    pub async fn access_token_after_rejection(
        &self,
        rejected: &AccessToken,
    ) -> Result<AccessToken, Error> {
        self.ensure(Some(rejected)).await
    }

    async fn ensure(&self, rejected: Option<&AccessToken>) -> Result<AccessToken, Error> {
        let usable = |t: &Tokens| rejected.is_none_or(|r| t.access_token != *r);
        if let Some(token) = self.fresh_cached(usable) {
            return Ok(token);
        }
        let _guard = self.inner.refresh_lock.lock().await;
        // Someone may have refreshed while we waited for the lock.
        if let Some(token) = self.fresh_cached(usable) {
            return Ok(token);
        }
        // Another session or process may have refreshed: the store is the truth.
        let current = self.load_stored().await?;
        let now = self.inner.client.now();
        if !current.expires_within_at(now, self.inner.skew) && usable(&current) {
            self.set_cached(current.clone());
            return Ok(current.access_token);
        }
        // Refresh, single flight across every session and process sharing the store: wait for
        // the store's lock, then read again (whoever held it may have refreshed already).
        let lock = self.inner.store.lock_for_refresh(&self.inner.key).await?;
        let current = self.load_stored().await?;
        let now = self.inner.client.now();
        if !current.expires_within_at(now, self.inner.skew) && usable(&current) {
            self.release(lock).await;
            self.set_cached(current.clone());
            return Ok(current.access_token);
        }
        if current.is_refresh_expired_at(now) {
            return Err(Error::ReauthorizationRequired {
                reason: "the refresh token has expired (60 days)".to_owned(),
                source: None,
            });
        }
        let new = self
            .inner
            .client
            .refresh_tokens(&current.refresh_token)
            .await?;
        let adopted = match self
            .inner
            .store
            .compare_and_swap(&self.inner.key, &current.refresh_token, &new)
            .await?
        {
            CasOutcome::Swapped => new,
            // Someone else refreshed at the same time and saved first: theirs is the newest
            // pair the platform knows (ours came from the same refresh token within the grace
            // period, so it is the same pair or an equally valid one).
            CasOutcome::Conflict(Some(theirs)) => theirs,
            CasOutcome::Conflict(None) => {
                return Err(Error::ReauthorizationRequired {
                    reason: format!(
                        "the tokens of key {} were deleted during a refresh",
                        crate::store_key_hash(&self.inner.key)
                    ),
                    source: None,
                });
            }
        };
        self.release(lock).await;
        self.set_cached(adopted.clone());
        tracing::debug!(
            key_hash = %crate::store_key_hash(&self.inner.key),
            expires_at = %adopted.expires_at,
            "access token refreshed"
        );
        Ok(adopted.access_token)
    }

    async fn load_stored(&self) -> Result<Tokens, Error> {
        self.inner
            .store
            .load(&self.inner.key)
            .await?
            .ok_or_else(|| Error::ReauthorizationRequired {
                reason: format!(
                    "no tokens are stored under key {}",
                    crate::store_key_hash(&self.inner.key)
                ),
                source: None,
            })
    }

    /// Releases the store's refresh lock. The tokens are saved by then, so a failure to release
    /// (the store then releases it by itself: connection close, lease expiry) is only logged.
    async fn release(&self, lock: crate::store::RefreshLock) {
        if let Err(e) = lock.release().await {
            tracing::warn!(
                key_hash = %crate::store_key_hash(&self.inner.key),
                error = %e,
                "releasing the refresh lock failed"
            );
        }
    }

    /// The cached access token when it is not within the skew of expiry and `usable` accepts
    /// it (the hot path of every call: one read lock, one string clone).
    fn fresh_cached(&self, usable: impl Fn(&Tokens) -> bool) -> Option<AccessToken> {
        let now = self.inner.client.now();
        let cached = self.inner.cached.read().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|t| !t.expires_within_at(now, self.inner.skew) && usable(t))
            .map(|t| t.access_token.clone())
    }

    fn set_cached(&self, tokens: Tokens) {
        *self.inner.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(tokens);
    }
}

/// The application token of the client-credentials (M2M) flow, cached and renewed ahead of
/// expiry, once for all concurrent callers.
#[derive(Clone)]
pub struct ApplicationSession {
    inner: Arc<AppInner>,
}

struct AppInner {
    client: Client,
    skew: Duration,
    cached: RwLock<Option<ApplicationToken>>,
    lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for ApplicationSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplicationSession")
            .field(
                "token",
                &*self.inner.cached.read().unwrap_or_else(|e| e.into_inner()),
            )
            .finish_non_exhaustive()
    }
}

impl ApplicationSession {
    /// An application session for `client` (no request until the first token is needed).
    ///
    /// ```no_run
    /// # fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
    /// let app = smartcar::ApplicationSession::new(&client);
    /// let user = app.user("93b3ea2d-6a4a-4ea5-9d1b-3a5e2c8f0b71")?;
    /// # let _ = user;
    /// # Ok(()) }
    /// ```
    pub fn new(client: &Client) -> Self {
        ApplicationSession {
            inner: Arc::new(AppInner {
                client: client.clone(),
                skew: DEFAULT_REFRESH_SKEW,
                cached: RwLock::new(None),
                lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The client.
    ///
    /// ```no_run
    /// # fn demo(app: smartcar::ApplicationSession) {
    /// println!("client {}", app.client().client_id());
    /// # }
    /// ```
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// A valid application token, requesting a new one when needed.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// let token = app.token().await?;
    /// let header = format!("Bearer {}", token.secret());
    /// # let _ = header;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The errors of [`Client::request_application_token`].
    pub async fn token(&self) -> Result<ApplicationTokenValue, Error> {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let _guard = self.inner.lock.lock().await;
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let token = self.inner.client.request_application_token().await?;
        let value = token.token.clone();
        *self.inner.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(value)
    }

    /// Requests a new application token even if the cached one looks valid (after the platform
    /// refused it with 401). Concurrent callers share one request.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// let token = app.renew().await?;
    /// # let _ = token;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The errors of [`Client::request_application_token`].
    pub async fn renew(&self) -> Result<ApplicationTokenValue, Error> {
        let stale = self.fresh();
        let _guard = self.inner.lock.lock().await;
        if let Some(current) = self.fresh().filter(|c| Some(c) != stale.as_ref()) {
            return Ok(current);
        }
        let token = self.inner.client.request_application_token().await?;
        let value = token.token.clone();
        *self.inner.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(value)
    }

    fn fresh(&self) -> Option<ApplicationTokenValue> {
        let now = self.inner.client.now();
        let cached = self.inner.cached.read().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|t| !t.expires_within_at(now, self.inner.skew))
            .map(|t| t.token.clone())
    }
}
