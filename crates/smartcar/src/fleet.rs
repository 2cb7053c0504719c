//! Fan-out over a fleet: one call per vehicle, many vehicles at once, with bounded
//! concurrency, one result per vehicle, progress callbacks and cancellation.
//!
//! A [`FanOut`] holds the settings (how many vehicles at once, a progress callback, a
//! [`CancelHandle`]); its runs take a [`Stream`] of vehicles and a closure that makes each
//! vehicle's future, and give a [`FleetStream`] of [`VehicleResult`]s:
//!
//! - [`FanOut::run`]: the general shape, any item that names a vehicle ([`VehicleKey`]): a
//!   vehicle id, a `(vehicle id, anything)` pair such as `(id, Session)` for a fleet of many
//!   v2 users, a [`v2::Vehicle`](crate::v2::Vehicle) or [`v3::VehicleV3`](crate::v3::VehicleV3)
//!   handle, a [`UserVehicle`];
//! - [`FanOut::v2`]: the vehicles of one user's [`Session`] (legacy Vehicle API v2.0), by id
//!   (from [`Session::vehicle_ids`]; [`Session::vehicles`] gives `Result`s, which a fan-out
//!   does not take: keep the `Ok` ones and handle the error of a failed page yourself);
//! - [`FanOut::v3`]: vehicles of any users through the application token
//!   ([`ApplicationSession`]), each a [`UserVehicle`] (a vehicle id with its user id; a v3
//!   connection converts into one);
//! - [`FanOut::latest_v3`] and [`FanOut::latest_v2`]: the freshest data for the least budget
//!   (below).
//!
//! ```no_run
//! # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
//! use futures_util::{StreamExt, stream};
//! use smartcar::fleet::{FanOut, UserVehicle};
//!
//! // Every vehicle connected to the application, with its user.
//! let connections = app.connections(None, None).await?;
//! let vehicles = stream::iter(connections.iter().map(UserVehicle::from).collect::<Vec<_>>());
//! let mut results = FanOut::new()
//!     .concurrency(32)
//!     .on_progress(|p| eprintln!("{}/{:?} done, {} failed", p.done, p.total, p.failed))
//!     .v3(&app, vehicles, |vehicle| async move { vehicle.lock().await });
//! while let Some(r) = results.next().await {
//!     match r.result {
//!         Ok(execution) => println!("{}: {:?}", r.vehicle_id, execution.data.attributes.status),
//!         Err(e) => eprintln!("{}: {e}", r.vehicle_id),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # What a run guarantees
//!
//! - **Bounded concurrency.** At most [`FanOut::concurrency`] vehicles' futures exist at once
//!   (16 by default); the next vehicle is taken from the input only when one finishes. The
//!   input is read lazily, so a stream of 10 000 or more vehicles never sits in memory, nor do
//!   their results: each is handed out as soon as it is ready.
//! - **Small per vehicle in flight.** Besides the vehicle's own future (an SDK call's is about
//!   4 KiB), the fan-out keeps its id and a task node of a few dozen bytes. Over HTTP/1.1 each
//!   request in flight also holds a connection of the client's pool (about 28 KiB in
//!   reqwest/hyper): 1 000 slow commands at once take about 37 MiB in all (the
//!   `fleet_commands` benchmark), 750 fit in 30 MiB.
//! - **One result per started vehicle, in completion order** (not input order: a slow vehicle
//!   does not hold back the others). Each [`VehicleResult`] carries the vehicle id and the
//!   `Result` of its future; one vehicle's failure never stops the others (unless you ask for
//!   it with [`FanOut::stop_if`]).
//! - **Progress** ([`FanOut::on_progress`]): called once per finished vehicle, with the counts
//!   so far ([`Progress`]); [`FleetStream::progress`] reads the same counts at any time.
//! - **Cancellation** ([`CancelHandle::cancel`]): no new vehicle starts; the vehicles already
//!   in flight **finish**, and their results are handed out (a command that was sent gets its
//!   answer, so you know whether it was executed); then the stream ends. Vehicles that had not
//!   started give no result: the stream just ends, and [`Progress::cancelled`] is `true` (with a
//!   known total, [`Progress::not_started`] says how many were left). To abandon the in-flight
//!   calls too, drop the [`FleetStream`]: their futures are dropped at once, and whether a
//!   command that was already sent was executed is then unknown (read the vehicle's state, or
//!   the v3 command execution, before sending it again).
//! - **No rate limiting of its own.** Every call goes through the [`Client`](crate::Client)'s
//!   own limits and retries, like any other call: a call may wait there for a slot, or fail
//!   before anything is sent (the per-vehicle monthly budget, for example); such an error is
//!   that vehicle's result. The concurrency bound is about memory and connections, not about
//!   Smartcar's request limits.
//!
//! # The freshest data for the least budget
//!
//! Smartcar bills calls per vehicle per month and limits requests per application and per
//! vehicle. To read several values of a vehicle:
//!
//! | Helper | HTTP requests per vehicle | Billed calls per vehicle | Instead of |
//! |---|---|---|---|
//! | [`FanOut::latest_v3`] / [`latest_v3`] | 1 (`GET /v3/vehicles/{id}/signals`; one per 100 signals, and the catalogue has fewer) | 1 | one `GET …/signals/{code}` per signal: N requests, N billed calls |
//! | [`FanOut::latest_v2`] / [`latest_v2`] | 1 (`POST /v2.0/vehicles/{id}/batch`) | one per read in the batch | one `GET` per read: N requests, N billed calls |
//!
//! The v3 signal list is the cheapest by far: every signal the vehicle has, with its own
//! status and timestamps, for one billed call. A v2 batch saves requests (the application's
//! request bucket, the per-vehicle throttle, round trips), not budget: the platform bills each
//! item of a batch. Ask a batch for the reads you need, no more. Besides, each user's session
//! refreshes its access token when it expires (v2), and the application token is requested
//! about once an hour (v3); neither is billed to a vehicle.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::future::{Either, FutureExt, ready};
use futures_util::stream::{FuturesUnordered, StreamExt};
use smartcar_api::types;

