//! A durable webhook receiver: verify → enqueue (SQLite or PostgreSQL) → answer 2xx, then
//! consumers that hand each event to your code, in order per vehicle, with retries, a lease
//! for crashed consumers and a dead-letter table (features `sqlite` / `postgres`).
//!
//! Smartcar expects a 2xx within 15 s, delivers *at least once* (retries at 0, 25, 50 and
//! 100 s, the same `eventId` each time) and promises no order. A receiver that does its work
//! inside the HTTP request loses events when that work is slow or fails, and handles
//! duplicates and reordered events twice or in the wrong order. This module splits the two:
//!
//! 1. **Receive** ([`WebhookPipeline::accept`], or the axum route `pipeline::axum::route`,
//!    feature `axum`): the signature is checked (a delivery whose signature fails is never
//!    stored), a `VERIFY` challenge is answered (not stored), and every other delivery is
//!    written to the queue *before* the 2xx is sent. Concurrent deliveries are written
//!    together, in one transaction per batch (group commit).
//! 2. **Consume** ([`Consumer::run`], [`Consumer::run_in_transaction`] on PostgreSQL): any
//!    number of consumers, in this process or others, claim work from the same queue and call
//!    your handler with an [`Event`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use smartcar::pipeline::{Event, WebhookPipeline};
//! use smartcar::webhooks::{WebhookEvent, WebhookVerifier};
//!
//! let verifier = WebhookVerifier::new(std::env::var("SMARTCAR_MANAGEMENT_TOKEN")?)?;
//! let pipeline = WebhookPipeline::sqlite("webhooks.db", verifier).await?; // created + migrated
//!
//! // Receiving, from any framework: signature header + raw body in, an HTTP answer out.
//! # let (signature, body): (Option<&str>, &[u8]) = (None, b"");
//! match pipeline.accept(signature, body).await {
//!     Ok(accepted) => { /* answer accepted.status(), with accepted.body() if any */ }
//!     Err(e) => { /* answer e.status(): 401 forged, 413 too large, 503 storage down */ }
//! }
//!
//! // Consuming (e.g. in a task of its own), until shutdown resolves.
//! let consumer = pipeline.consumer();
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! consumer
//!     .run(
//!         |event: Event| async move {
//!             if event.is_test || event.stale {
//!                 return Ok(()); // a test delivery, or older than what was already handled
//!             }
//!             if let WebhookEvent::VehicleState(state) = &event.delivery.event {
//!                 println!("{} signals for {}", state.signals.len(), state.vehicle.id);
//!             }
//!             Ok::<(), std::io::Error>(())
//!         },
//!         shutdown,
//!     )
//!     .await;
//! # Ok(()) }
//! ```
//!
//! # The rules
//!
//! - **Deduplication.** Each delivery has a key ([`dedup_key`]): the v3 `eventId`
//!   (constant across the platform's retries); for a v2.0 delivery, which has no event id in
//!   its envelope, `v2:<webhookId>:<payload.eventId>` for `eventBased` payloads and
//!   `v2:<webhookId>:sha256:<hex SHA-256 of the raw body>` otherwise (a retry sends the same
//!   bytes). A key seen before is answered 2xx ([`Accepted::Duplicate`]) and not queued again.
//!   Keys are remembered in `smartcar_webhook_seen` for [`PipelineConfig::dedup_retention`]
//!   (7 days by default; the platform retries for about 3 minutes); consumers purge older
//!   keys about once an hour.
//! - **Order per vehicle.** Events are grouped in *lanes*, one per vehicle (the envelope's
//!   `vehicleId`, `data.vehicle.id`, or the v2.0 payload's `vehicleId`; events about no single
//!   vehicle share one lane per webhook). Within a lane, the handler gets events by their
//!   *order time* — the newest `oemUpdatedAt` of their signals
//!   ([`Delivery::latest_oem_update`]); for an event without one, the `eventTime` of a v2.0
//!   `eventBased` payload, else the signed `meta.deliveredAt`, else the time it was received —,
//!   then by `meta.deliveredAt`, then by arrival. **At most one event per lane is in
//!   flight** across all consumers, so the order holds with any number of them, and an event
//!   that fails blocks its lane (not the others) until it succeeds or is dead-lettered.
//! - **Stale events.** The order above holds between events queued at the same time. An event
//!   that arrives *after* an event of the same vehicle with a newer `oemUpdatedAt` was
//!   handled is still handed over (it may carry signals the newer one did not), with
//!   [`Event::stale`] set: compare before overwriting stored values. Only `oemUpdatedAt` is
//!   compared (an event without one is never stale).
//! - **Leases.** Claiming a lane writes `claimed_until` = now + [`PipelineConfig::lease`]
//!   (30 s by default), renewed every third of it while the handler runs. A consumer that
//!   crashes (or loses its database connection) stops renewing: when the lease expires the
//!   lane is claimed again and its event handed to another consumer. Each claim carries a
//!   token; completing with a token that is no longer the lane's does nothing. Instances'
//!   clocks must agree to well within the lease (NTP).
//! - **Retries.** Attempts are counted when an event is claimed (so a crash counts too). A
//!   handler error (or panic) schedules the next attempt after an exponential backoff
//!   ([`PipelineConfig::retry_initial`], doubling, at most [`PipelineConfig::retry_max`]); after
//!   [`PipelineConfig::max_attempts`] attempts (8 by default) the event moves to the
//!   dead-letter table `smartcar_webhook_dead_letters`, with the last error. It never loops
//!   forever. An event whose stored body no longer parses (a *poison* event) is dead-lettered
//!   at once, as is a correctly signed body that is not a webhook envelope
//!   ([`Accepted::DeadLettered`]: kept for an operator instead of being refused and lost).
//! - **Operators**: [`WebhookPipeline::stats`] (counts by state),
//!   [`WebhookPipeline::dead_letters`], [`WebhookPipeline::requeue_dead_letter`],
//!   [`WebhookPipeline::delete_dead_letter`].
//!
//! # Exactly-once effects
//!
//! Delivery to your handler is at least once: a consumer can crash after your handler did
//! its work and before the event is marked done, and another consumer then runs it again.
//! [`Event::dedup_key`] and [`Event::attempt`] are there to make the *effect* happen once:
//!
//! - **Best, on PostgreSQL**: keep your data in the same database and use
//!   [`Consumer::run_in_transaction`]. Your handler gets the transaction; your writes and the
//!   event's completion commit together, or not at all. A consumer killed mid-way leaves an
//!   uncommitted transaction that the server rolls back; the lease then hands the event to
//!   another consumer, and the effect happens exactly once.
//! - **Elsewhere**: make the effect idempotent on [`Event::dedup_key`] (e.g. a unique
//!   constraint on it in your own table, or an idempotency key on the API you call).
//!
//! # Tables
//!
//! [`WebhookPipeline::migrate`] (run by [`WebhookPipeline::sqlite`] and
//! [`WebhookPipeline::postgres`]) creates `smartcar_webhook_seen` (dedup keys),
//! `smartcar_webhook_events` (the queue), `smartcar_webhook_lanes` (one row per vehicle:
//! claim, lease, newest `oemUpdatedAt` handled), `smartcar_webhook_dead_letters` and
//! `smartcar_webhook_schema_migrations`. Stored bodies are the signed bytes as received; they
//! hold your users' vehicle data (locations…), so treat the database as personal data. No
//! signature or key is stored.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::webhooks::{Delivery, V2Payload, WebhookError, WebhookEvent, WebhookVerifier};

