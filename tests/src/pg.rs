//! PostgreSQL for tests: a fresh database per test on the server `DATABASE_URL` names.
//!
//! `cargo xtask test` starts a server on 127.0.0.1 and sets `DATABASE_URL`. Elsewhere, a test
//! that needs PostgreSQL is skipped with a message when `DATABASE_URL` is unset, except under
//! CI (`CI` set to anything but `false`/`0`), where that is a failure.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Whether we run under CI.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `DATABASE_URL`, or `None` after printing why the test is skipped.
///
/// # Panics
///
/// Under CI when `DATABASE_URL` is unset.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!(
            "{test}: DATABASE_URL is not set under CI; `cargo xtask test` starts PostgreSQL and sets it"
        ),
        _ => {
            eprintln!(
                "SKIPPED {test}: DATABASE_URL is not set (run `cargo xtask test`, or `cargo xtask setup` and export the DATABASE_URL it prints)"
            );
            None
        }
    }
}

/// A URL of a new, empty database named after `test` (dropped first if a previous run left it
/// there), on the server of `DATABASE_URL`; `None` when the test must be skipped.
///
/// # Panics
///
/// When the server cannot be reached or the database cannot be created (a test failure).
pub async fn fresh_database(test: &str) -> Option<String> {
    let server = server_url(test)?;
    let name: String = format!("smartcar_test_{test}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let mut conn = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL: {e}"));
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot drop database {name}: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    let _ = conn.close().await;
    let mut url = url::Url::parse(&server).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}
