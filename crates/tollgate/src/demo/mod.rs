//! `serve --demo`: seeds a store of agents from two publishers, a consumer with
//! installations, keys, a team, a budget and real usage, and a few more people who
//! install and review agents — all through the public API (and the gateway, for the
//! usage), so the demo data is exactly what people could have made. The agents'
//! upstreams are the real example MCP servers of this same binary.
//!
//! Seeding is a list of steps, each of which first looks whether it is already done
//! (reading the store, signing an account in only when it has something to do), so a
//! second start changes nothing and a start after a crash mid-seeding finishes the job. On
//! every start the demo agents' upstreams follow the address the server serves on now: a
//! published version's upstream never changes, so when the live demo versions point at
//! the examples of another address, a new patch version at this address is published and
//! the stale ones are retired.
//!
//! The usage is made of real calls through the gateway at seeding time (see [`traffic`]),
//! so the server must already accept connections at `public_url` when [`seed`] runs: the
//! gateway forwards them to the examples there. A start that finds the demo consumer idle
//! for an hour makes a modest batch of new calls the same way, so the dashboard's last 24
//! hours always show usage.

mod catalog;
mod community;
mod traffic;

use anyhow::{Result, bail};
use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tollgate_api::AppState;
use tollgate_gateway::Gateway;
use tower::ServiceExt;

/// The demo accounts' password (demo data only).
pub const DEMO_PASSWORD: &str = "demo-tollgate-42";
const PUBLISHER: &str = "publisher@demo.tollgate.dev";
const LABS: &str = "labs@demo.tollgate.dev";
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

/// A request to the API: `org` is sent as `X-Tollgate-Org` (the org to act in).
struct Call<'a> {
    method: Method,
    path: &'a str,
    body: Option<&'a Value>,
    org: Option<&'a str>,
}

