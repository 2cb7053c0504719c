//! The fault matrix: every kind of bad server behaviour the simulator can inject, on a read
//! (`GET …/security`), a command (`POST …/security`, lock) and a token refresh
//! (`POST /oauth/token`). Each cell runs on a fresh simulator and asserts
//!
//! - the exact outcome: success (after retries, if any) or the typed error kind and status;
//! - how many requests reached the faulted endpoint (a command is sent once unless the
//!   platform provably did not execute it: only a 429 is retried);
//! - that the token store still holds a refresh token the platform accepts *after* the grace
//!   period has passed (so it is not merely tolerated as a recently rotated one).
//!
//! The summary table (cases × outcome) is printed; run with `--no-capture` to see it.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smartcar::store::TokenStore;
use smartcar::{Error, ErrorKind};
use smartcar_sim::{Fault, Simulator};
use smartcar_tests::flow::{CALLBACK, client_for, connect};

const SECURITY: &str = smartcar_api::ops::CONTROL_SECURITY.path;
const TOKEN: &str = smartcar_api::ops::EXCHANGE_TOKEN.path;
/// The client's timeout per attempt in this test; slow faults wait longer than this.
const TIMEOUT: Duration = Duration::from_secs(1);
const SLOW: Duration = Duration::from_millis(2500);

/// Records backoffs instead of sleeping through them.
#[derive(Clone, Default)]
struct NoSleep(Arc<Mutex<Vec<Duration>>>);

impl smartcar::config::Sleep for NoSleep {
    fn sleep(&self, d: Duration) -> smartcar::store::BoxFuture<'static, ()> {
        self.0.lock().unwrap().push(d);
        Box::pin(async {})
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Read,
    Command,
    Refresh,
}

/// What a cell must end with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Success, after this many requests to the faulted endpoint.
    Ok(u64),
    /// This error kind and status, after this many requests.
    Err(ErrorKind, Option<u16>, u64),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Ok(n) => write!(f, "ok, sent {n}"),
            Expect::Err(kind, Some(s), n) => write!(f, "{kind:?} {s}, sent {n}"),
            Expect::Err(kind, None, n) => write!(f, "{kind:?}, sent {n}"),
        }
    }
}

struct Case {
    name: &'static str,
    fault: fn() -> Fault,
    read: Expect,
    command: Expect,
    refresh: Expect,
}

use ErrorKind::{Api, Decode, Timeout, Transport};
use Expect::{Err as E, Ok as O};

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "429 with Retry-After",
            fault: || Fault::rate_limit(2),
            read: O(2),
            command: O(2),
            refresh: O(2),
        },
        Case {
            name: "429 without Retry-After",
            fault: Fault::rate_limit_without_retry_after,
            read: O(2),
            command: O(2),
            refresh: O(2),
        },
        Case {
            name: "500",
            fault: || Fault::status(500),
            read: O(2),
            command: E(Api, Some(500), 1),
            refresh: O(2),
        },
        Case {
            name: "501",
            fault: || Fault::status(501),
            read: O(2),
            command: E(Api, Some(501), 1),
            refresh: O(2),
        },
        Case {
            name: "502",
            fault: || Fault::status(502),
            read: O(2),
            command: E(Api, Some(502), 1),
            refresh: O(2),
        },
        Case {
            name: "503",
            fault: || Fault::status(503),
            read: O(2),
            command: E(Api, Some(503), 1),
            refresh: O(2),
        },
        Case {
            name: "504",
            fault: || Fault::status(504),
            read: O(2),
            command: E(Api, Some(504), 1),
            refresh: O(2),
        },
        Case {
            name: "HTML 502 page",
            fault: Fault::html_502,
            read: O(2),
            command: E(Api, Some(502), 1),
            refresh: O(2),
        },
        Case {
            name: "empty body, 200",
            fault: || Fault::empty_body(200),
            read: E(Decode, Some(200), 1),
            command: E(Decode, Some(200), 1),
            refresh: O(2),
        },
        Case {
            name: "empty body, 503",
            fault: || Fault::empty_body(503),
            read: O(2),
            command: E(Api, Some(503), 1),
            refresh: O(2),
        },
        Case {
            name: "truncated JSON",
            fault: Fault::truncated_json,
            read: E(Decode, Some(200), 1),
            command: E(Decode, Some(200), 1),
            refresh: O(2),
        },
        Case {
            name: "wrong content type",
            fault: Fault::wrong_content_type,
            read: O(1),
            command: O(1),
            refresh: O(1),
        },
        Case {
            name: "unknown enum value",
            fault: Fault::unknown_enum,
            read: O(1),
            command: O(1),
            refresh: O(1),
        },
        Case {
            name: "extra fields",
            fault: Fault::extra_fields,
            read: O(1),
            command: O(1),
            refresh: O(1),
        },
        Case {
            name: "10 MB body",
            fault: Fault::huge_body,
            read: E(Decode, Some(200), 1),
            command: E(Decode, Some(200), 1),
            refresh: O(2),
        },
        Case {
            name: "slow body past the timeout",
            fault: || Fault::stall(SLOW),
            read: O(2),
            command: E(Timeout, None, 1),
            refresh: O(2),
        },
        Case {
            name: "slow headers past the timeout",
            fault: || Fault::delay(SLOW),
            read: O(2),
            command: E(Timeout, None, 1),
            refresh: O(2),
        },
        Case {
            name: "connection reset",
            fault: Fault::connection_reset,
            read: O(2),
            command: E(Transport, None, 1),
            refresh: O(2),
        },
        Case {
            name: "non-HTTP garbage (TLS-less)",
            fault: Fault::garbage,
            read: O(2),
            command: E(Transport, None, 1),
            refresh: O(2),
        },
    ]
}

