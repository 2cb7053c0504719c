//! A consumer process of the webhook-pipeline tests (`tests/tests/webhook_pipeline.rs`): one
//! instance of a service consuming the shared PostgreSQL queue with
//! `Consumer::run_in_transaction`, its effect a row of `pipeline_effects`
//! (`smartcar_tests::pipeline::record_effect`).
//!
//! Configuration from the environment: `DATABASE_URL`, `LEASE_MS`, `CONCURRENCY`, `NAME`.
//!
//! - `pipeline_worker drain`: prints `ready`, handles events until the queue is empty, prints
//!   `done <handled> <lost>` and exits.
//! - `pipeline_worker hang`: writes the effect of the first event it claims in its
//!   transaction, prints `handling <dedup_key>` and sleeps (at most 120 s) without committing,
//!   until killed: a consumer that crashes mid-handler.

use std::time::Duration;

use smartcar::pipeline::{PipelineConfig, WebhookPipeline};
use smartcar::webhooks::WebhookVerifier;
use smartcar_tests::pipeline::record_effect;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let lease = Duration::from_millis(var("LEASE_MS").parse().expect("LEASE_MS"));
    let concurrency: usize = var("CONCURRENCY").parse().expect("CONCURRENCY");
    let name = var("NAME");
    let verifier = WebhookVerifier::new("unused: this process only consumes").unwrap();
    let pipeline = WebhookPipeline::postgres(&var("DATABASE_URL"), verifier)
        .await
        .unwrap_or_else(|e| panic!("cannot open the pipeline: {e}"))
        .with_config(
            PipelineConfig::default()
                .lease(lease)
                .concurrency(concurrency)
                .poll_interval(Duration::from_millis(20))
                .retry_backoff(Duration::from_millis(50), Duration::from_millis(200)),
        );
    let consumer = pipeline.consumer();
    match mode.as_str() {
        "drain" => {
            println!("ready");
            let watcher = pipeline.clone();
            let empty = async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    match watcher.stats().await {
                        Ok(s) if s.queued == 0 => return,
                        _ => {}
                    }
                }
            };
            let stats = consumer
                .run_in_transaction(
                    |event, conn| record_effect(name.clone(), event, conn),
                    empty,
                )
                .await
                .unwrap();
            println!("done {} {}", stats.handled, stats.lost);
        }
        "hang" => {
            println!("ready");
            consumer
                .run_in_transaction(
                    |event, conn| {
                        let name = name.clone();
                        Box::pin(async move {
                            let key = event.dedup_key.clone();
                            record_effect(name, event, conn).await?;
                            println!("handling {key}");
                            tokio::time::sleep(Duration::from_secs(120)).await;
                            Ok::<(), sqlx::Error>(())
                        })
                    },
                    std::future::pending(),
                )
                .await
                .unwrap();
        }
        other => panic!("unknown mode {other:?}"),
    }
}
