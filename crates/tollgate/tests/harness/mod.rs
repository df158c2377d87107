//! The black-box harness: the real `tollgate` binary as a child process over a temporary
//! data directory (SQLite, or a fresh PostgreSQL schema when `TOLLGATE_TEST_POSTGRES_URL`
//! is set), plain HTTP/1.1 to it, and upstream agents served from the test process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tollgate_store::Store;

/// A running `tollgate serve`, killed if the test ends early.
pub struct Server {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts `tollgate serve` on port 0 over `dir` and `db`, with `extra` arguments and
    /// environment; stderr goes to `log`. Waits for `listening on URL`.
    pub fn start(dir: &Path, db: &Database, extra: &[&str], env: &[(&str, &str)], log: &Path) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir).args(extra);
        command.env_remove("TOLLGATE_DATABASE_URL").env_remove("TOLLGATE_REDIS_URL");
        command.env("TOLLGATE_ENCRYPTION_KEY", "4f".repeat(32));
        if let Some(url) = &db.flag {
            command.args(["--database-url", url]);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::options().create(true).append(true).open(log).unwrap()))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            panic!("tollgate printed nothing; stderr:\n{}", std::fs::read_to_string(log).unwrap_or_default())
        });
        let url =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line {line:?}")).to_string();
        Server { child, url, log: log.to_path_buf() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits: the binary writes its last settlements before it exits.
    pub fn stop(mut self) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tollgate did not stop cleanly ({status})");
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A temporary directory, removed at the end.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("tollgate-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The database a test's server runs on: SQLite in its data directory, or a fresh
/// PostgreSQL schema (dropped at the end) when `TOLLGATE_TEST_POSTGRES_URL` is set.
pub struct Database {
    /// `--database-url` for the binary (`None`: SQLite in the data directory).
    pub flag: Option<String>,
    /// The URL to open the same database from the test.
    pub url: String,
    schema: Option<(String, String)>,
}

impl Database {
    pub fn new(dir: &Path) -> Database {
        let Some(base) = std::env::var("TOLLGATE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
            let url = format!("sqlite://{}?mode=rwc", dir.join("tollgate.db").display());
            return Database { flag: None, url, schema: None };
        };
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let schema = format!("t_bin_{}_{nanos}", std::process::id());
        runtime().block_on(async {
            let store = Store::connect_in_schema(&base, Some(&schema)).await.unwrap();
            store.close().await;
        });
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}&application_name={schema}");
        Database { flag: Some(url.clone()), url, schema: Some((base, schema)) }
    }

    pub fn is_postgres(&self) -> bool {
        self.schema.is_some()
    }

    /// Opens the database from the test.
    pub async fn open(&self) -> Store {
        match &self.schema {
            Some((base, schema)) => Store::connect_in_schema(base, Some(schema)).await.unwrap(),
            None => Store::connect(&self.url).await.unwrap(),
        }
    }
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

/// An HTTP response: status, headers (lower-case names), body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 exchange on a fresh connection; `None` when the server is gone.
pub fn try_http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<Reply> {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok())?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_string() };
    Some(Reply { status, headers, body })
}

pub fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    try_http(base, method, path, headers, body).unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

/// A chunked body, whole; `None` when it stops before its last chunk.
fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, tail) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(tail.get(..size)?);
        rest = tail[size..].strip_prefix("\r\n")?;
    }
}

/// Signs up a user and returns an all-scopes account token.
pub fn account(base: &str, email: &str) -> String {
    let signup = json!({"email": email, "password": "correct horse 42", "name": "Test"}).to_string();
    let r = http(base, "POST", "/api/v1/auth/signup", &[], &signup);
    assert_eq!(r.status, 201, "signup {email}: {}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string();
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let token = json!({"name": "tests", "expires_in_days": 30}).to_string();
    let t = http(base, "POST", "/api/v1/tokens", &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)], &token);
    assert_eq!(t.status, 201, "token for {email}: {}", t.body);
    t.json()["token"].as_str().unwrap().to_string()
}

/// POSTs JSON with an account token; asserts a 2xx and returns the body.
pub fn post(base: &str, token: &str, path: &str, body: Value) -> Value {
    let auth = format!("Bearer {token}");
    let r = http(base, "POST", path, &[("Authorization", &auth)], &body.to_string());
    assert!((200..300).contains(&r.status), "POST {path}: {} {}", r.status, r.body);
    r.json()
}

/// Publishes MCP agent `slug` 1.0.0 at `upstream_url` with `functions`, installs it for
/// the consumer and returns a key.
pub fn publish_and_install(
    base: &str,
    publisher: &str,
    consumer: &str,
    slug: &str,
    upstream_url: &str,
    functions: Value,
) -> String {
    post(
        base,
        publisher,
        "/api/v1/agents",
        json!({"slug": slug, "name": slug, "description": "A test agent.", "category": "devtools", "protocol": "mcp",
            "platforms": [], "capabilities": [], "governance": {}, "support": {}}),
    );
    post(
        base,
        publisher,
        &format!("/api/v1/agents/{slug}/versions"),
        json!({"version": "1.0.0", "upstream_url": upstream_url, "upstream_headers": {}, "base_fee": "0",
            "functions": functions, "dependencies": [], "task_timeout_seconds": 300, "cold_start": false}),
    );
    let installation = post(base, consumer, "/api/v1/installations", json!({"agent": slug, "version": "1.0.0"}));
    let id = installation["id"].as_str().unwrap();
    post(base, consumer, &format!("/api/v1/installations/{id}/keys"), json!({"name": "test"}))["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A gateway call: POST a JSON-RPC body to `{slug}/1.0.0/mcp`.
pub fn call(base: &str, key: &str, slug: &str, body: &str) -> Option<Reply> {
    let auth = format!("Bearer {key}");
    try_http(
        base,
        "POST",
        &format!("/{slug}/1.0.0/mcp"),
        &[
            ("Authorization", &auth),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
        body,
    )
}

/// A JSON-RPC `tools/call`.
pub fn tool_call(id: u64, name: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
        .to_string()
}

/// Serves an upstream MCP endpoint at `/mcp` from this process: every `tools/call` is
/// answered with a result echoing its arguments' `text` (and a usage report). Returns
/// its base URL; it lives as long as the returned runtime.
pub fn echo_upstream() -> (tokio::runtime::Runtime, String) {
    let rt = runtime();
    let url = rt.block_on(async {
        let app = axum::Router::new().route(
            "/mcp",
            axum::routing::post(|body: String| async move {
                let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let text = request["params"]["arguments"]["text"].as_str().unwrap_or("").to_string();
                let usage = json!({"input_tokens": 10, "output_tokens": 10, "cache_tokens": 0});
                axum::Json(json!({"jsonrpc": "2.0", "id": request["id"], "result": {
                    "content": [{"type": "text", "text": format!("you said: {text}")}], "_meta": {"usage": usage}}}))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    });
    (rt, url)
}
