//! One conformance suite for every [`TokenStore`]: the in-memory store, SQLite and PostgreSQL
//! (clear and encrypted) all run [`run`].
//!
//! `open` returns a new handle onto the *same* storage each time it is called (for a database:
//! a new pool, like another instance of the service would have), so the suite also checks what
//! one handle sees of another's writes and locks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use smartcar::store::{CasOutcome, TokenStore};
use smartcar::tokens::{AccessToken, RefreshToken, Tokens};
use smartcar::{Client, Redirect, Session};
use smartcar_sim::{ApproveOptions, Simulator};

use crate::flow::{CALLBACK, PERMISSIONS, client_for};

/// Opens a new handle onto the storage under test.
pub type Open =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn TokenStore>> + Send>> + Send + Sync>;

/// Tokens whose values contain `tag` (expiries with sub-millisecond precision, which a store
/// must keep exactly).
pub fn tokens(tag: &str) -> Tokens {
    let now: DateTime<Utc> = Utc::now();
    Tokens {
        access_token: AccessToken::new(format!(
            "access-{tag}-{}",
            now.timestamp_nanos_opt().unwrap_or(0)
        )),
        refresh_token: RefreshToken::new(format!(
            "refresh-{tag}-{}",
            now.timestamp_nanos_opt().unwrap_or(0)
        )),
        expires_at: now + chrono::Duration::nanoseconds(7_200_000_000_123),
        refresh_expires_at: now + chrono::Duration::days(60),
    }
}

/// Runs every check against the storage `open` gives handles onto; `name` prefixes messages.
///
/// # Panics
///
/// On the first check that fails.
pub async fn run(name: &str, open: Open) {
    let a = open().await;
    let b = open().await;
    basics(name, &*a, &*b).await;
    compare_and_swap(name, &a, &b).await;
    keys_are_independent(name, &*a, &*b).await;
    no_secret_in_debug(name, &*a).await;
    refresh_lock(name, &a, &b).await;
    sessions_refresh_once(name, &a, &b).await;
}

async fn basics(name: &str, a: &dyn TokenStore, b: &dyn TokenStore) {
    let key = "basics";
    assert_eq!(a.load(key).await.unwrap(), None, "{name}: empty store");
    a.delete(key).await.expect("deleting a missing key is fine");
    let first = tokens("basics-1");
    a.save(key, &first).await.unwrap();
    assert_eq!(
        a.load(key).await.unwrap().as_ref(),
        Some(&first),
        "{name}: exact round trip"
    );
    assert_eq!(
        b.load(key).await.unwrap().as_ref(),
        Some(&first),
        "{name}: other handle sees it"
    );
    let second = tokens("basics-2");
    b.save(key, &second).await.unwrap();
    assert_eq!(
        a.load(key).await.unwrap(),
        Some(second),
        "{name}: save overwrites"
    );
    a.delete(key).await.unwrap();
    assert_eq!(b.load(key).await.unwrap(), None, "{name}: deleted");
}

