//! Where a user's tokens are kept between calls and restarts.
//!
//! - [`MemoryTokenStore`]: in memory, one process, lost on restart.
//! - `SqliteTokenStore` (feature `sqlite`): an SQLite file, durable, one process (or a few on one
//!   machine).
//! - `PostgresTokenStore` (feature `postgres`): several instances of a service; a refresh is
//!   single-flight across all of them (a PostgreSQL advisory lock per key).
//! - `TokenCipher` (feature `encryption`): the SQL stores can encrypt the token values at rest,
//!   and with `require_encryption` refuse rows stored in clear.
//!
//! Store keys may be credentials (a session-cookie value) or personal data (a user id): the SDK
//! never writes a key into a log line or an error, only [`store_key_hash`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::Error;
use crate::tokens::{RefreshToken, Tokens};

#[cfg(feature = "encryption")]
mod cipher;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "encryption")]
pub use cipher::{ClearTokensRefused, TokenCipher};
#[cfg(feature = "postgres")]
pub use postgres::PostgresTokenStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::LockTimeouts;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteTokenStore;

/// A short, stable pseudonym of a store key: the first 8 hex digits of the SHA-256 of the key's
/// UTF-8 bytes. It is what the SDK puts into log lines (the `key_hash` field) and error
/// messages instead of the key, which may be a credential (a session-cookie value) or
/// personal data (a user id).
///
/// The same key gives the same hash in every process and release, so a log line can be
/// matched to a key: `printf %s "$KEY" | sha256sum | cut -c1-8`. It is a pseudonym, not a
/// secret: a key drawn from a small set (a sequential user id) can be found by hashing the
/// candidates. A high-entropy key (a random session id) cannot be recovered from it.
///
/// ```
/// assert_eq!(smartcar::store::store_key_hash("user-42").len(), 8);
/// assert_eq!(smartcar::store::store_key_hash("abc"), "ba7816bf");
/// assert!(!smartcar::store::store_key_hash("session-cookie-value").contains("session"));
/// ```
pub fn store_key_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..4])
}

/// A boxed `Send` future (token stores are used through `dyn TokenStore`).
///
/// ```no_run
/// use smartcar::Error;
/// use smartcar::store::BoxFuture;
/// use smartcar::tokens::Tokens;
///
/// fn load_nothing<'a>(_key: &'a str) -> BoxFuture<'a, Result<Option<Tokens>, Error>> {
///     Box::pin(async { Ok(None) })
/// }
/// # let _ = load_nothing;
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`TokenStore::compare_and_swap`] did.
///
/// ```no_run
/// # async fn demo(store: &dyn smartcar::store::TokenStore, old: smartcar::tokens::RefreshToken, new: smartcar::tokens::Tokens) -> Result<(), smartcar::Error> {
/// use smartcar::store::CasOutcome;
///
/// match store.compare_and_swap("user-42", &old, &new).await? {
///     CasOutcome::Swapped => println!("saved"),
///     CasOutcome::Conflict(current) => println!("someone refreshed first: {current:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The stored tokens were the expected ones and are replaced.
    Swapped,
    /// The stored tokens were not the expected ones (someone else refreshed first, or they were
    /// deleted); nothing changed. Carries what is stored now.
    Conflict(Option<Tokens>),
}

