//! Store keys never reach the SDK's log lines or errors, only their hash
//! ([`smartcar::store::store_key_hash`]): a key may be a session-cookie value (a credential) or a user
//! id (personal data).
//!
//! In a test binary of its own: a thread-local subscriber shares tracing's global callsite
//! cache with whatever else runs in the process, so this test must not run beside others.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use smartcar::Session;
use smartcar::store::{SqliteTokenStore, TokenCipher, TokenStore, store_key_hash};
use smartcar_sim::Simulator;
use smartcar_tests::flow::{CALLBACK, client_for};
use smartcar_tests::store_conformance::connected_tokens;
use smartcar_tests::trace::TraceCapture;

/// A refresh through a session keyed by a cookie-like value over the SQLite store, a session
/// error and a store error, all at TRACE level: the key's hash appears, the key never does
/// (nor in the errors or the session's `Debug`).
#[tokio::test(flavor = "current_thread")]
async fn trace_output_and_errors_name_the_key_hash_not_the_key() {
    let capture = TraceCapture::start();

    // What a web application might use as the key: its session cookie's value.
    let key = "sc_session-Zm9yZ2VkLWNvb2tpZS12YWx1ZS0xMjM0NTY3ODkw";
    let hash = store_key_hash(key);
    let dir = std::env::temp_dir().join(format!("smartcar-key-trace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens.db");

    let sim = Simulator::builder()
        .log_requests(false)
        .start()
        .await
        .unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(SqliteTokenStore::open(&path).await.unwrap());
    let tokens = connected_tokens(&sim, &client).await;
    let session = Session::create(&client, store.clone(), key, tokens.clone())
        .await
        .unwrap();
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    vehicle.odometer().await.unwrap();
    sim.advance(Duration::from_secs(2 * 3600)); // past expiry: the next call refreshes
    vehicle.odometer().await.unwrap();
    assert_ne!(
        session.tokens().unwrap().refresh_token,
        tokens.refresh_token,
        "refreshed"
    );
    let debug = format!("{session:?}");

    // A session error naming the key: nothing stored under it.
    let missing = format!("{key}-gone");
    let resume = Session::resume(&client, store.clone(), missing.as_str())
        .await
        .unwrap_err();
    // A store error naming the key: a clear row refused by a store that requires encryption.
    let strict = SqliteTokenStore::open(&path)
        .await
        .unwrap()
        .with_cipher(TokenCipher::new([3; 32]))
        .require_encryption();
    let refused = strict.load(key).await.unwrap_err();
    sim.shutdown().await;

    let log = capture.text();
    assert!(
        log.contains("access token refreshed"),
        "the refresh is logged:\n{log}"
    );
    assert!(
        log.contains(&format!("key_hash={hash}")),
        "the refresh names the key by its hash:\n{log}"
    );
    assert!(!log.contains(key), "a store key reached the trace output");
    assert!(
        debug.contains(&hash) && !debug.contains(key),
        "Debug of the session: {debug}"
    );
    for (what, e) in [("resume", &resume), ("clear row", &refused)] {
        let mut shown = format!("{e} {e:?}");
        let mut source = e.source();
        while let Some(s) = source {
            shown.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
        assert!(
            !shown.contains(key),
            "{what}: the key is in the error: {shown}"
        );
    }
    assert!(
        resume.to_string().contains(&store_key_hash(&missing)),
        "{resume}"
    );
    assert!(refused.to_string().contains(&hash), "{refused}");
    let _ = std::fs::remove_dir_all(&dir);
}
