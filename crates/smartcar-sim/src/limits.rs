//! The platform's three request limits (Smartcar's API-limits docs, v3 facts §6.2), off until a
//! test or the CLI sets them:
//!
//! - an **application-wide bucket** (the docs' default: 120 requests, refilling 2 a minute):
//!   every request to the API hosts (v2.0 API and Vehicle API v3) takes a token; without one
//!   the answer is 429 `RATE_LIMIT`/`SMARTCAR_API`;
//! - a **per-vehicle throttle** (its value is not published; users report 2 requests then
//!   "retry after 120 s"): at most `burst` requests about one vehicle in any `window`; past it
//!   429 `RATE_LIMIT`/`VEHICLE` with `retry-after` (seconds until a slot frees);
//! - a **monthly allowance of calls per vehicle** (e.g. 500 on a free plan): successful calls
//!   about a vehicle, each batch item counted, per calendar month of the simulated clock; once
//!   used up, 430 `BILLING`/`VEHICLE_REQUEST_LIMIT` until the month ends.
//!
//! Checked before the route, in the order bucket, allowance, throttle; a refused request uses
//! no allowance, and one the allowance refuses takes no throttle slot. Which
//! requests a limit applies to comes from the operation the request reached (its host and
//! whether its path names a vehicle), so the simulator's own paths, Connect, the token and
//! management endpoints are never limited. The 429 `SMARTCAR_API` also carries `retry-after`
//! (the docs only say to back off; unverified). All times are the simulated clock's, so tests
//! move through a window or a month with `advance`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use smartcar_api::op::Host;

/// The limits in force; `None` turns one off. [`Limits::default`] is all off;
/// [`Limits::platform`] is the docs' values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// The application-wide bucket.
    pub app: Option<AppBucket>,
    /// The per-vehicle throttle.
    pub vehicle: Option<VehicleThrottle>,
    /// Calls allowed per vehicle per calendar month.
    pub monthly_allowance: Option<u32>,
}

impl Limits {
    /// The values Smartcar's docs give: a bucket of 120 requests refilling 2 a minute, and a
    /// monthly allowance of 500 calls per vehicle (the free plan's example). The per-vehicle
    /// throttle is unpublished; this takes what users report: 2 requests per 120 seconds.
    pub fn platform() -> Self {
        Limits {
            app: Some(AppBucket {
                capacity: 120,
                refill_per_minute: 2.0,
            }),
            vehicle: Some(VehicleThrottle {
                burst: 2,
                window: Duration::from_secs(120),
            }),
            monthly_allowance: Some(500),
        }
    }

    /// Whether any limit is on.
    pub fn any(&self) -> bool {
        self.app.is_some() || self.vehicle.is_some() || self.monthly_allowance.is_some()
    }
}

/// A token bucket: `capacity` requests at once, refilling `refill_per_minute` a minute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppBucket {
    /// Tokens when full (at least 1).
    pub capacity: u32,
    /// Tokens added per minute (above 0).
    pub refill_per_minute: f64,
}

/// At most `burst` requests about one vehicle in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VehicleThrottle {
    /// Requests allowed in a window (at least 1).
    pub burst: u32,
    /// The sliding window (above zero).
    pub window: Duration,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 429 `RATE_LIMIT`/`SMARTCAR_API`; seconds until a token is back.
    App(u64),
    /// 429 `RATE_LIMIT`/`VEHICLE`; seconds until a slot frees.
    Vehicle(u64),
    /// 430 `BILLING`/`VEHICLE_REQUEST_LIMIT`.
    Billing,
}

/// What a request counts for: the API (the app bucket) and, when its path names one, a
/// vehicle (throttle and allowance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metered {
    /// The vehicle the request is about.
    pub vehicle: Option<String>,
}

/// How many times the limits refused, by kind, and the calls billed (for tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitCounters {
    /// 429 `SMARTCAR_API` answered.
    pub app_limited: u64,
    /// 429 `VEHICLE` answered.
    pub vehicle_throttled: u64,
    /// 430 `VEHICLE_REQUEST_LIMIT` answered.
    pub billing_refused: u64,
    /// Calls billed in all (batch items one by one).
    pub billed: u64,
}

