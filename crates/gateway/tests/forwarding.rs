//! The forwarding rules of SPEC §3 header by header, both ways; what the upstream answers
//! passed through (202s, JSON-RPC errors for unknown methods, 503 and 429 with their
//! `Retry-After`) and never charged when it failed; and the per-version cap on calls in
//! flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use common::{World, rpc, serve, tool_call};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn priced() -> serde_json::Value {
    json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 0, "free_reset": "lifetime"}])
}

/// An upstream that records each request's headers and answers by what the body holds.
async fn upstream() -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let log = seen.clone();
    let handler = move |headers: HeaderMap, body: String| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(headers);
            let message: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let id = message.get("id").cloned().unwrap_or(serde_json::Value::Null);
            let method = message.get("method").and_then(|m| m.as_str()).unwrap_or("");
            let tool = message.pointer("/params/name").and_then(|m| m.as_str()).unwrap_or("");
            if method.is_empty() || method.starts_with("notifications/") {
                // A notification, or a response the client posts: accepted, nothing to say.
                return StatusCode::ACCEPTED.into_response();
            }
            if method != "tools/call" && method != "initialize" {
                let error =
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}});
                return ([("content-type", "application/json")], error.to_string()).into_response();
            }
            match tool {
                "busy" => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "7"), ("content-type", "application/json")],
                    json!({"detail": "warming up"}).to_string(),
                )
                    .into_response(),
                "slow-down" => (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "9"), ("content-type", "application/json")],
                    json!({"detail": "too fast"}).to_string(),
                )
                    .into_response(),
                _ => {
                    let answer =
                        json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "ok"}]}});
                    (
                        [
                            ("content-type", "application/json"),
                            ("mcp-session-id", "session-from-upstream"),
                            ("set-cookie", "tollgate_session=planted; Path=/"),
                            ("www-authenticate", "Bearer realm=\"http://10.1.2.3:9000/private\""),
                            ("access-control-allow-origin", "*"),
                            ("strict-transport-security", "max-age=31536000"),
                            ("alt-svc", "h3=\":443\""),
                            ("clear-site-data", "\"cookies\""),
                            ("location", "http://10.1.2.3:9000/private"),
                            ("x-agent-note", "kept"),
                        ],
                        answer.to_string(),
                    )
                        .into_response()
                }
            }
        }
    };
    let router = axum::Router::new().route("/mcp", axum::routing::post(handler));
    (serve(router).await, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pass_through_header_reaches_the_agent_and_only_safe_ones_come_back() {
    let world = World::new().await;
    let (upstream, seen) = upstream().await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) = world.listed(&publisher, &consumer, "probe", &format!("{upstream}/mcp"), "0", priced()).await;
    let sent = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "work"),
        ("mcp-param-region", "eu"),
        ("mcp-param-tenant", "blue"),
        ("mcp-session-id", "session-from-client"),
        ("last-event-id", "event-41"),
        ("a2a-version", "0.3"),
        ("a2a-extensions", "https://example.com/ext/v1"),
        ("cookie", "tollgate_session=secret"),
        ("x-forwarded-for", "203.0.113.9"),
    ];
    let reply = world.mcp(Some(&key), "probe/1.0.0", &tool_call(1, "work", json!({})), &sent).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let at_upstream = seen.lock().unwrap()[0].clone();
    for (name, value) in &sent[..9] {
        assert_eq!(at_upstream.get(*name).unwrap(), value, "{name} passes through unchanged");
    }
    assert_eq!(at_upstream["accept"], "application/json, text/event-stream");
    assert_eq!(at_upstream["content-type"], "application/json");
    for never in ["cookie", "x-forwarded-for"] {
        assert!(at_upstream.get(never).is_none(), "{never} is not passed upstream");
    }
    assert!(!format!("{at_upstream:?}").contains(&key), "the consumer's key never reaches the agent");

    // Back: the session id, the content type and the agent's own headers; nothing that would
    // act on Tollgate's origin or tell where the upstream is.
    assert_eq!(reply.header("mcp-session-id").as_deref(), Some("session-from-upstream"));
    assert_eq!(reply.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(reply.header("x-agent-note").as_deref(), Some("kept"));
    for dropped in [
        "set-cookie",
        "www-authenticate",
        "access-control-allow-origin",
        "strict-transport-security",
        "alt-svc",
        "clear-site-data",
        "location",
    ] {
        assert!(reply.header(dropped).is_none(), "{dropped} does not cross the gateway");
    }
    assert!(!format!("{:?}", reply.headers).contains("10.1.2.3"), "the upstream's address never leaks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_responses_unknown_methods_and_upstream_refusals_pass_through() {
    let world = World::new().await;
    let (upstream, _) = upstream().await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "probe", &format!("{upstream}/mcp"), "0.0001", priced()).await;
    let before = world.balance(&consumer).await;

    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}}).to_string();
    let answer = json!({"jsonrpc": "2.0", "id": "server-1", "result": {"roots": []}}).to_string();
    for body in [note, answer] {
        let r = world.mcp(Some(&key), "probe/1.0.0", &body, &[]).await;
        assert_eq!(r.status, 202, "the upstream's 202 comes through: {body}");
        assert!(r.text.is_empty());
        assert_eq!(world.record(&r).await.cost.0, 0, "a notification or a response costs nothing");
    }

    let unknown = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/teleport"}).to_string();
    let r = world.mcp(Some(&key), "probe/1.0.0", &unknown, &[]).await;
    assert_eq!(r.status, 200, "the agent's answer passes through");
    assert_eq!((rpc(&r)["id"].as_i64(), rpc(&r)["error"]["code"].as_i64()), (Some(5), Some(-32601)));
    let record = world.record(&r).await;
    assert_eq!((record.method.as_str(), record.error_code.as_deref()), ("tools/teleport", Some("agent_rpc_error")));

    for (tool, status, retry) in [("busy", 503, "7"), ("slow-down", 429, "9")] {
        let r = world.mcp(Some(&key), "probe/1.0.0", &tool_call(1, tool, json!({})), &[]).await;
        assert_eq!(r.status, status, "{tool}: {}", r.text);
        assert_eq!(r.header("retry-after").as_deref(), Some(retry), "the agent's Retry-After comes through");
        assert!(r.text.contains("detail"), "and its body");
        let record = world.record(&r).await;
        assert_eq!((record.http_status, record.error_code.as_deref()), (i64::from(status), Some("agent_http_error")));
        assert_eq!(world.store.usage_refused(&record.id).await.unwrap(), Some(false), "a failed call, not a refusal");
    }
    assert_eq!(world.balance(&consumer).await, before, "none of these is charged");
    world.assert_ledger_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_over_a_versions_in_flight_cap_get_503_with_retry_after() {
    let world = World::with(|c| c.max_in_flight_per_version = 2).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let waiting = gate.clone();
    let slow = serve(axum::Router::new().route(
        "/mcp",
        axum::routing::post(move || {
            let gate = waiting.clone();
            async move {
                let _permit = gate.acquire().await.unwrap();
                let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}});
                ([("content-type", "application/json")], answer.to_string())
            }
        }),
    ))
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) = world.listed(&publisher, &consumer, "slow", &format!("{slow}/mcp"), "0", priced()).await;
    let before = world.balance(&consumer).await;

    let call = || {
        let (http, base, key) = (world.http.clone(), world.base.clone(), key.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/slow/1.0.0/mcp"))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(tool_call(1, "work", json!({})))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    let held = [call(), call()];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let over = world.mcp(Some(&key), "slow/1.0.0", &tool_call(2, "work", json!({})), &[]).await;
    assert_eq!(over.status, 503, "{}", over.text);
    assert!(rpc(&over)["error"]["message"].as_str().unwrap().contains("over capacity"), "{}", over.text);
    assert_eq!(over.header("retry-after").as_deref(), Some("1"));
    assert!(over.header("x-ratelimit-limit-requests-minute").is_some());
    let record = world.record(&over).await;
    assert_eq!((record.error_code.as_deref(), record.cost.0), (Some("over_capacity"), 0));

    gate.add_permits(10);
    for call in held {
        assert_eq!(call.await.unwrap(), 200);
    }
    let after = world.mcp(Some(&key), "slow/1.0.0", &tool_call(3, "work", json!({})), &[]).await;
    assert_eq!(after.status, 200, "room again once calls end: {}", after.text);
    assert_eq!(before - world.balance(&consumer).await, 3 * 1_000_000, "the three answered calls are charged");
}
