//! The gateway's limits and refusals: credits and holds (exact under concurrency), org
//! budgets, per-key daily limits, rate-limit headers, request-shape errors and upstream
//! failures — each with its status, message and headers, and none of them charged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, inspector, rpc, tool_call};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const PER_CALL: &str = "0.001";
const PER_CALL_NANOS: i64 = 1_000_000;

fn priced(name: &str) -> serde_json::Value {
    json!([{"name": name, "pricing": {"model": "per_request", "price": PER_CALL}, "free_calls": 0, "free_reset": "lifetime"}])
}

fn ok_answer(_: &str) -> (u16, &'static str, String) {
    (
        200,
        "application/json",
        json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "ok"}]}}).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_calls_never_spend_more_than_the_balance() {
    let world = World::with(|c| c.rate_limits = [0, 0, 0]).await;
    let (upstream, _) = inspector(ok_answer).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced("work")).await;
    world.set_balance(&consumer, 50 * PER_CALL_NANOS).await;

    let calls = (0..120).map(|i| {
        let world = &world;
        let key = key.clone();
        async move { world.mcp(Some(&key), "work/1.0.0", &tool_call(i, "work", json!({})), &[]).await }
    });
    let replies = join_all(calls.collect()).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<_> = replies.iter().filter(|r| r.status == 402).collect();
    assert_eq!(ok, 50, "exactly as many calls as the balance covers");
    assert_eq!(refused.len(), 70);
    assert!(
        refused
            .iter()
            .all(|r| rpc(r)["error"]["message"] == "insufficient credits" && rpc(r)["error"]["code"] == -32000)
    );
    assert_eq!(world.balance(&consumer).await, 0);
    world.assert_ledger_balances().await;
    let record = world.record(refused[0]).await;
    assert_eq!(
        (record.http_status, record.error_code.as_deref(), record.cost.0),
        (402, Some("insufficient_credits"), 0)
    );

    // The lease this replica took is released at shutdown; nothing stays pending.
    world.gateway.shutdown().await;
    let org =
        world.store.ledger_account(tollgate_store::ledger::AccountKind::OrgCredit, &consumer.org_id).await.unwrap();
    assert_eq!((org.balance.0, org.pending.0), (0, 0));
    world.assert_ledger_balances().await;
}

