//! The store and an agent's page: cards, filters, pages, the six tabs, install, reviews.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{World, check_html};
use serde_json::json;

#[tokio::test]
async fn the_store_shows_cards_with_badges_and_filters_through_the_api() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.list(
        &publisher,
        "web-search",
        json!({"name": "Web Search", "description": "Searches the web & cites sources.", "category": "research",
               "governance": {"compliance": ["gdpr", "soc2"], "data_collected": ["queries"]}}),
    )
    .await;
    let functions =
        json!([{"name": "search", "pricing": {"model": "per_request", "price": "0.002"}, "free_calls": 10}]);
    w.version(&publisher, "web-search", "1.0.0", "http://127.0.0.1:9/mcp", functions).await;
    w.list(&publisher, "planner", json!({"name": "Planner", "protocol": "a2a", "category": "productivity"})).await;
    w.version(&publisher, "planner", "1.0.0", "http://127.0.0.1:9/a2a", json!([])).await;

    let page = w.get("/store", None).await;
    assert_eq!(page.status, StatusCode::OK);
    check_html(&page.html);
    page.assert_contains("Web Search");
    page.assert_contains("Searches the web &#38; cites sources.");
    page.assert_contains("by pub");
    page.assert_contains("<span class=\"badge proto\" data-testid=\"card-protocol\">MCP</span>");
    page.assert_contains("<span class=\"badge proto\" data-testid=\"card-protocol\">A2A</span>");
    page.assert_contains("<span class=\"badge category\" data-testid=\"card-category\">research</span>");
    page.assert_contains("Free tier");
    page.assert_contains("<span class=\"badge\">GDPR</span>");
    page.assert_contains("<span class=\"badge\">SOC 2</span>");
    page.assert_contains("href=\"/agents/web-search\"");
    assert_eq!(page.testid_text("store-total"), "2 agents");

    let mcp = w.get("/store?protocol=mcp", None).await;
    mcp.assert_contains("Web Search");
    mcp.assert_lacks("Planner");
    mcp.assert_contains("<option value=\"mcp\" selected>");
    let searched = w.get("/store?q=cites+web", None).await;
    searched.assert_contains("Web Search");
    searched.assert_lacks(">Planner<");
    searched.assert_contains("value=\"cites web\"");
    let trusted = w.get("/store?min_trust=20", None).await;
    trusted.assert_contains("Web Search");
    trusted.assert_lacks(">Planner<");
    let none = w.get("/store?q=nothing+matches", None).await;
    assert_eq!(none.status, StatusCode::OK);
    none.assert_contains("No agent matches");

    let invalid = w.get("/store?min_trust=lots&q=web", None).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.testid_text("error-min_trust").contains("0 to 100"));
    invalid.assert_contains("value=\"lots\"");
    check_html(&invalid.html);
}

#[tokio::test]
async fn the_store_pages_twelve_cards_at_a_time() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    for i in 0..13 {
        w.publish(&publisher, &format!("agent-{i:02}")).await;
    }
    let first = w.get("/store?sort=newest", None).await;
    assert_eq!(first.html.matches("data-testid=\"agent-card\"").count(), 12);
    first.assert_contains("href=\"/store?sort=newest&#38;page=2\"");
    let second = w.get("/store?sort=newest&page=2", None).await;
    assert_eq!(second.html.matches("data-testid=\"agent-card\"").count(), 1);
    second.assert_contains("agent-00");
    second.assert_contains("rel=\"prev\"");
    check_html(&second.html);

    let empty = World::new().await;
    empty.get("/store", None).await.assert_contains("No agents are listed yet");
}

