//! System set-up done by `cargo xtask test` before it runs anything: what the tests need beyond
//! the Rust toolchain (Debian packages, npm packages, a database server), installed and started
//! only when missing, so the README's test command works on a bare machine of the project's kind
//! and costs nothing on a machine that already has everything.
//!
//! Each concern lives in its own module and is called from [`ensure_all`].

use std::process::Command;

use crate::{Result, run_command};

mod browser;
mod postgres;

/// Environment variables the set-up produced for the test steps (e.g. `DATABASE_URL`).
pub type TestEnv = Vec<(String, String)>;

/// Installs and starts what the tests need; returns environment variables for the test steps.
pub fn ensure_all() -> Result<TestEnv> {
    let mut env = TestEnv::new();
    browser::ensure(&mut env)?;
    postgres::ensure(&mut env)?;
    Ok(env)
}

/// Whether the Debian package `name` is installed.
#[allow(dead_code)] // used by the set-up modules as they are filled in
pub fn deb_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("ok installed")
        })
}

/// `apt-get install -y --no-install-recommends` of the packages of `names` that are missing
/// (after one `apt-get update`). Runs through `sudo` when not root.
#[allow(dead_code)] // used by the set-up modules as they are filled in
pub fn apt_install(names: &[&str]) -> Result<()> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !deb_installed(n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing Debian packages: {}", missing.join(" "));
    let root = is_root();
    let run = |args: &[&str]| -> Result<()> {
        let mut cmd = if root {
            Command::new(args[0])
        } else {
            let mut c = Command::new("sudo");
            c.arg(args[0]);
            c
        };
        run_command(
            cmd.args(&args[1..])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    run(&["apt-get", "update", "-q"])?;
    let mut install = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    run(&install)
}

/// Whether this process runs as root (`id -u` is 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
