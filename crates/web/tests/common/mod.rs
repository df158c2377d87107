//! The in-process harness for the web UI: the API and the UI routers over a fresh store
//! (SQLite, or a fresh PostgreSQL schema when `TOLLGATE_TEST_POSTGRES_URL` is set), driven
//! as a browser would, with cookies and form posts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tollgate_api::{ApiConfig, AppState};
use tollgate_domain::secret::Sealer;
use tollgate_store::testing::TestStore;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse 42";

pub struct World {
    pub store: TestStore,
    pub state: AppState,
    pub app: Router,
    pub sealer: Sealer,
}

/// A signed-in browser, and an account token of the same person for set-up calls.
#[derive(Clone, Debug)]
pub struct Person {
    pub email: String,
    /// `tollgate_session=…`
    pub cookie: String,
    pub csrf: String,
    pub token: String,
    pub org_id: String,
    pub user_id: String,
}

impl Person {
    /// The same browser, with the UI acting in `org` (the cookie the org switcher sets).
    pub fn in_org(&self, org: &str) -> Person {
        let session = self.cookie.split(';').next().unwrap().to_string();
        Person { cookie: format!("{session}; tollgate_org={org}"), ..self.clone() }
    }
}

/// A page as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The session cookie the page set, as `tollgate_session=…`.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("tollgate_session="))
            .map(|v| v.split(';').next().unwrap().to_string())
    }

    #[track_caller]
    pub fn assert_contains(&self, text: &str) {
        assert!(self.html.contains(text), "expected {text:?} in the page ({}):\n{}", self.status, self.html);
    }

    #[track_caller]
    pub fn assert_lacks(&self, text: &str) {
        assert!(!self.html.contains(text), "did not expect {text:?} in the page:\n{}", self.html);
    }

    /// The text of the element carrying `data-testid="{id}"` up to its first `<`.
    pub fn testid_text(&self, id: &str) -> String {
        let marker = format!("data-testid=\"{id}\"");
        let at = self.html.find(&marker).unwrap_or_else(|| panic!("no {marker} in:\n{}", self.html));
        let rest = &self.html[at..];
        let start = rest.find('>').unwrap() + 1;
        let end = rest[start..].find('<').unwrap();
        html_unescape(&rest[start..start + end])
    }
}

