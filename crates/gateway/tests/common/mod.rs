//! A whole Tollgate on real sockets: the example MCP servers as upstreams, and the API plus
//! the gateway over a fresh store (SQLite, or PostgreSQL when `TOLLGATE_TEST_POSTGRES_URL`
//! is set).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;
use tollgate_api::{ApiConfig, AppState};
use tollgate_domain::secret::Sealer;
use tollgate_gateway::{Gateway, GatewayConfig};
use tollgate_store::testing::TestStore;

pub struct World {
    pub store: TestStore,
    pub gateway: Gateway,
    /// The instance (API and gateway).
    pub base: String,
    /// The example MCP servers.
    pub upstream: String,
    pub http: reqwest::Client,
    /// The key upstream credentials are sealed with.
    pub sealer: Sealer,
    /// The gateway's settings.
    pub config: GatewayConfig,
}

/// A signed-up person: an account token and their personal org.
#[derive(Clone, Debug)]
pub struct Person {
    pub token: String,
    pub org_id: String,
    pub user_id: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

impl World {
    pub async fn new() -> World {
        Self::with(|_| {}).await
    }

    pub async fn with(tune: impl FnOnce(&mut GatewayConfig)) -> World {
        let upstream = serve(axum::Router::new().nest("/_examples", tollgate_examples::router())).await;
        let store = TestStore::new().await.unwrap();
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = GatewayConfig { public_url: base.clone(), ..GatewayConfig::default() };
        tune(&mut config);
        let limiter = Arc::new(tollgate_gateway::ratelimit::MemoryRateLimiter::new());
        let gateway = Gateway::start(store.store.clone(), sealer.clone(), limiter, None, config.clone()).unwrap();
        let api = AppState::new(
            store.store.clone(),
            ApiConfig { public_url: base.clone(), ..ApiConfig::default() },
            sealer.clone(),
        );
        let app = tollgate_api::router(api).merge(gateway.router());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        World { store, gateway, base, upstream, http: reqwest::Client::new(), sealer, config }
    }

