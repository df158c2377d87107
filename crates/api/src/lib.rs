//! Tollgate's management API (`/api/v1`): thin handlers over the store and the domain.
//!
//! Architecture invariant: handlers extract, call one store or domain function, and
//! convert; rules live in `tollgate-domain`, SQL in `tollgate-store`.

mod auth;
mod error;
mod json;
mod notify;
mod openapi;
mod payments;
mod routes;
mod state;
pub mod tasks;
mod throttle;
mod views;

pub use auth::{Auth, SESSION_COOKIE};
pub use error::ApiError;
pub use openapi::openapi_json;
pub use routes::router;
pub use state::{ApiConfig, AppState};
pub use views::usd;

/// Public functions shared by the API, the CLI and the demo seeder.
pub mod service {
    pub use crate::routes::accounts::sign_up;
    pub use crate::routes::billing::grant_credits;
}