#[derive(Debug, Default)]
struct Usage {
    /// Tokens left and when they were last topped up.
    bucket: Option<(f64, DateTime<Utc>)>,
    /// Per vehicle: when its recent requests were admitted (oldest first).
    recent: HashMap<String, VecDeque<DateTime<Utc>>>,
    /// Per (vehicle, year, month): calls billed.
    billed: HashMap<(String, i32, u32), u32>,
}

/// The limits of one simulator and what they have counted.
#[derive(Debug, Default)]
pub struct LimitSet {
    on: AtomicBool,
    limits: Mutex<Limits>,
    usage: Mutex<Usage>,
    app_limited: AtomicU64,
    vehicle_throttled: AtomicU64,
    billing_refused: AtomicU64,
    billed: AtomicU64,
}

/// At most this many vehicles' recent requests are remembered (the oldest vehicle is forgotten
/// past it), which bounds the memory a client can make the throttle hold.
const MAX_TRACKED_VEHICLES: usize = 100_000;

impl LimitSet {
    /// Replaces the limits in force (usage so far is kept).
    ///
    /// # Errors
    ///
    /// A bucket of capacity 0 or a refill not above 0, a throttle of burst 0 or an empty
    /// window.
    pub fn set(&self, limits: Limits) -> Result<(), String> {
        if let Some(b) = limits.app
            && (b.capacity == 0 || !b.refill_per_minute.is_finite() || b.refill_per_minute <= 0.0)
        {
            return Err(
                "the application bucket needs a capacity of at least 1 and a refill above 0".into(),
            );
        }
        if let Some(t) = limits.vehicle
            && (t.burst == 0 || t.window.is_zero())
        {
            return Err("the vehicle throttle needs a burst of at least 1 and a window".into());
        }
        let on = limits.any();
        *self.lock_limits() = limits;
        self.on.store(on, Ordering::Release);
        Ok(())
    }

    /// The limits in force.
    pub fn get(&self) -> Limits {
        self.lock_limits().clone()
    }

    /// Whether any limit is on (the cheap check of every request).
    pub fn on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// What the limits counted.
    pub fn counters(&self) -> LimitCounters {
        LimitCounters {
            app_limited: self.app_limited.load(Ordering::Relaxed),
            vehicle_throttled: self.vehicle_throttled.load(Ordering::Relaxed),
            billing_refused: self.billing_refused.load(Ordering::Relaxed),
            billed: self.billed.load(Ordering::Relaxed),
        }
    }

    /// Calls billed to `vehicle` in the calendar month of `now`.
    pub fn billed(&self, vehicle: &str, now: DateTime<Utc>) -> u32 {
        let key = (vehicle.to_owned(), now.year(), now.month());
        self.lock_usage().billed.get(&key).copied().unwrap_or(0)
    }

    /// Forgets all usage (the bucket refills, windows and months start over).
    pub fn reset_usage(&self) {
        *self.lock_usage() = Usage::default();
    }

