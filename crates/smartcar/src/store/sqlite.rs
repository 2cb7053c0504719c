//! The SQLite token store (feature `sqlite`): durable tokens for one process.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor, Row};

use super::sql::{Clear, Codec, LockTimeouts, db_error, fingerprint, millis, of_key, store_error};
use super::{BoxFuture, CasOutcome, HeldLock, KeyedLocks, RefreshLock, TokenStore};
use crate::Error;
use crate::tokens::{RefreshToken, Tokens};

/// The migrations shipped in the crate (`migrations/sqlite/`), in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "smartcar_tokens",
    include_str!("../../migrations/sqlite/0001_smartcar_tokens.sql"),
)];

/// A [`TokenStore`] in an SQLite file: embedded, no server to run, the durable default for a
/// service with one process.
///
/// - **Tables**: `smartcar_tokens`, `smartcar_refresh_leases` and `smartcar_schema_migrations`,
///   created by [`migrate`](Self::migrate) from the SQL shipped in the crate
///   (`migrations/sqlite/`). [`open`](Self::open) migrates for you.
/// - The file is opened in WAL mode with a 5-second busy timeout, so readers never block the
///   writer.
/// - **File permissions** (Unix): [`open`](Self::open) creates the file `0600` (owner read and
///   write only); SQLite gives its `-wal` and `-shm` files the same mode. An existing file (or
///   `-wal`/`-shm`) that group or others may access is tightened to owner-only, with a warning
///   in the log; if that fails (another owner), `open` fails rather than keep tokens readable.
///   To share the file with a group on purpose (a backup agent), open the pool yourself and use
///   [`from_pool`](Self::from_pool), which leaves permissions alone.
/// - **Compare-and-swap** is one `UPDATE … WHERE key = ? AND refresh_fingerprint = ?`
///   (SHA-256 of the expected refresh token).
/// - **Single-flight refresh**: within the process, a mutex per key; across processes sharing
///   the file, a *lease* row in `smartcar_refresh_leases` (insert, or take over an expired
///   one; waiters poll every 10–100 ms). A crashed holder's lease expires after
///   [`LockTimeouts::lease`]. For several machines, use `PostgresTokenStore`.
/// - **Encryption at rest**: see [`with_cipher`](Self::with_cipher) (feature `encryption`),
///   and `require_encryption` to refuse rows stored in clear once every row is encrypted.
/// - **Store keys** appear in its errors only as [`crate::store_key_hash`].
///
/// ```no_run
/// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
/// use std::sync::Arc;
/// use smartcar::Session;
/// use smartcar::store::SqliteTokenStore;
///
/// let store = SqliteTokenStore::open("tokens.db").await?; // created and migrated if needed
/// let session = Session::resume(&client, Arc::new(store), "user-42").await?;
/// # let _ = session;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteTokenStore {
    pool: SqlitePool,
    codec: Codec,
    timeouts: LockTimeouts,
    locks: Arc<KeyedLocks>,
}

