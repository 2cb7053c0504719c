//! `smartcar::fleet` (issue 19, "SDK, fleets") against the simulator over HTTP: a fan-out over
//! many vehicles of several users (v2 user tokens, v3 application token) keeps its concurrency
//! bound (measured by a gauge around each vehicle's future while the simulator holds every
//! request for a while), one vehicle's fault never stops the others, progress counts every
//! vehicle, a cancellation lets the vehicles in flight finish and starts no other, and the
//! "freshest data" helpers send one request per vehicle (checked in the simulator's counters
//! and its billing).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use smartcar::api::open_enums::{CommandType, Permission};
use smartcar::fleet::{CancelHandle, FanOut, Progress, UserVehicle, V2Read, VehicleResult};
use smartcar::store::MemoryTokenStore;
use smartcar::tokens::{AccessToken, RefreshToken, Tokens};
use smartcar::v3::SignalCode;
use smartcar::{ApplicationSession, Client, Error, ErrorKind, Session};
use smartcar_api::ops;
use smartcar_sim::limits::Limits;
use smartcar_sim::model::SimUser;
use smartcar_sim::{Fault, Simulator};
use smartcar_tests::flow::{CALLBACK, client_for};

/// The redirect URI the simulator answers with a `user_id` (v3 clients).
const EXCHANGE: &str = "http://localhost:8000/exchange";

/// How long the simulator holds each request of the concurrency tests.
const HOLD: Duration = Duration::from_millis(150);

/// A simulator of `users` users and `vehicles` vehicles, billing every successful call (a
/// monthly allowance no test reaches turns the billing counters on).
async fn simulator(users: usize, vehicles: usize) -> Simulator {
    Simulator::builder()
        .users(users)
        .vehicles(vehicles)
        .limits(Limits {
            monthly_allowance: Some(1_000_000),
            ..Limits::default()
        })
        .start()
        .await
        .unwrap()
}

/// A session of `user` with every permission on all of their vehicles (tokens minted in the
/// simulator, which records the connections the v3 API reads too).
async fn session_of(sim: &Simulator, client: &Client, user: &SimUser) -> Session {
    let ids: Vec<&str> = user.vehicle_ids.iter().map(String::as_str).collect();
    let minted = sim.mint_access_token(&user.id, &ids, Permission::KNOWN);
    let now = sim.now();
    let tokens = Tokens {
        access_token: AccessToken::new(minted.access_token),
        refresh_token: RefreshToken::new(minted.refresh_token),
        expires_at: now + chrono::Duration::hours(2),
        refresh_expires_at: now + chrono::Duration::days(60),
    };
    Session::create(client, Arc::new(MemoryTokenStore::new()), &user.id, tokens)
        .await
        .unwrap()
}

/// How many vehicles' futures run at once, and the most ever.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    /// Runs `future` counted as in flight.
    async fn measure<T>(self: Arc<Self>, future: impl Future<Output = T>) -> T {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        let out = future.await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        out
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A progress callback recording every call.
fn recorder() -> (
    Arc<Mutex<Vec<Progress>>>,
    impl Fn(&Progress) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |p: &Progress| sink.lock().unwrap().push(*p))
}

