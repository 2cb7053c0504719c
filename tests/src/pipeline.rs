//! What the webhook-pipeline tests (`tests/tests/webhook_pipeline.rs`) and their worker
//! process (`src/bin/pipeline_worker.rs`) share: signed v3 bodies, and the "effect" a
//! transactional handler writes (one row per event in `pipeline_effects`, with a count that
//! must end at exactly 1 and a sequence that records the order of handling).

use std::future::Future;
use std::pin::Pin;

use smartcar::pipeline::Event;
use sqlx::PgConnection;

/// A boxed future borrowing the connection (what `run_in_transaction` handlers return).
pub type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// The effects table (PostgreSQL): created by the test before the workers start.
pub const EFFECTS_TABLE: &str = "CREATE TABLE IF NOT EXISTS pipeline_effects (
    dedup_key TEXT PRIMARY KEY,
    vehicle TEXT,
    oem_ms BIGINT,
    seq BIGSERIAL,
    count INTEGER NOT NULL DEFAULT 1,
    consumer TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    stale BOOLEAN NOT NULL
)";

/// A transactional handler's effect: counts the event in `pipeline_effects`, inside the
/// handler's transaction.
pub fn record_effect<'c>(
    consumer: String,
    event: Event,
    conn: &'c mut PgConnection,
) -> BoxFuture<'c, Result<(), sqlx::Error>> {
    Box::pin(async move {
        sqlx::query(
            "INSERT INTO pipeline_effects (dedup_key, vehicle, oem_ms, consumer, attempt, stale)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (dedup_key) DO UPDATE SET count = pipeline_effects.count + 1",
        )
        .bind(&event.dedup_key)
        .bind(&event.vehicle_id)
        .bind(event.oem_updated_at.map(|t| t.timestamp_millis()))
        .bind(consumer)
        .bind(i32::try_from(event.attempt).unwrap_or(i32::MAX))
        .bind(event.stale)
        .execute(&mut *conn)
        .await?;
        Ok(())
    })
}

/// A v3 `VEHICLE_STATE` body about `vehicle` whose one signal has `oemUpdatedAt` `oem_ms`,
/// delivered now, in `mode` (`LIVE`, `TEST`…).
pub fn vehicle_state(event_id: &str, vehicle: &str, oem_ms: i64, mode: &str) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    format!(
        r#"{{"eventId":"{event_id}","eventType":"VEHICLE_STATE","vehicleId":"{vehicle}","data":{{"user":{{"id":"u-1"}},"vehicle":{{"id":"{vehicle}","make":"TESLA","model":"Model 3","year":2020}},"triggers":[{{"code":"odometer-traveleddistance"}}],"signals":[{{"code":"odometer-traveleddistance","name":"TraveledDistance","group":"Odometer","body":{{"unit":"km","value":{oem_ms}}},"meta":{{"oemUpdatedAt":{oem_ms},"fetchedAt":{now}}}}}]}},"meta":{{"version":"4.0","deliveryId":"d-{event_id}","deliveredAt":{now},"webhookId":"w-1","webhookName":"Pipeline","signalCount":1,"mode":"{mode}"}}}}"#
    )
}
