//! The black-box tier: the real binary on port 0 with a temporary data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    url: String,
    lines: Vec<String>,
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-bin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(dir: &PathBuf, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env_remove("TOLLGATE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {first:?}")).to_string();
    let mut lines = Vec::new();
    if extra.contains(&"--demo") {
        loop {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let done = line.contains("demo: consumer");
            lines.push(line);
            if done {
                break;
            }
        }
    }
    Server { child, url, lines }
}

/// A minimal HTTP/1.1 exchange: (status, body).
fn http(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn stop(mut server: Server) {
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "tollgate should stop cleanly on SIGTERM, got {status}");
}

#[test]
fn serve_demo_seeds_once_serves_real_mcp_examples_and_stops_cleanly() {
    let dir = data_dir("demo");
    let server = start(&dir, &["--demo"]);
    assert!(server.lines.iter().any(|l| l.contains("a key for the Echo agent")), "{:?}", server.lines);
    assert!(dir.join("tollgate.db").exists());
    assert!(dir.join("encryption.key").exists());

    let (status, body) = http(&server.url, "GET", "/healthz", &[], "");
    assert_eq!((status, body.contains("ok")), (200, true));
    let (status, body) = http(&server.url, "GET", "/api/v1/store/agents?sort=top_rated", &[], "");
    assert_eq!(status, 200, "{body}");
    let store: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(store["total"], 6, "{store}");
    assert_eq!(store["agents"][0]["rating"], 5.0);

    // The demo agents' upstreams are real MCP servers in the same binary.
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (status, body) = http(
        &server.url,
        "POST",
        "/_examples/echo/mcp",
        &[("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")],
        init,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("protocolVersion"), "{body}");
    stop(server);

    // Seeding again changes nothing: no new key, the same six agents.
    let again = start(&dir, &["--demo"]);
    assert!(!again.lines.iter().any(|l| l.contains("a key for the Echo agent")));
    let (_, body) = http(&again.url, "GET", "/api/v1/store/agents", &[], "");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["total"], 6);
    stop(again);

    // The operator's CLI works on the same data.
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["admin", "grant-credits", "--org", "demo@demo.tollgate.dev", "--amount", "25.5", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("balance now 125.500000 USD"));
    let bad = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["admin", "grant-credits", "--org", "demo@demo.tollgate.dev", "--amount=-3", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("negative"));
    let migrate =
        Command::new(env!("CARGO_BIN_EXE_tollgate")).args(["migrate", "--data-dir"]).arg(&dir).output().unwrap();
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("applied 0 migration(s)"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--billing-durability", "sometimes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("billing_durability must be"));
    let shown = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["config"])
        .env("TOLLGATE_ENCRYPTION_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
    assert!(!text.contains("00112233"), "secrets are never printed");
}
