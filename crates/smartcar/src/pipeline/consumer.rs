//! Consumers: claim lanes, run the user's handler on each lane's head event, complete, retry
//! or dead-letter it. See the rules in the module documentation of `pipeline`.

use std::fmt::{self, Display};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sha2::{Digest, Sha256};

use super::backend::{ClaimRef, ClaimRequest, ClaimedRow, Completed, Failed, Renewed};
use super::{Event, PipelineError, WebhookPipeline, clip, now_ms, to_time};
use crate::webhooks::Delivery;

/// How often a running consumer purges old dedup keys.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Longest stored error text.
const MAX_ERROR: usize = 2000;

/// What a consumer did ([`Consumer::run`], [`Consumer::process_due`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Events the handler completed (marked done).
    pub handled: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Events moved to the dead letters (attempts exhausted, or unreadable).
    pub dead_lettered: u64,
    /// Attempts whose result could not be recorded because the claim was lost (the lease
    /// expired and another consumer took the event), or the database failed: the event is
    /// handed over again.
    pub lost: u64,
}

impl ConsumerStats {
    fn add(&mut self, other: ConsumerStats) {
        self.handled += other.handled;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        self.lost += other.lost;
    }
}

/// One consumer of a [`WebhookPipeline`]'s queue: any number of them, in this process and
/// others sharing the database, work on the same queue. Each handles up to
/// [`PipelineConfig::concurrency`](super::PipelineConfig::concurrency) vehicles at a time,
/// one event per vehicle.
///
/// Your handler returns `Ok(())` when the event's effect is done, or an error (any
/// `Display`; stored as the event's last error — do not put secrets in it) to have it
/// retried. A panic counts as an error.
pub struct Consumer {
    pipeline: WebhookPipeline,
    id: String,
    claims: AtomicU64,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("id", &self.id)
            .field("pipeline", &self.pipeline)
            .finish()
    }
}

/// A claimed event, ready for the handler.
struct Claimed {
    row: ClaimedRow,
    event: Event,
}

/// The handler's verdict on one attempt.
enum Verdict {
    Done,
    Failed(String),
}

