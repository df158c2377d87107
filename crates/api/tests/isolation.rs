//! Tenant isolation: a second org tries every endpoint against the first org's resources.
//! Every attempt is refused (404 or 403) and nothing changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Caller, TestApp, TestUser};
use serde_json::{Value, json};
use tollgate_domain::Nanos;
use tollgate_store::calls::{Charge, SettledCall, UsageRecord};
use tollgate_store::ledger::{AccountKind, PLATFORM};

/// The request id of A's one recorded call.
const A_CALL: &str = "req_isolation_a";

/// Records one charged call on A's installation, through the gateway's write path.
async fn record_call(app: &TestApp, a: &TestUser, inst: &str, key_id: &str) {
    let agent = app.store.agent_by_slug("a-tool").await.unwrap();
    let record = UsageRecord {
        id: A_CALL.into(),
        created_at: tollgate_domain::time::now_ms() - 60_000,
        org_id: a.org_id.clone(),
        user_id: a.id.clone(),
        key_id: key_id.into(),
        installation_id: inst.into(),
        agent_id: agent.id,
        version: "1.0.0".into(),
        function_name: "echo".into(),
        method: "tools/call".into(),
        latency_ms: 12,
        http_status: 200,
        cost: Nanos(1_000_000),
        fee: Nanos(200_000),
        ..UsageRecord::default()
    };
    let charge = Charge {
        org_account: app.store.ledger_account(AccountKind::OrgCredit, &a.org_id).await.unwrap().id,
        lease: None,
        publisher_account: app.store.ledger_account(AccountKind::PublisherEarnings, &a.org_id).await.unwrap().id,
        platform_account: app.store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await.unwrap().id,
    };
    app.store.settle_calls(&[SettledCall { record, charge: Some(charge) }]).await.unwrap();
}

/// Everything A can see of A's own data, to compare before and after B's attempts.
async fn snapshot(app: &TestApp, a: &TestUser, team: &str, inst: &str) -> Vec<Value> {
    let me = a.caller();
    let mut out = Vec::new();
    // A fixed range (yesterday and today, UTC) so that two snapshots compare equal.
    let day = |ms: i64| tollgate_domain::time::rfc3339(ms)[..10].to_string();
    let now = tollgate_domain::time::now_ms();
    let range = format!("from={}&to={}", day(now - 86_400_000), day(now));
    for path in [
        "/api/v1/me".to_string(),
        "/api/v1/tokens".into(),
        "/api/v1/orgs".into(),
        format!("/api/v1/orgs/{team}/members"),
        format!("/api/v1/orgs/{team}/invitations"),
        "/api/v1/agents".into(),
        "/api/v1/agents/a-tool".into(),
        "/api/v1/agents/a-tool/reviews".into(),
        "/api/v1/installations?all=true".into(),
        format!("/api/v1/installations/{inst}/keys"),
        "/api/v1/billing/balance".into(),
        "/api/v1/billing/transactions".into(),
        "/api/v1/notifications".into(),
        format!("/api/v1/usage?{range}"),
        format!("/api/v1/usage?{range}&installation={inst}"),
        format!("/api/v1/usage/audit?{range}"),
        format!("/api/v1/usage/audit/{A_CALL}"),
        format!("/api/v1/usage/audit.csv?{range}"),
        format!("/api/v1/publisher/usage?{range}"),
        format!("/api/v1/publisher/usage?{range}&agent=a-tool"),
    ] {
        let r = app.get(&path, &me).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        out.push(json!({"path": path, "body": r.body}));
    }
    let team_balance = app.get("/api/v1/billing/balance", &a.in_org(team)).await;
    out.push(team_balance.body);
    out
}

