//! Where a user's tokens are kept between calls and restarts.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use crate::Error;
use crate::tokens::{RefreshToken, Tokens};

/// A boxed `Send` future (token stores are used through `dyn TokenStore`).
///
/// ```no_run
/// use smartcar::{BoxFuture, Error, Tokens};
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
/// # async fn demo(store: &dyn smartcar::TokenStore, old: smartcar::RefreshToken, new: smartcar::Tokens) -> Result<(), smartcar::Error> {
/// use smartcar::CasOutcome;
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
/// Implement it over your database; [`MemoryTokenStore`] ships for one process.
///
/// ```no_run
/// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
/// use std::sync::Arc;
/// use smartcar::{MemoryTokenStore, Session, TokenStore};
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
}

/// An in-memory [`TokenStore`]: for tests, examples and single-process programs that can
/// afford to lose tokens on restart.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), smartcar::Error> {
/// use smartcar::{MemoryTokenStore, TokenStore};
/// let store = MemoryTokenStore::new();
/// assert!(store.load("alice").await?.is_none());
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<String, Tokens>>,
}

impl MemoryTokenStore {
    /// An empty store.
    ///
    /// ```no_run
    /// let store = std::sync::Arc::new(smartcar::MemoryTokenStore::new());
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
}