use crate::session::{ApplicationSession, Session};
use crate::v3_impl::{Signals, VehicleV3};
use crate::vehicle::{BatchBuilder, BatchResponse, Vehicle};
use crate::{Error, ErrorKind};

/// The progress callback of [`FanOut::on_progress`].
type ProgressCallback = Arc<dyn Fn(&Progress) + Send + Sync>;
/// The stop rule of [`FanOut::stop_if`].
type StopRule = Arc<dyn Fn(&Error) -> bool + Send + Sync>;

/// How many vehicles a [`FanOut`] runs at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// The settings of a fan-out over vehicles: concurrency, progress callback, stop rule and
/// cancellation. Cheap to clone; every run takes its own copy (clones share the
/// [`CancelHandle`]).
///
/// ```no_run
/// # async fn demo(session: smartcar::Session, ids: Vec<String>) {
/// use futures_util::stream;
/// use smartcar::fleet::FanOut;
///
/// let fleet = FanOut::new().concurrency(8);
/// let cancel = fleet.cancel_handle(); // e.g. for a shutdown signal
/// let summary = fleet
///     .v2(&session, stream::iter(ids), |vehicle| async move { vehicle.lock().await })
///     .summary()
///     .await;
/// println!("{} locked, {} failed", summary.succeeded.len(), summary.failed.len());
/// # let _ = cancel; }
/// ```
#[derive(Clone)]
#[must_use = "a FanOut does nothing until one of its runs is polled"]
pub struct FanOut {
    concurrency: usize,
    total: Option<u64>,
    on_progress: Option<ProgressCallback>,
    stop_if: Option<StopRule>,
    cancel: CancelHandle,
}

