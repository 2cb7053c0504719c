//! (to be written)

use axum::Router;

use crate::state::AppState;

/// Routes of this part of the platform.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
