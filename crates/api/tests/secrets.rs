//! Secrets at rest: what the database holds never includes a password, a session, a token,
//! a key or an upstream credential in the clear.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::json;
use tollgate_domain::secret::sha256_hex;

#[tokio::test]
async fn no_secret_is_stored_in_the_clear() {
    let app = TestApp::new().await;
    let user = app.user("sec@example.com").await;
    let me = user.caller();
    app.post(
        "/api/v1/agents",
        json!({"slug": "vault", "name": "Vault", "description": "d", "category": "security", "protocol": "mcp",
               "platforms": [], "capabilities": [], "tags": [], "use_cases": [], "governance": {}, "support": {}}),
        &me,
    )
    .await;
    let upstream_secret = "upstream-credential-7f3a9c";
    let v = app
        .post(
            "/api/v1/agents/vault/versions",
            json!({"version": "1.0.0", "upstream_url": "http://127.0.0.1:9/mcp",
                   "upstream_headers": {"Authorization": format!("Bearer {upstream_secret}")},
                   "base_fee": "0", "functions": [], "dependencies": [], "task_timeout_seconds": 300, "cold_start": false}),
            &me,
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{:?}", v.body);
    let inst = app.install(&me, "vault").await;
    let (_, key) = app.key(&me, &inst).await;
    let invite_team =
        app.post("/api/v1/orgs", json!({"name": "T"}), &me).await.body["id"].as_str().unwrap().to_string();
    let invitation = app
        .post(
            &format!("/api/v1/orgs/{invite_team}/invitations"),
            json!({"email": "x@example.com", "role": "member"}),
            &me,
        )
        .await;
    let invitation_token = invitation.body["token"].as_str().unwrap().to_string();

    let dump = app.store.dump().await.unwrap();
    assert!(dump.contains("sec@example.com"), "the dump reads the database");
    for (what, secret) in [
        ("password", "correct horse 42"),
        ("session cookie", user.session.as_str()),
        ("account token", user.token.as_str()),
        ("API key", key.as_str()),
        ("invitation token", invitation_token.as_str()),
        ("upstream credential", upstream_secret),
    ] {
        assert!(!dump.contains(secret), "the {what} is stored in the clear");
    }
    // What is stored instead: argon2id hashes and SHA-256 digests.
    assert!(dump.contains("$argon2id$"));
    for secret in [&user.session, &user.token, &key, &invitation_token] {
        assert!(dump.contains(&sha256_hex(secret.as_bytes())));
    }
    // The sealed credential opens with the configured key, and only with it.
    let agent = app.store.agent_by_slug("vault").await.unwrap();
    let sealed = app.store.agent_version(&agent.id, "1.0.0").await.unwrap().upstream_headers_sealed.unwrap();
    let opened = String::from_utf8(app.state.sealer.open(&sealed).unwrap()).unwrap();
    assert!(opened.contains(upstream_secret));
}
