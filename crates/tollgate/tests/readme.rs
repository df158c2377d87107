//! The README's curl walk-through, run as written (bash and curl) against the real binary,
//! on SQLite and, with `TOLLGATE_TEST_POSTGRES_URL`, on PostgreSQL: every step must work,
//! and what its comments promise must hold — the call is answered, `initialize` costs the
//! base fee, the first ten tool calls are free and the eleventh costs 0.001.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{Server, TempDir, databases, workspace_root};
use std::process::Command;

/// The shell block under "## A walk-through with curl".
fn walk_through() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## A walk-through with curl").expect("the README has a walk-through")..];
    let start = section.find("```sh\n").unwrap() + "```sh\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_string()
}

/// The balance of the account that `token` belongs to, as the API shows it.
fn balance(server: &Server, token: &str) -> String {
    let r = server.http("GET", "/api/v1/billing/balance", &[("Authorization", &format!("Bearer {token}"))], "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["balance"].as_str().unwrap().to_string()
}

/// Waits until the balance is `want` (charges are written in batches, a few ms late).
fn balance_becomes(server: &Server, token: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while balance(server, token) != want && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(balance(server, token), want);
}

#[test]
fn the_readme_walk_through_works_as_written() {
    let script = walk_through();
    assert!(script.starts_with("T=http://127.0.0.1:8080\n"), "the walk-through starts by naming the server");
    for db in databases("readme") {
        let server = db.serve(&[]);
        let work = TempDir::new("readme-walk-through");
        // The same script against this server, then the values later steps made.
        let script = format!(
            "set -euo pipefail\nT={}\n{}\nprintf '\\nVALUES %s %s %s %s\\n' \"$TOKEN\" \"$KEY\" \"$SID\" \"$INST\"\n",
            server.url,
            script.strip_prefix("T=http://127.0.0.1:8080\n").unwrap()
        );
        let out = Command::new("bash").arg("-c").arg(&script).current_dir(&work.0).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{}: the walk-through failed:\n{stdout}\n{}",
            db.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let values = stdout.lines().find_map(|l| l.strip_prefix("VALUES ")).unwrap();
        let [token, key, sid, installation]: [&str; 4] = values.split(' ').collect::<Vec<_>>().try_into().unwrap();
        assert!(token.starts_with("tg_usr_") && key.starts_with("tgk_my-echo_") && !sid.is_empty(), "{values}");
        assert!(installation.starts_with("inst_"), "{values}");
        // Step 6 answered the tool call with the echo.
        assert!(stdout.contains("hello"), "{}: the tool call's answer:\n{stdout}", db.name);
        // Step 7: initialize cost the base fee; the tool call was one of ten free ones.
        balance_becomes(&server, token, "99.999900");

        let call = |id: u32| {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"again"}}}}}}"#
            );
            let auth = format!("Bearer {key}");
            let headers = [
                ("Authorization", auth.as_str()),
                ("Mcp-Session-Id", sid),
                ("MCP-Protocol-Version", "2025-06-18"),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
            ];
            let r = server.http("POST", "/my-echo/1.0.0/mcp", &headers, &body);
            assert_eq!(r.status, 200, "{}", r.body);
        };
        for id in 3..12 {
            call(id);
        }
        balance_becomes(&server, token, "99.999900");
        call(12);
        balance_becomes(&server, token, "99.998900");
        server.stop();
    }
}