async fn send(router: &axum::Router, call: Call<'_>, cookie: &str, csrf: &str) -> Result<(Answer, String)> {
    let mut request = Request::builder().method(call.method).uri(call.path).header(header::COOKIE, cookie);
    if !csrf.is_empty() {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(org) = call.org {
        request = request.header("x-tollgate-org", org);
    }
    let request = match call.body {
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

fn post<'a>(path: &'a str, body: &'a Value) -> Call<'a> {
    Call { method: Method::POST, path, body: Some(body), org: None }
}

impl Client {
    /// Sends a request; any status is returned.
    async fn send_in(&self, org: Option<&str>, method: Method, path: &str, body: Option<Value>) -> Result<Answer> {
        let call = Call { method, path, body: body.as_ref(), org };
        Ok(send(&self.router, call, &self.cookie, &self.csrf).await?.0)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer> {
        self.send_in(None, method, path, body).await
    }

    /// Sends a request (acting in `org`, when given) that must succeed.
    async fn call_in(&self, org: Option<&str>, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let answer = self.send_in(org, method.clone(), path, body).await?;
        if !answer.ok() {
            bail!("demo seeding: {method} {path} answered {}: {}", answer.status, answer.body);
        }
        Ok(answer.body)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        self.call_in(None, method, path, body).await
    }

    /// Sends a request that must succeed or find it already done (409: an earlier start, or
    /// another replica, did it).
    async fn create_in(&self, org: Option<&str>, path: &str, body: Value) -> Result<()> {
        let answer = self.send_in(org, Method::POST, path, Some(body)).await?;
        if !answer.ok() && answer.status != 409 {
            bail!("demo seeding: POST {path} answered {}: {}", answer.status, answer.body);
        }
        Ok(())
    }

    async fn create(&self, path: &str, body: Value) -> Result<()> {
        self.create_in(None, path, body).await
    }

    /// Ends the session the seeder used.
    async fn log_out(&self) -> Result<()> {
        self.send(Method::POST, "/api/v1/auth/logout", None).await.map(|_| ())
    }
}

/// What every seeding step has: the API's state and router, and the address served on.
struct Demo<'a> {
    state: &'a AppState,
    router: axum::Router,
    public_url: &'a str,
}

/// A demo account that exists; signed in the first time it has something to do.
struct Account<'a> {
    demo: &'a Demo<'a>,
    email: &'static str,
    user_id: String,
    personal_org_id: String,
    client: OnceCell<Client>,
}

impl<'a> Demo<'a> {
    /// The demo account `email`, signed up now if it does not exist yet (or, when another
    /// replica signed it up a moment ago, found after all).
    async fn account(&'a self, email: &'static str, name: &str) -> Result<Account<'a>> {
        let client = OnceCell::new();
        if self.state.store.user_by_email(email).await?.is_none() {
            let signup = json!({"email": email, "password": DEMO_PASSWORD, "name": name});
            let (answer, cookie) = send(&self.router, post("/api/v1/auth/signup", &signup), "", "").await?;
            if answer.ok() {
                let csrf = answer.body["csrf_token"].as_str().unwrap_or_default().to_string();
                let _ = client.set(Client { router: self.router.clone(), cookie, csrf });
            } else if answer.status != 409 {
                bail!("signing up the demo account {email} answered {}: {}", answer.status, answer.body);
            }
        }
        let Some((user, _)) = self.state.store.user_by_email(email).await? else {
            bail!("the demo account {email} is missing after signing it up");
        };
        Ok(Account { demo: self, email, user_id: user.id, personal_org_id: user.personal_org_id, client })
    }
}

impl Account<'_> {
    /// The account's API client, logging it in on first use.
    async fn api(&self) -> Result<&Client> {
        self.client
            .get_or_try_init(|| async {
                let login = json!({"email": self.email, "password": DEMO_PASSWORD});
                let (answer, cookie) = send(&self.demo.router, post("/api/v1/auth/login", &login), "", "").await?;
                if answer.status == 401 {
                    bail!(
                        "the demo account {} exists but no longer has the demo password; \
                         start without --demo, or with a new data directory or database",
                        self.email
                    );
                }
                if !answer.ok() {
                    bail!("logging in the demo account {} answered {}: {}", self.email, answer.status, answer.body);
                }
                let csrf = answer.body["csrf_token"].as_str().unwrap_or_default().to_string();
                Ok(Client { router: self.demo.router.clone(), cookie, csrf })
            })
            .await
    }

    /// Ends the seeder's session, if it opened one.
    async fn finish(self) -> Result<()> {
        match self.client.into_inner() {
            Some(client) => client.log_out().await,
            None => Ok(()),
        }
    }
}

