//! A person's journey on a real socket: install an agent from its page, create a key,
//! run the Integration tab's own curl (and, where installed, Python and Node) snippets
//! against this instance's gateway, and find the calls on the dashboard, the usage page,
//! the audit log and its CSV export; then revoke the key and see the gateway refuse it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{World, check_html, html_unescape};
use serde_json::json;
use std::process::Command;

/// The text of `<pre data-testid="{id}">…</pre>`, unescaped.
fn snippet(html: &str, id: &str) -> String {
    let marker = format!("data-testid=\"{id}\">");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = html[start..].find("</pre>").unwrap();
    html_unescape(&html[start..start + end])
}

/// Runs `program` on `code`; `None` when the program is not installed.
fn run(program: &str, args: &[&str], code: &str) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("tollgate-web-snippet-{}-{program}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("snippet");
    std::fs::write(&file, code).unwrap();
    let output = Command::new(program).args(args).arg(&file).output().ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    Some(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_key_call_watch_and_revoke() {
    let (w, gateway, upstream) = World::with_gateway().await;
    let publisher = w.person("pub@example.com").await;
    w.list(&publisher, "echo", json!({"name": "Echo", "description": "Says it back."})).await;
    let functions = json!([{"name": "echo", "pricing": {"model": "per_request", "price": "0.001"}}]);
    w.version(&publisher, "echo", "1.0.0", &format!("{upstream}/_examples/echo/mcp"), functions).await;
    let ada = w.person("ada@example.com").await;

    let id = w.install(&ada, "echo").await;
    let created = w.submit(&format!("/usage/{id}/keys"), &[("name", "laptop")], &ada).await;
    let created = w.follow(&created, Some(&ada)).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.html);
    let key = created.testid_text("new-key-value");

    let integration = w.get("/agents/echo?tab=integration", Some(&ada)).await;
    check_html(&integration.html);
    let curl = snippet(&integration.html, "snippet-curl").replace(snippets_placeholder(), &key);
    let out = run("sh", &[], &curl).expect("sh runs the curl snippet");
    assert!(out.contains("\"echo\"") && out.contains("\"tools\""), "tools/list answered: {out}");
    let mut calls = 2;
    if let Some(out) =
        run("python3", &[], &snippet(&integration.html, "snippet-python").replace(snippets_placeholder(), &key))
    {
        assert!(out.contains("\"tools\""), "the Python snippet works: {out}");
        calls += 2;
    }
    if let Some(out) =
        run("node", &[], &snippet(&integration.html, "snippet-node").replace(snippets_placeholder(), &key))
    {
        assert!(out.contains("\"tools\""), "the Node snippet works: {out}");
        calls += 2;
    }
    gateway.flush().await;

    let dashboard = w.get("/dashboard", Some(&ada)).await;
    check_html(&dashboard.html);
    assert!(
        dashboard.html.contains(&format!("<p class=\"v\">{calls}</p>")),
        "{calls} calls in 24 h:\n{}",
        dashboard.html
    );
    dashboard.assert_contains("polyline class=\"spark\"");

    let details = w.get(&format!("/usage/{id}"), Some(&ada)).await;
    check_html(&details.html);
    details.assert_lacks("No calls in this range yet");
    details.assert_contains(&format!(
        "data-testid=\"stat-calls\"><p class=\"k\">Total calls</p><p class=\"v\">{calls}</p>"
    ));
    details.assert_contains("<rect class=\"bar\"");

    let audit = w.get(&format!("/usage/{id}?tab=audit"), Some(&ada)).await;
    check_html(&audit.html);
    assert_eq!(audit.html.matches("data-testid=\"audit-row\"").count(), calls);
    audit.assert_contains("<code>tools/list</code>");
    audit.assert_contains("<code>echo</code>");
    let first = audit.html.split("data-testid=\"audit-row-link\">").nth(1).unwrap();
    let request_id = &first[..first.find('<').unwrap()];
    let detail = w.get(&format!("/usage/{id}?tab=audit&row={request_id}"), Some(&ada)).await;
    detail.assert_contains("data-testid=\"call-detail\"");
    detail.assert_contains(&format!("<h2>Call {request_id}</h2>"));
    detail.assert_contains("laptop");
    let listed = w.get(&format!("/usage/{id}?tab=audit&q=tools%2Flist"), Some(&ada)).await;
    assert_eq!(listed.html.matches("data-testid=\"audit-row\"").count(), calls / 2);

    let csv = w.get(&format!("/api/v1/usage/audit.csv?installation={id}"), Some(&ada)).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.html.lines().count(), calls + 1, "a header and one row per call:\n{}", csv.html);
    assert!(csv.html.contains(request_id));

    let (_, keys) = w.api(axum::http::Method::GET, &format!("/api/v1/installations/{id}/keys"), None, &ada).await;
    let key_id = keys[0]["id"].as_str().unwrap();
    let revoked = w.submit(&format!("/usage/{id}/keys/{key_id}/revoke"), &[], &ada).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let out = run("sh", &[], &curl.replace("curl -sS", "curl -sS -o /dev/null -w '%{http_code}\\n'")).unwrap();
    assert!(out.lines().all(|l| l.trim() == "403"), "a revoked key is refused: {out}");
}

fn snippets_placeholder() -> &'static str {
    tollgate_web::snippets::KEY_PLACEHOLDER
}
