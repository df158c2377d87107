//! Speaks MCP over real HTTP to the example servers, nested under `/_examples` as the
//! binary mounts them: once through rmcp's own client (2025-era sessions and the
//! stateless 2026-07-28 protocol), once with hand-written JSON-RPC POSTs that check the
//! exact wire format the gateway relies on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rmcp::{
    ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion},
    service::RunningService,
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};

/// Serves `/_examples` on a free port; answers the base URL, e.g. `http://127.0.0.1:1234/_examples`.
async fn spawn_app() -> String {
    let app = axum::Router::new().nest("/_examples", tollgate_examples::router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/_examples")
}

/// An rmcp client that connects with `initialize` (a 2025-era session).
async fn connect(url: String) -> RunningService<RoleClient, ClientConfig> {
    let transport = StreamableHttpClientTransport::from_uri(url);
    ClientConfig::default().serve(transport).await.unwrap()
}

/// An rmcp client that speaks the stateless 2026-07-28 protocol (`server/discover`).
async fn connect_stateless(url: String) -> RunningService<RoleClient, ClientConfig> {
    let transport = StreamableHttpClientTransport::from_uri(url);
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    ClientConfig::default().serve_with_lifecycle(transport, lifecycle).await.unwrap()
}

async fn call(
    client: &RunningService<RoleClient, ClientConfig>,
    tool: &'static str,
    arguments: Value,
) -> CallToolResult {
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    let result = client.call_tool(CallToolRequestParams::new(tool).with_arguments(arguments)).await.unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    result
}

fn text_of(result: &CallToolResult) -> &str {
    &result.content[0].as_text().expect("text content").text
}

async fn tool_names(client: &RunningService<RoleClient, ClientConfig>) -> Vec<String> {
    let tools = client.list_all_tools().await.unwrap();
    tools.into_iter().map(|tool| tool.name.to_string()).collect()
}

const TWENTY_WORDS: &str = "one two three four five six seven eight nine ten \
                            eleven twelve thirteen fourteen fifteen sixteen seventeen \
                            eighteen nineteen twenty";

#[tokio::test]
async fn echo_over_a_session() {
    let base = spawn_app().await;
    let client = connect(format!("{base}/echo/mcp")).await;

    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "tollgate-example-echo");
    assert!(info.protocol_version.has_initialize());
    assert_eq!(tool_names(&client).await, ["countdown", "echo"]);

    let result = call(&client, "echo", json!({ "text": "hello, tollgate" })).await;
    assert_eq!(text_of(&result), "hello, tollgate");
    assert_eq!(result.meta, None);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn word_count_counts_words_and_characters() {
    let base = spawn_app().await;
    let client = connect(format!("{base}/word-count/mcp")).await;

    assert_eq!(tool_names(&client).await, ["count_words"]);
    let result = call(&client, "count_words", json!({ "text": "three  little words" })).await;
    assert_eq!(text_of(&result), "3 words, 19 characters");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn usage_reporter_reports_usage_in_meta() {
    let base = spawn_app().await;
    let client = connect(format!("{base}/usage-reporter/mcp")).await;

    assert_eq!(tool_names(&client).await, ["summarize"]);
    let result = call(&client, "summarize", json!({ "text": TWENTY_WORDS })).await;
    assert_eq!(text_of(&result), "one two three four five six seven eight nine ten eleven twelve…");
    let usage = &result.meta.as_ref().unwrap()["usage"];
    assert_eq!(usage, &json!({ "input_tokens": 20, "output_tokens": 12, "cache_tokens": 0 }));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn usage_reporter_over_the_stateless_protocol() {
    let base = spawn_app().await;
    let client = connect_stateless(format!("{base}/usage-reporter/mcp")).await;

    let info = client.peer_info().unwrap();
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);
    assert_eq!(tool_names(&client).await, ["summarize"]);
    let result = call(&client, "summarize", json!({ "text": "short text" })).await;
    assert_eq!(text_of(&result), "short text");
    let usage = &result.meta.as_ref().unwrap()["usage"];
    assert_eq!(usage, &json!({ "input_tokens": 2, "output_tokens": 2, "cache_tokens": 0 }));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn health_answers_ok() {
    let base = spawn_app().await;
    for slug in tollgate_examples::EXAMPLE_SERVERS {
        let response = reqwest::get(format!("{base}/{slug}/health")).await.unwrap();
        assert_eq!(response.status(), 200, "{slug}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "status": "ok" }));
    }
}

/// A hand-written 2025-era MCP session, sent with the `Host` a reverse proxy would set.
struct RawSession {
    http: reqwest::Client,
    url: String,
    session_id: Option<String>,
}

impl RawSession {
    const HOST: &str = "tollgate.example.com:8443";
    const VERSION: &str = "2025-11-25";

    /// POSTs `initialize` and `notifications/initialized`.
    async fn open(url: String) -> Self {
        let mut session = Self { http: reqwest::Client::new(), url, session_id: None };
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": Self::VERSION,
                "capabilities": {},
                "clientInfo": { "name": "raw-test", "version": "0" }
            }
        });
        let response = session.post(&init).await;
        assert_eq!(response.status(), 200);
        let id = response.headers()["mcp-session-id"].to_str().unwrap();
        session.session_id = Some(id.to_owned());
        let messages = messages(response).await;
        assert_eq!(messages[0]["result"]["protocolVersion"], Self::VERSION);

        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        assert_eq!(session.post(&initialized).await.status(), 202);
        session
    }

    async fn post(&self, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.url)
            .header("host", Self::HOST)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id).header("mcp-protocol-version", Self::VERSION);
        }
        request.send().await.unwrap()
    }

    /// POSTs a request and answers every JSON-RPC message of the reply, in order.
    async fn request(&self, id: u64, method: &str, params: Value) -> Vec<Value> {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let response = self.post(&body).await;
        assert_eq!(response.status(), 200);
        messages(response).await
    }
}