    fn lock_limits(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a metered request at `now`, or says why not. An admitted request has taken its
    /// bucket token and its throttle slot.
    pub fn admit(&self, metered: &Metered, now: DateTime<Utc>) -> Result<(), Refusal> {
        let limits = self.get();
        let mut usage = self.lock_usage();
        if let Some(b) = limits.app {
            let capacity = f64::from(b.capacity);
            let (tokens, at) = usage.bucket.unwrap_or((capacity, now));
            // Microseconds: truncating each interval to milliseconds would lose up to a
            // millisecond of refill per request and make the bucket stricter than it says.
            let minutes =
                (now - at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 60_000_000.0;
            let tokens = (tokens + minutes * b.refill_per_minute).min(capacity);
            if tokens < 1.0 {
                usage.bucket = Some((tokens, now));
                self.app_limited.fetch_add(1, Ordering::Relaxed);
                let wait = (1.0 - tokens) / b.refill_per_minute * 60.0;
                return Err(Refusal::App(wait.ceil().max(1.0) as u64));
            }
            usage.bucket = Some((tokens - 1.0, now));
        }
        let Some(vehicle) = metered.vehicle.as_deref() else {
            return Ok(());
        };
        if let Some(allowance) = limits.monthly_allowance {
            let key = (vehicle.to_owned(), now.year(), now.month());
            if usage.billed.get(&key).copied().unwrap_or(0) >= allowance {
                self.billing_refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Billing);
            }
        }
        if let Some(t) = limits.vehicle {
            let window = chrono::Duration::from_std(t.window).unwrap_or(chrono::Duration::MAX);
            if !usage.recent.contains_key(vehicle) && usage.recent.len() >= MAX_TRACKED_VEHICLES {
                // Forget a vehicle whose window has passed, else any one.
                let stale = usage
                    .recent
                    .iter()
                    .find(|(_, q)| q.back().is_none_or(|last| *last + window <= now))
                    .or_else(|| usage.recent.iter().next())
                    .map(|(k, _)| k.clone());
                if let Some(stale) = stale {
                    usage.recent.remove(&stale);
                }
            }
            let recent = usage.recent.entry(vehicle.to_owned()).or_default();
            while recent.front().is_some_and(|first| *first + window <= now) {
                recent.pop_front();
            }
            if recent.len() >= t.burst as usize {
                let frees = recent.front().map_or(now, |first| *first + window);
                let wait = (frees - now).num_milliseconds().max(0) as f64 / 1000.0;
                self.vehicle_throttled.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Vehicle(wait.ceil().max(1.0) as u64));
            }
            recent.push_back(now);
        }
        Ok(())
    }

    /// Bills `calls` successful calls to `vehicle` in the month of `now`.
    pub fn bill(&self, vehicle: &str, calls: u32, now: DateTime<Utc>) {
        if calls == 0 {
            return;
        }
        let key = (vehicle.to_owned(), now.year(), now.month());
        let mut usage = self.lock_usage();
        let used = usage.billed.entry(key).or_default();
        *used = used.saturating_add(calls);
        self.billed.fetch_add(u64::from(calls), Ordering::Relaxed);
    }
}

/// Calls a successful response bills (set by the batch route: one per item); without it a 2xx
/// bills one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BilledCalls(pub(crate) u32);

/// What a request to `path`, routed to `template` (`MatchedPath`) with `method`, counts for; `None`:
/// no limit applies (not an API host's operation).
pub(crate) fn metered(method: &str, template: &str, path: &str) -> Option<Metered> {
    let op = crate::routing::operation_at(method, template)?;
    if !matches!(op.host, Host::Api | Host::Vehicle) {
        return None;
    }
    let position = template
        .split('/')
        .position(|segment| segment == "{vehicle_id}");
    let vehicle = position.and_then(|i| path.split('/').nth(i).map(str::to_owned));
    Some(Metered { vehicle })
}

/// Parses `CAPACITY/PER_MINUTE` (`120/2`): the application bucket of the CLI and the control
/// API.
pub fn parse_app_bucket(text: &str) -> Result<AppBucket, String> {
    let bad = || format!("an application bucket is CAPACITY/PER_MINUTE (`120/2`), found `{text}`");
    let (capacity, refill) = text.split_once('/').ok_or_else(bad)?;
    let bucket = AppBucket {
        capacity: capacity.trim().parse().map_err(|_| bad())?,
        refill_per_minute: refill.trim().parse().map_err(|_| bad())?,
    };
    if bucket.capacity == 0
        || bucket.refill_per_minute <= 0.0
        || !bucket.refill_per_minute.is_finite()
    {
        return Err(bad());
    }
    Ok(bucket)
}

