//! The black-box tier: the real binary on port 0 with a temporary data directory, on SQLite
//! and (with `TOLLGATE_TEST_POSTGRES_URL`) on PostgreSQL. See `harness/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{DEMO_PASSWORD, Db, ENCRYPTION_KEY, Server, databases, postgres, text};
use serde_json::Value;

const PUBLISHER: &str = "publisher@demo.tollgate.dev";
const LABS: &str = "labs@demo.tollgate.dev";
const CONSUMER: &str = "demo@demo.tollgate.dev";
/// How many agents the demo lists, and how many versions they have when first seeded.
const DEMO_AGENTS: u64 = 16;
const DEMO_VERSIONS: usize = 18;
/// The calls the demo consumer's own installations make at seeding time.
const DEMO_CONSUMER_CALLS: u64 = 208;

/// The demo publishers' agents, each with every version and its upstream.
fn publisher_agents(server: &Server) -> Vec<Value> {
    let mut all = Vec::new();
    for publisher in [PUBLISHER, LABS] {
        let (cookie, _) = server.log_in(publisher, DEMO_PASSWORD);
        let r = server.http("GET", "/api/v1/agents", &[("Cookie", &cookie)], "");
        assert_eq!(r.status, 200, "{}", r.body);
        all.extend(r.json().as_array().unwrap().iter().cloned());
    }
    all
}

/// `(slug, version, status, upstream_url)` of every demo version, sorted.
fn demo_versions(server: &Server) -> Vec<(String, String, String, String)> {
    let mut all = Vec::new();
    for agent in publisher_agents(server) {
        for v in agent["versions"].as_array().unwrap() {
            let field = |name: &str| v[name].as_str().unwrap().to_string();
            all.push((
                agent["slug"].as_str().unwrap().to_string(),
                field("version"),
                field("status"),
                field("upstream_url"),
            ));
        }
    }
    all.sort();
    all
}

