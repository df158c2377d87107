//! `serve --demo`: seeds a publisher, a consumer and agents whose upstreams are the real
//! example MCP servers of this same binary — all through the public API, so the demo
//! data is exactly what a person could have made.
//!
//! Seeding is a list of steps, each of which first looks whether it is already done, so a
//! second start changes nothing and a start after a crash mid-seeding finishes the job. On
//! every start the demo agents' upstreams follow the address the server serves on now: a
//! published version's upstream never changes, so when the live demo versions point at
//! the examples of another address, a new patch version at this address is published and
//! the stale ones are retired.

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

/// A signed-in demo account calling the API in-process.
struct Client {
    router: axum::Router,
    cookie: String,
    csrf: String,
}

/// An answer: status and JSON body (`null` when there is none).
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

async fn send(
    router: &axum::Router,
    method: Method,
    path: &str,
    body: Option<&Value>,
    cookie: &str,
    csrf: &str,
) -> Result<(Answer, String)> {
    let mut request = Request::builder().method(method).uri(path).header(header::COOKIE, cookie);
    if !csrf.is_empty() {
        request = request.header("x-csrf-token", csrf);
    }
    let request = match body {
        Some(body) => {
            request.header(header::CONTENT_TYPE, "application/json").body(Body::from(serde_json::to_vec(body)?))?
        }
        None => request.body(Body::empty())?,
    };
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
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((Answer { status, body }, set_cookie))
}

impl Client {
    /// Logs the demo account `email` in, or signs it up if it does not exist yet (or, when
    /// another replica signed it up a moment ago, logs in after all).
    async fn account(state: &AppState, router: &axum::Router, email: &str, name: &str) -> Result<Client> {
        let login = json!({"email": email, "password": DEMO_PASSWORD});
        let signup = json!({"email": email, "password": DEMO_PASSWORD, "name": name});
        let log_in = || send(router, Method::POST, "/api/v1/auth/login", Some(&login), "", "");
        let (answer, cookie) = if state.store.user_by_email(email).await?.is_some() {
            log_in().await?
        } else {
            match send(router, Method::POST, "/api/v1/auth/signup", Some(&signup), "", "").await? {
                (answer, _) if answer.status == 409 => log_in().await?,
                signed_up => signed_up,
            }
        };
        if answer.status == 401 {
            bail!(
                "the demo account {email} exists but no longer has the demo password; \
                 start without --demo, or with a new data directory or database"
            );
        }
        if !answer.ok() {
            bail!("signing in the demo account {email} answered {}: {}", answer.status, answer.body);
        }
        let csrf = answer.body["csrf_token"].as_str().unwrap_or_default().to_string();
        Ok(Client { router: router.clone(), cookie, csrf })
    }