impl fmt::Debug for FanOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOut")
            .field("concurrency", &self.concurrency)
            .field("total", &self.total)
            .field("on_progress", &self.on_progress.is_some())
            .field("stop_if", &self.stop_if.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl Default for FanOut {
    fn default() -> Self {
        FanOut {
            concurrency: DEFAULT_CONCURRENCY,
            total: None,
            on_progress: None,
            stop_if: None,
            cancel: CancelHandle::new(),
        }
    }
}

impl FanOut {
    /// [`DEFAULT_CONCURRENCY`] vehicles at once, no callback, a new [`CancelHandle`].
    ///
    /// ```
    /// let fleet = smartcar::fleet::FanOut::new();
    /// assert_eq!(fleet.concurrency_limit(), smartcar::fleet::DEFAULT_CONCURRENCY);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` vehicles in flight at once (0 is taken as 1). Each vehicle in flight holds
    /// its future and, while its request is out, one connection of the client's pool: choose
    /// `n` for memory and sockets. It does not make Smartcar's request limits go faster (the
    /// client's limiter decides when each request may go).
    ///
    /// ```
    /// let fleet = smartcar::fleet::FanOut::new().concurrency(100);
    /// assert_eq!(fleet.concurrency_limit(), 100);
    /// ```
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The concurrency bound in force.
    ///
    /// ```
    /// assert_eq!(smartcar::fleet::FanOut::new().concurrency(0).concurrency_limit(), 1);
    /// ```
    pub fn concurrency_limit(&self) -> usize {
        self.concurrency
    }

    /// How many vehicles the input holds, for [`Progress::total`]. Without it the total is
    /// known when the input stream says its exact length (`futures_util::stream::iter` over
    /// a `Vec` does), and `None` otherwise.
    ///
    /// ```
    /// let fleet = smartcar::fleet::FanOut::new().total(10_000);
    /// # let _ = fleet;
    /// ```
    pub fn total(mut self, vehicles: u64) -> Self {
        self.total = Some(vehicles);
        self
    }

    /// Calls `callback` each time a vehicle finishes, with the counts so far. It runs on the
    /// task that polls the [`FleetStream`], before that vehicle's result is handed out: keep
    /// it cheap (update a counter or a progress bar; do not block).
    ///
    /// ```
    /// let fleet = smartcar::fleet::FanOut::new().on_progress(|p| {
    ///     eprintln!("{} of {:?} done ({} failed, {} in flight)", p.done, p.total, p.failed, p.in_flight());
    /// });
    /// # let _ = fleet;
    /// ```
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(callback));
        self
    }

    /// Stops the run when a vehicle fails with an error `stop` accepts, as
    /// [`CancelHandle::cancel`] would (the vehicles in flight finish; no new one starts; the
    /// handle itself is not cancelled, so other runs sharing it go on). For errors that every
    /// other vehicle would meet as well, such as refused application credentials. Without it,
    /// no failure stops the run.
    ///
    /// ```
    /// use smartcar::ErrorKind;
    ///
    /// let fleet = smartcar::fleet::FanOut::new()
    ///     .stop_if(|e| matches!(e.kind(), ErrorKind::OAuth | ErrorKind::Configuration));
    /// # let _ = fleet;
    /// ```
    pub fn stop_if(mut self, stop: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.stop_if = Some(Arc::new(stop));
        self
    }

    /// The handle that cancels this fan-out's runs (clones of the `FanOut` share it).
    ///
    /// ```
    /// let fleet = smartcar::fleet::FanOut::new();
    /// let cancel = fleet.cancel_handle();
    /// cancel.cancel(); // from anywhere: a signal handler, another task
    /// assert!(fleet.cancel_handle().is_cancelled());
    /// ```
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Uses `handle` for cancellation (one handle may stop several fan-outs at once). A run
    /// started with a handle that is already cancelled starts no vehicle.
    ///
    /// ```
    /// use smartcar::fleet::{CancelHandle, FanOut};
    ///
    /// let shutdown = CancelHandle::new();
    /// let reads = FanOut::new().with_cancel(shutdown.clone());
    /// let commands = FanOut::new().concurrency(4).with_cancel(shutdown.clone());
    /// shutdown.cancel(); // both stop
    /// # let _ = (reads, commands);
    /// ```
    pub fn with_cancel(mut self, handle: CancelHandle) -> Self {
        self.cancel = handle;
        self
    }

    /// Runs `per_vehicle` for every item of `vehicles`, at most
    /// [`concurrency`](Self::concurrency) at once, and gives each vehicle's result as it
    /// finishes. The general shape: an item is anything that names its vehicle
    /// ([`VehicleKey`]); the closure makes the future from it, with whatever credentials that
    /// vehicle needs. Nothing happens until the returned stream is polled.
    ///
    /// A fleet of many v2 users: pair each vehicle id with its user's [`Session`].
    ///
    /// ```no_run
    /// # async fn demo(pairs: Vec<(String, smartcar::Session)>) {
    /// use futures_util::{StreamExt, stream};
    /// use smartcar::fleet::FanOut;
    ///
    /// // (vehicle id, the session of its user)
    /// let mut results = FanOut::new().concurrency(50).run(
    ///     stream::iter(pairs),
    ///     |(vehicle_id, session): (String, smartcar::Session)| async move {
    ///         session.vehicle(vehicle_id)?.odometer().await
    ///     },
    /// );
    /// while let Some(r) = results.next().await {
    ///     match r.result {
    ///         Ok(odometer) => println!("{}: {} km", r.vehicle_id, odometer.data.distance),
    ///         Err(e) => eprintln!("{}: {e}", r.vehicle_id),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn run<'a, S, F, Fut, T>(self, vehicles: S, mut per_vehicle: F) -> FleetStream<'a, T>
    where
        S: Stream + Send + 'a,
        S::Item: VehicleKey,
        F: FnMut(S::Item) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Error>> + Send + 'a,
        T: Send + 'a,
    {
        let total = self.total.or_else(|| match vehicles.size_hint() {
            (low, Some(high)) if low == high => u64::try_from(low).ok(),
            _ => None,
        });
        let progress = Progress {
            total,
            ..Progress::default()
        };
        let shared = Arc::new(Mutex::new(progress));
        // `map`, not `async move { (id, future.await) }`: an async block holds the future it
        // captured and the one it awaits apart, twice its size for every vehicle in flight.
        let make = move |item: S::Item| {
            let vehicle_id = item.vehicle_id().to_owned();
            per_vehicle(item).map(move |result| (vehicle_id, result))
        };
        let run = Run {
            input: Some(Box::pin(vehicles)),
            make: Box::new(make),
            in_flight: FuturesUnordered::new(),
            limit: self.concurrency,
            cancel: self.cancel.clone(),
            cancel_wait: None,
            stopping: false,
            progress,
            shared: shared.clone(),
            on_progress: self.on_progress,
            stop_if: self.stop_if,
        };
        FleetStream {
            inner: Box::pin(run),
            shared,
            cancel: self.cancel,
        }
    }

    /// Runs `per_vehicle` on the [`v2::Vehicle`](crate::v2::Vehicle) handle of each id, all
    /// of one user's [`Session`] (legacy Vehicle API v2.0; for many users, see
    /// [`run`](Self::run)). An id the SDK refuses (empty, or with characters an id cannot
    /// have) is that vehicle's `Err` ([`Error::InvalidInput`]); nothing is sent for it.
    ///
    /// ```no_run
    /// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    /// use futures_util::stream;
    /// use smartcar::fleet::FanOut;
    ///
    /// let ids = session.vehicle_ids(None, None).await?.data.vehicles;
    /// let summary = FanOut::new()
    ///     .v2(&session, stream::iter(ids), |v| async move { v.lock().await })
    ///     .summary()
    ///     .await;
    /// for (id, e) in &summary.failed {
    ///     eprintln!("{id} not locked: {e}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn v2<'a, S, F, Fut, T>(
        self,
        session: &Session,
        vehicle_ids: S,
        mut per_vehicle: F,
    ) -> FleetStream<'a, T>
    where
        S: Stream + Send + 'a,
        S::Item: Into<String>,
        F: FnMut(Vehicle) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Error>> + Send + 'a,
        T: Send + 'a,
    {
        let session = session.clone();
        self.run(
            vehicle_ids.map(Into::<String>::into),
            move |id: String| match session.vehicle(id) {
                Ok(vehicle) => Either::Left(per_vehicle(vehicle)),
                Err(e) => Either::Right(ready(Err(e))),
            },
        )
    }

    /// Runs `per_vehicle` on the [`v3::VehicleV3`](crate::v3::VehicleV3) handle of each vehicle,
    /// through the application token of `app` (the machine-to-machine flow: one token, every
    /// user; each call names its vehicle's user). An item is a [`UserVehicle`], or anything
    /// that converts into one (a v3 connection). A malformed id is that vehicle's `Err`
    /// ([`Error::InvalidInput`]); nothing is sent for it.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// use futures_util::stream;
    /// use smartcar::fleet::FanOut;
    /// use smartcar::v3::SignalCode;
    ///
    /// let connections = app.connections(None, None).await?;
    /// let summary = FanOut::new()
    ///     .v3(&app, stream::iter(connections), |vehicle| async move {
    ///         vehicle.signal(SignalCode::TractionbatteryStateofcharge).await
    ///     })
    ///     .summary()
    ///     .await;
    /// for (id, soc) in &summary.succeeded {
    ///     println!("{id}: {:?} %", soc.number());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn v3<'a, S, F, Fut, T>(
        self,
        app: &ApplicationSession,
        vehicles: S,
        mut per_vehicle: F,
    ) -> FleetStream<'a, T>
    where
        S: Stream + Send + 'a,
        S::Item: Into<UserVehicle>,
        F: FnMut(VehicleV3) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Error>> + Send + 'a,
        T: Send + 'a,
    {
        let app = app.clone();
        self.run(
            vehicles.map(Into::<UserVehicle>::into),
            move |target: UserVehicle| {
                let handle = app
                    .user(target.user_id)
                    .and_then(|user| user.vehicle(target.vehicle_id));
                match handle {
                    Ok(vehicle) => Either::Left(per_vehicle(vehicle)),
                    Err(e) => Either::Right(ready(Err(e))),
                }
            },
        )
    }

    /// Every signal of each vehicle (Vehicle API v3), the cheapest way to read a fleet: per
    /// vehicle **one request and one billed call** ([`VehicleV3::signals`], one page of up to
    /// 100 signals; the catalogue has fewer), where reading N signals one by one costs N of
    /// each. Each [`Signal`](crate::v3::Signal) carries its own status, `retrieved_at` and
    /// `oem_updated_at`; an empty list has a hint ([`Signals::empty_hint`]).
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// use futures_util::{StreamExt, stream};
    /// use smartcar::fleet::FanOut;
    /// use smartcar::v3::SignalCode;
    ///
    /// let connections = app.connections(None, None).await?;
    /// let mut latest = FanOut::new().latest_v3(&app, stream::iter(connections));
    /// while let Some(r) = latest.next().await {
    ///     let Ok(signals) = r.result else { continue };
    ///     let odometer = signals.iter().find(|s| s.code == SignalCode::OdometerTraveleddistance);
    ///     println!("{}: {:?}", r.vehicle_id, odometer.and_then(|s| s.number()));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn latest_v3<'a, S>(self, app: &ApplicationSession, vehicles: S) -> FleetStream<'a, Signals>
    where
        S: Stream + Send + 'a,
        S::Item: Into<UserVehicle>,
    {
        self.v3(
            app,
            vehicles,
            |vehicle| async move { latest_v3(&vehicle).await },
        )
    }

    /// The `reads` of each of one user's vehicles in one batch request per vehicle (Vehicle
    /// API v2.0): per vehicle **one request** (one token of the application's request bucket,
    /// one slot of the vehicle's throttle, one round trip) and **one billed call per read**
    /// (the platform bills each item of a batch). So ask for the reads you need, no more; on
    /// v3, [`latest_v3`](Self::latest_v3) costs one billed call for every signal. Each read's
    /// result is in the [`BatchResponse`] (`batch.odometer()`, …); an empty `reads` fails every
    /// vehicle with [`Error::InvalidInput`] before anything is sent. For many users, call
    /// [`latest_v2`] from [`run`](Self::run).
    ///
    /// ```no_run
    /// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    /// use futures_util::{StreamExt, stream};
    /// use smartcar::fleet::{FanOut, V2Read};
    ///
    /// let ids = session.vehicle_ids(None, None).await?.data.vehicles;
    /// let reads = [V2Read::Odometer, V2Read::Battery, V2Read::LockStatus];
    /// let mut latest = FanOut::new().latest_v2(&session, stream::iter(ids), &reads);
    /// while let Some(r) = latest.next().await {
    ///     match r.result {
    ///         Ok(batch) => println!("{}: {:?}", r.vehicle_id, batch.odometer().map(|o| o.data.distance)),
    ///         Err(e) => eprintln!("{}: {e}", r.vehicle_id),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn latest_v2<'a, S>(
        self,
        session: &Session,
        vehicle_ids: S,
        reads: &[V2Read],
    ) -> FleetStream<'a, BatchResponse>
    where
        S: Stream + Send + 'a,
        S::Item: Into<String>,
    {
        let reads: Arc<[V2Read]> = reads.into();
        self.v2(session, vehicle_ids, move |vehicle| {
            let reads = reads.clone();
            async move { latest_v2(&vehicle, &reads).await }
        })
    }
}

