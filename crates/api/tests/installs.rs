//! Installations and keys: install, keys shown once and stored hashed, limits, revocation,
//! uninstall revoking every key, reinstall with a new pseudonymous token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use serde_json::json;
use tollgate_domain::secret::sha256_hex;

#[tokio::test]
async fn install_keys_limits_uninstall_and_reinstall() {
    let app = TestApp::new().await;
    let publisher = app.user("pub@example.com").await;
    let user = app.user("use@example.com").await;
    app.publish(&publisher.caller(), "search-tool").await;
    let me = user.caller();

    assert_eq!(
        app.post("/api/v1/installations", json!({"agent": "no-such-agent"}), &me).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post("/api/v1/installations", json!({"agent": "search-tool", "version": "9.9.9"}), &me).await.status,
        StatusCode::NOT_FOUND
    );
    let inst = app.install(&me, "search-tool").await;
    let twice = app.post("/api/v1/installations", json!({"agent": "search-tool"}), &me).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.body["error"]["code"], "already_installed");

    // Bad keys write nothing.
    for body in [
        json!({"name": ""}),
        json!({"name": "k", "daily_limits": {"requests": -1}}),
        json!({"name": "k", "daily_limits": {"tokens": 5}}),
    ] {
        let r = app.post(&format!("/api/v1/installations/{inst}/keys"), body.clone(), &me).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert_eq!(app.get(&format!("/api/v1/installations/{inst}/keys"), &me).await.body.as_array().unwrap().len(), 0);

    let created = app
        .post(
            &format!("/api/v1/installations/{inst}/keys"),
            json!({"name": "prod", "daily_limits": {"requests": 100, "output_tokens": 5000}}),
            &me,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let secret = created.body["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("tgk_search-tool_"), "the prefix identifies the agent: {secret}");
    assert!(secret.starts_with(created.body["prefix"].as_str().unwrap()));
    assert_eq!(
        created.body["daily_limits"],
        json!({"requests": 100, "input_tokens": 0, "output_tokens": 5000, "cache_tokens": 0})
    );
    let key_id = created.body["id"].as_str().unwrap().to_string();

    // Shown once: listing never returns it; the store keeps only its SHA-256.
    let listed = app.get(&format!("/api/v1/installations/{inst}/keys"), &me).await;
    assert!(!listed.body.to_string().contains(&secret));
    let found = app.store.gateway_key(&sha256_hex(secret.as_bytes())).await.unwrap().unwrap();
    assert_eq!(found.key.id, key_id);
    assert_eq!(found.agent_slug, "search-tool");
    assert_eq!(found.installation_status, "active");
    assert!(app.store.gateway_key(&sha256_hex(b"tgk_search-tool_guess")).await.unwrap().is_none());

    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/v1/keys/{key_id}"),
            Some(json!({"daily_limits": {"requests": 0, "cache_tokens": 7}})),
            &me,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["daily_limits"]["cache_tokens"], 7);
    assert_eq!(patched.body["daily_limits"]["requests"], 0);
    let bad_patch = app
        .call(Method::PATCH, &format!("/api/v1/keys/{key_id}"), Some(json!({"daily_limits": {"requests": -5}})), &me)
        .await;
    assert_eq!(bad_patch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.store.key(&key_id).await.unwrap().limits.cache_tokens, 7);

    let (second_id, _) = app.key(&me, &inst).await;
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/keys/{second_id}"), None, &me).await.status,
        StatusCode::NO_CONTENT
    );
    let listed = app.get(&format!("/api/v1/installations/{inst}/keys"), &me).await;
    let statuses: Vec<&str> = listed.body.as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "revoked").count(), 1);

    // Uninstall revokes every key at once; a reinstall is a new pseudonymous installation.
    let first_token = app.store.installation(&inst).await.unwrap().install_token;
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/installations/{inst}"), None, &me).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(app.store.installation_keys(&inst).await.unwrap().iter().all(|k| k.revoked_at.is_some()));
    assert_eq!(
        app.store.gateway_key(&sha256_hex(secret.as_bytes())).await.unwrap().unwrap().installation_status,
        "uninstalled"
    );
    assert_eq!(
        app.post(&format!("/api/v1/installations/{inst}/keys"), json!({"name": "late"}), &me).await.status,
        StatusCode::NOT_FOUND
    );
    let again = app.install(&me, "search-tool").await;
    assert_ne!(again, inst);
    assert_ne!(app.store.installation(&again).await.unwrap().install_token, first_token);
    assert_eq!(app.get(&format!("/api/v1/installations/{again}/keys"), &me).await.body.as_array().unwrap().len(), 0);
    let all = app.get("/api/v1/installations?all=true", &me).await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    assert_eq!(app.get("/api/v1/installations", &me).await.body.as_array().unwrap().len(), 1);

    // A retired version cannot be installed.
    let retire = app
        .call(
            Method::PATCH,
            "/api/v1/agents/search-tool/versions/1.0.0",
            Some(json!({"status": "retired"})),
            &publisher.caller(),
        )
        .await;
    assert_eq!(retire.status, StatusCode::OK, "{:?}", retire.body);
    let other = app.user("late@example.com").await;
    let refused =
        app.post("/api/v1/installations", json!({"agent": "search-tool", "version": "1.0.0"}), &other.caller()).await;
    assert_eq!(refused.status, StatusCode::GONE);
    assert_eq!(refused.body["error"]["code"], "version_retired");
}

