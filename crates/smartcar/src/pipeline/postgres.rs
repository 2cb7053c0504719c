//! The queue in PostgreSQL: several instances and processes share it.
//!
//! Locking, and why nothing is lost or handed out twice:
//! - Lanes are claimed with `FOR UPDATE SKIP LOCKED` on `smartcar_webhook_lanes`: two
//!   consumers never wait for each other and never take the same lane; a lane whose claim is
//!   committed is skipped until its lease (`claimed_until_ms`) expires.
//! - Every write that decides a lane's `next_due_ms` from its events first locks the lane row
//!   in a statement of its own, then reads the events in a later statement (a fresh snapshot
//!   under READ COMMITTED). The enqueue inserts its events and then upserts their lanes in
//!   one statement. Whichever of the two locks the lane first, the lane ends up due when it
//!   has an event: no wake-up is lost.
//! - Locks are always taken in the same order (dedup keys sorted, then lanes sorted; a
//!   consumer holds one lane at a time), so concurrent enqueues and completions cannot
//!   deadlock.

use std::collections::HashSet;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Executor, Row};

use super::PipelineError;
use super::backend::{ClaimRef, ClaimRequest, ClaimedRow, Completed, Failed, Renewed, dead_letter};
use super::{DeadLetter, NewEvent, QueueStats};

/// The migrations shipped in the crate, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "webhook_pipeline",
    include_str!("migrations/postgres_0001_webhook_pipeline.sql"),
)];

/// Advisory-lock id serialising concurrent `migrate` calls ("sc_hooks").
const MIGRATION_LOCK: i64 = 0x7363_5f68_6f6f_6b73;

fn storage(what: &'static str) -> impl FnOnce(sqlx::Error) -> PipelineError {
    PipelineError::storage(what)
}

pub(crate) async fn connect(url: &str) -> Result<PgPool, PipelineError> {
    let options: PgConnectOptions = url.parse().map_err(|_| PipelineError::Storage {
        // Not the parse error: it may quote the URL, password included.
        message: "invalid PostgreSQL URL (expected postgres://user:password@host:port/database)"
            .to_owned(),
        source: None,
    })?;
    PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await
        .map_err(storage("cannot connect to PostgreSQL"))
}

pub(crate) async fn migrate(pool: &PgPool) -> Result<(), PipelineError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(storage("migrate: cannot begin"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(storage("migrate: cannot lock"))?;
    (&mut *tx)
        .execute(
            "CREATE TABLE IF NOT EXISTS smartcar_webhook_schema_migrations (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
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
            "INSERT INTO smartcar_webhook_schema_migrations (version, description) VALUES ($1, $2)",
        )
        .bind(version)
        .bind(description)
        .execute(&mut *tx)
        .await
        .map_err(storage("migrate: cannot record the migration"))?;
    }
    tx.commit().await.map_err(storage("migrate: cannot commit"))
}

const ENQUEUE: &str = "
WITH incoming AS (
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],
                         $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::bytea[])
        WITH ORDINALITY AS t(dedup_key, lane, vehicle_id, event_type, is_test,
                             order_ms, tie_ms, oem_updated_at_ms, delivered_at_ms, body, ord)
),
fresh AS (
    INSERT INTO smartcar_webhook_seen (dedup_key, received_at_ms)
    SELECT dedup_key, $11 FROM incoming ORDER BY dedup_key
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING dedup_key
),
queued AS (
    INSERT INTO smartcar_webhook_events (dedup_key, lane, vehicle_id, event_type, is_test,
        order_ms, tie_ms, oem_updated_at_ms, delivered_at_ms, received_at_ms, body,
        next_attempt_at_ms)
    SELECT i.dedup_key, i.lane, i.vehicle_id, i.event_type, i.is_test, i.order_ms, i.tie_ms,
           i.oem_updated_at_ms, i.delivered_at_ms, $11, i.body, $11
    FROM incoming i JOIN fresh f ON f.dedup_key = i.dedup_key
    ORDER BY i.ord
    RETURNING dedup_key, lane
),
woken AS (
    INSERT INTO smartcar_webhook_lanes AS l (lane, next_due_ms)
    SELECT DISTINCT lane, $11::int8 FROM queued ORDER BY lane
    ON CONFLICT (lane) DO UPDATE
        SET next_due_ms = LEAST(COALESCE(l.next_due_ms, EXCLUDED.next_due_ms), EXCLUDED.next_due_ms)
)
SELECT dedup_key FROM queued";

