//! The PostgreSQL token store (feature `postgres`): for a service with several instances.

use std::fmt;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, Row};

use super::sql::{
    Clear, Codec, LockTimeouts, db_error, fingerprint, lock_id, millis, of_key, store_error,
};
use super::{BoxFuture, CasOutcome, HeldLock, RefreshLock, TokenStore};
use crate::Error;
use crate::tokens::{RefreshToken, Tokens};

/// The migrations shipped in the crate (`migrations/postgres/`), in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "smartcar_tokens",
    include_str!("../../migrations/postgres/0001_smartcar_tokens.sql"),
)];

/// Advisory-lock id serialising concurrent `migrate` calls.
const MIGRATION_LOCK: i64 = 0x736d_6172_7463_6172; // "smartcar"

/// A [`TokenStore`] in PostgreSQL, for a service that runs several instances.
///
/// - **Tables**: `smartcar_tokens` (one row per key) and `smartcar_schema_migrations`, created
///   by [`migrate`](Self::migrate) from the SQL shipped in the crate (`migrations/postgres/`).
///   The crate keeps its own migration table, so it does not interfere with the application's
///   own migrations.
/// - **Compare-and-swap** is one `UPDATE … WHERE key = $1 AND refresh_fingerprint = $2`
///   (SHA-256 of the expected refresh token), atomic under PostgreSQL's row locking.
/// - **Cross-process single-flight refresh**: [`lock_for_refresh`](TokenStore::lock_for_refresh)
///   opens a dedicated connection (not from the pool, so a held lock can never starve the
///   pool), begins a transaction and takes `pg_advisory_xact_lock(id)`, where `id` is 64 bits of
///   SHA-256 of the key. Advisory locks were chosen over `SELECT … FOR UPDATE` because the
///   lock must be held across the HTTP refresh *and* let the compare-and-swap write the row
///   from another connection, and over a lease column because waiters are woken by the server
///   at once instead of polling. The lock is released by `COMMIT` when the refresh is done;
///   if the holder crashes, its connection closes and the server releases the lock; if the
///   holder hangs, `idle_in_transaction_session_timeout` (the [`LockTimeouts::lease`]) makes
///   the server end its session. Waiters give up after [`LockTimeouts::wait`] (`lock_timeout`).
/// - **Encryption at rest**: see [`with_cipher`](Self::with_cipher) (feature `encryption`),
///   and `require_encryption` to refuse rows stored in clear once every row is encrypted.
/// - **Store keys** appear in its errors only as [`crate::store_key_hash`].
/// - **TLS**: this crate enables no TLS backend of `sqlx` (so that an application that does
///   not need one compiles none). Three ways to keep the connection private:
///   - *TLS from `sqlx`*: add `sqlx` to your own `Cargo.toml` with a TLS feature, e.g.
///     `sqlx = { version = "0.8", default-features = false, features = ["tls-rustls-ring-native-roots"] }`
///     (rustls with the system's roots; `tls-rustls-aws-lc-rs` for rustls with webpki roots,
///     `tls-native-tls` for OpenSSL). Cargo unifies features, so the `sqlx` this store uses
///     gains TLS. Then ask for a verified connection in the URL:
///     `postgres://app@db.example.com/app?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`.
///     Use `verify-full` (or `require`), never the default `prefer`: without a TLS feature a
///     `verify-full` URL fails to connect, while `prefer` silently connects in clear.
///   - *A Unix socket* on the same machine: `postgres:///app?host=/var/run/postgresql`.
///   - *A sidecar or tunnel* that terminates TLS (e.g. `cloud-sql-proxy`, `pgbouncer` with
///     `server_tls_sslmode = verify-full`, an SSH tunnel): connect to it over loopback.
///
/// `Debug` shows neither the connection options (they hold the password) nor tokens.
///
/// ```no_run
/// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
/// use std::sync::Arc;
/// use smartcar::Session;
/// use smartcar::store::PostgresTokenStore;
///
/// let store = PostgresTokenStore::connect("postgres://app@127.0.0.1/app").await?; // + migrate
/// let session = Session::resume(&client, Arc::new(store), "user-42").await?;
/// # let _ = session;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresTokenStore {
    pool: PgPool,
    codec: Codec,
    timeouts: LockTimeouts,
}

