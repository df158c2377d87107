//! The publisher's usage and earnings (`GET /api/v1/publisher/usage`), over calls written
//! through the gateway's own write path: earnings are what the publisher's account was
//! credited, consumers appear only by install token, and no other org sees any of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{Caller, TestApp, TestUser};
use serde_json::{Value, json};
use tollgate_domain::Nanos;
use tollgate_domain::time::parse_instant;
use tollgate_store::calls::{Charge, SettledCall, UsageRecord};
use tollgate_store::ledger::{AccountKind, PLATFORM};

const HOUR: i64 = 3_600_000;
const RANGE: &str = "from=2026-03-02&to=2026-03-02";

fn d0() -> i64 {
    parse_instant("2026-03-02").unwrap()
}

/// Records one call on `inst` (of `consumer`) to `slug`: charged `cost` (fee `fee`) to the
/// publisher `publisher_org` when it succeeded and cost something.
#[allow(clippy::too_many_arguments)]
async fn record(
    app: &TestApp,
    id: &str,
    at: i64,
    consumer: &TestUser,
    inst: &str,
    slug: &str,
    version: &str,
    status: i64,
    cost: i64,
    fee: i64,
    publisher_org: &str,
) {
    let agent = app.store.agent_by_slug(slug).await.unwrap();
    let ok = status < 400;
    let record = UsageRecord {
        id: id.into(),
        created_at: at,
        org_id: consumer.org_id.clone(),
        user_id: consumer.id.clone(),
        key_id: format!("key_of_{}", consumer.id),
        installation_id: inst.into(),
        agent_id: agent.id,
        version: version.into(),
        function_name: "echo".into(),
        method: "tools/call".into(),
        latency_ms: 40,
        http_status: status,
        error_code: (!ok).then(|| "upstream_error".to_string()),
        cost: Nanos(if ok { cost } else { 0 }),
        fee: Nanos(if ok { fee } else { 0 }),
        ..UsageRecord::default()
    };
    let charge = if ok && cost > 0 {
        Some(Charge {
            org_account: app.store.ledger_account(AccountKind::OrgCredit, &consumer.org_id).await.unwrap().id,
            lease: None,
            publisher_account: app
                .store
                .ledger_account(AccountKind::PublisherEarnings, publisher_org)
                .await
                .unwrap()
                .id,
            platform_account: app.store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await.unwrap().id,
        })
    } else {
        None
    };
    app.store.settle_calls(&[SettledCall { record, charge }]).await.unwrap();
}

struct World {
    app: TestApp,
    publisher: TestUser,
    c1: TestUser,
    c2: TestUser,
    c1_a: String,
    c2_a: String,
    c1_b: String,
}

/// A publisher with two agents; c1 installs both, c2 only `tool-a`; calls on 2026-03-02.
async fn world() -> World {
    let app = TestApp::new().await;
    let publisher = app.user("pub@example.com").await;
    app.publish(&publisher.caller(), "tool-a").await;
    app.publish(&publisher.caller(), "tool-b").await;
    app.publish(&publisher.caller(), "tool-idle").await;
    let c1 = app.user("c1@example.com").await;
    let c2 = app.user("c2@example.com").await;
    let c1_a = app.install(&c1.caller(), "tool-a").await;
    let c2_a = app.install(&c2.caller(), "tool-a").await;
    let c1_b = app.install(&c1.caller(), "tool-b").await;
    let p = publisher.org_id.clone();
    let t = d0();
    record(&app, "req_1", t + HOUR, &c1, &c1_a, "tool-a", "1.0.0", 200, 1_000_000, 200_000, &p).await;
    record(&app, "req_2", t + 2 * HOUR, &c1, &c1_a, "tool-a", "1.0.0", 200, 3_000_000, 600_000, &p).await;
    record(&app, "req_3", t + 2 * HOUR, &c2, &c2_a, "tool-a", "1.0.0", 502, 0, 0, &p).await;
    record(&app, "req_4", t + 5 * HOUR, &c2, &c2_a, "tool-a", "1.0.0", 200, 0, 0, &p).await; // a free call
    record(&app, "req_5", t + 5 * HOUR, &c1, &c1_b, "tool-b", "1.0.0", 200, 10_000_000, 2_000_000, &p).await;
    record(&app, "req_out", t - HOUR, &c1, &c1_b, "tool-b", "1.0.0", 200, 7_000_000, 1_000_000, &p).await;
    World { app, publisher, c1, c2, c1_a, c2_a, c1_b }
}