async fn compare_and_swap(name: &str, a: &Arc<dyn TokenStore>, b: &Arc<dyn TokenStore>) {
    let key = "cas";
    let old = tokens("cas-old");
    let new = tokens("cas-new");
    assert_eq!(
        a.compare_and_swap(key, &old.refresh_token, &new)
            .await
            .unwrap(),
        CasOutcome::Conflict(None),
        "{name}: CAS on a missing key"
    );
    assert_eq!(
        a.load(key).await.unwrap(),
        None,
        "{name}: a failed CAS writes nothing"
    );
    a.save(key, &old).await.unwrap();
    assert_eq!(
        b.compare_and_swap(key, &old.refresh_token, &new)
            .await
            .unwrap(),
        CasOutcome::Swapped,
        "{name}: CAS from the stored refresh token"
    );
    assert_eq!(a.load(key).await.unwrap().as_ref(), Some(&new));
    let other = tokens("cas-other");
    assert_eq!(
        a.compare_and_swap(key, &old.refresh_token, &other)
            .await
            .unwrap(),
        CasOutcome::Conflict(Some(new.clone())),
        "{name}: CAS from a stale refresh token reports what is stored"
    );
    assert_eq!(
        a.load(key).await.unwrap().as_ref(),
        Some(&new),
        "{name}: unchanged"
    );

    // 16 racers on two handles, all from the same refresh token: exactly one wins.
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let expected = new.refresh_token.clone();
            let mine = tokens(&format!("cas-race-{i}"));
            tokio::spawn(async move {
                let outcome = store.compare_and_swap(key, &expected, &mine).await.unwrap();
                (mine, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for r in racers {
        let (mine, outcome) = r.await.unwrap();
        match outcome {
            CasOutcome::Swapped => winners.push(mine),
            CasOutcome::Conflict(current) => losers.push(current),
        }
    }
    assert_eq!(winners.len(), 1, "{name}: exactly one racer swaps");
    let stored = a.load(key).await.unwrap();
    assert_eq!(
        stored.as_ref(),
        Some(&winners[0]),
        "{name}: the winner is stored"
    );
    for current in losers {
        assert_eq!(
            current.as_ref(),
            Some(&winners[0]),
            "{name}: losers see the winner"
        );
    }
    a.delete(key).await.unwrap();
}

async fn keys_are_independent(name: &str, a: &dyn TokenStore, b: &dyn TokenStore) {
    let keys = [
        "user-1",
        "user-2",
        "ユーザー/3 'quoted' \"x\"",
        &"k".repeat(500),
    ];
    for (i, key) in keys.iter().enumerate() {
        a.save(key, &tokens(&format!("keys-{i}"))).await.unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        let t = b.load(key).await.unwrap().expect("stored");
        assert!(
            t.access_token
                .secret()
                .starts_with(&format!("access-keys-{i}-")),
            "{name}: key {i} holds its own tokens"
        );
    }
    a.delete(keys[0]).await.unwrap();
    assert!(
        b.load(keys[1]).await.unwrap().is_some(),
        "{name}: delete is per key"
    );
    for key in keys {
        a.delete(key).await.unwrap();
    }
}

async fn no_secret_in_debug(name: &str, a: &dyn TokenStore) {
    let t = tokens("debug");
    a.save("debug", &t).await.unwrap();
    // The trait object has no Debug; the stores' own Debug is checked through `load`'s tokens
    // and the lock's Debug.
    let loaded = a.load("debug").await.unwrap().unwrap();
    let shown = format!("{loaded:?}");
    assert!(!shown.contains(t.access_token.secret()), "{name}: {shown}");
    assert!(!shown.contains(t.refresh_token.secret()), "{name}: {shown}");
    a.delete("debug").await.unwrap();
}

/// Whether `fut` completes within `within`.
async fn completes<F: Future>(fut: F, within: Duration) -> Option<F::Output> {
    tokio::time::timeout(within, fut).await.ok()
}

async fn refresh_lock(name: &str, a: &Arc<dyn TokenStore>, b: &Arc<dyn TokenStore>) {
    let first = a.lock_for_refresh("lock").await.unwrap();
    assert!(first.is_held(), "{name}: the store locks");
    // Another handle (another instance) waits…
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.lock_for_refresh("lock").await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "{name}: a second lock on the same key waits"
    );
    // …but not for another key.
    let other = completes(b.lock_for_refresh("lock-other"), Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("{name}: another key is not blocked"))
        .unwrap();
    other.release().await.unwrap();
    // Released: the waiter gets it.
    first.release().await.unwrap();
    let second = completes(waiter, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{name}: the waiter gets the lock once it is released"))
        .unwrap();
    // Dropped without release (a task cancelled mid-refresh): released too.
    drop(second);
    let third = completes(a.lock_for_refresh("lock"), Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{name}: a dropped lock is released"))
        .unwrap();
    third.release().await.unwrap();
}

/// Tokens for the simulator's first user through Connect and the code exchange.
pub async fn connected_tokens(sim: &Simulator, client: &Client) -> Tokens {
    let auth = client.authorize().scopes(PERMISSIONS).build().unwrap();
    let redirect = sim
        .approve(auth.url.as_str(), ApproveOptions::new())
        .expect("Connect redirects");
    let Redirect::Code(code) = client
        .handle_redirect(redirect.as_str(), &auth.state)
        .unwrap()
    else {
        panic!("expected a code, got {redirect}")
    };
    client.exchange_code(&code).await.unwrap()
}

/// Three sessions over two handles, 3 × 100 concurrent calls across an expiry: one refresh.
async fn sessions_refresh_once(name: &str, a: &Arc<dyn TokenStore>, b: &Arc<dyn TokenStore>) {
    let sim = Simulator::builder()
        .log_requests(false)
        .start()
        .await
        .unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let initial = connected_tokens(&sim, &client).await;
    let key = "session-user";
    let first = Session::create(&client, a.clone(), key, initial.clone())
        .await
        .unwrap();
    let sessions = [
        first,
        Session::resume(&client, a.clone(), key).await.unwrap(),
        Session::resume(&client, b.clone(), key).await.unwrap(),
    ];
    let vehicle_id = sim.users()[0].vehicle_ids[0].clone();
    sim.advance(Duration::from_secs(2 * 3600 - 60)); // inside the refresh skew
    let calls: Vec<_> = (0..300)
        .map(|i| {
            let vehicle = sessions[i % 3].vehicle(vehicle_id.clone()).unwrap();
            tokio::spawn(async move { vehicle.odometer().await })
        })
        .collect();
    for c in calls {
        c.await
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: call failed: {e}"));
    }
    // Requests, not rotations: a second refresh with the same token within the grace period
    // would rotate nothing. The first request was the code exchange.
    assert_eq!(
        sim.request_count("POST", smartcar_api::ops::EXCHANGE_TOKEN.path),
        2,
        "{name}: one refresh request for three sessions"
    );
    assert_eq!(sim.refresh_count(), 1);
    let stored = a.load(key).await.unwrap().unwrap();
    assert_ne!(
        stored.refresh_token, initial.refresh_token,
        "{name}: rotated and saved"
    );
    for s in &sessions {
        assert_eq!(
            s.tokens().as_ref(),
            Some(&stored),
            "{name}: every session adopted them"
        );
    }
    a.delete(key).await.unwrap();
    sim.shutdown().await;
}

/// Runs the pass over the rows stored in clear (`encrypt_clear_rows` of the store under test).
pub type EncryptClearRows = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<u64, smartcar::Error>> + Send>> + Send + Sync,
>;

/// `require_encryption` of a SQL store, over one database: `clear` writes rows in clear,
/// `strict` has a cipher and requires encryption, `encrypt` is `encrypt_clear_rows` of a store
/// with the same cipher.
///
/// - a clear row is refused by `strict` with [`smartcar::store::ClearTokensRefused`] as the source of
///   an [`smartcar::ErrorKind::TokenStore`] error that names the key's hash, never the key or a
///   token, and says what to do;
/// - what `strict` writes it reads back; `clear` cannot read it;
/// - `encrypt` encrypts exactly the clear rows, after which `strict` reads them; a second
///   pass has nothing to do.
///
/// # Panics
///
/// On the first check that fails.
pub async fn require_encryption(
    name: &str,
    clear: &dyn TokenStore,
    strict: &dyn TokenStore,
    encrypt: EncryptClearRows,
) {
    use std::error::Error as _;

    let key = "strict-user-7f3a9c";
    let old = tokens("strict-clear");
    clear.save(key, &old).await.unwrap();
    let e = strict.load(key).await.unwrap_err();
    assert_eq!(e.kind(), smartcar::ErrorKind::TokenStore, "{name}: {e}");
    let refused = e
        .source()
        .and_then(|s| s.downcast_ref::<smartcar::store::ClearTokensRefused>())
        .unwrap_or_else(|| panic!("{name}: typed source: {e:?}"));
    assert_eq!(refused.key_hash(), smartcar::store::store_key_hash(key));
    let shown = format!("{e} {e:?}");
    for secret in [key, old.access_token.secret(), old.refresh_token.secret()] {
        assert!(!shown.contains(secret), "{name}: {shown}");
    }
    assert!(
        shown.contains("encrypt_clear_rows")
            && shown.contains(&smartcar::store::store_key_hash(key)),
        "{name}: says what to do, and which key: {e}"
    );

    // An encrypted row: fine both ways through `strict`, unreadable without the key.
    let sealed = tokens("strict-sealed");
    strict.save("strict-sealed", &sealed).await.unwrap();
    assert_eq!(
        strict.load("strict-sealed").await.unwrap().as_ref(),
        Some(&sealed),
        "{name}: encrypted rows are read"
    );
    assert!(clear.load("strict-sealed").await.is_err(), "{name}");

    // Migration: exactly the clear row is encrypted, then readable under `strict`.
    assert_eq!(encrypt().await.unwrap(), 1, "{name}: one clear row");
    assert_eq!(
        strict.load(key).await.unwrap().as_ref(),
        Some(&old),
        "{name}: readable once encrypted"
    );
    assert_eq!(encrypt().await.unwrap(), 0, "{name}: nothing left in clear");
    assert_eq!(
        strict.load("strict-sealed").await.unwrap().as_ref(),
        Some(&sealed),
        "{name}: encrypted rows untouched"
    );
    strict.delete(key).await.unwrap();
    strict.delete("strict-sealed").await.unwrap();
}