mod backend;
mod consumer;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod writer;

#[cfg(feature = "axum")]
pub mod axum;

use backend::Backend;
pub use consumer::{Consumer, ConsumerStats};

/// Settings of a [`WebhookPipeline`] and its consumers. Start from [`PipelineConfig::default`]
/// and change what you need:
///
/// ```
/// use std::time::Duration;
/// use smartcar::pipeline::PipelineConfig;
///
/// let config = PipelineConfig::default()
///     .lease(Duration::from_secs(60))
///     .max_attempts(5)
///     .concurrency(16);
/// assert_eq!(config.max_attempts, 5);
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// How long a claimed lane stays with its consumer without a renewal (renewed every
    /// third of it while the handler runs). After a crash, its event is handed to another
    /// consumer this long after the last renewal. Default 30 s.
    pub lease: Duration,
    /// Attempts of one event before it is dead-lettered (a crash during an attempt counts).
    /// Default 8.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each later one. Default 1 s.
    pub retry_initial: Duration,
    /// Longest wait between two attempts. Default 5 minutes (with the defaults, an event is
    /// dead-lettered about 9 minutes after its first failure).
    pub retry_max: Duration,
    /// How often an idle consumer looks for work (deliveries accepted by this process wake
    /// its consumers at once). Default 500 ms.
    pub poll_interval: Duration,
    /// Lanes (vehicles) one consumer handles at the same time. Default 8.
    pub concurrency: usize,
    /// How long dedup keys are remembered. Default 7 days.
    pub dedup_retention: Duration,
    /// Longest time [`WebhookPipeline::accept`] waits for the queue write before it answers
    /// [`PipelineError::Unavailable`] (503: the platform retries). Default 10 s, inside the
    /// platform's 15 s.
    pub accept_timeout: Duration,
    /// Most deliveries written in one transaction. Default 512.
    pub max_batch: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            lease: Duration::from_secs(30),
            max_attempts: 8,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(5 * 60),
            poll_interval: Duration::from_millis(500),
            concurrency: 8,
            dedup_retention: Duration::from_secs(7 * 24 * 3600),
            accept_timeout: Duration::from_secs(10),
            max_batch: 512,
        }
    }
}

