//! `cargo xtask fuzz [--seconds N] [--build-only] [target...]`: builds the libFuzzer targets in
//! `fuzz/` with `cargo fuzz` and runs each for N seconds (default 60), then prints a table of
//! executions per target.
//!
//! - `cargo fuzz` is installed (`cargo install cargo-fuzz --locked`) when missing.
//! - `cargo fuzz` passes nightly-only flags (`-Zsanitizer=address`, sancov passes). On a stable
//!   toolchain they are accepted with `RUSTC_BOOTSTRAP=1`, which this command sets for the
//!   fuzz builds only (never for the workspace's own builds).
//! - Builds go to `fuzz/target` (their RUSTFLAGS differ from the workspace's, so sharing a
//!   target directory would rebuild everything both ways). Profile: cargo fuzz's default,
//!   release with debug assertions and overflow checks, AddressSanitizer on.
//! - Each target starts from `fuzz/corpus/<target>` (the committed `seed-*` files plus what
//!   earlier runs added, which git ignores). A crash fails the command; its input is in
//!   `fuzz/artifacts/<target>/`: replay it with `cargo fuzz run <target> <file>`, fix the SDK,
//!   and add the input to `crates/smartcar/tests/fuzz_regressions.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, cargo_bin, run_command, workspace_root};

/// Options of `cargo xtask fuzz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzOptions {
    /// Seconds per target.
    pub seconds: u64,
    /// Build the targets without running them.
    pub build_only: bool,
    /// Targets to run; empty means all.
    pub targets: Vec<String>,
}

impl FuzzOptions {
    /// Reads `[--seconds N] [--build-only] [target...]`.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut options = FuzzOptions {
            seconds: 60,
            build_only: false,
            targets: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            match flag {
                "--seconds" => {
                    let value = match inline {
                        Some(value) => value,
                        None => iter.next().cloned().ok_or("`--seconds` needs a number")?,
                    };
                    options.seconds = value
                        .parse()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("`--seconds {value}`: not a positive number"))?;
                }
                "--build-only" => options.build_only = true,
                _ if arg.starts_with('-') => return Err(format!("unknown option `{arg}`")),
                _ => options.targets.push(arg.clone()),
            }
        }
        Ok(options)
    }
}

/// What one target did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStats {
    /// The target.
    pub target: String,
    /// Inputs executed (libFuzzer's `stat::number_of_executed_units`).
    pub execs: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Inputs in the corpus directory after the run.
    pub corpus: usize,
    /// Why it failed (crash, property broken), if it did.
    pub failure: Option<String>,
}

fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

/// `cargo fuzz …` in `fuzz/`, with the stable-toolchain escape hatch and its own target dir.
fn cargo_fuzz(args: &[&str]) -> Command {
    let mut command = Command::new(cargo_bin());
    command
        .arg("fuzz")
        .args(args)
        .current_dir(fuzz_dir())
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("CARGO_TARGET_DIR");
    command
}