/// Every signal of one vehicle in one request and one billed call: [`VehicleV3::signals`]
/// (one page of up to 100 signals; the catalogue has fewer). Reading N signals one by one
/// ([`VehicleV3::signal`]) costs N requests and N billed calls.
///
/// ```no_run
/// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
/// let signals = smartcar::fleet::latest_v3(&vehicle).await?;
/// for s in signals.iter().filter(|s| s.is_success()) {
///     println!("{:?} = {:?} (at {:?})", s.code, s.body, s.oem_updated_at);
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`VehicleV3::signals`]: API, transport, timeout, decode and token errors, and the
/// errors of the client's limits.
pub async fn latest_v3(vehicle: &VehicleV3) -> Result<Signals, Error> {
    vehicle.signals().await
}

/// The `reads` of one v2 vehicle in one batch request: one HTTP request, one billed call per
/// read (the platform bills each item). Repeated reads are asked once.
///
/// ```no_run
/// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
/// use smartcar::fleet::{V2Read, latest_v2};
///
/// let batch = latest_v2(&vehicle, &[V2Read::Odometer, V2Read::Fuel]).await?;
/// if let Ok(fuel) = batch.fuel() {
///     println!("{:?} l", fuel.data.amount_remaining);
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::InvalidInput`] when `reads` is empty (choose at least one; nothing is sent); the
/// errors of the batch request itself ([`BatchBuilder::send`](crate::v2::BatchBuilder::send)).
/// Each read's own error is in the [`BatchResponse`].
pub async fn latest_v2(vehicle: &Vehicle, reads: &[V2Read]) -> Result<BatchResponse, Error> {
    if reads.is_empty() {
        return Err(Error::invalid(
            "batch reads",
            "no read was chosen: pass at least one V2Read (e.g. V2Read::Odometer)",
        ));
    }
    let batch = reads
        .iter()
        .fold(vehicle.batch(), |batch, read| read.add_to(batch));
    batch.send().await
}

/// A read of the Vehicle API v2.0 that a batch can hold, for [`latest_v2`] and
/// [`FanOut::latest_v2`]. Each is read back from the [`BatchResponse`] by the accessor of the
/// same name (`V2Read::LockStatus` → [`BatchResponse::lock_status`]).
///
/// ```
/// use smartcar::fleet::V2Read;
///
/// let reads = [V2Read::Odometer, V2Read::Battery];
/// assert!(V2Read::ALL.contains(&reads[0]));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum V2Read {
    /// Make, model and year ([`BatchResponse::attributes`]).
    Attributes,
    /// The VIN ([`BatchResponse::vin`]).
    Vin,
    /// The odometer ([`BatchResponse::odometer`]).
    Odometer,
    /// The location ([`BatchResponse::location`]).
    Location,
    /// The fuel tank ([`BatchResponse::fuel`]).
    Fuel,
    /// The traction battery's charge and range ([`BatchResponse::battery`]).
    Battery,
    /// The traction battery's capacity ([`BatchResponse::battery_capacity`]).
    BatteryCapacity,
    /// The nominal capacity ([`BatchResponse::nominal_capacity`]).
    NominalCapacity,
    /// Plugged in and charging state ([`BatchResponse::charge`]).
    Charge,
    /// The charge limit ([`BatchResponse::charge_limit`]).
    ChargeLimit,
    /// Engine oil life ([`BatchResponse::engine_oil`]).
    EngineOil,
    /// Tire pressures ([`BatchResponse::tire_pressure`]).
    TirePressure,
    /// Lock status, doors, windows ([`BatchResponse::lock_status`]).
    LockStatus,
    /// The health of the vehicle's systems ([`BatchResponse::diagnostic_system_status`]).
    DiagnosticSystemStatus,
    /// Active diagnostic trouble codes ([`BatchResponse::diagnostic_trouble_codes`]).
    DiagnosticTroubleCodes,
}

