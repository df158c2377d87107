//! Metered MCP calls through the gateway, against real upstreams: exact billing, the
//! forwarding rules, and every refusal of SPEC §3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, initialize, inspector, rpc, tool_call};
use reqwest::Method;
use serde_json::json;

const NANOS: i64 = 1_000_000_000;

/// A 2025-era session: initialize, then notifications/initialized; returns the session id.
async fn session(world: &World, key: &str, agent: &str) -> String {
    let init = world.mcp(Some(key), agent, &initialize(1), &[]).await;
    assert_eq!(init.status, 200, "{}", init.text);
    let id = init.header("mcp-session-id").expect("the upstream's Mcp-Session-Id comes back");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let ack =
        world.mcp(Some(key), agent, &note, &[("mcp-session-id", &id), ("mcp-protocol-version", "2025-06-18")]).await;
    assert_eq!(ack.status, 202, "notifications get the upstream's 202: {}", ack.text);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mcp_calls_are_billed_exactly() {
    let world = World::new().await;
    let publisher = world.person("pub@example.com").await;
    let consumer = world.person("con@example.com").await;
    world
        .publish(&publisher, "echo", "echo", "0.0001", json!([{"name": "echo", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 0, "free_reset": "lifetime"}]))
        .await;
    let (_, _, key) = world.install(&consumer, "echo").await;
    let before = world.balance(&consumer).await;
    assert_eq!(before, 100 * NANOS);

    let sid = session(&world, &key, "echo/1.0.0").await;
    let headers = [("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-06-18")];
    let list = world
        .mcp(
            Some(&key),
            "echo/1.0.0",
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string(),
            &headers,
        )
        .await;
    assert_eq!(list.status, 200);
    assert!(rpc(&list)["result"]["tools"].to_string().contains("echo"));
    let call = world
        .mcp(Some(&key), "echo/latest", &tool_call(3, "echo", json!({"text": "hello through the gateway"})), &headers)
        .await;
    assert_eq!(call.status, 200, "{}", call.text);
    assert_eq!(rpc(&call)["result"]["content"][0]["text"], "hello through the gateway");
    for name in [
        "x-ratelimit-limit-requests-minute",
        "x-ratelimit-remaining-requests-hour",
        "x-ratelimit-reset-requests-day",
        "x-request-id",
    ] {
        assert!(call.header(name).is_some(), "{name} on every response");
    }

    // initialize and tools/list cost the base fee each; the tool call its price; the
    // notification nothing. 2 × 0.0001 + 0.001 = 0.0012 USD.
    assert_eq!(before - world.balance(&consumer).await, 1_200_000);
    let (sum, consistent) = world.store.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true));
    // The publisher earned the price less the platform's 20%.
    let earnings = world
        .store
        .ledger_account(tollgate_store::ledger::AccountKind::PublisherEarnings, &publisher.org_id)
        .await
        .unwrap();
    assert_eq!(earnings.balance.0, 960_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_rules_and_failed_calls() {
    let world = World::new().await;
    let (upstream, seen) = inspector(|body| {
        if body.contains("\"fail\"") {
            (200, "application/json", json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "boom"}}).to_string())
        } else if body.contains("\"tool-error\"") {
            (200, "application/json", json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [], "isError": true}}).to_string())
        } else if body.contains("\"http-500\"") {
            (500, "application/json", json!({"detail": "upstream broke"}).to_string())
        } else {
            let usage = json!({"input_tokens": 30, "output_tokens": 20, "cache_tokens": 10});
            (200, "application/json", json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "fine"}], "_meta": {"usage": usage}}}).to_string())
        }
    })
    .await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    world.api(Method::POST, "/api/v1/agents", Some(json!({"slug": "probe", "name": "Probe", "description": "d", "category": "devtools",
        "protocol": "mcp", "platforms": [], "capabilities": [], "tags": [], "use_cases": [], "governance": {}, "support": {}})), &publisher.token).await;
    world
        .version(&publisher, "probe", "1.0.0", &format!("{upstream}/mcp"), "0", json!([{"name": "work", "pricing": {"model": "per_token",
            "input_per_million": "2.00", "output_per_million": "4.00", "cache_per_million": "0.50"}, "free_calls": 0, "free_reset": "lifetime"}]))
        .await;
    let (_, _, key) = world.install(&consumer, "probe").await;
    let before = world.balance(&consumer).await;

    let ok = world
        .mcp(
            Some(&key),
            "probe/1.0.0",
            &tool_call(1, "work", json!({"q": "x"})),
            &[("mcp-session-id", "s-1"), ("mcp-param-region", "eu")],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(
        request.headers["authorization"], "Bearer publisher-upstream-secret",
        "the publisher's credential replaces the key"
    );
    assert!(!format!("{:?}", request.headers).contains(&key), "the consumer's key never reaches the agent");
    assert_eq!(request.headers["host"], upstream.trim_start_matches("http://"), "Host is the upstream's authority");
    assert_eq!(request.headers["mcp-session-id"], "s-1");
    assert_eq!(request.headers["mcp-param-region"], "eu");
    assert!(request.headers["x-tollgate-install"].to_str().unwrap().starts_with("it_"));
    assert_eq!(request.headers["x-request-id"].to_str().unwrap(), ok.header("x-request-id").unwrap());
    assert_eq!(request.body, tool_call(1, "work", json!({"q": "x"})), "the body passes unchanged");
    // Billed on the agent's report unless the platform's own count differs by over 20%.
    world.gateway.flush().await;
    let spent = before - world.balance(&consumer).await;
    assert!(spent > 0, "a successful per-token call is charged");

    for marker in ["fail", "tool-error", "http-500"] {
        let before = world.balance(&consumer).await;
        let r = world.mcp(Some(&key), "probe/1.0.0", &tool_call(1, marker, json!({})), &[]).await;
        assert_eq!(world.balance(&consumer).await, before, "a failed call ({marker}) costs nothing");
        if marker == "http-500" {
            assert_eq!(r.status, 500, "the upstream's status passes through");
            assert!(r.text.contains("upstream broke"), "and its error body");
        }
    }
    let (sum, consistent) = world.store.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status_and_message() {
    let world = World::with(|c| c.rate_limits = [3, 1000, 0]).await;
    let publisher = world.person("p2@example.com").await;
    let consumer = world.person("c2@example.com").await;
    let price = json!([{"name": "echo", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 0, "free_reset": "lifetime"}]);
    world.publish(&publisher, "echo", "echo", "0", price.clone()).await;
    world.publish(&publisher, "other", "echo", "0", price).await;
    let (inst, key_id, key) = world.install(&consumer, "echo").await;
    let body = initialize(1);

    let missing = world.mcp(None, "echo/1.0.0", &body, &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(rpc(&missing)["error"]["code"], -32000);
    let challenge = missing.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/echo/1.0.0/mcp\"",
            world.base
        )),
        "{challenge}"
    );
    // Before a member is known: the operator's limits, all remaining; unlimited as i64::MAX.
    assert_eq!(missing.header("x-ratelimit-limit-requests-minute").as_deref(), Some("3"));
    assert_eq!(missing.header("x-ratelimit-remaining-requests-minute").as_deref(), Some("3"));
    assert_eq!(missing.header("x-ratelimit-limit-requests-day").as_deref(), Some("9223372036854775807"));
    assert_eq!(missing.header("x-ratelimit-remaining-requests-day").as_deref(), Some("9223372036854775807"));
    assert!(missing.header("x-ratelimit-reset-requests-hour").unwrap().ends_with('s'));
    let metadata = world
        .http
        .get(format!("{}/.well-known/oauth-protected-resource/echo/1.0.0/mcp", world.base))
        .send()
        .await
        .unwrap();
    assert!(metadata.headers().get("x-ratelimit-limit-requests-minute").is_some());
    let metadata: serde_json::Value = metadata.json().await.unwrap();
    assert_eq!(metadata["resource"], format!("{}/echo/1.0.0/mcp", world.base));
    assert!(metadata.get("authorization_servers").is_none(), "no authorization server is served: {metadata}");

    // The key is checked before the body is read: garbage without a key is 401, not 400.
    for garbage in ["{\"jsonrpc\": ", "[]", "\u{0}"] {
        let r = world.mcp(None, "echo/1.0.0", garbage, &[]).await;
        assert_eq!(r.status, 401, "{garbage:?}: {}", r.text);
        assert_eq!(world.mcp(Some("tgk_echo_wrong"), "echo/1.0.0", garbage, &[]).await.status, 401);
    }
    assert_eq!(world.mcp(Some("tgk_echo_wrong"), "echo/1.0.0", &body, &[]).await.status, 401);
    let account_token = world.mcp(Some(&consumer.token), "echo/1.0.0", &body, &[]).await;
    assert_eq!(account_token.status, 401);
    assert!(account_token.text.contains("account tokens"));
    let wrong_agent = world.mcp(Some(&key), "other/1.0.0", &body, &[]).await;
    assert_eq!(wrong_agent.status, 403, "a key works for its own agent only");
    assert_eq!(wrong_agent.header("x-ratelimit-remaining-requests-minute").as_deref(), Some("3"));
    assert_eq!(world.mcp(Some(&key), "echo/9.9.9", &body, &[]).await.status, 404);

    // Rate limit: 3 a minute (nothing above reached the limiter).
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let r = world.mcp(Some(&key), "echo/1.0.0", &body, &[]).await;
        statuses.push(r.status);
        last = Some(r);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    let limited = last.unwrap();
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() <= 60);
    assert_eq!(limited.header("x-ratelimit-remaining-requests-minute").as_deref(), Some("0"));
    // A malformed body from a known key: admitted first (here refused by the limiter, or —
    // in a new minute — read and refused as malformed).
    let malformed = world.mcp(Some(&key), "echo/1.0.0", "{\"jsonrpc\": ", &[]).await;
    assert!(matches!(malformed.status, 429 | 400), "{}", malformed.text);

    // Refusals once the key is known are in the org's usage: free, with status and code.
    let refused = world.record(&limited).await;
    assert_eq!((refused.http_status, refused.error_code.as_deref(), refused.cost.0), (429, Some("rate_limited"), 0));
    assert_eq!(refused.key_id, key_id);
    let wrong = world.record(&wrong_agent).await;
    assert_eq!((wrong.http_status, wrong.error_code.as_deref()), (403, Some("forbidden")));
    assert_eq!(world.store.usage_refused(&limited.header("x-request-id").unwrap()).await.unwrap(), Some(true));

    // Revoked key → 403; uninstalled agent → 403.
    world.api(Method::DELETE, &format!("/api/v1/keys/{key_id}"), None, &consumer.token).await;
    let revoked = world.mcp(Some(&key), "echo/1.0.0", &body, &[]).await;
    assert_eq!(revoked.status, 403, "revocation takes effect at once: {}", revoked.text);
    assert!(revoked.text.contains("revoked"), "{}", revoked.text);
    let (_, _, second_key) = {
        let (status, key) = world
            .api(
                Method::POST,
                &format!("/api/v1/installations/{inst}/keys"),
                Some(json!({"name": "k2"})),
                &consumer.token,
            )
            .await;
        assert_eq!(status, 201, "{key}");
        ((), (), key["key"].as_str().unwrap().to_string())
    };
    let (status, _) = world.api(Method::DELETE, &format!("/api/v1/installations/{inst}"), None, &consumer.token).await;
    assert!((200..300).contains(&status), "{status}");
    let uninstalled = world.mcp(Some(&second_key), "echo/1.0.0", &body, &[]).await;
    assert_eq!(uninstalled.status, 403, "uninstalling revokes its keys at once: {}", uninstalled.text);

    // Retired → 410.
    let (_, _, other_key) = world.install(&consumer, "other").await;
    world
        .api(Method::PATCH, "/api/v1/agents/other/versions/1.0.0", Some(json!({"status": "retired"})), &publisher.token)
        .await;
    let retired = world.mcp(Some(&other_key), "other/1.0.0", &body, &[]).await;
    assert_eq!(retired.status, 410);
    assert_eq!(world.record(&retired).await.error_code.as_deref(), Some("version_retired"));
}