pub(crate) async fn enqueue(
    pool: &PgPool,
    events: &[&NewEvent],
    now_ms: i64,
) -> Result<HashSet<String>, PipelineError> {
    let column = |f: fn(&NewEvent) -> String| events.iter().map(|e| f(e)).collect::<Vec<_>>();
    let keys = column(|e| e.dedup_key.clone());
    let lanes = column(|e| e.lane.clone());
    let types = column(|e| e.event_type.clone());
    let vehicles: Vec<Option<String>> = events.iter().map(|e| e.vehicle_id.clone()).collect();
    let tests: Vec<bool> = events.iter().map(|e| e.is_test).collect();
    let order: Vec<i64> = events.iter().map(|e| e.order_ms).collect();
    let tie: Vec<i64> = events.iter().map(|e| e.tie_ms).collect();
    let oem: Vec<Option<i64>> = events.iter().map(|e| e.oem_updated_at_ms).collect();
    let delivered: Vec<Option<i64>> = events.iter().map(|e| e.delivered_at_ms).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
    let inserted: Vec<String> = sqlx::query_scalar(ENQUEUE)
        .bind(keys)
        .bind(lanes)
        .bind(vehicles)
        .bind(types)
        .bind(tests)
        .bind(order)
        .bind(tie)
        .bind(oem)
        .bind(delivered)
        .bind(bodies)
        .bind(now_ms)
        .fetch_all(pool)
        .await
        .map_err(storage("cannot write the deliveries to the queue"))?;
    Ok(inserted.into_iter().collect())
}

pub(crate) async fn dead_letter_new(
    pool: &PgPool,
    event: &NewEvent,
    reason: &str,
    now_ms: i64,
) -> Result<bool, PipelineError> {
    let mut tx = pool.begin().await.map_err(storage("cannot begin"))?;
    let fresh = sqlx::query(
        "INSERT INTO smartcar_webhook_seen (dedup_key, received_at_ms) VALUES ($1, $2) \
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
         attempts, reason, dead_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $10)",
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
    .execute(&mut *tx)
    .await
    .map_err(storage("cannot write the dead letter"))?;
    tx.commit().await.map_err(storage("cannot commit"))?;
    Ok(true)
}

const CLAIM_LANES: &str = "
WITH picked AS (
    SELECT lane FROM smartcar_webhook_lanes
    WHERE next_due_ms <= $1 AND (claimed_until_ms IS NULL OR claimed_until_ms <= $1)
    ORDER BY next_due_ms
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE smartcar_webhook_lanes AS l
SET claim_token = $3, claimed_by = $4, claimed_until_ms = $5
FROM picked WHERE l.lane = picked.lane
RETURNING l.lane, l.last_oem_updated_at_ms";

const CLAIM_HEADS: &str = "
WITH heads AS (
    SELECT DISTINCT ON (lane) id, next_attempt_at_ms
    FROM smartcar_webhook_events
    WHERE lane = ANY($1)
    ORDER BY lane, order_ms, tie_ms, id
)
UPDATE smartcar_webhook_events AS e
SET attempts = e.attempts + 1
FROM heads
WHERE e.id = heads.id AND heads.next_attempt_at_ms <= $2
RETURNING e.id, e.lane, e.dedup_key, e.vehicle_id, e.is_test, e.oem_updated_at_ms,
          e.received_at_ms, e.body, e.attempts";

pub(crate) async fn claim(
    pool: &PgPool,
    request: ClaimRequest<'_>,
) -> Result<Vec<ClaimedRow>, PipelineError> {
    let lanes: Vec<(String, Option<i64>)> = sqlx::query_as(CLAIM_LANES)
        .bind(request.now_ms)
        .bind(request.limit)
        .bind(request.token)
        .bind(request.consumer)
        .bind(request.now_ms.saturating_add(request.lease_ms))
        .fetch_all(pool)
        .await
        .map_err(storage("cannot claim lanes"))?;
    if lanes.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = lanes.iter().map(|(lane, _)| lane.as_str()).collect();
    let rows = sqlx::query(CLAIM_HEADS)
        .bind(&names)
        .bind(request.now_ms)
        .fetch_all(pool)
        .await
        .map_err(storage("cannot read the claimed lanes' events"))?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let lane: String = row.try_get("lane").map_err(storage("unexpected row"))?;
        let lane_last_oem_ms = lanes
            .iter()
            .find(|(name, _)| *name == lane)
            .and_then(|(_, oem)| *oem);
        claimed.push(ClaimedRow {
            id: row.try_get("id").map_err(storage("unexpected row"))?,
            token: request.token.to_owned(),
            dedup_key: row
                .try_get("dedup_key")
                .map_err(storage("unexpected row"))?,
            vehicle_id: row
                .try_get("vehicle_id")
                .map_err(storage("unexpected row"))?,
            is_test: row.try_get("is_test").map_err(storage("unexpected row"))?,
            oem_updated_at_ms: row
                .try_get("oem_updated_at_ms")
                .map_err(storage("unexpected row"))?,
            received_at_ms: row
                .try_get("received_at_ms")
                .map_err(storage("unexpected row"))?,
            body: row.try_get("body").map_err(storage("unexpected row"))?,
            attempts: i64::from(
                row.try_get::<i32, _>("attempts")
                    .map_err(storage("unexpected row"))?,
            ),
            lane,
            lane_last_oem_ms,
        });
    }
    // Lanes whose head is not due (in backoff), or that are empty: give them back.
    for (lane, _) in &lanes {
        if !claimed.iter().any(|c| &c.lane == lane) {
            let claim = ClaimRef {
                lane,
                token: request.token,
                id: 0,
            };
            let mut tx = pool.begin().await.map_err(storage("cannot begin"))?;
            if lock_claim(&mut tx, claim).await? {
                settle(&mut tx, lane, None, 0).await?;
                tx.commit()
                    .await
                    .map_err(storage("cannot release a lane"))?;
            }
        }
    }
    Ok(claimed)
}