impl V2Read {
    /// Every read (a batch of all of them bills 15 calls).
    pub const ALL: [V2Read; 15] = [
        V2Read::Attributes,
        V2Read::Vin,
        V2Read::Odometer,
        V2Read::Location,
        V2Read::Fuel,
        V2Read::Battery,
        V2Read::BatteryCapacity,
        V2Read::NominalCapacity,
        V2Read::Charge,
        V2Read::ChargeLimit,
        V2Read::EngineOil,
        V2Read::TirePressure,
        V2Read::LockStatus,
        V2Read::DiagnosticSystemStatus,
        V2Read::DiagnosticTroubleCodes,
    ];

    /// `batch` with this read added.
    fn add_to(self, batch: BatchBuilder<'_>) -> BatchBuilder<'_> {
        match self {
            V2Read::Attributes => batch.attributes(),
            V2Read::Vin => batch.vin(),
            V2Read::Odometer => batch.odometer(),
            V2Read::Location => batch.location(),
            V2Read::Fuel => batch.fuel(),
            V2Read::Battery => batch.battery(),
            V2Read::BatteryCapacity => batch.battery_capacity(),
            V2Read::NominalCapacity => batch.nominal_capacity(),
            V2Read::Charge => batch.charge(),
            V2Read::ChargeLimit => batch.charge_limit(),
            V2Read::EngineOil => batch.engine_oil(),
            V2Read::TirePressure => batch.tire_pressure(),
            V2Read::LockStatus => batch.lock_status(),
            V2Read::DiagnosticSystemStatus => batch.diagnostic_system_status(),
            V2Read::DiagnosticTroubleCodes => batch.diagnostic_trouble_codes(),
        }
    }
}

/// A vehicle of the v3 fan-outs: its id and the id of the user who connected it (v3 calls
/// name the user in `sc-user-id`). A v3 connection converts into one.
///
/// ```no_run
/// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
/// use smartcar::fleet::UserVehicle;
///
/// let one = UserVehicle::new("user-id", "vehicle-id");
/// let all: Vec<UserVehicle> = app.connections(None, None).await?.iter().map(UserVehicle::from).collect();
/// # let _ = (one, all);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserVehicle {
    /// The Smartcar user id.
    pub user_id: String,
    /// The vehicle id.
    pub vehicle_id: String,
}