#[tokio::test]
async fn an_agents_page_has_six_tabs_with_its_prices_and_working_code() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.list(
        &publisher,
        "summarizer",
        json!({"name": "Summarizer", "description": "Shortens text.\n\nKeeps the gist.",
               "use_cases": ["Digest a long thread"],
               "governance": {"data_collected": ["text"], "storage_region": "eu-west-1", "retention_days": 0,
                              "training_use": false, "compliance": ["gdpr"], "security_measures": ["encryption at rest"]},
               "support": {"email": "help@example.com", "docs_url": "https://docs.example.com"}}),
    )
    .await;
    let functions = json!([
        {"name": "summarize", "pricing": {"model": "per_token", "input_per_million": "2.00", "output_per_million": "4.00", "cache_per_million": "0.50"}, "free_calls": 3, "free_reset": "monthly"},
        {"name": "translate", "pricing": {"model": "per_request", "price": "0.005"}}
    ]);
    w.version(&publisher, "summarizer", "1.0.0", "http://127.0.0.1:9/mcp", functions).await;

    let page = w.get("/agents/summarizer", None).await;
    assert_eq!(page.status, StatusCode::OK);
    check_html(&page.html);
    for tab in ["description", "integration", "use-cases", "privacy", "reviews", "support"] {
        page.assert_contains(&format!("href=\"/agents/summarizer?tab={tab}\""));
        page.assert_contains(&format!("id=\"panel-{tab}\""));
    }
    page.assert_contains("<p>Shortens text.</p><p>Keeps the gist.</p>");
    page.assert_contains("Log in to install");

    let integration = w.get("/agents/summarizer?tab=integration", None).await;
    integration.assert_contains(
        "id=\"panel-integration\" role=\"tabpanel\" aria-labelledby=\"tab-integration\" data-panel=\"integration\">",
    );
    integration.assert_contains("$2.00 / 1M input · $4.00 / 1M output · $0.50 / 1M cache tokens");
    integration.assert_contains("$0.005 per call");
    integration.assert_contains("3 free calls a month");
    integration.assert_contains("$0.0001 per utility call");
    integration.assert_contains("http://127.0.0.1:8080/summarizer/1.0.0/mcp");
    let curl = integration.testid_text("snippet-curl");
    assert!(curl.contains("curl -sS -X POST 'http://127.0.0.1:8080/summarizer/1.0.0/mcp'"), "{curl}");
    assert!(curl.contains("'Authorization: Bearer <your key>'") && curl.contains("'Mcp-Name: summarize'"));
    assert!(integration.testid_text("snippet-python").contains("urllib.request"));
    assert!(integration.testid_text("snippet-node").contains("fetch(ENDPOINT"));

    let privacy = w.get("/agents/summarizer?tab=privacy", None).await;
    privacy.assert_contains("eu-west-1");
    privacy.assert_contains("Not retained");
    privacy.assert_contains("No, user data never trains models");
    let score = privacy.testid_text("trust-score");
    let (status, detail) = w.api(Method::GET, "/api/v1/store/agents/summarizer", None, &publisher).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(score, detail["trust_score"].to_string());
    privacy.assert_contains("<th scope=\"row\">GDPR</th><td class=\"num\">10</td>");

    let support = w.get("/agents/summarizer?tab=support", None).await;
    support.assert_contains("mailto:help@example.com");
    support.assert_contains("https://docs.example.com");
    w.get("/agents/summarizer?tab=use-cases", None).await.assert_contains("<li>Digest a long thread</li>");

    assert_eq!(w.get("/agents/nobody-here", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn install_and_uninstall_from_the_agents_page() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.publish(&publisher, "echo-agent").await;
    let ada = w.person("ada@example.com").await;

    let page = w.get("/agents/echo-agent", Some(&ada)).await;
    page.assert_contains("data-testid=\"install-form\"");
    check_html(&page.html);

    let forged = w.form("/agents/echo-agent/install", &[("csrf", "nope")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let (_, installed) = w.api(Method::GET, "/api/v1/installations", None, &ada).await;
    assert_eq!(installed.as_array().unwrap().len(), 0, "a forged form installs nothing");

    let id = w.install(&ada, "echo-agent").await;
    let (_, installed) = w.api(Method::GET, "/api/v1/installations", None, &ada).await;
    assert_eq!(installed[0]["id"], id.as_str());
    let page = w.get("/agents/echo-agent", Some(&ada)).await;
    page.assert_contains("data-testid=\"installed\"");
    page.assert_contains(&format!("action=\"/usage/{id}/uninstall\""));
    page.assert_lacks("data-testid=\"install-form\"");
    check_html(&page.html);

    let again = w.submit("/agents/echo-agent/install", &[], &ada).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.testid_text("install-error").contains("already installed"));

    let unconfirmed = w.submit(&format!("/usage/{id}/uninstall"), &[], &ada).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    unconfirmed.assert_contains("Tick the box to confirm");
    let out = w.submit(&format!("/usage/{id}/uninstall"), &[("confirm", "yes")], &ada).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/dashboard?notice=uninstalled"));
    let (_, inst) = w.api(Method::GET, &format!("/api/v1/installations/{id}"), None, &ada).await;
    assert_eq!(inst["status"], "uninstalled");
    w.get("/agents/echo-agent", Some(&ada)).await.assert_contains("data-testid=\"install-form\"");
}

#[tokio::test]
async fn reviews_are_written_edited_and_deleted_through_the_api() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.publish(&publisher, "echo-agent").await;
    let ada = w.person("ada@example.com").await;

    let empty = w.get("/agents/echo-agent?tab=reviews", Some(&ada)).await;
    empty.assert_contains("No reviews yet");
    check_html(&empty.html);

    let bad = w.submit("/agents/echo-agent/review", &[("rating", "9"), ("body", "Great")], &ada).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.testid_text("error-rating").contains("1 to 5"));
    bad.assert_contains(">Great</textarea>");
    check_html(&bad.html);
    let none = w.submit("/agents/echo-agent/review", &[("body", "Great")], &ada).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, mine) = w.api(Method::GET, "/api/v1/agents/echo-agent/reviews/mine", None, &ada).await;
    assert_eq!(mine["error"]["code"], "not_found", "nothing was written");

    let ok = w.submit("/agents/echo-agent/review", &[("rating", "4"), ("body", "Does what it says.")], &ada).await;
    assert_eq!(
        (ok.status, ok.location()),
        (StatusCode::SEE_OTHER, "/agents/echo-agent?tab=reviews&notice=review_saved")
    );
    let page = w.get("/agents/echo-agent?tab=reviews", Some(&ada)).await;
    page.assert_contains("Does what it says.");
    page.assert_contains("Your review");
    page.assert_contains("value=\"4\" checked");
    page.assert_contains("★★★★☆");

    let edit = w
        .submit("/agents/echo-agent/review", &[("rating", "5"), ("body", "Even better."), ("existing", "1")], &ada)
        .await;
    assert_eq!(edit.status, StatusCode::SEE_OTHER);
    let (_, mine) = w.api(Method::GET, "/api/v1/agents/echo-agent/reviews/mine", None, &ada).await;
    assert_eq!((mine["rating"].as_i64(), mine["body"].as_str()), (Some(5), Some("Even better.")));

    let own = w.submit("/agents/echo-agent/review", &[("rating", "5"), ("body", "Mine is best")], &publisher).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "the API's rule holds: publishers do not review their own agents");

    let deleted = w.submit("/agents/echo-agent/review", &[("action", "delete")], &ada).await;
    assert_eq!(deleted.location(), "/agents/echo-agent?tab=reviews&notice=review_deleted");
    w.get("/agents/echo-agent?tab=reviews", Some(&ada)).await.assert_contains("No reviews yet");
}