/// Text with the entities the templates produce (named and numeric) decoded.
pub fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl World {
    pub async fn new() -> World {
        World::with_public_url("http://127.0.0.1:8080").await
    }

    pub async fn with_public_url(public_url: &str) -> World {
        let store = TestStore::new().await.expect("test store");
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        let config = ApiConfig { public_url: public_url.to_string(), ..ApiConfig::default() };
        let state = AppState::new(store.store.clone(), config, sealer.clone());
        let app = tollgate_web::site(state.clone(), tollgate_web::WebConfig::default());
        World { store, state, app, sealer }
    }

    /// The whole instance on a real socket: the API, the UI and the gateway, with the
    /// example MCP servers as upstreams. Returns the world (whose router includes the
    /// gateway), the gateway, and the example servers' base URL.
    pub async fn with_gateway() -> (World, tollgate_gateway::Gateway, String) {
        let upstream = serve(Router::new().nest("/_examples", tollgate_examples::router())).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut world = World::with_public_url(&base).await;
        let config = tollgate_gateway::GatewayConfig { public_url: base.clone(), ..Default::default() };
        let limiter = std::sync::Arc::new(tollgate_gateway::ratelimit::MemoryRateLimiter::new());
        let gateway =
            tollgate_gateway::Gateway::start(world.store.store.clone(), world.sealer.clone(), limiter, None, config)
                .unwrap();
        world.app = world.app.merge(gateway.router());
        let app = world.app.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (world, gateway, upstream)
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, bytes)
    }

    /// `GET path` as `who` (or nobody).
    pub async fn get(&self, path: &str, who: Option<&Person>) -> Page {
        let mut req = Request::builder().uri(path);
        if let Some(p) = who {
            req = req.header(header::COOKIE, &p.cookie);
        }
        let (status, headers, bytes) = self.send(req.body(Body::empty()).unwrap()).await;
        Page { status, headers, html: String::from_utf8_lossy(&bytes).into() }
    }

    /// Follows a redirect `page` answered, as `who` (the fragment stays in the browser).
    pub async fn follow(&self, page: &Page, who: Option<&Person>) -> Page {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "not a redirect: {}", page.html);
        let location = page.location().split('#').next().unwrap().to_string();
        self.get(&location, who).await
    }

    /// Posts a form as `who` (or nobody).
    pub async fn form(&self, path: &str, fields: &[(&str, &str)], who: Option<&Person>) -> Page {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(p) = who {
            req = req.header(header::COOKIE, &p.cookie);
        }
        let (status, headers, bytes) = self.send(req.body(Body::from(body)).unwrap()).await;
        Page { status, headers, html: String::from_utf8_lossy(&bytes).into() }
    }

    /// Posts the log-in or sign-up form at `path` as a browser with no session would: it
    /// opens the form first (which sets the form-token cookie), then posts with the token.
    pub async fn auth_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let (cookie, token) = self.form_token(path).await;
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.form_with_cookie(path, &all, &cookie).await
    }

    /// The form-token cookie (`tollgate_form=…`) and the hidden field's token of the form
    /// at `path`.
    pub async fn form_token(&self, path: &str) -> (String, String) {
        let page = self.get(path, None).await;
        let cookie = page
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("tollgate_form="))
            .map(|v| v.split(';').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("{path} sets no form token cookie: {:?}", page.headers));
        let marker = "name=\"csrf\" value=\"";
        let at = page.html.find(marker).unwrap_or_else(|| panic!("no token field in {path}")) + marker.len();
        let token = page.html[at..at + page.html[at..].find('"').unwrap()].to_string();
        (cookie, token)
    }

    /// Posts a form with the `Cookie` header `cookie`.
    pub async fn form_with_cookie(&self, path: &str, fields: &[(&str, &str)], cookie: &str) -> Page {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookie);
        let (status, headers, bytes) = self.send(req.body(Body::from(body)).unwrap()).await;
        Page { status, headers, html: String::from_utf8_lossy(&bytes).into() }
    }

    /// Posts a form as `who` with the session's CSRF token added.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)], who: &Person) -> Page {
        let mut all = vec![("csrf", who.csrf.as_str())];
        all.extend_from_slice(fields);
        self.form(path, &all, Some(who)).await
    }

    /// Calls the API with `who`'s account token.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>, who: &Person) -> (StatusCode, Value) {
        let mut req =
            Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {}", who.token));
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&b).unwrap())
            }
            None => Body::empty(),
        };
        let (status, _, bytes) = self.send(req.body(body).unwrap()).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Signs up through the sign-up form and makes an account token for set-up calls.
    pub async fn person(&self, email: &str) -> Person {
        let name = email.split('@').next().unwrap();
        let page = self.auth_form("/signup", &[("name", name), ("email", email), ("password", PASSWORD)]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        let cookie = page.session_cookie().expect("the sign-up sets the session cookie");
        let req = Request::builder().uri("/api/v1/me").header(header::COOKIE, &cookie);
        let (_, _, bytes) = self.send(req.body(Body::empty()).unwrap()).await;
        let me: Value = serde_json::from_slice(&bytes).unwrap();
        let csrf = me["csrf_token"].as_str().unwrap().to_string();
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/tokens")
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"name": "tests"}).to_string()))
            .unwrap();
        let (status, _, bytes) = self.send(req).await;
        assert_eq!(status, StatusCode::CREATED);
        let token: Value = serde_json::from_slice(&bytes).unwrap();
        Person {
            email: email.into(),
            cookie,
            csrf,
            token: token["token"].as_str().unwrap().into(),
            org_id: me["user"]["personal_org_id"].as_str().unwrap().into(),
            user_id: me["user"]["id"].as_str().unwrap().into(),
        }
    }

    /// Lists an agent with `fields` merged over a plain MCP listing.
    pub async fn list(&self, who: &Person, slug: &str, fields: Value) {
        let mut agent = json!({
            "slug": slug, "name": format!("Agent {slug}"), "description": "An agent for tests.",
            "category": "devtools", "protocol": "mcp", "platforms": ["Cursor"], "capabilities": ["testing"],
            "tags": [], "use_cases": [], "governance": {}, "support": {}
        });
        for (k, v) in fields.as_object().unwrap() {
            agent[k] = v.clone();
        }
        let (status, body) = self.api(Method::POST, "/api/v1/agents", Some(agent), who).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Publishes `version` of `slug` with `functions`, forwarding to `upstream_url`.
    pub async fn version(&self, who: &Person, slug: &str, version: &str, upstream_url: &str, functions: Value) {
        let body = json!({
            "version": version, "upstream_url": upstream_url, "upstream_headers": {}, "base_fee": "0.0001",
            "functions": functions, "dependencies": [], "task_timeout_seconds": 300, "cold_start": false
        });
        let (status, reply) = self.api(Method::POST, &format!("/api/v1/agents/{slug}/versions"), Some(body), who).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }

    /// Lists and publishes `slug` 1.0.0 with one function `echo` at $0.001 a call.
    pub async fn publish(&self, who: &Person, slug: &str) {
        self.list(who, slug, json!({})).await;
        let functions = json!([{"name": "echo", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 5, "free_reset": "monthly"}]);
        self.version(who, slug, "1.0.0", "http://127.0.0.1:9/mcp", functions).await;
    }

    /// Installs `slug` through the install form; returns the installation id.
    pub async fn install(&self, who: &Person, slug: &str) -> String {
        let page = self.submit(&format!("/agents/{slug}/install"), &[], who).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        let location = page.location().to_string();
        assert!(location.starts_with("/usage/"), "{location}");
        location.trim_start_matches("/usage/").split('?').next().unwrap().to_string()
    }
}

