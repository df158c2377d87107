//! The black-box harness shared by every test file here: the real `tollgate` binary as a
//! child process over a temporary data directory, on SQLite or, when
//! `TOLLGATE_TEST_POSTGRES_URL` is set, on PostgreSQL in a fresh schema that is dropped
//! afterwards (the binary reaches its schema through the URL's connection options,
//! `options=-c search_path=…`, so it runs exactly as it would in production); plain
//! HTTP/1.1 to it; and upstream agents served from the test process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::fs::File;
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
/// The password of the accounts [`account`] signs up.
pub const PASSWORD: &str = "correct horse 42";

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether this runs in CI (`CI=true`), where a missing test tool is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A multi-threaded runtime for the test's own async work (databases, upstreams).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
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

/// A temporary directory, removed at the end.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        TempDir(fresh_dir(&format!("{name}-{}", unique(""))))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One database for one test: a data directory, and on PostgreSQL a schema of its own.
pub struct Db {
    /// `sqlite` or `postgres`, for messages.
    pub name: &'static str,
    /// The data directory (the SQLite file lives here).
    pub dir: PathBuf,
    /// On PostgreSQL: (base URL, schema, the URL the binary is given).
    postgres: Option<(String, String, String)>,
}

/// SQLite, and PostgreSQL when `TOLLGATE_TEST_POSTGRES_URL` is set: tests that loop over
/// these run once on each.
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

    /// PostgreSQL when `TOLLGATE_TEST_POSTGRES_URL` is set, else SQLite: for tests that run
    /// once, on the database CI asks for.
    pub fn from_env(test: &str) -> Db {
        postgres(test).unwrap_or_else(|| Db::sqlite(test))
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Opens the same database from the test.
    pub async fn open(&self) -> Store {
        match &self.postgres {
            Some((base, schema, _)) => Store::connect_in_schema(base, Some(schema)).await.unwrap(),
            None => {
                Store::connect(&format!("sqlite://{}?mode=rwc", self.dir.join("tollgate.db").display())).await.unwrap()
            }
        }
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

    /// Starts `tollgate serve` (standard error to a log in the data directory) and waits
    /// until it prints where it listens (and, with `--demo`, the demo lines).
    pub fn serve(&self, extra: &[&str]) -> Server {
        Server::spawn(self.serve_command(extra), self.dir.join(format!("serve-{}.log", unique(""))))
    }
}

/// A child process that prints `listening on URL` first, killed if the test ends early.
pub struct Process {
    child: Option<Child>,
    /// Its standard output's lines after the first, as they come.
    lines: mpsc::Receiver<String>,
    /// Where its standard error goes.
    pub log: PathBuf,
}

impl Process {
    /// Starts `command` with standard error to `log` and waits up to 60 s for its first
    /// line, `listening on URL`; returns the process and the URL.
    pub fn start(mut command: Command, log: PathBuf) -> (Process, String) {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::options().create(true).append(true).open(&log).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps reading so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut process = Process { child: Some(child), lines: rx, log };
        let first = process.next_line();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{command:?}: unexpected first line {first:?}"))
            .to_string();
        (process, url)
    }

    /// The next line it prints (waiting up to 60 s).
    pub fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the process printed nothing more; its log:\n{}", last_lines(&self.log)))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The last lines of its log (standard error).
    pub fn log(&self) -> String {
        last_lines(&self.log)
    }

    /// Sends SIGTERM and checks that it stops cleanly (the binary writes its last
    /// settlements before it exits).
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = child.wait().unwrap();
        assert!(status.success(), "the process should stop cleanly on SIGTERM, got {status}; log:\n{}", self.log());
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn last_lines(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A running `tollgate serve`, killed if the test fails before stopping it.
pub struct Server {
    process: Process,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The lines printed after `listening on …` (the demo's).
    pub lines: Vec<String>,
}

impl Server {
    /// Starts `command` (a `tollgate serve`), with standard error to `log`, and waits until
    /// it prints where it listens (and, with `--demo`, the demo lines).
    pub fn spawn(command: Command, log: PathBuf) -> Server {
        let demo = command.get_args().any(|a| a == "--demo");
        let (mut process, url) = Process::start(command, log);
        let mut lines = Vec::new();
        // With --demo, the lines up to the credentials (the last one).
        while demo && !lines.last().is_some_and(|l: &String| l.contains("demo: consumer")) {
            lines.push(process.next_line());
        }
        Server { process, url, lines }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
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

    /// Logs `email` in; returns the session cookie (`name=value`) and the answer.
    pub fn log_in(&self, email: &str, password: &str) -> (String, Value) {
        let body = json!({"email": email, "password": password}).to_string();
        let r = self.http("POST", "/api/v1/auth/login", &[("Content-Type", "application/json")], &body);
        assert_eq!(r.status, 200, "log-in of {email}: {}", r.body);
        let cookie = r.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
        (cookie, r.json())
    }

    /// The last lines of its log (standard error).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Sends SIGTERM and checks that it stops cleanly.
    pub fn stop(self) {
        self.process.stop();
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(self) {
        self.process.kill();
    }
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

/// One HTTP/1.1 exchange on a fresh connection (`Content-Type: application/json` unless
/// `headers` name one); `None` when the server is gone or the answer stops short.
pub fn try_http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<Response> {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let rest = &raw[split + 4..];
    let mut head_lines = head.lines();
    let status = head_lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok())?;
    let headers: Vec<(String, String)> = head_lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_vec() };
    Some(Response { status, headers, body: String::from_utf8_lossy(&body).to_string() })
}

/// [`try_http`] that must be answered.
pub fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    try_http(base, method, path, headers, body).unwrap_or_else(|| panic!("{method} {path}: no (whole) answer"))
}

/// The body of a `Transfer-Encoding: chunked` message; `None` when it stops before its
/// last chunk.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = String::from_utf8_lossy(&rest[..eol]).split(';').next().unwrap_or("").trim().to_string();
        let size = usize::from_str_radix(&size, 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        let data = rest.get(eol + 2..)?;
        body.extend_from_slice(data.get(..size)?);
        rest = data[size..].strip_prefix(b"\r\n")?;
    }
}

/// Standard output and error of a finished command, for messages.
pub fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

/// Signs up `email` (password [`PASSWORD`]) and returns an all-scopes account token.
pub fn account(base: &str, email: &str) -> String {
    let name = email.split('@').next().unwrap_or("Test");
    let signup = json!({"email": email, "password": PASSWORD, "name": name}).to_string();
    let r = http(base, "POST", "/api/v1/auth/signup", &[], &signup);
    assert_eq!(r.status, 201, "signup {email}: {}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string();
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let token = json!({"name": "tests", "expires_in_days": 30}).to_string();
    let t = http(base, "POST", "/api/v1/tokens", &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)], &token);
    assert_eq!(t.status, 201, "token for {email}: {}", t.body);
    t.json()["token"].as_str().unwrap().to_string()
}

/// GETs `path` with an account token; asserts a 200 and returns the body.
pub fn get(base: &str, token: &str, path: &str) -> Value {
    let auth = format!("Bearer {token}");
    let r = http(base, "GET", path, &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

/// POSTs JSON that creates something, with an account token; asserts a 201 and returns
/// the body.
pub fn post(base: &str, token: &str, path: &str, body: Value) -> Value {
    let auth = format!("Bearer {token}");
    let r = http(base, "POST", path, &[("Authorization", &auth)], &body.to_string());
    assert_eq!(r.status, 201, "POST {path}: {}", r.body);
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
pub fn call(base: &str, key: &str, slug: &str, body: &str) -> Option<Response> {
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
