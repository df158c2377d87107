//! Conformance with the official MCP Python SDK (`mcp`, pinned in
//! `tests/conformance/requirements.txt`): an SDK server is a published agent's upstream and
//! the SDK client calls it through the real `tollgate` binary's gateway, in both protocol
//! eras (2025-xx sessions and 2026-07-28 stateless requests), including a streaming tool.
//! The consumer's balance must drop by exactly what this test prices, from the published
//! prices and the client's own record of every HTTP exchange it made.
//!
//! The Python comes from `TOLLGATE_TEST_PYTHON`, else `target/conformance-venv/bin/python`
//! (`.ci/run` makes that venv). Without it the test says why and passes, except under
//! `CI=true`, where a missing SDK is a failure. With `TOLLGATE_TEST_POSTGRES_URL` the binary
//! runs on PostgreSQL in a fresh schema (dropped after), with `TOLLGATE_TEST_REDIS_URL` its
//! rate-limit counters live in Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{Db, Process, Server, account, http, in_ci, post, runtime, workspace_root};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Nano-USD per USD.
const NANOS: i64 = 1_000_000_000;
/// The version's base fee: what a utility request (initialize, ping, tools/list,
/// server/discover) costs.
const BASE_FEE: (&str, i64) = ("0.0001", 100_000);
/// Per-request prices of the SDK server's tools. Each is distinct (and a power of two of
/// the smallest) so a wrong total shows which calls were charged.
const PRICES: &[(&str, &str, i64)] = &[
    ("echo", "0.001", 1_000_000),
    ("usage", "0.002", 2_000_000),
    ("countdown", "0.004", 4_000_000),
    ("fail", "0.008", 8_000_000),
    ("announce", "0.016", 16_000_000),
];
/// The price of every function not listed (the unknown tool and prompt the client asks for).
const DEFAULT_PRICE: (&str, i64) = ("0.032", 32_000_000);
/// What the SDK server's `usage` tool reports in `result._meta.usage`.
const REPORTED_USAGE: (i64, i64, i64) = (12, 34, 5);
/// The upstream credential published with the version; the SDK server refuses any other.
const UPSTREAM_TOKEN: &str = "conformance-upstream-credential";

/// The venv's Python, or why there is none.
fn python() -> Result<PathBuf, String> {
    let (path, from) = match std::env::var_os("TOLLGATE_TEST_PYTHON").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), "TOLLGATE_TEST_PYTHON"),
        None => (workspace_root().join("target/conformance-venv/bin/python"), "the default venv"),
    };
    if !path.exists() {
        return Err(format!(
            "{} ({from}) does not exist; create it with `python3 -m venv target/conformance-venv && \
             target/conformance-venv/bin/pip install -r crates/tollgate/tests/conformance/requirements.txt` \
             (.ci/run does this)",
            path.display()
        ));
    }
    let check =
        Command::new(&path).args(["-c", "import mcp, importlib.metadata as m; print(m.version('mcp'))"]).output();
    match check {
        Ok(out) if out.status.success() => Ok(path),
        Ok(out) => Err(format!(
            "{} cannot import the MCP SDK: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{} does not run: {e}", path.display())),
    }
}

/// `"99.998200"` → nano-USD.
fn usd_nanos(text: &str) -> i64 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    assert!(frac.len() <= 9 && !whole.starts_with('-'), "unexpected amount {text:?}");
    whole.parse::<i64>().unwrap() * NANOS + format!("{frac:0<9}").parse::<i64>().unwrap()
}

/// The consumer's balance in nano-USD (open holds and credit leases aside).
fn balance(base: &str, token: &str) -> i64 {
    let auth = format!("Bearer {token}");
    let r = http(base, "GET", "/api/v1/billing/balance", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200, "balance: {}", r.body);
    usd_nanos(r.json()["balance"].as_str().unwrap())
}