/// Locks the claim's lane row if the claim is still ours.
async fn lock_claim(conn: &mut PgConnection, claim: ClaimRef<'_>) -> Result<bool, PipelineError> {
    Ok(sqlx::query(
        "SELECT 1 FROM smartcar_webhook_lanes WHERE lane = $1 AND claim_token = $2 FOR UPDATE",
    )
    .bind(claim.lane)
    .bind(claim.token)
    .fetch_optional(&mut *conn)
    .await
    .map_err(storage("cannot lock the claimed lane"))?
    .is_some())
}

/// Releases a locked lane: its next due time from its (new) head, the newest `oemUpdatedAt`
/// handled, the handled count.
async fn settle(
    conn: &mut PgConnection,
    lane: &str,
    oem_ms: Option<i64>,
    handled: i64,
) -> Result<(), PipelineError> {
    sqlx::query(
        "UPDATE smartcar_webhook_lanes SET
            next_due_ms = (SELECT next_attempt_at_ms FROM smartcar_webhook_events
                           WHERE lane = $1 ORDER BY order_ms, tie_ms, id LIMIT 1),
            claim_token = NULL, claimed_by = NULL, claimed_until_ms = NULL,
            last_oem_updated_at_ms = GREATEST(last_oem_updated_at_ms, $2),
            handled = handled + $3
         WHERE lane = $1",
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
    pool: &PgPool,
    claim: ClaimRef<'_>,
    until_ms: i64,
) -> Result<Renewed, PipelineError> {
    // SKIP LOCKED: the lane row is locked while the claim's own completion commits (and,
    // briefly, by an enqueue); waiting could deadlock with the completion.
    let (locked, renewed): (bool, bool) = sqlx::query_as(
        "WITH mine AS (
            SELECT lane FROM smartcar_webhook_lanes WHERE lane = $1 FOR UPDATE SKIP LOCKED
         ),
         renewed AS (
            UPDATE smartcar_webhook_lanes AS l SET claimed_until_ms = $3
            FROM mine WHERE l.lane = mine.lane AND l.claim_token = $2
            RETURNING 1
         )
         SELECT EXISTS (SELECT 1 FROM mine), EXISTS (SELECT 1 FROM renewed)",
    )
    .bind(claim.lane)
    .bind(claim.token)
    .bind(until_ms)
    .fetch_one(pool)
    .await
    .map_err(storage("cannot renew the lease"))?;
    Ok(match (locked, renewed) {
        (_, true) => Renewed::Yes,
        (false, _) => Renewed::Busy,
        (true, false) => Renewed::Lost,
    })
}

/// Completes the claimed event inside the caller's transaction (which commits it).
pub(crate) async fn complete_in(
    conn: &mut PgConnection,
    claim: ClaimRef<'_>,
    oem_ms: Option<i64>,
) -> Result<Completed, PipelineError> {
    if !lock_claim(conn, claim).await? {
        return Ok(Completed::LeaseLost);
    }
    let deleted = sqlx::query("DELETE FROM smartcar_webhook_events WHERE id = $1")
        .bind(claim.id)
        .execute(&mut *conn)
        .await
        .map_err(storage("cannot remove the handled event"))?
        .rows_affected();
    if deleted != 1 {
        return Ok(Completed::LeaseLost);
    }
    settle(conn, claim.lane, oem_ms, 1).await?;
    Ok(Completed::Done)
}