/// Seeds what is missing of the demo and re-points its agents at `public_url`, making its
/// usage through `gateway` (the server must be accepting connections at `public_url`);
/// returns the lines to print (credentials, and the demo key when it was made now).
pub async fn seed(state: &AppState, gateway: &Gateway, public_url: &str) -> Result<Vec<String>> {
    let demo = Demo { state, router: tollgate_api::router(state.clone()), public_url };
    let people = community::People::seed(&demo).await?;
    let mut lines = Vec::new();
    let made = async {
        for a in catalog::agents() {
            let owner = match a.publisher {
                catalog::Publisher::Main => &people.publisher,
                catalog::Publisher::Labs => &people.labs,
            };
            catalog::seed_agent(&demo, owner, &a)
                .await
                .map_err(|e| e.context(format!("seeding the demo agent {}", a.slug)))?;
        }
        if let Some(key) = community::seed(&demo, &people).await? {
            lines.push(format!("demo: a key for the Echo agent (shown once): {key}"));
        }
        traffic::seed(&demo, &people, gateway).await?;
        traffic::refresh(&demo, &people, gateway, tollgate_domain::time::now_ms()).await.map(|_| ())
    }
    .await;
    people.finish().await?;
    made?;
    lines.push(format!(
        "demo: consumer {CONSUMER} / {DEMO_PASSWORD}; publishers {PUBLISHER} and {LABS} / {DEMO_PASSWORD}"
    ));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::catalog::{agents, next_version, upstream_url};
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tollgate_api::ApiConfig;
    use tollgate_domain::secret::Sealer;
    use tollgate_gateway::GatewayConfig;
    use tollgate_gateway::ratelimit::MemoryRateLimiter;
    use tollgate_store::Store;
    use tollgate_store::testing::TestStore;
    use tollgate_store::usage::{AuditFilter, UsageScope};

    /// Serves the example agents on a port of their own; returns the address the demo
    /// then seeds for (the gateway is called in process, the examples over TCP).
    async fn examples() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().nest("/_examples", tollgate_examples::router());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// One start: the API's state and a gateway over `store`.
    fn start(store: &Store, key: &str, url: &str) -> (AppState, Gateway) {
        let sealer = Sealer::from_hex(key).unwrap();
        let state = AppState::new(store.clone(), ApiConfig::default(), sealer.clone());
        let config = GatewayConfig { public_url: url.to_string(), ..GatewayConfig::default() };
        let gateway = Gateway::start(store.clone(), sealer, Arc::new(MemoryRateLimiter::new()), None, config).unwrap();
        (state, gateway)
    }

    /// What the demo is, read from the store: every demo version as (slug, version,
    /// status, upstream); the number of reviews; each installation of the consumer with
    /// its status, active keys and usage records; and the records of every org.
    #[derive(Debug, PartialEq)]
    struct Seeded {
        versions: Vec<(String, String, String, String)>,
        reviews: i64,
        installs: Vec<(String, String, Vec<String>, i64)>,
        records: i64,
    }

    async fn records(store: &Store, org: &str, installation: Option<&str>) -> i64 {
        let scope = UsageScope {
            org_id: org.to_string(),
            installation_id: installation.map(str::to_string),
            from: 0,
            to: i64::MAX,
        };
        store.audit_page(&AuditFilter { scope, ..AuditFilter::default() }, 1, 0).await.unwrap().1
    }

    async fn demo(store: &Store) -> Seeded {
        let mut versions = Vec::new();
        let mut reviews = 0;
        for email in [PUBLISHER, LABS] {
            let (publisher, _) = store.user_by_email(email).await.unwrap().unwrap();
            for (agent, of) in store.org_agents(&publisher.personal_org_id).await.unwrap() {
                reviews += store.rating_summary(&agent.id).await.unwrap().count;
                for v in of {
                    versions.push((agent.slug.clone(), v.version, v.status, v.upstream_url));
                }
            }
        }
        versions.sort();
        let (consumer, _) = store.user_by_email(CONSUMER).await.unwrap().unwrap();
        let mut installs = Vec::new();
        for i in store.installations(&consumer.personal_org_id, true).await.unwrap() {
            let mut keys: Vec<String> = store
                .installation_keys(&i.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|k| k.revoked_at.is_none())
                .map(|k| k.name)
                .collect();
            keys.sort();
            let calls = records(store, &consumer.personal_org_id, Some(&i.id)).await;
            installs.push((i.agent_slug, i.status, keys, calls));
        }
        installs.sort();
        let mut records_total = 0;
        for email in [CONSUMER, "ana@demo.tollgate.dev", "ben@demo.tollgate.dev", "chen@demo.tollgate.dev"] {
            let (user, _) = store.user_by_email(email).await.unwrap().unwrap();
            for (org, _) in store.orgs_of_user(&user.id).await.unwrap() {
                if org.personal || email == CONSUMER {
                    records_total += records(store, &org.id, None).await;
                }
            }
        }
        Seeded { versions, reviews, installs, records: records_total }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seeding_cut_off_anywhere_is_finished_by_the_next_start() {
        let db = TestStore::new().await.unwrap();
        let key = Sealer::generate_key_hex().unwrap();
        let url = examples().await;
        // Each start is cut off later than the one before, as a crash would stop it: the
        // seeding future is dropped mid-way (calls in flight included), the start's gateway
        // writes what it metered and its connections are closed (the database rolls back
        // whatever they left open), until one start finishes.
        let mut budget = Duration::from_millis(1);
        let mut cut = 0;
        let mut keys_shown = 0;
        loop {
            let store = Store::connect_in_schema(&db.url, db.schema()).await.unwrap();
            let (state, gateway) = start(&store, &key, &url);
            let outcome = tokio::time::timeout(budget, seed(&state, &gateway, &url)).await;
            gateway.shutdown().await;
            store.close().await;
            match outcome {
                Ok(lines) => {
                    keys_shown += lines.unwrap().iter().filter(|l| l.contains("(shown once)")).count();
                    break;
                }
                Err(_) => cut += 1,
            }
            budget = budget * 3 / 2 + Duration::from_millis(1);
            assert!(cut < 100, "seeding never finished");
        }
        assert!(cut > 3, "the seeding was cut off only {cut} times");
        let (state, gateway) = start(&db.store, &key, &url);
        let seeded = demo(&db.store).await;
        let lines = seed(&state, &gateway, &url).await.unwrap();
        assert_eq!(lines.len(), 1, "a finished demo is left as it is: {lines:?}");
        gateway.shutdown().await;
        assert_eq!(demo(&db.store).await, seeded, "a second start changed the demo");

        let mut wanted = Vec::new();
        for a in agents() {
            for r in &a.releases {
                let status = if r.deprecated { "deprecated" } else { "active" };
                wanted.push((a.slug.to_string(), r.version.to_string(), status.to_string(), upstream_url(&url, &a)));
            }
        }
        wanted.sort();
        assert_eq!(seeded.versions, wanted, "every agent with its releases, after {cut} cut-off starts");
        assert_eq!(seeded.reviews, 18);
        // Every installation of the consumer has its calls; Echo also has the demo key
        // (made once; if the start that made it was cut off before printing it, it was
        // never shown: log in as the demo consumer to make another).
        let calls: Vec<(&str, i64)> = seeded.installs.iter().map(|i| (i.0.as_str(), i.3)).collect();
        assert_eq!(
            calls,
            [
                ("commit-message", 28),
                ("echo", 40),
                ("invoice-reader", 16),
                ("latency-probe", 14),
                ("release-notes", 24),
                ("summarizer", 36),
                ("ticket-triage", 20),
                ("word-counter", 30)
            ]
        );
        for (slug, status, keys, _) in &seeded.installs {
            let expected: &[&str] = if slug == "echo" { &["Demo key", "Production"] } else { &["Production"] };
            assert_eq!(status, "active", "{slug}");
            assert_eq!(keys, expected, "{slug}: the active keys");
        }
        assert_eq!(seeded.records, 208 + 28 + 22, "the consumer's, the reviewers' and the team's calls");
        assert!(keys_shown <= 1);
        let (sum, consistent) = db.store.ledger_audit().await.unwrap();
        assert_eq!((sum, consistent), (0, true), "the ledger balances");
        let audit = db.store.settlement_audit().await.unwrap();
        assert_eq!((audit.mismatched, audit.orphans), (0, 0), "{audit:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_address_gets_a_new_version_and_the_old_ones_retire() {
        let db = TestStore::new().await.unwrap();
        let key = Sealer::generate_key_hex().unwrap();
        let (first, second) = (examples().await, examples().await);
        for url in [&first, &format!("{second}/"), &first] {
            let (state, gateway) = start(&db.store, &key, url.trim_end_matches('/'));
            seed(&state, &gateway, url).await.unwrap();
            gateway.shutdown().await;
        }
        let seeded = demo(&db.store).await;
        let echo: Vec<_> = seeded
            .versions
            .iter()
            .filter(|v| v.0 == "echo")
            .map(|v| (v.1.as_str(), v.2.as_str(), v.3.as_str()))
            .collect();
        let at = |url: &str| format!("{url}/_examples/echo/mcp");
        assert_eq!(
            echo,
            vec![
                ("1.0.0", "retired", at(&first).as_str()),
                ("1.0.1", "retired", at(&second).as_str()),
                ("1.0.2", "active", at(&first).as_str()),
            ]
        );
        let summarizer: Vec<_> =
            seeded.versions.iter().filter(|v| v.0 == "summarizer").map(|v| (v.1.as_str(), v.2.as_str())).collect();
        assert_eq!(summarizer, [("1.0.0", "retired"), ("1.1.0", "retired"), ("1.1.1", "retired"), ("1.1.2", "active")]);
        let releases: usize = agents().iter().map(|a| a.releases.len()).sum();
        assert_eq!(seeded.versions.len(), releases + 2 * agents().len());
        assert_eq!(seeded.records, 208 + 28 + 22, "calls are made once, at the first address");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_start_after_an_idle_hour_makes_fresh_calls() {
        let db = TestStore::new().await.unwrap();
        let key = Sealer::generate_key_hex().unwrap();
        let url = examples().await;
        let (state, gateway) = start(&db.store, &key, &url);
        seed(&state, &gateway, &url).await.unwrap();
        let before = demo(&db.store).await;
        let (consumer, _) = db.store.user_by_email(CONSUMER).await.unwrap().unwrap();
        let org = consumer.personal_org_id.clone();
        let now = tollgate_domain::time::now_ms();
        let in_window = |from: i64, to: i64| {
            let org = org.clone();
            let store = db.store.clone();
            async move {
                let scope = UsageScope { org_id: org, installation_id: None, from, to };
                store.audit_page(&AuditFilter { scope, ..AuditFilter::default() }, 1, 0).await.unwrap().1
            }
        };

        // Calls were made a moment ago: a start now makes none.
        let demo_now = Demo { state: &state, router: tollgate_api::router(state.clone()), public_url: &url };
        let people = community::People::seed(&demo_now).await.unwrap();
        assert_eq!(traffic::refresh(&demo_now, &people, &gateway, now).await.unwrap(), 0);
        assert_eq!(demo(&db.store).await, before, "a busy demo is left as it is");

        // Two hours later nothing happened in the last hour: a start makes a new batch, now.
        let later = now + 2 * traffic::IDLE_MS;
        let made = traffic::refresh(&demo_now, &people, &gateway, later).await.unwrap();
        people.finish().await.unwrap();
        gateway.shutdown().await;
        let installs = before.installs.len() + 1;
        assert_eq!(made, installs * traffic::FRESH_CALLS, "every installation of the consumer, the team's too");
        let after = demo(&db.store).await;
        for (old, new) in before.installs.iter().zip(&after.installs) {
            assert_eq!(new.3, old.3 + traffic::FRESH_CALLS as i64, "{}: a few more calls", old.0);
            assert_eq!(new.2, old.2, "{}: the same active keys", old.0);
        }
        assert_eq!(after.records, before.records + made as i64);
        let fresh = in_window(tollgate_domain::time::now_ms() - traffic::IDLE_MS, i64::MAX).await;
        assert!(fresh >= (before.installs.len() * traffic::FRESH_CALLS) as i64, "the new calls are recent: {fresh}");
        let (sum, consistent) = db.store.ledger_audit().await.unwrap();
        assert_eq!((sum, consistent), (0, true), "the ledger balances");
        let audit = db.store.settlement_audit().await.unwrap();
        assert_eq!((audit.mismatched, audit.orphans), (0, 0), "{audit:?}");
    }

    #[test]
    fn the_next_version_follows_the_highest() {
        let of = |v: &[&str]| next_version(v.iter().copied());
        assert_eq!(of(&["1.0.0"]), "1.0.1");
        assert_eq!(of(&["1.0.9", "1.0.10", "1.0.2"]), "1.0.11");
        assert_eq!(of(&["1.2.0-beta.1", "1.1.7"]), "1.2.1");
        assert_eq!(of(&[]), "1.0.1");
    }
}
