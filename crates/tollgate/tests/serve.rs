//! The black-box tier: the real binary on port 0 with a temporary data directory, on SQLite
//! and (with `TOLLGATE_TEST_POSTGRES_URL`) on PostgreSQL. See `harness/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{DEMO_PASSWORD, Db, ENCRYPTION_KEY, Server, databases, postgres, text};
use serde_json::Value;

const PUBLISHER: &str = "publisher@demo.tollgate.dev";
const CONSUMER: &str = "demo@demo.tollgate.dev";
const DEMO_SLUGS: [&str; 6] = ["echo", "word-counter", "summarizer", "release-notes", "ticket-triage", "audit-trail"];

/// The demo publisher's agents, each with every version and its upstream.
fn publisher_agents(server: &Server) -> Vec<Value> {
    let (cookie, _) = server.log_in(PUBLISHER, DEMO_PASSWORD);
    let r = server.http("GET", "/api/v1/agents", &[("Cookie", &cookie)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json().as_array().unwrap().clone()
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
        assert_eq!(store["total"], 6, "{store}");
        assert_eq!(store["agents"][0]["rating"], 5.0);

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
        server.stop();

        // The operator's CLI works on the same data.
        let out = db.run(&["admin", "grant-credits", "--org", CONSUMER, "--amount", "25.5"], &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{}: {stderr}", db.name);
        assert!(stdout.contains("balance now 125.500000 USD"), "{stdout}");
        let bad = db.run(&["admin", "grant-credits", "--org", CONSUMER, "--amount=-3"], &[]);
        assert!(!bad.status.success());
        assert!(text(&bad).1.contains("negative"));

        // Seeding again on the same address changes nothing: no new key, the same six
        // agents with the same versions; the key from the first start still works.
        let again = db.serve(&["--demo", "--listen", &format!("127.0.0.1:{port}")]);
        assert_eq!(again.demo_key(), None, "{:?}", again.lines);
        assert_eq!(store_total(&again), 6);
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
        assert_initializes(&second, "echo", "latest", &key);
        assert_initializes(&second, "echo", "1.0.1", &key);
        let r = second.initialize("echo", "1.0.0", &key);
        assert_eq!(r.status, 410, "the version at the old address is retired: {}", r.body);
        assert_eq!(store_total(&second), 6);
        let versions = demo_versions(&second);
        assert_eq!(versions.len(), 12, "{versions:?}");
        for slug in DEMO_SLUGS {
            let of: Vec<_> = versions.iter().filter(|v| v.0 == slug).collect();
            assert_eq!((of[0].1.as_str(), of[0].2.as_str()), ("1.0.0", "retired"), "{of:?}");
            assert_eq!((of[1].1.as_str(), of[1].2.as_str()), ("1.0.1", "active"), "{of:?}");
            assert!(of[1].3.starts_with(&format!("{}/_examples/", second.url)), "{of:?}");
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
        assert_eq!(store_total(&server), 6);
        let versions = demo_versions(&server);
        assert_eq!(versions.len(), 6, "one version per agent: {versions:?}");
        assert_initializes(&server, "echo", "1.0.0", &key);
        let r = server.http("GET", "/api/v1/store/agents/echo", &[], "");
        assert_eq!(r.json()["rating"]["average"], 5.0, "the demo review was written: {}", r.body);
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
