#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Publishing, the store and reviews, end to end through the router, on SQLite and (with
//! `TOLLGATE_TEST_POSTGRES_URL`) PostgreSQL. Every request goes through [`Api`], which
//! fails the test if the upstream credential's marker appears in any response body.

mod common;

use axum::http::Method;
use common::{Caller, Reply, TestApp, TestUser};
use serde_json::{Value, json};
use tollgate_domain::publish::open_headers;

/// Part of every upstream credential: it must never come back from any endpoint.
const MARKER: &str = "SECRET-MARKER-7f3a9c";
/// Part of every upstream URL: the store must never show it.
const UPSTREAM_HOST: &str = "upstream-host.internal";

/// Someone calling the API.
struct Api<'a> {
    app: &'a TestApp,
    who: Caller,
}

impl<'a> Api<'a> {
    /// No authentication at all.
    fn anyone(app: &'a TestApp) -> Api<'a> {
        Api { app, who: Caller::default() }
    }

    /// A new user calling with an all-scopes account token.
    async fn user(app: &'a TestApp, email: &str) -> (Api<'a>, TestUser) {
        let user = app.user(email).await;
        (Api { app, who: user.caller() }, user)
    }

    /// The same app, called as `who`.
    fn with(&self, who: Caller) -> Api<'a> {
        Api { app: self.app, who }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let r = self.app.call(method, path, body, &self.who).await;
        let text = r.body.to_string();
        assert!(!text.contains(MARKER), "{path} leaked the credential: {text}");
        r
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Lists `slug` with `tweaks` to its listing and publishes version 1.0.0.
    async fn publish_with(&self, slug: &str, tweaks: &[(&str, Value)]) {
        let body = tweaks.iter().fold(agent_body(slug), |b, (p, v)| with(b, p, v.clone()));
        let r = self.post("/api/v1/agents", body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let path = format!("/api/v1/agents/{slug}/versions");
        let r = self.post(&path, version_body("1.0.0")).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    async fn publish(&self, slug: &str) {
        self.publish_with(slug, &[]).await;
    }
}

fn agent_body(slug: &str) -> Value {
    json!({
        "slug": slug,
        "name": format!("Agent {slug}"),
        "description": "Reviews pull requests and explains what changed.",
        "category": "devtools",
        "protocol": "mcp",
        "platforms": ["Claude Desktop", "Cursor"],
        "capabilities": ["code generation", "reasoning"],
        "tags": ["review", "git"],
        "use_cases": ["Review every pull request before merging"],
        "governance": {
            "data_collected": ["prompts"], "storage_region": "eu-west-1",
            "storage_provider": "Hetzner", "retention_days": 30, "training_use": false,
            "compliance": ["gdpr", "soc2", "hipaa"], "security_measures": ["encryption at rest"]
        },
        "support": {
            "email": "help@example.com", "url": "https://example.com",
            "docs_url": "https://example.com/docs"
        }
    })
}

fn version_body(version: &str) -> Value {
    json!({
        "version": version,
        "upstream_url": format!("https://{UPSTREAM_HOST}/mcp"),
        "upstream_headers": {"Authorization": format!("Bearer {MARKER}")},
        "base_fee": "0.0001",
        "functions": [
            {"name": "review_pr", "free_calls": 5, "free_reset": "monthly",
             "pricing": {"model": "per_token", "input_per_million": "2.00",
                         "output_per_million": "4.00", "cache_per_million": "0.50"}},
            {"name": "explain", "pricing": {"model": "per_request", "price": "0.005"}}
        ],
        "default_pricing": {"model": "per_request", "price": "0.001"},
        "cold_start": true
    })
}

/// Sets `path` (dotted, array indexes as numbers) in a JSON value.
fn with(mut body: Value, path: &str, value: Value) -> Value {
    let mut at = &mut body;
    for key in path.split('.') {
        at = match key.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[key],
        };
    }
    *at = value;
    body
}

/// Rows of `path | JSON value | field`: a change to a valid body and the field it breaks.
fn table(rows: &str) -> Vec<(String, Value, String)> {
    let row = |line: &str| {
        let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let value = serde_json::from_str(cells[1]).unwrap_or_else(|e| panic!("{line}: {e}"));
        (cells[0].to_string(), value, cells[2].to_string())
    };
    rows.lines().map(str::trim).filter(|l| !l.is_empty()).map(row).collect()
}

fn assert_invalid(r: &Reply, field: &str) {
    assert_eq!(r.status, 422, "{field}: {}", r.body);
    assert_eq!(r.body["error"]["code"], "invalid_request");
    assert_eq!(r.body["error"]["field"], field, "{}", r.body);
}

fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
}

/// The top-level fields of `v` named in `keys` (space-separated), for compact comparisons.
fn pick(v: &Value, keys: &str) -> Value {
    let field = |k: &str| (k.to_string(), v[k].clone());
    Value::Object(keys.split_whitespace().map(field).collect())
}

/// The slugs of a store page, in order.
fn slugs(r: &Reply) -> Vec<String> {
    let agents = r.body["agents"].as_array().expect("a store page");
    agents.iter().map(|a| a["slug"].as_str().unwrap().to_string()).collect()
}

fn count(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn publish_an_agent_and_its_versions() {
    let app = TestApp::new().await;
    let (ada, ada_user) = Api::user(&app, "ada@x.io").await;
    let r = ada.post("/api/v1/agents", agent_body("pr-review")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        pick(&r.body, "publisher_org_id trust_score listed platforms"),
        json!({"publisher_org_id": ada_user.org_id, "trust_score": 85, "listed": false,
               "platforms": ["Claude Desktop", "Cursor"]})
    );

    let path = "/api/v1/agents/pr-review/versions";
    let r = ada.post(path, version_body("1.0.0")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        pick(&r.body, "status base_fee task_timeout_seconds cold_start"),
        json!({"status": "active", "base_fee": "0.000100", "task_timeout_seconds": 300,
               "cold_start": true})
    );
    assert_eq!(r.body["has_upstream_headers"], true);
    assert_eq!(r.body["endpoint"], "http://127.0.0.1:8080/pr-review/1.0.0/mcp");
    assert_eq!(r.body["upstream_url"], format!("https://{UPSTREAM_HOST}/mcp"));
    assert_eq!(
        r.body["functions"],
        json!([
            {"name": "review_pr", "free_calls": 5, "free_reset": "monthly", "freemium": true,
             "pricing": {"model": "per_token", "input_per_million": "2.000000",
                         "output_per_million": "4.000000", "cache_per_million": "0.500000"}},
            {"name": "explain", "free_calls": 0, "free_reset": "lifetime", "freemium": false,
             "pricing": {"model": "per_request", "price": "0.005000"}}
        ])
    );
    let default_pricing = json!({"model": "per_request", "price": "0.001000"});
    assert_eq!(r.body["default_pricing"], default_pricing);

    // The credential is sealed at rest and opens with the configured key.
    let store = &app.state.store;
    let agent = store.agent_by_slug("pr-review").await.unwrap();
    let stored = store.agent_version(&agent.id, "1.0.0").await.unwrap();
    let sealed = stored.upstream_headers_sealed.unwrap();
    assert!(!sealed.contains(MARKER));
    let opened = open_headers(&app.state.sealer, &sealed).unwrap();
    let expected = ("Authorization".to_string(), format!("Bearer {MARKER}"));
    assert_eq!(opened, vec![expected]);

    let plain = with(version_body("1.1.0"), "upstream_headers", json!({}));
    assert_eq!(ada.post(path, plain).await.body["has_upstream_headers"], false);
    let list = ada.get("/api/v1/agents").await;
    assert_eq!((list.status.as_u16(), count(&list.body)), (200, 1));
    assert_eq!(list.body[0]["versions"][0]["version"], "1.1.0");
    let one = ada.with(ada_user.browser()).get("/api/v1/agents/pr-review").await;
    assert_eq!(one.body["listed"], true);
    assert_eq!(count(&one.body["versions"]), 2);

    // Listing metadata changes; slug and protocol do not.
    let change = json!({"name": "PR Review Pro", "tags": ["Review", "review", "ci"],
                        "governance": {}});
    let r = ada.patch("/api/v1/agents/pr-review", change).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        pick(&r.body, "name tags trust_score description"),
        json!({"name": "PR Review Pro", "tags": ["Review", "ci"], "trust_score": 0,
               "description": "Reviews pull requests and explains what changed."})
    );
    let bad = [
        (json!({"slug": "other"}), "body"),
        (json!({"protocol": "a2a"}), "body"),
        (json!({"category": "!!"}), "category"),
    ];
    for (body, field) in bad {
        assert_invalid(&ada.patch("/api/v1/agents/pr-review", body).await, field);
    }
    let now = ada.get("/api/v1/agents/pr-review").await;
    assert_eq!(pick(&now.body, "name protocol"), json!({"name": "PR Review Pro", "protocol": "mcp"}));

    assert_error(&ada.post(path, version_body("1.0.0")).await, 409, "version_exists");
    let (bob, _) = Api::user(&app, "bob@x.io").await;
    let taken = bob.post("/api/v1/agents", agent_body("pr-review")).await;
    assert_error(&taken, 409, "slug_taken");
}

#[tokio::test]
async fn bad_agents_are_refused_and_nothing_is_written() {
    let app = TestApp::new().await;
    let (ada, ada_user) = Api::user(&app, "ada@x.io").await;
    let cases = table(
        r#"
        slug                      | "api"             | slug
        slug                      | "store"           | slug
        slug                      | "healthz"         | slug
        slug                      | "Web_Search"      | slug
        slug                      | "-web"            | slug
        protocol                  | "grpc"            | protocol
        name                      | "  "              | name
        description               | ""                | description
        category                  | "dev/tools"       | category
        platforms                 | ["Cursor", ""]    | platforms[1]
        governance.compliance     | ["iso"]           | governance.compliance
        governance.retention_days | -1                | governance.retention_days
        support.email             | "not-an-email"    | support.email
        support.docs_url          | "ftp://docs"      | support.docs_url
        surprise                  | 1                 | body
        governance.unknown        | 1                 | body
        "#,
    );
    for (path, value, field) in cases {
        let body = with(agent_body("ok-slug"), &path, value);
        assert_invalid(&ada.post("/api/v1/agents", body).await, &field);
    }
    assert_eq!(ada.get("/api/v1/agents").await.body, json!([]));
    let stored = app.state.store.org_agents(&ada_user.org_id).await.unwrap();
    assert!(stored.is_empty());
}

#[tokio::test]
async fn bad_versions_are_refused_and_nothing_is_written() {
    let app = TestApp::new().await;
    let (ada, _) = Api::user(&app, "ada@x.io").await;
    ada.publish("helper").await;
    let a2a = with(agent_body("planner"), "protocol", json!("a2a"));
    assert_eq!(ada.post("/api/v1/agents", a2a).await.status, 201);
    assert_eq!(ada.post("/api/v1/agents", agent_body("pr-review")).await.status, 201);
    let cases = table(
        r#"
        version                   | "1.0"                         | version
        version                   | "v1.0.0"                      | version
        version                   | "1.0.0+build.7"               | version
        functions.1.pricing.price | "-0.005"                      | functions[1].pricing.price
        functions.1.pricing.price | "cheap"                       | functions[1].pricing.price
        functions.1.pricing.price | "0.0000000001"                | functions[1].pricing.price
        functions.1.pricing.price | 0.005                         | functions[1].pricing.price
        functions.1.pricing.model | "per_minute"                  | functions[1].pricing.model
        functions.1.pricing.extra | "1"                           | functions[1].pricing.extra
        functions.0.pricing.input_per_million | null              | functions[0].pricing.input_per_million
        functions.1.name          | "review_pr"                   | functions[1].name
        functions.1.name          | " "                           | functions[1].name
        functions.0.free_calls    | -1                            | functions[0].free_calls
        functions.0.free_reset    | "weekly"                      | functions[0].free_reset
        base_fee                  | "-1"                          | base_fee
        base_fee                  | "1e-3"                        | base_fee
        default_pricing           | {"model": "per_request"}      | default_pricing.price
        upstream_url              | "ftp://files"                 | upstream_url
        upstream_url              | "https://user:pw@host"        | upstream_url
        upstream_headers          | {"Bad Name": "x"}             | upstream_headers
        upstream_headers          | {"X-Key": "a\r\nB: 1"}        | upstream_headers.X-Key
        upstream_headers          | {"X-Key": ""}                 | upstream_headers.X-Key
        upstream_headers          | {"Host": "evil.example"}      | upstream_headers.Host
        upstream_headers          | {"X-Tollgate-Install": "x"}   | upstream_headers.X-Tollgate-Install
        task_timeout_seconds      | 59                            | task_timeout_seconds
        task_timeout_seconds      | 86401                         | task_timeout_seconds
        dependencies              | [{"agent": "nobody-here"}]    | dependencies[0].agent
        dependencies              | [{"agent": "pr-review"}]      | dependencies[0].agent
        dependencies              | [{"agent": "planner"}]        | dependencies[0].agent
        dependencies              | [{"agent": "helper", "version": "9.9.9"}] | dependencies[0].version
        dependencies              | [{"agent": "helper", "version": "one"}]   | dependencies[0].version
        dependencies              | [{"agent": "helper"}, {"agent": "helper"}] | dependencies[1].agent
        functions.0.free_calls    | "5"                           | body
        surprise                  | true                          | body
        "#,
    );
    let path = "/api/v1/agents/pr-review/versions";
    for (at, value, field) in cases {
        let body = with(version_body("1.0.0"), &at, value);
        assert_invalid(&ada.post(path, body).await, &field);
    }
    let agent = ada.get("/api/v1/agents/pr-review").await;
    assert_eq!(agent.body["versions"], json!([]));

    let body = with(version_body("1.0.0"), "dependencies", json!([{"agent": "helper"}]));
    let r = ada.post(path, body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let latest = json!([{"agent": "helper", "version": "latest"}]);
    assert_eq!(r.body["dependencies"], latest);
}

#[tokio::test]
async fn published_pricing_is_immutable_and_status_follows_the_lifecycle() {
    let app = TestApp::new().await;
    let (ada, _) = Api::user(&app, "ada@x.io").await;
    ada.publish("pr-review").await;
    let path = "/api/v1/agents/pr-review/versions/1.0.0";
    let agent = "/api/v1/agents/pr-review";
    let before = ada.get(agent).await.body["versions"].clone();
    let repriced = json!([{"name": "review_pr",
                           "pricing": {"model": "per_request", "price": "9"}}]);
    let changes = [
        json!({"base_fee": "0"}),
        json!({"functions": []}),
        json!({"default_pricing": {"model": "per_request", "price": "0"}}),
        json!({"upstream_url": "https://elsewhere.example"}),
        json!({"upstream_headers": {"Authorization": "x"}}),
        json!({"task_timeout_seconds": 600}),
        json!({"status": "deprecated", "functions": repriced}),
    ];
    for body in changes {
        let r = ada.patch(path, body).await;
        assert_error(&r, 409, "version_immutable");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("publish a new version"), "{message}");
    }
    assert_eq!(ada.get(agent).await.body["versions"], before);

    assert_invalid(&ada.patch(path, json!({"status": "paused"})).await, "status");
    assert_invalid(&ada.patch(path, json!({"status": 1})).await, "status");
    assert_invalid(&ada.patch(path, json!({})).await, "status");
    assert_invalid(&ada.patch(path, json!([])).await, "body");
    let extra = json!({"status": "active", "note": "x"});
    assert_invalid(&ada.patch(path, extra).await, "note");
    let missing = "/api/v1/agents/pr-review/versions/2.0.0";
    assert_eq!(ada.patch(missing, json!({"status": "retired"})).await.status, 404);

    let steps = [
        ("deprecated", 200),
        ("deprecated", 200),
        ("active", 200),
        ("retired", 200),
        ("active", 409),
        ("deprecated", 409),
        ("retired", 200),
    ];
    for (to, status) in steps {
        let r = ada.patch(path, json!({"status": to})).await;
        assert_eq!(r.status, status, "→ {to}: {}", r.body);
        if r.status == 200 {
            assert_eq!(r.body["status"], to);
        }
    }
    let after = ada.get(agent).await.body;
    assert_eq!(after["versions"][0]["status"], "retired");
    assert_eq!(after["versions"][0]["functions"], before[0]["functions"]);
    assert_eq!(after["listed"], false);
}

#[tokio::test]
async fn retired_versions_leave_the_store() {
    let app = TestApp::new().await;
    let (ada, _) = Api::user(&app, "ada@x.io").await;
    let anyone = Api::anyone(&app);
    ada.publish("solo").await;
    ada.publish("duo").await;
    ada.post("/api/v1/agents/duo/versions", version_body("2.0.0")).await;
    ada.post("/api/v1/agents", agent_body("draft-only")).await;

    // Neither has ratings: the tie falls back to the slug.
    let store = anyone.get("/api/v1/store/agents?sort=top_rated").await;
    assert_eq!(slugs(&store), ["duo", "solo"]);
    let duo = anyone.get("/api/v1/store/agents?q=agent+duo").await;
    assert_eq!(duo.body["agents"][0]["latest_version"], "2.0.0");
    assert_eq!(anyone.get("/api/v1/store/agents/draft-only").await.status, 404);

    let retire = json!({"status": "retired"});
    ada.patch("/api/v1/agents/solo/versions/1.0.0", retire.clone()).await;
    ada.patch("/api/v1/agents/duo/versions/2.0.0", retire).await;
    let store = anyone.get("/api/v1/store/agents").await;
    assert_eq!(slugs(&store), ["duo"]);
    assert_eq!(store.body["total"], 1);
    assert_eq!(store.body["agents"][0]["latest_version"], "1.0.0");
    assert_eq!(anyone.get("/api/v1/store/agents/solo").await.status, 404);
    let duo = anyone.get("/api/v1/store/agents/duo").await;
    assert_eq!(count(&duo.body["versions"]), 1);
    // Nobody can review an agent that is not in the store.
    let (bob, _) = Api::user(&app, "bob@x.io").await;
    let review = json!({"rating": 5, "body": "Gone?"});
    assert_eq!(bob.post("/api/v1/agents/solo/reviews", review).await.status, 404);
    // The publisher still sees every version.
    let own = ada.get("/api/v1/agents/duo").await;
    assert_eq!(count(&own.body["versions"]), 2);

    // A deprecated-only agent stays listed; its latest version is the deprecated one.
    let deprecate = json!({"status": "deprecated"});
    ada.patch("/api/v1/agents/duo/versions/1.0.0", deprecate).await;
    let store = anyone.get("/api/v1/store/agents").await;
    assert_eq!(store.body["agents"][0]["latest_version"], "1.0.0");
}

#[tokio::test]
async fn the_store_searches_filters_sorts_and_pages() {
    let app = TestApp::new().await;
    let (ada, _) = Api::user(&app, "ada@x.io").await;
    let anyone = Api::anyone(&app);
    let plain = [("governance", json!({})), ("platforms", json!(["VS Code"]))];
    for i in 0..12 {
        ada.publish_with(&format!("filler-{i:02}"), &plain).await;
    }
    let search = [
        ("name", json!("Web Search")),
        ("description", json!("Finds pages with 100% recall and snake_case keywords.")),
        ("category", json!("productivity")),
        ("capabilities", json!(["semantic search", "RAG"])),
        ("tags", json!(["search", "web"])),
    ];
    ada.publish_with("web-search", &search).await;
    let planner = [("protocol", json!("a2a")), ("category", json!("productivity")), ("platforms", json!(["Windsurf"]))];
    ada.publish_with("trip-planner", &planner).await;
    ada.post("/api/v1/agents", agent_body("no-versions")).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let gdpr = [("governance", json!({"compliance": ["gdpr"]}))];
    ada.publish_with("newest-one", &gdpr).await;

    let empty = "q=&category=&platform=&capability=&protocol=&min_trust=&sort=&page=";
    let page1 = anyone.get(&format!("/api/v1/store/agents?{empty}")).await;
    assert_eq!(page1.status, 200, "{}", page1.body);
    assert_eq!(pick(&page1.body, "page per_page total"), json!({"page": 1, "per_page": 12, "total": 15}));
    let page2 = anyone.get("/api/v1/store/agents?page=2").await;
    let (first, second) = (slugs(&page1), slugs(&page2));
    assert_eq!((first.len(), second.len()), (12, 3));
    let mut all = [first, second].concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 15, "pages overlap: {all:?}");
    assert!(!all.contains(&"no-versions".to_string()));
    let page3 = anyone.get("/api/v1/store/agents?page=3").await;
    assert_eq!(page3.body["agents"], json!([]));

