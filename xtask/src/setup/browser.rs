//! Headless Chromium (and whatever drives it) for the web example's browser test.

use super::TestEnv;
use crate::Result;

/// Installs the browser test's prerequisites when missing. (Filled in by the web-example work.)
pub fn ensure(_env: &mut TestEnv) -> Result<()> {
    Ok(())
}