/// The balance once billing has settled (it is written asynchronously, within
/// milliseconds): `expected` seen three polls in a row (so a late extra charge still
/// shows), or else whatever figure has held still for a second.
fn settled_balance(base: &str, token: &str, expected: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen: Vec<i64> = Vec::new();
    loop {
        let now = balance(base, token);
        seen.push(now);
        let held = seen.iter().rev().take_while(|b| **b == now).count();
        if (now == expected && held >= 3) || held >= 10 || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn price_of(function: &str) -> i64 {
    PRICES.iter().find(|(name, _, _)| *name == function).map_or(DEFAULT_PRICE.1, |(_, _, nanos)| *nanos)
}

/// What one HTTP exchange of the client's record costs (SPEC §2/§3): notifications and
/// client responses nothing; a failed call (status ≥ 400, a JSON-RPC error, a tool result
/// with isError) nothing; `tools/call` and `prompts/get` their function's per-request price;
/// every other request a utility call at the base fee. A 2025-era session's GET stream and
/// DELETE carry no JSON-RPC request, so no call: they cost nothing.
fn expected_cost(exchange: &Value) -> i64 {
    let status = exchange["status"].as_u64().unwrap_or(0);
    if status == 0 || status >= 400 {
        return 0;
    }
    match (exchange["http"].as_str(), exchange["kind"].as_str()) {
        (Some("POST"), Some("request")) => {
            if exchange["outcome"] != "result" {
                return 0;
            }
            match exchange["rpc"].as_str() {
                Some("tools/call" | "prompts/get") => price_of(exchange["name"].as_str().unwrap_or_default()),
                _ => BASE_FEE.1,
            }
        }
        _ => 0,
    }
}

/// Runs client.py through `url` in `era`; returns its summary.
fn run_client(python: &Path, url: &str, key: &str, era: &str, tollgate: &Server) -> Value {
    let script = workspace_root().join("crates/tollgate/tests/conformance/client.py");
    let out = Command::new(python).arg(script).args([url, key, era]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK client's {era} session failed through the gateway:\n{stderr}\ntollgate stderr:\n{}",
        tollgate.log()
    );
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client.py printed no summary ({e}):\n{}", String::from_utf8_lossy(&out.stdout)));
    println!("{era} session: protocol {}, {} HTTP exchanges", summary["protocol_version"], exchanges(&summary).len());
    summary
}

fn exchanges(summary: &Value) -> &Vec<Value> {
    summary["exchanges"].as_array().expect("exchanges")
}

/// What both eras' scripts must have seen: correct results, streamed progress, gateway headers.
fn check_common(era: &str, s: &Value) {
    let results = &s["results"];
    let tools: Vec<&str> = s["tools"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(tools, ["announce", "countdown", "echo", "fail", "usage"], "{era}: tools/list");
    assert_eq!(results["echo"]["text"], "hello through the gateway", "{era}: echo {}", results["echo"]);
    assert_eq!(results["echo"]["is_error"], false);
    assert_eq!(results["usage"]["text"], "metered", "{era}: usage {}", results["usage"]);
    let (input, output, cache) = REPORTED_USAGE;
    assert_eq!(
        results["usage"]["meta"]["usage"],
        json!({"input_tokens": input, "output_tokens": output, "cache_tokens": cache}),
        "{era}: result._meta.usage reaches the client unchanged"
    );
    assert_eq!(results["countdown"]["text"], "liftoff", "{era}: countdown {}", results["countdown"]);
    assert_eq!(results["fail"]["is_error"], true, "{era}: fail {}", results["fail"]);
    assert!(
        results["nope"]["is_error"] == true || results["nope"]["error"].is_object(),
        "{era}: an unknown tool fails: {}",
        results["nope"]
    );
    assert!(results["prompt"]["error"].is_object(), "{era}: an unknown prompt is an error: {}", results["prompt"]);

    // The streaming call: every progress notification, in order, as it was sent — spread
    // over the tool's run, not delivered in one burst at the end.
    let steps = s["countdown"]["steps"].as_i64().unwrap();
    let delay = s["countdown"]["delay_ms"].as_f64().unwrap();
    let progress = s["progress"].as_array().unwrap();
    let values: Vec<i64> = progress.iter().map(|p| p["progress"].as_f64().unwrap() as i64).collect();
    assert_eq!(values, (1..=steps).collect::<Vec<_>>(), "{era}: progress notifications {progress:?}");
    let at = |p: &Value| p["at_ms"].as_f64().unwrap();
    let spread = at(&progress[progress.len() - 1]) - at(&progress[0]);
    assert!(
        spread >= (steps - 1) as f64 * delay * 0.5,
        "{era}: progress arrived within {spread} ms, not one by one over ~{} ms: {progress:?}",
        (steps - 1) as f64 * delay
    );
    assert!(s["countdown_result_ms"].as_f64().unwrap() >= at(&progress[progress.len() - 1]));
    let countdown = exchanges(s).iter().find(|e| e["name"] == "countdown").expect("the countdown exchange");
    assert_eq!(
        countdown["headers_received"]["content-type"].as_str().map(|c| c.starts_with("text/event-stream")),
        Some(true)
    );
    assert_eq!(countdown["sse_events"], steps + 1, "{era}: progress events plus the result: {countdown}");

    for e in exchanges(s) {
        assert_eq!(e["authorization_sent"], true, "{era}: {e}");
        assert!(e["status"].is_u64(), "{era}: an exchange got no response: {e}");
        assert!(
            e["headers_received"]["x-request-id"].is_string(),
            "{era}: every gateway response carries X-Request-Id: {e}"
        );
        assert!(
            e["headers_received"]["x-ratelimit-remaining-requests-minute"].is_string(),
            "{era}: every gateway response carries the rate-limit headers: {e}"
        );
    }
}

/// The 2025-era session: initialize, Mcp-Session-Id both ways, the GET stream, DELETE.
fn check_legacy(s: &Value) {
    check_common("legacy", s);
    assert_eq!(s["protocol_version"], "2025-11-25", "the newest handshake version is negotiated");
    assert_eq!(s["server_name"], "tollgate-conformance");
    assert_eq!(s["results"]["ping"], "ok");
    assert_eq!(s["results"]["announce"]["text"], "announced");
    let session = s["session_id"].as_str().expect("the upstream's Mcp-Session-Id reaches the client");
    let all = exchanges(s);
    assert_eq!(all[0]["rpc"], "initialize");
    for e in &all[1..] {
        assert_eq!(e["headers_sent"]["mcp-session-id"], session, "the session id is sent on: {e}");
        assert!(e["status"].as_u64().unwrap() < 400, "no call of the session is refused: {e}");
    }
    let initialized = all.iter().find(|e| e["rpc"] == "notifications/initialized").expect("notifications/initialized");
    assert_eq!(initialized["status"], 202, "a notification gets the upstream's 202: {initialized}");
    let gets: Vec<&Value> = all.iter().filter(|e| e["http"] == "GET").collect();
    assert_eq!(gets.len(), 1, "one standalone GET stream: {gets:?}");
    assert_eq!(s["get_stream_open"], true);
    assert_eq!(gets[0]["status"], 200, "{}", gets[0]);
    assert_eq!(gets[0]["sse_methods"], json!(["notifications/tools/list_changed"]), "the GET stream delivers");
    assert_eq!(s["list_changed_arrived"], true);
    let deletes: Vec<&Value> = all.iter().filter(|e| e["http"] == "DELETE").collect();
    assert_eq!(deletes.len(), 1, "the session ends with DELETE: {deletes:?}");
}

/// The 2026-07-28 session: server/discover, no session, Mcp-Method / Mcp-Name on each POST.
fn check_modern(s: &Value) {
    check_common("modern", s);
    assert_eq!(s["protocol_version"], "2026-07-28", "the SDK adopts 2026-07-28 after server/discover");
    assert!(s["session_id"].is_null(), "no Mcp-Session-Id in 2026-07-28: {}", s["session_id"]);
    let all = exchanges(s);
    assert_eq!(all[0]["rpc"], "server/discover");
    for e in all {
        assert_eq!(e["http"], "POST", "2026-07-28 is POST only: {e}");
        assert_eq!(e["headers_sent"]["mcp-protocol-version"], "2026-07-28", "{e}");
        assert_eq!(e["headers_sent"]["mcp-method"], e["rpc"], "Mcp-Method names the method: {e}");
        if e["rpc"] == "tools/call" {
            assert_eq!(e["headers_sent"]["mcp-name"], e["name"], "Mcp-Name names the tool: {e}");
        }
        assert!(e["status"].as_u64().unwrap() < 400, "no call is refused: {e}");
    }
}

/// A priced session's cost, with a line per charged exchange for failure messages.
fn priced(s: &Value) -> (i64, String) {
    let mut total = 0;
    let mut lines = String::new();
    for e in exchanges(s) {
        let cost = expected_cost(e);
        total += cost;
        lines.push_str(&format!(
            "  {} {} {} status {} outcome {} → {cost}\n",
            e["http"].as_str().unwrap_or("?"),
            e["rpc"].as_str().unwrap_or("-"),
            e["name"].as_str().unwrap_or(""),
            e["status"],
            e["outcome"].as_str().unwrap_or("-"),
        ));
    }
    (total, lines)
}

/// Usage records for the calls, if this build has the audit API: every JSON-RPC request
/// has one under its `X-Request-Id`, and each record's cost is what this test priced the
/// exchange at. The consumer's org made only this test's calls.
fn check_usage_records(base: &str, token: &str, sessions: &[Value]) {
    let auth = format!("Bearer {token}");
    let r = http(base, "GET", "/api/v1/usage/audit?per_page=100", &[("Authorization", &auth)], "");
    let json = r.header("content-type").is_some_and(|c| c.contains("json"));
    if r.status == 404 || r.status == 405 || !json {
        println!("note: GET /api/v1/usage/audit answered {} (not the audit API); usage records not checked", r.status);
        return;
    }
    assert_eq!(r.status, 200, "usage audit: {}", r.body);
    let page = r.json();
    let rows = page["rows"].as_array().cloned().unwrap_or_default();
    let mut checked = 0;
    for e in sessions.iter().flat_map(exchanges) {
        let Some(id) = e["headers_received"]["x-request-id"].as_str() else { continue };
        let row = rows.iter().find(|row| row["request_id"] == id);
        let Some(row) = row else {
            assert!(e["kind"] != "request", "no usage record for {id}: {e}\n{}", r.body);
            continue;
        };
        if let Some(cost) = row["cost"].as_str() {
            assert_eq!(usd_nanos(cost), expected_cost(e), "the usage record's cost for {e}:\n{row}");
        }
        checked += 1;
    }
    println!("usage records: {checked} checked against the calls");
}

#[test]
fn official_sdk_client_and_server_through_the_gateway_in_both_eras_billed_exactly() {
    let python = match python() {
        Ok(p) => p,
        Err(why) if in_ci() => panic!("CI=true and the MCP SDK venv is missing: {why}"),
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let db = Db::from_env("conformance");

    // The upstream: the SDK's own Streamable HTTP server.
    let mut server = Command::new(&python);
    server.arg(workspace_root().join("crates/tollgate/tests/conformance/server.py")).args(["0", UPSTREAM_TOKEN]);
    let (upstream, upstream_url) = Process::start(server, db.dir.join("server.log"));

    // The real binary.
    let redis = std::env::var("TOLLGATE_TEST_REDIS_URL").ok().filter(|u| !u.is_empty());
    let mut flags = Vec::new();
    if let Some(redis) = &redis {
        flags.extend(["--redis-url", redis.as_str()]);
    }
    let tollgate = Server::spawn(db.serve_command(&flags), db.dir.join("tollgate.log"));
    let base = tollgate.url.clone();

    // A publisher lists the SDK server with per-function prices and a base fee.
    let publisher = account(&base, "publisher@conformance.test");
    let slug = "sdk-conformance";
    post(
        &base,
        &publisher,
        "/api/v1/agents",
        json!({
            "slug": slug, "name": "SDK conformance", "description": "The official MCP SDK's server.",
            "category": "devtools", "protocol": "mcp", "platforms": ["Cursor"], "capabilities": ["testing"],
            "governance": {"data_collected": [], "retention_days": 0, "training_use": false, "compliance": []},
            "support": {"email": "help@conformance.test"}
        }),
    );
    let functions: Vec<Value> = PRICES
        .iter()
        .map(|(name, price, _)| {
            json!({"name": name, "pricing": {"model": "per_request", "price": price}, "free_calls": 0, "free_reset": "lifetime"})
        })
        .collect();
    post(
        &base,
        &publisher,
        &format!("/api/v1/agents/{slug}/versions"),
        json!({
            "version": "1.0.0", "upstream_url": upstream_url,
            "upstream_headers": {"Authorization": format!("Bearer {UPSTREAM_TOKEN}")},
            "base_fee": BASE_FEE.0, "functions": functions,
            "default_pricing": {"model": "per_request", "price": DEFAULT_PRICE.0},
            "dependencies": [], "task_timeout_seconds": 300, "cold_start": false
        }),
    );

    // A consumer installs it and makes a key.
    let consumer = account(&base, "consumer@conformance.test");
    let installation = post(&base, &consumer, "/api/v1/installations", json!({"agent": slug, "version": "1.0.0"}));
    let installation = installation["id"].as_str().unwrap().to_string();
    let key = post(
        &base,
        &consumer,
        &format!("/api/v1/installations/{installation}/keys"),
        json!({"name": "sdk", "daily_limits": {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cache_tokens": 0}}),
    );
    let key = key["key"].as_str().unwrap().to_string();
    let mcp_url = format!("{base}/{slug}/1.0.0/mcp");
    let start = balance(&base, &consumer);
    println!("gateway {mcp_url} → upstream {upstream_url}; balance {start} nano-USD");

    let mut sessions = Vec::new();
    let mut balance_now = start;
    for era in ["legacy", "modern"] {
        let summary = run_client(&python, &mcp_url, &key, era, &tollgate);
        if era == "legacy" {
            check_legacy(&summary);
        } else {
            check_modern(&summary);
        }
        let (cost, lines) = priced(&summary);
        let after = settled_balance(&base, &consumer, balance_now - cost);
        assert_eq!(
            balance_now - after,
            cost,
            "{era}: the balance dropped by {} nano-USD; the calls the client made cost {cost}:\n{lines}\
             tollgate stderr:\n{}",
            balance_now - after,
            tollgate.log()
        );
        println!("{era}: charged {cost} nano-USD, as priced:\n{lines}");
        balance_now = after;
        sessions.push(summary);
    }
    check_usage_records(&base, &consumer, &sessions);

    // Stopped cleanly, every batch written: the ledger still balances.
    tollgate.stop();
    drop(upstream);
    let (sum, consistent) = runtime().block_on(async {
        let store = db.open().await;
        let audit = store.ledger_audit().await.unwrap();
        store.close().await;
        audit
    });
    assert_eq!(sum, 0, "the ledger's balances sum to zero");
    assert!(consistent, "every account's balance and pending amount match its transfers and holds");
}
