//! A PostgreSQL server on 127.0.0.1 for the durable token store's tests.
//!
//! A private cluster (its own data directory under the system's temporary directory and its own
//! port, derived from the workspace path so that two checkouts do not collide), owned by the
//! `postgres` user when running as root (the server refuses to run as root), with `trust`
//! authentication on 127.0.0.1 only and durability off (`fsync=off`: test data). The tests get
//! `DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres` and create a fresh database per
//! test. Idempotent: an existing cluster is reused, a running one left running (stop it with
//! `pg_ctl -D <dir> stop`). An already-set `DATABASE_URL` is left alone and nothing is done.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{TestEnv, apt_install, is_root};
use crate::{Result, run_command, workspace_root};

/// Installs PostgreSQL when missing, starts the test cluster, and sets `DATABASE_URL`.
pub fn ensure(env: &mut TestEnv) -> Result<()> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.is_empty()
    {
        println!("DATABASE_URL is set: using that PostgreSQL server");
        return Ok(());
    }
    // The client package alone (psql) also creates /usr/lib/postgresql: look for the server.
    if server_bin_dir().is_err() {
        apt_install(&["postgresql"])?;
    }
    let bin = server_bin_dir()?;
    let root = is_root();
    let port = port_for(&workspace_root());
    let dir = std::env::temp_dir().join(format!("smartcar-rs-pg-{port}"));
    let data = dir.join("data");
    if !data.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        if root {
            run_command(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir),
            )?;
        }
        run_command(
            as_server_user(root, &bin.join("initdb"))
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "-D",
                ])
                .arg(&data),
        )?;
    }
    let running = as_server_user(root, &bin.join("pg_ctl"))
        .arg("status")
        .arg("-D")
        .arg(&data)
        .output()
        .is_ok_and(|o| o.status.success());
    if !running {
        println!("starting PostgreSQL on 127.0.0.1:{port} (data in {data:?})");
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400",
            dir.display()
        );
        run_command(
            as_server_user(root, &bin.join("pg_ctl"))
                .arg("start")
                .arg("-w")
                .args(["-t", "60"])
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .arg("-o")
                .arg(options),
        )?;
    }
    env.push((
        "DATABASE_URL".to_owned(),
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    ));
    Ok(())
}

/// `/usr/lib/postgresql/<newest version>/bin`.
fn server_bin_dir() -> Result<PathBuf> {
    let base = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(base)
        .map_err(|e| format!("cannot read {base:?}: {e}"))?
        .filter_map(|d| d.ok())
        .filter_map(|d| {
            let version: u32 = d.file_name().to_str()?.parse().ok()?;
            let bin = d.path().join("bin");
            (bin.join("pg_ctl").exists() && bin.join("initdb").exists()).then_some(version)
        })
        .max()
        .ok_or("PostgreSQL is installed but no server binaries are in /usr/lib/postgresql")?;
    Ok(base.join(newest.to_string()).join("bin"))
}

/// The command, run as `postgres` when we are root.
fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A port in 20000..30000 from the workspace path (FNV-1a: stable across Rust versions).
fn port_for(path: &Path) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in path.as_os_str().as_encoded_bytes() {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    20_000 + (hash % 10_000) as u16
}