/// The JSON-RPC messages of a reply: a JSON body, or the `data` of each SSE event.
async fn messages(response: reqwest::Response) -> Vec<Value> {
    let is_json = response.headers()["content-type"].to_str().unwrap().starts_with("application/json");
    let body = response.text().await.unwrap();
    if is_json {
        return vec![serde_json::from_str(&body).unwrap()];
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test]
async fn raw_session_sees_usage_on_the_wire() {
    let base = spawn_app().await;
    let session = RawSession::open(format!("{base}/usage-reporter/mcp")).await;

    let listed = session.request(1, "tools/list", json!({})).await;
    assert_eq!(listed[0]["result"]["tools"][0]["name"], "summarize");

    let params = json!({ "name": "summarize", "arguments": { "text": TWENTY_WORDS } });
    let called = session.request(2, "tools/call", params).await;
    let [reply] = called.as_slice() else { panic!("one message expected: {called:?}") };
    assert_eq!(reply["id"], 2);
    assert_eq!(reply["result"]["isError"], false);
    assert_eq!(
        reply["result"]["_meta"]["usage"],
        json!({ "input_tokens": 20, "output_tokens": 12, "cache_tokens": 0 })
    );
}

#[tokio::test]
async fn countdown_streams_progress_before_the_result() {
    let base = spawn_app().await;
    let session = RawSession::open(format!("{base}/echo/mcp")).await;

    let params = json!({
        "name": "countdown",
        "arguments": { "n": 3 },
        "_meta": { "progressToken": "launch" }
    });
    let events = session.request(7, "tools/call", params).await;
    assert_eq!(events.len(), 4, "{events:?}");
    for (step, event) in events[..3].iter().enumerate() {
        assert_eq!(event["method"], "notifications/progress");
        assert_eq!(event["params"]["progressToken"], "launch");
        assert_eq!(event["params"]["progress"], json!(step as f64 + 1.0));
        assert_eq!(event["params"]["total"], json!(3.0));
        assert_eq!(event["params"]["message"], (3 - step).to_string());
    }
    assert_eq!(events[3]["id"], 7);
    assert_eq!(events[3]["result"]["content"][0]["text"], "liftoff");

    let too_big = json!({ "name": "countdown", "arguments": { "n": 21 } });
    let refused = session.request(8, "tools/call", too_big).await;
    assert_eq!(refused[0]["error"]["code"], -32602, "{refused:?}");
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let examples = tollgate_examples::router_with_shutdown(shutdown.clone());
    let app = axum::Router::new().nest("/_examples", examples);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/_examples/echo/mcp", listener.local_addr().unwrap());
    let stopped = shutdown.clone().cancelled_owned();
    let server = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped).await });

    let session = RawSession::open(url.clone()).await;
    let stream = session
        .http
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session.session_id.as_deref().unwrap())
        .header("mcp-protocol-version", RawSession::VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    shutdown.cancel();
    let finished = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    finished.expect("graceful shutdown waited on an open stream").unwrap().unwrap();
}
