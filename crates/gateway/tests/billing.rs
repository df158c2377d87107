//! What calls cost, computed independently here and compared to the nano-dollar: per-token
//! and per-request prices, the platform's fee, agent-reported usage against the platform's
//! own `cl100k_base` count (the >20% rule), free tiers, durability, and usage records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, inspector, tool_call};
use serde_json::{Value, json};
use tollgate_domain::Nanos;
use tollgate_store::calls::{SettledCall, UsageRecord};
use tollgate_store::ledger::{AccountKind, PLATFORM};

fn cl100k(text: &str) -> i64 {
    let bpe = tiktoken_rs::cl100k_base().unwrap();
    bpe.encode_ordinary(text).len() as i64
}

/// 2 USD per 1M input tokens, 4 per 1M output, 0.5 per 1M cache: 2,000 / 4,000 / 500
/// nano-USD a token.
fn per_token(name: &str) -> Value {
    json!([{"name": name, "pricing": {"model": "per_token", "input_per_million": "2.00", "output_per_million": "4.00", "cache_per_million": "0.50"}, "free_calls": 0, "free_reset": "lifetime"}])
}

/// A JSON-RPC result reporting `usage` whose text has exactly `output` cl100k tokens when
/// `output` is `None`… found by iterating: the report's own digits are part of the text.
fn answer_reporting(input: Option<i64>, output_scale: Option<f64>, cache: i64) -> String {
    let mut reported = 1;
    for _ in 0..10 {
        let usage = match input {
            Some(i) => json!({"input_tokens": i, "output_tokens": reported, "cache_tokens": cache}),
            None => json!({"output_tokens": reported, "cache_tokens": cache}),
        };
        let body = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "The answer, in a few words of text."}], "_meta": {"usage": usage}}}).to_string();
        let counted = cl100k(&body);
        let want = match output_scale {
            Some(scale) => (counted as f64 * scale).round() as i64,
            None => counted,
        };
        if want == reported {
            return body;
        }
        reported = want;
    }
    panic!("no fixed point");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_token_calls_are_billed_exactly_with_the_twenty_percent_rule() {
    let world = World::new().await;
    // Reports: exact output and +10% input (within 20%: billed as reported); +50% output
    // (divergent: billed the lower, counted); nothing (counted billed).
    let (upstream, _) = inspector(|body| {
        let input = cl100k(body);
        if body.contains("\"close\"") {
            (200, "application/json", answer_reporting(Some(input + input / 10), None, 7))
        } else if body.contains("\"inflated\"") {
            (200, "application/json", answer_reporting(Some(input), Some(1.5), 0))
        } else {
            (
                200,
                "application/json",
                json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "no report here"}]}})
                    .to_string(),
            )
        }
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "tokens", &format!("{upstream}/mcp"), "0", per_token("work")).await;
    let mut expected_total = 0;
    for mode in ["close", "inflated", "silent"] {
        let request = tool_call(1, "work", json!({"mode": mode, "text": "Some words to count, in English."}));
        let before = world.balance(&consumer).await;
        let reply = world.mcp(Some(&key), "tokens/1.0.0", &request, &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let record = world.record(&reply).await;
        let (input, output) = (cl100k(&request), cl100k(&reply.text));
        assert_eq!(
            (record.counted_input_tokens, record.counted_output_tokens),
            (input, output),
            "{mode}: the platform's count"
        );
        let (billed_in, billed_out, cache, divergent) = match mode {
            "close" => (input + input / 10, output, 7, false),
            "inflated" => (input, output, 0, true),
            _ => (input, output, 0, false),
        };
        assert_eq!(
            (record.input_tokens, record.output_tokens, record.cache_tokens),
            (billed_in, billed_out, cache),
            "{mode}"
        );
        assert_eq!(record.divergent, divergent, "{mode}");
        // Exact: 2,000 / 4,000 / 500 nano-USD per token (no rounding needed at these prices).
        let cost = billed_in * 2_000 + billed_out * 4_000 + cache * 500;
        assert_eq!(record.cost.0, cost, "{mode}");
        assert_eq!(before - world.balance(&consumer).await, cost, "{mode}");
        // The platform keeps 20% (rounded half-up), the publisher the rest.
        assert_eq!(record.fee.0, (cost * 2000 + 5000) / 10_000, "{mode}");
        expected_total += cost;
    }
    let earnings = world.store.ledger_account(AccountKind::PublisherEarnings, &publisher.org_id).await.unwrap();
    let revenue = world.store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await.unwrap();
    assert_eq!(earnings.balance.0 + revenue.balance.0, expected_total);
    world.assert_ledger_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounding_is_half_up_once_per_call() {
    let world = World::new().await;
    let (upstream, _) = inspector(|_| {
        let usage = json!({"input_tokens": 3, "output_tokens": 3, "cache_tokens": 0});
        (
            200,
            "application/json",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [], "_meta": {"usage": usage}}}).to_string(),
        )
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    // 0.000000167 USD per 1M tokens: 3 input + 3 output tokens = 1.002 nano-USD → 1.
    let pricing = json!([{"name": "w", "pricing": {"model": "per_token", "input_per_million": "0.000000167", "output_per_million": "0.000000167"}, "free_calls": 0, "free_reset": "lifetime"}]);
    let (_, _, key) = world.listed(&publisher, &consumer, "tiny", &format!("{upstream}/mcp"), "0", pricing).await;
    let reply = world.mcp(Some(&key), "tiny/1.0.0", &tool_call(1, "w", json!({})), &[]).await;
    let record = world.record(&reply).await;
    // The report (3 and 3) diverges from the real count, so the lower counts are billed;
    // either way each is a whole number of tokens priced exactly and rounded once.
    let numerator = (record.input_tokens + record.output_tokens) as i128 * 167;
    let expected = (numerator + 500_000) / 1_000_000;
    assert_eq!(record.cost.0 as i128, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_calls_are_used_only_by_successful_calls() {
    let world = World::new().await;
    let (upstream, _) = inspector(|body| {
        if body.contains("\"fail\"") {
            (
                200,
                "application/json",
                json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "no"}}).to_string(),
            )
        } else {
            (200, "application/json", json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}).to_string())
        }
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let functions = json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.01"}, "free_calls": 2, "free_reset": "lifetime"}]);
    let (_, _, key) = world.listed(&publisher, &consumer, "freebie", &format!("{upstream}/mcp"), "0", functions).await;
    let before = world.balance(&consumer).await;
    let mut records = Vec::new();
    for arguments in [json!({}), json!({"mode": "fail"}), json!({}), json!({})] {
        let reply = world.mcp(Some(&key), "freebie/1.0.0", &tool_call(1, "work", arguments), &[]).await;
        records.push(world.record(&reply).await);
    }
    let flags: Vec<(bool, i64)> = records.iter().map(|r| (r.free_tier, r.cost.0)).collect();
    assert_eq!(
        flags,
        vec![(true, 0), (false, 0), (true, 0), (false, 10_000_000)],
        "free, failed (uses none), free, charged"
    );
    assert_eq!(before - world.balance(&consumer).await, 10_000_000);

    // Free calls are per org: another org starts with its own two.
    let other = world.person("o@example.com").await;
    let (_, _, other_key) = world.install(&other, "freebie").await;
    let reply = world.mcp(Some(&other_key), "freebie/1.0.0", &tool_call(1, "work", json!({})), &[]).await;
    assert!(world.record(&reply).await.free_tier);
}

