//! The page handlers, one module per area.

pub mod agent;
pub mod auth;
pub mod billing;
pub mod dashboard;
pub mod notifications;
pub mod publisher;
pub mod settings;
pub mod store;
pub mod team;
pub mod usage;

use crate::page::PageError;
use axum::response::{IntoResponse, Response};

/// Any path no page answers: an HTML 404.
pub async fn not_found() -> Response {
    PageError::NotFound.into_response()
}
