//! The OpenAPI document is generated from the code; the committed copy must match it.
//! Regenerate with `TOLLGATE_UPDATE_OPENAPI=1 cargo test -p tollgate-api --test openapi`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{Caller, TestApp};

#[tokio::test]
async fn committed_openapi_document_matches_the_code() {
    let generated = tollgate_api::openapi_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var("TOLLGATE_UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "docs/openapi.json is stale: run TOLLGATE_UPDATE_OPENAPI=1 cargo test -p tollgate-api --test openapi"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for path in [
        "/api/v1/auth/signup",
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/agents",
        "/api/v1/agents/{slug}/versions",
        "/api/v1/store/agents",
        "/api/v1/store/agents/{slug}",
        "/api/v1/agents/{slug}/reviews",
        "/api/v1/installations",
        "/api/v1/installations/{id}/keys",
        "/api/v1/keys/{id}",
        "/api/v1/billing/balance",
        "/api/v1/billing/transactions",
        "/api/v1/billing/budget",
        "/api/v1/billing/auto-recharge",
        "/api/v1/orgs/{org}/rate-limits",
        "/api/v1/billing/checkout",
        "/api/v1/billing/payments/{id}",
        "/api/v1/billing/webhooks/{provider}",
        "/api/v1/usage",
        "/api/v1/usage/audit",
        "/api/v1/usage/audit/{id}",
        "/api/v1/usage/audit.csv",
        "/api/v1/publisher/usage",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is missing from the OpenAPI document");
    }
    let app = TestApp::new().await;
    let served = app.get("/api/v1/openapi.json", &Caller::default()).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body, doc);
}

#[tokio::test]
async fn unknown_endpoints_answer_with_the_envelope() {
    let app = TestApp::new().await;
    let r = app.get("/api/v1/no/such/thing", &Caller::default()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "not_found");
    assert_eq!(app.get("/healthz", &Caller::default()).await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", &Caller::default()).await.body["status"], "ready");
    let metrics = app.get("/metrics", &Caller::default()).await;
    assert!(metrics.body.as_str().unwrap().contains("tollgate_database_up 1"));
}