impl PipelineConfig {
    /// Sets [`lease`](Self::lease) (at least 100 ms).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts) (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets [`retry_initial`](Self::retry_initial) and [`retry_max`](Self::retry_max) (the
    /// maximum is raised to the initial wait if lower).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max.max(initial);
        self
    }

    /// Sets [`poll_interval`](Self::poll_interval) (at least 10 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets [`concurrency`](Self::concurrency) (at least 1).
    pub fn concurrency(mut self, lanes: usize) -> Self {
        self.concurrency = lanes.max(1);
        self
    }

    /// Sets [`dedup_retention`](Self::dedup_retention).
    pub fn dedup_retention(mut self, retention: Duration) -> Self {
        self.dedup_retention = retention;
        self
    }

    /// Sets [`accept_timeout`](Self::accept_timeout).
    pub fn accept_timeout(mut self, timeout: Duration) -> Self {
        self.accept_timeout = timeout;
        self
    }

    /// Sets [`max_batch`](Self::max_batch) (at least 1).
    pub fn max_batch(mut self, rows: usize) -> Self {
        self.max_batch = rows.max(1);
        self
    }

    /// The wait after failed attempt number `attempt` (1 for the first):
    /// `retry_initial × 2^(attempt − 1)`, at most `retry_max`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = smartcar::pipeline::PipelineConfig::default();
    /// assert_eq!(config.backoff(1), Duration::from_secs(1));
    /// assert_eq!(config.backoff(4), Duration::from_secs(8));
    /// assert_eq!(config.backoff(30), Duration::from_secs(300));
    /// ```
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
        self.retry_initial
            .checked_mul(factor)
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }
}

/// Why the pipeline could not take or give a delivery.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The delivery was refused by the [`WebhookVerifier`] (missing or wrong signature, too
    /// old, too large): it was not stored. Answer with [`PipelineError::status`] (401 or 413).
    #[error(transparent)]
    Rejected(WebhookError),
    /// The database failed. For [`WebhookPipeline::accept`], the delivery may or may not be
    /// stored: answer 503 and let the platform retry (the dedup key makes the retry safe).
    #[error("webhook pipeline storage: {message}")]
    Storage {
        /// What was being done.
        message: String,
        /// The database driver's error.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The queue could not be written in time ([`PipelineConfig::accept_timeout`]), or the
    /// pipeline's writer task is gone (its runtime shut down). Answer 503.
    #[error("webhook pipeline unavailable: {0}")]
    Unavailable(String),
    /// The pipeline cannot do what was asked as configured (e.g. a handler in a transaction
    /// on an SQLite pipeline); the message says what to use instead.
    #[error("webhook pipeline: {0}")]
    Unsupported(String),
}

impl PipelineError {
    /// The HTTP status to answer the platform with: 401 for a missing or wrong signature or a
    /// delivery outside the max age, 413 for a body over the limit, 400 for another refusal,
    /// 503 (retry later) when the queue could not be written, 500 for
    /// [`PipelineError::Unsupported`].
    ///
    /// ```
    /// use smartcar::pipeline::PipelineError;
    /// use smartcar::webhooks::WebhookError;
    /// assert_eq!(PipelineError::Rejected(WebhookError::BadSignature).status(), 401);
    /// assert_eq!(PipelineError::Unavailable("busy".into()).status(), 503);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            PipelineError::Rejected(
                WebhookError::MissingSignature
                | WebhookError::BadSignature
                | WebhookError::TooOld { .. }
                | WebhookError::FromTheFuture { .. },
            ) => 401,
            PipelineError::Rejected(WebhookError::BodyTooLarge { .. }) => 413,
            PipelineError::Rejected(_) => 400,
            PipelineError::Storage { .. } | PipelineError::Unavailable(_) => 503,
            PipelineError::Unsupported(_) => 500,
        }
    }

    /// Whether the delivery was refused (nothing stored; the sender is at fault).
    pub fn is_rejection(&self) -> bool {
        matches!(self, PipelineError::Rejected(_))
    }

    pub(crate) fn storage(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let message = message.into();
        move |e| PipelineError::Storage {
            message,
            source: Some(Arc::new(e)),
        }
    }
}

