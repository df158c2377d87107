//! The black-box harness: the real `tollgate` binary with a temporary data directory, on
//! SQLite and, when `TOLLGATE_TEST_POSTGRES_URL` is set, on PostgreSQL in a fresh schema
//! that is dropped afterwards. The binary reaches its schema through the URL's connection
//! options (`options=-c search_path=…`), so it runs exactly as it would in production.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tollgate_store::Store;

/// The encryption key given to servers on PostgreSQL (they refuse to start without one).
pub const ENCRYPTION_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// The demo accounts' password (`demo.rs`).
pub const DEMO_PASSWORD: &str = "demo-tollgate-42";

/// One database for one test: a data directory, and on PostgreSQL a schema of its own.
pub struct Db {
    /// `sqlite` or `postgres`, for messages.
    pub name: &'static str,
    /// The data directory (the SQLite file lives here).
    pub dir: PathBuf,
    /// On PostgreSQL: (base URL, schema, the URL the binary is given).
    postgres: Option<(String, String, String)>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn unique(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}_{}_{nanos}", test.replace('-', "_"), std::process::id())
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-bin-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// SQLite, and PostgreSQL when `TOLLGATE_TEST_POSTGRES_URL` is set: every black-box test
/// runs once on each.
pub fn databases(test: &str) -> Vec<Db> {
    let mut all = vec![Db::sqlite(test)];
    if let Some(db) = postgres(test) {
        all.push(db);
    }
    all
}

/// A PostgreSQL database in a fresh (empty) schema, when `TOLLGATE_TEST_POSTGRES_URL` is set.
pub fn postgres(test: &str) -> Option<Db> {
    let base = std::env::var("TOLLGATE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
    let schema = format!("b_{}", unique(test)).to_ascii_lowercase();
    runtime().block_on(async {
        // Creates the schema only; the binary migrates it.
        let store = Store::connect_in_schema(&base, Some(&schema)).await.unwrap();
        store.close().await;
    });
    let sep = if base.contains('?') { '&' } else { '?' };
    // The application name lets the clean-up end the binary's connections, if any remain.
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}&application_name={schema}");
    let dir = fresh_dir(&format!("{test}-postgres-{}", unique("")));
    Some(Db { name: "postgres", dir, postgres: Some((base, schema, url)) })
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((base, schema, _)) = self.postgres.take() {
            runtime().block_on(async {
                if let Ok(store) = Store::connect(&base).await {
                    let _ = store.drop_schema_for_tests(&schema).await;
                    store.close().await;
                }
            });
        }
    }
}

impl Db {
    /// SQLite in a fresh data directory.
    pub fn sqlite(test: &str) -> Db {
        Db { name: "sqlite", dir: fresh_dir(&format!("{test}-sqlite-{}", unique(""))), postgres: None }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// `tollgate <args> --data-dir <dir> [--database-url <postgres>]`, run in the data
    /// directory with no `TOLLGATE_*` variable inherited from the test's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command.args(args).arg("--data-dir").arg(&self.dir).current_dir(&self.dir);
        for (name, _) in std::env::vars() {
            if name.starts_with("TOLLGATE_") {
                command.env_remove(name);
            }
        }
        if let Some((_, _, url)) = &self.postgres {
            command.args(["--database-url", url]);
        }
        command
    }

    /// Runs `tollgate <args>` to completion.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        command.output().unwrap()
    }

    /// `tollgate serve` with `extra` flags (`--listen 127.0.0.1:0` unless given); on
    /// PostgreSQL with [`ENCRYPTION_KEY`] configured.
    pub fn serve_command(&self, extra: &[&str]) -> Command {
        let mut args = vec!["serve"];
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        args.extend(extra);
        let mut command = self.command(&args);
        if self.is_postgres() {
            command.env("TOLLGATE_ENCRYPTION_KEY", ENCRYPTION_KEY);
        }
        command
    }

    /// Starts `tollgate serve` and waits until it prints where it listens (and, with
    /// `--demo`, the demo lines).
    pub fn serve(&self, extra: &[&str]) -> Server {
        Server::spawn(self.serve_command(extra), self.dir.join(format!("serve-{}.log", unique(""))))
    }
}

/// A running `tollgate serve`, killed if the test fails before stopping it.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The lines printed after `listening on …` (the demo's).
    pub lines: Vec<String>,
    log: PathBuf,
}

impl Server {
    /// Starts `command` (a `tollgate serve`), with standard error to `log`, and waits until
    /// it prints where it listens (and, with `--demo`, the demo lines).
    pub fn spawn(mut command: Command, log: PathBuf) -> Server {
        let demo = command.get_args().any(|a| a == "--demo");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps reading so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server { child: Some(child), url: String::new(), lines: Vec::new(), log };
        let next = || {
            rx.recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the server printed nothing more; its log:\n{}", server_log(&server.log)))
        };
        let first = next();
        let url = first.strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {first:?}")).to_string();
        let mut lines = Vec::new();
        // With --demo, the lines up to the credentials (the last one).
        while demo && !lines.last().is_some_and(|l: &String| l.contains("demo: consumer")) {
            lines.push(next());
        }
        server.url = url;
        server.lines = lines;
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The demo key it printed, if it printed one.
    pub fn demo_key(&self) -> Option<String> {
        self.lines.iter().find_map(|l| l.split_once("(shown once): ").map(|(_, key)| key.trim().to_string()))
    }

    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        http(&self.url, method, path, headers, body)
    }

    /// An MCP `initialize` through the gateway: `POST /{slug}/{version}/mcp` with `key`.
    pub fn initialize(&self, slug: &str, version: &str, key: &str) -> Response {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"black-box","version":"1"}}}"#;
        let auth = format!("Bearer {key}");
        self.http(
            "POST",
            &format!("/{slug}/{version}/mcp"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
                ("MCP-Protocol-Version", "2025-06-18"),
            ],
            body,
        )
    }

    /// Logs `email` in; returns the session cookie (`name=value`).
    pub fn log_in(&self, email: &str, password: &str) -> (String, Value) {
        let body = serde_json::json!({"email": email, "password": password}).to_string();
        let r = self.http("POST", "/api/v1/auth/login", &[("Content-Type", "application/json")], &body);
        assert_eq!(r.status, 200, "log-in of {email}: {}", r.body);
        let cookie = r.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
        (cookie, r.json())
    }

    /// The last lines of its log (standard error).
    pub fn log(&self) -> String {
        server_log(&self.log)
    }

    /// Sends SIGTERM and checks that it stops cleanly.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = child.wait().unwrap();
        assert!(status.success(), "tollgate should stop cleanly on SIGTERM, got {status}; log:\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn server_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// An HTTP answer.
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A minimal HTTP/1.1 exchange over a fresh connection.
pub fn http(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let rest = raw.get(split + 4..).unwrap_or_default();
    let mut head_lines = head.lines();
    let status = head_lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap();
    let headers: Vec<(String, String)> = head_lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_vec() };
    Response { status, headers, body: String::from_utf8_lossy(&body).to_string() }
}

/// The body of a `Transfer-Encoding: chunked` message.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..eol]).split(';').next().unwrap_or("").trim().to_string();
        let Ok(size) = usize::from_str_radix(&size, 16) else { break };
        let data = &rest[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        body.extend_from_slice(&data[..size]);
        rest = data[size..].strip_prefix(b"\r\n").unwrap_or(&data[size..]);
    }
    body
}

/// Standard output and error of a finished command, for messages.
pub fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}
