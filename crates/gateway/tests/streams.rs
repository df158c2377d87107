//! Streamed responses through the gateway: event by event (never buffered), cut at the
//! safety caps and billed only for what was delivered, closed upstream when the client
//! hangs up, and failed (not charged) when the upstream breaks or goes silent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, event, sse_upstream, tool_call};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Per-token prices large enough that every token shows in the cost.
fn per_token() -> serde_json::Value {
    json!([{"name": "stream", "pricing": {"model": "per_token", "input_per_million": "10.00", "output_per_million": "30.00"}, "free_calls": 0, "free_reset": "lifetime"}])
}

fn cl100k(text: &str) -> i64 {
    let bpe = tiktoken_rs::cl100k_base().unwrap();
    bpe.encode_ordinary(text).len() as i64
}

fn progress(i: usize) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": i, "message": format!("step {i} of the work")}})
}

/// The JSON data of the last event in an SSE text.
fn last_event(text: &str) -> serde_json::Value {
    let event = text.trim_end().rsplit("\n\n").next().unwrap_or("");
    let data: String = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    serde_json::from_str(&data).unwrap_or(serde_json::Value::Null)
}

/// Opens a streaming call and returns the response to read incrementally.
async fn open(world: &World, key: &str, agent: &str, body: &str) -> reqwest::Response {
    world
        .http
        .post(format!("{}/{agent}/mcp", world.base))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Reads from `response` until `text` holds `events` complete events (or the stream ends).
async fn read_events(response: &mut reqwest::Response, text: &mut String, events: usize) {
    while text.matches("\n\n").count() < events {
        match tokio::time::timeout(Duration::from_secs(5), response.chunk()).await.expect("the next event arrives") {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_client_one_by_one() {
    let world = World::new().await;
    let got_first = Arc::new(Notify::new());
    let waiting = got_first.clone();
    let upstream = sse_upstream(move |_, tx| {
        let got_first = waiting.clone();
        async move {
            tx.send(event(&progress(1))).await.unwrap();
            // The second event is written only once the client has the first: a gateway
            // that buffered would never deliver either.
            got_first.notified().await;
            let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "done"}]}});
            tx.send(event(&result)).await.unwrap();
        }
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "streamer", &format!("{upstream}/mcp"), "0", per_token()).await;
    let mut response = open(&world, &key, "streamer/1.0.0", &tool_call(1, "stream", json!({}))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut text = String::new();
    read_events(&mut response, &mut text, 1).await;
    assert!(text.contains("step 1"), "{text}");
    assert!(!text.contains("done"));
    got_first.notify_one();
    read_events(&mut response, &mut text, 2).await;
    assert!(text.contains("\"done\""), "{text}");
    assert!(response.chunk().await.unwrap().is_none(), "the stream ends with the upstream's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_at_the_event_cap_is_billed_for_what_was_delivered() {
    let world = World::with(|c| c.max_stream_events = 5).await;
    let upstream = sse_upstream(|_, tx| async move {
        for i in 0..20 {
            if tx.send(event(&progress(i))).await.is_err() {
                return;
            }
        }
        // Never delivered: the usage report past the cap.
        let _ = tx.send(event(&json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [], "_meta": {"usage": {"input_tokens": 1, "output_tokens": 999999}}}}))).await;
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "streamer", &format!("{upstream}/mcp"), "0", per_token()).await;
    let before = world.balance(&consumer).await;
    let request = tool_call(1, "stream", json!({"topic": "caps"}));
    let reply = world.mcp(Some(&key), "streamer/1.0.0", &request, &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text.matches("\n\n").count(), 6, "five events, then the gateway's own: {}", reply.text);
    assert!(reply.text.contains("step 4") && !reply.text.contains("step 5"));
    let last = last_event(&reply.text);
    assert_eq!((last["id"].as_i64(), last["error"]["code"].as_i64()), (Some(1), Some(-32000)), "{last}");
    assert!(last["error"]["message"].as_str().unwrap().contains("limit"), "{last}");

    let record = world.record(&reply).await;
    let output: i64 = (0..5).map(|i| cl100k(&progress(i).to_string())).sum();
    let input = cl100k(&request);
    assert_eq!((record.counted_input_tokens, record.counted_output_tokens), (input, output));
    assert_eq!(
        (record.input_tokens, record.output_tokens),
        (input, output),
        "no report was delivered: the platform's counts are billed"
    );
    // 10 USD / 1M input, 30 USD / 1M output: 10,000 and 30,000 nano-USD a token.
    let cost = input * 10_000 + output * 30_000;
    assert_eq!(record.cost.0, cost);
    assert_eq!(before - world.balance(&consumer).await, cost);
    world.assert_ledger_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_at_the_byte_cap_ends_mid_event() {
    let world = World::with(|c| c.max_stream_bytes = 1000).await;
    let upstream = sse_upstream(|_, tx| async move {
        for i in 0..100 {
            if tx.send(event(&progress(i))).await.is_err() {
                return;
            }
        }
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "streamer", &format!("{upstream}/mcp"), "0", per_token()).await;
    let reply = world.mcp(Some(&key), "streamer/1.0.0", &tool_call(1, "stream", json!({})), &[]).await;
    let (upstream_bytes, gateway_event) = reply.text.split_at(1000);
    assert!(
        gateway_event.starts_with("\n\nevent: message\ndata: "),
        "the client gets exactly the cap, the cut event closed, then the gateway's error: {gateway_event:?}"
    );
    assert_eq!(last_event(&reply.text)["error"]["code"], -32000);
    let record = world.record(&reply).await;
    let whole_events = upstream_bytes.matches("\n\n").count();
    let output: i64 = (0..whole_events).map(|i| cl100k(&progress(i).to_string())).sum();
    assert_eq!(record.counted_output_tokens, output, "only the events delivered whole are counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_closes_the_upstream_stream() {
    let world = World::new().await;
    let closed = Arc::new(AtomicBool::new(false));
    let seen_closed = closed.clone();
    let upstream = sse_upstream(move |_, tx| {
        let closed = seen_closed.clone();
        async move {
            for i in 0.. {
                if tx.send(event(&progress(i))).await.is_err() {
                    closed.store(true, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "streamer", &format!("{upstream}/mcp"), "0", per_token()).await;
    let mut response = open(&world, &key, "streamer/1.0.0", &tool_call(1, "stream", json!({}))).await;
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut text = String::new();
    read_events(&mut response, &mut text, 3).await;
    drop(response);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !closed.load(Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "the upstream stream was not closed after the client left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.gateway.flush().await;
    let (record, _) = world.store.usage_record(&request_id).await.unwrap().expect("the call is recorded");
    assert!(record.counted_output_tokens > 0, "what was delivered is metered");
}

/// An upstream on a raw socket that answers every request with `response` and closes.
async fn raw_upstream(response: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_silent_upstream_streams_are_failed_calls() {
    let world = World::with(|c| c.idle_timeout = Duration::from_millis(300)).await;
    // A chunked stream that stops mid-chunk, without the final chunk.
    let broken = raw_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
          1a\r\ndata: {\"partial\": true}\n\n\r\n40\r\ndata: {\"cut",
    )
    .await;
    // Bytes that are not SSE at all, and not UTF-8.
    let garbage = raw_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 12\r\n\r\n\xff\xfe\x00data:\x80\n\r\r",
    )
    .await;
    let silent = sse_upstream(|_, tx| async move {
        tx.send(event(&progress(1))).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = tx.send(event(&progress(2))).await;
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, broken_key) =
        world.listed(&publisher, &consumer, "broken", &format!("{broken}/mcp"), "0.0001", per_token()).await;
    let (_, _, garbage_key) =
        world.listed(&publisher, &consumer, "garbage", &format!("{garbage}/mcp"), "0.0001", per_token()).await;
    let (_, _, silent_key) =
        world.listed(&publisher, &consumer, "silent", &format!("{silent}/mcp"), "0.0001", per_token()).await;
    let before = world.balance(&consumer).await;

    let mut response = open(&world, &broken_key, "broken/1.0.0", &tool_call(1, "stream", json!({}))).await;
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut text = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("partial"), "what arrived before the break is delivered: {text}");
    let last = last_event(&text);
    assert_eq!((last["id"].as_i64(), last["error"]["code"].as_i64()), (Some(1), Some(-32000)), "{text}");
    assert!(last["error"]["message"].as_str().unwrap().contains("broke off"), "{text}");
    world.gateway.flush().await;
    let (record, _) = world.store.usage_record(&request_id).await.unwrap().unwrap();
    assert_eq!(record.error_code.as_deref(), Some("upstream_stream_error"));
    assert_eq!(record.cost.0, 0);

    let garbled = world.mcp(Some(&garbage_key), "garbage/1.0.0", &tool_call(1, "stream", json!({})), &[]).await;
    assert_eq!(garbled.status, 200, "garbage is passed on as it came");
    let record = world.record(&garbled).await;
    assert_eq!(record.counted_output_tokens, 0, "no complete event, nothing counted");
    assert_eq!(record.error_code.as_deref(), Some("agent_no_answer"), "no JSON-RPC answer: a failed call: {record:?}");

    let started = std::time::Instant::now();
    let silent_reply = world.mcp(Some(&silent_key), "silent/1.0.0", &tool_call(1, "stream", json!({})), &[]).await;
    assert!(started.elapsed() < Duration::from_secs(2), "the idle timeout ends a silent stream");
    assert!(silent_reply.text.contains("step 1"));
    let last = last_event(&silent_reply.text);
    assert_eq!(last["error"]["code"], -32000, "{}", silent_reply.text);
    assert!(last["error"]["message"].as_str().unwrap().contains("silent"), "{}", silent_reply.text);
    let record = world.record(&silent_reply).await;
    assert_eq!(record.error_code.as_deref(), Some("upstream_idle_timeout"));
    assert_eq!(record.cost.0, 0);

    assert_eq!(world.balance(&consumer).await, before, "none of these calls costs anything");
    world.assert_ledger_balances().await;
}
