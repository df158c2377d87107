//! `serve --demo`: seeds a publisher, a consumer and agents whose upstreams are the real
//! example MCP servers of this same binary — all through the public API, so the demo
//! data is exactly what a person could have made. Seeding twice changes nothing.

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tollgate_api::AppState;
use tower::ServiceExt;

/// The demo accounts' password (demo data only).
pub const DEMO_PASSWORD: &str = "demo-tollgate-42";
const PUBLISHER: &str = "publisher@demo.tollgate.dev";
const CONSUMER: &str = "demo@demo.tollgate.dev";

struct Client {
    router: axum::Router,
    cookie: String,
    csrf: String,
}

impl Client {
    async fn send(
        router: &axum::Router,
        method: Method,
        path: &str,
        body: Value,
        cookie: &str,
        csrf: &str,
    ) -> Result<(u16, Value, String)> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, cookie)
            .header("x-csrf-token", csrf)
            .body(Body::from(serde_json::to_vec(&body)?))?;
        let response = router.clone().oneshot(request).await?;
        let status = response.status().as_u16();
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .to_string();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value, set_cookie))
    }

    async fn sign_up(router: &axum::Router, email: &str, name: &str) -> Result<Client> {
        let body = json!({"email": email, "password": DEMO_PASSWORD, "name": name});
        let (status, value, cookie) = Self::send(router, Method::POST, "/api/v1/auth/signup", body, "", "").await?;
        if status != 201 {
            bail!("demo sign-up of {email} failed: {value}");
        }
        let csrf = value["csrf_token"].as_str().unwrap_or_default().to_string();
        Ok(Client { router: router.clone(), cookie, csrf })
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Result<Value> {
        let (status, value, _) = Self::send(&self.router, method.clone(), path, body, &self.cookie, &self.csrf).await?;
        if !(200..300).contains(&status) {
            bail!("demo seeding: {method} {path} answered {status}: {value}");
        }
        Ok(value)
    }
}

struct DemoAgent {
    slug: &'static str,
    name: &'static str,
    category: &'static str,
    description: &'static str,
    upstream: &'static str,
    function: &'static str,
    pricing: Value,
    capabilities: &'static [&'static str],
}

fn agents() -> Vec<DemoAgent> {
    vec![
        DemoAgent {
            slug: "echo",
            name: "Echo",
            category: "devtools",
            description: "Sends back exactly what you give it. The quickest way to check that your key, your client and the gateway work.",
            upstream: "echo",
            function: "echo",
            pricing: json!({"model": "per_request", "price": "0.001"}),
            capabilities: &["testing"],
        },
        DemoAgent {
            slug: "word-counter",
            name: "Word Counter",
            category: "productivity",
            description: "Counts the words and characters of any text, Unicode-aware.",
            upstream: "word-count",
            function: "count_words",
            pricing: json!({"model": "per_request", "price": "0.0005"}),
            capabilities: &["text analysis"],
        },
        DemoAgent {
            slug: "summarizer",
            name: "Summarizer",
            category: "productivity",
            description: "Shortens long text to its opening words and reports the tokens it used, billed per token.",
            upstream: "usage-reporter",
            function: "summarize",
            pricing: json!({"model": "per_token", "input_per_million": "2.00", "output_per_million": "4.00", "cache_per_million": "0.50"}),
            capabilities: &["summarization", "reasoning"],
        },
        DemoAgent {
            slug: "release-notes",
            name: "Release Notes Writer",
            category: "devtools",
            description: "Turns a list of changes into short release notes for your changelog.",
            upstream: "usage-reporter",
            function: "summarize",
            pricing: json!({"model": "per_token", "input_per_million": "1.00", "output_per_million": "3.00", "cache_per_million": "0.25"}),
            capabilities: &["code generation", "summarization"],
        },
        DemoAgent {
            slug: "ticket-triage",
            name: "Ticket Triage",
            category: "communication",
            description: "Reads a support ticket and sizes it up before a person picks it up.",
            upstream: "word-count",
            function: "count_words",
            pricing: json!({"model": "per_request", "price": "0.002"}),
            capabilities: &["classification", "planning"],
        },
        DemoAgent {
            slug: "audit-trail",
            name: "Audit Trail",
            category: "security",
            description: "Repeats inputs verbatim into your own audit pipeline, with SOC 2 and HIPAA controls declared.",
            upstream: "echo",
            function: "echo",
            pricing: json!({"model": "per_request", "price": "0.0002"}),
            capabilities: &["compliance"],
        },
    ]
}

/// Seeds the demo once; returns the lines to print (credentials, and the key when new).
pub async fn seed(state: &AppState, public_url: &str) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let already = state.store.user_by_email(CONSUMER).await?.is_some();
    if !already {
        let router = tollgate_api::router(state.clone());
        let publisher =
            Client::sign_up(&router, PUBLISHER, "Demo Publisher").await.context("seeding the demo publisher")?;
        let consumer = Client::sign_up(&router, CONSUMER, "Demo User").await.context("seeding the demo consumer")?;
        for (i, a) in agents().iter().enumerate() {
            publisher
                .call(Method::POST, "/api/v1/agents", json!({
                    "slug": a.slug, "name": a.name, "description": a.description, "category": a.category,
                    "protocol": "mcp", "platforms": ["Claude Desktop", "Cursor", "VS Code"],
                    "capabilities": a.capabilities, "tags": ["demo"],
                    "use_cases": [format!("Try {} from your MCP client in a minute.", a.name)],
                    "governance": {
                        "data_collected": ["tool arguments"], "storage_region": "eu-central", "storage_provider": "Self-hosted",
                        "retention_days": 0, "training_use": false,
                        "compliance": if i % 2 == 0 { json!(["gdpr"]) } else { json!(["gdpr", "soc2", "hipaa"]) },
                        "security_measures": ["TLS in transit", "no content stored"]
                    },
                    "support": {"email": "support@demo.tollgate.dev", "url": public_url, "docs_url": format!("{public_url}/api/v1/openapi.json")}
                }))
                .await?;
            publisher
                .call(Method::POST, &format!("/api/v1/agents/{}/versions", a.slug), json!({
                    "version": "1.0.0",
                    "upstream_url": format!("{public_url}/_examples/{}/mcp", a.upstream),
                    "upstream_headers": {},
                    "base_fee": "0.0001",
                    "functions": [{"name": a.function, "pricing": a.pricing, "free_calls": 25, "free_reset": "monthly"}],
                    "dependencies": [],
                    "task_timeout_seconds": 300,
                    "cold_start": false
                }))
                .await?;
        }
        for (slug, rating, body) in [
            ("echo", 5, "Exactly what I needed to test my MCP setup."),
            ("summarizer", 4, "Fast, and the token usage it reports matches my own counts."),
            ("word-counter", 5, "Simple and correct with emoji and accents."),
        ] {
            consumer
                .call(Method::POST, &format!("/api/v1/agents/{slug}/reviews"), json!({"rating": rating, "body": body}))
                .await?;
        }
        let installed = consumer.call(Method::POST, "/api/v1/installations", json!({"agent": "echo"})).await?;
        let id = installed["id"].as_str().unwrap_or_default();
        let key = consumer
            .call(Method::POST, &format!("/api/v1/installations/{id}/keys"), json!({"name": "Demo key"}))
            .await?;
        lines.push(format!("demo: a key for the Echo agent (shown once): {}", key["key"].as_str().unwrap_or_default()));
    }
    lines.push(format!("demo: consumer {CONSUMER} / {DEMO_PASSWORD}; publisher {PUBLISHER} / {DEMO_PASSWORD}"));
    Ok(lines)
}