impl World {
    /// Creates a team owned by `owner` through the API; answers its id.
    pub async fn team(&self, owner: &Person, name: &str) -> String {
        let (status, body) = self.api(Method::POST, "/api/v1/orgs", Some(json!({"name": name})), owner).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Adds `person` to `team` with `role` (invited by `owner`, accepted through the API).
    pub async fn join(&self, owner: &Person, team: &str, person: &Person, role: &str) {
        let path = format!("/api/v1/orgs/{team}/invitations");
        let (status, body) =
            self.api(Method::POST, &path, Some(json!({"email": person.email, "role": role})), owner).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = body["token"].as_str().unwrap();
        let (status, body) =
            self.api(Method::POST, &format!("/api/v1/invitations/{token}/accept"), Some(json!({})), person).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Grants `amount` USD of credits to `org` as the operator would.
    pub async fn grant(&self, org: &str, amount: &str) {
        let nanos = tollgate_domain::Nanos::parse_usd(amount).unwrap();
        tollgate_api::service::grant_credits(
            &self.state,
            org,
            nanos,
            "Operator grant",
            &format!("test:{org}:{amount}"),
        )
        .await
        .unwrap();
    }
}

/// Everything logged while the guard lives, on this thread (tests run on one thread), as
/// one line per event and span: its message and every field.
pub fn capture_logs() -> (tracing::subscriber::DefaultGuard, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};

    struct Line(String);
    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={value:?} ", field.name()));
        }
    }
    struct Capture {
        lines: Arc<Mutex<Vec<String>>>,
        next: AtomicU64,
    }
    impl Capture {
        fn push(&self, line: Line) {
            self.lines.lock().unwrap().push(line.0);
        }
    }
    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut line = Line(format!("span {} ", span.metadata().name()));
            span.record(&mut line);
            self.push(line);
            tracing::span::Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
            let mut line = Line(String::new());
            values.record(&mut line);
            self.push(line);
        }
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut line = Line(format!("{} ", event.metadata().level()));
            event.record(&mut line);
            self.push(line);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    /// The process-wide subscriber: interested in everything, keeps nothing. Tests run in
    /// parallel threads, and tracing caches each call site's interest across all of them:
    /// a site first reached on a thread with no subscriber would otherwise be cached as
    /// "never" and vanish from another thread's capture.
    struct Silent;
    impl tracing::Subscriber for Silent {
        fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
            tracing::subscriber::Interest::always()
        }
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    static SILENT: std::sync::Once = std::sync::Once::new();
    SILENT.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Silent);
    });

    let lines = Arc::new(Mutex::new(Vec::new()));
    let guard = tracing::subscriber::set_default(Capture { lines: lines.clone(), next: AtomicU64::new(0) });
    tracing::callsite::rebuild_interest_cache();
    (guard, lines)
}

/// Serves `router` on a free port of 127.0.0.1; answers its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    base
}

/// Checks what a browser and a screen reader need of `html`: the elements that must be
/// closed are closed in order, ids are unique, and every form control (but hidden ones) has
/// a `<label for>` or an `aria-label`.
#[track_caller]
pub fn check_html(html: &str) {
    const CLOSED: [&str; 22] = [
        "html", "head", "body", "main", "header", "footer", "nav", "section", "article", "div", "form", "table",
        "thead", "tbody", "tr", "ul", "ol", "li", "details", "summary", "fieldset", "select",
    ];
    let mut stack: Vec<String> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut labelled = std::collections::HashSet::new();
    let mut controls: Vec<(String, String)> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end =
            rest.find('>').unwrap_or_else(|| panic!("a tag is not closed near {:?}", &rest[..rest.len().min(80)]));
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let attr = |key: &str| -> Option<String> {
            let pat = format!(" {key}=\"");
            tag.find(&pat).map(|i| {
                let v = &tag[i + pat.len()..];
                v[..v.find('"').unwrap()].to_string()
            })
        };
        if !closing {
            if let Some(id) = attr("id") {
                assert!(ids.insert(id.clone()), "the id {id:?} is used twice");
            }
            if name == "label"
                && let Some(f) = attr("for")
            {
                labelled.insert(f);
            }
            if matches!(name.as_str(), "input" | "select" | "textarea") && attr("type").as_deref() != Some("hidden") {
                let described = attr("aria-label").is_some();
                if !described {
                    let id = attr("id").unwrap_or_else(|| panic!("a form control without an id: <{tag}>"));
                    controls.push((id, tag.to_string()));
                }
            }
        }
        if !CLOSED.contains(&name.as_str()) {
            continue;
        }
        if closing {
            let open = stack.pop().unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
        } else if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "not closed: {stack:?}");
    for (id, tag) in controls {
        assert!(labelled.contains(&id), "no <label for=\"{id}\"> for <{tag}>");
    }
}