/// Runs one cell on a fresh simulator; returns what happened, or a description of what went
/// wrong beyond the outcome (commands sent twice, store left without a working token…).
async fn run_cell(case: &Case, op: Op) -> (Expect, Vec<String>) {
    let mut problems = Vec::new();
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK)
        .timeout(TIMEOUT)
        .sleep(NoSleep::default())
        .build()
        .unwrap();
    let (session, store) = connect(&sim, &client).await;
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    let before = store.load("user-1").await.unwrap().unwrap();
    let (method, path, template) = match op {
        Op::Read | Op::Command => (
            if op == Op::Read { "GET" } else { "POST" },
            "/v2.0/vehicles/*/security",
            SECURITY,
        ),
        Op::Refresh => ("POST", TOKEN, TOKEN),
    };
    if op == Op::Refresh {
        // The access token expires: the next call refreshes.
        sim.advance(Duration::from_secs(2 * 3600));
    }
    let sent_before = sim.request_count(method, template);
    let rule = sim
        .faults()
        .inject((case.fault)())
        .on(path)
        .method(method)
        .once();
    let result: Result<(), Error> = match op {
        Op::Read => vehicle.lock_status().await.map(|_| ()),
        Op::Command => vehicle.lock().await.map(|_| ()),
        Op::Refresh => session.access_token().await.map(|_| ()),
    };
    // Slow faults keep running on the server after the client gave up: let them finish so the
    // count below sees every request.
    if matches!((case.fault)(), Fault::StallBody(_) | Fault::Delay(_)) {
        tokio::time::sleep(SLOW + Duration::from_millis(200)).await;
    }
    if sim.faults().hits(rule) != 1 {
        problems.push(format!("fault hit {} times", sim.faults().hits(rule)));
    }
    let sent = sim.request_count(method, template) - sent_before;
    let outcome = match &result {
        Ok(()) => Expect::Ok(sent),
        Err(e) => Expect::Err(e.kind(), e.status(), sent),
    };
    if let Err(e) = &result {
        // An oversized body is refused for its size, not read whole and then misparsed.
        if matches!((case.fault)(), Fault::HugeBody(_)) && !e.to_string().contains("exceeds") {
            problems.push(format!("the error does not name the size limit: {e}"));
        }
        // Never a secret in what the caller sees.
        let shown = format!("{e} {e:?}");
        for secret in [
            before.refresh_token.secret(),
            before.access_token.secret(),
            sim.app().client_secret.as_str(),
        ] {
            if shown.contains(secret) {
                problems.push("a secret appears in the error".to_owned());
            }
        }
    }
    if op == Op::Refresh && result.is_ok() && sim.refresh_count() != 1 {
        problems.push(format!(
            "{} rotations for one refresh (a retry should reuse the grace period)",
            sim.refresh_count()
        ));
    }

    // The store must hold a refresh token the platform still accepts once the grace period of
    // any rotated-out token has passed.
    sim.advance(Duration::from_secs(120));
    let stored = store.load("user-1").await.unwrap().unwrap();
    match client.refresh_tokens(&stored.refresh_token).await {
        Ok(new) => {
            store
                .compare_and_swap("user-1", &stored.refresh_token, &new)
                .await
                .unwrap();
            if let Err(e) = vehicle.lock_status().await {
                problems.push(format!("the session does not work afterwards: {e}"));
            }
        }
        Err(e) => problems.push(format!("the stored refresh token no longer works: {e}")),
    }
    sim.shutdown().await;
    (outcome, problems)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_on_a_read_a_command_and_a_refresh() {
    let cases = cases();
    let mut table = String::new();
    let mut failures = Vec::new();
    writeln!(
        table,
        "| {:<30} | {:<24} | {:<24} | {:<24} |",
        "fault", "read (GET security)", "command (lock)", "refresh"
    )
    .unwrap();
    writeln!(table, "|{:-<32}|{:-<26}|{:-<26}|{:-<26}|", "", "", "", "").unwrap();
    let mut cells = 0;
    for case in &cases {
        let mut row = format!("| {:<30} |", case.name);
        // The three cells of a fault run at once (each on its own simulator).
        let (read, command, refresh) = futures_util::future::join3(
            run_cell(case, Op::Read),
            run_cell(case, Op::Command),
            run_cell(case, Op::Refresh),
        )
        .await;
        for (op, expected, (actual, problems)) in [
            (Op::Read, case.read, read),
            (Op::Command, case.command, command),
            (Op::Refresh, case.refresh, refresh),
        ] {
            cells += 1;
            let mark = if actual == expected && problems.is_empty() {
                ""
            } else {
                "!!"
            };
            write!(row, " {:<24} |", format!("{mark}{actual}")).unwrap();
            if actual != expected {
                failures.push(format!(
                    "{} / {op:?}: expected {expected}, got {actual}",
                    case.name
                ));
            }
            for p in problems {
                failures.push(format!("{} / {op:?}: {p}", case.name));
            }
        }
        writeln!(table, "{row}").unwrap();
    }
    println!(
        "\nFault matrix ({} faults × 3 operations = {cells} cells; \"sent n\" = requests that reached the faulted endpoint; every cell also checks that the stored refresh token works after the grace period):\n{table}",
        cases.len()
    );
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}
