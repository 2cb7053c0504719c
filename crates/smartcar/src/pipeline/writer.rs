//! Group commit: concurrent `accept` calls hand their rows to one task, which writes whatever
//! has gathered in one transaction and then answers each caller. Under load a transaction
//! carries many deliveries (one commit, one fsync); alone, a delivery waits for nothing.

use std::collections::HashMap;
use std::sync::Weak;

use tokio::sync::{mpsc, oneshot};

use super::{Inner, NewEvent, PipelineError};

/// One delivery to write; the answer is whether its key was new.
pub(crate) struct Job {
    pub(crate) event: NewEvent,
    pub(crate) reply: oneshot::Sender<Result<bool, PipelineError>>,
}

/// Room in the writer's queue: callers beyond it wait (backpressure, bounded by the accept
/// timeout).
const CAPACITY: usize = 8192;

/// Starts the writer on the current runtime. It stops when the pipeline is dropped.
pub(crate) fn spawn(inner: Weak<Inner>) -> Result<mpsc::Sender<Job>, PipelineError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        PipelineError::Unavailable(
            "no Tokio runtime: call accept from within a Tokio runtime".to_owned(),
        )
    })?;
    let (sender, receiver) = mpsc::channel(CAPACITY);
    runtime.spawn(run(inner, receiver));
    Ok(sender)
}

async fn run(inner: Weak<Inner>, mut receiver: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::new();
    loop {
        let Some(first) = receiver.recv().await else {
            return;
        };
        let Some(pipeline) = inner.upgrade() else {
            return;
        };
        let max = pipeline.config.max_batch;
        jobs.push(first);
        while jobs.len() < max {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        write(&pipeline, &mut jobs).await;
        drop(pipeline);
    }
}

/// Writes one batch and answers its callers. A key twice in the batch is written once; its
/// second caller is told it was a duplicate.
async fn write(pipeline: &Inner, jobs: &mut Vec<Job>) {
    let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(jobs.len());
    let mut unique: Vec<&NewEvent> = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if first_of.contains_key(job.event.dedup_key.as_str()) {
            continue;
        }
        first_of.insert(&job.event.dedup_key, i);
        unique.push(&job.event);
    }
    let result = pipeline.backend.enqueue(&unique, super::now_ms()).await;
    let first: Vec<bool> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| first_of.get(job.event.dedup_key.as_str()) == Some(&i))
        .collect();
    drop(first_of);
    drop(unique);
    match result {
        Ok(inserted) => {
            for (job, first) in jobs.drain(..).zip(first) {
                let new = first && inserted.contains(&job.event.dedup_key);
                let _ = job.reply.send(Ok(new));
            }
            pipeline.enqueued.notify_waiters();
        }
        Err(e) => {
            tracing::warn!(error = %e, rows = jobs.len(), "webhook queue write failed");
            let (message, source) = match e {
                PipelineError::Storage { message, source } => (message, source),
                other => (other.to_string(), None),
            };
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(PipelineError::Storage {
                    message: message.clone(),
                    source: source.clone(),
                }));
            }
        }
    }
}
