//! Content is never stored or logged: a unique marker sent in a call's arguments and
//! returned in its result (and in a malformed request, and in an agent's error) reaches
//! the agent and comes back, yet appears in no database file and no log line — even with
//! debug logging on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{Db, Server, TempDir, account, call, echo_upstream, publish_and_install, runtime, tool_call};
use serde_json::json;

/// Every byte of every file under `dir`, lossily as text.
fn all_files(dir: &std::path::Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.push_str(&all_files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

#[test]
fn call_content_reaches_no_database_file_and_no_log() {
    // The log is kept outside the data directory, whose every file is searched below.
    let logs = TempDir::new("privacy-logs");
    let db = Db::from_env("privacy");
    let (_upstream_runtime, upstream) = echo_upstream();
    let log = logs.0.join("server.log");
    let mut command = db.serve_command(&["--demo"]);
    command.env("TOLLGATE_LOG", "debug,rmcp=trace");
    let server = Server::spawn(command, log.clone());
    let publisher = account(&server.url, "publisher@example.com");
    let consumer = account(&server.url, "consumer@example.com");
    let functions = json!([{"name": "echo", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 0, "free_reset": "lifetime"}]);
    let key = publish_and_install(
        &server.url,
        &publisher,
        &consumer,
        "private",
        &format!("{upstream}/mcp"),
        functions.clone(),
    );
    // The binary's own example agent (a real rmcp server) too, over SSE.
    let example_key = publish_and_install(
        &server.url,
        &publisher,
        &consumer,
        "private-rmcp",
        &format!("{}/_examples/echo/mcp", server.url),
        functions,
    );

    let marker = format!("PRIVATE-{}-{}", std::process::id(), tollgate_domain::secret::random_token(16).unwrap());
    let reply = call(&server.url, &key, "private", &tool_call(1, "echo", json!({"text": marker}))).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains(&format!("you said: {marker}")),
        "the marker went to the agent and came back: {}",
        reply.body
    );

    let auth = format!("Bearer {example_key}");
    let stateless = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "echo"),
    ];
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": marker},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    let reply = harness::http(&server.url, "POST", "/private-rmcp/1.0.0/mcp", &stateless, &body);
    assert!(reply.body.contains(&marker), "the real MCP server echoed the marker: {} {}", reply.status, reply.body);

    let malformed = call(
        &server.url,
        &key,
        "private",
        &format!("{{\"jsonrpc\": \"2.0\", \"id\": 3, \"method\": \"tools/call\", \"params\": {{\"text\": \"{marker}\""),
    )
    .unwrap();
    assert_eq!(malformed.status, 400);
    assert!(!malformed.body.contains(&marker), "errors do not echo content");
    let wrong_key =
        call(&server.url, &format!("tgk_private_{marker}"), "private", &tool_call(4, "echo", json!({}))).unwrap();
    assert_eq!(wrong_key.status, 401);

    server.stop();
    let at_rest = all_files(&db.dir);
    assert!(db.is_postgres() || at_rest.contains("private-rmcp"), "the data directory holds the database");
    assert!(!at_rest.contains(&marker), "the marker is in a database file");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("DEBUG") || logged.contains("debug"), "debug logging was on");
    let leaked: Vec<&str> = logged.lines().filter(|l| l.contains(&marker)).collect();
    assert!(leaked.is_empty(), "the marker is in the log: {leaked:#?}");
    if db.is_postgres() {
        let dump = runtime().block_on(async {
            let store = db.open().await;
            let dump = tollgate_store::testing::dump(&store).await.unwrap();
            store.close().await;
            dump
        });
        assert!(dump.contains("private-rmcp") && !dump.contains(&marker), "the marker is in a PostgreSQL table");
    }
}