fn store_total(server: &Server) -> Value {
    let r = server.http("GET", "/api/v1/store/agents", &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["total"].clone()
}

/// How many calls the demo consumer's personal org has made.
fn consumer_calls(server: &Server) -> Value {
    let (cookie, _) = server.log_in(CONSUMER, DEMO_PASSWORD);
    let r = server.http("GET", "/api/v1/usage", &[("Cookie", &cookie)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["calls"].clone()
}

/// `"99.998200"` → nano-USD.
fn usd_nanos(text: &str) -> i64 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    whole.parse::<i64>().unwrap() * 1_000_000_000 + format!("{frac:0<9}").parse::<i64>().unwrap()
}

/// Asserts that an MCP `initialize` through the gateway reaches the demo agent.
fn assert_initializes(server: &Server, slug: &str, version: &str, key: &str) {
    let r = server.initialize(slug, version, key);
    assert_eq!(r.status, 200, "initialize {slug}/{version} through the gateway: {}\nlog:\n{}", r.body, server.log());
    assert!(r.body.contains("protocolVersion"), "{}", r.body);
}

#[test]
fn serve_demo_seeds_once_serves_real_mcp_examples_and_stops_cleanly() {
    for db in databases("demo_once") {
        let server = db.serve(&["--demo"]);
        let key = server.demo_key().unwrap_or_else(|| panic!("{}: no demo key in {:?}", db.name, server.lines));
        if db.is_postgres() {
            assert!(!db.dir.join("tollgate.db").exists(), "on PostgreSQL nothing goes into a SQLite file");
            assert!(!db.dir.join("encryption.key").exists(), "the configured key is used, none generated");
        } else {
            assert!(db.dir.join("tollgate.db").exists());
            assert!(db.dir.join("encryption.key").exists());
        }

        let r = server.http("GET", "/healthz", &[], "");
        assert_eq!((r.status, r.body.contains("ok")), (200, true));
        let r = server.http("GET", "/api/v1/store/agents?sort=top_rated", &[], "");
        assert_eq!(r.status, 200, "{}", r.body);
        let store = r.json();
        assert_eq!(store["total"], DEMO_AGENTS, "{store}");
        assert_eq!(store["agents"].as_array().unwrap().len(), 12, "a first page of twelve");
        assert_eq!(store["agents"][0]["rating"], 5.0);
        // The demo's usage: real calls through the gateway, made while seeding.
        assert_eq!(consumer_calls(&server), DEMO_CONSUMER_CALLS, "{}", server.log());

        // The demo agents' upstreams are real MCP servers in the same binary.
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let r = server.http(
            "POST",
            "/_examples/echo/mcp",
            &[("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")],
            init,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("protocolVersion"), "{}", r.body);
        let versions = demo_versions(&server);
        let port = server.port().to_string();
        let (cookie, _) = server.log_in(CONSUMER, DEMO_PASSWORD);
        let balance =
            server.http("GET", "/api/v1/billing/balance", &[("Cookie", &cookie)], "").json()["balance"].clone();
        server.stop();

        // The operator's CLI works on the same data.
        let out = db.run(&["admin", "grant-credits", "--org", CONSUMER, "--amount", "25.5"], &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{}: {stderr}", db.name);
        let expected = usd_nanos(balance.as_str().unwrap()) + 25_500_000_000;
        let now = stdout.split("balance now ").nth(1).and_then(|t| t.split(' ').next()).unwrap_or_default();
        assert_eq!(usd_nanos(now), expected, "{stdout}");
        let bad = db.run(&["admin", "grant-credits", "--org", CONSUMER, "--amount=-3"], &[]);
        assert!(!bad.status.success());
        assert!(text(&bad).1.contains("negative"));

        // Seeding again on the same address changes nothing: no new key, the same agents
        // with the same versions, no more calls; the key from the first start still works.
        let again = db.serve(&["--demo", "--listen", &format!("127.0.0.1:{port}")]);
        assert_eq!(again.demo_key(), None, "{:?}", again.lines);
        assert_eq!(store_total(&again), DEMO_AGENTS);
        assert_eq!(consumer_calls(&again), DEMO_CONSUMER_CALLS);
        assert_eq!(demo_versions(&again), versions, "{}: a second start on the same address changed the demo", db.name);
        assert_initializes(&again, "echo", "latest", &key);
        again.stop();

        let out = db.run(&["migrate"], &[]);
        assert!(text(&out).0.contains("applied 0 migration(s)"), "{:?}", text(&out));
    }
}

#[test]
fn demo_agents_follow_the_address_the_server_serves_on() {
    for db in databases("demo_moves") {
        let first = db.serve(&["--demo"]);
        let key = first.demo_key().unwrap();
        assert_eq!(consumer_calls(&first), DEMO_CONSUMER_CALLS);
        assert_initializes(&first, "echo", "1.0.0", &key);
        let first_port = first.port();
        first.stop();

        // Started again on another port: the demo versions at the old address are retired,
        // a new one points at this address, and the same key reaches it.
        let mut second = db.serve(&["--demo"]);
        while second.port() == first_port {
            second.stop();
            second = db.serve(&["--demo"]);
        }
        assert_eq!(second.demo_key(), None, "the demo key is made once: {:?}", second.lines);
        // The first start's calls, and the test's one initialize: no more made.
        assert_eq!(consumer_calls(&second), DEMO_CONSUMER_CALLS + 1, "no calls are made again");
        assert_initializes(&second, "echo", "latest", &key);
        assert_initializes(&second, "echo", "1.0.1", &key);
        let r = second.initialize("echo", "1.0.0", &key);
        assert_eq!(r.status, 410, "the version at the old address is retired: {}", r.body);
        assert_eq!(store_total(&second), DEMO_AGENTS);
        let versions = demo_versions(&second);
        assert_eq!(versions.len(), DEMO_VERSIONS + DEMO_AGENTS as usize, "one new version per agent: {versions:?}");
        let slugs: std::collections::BTreeSet<&str> = versions.iter().map(|v| v.0.as_str()).collect();
        for slug in slugs {
            // Every earlier version retired; the new one, the highest, at this address.
            let (newest, earlier) = {
                let of: Vec<_> = versions.iter().filter(|v| v.0 == slug).collect();
                let (newest, earlier) = of.split_last().unwrap();
                (*newest, earlier.to_vec())
            };
            assert!(earlier.iter().all(|v| v.2 == "retired") && !earlier.is_empty(), "{earlier:?}");
            assert_eq!(newest.2, "active", "{newest:?}");
            assert!(newest.3.starts_with(&format!("{}/_examples/", second.url)), "{newest:?}");
        }
        for agent in publisher_agents(&second) {
            assert_eq!(agent["support"]["url"], second.url.as_str(), "{agent}");
        }
        let second_port = second.port().to_string();
        second.stop();

        // And on the same port once more, nothing changes.
        let third = db.serve(&["--demo", "--listen", &format!("127.0.0.1:{second_port}")]);
        assert_eq!(demo_versions(&third), versions);
        assert_initializes(&third, "echo", "latest", &key);
        third.stop();
    }
}

#[test]
fn demo_seeding_finishes_what_an_interrupted_start_left() {
    for db in databases("demo_resume") {
        // What a start that died mid-seeding leaves: both demo accounts, and one agent
        // without a version.
        let plain = db.serve(&[]);
        for (email, name) in [(PUBLISHER, "Demo Publisher"), (CONSUMER, "Demo User")] {
            let body = serde_json::json!({"email": email, "password": DEMO_PASSWORD, "name": name}).to_string();
            let r = plain.http("POST", "/api/v1/auth/signup", &[("Content-Type", "application/json")], &body);
            assert_eq!(r.status, 201, "{}", r.body);
        }
        let (cookie, session) = plain.log_in(PUBLISHER, DEMO_PASSWORD);
        let csrf = session["csrf_token"].as_str().unwrap();
        let agent = serde_json::json!({"slug": "echo", "name": "Echo", "description": "Half seeded.",
            "category": "devtools", "protocol": "mcp"});
        let r = plain.http(
            "POST",
            "/api/v1/agents",
            &[("Content-Type", "application/json"), ("Cookie", &cookie), ("X-CSRF-Token", csrf)],
            &agent.to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        plain.stop();

        let server = db.serve(&["--demo"]);
        let key =
            server.demo_key().unwrap_or_else(|| panic!("{}: the seeding did not finish: {:?}", db.name, server.lines));
        assert_eq!(store_total(&server), DEMO_AGENTS);
        let versions = demo_versions(&server);
        assert_eq!(versions.len(), DEMO_VERSIONS, "every release of every agent: {versions:?}");
        assert_eq!(consumer_calls(&server), DEMO_CONSUMER_CALLS);
        assert_initializes(&server, "echo", "1.0.0", &key);
        let r = server.http("GET", "/api/v1/store/agents/echo", &[], "");
        assert_eq!(r.json()["rating"]["count"], 3, "the demo reviews were written: {}", r.body);
        server.stop();
    }
}

#[test]
fn serve_on_postgres_needs_a_configured_encryption_key() {
    let Some(db) = postgres("needs_key") else {
        println!("skipped: TOLLGATE_TEST_POSTGRES_URL is not set");
        return;
    };
    let refused = db.command(&["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    let (_, stderr) = text(&refused);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("TOLLGATE_ENCRYPTION_KEY") && stderr.contains("TOLLGATE_ENCRYPTION_KEY_FILE"), "{stderr}");
    assert!(!db.dir.join("encryption.key").exists(), "no key is generated on PostgreSQL");

    // From a file named by TOLLGATE_ENCRYPTION_KEY_FILE.
    let file = db.dir.join("secret-key");
    std::fs::write(&file, format!("{ENCRYPTION_KEY}\n")).unwrap();
    let mut command = db.command(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("TOLLGATE_ENCRYPTION_KEY_FILE", &file);
    assert_ready(Server::spawn(command, db.dir.join("from-file.log")));

    // A single server that moved from SQLite keeps the key in its data directory.
    std::fs::write(db.dir.join("encryption.key"), ENCRYPTION_KEY).unwrap();
    assert_ready(Server::spawn(db.command(&["serve", "--listen", "127.0.0.1:0"]), db.dir.join("kept.log")));
}

fn assert_ready(server: Server) {
    let r = server.http("GET", "/readyz", &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop();
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let db = Db::sqlite("bad_config");
    let out = db.run(&["serve", "--listen", "127.0.0.1:0", "--billing-durability", "sometimes"], &[]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("billing_durability must be"));
    let shown = db.run(&["config"], &[("TOLLGATE_ENCRYPTION_KEY", ENCRYPTION_KEY)]);
    let (stdout, stderr) = text(&shown);
    assert!(stdout.contains("listen = \"127.0.0.1:8080\""), "{stdout}");
    assert!(!stdout.contains("00112233"), "secrets are never printed");
    assert!(!stderr.contains("warning"), "{stderr}");
}
