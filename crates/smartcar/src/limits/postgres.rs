//! The limiter's state in PostgreSQL: every instance of a service shares one application bucket
//! and one budget per vehicle. Each decision is one transaction that locks the application's
//! row, then the vehicle's (always in that order: no deadlock).

use sqlx::Row as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::{AppState, Decision, LimiterStore, Limits, Step, VehicleState, store_error};
use crate::Error;
use crate::store::BoxFuture;

/// The limiter's state in PostgreSQL (feature `postgres`), shared by every process and
/// instance of a service: together they never exceed the application bucket, and a vehicle's
/// budget is charged once per call whichever instance sends it.
///
/// ```no_run
/// # async fn demo() -> Result<(), smartcar::Error> {
/// use std::sync::Arc;
/// use smartcar::limits::{Limits, PostgresLimiterStore};
///
/// let store = PostgresLimiterStore::connect("postgres://app@db/app").await?;
/// let client = smartcar::Client::builder()
///     .client_id("8229df9f-91a0-4ff0-a1ae-a1f38ee24d07")
///     .limits(Limits::platform())
///     .limiter_store(Arc::new(store))
///     .build()?;
/// # let _ = client;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresLimiterStore {
    pool: PgPool,
}

const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS smartcar_limiter_app (
    scope TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION,
    updated_ms BIGINT NOT NULL DEFAULT 0,
    cooldown_until_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS smartcar_limiter_vehicle (
    scope TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    hits TEXT NOT NULL DEFAULT '',
    cooldown_until_ms BIGINT NOT NULL DEFAULT 0,
    month TEXT NOT NULL DEFAULT '',
    used BIGINT NOT NULL DEFAULT 0,
    exhausted BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (scope, vehicle_id)
);
";

impl PostgresLimiterStore {
    /// Connects to `url` and creates the tables.
    ///
    /// # Errors
    ///
    /// [`Error::LimiterStore`] when the URL is invalid, the server cannot be reached or the
    /// tables cannot be created.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let options: PgConnectOptions = url.parse().map_err(|_| Error::LimiterStore {
            message: "invalid PostgreSQL URL (expected postgres://user:password@host/database)"
                .to_owned(),
            source: None,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(store_error("cannot connect to PostgreSQL"))?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over an existing pool; call [`migrate`](Self::migrate) once before use.
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresLimiterStore { pool }
    }

    /// Creates the tables (`smartcar_limiter_app`, `smartcar_limiter_vehicle`) if missing.
    ///
    /// # Errors
    ///
    /// [`Error::LimiterStore`] when the statements fail.
    pub async fn migrate(&self) -> Result<(), Error> {
        // One migration at a time across instances starting together.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(store_error("cannot create the limiter tables"))?;
        sqlx::query("SELECT pg_advisory_xact_lock(7301946120381)")
            .execute(&mut *tx)
            .await
            .map_err(store_error("cannot create the limiter tables"))?;
        sqlx::raw_sql(MIGRATION)
            .execute(&mut *tx)
            .await
            .map_err(store_error("cannot create the limiter tables"))?;
        tx.commit()
            .await
            .map_err(store_error("cannot create the limiter tables"))?;
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn transact(
        &self,
        scope: &str,
        vehicle: Option<&str>,
        limits: &Limits,
        step: &Step,
    ) -> Result<Decision, sqlx::Error> {
        // Dropped without a commit (an error, a lost connection, a cancelled caller): rolled
        // back, nothing half-written.
        let mut tx = self.pool.begin().await?;
        // The upsert locks the row (created if missing) until the commit.
        let row = sqlx::query(
            "INSERT INTO smartcar_limiter_app (scope) VALUES ($1)
             ON CONFLICT (scope) DO UPDATE SET scope = EXCLUDED.scope
             RETURNING tokens, updated_ms, cooldown_until_ms",
        )
        .bind(scope)
        .fetch_one(&mut *tx)
        .await?;
        let mut app = AppState {
            tokens: row.try_get("tokens")?,
            updated_ms: row.try_get("updated_ms")?,
            cooldown_until_ms: row.try_get("cooldown_until_ms")?,
        };
        let before_app = app.clone();
        let mut state = match vehicle {
            None => None,
            Some(id) => {
                let row = sqlx::query(
                    "INSERT INTO smartcar_limiter_vehicle (scope, vehicle_id) VALUES ($1, $2)
                     ON CONFLICT (scope, vehicle_id) DO UPDATE SET scope = EXCLUDED.scope
                     RETURNING hits, cooldown_until_ms, month, used, exhausted",
                )
                .bind(scope)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                Some(vehicle_state(&row)?)
            }
        };
        let before_vehicle = state.clone();
        let decision = step.apply(limits, &mut app, state.as_mut());
        if app != before_app {
            sqlx::query(
                "UPDATE smartcar_limiter_app SET tokens = $2, updated_ms = $3, cooldown_until_ms = $4 WHERE scope = $1",
            )
            .bind(scope)
            .bind(app.tokens)
            .bind(app.updated_ms)
            .bind(app.cooldown_until_ms)
            .execute(&mut *tx)
            .await?;
        }
        if let (Some(id), Some(v)) = (vehicle, &state)
            && state != before_vehicle
        {
            sqlx::query(
                "UPDATE smartcar_limiter_vehicle SET hits = $3, cooldown_until_ms = $4, month = $5, used = $6, exhausted = $7
                 WHERE scope = $1 AND vehicle_id = $2",
            )
            .bind(scope)
            .bind(id)
            .bind(v.hits_text())
            .bind(v.cooldown_until_ms)
            .bind(&v.month)
            .bind(i64::from(v.used))
            .bind(v.exhausted)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(decision)
    }
}

impl LimiterStore for PostgresLimiterStore {
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
                .map_err(store_error("the PostgreSQL limiter store failed"))
        })
    }

    fn vehicle<'a>(
        &'a self,
        scope: &'a str,
        vehicle: &'a str,
    ) -> BoxFuture<'a, Result<Option<VehicleState>, Error>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT hits, cooldown_until_ms, month, used, exhausted FROM smartcar_limiter_vehicle WHERE scope = $1 AND vehicle_id = $2",
            )
            .bind(scope)
            .bind(vehicle)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error("cannot read the PostgreSQL limiter store"))?;
            row.as_ref()
                .map(vehicle_state)
                .transpose()
                .map_err(store_error("cannot read the PostgreSQL limiter store"))
        })
    }
}

/// A vehicle's row as its [`VehicleState`].
fn vehicle_state(row: &PgRow) -> Result<VehicleState, sqlx::Error> {
    Ok(VehicleState {
        hits: VehicleState::parse_hits(row.try_get("hits")?),
        cooldown_until_ms: row.try_get("cooldown_until_ms")?,
        month: row.try_get("month")?,
        used: u32::try_from(row.try_get::<i64, _>("used")?).unwrap_or(0),
        exhausted: row.try_get("exhausted")?,
    })
}
