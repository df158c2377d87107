//! Liveness, readiness and Prometheus metrics.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "database not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "database unreachable"})))
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let ready = i32::from(state.store.ping().await.is_ok());
    let body = format!(
        "# HELP tollgate_up Whether this instance is serving.\n# TYPE tollgate_up gauge\ntollgate_up 1\n\
         # HELP tollgate_database_up Whether the database answers.\n# TYPE tollgate_database_up gauge\ntollgate_database_up {ready}\n\
         # HELP tollgate_build_info Build information.\n# TYPE tollgate_build_info gauge\ntollgate_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