/// Parses `BURST/SECONDS` (`2/120`): the vehicle throttle of the CLI and the control API.
pub fn parse_vehicle_throttle(text: &str) -> Result<VehicleThrottle, String> {
    let bad = || format!("a vehicle throttle is BURST/SECONDS (`2/120`), found `{text}`");
    let (burst, secs) = text.split_once('/').ok_or_else(bad)?;
    let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
    let secs: u64 = secs.trim().parse().map_err(|_| bad())?;
    if burst == 0 || secs == 0 || secs > 31 * 24 * 3600 {
        return Err(bad());
    }
    Ok(VehicleThrottle {
        burst,
        window: Duration::from_secs(secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_767_225_600 + secs, 0).unwrap_or_default()
    }

    fn car(id: &str) -> Metered {
        Metered {
            vehicle: Some(id.to_owned()),
        }
    }

    #[test]
    fn the_bucket_empties_and_refills_with_time() {
        let set = LimitSet::default();
        set.set(Limits {
            app: Some(AppBucket {
                capacity: 3,
                refill_per_minute: 2.0,
            }),
            ..Limits::default()
        })
        .unwrap();
        let none = Metered { vehicle: None };
        for _ in 0..3 {
            assert_eq!(set.admit(&none, at(0)), Ok(()));
        }
        assert_eq!(set.admit(&none, at(0)), Err(Refusal::App(30)));
        assert_eq!(set.admit(&none, at(29)), Err(Refusal::App(1)));
        assert_eq!(set.admit(&none, at(30)), Ok(()));
        assert_eq!(set.admit(&none, at(30)), Err(Refusal::App(30)));
        assert_eq!(set.counters().app_limited, 3);
    }

    #[test]
    fn the_throttle_is_per_vehicle_and_slides() {
        let set = LimitSet::default();
        set.set(Limits {
            vehicle: Some(VehicleThrottle {
                burst: 2,
                window: Duration::from_secs(120),
            }),
            ..Limits::default()
        })
        .unwrap();
        assert_eq!(set.admit(&car("a"), at(0)), Ok(()));
        assert_eq!(set.admit(&car("a"), at(10)), Ok(()));
        assert_eq!(set.admit(&car("a"), at(20)), Err(Refusal::Vehicle(100)));
        assert_eq!(set.admit(&car("b"), at(20)), Ok(()), "another vehicle");
        assert_eq!(
            set.admit(&car("a"), at(120)),
            Ok(()),
            "the first slot freed"
        );
        assert_eq!(set.admit(&car("a"), at(121)), Err(Refusal::Vehicle(9)));
    }

    #[test]
    fn the_allowance_is_per_vehicle_and_calendar_month() {
        let set = LimitSet::default();
        set.set(Limits {
            monthly_allowance: Some(3),
            ..Limits::default()
        })
        .unwrap();
        let jan = at(0);
        assert_eq!(set.admit(&car("a"), jan), Ok(()));
        set.bill("a", 3, jan);
        assert_eq!(set.admit(&car("a"), jan), Err(Refusal::Billing));
        assert_eq!(set.admit(&car("b"), jan), Ok(()));
        let feb = at(31 * 24 * 3600);
        assert_eq!(set.admit(&car("a"), feb), Ok(()), "a new month");
        assert_eq!(set.billed("a", jan), 3);
        assert_eq!(set.billed("a", feb), 0);
        assert_eq!(set.counters().billed, 3);
    }

    #[test]
    fn invalid_limits_are_refused_and_all_off_is_off() {
        let set = LimitSet::default();
        assert!(!set.on());
        assert!(
            set.set(Limits {
                app: Some(AppBucket {
                    capacity: 0,
                    refill_per_minute: 1.0
                }),
                ..Limits::default()
            })
            .is_err()
        );
        assert!(!set.on(), "nothing changed");
        set.set(Limits::platform()).unwrap();
        assert!(set.on());
        set.set(Limits::default()).unwrap();
        assert!(!set.on());
    }

    #[test]
    fn what_a_request_counts_for_comes_from_its_operation() {
        let odometer = smartcar_api::ops::GET_ODOMETER.path;
        assert_eq!(
            metered("GET", odometer, "/v2.0/vehicles/v-1/odometer"),
            Some(car("v-1"))
        );
        assert_eq!(
            metered(
                "GET",
                smartcar_api::ops::LIST_VEHICLES.path,
                "/v2.0/vehicles"
            ),
            Some(Metered { vehicle: None })
        );
        assert_eq!(
            metered(
                "POST",
                smartcar_api::ops::EXCHANGE_TOKEN.path,
                "/oauth/token"
            ),
            None
        );
        assert_eq!(metered("GET", "/healthz", "/healthz"), None);
    }
}