fn agent<'a>(body: &'a Value, slug: &str) -> &'a Value {
    body["agents"].as_array().unwrap().iter().find(|a| a["slug"] == slug).unwrap()
}

#[tokio::test]
async fn earnings_are_what_the_publishers_account_was_credited() {
    let w = world().await;
    let r = w.app.get(&format!("/api/v1/publisher/usage?{RANGE}&bucket=hour"), &w.publisher.caller()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let b = &r.body;
    // In range: req_1..req_5. Earned: (1 - 0.2) + (3 - 0.6) + (10 - 2) thousandths of a dollar.
    assert_eq!((b["calls"].as_i64(), b["errors"].as_i64()), (Some(5), Some(1)));
    assert_eq!(b["earnings"], "0.011200");
    assert_eq!(b["error_rate"], 0.2);
    assert_eq!(b["average_latency_ms"], 40.0);

    // Over all time the report equals the earnings account's balance.
    let all = w.app.get("/api/v1/publisher/usage?from=2026-03-01&to=2026-03-03", &w.publisher.caller()).await;
    let account = w.app.store.ledger_account(AccountKind::PublisherEarnings, &w.publisher.org_id).await.unwrap();
    assert_eq!(all.body["earnings"].as_str().unwrap(), account.balance.to_usd_string());
    assert_eq!(all.body["earnings"], "0.017200");

    let a = agent(b, "tool-a");
    assert_eq!(
        (a["calls"].as_i64(), a["errors"].as_i64(), a["earnings"].as_str()),
        (Some(4), Some(1), Some("0.003200"))
    );
    assert_eq!(a["installs"], 2);
    assert_eq!(
        a["versions"],
        json!([{"version": "1.0.0", "calls": 4, "errors": 1, "error_rate": 0.25,
        "average_latency_ms": 40.0, "earnings": "0.003200"}])
    );
    let tokens: Vec<&str> =
        a["installations"].as_array().unwrap().iter().map(|i| i["install_token"].as_str().unwrap()).collect();
    let expected = [install_token(&w.app, &w.c1_a).await, install_token(&w.app, &w.c2_a).await];
    assert_eq!(tokens, expected, "highest earnings first");
    let b_agent = agent(b, "tool-b");
    assert_eq!((b_agent["calls"].as_i64(), b_agent["earnings"].as_str()), (Some(1), Some("0.008000")));
    assert_eq!(b["agents"][0]["slug"], "tool-b", "highest earnings first");
    let idle = agent(b, "tool-idle");
    assert_eq!(
        (idle["calls"].as_i64(), idle["earnings"].as_str(), idle["installs"].as_i64()),
        (Some(0), Some("0.000000"), Some(0))
    );
    assert_eq!(idle["average_latency_ms"], Value::Null);

    let series = b["series"].as_array().unwrap();
    assert_eq!(series.len(), 24);
    assert_eq!(
        (series[2]["calls"].as_i64(), series[2]["errors"].as_i64(), series[2]["earnings"].as_str()),
        (Some(2), Some(1), Some("0.002400"))
    );
    assert_eq!(series[5]["earnings"], "0.008000");
    assert_eq!(series[0]["calls"], 0);

    let only = w.app.get(&format!("/api/v1/publisher/usage?{RANGE}&agent=tool-b"), &w.publisher.caller()).await;
    assert_eq!(only.status, StatusCode::OK);
    assert_eq!(only.body["agents"].as_array().unwrap().len(), 1);
    assert_eq!(only.body["earnings"], "0.008000");
}

/// The install token of installation `id`.
async fn install_token(app: &TestApp, id: &str) -> String {
    app.store.installation(id).await.unwrap().install_token
}

#[tokio::test]
async fn consumers_stay_anonymous_and_other_orgs_see_nothing() {
    let w = world().await;
    let r = w.app.get(&format!("/api/v1/publisher/usage?{RANGE}"), &w.publisher.caller()).await;
    let text = r.body.to_string();
    for hidden in [
        &w.c1.org_id,
        &w.c2.org_id,
        &w.c1.id,
        &w.c2.id,
        &w.c1.email,
        &w.c2.email,
        &w.c1_a,
        &w.c2_a,
        &w.c1_b,
        &format!("key_of_{}", w.c1.id),
        &"req_1".to_string(),
    ] {
        assert!(!text.contains(hidden.as_str()), "the publisher sees {hidden}: {text}");
    }
    // A consumer is not the publisher: the agent is not theirs, and they publish nothing.
    let c1 = w.c1.caller();
    let theirs = w.app.get("/api/v1/publisher/usage?agent=tool-a", &c1).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let own = w.app.get(&format!("/api/v1/publisher/usage?{RANGE}"), &c1).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!((own.body["calls"].as_i64(), own.body["agents"].as_array().unwrap().len()), (Some(0), 0));
    let in_publisher = w.app.get("/api/v1/publisher/usage", &w.c1.in_org(&w.publisher.org_id)).await;
    assert_eq!(in_publisher.status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.app.get("/api/v1/publisher/usage?agent=nope", &w.publisher.caller()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(w.app.get("/api/v1/publisher/usage", &Caller::default()).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn team_members_of_every_role_read_it_and_tokens_need_usage_read() {
    let w = world().await;
    let owner = w.publisher.caller();
    let team =
        w.app.post("/api/v1/orgs", json!({"name": "Pub team"}), &owner).await.body["id"].as_str().unwrap().to_string();
    let viewer = w.app.user("viewer@example.com").await;
    let inv = w
        .app
        .post(&format!("/api/v1/orgs/{team}/invitations"), json!({"email": viewer.email, "role": "viewer"}), &owner)
        .await;
    let token = inv.body["token"].as_str().unwrap();
    assert_eq!(
        w.app.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &viewer.caller()).await.status,
        StatusCode::OK
    );
    let listed = w
        .app
        .post(
            "/api/v1/agents",
            json!({"slug": "team-tool", "name": "Team tool", "description": "x", "category": "devtools", "protocol": "mcp"}),
            &w.publisher.in_org(&team),
        )
        .await;
    assert_eq!(listed.status, StatusCode::CREATED);
    let r = w.app.get("/api/v1/publisher/usage", &viewer.in_org(&team)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let slugs: Vec<&str> = r.body["agents"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["team-tool"], "only the team's own agents");

    let scoped = w.app.post("/api/v1/tokens", json!({"name": "agents", "scopes": ["agents:read"]}), &owner).await;
    let scoped = Caller { bearer: Some(scoped.body["token"].as_str().unwrap().into()), ..Caller::default() };
    assert_eq!(w.app.get("/api/v1/publisher/usage", &scoped).await.status, StatusCode::FORBIDDEN);
    let bad = w.app.get("/api/v1/publisher/usage?from=2026-03-05&to=2026-03-01", &owner).await;
    assert_eq!((bad.status, bad.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("from")));
    let hourly = w.app.get("/api/v1/publisher/usage?from=2026-01-01&to=2026-03-01&bucket=hour", &owner).await;
    assert_eq!(hourly.status, StatusCode::UNPROCESSABLE_ENTITY);
}