/// What [`WebhookPipeline::accept`] did with a verified delivery. Every case is answered 2xx
/// ([`status`](Self::status), with [`body`](Self::body) when there is one).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Accepted {
    /// Stored in the queue.
    Enqueued {
        /// Its dedup key ([`dedup_key`]).
        dedup_key: String,
        /// A `TEST`-mode delivery ([`Delivery::is_test`]): queued all the same, flagged
        /// ([`Event::is_test`]).
        test: bool,
    },
    /// Its dedup key was seen before (a platform retry, or a replay): acknowledged, not queued
    /// again.
    Duplicate {
        /// The dedup key.
        dedup_key: String,
    },
    /// A verification challenge: answer 200 with this JSON body (nothing is stored).
    Challenge(Value),
    /// Correctly signed, but not a webhook envelope this SDK can read (a new payload shape?):
    /// stored in the dead-letter table for an operator, and acknowledged so that the platform
    /// does not retry something that cannot succeed. Requeue it after upgrading the SDK.
    DeadLettered {
        /// Its dedup key (`eventId` when the body has one, else `sha256:<hex of the body>`).
        dedup_key: String,
        /// Why it could not be read.
        reason: String,
    },
}

impl Accepted {
    /// The HTTP status to answer with (200).
    pub fn status(&self) -> u16 {
        200
    }

    /// The JSON body to answer with: the challenge answer for [`Accepted::Challenge`], none
    /// otherwise.
    pub fn body(&self) -> Option<&Value> {
        match self {
            Accepted::Challenge(reply) => Some(reply),
            _ => None,
        }
    }
}

/// One queued event, as handed to your handler.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Event {
    /// The delivery, parsed again from the stored signed body.
    pub delivery: Delivery,
    /// Its dedup key ([`dedup_key`]): the idempotency key of its effect.
    pub dedup_key: String,
    /// Which attempt this is (1 for the first; a crashed consumer's attempt counts).
    pub attempt: u32,
    /// Attempts allowed before dead-lettering ([`PipelineConfig::max_attempts`]).
    pub max_attempts: u32,
    /// A `TEST`-mode delivery (`meta.mode`): about no real vehicle; act on nothing.
    pub is_test: bool,
    /// An event of the same vehicle with a newer `oemUpdatedAt` was handled before this one
    /// arrived: its values are older than what you stored (see the module's rules).
    pub stale: bool,
    /// The vehicle it is about, when it names one.
    pub vehicle_id: Option<String>,
    /// The newest `oemUpdatedAt` of its signals.
    pub oem_updated_at: Option<DateTime<Utc>>,
    /// When this pipeline received it.
    pub received_at: DateTime<Utc>,
    /// Its position in the queue (arrival order; not stable across a requeue).
    pub queue_id: i64,
}

