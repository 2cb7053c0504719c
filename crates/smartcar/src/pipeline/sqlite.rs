//! The queue in an SQLite file: one writer at a time. Every write is a `BEGIN IMMEDIATE`
//! transaction (the write lock taken up front, waited for with the busy timeout), so claims,
//! completions and enqueues are serialised: the single-writer equivalent of PostgreSQL's
//! `FOR UPDATE SKIP LOCKED`. Leases work the same way (several processes may share the file).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Executor, Row};

use super::PipelineError;
use super::backend::{ClaimRef, ClaimRequest, ClaimedRow, Completed, Failed, Renewed, dead_letter};
use super::{DeadLetter, NewEvent, QueueStats};

/// The migrations shipped in the crate, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "webhook_pipeline",
    include_str!("migrations/sqlite_0001_webhook_pipeline.sql"),
)];

fn storage(what: &'static str) -> impl FnOnce(sqlx::Error) -> PipelineError {
    PipelineError::storage(what)
}

pub(crate) async fn open(path: &Path) -> Result<SqlitePool, PipelineError> {
    #[cfg(unix)]
    if !path.exists() {
        // Bodies hold vehicle data (locations): owner-only, as the token store does.
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL + FULL: a committed delivery survives a power loss (it was acknowledged).
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(storage("cannot open the SQLite database"))
}

async fn begin(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, PipelineError> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(storage(
        "cannot begin a write transaction (database locked?)",
    ))
}

pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), PipelineError> {
    let mut tx = begin(pool).await?;
    (&mut *tx)
        .execute(
            "CREATE TABLE IF NOT EXISTS smartcar_webhook_schema_migrations (
                version INTEGER PRIMARY KEY NOT NULL,
                description TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            )",
        )
        .await
        .map_err(storage(
            "migrate: cannot create smartcar_webhook_schema_migrations",
        ))?;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM smartcar_webhook_schema_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(storage("migrate: cannot read the applied migrations"))?;
    for (version, description, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        (&mut *tx)
            .execute(*sql)
            .await
            .map_err(storage("migrate: a migration of the webhook tables failed"))?;
        sqlx::query(
            "INSERT INTO smartcar_webhook_schema_migrations (version, description) VALUES (?, ?)",
        )
        .bind(version)
        .bind(description)
        .execute(&mut *tx)
        .await
        .map_err(storage("migrate: cannot record the migration"))?;
    }
    tx.commit().await.map_err(storage("migrate: cannot commit"))
}

const WAKE_LANE: &str = "INSERT INTO smartcar_webhook_lanes (lane, next_due_ms) VALUES (?, ?)
    ON CONFLICT (lane) DO UPDATE
    SET next_due_ms = min(coalesce(next_due_ms, excluded.next_due_ms), excluded.next_due_ms)";