impl UserVehicle {
    /// The vehicle `vehicle_id` of the user `user_id`.
    ///
    /// ```
    /// let v = smartcar::fleet::UserVehicle::new("user-1", "vehicle-1");
    /// assert_eq!(v.vehicle_id, "vehicle-1");
    /// ```
    pub fn new(user_id: impl Into<String>, vehicle_id: impl Into<String>) -> Self {
        UserVehicle {
            user_id: user_id.into(),
            vehicle_id: vehicle_id.into(),
        }
    }
}

impl From<&types::ConnectionResource> for UserVehicle {
    fn from(c: &types::ConnectionResource) -> Self {
        UserVehicle {
            user_id: c.relationships.user.data.id.clone(),
            vehicle_id: c.relationships.vehicle.data.id.clone(),
        }
    }
}

impl From<types::ConnectionResource> for UserVehicle {
    fn from(c: types::ConnectionResource) -> Self {
        let relationships = c.relationships;
        UserVehicle {
            user_id: relationships.user.data.id,
            vehicle_id: relationships.vehicle.data.id,
        }
    }
}

/// What names a vehicle in the input of [`FanOut::run`]: the id each [`VehicleResult`]
/// carries.
///
/// Implemented for a vehicle id (`String`, `&str`), a pair whose first element is the vehicle
/// id (`(String, X)`, e.g. `(vehicle_id, session)`), the v2 and v3 vehicle handles and
/// [`UserVehicle`]. Implement it for an input type of your own.
///
/// ```
/// use smartcar::fleet::VehicleKey;
///
/// struct Car { id: String, depot: u32 }
/// impl VehicleKey for Car {
///     fn vehicle_id(&self) -> &str { &self.id }
/// }
/// assert_eq!(Car { id: "v-1".into(), depot: 3 }.vehicle_id(), "v-1");
/// ```
pub trait VehicleKey {
    /// The vehicle id.
    fn vehicle_id(&self) -> &str;
}

impl VehicleKey for String {
    fn vehicle_id(&self) -> &str {
        self
    }
}

impl VehicleKey for &str {
    fn vehicle_id(&self) -> &str {
        self
    }
}

impl<X> VehicleKey for (String, X) {
    fn vehicle_id(&self) -> &str {
        &self.0
    }
}

impl VehicleKey for UserVehicle {
    fn vehicle_id(&self) -> &str {
        &self.vehicle_id
    }
}

impl VehicleKey for Vehicle {
    fn vehicle_id(&self) -> &str {
        self.id()
    }
}

impl VehicleKey for VehicleV3 {
    fn vehicle_id(&self) -> &str {
        self.id()
    }
}

/// One vehicle's outcome in a fan-out: its id and what its future returned.
///
/// ```no_run
/// # async fn demo(r: smartcar::fleet::VehicleResult<u32>) {
/// match r.result {
///     Ok(value) => println!("{}: {value}", r.vehicle_id),
///     Err(e) => eprintln!("{}: {} ({:?})", r.vehicle_id, e, e.kind()),
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub struct VehicleResult<T> {
    /// The vehicle id (from the input item, [`VehicleKey`]).
    pub vehicle_id: String,
    /// What the vehicle's future returned.
    pub result: Result<T, Error>,
}

impl<T> VehicleResult<T> {
    /// Whether the vehicle's future succeeded.
    ///
    /// ```no_run
    /// # fn demo(r: smartcar::fleet::VehicleResult<()>) {
    /// if !r.is_ok() { eprintln!("{} failed", r.vehicle_id); }
    /// # }
    /// ```
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// The counts of a fan-out so far ([`FanOut::on_progress`], [`FleetStream::progress`]).
///
/// ```
/// let p = smartcar::fleet::Progress::default();
/// assert_eq!((p.done, p.failed, p.in_flight(), p.remaining()), (0, 0, 0, None));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Vehicles whose future was started.
    pub started: u64,
    /// Vehicles finished (succeeded or failed).
    pub done: u64,
    /// Vehicles finished with an error (part of `done`).
    pub failed: u64,
    /// How many vehicles the input holds, when known ([`FanOut::total`], or an input stream
    /// of exact length).
    pub total: Option<u64>,
    /// Whether the run was cancelled ([`CancelHandle::cancel`], [`FanOut::stop_if`]) before it
    /// had read its whole input: no vehicle starts any more, and the vehicles left in the
    /// input give no result. (A cancellation after the last vehicle started changes nothing
    /// and leaves this `false`, when the input says it has no more: a stream that has ended,
    /// or one of known length such as `futures_util::stream::iter` over a `Vec`.)
    pub cancelled: bool,
}