/// Runs futures concurrently; their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::Poll;
    let mut pinned: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => outputs[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(outputs.iter_mut().map(|o| o.take().unwrap()).collect()) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_budget_stops_spending_for_the_month() {
    let world = World::with(|c| c.rate_limits = [0, 0, 0]).await;
    let (upstream, _) = inspector(ok_answer).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced("work")).await;
    let (status, body) = world
        .api(Method::PUT, "/api/v1/billing/budget", Some(json!({"monthly_limit": "0.005"})), &consumer.token)
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");

    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..7 {
        let r = world.mcp(Some(&key), "work/1.0.0", &tool_call(i, "work", json!({})), &[]).await;
        statuses.push(r.status);
        last = Some(r);
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429], "five calls of 0.001 fit a 0.005 budget");
    let refused = last.unwrap();
    assert!(rpc(&refused)["error"]["message"].as_str().unwrap().contains("organization budget"));
    let retry: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    let now = tollgate_domain::time::now_ms();
    let until_next_month = (tollgate_domain::time::next_utc_month(now) - now) / 1000;
    assert!(
        (retry - until_next_month).abs() <= 2,
        "Retry-After runs to the first of next month ({retry} vs {until_next_month})"
    );
    assert_eq!(100_000_000_000 - world.balance(&consumer).await, 5 * PER_CALL_NANOS);
    assert_eq!(world.record(&refused).await.error_code.as_deref(), Some("budget_reached"), "the refusal is on record");

    // Raising the budget lets calls through again at once.
    world.api(Method::PUT, "/api/v1/billing/budget", Some(json!({"monthly_limit": "1.00"})), &consumer.token).await;
    assert_eq!(world.mcp(Some(&key), "work/1.0.0", &tool_call(9, "work", json!({})), &[]).await.status, 200);
    world.assert_ledger_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_daily_limits_count_requests_and_tokens() {
    let world = World::with(|c| c.rate_limits = [0, 0, 0]).await;
    let (upstream, _) = inspector(|_| {
        let usage = json!({"input_tokens": 5, "output_tokens": 40, "cache_tokens": 0});
        (
            200,
            "application/json",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [], "_meta": {"usage": usage}}}).to_string(),
        )
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (inst, key_id, key) =
        world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced("work")).await;
    let (status, _) = world
        .api(
            Method::PATCH,
            &format!("/api/v1/keys/{key_id}"),
            Some(json!({"daily_limits": {"requests": 3, "input_tokens": 0, "output_tokens": 0, "cache_tokens": 0}})),
            &consumer.token,
        )
        .await;
    assert_eq!(status, 200);
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..4 {
        let r = world.mcp(Some(&key), "work/1.0.0", &tool_call(i, "work", json!({})), &[]).await;
        statuses.push(r.status);
        last = Some(r);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    let refused = last.unwrap();
    assert!(rpc(&refused)["error"]["message"].as_str().unwrap().contains("daily limit"));
    let retry: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    let now = tollgate_domain::time::now_ms();
    let until_midnight = (tollgate_domain::time::next_utc_midnight(now) - now) / 1000;
    assert!((retry - until_midnight).abs() <= 2, "Retry-After runs to 00:00 UTC ({retry} vs {until_midnight})");
    assert_eq!(
        refused.header("x-ratelimit-limit-requests-minute").as_deref(),
        Some("9223372036854775807"),
        "no rate limit is configured here: unlimited windows say so"
    );

    // A second key of the same installation has limits of its own: output tokens.
    let (status, second) = world
        .api(Method::POST, &format!("/api/v1/installations/{inst}/keys"), Some(json!({"name": "tokens", "daily_limits": {"requests": 0, "input_tokens": 0, "output_tokens": 50, "cache_tokens": 0}})), &consumer.token)
        .await;
    assert_eq!(status, 201, "{second}");
    let second = second["key"].as_str().unwrap();
    let statuses: Vec<u16> = {
        let mut s = Vec::new();
        for i in 0..3 {
            s.push(world.mcp(Some(second), "work/1.0.0", &tool_call(i, "work", json!({})), &[]).await.status);
            world.gateway.flush().await;
        }
        s
    };
    assert_eq!(statuses, vec![200, 200, 429], "40 + 40 output tokens reach the limit of 50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_come_with_every_answer_past_the_key() {
    let world = World::with(|c| c.rate_limits = [2, 100, 1000]).await;
    let (upstream, _) = inspector(ok_answer).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced("work")).await;
    let first = world.mcp(Some(&key), "work/1.0.0", &tool_call(1, "work", json!({})), &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-ratelimit-limit-requests-minute").as_deref(), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining-requests-minute").as_deref(), Some("1"));
    assert_eq!(first.header("x-ratelimit-limit-requests-hour").as_deref(), Some("100"));
    assert_eq!(first.header("x-ratelimit-remaining-requests-day").as_deref(), Some("999"));
    let reset = first.header("x-ratelimit-reset-requests-minute").unwrap();
    let secs: u64 = reset.strip_suffix('s').unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{reset}");
    // A call the agent fails still counts and still carries the headers.
    assert_eq!(
        world
            .mcp(Some(&key), "work/1.0.0", &tool_call(2, "work", json!({})), &[])
            .await
            .header("x-ratelimit-remaining-requests-minute")
            .as_deref(),
        Some("0")
    );
    let limited = world.mcp(Some(&key), "work/1.0.0", &tool_call(3, "work", json!({})), &[]).await;
    assert_eq!(limited.status, 429);
    assert!(rpc(&limited)["error"]["message"].as_str().unwrap().contains("rate limit"));
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(limited.header("x-ratelimit-remaining-requests-minute").as_deref(), Some("0"));
    assert_eq!(
        limited.header("x-ratelimit-remaining-requests-hour").as_deref(),
        Some("98"),
        "a refused call is not counted"
    );
    // Limits are per member per agent: another member of another org is not affected.
    let other = world.person("o@example.com").await;
    let (_, _, other_key) = world.install(&other, "work").await;
    assert_eq!(world.mcp(Some(&other_key), "work/1.0.0", &tool_call(4, "work", json!({})), &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_leaves_only_so_many_refusals_on_record_a_minute() {
    let world = World::with(|c| {
        c.rate_limits = [1, 0, 0];
        c.max_refusals_recorded_per_minute = 3;
    })
    .await;
    let (upstream, _) = inspector(ok_answer).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced("work")).await;
    assert_eq!(world.mcp(Some(&key), "work/1.0.0", &tool_call(1, "work", json!({})), &[]).await.status, 200);
    let minute = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60;
    let first_minute = minute();
    let mut ids = Vec::new();
    for n in 2..8 {
        let limited = world.mcp(Some(&key), "work/1.0.0", &tool_call(n, "work", json!({})), &[]).await;
        assert_eq!(limited.status, 429, "every refusal is answered the same way");
        ids.push(limited.header("x-request-id").expect("a request id on every refusal"));
    }
    world.gateway.flush().await;
    let mut recorded = Vec::new();
    for id in &ids {
        recorded.push(world.store.usage_record(id).await.unwrap().is_some());
    }
    if minute() == first_minute {
        assert_eq!(recorded, [true, true, true, false, false, false], "the first three refusals of the minute");
    } else {
        assert!(recorded.iter().take(3).all(|r| *r), "the quota starts anew each minute: {recorded:?}");
    }
    // Another key of another member has its own quota.
    let other = world.person("o@example.com").await;
    let (_, _, other_key) = world.install(&other, "work").await;
    world.mcp(Some(&other_key), "work/1.0.0", &tool_call(9, "work", json!({})), &[]).await;
    let limited = world.mcp(Some(&other_key), "work/1.0.0", &tool_call(10, "work", json!({})), &[]).await;
    assert_eq!(limited.status, 429);
    assert_eq!(world.record(&limited).await.error_code.as_deref(), Some("rate_limited"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_before_anything_is_charged() {
    let world = World::with(|c| c.max_request_bytes = 64 * 1024).await;
    let (upstream, seen) = inspector(ok_answer).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0.0001", priced("work")).await;
    let before = world.balance(&consumer).await;

    let huge = tool_call(1, "work", json!({"text": "x".repeat(100 * 1024)}));
    let too_big = world.mcp(Some(&key), "work/1.0.0", &huge, &[]).await;
    assert_eq!(too_big.status, 413);
    assert!(rpc(&too_big)["error"]["message"].as_str().unwrap().contains("larger than"));

    // (body, headers, JSON-RPC error code, what the message says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, i64, &'a str);
    let cases: Vec<Case> = vec![
        ("{\"jsonrpc\": ", vec![], -32700, "not valid JSON"),
        ("\u{0}\u{1}garbage", vec![], -32700, "not valid JSON"),
        ("{\"hello\": 1}", vec![], -32600, "jsonrpc"),
        ("[]", vec![], -32600, "empty batch"),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            vec![("mcp-protocol-version", "2025-06-18")],
            -32600,
            "does not allow JSON-RPC batches",
        ),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            vec![("mcp-protocol-version", "2026-07-28")],
            -32600,
            "does not allow JSON-RPC batches",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            vec![("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call")],
            -32600,
            "Mcp-Method header",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"work"}}"#,
            vec![("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "other")],
            -32600,
            "Mcp-Name header",
        ),
    ];
    for (body, headers, code, says) in cases {
        let r = world.mcp(Some(&key), "work/1.0.0", body, &headers).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(rpc(&r)["error"]["code"], code, "{body}");
        assert!(rpc(&r)["error"]["message"].as_str().unwrap().contains(says), "{body}: {}", r.text);
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the agent");
    assert_eq!(world.balance(&consumer).await, before, "nothing was charged");

    // In the 2025-03-26 era, batches are allowed and each request in it is priced.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "work"}},
        {"jsonrpc": "2.0", "method": "notifications/progress"}
    ])
    .to_string();
    let r = world.mcp(Some(&key), "work/1.0.0", &batch, &[("mcp-protocol-version", "2025-03-26")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // This agent answers id 1 only: the tools/list is charged its base fee, the unanswered
    // tool call nothing.
    assert_eq!(before - world.balance(&consumer).await, 100_000, "only the answered member is charged");
    let id = r.header("x-request-id").unwrap();
    let (listed, _) = world.store.usage_record(&format!("{id}.1")).await.unwrap().unwrap();
    let (unanswered, _) = world.store.usage_record(&format!("{id}.2")).await.unwrap().unwrap();
    assert_eq!((listed.method.as_str(), listed.cost.0), ("tools/list", 100_000));
    assert_eq!((unanswered.error_code.as_deref(), unanswered.cost.0), (Some("agent_no_answer"), 0));
    // Each refusal above is on the org's usage (free, with its status and code).
    world.gateway.flush().await;
    let (status, audit) = world.api(Method::GET, "/api/v1/usage/audit?status=error", None, &consumer.token).await;
    assert_eq!(status, 200, "{audit}");
    let text = audit.to_string();
    for code in ["body_too_large", "parse_error", "invalid_request"] {
        assert!(text.contains(code), "{code} in the audit log: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_slow_and_broken_agents_are_failed_calls() {
    let world = World::with(|c| {
        c.first_byte_timeout = Duration::from_millis(300);
        c.connect_timeout = Duration::from_millis(300);
    })
    .await;
    // Answers after 800 ms (asleep without holding a thread).
    let slow = common::serve(axum::Router::new().route(
        "/mcp",
        axum::routing::post(|| async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            let (_, content_type, body) = ok_answer("");
            ([("content-type", content_type)], body)
        }),
    ))
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    // Port 9 on loopback: nothing listens there.
    let (_, _, down_key) =
        world.listed(&publisher, &consumer, "down", "http://127.0.0.1:9/mcp", "0.0001", priced("work")).await;
    let (_, _, slow_key) =
        world.listed(&publisher, &consumer, "slow", &format!("{slow}/mcp"), "0.0001", priced("work")).await;
    let before = world.balance(&consumer).await;

    let down = world.mcp(Some(&down_key), "down/1.0.0", &tool_call(1, "work", json!({})), &[]).await;
    assert_eq!(down.status, 503, "{}", down.text);
    assert!(rpc(&down)["error"]["message"].as_str().unwrap().contains("unreachable"));
    assert_eq!(world.record(&down).await.error_code.as_deref(), Some("upstream_unavailable"));

    let timed_out = world.mcp(Some(&slow_key), "slow/1.0.0", &tool_call(1, "work", json!({})), &[]).await;
    assert_eq!(timed_out.status, 504, "{}", timed_out.text);
    assert_eq!(world.record(&timed_out).await.error_code.as_deref(), Some("upstream_timeout"));

    let health =
        world.http.get(format!("{}/down/1.0.0/health", world.base)).bearer_auth(&down_key).send().await.unwrap();
    assert_eq!(health.status(), 503);
    assert_eq!(world.balance(&consumer).await, before, "failed calls cost nothing, not even the base fee");
    world.assert_ledger_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_reach_the_agent_and_cost_the_base_fee() {
    let world = World::new().await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    world.publish(&publisher, "echo", "echo", "0.0002", priced("echo")).await;
    let (_, _, key) = world.install(&consumer, "echo").await;
    let before = world.balance(&consumer).await;
    let health = world.http.get(format!("{}/echo/latest/health", world.base)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("x-ratelimit-limit-requests-minute").is_some());
    assert_eq!(health.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    assert_eq!(before - world.balance(&consumer).await, 200_000);
    let unauthenticated = world.http.get(format!("{}/echo/latest/health", world.base)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    // The legacy session stream and session end need a key too.
    let get = world.http.get(format!("{}/echo/1.0.0/mcp", world.base)).send().await.unwrap();
    assert_eq!(get.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orgs_own_rate_limits_apply_to_the_next_gateway_call() {
    let world = World::with(|c| c.rate_limits = [100, 1000, 10_000]).await;
    let (upstream, _) = inspector(ok_answer).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) =
        world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced("work")).await;
    let path = format!("/api/v1/orgs/{}/rate-limits", consumer.org_id);
    let (status, shown) = world.api(Method::GET, &path, None, &consumer.token).await;
    assert_eq!((status, shown), (200, json!({"minute": null, "hour": null, "day": null})), "operator defaults");
    let first = world.mcp(Some(&key), "work/1.0.0", &tool_call(1, "work", json!({})), &[]).await;
    assert_eq!(first.header("x-ratelimit-limit-requests-minute").as_deref(), Some("100"));

    // Bad input changes nothing.
    for bad in
        [json!({"minute": -1}), json!({"hour": 1_000_000_001_i64}), json!({"minute": "ten"}), json!({"weekly": 5})]
    {
        let (status, body) = world.api(Method::PUT, &path, Some(bad.clone()), &consumer.token).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let outsider = world.person("o@example.com").await;
    let (status, _) = world.api(Method::PUT, &path, Some(json!({"minute": 1000})), &outsider.token).await;
    assert_eq!(status, 404, "another org's limits are not there for outsiders");
    assert_eq!(world.api(Method::GET, &path, None, &consumer.token).await.1["minute"], json!(null));

    let (status, set) =
        world.api(Method::PUT, &path, Some(json!({"minute": 2, "hour": null, "day": 0})), &consumer.token).await;
    assert_eq!((status, set.clone()), (200, json!({"minute": 2, "hour": null, "day": 0})));
    assert_eq!(world.api(Method::GET, &path, None, &consumer.token).await.1, set);
    let second = world.mcp(Some(&key), "work/1.0.0", &tool_call(2, "work", json!({})), &[]).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-ratelimit-limit-requests-minute").as_deref(), Some("2"), "the org's own limit");
    assert_eq!(second.header("x-ratelimit-limit-requests-hour").as_deref(), Some("1000"), "null: the default");
    assert_eq!(second.header("x-ratelimit-limit-requests-day").as_deref(), Some("9223372036854775807"), "0: unlimited");
    // The first call (under the default) counts in the same minute: the third is over 2.
    let third = world.mcp(Some(&key), "work/1.0.0", &tool_call(3, "work", json!({})), &[]).await;
    if third.header("x-ratelimit-reset-requests-minute").as_deref() != Some("60s") {
        assert_eq!(third.status, 429, "{}", third.text);
    }

    let (status, _) = world.api(Method::PUT, &path, Some(json!({"minute": 0})), &consumer.token).await;
    assert_eq!(status, 200);
    let unlimited = world.mcp(Some(&key), "work/1.0.0", &tool_call(4, "work", json!({})), &[]).await;
    assert_eq!(unlimited.status, 200, "{}", unlimited.text);
    assert_eq!(unlimited.header("x-ratelimit-limit-requests-minute").as_deref(), Some("9223372036854775807"));
}