pub(crate) async fn enqueue(
    pool: &SqlitePool,
    events: &[&NewEvent],
    now_ms: i64,
) -> Result<HashSet<String>, PipelineError> {
    let mut tx = begin(pool).await?;
    let mut inserted = HashSet::new();
    let mut lanes: Vec<&str> = Vec::new();
    for event in events {
        let fresh = sqlx::query(
            "INSERT INTO smartcar_webhook_seen (dedup_key, received_at_ms) VALUES (?, ?) \
             ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(&event.dedup_key)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(storage("cannot record the dedup key"))?
        .rows_affected()
            == 1;
        if !fresh {
            continue;
        }
        sqlx::query(
            "INSERT INTO smartcar_webhook_events (dedup_key, lane, vehicle_id, event_type, \
             is_test, order_ms, tie_ms, oem_updated_at_ms, delivered_at_ms, received_at_ms, \
             body, next_attempt_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&event.dedup_key)
        .bind(&event.lane)
        .bind(&event.vehicle_id)
        .bind(&event.event_type)
        .bind(event.is_test)
        .bind(event.order_ms)
        .bind(event.tie_ms)
        .bind(event.oem_updated_at_ms)
        .bind(event.delivered_at_ms)
        .bind(now_ms)
        .bind(&event.body)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(storage("cannot write the delivery to the queue"))?;
        inserted.insert(event.dedup_key.clone());
        if !lanes.contains(&event.lane.as_str()) {
            lanes.push(&event.lane);
        }
    }
    for lane in lanes {
        sqlx::query(WAKE_LANE)
            .bind(lane)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(storage("cannot wake the lane"))?;
    }
    tx.commit()
        .await
        .map_err(storage("cannot commit the deliveries"))?;
    Ok(inserted)
}

pub(crate) async fn dead_letter_new(
    pool: &SqlitePool,
    event: &NewEvent,
    reason: &str,
    now_ms: i64,
) -> Result<bool, PipelineError> {
    let mut tx = begin(pool).await?;
    let fresh = sqlx::query(
        "INSERT INTO smartcar_webhook_seen (dedup_key, received_at_ms) VALUES (?, ?) \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(&event.dedup_key)
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(storage("cannot record the dedup key"))?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO smartcar_webhook_dead_letters (dedup_key, lane, vehicle_id, event_type, \
         is_test, order_ms, tie_ms, oem_updated_at_ms, delivered_at_ms, received_at_ms, body, \
         attempts, reason, dead_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
    )
    .bind(&event.dedup_key)
    .bind(&event.lane)
    .bind(&event.vehicle_id)
    .bind(&event.event_type)
    .bind(event.is_test)
    .bind(event.order_ms)
    .bind(event.tie_ms)
    .bind(event.oem_updated_at_ms)
    .bind(event.delivered_at_ms)
    .bind(now_ms)
    .bind(&event.body)
    .bind(reason)
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(storage("cannot write the dead letter"))?;
    tx.commit().await.map_err(storage("cannot commit"))?;
    Ok(true)
}

pub(crate) async fn claim(
    pool: &SqlitePool,
    request: ClaimRequest<'_>,
) -> Result<Vec<ClaimedRow>, PipelineError> {
    // A cheap read first: most polls of an idle queue find nothing, and need no write lock.
    let due: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM smartcar_webhook_lanes WHERE next_due_ms <= ?1 \
         AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?1) LIMIT 1",
    )
    .bind(request.now_ms)
    .fetch_optional(pool)
    .await
    .map_err(storage("cannot look for due lanes"))?;
    if due.is_none() {
        return Ok(Vec::new());
    }
    let mut tx = begin(pool).await?;
    let lanes: Vec<(String, Option<i64>)> = sqlx::query_as(
        "UPDATE smartcar_webhook_lanes SET claim_token = ?3, claimed_by = ?4, claimed_until_ms = ?5
         WHERE lane IN (SELECT lane FROM smartcar_webhook_lanes
                        WHERE next_due_ms <= ?1
                          AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?1)
                        ORDER BY next_due_ms LIMIT ?2)
         RETURNING lane, last_oem_updated_at_ms",
    )
    .bind(request.now_ms)
    .bind(request.limit)
    .bind(request.token)
    .bind(request.consumer)
    .bind(request.now_ms.saturating_add(request.lease_ms))
    .fetch_all(&mut *tx)
    .await
    .map_err(storage("cannot claim lanes"))?;
    let mut claimed = Vec::with_capacity(lanes.len());
    for (lane, lane_last_oem_ms) in lanes {
        let head: Option<(i64, i64)> = sqlx::query_as(
            "SELECT id, next_attempt_at_ms FROM smartcar_webhook_events WHERE lane = ? \
             ORDER BY order_ms, tie_ms, id LIMIT 1",
        )
        .bind(&lane)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage("cannot read the claimed lane's events"))?;
        let Some((id, _)) = head.filter(|(_, due)| *due <= request.now_ms) else {
            settle(&mut tx, &lane, None, 0).await?;
            continue;
        };
        let row = sqlx::query(
            "UPDATE smartcar_webhook_events SET attempts = attempts + 1 WHERE id = ? \
             RETURNING dedup_key, vehicle_id, is_test, oem_updated_at_ms, received_at_ms, body, \
             attempts",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(storage("cannot count the attempt"))?;
        let read = || -> Result<ClaimedRow, sqlx::Error> {
            Ok(ClaimedRow {
                id,
                lane: lane.clone(),
                token: request.token.to_owned(),
                dedup_key: row.try_get("dedup_key")?,
                vehicle_id: row.try_get("vehicle_id")?,
                is_test: row.try_get("is_test")?,
                oem_updated_at_ms: row.try_get("oem_updated_at_ms")?,
                received_at_ms: row.try_get("received_at_ms")?,
                body: row.try_get("body")?,
                attempts: row.try_get("attempts")?,
                lane_last_oem_ms,
            })
        };
        claimed.push(read().map_err(storage("unexpected queue row"))?);
    }
    tx.commit()
        .await
        .map_err(storage("cannot commit the claim"))?;
    Ok(claimed)
}

