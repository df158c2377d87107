//! The publisher console: the journey (create an agent, publish a priced version, find it
//! in the store), errors next to their fields, the write-only upstream credential,
//! deprecating and retiring with confirmation, anonymous usage and earnings, roles, and
//! other orgs kept out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Person, World, capture_logs, check_html};
use tollgate_domain::Nanos;
use tollgate_store::calls::{Charge, SettledCall, UsageRecord};
use tollgate_store::ledger::{AccountKind, PLATFORM};

/// The upstream credential the version form sends (in `version()`).
const UPSTREAM_SECRET: &str = "upstream-credential-7f3a";

fn listing<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("slug", "web-search"),
        ("name", "Web Search"),
        ("description", "Searches the web and cites sources."),
        ("category", "research"),
        ("protocol", "mcp"),
        ("platforms", "Cursor, VS Code"),
        ("capabilities", "web search"),
        ("tags", "search, web"),
        ("use_cases", "Find sources\nCheck a claim"),
        ("data_collected", "queries"),
        ("storage_region", "eu-west-1"),
        ("retention_days", "0"),
        ("training_use", "no"),
        ("compliance", "gdpr"),
        ("compliance", "soc2"),
        ("security_measures", "encryption at rest"),
        ("support_email", "help@example.com"),
        ("support_docs_url", "https://docs.example.com"),
    ]
}

fn version<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("rows", "3"),
        ("version", "1.0.0"),
        ("upstream_url", "http://127.0.0.1:9/mcp"),
        ("headers", "Authorization: Bearer upstream-credential-7f3a"),
        ("base_fee", "0.0001"),
        ("f0_name", "search"),
        ("f0_model", "per_request"),
        ("f0_price", "$0.002"),
        ("f0_free", "10"),
        ("f0_reset", "monthly"),
        ("f2_name", "summarize"),
        ("f2_model", "per_token"),
        ("f2_input", "2.00"),
        ("f2_output", "4.00"),
        ("f2_cache", "0.50"),
        ("dp_model", "none"),
        ("timeout", ""),
    ]
}

#[tokio::test]
async fn create_an_agent_publish_a_priced_version_and_find_it_in_the_store() {
    let w = World::new().await;
    let pat = w.person("pat@example.com").await;
    let console = w.get("/publisher", Some(&pat)).await;
    assert_eq!(console.status, StatusCode::OK);
    check_html(&console.html);
    console.assert_contains("No agents yet");
    console.assert_contains("The platform keeps 20% of each charge");
    let form = w.get("/publisher/new", Some(&pat)).await;
    check_html(&form.html);

    let (_guard, logs) = capture_logs();
    let created = w.submit("/publisher/new", &listing(), &pat).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    assert_eq!(created.location(), "/publisher/agents/web-search/versions/new?notice=agent_created");
    let version_form = w.follow(&created, Some(&pat)).await;
    assert_eq!(version_form.status, StatusCode::OK);
    check_html(&version_form.html);
    version_form.assert_contains("Publish a version to list it in the store.");
    assert_eq!(version_form.html.matches("data-testid=\"fn-row\"").count(), 3);

    let published = w.submit("/publisher/agents/web-search/versions/new", &version(), &pat).await;
    assert_eq!(published.status, StatusCode::SEE_OTHER, "{}", published.html);
    assert_eq!(published.location(), "/publisher/agents/web-search?notice=version_published");
    let page = w.follow(&published, Some(&pat)).await;
    check_html(&page.html);
    page.assert_contains("Version 1.0.0");
    page.assert_contains("credential headers set (never shown)");
    page.assert_contains("$0.002 per call");
    page.assert_contains("10 free calls a month");
    page.assert_contains("$2.00 / 1M input · $4.00 / 1M output · $0.50 / 1M cache tokens");
    page.assert_contains("href=\"/agents/web-search\" data-testid=\"store-link\"");
    page.assert_lacks(UPSTREAM_SECRET);
    drop(_guard);
    assert!(!logs.lock().unwrap().join("\n").contains(UPSTREAM_SECRET), "the credential is in a log line");

    // What the API stored is what the form said.
    let (_, agent) = w.api(Method::GET, "/api/v1/agents/web-search", None, &pat).await;
    assert_eq!(agent["platforms"], serde_json::json!(["Cursor", "VS Code"]));
    assert_eq!(agent["use_cases"], serde_json::json!(["Find sources", "Check a claim"]));
    assert_eq!(agent["governance"]["compliance"], serde_json::json!(["gdpr", "soc2"]));
    assert_eq!(agent["governance"]["retention_days"], 0);
    assert_eq!(agent["governance"]["training_use"], false);
    assert_eq!(agent["support"]["email"], "help@example.com");
    let v = &agent["versions"][0];
    assert_eq!(v["functions"].as_array().unwrap().len(), 2, "the blank row was left out");
    assert_eq!(v["functions"][0]["pricing"], serde_json::json!({"model": "per_request", "price": "0.002000"}));
    assert_eq!(
        (v["functions"][0]["free_calls"].as_i64(), v["functions"][0]["free_reset"].as_str()),
        (Some(10), Some("monthly"))
    );
    assert_eq!(v["functions"][1]["pricing"]["model"], "per_token");
    assert_eq!((v["base_fee"].as_str(), v["has_upstream_headers"].as_bool()), (Some("0.000100"), Some(true)));
    assert_eq!(v["task_timeout_seconds"], 300);

    // It is in the store, with its prices, for anyone.
    let store = w.get("/store?q=web", None).await;
    store.assert_contains("Web Search");
    store.assert_contains("<span class=\"badge\">GDPR</span>");
    store.assert_contains("Free tier");
    let integration = w.get("/agents/web-search?tab=integration", None).await;
    integration.assert_contains("$0.002 per call");
    integration.assert_contains("10 free calls a month");
    integration.assert_lacks(UPSTREAM_SECRET);
    let console = w.get("/publisher", Some(&pat)).await;
    console.assert_contains("data-slug=\"web-search\"");
    console.assert_contains("1.0.0 active");
}