impl fmt::Debug for PostgresTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTokenStore")
            .field("encrypted", &self.codec.encrypted())
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl PostgresTokenStore {
    /// Connects a pool (at most 10 connections) to `url` and applies the migrations.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), smartcar::Error> {
    /// let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set");
    /// let store = smartcar::store::PostgresTokenStore::connect(&url).await?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TokenStore`] when the URL is invalid, the server cannot be reached or the
    /// migrations fail.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| store_error("invalid PostgreSQL URL"))?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(options)
            .await
            .map_err(db_error("cannot connect to PostgreSQL"))?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over an existing pool (the application's own). Call
    /// [`migrate`](Self::migrate) once before use.
    ///
    /// ```no_run
    /// # async fn demo(pool: smartcar::store::sqlx::PgPool) -> Result<(), smartcar::Error> {
    /// let store = smartcar::store::PostgresTokenStore::from_pool(pool);
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresTokenStore {
            pool,
            codec: Codec::default(),
            timeouts: LockTimeouts::default(),
        }
    }

    /// This store, encrypting the token values it writes with `cipher` (see
    /// [`TokenCipher`](crate::store::TokenCipher)). Rows written in clear remain readable, unless
    /// [`require_encryption`](Self::require_encryption) is set too.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), smartcar::Error> {
    /// let cipher = smartcar::store::TokenCipher::from_hex(&std::env::var("TOKEN_KEY").unwrap())?;
    /// let store = smartcar::store::PostgresTokenStore::connect("postgres://app@127.0.0.1/app")
    ///     .await?
    ///     .with_cipher(cipher);
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
    /// someone who can write to the table but lacks the key cannot plant tokens of their
    /// choosing, and an instance that forgot the cipher is noticed. Without a cipher, every
    /// save fails with [`Error::Configuration`].
    ///
    /// ```no_run
    /// # async fn demo(cipher: smartcar::store::TokenCipher) -> Result<(), smartcar::Error> {
    /// let store = smartcar::store::PostgresTokenStore::connect("postgres://app@127.0.0.1/app")
    ///     .await?
    ///     .with_cipher(cipher);
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
    /// # async fn demo(store: smartcar::store::PostgresTokenStore) -> Result<(), smartcar::Error> {
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
                 WHERE substring(tokens FROM 1 FOR 1) = '\\x00'::bytea ORDER BY key LIMIT 200",
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
                    "UPDATE smartcar_tokens SET tokens = $1, version = version + 1, \
                     updated_at = now() WHERE key = $2 AND tokens = $3",
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
                // Every row of the batch was rewritten by someone else (in clear again: an
                // instance without the cipher). Stop rather than race it forever.
                return Ok(encrypted);
            }
        }
    }

    /// This store with other refresh-lock timeouts (default: lease 30 s, wait 60 s).
    ///
    /// ```no_run
    /// # fn demo(store: smartcar::store::PostgresTokenStore) {
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
    /// # fn demo(store: smartcar::store::PostgresTokenStore) {
    /// println!("{} connections open", store.pool().size());
    /// # }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades the tables (idempotent; concurrent calls from several instances
    /// are serialised by an advisory lock).
    ///
    /// ```no_run
    /// # async fn demo(store: smartcar::store::PostgresTokenStore) -> Result<(), smartcar::Error> {
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TokenStore`] when a statement fails (nothing of that migration is applied).
    pub async fn migrate(&self) -> Result<(), Error> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db_error("migrate: cannot begin"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db_error("migrate: cannot lock"))?;
        (&mut *tx)
            .execute(
                "CREATE TABLE IF NOT EXISTS smartcar_schema_migrations (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
            )
            .await
            .map_err(db_error(
                "migrate: cannot create smartcar_schema_migrations",
            ))?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM smartcar_schema_migrations")
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error("migrate: cannot read smartcar_schema_migrations"))?;
        for (version, description, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            (&mut *tx).execute(*sql).await.map_err(db_error(format!(
                "migration {version} ({description}) failed"
            )))?;
            sqlx::query(
                "INSERT INTO smartcar_schema_migrations (version, description) VALUES ($1, $2)",
            )
            .bind(version)
            .bind(description)
            .execute(&mut *tx)
            .await
            .map_err(db_error("migrate: cannot record the migration"))?;
        }
        tx.commit()
            .await
            .map_err(db_error("migrate: cannot commit"))
    }

    async fn load_row(&self, key: &str) -> Result<Option<Tokens>, Error> {
        let row = sqlx::query("SELECT tokens FROM smartcar_tokens WHERE key = $1")
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
        let options = self.pool.connect_options();
        let mut conn = options
            .connect()
            .await
            .map_err(db_error("refresh lock: cannot connect"))?;
        let ms = |d: std::time::Duration| d.as_millis().max(1).to_string();
        (&mut conn)
            .execute("BEGIN")
            .await
            .map_err(db_error("refresh lock: cannot begin"))?;
        sqlx::query(
            "SELECT set_config('lock_timeout', $1, true), \
             set_config('idle_in_transaction_session_timeout', $2, true)",
        )
        .bind(ms(self.timeouts.wait))
        .bind(ms(self.timeouts.lease))
        .execute(&mut conn)
        .await
        .map_err(db_error("refresh lock: cannot set its timeouts"))?;
        match sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_id(key))
            .execute(&mut conn)
            .await
        {
            Ok(_) => Ok(RefreshLock::new(PgHeld { conn })),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
                Err(store_error(format!(
                    "waited {:?} for another instance to finish refreshing the tokens of key {}",
                    self.timeouts.wait,
                    super::store_key_hash(key)
                )))
            }
            Err(e) => Err(db_error("refresh lock: cannot lock")(e)),
        }
    }
}

/// A held advisory lock: its connection, in a transaction. Dropping it closes the socket, which
/// ends the server session and releases the lock.
struct PgHeld {
    conn: PgConnection,
}

impl HeldLock for PgHeld {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        Box::pin(async move {
            let mut conn = self.conn;
            let committed = (&mut conn).execute("COMMIT").await;
            let _ = conn.close().await;
            committed.map(|_| ()).map_err(db_error(
                "refresh lock: the lease expired before the lock was released",
            ))
        })
    }
}

impl TokenStore for PostgresTokenStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Tokens>, Error>> {
        Box::pin(self.load_row(key))
    }

    fn save<'a>(&'a self, key: &'a str, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let bytes = self.codec.seal(key, tokens)?;
            sqlx::query(
                "INSERT INTO smartcar_tokens \
                 (key, tokens, refresh_fingerprint, expires_at_ms, refresh_expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, \
                 refresh_fingerprint = excluded.refresh_fingerprint, \
                 expires_at_ms = excluded.expires_at_ms, \
                 refresh_expires_at_ms = excluded.refresh_expires_at_ms, \
                 version = smartcar_tokens.version + 1, updated_at = now()",
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
                "UPDATE smartcar_tokens SET tokens = $3, refresh_fingerprint = $4, \
                 expires_at_ms = $5, refresh_expires_at_ms = $6, version = version + 1, \
                 updated_at = now() \
                 WHERE key = $1 AND refresh_fingerprint = $2",
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
            sqlx::query("DELETE FROM smartcar_tokens WHERE key = $1")
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
