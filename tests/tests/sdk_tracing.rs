//! Tracing output of the SDK, in a test binary of its own: a thread-local subscriber shares
//! tracing's global callsite cache with whatever else runs in the process, so this test must
//! not run beside others.

use std::time::Duration;

use smartcar::ApplicationSession;
use smartcar::store::TokenStore;
use smartcar_sim::Simulator;
use smartcar_tests::flow::{CALLBACK, client_for, connect};
use smartcar_tests::trace::TraceCapture;

/// Everything the SDK logs at TRACE level during a whole flow (Connect, exchange, reads, a
/// command, a refresh, an application token) names no secret.
#[tokio::test(flavor = "current_thread")]
async fn tracing_output_carries_no_secret() {
    let capture = TraceCapture::start();

    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, store) = connect(&sim, &client).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    vehicle.odometer().await.unwrap();
    vehicle.lock().await.unwrap();
    let first = store.load("user-1").await.unwrap().unwrap();
    sim.advance(Duration::from_secs(2 * 3600));
    vehicle.odometer().await.unwrap();
    let second = store.load("user-1").await.unwrap().unwrap();
    let app_token = ApplicationSession::new(&client).token().await.unwrap();
    sim.shutdown().await;

    let log = capture.text();
    assert!(
        log.contains("smartcar.request"),
        "spans are recorded:\n{log}"
    );
    assert!(
        log.contains(smartcar_api::ops::GET_ODOMETER.path),
        "path templates, not ids"
    );
    for secret in [
        app.client_secret.as_str(),
        app.amt.as_str(),
        first.access_token.secret(),
        first.refresh_token.secret(),
        second.access_token.secret(),
        second.refresh_token.secret(),
        app_token.secret(),
    ] {
        assert!(!log.contains(secret), "a secret reached the trace output");
    }
}