#[tokio::test]
async fn errors_sit_next_to_their_fields_and_headers_are_never_shown_again() {
    let w = World::new().await;
    let pat = w.person("pat@example.com").await;
    let with = |changes: &[(&'static str, &'static str)]| {
        let mut fields = listing();
        for (k, v) in changes {
            fields.retain(|(name, _)| name != k);
            fields.push((k, v));
        }
        fields
    };
    for (changes, error) in [
        (vec![("slug", "Bad Slug!")], "error-slug"),
        (vec![("name", "")], "error-name"),
        (vec![("category", "x")], "error-category"),
        (vec![("retention_days", "forever")], "error-retention_days"),
        (vec![("support_email", "not-an-email")], "error-support_email"),
        (vec![("collects_no_data", "on")], "error-collects_no_data"),
        (vec![("storage_region", "eu\u{7}west")], "error-storage_region"),
    ] {
        let page = w.submit("/publisher/new", &with(&changes), &pat).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{changes:?}: {}", page.html);
        assert!(!page.testid_text(error).is_empty(), "{changes:?}");
        page.assert_contains("value=\"Cursor, VS Code\"");
        page.assert_contains("value=\"soc2\" checked");
        check_html(&page.html);
    }
    let (_, agents) = w.api(Method::GET, "/api/v1/agents", None, &pat).await;
    assert_eq!(agents.as_array().unwrap().len(), 0, "nothing was created");
    assert_eq!(w.submit("/publisher/new", &listing(), &pat).await.status, StatusCode::SEE_OTHER);
    let taken = w.submit("/publisher/new", &listing(), &pat).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.testid_text("error-slug").contains("taken"));
    let forged = w.form("/publisher/new", &[("csrf", "x"), ("slug", "forged")], Some(&pat)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // An agent that collects nothing says so, and earns the points of a declaration.
    let nothing = with(&[("slug", "no-data"), ("data_collected", ""), ("collects_no_data", "on")]);
    assert_eq!(w.submit("/publisher/new", &nothing, &pat).await.status, StatusCode::SEE_OTHER);
    let (_, listed) = w.api(Method::GET, "/api/v1/agents/no-data", None, &pat).await;
    assert_eq!(listed["governance"]["collects_no_data"], true, "{listed}");
    let (_, declared) = w.api(Method::GET, "/api/v1/agents/web-search", None, &pat).await;
    assert_eq!(listed["trust_score"], declared["trust_score"], "the same points as a list of kinds");

    let path = "/publisher/agents/web-search/versions/new";
    let with_version = |changes: &[(&'static str, &'static str)]| {
        let mut fields = version();
        for (k, v) in changes {
            fields.retain(|(name, _)| name != k);
            fields.push((k, v));
        }
        fields
    };
    for (changes, error) in [
        (vec![("version", "one")], "error-version"),
        (vec![("upstream_url", "ftp://x")], "error-upstream_url"),
        (vec![("f2_output", "lots")], "error-f2_output"),
        (vec![("f2_output", "")], "error-f2_output"),
        (vec![("f0_free", "many")], "error-f0_free"),
        (vec![("f0_name", "summarize")], "error-f2_name"),
        (vec![("headers", "Host: evil.example")], "error-headers"),
        (vec![("timeout", "5")], "error-timeout"),
        (vec![("dp_model", "per_request"), ("dp_price", "")], "error-dp_price"),
    ] {
        let page = w.submit(path, &with_version(&changes), &pat).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{changes:?}: {}", page.html);
        assert!(!page.testid_text(error).is_empty(), "{changes:?}: {error}");
        page.assert_contains("value=\"$0.002\"");
        page.assert_lacks(UPSTREAM_SECRET);
        page.assert_contains("data-testid=\"headers-cleared\"");
        check_html(&page.html);
    }
    let (_, agent) = w.api(Method::GET, "/api/v1/agents/web-search", None, &pat).await;
    assert_eq!(agent["versions"].as_array().unwrap().len(), 0, "nothing was published");

    // Without JavaScript, "Add another function" shows the form again with a fourth row.
    let more = w.submit(path, &with_version(&[("action", "add_row")]), &pat).await;
    assert_eq!(more.status, StatusCode::OK);
    assert_eq!(more.html.matches("data-testid=\"fn-row\"").count(), 4);
    more.assert_contains("name=\"f3_name\"");
    more.assert_contains("name=\"rows\" value=\"4\"");
    more.assert_contains("value=\"summarize\"");
    check_html(&more.html);
    let (_, agent) = w.api(Method::GET, "/api/v1/agents/web-search", None, &pat).await;
    assert_eq!(agent["versions"].as_array().unwrap().len(), 0);

    assert_eq!(w.submit(path, &version(), &pat).await.status, StatusCode::SEE_OTHER);
    let again = w.submit(path, &version(), &pat).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.testid_text("error-version").contains("already published"));
}