const TO_DEAD_LETTERS: &str = "
WITH gone AS (DELETE FROM smartcar_webhook_events WHERE id = $1 RETURNING *)
INSERT INTO smartcar_webhook_dead_letters (dedup_key, lane, vehicle_id, event_type, is_test,
    order_ms, tie_ms, oem_updated_at_ms, delivered_at_ms, received_at_ms, body, attempts,
    reason, dead_at_ms)
SELECT dedup_key, lane, vehicle_id, event_type, is_test, order_ms, tie_ms, oem_updated_at_ms,
       delivered_at_ms, received_at_ms, body, attempts, $2, $3
FROM gone";

pub(crate) async fn fail(
    pool: &PgPool,
    claim: ClaimRef<'_>,
    error: &str,
    retry_at_ms: Option<i64>,
    now_ms: i64,
) -> Result<Failed, PipelineError> {
    let mut tx = pool.begin().await.map_err(storage("cannot begin"))?;
    if !lock_claim(&mut tx, claim).await? {
        return Ok(Failed::LeaseLost);
    }
    let outcome = match retry_at_ms {
        Some(at) => {
            sqlx::query(
                "UPDATE smartcar_webhook_events SET next_attempt_at_ms = $2, last_error = $3 \
                 WHERE id = $1",
            )
            .bind(claim.id)
            .bind(at)
            .bind(error)
            .execute(&mut *tx)
            .await
            .map_err(storage("cannot schedule the retry"))?;
            Failed::Retrying
        }
        None => {
            sqlx::query(TO_DEAD_LETTERS)
                .bind(claim.id)
                .bind(error)
                .bind(now_ms)
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

pub(crate) async fn stats(pool: &PgPool, now_ms: i64) -> Result<QueueStats, PipelineError> {
    let row = sqlx::query(
        "SELECT
            (SELECT count(*) FROM smartcar_webhook_events) AS queued,
            (SELECT count(*) FROM smartcar_webhook_events WHERE attempts > 0) AS retrying,
            (SELECT count(*) FROM smartcar_webhook_lanes
              WHERE claim_token IS NOT NULL AND claimed_until_ms > $1) AS in_flight,
            (SELECT count(*) FROM smartcar_webhook_lanes
              WHERE claim_token IS NOT NULL AND claimed_until_ms <= $1) AS expired,
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
    pool: &PgPool,
    limit: u32,
) -> Result<Vec<DeadLetter>, PipelineError> {
    let rows = sqlx::query(
        "SELECT id, dedup_key, vehicle_id, event_type, is_test, attempts, reason,
                received_at_ms, dead_at_ms, body
         FROM smartcar_webhook_dead_letters ORDER BY id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(storage("cannot list the dead letters"))?;
    rows.iter()
        .map(|row| {
            let e = storage("unexpected dead-letter row");
            let read = || -> Result<DeadLetter, sqlx::Error> {
                Ok(dead_letter(
                    row.try_get("id")?,
                    row.try_get("dedup_key")?,
                    row.try_get("vehicle_id")?,
                    row.try_get("event_type")?,
                    row.try_get("is_test")?,
                    i64::from(row.try_get::<i32, _>("attempts")?),
                    row.try_get("reason")?,
                    row.try_get("received_at_ms")?,
                    row.try_get("dead_at_ms")?,
                    row.try_get("body")?,
                ))
            };
            read().map_err(e)
        })
        .collect()
}

const REQUEUE: &str = "
WITH gone AS (DELETE FROM smartcar_webhook_dead_letters WHERE id = $1 RETURNING *)
INSERT INTO smartcar_webhook_events (dedup_key, lane, vehicle_id, event_type, is_test,
    order_ms, tie_ms, oem_updated_at_ms, delivered_at_ms, received_at_ms, body, attempts,
    next_attempt_at_ms, last_error)
SELECT dedup_key, lane, vehicle_id, event_type, is_test, order_ms, tie_ms, oem_updated_at_ms,
       delivered_at_ms, received_at_ms, body, 0, $2, reason
FROM gone
RETURNING lane";

pub(crate) async fn requeue(pool: &PgPool, id: i64, now_ms: i64) -> Result<bool, PipelineError> {
    let mut tx = pool.begin().await.map_err(storage("cannot begin"))?;
    let lane: Option<String> = sqlx::query_scalar(REQUEUE)
        .bind(id)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage("cannot requeue the dead letter"))?;
    let Some(lane) = lane else {
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO smartcar_webhook_lanes AS l (lane, next_due_ms) VALUES ($1, $2)
         ON CONFLICT (lane) DO UPDATE
         SET next_due_ms = LEAST(COALESCE(l.next_due_ms, EXCLUDED.next_due_ms), EXCLUDED.next_due_ms)",
    )
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
