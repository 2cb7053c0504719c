-- smartcar-sdk webhook pipeline, SQLite, version 1.
-- Applied by WebhookPipeline::migrate (recorded in smartcar_webhook_schema_migrations).
-- Times are milliseconds since the Unix epoch (INTEGER), as in the PostgreSQL version.

-- Dedup keys of every delivery accepted (eventId for v3), kept for the dedup retention.
CREATE TABLE IF NOT EXISTS smartcar_webhook_seen (
    dedup_key TEXT PRIMARY KEY NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS smartcar_webhook_seen_received_at
    ON smartcar_webhook_seen (received_at_ms);

-- The queue: one row per event until it is handled (deleted) or dead-lettered (moved).
CREATE TABLE IF NOT EXISTS smartcar_webhook_events (
    -- Arrival order.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT NOT NULL,
    -- The vehicle id, or ':webhook:<id>' for events about no single vehicle.
    lane TEXT NOT NULL,
    vehicle_id TEXT,
    event_type TEXT NOT NULL,
    is_test INTEGER NOT NULL,
    -- Order within the lane: newest oemUpdatedAt, else eventTime (v2), deliveredAt, receipt.
    order_ms INTEGER NOT NULL,
    -- Tie-breaker: meta.deliveredAt, else receipt.
    tie_ms INTEGER NOT NULL,
    oem_updated_at_ms INTEGER,
    delivered_at_ms INTEGER,
    received_at_ms INTEGER NOT NULL,
    -- The signed body as received.
    body BLOB NOT NULL,
    -- Attempts claimed so far.
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS smartcar_webhook_events_lane_order
    ON smartcar_webhook_events (lane, order_ms, tie_ms, id);

-- One row per lane: who holds it and until when, when its head is due, what was handled.
CREATE TABLE IF NOT EXISTS smartcar_webhook_lanes (
    lane TEXT PRIMARY KEY NOT NULL,
    -- When the lane's head event is due; NULL when the lane is empty.
    next_due_ms INTEGER,
    -- The claim: a token per claim, the consumer, the lease.
    claim_token TEXT,
    claimed_by TEXT,
    claimed_until_ms INTEGER,
    -- The newest oemUpdatedAt handled in the lane (stale detection).
    last_oem_updated_at_ms INTEGER,
    handled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS smartcar_webhook_lanes_due
    ON smartcar_webhook_lanes (next_due_ms) WHERE next_due_ms IS NOT NULL;

-- Events that failed max_attempts times, could not be read, or were signed but unreadable.
CREATE TABLE IF NOT EXISTS smartcar_webhook_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT NOT NULL,
    lane TEXT NOT NULL,
    vehicle_id TEXT,
    event_type TEXT NOT NULL,
    is_test INTEGER NOT NULL,
    order_ms INTEGER NOT NULL,
    tie_ms INTEGER NOT NULL,
    oem_updated_at_ms INTEGER,
    delivered_at_ms INTEGER,
    received_at_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    dead_at_ms INTEGER NOT NULL
);
