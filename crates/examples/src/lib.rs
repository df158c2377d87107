//! Example MCP servers that the `tollgate` binary serves under `/_examples`, for demos and
//! black-box tests of the gateway: real MCP over Streamable HTTP, built with the official
//! Rust SDK (`rmcp`).
//!
//! | server           | MCP endpoint            | tools                  |
//! |------------------|-------------------------|------------------------|
//! | `echo`           | `/echo/mcp`             | `echo`, `countdown`    |
//! | `word-count`     | `/word-count/mcp`       | `count_words`          |
//! | `usage-reporter` | `/usage-reporter/mcp`   | `summarize` (+ `_meta.usage`) |
//!
//! Each server also answers `GET /{slug}/health` with `{"status":"ok"}`, which is where the
//! gateway's `/{agent}/{version}/health` forwards.
//!
//! Both MCP protocol eras work: 2025-era clients `initialize` and get an `Mcp-Session-Id`
//! (sessions live in memory, per process), and 2026-07-28 clients are served statelessly.

mod echo;
mod text;
mod usage_reporter;
mod word_count;

use std::sync::Arc;

use axum::{Json, Router, routing::get};
use rmcp::{
    ServerHandler,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

/// Slugs of the example servers. Within [`router`], each serves MCP at `/{slug}/mcp` and
/// a health check at `/{slug}/health`.
pub const EXAMPLE_SERVERS: [&str; 3] = ["echo", "word-count", "usage-reporter"];

/// Routes serving the example MCP servers, to be nested by the binary at "/_examples".
///
/// Open SSE streams are never closed by the server; use [`router_with_shutdown`] when a
/// graceful shutdown must not wait for clients to hang up.
pub fn router() -> Router {
    router_with_shutdown(CancellationToken::new())
}

/// Like [`router`], but cancelling `shutdown` ends every open MCP session and SSE stream,
/// so that `axum::serve(..).with_graceful_shutdown(..)` can finish.
pub fn router_with_shutdown(shutdown: CancellationToken) -> Router {
    Router::new()
        .merge(server_routes("echo", &shutdown, echo::EchoServer::new))
        .merge(server_routes("word-count", &shutdown, word_count::WordCountServer::new))
        .merge(server_routes("usage-reporter", &shutdown, usage_reporter::UsageReporterServer::new))
}

/// The `/{slug}/mcp` and `/{slug}/health` routes of one server; `new_server` builds the
/// handler for each new MCP session (or each stateless request).
fn server_routes<S>(slug: &str, shutdown: &CancellationToken, new_server: fn() -> S) -> Router
where
    S: ServerHandler + Send + 'static,
{
    let mcp = StreamableHttpService::new(
        move || Ok(new_server()),
        Arc::new(LocalSessionManager::default()),
        mcp_config(shutdown),
    );
    Router::new().route_service(&format!("/{slug}/mcp"), mcp).route(&format!("/{slug}/health"), get(health))
}

/// Streamable HTTP settings shared by every example server.
///
/// The `Host` allow-list (rmcp's DNS-rebinding guard, loopback names only by default) is
/// disabled: these servers are reached through the gateway, which rewrites `Host` to the
/// upstream's authority, i.e. whatever name the operator serves Tollgate under. The
/// examples hold no secrets and no state beyond in-memory sessions.
fn mcp_config(shutdown: &CancellationToken) -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default().disable_allowed_hosts().with_cancellation_token(shutdown.child_token())
}

/// `GET /{slug}/health`.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