impl Event {
    /// Whether a failure now dead-letters the event.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// Queue counts, for dashboards and alerts ([`WebhookPipeline::stats`]).
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Events in the queue (waiting, in flight, or waiting for a retry).
    pub queued: u64,
    /// Of those, events that failed at least once (or whose consumer crashed).
    pub retrying: u64,
    /// Lanes (vehicles) claimed by a consumer whose lease is running: events in flight.
    pub in_flight: u64,
    /// Lanes whose claim's lease expired without completion (a crashed or stuck consumer);
    /// they are claimed again by the next consumer that polls.
    pub expired_leases: u64,
    /// Events in the dead-letter table.
    pub dead_letters: u64,
    /// When the oldest queued event was received.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

/// An event in the dead-letter table ([`WebhookPipeline::dead_letters`]).
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead-letter table (for [`WebhookPipeline::requeue_dead_letter`]).
    pub id: i64,
    /// Its dedup key.
    pub dedup_key: String,
    /// The vehicle it is about, when known.
    pub vehicle_id: Option<String>,
    /// `eventType` (v3) or `eventName` (v2), or `unreadable`.
    pub event_type: String,
    /// A `TEST`-mode delivery.
    pub is_test: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Why it was dead-lettered (the handler's last error, or why it could not be read).
    pub reason: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// When it was dead-lettered.
    pub dead_at: DateTime<Utc>,
    /// The signed body as received.
    pub body: Vec<u8>,
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body holds vehicle data: its size only.
        f.debug_struct("DeadLetter")
            .field("id", &self.id)
            .field("dedup_key", &self.dedup_key)
            .field("vehicle_id", &self.vehicle_id)
            .field("event_type", &self.event_type)
            .field("is_test", &self.is_test)
            .field("attempts", &self.attempts)
            .field("reason", &self.reason)
            .field("received_at", &self.received_at)
            .field("dead_at", &self.dead_at)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The dedup key of a verified delivery (see the module's rules): the v3 `eventId`; for v2.0,
/// `v2:<webhookId>:<payload.eventId>` (`eventBased`) or
/// `v2:<webhookId>:sha256:<hex SHA-256 of body>`.
///
/// ```
/// use smartcar::webhooks::Delivery;
/// let v3 = br#"{"eventId":"e-1","eventType":"VEHICLE_TELEPORTED","data":{},"meta":{"deliveryId":"d","deliveredAt":1}}"#;
/// assert_eq!(smartcar::pipeline::dedup_key(&Delivery::parse(v3)?, v3), "e-1");
/// let v2 = br#"{"version":"2.0","webhookId":"w","eventName":"eventBased","payload":{"eventId":"x","vehicleId":"v","eventType":"CHARGING_STARTED","eventTime":"2024-01-01T00:00:00Z"}}"#;
/// assert_eq!(smartcar::pipeline::dedup_key(&Delivery::parse(v2)?, v2), "v2:w:x");
/// # Ok::<(), smartcar::webhooks::WebhookError>(())
/// ```
pub fn dedup_key(delivery: &Delivery, body: &[u8]) -> String {
    if let Some(id) = delivery.event_id.as_deref().filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    let webhook = delivery.webhook_id.as_deref().unwrap_or("");
    match delivery
        .raw
        .pointer("/payload/eventId")
        .and_then(Value::as_str)
    {
        Some(id) if !id.is_empty() => format!("v2:{webhook}:{id}"),
        _ => format!("v2:{webhook}:sha256:{}", hex::encode(Sha256::digest(body))),
    }
}

/// A row to enqueue: what the receiver learned from a verified delivery.
#[derive(Clone, Debug)]
pub(crate) struct NewEvent {
    pub(crate) dedup_key: String,
    pub(crate) lane: String,
    pub(crate) vehicle_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) is_test: bool,
    /// Order within the lane.
    pub(crate) order_ms: i64,
    /// Tie-breaker: `meta.deliveredAt`, else the receive time.
    pub(crate) tie_ms: i64,
    pub(crate) oem_updated_at_ms: Option<i64>,
    pub(crate) delivered_at_ms: Option<i64>,
    pub(crate) body: Vec<u8>,
}

/// A string of at most `max` bytes (cut on a character boundary).
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| clip(s, 200))
}

impl NewEvent {
    pub(crate) fn of(delivery: &Delivery, body: &[u8], now_ms: i64) -> NewEvent {
        let raw = &delivery.raw;
        let vehicle_id = non_empty(raw.get("vehicleId"))
            .or_else(|| non_empty(raw.pointer("/data/vehicle/id")))
            .or_else(|| non_empty(raw.pointer("/payload/vehicleId")))
            .or_else(|| match &delivery.event {
                WebhookEvent::V2(e) => match &e.payload {
                    V2Payload::VehicleData(d) if d.vehicles.len() == 1 => {
                        Some(clip(&d.vehicles[0].vehicle_id, 200))
                    }
                    _ => None,
                },
                _ => None,
            });
        let lane = match &vehicle_id {
            Some(id) => id.clone(),
            // Events about no single vehicle: one lane per webhook (`:` never starts an id).
            None => format!(":webhook:{}", delivery.webhook_id.as_deref().unwrap_or("")),
        };
        let event_type = non_empty(raw.get("eventType"))
            .or_else(|| non_empty(raw.get("eventName")))
            .unwrap_or_else(|| "unknown".to_owned());
        let oem_updated_at_ms = delivery.latest_oem_update().map(|t| t.timestamp_millis());
        let event_time_ms = raw
            .pointer("/payload/eventTime")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis());
        let delivered_at_ms = delivery.delivered_at;
        NewEvent {
            dedup_key: dedup_key(delivery, body),
            lane,
            vehicle_id,
            event_type,
            is_test: delivery.is_test(),
            order_ms: oem_updated_at_ms
                .or(event_time_ms)
                .or(delivered_at_ms)
                .unwrap_or(now_ms),
            tie_ms: delivered_at_ms.unwrap_or(now_ms),
            oem_updated_at_ms,
            delivered_at_ms,
            body: body.to_vec(),
        }
    }

    /// A correctly signed body that is not an envelope: straight to the dead letters.
    fn unreadable(body: &[u8]) -> NewEvent {
        let raw: Option<Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| raw.as_ref().and_then(|r| non_empty(r.get(name)));
        let dedup_key = field("eventId")
            .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))));
        NewEvent {
            dedup_key,
            lane: String::new(),
            vehicle_id: field("vehicleId"),
            event_type: "unreadable".to_owned(),
            is_test: false,
            order_ms: 0,
            tie_ms: 0,
            oem_updated_at_ms: None,
            delivered_at_ms: None,
            body: body.to_vec(),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(crate) fn to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    pub(crate) verifier: WebhookVerifier,
    pub(crate) config: PipelineConfig,
    /// The group-commit writer, started on the first `accept`.
    writer: std::sync::Mutex<Option<mpsc::Sender<writer::Job>>>,
    /// Woken after every batch written by this process (its consumers look for work).
    pub(crate) enqueued: Notify,
}

