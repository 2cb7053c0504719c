//! What the benches share (`mod common;` in each; a bench uses only part of it).

#![allow(dead_code)]

/// A `kB` field of `/proc/self/status` (`VmHWM`: peak resident set; `VmRSS`: now), in KiB;
/// 0 when it cannot be read.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .strip_prefix(':')
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// A new, empty database `name` (dropped first if a previous run left it) on the PostgreSQL
/// server of `server`: its URL.
#[cfg(feature = "postgres")]
pub async fn fresh_database(server: &str, name: &str) -> String {
    use smartcar::store::sqlx::{self, Connection as _};
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .expect("DATABASE_URL names a reachable PostgreSQL server");
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}