    /// Sends a request; any status is returned.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer> {
        Ok(send(&self.router, method, path, body.as_ref(), &self.cookie, &self.csrf).await?.0)
    }

    /// Sends a request that must succeed.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let answer = self.send(method.clone(), path, body).await?;
        if !answer.ok() {
            bail!("demo seeding: {method} {path} answered {}: {}", answer.status, answer.body);
        }
        Ok(answer.body)
    }

    /// Sends a request that must succeed or find it already done (409: an earlier start, or
    /// another replica, did it).
    async fn create(&self, path: &str, body: Value) -> Result<()> {
        let answer = self.send(Method::POST, path, Some(body)).await?;
        if !answer.ok() && answer.status != 409 {
            bail!("demo seeding: POST {path} answered {}: {}", answer.status, answer.body);
        }
        Ok(())
    }

    /// Ends the session the seeder used.
    async fn log_out(self) -> Result<()> {
        self.send(Method::POST, "/api/v1/auth/logout", None).await.map(|_| ())
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

/// Where a demo agent's upstream is when this server is reached at `public_url`.
fn examples_url(public_url: &str, upstream: &str) -> String {
    format!("{}/_examples/{upstream}/mcp", public_url.trim_end_matches('/'))
}

/// The version after every one in `versions` (`major.minor.patch+1` of the highest).
fn next_version(versions: &[Value]) -> String {
    let numbers = |v: &Value| -> Option<(u64, u64, u64)> {
        let text = v["version"].as_str()?;
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    };
    let (major, minor, patch) = versions.iter().filter_map(numbers).max().unwrap_or((1, 0, 0));
    format!("{major}.{minor}.{}", patch + 1)
}

/// The version to publish for `a` with its upstream at `upstream_url`.
fn version_body(a: &DemoAgent, version: &str, upstream_url: &str) -> Value {
    json!({
        "version": version,
        "upstream_url": upstream_url,
        "upstream_headers": {},
        "base_fee": "0.0001",
        "functions": [{"name": a.function, "pricing": a.pricing, "free_calls": 25, "free_reset": "monthly"}],
        "dependencies": [],
        "task_timeout_seconds": 300,
        "cold_start": false
    })
}

fn support(public_url: &str) -> Value {
    let base = public_url.trim_end_matches('/');
    json!({"email": "support@demo.tollgate.dev", "url": base, "docs_url": format!("{base}/api/v1/openapi.json")})
}

/// Makes the demo agent `a` exist with a live version whose upstream is this server's
/// example (see the module's documentation), and its support links on this address.
async fn seed_agent(publisher: &Client, i: usize, a: &DemoAgent, public_url: &str) -> Result<()> {
    let path = format!("/api/v1/agents/{}", a.slug);
    let found = publisher.send(Method::GET, &path, None).await?;
    let agent = match found.status {
        200 => found.body,
        404 => {
            publisher
                .create("/api/v1/agents", json!({
                    "slug": a.slug, "name": a.name, "description": a.description, "category": a.category,
                    "protocol": "mcp", "platforms": ["Claude Desktop", "Cursor", "VS Code"],
                    "capabilities": a.capabilities, "tags": ["demo"],
                    "use_cases": [format!("Try {} from your MCP client in a minute.", a.name)],
                    "governance": {
                        "data_collected": ["tool arguments"], "storage_region": "eu-central", "storage_provider": "Self-hosted",
                        "retention_days": 0, "training_use": false,
                        "compliance": if i.is_multiple_of(2) { json!(["gdpr"]) } else { json!(["gdpr", "soc2", "hipaa"]) },
                        "security_measures": ["TLS in transit", "no content stored"]
                    },
                    "support": support(public_url)
                }))
                .await?;
            // Read it back: a slug taken by someone else's agent is a 404 here too.
            publisher
                .call(Method::GET, &path, None)
                .await
                .with_context(|| format!("the demo agent slug {:?} belongs to another publisher", a.slug))?
        }
        status => bail!("demo seeding: GET {path} answered {status}: {}", found.body),
    };
    let versions = agent["versions"].as_array().cloned().unwrap_or_default();
    let wanted = examples_url(public_url, a.upstream);
    if versions.is_empty() {
        publisher.create(&format!("{path}/versions"), version_body(a, "1.0.0", &wanted)).await?;
    }
    // Live versions on the examples of another address; a version the publisher pointed
    // anywhere else is theirs and left alone.
    let live = |v: &&Value| v["status"] != "retired";
    let stale: Vec<&Value> = versions
        .iter()
        .filter(live)
        .filter(|v| v["upstream_url"].as_str().is_some_and(|u| u.contains("/_examples/") && u != wanted))
        .collect();
    if !stale.is_empty() && !versions.iter().filter(live).any(|v| v["upstream_url"] == wanted.as_str()) {
        let next = next_version(&versions);
        publisher.create(&format!("{path}/versions"), version_body(a, &next, &wanted)).await?;
        tracing::info!(agent.slug = a.slug, version = %next, upstream = %wanted, "demo agent re-pointed at this address");
    }
    for v in stale {
        let number = v["version"].as_str().unwrap_or_default();
        publisher.call(Method::PATCH, &format!("{path}/versions/{number}"), Some(json!({"status": "retired"}))).await?;
    }
    if agent["support"] != support(public_url) {
        publisher.call(Method::PATCH, &path, Some(json!({"support": support(public_url)}))).await?;
    }
    Ok(())
}

/// Seeds what is missing of the demo and re-points its agents at `public_url`; returns the
/// lines to print (credentials, and the demo key when it was made now).
pub async fn seed(state: &AppState, public_url: &str) -> Result<Vec<String>> {
    let router = tollgate_api::router(state.clone());
    let publisher =
        Client::account(state, &router, PUBLISHER, "Demo Publisher").await.context("seeding the demo publisher")?;
    for (i, a) in agents().iter().enumerate() {
        seed_agent(&publisher, i, a, public_url).await.with_context(|| format!("seeding the demo agent {}", a.slug))?;
    }
    publisher.log_out().await?;

    let consumer = Client::account(state, &router, CONSUMER, "Demo User").await.context("seeding the demo consumer")?;
    for (slug, rating, body) in [
        ("echo", 5, "Exactly what I needed to test my MCP setup."),
        ("summarizer", 4, "Fast, and the token usage it reports matches my own counts."),
        ("word-counter", 5, "Simple and correct with emoji and accents."),
    ] {
        let mine = consumer.send(Method::GET, &format!("/api/v1/agents/{slug}/reviews/mine"), None).await?;
        if mine.status == 404 {
            consumer.create(&format!("/api/v1/agents/{slug}/reviews"), json!({"rating": rating, "body": body})).await?;
        }
    }
    let mut lines = Vec::new();
    if let Some(key) = demo_key(&consumer).await? {
        lines.push(format!("demo: a key for the Echo agent (shown once): {key}"));
    }
    consumer.log_out().await?;
    lines.push(format!("demo: consumer {CONSUMER} / {DEMO_PASSWORD}; publisher {PUBLISHER} / {DEMO_PASSWORD}"));
    Ok(lines)
}

/// Installs Echo for the demo consumer and makes its key, unless done before; returns the
/// key when it was made now. An installation the consumer uninstalled, or a key they
/// revoked, stays so.
async fn demo_key(consumer: &Client) -> Result<Option<String>> {
    let echo = |list: &Value| -> Option<Value> {
        let all = list.as_array()?;
        all.iter()
            .find(|i| i["agent"] == "echo" && i["status"] == "active")
            .or_else(|| all.iter().find(|i| i["agent"] == "echo"))
            .cloned()
    };
    let mut installation = echo(&consumer.call(Method::GET, "/api/v1/installations?all=true", None).await?);
    if installation.is_none() {
        consumer.create("/api/v1/installations", json!({"agent": "echo"})).await?;
        installation = echo(&consumer.call(Method::GET, "/api/v1/installations?all=true", None).await?);
    }
    let installation = installation.context("the demo installation of Echo is missing after installing it")?;
    if installation["status"] != "active" {
        return Ok(None);
    }
    let id = installation["id"].as_str().unwrap_or_default();
    let keys = consumer.call(Method::GET, &format!("/api/v1/installations/{id}/keys"), None).await?;
    if keys.as_array().is_some_and(|k| !k.is_empty()) {
        return Ok(None);
    }
    let key = consumer
        .call(Method::POST, &format!("/api/v1/installations/{id}/keys"), Some(json!({"name": "Demo key"})))
        .await?;
    Ok(key["key"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;
    use tollgate_api::ApiConfig;
    use tollgate_domain::secret::Sealer;
    use tollgate_store::Store;
    use tollgate_store::testing::TestStore;

    const URL: &str = "http://127.0.0.1:8080";

    /// What the demo is, read from the store: every demo version as (slug, version,
    /// status, upstream), the number of reviews, and each installation with its key count.
    async fn demo(state: &AppState) -> (Vec<(String, String, String, String)>, i64, Vec<(String, String, usize)>) {
        let (publisher, _) = state.store.user_by_email(PUBLISHER).await.unwrap().unwrap();
        let mut versions = Vec::new();
        let mut reviews = 0;
        for (agent, of) in state.store.org_agents(&publisher.personal_org_id).await.unwrap() {
            reviews += state.store.rating_summary(&agent.id).await.unwrap().count;
            for v in of {
                versions.push((agent.slug.clone(), v.version, v.status, v.upstream_url));
            }
        }
        versions.sort();
        let (consumer, _) = state.store.user_by_email(CONSUMER).await.unwrap().unwrap();
        let mut installs = Vec::new();
        for i in state.store.installations(&consumer.personal_org_id, true).await.unwrap() {
            let keys = state.store.installation_keys(&i.id).await.unwrap().len();
            installs.push((i.agent_slug, i.status, keys));
        }
        (versions, reviews, installs)
    }

    #[tokio::test]
    async fn seeding_cut_off_anywhere_is_finished_by_the_next_start() {
        let db = TestStore::new().await.unwrap();
        let key = Sealer::generate_key_hex().unwrap();
        // Each start is cut off a little later than the one before, as a crash would stop
        // it: the seeding future is dropped mid-way and the start's connections are closed
        // (the database rolls back whatever they left open), until one start finishes.
        let mut budget = Duration::from_millis(1);
        let mut cut = 0;
        let mut keys_shown = 0;
        loop {
            let store = Store::connect_in_schema(&db.url, db.schema()).await.unwrap();
            let state = AppState::new(store.clone(), ApiConfig::default(), Sealer::from_hex(&key).unwrap());
            let outcome = tokio::time::timeout(budget, seed(&state, URL)).await;
            store.close().await;
            match outcome {
                Ok(lines) => {
                    keys_shown += lines.unwrap().iter().filter(|l| l.contains("(shown once)")).count();
                    break;
                }
                Err(_) => cut += 1,
            }
            budget += Duration::from_millis(2);
            assert!(cut < 1000, "seeding never finished");
        }
        let state = AppState::new(db.store.clone(), ApiConfig::default(), Sealer::from_hex(&key).unwrap());
        assert!(cut > 3, "the seeding was cut off only {cut} times");
        let seeded = demo(&state).await;
        let lines = seed(&state, URL).await.unwrap();
        assert_eq!(lines.len(), 1, "a finished demo is left as it is: {lines:?}");
        assert_eq!(demo(&state).await, seeded);

        let (versions, reviews, installs) = seeded;
        let wanted: Vec<_> = {
            let mut all: Vec<_> = agents()
                .iter()
                .map(|a| (a.slug.to_string(), "1.0.0".to_string(), "active".to_string(), examples_url(URL, a.upstream)))
                .collect();
            all.sort();
            all
        };
        assert_eq!(versions, wanted, "every agent, one version each, after {cut} cut-off starts");
        assert_eq!(reviews, 3);
        // The key was made once; if the start that made it was cut off before printing it,
        // it was never shown (log in as the demo consumer to make another).
        assert_eq!(installs, vec![("echo".to_string(), "active".to_string(), 1)]);
        assert!(keys_shown <= 1);
    }

    #[tokio::test]
    async fn a_new_address_gets_a_new_version_and_the_old_ones_retire() {
        let db = TestStore::new().await.unwrap();
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        let state = AppState::new(db.store.clone(), ApiConfig::default(), sealer);
        seed(&state, "http://127.0.0.1:1111").await.unwrap();
        seed(&state, "http://127.0.0.1:2222/").await.unwrap();
        seed(&state, "http://127.0.0.1:1111").await.unwrap();
        let (versions, _, _) = demo(&state).await;
        let echo: Vec<_> =
            versions.iter().filter(|v| v.0 == "echo").map(|v| (v.1.as_str(), v.2.as_str(), v.3.as_str())).collect();
        assert_eq!(
            echo,
            vec![
                ("1.0.0", "retired", "http://127.0.0.1:1111/_examples/echo/mcp"),
                ("1.0.1", "retired", "http://127.0.0.1:2222/_examples/echo/mcp"),
                ("1.0.2", "active", "http://127.0.0.1:1111/_examples/echo/mcp"),
            ]
        );
        assert_eq!(versions.len(), 18);
    }

    #[test]
    fn the_next_version_follows_the_highest() {
        let of = |v: &[&str]| next_version(&v.iter().map(|v| json!({"version": v})).collect::<Vec<_>>());
        assert_eq!(of(&["1.0.0"]), "1.0.1");
        assert_eq!(of(&["1.0.9", "1.0.10", "1.0.2"]), "1.0.11");
        assert_eq!(of(&["1.2.0-beta.1", "1.1.7"]), "1.2.1");
        assert_eq!(of(&[]), "1.0.1");
    }
}