/// Whether the claim is still ours (inside a write transaction: nobody else can change it).
async fn owns(conn: &mut SqliteConnection, claim: ClaimRef<'_>) -> Result<bool, PipelineError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT 1 FROM smartcar_webhook_lanes WHERE lane = ? AND claim_token = ?",
    )
    .bind(claim.lane)
    .bind(claim.token)
    .fetch_optional(&mut *conn)
    .await
    .map_err(storage("cannot read the claim"))?
    .is_some())
}

/// Releases a lane (see the PostgreSQL version).
async fn settle(
    conn: &mut SqliteConnection,
    lane: &str,
    oem_ms: Option<i64>,
    handled: i64,
) -> Result<(), PipelineError> {
    sqlx::query(
        "UPDATE smartcar_webhook_lanes SET
            next_due_ms = (SELECT next_attempt_at_ms FROM smartcar_webhook_events
                           WHERE lane = ?1 ORDER BY order_ms, tie_ms, id LIMIT 1),
            claim_token = NULL, claimed_by = NULL, claimed_until_ms = NULL,
            last_oem_updated_at_ms = max(coalesce(last_oem_updated_at_ms, ?2),
                                         coalesce(?2, last_oem_updated_at_ms)),
            handled = handled + ?3
         WHERE lane = ?1",
    )
    .bind(lane)
    .bind(oem_ms)
    .bind(handled)
    .execute(&mut *conn)
    .await
    .map_err(storage("cannot release the lane"))?;
    Ok(())
}

pub(crate) async fn renew(
    pool: &SqlitePool,
    claim: ClaimRef<'_>,
    until_ms: i64,
) -> Result<Renewed, PipelineError> {
    let renewed = sqlx::query(
        "UPDATE smartcar_webhook_lanes SET claimed_until_ms = ? WHERE lane = ? AND claim_token = ?",
    )
    .bind(until_ms)
    .bind(claim.lane)
    .bind(claim.token)
    .execute(pool)
    .await
    .map_err(storage("cannot renew the lease"))?
    .rows_affected()
        == 1;
    Ok(if renewed { Renewed::Yes } else { Renewed::Lost })
}

pub(crate) async fn complete(
    pool: &SqlitePool,
    claim: ClaimRef<'_>,
    oem_ms: Option<i64>,
) -> Result<Completed, PipelineError> {
    let mut tx = begin(pool).await?;
    if !owns(&mut tx, claim).await? {
        return Ok(Completed::LeaseLost);
    }
    let deleted = sqlx::query("DELETE FROM smartcar_webhook_events WHERE id = ?")
        .bind(claim.id)
        .execute(&mut *tx)
        .await
        .map_err(storage("cannot remove the handled event"))?
        .rows_affected();
    if deleted != 1 {
        return Ok(Completed::LeaseLost);
    }
    settle(&mut tx, claim.lane, oem_ms, 1).await?;
    tx.commit()
        .await
        .map_err(storage("cannot commit the completion"))?;
    Ok(Completed::Done)
}

pub(crate) async fn fail(
    pool: &SqlitePool,
    claim: ClaimRef<'_>,
    error: &str,
    retry_at_ms: Option<i64>,
    now_ms: i64,
) -> Result<Failed, PipelineError> {
    let mut tx = begin(pool).await?;
    if !owns(&mut tx, claim).await? {
        return Ok(Failed::LeaseLost);
    }
    let outcome = match retry_at_ms {
        Some(at) => {
            sqlx::query(
                "UPDATE smartcar_webhook_events SET next_attempt_at_ms = ?, last_error = ? \
                 WHERE id = ?",
            )
            .bind(at)
            .bind(error)
            .bind(claim.id)
            .execute(&mut *tx)
            .await
            .map_err(storage("cannot schedule the retry"))?;
            Failed::Retrying
        }
        None => {
            sqlx::query(
                "INSERT INTO smartcar_webhook_dead_letters (dedup_key, lane, vehicle_id, \
                 event_type, is_test, order_ms, tie_ms, oem_updated_at_ms, delivered_at_ms, \
                 received_at_ms, body, attempts, reason, dead_at_ms) \
                 SELECT dedup_key, lane, vehicle_id, event_type, is_test, order_ms, tie_ms, \
                 oem_updated_at_ms, delivered_at_ms, received_at_ms, body, attempts, ?, ? \
                 FROM smartcar_webhook_events WHERE id = ?",
            )
            .bind(error)
            .bind(now_ms)
            .bind(claim.id)
            .execute(&mut *tx)
            .await
            .map_err(storage("cannot move the event to the dead letters"))?;
            sqlx::query("DELETE FROM smartcar_webhook_events WHERE id = ?")
                .bind(claim.id)
                .execute(&mut *tx)
                .await
                .map_err(storage("cannot move the event to the dead letters"))?;
            Failed::DeadLettered
        }
    };
    settle(&mut tx, claim.lane, None, 0).await?;
    tx.commit()
        .await
        .map_err(storage("cannot commit the failed attempt"))?;
    Ok(outcome)
}