    /// Calls the management API with an account token.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>, token: &str) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Signs up and makes an all-scopes account token.
    pub async fn person(&self, email: &str) -> Person {
        let signup = self
            .http
            .post(format!("{}/api/v1/auth/signup", self.base))
            .json(&json!({"email": email, "password": "correct horse 42", "name": "P"}))
            .send()
            .await
            .unwrap();
        assert_eq!(signup.status(), 201);
        let cookie = signup.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let session: Value = signup.json().await.unwrap();
        let token: Value = self
            .http
            .post(format!("{}/api/v1/tokens", self.base))
            .header("cookie", cookie)
            .header("x-csrf-token", session["csrf_token"].as_str().unwrap())
            .json(&json!({"name": "t"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Person {
            token: token["token"].as_str().unwrap().into(),
            org_id: session["org"]["id"].as_str().unwrap().into(),
            user_id: session["user"]["id"].as_str().unwrap().into(),
        }
    }

    /// Publishes `slug` (MCP) with one version 1.0.0 whose upstream is the example server
    /// `example` ("echo", "word-count", "usage-reporter"), priced by `functions`.
    pub async fn publish(&self, publisher: &Person, slug: &str, example: &str, base_fee: &str, functions: Value) {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "/api/v1/agents",
                Some(json!({"slug": slug, "name": slug, "description": "d", "category": "devtools", "protocol": "mcp",
                    "platforms": [], "capabilities": [], "tags": [], "use_cases": [], "governance": {}, "support": {}})),
                &publisher.token,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let upstream_url = format!("{}/_examples/{example}/mcp", self.upstream);
        self.version(publisher, slug, "1.0.0", &upstream_url, base_fee, functions).await;
    }

    pub async fn version(
        &self,
        publisher: &Person,
        slug: &str,
        version: &str,
        upstream_url: &str,
        base_fee: &str,
        functions: Value,
    ) {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/agents/{slug}/versions"),
                Some(json!({"version": version, "upstream_url": upstream_url,
                    "upstream_headers": {"Authorization": "Bearer publisher-upstream-secret"},
                    "base_fee": base_fee, "functions": functions, "dependencies": [], "task_timeout_seconds": 300,
                    "cold_start": false})),
                &publisher.token,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Installs `slug` for `who` and returns (installation id, key id, key).
    pub async fn install(&self, who: &Person, slug: &str) -> (String, String, String) {
        let (status, inst) =
            self.api(reqwest::Method::POST, "/api/v1/installations", Some(json!({"agent": slug})), &who.token).await;
        assert_eq!(status, 201, "{inst}");
        let id = inst["id"].as_str().unwrap().to_string();
        let (status, key) = self
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/installations/{id}/keys"),
                Some(json!({"name": "k"})),
                &who.token,
            )
            .await;
        assert_eq!(status, 201, "{key}");
        (id, key["id"].as_str().unwrap().into(), key["key"].as_str().unwrap().into())
    }

    /// POSTs a JSON-RPC body to an agent's MCP endpoint.
    pub async fn mcp(&self, key: Option<&str>, agent_path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(format!("{}/{agent_path}/mcp", self.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(k) = key {
            request = request.bearer_auth(k);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Reply { status, headers, text }
    }

    /// The org's balance in nano-USD.
    pub async fn balance(&self, who: &Person) -> i64 {
        self.gateway.flush().await;
        let (_, b) = self.api(reqwest::Method::GET, "/api/v1/billing/balance", None, &who.token).await;
        tollgate_domain::Nanos::parse_usd(b["balance"].as_str().unwrap()).unwrap().0
    }
}

/// A JSON-RPC `tools/call`.
pub fn tool_call(id: i64, name: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
        .to_string()
}

/// A JSON-RPC `initialize` of the 2025-06-18 protocol.
pub fn initialize(id: i64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string()
}

/// The JSON-RPC message in a reply: the body itself, or the last `data:` event of an SSE
/// stream that carries a result or an error.
pub fn rpc(reply: &Reply) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(&reply.text) {
        return v;
    }
    reply
        .text
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            serde_json::from_str::<Value>(&data.join("\n")).ok()
        })
        .filter(|v| v.get("result").is_some() || v.get("error").is_some())
        .last()
        .unwrap_or(Value::Null)
}

/// What an inspecting upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

/// An upstream that records every request and answers with `answer(body)`:
/// (status, content type, body).
pub async fn inspector(
    answer: impl Fn(&str) -> (u16, &'static str, String) + Send + Sync + 'static,
) -> (String, Arc<std::sync::Mutex<Vec<Seen>>>) {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = Arc::new(answer);
    let handler = move |headers: HeaderMap, body: String| {
        let log = log.clone();
        let answer = answer.clone();
        async move {
            log.lock().unwrap().push(Seen { headers, body: body.clone() });
            let (status, content_type, text) = answer(&body);
            (StatusCode::from_u16(status).unwrap(), [(header::CONTENT_TYPE, content_type)], text).into_response()
        }
    };
    let router = axum::Router::new()
        .route("/mcp", axum::routing::post(handler.clone()))
        .route("/health", axum::routing::get(|| async { "ok" }));
    (serve(router).await, seen)
}

/// A response body fed from a channel: each `Bytes` sent is one frame, sent when it is sent.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<bytes::Bytes>);

impl http_body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|frame| frame.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// An upstream whose `/mcp` answers every POST with an SSE stream written by `script`,
/// which gets the request body and a sender for the stream's frames (dropping the sender
/// ends the stream). `/health` answers "ok".
pub async fn sse_upstream<F, Fut>(script: F) -> String
where
    F: Fn(String, tokio::sync::mpsc::Sender<bytes::Bytes>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let handler = move |body: String| {
        let script = script.clone();
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            tokio::spawn(script(body, tx));
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(axum::body::Body::new(ChannelBody(rx)))
                .unwrap()
        }
    };
    let router = axum::Router::new()
        .route("/mcp", axum::routing::post(handler))
        .route("/health", axum::routing::get(|| async { "ok" }));
    serve(router).await
}

/// One SSE event carrying `data`.
pub fn event(data: &Value) -> bytes::Bytes {
    bytes::Bytes::from(format!("event: message\ndata: {data}\n\n"))
}

impl World {
    /// Creates the MCP agent `slug` (no version yet).
    pub async fn agent(&self, publisher: &Person, slug: &str) {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "/api/v1/agents",
                Some(json!({"slug": slug, "name": slug, "description": "d", "category": "devtools", "protocol": "mcp",
                    "platforms": [], "capabilities": [], "tags": [], "use_cases": [], "governance": {}, "support": {}})),
                &publisher.token,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Publishes `slug` 1.0.0 at `upstream_url` and installs it for `consumer`; returns
    /// (installation id, key id, key).
    pub async fn listed(
        &self,
        publisher: &Person,
        consumer: &Person,
        slug: &str,
        upstream_url: &str,
        base_fee: &str,
        functions: Value,
    ) -> (String, String, String) {
        self.agent(publisher, slug).await;
        self.version(publisher, slug, "1.0.0", upstream_url, base_fee, functions).await;
        self.install(consumer, slug).await
    }

    /// Sets the org's credit balance to exactly `nanos` (moving the rest back to grants).
    pub async fn set_balance(&self, who: &Person, nanos: i64) {
        use tollgate_store::ledger::{AccountKind, NewTransfer, PLATFORM};
        self.gateway.flush().await;
        let org = self.store.ledger_account(AccountKind::OrgCredit, &who.org_id).await.unwrap();
        let grants = self.store.ledger_account(AccountKind::Grants, PLATFORM).await.unwrap();
        let delta = org.balance.0 - nanos;
        let key = format!("test-set-balance-{}-{}", who.org_id, tollgate_domain::secret::random_token(8).unwrap());
        let (debit, credit, amount) =
            if delta > 0 { (&org.id, &grants.id, delta) } else { (&grants.id, &org.id, -delta) };
        if amount > 0 {
            self.store
                .transfer(&NewTransfer {
                    idempotency_key: &key,
                    debit_account_id: debit,
                    credit_account_id: credit,
                    amount: tollgate_domain::Nanos(amount),
                    kind: "grant",
                    memo: "test",
                    allow_overdraft: true,
                })
                .await
                .unwrap();
        }
    }

    /// The usage record of the call answered with `reply` (by its `X-Request-Id`).
    pub async fn record(&self, reply: &Reply) -> tollgate_store::calls::UsageRecord {
        self.gateway.flush().await;
        let id = reply.header("x-request-id").expect("an x-request-id header");
        self.store.usage_record(&id).await.unwrap().expect("a usage record").0
    }

    /// Asserts the ledger balances: the sum of all accounts is zero, each balance equals
    /// its transfers and each pending amount its open holds.
    pub async fn assert_ledger_balances(&self) {
        self.gateway.flush().await;
        let (sum, consistent) = self.store.ledger_audit().await.unwrap();
        assert_eq!((sum, consistent), (0, true), "the ledger balances");
    }
}
