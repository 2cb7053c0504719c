//! The token stores: one conformance suite run against the in-memory, SQLite and PostgreSQL
//! stores (clear, and encrypted with `require_encryption`); encryption at rest as seen in the
//! database; clear rows refused under `require_encryption` and encrypted by
//! `encrypt_clear_rows`; the SQLite file's permissions; a crashed or hung refresher's lock
//! being released; and several processes sharing one PostgreSQL store refreshing exactly once
//! per expiry.
//!
//! The PostgreSQL tests need `DATABASE_URL` (`cargo xtask test` sets it); without it they are
//! skipped with a message, except under CI where they fail.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smartcar::store::{
    LockTimeouts, MemoryTokenStore, PostgresTokenStore, SqliteTokenStore, TokenCipher, TokenStore,
};
use smartcar_sim::Simulator;
use smartcar_tests::flow::{CALLBACK, client_for};
use smartcar_tests::pg::fresh_database;
use smartcar_tests::store_conformance::{self, EncryptClearRows, Open, connected_tokens, tokens};

/// The token endpoint's route (code exchange and refresh).
const TOKEN_PATH: &str = smartcar_api::ops::EXCHANGE_TOKEN.path;

const KEY_HEX: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn cipher() -> TokenCipher {
    TokenCipher::from_hex(KEY_HEX).unwrap()
}

fn temp_sqlite(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smartcar-store-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("tokens.db")
}

#[tokio::test]
async fn memory_store_conforms() {
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    let open: Open = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store })
    });
    store_conformance::run("memory", open).await;
}