pub(crate) async fn stats(pool: &SqlitePool, now_ms: i64) -> Result<QueueStats, PipelineError> {
    let row = sqlx::query(
        "SELECT
            (SELECT count(*) FROM smartcar_webhook_events) AS queued,
            (SELECT count(*) FROM smartcar_webhook_events WHERE attempts > 0) AS retrying,
            (SELECT count(*) FROM smartcar_webhook_lanes
              WHERE claim_token IS NOT NULL AND claimed_until_ms > ?1) AS in_flight,
            (SELECT count(*) FROM smartcar_webhook_lanes
              WHERE claim_token IS NOT NULL AND claimed_until_ms <= ?1) AS expired,
            (SELECT count(*) FROM smartcar_webhook_dead_letters) AS dead,
            (SELECT min(received_at_ms) FROM smartcar_webhook_events) AS oldest",
    )
    .bind(now_ms)
    .fetch_one(pool)
    .await
    .map_err(storage("cannot count the queue"))?;
    let count = |name: &str| -> Result<u64, PipelineError> {
        let n: i64 = row.try_get(name).map_err(storage("unexpected row"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let oldest: Option<i64> = row.try_get("oldest").map_err(storage("unexpected row"))?;
    Ok(QueueStats {
        queued: count("queued")?,
        retrying: count("retrying")?,
        in_flight: count("in_flight")?,
        expired_leases: count("expired")?,
        dead_letters: count("dead")?,
        oldest_queued_at: oldest.map(super::to_time),
    })
}

pub(crate) async fn dead_letters(
    pool: &SqlitePool,
    limit: u32,
) -> Result<Vec<DeadLetter>, PipelineError> {
    let rows = sqlx::query(
        "SELECT id, dedup_key, vehicle_id, event_type, is_test, attempts, reason,
                received_at_ms, dead_at_ms, body
         FROM smartcar_webhook_dead_letters ORDER BY id LIMIT ?",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(storage("cannot list the dead letters"))?;
    rows.iter()
        .map(|row| {
            let read = || -> Result<DeadLetter, sqlx::Error> {
                Ok(dead_letter(
                    row.try_get("id")?,
                    row.try_get("dedup_key")?,
                    row.try_get("vehicle_id")?,
                    row.try_get("event_type")?,
                    row.try_get("is_test")?,
                    row.try_get("attempts")?,
                    row.try_get("reason")?,
                    row.try_get("received_at_ms")?,
                    row.try_get("dead_at_ms")?,
                    row.try_get("body")?,
                ))
            };
            read().map_err(storage("unexpected dead-letter row"))
        })
        .collect()
}

pub(crate) async fn requeue(
    pool: &SqlitePool,
    id: i64,
    now_ms: i64,
) -> Result<bool, PipelineError> {
    let mut tx = begin(pool).await?;
    let lane: Option<String> = sqlx::query_scalar(
        "INSERT INTO smartcar_webhook_events (dedup_key, lane, vehicle_id, event_type, is_test, \
         order_ms, tie_ms, oem_updated_at_ms, delivered_at_ms, received_at_ms, body, attempts, \
         next_attempt_at_ms, last_error) \
         SELECT dedup_key, lane, vehicle_id, event_type, is_test, order_ms, tie_ms, \
         oem_updated_at_ms, delivered_at_ms, received_at_ms, body, 0, ?, reason \
         FROM smartcar_webhook_dead_letters WHERE id = ? RETURNING lane",
    )
    .bind(now_ms)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(storage("cannot requeue the dead letter"))?;
    let Some(lane) = lane else {
        return Ok(false);
    };
    sqlx::query("DELETE FROM smartcar_webhook_dead_letters WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(storage("cannot requeue the dead letter"))?;
    sqlx::query(WAKE_LANE)
        .bind(&lane)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(storage("cannot wake the lane"))?;
    tx.commit()
        .await
        .map_err(storage("cannot commit the requeue"))?;
    Ok(true)
}