impl Consumer {
    pub(crate) fn new(pipeline: WebhookPipeline) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let salt = Sha256::new()
            .chain_update(nanos.to_le_bytes())
            .chain_update(std::process::id().to_le_bytes())
            .chain_update(n.to_le_bytes())
            .finalize();
        Consumer {
            pipeline,
            id: format!("{}-{}-{}", std::process::id(), n, hex::encode(&salt[..4])),
            claims: AtomicU64::new(0),
        }
    }

    /// This consumer's id (in `smartcar_webhook_lanes.claimed_by` while it holds a lane).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `handler` on every event, as events become due, until `shutdown` resolves; then
    /// stops claiming, lets the events in flight finish, and returns what it did.
    /// Database errors (a lost connection…) are logged and retried after
    /// [`PipelineConfig::poll_interval`](super::PipelineConfig::poll_interval): nothing is
    /// lost (a claim whose completion could not be written is handed over again when its
    /// lease expires).
    ///
    /// ```no_run
    /// # async fn demo(pipeline: smartcar::pipeline::WebhookPipeline) {
    /// use smartcar::pipeline::Event;
    ///
    /// let consumer = pipeline.consumer();
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let task = tokio::spawn(async move {
    ///     consumer
    ///         .run(
    ///             |event: Event| async move {
    ///                 println!("{} (attempt {})", event.dedup_key, event.attempt);
    ///                 Ok::<(), String>(())
    ///             },
    ///             async { let _ = stopped.await; },
    ///         )
    ///         .await
    /// });
    /// // … later:
    /// let _ = stop.send(());
    /// let stats = task.await.unwrap();
    /// println!("{} events handled", stats.handled);
    /// # }
    /// ```
    pub async fn run<H, Fut, E>(
        &self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> ConsumerStats
    where
        H: Fn(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        self.run_loop(|claimed| self.process_plain(claimed, &handler), shutdown)
            .await
    }

    /// Claims and handles every event that is due now, then returns (for tests, cron-style
    /// workers, or draining a queue): what it did. Events waiting for a retry are not waited
    /// for.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`] when the database fails while claiming.
    pub async fn process_due<H, Fut, E>(&self, handler: H) -> Result<ConsumerStats, PipelineError>
    where
        H: Fn(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        self.drain(|claimed| self.process_plain(claimed, &handler))
            .await
    }

    /// As [`run`](Self::run), on PostgreSQL, with the handler's writes and the event's
    /// completion in one transaction: your handler gets the open transaction (as a
    /// connection) and does its writes on it; the consumer commits them together with the
    /// removal of the event from the queue, after checking that its claim still holds. An
    /// error (or panic) rolls your writes back and schedules a retry. A consumer killed
    /// mid-way leaves a transaction the server rolls back. The effect therefore happens
    /// exactly once, however consumers crash.
    ///
    /// Do not commit or roll back inside the handler (a savepoint through
    /// `sqlx::Connection::begin` is fine). The transaction stays open while your handler
    /// runs: keep it short, and make no slow network call inside it.
    ///
    /// ```no_run
    /// # async fn demo(pipeline: smartcar::pipeline::WebhookPipeline) -> Result<(), smartcar::pipeline::PipelineError> {
    /// use smartcar::pipeline::Event;
    /// use smartcar::store::sqlx;
    ///
    /// let consumer = pipeline.consumer();
    /// consumer
    ///     .run_in_transaction(
    ///         |event: Event, conn: &mut sqlx::PgConnection| {
    ///             Box::pin(async move {
    ///                 sqlx::query("INSERT INTO vehicle_updates (event_key, vehicle) VALUES ($1, $2)")
    ///                     .bind(&event.dedup_key)
    ///                     .bind(&event.vehicle_id)
    ///                     .execute(&mut *conn)
    ///                     .await?;
    ///                 Ok::<(), sqlx::Error>(())
    ///             })
    ///         },
    ///         std::future::pending(),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PipelineError::Unsupported`] at once when the pipeline is not on PostgreSQL (use
    /// [`run`](Self::run) there). Database errors while running are logged and retried, as
    /// by [`run`](Self::run).
    #[cfg(feature = "postgres")]
    pub async fn run_in_transaction<H, E>(
        &self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<ConsumerStats, PipelineError>
    where
        H: for<'c> Fn(
            Event,
            &'c mut sqlx::PgConnection,
        ) -> futures_util::future::BoxFuture<'c, Result<(), E>>,
        E: Display,
    {
        let pool = self.postgres_pool()?;
        Ok(self
            .run_loop(
                |claimed| self.process_in_transaction(&pool, claimed, &handler),
                shutdown,
            )
            .await)
    }

    #[cfg(feature = "postgres")]
    fn postgres_pool(&self) -> Result<sqlx::PgPool, PipelineError> {
        match &self.pipeline.inner.backend {
            super::backend::Backend::Postgres(pool) => Ok(pool.clone()),
            #[allow(unreachable_patterns)]
            other => Err(PipelineError::Unsupported(format!(
                "handlers in a transaction need a PostgreSQL pipeline, and this one is on {}: \
                 use Consumer::run, and make the handler idempotent on Event::dedup_key",
                other.name()
            ))),
        }
    }

    /// As [`process_due`](Self::process_due), with the handler in a transaction (see
    /// [`run_in_transaction`](Self::run_in_transaction)).
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`] when the database fails while claiming;
    /// [`PipelineError::Unsupported`] when the pipeline is not on PostgreSQL.
    #[cfg(feature = "postgres")]
    pub async fn process_due_in_transaction<H, E>(
        &self,
        handler: H,
    ) -> Result<ConsumerStats, PipelineError>
    where
        H: for<'c> Fn(
            Event,
            &'c mut sqlx::PgConnection,
        ) -> futures_util::future::BoxFuture<'c, Result<(), E>>,
        E: Display,
    {
        let pool = self.postgres_pool()?;
        self.drain(|claimed| self.process_in_transaction(&pool, claimed, &handler))
            .await
    }

    /// The claim loop of `run*`: keeps up to `concurrency` lanes in flight.
    async fn run_loop<'a, P, F>(
        &'a self,
        process: P,
        shutdown: impl Future<Output = ()>,
    ) -> ConsumerStats
    where
        P: Fn(Claimed) -> F,
        F: Future<Output = ConsumerStats> + 'a,
    {
        let config = &self.pipeline.inner.config;
        let mut stats = ConsumerStats::default();
        let mut in_flight = FuturesUnordered::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        let mut last_purge: Option<Instant> = None;
        loop {
            // Created before claiming: an enqueue during the claim still wakes the wait below.
            let notified = self.pipeline.inner.enqueued.notified();
            if !stopping {
                if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                    last_purge = Some(Instant::now());
                    if let Err(e) = self.pipeline.purge_dedup_keys(config.dedup_retention).await {
                        tracing::warn!(error = %e, "could not purge old webhook dedup keys");
                    }
                }
                let room = config.concurrency.saturating_sub(in_flight.len());
                if room > 0 {
                    match self.claim(room).await {
                        Ok(claimed) => {
                            for c in claimed {
                                match c {
                                    Ok(c) => in_flight.push(process(c)),
                                    Err(s) => stats.add(s),
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(consumer = %self.id, error = %e, "webhook claim failed; retrying");
                        }
                    }
                }
            }
            if stopping && in_flight.is_empty() {
                return stats;
            }
            // Wait for: an event finished (room for more), new work, or the poll interval.
            let full = in_flight.len() >= config.concurrency;
            tokio::select! {
                biased;
                () = &mut shutdown, if !stopping => stopping = true,
                Some(s) = in_flight.next(), if !in_flight.is_empty() => {
                    stats.add(s);
                    // Take whatever else finished before claiming again.
                    while let Some(Some(s)) = futures_util::FutureExt::now_or_never(in_flight.next()) {
                        stats.add(s);
                    }
                }
                () = notified, if !full && !stopping => {}
                () = tokio::time::sleep(config.poll_interval), if !full && !stopping => {}
            }
        }
    }

    /// The loop of `process_due*`: claim, handle, until nothing is due.
    async fn drain<'a, P, F>(&'a self, process: P) -> Result<ConsumerStats, PipelineError>
    where
        P: Fn(Claimed) -> F,
        F: Future<Output = ConsumerStats> + 'a,
    {
        let mut stats = ConsumerStats::default();
        loop {
            let claimed = self.claim(self.pipeline.inner.config.concurrency).await?;
            if claimed.is_empty() {
                return Ok(stats);
            }
            let mut in_flight = FuturesUnordered::new();
            for c in claimed {
                match c {
                    Ok(c) => in_flight.push(process(c)),
                    Err(s) => stats.add(s),
                }
            }
            while let Some(s) = in_flight.next().await {
                stats.add(s);
            }
        }
    }

    /// Claims up to `limit` lanes: their head events ready for the handler, or (`Err`) what
    /// was done with those that cannot be handed over (unreadable, attempts exhausted).
    async fn claim(
        &self,
        limit: usize,
    ) -> Result<Vec<Result<Claimed, ConsumerStats>>, PipelineError> {
        let inner = &self.pipeline.inner;
        let n = self.claims.fetch_add(1, Ordering::Relaxed);
        let token = format!("{}#{n}", self.id);
        let rows = inner
            .backend
            .claim(ClaimRequest {
                consumer: &self.id,
                token: &token,
                now_ms: now_ms(),
                lease_ms: millis(inner.config.lease),
                limit: i64::try_from(limit).unwrap_or(i64::MAX),
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let max_attempts = inner.config.max_attempts;
            let attempt = u32::try_from(row.attempts.max(0)).unwrap_or(u32::MAX);
            // Poison: the stored body no longer parses. Dead-letter it now.
            let delivery = match Delivery::parse(&row.body) {
                Ok(d) => d,
                Err(e) => {
                    let reason = clip(&format!("the stored body cannot be read: {e}"), MAX_ERROR);
                    out.push(Err(self.give_up(&row, &reason).await));
                    continue;
                }
            };
            if attempt > max_attempts {
                // Claimed before by consumers that never reported back (crashes, lost
                // connections): stop here.
                let reason = format!(
                    "{max_attempts} attempts made without a result (the consumers handling it crashed or lost their lease)"
                );
                out.push(Err(self.give_up(&row, &reason).await));
                continue;
            }
            let stale = matches!(
                (row.oem_updated_at_ms, row.lane_last_oem_ms),
                (Some(oem), Some(last)) if oem < last
            );
            let event = Event {
                delivery,
                dedup_key: row.dedup_key.clone(),
                attempt,
                max_attempts,
                is_test: row.is_test,
                stale,
                vehicle_id: row.vehicle_id.clone(),
                oem_updated_at: row.oem_updated_at_ms.map(to_time),
                received_at: to_time(row.received_at_ms),
                queue_id: row.id,
            };
            out.push(Ok(Claimed { row, event }));
        }
        Ok(out)
    }

    /// Dead-letters a claimed event that cannot be handed over.
    async fn give_up(&self, row: &ClaimedRow, reason: &str) -> ConsumerStats {
        tracing::warn!(dedup_key = %row.dedup_key, lane = %row.lane, reason, "webhook event dead-lettered");
        let claim = claim_ref(row);
        match self
            .pipeline
            .inner
            .backend
            .fail(claim, reason, None, now_ms())
            .await
        {
            Ok(Failed::DeadLettered) => ConsumerStats {
                dead_lettered: 1,
                ..ConsumerStats::default()
            },
            Ok(_) => ConsumerStats {
                lost: 1,
                ..ConsumerStats::default()
            },
            Err(e) => {
                tracing::warn!(error = %e, "could not dead-letter a webhook event; its lease will expire");
                ConsumerStats {
                    lost: 1,
                    ..ConsumerStats::default()
                }
            }
        }
    }

    /// One event through a plain handler, then completion (or retry) in its own transaction.
    async fn process_plain<H, Fut, E>(&self, claimed: Claimed, handler: &H) -> ConsumerStats
    where
        H: Fn(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let Claimed { row, event } = claimed;
        let verdict = self
            .with_lease(&row, CatchUnwind::new(handler(event)))
            .await;
        let claim = claim_ref(&row);
        let backend = &self.pipeline.inner.backend;
        match verdict_of(verdict) {
            Verdict::Done => match backend.complete(claim, row.oem_updated_at_ms).await {
                Ok(Completed::Done) => ConsumerStats {
                    handled: 1,
                    ..ConsumerStats::default()
                },
                Ok(Completed::LeaseLost) => {
                    tracing::warn!(dedup_key = %row.dedup_key, lane = %row.lane,
                        "the lease expired before the event was completed: another consumer handles it again (make the handler idempotent on dedup_key, or raise the lease)");
                    lost()
                }
                Err(e) => {
                    tracing::warn!(dedup_key = %row.dedup_key, error = %e,
                        "could not mark the webhook event done; it is handed over again after the lease");
                    lost()
                }
            },
            Verdict::Failed(error) => self.record_failure(&row, &error).await,
        }
    }

    /// One event through a transactional handler (PostgreSQL).
    #[cfg(feature = "postgres")]
    async fn process_in_transaction<H, E>(
        &self,
        pool: &sqlx::PgPool,
        claimed: Claimed,
        handler: &H,
    ) -> ConsumerStats
    where
        H: for<'c> Fn(
            Event,
            &'c mut sqlx::PgConnection,
        ) -> futures_util::future::BoxFuture<'c, Result<(), E>>,
        E: Display,
    {
        let Claimed { row, event } = claimed;
        let claim = claim_ref(&row);
        let attempt = async {
            let mut tx = pool
                .begin()
                .await
                .map_err(|e| format!("cannot begin the handler's transaction: {e}"))?;
            let verdict = CatchUnwind::new(handler(event, &mut tx)).await;
            match verdict_of(verdict) {
                Verdict::Done => {}
                Verdict::Failed(error) => return Err(error),
            }
            match super::postgres::complete_in(&mut tx, claim, row.oem_updated_at_ms).await {
                Ok(Completed::Done) => {}
                Ok(Completed::LeaseLost) => return Ok(false),
                Err(e) => return Err(format!("cannot complete the event: {e}")),
            }
            tx.commit()
                .await
                .map_err(|e| format!("cannot commit the handler's transaction: {e}"))?;
            Ok(true)
        };
        match self.with_lease(&row, attempt).await {
            Ok(true) => ConsumerStats {
                handled: 1,
                ..ConsumerStats::default()
            },
            Ok(false) => {
                tracing::warn!(dedup_key = %row.dedup_key, lane = %row.lane,
                    "the lease expired before the event was completed: its transaction was rolled back, another consumer handles it");
                lost()
            }
            // The transaction was rolled back (dropped): record the failure apart.
            Err(error) => self.record_failure(&row, &error).await,
        }
    }

    /// Records a failed attempt: a retry after the backoff, or the dead letters.
    async fn record_failure(&self, row: &ClaimedRow, error: &str) -> ConsumerStats {
        let inner = &self.pipeline.inner;
        let attempt = u32::try_from(row.attempts.max(0)).unwrap_or(u32::MAX);
        let error = clip(error, MAX_ERROR);
        let now = now_ms();
        let retry_at = (attempt < inner.config.max_attempts)
            .then(|| now.saturating_add(millis(inner.config.backoff(attempt))));
        tracing::warn!(dedup_key = %row.dedup_key, lane = %row.lane, attempt, error = %error,
            dead_letter = retry_at.is_none(), "webhook handler failed");
        match inner
            .backend
            .fail(claim_ref(row), &error, retry_at, now)
            .await
        {
            Ok(Failed::Retrying) => ConsumerStats {
                retried: 1,
                ..ConsumerStats::default()
            },
            Ok(Failed::DeadLettered) => ConsumerStats {
                dead_lettered: 1,
                ..ConsumerStats::default()
            },
            Ok(Failed::LeaseLost) => lost(),
            Err(e) => {
                tracing::warn!(error = %e, "could not record the failed attempt; it is handed over again after the lease");
                lost()
            }
        }
    }

    /// Runs `work`, renewing the claim's lease every third of it meanwhile. The renewal runs
    /// beside the work, never in its way: a renewal waiting for the database must not hold
    /// up the work's own commit.
    async fn with_lease<T>(&self, row: &ClaimedRow, work: impl Future<Output = T>) -> T {
        let inner = &self.pipeline.inner;
        let lease = inner.config.lease;
        let renew = async {
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + lease / 3, lease / 3);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let until = now_ms().saturating_add(millis(lease));
                match inner.backend.renew(claim_ref(row), until).await {
                    Ok(Renewed::Yes | Renewed::Busy) => {}
                    Ok(Renewed::Lost) => {
                        tracing::warn!(dedup_key = %row.dedup_key, lane = %row.lane,
                        "lease lost while the handler runs: another consumer may take the event (is the lease too short?)")
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
                }
            }
        };
        tokio::select! {
            biased;
            out = work => out,
            never = renew => never,
        }
    }
}

fn lost() -> ConsumerStats {
    ConsumerStats {
        lost: 1,
        ..ConsumerStats::default()
    }
}

fn claim_ref(row: &ClaimedRow) -> ClaimRef<'_> {
    ClaimRef {
        lane: &row.lane,
        token: &row.token,
        id: row.id,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn verdict_of<E: Display>(result: Result<Result<(), E>, String>) -> Verdict {
    match result {
        Ok(Ok(())) => Verdict::Done,
        Ok(Err(e)) => Verdict::Failed(e.to_string()),
        Err(panic) => Verdict::Failed(panic),
    }
}

/// A future whose panic becomes `Err(message)` (the handler is user code: a panic must not
/// take the consumer down, and counts as a failed attempt).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> CatchUnwind<F> {
    fn new(future: F) -> Self {
        CatchUnwind(Box::pin(future))
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".to_owned());
                Poll::Ready(Err(format!(
                    "the handler panicked: {}",
                    clip(&message, 500)
                )))
            }
        }
    }
}
