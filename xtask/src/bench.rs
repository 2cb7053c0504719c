//! `cargo xtask bench`: what the SDK costs over hand-written HTTP, in one run.
//!
//! Builds and runs the `sdk_vs_raw` bench of `smartcar-sdk` (optimized), which prints a table:
//! requests/s of `vehicle.odometer()` against a raw reqwest GET (sequential and 64 in flight)
//! and their ratio, the client process's peak RSS, TCP connections for 1 000 sequential calls,
//! a batch of 10 reads against 10 single calls, refreshes and added latency for 1 000
//! concurrent calls across an expiry, and the simulator's own throughput. Options after the
//! command are passed to the bench (`--quick`, `--rounds N`, `--seconds S`).
//!
//! Not part of `cargo xtask test`: timings on a shared machine are not pass/fail material. The
//! tests' clippy `--all-targets` step type-checks the bench.

use crate::{Result, cargo_bin, run_command, workspace_root};

/// Runs the benchmark with `args` passed through.
pub fn run(args: &[String]) -> Result<()> {
    run_command(
        std::process::Command::new(cargo_bin())
            .args([
                "bench",
                "--package",
                "smartcar-sdk",
                "--bench",
                "sdk_vs_raw",
                "--",
            ])
            .args(args)
            .current_dir(workspace_root()),
    )
}
