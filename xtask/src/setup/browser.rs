//! Headless Chromium and Playwright for the web example's browser test
//! (`crates/smartcar-example-web/tests/browser.rs`).
//!
//! - Debian's `chromium` (`/usr/bin/chromium`); Playwright never downloads a browser of its own.
//! - Node.js and npm (Debian's `nodejs` and `npm`) when `node` is missing.
//! - `npm ci` in `crates/smartcar-example-web/browser/` (only `playwright-core`, pinned by its
//!   `package-lock.json`) when its `node_modules` lacks it.
//!
//! Each part is skipped when already there, so a second run costs nothing.

use std::path::Path;
use std::process::Command;

use super::TestEnv;
use crate::{Result, run_command, workspace_root};

/// The browser script's npm package, relative to the workspace root.
const BROWSER_DIR: &str = "crates/smartcar-example-web/browser";

/// Installs the browser test's prerequisites when missing; tells the test where Chromium is.
pub fn ensure(env: &mut TestEnv) -> Result<()> {
    if !Path::new("/usr/bin/chromium").exists() {
        super::apt_install(&["chromium"])?;
    }
    if !runs("node", &["--version"]) || !runs("npm", &["--version"]) {
        super::apt_install(&["nodejs", "npm"])?;
    }
    let dir = workspace_root().join(BROWSER_DIR);
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        println!("npm ci in {BROWSER_DIR}");
        run_command(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
        )
        .map_err(|e| format!("in {BROWSER_DIR}: {e}"))?;
    }
    env.push(("SMARTCAR_CHROMIUM".into(), "/usr/bin/chromium".into()));
    Ok(())
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}
