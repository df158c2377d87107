//! The in-process test harness: the real router over a fresh store (SQLite, or a fresh
//! PostgreSQL schema when `TOLLGATE_TEST_POSTGRES_URL` is set), driven with `oneshot`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tollgate_api::{ApiConfig, AppState};
use tollgate_domain::secret::Sealer;
use tollgate_integrations::payments::{LocalPayments, PaymentProvider};
use tollgate_store::testing::TestStore;
use tower::ServiceExt;

/// Where the apps that take payments say they are served (checkout and return links).
pub const PUBLIC_URL: &str = "https://tollgate.test";

/// A running API over a fresh store.
pub struct TestApp {
    pub store: TestStore,
    pub state: AppState,
    router: Router,
}

/// Who makes a request.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// `Authorization: Bearer …`.
    pub bearer: Option<String>,
    /// The session cookie value.
    pub session: Option<String>,
    /// Sent as `X-CSRF-Token`.
    pub csrf: Option<String>,
    /// Sent as `X-Tollgate-Org`.
    pub org: Option<String>,
}

/// A signed-up user with an all-scopes account token.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub org_id: String,
    pub token: String,
    pub session: String,
    pub csrf: String,
}

impl TestUser {
    /// Calls with the user's account token.
    pub fn caller(&self) -> Caller {
        Caller { bearer: Some(self.token.clone()), ..Caller::default() }
    }

    /// Calls with the user's account token, acting in `org`.
    pub fn in_org(&self, org: &str) -> Caller {
        Caller { bearer: Some(self.token.clone()), org: Some(org.to_string()), ..Caller::default() }
    }

