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

use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tollgate_store::Store;

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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

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

/// A child process, killed if the test ends early.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `command`, with stderr to `log`, and waits up to 60 s for a stdout line
    /// `listening on URL`; returns the process and the URL.
    fn start(mut command: Command, log: PathBuf) -> (Proc, String) {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&log).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Forward the first line, then keep draining so the child never blocks on stdout.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let proc = Proc { child, log };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{command:?} printed no first line; stderr:\n{}", proc.stderr()));
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        (proc, url)
    }

    fn stderr(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM, then waits: the binary flushes its billing batches before it exits.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tollgate did not stop cleanly ({status}); stderr:\n{}", self.stderr());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The test's data directory (the binary's data, both servers' logs), removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("tollgate-conformance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An HTTP response: status, headers (lower-case names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 exchange with the management API.
fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Reply { status, headers, body }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

/// Signs up a user and returns an all-scopes account token.
fn account(base: &str, email: &str) -> String {
    let signup = json!({"email": email, "password": "correct horse 42", "name": email.split('@').next().unwrap()});
    let r = http(base, "POST", "/api/v1/auth/signup", &[], Some(&signup));
    assert_eq!(r.status, 201, "signup {email}: {}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string();
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let t = http(
        base,
        "POST",
        "/api/v1/tokens",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        Some(&json!({"name": "conformance", "expires_in_days": 30})),
    );
    assert_eq!(t.status, 201, "token for {email}: {}", t.body);
    t.json()["token"].as_str().unwrap().to_string()
}

fn post(base: &str, token: &str, path: &str, body: Value) -> Value {
    let auth = format!("Bearer {token}");
    let r = http(base, "POST", path, &[("Authorization", &auth)], Some(&body));
    assert_eq!(r.status, 201, "POST {path}: {}", r.body);
    r.json()
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
    let r = http(base, "GET", "/api/v1/billing/balance", &[("Authorization", &auth)], None);
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
fn run_client(python: &Path, url: &str, key: &str, era: &str, tollgate: &Proc) -> Value {
    let script = workspace_root().join("crates/tollgate/tests/conformance/client.py");
    let out = Command::new(python).arg(script).args([url, key, era]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK client's {era} session failed through the gateway:\n{stderr}\ntollgate stderr:\n{}",
        tollgate.stderr()
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

/// Where the binary keeps its data: SQLite in the data dir, or a fresh PostgreSQL schema.
struct Database {
    /// `--database-url`, when not the default SQLite file.
    flag: Option<String>,
    /// How this test opens the same database afterwards.
    url: String,
    /// (base URL, schema) to drop at the end.
    schema: Option<(String, String)>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn database(dir: &Path) -> Database {
    let Some(base) = std::env::var("TOLLGATE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        let url = format!("sqlite://{}?mode=rwc", dir.join("tollgate.db").display());
        return Database { flag: None, url, schema: None };
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let schema = format!("t_conformance_{}_{nanos}", std::process::id());
    // Creates the schema; the binary then works inside it through its connections' options.
    runtime().block_on(async {
        let store = Store::connect_in_schema(&base, Some(&schema)).await.unwrap();
        store.close().await;
    });
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}&application_name={schema}");
    Database { flag: Some(url.clone()), url, schema: Some((base, schema)) }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.schema.take() {
            runtime().block_on(async {
                if let Ok(store) = Store::connect(&base).await {
                    let _ = store.drop_schema_for_tests(&schema).await;
                    store.close().await;
                }
            });
        }
    }
}

/// Usage records for the calls, if this build has the audit API: every JSON-RPC request
/// has one under its `X-Request-Id`, and each record's cost is what this test priced the
/// exchange at. The consumer's org made only this test's calls.
fn check_usage_records(base: &str, token: &str, sessions: &[Value]) {
    let auth = format!("Bearer {token}");
    let r = http(base, "GET", "/api/v1/usage/audit?per_page=100", &[("Authorization", &auth)], None);
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
    let temp = TempDir::new();
    let dir = temp.0.clone();

    // The upstream: the SDK's own Streamable HTTP server.
    let mut server = Command::new(&python);
    server.arg(workspace_root().join("crates/tollgate/tests/conformance/server.py")).args(["0", UPSTREAM_TOKEN]);
    let (upstream, upstream_url) = Proc::start(server, dir.join("server.log"));

    // The real binary.
    let db = database(&dir);
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&dir);
    command.env_remove("TOLLGATE_DATABASE_URL").env_remove("TOLLGATE_REDIS_URL");
    // PostgreSQL replicas must share a configured key; give one everywhere.
    command.env("TOLLGATE_ENCRYPTION_KEY", "5a".repeat(32));
    if let Some(url) = &db.flag {
        command.args(["--database-url", url]);
    }
    if let Some(redis) = std::env::var("TOLLGATE_TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) {
        command.args(["--redis-url", &redis]);
    }
    let (tollgate, base) = Proc::start(command, dir.join("tollgate.log"));

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
            tollgate.stderr()
        );
        println!("{era}: charged {cost} nano-USD, as priced:\n{lines}");
        balance_now = after;
        sessions.push(summary);
    }
    check_usage_records(&base, &consumer, &sessions);

    // Stopped cleanly, every batch written: the ledger still balances.
    tollgate.terminate();
    drop(upstream);
    let (sum, consistent) = runtime().block_on(async {
        let store = Store::connect(&db.url).await.unwrap();
        let audit = store.ledger_audit().await.unwrap();
        store.close().await;
        audit
    });
    assert_eq!(sum, 0, "the ledger's balances sum to zero");
    assert!(consistent, "every account's balance and pending amount match its transfers and holds");
}