impl fmt::Debug for SqliteTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTokenStore")
            .field("encrypted", &self.codec.encrypted())
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl SqliteTokenStore {
    /// Opens (creating it if needed) the database file at `path` and applies the migrations.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), smartcar::Error> {
    /// let store = smartcar::store::SqliteTokenStore::open("/var/lib/myapp/tokens.db").await?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TokenStore`] when the file cannot be opened or created, its permissions cannot
    /// be restricted to its owner, or a migration fails.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        #[cfg(unix)]
        owner_only(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(db_error("cannot open the SQLite database"))?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over an existing pool (the application's own). Call
    /// [`migrate`](Self::migrate) once before use.
    ///
    /// ```no_run
    /// # async fn demo(pool: smartcar::store::sqlx::SqlitePool) -> Result<(), smartcar::Error> {
    /// let store = smartcar::store::SqliteTokenStore::from_pool(pool);
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub fn from_pool(pool: SqlitePool) -> Self {
        SqliteTokenStore {
            pool,
            codec: Codec::default(),
            timeouts: LockTimeouts::default(),
            locks: Arc::default(),
        }
    }

    /// This store, encrypting the token values it writes with `cipher` (see
    /// [`TokenCipher`](crate::store::TokenCipher)). Rows written in clear remain readable, unless
    /// [`require_encryption`](Self::require_encryption) is set too.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), smartcar::Error> {
    /// let cipher = smartcar::store::TokenCipher::from_hex(&std::env::var("TOKEN_KEY").unwrap())?;
    /// let store = smartcar::store::SqliteTokenStore::open("tokens.db").await?.with_cipher(cipher);
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "encryption")]
    pub fn with_cipher(mut self, cipher: super::TokenCipher) -> Self {
        self.codec.cipher = Some(cipher);
        self
    }

    /// This store, refusing rows stored in clear: `load` (and the read-back of a
    /// compare-and-swap) returns [`Error::TokenStore`] with a [`ClearTokensRefused`](crate::store::ClearTokensRefused)
    /// source instead of the tokens. Use it with [`with_cipher`](Self::with_cipher) once
    /// every row is encrypted ([`encrypt_clear_rows`](Self::encrypt_clear_rows)), so that
    /// someone who can write to the database but lacks the key cannot plant tokens of their
    /// choosing, and a writer that forgot the cipher is noticed. Without a cipher, every save
    /// fails with [`Error::Configuration`].
    ///
    /// ```no_run
    /// # async fn demo(cipher: smartcar::store::TokenCipher) -> Result<(), smartcar::Error> {
    /// let store = smartcar::store::SqliteTokenStore::open("tokens.db").await?.with_cipher(cipher);
    /// store.encrypt_clear_rows().await?; // once, after turning encryption on
    /// let store = store.require_encryption();
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "encryption")]
    pub fn require_encryption(mut self) -> Self {
        self.codec.require_encryption = true;
        self
    }

    /// Encrypts every row stored in clear with this store's cipher (rows written before
    /// encryption was turned on), and returns how many it encrypted. Idempotent; safe while
    /// the service runs (a row written meanwhile is left to its writer).
    ///
    /// ```no_run
    /// # async fn demo(store: smartcar::store::SqliteTokenStore) -> Result<(), smartcar::Error> {
    /// let encrypted = store.encrypt_clear_rows().await?;
    /// println!("{encrypted} rows encrypted");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] without a cipher ([`with_cipher`](Self::with_cipher));
    /// [`Error::TokenStore`] when the database fails or a clear row cannot be decoded.
    #[cfg(feature = "encryption")]
    pub async fn encrypt_clear_rows(&self) -> Result<u64, Error> {
        super::sql::require_cipher(&self.codec)?;
        let mut encrypted = 0;
        loop {
            let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                "SELECT key, tokens FROM smartcar_tokens \
                 WHERE substr(tokens, 1, 1) = X'00' ORDER BY key LIMIT 200",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read the rows stored in clear"))?;
            if rows.is_empty() {
                return Ok(encrypted);
            }
            let mut done = 0;
            for (key, clear) in rows {
                let tokens = self.codec.open(&key, &clear, Clear::Allowed)?;
                let sealed = self.codec.seal(&key, &tokens)?;
                // Only if nobody rewrote the row meanwhile.
                done += sqlx::query(
                    "UPDATE smartcar_tokens SET tokens = ?1, version = version + 1, \
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
                     WHERE key = ?2 AND tokens = ?3",
                )
                .bind(sealed)
                .bind(&key)
                .bind(&clear)
                .execute(&self.pool)
                .await
                .map_err(db_error(of_key("cannot encrypt the tokens", &key)))?
                .rows_affected();
            }
            encrypted += done;
            if done == 0 {
                // Every row of the batch was rewritten by someone else (in clear again: a
                // writer without the cipher). Stop rather than race it forever.
                return Ok(encrypted);
            }
        }
    }

    /// This store with other refresh-lock timeouts (default: lease 30 s, wait 60 s).
    ///
    /// ```no_run
    /// # fn demo(store: smartcar::store::SqliteTokenStore) {
    /// use std::time::Duration;
    /// let store = store.with_lock_timeouts(smartcar::store::LockTimeouts {
    ///     lease: Duration::from_secs(10),
    ///     wait: Duration::from_secs(20),
    /// });
    /// # let _ = store;
    /// # }
    /// ```
    pub fn with_lock_timeouts(mut self, timeouts: LockTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The pool.
    ///
    /// ```no_run
    /// # fn demo(store: smartcar::store::SqliteTokenStore) {
    /// println!("{} connections open", store.pool().size());
    /// # }
    /// ```
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or upgrades the tables (idempotent; one writer at a time).
    ///
    /// ```no_run
    /// # async fn demo(store: smartcar::store::SqliteTokenStore) -> Result<(), smartcar::Error> {
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TokenStore`] when a statement fails (nothing of that migration is applied).
    pub async fn migrate(&self) -> Result<(), Error> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(db_error("migrate: cannot connect"))?;
        // IMMEDIATE: take the write lock now, so concurrent migrations run one after another.
        (&mut *conn)
            .execute("BEGIN IMMEDIATE")
            .await
            .map_err(db_error("migrate: cannot begin"))?;
        let result = async {
            (&mut *conn)
                .execute(
                    "CREATE TABLE IF NOT EXISTS smartcar_schema_migrations (
                    version INTEGER PRIMARY KEY NOT NULL,
                    description TEXT NOT NULL,
                    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                )",
                )
                .await
                .map_err(db_error(
                    "migrate: cannot create smartcar_schema_migrations",
                ))?;
            let applied: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM smartcar_schema_migrations")
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_error("migrate: cannot read smartcar_schema_migrations"))?;
            for (version, description, sql) in MIGRATIONS {
                if applied.contains(version) {
                    continue;
                }
                (&mut *conn).execute(*sql).await.map_err(db_error(format!(
                    "migration {version} ({description}) failed"
                )))?;
                sqlx::query(
                    "INSERT INTO smartcar_schema_migrations (version, description) VALUES (?, ?)",
                )
                .bind(version)
                .bind(description)
                .execute(&mut *conn)
                .await
                .map_err(db_error("migrate: cannot record the migration"))?;
            }
            Ok::<(), Error>(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = (&mut *conn).execute(end).await;
        result?;
        ended
            .map(|_| ())
            .map_err(db_error("migrate: cannot commit"))
    }

    async fn load_row(&self, key: &str) -> Result<Option<Tokens>, Error> {
        let row = sqlx::query("SELECT tokens FROM smartcar_tokens WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error(of_key("cannot load the tokens", key)))?;
        match row {
            None => Ok(None),
            Some(row) => {
                let bytes: Vec<u8> = row
                    .try_get(0)
                    .map_err(db_error("unexpected smartcar_tokens row"))?;
                self.codec.open(key, &bytes, Clear::AsConfigured).map(Some)
            }
        }
    }

    async fn lock(&self, key: &str) -> Result<RefreshLock, Error> {
        // Sessions of this process queue on a mutex; the lease row is for other processes.
        let local = tokio::time::timeout(self.timeouts.wait, self.locks.lock(key))
            .await
            .map_err(|_| waited(key, self.timeouts.wait))?;
        let holder = holder_id();
        let deadline = tokio::time::Instant::now() + self.timeouts.wait;
        let mut pause = Duration::from_millis(10);
        loop {
            let now = chrono::Utc::now();
            let until = now
                + chrono::Duration::from_std(self.timeouts.lease)
                    .unwrap_or(chrono::Duration::seconds(30));
            let taken = sqlx::query(
                "INSERT INTO smartcar_refresh_leases (key, holder, expires_at_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, \
                 expires_at_ms = excluded.expires_at_ms \
                 WHERE smartcar_refresh_leases.expires_at_ms <= ?4",
            )
            .bind(key)
            .bind(&holder)
            .bind(millis(until))
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .map_err(db_error("refresh lock: cannot take the lease"))?;
            if taken.rows_affected() == 1 {
                return Ok(RefreshLock::new(SqliteHeld {
                    lease: Some(Lease {
                        pool: self.pool.clone(),
                        key: key.to_owned(),
                        holder,
                    }),
                    _local: local,
                }));
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(waited(key, self.timeouts.wait));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

/// Creates the database file `0600` if it is missing, and takes group and other access away
/// from an existing one and from its `-wal` and `-shm` files (`:memory:` and `file:` URIs are
/// left to SQLite).
#[cfg(unix)]
fn owner_only(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let name = path.as_os_str();
    if name.is_empty() || name == ":memory:" || name.as_encoded_bytes().starts_with(b"file:") {
        return Ok(());
    }
    let failed = |what: &str, e: std::io::Error| Error::TokenStore {
        message: format!(
            "{what} the SQLite database file {}: check the directory exists and is writable by this user",
            path.display()
        ),
        source: Some(Box::new(e)),
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed("cannot create", e)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        let Ok(meta) = std::fs::metadata(file) else {
            continue; // -wal and -shm exist only while the database is open
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 == 0 {
            continue;
        }
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(|e| failed("cannot restrict to its owner the permissions of", e))?;
        tracing::warn!(
            file = %file.display(),
            was = format_args!("{:o}", mode & 0o777),
            now = format_args!("{:o}", mode & 0o700),
            "the token database was readable by group or others: restricted it to its owner"
        );
    }
    Ok(())
}

fn waited(key: &str, wait: Duration) -> Error {
    store_error(format!(
        "waited {wait:?} for another process to finish refreshing the tokens of key {}",
        super::store_key_hash(key)
    ))
}

/// Unique enough across processes and time: pid, a per-process counter, the clock.
fn holder_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

struct Lease {
    pool: SqlitePool,
    key: String,
    holder: String,
}

impl Lease {
    async fn end(self) -> Result<(), Error> {
        sqlx::query("DELETE FROM smartcar_refresh_leases WHERE key = ? AND holder = ?")
            .bind(&self.key)
            .bind(&self.holder)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_error("refresh lock: cannot end the lease"))
    }
}

/// A held lease (and this process's mutex for the key).
struct SqliteHeld {
    lease: Option<Lease>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl HeldLock for SqliteHeld {
    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        let lease = self.lease.take();
        Box::pin(async move {
            let result = match lease {
                Some(lease) => lease.end().await,
                None => Ok(()),
            };
            drop(self);
            result
        })
    }
}

impl Drop for SqliteHeld {
    fn drop(&mut self) {
        // Dropped without `release`: end the lease in the background when a runtime is
        // there; otherwise it expires by itself.
        if let Some(lease) = self.lease.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = lease.end().await;
            });
        }
    }
}

impl TokenStore for SqliteTokenStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Tokens>, Error>> {
        Box::pin(self.load_row(key))
    }

    fn save<'a>(&'a self, key: &'a str, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let bytes = self.codec.seal(key, tokens)?;
            sqlx::query(
                "INSERT INTO smartcar_tokens \
                 (key, tokens, refresh_fingerprint, expires_at_ms, refresh_expires_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, \
                 refresh_fingerprint = excluded.refresh_fingerprint, \
                 expires_at_ms = excluded.expires_at_ms, \
                 refresh_expires_at_ms = excluded.refresh_expires_at_ms, \
                 version = smartcar_tokens.version + 1, \
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(key)
            .bind(bytes)
            .bind(fingerprint(&tokens.refresh_token))
            .bind(millis(tokens.expires_at))
            .bind(millis(tokens.refresh_expires_at))
            .execute(&self.pool)
            .await
            .map_err(db_error(of_key("cannot save the tokens", key)))?;
            Ok(())
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: &'a RefreshToken,
        new: &'a Tokens,
    ) -> BoxFuture<'a, Result<CasOutcome, Error>> {
        Box::pin(async move {
            let bytes = self.codec.seal(key, new)?;
            let done = sqlx::query(
                "UPDATE smartcar_tokens SET tokens = ?3, refresh_fingerprint = ?4, \
                 expires_at_ms = ?5, refresh_expires_at_ms = ?6, version = version + 1, \
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
                 WHERE key = ?1 AND refresh_fingerprint = ?2",
            )
            .bind(key)
            .bind(fingerprint(expected))
            .bind(bytes)
            .bind(fingerprint(&new.refresh_token))
            .bind(millis(new.expires_at))
            .bind(millis(new.refresh_expires_at))
            .execute(&self.pool)
            .await
            .map_err(db_error(of_key("cannot update the tokens", key)))?;
            if done.rows_affected() == 1 {
                Ok(CasOutcome::Swapped)
            } else {
                Ok(CasOutcome::Conflict(self.load_row(key).await?))
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM smartcar_tokens WHERE key = ?")
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(db_error(of_key("cannot delete the tokens", key)))?;
            Ok(())
        })
    }

    fn lock_for_refresh<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<RefreshLock, Error>> {
        Box::pin(self.lock(key))
    }
}
