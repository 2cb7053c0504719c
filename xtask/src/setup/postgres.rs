//! A PostgreSQL server on 127.0.0.1 for the durable token store's tests.

use super::TestEnv;
use crate::Result;

/// Installs and starts PostgreSQL when missing. (Filled in by the token-store work.)
pub fn ensure(_env: &mut TestEnv) -> Result<()> {
    Ok(())
}
