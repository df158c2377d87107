//! An installation's Usage page: its tabs, keys shown once, daily limits, revocation,
//! task timeouts, tenant isolation, and the dashboard's empty and filled states.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Person, World, check_html};
use serde_json::json;

async fn installed() -> (World, Person, String) {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.publish(&publisher, "echo-agent").await;
    let ada = w.person("ada@example.com").await;
    let id = w.install(&ada, "echo-agent").await;
    (w, ada, id)
}

#[tokio::test]
async fn every_tab_renders_for_the_installations_org_and_is_404_for_others() {
    let (w, ada, id) = installed().await;
    for tab in ["details", "settings", "audit"] {
        let page = w.get(&format!("/usage/{id}?tab={tab}"), Some(&ada)).await;
        assert_eq!(page.status, StatusCode::OK, "{tab}: {}", page.html);
        check_html(&page.html);
        page.assert_contains(&format!("id=\"panel-{tab}\""));
        page.assert_contains("Agent echo-agent");
    }
    let details = w.get(&format!("/usage/{id}"), Some(&ada)).await;
    details.assert_contains("No calls in this range yet");
    details.assert_contains("<code>echo</code>");
    let settings = w.get(&format!("/usage/{id}?tab=settings&notice=installed"), Some(&ada)).await;
    settings.assert_contains("Installed. Create a key below");
    settings.assert_contains("No keys yet");
    settings.assert_contains("<dt>Per minute</dt><dd>60 requests</dd>");
    settings.assert_lacks("data-testid=\"task-timeout\"");
    let audit = w.get(&format!("/usage/{id}?tab=audit&q=echo&status=error"), Some(&ada)).await;
    audit.assert_contains("No calls match");
    audit.assert_contains(&format!("href=\"/usage/{id}/audit.csv?q=echo&#38;status=error\""));
    let csv = w.get(&format!("/usage/{id}/audit.csv?q=echo&status=error"), Some(&ada)).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.headers["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"tollgate-usage-"));
    assert_eq!(csv.headers["x-tollgate-export-rows"], "0");
    assert!(csv.html.starts_with("time,request_id,"), "{}", csv.html);

    let eve = w.person("eve@example.com").await;
    assert_eq!(w.get(&format!("/usage/{id}/audit.csv"), Some(&eve)).await.status, StatusCode::NOT_FOUND);
    for tab in ["details", "settings", "audit"] {
        let page = w.get(&format!("/usage/{id}?tab={tab}"), Some(&eve)).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{tab}");
        page.assert_lacks("echo-agent");
    }
    let forged = w.submit(&format!("/usage/{id}/keys"), &[("name", "eve's")], &eve).await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    let gone = w.submit(&format!("/usage/{id}/uninstall"), &[("confirm", "yes")], &eve).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let (_, inst) = w.api(Method::GET, &format!("/api/v1/installations/{id}"), None, &ada).await;
    assert_eq!(inst["status"], "active", "another org changed nothing");
    assert_eq!(w.get("/usage/ins_nope", Some(&ada)).await.status, StatusCode::NOT_FOUND);

    let bad_range = w.get(&format!("/usage/{id}?from=2026-03-05&to=2026-03-01"), Some(&ada)).await;
    assert_eq!(bad_range.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_range.testid_text("error-from").contains("before"));
    check_html(&bad_range.html);
}

#[tokio::test]
async fn a_new_key_is_shown_once_then_only_its_prefix() {
    let (w, ada, id) = installed().await;
    let page = w
        .submit(
            &format!("/usage/{id}/keys"),
            &[
                ("name", "Production"),
                ("requests", "1000"),
                ("input_tokens", ""),
                ("output_tokens", "0"),
                ("cache_tokens", "0"),
            ],
            &ada,
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "POST → 303 → GET: {}", page.html);
    let location = page.location().to_string();
    assert!(location.starts_with(&format!("/usage/{id}?tab=settings&shown=")) && location.ends_with("#new-key"));
    let page = w.follow(&page, Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert_eq!(page.headers["cache-control"], "no-store");
    check_html(&page.html);
    let secret = page.testid_text("new-key-value");
    assert!(!location.contains(&secret[4..]), "the secret is never in a URL");
    assert!(secret.starts_with("tgk_echo-agent_"), "{secret}");
    page.assert_contains("you will not see it again");
    page.assert_contains(&format!("Bearer {secret}"));

    let (_, keys) = w.api(Method::GET, &format!("/api/v1/installations/{id}/keys"), None, &ada).await;
    let key = &keys[0];
    assert_eq!((key["name"].as_str(), key["daily_limits"]["requests"].as_i64()), (Some("Production"), Some(1000)));
    let prefix = key["prefix"].as_str().unwrap();
    assert!(secret.starts_with(prefix));

    let later = w.get(&format!("/usage/{id}?tab=settings"), Some(&ada)).await;
    later.assert_contains(&format!("{prefix}…"));
    later.assert_lacks(&secret);
    later.assert_lacks("data-testid=\"new-key\"");
    check_html(&later.html);

    // A reload of the page that showed it neither shows it again nor makes another key.
    let reload = w.get(location.split('#').next().unwrap(), Some(&ada)).await;
    assert_eq!(reload.status, StatusCode::OK);
    reload.assert_lacks(&secret);
    reload.assert_contains("data-testid=\"key-gone\"");
    let (_, keys) = w.api(Method::GET, &format!("/api/v1/installations/{id}/keys"), None, &ada).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "one key, however often the page is reloaded");
}

#[tokio::test]
async fn bad_key_forms_show_the_error_next_to_the_field_and_create_nothing() {
    let (w, ada, id) = installed().await;
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("name", ""), ("requests", "0")], "error-name"),
        (&[("name", "k"), ("requests", "-5")], "error-requests"),
        (&[("name", "k"), ("requests", "many")], "error-requests"),
    ];
    for (fields, error) in cases {
        let page = w.submit(&format!("/usage/{id}/keys"), fields, &ada).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}: {}", page.html);
        assert!(!page.testid_text(error).is_empty(), "{fields:?}");
        page.assert_lacks("data-testid=\"new-key\"");
        check_html(&page.html);
    }
    let typed = w.submit(&format!("/usage/{id}/keys"), &[("name", "Staging"), ("requests", "-1")], &ada).await;
    typed.assert_contains("value=\"Staging\"");
    let forged = w.form(&format!("/usage/{id}/keys"), &[("csrf", "forged"), ("name", "k")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let missing = w.form(&format!("/usage/{id}/keys"), &[("name", "k")], Some(&ada)).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let (_, keys) = w.api(Method::GET, &format!("/api/v1/installations/{id}/keys"), None, &ada).await;
    assert_eq!(keys.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn daily_limits_and_revocation_go_through_the_api() {
    let (w, ada, id) = installed().await;
    w.submit(&format!("/usage/{id}/keys"), &[("name", "Testing")], &ada).await;
    let (_, keys) = w.api(Method::GET, &format!("/api/v1/installations/{id}/keys"), None, &ada).await;
    let key = keys[0]["id"].as_str().unwrap().to_string();

    let saved = w
        .submit(
            &format!("/usage/{id}/keys/{key}/limits"),
            &[("requests", "50"), ("input_tokens", "1,000"), ("output_tokens", "0"), ("cache_tokens", "0")],
            &ada,
        )
        .await;
    assert_eq!(
        (saved.status, saved.location()),
        (StatusCode::SEE_OTHER, format!("/usage/{id}?tab=settings&notice=limits_saved").as_str())
    );
    let (_, keys) = w.api(Method::GET, &format!("/api/v1/installations/{id}/keys"), None, &ada).await;
    assert_eq!(
        keys[0]["daily_limits"],
        json!({"requests": 50, "input_tokens": 1000, "output_tokens": 0, "cache_tokens": 0})
    );

    let bad = w.submit(&format!("/usage/{id}/keys/{key}/limits"), &[("requests", "-2")], &ada).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.testid_text("error-requests").is_empty());
    bad.assert_contains("<details open>");
    check_html(&bad.html);
    let (_, keys) = w.api(Method::GET, &format!("/api/v1/installations/{id}/keys"), None, &ada).await;
    assert_eq!(keys[0]["daily_limits"]["requests"], 50, "unchanged");

    let forged = w.form(&format!("/usage/{id}/keys/{key}/revoke"), &[("csrf", "x")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let revoked = w.submit(&format!("/usage/{id}/keys/{key}/revoke"), &[], &ada).await;
    assert_eq!(revoked.location(), format!("/usage/{id}?tab=settings&notice=key_revoked"));
    let (_, keys) = w.api(Method::GET, &format!("/api/v1/installations/{id}/keys"), None, &ada).await;
    assert_eq!(keys[0]["status"], "revoked");
    let page = w.get(&format!("/usage/{id}?tab=settings&notice=key_revoked"), Some(&ada)).await;
    page.assert_contains("The key is revoked");
    page.assert_contains("<span class=\"badge bad\">revoked</span>");
}

#[tokio::test]
async fn a2a_installations_have_a_task_timeout() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.list(&publisher, "planner", json!({"protocol": "a2a"})).await;
    w.version(&publisher, "planner", "1.0.0", "http://127.0.0.1:9/a2a", json!([])).await;
    let ada = w.person("ada@example.com").await;
    let id = w.install(&ada, "planner").await;

    let page = w.get(&format!("/usage/{id}?tab=settings"), Some(&ada)).await;
    page.assert_contains("data-testid=\"task-timeout\"");
    page.assert_contains("The publisher recommends 5 minutes");
    check_html(&page.html);

    let bad = w.submit(&format!("/usage/{id}/timeout"), &[("seconds", "10")], &ada).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.testid_text("error-seconds").contains("60"));
    let ok = w.submit(&format!("/usage/{id}/timeout"), &[("seconds", "900")], &ada).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let (_, inst) = w.api(Method::GET, &format!("/api/v1/installations/{id}"), None, &ada).await;
    assert_eq!(inst["task_timeout_seconds"], 900);
    w.get(&format!("/usage/{id}?tab=settings"), Some(&ada)).await.assert_contains("Now: 15 minutes.");
    let reset = w.submit(&format!("/usage/{id}/timeout"), &[("seconds", "")], &ada).await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER);
    let (_, inst) = w.api(Method::GET, &format!("/api/v1/installations/{id}"), None, &ada).await;
    assert_eq!(inst["task_timeout_seconds"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_dashboard_lists_my_agents_and_shows_empty_states() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.publish(&publisher, "echo-agent").await;
    let ada = w.person("ada@example.com").await;

    let empty = w.get("/dashboard", Some(&ada)).await;
    empty.assert_contains("No agents yet");
    empty.assert_contains("$100.00");
    check_html(&empty.html);

    let id = w.install(&ada, "echo-agent").await;
    let page = w.get("/dashboard", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains(&format!("href=\"/usage/{id}\""));
    assert_eq!(page.html.matches("data-testid=\"my-agent-link\"").count(), 1);
    page.assert_contains("role=\"img\"");
    check_html(&page.html);

    let bad = w.get("/dashboard?from=2026-01-10&to=2026-01-01", Some(&ada)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.testid_text("error-from").contains("before"));
    check_html(&bad.html);
}