/// Progress was reported once per vehicle, counting up, ending at these counts.
fn assert_progress(seen: &[Progress], total: u64, failed: u64) {
    assert_eq!(
        seen.len() as u64,
        total,
        "one callback per vehicle: {seen:?}"
    );
    for (i, p) in seen.iter().enumerate() {
        assert_eq!(p.done, i as u64 + 1, "{seen:?}");
        assert!(p.started >= p.done && p.failed <= p.done, "{p:?}");
        assert_eq!(p.total, Some(total));
    }
    let last = seen.last().unwrap();
    assert_eq!(
        (last.done, last.failed, last.in_flight()),
        (total, failed, 0)
    );
    assert_eq!(last.remaining(), Some(0));
    assert!(!last.cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_many_users_bounded_concurrency_and_one_failure_stops_nothing() {
    let sim = simulator(3, 24).await;
    let client = client_for(&sim, CALLBACK).build().unwrap();
    // (vehicle id, the session of its user): a fleet of several users.
    let mut pairs = Vec::new();
    for user in sim.users() {
        let session = session_of(&sim, &client, &user).await;
        for id in &user.vehicle_ids {
            pairs.push((id.clone(), session.clone()));
        }
    }
    assert_eq!(pairs.len(), 24);
    let asleep = pairs[5].0.clone();
    // The first rule that matches applies: this vehicle is asleep, every lock takes a while.
    let lock = ops::CONTROL_SECURITY.path;
    sim.faults()
        .inject(Fault::vehicle_state("ASLEEP"))
        .on(lock)
        .vehicle(&asleep)
        .always();
    sim.faults().inject(Fault::delay(HOLD)).on(lock).always();

    let gauge = Arc::new(Gauge::default());
    let (seen, callback) = recorder();
    let g = gauge.clone();
    let summary = FanOut::new()
        .concurrency(4)
        .on_progress(callback)
        .run(
            stream::iter(pairs),
            move |(id, session): (String, Session)| {
                let g = g.clone();
                async move { g.measure(async { session.vehicle(id)?.lock().await }).await }
            },
        )
        .summary()
        .await;

    assert_eq!(gauge.max(), 4, "the bound is reached and never passed");
    assert_eq!(summary.succeeded.len(), 23);
    assert_eq!(summary.failed.len(), 1);
    let (id, e) = &summary.failed[0];
    assert_eq!(id, &asleep);
    assert_eq!((e.kind(), e.status()), (ErrorKind::Api, Some(409)), "{e}");
    assert!(
        summary
            .succeeded
            .iter()
            .all(|(_, r)| r.data.status == "success")
    );
    assert_eq!(summary.failures_by_kind().get(&ErrorKind::Api), Some(&1));
    assert!(!summary.all_succeeded());
    assert_progress(&seen.lock().unwrap(), 24, 1);
    assert_eq!(summary.progress, *seen.lock().unwrap().last().unwrap());
    // One command per vehicle, each sent once (a refused command is not retried).
    assert_eq!(sim.operation_count(&ops::CONTROL_SECURITY), 24);
    for v in sim.vehicles().iter().filter(|v| v.id != asleep) {
        assert!(v.locked, "{} is locked", v.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_application_token_fleet_with_a_failing_vehicle_and_a_bad_id() {
    let sim = simulator(3, 12).await;
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    for user in sim.users() {
        session_of(&sim, &client, &user).await; // records the connections
    }
    let app = ApplicationSession::new(&client);
    let connections = app.connections(None, None).await.unwrap();
    assert_eq!(connections.len(), 12);
    let mut vehicles: Vec<UserVehicle> = connections.iter().map(UserVehicle::from).collect();
    let unreachable = vehicles[7].vehicle_id.clone();
    // An item the SDK refuses before sending: an empty user id.
    vehicles.push(UserVehicle::new("", "vehicle-of-nobody"));
    let lock = ops::LOCK_V3.path;
    sim.faults()
        .inject(Fault::upstream("NO_RESPONSE"))
        .on(lock)
        .vehicle(&unreachable)
        .always();
    sim.faults().inject(Fault::delay(HOLD)).on(lock).always();

    let gauge = Arc::new(Gauge::default());
    let (seen, callback) = recorder();
    let g = gauge.clone();
    let mut results = FanOut::new().concurrency(5).on_progress(callback).v3(
        &app,
        stream::iter(vehicles),
        move |vehicle| g.clone().measure(async move { vehicle.lock().await }),
    );
    let mut ok = Vec::new();
    let mut failed: Vec<VehicleResult<_>> = Vec::new();
    while let Some(r) = results.next().await {
        if r.is_ok() {
            ok.push(r)
        } else {
            failed.push(r)
        }
    }

    assert_eq!(gauge.max(), 5);
    assert_eq!(ok.len(), 11);
    for r in &ok {
        let execution = r.result.as_ref().unwrap();
        assert_eq!(
            execution.data.attributes.command_type,
            CommandType::SecurityLock,
            "{execution:?}"
        );
    }
    failed.sort_by(|a, b| a.vehicle_id.cmp(&b.vehicle_id));
    let kinds: Vec<(&str, ErrorKind, Option<u16>)> = failed
        .iter()
        .map(|r| {
            let e = r.result.as_ref().unwrap_err();
            (r.vehicle_id.as_str(), e.kind(), e.status())
        })
        .collect();
    let mut expected = vec![
        (unreachable.as_str(), ErrorKind::Api, Some(502)),
        ("vehicle-of-nobody", ErrorKind::InvalidInput, None),
    ];
    expected.sort_by_key(|(id, ..)| *id);
    assert_eq!(kinds, expected);
    assert_progress(&seen.lock().unwrap(), 13, 2);
    assert_eq!(results.progress().done, 13);
    // The refused id sent nothing; every other vehicle one command.
    assert_eq!(sim.operation_count(&ops::LOCK_V3), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_lets_the_vehicles_in_flight_finish_and_starts_no_other() {
    let sim = simulator(1, 30).await;
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let user = sim.users()[0].clone();
    let session = session_of(&sim, &client, &user).await;
    sim.faults()
        .inject(Fault::delay(HOLD))
        .on(ops::GET_ODOMETER.path)
        .always();

    let fleet = FanOut::new().concurrency(3);
    let cancel = fleet.cancel_handle();
    let mut results = fleet.v2(
        &session,
        stream::iter(user.vehicle_ids.clone()),
        |v| async move { v.odometer().await },
    );
    let mut received = Vec::new();
    let mut started_at_cancel = 0;
    while let Some(r) = results.next().await {
        received.push(r);
        if received.len() == 4 {
            cancel.cancel();
            started_at_cancel = results.progress().started;
        }
    }

    let end = results.progress();
    assert!(end.cancelled);
    // Nothing started after the cancellation; what was in flight finished and was reported.
    assert_eq!(end.started, started_at_cancel);
    assert!((5..=7).contains(&end.started), "{end:?}");
    assert_eq!(received.len() as u64, end.started);
    assert!(
        received.iter().all(VehicleResult::is_ok),
        "in-flight reads completed"
    );
    assert_eq!(end.not_started(), Some(30 - end.started));
    assert_eq!(sim.operation_count(&ops::GET_ODOMETER), end.started);
    // After the end, the stream stays ended.
    assert!(results.next().await.is_none());
}

#[tokio::test]
async fn cancellation_before_the_start_while_waiting_for_input_and_after_the_last_start() {
    // Already cancelled: no vehicle starts.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let cancel = CancelHandle::new();
    cancel.cancel();
    let summary = FanOut::new()
        .with_cancel(cancel)
        .run(stream::iter(["a", "b"]), move |_id| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Error>(()) }
        })
        .summary()
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(summary.succeeded.is_empty() && summary.progress.cancelled);
    assert_eq!(summary.progress.not_started(), Some(2));

    // An input that never ends (a paging source waiting on the network): the cancellation
    // wakes the run, which ends after its one vehicle.
    let fleet = FanOut::new();
    let cancel = fleet.cancel_handle();
    let input = stream::iter(vec!["v-1".to_owned()]).chain(stream::once(std::future::pending()));
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let summary = tokio::time::timeout(
        Duration::from_secs(5),
        fleet
            .run(input, |id: String| async move { Ok::<_, Error>(id.len()) })
            .summary(),
    )
    .await
    .expect("the cancellation ends a run waiting for its input");
    canceller.await.unwrap();
    assert_eq!(summary.succeeded, vec![("v-1".to_owned(), 3)]);
    assert!(summary.progress.cancelled);
    assert_eq!(summary.progress.started, 1);
    assert_eq!(summary.progress.not_started(), Some(1));

    // Cancelled once every vehicle has started: nothing is lost, the run is not cancelled.
    let fleet = FanOut::new().concurrency(2);
    let cancel = fleet.cancel_handle();
    let summary = fleet
        .on_progress(move |_| cancel.cancel())
        .run(stream::iter(["a", "b"]), |_id| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, Error>(())
        })
        .summary()
        .await;
    assert_eq!(summary.succeeded.len(), 2);
    assert!(summary.all_succeeded(), "{:?}", summary.progress);
}

#[tokio::test]
async fn stop_if_stops_the_run_on_an_error_that_would_repeat() {
    let fleet = FanOut::new()
        .concurrency(1)
        .stop_if(|e| e.kind() == ErrorKind::Configuration);
    let cancel = fleet.cancel_handle();
    let ids: Vec<String> = (1..=20).map(|i| format!("v-{i}")).collect();
    let summary = fleet
        .run(stream::iter(ids), |id: String| async move {
            match id.as_str() {
                "v-2" => Err(Error::InvalidInput {
                    what: "vehicle",
                    message: "one bad vehicle".into(),
                }),
                "v-5" => Err(Error::Configuration {
                    setting: "SMARTCAR_CLIENT_SECRET".into(),
                    message: "refused".into(),
                }),
                _ => Ok(()),
            }
        })
        .summary()
        .await;
    // v-2's error does not stop it; v-5's does, and nothing after v-5 starts.
    let done: Vec<&str> = summary
        .succeeded
        .iter()
        .map(|(id, _)| id.as_str())
        .chain(summary.failed.iter().map(|(id, _)| id.as_str()))
        .collect();
    assert_eq!(done, ["v-1", "v-3", "v-4", "v-2", "v-5"]);
    assert!(summary.progress.cancelled);
    assert_eq!(summary.progress.not_started(), Some(15));
    assert!(!cancel.is_cancelled(), "the shared handle is not cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_v3_reads_every_signal_with_one_billed_call_per_vehicle() {
    let sim = simulator(2, 6).await;
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    for user in sim.users() {
        session_of(&sim, &client, &user).await;
    }
    let app = ApplicationSession::new(&client);
    let connections = app.connections(None, None).await.unwrap();
    assert_eq!(connections.len(), 6);

    let summary = FanOut::new()
        .latest_v3(&app, stream::iter(connections))
        .summary()
        .await;

    assert!(summary.all_succeeded(), "{:?}", summary.failed);
    assert_eq!(summary.succeeded.len(), 6);
    for (id, signals) in &summary.succeeded {
        assert!(
            signals.len() > 10,
            "{id}: every signal, {} of them",
            signals.len()
        );
        let odometer = signals
            .iter()
            .find(|s| s.code == SignalCode::OdometerTraveleddistance)
            .unwrap_or_else(|| panic!("{id} has an odometer"));
        assert!(odometer.number().is_some() && odometer.retrieved_at.is_some());
        assert_eq!(
            sim.limits().billed(id, sim.now()),
            1,
            "{id}: one billed call"
        );
    }
    // One list request per vehicle; no single-signal read.
    assert_eq!(sim.operation_count(&ops::LIST_SIGNALS), 6);
    assert_eq!(sim.operation_count(&ops::GET_SIGNAL), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_v2_sends_one_batch_per_vehicle_billed_per_read() {
    let sim = simulator(1, 5).await;
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let user = sim.users()[0].clone();
    let session = session_of(&sim, &client, &user).await;
    let mut ids = user.vehicle_ids.clone();
    ids.push("not a vehicle id".to_owned());
    let reads = [
        V2Read::Odometer,
        V2Read::LockStatus,
        V2Read::Vin,
        V2Read::Odometer,
    ];

    let summary = FanOut::new()
        .latest_v2(&session, stream::iter(ids.clone()), &reads)
        .summary()
        .await;

    assert_eq!(summary.succeeded.len(), 5);
    assert_eq!(summary.failed.len(), 1);
    let (bad, e) = &summary.failed[0];
    assert_eq!(
        (bad.as_str(), e.kind()),
        ("not a vehicle id", ErrorKind::InvalidInput)
    );
    for (id, batch) in &summary.succeeded {
        assert!(batch.odometer().unwrap().data.distance > 0.0, "{id}");
        batch.lock_status().unwrap();
        assert_eq!(batch.vin().unwrap().data.vin.len(), 17);
        assert_eq!(batch.items().len(), 3, "a repeated read is asked once");
        // One request, three billed calls: the platform bills each item.
        assert_eq!(sim.limits().billed(id, sim.now()), 3, "{id}");
    }
    assert_eq!(sim.operation_count(&ops::BATCH), 5);
    assert_eq!(sim.operation_count(&ops::GET_ODOMETER), 0);

    // No read: every vehicle fails before anything is sent, saying what to do.
    let summary = FanOut::new()
        .latest_v2(&session, stream::iter(ids), &[])
        .summary()
        .await;
    assert_eq!(summary.failed.len(), 6);
    assert!(
        summary
            .failed
            .iter()
            .all(|(id, e)| e.kind() == ErrorKind::InvalidInput
                && (id == "not a vehicle id" || e.to_string().contains("V2Read"))),
        "{:?}",
        summary.failed
    );
    assert_eq!(sim.operation_count(&ops::BATCH), 5);
}