/// The durable webhook receiver and its queue (see the [module documentation](self)). Cheap to
/// clone (an `Arc`); clones share the queue, the connection pool and the writer.
#[derive(Clone)]
pub struct WebhookPipeline {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for WebhookPipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookPipeline")
            .field("backend", &self.inner.backend.name())
            .field("verifier", &self.inner.verifier)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl WebhookPipeline {
    fn new(backend: Backend, verifier: WebhookVerifier) -> Self {
        WebhookPipeline {
            inner: Arc::new(Inner {
                backend,
                verifier,
                config: PipelineConfig::default(),
                writer: std::sync::Mutex::new(None),
                enqueued: Notify::new(),
            }),
        }
    }

    /// Opens (creating it `0600` if needed) the SQLite database at `path`, in WAL mode, and
    /// applies the migrations. One file serves any number of consumers in this process (and
    /// in other processes on the same machine: SQLite has one writer at a time, which the
    /// pipeline's transactions wait for).
    ///
    /// ```no_run
    /// # async fn demo(verifier: smartcar::webhooks::WebhookVerifier) -> Result<(), smartcar::pipeline::PipelineError> {
    /// let pipeline = smartcar::pipeline::WebhookPipeline::sqlite("/var/lib/app/webhooks.db", verifier).await?;
    /// # let _ = pipeline;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`] when the file cannot be opened or created, or a migration
    /// fails.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite(
        path: impl AsRef<std::path::Path>,
        verifier: WebhookVerifier,
    ) -> Result<Self, PipelineError> {
        let pool = sqlite::open(path.as_ref()).await?;
        let pipeline = Self::sqlite_from_pool(pool, verifier);
        pipeline.migrate().await?;
        Ok(pipeline)
    }