/// A free-tier usage record of `org` for `function`, written through the real write path,
/// dated `created_at`.
fn past_free_call(template: &UsageRecord, created_at: i64) -> SettledCall {
    SettledCall {
        record: UsageRecord {
            id: format!("req_past_{created_at}"),
            created_at,
            free_tier: true,
            cost: Nanos::ZERO,
            ..template.clone()
        },
        charge: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_free_calls_come_back_each_month_and_lifetime_ones_do_not() {
    let world = World::new().await;
    let (upstream, _) = inspector(|_| {
        (200, "application/json", json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}).to_string())
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let functions = json!([
        {"name": "monthly", "pricing": {"model": "per_request", "price": "0.01"}, "free_calls": 1, "free_reset": "monthly"},
        {"name": "lifetime", "pricing": {"model": "per_request", "price": "0.01"}, "free_calls": 1, "free_reset": "lifetime"}
    ]);
    let (_, _, key) = world.listed(&publisher, &consumer, "periodic", &format!("{upstream}/mcp"), "0", functions).await;
    // A template record for this org and agent, from a real (priced) call of another name.
    let probe = world.mcp(Some(&key), "periodic/1.0.0", &tool_call(1, "unlisted", json!({})), &[]).await;
    let template = world.record(&probe).await;
    // Each function's one free call was used last month.
    let now = tollgate_domain::time::now_ms();
    let last_month = tollgate_domain::time::utc_month_start(now) - 86_400_000;
    for name in ["monthly", "lifetime"] {
        let mut past = past_free_call(&template, last_month);
        past.record.id = format!("req_past_{name}");
        past.record.function_name = name.into();
        assert_eq!(world.store.settle_calls(&[past]).await.unwrap().records, 1);
    }
    let monthly = world.mcp(Some(&key), "periodic/1.0.0", &tool_call(2, "monthly", json!({})), &[]).await;
    let lifetime = world.mcp(Some(&key), "periodic/1.0.0", &tool_call(3, "lifetime", json!({})), &[]).await;
    let (monthly, lifetime) = (world.record(&monthly).await, world.record(&lifetime).await);
    assert_eq!((monthly.free_tier, monthly.cost.0), (true, 0), "a new month, a new free call");
    assert_eq!((lifetime.free_tier, lifetime.cost.0), (false, 10_000_000), "a lifetime free call does not come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_durability_commits_the_charge_before_the_response_ends() {
    let world = World::with(|c| c.durability = tollgate_gateway::Durability::Sync).await;
    let (upstream, _) = inspector(|_| {
        (200, "application/json", json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}).to_string())
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let functions = json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.01"}, "free_calls": 0, "free_reset": "lifetime"}]);
    let (_, _, key) = world.listed(&publisher, &consumer, "durable", &format!("{upstream}/mcp"), "0", functions).await;
    for i in 0..5 {
        let reply = world.mcp(Some(&key), "durable/1.0.0", &tool_call(i, "work", json!({})), &[]).await;
        assert_eq!(reply.status, 200);
        // No flush: the record and its charge are already committed.
        let id = reply.header("x-request-id").unwrap();
        let (record, transfer) =
            world.store.usage_record(&id).await.unwrap().expect("committed before the response ended");
        assert_eq!(record.cost.0, 10_000_000);
        assert!(transfer.is_some(), "with its transfer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_records_hold_the_call_metadata_and_their_transfer() {
    let world = World::new().await;
    let (upstream, _) = inspector(|_| {
        (200, "application/json", json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}).to_string())
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let functions = json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.01"}, "free_calls": 0, "free_reset": "lifetime"}]);
    let (inst, key_id, key) =
        world.listed(&publisher, &consumer, "meta", &format!("{upstream}/mcp"), "0.0005", functions).await;
    let reply = world.mcp(Some(&key), "meta/latest", &tool_call(1, "work", json!({})), &[]).await;
    world.gateway.flush().await;
    let id = reply.header("x-request-id").unwrap();
    let (record, transfer) = world.store.usage_record(&id).await.unwrap().unwrap();
    assert_eq!(record.org_id, consumer.org_id);
    assert_eq!(record.user_id, consumer.user_id);
    assert_eq!((record.key_id.as_str(), record.installation_id.as_str()), (key_id.as_str(), inst.as_str()));
    assert_eq!(
        (record.version.as_str(), record.method.as_str(), record.function_name.as_str()),
        ("1.0.0", "tools/call", "work")
    );
    assert_eq!((record.http_status, record.error_code.as_deref()), (200, None));
    assert!(record.latency_ms >= 0 && record.created_at > 0);
    let transfers = world
        .store
        .account_transfers(
            &world.store.ledger_account(AccountKind::OrgCredit, &consumer.org_id).await.unwrap().id,
            10,
            0,
        )
        .await
        .unwrap();
    let charge = transfers.iter().find(|t| Some(&t.id) == transfer.as_ref()).expect("the record names its transfer");
    assert_eq!(charge.kind, "charge");
    assert_eq!(charge.amount.0 + record.fee.0, record.cost.0);
    // A notification costs nothing and is recorded as such.
    let note = world
        .mcp(
            Some(&key),
            "meta/1.0.0",
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
            &[],
        )
        .await;
    let note = world.record(&note).await;
    assert_eq!((note.method.as_str(), note.cost.0), ("notifications/initialized", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_durability_holds_the_last_frame_until_the_charge_is_committed() {
    use std::time::{Duration, Instant};
    let world = World::with(|c| c.durability = tollgate_gateway::Durability::Sync).await;
    // A JSON answer in two frames; the upstream ends the body well after the second.
    let handler = || async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let _ = tx.send(bytes::Bytes::from_static(b"{\"jsonrpc\": \"2.0\", \"id\": 1, ")).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(bytes::Bytes::from_static(b"\"result\": {\"content\": []}}")).await;
            tokio::time::sleep(Duration::from_millis(800)).await;
        });
        axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::new(common::ChannelBody(rx)))
            .unwrap()
    };
    let upstream = common::serve(axum::Router::new().route("/mcp", axum::routing::post(handler))).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let functions = json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.01"}, "free_calls": 0, "free_reset": "lifetime"}]);
    let (_, _, key) = world.listed(&publisher, &consumer, "durable", &format!("{upstream}/mcp"), "0", functions).await;

    let started = Instant::now();
    let mut response = world
        .http
        .post(format!("{}/durable/1.0.0/mcp", world.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(tool_call(1, "work", json!({})))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut text = String::new();
    let mut first_at = None;
    while serde_json::from_str::<Value>(&text).is_err() {
        let chunk = response.chunk().await.unwrap().expect("the answer completes");
        first_at.get_or_insert(started.elapsed());
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The moment the answer is complete in the client's hands, its charge is committed.
    let (record, transfer) = world.store.usage_record(&id).await.unwrap().expect("committed before the last frame");
    assert_eq!((record.cost.0, transfer.is_some()), (10_000_000, true));
    assert!(started.elapsed() >= Duration::from_millis(800), "the last frame waited for the upstream's end");
    assert!(first_at.unwrap() < Duration::from_millis(700), "earlier frames were not held back: {first_at:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_durability_streams_events_before_the_answer_at_once_and_the_answer_after_the_commit() {
    use std::time::{Duration, Instant};
    let world = World::with(|c| c.durability = tollgate_gateway::Durability::Sync).await;
    // A progress event, a long pause, then the answer; the stream ends a while after it.
    let handler = || async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let progress = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n";
            let _ = tx.send(bytes::Bytes::from_static(progress.as_bytes())).await;
            tokio::time::sleep(Duration::from_millis(600)).await;
            let answer = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n";
            let _ = tx.send(bytes::Bytes::from_static(answer.as_bytes())).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        });
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(axum::body::Body::new(common::ChannelBody(rx)))
            .unwrap()
    };
    let upstream = common::serve(axum::Router::new().route("/mcp", axum::routing::post(handler))).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let functions = json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.01"}, "free_calls": 0, "free_reset": "lifetime"}]);
    let (_, _, key) = world.listed(&publisher, &consumer, "streamed", &format!("{upstream}/mcp"), "0", functions).await;

    let started = Instant::now();
    let mut response = world
        .http
        .post(format!("{}/streamed/1.0.0/mcp", world.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(tool_call(1, "work", json!({})))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut text = String::new();
    while !text.contains("notifications/progress") {
        text.push_str(&String::from_utf8_lossy(&response.chunk().await.unwrap().expect("the progress event")));
    }
    assert!(started.elapsed() < Duration::from_millis(500), "the progress event was not held back");
    while !text.contains("\"result\"") {
        text.push_str(&String::from_utf8_lossy(&response.chunk().await.unwrap().expect("the answer")));
    }
    // The answer is in the client's hands only once its charge is committed.
    let (record, transfer) = world.store.usage_record(&id).await.unwrap().expect("committed before the answer");
    assert_eq!((record.cost.0, transfer.is_some()), (10_000_000, true));
    assert!(started.elapsed() >= Duration::from_millis(900), "the answer waited for the stream's end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_members_are_settled_each_at_their_own_price() {
    let world = World::new().await;
    let members = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"work"}}"#,
        r#"{"jsonrpc":"2.0","id":"three","method":"tools/call","params":{"name":"fail"}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"tokens","arguments":{"text":"count me"}}}"#,
    ];
    let batch = format!("[{}]", members.join(","));
    let answers = [
        r#"{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"four words of output"}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#,
        r#"{"jsonrpc":"2.0","id":"three","error":{"code":-32603,"message":"broke"}}"#,
        r#"{"jsonrpc":"2.0","id":2,"result":{"content":[]}}"#,
    ];
    let reply_text = format!("[{}]", answers.join(","));
    let reply_for_upstream = reply_text.clone();
    let (upstream, _) = inspector(move |_| (200, "application/json", reply_for_upstream.clone())).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let mut functions = per_token("tokens");
    functions.as_array_mut().unwrap().extend([
        json!({"name": "work", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 0, "free_reset": "lifetime"}),
        json!({"name": "fail", "pricing": {"model": "per_request", "price": "0.005"}, "free_calls": 0, "free_reset": "lifetime"}),
    ]);
    let (_, _, key) =
        world.listed(&publisher, &consumer, "batched", &format!("{upstream}/mcp"), "0.0001", functions).await;
    let before = world.balance(&consumer).await;

    let reply = world.mcp(Some(&key), "batched/1.0.0", &batch, &[("mcp-protocol-version", "2025-03-26")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.text, reply_text, "the agent's answer passes unchanged");
    world.gateway.flush().await;
    let id = reply.header("x-request-id").unwrap();
    let record = |n: usize| {
        let (store, id) = (&world.store, format!("{id}.{n}"));
        async move { store.usage_record(&id).await.unwrap().unwrap_or_else(|| panic!("member {n} is recorded")).0 }
    };
    let (list, work, fail, tokens) = (record(1).await, record(2).await, record(3).await, record(4).await);
    assert!(world.store.usage_record(&format!("{id}.5")).await.unwrap().is_none(), "one record per request");
    assert_eq!((list.method.as_str(), list.cost.0), ("tools/list", 100_000), "the base fee");
    assert_eq!((work.function_name.as_str(), work.cost.0), ("work", 1_000_000), "its own price");
    assert_eq!(
        (fail.function_name.as_str(), fail.error_code.as_deref(), fail.cost.0),
        ("fail", Some("agent_rpc_error"), 0),
        "a failed member is free, and the others are not"
    );
    let (input, output) = (cl100k(members[4]), cl100k(answers[0]));
    assert_eq!((tokens.counted_input_tokens, tokens.counted_output_tokens), (input, output), "its own text and answer");
    assert_eq!(tokens.cost.0, input * 2_000 + output * 4_000);
    let total = 100_000 + 1_000_000 + tokens.cost.0;
    assert_eq!(before - world.balance(&consumer).await, total);
    let audit = world.store.settlement_audit().await.unwrap();
    assert_eq!((audit.mismatched, audit.orphans), (0, 0), "{audit:?}");
    world.assert_ledger_balances().await;

    // A batch the agent fails as a whole (HTTP 500) costs nothing at all.
    let (broken, _) = inspector(|_| (500, "application/json", "{\"detail\": \"down\"}".to_string())).await;
    world.version(&publisher, "batched", "1.0.1", &format!("{broken}/mcp"), "0.0001", per_token("tokens")).await;
    let before = world.balance(&consumer).await;
    let reply = world.mcp(Some(&key), "batched/1.0.1", &batch, &[("mcp-protocol-version", "2025-03-26")]).await;
    assert_eq!(reply.status, 500);
    world.gateway.flush().await;
    let first = world.store.usage_record(&format!("{}.1", reply.header("x-request-id").unwrap())).await.unwrap();
    assert_eq!(first.unwrap().0.error_code.as_deref(), Some("agent_http_error"));
    assert_eq!(world.balance(&consumer).await, before);
}