impl Progress {
    /// Vehicles finished without an error.
    ///
    /// ```
    /// assert_eq!(smartcar::fleet::Progress::default().succeeded(), 0);
    /// ```
    pub fn succeeded(&self) -> u64 {
        self.done.saturating_sub(self.failed)
    }

    /// Vehicles started and not finished.
    ///
    /// ```
    /// assert_eq!(smartcar::fleet::Progress::default().in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> u64 {
        self.started.saturating_sub(self.done)
    }

    /// Vehicles not finished yet, when the total is known.
    ///
    /// ```
    /// assert_eq!(smartcar::fleet::Progress::default().remaining(), None);
    /// ```
    pub fn remaining(&self) -> Option<u64> {
        self.total.map(|t| t.saturating_sub(self.done))
    }

    /// Vehicles that were never started, when the total is known (after a cancellation, the
    /// ones that will give no result).
    ///
    /// ```
    /// assert_eq!(smartcar::fleet::Progress::default().not_started(), None);
    /// ```
    pub fn not_started(&self) -> Option<u64> {
        self.total.map(|t| t.saturating_sub(self.started))
    }
}

/// Every result of a fan-out, collected ([`FleetStream::summary`]). It holds every value:
/// for a very large fleet, consume the [`FleetStream`] as it goes instead, or make the
/// per-vehicle future return only what you keep.
///
/// ```no_run
/// # async fn demo(stream: smartcar::fleet::FleetStream<'_, ()>) {
/// let summary = stream.summary().await;
/// println!("{} ok, {} failed, cancelled: {}", summary.succeeded.len(), summary.failed.len(), summary.progress.cancelled);
/// for (kind, n) in summary.failures_by_kind() {
///     println!("{kind:?}: {n}");
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub struct Summary<T> {
    /// `(vehicle id, value)` of each vehicle that succeeded, in completion order.
    pub succeeded: Vec<(String, T)>,
    /// `(vehicle id, error)` of each vehicle that failed, in completion order.
    pub failed: Vec<(String, Error)>,
    /// The final counts (with `cancelled`, and the total when known).
    pub progress: Progress,
}

impl<T> Summary<T> {
    /// How many failures of each [`ErrorKind`].
    ///
    /// ```no_run
    /// # fn demo(summary: smartcar::fleet::Summary<()>) {
    /// let by_kind = summary.failures_by_kind();
    /// println!("{:?} timeouts", by_kind.get(&smartcar::ErrorKind::Timeout));
    /// # }
    /// ```
    pub fn failures_by_kind(&self) -> HashMap<ErrorKind, usize> {
        let mut counts = HashMap::new();
        for (_, e) in &self.failed {
            *counts.entry(e.kind()).or_default() += 1;
        }
        counts
    }

    /// Whether every vehicle of the input finished without an error (not cancelled, no
    /// failure).
    ///
    /// ```no_run
    /// # fn demo(summary: smartcar::fleet::Summary<()>) {
    /// if !summary.all_succeeded() {
    ///     eprintln!("{} failed", summary.failed.len());
    /// }
    /// # }
    /// ```
    pub fn all_succeeded(&self) -> bool {
        self.failed.is_empty() && !self.progress.cancelled
    }
}

/// Stops fan-outs: no new vehicle starts, the ones in flight finish and give their results,
/// then their streams end (see the [module docs](self)). Cheap to clone; clones are the same
/// handle. Cancelling is permanent.
///
/// ```
/// let cancel = smartcar::fleet::CancelHandle::new();
/// let other = cancel.clone();
/// other.cancel();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Clone, Debug, Default)]
pub struct CancelHandle {
    inner: Arc<CancelInner>,
}

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: tokio::sync::Notify,
}

impl CancelHandle {
    /// A handle not cancelled yet.
    ///
    /// ```
    /// assert!(!smartcar::fleet::CancelHandle::new().is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every run using this handle (idempotent).
    ///
    /// ```
    /// let cancel = smartcar::fleet::CancelHandle::new();
    /// cancel.cancel();
    /// cancel.cancel();
    /// assert!(cancel.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// assert!(!smartcar::fleet::CancelHandle::new().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Completes once the handle is cancelled (at once if it already is).
    ///
    /// ```no_run
    /// # async fn demo(cancel: smartcar::fleet::CancelHandle) {
    /// cancel.cancelled().await;
    /// println!("stopping");
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check: a `cancel` in between still wakes it.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// The results of a fan-out, one [`VehicleResult`] per started vehicle in completion order
/// (see [`FanOut`]). A [`Stream`] (use `futures_util::StreamExt::next`), or collect it whole
/// with [`summary`](Self::summary). Dropping it drops the vehicles in flight.
///
/// ```no_run
/// # async fn demo(mut results: smartcar::fleet::FleetStream<'_, ()>) {
/// use futures_util::StreamExt;
///
/// while let Some(r) = results.next().await {
///     if let Err(e) = r.result {
///         eprintln!("{}: {e}", r.vehicle_id);
///     }
/// }
/// println!("{:?}", results.progress());
/// # }
/// ```
#[must_use = "a fan-out does nothing until its stream is polled"]
pub struct FleetStream<'a, T> {
    inner: Pin<Box<dyn Stream<Item = VehicleResult<T>> + Send + 'a>>,
    shared: Arc<Mutex<Progress>>,
    cancel: CancelHandle,
}