/// Installs `cargo-fuzz` when `cargo fuzz` is missing.
pub fn ensure_cargo_fuzz() -> Result<()> {
    let present = cargo_fuzz(&["--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    println!("`cargo fuzz` is missing: cargo install cargo-fuzz --locked");
    let started = Instant::now();
    run_command(
        Command::new(cargo_bin())
            .args(["install", "cargo-fuzz", "--locked"])
            .env_remove("CARGO_TARGET_DIR"),
    )
    .map_err(|e| format!("could not install cargo-fuzz: {e}"))?;
    println!("installed cargo-fuzz in {:.0?}", started.elapsed());
    Ok(())
}

/// The targets `fuzz/Cargo.toml` declares (`cargo fuzz list`).
fn all_targets() -> Result<Vec<String>> {
    let output = cargo_fuzz(&["list"])
        .output()
        .map_err(|e| format!("cannot run cargo fuzz list: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo fuzz list` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn target_dir() -> String {
    fuzz_dir().join("target").display().to_string()
}

/// Builds every target (one cargo invocation).
fn build() -> Result<()> {
    let target_dir = target_dir();
    run_command(&mut cargo_fuzz(&["build", "--target-dir", &target_dir]))
}

/// Runs one target for `seconds` and reads libFuzzer's final statistics.
fn run_target(target: &str, seconds: u64) -> Result<RunStats> {
    let corpus = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&corpus)
        .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let target_dir = target_dir();
    let max_time = format!("-max_total_time={seconds}");
    let started = Instant::now();
    let output = cargo_fuzz(&[
        "run",
        "--target-dir",
        &target_dir,
        target,
        "--",
        &max_time,
        "-print_final_stats=1",
        "-timeout=20",
        "-rss_limit_mb=2048",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .output()
    .map_err(|e| format!("cannot run cargo fuzz run {target}: {e}"))?;
    let elapsed = started.elapsed();
    let log = String::from_utf8_lossy(&output.stderr);
    let failure = (!output.status.success()).then(|| failure_summary(target, &log));
    if failure.is_some() {
        eprintln!("{log}");
    }
    Ok(RunStats {
        target: target.to_owned(),
        execs: executed_units(&log).unwrap_or(0),
        elapsed,
        corpus: count_files(&corpus),
        failure,
    })
}

/// `stat::number_of_executed_units`, or the last `Done N runs` line.
fn executed_units(log: &str) -> Option<u64> {
    let stat = log.lines().find_map(|l| {
        l.trim()
            .strip_prefix("stat::number_of_executed_units:")
            .and_then(|v| v.trim().parse().ok())
    });
    stat.or_else(|| {
        log.lines().rev().find_map(|l| {
            l.strip_prefix("Done ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
    })
}

/// The panic message (or sanitizer summary) and where the crashing input was written.
fn failure_summary(target: &str, log: &str) -> String {
    let reason = log
        .lines()
        .position(|l| l.contains("panicked at"))
        .map(|i| log.lines().skip(i).take(2).collect::<Vec<_>>().join(" "))
        .or_else(|| {
            log.lines()
                .find(|l| l.starts_with("SUMMARY:"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "cargo fuzz run failed".to_owned());
    let artifact = log
        .lines()
        .find_map(|l| l.split("Test unit written to ").nth(1))
        .map(|p| format!("; input: {p} (replay: cargo fuzz run {target} {p})"))
        .unwrap_or_default();
    format!("{reason}{artifact}")
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .count()
    })
}

/// The table printed at the end.
pub fn table(stats: &[RunStats]) -> String {
    let mut out = format!(
        "{:<18} {:>8} {:>12} {:>10} {:>8}  result\n",
        "target", "seconds", "execs", "execs/s", "corpus"
    );
    for s in stats {
        let secs = s.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            s.execs as f64 / secs
        } else {
            0.0
        };
        out.push_str(&format!(
            "{:<18} {:>8.1} {:>12} {:>10.0} {:>8}  {}\n",
            s.target,
            secs,
            s.execs,
            rate,
            s.corpus,
            s.failure.as_deref().unwrap_or("ok")
        ));
    }
    let total: u64 = stats.iter().map(|s| s.execs).sum();
    out.push_str(&format!("{:<18} {:>8} {:>12}\n", "total", "", total));
    out
}

/// `cargo xtask fuzz`.
pub fn run(options: &FuzzOptions) -> Result<()> {
    ensure_cargo_fuzz()?;
    let known = all_targets()?;
    let targets = if options.targets.is_empty() {
        known.clone()
    } else {
        for t in &options.targets {
            if !known.contains(t) {
                return Err(format!(
                    "no fuzz target `{t}`; the targets are: {}",
                    known.join(", ")
                ));
            }
        }
        options.targets.clone()
    };
    let started = Instant::now();
    build()?;
    println!(
        "built {} fuzz targets in {:.0?}",
        known.len(),
        started.elapsed()
    );
    if options.build_only {
        return Ok(());
    }
    let mut stats = Vec::new();
    for target in &targets {
        println!("fuzzing {target} for {} s", options.seconds);
        stats.push(run_target(target, options.seconds)?);
    }
    println!("\n{}", table(&stats));
    let failed: Vec<&RunStats> = stats.iter().filter(|s| s.failure.is_some()).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed
            .iter()
            .map(|s| format!("{}: {}", s.target, s.failure.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse() {
        let o = FuzzOptions::parse(&args(&["--seconds", "20", "webhook", "--build-only"])).unwrap();
        assert_eq!(o.seconds, 20);
        assert!(o.build_only);
        assert_eq!(o.targets, ["webhook"]);
        assert_eq!(
            FuzzOptions::parse(&args(&["--seconds=5"])).unwrap().seconds,
            5
        );
        assert_eq!(FuzzOptions::parse(&[]).unwrap().seconds, 60);
        assert!(FuzzOptions::parse(&args(&["--seconds", "0"])).is_err());
        assert!(FuzzOptions::parse(&args(&["--seconds"])).is_err());
        assert!(FuzzOptions::parse(&args(&["--fast"])).is_err());
    }

    #[test]
    fn reads_libfuzzer_statistics() {
        let log = "#2\tINITED cov: 10\nDone 72219 runs in 11 second(s)\nstat::number_of_executed_units: 72220\nstat::average_exec_per_sec:     6565\n";
        assert_eq!(executed_units(log), Some(72220));
        assert_eq!(executed_units("Done 12 runs in 1 second(s)\n"), Some(12));
        assert_eq!(executed_units("nothing\n"), None);
    }

    #[test]
    fn a_crash_names_the_panic_and_the_input() {
        let log = "thread '<unnamed>' panicked at fuzz_targets/x.rs:4:5:\nsecret leaked\n==1== ERROR: libFuzzer: deadly signal\nartifact_prefix='a/'; Test unit written to a/crash-1\n";
        let s = failure_summary("x", log);
        assert!(
            s.contains("panicked at fuzz_targets/x.rs:4:5: secret leaked"),
            "{s}"
        );
        assert!(s.contains("cargo fuzz run x a/crash-1"), "{s}");
    }

    #[test]
    fn the_table_has_rates_and_a_total() {
        let t = table(&[RunStats {
            target: "webhook".into(),
            execs: 1000,
            elapsed: Duration::from_secs(10),
            corpus: 7,
            failure: None,
        }]);
        assert!(t.contains("webhook"), "{t}");
        assert!(t.contains("100"), "{t}");
        assert!(t.lines().last().unwrap().contains("1000"), "{t}");
    }
}