async fn version_status(w: &World, pat: &Person) -> String {
    let (_, a) = w.api(Method::GET, "/api/v1/agents/echo-agent", None, pat).await;
    a["versions"][0]["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn versions_are_deprecated_reactivated_and_retired_with_confirmation() {
    let w = World::new().await;
    let pat = w.person("pat@example.com").await;
    w.publish(&pat, "echo-agent").await;
    let page = w.get("/publisher/agents/echo-agent", Some(&pat)).await;
    check_html(&page.html);
    page.assert_contains("data-testid=\"status-deprecated\"");
    page.assert_contains("data-testid=\"retire-form\"");

    let path = "/publisher/agents/echo-agent/versions/1.0.0/status";
    let forged = w.form(path, &[("csrf", "x"), ("status", "deprecated")], Some(&pat)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let done = w.submit(path, &[("status", "deprecated")], &pat).await;
    assert_eq!(done.location(), "/publisher/agents/echo-agent?notice=status_saved");
    assert_eq!(version_status(&w, &pat).await, "deprecated");
    w.get("/publisher/agents/echo-agent", Some(&pat)).await.assert_contains("data-testid=\"status-active\"");
    assert_eq!(w.submit(path, &[("status", "active")], &pat).await.status, StatusCode::SEE_OTHER);
    assert_eq!(version_status(&w, &pat).await, "active");

    let unconfirmed = w.submit(path, &[("status", "retired")], &pat).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.testid_text("status-error").contains("Tick the box"));
    check_html(&unconfirmed.html);
    assert_eq!(version_status(&w, &pat).await, "active");
    assert_eq!(w.submit(path, &[("status", "retired"), ("confirm", "yes")], &pat).await.status, StatusCode::SEE_OTHER);
    assert_eq!(version_status(&w, &pat).await, "retired");
    let page = w.get("/publisher/agents/echo-agent", Some(&pat)).await;
    page.assert_lacks("data-testid=\"status-form\"");
    page.assert_lacks("data-testid=\"retire-form\"");
    page.assert_contains("not listed");
    let final_ = w.submit(path, &[("status", "active")], &pat).await;
    assert_eq!(final_.status, StatusCode::CONFLICT);
    assert!(final_.testid_text("status-error").contains("retirement is final"));
    assert_eq!(w.get("/agents/echo-agent", None).await.status, StatusCode::NOT_FOUND, "gone from the store");
}

/// Records a charged call of `consumer` on `inst` to `slug`, through the gateway's write path.
async fn record_call(w: &World, id: &str, consumer: &Person, inst: &str, slug: &str, publisher_org: &str, cost: i64) {
    let agent = w.store.agent_by_slug(slug).await.unwrap();
    let record = UsageRecord {
        id: id.into(),
        created_at: tollgate_domain::time::now_ms() - 60_000,
        org_id: consumer.org_id.clone(),
        user_id: consumer.user_id.clone(),
        key_id: "key_x".into(),
        installation_id: inst.into(),
        agent_id: agent.id,
        version: "1.0.0".into(),
        function_name: "echo".into(),
        method: "tools/call".into(),
        latency_ms: 30,
        http_status: 200,
        cost: Nanos(cost),
        fee: Nanos(cost / 5),
        ..UsageRecord::default()
    };
    let charge = Charge {
        org_account: w.store.ledger_account(AccountKind::OrgCredit, &consumer.org_id).await.unwrap().id,
        lease: None,
        publisher_account: w.store.ledger_account(AccountKind::PublisherEarnings, publisher_org).await.unwrap().id,
        platform_account: w.store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await.unwrap().id,
    };
    w.store.settle_calls(&[SettledCall { record, charge: Some(charge) }]).await.unwrap();
}

#[tokio::test]
async fn earnings_are_anonymous_and_only_the_publishers_org_sees_the_console() {
    let w = World::new().await;
    let pat = w.person("pat@example.com").await;
    w.publish(&pat, "echo-agent").await;
    let ada = w.person("ada@example.com").await;
    let bo = w.person("bo@example.com").await;
    let ada_inst = w.install(&ada, "echo-agent").await;
    let bo_inst = w.install(&bo, "echo-agent").await;
    record_call(&w, "req_a1", &ada, &ada_inst, "echo-agent", &pat.org_id, 5_000_000).await;
    record_call(&w, "req_a2", &ada, &ada_inst, "echo-agent", &pat.org_id, 5_000_000).await;
    record_call(&w, "req_b1", &bo, &bo_inst, "echo-agent", &pat.org_id, 1_000_000).await;

    let console = w.get("/publisher", Some(&pat)).await;
    check_html(&console.html);
    assert_eq!(console.testid_text("earnings-value"), "$0.0088", "(5 + 5 + 1) thousandths less the 20% fee");
    assert_eq!(console.testid_text("agent-earnings"), "$0.0088");
    console.assert_contains("<svg");
    let page = w.get("/publisher/agents/echo-agent", Some(&pat)).await;
    check_html(&page.html);
    assert_eq!(page.testid_text("agent-earnings-value"), "$0.0088");
    assert_eq!(page.html.matches("data-testid=\"install-token-row\"").count(), 2);
    let token = w.store.installation(&ada_inst).await.unwrap().install_token;
    page.assert_contains(&format!("<code>{token}</code>"));
    for hidden in ["ada@example.com", "bo@example.com", &ada.org_id, &bo.org_id, &ada_inst, &bo_inst, "req_a1", "key_x"]
    {
        page.assert_lacks(hidden);
        console.assert_lacks(hidden);
    }
    let bad = w.get("/publisher?from=2026-03-05&to=2026-03-01", Some(&pat)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.testid_text("error-from").contains("before"));
    check_html(&bad.html);

    // A consumer publishes nothing, and cannot reach the publisher's pages or forms.
    let theirs = w.get("/publisher", Some(&ada)).await;
    theirs.assert_contains("No agents yet");
    theirs.assert_lacks("echo-agent");
    assert_eq!(w.get("/publisher/agents/echo-agent", Some(&ada)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(w.get("/publisher/agents/echo-agent/versions/new", Some(&ada)).await.status, StatusCode::NOT_FOUND);
    let forged = w
        .submit(
            "/publisher/agents/echo-agent/versions/1.0.0/status",
            &[("status", "retired"), ("confirm", "yes")],
            &ada,
        )
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    let forged = w.submit("/publisher/agents/echo-agent/versions/new", &version(), &ada).await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    let (_, agent) = w.api(Method::GET, "/api/v1/agents/echo-agent", None, &pat).await;
    assert_eq!(
        (agent["versions"].as_array().unwrap().len(), agent["versions"][0]["status"].as_str()),
        (1, Some("active"))
    );
    for path in ["/publisher", "/publisher/new", "/publisher/agents/echo-agent"] {
        assert_eq!(w.get(path, None).await.status, StatusCode::SEE_OTHER, "{path}");
    }
}

#[tokio::test]
async fn viewers_read_the_console_and_cannot_publish() {
    let w = World::new().await;
    let owner = w.person("owner@example.com").await;
    let team = w.team(&owner, "Studio").await;
    let viewer = w.person("viewer@example.com").await;
    let member = w.person("member@example.com").await;
    w.join(&owner, &team, &viewer, "viewer").await;
    w.join(&owner, &team, &member, "member").await;
    let m = member.in_org(&team);
    let created = w.submit("/publisher/new", &listing(), &m).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "members publish: {}", created.html);
    assert_eq!(
        w.submit("/publisher/agents/web-search/versions/new", &version(), &m).await.status,
        StatusCode::SEE_OTHER
    );

    let v = viewer.in_org(&team);
    let console = w.get("/publisher", Some(&v)).await;
    check_html(&console.html);
    console.assert_contains("data-slug=\"web-search\"");
    console.assert_lacks("data-testid=\"new-agent\"");
    console.assert_contains("data-testid=\"publisher-readonly\"");
    let page = w.get("/publisher/agents/web-search", Some(&v)).await;
    page.assert_lacks("data-testid=\"new-version\"");
    page.assert_lacks("data-testid=\"status-form\"");
    page.assert_lacks("data-testid=\"retire-form\"");
    assert_eq!(w.get("/publisher/new", Some(&v)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(w.get("/publisher/agents/web-search/versions/new", Some(&v)).await.status, StatusCode::FORBIDDEN);
    let mut other = listing();
    other.retain(|(k, _)| *k != "slug");
    other.push(("slug", "viewer-agent"));
    let refused = w.submit("/publisher/new", &other, &v).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.assert_contains("Viewers cannot change anything");
    let refused = w.submit("/publisher/agents/web-search/versions/1.0.0/status", &[("status", "deprecated")], &v).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let (_, agents) = w.api(Method::GET, "/api/v1/agents", None, &owner).await;
    assert_eq!(agents.as_array().unwrap().len(), 0, "the owner's personal org publishes nothing");
    let (status, agent) = w.api(Method::GET, "/api/v1/agents/web-search", None, &owner).await;
    assert_eq!((status, agent["versions"][0]["status"].as_str()), (StatusCode::OK, Some("active")));
    assert!(w.store.agent_by_slug("viewer-agent").await.is_err(), "the viewer created nothing");

    // The team's members do not get the review form for their own agent; others do.
    let own = w.get("/agents/web-search?tab=reviews", Some(&v)).await;
    own.assert_contains("data-testid=\"own-agent\"");
    own.assert_lacks("data-testid=\"review-form\"");
    check_html(&own.html);
    let stranger = w.person("stranger@example.com").await;
    let theirs = w.get("/agents/web-search?tab=reviews", Some(&stranger)).await;
    theirs.assert_contains("data-testid=\"review-form\"");
    theirs.assert_lacks("data-testid=\"own-agent\"");
}