impl<T> fmt::Debug for FleetStream<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetStream")
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

impl<T> FleetStream<'_, T> {
    /// The counts so far (as [`FanOut::on_progress`] last saw them).
    ///
    /// ```no_run
    /// # fn demo(results: smartcar::fleet::FleetStream<'_, ()>) {
    /// let p = results.progress();
    /// println!("{} done, {} in flight", p.done, p.in_flight());
    /// # }
    /// ```
    pub fn progress(&self) -> Progress {
        *self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handle that cancels this run (the [`FanOut`]'s).
    ///
    /// ```no_run
    /// # fn demo(results: smartcar::fleet::FleetStream<'_, ()>) {
    /// let cancel = results.cancel_handle();
    /// cancel.cancel(); // the vehicles in flight finish, then the stream ends
    /// # }
    /// ```
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Runs the fan-out to its end and collects every result.
    ///
    /// ```no_run
    /// # async fn demo(session: smartcar::Session, ids: Vec<String>) {
    /// use futures_util::stream;
    /// use smartcar::fleet::FanOut;
    ///
    /// let summary = FanOut::new()
    ///     .v2(&session, stream::iter(ids), |v| async move { v.unlock().await.map(|_| ()) })
    ///     .summary()
    ///     .await;
    /// assert_eq!(summary.progress.done as usize, summary.succeeded.len() + summary.failed.len());
    /// # }
    /// ```
    pub async fn summary(mut self) -> Summary<T> {
        let mut succeeded = Vec::new();
        let mut failed = Vec::new();
        while let Some(r) = self.next().await {
            match r.result {
                Ok(value) => succeeded.push((r.vehicle_id, value)),
                Err(e) => failed.push((r.vehicle_id, e)),
            }
        }
        Summary {
            succeeded,
            failed,
            progress: self.progress(),
        }
    }
}

impl<T> Stream for FleetStream<'_, T> {
    type Item = VehicleResult<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The state of one run: the input (until it ends or the run stops), the futures in flight,
/// the counts.
struct Run<S, M, G> {
    input: Option<Pin<Box<S>>>,
    make: Box<M>,
    in_flight: FuturesUnordered<G>,
    limit: usize,
    cancel: CancelHandle,
    /// Set while the run waits for its input, to be woken by a cancellation.
    cancel_wait: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    stopping: bool,
    progress: Progress,
    shared: Arc<Mutex<Progress>>,
    on_progress: Option<ProgressCallback>,
    stop_if: Option<StopRule>,
}

impl<S: Stream, M, G> Run<S, M, G> {
    /// No vehicle starts any more; the input is dropped. A run whose input had nothing left
    /// (it ended, or says it holds no more) loses nothing and is not marked cancelled.
    fn stop(&mut self) {
        self.stopping = true;
        self.cancel_wait = None;
        if let Some(input) = self.input.take()
            && input.size_hint().1 != Some(0)
        {
            self.progress.cancelled = true;
            self.publish();
        }
    }

    fn publish(&self) {
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = self.progress;
    }
}

impl<S, M, G, T> Stream for Run<S, M, G>
where
    S: Stream,
    M: FnMut(S::Item) -> G,
    G: Future<Output = (String, Result<T, Error>)>,
{
    type Item = VehicleResult<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is `Unpin` (the input and the closure are boxed, `FuturesUnordered`
        // pins its futures itself).
        let this = self.get_mut();
        if !this.stopping && this.cancel.is_cancelled() {
            this.stop();
        }
        // Start vehicles while there is room.
        let mut waiting_for_input = false;
        while !this.stopping && this.in_flight.len() < this.limit {
            let Some(input) = this.input.as_mut() else {
                break;
            };
            match input.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    this.in_flight.push((this.make)(item));
                    this.progress.started += 1;
                    this.publish();
                }
                Poll::Ready(None) => this.input = None,
                Poll::Pending => {
                    waiting_for_input = true;
                    break;
                }
            }
        }
        if let Poll::Ready(Some((vehicle_id, result))) = this.in_flight.poll_next_unpin(cx) {
            this.progress.done += 1;
            if let Err(e) = &result {
                this.progress.failed += 1;
                if !this.stopping && this.stop_if.as_ref().is_some_and(|stop| stop(e)) {
                    this.stop();
                }
            }
            this.publish();
            if let Some(callback) = &this.on_progress {
                callback(&this.progress);
            }
            return Poll::Ready(Some(VehicleResult { vehicle_id, result }));
        }
        if this.in_flight.is_empty() && (this.stopping || this.input.is_none()) {
            return Poll::Ready(None);
        }
        if waiting_for_input {
            // Woken by the input or by a cancellation, whichever comes first.
            let cancel = &this.cancel;
            let wait = this.cancel_wait.get_or_insert_with(|| {
                let cancel = cancel.clone();
                Box::pin(async move { cancel.cancelled().await })
            });
            if wait.as_mut().poll(cx).is_ready() {
                this.stop();
                if this.in_flight.is_empty() {
                    return Poll::Ready(None);
                }
            }
        }
        Poll::Pending
    }
}
