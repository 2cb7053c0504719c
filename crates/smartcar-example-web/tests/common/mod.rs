//! What the browser tests share: where Chromium, node and playwright-core are, whether they
//! are installed, and a bounded run of one of `browser/*.mjs` that prints one JSON object.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The browser run may take this long at most (Chromium's first start is the slow part).
const BROWSER_LIMIT: Duration = Duration::from_secs(120);

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// The cargo target directory: `CARGO_TARGET_DIR` when set, else three levels above this test
/// binary (`<target>/debug/deps/browser-…`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(dir)
        };
    }
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

pub fn chromium() -> PathBuf {
    std::env::var_os("SMARTCAR_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What is missing to run the browser, if anything.
pub fn missing_prerequisites() -> Option<String> {
    let mut missing = Vec::new();
    if !chromium().exists() {
        missing.push(format!("Chromium ({})", chromium().display()));
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node".to_owned());
    }
    if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push("playwright-core (npm ci in crates/smartcar-example-web/browser)".to_owned());
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// Runs `browser/<script>` with `args` in node, bounded in time; returns what it printed as
/// JSON.
pub fn run_node(script: &str, args: &[&str]) -> Value {
    let mut child = Command::new("node")
        .arg(browser_dir().join(script))
        .args(args)
        .env("SMARTCAR_CHROMIUM", chromium())
        .current_dir(browser_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > BROWSER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser flow took longer than {BROWSER_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut stdout)
        .expect("read node's output");
    assert!(
        status.success(),
        "the browser flow failed ({status}); see its stderr above"
    );
    serde_json::from_str(stdout.trim()).expect("the browser flow prints one JSON object")
}

/// `true` when the browser can run; otherwise says what is missing and returns `false` (the
/// caller skips), except under `CI=true`, where it panics.
pub fn browser_available(test: &str) -> bool {
    let Some(missing) = missing_prerequisites() else {
        return true;
    };
    let message = format!(
        "{test}: missing {missing}; run `cargo xtask setup` (or `cargo xtask test`) to install them"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED {message}");
    false
}
