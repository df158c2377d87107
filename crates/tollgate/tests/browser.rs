//! The web UI in a real browser: the real binary (`serve --demo`, on SQLite, or on
//! PostgreSQL in a fresh schema when `TOLLGATE_TEST_POSTGRES_URL` is set) and the
//! Playwright journeys of `tests/browser/` (node, `playwright-core` pinned in its
//! `package-lock.json`, Debian's headless Chromium), which click and type through the UI:
//!
//! - a consumer signs up, searches the store, uses every filter (category, platform,
//!   capability, protocol, minimum trust) and sort, checking the cards against the API,
//!   and walks every page whatever the demo's agent count; opens an agent's six tabs (also
//!   with the arrow keys), copies a snippet, writes, edits and deletes a review, installs
//!   the agent, creates a key and sets its daily limits — then this test calls the agent
//!   through the gateway with that key (a real MCP session over HTTP) — finds the calls on
//!   the dashboard (its chart stepped through from the keyboard), the usage chart and the
//!   audit log (a row's details), exports the CSV, revokes the key — this test's next call
//!   is refused with 403 — switches the theme, logs out, logs back in to the page it asked
//!   for, and uninstalls the agent;
//! - a publisher creates an agent and publishes a priced version in the console, and
//!   finds it in the store with its price on the Integration tab;
//! - the main pages at 360 px and 1280 px wide (an error page, an invitation, an A2A agent
//!   and the publisher's new-agent form among them) carry the security headers and do not
//!   scroll sideways, and a screenshot of each goes to `target/screenshots/<database>/`;
//!   the log-in form is used with the keyboard alone; the org switcher acts on its button.
//!
//! The journeys ask this test for gateway calls with lines `@@ {json}` on their standard
//! output, and read the answer as one JSON line on their standard input.
//!
//! `.ci/run` installs Chromium and runs `npm ci` in `tests/browser/`. Without node,
//! `playwright-core` or Chromium the test says why and passes, except under `CI=true`,
//! where that is a failure. `TOLLGATE_TEST_NODE` and `TOLLGATE_TEST_CHROMIUM` override
//! where they are found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{DEMO_PASSWORD, Db, Response, Server, in_ci, workspace_root};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest the journeys may take.
const TIME_LIMIT: Duration = Duration::from_secs(240);

fn scripts() -> PathBuf {
    workspace_root().join("crates/tollgate/tests/browser")
}

/// Node, and Chromium, or why the journeys cannot run.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let node = std::env::var_os("TOLLGATE_TEST_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from);
    let version =
        Command::new(&node).arg("--version").output().map_err(|e| format!("{} does not run: {e}", node.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major: u32 = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 20 {
        return Err(format!("node {version} is too old; playwright-core needs 20 or later"));
    }
    if !scripts().join("node_modules/playwright-core/package.json").exists() {
        return Err(
            "playwright-core is not installed; run `npm ci` in crates/tollgate/tests/browser (.ci/run does)".into()
        );
    }
    let chromium =
        std::env::var_os("TOLLGATE_TEST_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!(
            "{} does not exist; install Debian's chromium and chromium-driver (.ci/run does)",
            chromium.display()
        ));
    }
    Ok((node, chromium))
}

/// The journeys' process, killed if the test fails first.
struct Journeys(Child);

impl Drop for Journeys {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An MCP request through the gateway with `key`, as any client would send it.
fn mcp(server: &Server, agent: &str, key: &str, session: Option<&str>, body: &Value) -> Response {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    if let Some(session) = session {
        headers.push(("Mcp-Session-Id", session));
    }
    server.http("POST", &format!("/{agent}/latest/mcp"), &headers, &body.to_string())
}

/// Answers a journey's request for a gateway call: an MCP session (initialize, then
/// `tools/call echo`) that must be served, or one call that must be refused.
fn answer(server: &Server, call: &Value) -> Value {
    let key = call["key"].as_str().unwrap();
    let agent = call["agent"].as_str().unwrap();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "browser-test", "version": "1"}}});
    if call["expect"] != 200 {
        let r = mcp(server, agent, key, None, &initialize);
        assert_eq!(json!(r.status), call["expect"], "the gateway's answer: {}", r.body);
        return json!({"status": r.status});
    }
    let init = mcp(server, agent, key, None, &initialize);
    assert_eq!(init.status, 200, "initialize through the gateway: {}\n{}", init.body, server.log());
    let session = init.header("mcp-session-id").map(str::to_string);
    let text = call["text"].as_str().unwrap();
    let echo = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}});
    let echoed = mcp(server, agent, key, session.as_deref(), &echo);
    assert_eq!(echoed.status, 200, "tools/call through the gateway: {}", echoed.body);
    assert!(echoed.body.contains(text), "the agent answered: {}", echoed.body);
    let ids: Vec<&str> = [&init, &echoed].iter().map(|r| r.header("x-request-id").unwrap()).collect();
    json!({"request_ids": ids, "statuses": [init.status, echoed.status]})
}

fn reply(stdin: &mut ChildStdin, answer: &Value) {
    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
}

#[test]
fn consumer_and_publisher_journeys_in_headless_chromium() {
    let (node, chromium) = match tools() {
        Ok(tools) => tools,
        Err(why) if in_ci() => panic!("CI=true and the browser tests cannot run: {why}"),
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let db = Db::from_env("browser");
    let started = Instant::now();
    let server = db.serve(&["--demo"]);
    println!("{}: tollgate serve --demo ready in {:?}", db.name, started.elapsed());

    // Each database's run keeps its own screenshots.
    let shots = workspace_root().canonicalize().unwrap().join("target/screenshots").join(db.name);
    let _ = std::fs::remove_dir_all(&shots);
    let log = db.dir.join("journeys.log");
    let mut child = Command::new(&node)
        .arg("run.js")
        .current_dir(scripts())
        .env("TOLLGATE_URL", &server.url)
        .env("TOLLGATE_SCREENSHOTS", &shots)
        .env("TOLLGATE_CHROMIUM", &chromium)
        .env("TOLLGATE_DEMO_PASSWORD", DEMO_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut journeys = Journeys(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let deadline = Instant::now() + TIME_LIMIT;
    let failure = |why: &str| {
        format!(
            "{why}\njourneys' errors:\n{}\ntollgate's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            server.log()
        )
    };
    let mut done = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{}", failure(&format!("the journeys took over {TIME_LIMIT:?}")))
            }
        };
        let Some(message) = line.strip_prefix("@@ ") else {
            println!("{line}");
            continue;
        };
        let message: Value = serde_json::from_str(message).unwrap();
        if let Some(call) = message.get("call") {
            reply(&mut stdin, &answer(&server, call));
        } else if let Some(finished) = message.get("done") {
            done = Some(finished.clone());
        }
    }
    let status = journeys.0.wait().unwrap();
    assert!(status.success(), "{}", failure(&format!("the journeys failed ({status})")));
    let done = done.unwrap_or_else(|| panic!("{}", failure("the journeys did not finish")));
    println!("journeys passed in {} ms; screenshots in {}", done["ms"], shots.display());
    let count = std::fs::read_dir(&shots).map(|d| d.count()).unwrap_or(0);
    assert!(count >= 2 * 25, "a screenshot of each page at each width: {count}");
    for name in ["error", "invitation", "publisher-new-agent", "agent-a2a", "store"] {
        for size in ["phone", "desktop"] {
            assert!(shots.join(format!("{name}-{size}.png")).exists(), "no screenshot {name}-{size}");
        }
    }
    server.stop();
}