    let r = anyone.get("/api/v1/store/agents?q=web+search").await;
    let card = &r.body["agents"][0];
    let keys = "slug name publisher description category protocol platforms capabilities tags \
        rating review_count installs trust_score latest_version cold_start updated_at";
    for key in keys.split_whitespace() {
        assert!(card.get(key).is_some(), "card lacks {key}: {card}");
    }
    assert_eq!(
        pick(card, "publisher rating cold_start trust_score latest_version"),
        json!({"publisher": "ada's org", "rating": null, "cold_start": true,
               "trust_score": 85, "latest_version": "1.0.0"})
    );

    let cases: &[(&str, &[&str])] = &[
        ("q=SEARCH%20web", &["web-search"]),
        ("q=search+planner", &[]),
        ("q=ada%27s+planner", &["trip-planner"]),
        ("q=100%25", &["web-search"]),
        ("q=%25", &["web-search"]),
        ("q=snake_case", &["web-search"]),
        ("q=n_k", &[]),
        ("category=productivity", &["trip-planner", "web-search"]),
        ("category=Productivity&protocol=a2a", &["trip-planner"]),
        ("platform=windsurf", &["trip-planner"]),
        ("platform=Windsurf", &["trip-planner"]),
        ("platform=Wind", &[]),
        ("capability=rag", &["web-search"]),
        ("capability=semantic", &[]),
        ("protocol=a2a", &["trip-planner"]),
        ("min_trust=80", &["trip-planner", "web-search"]),
        ("min_trust=10", &["newest-one", "trip-planner", "web-search"]),
    ];
    for (query, expected) in cases {
        let r = anyone.get(&format!("/api/v1/store/agents?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        let mut got = slugs(&r);
        got.sort();
        assert_eq!(got, *expected, "{query}");
        assert_eq!(r.body["total"], json!(expected.len()), "{query}");
    }
    let newest = anyone.get("/api/v1/store/agents?sort=newest").await;
    assert_eq!(slugs(&newest)[0], "newest-one");
    assert_eq!(newest.body["agents"][0]["compliance"], json!(["gdpr"]), "cards carry their compliance badges");
    assert_eq!(newest.body["agents"][1]["compliance"], json!(["gdpr", "soc2", "hipaa"]));

    // Popular: most active installations first.
    for (i, slug) in ["trip-planner", "trip-planner", "web-search"].iter().enumerate() {
        let (fan, _) = Api::user(&app, &format!("fan{i}@x.io")).await;
        let r = fan.post("/api/v1/installations", json!({"agent": slug})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let popular = anyone.get("/api/v1/store/agents?sort=popular").await;
    assert_eq!(slugs(&popular)[..2], ["trip-planner", "web-search"]);
    let installs: Vec<Value> = (0..3).map(|i| popular.body["agents"][i]["installs"].clone()).collect();
    assert_eq!(installs, [json!(2), json!(1), json!(0)]);

    // Top rated: highest average first.
    let ratings = [("filler-03", 5), ("filler-03", 4), ("web-search", 3), ("newest-one", 5)];
    for (i, (slug, stars)) in ratings.iter().enumerate() {
        let (critic, _) = Api::user(&app, &format!("critic{i}@x.io")).await;
        let review = json!({"rating": stars, "body": "Useful."});
        let r = critic.post(&format!("/api/v1/agents/{slug}/reviews"), review).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let top = anyone.get("/api/v1/store/agents?sort=top_rated").await;
    assert_eq!(slugs(&top)[..3], ["newest-one", "filler-03", "web-search"]);
    assert_eq!(pick(&top.body["agents"][1], "rating review_count"), json!({"rating": 4.5, "review_count": 2}));

    let bad = [
        ("sort=cheapest", "sort"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=-1", "page"),
        ("protocol=grpc", "protocol"),
        ("min_trust=high", "min_trust"),
        ("min_trust=101", "min_trust"),
        ("category=%21%21", "category"),
        ("q=a+b+c+d+e+f+g", "q"),
        ("sort=newest&sort=popular", "query"),
    ];
    for (query, field) in bad {
        assert_invalid(&anyone.get(&format!("/api/v1/store/agents?{query}")).await, field);
    }
}

#[tokio::test]
async fn the_detail_page_has_every_tab_and_no_upstream() {
    let app = TestApp::new().await;
    let (ada, _) = Api::user(&app, "ada@x.io").await;
    ada.publish("helper").await;
    ada.post("/api/v1/agents", with(agent_body("planner"), "protocol", json!("a2a"))).await;
    let deps = json!([{"agent": "helper", "version": "1.0.0"}]);
    let version = with(version_body("2.1.0"), "dependencies", deps);
    let version = with(version, "task_timeout_seconds", json!(900));
    let r = ada.post("/api/v1/agents/planner/versions", version).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (bob, _) = Api::user(&app, "bob@x.io").await;
    let review = json!({"rating": 4, "body": "Plans well."});
    bob.post("/api/v1/agents/planner/reviews", review).await;

    let r = Api::anyone(&app).get("/api/v1/store/agents/planner").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = &r.body;
    assert!(!d.to_string().contains(UPSTREAM_HOST), "the store shows the upstream: {d}");
    assert_eq!(
        pick(d, "description protocol publisher use_cases trust_score installs"),
        json!({"description": "Reviews pull requests and explains what changed.",
               "protocol": "a2a", "publisher": "ada's org",
               "use_cases": ["Review every pull request before merging"],
               "trust_score": 85, "installs": 0})
    );
    assert_eq!(d["governance"]["storage_region"], "eu-west-1");
    assert_eq!(d["governance"]["compliance"], json!(["gdpr", "soc2", "hipaa"]));
    assert_eq!(d["support"]["docs_url"], "https://example.com/docs");
    let rating = json!({"average": 4.0, "count": 1, "stars": [0, 0, 0, 1, 0]});
    assert_eq!(d["rating"], rating);
    assert_eq!(
        pick(&d["recent_reviews"][0], "author body rating"),
        json!({"author": "bob", "body": "Plans well.", "rating": 4})
    );
    assert_eq!(d["latest_version"], "2.1.0");
    assert_eq!(d["cold_start"], true);
    let v = &d["versions"][0];
    assert_eq!(
        pick(v, "status protocol base_fee endpoint task_timeout_seconds"),
        json!({"status": "active", "protocol": "a2a", "base_fee": "0.000100",
               "endpoint": "http://127.0.0.1:8080/planner/2.1.0/a2a",
               "task_timeout_seconds": 900})
    );
    assert_eq!(v["dependencies"], json!([{"agent": "helper", "version": "1.0.0"}]));
    let free = pick(&v["functions"][0], "freemium free_calls free_reset");
    assert_eq!(free, json!({"freemium": true, "free_calls": 5, "free_reset": "monthly"}));
    assert_eq!(v["functions"][1]["pricing"]["price"], "0.005000");
    for hidden in ["upstream_url", "upstream_headers", "has_upstream_headers"] {
        assert!(v.get(hidden).is_none(), "the store shows {hidden}");
    }
    assert_eq!(Api::anyone(&app).get("/api/v1/store/agents/nobody").await.status, 404);
}

#[tokio::test]
async fn reviews_are_one_per_user_editable_and_public() {
    let app = TestApp::new().await;
    let (ada, _) = Api::user(&app, "ada@x.io").await;
    ada.publish("pr-review").await;
    let (bob, bob_user) = Api::user(&app, "bob@x.io").await;
    let (cy, _) = Api::user(&app, "cy@x.io").await;
    let anyone = Api::anyone(&app);
    let path = "/api/v1/agents/pr-review/reviews";
    let mine = "/api/v1/agents/pr-review/reviews/mine";

    let bad = [
        (json!({"rating": 0, "body": "x"}), "rating"),
        (json!({"rating": 6, "body": "x"}), "rating"),
        (json!({"rating": 5, "body": "  "}), "body"),
        (json!({"rating": 4.5, "body": "x"}), "body"),
        (json!({"rating": 5}), "body"),
    ];
    for (body, field) in bad {
        assert_invalid(&bob.post(path, body).await, field);
    }
    assert_eq!(anyone.get(path).await.body["total"], 0);

    let first = json!({"rating": 5, "body": "Caught a real bug."});
    let r = bob.with(bob_user.browser()).post(path, first).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(pick(&r.body, "author rating agent"), json!({"author": "bob", "rating": 5, "agent": "pr-review"}));
    let again = bob.post(path, json!({"rating": 1, "body": "Changed my mind."})).await;
    assert_error(&again, 409, "already_reviewed");
    let own = ada.post(path, json!({"rating": 5, "body": "Mine is great."})).await;
    assert_error(&own, 403, "forbidden");
    let ghost = "/api/v1/agents/nobody/reviews";
    assert_eq!(bob.post(ghost, json!({"rating": 5, "body": "x"})).await.status, 404);
    assert_eq!(anyone.post(path, json!({"rating": 5, "body": "x"})).await.status, 401);
    cy.post(path, json!({"rating": 4, "body": "Solid."})).await;

    let list = anyone.get(path).await;
    assert_eq!(list.status, 200);
    assert_eq!(pick(&list.body, "total page per_page"), json!({"total": 2, "page": 1, "per_page": 10}));
    assert_eq!(list.body["rating"]["average"], 4.5);
    assert!(!list.body.to_string().contains("@x.io"), "an email leaked: {}", list.body);
    let detail = anyone.get("/api/v1/store/agents/pr-review").await;
    assert_eq!(detail.body["rating"]["average"], 4.5);
    let cards = anyone.get("/api/v1/store/agents?q=pr-review").await;
    let card = pick(&cards.body["agents"][0], "rating review_count");
    assert_eq!(card, json!({"rating": 4.5, "review_count": 2}));

    // Edit and delete one's own review.
    let r = bob.put(path, json!({"rating": 3, "body": "Slower lately."})).await;
    assert_eq!(r.status, 200);
    assert_eq!(pick(&r.body, "rating body"), json!({"rating": 3, "body": "Slower lately."}));
    assert_invalid(&bob.put(path, json!({"rating": 9, "body": "x"})).await, "rating");
    assert_eq!(bob.get(mine).await.body["rating"], 3);
    assert_eq!(ada.put(path, json!({"rating": 3, "body": "x"})).await.status, 404);
    assert_eq!(bob.delete(path).await.status, 204);
    assert_eq!(bob.delete(path).await.status, 404);
    assert_eq!(bob.get(mine).await.status, 404);
    let list = anyone.get(path).await;
    assert_eq!(pick(&list.body, "total"), json!({"total": 1}));
    assert_eq!(list.body["rating"]["average"], 4.0);
    let back = bob.post(path, json!({"rating": 2, "body": "Back again."})).await;
    assert_eq!(back.status, 201);

    // Pages of ten, newest first.
    for i in 0..10 {
        let (reader, _) = Api::user(&app, &format!("reader{i}@x.io")).await;
        let body = json!({"rating": 1 + i % 5, "body": format!("Review {i}")});
        assert_eq!(reader.post(path, body).await.status, 201);
    }
    let p1 = anyone.get(path).await;
    assert_eq!((count(&p1.body["reviews"]), p1.body["total"].clone()), (10, json!(12)));
    assert_eq!(p1.body["reviews"][0]["body"], "Review 9");
    let p2 = anyone.get(&format!("{path}?page=2")).await;
    assert_eq!(count(&p2.body["reviews"]), 2);
    assert_invalid(&anyone.get(&format!("{path}?page=0")).await, "page");
}

#[tokio::test]
async fn other_tenants_cannot_touch_an_agent() {
    let app = TestApp::new().await;
    let (ada, ada_user) = Api::user(&app, "ada@x.io").await;
    let (bob, bob_user) = Api::user(&app, "bob@x.io").await;
    let (cy, _) = Api::user(&app, "cy@x.io").await;
    ada.publish("pr-review").await;
    let review = json!({"rating": 5, "body": "Great."});
    cy.post("/api/v1/agents/pr-review/reviews", review).await;
    let before = ada.get("/api/v1/agents/pr-review").await.body;

    let version = "/api/v1/agents/pr-review/versions/1.0.0";
    let reviews = "/api/v1/agents/pr-review/reviews";
    let attempts = [
        (Method::GET, "/api/v1/agents/pr-review", None),
        (Method::PATCH, "/api/v1/agents/pr-review", Some(json!({"name": "Hijacked"}))),
        (Method::POST, "/api/v1/agents/pr-review/versions", Some(version_body("6.6.6"))),
        (Method::PATCH, version, Some(json!({"status": "retired"}))),
        (Method::PATCH, version, Some(json!({"base_fee": "9"}))),
        (Method::PUT, reviews, Some(json!({"rating": 1, "body": "Bob's"}))),
        (Method::DELETE, reviews, None),
    ];
    for (method, path, body) in attempts {
        let r = bob.call(method.clone(), path, body).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    assert_eq!(bob.get("/api/v1/agents").await.body, json!([]));
    // Acting in Ada's org without being a member is refused too.
    let in_adas = bob.with(bob_user.in_org(&ada_user.org_id));
    assert_eq!(in_adas.post("/api/v1/agents", agent_body("in-adas-org")).await.status, 404);
    assert_eq!(in_adas.get("/api/v1/agents").await.status, 404);

    assert_eq!(ada.get("/api/v1/agents/pr-review").await.body, before);
    let list = Api::anyone(&app).get(reviews).await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["reviews"][0]["body"], "Great.");
}

#[tokio::test]
async fn teams_publish_together_and_viewers_only_read() {
    let app = TestApp::new().await;
    let (ada, ada_user) = Api::user(&app, "ada@x.io").await;
    let (vic, vic_user) = Api::user(&app, "vic@x.io").await;
    let team = ada.post("/api/v1/orgs", json!({"name": "Acme Agents"})).await;
    let team_id = team.body["id"].as_str().unwrap().to_string();
    let invite = json!({"email": "vic@x.io", "role": "viewer"});
    let inv = ada.post(&format!("/api/v1/orgs/{team_id}/invitations"), invite).await;
    assert_eq!(inv.status, 201, "{}", inv.body);
    let token = inv.body["token"].as_str().unwrap();
    let accepted = vic.post(&format!("/api/v1/invitations/{token}/accept"), json!({})).await;
    assert_eq!(accepted.status, 200);

    let in_team = ada.with(ada_user.in_org(&team_id));
    let r = in_team.post("/api/v1/agents", agent_body("acme-bot")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["publisher_org_id"], team_id.as_str());
    // The agent's own org is used on its endpoints, whatever the org header says.
    ada.post("/api/v1/agents/acme-bot/versions", version_body("1.0.0")).await;
    let anyone = Api::anyone(&app);
    let detail = anyone.get("/api/v1/store/agents/acme-bot").await;
    assert_eq!(detail.body["publisher"], "Acme Agents");
    assert_eq!(anyone.get("/api/v1/store/agents?q=acme").await.body["total"], 1);

    // The viewer sees the team's agents but changes nothing.
    let vic_in_team = vic.with(vic_user.in_org(&team_id));
    assert_eq!(vic_in_team.get("/api/v1/agents").await.body[0]["slug"], "acme-bot");
    assert_eq!(vic.get("/api/v1/agents/acme-bot").await.status, 200);
    let rename = vic.patch("/api/v1/agents/acme-bot", json!({"name": "Vic's"})).await;
    assert_eq!(rename.status, 403);
    let v2 = vic.post("/api/v1/agents/acme-bot/versions", version_body("2.0.0")).await;
    assert_eq!(v2.status, 403);
    let retire = vic.patch("/api/v1/agents/acme-bot/versions/1.0.0", json!({"status": "retired"}));
    assert_eq!(retire.await.status, 403);
    assert_eq!(vic_in_team.post("/api/v1/agents", agent_body("vic-bot")).await.status, 403);
    // Members of the publisher cannot review its agents.
    let review = json!({"rating": 5, "body": "Ours!"});
    assert_eq!(vic.post("/api/v1/agents/acme-bot/reviews", review).await.status, 403);
    let unchanged = ada.get("/api/v1/agents/acme-bot").await;
    assert_eq!(unchanged.body["name"], "Agent acme-bot");
    assert_eq!(unchanged.body["versions"][0]["status"], "active");
}

#[tokio::test]
async fn account_tokens_need_the_right_scopes() {
    let app = TestApp::new().await;
    let (ada, ada_user) = Api::user(&app, "ada@x.io").await;
    ada.publish("pr-review").await;
    let browser = ada.with(ada_user.browser());
    let scoped = json!({"name": "read only", "scopes": ["agents:read"]});
    let t = browser.post("/api/v1/tokens", scoped).await;
    assert_eq!(t.status, 201, "{}", t.body);
    let bearer = Some(t.body["token"].as_str().unwrap().to_string());
    let reader = ada.with(Caller { bearer, ..Caller::default() });
    assert_eq!(reader.get("/api/v1/agents").await.status, 200);
    let forbidden = [
        reader.post("/api/v1/agents", agent_body("second")).await,
        reader.patch("/api/v1/agents/pr-review", json!({"name": "x"})).await,
        reader.post("/api/v1/agents/pr-review/versions", version_body("2.0.0")).await,
        reader.post("/api/v1/agents/pr-review/reviews", json!({"rating": 5, "body": "x"})).await,
    ];
    for r in forbidden {
        assert_eq!(r.status, 403, "{}", r.body);
    }
    // Without the CSRF header a cookie session cannot publish.
    let no_csrf = ada.with(Caller { csrf: None, ..ada_user.browser() });
    assert_eq!(no_csrf.post("/api/v1/agents", agent_body("second")).await.status, 403);
    assert_eq!(browser.post("/api/v1/agents", agent_body("second")).await.status, 201);
    assert_eq!(Api::anyone(&app).get("/api/v1/agents").await.status, 401);
    assert_eq!(count(&ada.get("/api/v1/agents").await.body), 2);
}

#[tokio::test]
async fn the_openapi_document_lists_the_catalog() {
    let doc: Value = serde_json::from_str(&tollgate_api::openapi_json()).unwrap();
    let paths = [
        "/api/v1/agents",
        "/api/v1/agents/{slug}",
        "/api/v1/agents/{slug}/versions",
        "/api/v1/agents/{slug}/versions/{version}",
        "/api/v1/agents/{slug}/reviews",
        "/api/v1/agents/{slug}/reviews/mine",
        "/api/v1/store/agents",
        "/api/v1/store/agents/{slug}",
    ];
    for path in paths {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
}

#[tokio::test]
async fn latest_is_the_newest_active_version_by_semver_precedence() {
    let app = TestApp::new().await;
    let (ada, _) = Api::user(&app, "ada@x.io").await;
    let (bob, _) = Api::user(&app, "bob@x.io").await;
    assert_eq!(ada.post("/api/v1/agents", agent_body("pre")).await.status, 201);
    let versions = "/api/v1/agents/pre/versions";
    for v in ["1.0.0-rc.2", "1.0.0-rc.10", "1.0.0-rc.9", "1.0.0-beta.11"] {
        assert_eq!(ada.post(versions, version_body(v)).await.status, 201, "{v}");
    }
    let agent = app.store.agent_by_slug("pre").await.unwrap();
    let latest = || async { app.store.agent_version(&agent.id, "latest").await.unwrap().version };
    // Numeric identifiers compare as numbers: rc.10 is newer than rc.9 and rc.2.
    assert_eq!(latest().await, "1.0.0-rc.10");
    let store = Api::anyone(&app).get("/api/v1/store/agents?q=pre").await;
    assert_eq!(store.body["agents"][0]["latest_version"], "1.0.0-rc.10");
    let own = ada.get("/api/v1/agents/pre").await;
    let order: Vec<&str> =
        own.body["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(order, ["1.0.0-rc.10", "1.0.0-rc.9", "1.0.0-rc.2", "1.0.0-beta.11"]);

    // A release is newer than its pre-releases; a deprecated release is skipped.
    ada.post(versions, version_body("1.0.0")).await;
    assert_eq!(latest().await, "1.0.0");
    ada.patch("/api/v1/agents/pre/versions/1.0.0", json!({"status": "deprecated"})).await;
    assert_eq!(latest().await, "1.0.0-rc.10");
    let installed = bob.post("/api/v1/installations", json!({"agent": "pre"})).await;
    assert_eq!(installed.status, 201, "{}", installed.body);
    assert_eq!(installed.body["version"], "latest");
}

#[tokio::test]
async fn renaming_the_publisher_renames_it_in_the_store_search() {
    let app = TestApp::new().await;
    let (ada, ada_user) = Api::user(&app, "ada@x.io").await;
    let team = ada.post("/api/v1/orgs", json!({"name": "Zephyr Labs"})).await;
    let team_id = team.body["id"].as_str().unwrap().to_string();
    let in_team = ada.with(ada_user.in_org(&team_id));
    assert_eq!(in_team.post("/api/v1/agents", agent_body("helper")).await.status, 201);
    assert_eq!(ada.post("/api/v1/agents/helper/versions", version_body("1.0.0")).await.status, 201);
    ada.publish("elsewhere").await;
    let anyone = Api::anyone(&app);
    assert_eq!(slugs(&anyone.get("/api/v1/store/agents?q=zephyr").await), ["helper"]);

    let renamed = ada.patch(&format!("/api/v1/orgs/{team_id}"), json!({"name": "Quokka Works"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(slugs(&anyone.get("/api/v1/store/agents?q=quokka").await), ["helper"]);
    assert_eq!(slugs(&anyone.get("/api/v1/store/agents?q=quokka+works").await), ["helper"]);
    assert_eq!(anyone.get("/api/v1/store/agents?q=zephyr").await.body["total"], 0);
    assert_eq!(anyone.get("/api/v1/store/agents/helper").await.body["publisher"], "Quokka Works");
    // The rest of the listing is still searchable, and other publishers' agents are untouched.
    assert_eq!(slugs(&anyone.get("/api/v1/store/agents?q=pull+requests+helper").await), ["helper"]);
    assert_eq!(slugs(&anyone.get("/api/v1/store/agents?q=elsewhere").await), ["elsewhere"]);
}

#[tokio::test]
async fn installing_a_retired_version_is_gone_and_bad_queries_get_the_envelope() {
    let app = TestApp::new().await;
    let (ada, _) = Api::user(&app, "ada@x.io").await;
    let (bob, _) = Api::user(&app, "bob@x.io").await;
    ada.publish("old-tool").await;
    ada.post("/api/v1/agents/old-tool/versions", version_body("2.0.0")).await;
    ada.patch("/api/v1/agents/old-tool/versions/1.0.0", json!({"status": "retired"})).await;
    let r = bob.post("/api/v1/installations", json!({"agent": "old-tool", "version": "1.0.0"})).await;
    assert_error(&r, 410, "version_retired");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("retired"));
    assert_eq!(count(&bob.get("/api/v1/installations?all=true").await.body), 0, "nothing was installed");
    assert_eq!(bob.post("/api/v1/installations", json!({"agent": "old-tool"})).await.status, 201);

    for (path, field) in [
        ("/api/v1/installations?all=1", "all"),
        ("/api/v1/installations?all=maybe", "all"),
        ("/api/v1/billing/transactions?page=abc", "page"),
        ("/api/v1/billing/transactions?per_page=1.5", "per_page"),
    ] {
        let r = bob.get(path).await;
        assert_invalid(&r, field);
        assert!(r.body["error"]["message"].as_str().unwrap().len() > 10, "{path}: {}", r.body);
    }
    assert_invalid(&bob.get("/api/v1/billing/transactions?page=0").await, "page");
    // A page whose offset would overflow is refused, not wrapped (nor a panic).
    assert_invalid(&bob.get("/api/v1/billing/transactions?page=9223372036854775807").await, "page");
    assert_invalid(&bob.get("/api/v1/billing/transactions?page=100001").await, "page");
    assert_eq!(bob.get("/api/v1/billing/transactions?page=100000").await.status, 200);
    assert_eq!(count(&bob.get("/api/v1/installations?all=false").await.body), 1);
    assert_eq!(bob.get("/api/v1/billing/transactions?page=1&per_page=5").await.status, 200);
}