async fn sqlite_conforms(test: &str, encrypted: bool) {
    let path = temp_sqlite(test);
    let open: Open = Arc::new(move || {
        let path = path.clone();
        Box::pin(async move {
            let store = SqliteTokenStore::open(&path).await.unwrap();
            let store = if encrypted {
                store.with_cipher(cipher()).require_encryption()
            } else {
                store
            };
            Arc::new(store) as Arc<dyn TokenStore>
        })
    });
    store_conformance::run(test, open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    sqlite_conforms("sqlite", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_sqlite_store_conforms() {
    sqlite_conforms("sqlite_encrypted", true).await;
}

async fn postgres_conforms(test: &str, encrypted: bool) {
    let Some(url) = fresh_database(test).await else {
        return;
    };
    let open: Open = Arc::new(move || {
        let url = url.clone();
        Box::pin(async move {
            let store = PostgresTokenStore::connect(&url).await.unwrap();
            let store = if encrypted {
                store.with_cipher(cipher()).require_encryption()
            } else {
                store
            };
            Arc::new(store) as Arc<dyn TokenStore>
        })
    });
    store_conformance::run(test, open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conforms() {
    postgres_conforms("postgres", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_postgres_store_conforms() {
    postgres_conforms("postgres_encrypted", true).await;
}

/// What is in the `tokens` column, read with SQL.
async fn raw_sqlite_row(path: &std::path::Path, key: &str) -> Vec<u8> {
    let pool = smartcar::store::sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let bytes: Vec<u8> =
        smartcar::store::sqlx::query_scalar("SELECT tokens FROM smartcar_tokens WHERE key = ?")
            .bind(key)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn sqlite_encryption_at_rest() {
    let path = temp_sqlite("encryption");
    let clear = SqliteTokenStore::open(&path).await.unwrap();
    let sealed = SqliteTokenStore::open(&path)
        .await
        .unwrap()
        .with_cipher(cipher());
    let t = tokens("at-rest");

    // Without a cipher the values are in the file in clear (documented default).
    clear.save("clear", &t).await.unwrap();
    assert!(contains(
        &raw_sqlite_row(&path, "clear").await,
        t.refresh_token.secret()
    ));
    // A store with a cipher reads clear rows (turning encryption on for an existing table)…
    assert_eq!(sealed.load("clear").await.unwrap().as_ref(), Some(&t));

    // …and what it writes holds no token value.
    sealed.save("sealed", &t).await.unwrap();
    let raw = raw_sqlite_row(&path, "sealed").await;
    assert!(!contains(&raw, t.refresh_token.secret()));
    assert!(!contains(&raw, t.access_token.secret()));
    assert_eq!(sealed.load("sealed").await.unwrap().as_ref(), Some(&t));

    // Without the key, or with another key: a typed error that echoes no token.
    for store in [
        clear.clone(),
        SqliteTokenStore::open(&path)
            .await
            .unwrap()
            .with_cipher(TokenCipher::new([9; 32])),
    ] {
        let e = store.load("sealed").await.unwrap_err();
        assert_eq!(e.kind(), smartcar::ErrorKind::TokenStore, "{e}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(t.refresh_token.secret()), "{shown}");
    }
    // Debug never shows the key or the tokens.
    let shown = format!("{sealed:?}");
    assert!(
        !shown.contains(KEY_HEX) && shown.contains("encrypted: true"),
        "{shown}"
    );
}

#[tokio::test]
async fn postgres_encryption_at_rest() {
    let Some(url) = fresh_database("pg_encryption").await else {
        return;
    };
    let sealed = PostgresTokenStore::connect(&url)
        .await
        .unwrap()
        .with_cipher(cipher());
    let t = tokens("pg-at-rest");
    sealed.save("sealed", &t).await.unwrap();
    let raw: Vec<u8> =
        smartcar::store::sqlx::query_scalar("SELECT tokens FROM smartcar_tokens WHERE key = $1")
            .bind("sealed")
            .fetch_one(sealed.pool())
            .await
            .unwrap();
    assert!(!contains(&raw, t.refresh_token.secret()));
    let clear = PostgresTokenStore::connect(&url).await.unwrap();
    let e = clear.load("sealed").await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(t.refresh_token.secret()));
    assert!(!format!("{clear:?}").contains("postgres://"), "{clear:?}");
}

#[tokio::test]
async fn postgres_migrations_are_idempotent_and_recorded() {
    let Some(url) = fresh_database("pg_migrate").await else {
        return;
    };
    let store = PostgresTokenStore::connect(&url).await.unwrap();
    let (a, b) = tokio::join!(store.migrate(), store.migrate());
    a.unwrap();
    b.unwrap();
    let versions: Vec<i64> =
        smartcar::store::sqlx::query_scalar("SELECT version FROM smartcar_schema_migrations")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(versions, vec![1]);
}

/// A holder that hangs (neither releases nor crashes) loses the lock after the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_of_a_hung_holder_expires_with_its_lease() {
    let Some(url) = fresh_database("pg_lease").await else {
        return;
    };
    let short = LockTimeouts {
        lease: Duration::from_millis(800),
        wait: Duration::from_secs(20),
    };
    let hung = PostgresTokenStore::connect(&url)
        .await
        .unwrap()
        .with_lock_timeouts(short);
    let other = PostgresTokenStore::connect(&url).await.unwrap();
    let held = hung.lock_for_refresh("k").await.unwrap();
    let start = Instant::now();
    let next = other.lock_for_refresh("k").await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "it waited for the lease: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(15),
        "and not for the wait timeout: {waited:?}"
    );
    assert!(
        held.release().await.is_err(),
        "the hung holder learns it lost the lock"
    );
    next.release().await.unwrap();

    // A waiter gives up after its wait timeout with a typed error.
    let impatient = PostgresTokenStore::connect(&url)
        .await
        .unwrap()
        .with_lock_timeouts(LockTimeouts {
            lease: Duration::from_secs(30),
            wait: Duration::from_millis(300),
        });
    let held = other.lock_for_refresh("k2").await.unwrap();
    let e = impatient.lock_for_refresh("k2").await.unwrap_err();
    assert_eq!(e.kind(), smartcar::ErrorKind::TokenStore);
    assert!(e.to_string().contains("waited"), "{e}");
    held.release().await.unwrap();
}

fn worker(mode: &str, envs: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_store_worker"))
        .arg(mode)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the worker starts")
}

/// Reads lines from a child on a thread, so that the test can bound its waits.
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Kills the children when the test ends, passed or not.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A refresher that crashes while holding the lock (killed -9) does not block the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_of_a_crashed_process_is_released() {
    let Some(url) = fresh_database("pg_crash").await else {
        return;
    };
    let store = PostgresTokenStore::connect(&url).await.unwrap();
    let mut children = Children(vec![worker(
        "hold-lock",
        &[
            ("DATABASE_URL", url.clone()),
            ("STORE_KEY", "crash".to_owned()),
        ],
    )]);
    let rx = lines_of(&mut children.0[0]);
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), "locked");
    let blocked =
        tokio::time::timeout(Duration::from_millis(300), store.lock_for_refresh("crash")).await;
    assert!(blocked.is_err(), "the child holds the lock");
    children.0[0].kill().unwrap();
    children.0[0].wait().unwrap();
    let start = Instant::now();
    let lock = tokio::time::timeout(Duration::from_secs(10), store.lock_for_refresh("crash"))
        .await
        .expect("released when its process died")
        .unwrap();
    println!(
        "lock free {:?} after the holder was killed",
        start.elapsed()
    );
    lock.release().await.unwrap();
}

/// 4 processes × 250 concurrent calls on one user, across three expiries (two seen ahead by
/// the processes' clocks, one learnt from the platform's 401): exactly one refresh per expiry,
/// no failed call, and the database holds the newest refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_refresh_once_per_expiry() {
    const PROCESSES: usize = 4;
    const CALLS: usize = 250;
    let Some(url) = fresh_database("pg_multiprocess").await else {
        return;
    };
    let sim = Simulator::builder()
        .log_requests(false)
        .start()
        .await
        .unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let store = PostgresTokenStore::connect(&url).await.unwrap();
    let initial = connected_tokens(&sim, &client).await;
    store.save("user-1", &initial).await.unwrap();
    let app = sim.app();
    let envs = [
        ("DATABASE_URL", url.clone()),
        ("STORE_KEY", "user-1".to_owned()),
        ("SIM_URL", sim.base_url()),
        ("SIM_CLIENT_ID", app.client_id.clone()),
        ("SIM_CLIENT_SECRET", app.client_secret.clone()),
        ("VEHICLE_ID", sim.users()[0].vehicle_ids[0].clone()),
        ("CALLS", CALLS.to_string()),
    ];
    let mut children = Children((0..PROCESSES).map(|_| worker("calls", &envs)).collect());
    let outputs: Vec<_> = children.0.iter_mut().map(lines_of).collect();
    let mut inputs: Vec<ChildStdin> = children
        .0
        .iter_mut()
        .map(|c| c.stdin.take().unwrap())
        .collect();
    for rx in &outputs {
        assert_eq!(rx.recv_timeout(Duration::from_secs(120)).unwrap(), "ready");
    }

    // (how far to move the simulator's clock, whether the processes are told)
    let rounds = [
        (Duration::from_secs(2 * 3600 - 60), true), // inside the refresh skew: refresh ahead
        (Duration::from_secs(2 * 3600 - 60), true), // again, from the new token
        (Duration::from_secs(3 * 3600), false), // past expiry, clocks not told: learnt from 401s
    ];
    let mut told_offset_ms = 0i64;
    let started = Instant::now();
    for (round, (advance, tell)) in rounds.iter().enumerate() {
        sim.advance(*advance);
        if *tell {
            told_offset_ms = (sim.now() - chrono::Utc::now()).num_milliseconds();
        }
        let round_start = Instant::now();
        for input in &mut inputs {
            writeln!(input, "round {told_offset_ms}").unwrap();
            input.flush().unwrap();
        }
        let (mut ok, mut failed, mut slowest) = (0usize, 0usize, 0u64);
        for rx in &outputs {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("the round ends");
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.first(), Some(&"done"), "{line}");
            ok += fields[1].parse::<usize>().unwrap();
            failed += fields[2].parse::<usize>().unwrap();
            slowest = slowest.max(fields[3].parse().unwrap());
        }
        // Refresh requests sent (the simulator's rotation count alone would not see two
        // processes refreshing with the same token: within the grace period the second gets
        // the same pair back and nothing rotates). The first request was the code exchange.
        let refresh_requests = sim.request_count("POST", TOKEN_PATH) - 1;
        println!(
            "round {}: {ok} calls ok, {failed} failed, {refresh_requests} refresh requests and {} rotations so far, slowest process {slowest} ms, round {:?}",
            round + 1,
            sim.refresh_count(),
            round_start.elapsed()
        );
        assert_eq!(failed, 0, "round {}: no call fails", round + 1);
        assert_eq!(ok, PROCESSES * CALLS);
        assert_eq!(
            refresh_requests,
            round as u64 + 1,
            "round {}: exactly one refresh request per expiry across {PROCESSES} processes",
            round + 1
        );
        assert_eq!(sim.refresh_count(), round as u64 + 1);
    }
    println!(
        "{} calls in {PROCESSES} processes over {} expiries: {} refreshes, {:?}",
        PROCESSES * CALLS * rounds.len(),
        rounds.len(),
        sim.refresh_count(),
        started.elapsed()
    );
    for input in &mut inputs {
        let _ = writeln!(input, "quit");
    }
    drop(inputs);
    for c in &mut children.0 {
        let status = c.wait().unwrap();
        assert!(status.success(), "worker exited with {status}");
    }

    // The database holds the newest refresh token: past the grace period every older one is
    // refused (and would revoke the family), the stored one still refreshes.
    let stored = store.load("user-1").await.unwrap().unwrap();
    assert_ne!(stored.refresh_token, initial.refresh_token);
    sim.advance(Duration::from_secs(10 * 60));
    client
        .refresh_tokens(&stored.refresh_token)
        .await
        .expect("the stored refresh token is the newest");
    sim.shutdown().await;
}

/// SQLite: a holder that never releases (here: its lock is leaked, as by a process that died
/// mid-refresh) loses the lease after `lease`, and another process's store takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lease_of_a_vanished_holder_expires() {
    let path = temp_sqlite("lease");
    let short = LockTimeouts {
        lease: Duration::from_millis(500),
        wait: Duration::from_secs(10),
    };
    let gone = SqliteTokenStore::open(&path)
        .await
        .unwrap()
        .with_lock_timeouts(short);
    let other = SqliteTokenStore::open(&path)
        .await
        .unwrap()
        .with_lock_timeouts(short);
    std::mem::forget(gone.lock_for_refresh("k").await.unwrap());
    let start = Instant::now();
    let lock = other.lock_for_refresh("k").await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "it waited for the lease: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    lock.release().await.unwrap();
}

#[tokio::test]
async fn sqlite_require_encryption_refuses_clear_rows() {
    let path = temp_sqlite("require_encryption");
    let clear = SqliteTokenStore::open(&path).await.unwrap();
    let strict = SqliteTokenStore::open(&path)
        .await
        .unwrap()
        .with_cipher(cipher())
        .require_encryption();
    let migrator = SqliteTokenStore::open(&path)
        .await
        .unwrap()
        .with_cipher(cipher());
    let encrypt: EncryptClearRows = Arc::new(move || {
        let m = migrator.clone();
        Box::pin(async move { m.encrypt_clear_rows().await })
    });
    store_conformance::require_encryption("sqlite", &clear, &strict, encrypt).await;

    // Misconfigurations are reported, not silently written in clear.
    let e = clear.encrypt_clear_rows().await.unwrap_err();
    assert_eq!(e.kind(), smartcar::ErrorKind::Configuration, "{e}");
    let e = clear
        .clone()
        .require_encryption()
        .save("k", &tokens("no-cipher"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), smartcar::ErrorKind::Configuration, "{e}");
    assert!(e.to_string().contains("with_cipher"), "{e}");
    assert_eq!(clear.load("k").await.unwrap(), None, "nothing written");
}

#[tokio::test]
async fn postgres_require_encryption_refuses_clear_rows() {
    let Some(url) = fresh_database("pg_require_encryption").await else {
        return;
    };
    let clear = PostgresTokenStore::connect(&url).await.unwrap();
    let strict = PostgresTokenStore::connect(&url)
        .await
        .unwrap()
        .with_cipher(cipher())
        .require_encryption();
    let migrator = PostgresTokenStore::connect(&url)
        .await
        .unwrap()
        .with_cipher(cipher());
    let encrypt: EncryptClearRows = Arc::new(move || {
        let m = migrator.clone();
        Box::pin(async move { m.encrypt_clear_rows().await })
    });
    store_conformance::require_encryption("postgres", &clear, &strict, encrypt).await;
    let e = clear.encrypt_clear_rows().await.unwrap_err();
    assert_eq!(e.kind(), smartcar::ErrorKind::Configuration, "{e}");
}

/// The permission bits of `path`, or `None` when it does not exist.
#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

/// The database file and its `-wal`/`-shm` companions are owner-only, whether `open` creates
/// the file or finds it group- and world-readable.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let path = temp_sqlite("permissions");
    let store = SqliteTokenStore::open(&path).await.unwrap();
    store.save("k", &tokens("perm")).await.unwrap();
    let wal = path.with_file_name("tokens.db-wal");
    let shm = path.with_file_name("tokens.db-shm");
    for file in [&path, &wal, &shm] {
        assert_eq!(mode_of(file), Some(0o600), "{}", file.display());
    }
    store.pool().close().await;

    // An existing file others can read (an older release, a copy, a restore) is tightened.
    let loose = temp_sqlite("permissions_loose");
    let old = SqliteTokenStore::open(&loose).await.unwrap();
    old.save("k", &tokens("loose")).await.unwrap();
    let loose_wal = loose.with_file_name("tokens.db-wal");
    for file in [&loose, &loose_wal] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let reopened = SqliteTokenStore::open(&loose).await.unwrap();
    assert!(reopened.load("k").await.unwrap().is_some());
    for file in [&loose, &loose_wal] {
        assert_eq!(mode_of(file), Some(0o600), "{}", file.display());
    }
    old.pool().close().await;
    reopened.pool().close().await;
}

/// `Debug` of the stores never shows a key (it may be a session-cookie value) or a token.
#[tokio::test]
async fn store_debug_shows_no_key() {
    let key = "cookie-value-4b1d9e0c7a";
    let t = tokens("debug-key");
    let memory = MemoryTokenStore::new();
    memory.save(key, &t).await.unwrap();
    let _lock = memory.lock_for_refresh(key).await.unwrap();
    let sqlite = SqliteTokenStore::open(temp_sqlite("debug_key"))
        .await
        .unwrap();
    sqlite.save(key, &t).await.unwrap();
    let shown = format!("{memory:?} {sqlite:?}");
    assert!(shown.contains("keys: 1"), "{shown}");
    for secret in [key, t.access_token.secret(), t.refresh_token.secret()] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
