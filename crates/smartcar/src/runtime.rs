//! What the SDK asks of its runtime: how retries wait ([`Sleep`]) and what time it is
//! ([`Clock`]). A leaf module: tests and simulators install their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How retries wait. The default sleeps with tokio; tests install one that records the
/// delays instead of waiting for them.
pub trait Sleep: Send + Sync + 'static {
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// [`Sleep`] with `tokio::time::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Where the SDK reads the current time (token expiry). The default is the system clock;
/// tests against a simulator with a movable clock install one that reads it.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// Any `Fn() -> DateTime<Utc>` is a clock: `.clock(move || simulator_state.now())`.
impl<F> Clock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync + 'static,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// [`Clock`] reading the system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Shared [`Sleep`] handle.
pub(crate) type SharedSleep = Arc<dyn Sleep>;

/// Shared [`Clock`] handle.
pub(crate) type SharedClock = Arc<dyn Clock>;