    /// Calls with the session cookie and CSRF token, as the browser does.
    pub fn browser(&self) -> Caller {
        Caller { session: Some(self.session.clone()), csrf: Some(self.csrf.clone()), ..Caller::default() }
    }
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl TestApp {
    pub async fn new() -> TestApp {
        let store = TestStore::new().await.expect("test store");
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        let state = AppState::new(store.store.clone(), ApiConfig::default(), sealer);
        let router = tollgate_api::router(state.clone());
        TestApp { store, state, router }
    }

    /// Sends a raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        who: &Caller,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(b) = &who.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
        }
        if let Some(s) = &who.session {
            req = req.header(header::COOKIE, format!("tollgate_session={s}"));
        }
        if let Some(c) = &who.csrf {
            req = req.header("x-csrf-token", c);
        }
        if let Some(o) = &who.org {
            req = req.header("x-tollgate-org", o);
        }
        let response = self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, body, headers }
    }

    /// Sends JSON (or nothing) as `who`.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>, who: &Caller) -> Reply {
        match body {
            Some(b) => self.raw(method, path, Some("application/json"), serde_json::to_vec(&b).unwrap(), who).await,
            None => self.raw(method, path, None, Vec::new(), who).await,
        }
    }

    pub async fn get(&self, path: &str, who: &Caller) -> Reply {
        self.call(Method::GET, path, None, who).await
    }

    pub async fn post(&self, path: &str, body: Value, who: &Caller) -> Reply {
        self.call(Method::POST, path, Some(body), who).await
    }

    /// Signs up `email` and creates an all-scopes account token for it.
    pub async fn user(&self, email: &str) -> TestUser {
        let r = self
            .post(
                "/api/v1/auth/signup",
                json!({"email": email, "password": "correct horse 42", "name": email.split('@').next().unwrap()}),
                &Caller::default(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let cookie = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        let session = cookie.split(';').next().unwrap().trim_start_matches("tollgate_session=").to_string();
        let csrf = r.body["csrf_token"].as_str().unwrap().to_string();
        let browser = Caller { session: Some(session.clone()), csrf: Some(csrf.clone()), ..Caller::default() };
        let t = self.post("/api/v1/tokens", json!({"name": "tests"}), &browser).await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        TestUser {
            id: r.body["user"]["id"].as_str().unwrap().into(),
            email: email.into(),
            org_id: r.body["org"]["id"].as_str().unwrap().into(),
            token: t.body["token"].as_str().unwrap().into(),
            session,
            csrf,
        }
    }
}

impl TestApp {
    /// Publishes an MCP agent with one per-request-priced version 1.0.0 as `who`.
    pub async fn publish(&self, who: &Caller, slug: &str) {
        let agent = self
            .post(
                "/api/v1/agents",
                json!({
                    "slug": slug, "name": format!("Agent {slug}"), "description": "An agent for tests.",
                    "category": "devtools", "protocol": "mcp", "platforms": ["Cursor"], "capabilities": ["testing"],
                    "tags": [], "use_cases": [], "governance": {}, "support": {}
                }),
                who,
            )
            .await;
        assert_eq!(agent.status, StatusCode::CREATED, "{:?}", agent.body);
        let version = self
            .post(
                &format!("/api/v1/agents/{slug}/versions"),
                json!({
                    "version": "1.0.0", "upstream_url": "http://127.0.0.1:9/mcp", "upstream_headers": {"Authorization": "Bearer upstream-secret"},
                    "base_fee": "0.0001",
                    "functions": [{"name": "echo", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 0, "free_reset": "lifetime"}],
                    "dependencies": [], "task_timeout_seconds": 300, "cold_start": false
                }),
                who,
            )
            .await;
        assert_eq!(version.status, StatusCode::CREATED, "{:?}", version.body);
    }

    /// Installs `slug` in `who`'s org and returns the installation id.
    pub async fn install(&self, who: &Caller, slug: &str) -> String {
        let r = self.post("/api/v1/installations", json!({"agent": slug}), who).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Creates a key on an installation; returns (key id, secret).
    pub async fn key(&self, who: &Caller, installation: &str) -> (String, String) {
        let r = self.post(&format!("/api/v1/installations/{installation}/keys"), json!({"name": "k"}), who).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (r.body["id"].as_str().unwrap().to_string(), r.body["key"].as_str().unwrap().to_string())
    }
}

impl TestApp {
    /// A running API with `config` over a fresh store.
    pub async fn with_config(config: ApiConfig) -> TestApp {
        let store = TestStore::new().await.expect("test store");
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        let state = AppState::new(store.store.clone(), config, sealer);
        let router = tollgate_api::router(state.clone());
        TestApp { store, state, router }
    }

    /// A running API with `config` over a fresh store, its state shaped by `shape` (a
    /// payment provider, an email sender).
    pub async fn with_state(config: ApiConfig, shape: impl FnOnce(AppState) -> AppState) -> TestApp {
        let store = TestStore::new().await.expect("test store");
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        let state = shape(AppState::new(store.store.clone(), config, sealer));
        let router = tollgate_api::router(state.clone());
        TestApp { store, state, router }
    }

    /// A running API at [`PUBLIC_URL`] whose payments go to `provider`.
    pub async fn with_payments(provider: Arc<dyn PaymentProvider>) -> TestApp {
        let config = ApiConfig { public_url: PUBLIC_URL.into(), ..ApiConfig::default() };
        TestApp::with_state(config, move |s| s.with_payments(provider)).await
    }

    /// A running API at [`PUBLIC_URL`] taking test payments with the local provider.
    pub async fn with_local_payments() -> TestApp {
        TestApp::with_payments(Arc::new(LocalPayments::new(PUBLIC_URL).unwrap())).await
    }

    /// Creates a team owned by `owner`; returns its id.
    pub async fn team(&self, owner: &TestUser, name: &str) -> String {
        let r = self.post("/api/v1/orgs", json!({"name": name}), &owner.caller()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Signs `email` up and adds them to `team` as `role` (invited by `owner`).
    pub async fn join(&self, owner: &TestUser, team: &str, email: &str, role: &str) -> TestUser {
        let user = self.user(email).await;
        let path = format!("/api/v1/orgs/{team}/invitations");
        let inv = self.post(&path, json!({"email": email, "role": role}), &owner.caller()).await;
        assert_eq!(inv.status, StatusCode::CREATED, "{:?}", inv.body);
        let token = inv.body["token"].as_str().unwrap();
        let accepted = self.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &user.caller()).await;
        assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
        user
    }

    /// A handle on the router, for requests sent in parallel.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Sends a request built by the test (extensions such as `ConnectInfo`, extra headers).
    pub async fn send(&self, req: Request<Body>) -> Reply {
        send(self.router.clone(), req).await
    }
}

/// Sends `req` to `router` and decodes the reply.
pub async fn send(router: Router, req: Request<Body>) -> Reply {
    let response = router.oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply { status, body, headers }
}
