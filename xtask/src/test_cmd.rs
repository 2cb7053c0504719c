//! `cargo xtask test`: the project's full test command (what `.ci/run` runs).
//!
//! The last step is a fuzz smoke: every target of `fuzz/` built and run a few seconds
//! (`cargo xtask fuzz`; `SMARTCAR_FUZZ_SMOKE_SECONDS=0` only builds them).
//!
//! Each step is printed as it starts; the first failure stops the run. Timings are printed at
//! the end.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Paths, Result, cargo_bin, check, run_command, setup, workspace_root};

/// Crates of which the dependency graph must hold exactly one version.
const SINGLE_VERSION: [&str; 2] = ["reqwest", "hyper"];

struct Step {
    name: &'static str,
    run: Box<dyn Fn() -> Result<()>>,
}

fn step(name: &'static str, run: impl Fn() -> Result<()> + 'static) -> Step {
    Step {
        name,
        run: Box::new(run),
    }
}

/// The crates published on crates.io: each must package (manifest, included files, path
/// dependencies with versions). `tests/tests/packaging.rs` checks their metadata.
const PUBLISHED: [&str; 4] = [
    "smartcar-api",
    "smartcar-sdk",
    "smartcar-sim",
    "smartcar-cli",
];

/// Runs every step, failing fast.
pub fn run_all() -> Result<()> {
    let nextest = has_nextest();
    let steps = vec![
        step("toolchain components (rustfmt, clippy)", ensure_components),
        step(
            "system set-up (Debian/npm packages, test servers)",
            move || {
                let vars = setup::ensure_all()?;
                for (name, value) in vars {
                    // SAFETY: xtask is single-threaded here; the children inherit the variables.
                    unsafe { std::env::set_var(name, value) };
                }
                Ok(())
            },
        ),
        step("cargo xtask check", || check::check(&Paths::defaults())),
        step("cargo fmt --all --check", || {
            cargo(&["fmt", "--all", "--check"])
        }),
        step(
            "cargo clippy --workspace --all-targets --all-features -- -D warnings",
            || {
                cargo(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                ])
            },
        ),
        step(
            "cargo doc --workspace --no-deps --all-features (warnings denied)",
            || {
                cargo_env(
                    &["doc", "--workspace", "--no-deps", "--all-features"],
                    &[("RUSTDOCFLAGS", "-D warnings")],
                )
            },
        ),
        step("cargo test --workspace --all-features --doc", || {
            cargo(&["test", "--workspace", "--all-features", "--doc"])
        }),
        if nextest {
            step("cargo nextest run --workspace --all-features", || {
                cargo(&["nextest", "run", "--workspace", "--all-features"])
            })
        } else {
            step("cargo test --workspace --all-features", || {
                cargo(&["test", "--workspace", "--all-features"])
            })
        },
        step("cargo tree -d: one reqwest, one hyper", single_versions),
        step(
            "cargo package --no-verify: the published crates package",
            || {
                let mut args = vec!["package", "--no-verify", "--allow-dirty", "--quiet"];
                for name in PUBLISHED {
                    args.extend(["-p", name]);
                }
                cargo(&args)
            },
        ),
        step(
            "cargo xtask fuzz: fuzz smoke (cargo fuzz, libFuzzer)",
            fuzz_smoke,
        ),
    ];

    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut failure = None;
    for step in &steps {
        println!("\n==> {}", step.name);
        let start = Instant::now();
        let result = (step.run)();
        timings.push((step.name, start.elapsed()));
        if let Err(e) = result {
            failure = Some(format!("step `{}` failed: {e}", step.name));
            break;
        }
    }

    println!("\n==> timings");
    for (name, took) in &timings {
        println!("{:>8.1}s  {name}", took.as_secs_f64());
    }
    let total: Duration = timings.iter().map(|(_, t)| *t).sum();
    println!("{:>8.1}s  total", total.as_secs_f64());
    match failure {
        Some(e) => Err(e),
        None => {
            println!("all {} steps passed", steps.len());
            Ok(())
        }
    }
}

/// Seconds each fuzz target runs in the test command (the smoke); a longer run is
/// `cargo xtask fuzz --seconds 600`.
const FUZZ_SMOKE_SECONDS: u64 = 10;

/// Builds every fuzz target and runs each [`FUZZ_SMOKE_SECONDS`] seconds.
/// `SMARTCAR_FUZZ_SMOKE_SECONDS=N` changes the time; `0` only builds the targets.
fn fuzz_smoke() -> Result<()> {
    let seconds = match std::env::var("SMARTCAR_FUZZ_SMOKE_SECONDS") {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("SMARTCAR_FUZZ_SMOKE_SECONDS={v}: not a number of seconds"))?,
        Err(_) => FUZZ_SMOKE_SECONDS,
    };
    crate::fuzz::run(&crate::fuzz::FuzzOptions {
        seconds: seconds.max(1),
        build_only: seconds == 0,
        targets: Vec::new(),
    })
}

fn cargo(args: &[&str]) -> Result<()> {
    cargo_env(args, &[])
}

fn cargo_env(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    run_command(
        Command::new(cargo_bin())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(workspace_root()),
    )
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .is_ok_and(|o| o.status.success())
}

fn has_nextest() -> bool {
    succeeds(&cargo_bin(), &["nextest", "--version"])
}

/// `rustup component add` for rustfmt / clippy when `cargo fmt` / `cargo clippy` are missing.
fn ensure_components() -> Result<()> {
    let cargo = cargo_bin();
    for (component, subcommand) in [("rustfmt", "fmt"), ("clippy", "clippy")] {
        if succeeds(&cargo, &[subcommand, "--version"]) {
            continue;
        }
        println!("`cargo {subcommand}` is missing: rustup component add {component}");
        let status = Command::new("rustup")
            .args(["component", "add", component])
            .current_dir(workspace_root())
            .status()
            .map_err(|e| format!("cannot run rustup to install {component}: {e}"))?;
        if !status.success() || !succeeds(&cargo, &[subcommand, "--version"]) {
            return Err(format!("could not install the {component} component"));
        }
    }
    Ok(())
}

fn single_versions() -> Result<()> {
    let output = Command::new(cargo_bin())
        .args(["tree", "--workspace", "-d", "-e", "normal"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo tree -d` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let offenders = duplicated(&tree);
    if offenders.is_empty() {
        println!("one version each of {}", SINGLE_VERSION.join(", "));
        Ok(())
    } else {
        Err(format!(
            "more than one version of {} in the dependency graph:\n{tree}",
            offenders.join(", ")
        ))
    }
}

/// The [`SINGLE_VERSION`] crates that appear as duplicate roots in `cargo tree -d` output
/// (roots are the lines that are not indented).
fn duplicated(tree: &str) -> Vec<&'static str> {
    SINGLE_VERSION
        .into_iter()
        .filter(|name| {
            let prefix = format!("{name} v");
            tree.lines().any(|line| line.starts_with(&prefix))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_detection_reads_only_roots() {
        let clean =
            "base64 v0.22.1\n└── oauth2 v5.0.0\n    └── reqwest v0.13.5\n\nbase64 v0.23.1\n";
        assert!(duplicated(clean).is_empty());
        let dirty =
            "reqwest v0.12.28\n└── oauth2 v5.0.0\n\nreqwest v0.13.5\n└── x v1\nhyper v1.0.0\n";
        assert_eq!(duplicated(dirty), ["reqwest", "hyper"]);
        assert!(duplicated("hyper-util v0.1.0\n").is_empty());
    }
}
