//! The limiter's state in an SQLite file: survives restarts; processes on one machine share it
//! (each decision is one `BEGIN IMMEDIATE` transaction).

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow,
};
use sqlx::{Connection as _, Executor as _, Row as _};

use super::{AppState, Decision, LimiterStore, Limits, Step, VehicleState, store_error};
use crate::Error;
use crate::store::BoxFuture;

/// The limiter's state in an SQLite file (feature `sqlite`): buckets, cool-downs and each
/// vehicle's monthly budget survive restarts, and processes on one machine sharing the file
/// share them.
///
/// ```no_run
/// # async fn demo() -> Result<(), smartcar::Error> {
/// use std::sync::Arc;
/// use smartcar::limits::{Limits, MonthlyBudget, SqliteLimiterStore};
///
/// let store = SqliteLimiterStore::open("limits.db").await?;
/// let client = smartcar::Client::builder()
///     .client_id("8229df9f-91a0-4ff0-a1ae-a1f38ee24d07")
///     .limits(Limits::default().monthly_budget(MonthlyBudget::new(500)))
///     .limiter_store(Arc::new(store))
///     .build()?;
/// # let _ = client;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteLimiterStore {
    pool: SqlitePool,
}

const SELECT_VEHICLE: &str = "SELECT hits, cooldown_until_ms, month, used, exhausted FROM smartcar_limiter_vehicle WHERE scope = ? AND vehicle_id = ?";

const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS smartcar_limiter_app (
    scope TEXT PRIMARY KEY NOT NULL,
    tokens REAL,
    updated_ms INTEGER NOT NULL,
    cooldown_until_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS smartcar_limiter_vehicle (
    scope TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    hits TEXT NOT NULL,
    cooldown_until_ms INTEGER NOT NULL,
    month TEXT NOT NULL,
    used INTEGER NOT NULL,
    exhausted INTEGER NOT NULL,
    PRIMARY KEY (scope, vehicle_id)
);
";

impl SqliteLimiterStore {
    /// Opens (or creates) the file at `path` and creates the tables.
    ///
    /// # Errors
    ///
    /// [`Error::LimiterStore`] when the file cannot be opened or the tables created.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(store_error("cannot open the SQLite limiter database"))?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over an existing pool; call [`migrate`](Self::migrate) once before use.
    pub fn from_pool(pool: SqlitePool) -> Self {
        SqliteLimiterStore { pool }
    }

    /// Creates the tables (`smartcar_limiter_app`, `smartcar_limiter_vehicle`) if missing.
    ///
    /// # Errors
    ///
    /// [`Error::LimiterStore`] when the statements fail.
    pub async fn migrate(&self) -> Result<(), Error> {
        sqlx::raw_sql(MIGRATION)
            .execute(&self.pool)
            .await
            .map_err(store_error("cannot create the limiter tables"))?;
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn transact(
        &self,
        scope: &str,
        vehicle: Option<&str>,
        limits: &Limits,
        step: &Step,
    ) -> Result<Decision, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        // IMMEDIATE: the write lock from the start, so two processes never both read the
        // same state and both decide on it.
        (&mut *conn).execute("BEGIN IMMEDIATE").await?;
        let result = decide(&mut conn, scope, vehicle, limits, step).await;
        match result {
            Ok(decision) => {
                (&mut *conn).execute("COMMIT").await?;
                Ok(decision)
            }
            Err(e) => {
                if (&mut *conn).execute("ROLLBACK").await.is_err() {
                    // A connection in an unknown state is not given back to the pool.
                    let _ = conn.detach().close().await;
                }
                Err(e)
            }
        }
    }
}

/// Reads the rows, applies `step`, writes what changed (inside the caller's transaction).
async fn decide(
    conn: &mut SqliteConnection,
    scope: &str,
    vehicle: Option<&str>,
    limits: &Limits,
    step: &Step,
) -> Result<Decision, sqlx::Error> {
    let app_row = sqlx::query(
        "SELECT tokens, updated_ms, cooldown_until_ms FROM smartcar_limiter_app WHERE scope = ?",
    )
    .bind(scope)
    .fetch_optional(&mut *conn)
    .await?;
    let mut app = match app_row {
        Some(row) => AppState {
            tokens: row.try_get("tokens")?,
            updated_ms: row.try_get("updated_ms")?,
            cooldown_until_ms: row.try_get("cooldown_until_ms")?,
        },
        None => AppState::default(),
    };
    let before_app = app.clone();
    let mut state = match vehicle {
        None => None,
        Some(id) => {
            let row = sqlx::query(SELECT_VEHICLE)
                .bind(scope)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            Some(
                row.as_ref()
                    .map(vehicle_state)
                    .transpose()?
                    .unwrap_or_default(),
            )
        }
    };
    let before_vehicle = state.clone();
    let decision = step.apply(limits, &mut app, state.as_mut());
    if app != before_app {
        sqlx::query(
                    "INSERT INTO smartcar_limiter_app (scope, tokens, updated_ms, cooldown_until_ms) VALUES (?, ?, ?, ?)
                     ON CONFLICT (scope) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms, cooldown_until_ms = excluded.cooldown_until_ms",
                )
                .bind(scope)
                .bind(app.tokens)
                .bind(app.updated_ms)
                .bind(app.cooldown_until_ms)
                .execute(&mut *conn)
                .await?;
    }
    if let (Some(id), Some(v)) = (vehicle, &state)
        && state != before_vehicle
    {
        sqlx::query(
                    "INSERT INTO smartcar_limiter_vehicle (scope, vehicle_id, hits, cooldown_until_ms, month, used, exhausted) VALUES (?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (scope, vehicle_id) DO UPDATE SET hits = excluded.hits, cooldown_until_ms = excluded.cooldown_until_ms,
                       month = excluded.month, used = excluded.used, exhausted = excluded.exhausted",
                )
                .bind(scope)
                .bind(id)
                .bind(v.hits_text())
                .bind(v.cooldown_until_ms)
                .bind(&v.month)
                .bind(i64::from(v.used))
                .bind(i64::from(v.exhausted))
                .execute(&mut *conn)
                .await?;
    }
    Ok(decision)
}

/// A vehicle's row as its [`VehicleState`].
fn vehicle_state(row: &SqliteRow) -> Result<VehicleState, sqlx::Error> {
    Ok(VehicleState {
        hits: VehicleState::parse_hits(row.try_get("hits")?),
        cooldown_until_ms: row.try_get("cooldown_until_ms")?,
        month: row.try_get("month")?,
        used: u32::try_from(row.try_get::<i64, _>("used")?).unwrap_or(0),
        exhausted: row.try_get::<i64, _>("exhausted")? != 0,
    })
}

impl LimiterStore for SqliteLimiterStore {
    fn apply<'a>(
        &'a self,
        scope: &'a str,
        vehicle: Option<&'a str>,
        limits: &'a Limits,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Decision, Error>> {
        Box::pin(async move {
            self.transact(scope, vehicle, limits, step)
                .await
                .map_err(store_error("the SQLite limiter store failed"))
        })
    }

    fn vehicle<'a>(
        &'a self,
        scope: &'a str,
        vehicle: &'a str,
    ) -> BoxFuture<'a, Result<Option<VehicleState>, Error>> {
        Box::pin(async move {
            let row = sqlx::query(SELECT_VEHICLE)
                .bind(scope)
                .bind(vehicle)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error("cannot read the SQLite limiter store"))?;
            row.as_ref()
                .map(vehicle_state)
                .transpose()
                .map_err(store_error("cannot read the SQLite limiter store"))
        })
    }
}
