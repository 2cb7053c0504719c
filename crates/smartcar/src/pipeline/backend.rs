//! The two databases behind one set of queue operations (SQL in `sqlite.rs` and
//! `postgres.rs`; the rules they share are in the module documentation of `pipeline`).

use std::collections::HashSet;

use super::{DeadLetter, NewEvent, PipelineError, QueueStats};

/// The queue's database.
#[derive(Clone)]
pub(crate) enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// A claimed lane's head event, its attempt counted.
#[derive(Clone, Debug)]
pub(crate) struct ClaimedRow {
    pub(crate) id: i64,
    pub(crate) lane: String,
    pub(crate) token: String,
    pub(crate) dedup_key: String,
    pub(crate) vehicle_id: Option<String>,
    pub(crate) is_test: bool,
    pub(crate) oem_updated_at_ms: Option<i64>,
    pub(crate) received_at_ms: i64,
    pub(crate) body: Vec<u8>,
    pub(crate) attempts: i64,
    /// The newest `oemUpdatedAt` handled in the lane before.
    pub(crate) lane_last_oem_ms: Option<i64>,
}

/// What a failed attempt became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Scheduled again.
    Retrying,
    /// Moved to the dead letters.
    DeadLettered,
    /// The claim was no longer ours (lease expired and taken): nothing written.
    LeaseLost,
}

/// What a lease renewal did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Renewed {
    /// Extended.
    Yes,
    /// The lane row was locked (by the claim's own completion, or an enqueue): not extended
    /// this time.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Busy,
    /// The claim is no longer ours.
    Lost,
}

/// What a completion did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Completed {
    /// Removed from the queue, lane released.
    Done,
    /// The claim was no longer ours: nothing written (another consumer has the event).
    LeaseLost,
}

/// A claim's identity: the lane, and the token written when it was claimed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClaimRef<'a> {
    pub(crate) lane: &'a str,
    pub(crate) token: &'a str,
    pub(crate) id: i64,
}

/// How a claim is taken.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClaimRequest<'a> {
    pub(crate) consumer: &'a str,
    pub(crate) token: &'a str,
    pub(crate) now_ms: i64,
    pub(crate) lease_ms: i64,
    pub(crate) limit: i64,
}

impl Backend {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgres",
        }
    }

    pub(crate) async fn migrate(&self) -> Result<(), PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => super::sqlite::migrate(pool).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => super::postgres::migrate(pool).await,
        }
    }

    /// Writes `events` (keys distinct) in one transaction; returns the keys that were new.
    pub(crate) async fn enqueue(
        &self,
        events: &[&NewEvent],
        now_ms: i64,
    ) -> Result<HashSet<String>, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => super::sqlite::enqueue(pool, events, now_ms).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => super::postgres::enqueue(pool, events, now_ms).await,
        }
    }

    /// Stores an unreadable (but signed) delivery as a dead letter, unless its key was seen.
    pub(crate) async fn dead_letter_new(
        &self,
        event: &NewEvent,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => {
                super::sqlite::dead_letter_new(pool, event, reason, now_ms).await
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                super::postgres::dead_letter_new(pool, event, reason, now_ms).await
            }
        }
    }

    /// Claims up to `limit` lanes whose head is due and returns their heads (attempts
    /// counted). Lanes claimed whose head turned out not to be due are released.
    pub(crate) async fn claim(
        &self,
        request: ClaimRequest<'_>,
    ) -> Result<Vec<ClaimedRow>, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => super::sqlite::claim(pool, request).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => super::postgres::claim(pool, request).await,
        }
    }

    /// Extends a claim's lease, without waiting for a lock.
    pub(crate) async fn renew(
        &self,
        claim: ClaimRef<'_>,
        until_ms: i64,
    ) -> Result<Renewed, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => super::sqlite::renew(pool, claim, until_ms).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => super::postgres::renew(pool, claim, until_ms).await,
        }
    }

    /// Marks the claimed event done and releases its lane.
    pub(crate) async fn complete(
        &self,
        claim: ClaimRef<'_>,
        oem_ms: Option<i64>,
    ) -> Result<Completed, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => super::sqlite::complete(pool, claim, oem_ms).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(PipelineError::storage("cannot begin the completion"))?;
                let done = super::postgres::complete_in(&mut tx, claim, oem_ms).await?;
                if done == Completed::Done {
                    tx.commit()
                        .await
                        .map_err(PipelineError::storage("cannot commit the completion"))?;
                }
                Ok(done)
            }
        }
    }

    /// Records a failed attempt: retried at `retry_at_ms`, or dead-lettered when `None`.
    pub(crate) async fn fail(
        &self,
        claim: ClaimRef<'_>,
        error: &str,
        retry_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Failed, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => {
                super::sqlite::fail(pool, claim, error, retry_at_ms, now_ms).await
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                super::postgres::fail(pool, claim, error, retry_at_ms, now_ms).await
            }
        }
    }

    pub(crate) async fn stats(&self, now_ms: i64) -> Result<QueueStats, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => super::sqlite::stats(pool, now_ms).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => super::postgres::stats(pool, now_ms).await,
        }
    }

    pub(crate) async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => super::sqlite::dead_letters(pool, limit).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => super::postgres::dead_letters(pool, limit).await,
        }
    }

    pub(crate) async fn requeue(&self, id: i64, now_ms: i64) -> Result<bool, PipelineError> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => super::sqlite::requeue(pool, id, now_ms).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => super::postgres::requeue(pool, id, now_ms).await,
        }
    }

    pub(crate) async fn delete_dead_letter(&self, id: i64) -> Result<bool, PipelineError> {
        let what = "cannot delete the dead letter";
        let rows = match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => {
                sqlx::query("DELETE FROM smartcar_webhook_dead_letters WHERE id = ?")
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(PipelineError::storage(what))?
                    .rows_affected()
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                sqlx::query("DELETE FROM smartcar_webhook_dead_letters WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(PipelineError::storage(what))?
                    .rows_affected()
            }
        };
        Ok(rows > 0)
    }

    pub(crate) async fn purge_seen(&self, cutoff_ms: i64) -> Result<u64, PipelineError> {
        let what = "cannot purge old dedup keys";
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => {
                sqlx::query("DELETE FROM smartcar_webhook_seen WHERE received_at_ms < ?")
                    .bind(cutoff_ms)
                    .execute(pool)
                    .await
                    .map_err(PipelineError::storage(what))?
                    .rows_affected()
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                sqlx::query("DELETE FROM smartcar_webhook_seen WHERE received_at_ms < $1")
                    .bind(cutoff_ms)
                    .execute(pool)
                    .await
                    .map_err(PipelineError::storage(what))?
                    .rows_affected()
            }
        })
    }
}

/// Maps a dead-letter row's columns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dead_letter(
    id: i64,
    dedup_key: String,
    vehicle_id: Option<String>,
    event_type: String,
    is_test: bool,
    attempts: i64,
    reason: String,
    received_at_ms: i64,
    dead_at_ms: i64,
    body: Vec<u8>,
) -> DeadLetter {
    DeadLetter {
        id,
        dedup_key,
        vehicle_id,
        event_type,
        is_test,
        attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
        reason,
        received_at: super::to_time(received_at_ms),
        dead_at: super::to_time(dead_at_ms),
        body,
    }
}
