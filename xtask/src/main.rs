//! Project automation for smartcar-rs, run as `cargo xtask <command>` (an alias in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask generate [--spec PATH] [--out PATH]`: regenerate the low-level client
//!   (`crates/smartcar-api/src/generated.rs`) from the OpenAPI description.
//! - `cargo xtask check [--spec PATH] [--out PATH]`: fail with a diff summary if the committed
//!   generated file is not what `generate` would write.
//! - `cargo xtask test`: the project's full test command (what CI runs).
//! - `cargo xtask setup`: only its system set-up step (Debian/npm packages, test servers).
//! - `cargo xtask bench [--quick | --rounds N --seconds S]`: the SDK against raw reqwest (see
//!   BENCHMARKS.md); never part of `test`.
//! - `cargo xtask fuzz [--seconds N] [--build-only] [target...]`: build and run the fuzz
//!   targets in `fuzz/` (cargo fuzz, libFuzzer), N seconds each, with a table of executions.
//!
//! Relative paths are resolved against the workspace root, never the current directory, so the
//! commands behave the same from any directory of the workspace.

mod bench;
mod check;
mod codegen;
mod fuzz;
mod open_enums;
mod ops;
mod setup;
#[cfg(test)]
mod surface;
mod test_cmd;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Default OpenAPI description, relative to the workspace root.
pub const DEFAULT_SPEC: &str = "openapi/smartcar.yaml";
/// Default output of `generate`, relative to the workspace root.
pub const DEFAULT_OUT: &str = "crates/smartcar-api/src/generated.rs";

/// The test fixture spec (relative to the workspace root): small, with every shape and vendor
/// extension the real spec uses.
#[cfg(test)]
pub const MINI_SPEC: &str = "xtask/tests/fixtures/mini.yaml";

/// Every xtask failure is a message for a person; `main` prints it and exits 1.
pub type Result<T, E = String> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  generate [--spec PATH] [--out PATH]   regenerate the low-level client from the OpenAPI spec
  check    [--spec PATH] [--out PATH]   fail if the committed generated file is stale
  test                                  the full test suite (what CI runs)
  setup                                 only the system set-up of `test` (packages, test
                                        servers); prints the variables it sets (DATABASE_URL)
  bench    [--quick] [--rounds N] [--seconds S]
                                        the SDK against raw reqwest; prints a table (BENCHMARKS.md)
  fuzz [--seconds N] [--build-only] [target...]
                                        build the fuzz targets and run each N s (default 60)

defaults: --spec openapi/smartcar.yaml --out crates/smartcar-api/src/generated.rs
(relative paths are relative to the workspace root)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        return Err(format!("no command given\n\n{USAGE}"));
    };
    match command.as_str() {
        "generate" => {
            let paths = Paths::parse(rest)?;
            codegen::generate_to_file(&paths)
        }
        "check" => {
            let paths = Paths::parse(rest)?;
            check::check(&paths)
        }
        "test" => {
            if !rest.is_empty() {
                return Err(format!("`test` takes no options\n\n{USAGE}"));
            }
            test_cmd::run_all()
        }
        "setup" => {
            if !rest.is_empty() {
                return Err(format!("`setup` takes no options\n\n{USAGE}"));
            }
            for (name, value) in setup::ensure_all()? {
                println!("{name}={value}");
            }
            Ok(())
        }
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(&fuzz::FuzzOptions::parse(rest)?),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    }
}

/// The cargo that runs this xtask (so the same toolchain is used throughout).
pub fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cmd` to completion, its output on the terminal; the error names the command and how it
/// ended.
pub fn run_command(cmd: &mut Command) -> Result<()> {
    let program = Path::new(cmd.get_program());
    let shown = std::iter::once(program.file_name().unwrap_or(program.as_os_str()))
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` exited with {status}"))
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Spec and output paths of `generate` / `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The OpenAPI description (YAML).
    pub spec: PathBuf,
    /// The generated Rust file.
    pub out: PathBuf,
}

impl Paths {
    /// The defaults: `openapi/smartcar.yaml` → `crates/smartcar-api/src/generated.rs`.
    pub fn defaults() -> Self {
        let root = workspace_root();
        Self {
            spec: root.join(DEFAULT_SPEC),
            out: root.join(DEFAULT_OUT),
        }
    }

    fn parse(args: &[String]) -> Result<Self> {
        let root = workspace_root();
        let mut paths = Self::defaults();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            let slot = match flag {
                "--spec" => &mut paths.spec,
                "--out" => &mut paths.out,
                _ => return Err(format!("unknown option `{arg}`\n\n{USAGE}")),
            };
            let value = match inline {
                Some(value) => value,
                None => iter
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("`{flag}` needs a path"))?,
            };
            *slot = root.join(value);
        }
        Ok(paths)
    }
}

/// `path` relative to the workspace root when it lies inside it, with `/` separators, for
/// messages and the generated file's header (so the output does not depend on where the
/// checkout lives).
pub fn display_path(path: &Path) -> String {
    match path.strip_prefix(workspace_root()) {
        Ok(inside) => inside
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_default_to_the_workspace_files() {
        let paths = Paths::parse(&[]).unwrap();
        assert_eq!(display_path(&paths.spec), "openapi/smartcar.yaml");
        assert_eq!(
            display_path(&paths.out),
            "crates/smartcar-api/src/generated.rs"
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_workspace_root() {
        let paths = Paths::parse(&args(&["--spec", "a/b.yaml", "--out=c.rs"])).unwrap();
        assert_eq!(paths.spec, workspace_root().join("a/b.yaml"));
        assert_eq!(paths.out, workspace_root().join("c.rs"));
    }

    #[test]
    fn bad_options_are_reported() {
        assert!(
            Paths::parse(&args(&["--spec"]))
                .unwrap_err()
                .contains("needs a path")
        );
        assert!(
            Paths::parse(&args(&["--nope"]))
                .unwrap_err()
                .contains("unknown option `--nope`")
        );
    }
}