#[tokio::test]
async fn budgets_auto_recharge_and_operator_grants() {
    let app = TestApp::new().await;
    let user = app.user("bill@example.com").await;
    let me = user.caller();
    for bad in [json!({"monthly_limit": "-5"}), json!({"monthly_limit": "lots"}), json!({"monthly_limit": 5})] {
        assert_eq!(
            app.call(Method::PUT, "/api/v1/billing/budget", Some(bad.clone()), &me).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
    let set = app.call(Method::PUT, "/api/v1/billing/budget", Some(json!({"monthly_limit": "50"})), &me).await;
    assert_eq!(set.body["monthly_budget"], "50.000000");
    let cleared = app.call(Method::PUT, "/api/v1/billing/budget", Some(json!({"monthly_limit": null})), &me).await;
    assert!(cleared.body["monthly_budget"].is_null());
    let small = app
        .call(
            Method::PUT,
            "/api/v1/billing/auto-recharge",
            Some(json!({"enabled": true, "threshold": "5", "amount": "1"})),
            &me,
        )
        .await;
    assert_eq!(small.status, StatusCode::UNPROCESSABLE_ENTITY);
    let recharge = app
        .call(
            Method::PUT,
            "/api/v1/billing/auto-recharge",
            Some(json!({"enabled": true, "threshold": "5", "amount": "20"})),
            &me,
        )
        .await;
    assert_eq!(recharge.body["auto_recharge"]["amount"], "20.000000");

    // Only operators grant; a retried grant with the same key adds credits once.
    let grant = json!({"amount": "12.5", "memo": "conference", "idempotency_key": "conf-2026"});
    let path = format!("/api/v1/admin/orgs/{}/grants", user.org_id);
    assert_eq!(app.post(&path, grant.clone(), &me).await.status, StatusCode::FORBIDDEN);
    let op = app.user("op@example.com").await;
    app.store.set_operator(&op.id, true).await.unwrap();
    let first = app.post(&path, grant.clone(), &op.caller()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let retry = app.post(&path, grant.clone(), &op.caller()).await;
    assert_eq!(retry.body["id"], first.body["id"]);
    assert_eq!(app.get("/api/v1/billing/balance", &me).await.body["balance"], "112.500000");
    for bad in [json!({"amount": "0"}), json!({"amount": "-1"}), json!({"amount": "1.0000000001"})] {
        assert_eq!(app.post(&path, bad.clone(), &op.caller()).await.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    assert_eq!(
        app.post("/api/v1/admin/orgs/org_nope/grants", json!({"amount": "1"}), &op.caller()).await.status,
        StatusCode::NOT_FOUND
    );
    let (sum, consistent) = app.store.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_while_uninstalling_never_outlives_the_installation() {
    let app = TestApp::new().await;
    let publisher = app.user("pub@example.com").await;
    let user = app.user("use@example.com").await;
    app.publish(&publisher.caller(), "search-tool").await;
    let me = user.caller();
    for round in 0..8 {
        let inst = app.install(&me, "search-tool").await;
        let keys = format!("/api/v1/installations/{inst}/keys");
        let gone = format!("/api/v1/installations/{inst}");
        let (made, uninstalled) =
            tokio::join!(app.post(&keys, json!({"name": "racing"}), &me), app.call(Method::DELETE, &gone, None, &me));
        assert_eq!(uninstalled.status, StatusCode::NO_CONTENT, "round {round}");
        assert!(matches!(made.status, StatusCode::CREATED | StatusCode::NOT_FOUND), "round {round}: {made:?}");
        let active = app.store.installation_keys(&inst).await.unwrap().into_iter().filter(|k| k.revoked_at.is_none());
        assert_eq!(active.count(), 0, "round {round}: an active key on an uninstalled installation");
    }
}