/// Keeps users' tokens, keyed by a string of the application's choosing (its own user id, the
/// Smartcar user id, a vehicle id…).
///
/// Refresh tokens rotate: after a refresh, only the new refresh token works (after a short
/// grace period). A store must therefore never lose the newest tokens: [`crate::Session`] saves
/// them with [`compare_and_swap`](Self::compare_and_swap) *before* it uses the new access token,
/// so a crash right after a refresh leaves the store holding a working refresh token.
///
/// [`MemoryTokenStore`] ships for tests and single processes; with the `sqlite` and `postgres`
/// features, `SqliteTokenStore` and `PostgresTokenStore` are durable (the crate docs say how
/// to choose). Or implement it over your own database: the four required methods, and
/// [`lock_for_refresh`](Self::lock_for_refresh) for single-flight refresh across processes.
///
/// ```no_run
/// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
/// use std::sync::Arc;
/// use smartcar::Session;
/// use smartcar::store::{MemoryTokenStore, TokenStore};
///
/// let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new()); // or your database
/// if let Some(tokens) = store.load("user-42").await? {
///     println!("refresh token expires {}", tokens.refresh_expires_at);
/// }
/// let session = Session::resume(&client, store, "user-42").await?;
/// # let _ = session;
/// # Ok(()) }
/// ```
pub trait TokenStore: Send + Sync + 'static {
    /// The tokens stored under `key`.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Tokens>, Error>>;

    /// Stores `tokens` under `key` unconditionally (after a code exchange).
    fn save<'a>(&'a self, key: &'a str, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), Error>>;

    /// Atomically replaces the tokens under `key` with `new`, but only if the stored refresh
    /// token is still `expected`.
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: &'a RefreshToken,
        new: &'a Tokens,
    ) -> BoxFuture<'a, Result<CasOutcome, Error>>;

    /// Removes the tokens under `key` (after a disconnect, or when the user must reconnect).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Waits until no one else (another [`crate::Session`], another process) is refreshing the
    /// tokens under `key`, and returns a lock that keeps the others waiting until it is
    /// released or dropped. [`crate::Session`] holds it around load → refresh →
    /// compare-and-swap, so that across every instance of a service only one refresh is sent
    /// per expiry and the others read the new tokens instead of refreshing again.
    ///
    /// A lock must not outlive its holder: a store releases it when the holder crashes (the
    /// PostgreSQL store's lock dies with its connection and after a lease timeout; the SQLite
    /// store's lease expires).
    ///
    /// The default does not lock ([`RefreshLock::unlocked`]): concurrent refreshes are then
    /// only reconciled by [`compare_and_swap`](Self::compare_and_swap) (the loser adopts the
    /// winner's tokens), which is correct within the platform's grace period but sends one
    /// refresh per racing process.
    ///
    /// ```no_run
    /// # async fn demo(store: &dyn smartcar::store::TokenStore) -> Result<(), smartcar::Error> {
    /// let lock = store.lock_for_refresh("user-42").await?;
    /// // ... load, refresh, compare_and_swap ...
    /// lock.release().await?;
    /// # Ok(()) }
    /// ```
    fn lock_for_refresh<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<RefreshLock, Error>> {
        let _ = key;
        Box::pin(async { Ok(RefreshLock::unlocked()) })
    }
}

/// A lock held by a [`TokenStore`] implementation for [`TokenStore::lock_for_refresh`].
///
/// Dropping it must release the lock too (perhaps later, e.g. when a connection closes or a
/// lease expires); [`release`](Self::release) does so now and reports failures.
///
/// ```
/// use smartcar::Error;
/// use smartcar::store::{BoxFuture, HeldLock, RefreshLock};
///
/// struct Guard(tokio::sync::OwnedMutexGuard<()>);
///
/// impl HeldLock for Guard {
///     fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
///         Box::pin(async move { drop(self); Ok(()) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let mutex = std::sync::Arc::new(tokio::sync::Mutex::new(()));
/// let lock = RefreshLock::new(Guard(mutex.clone().lock_owned().await));
/// assert!(lock.is_held());
/// lock.release().await?;
/// assert!(mutex.try_lock().is_ok());
/// # Ok(()) }
/// ```
pub trait HeldLock: Send + 'static {
    /// Releases the lock now.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>>;
}

/// What [`TokenStore::lock_for_refresh`] returns: held until [`release`](Self::release)d or
/// dropped.
///
/// ```no_run
/// # async fn demo(store: &dyn smartcar::store::TokenStore) -> Result<(), smartcar::Error> {
/// let lock = store.lock_for_refresh("user-42").await?;
/// println!("cross-process lock: {}", lock.is_held());
/// drop(lock); // released too (the store may finish releasing it in the background)
/// # Ok(()) }
/// ```
#[must_use = "the lock is released as soon as it is dropped"]
pub struct RefreshLock {
    held: Option<Box<dyn HeldLock>>,
}