    /// A pipeline over an SQLite pool of your own (open it in WAL mode with a busy timeout;
    /// [`WebhookPipeline::sqlite`] does). Call [`migrate`](Self::migrate) once before use.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_from_pool(pool: sqlx::SqlitePool, verifier: WebhookVerifier) -> Self {
        Self::new(Backend::Sqlite(pool), verifier)
    }

    /// Connects a pool (at most 16 connections) to the PostgreSQL database at `url` and
    /// applies the migrations. Any number of instances may share the database: they share one
    /// queue.
    ///
    /// ```no_run
    /// # async fn demo(verifier: smartcar::webhooks::WebhookVerifier) -> Result<(), smartcar::pipeline::PipelineError> {
    /// let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set");
    /// let pipeline = smartcar::pipeline::WebhookPipeline::postgres(&url, verifier).await?;
    /// # let _ = pipeline;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`] when the URL is invalid, the server cannot be reached or a
    /// migration fails.
    #[cfg(feature = "postgres")]
    pub async fn postgres(url: &str, verifier: WebhookVerifier) -> Result<Self, PipelineError> {
        let pool = postgres::connect(url).await?;
        let pipeline = Self::postgres_from_pool(pool, verifier);
        pipeline.migrate().await?;
        Ok(pipeline)
    }

    /// A pipeline over a PostgreSQL pool of your own. Call [`migrate`](Self::migrate) once
    /// before use. Give the pool at least [`PipelineConfig::concurrency`] + 2 connections per
    /// consumer.
    #[cfg(feature = "postgres")]
    pub fn postgres_from_pool(pool: sqlx::PgPool, verifier: WebhookVerifier) -> Self {
        Self::new(Backend::Postgres(pool), verifier)
    }

    /// This pipeline with other settings. Call it before the first
    /// [`accept`](Self::accept) or [`consumer`](Self::consumer): it makes a new handle, which
    /// does not share the previous one's writer.
    ///
    /// ```no_run
    /// # async fn demo(verifier: smartcar::webhooks::WebhookVerifier) -> Result<(), smartcar::pipeline::PipelineError> {
    /// use std::time::Duration;
    /// use smartcar::pipeline::{PipelineConfig, WebhookPipeline};
    /// let pipeline = WebhookPipeline::sqlite("webhooks.db", verifier)
    ///     .await?
    ///     .with_config(PipelineConfig::default().max_attempts(5).lease(Duration::from_secs(60)));
    /// # let _ = pipeline;
    /// # Ok(()) }
    /// ```
    pub fn with_config(self, config: PipelineConfig) -> Self {
        WebhookPipeline {
            inner: Arc::new(Inner {
                backend: self.inner.backend.clone(),
                verifier: self.inner.verifier.clone(),
                config,
                writer: std::sync::Mutex::new(None),
                enqueued: Notify::new(),
            }),
        }
    }

    /// The SQLite pool of this pipeline (`None` on PostgreSQL): to keep your own tables in the
    /// same file (the effects of your handler, read models…).
    ///
    /// ```no_run
    /// # async fn demo(pipeline: smartcar::pipeline::WebhookPipeline) -> Result<(), Box<dyn std::error::Error>> {
    /// if let Some(pool) = pipeline.sqlite_pool() {
    ///     smartcar::store::sqlx::query("CREATE TABLE IF NOT EXISTS seen_vehicles (id TEXT PRIMARY KEY)")
    ///         .execute(pool)
    ///         .await?;
    /// }
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => Some(pool),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The PostgreSQL pool of this pipeline (`None` on SQLite).
    #[cfg(feature = "postgres")]
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.inner.backend {
            Backend::Postgres(pool) => Some(pool),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &PipelineConfig {
        &self.inner.config
    }

    /// The verifier deliveries are checked with.
    pub fn verifier(&self) -> &WebhookVerifier {
        &self.inner.verifier
    }

    /// Creates the pipeline's tables if needed (idempotent; concurrent calls from several
    /// instances are serialised). The SQL is in the crate (`src/pipeline/migrations/`);
    /// versions are recorded in `smartcar_webhook_schema_migrations`.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`] when the database refuses (no right to create tables?).
    pub async fn migrate(&self) -> Result<(), PipelineError> {
        self.inner.backend.migrate().await
    }

    /// Receives one delivery: `signature` is the `SC-Signature` header, `body` the raw bytes.
    ///
    /// Verifies it (a delivery that fails is never stored), answers a verification challenge
    /// ([`Accepted::Challenge`]), and stores anything else before returning
    /// ([`Accepted::Enqueued`], [`Accepted::Duplicate`], or [`Accepted::DeadLettered`] for a
    /// signed body that is not an envelope). Answer the platform with
    /// [`Accepted::status`] (and [`Accepted::body`]), or with [`PipelineError::status`].
    ///
    /// ```no_run
    /// # async fn demo(pipeline: smartcar::pipeline::WebhookPipeline, signature: Option<&str>, body: &[u8]) {
    /// let (status, reply) = match pipeline.accept(signature, body).await {
    ///     Ok(accepted) => (accepted.status(), accepted.body().map(|b| b.to_string())),
    ///     Err(e) => (e.status(), None),
    /// };
    /// # let _ = (status, reply);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PipelineError::Rejected`] for a delivery the verifier refuses;
    /// [`PipelineError::Storage`] or [`PipelineError::Unavailable`] when it could not be
    /// stored in time (answer 503: the platform retries).
    pub async fn accept(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Accepted, PipelineError> {
        // The verifier checks the signature before it parses: `Malformed` means correctly
        // signed.
        let delivery = match self.inner.verifier.verify(signature, body) {
            Ok(delivery) => delivery,
            Err(WebhookError::Malformed(why)) => {
                let event = NewEvent::unreadable(body);
                let reason = clip(&format!("not a webhook envelope: {why}"), 2000);
                let dedup_key = event.dedup_key.clone();
                tracing::warn!(
                    dedup_key = %dedup_key,
                    "a correctly signed webhook body is not an envelope this SDK reads: dead-lettered"
                );
                let stored = self
                    .inner
                    .backend
                    .dead_letter_new(&event, &reason, now_ms())
                    .await?;
                return Ok(if stored {
                    Accepted::DeadLettered { dedup_key, reason }
                } else {
                    Accepted::Duplicate { dedup_key }
                });
            }
            Err(e) => return Err(PipelineError::Rejected(e)),
        };
        if let WebhookEvent::Verify { challenge } = &delivery.event {
            return Ok(Accepted::Challenge(
                self.inner.verifier.challenge_response(challenge),
            ));
        }
        let event = NewEvent::of(&delivery, body, now_ms());
        let dedup_key = event.dedup_key.clone();
        let test = event.is_test;
        let inserted = self.submit(event).await?;
        Ok(if inserted {
            Accepted::Enqueued { dedup_key, test }
        } else {
            Accepted::Duplicate { dedup_key }
        })
    }

    /// Hands `event` to the writer and waits for its transaction: whether it was new.
    async fn submit(&self, event: NewEvent) -> Result<bool, PipelineError> {
        let sender = self.writer()?;
        let (reply, answer) = oneshot::channel();
        let deadline = self.inner.config.accept_timeout;
        let wait = async {
            sender
                .send(writer::Job { event, reply })
                .await
                .map_err(|_| PipelineError::Unavailable("the queue writer stopped".to_owned()))?;
            answer.await.map_err(|_| {
                PipelineError::Unavailable("the queue writer stopped mid-batch".to_owned())
            })?
        };
        match tokio::time::timeout(deadline, wait).await {
            Ok(result) => result,
            Err(_) => Err(PipelineError::Unavailable(format!(
                "the queue was not written within {deadline:?}: the database is slow or \
                 unreachable (the platform will retry the delivery)"
            ))),
        }
    }

    /// The writer's queue, starting the writer on first use (or again, when the runtime it
    /// ran on was shut down).
    fn writer(&self) -> Result<mpsc::Sender<writer::Job>, PipelineError> {
        let mut slot = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        let sender = writer::spawn(Arc::downgrade(&self.inner))?;
        *slot = Some(sender.clone());
        Ok(sender)
    }

    /// A new consumer of this pipeline's queue, with an id of its own (see [`Consumer`]).
    pub fn consumer(&self) -> Consumer {
        Consumer::new(self.clone())
    }

    /// Counts by state (see [`QueueStats`]).
    ///
    /// ```no_run
    /// # async fn demo(pipeline: smartcar::pipeline::WebhookPipeline) -> Result<(), smartcar::pipeline::PipelineError> {
    /// let stats = pipeline.stats().await?;
    /// if stats.dead_letters > 0 || stats.expired_leases > 0 {
    ///     eprintln!("webhook queue needs attention: {stats:?}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`].
    pub async fn stats(&self) -> Result<QueueStats, PipelineError> {
        self.inner.backend.stats(now_ms()).await
    }

    /// The oldest `limit` dead letters, oldest first.
    ///
    /// ```no_run
    /// # async fn demo(pipeline: smartcar::pipeline::WebhookPipeline) -> Result<(), smartcar::pipeline::PipelineError> {
    /// for dead in pipeline.dead_letters(50).await? {
    ///     println!("{} {} after {} attempts: {}", dead.id, dead.event_type, dead.attempts, dead.reason);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`].
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, PipelineError> {
        self.inner.backend.dead_letters(limit).await
    }

    /// Moves dead letter `id` back into the queue (attempts start again from 0, due now), once
    /// its cause is fixed. Returns whether it existed (false: unknown id, or already
    /// requeued by someone else).
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`].
    pub async fn requeue_dead_letter(&self, id: i64) -> Result<bool, PipelineError> {
        let requeued = self.inner.backend.requeue(id, now_ms()).await?;
        if requeued {
            self.inner.enqueued.notify_waiters();
        }
        Ok(requeued)
    }

    /// Deletes dead letter `id` for good. Returns whether it existed.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`].
    pub async fn delete_dead_letter(&self, id: i64) -> Result<bool, PipelineError> {
        self.inner.backend.delete_dead_letter(id).await
    }

    /// Forgets dedup keys received more than `older_than` ago (consumers do it about once an
    /// hour with [`PipelineConfig::dedup_retention`]); returns how many.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Storage`].
    pub async fn purge_dedup_keys(&self, older_than: Duration) -> Result<u64, PipelineError> {
        let cutoff =
            now_ms().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        self.inner.backend.purge_seen(cutoff).await
    }
}