#[tokio::test]
async fn another_org_can_neither_read_nor_change_anything() {
    let app = TestApp::new().await;
    let a = app.user("a@example.com").await;
    let b = app.user("b@example.com").await;
    let reviewer = app.user("r@example.com").await;

    // A's world: a team, an invitation, a published agent, an installation with a key, a token, a review.
    let team =
        app.post("/api/v1/orgs", json!({"name": "A team"}), &a.caller()).await.body["id"].as_str().unwrap().to_string();
    let invitation = app
        .post(
            &format!("/api/v1/orgs/{team}/invitations"),
            json!({"email": "c@example.com", "role": "member"}),
            &a.caller(),
        )
        .await;
    let invitation_id = invitation.body["invitation"]["id"].as_str().unwrap().to_string();
    let invitation_token = invitation.body["token"].as_str().unwrap().to_string();
    app.publish(&a.caller(), "a-tool").await;
    let inst = app.install(&a.caller(), "a-tool").await;
    let (key_id, _) = app.key(&a.caller(), &inst).await;
    record_call(&app, &a, &inst, &key_id).await;
    let a_token = app.get("/api/v1/tokens", &a.caller()).await.body[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.post("/api/v1/agents/a-tool/reviews", json!({"rating": 4, "body": "good"}), &reviewer.caller())
            .await
            .status,
        StatusCode::CREATED
    );
    let before = snapshot(&app, &a, &team, &inst).await;

    let b_plain = b.caller();
    let b_in_a_personal = b.in_org(&a.org_id);
    let b_in_a_team = b.in_org(&team);
    let version = json!({"version": "2.0.0", "upstream_url": "http://127.0.0.1:9/evil", "upstream_headers": {}, "base_fee": "0",
        "functions": [], "dependencies": [], "task_timeout_seconds": 300, "cold_start": false});
    let attempts: Vec<(Method, String, Option<Value>, &Caller)> = vec![
        (Method::GET, format!("/api/v1/orgs/{team}"), None, &b_plain),
        (Method::PATCH, format!("/api/v1/orgs/{team}"), Some(json!({"name": "mine"})), &b_plain),
        (Method::GET, format!("/api/v1/orgs/{team}/members"), None, &b_plain),
        (Method::PATCH, format!("/api/v1/orgs/{team}/members/{}", a.id), Some(json!({"role": "viewer"})), &b_plain),
        (Method::DELETE, format!("/api/v1/orgs/{team}/members/{}", a.id), None, &b_plain),
        (Method::GET, format!("/api/v1/orgs/{team}/invitations"), None, &b_plain),
        (
            Method::POST,
            format!("/api/v1/orgs/{team}/invitations"),
            Some(json!({"email": "b2@example.com", "role": "owner"})),
            &b_plain,
        ),
        (Method::DELETE, format!("/api/v1/orgs/{team}/invitations/{invitation_id}"), None, &b_plain),
        (Method::POST, format!("/api/v1/invitations/{invitation_token}/accept"), Some(json!({})), &b_plain),
        (Method::POST, format!("/api/v1/invitations/{invitation_id}/accept"), Some(json!({})), &b_plain),
        (Method::GET, format!("/api/v1/orgs/{}", a.org_id), None, &b_plain),
        (Method::DELETE, format!("/api/v1/tokens/{a_token}"), None, &b_plain),
        (Method::PATCH, "/api/v1/agents/a-tool".into(), Some(json!({"name": "Hijacked"})), &b_plain),
        (Method::POST, "/api/v1/agents/a-tool/versions".into(), Some(version), &b_plain),
        (Method::PATCH, "/api/v1/agents/a-tool/versions/1.0.0".into(), Some(json!({"status": "retired"})), &b_plain),
        (Method::PUT, "/api/v1/agents/a-tool/reviews".into(), Some(json!({"rating": 1, "body": "bad"})), &b_plain),
        (Method::DELETE, "/api/v1/agents/a-tool/reviews".into(), None, &b_plain),
        (Method::GET, format!("/api/v1/installations/{inst}"), None, &b_plain),
        (Method::PATCH, format!("/api/v1/installations/{inst}"), Some(json!({"task_timeout_seconds": 120})), &b_plain),
        (Method::DELETE, format!("/api/v1/installations/{inst}"), None, &b_plain),
        (Method::GET, format!("/api/v1/installations/{inst}/keys"), None, &b_plain),
        (Method::POST, format!("/api/v1/installations/{inst}/keys"), Some(json!({"name": "stolen"})), &b_plain),
        (Method::PATCH, format!("/api/v1/keys/{key_id}"), Some(json!({"name": "stolen"})), &b_plain),
        (Method::DELETE, format!("/api/v1/keys/{key_id}"), None, &b_plain),
        (Method::POST, format!("/api/v1/admin/orgs/{}/grants", b.org_id), Some(json!({"amount": "1000"})), &b_plain),
        (Method::GET, "/api/v1/billing/balance".into(), None, &b_in_a_personal),
        (Method::GET, "/api/v1/billing/transactions".into(), None, &b_in_a_personal),
        (Method::PUT, "/api/v1/billing/budget".into(), Some(json!({"monthly_limit": "1"})), &b_in_a_personal),
        (
            Method::PUT,
            "/api/v1/billing/auto-recharge".into(),
            Some(json!({"enabled": true, "threshold": "1", "amount": "5"})),
            &b_in_a_personal,
        ),
        (Method::GET, "/api/v1/installations".into(), None, &b_in_a_personal),
        (Method::POST, "/api/v1/installations".into(), Some(json!({"agent": "a-tool"})), &b_in_a_team),
        (Method::GET, "/api/v1/agents".into(), None, &b_in_a_personal),
        (
            Method::POST,
            "/api/v1/agents".into(),
            Some(json!({"slug": "b-in-a", "name": "x", "description": "x", "category": "x",
            "protocol": "mcp", "platforms": [], "capabilities": [], "tags": [], "use_cases": [], "governance": {}, "support": {}})),
            &b_in_a_team,
        ),
        (Method::GET, "/api/v1/billing/balance".into(), None, &b_in_a_team),
        (Method::GET, format!("/api/v1/usage?installation={inst}"), None, &b_plain),
        (Method::GET, format!("/api/v1/usage/audit?installation={inst}"), None, &b_plain),
        (Method::GET, format!("/api/v1/usage/audit.csv?installation={inst}"), None, &b_plain),
        (Method::GET, format!("/api/v1/usage/audit/{A_CALL}"), None, &b_plain),
        (Method::GET, "/api/v1/usage".into(), None, &b_in_a_personal),
        (Method::GET, "/api/v1/usage/audit".into(), None, &b_in_a_personal),
        (Method::GET, "/api/v1/usage/audit.csv".into(), None, &b_in_a_personal),
        (Method::GET, format!("/api/v1/usage/audit/{A_CALL}"), None, &b_in_a_personal),
        (Method::GET, format!("/api/v1/usage/audit/{A_CALL}"), None, &b_in_a_team),
        (Method::GET, "/api/v1/publisher/usage?agent=a-tool".into(), None, &b_plain),
        (Method::GET, "/api/v1/publisher/usage".into(), None, &b_in_a_personal),
        (Method::GET, "/api/v1/publisher/usage?agent=a-tool".into(), None, &b_in_a_team),
    ];
    for (method, path, body, who) in &attempts {
        let r = app.call(method.clone(), path, body.clone(), who).await;
        assert!(
            r.status == StatusCode::NOT_FOUND || r.status == StatusCode::FORBIDDEN,
            "{method} {path} as B answered {}: {:?}",
            r.status,
            r.body
        );
        assert!(r.body["error"]["code"].is_string(), "{method} {path}: the error envelope");
    }
    // B's own lists show nothing of A's.
    for path in [
        "/api/v1/orgs",
        "/api/v1/installations?all=true",
        "/api/v1/agents",
        "/api/v1/tokens",
        "/api/v1/notifications",
        "/api/v1/usage",
        "/api/v1/usage/audit",
        "/api/v1/usage/audit.csv",
        "/api/v1/publisher/usage",
    ] {
        let body = app.get(path, &b_plain).await.body.to_string();
        for secret in [&team, &inst, &key_id, &a_token, &a.org_id, &"a-tool".to_string(), &A_CALL.to_string()] {
            assert!(!body.contains(secret.as_str()), "{path} shows B something of A's ({secret})");
        }
    }
    assert_eq!(snapshot(&app, &a, &team, &inst).await, before, "B's attempts changed A's data");
    assert!(app.store.key(&key_id).await.unwrap().revoked_at.is_none());
}