impl RefreshLock {
    /// No lock: what stores without cross-process coordination return.
    ///
    /// ```
    /// assert!(!smartcar::store::RefreshLock::unlocked().is_held());
    /// ```
    pub fn unlocked() -> Self {
        RefreshLock { held: None }
    }

    /// A held lock (for [`TokenStore`] implementations).
    ///
    /// ```no_run
    /// # fn demo(guard: impl smartcar::store::HeldLock) {
    /// let lock = smartcar::store::RefreshLock::new(guard);
    /// # let _ = lock;
    /// # }
    /// ```
    pub fn new(held: impl HeldLock) -> Self {
        RefreshLock {
            held: Some(Box::new(held)),
        }
    }

    /// Whether this is a real lock (not [`unlocked`](Self::unlocked)).
    ///
    /// ```
    /// assert!(!smartcar::store::RefreshLock::unlocked().is_held());
    /// ```
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Releases the lock now.
    ///
    /// ```no_run
    /// # async fn demo(lock: smartcar::store::RefreshLock) -> Result<(), smartcar::Error> {
    /// lock.release().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TokenStore`] when the store could not release it cleanly (it is then released
    /// by the store's own fallback: connection close, lease expiry).
    pub async fn release(mut self) -> Result<(), Error> {
        match self.held.take() {
            Some(held) => held.release().await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for RefreshLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshLock")
            .field("held", &self.is_held())
            .finish()
    }
}

/// One async mutex per key, for locks within a process.
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    pub(crate) async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Forget the mutexes nobody holds or waits for, so the map stays as small as the
            // number of keys being refreshed.
            if locks.len() > 64 {
                locks.retain(|_, m| Arc::strong_count(m) > 1);
            }
            locks.entry(key.to_owned()).or_default().clone()
        };
        mutex.lock_owned().await
    }
}

struct MutexHeld(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

impl HeldLock for MutexHeld {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}

/// A [`RefreshLock`] over an in-process mutex guard.
pub(crate) fn process_lock(guard: tokio::sync::OwnedMutexGuard<()>) -> RefreshLock {
    RefreshLock::new(MutexHeld(guard))
}

/// An in-memory [`TokenStore`]: for tests, examples and single-process programs that can
/// afford to lose tokens on restart. Its [`lock_for_refresh`](TokenStore::lock_for_refresh) is
/// a mutex per key, so several [`crate::Session`]s over one store and key in one process
/// refresh once.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), smartcar::Error> {
/// use smartcar::store::{MemoryTokenStore, TokenStore};
/// let store = MemoryTokenStore::new();
/// assert!(store.load("alice").await?.is_none());
/// # Ok(()) }
/// ```
///
/// `Debug` shows how many keys it holds, never the keys (they may be credentials) or tokens.
#[derive(Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<String, Tokens>>,
    locks: KeyedLocks,
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("keys", &self.map().len())
            .finish_non_exhaustive()
    }
}

impl MemoryTokenStore {
    /// An empty store.
    ///
    /// ```no_run
    /// let store = std::sync::Arc::new(smartcar::store::MemoryTokenStore::new());
    /// # let _ = store;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tokens>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TokenStore for MemoryTokenStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Tokens>, Error>> {
        let found = self.map().get(key).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(&'a self, key: &'a str, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), Error>> {
        self.map().insert(key.to_owned(), tokens.clone());
        Box::pin(async { Ok(()) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: &'a RefreshToken,
        new: &'a Tokens,
    ) -> BoxFuture<'a, Result<CasOutcome, Error>> {
        let mut map = self.map();
        let outcome = match map.get(key) {
            Some(current) if current.refresh_token == *expected => {
                map.insert(key.to_owned(), new.clone());
                CasOutcome::Swapped
            }
            other => CasOutcome::Conflict(other.cloned()),
        };
        drop(map);
        Box::pin(async move { Ok(outcome) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.map().remove(key);
        Box::pin(async { Ok(()) })
    }

    fn lock_for_refresh<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<RefreshLock, Error>> {
        Box::pin(async move { Ok(process_lock(self.locks.lock(key).await)) })
    }
}
