//! The routes of `/api/v1`, one module per area.

pub(crate) mod accounts;
pub(crate) mod billing;
pub(crate) mod catalog;
pub(crate) mod installs;
pub(crate) mod orgs;
pub(crate) mod system;
pub(crate) mod usage;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The API's router: `/api/v1/…`, `/healthz`, `/readyz`, `/metrics`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(accounts::routes())
        .merge(orgs::routes())
        .merge(catalog::routes())
        .merge(installs::routes())
        .merge(billing::routes())
        .merge(usage::routes())
        .route("/openapi.json", axum::routing::get(crate::openapi::serve))
        .fallback(|| async { ApiError::NotFound("endpoint") });
    Router::new()
        .nest("/api/v1", api)
        .merge(system::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
