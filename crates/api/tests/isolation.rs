//! Tenant isolation: a second org (B) tries every endpoint against the first org's (A's)
//! resources. Every attempt is refused with 404 or 403, answers exactly what the same
//! request naming ids that do not exist answers (so nothing hints that A's resources exist),
//! and changes no row of the database.
//!
//! The matrix keeps itself complete. Every operation of the OpenAPI document is attempted
//! against something of A's, or is listed in [`NOTHING_OF_ANOTHER_ORG`] with the reason;
//! every operation that acts in the org named by `X-Tollgate-Org` is attempted with one of
//! A's orgs in that header. And every route the routers register (read from the source of
//! `src/`, and probed on the real router) is in the document, or listed in [`UNDOCUMENTED`]:
//! a new endpoint fails here until the matrix covers it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Caller, Reply, TestApp, TestUser};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tollgate_domain::Nanos;
use tollgate_store::calls::{Charge, SettledCall, UsageRecord};
use tollgate_store::ledger::{AccountKind, PLATFORM};

/// Operations of the document that have no other org's resource to aim at: they act on the
/// caller's own account or lists, or they are public. The matrix may not attempt them (it
/// could only succeed); what B sees through the listing ones is checked to show nothing of
/// A's, and closing B's account is checked to leave A's rows as they were.
const NOTHING_OF_ANOTHER_ORG: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/auth/signup", "creates a new account with its own personal org"),
    ("POST", "/api/v1/auth/login", "takes an email and password, no id; a wrong password is 401 (tests/accounts.rs)"),
    ("POST", "/api/v1/auth/logout", "ends the session it is sent with"),
    ("GET", "/api/v1/me", "the caller's own account"),
    ("PATCH", "/api/v1/me", "changes the caller's own profile"),
    ("DELETE", "/api/v1/me", "closes the caller's own account; its body is a password, nothing else"),
    ("POST", "/api/v1/tokens", "creates a token of the caller's"),
    ("GET", "/api/v1/tokens", "the caller's own tokens"),
    ("GET", "/api/v1/orgs", "the orgs the caller belongs to"),
    ("POST", "/api/v1/orgs", "creates a team the caller owns"),
    ("GET", "/api/v1/invitations", "the invitations addressed to the caller's email"),
    ("GET", "/api/v1/notifications", "the caller's own notifications"),
    ("GET", "/api/v1/store/agents", "the public store; A's unlisted agent must not be in it"),
    (
        "POST",
        "/api/v1/billing/webhooks/{provider}",
        "answers to the payment provider's signature, not to a person; forged and replayed ones: tests/payments.rs",
    ),
];

/// Routes the routers register that are not operations of the OpenAPI document.
const UNDOCUMENTED: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/openapi.json", "the document itself"),
    ("GET", "/healthz", "liveness; reads nothing"),
    ("GET", "/readyz", "readiness; pings the database"),
    ("GET", "/metrics", "process-wide gauges; no org's data"),
];

/// The header that picks the org a request acts in.
const ORG_HEADER: &str = "X-Tollgate-Org";

/// The request ids of A's two recorded calls.
const A_CALL: &str = "req_isolation_a";
const A_TEAM_CALL: &str = "req_isolation_t";

/// The password `TestApp::user` signs everyone up with.
const PASSWORD: &str = "correct horse 42";

/// Records one call on A's installation `inst` through the gateway's write path, charged
/// to A's personal org when `charged`.
async fn record_call(app: &TestApp, a: &TestUser, org: &str, inst: &str, key_id: &str, id: &str, charged: bool) {
    let agent = app.store.agent_by_slug("a-tool").await.unwrap();
    let record = UsageRecord {
        id: id.into(),
        created_at: tollgate_domain::time::now_ms() - 60_000,
        org_id: org.into(),
        user_id: a.id.clone(),
        key_id: key_id.into(),
        installation_id: inst.into(),
        agent_id: agent.id,
        version: "1.0.0".into(),
        function_name: "echo".into(),
        method: "tools/call".into(),
        latency_ms: 12,
        http_status: 200,
        cost: Nanos(if charged { 1_000_000 } else { 0 }),
        fee: Nanos(if charged { 200_000 } else { 0 }),
        ..UsageRecord::default()
    };
    let charge = if charged {
        Some(Charge {
            org_account: app.store.ledger_account(AccountKind::OrgCredit, org).await.unwrap().id,
            lease: None,
            publisher_account: app.store.ledger_account(AccountKind::PublisherEarnings, &a.org_id).await.unwrap().id,
            platform_account: app.store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await.unwrap().id,
        })
    } else {
        None
    };
    app.store.settle_calls(&[SettledCall { record, charge }]).await.unwrap();
}

/// Every row of every table, one line each, sorted (the dump's order is the database's).
/// The `last_used_at` of B's account tokens is replaced by a placeholder: authenticating
/// B's attempts stamps it (at most once a minute), the one write a refused request makes.
/// Nothing else is left out.
async fn rows(app: &TestApp, b: &TestUser) -> Vec<String> {
    let b_token = format!(" user_id={} ", b.id);
    let mut lines: Vec<String> = app
        .store
        .dump()
        .await
        .unwrap()
        .lines()
        .map(|line| {
            if !(line.starts_with("account_tokens ") && line.contains(&b_token)) {
                return line.to_string();
            }
            let (head, tail) = line.split_once(" last_used_at=").expect("account_tokens has last_used_at");
            let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head} last_used_at=<B's, stamped on use>{rest}")
        })
        .collect();
    lines.sort();
    lines
}

/// Asserts two sets of rows are equal, showing only the rows that differ.
fn assert_same_rows(before: &[String], after: &[String], what: &str) {
    let (b, a): (BTreeSet<&String>, BTreeSet<&String>) = (before.iter().collect(), after.iter().collect());
    let gone: Vec<_> = b.difference(&a).collect();
    let new: Vec<_> = a.difference(&b).collect();
    assert!(gone.is_empty() && new.is_empty() && before.len() == after.len(), "{what}:\n- {gone:#?}\n+ {new:#?}");
}

/// One request of the matrix: sent by B with its account token and again with its browser
/// session (cookie and CSRF token), with `org` as `X-Tollgate-Org`.
#[derive(Clone, Debug, PartialEq)]
struct Attempt {
    method: Method,
    path: String,
    body: Option<Value>,
    org: Option<String>,
}

fn attempt(method: Method, path: impl Into<String>) -> Attempt {
    Attempt { method, path: path.into(), body: None, org: None }
}

impl Attempt {
    fn body(mut self, body: Value) -> Attempt {
        self.body = Some(body);
        self
    }

    fn org(mut self, org: Option<&str>) -> Attempt {
        self.org = org.map(str::to_string);
        self
    }

    /// The same request with each of A's ids replaced by one that does not exist.
    fn ghost(&self, ids: &[(String, String)]) -> Attempt {
        let swap = |text: &str| ids.iter().fold(text.to_string(), |t, (real, ghost)| t.replace(real, ghost));
        Attempt {
            method: self.method.clone(),
            path: swap(&self.path),
            body: self.body.as_ref().map(|b| serde_json::from_str(&swap(&b.to_string())).unwrap()),
            org: self.org.as_deref().map(swap),
        }
    }

    async fn send(&self, app: &TestApp, as_b: &Caller) -> Reply {
        let who = Caller { org: self.org.clone(), ..as_b.clone() };
        app.call(self.method.clone(), &self.path, self.body.clone(), &who).await
    }
}

/// An id of the same shape that names nothing: the prefix kept, the random part replaced.
fn ghost_id(id: &str) -> String {
    let cut = id.rfind('_').map_or(0, |i| i + 1);
    format!("{}{}", &id[..cut], "z".repeat(id.len() - cut))
}

/// One operation of the OpenAPI document.
#[derive(Debug)]
struct Operation {
    method: String,
    path: String,
    statuses: BTreeSet<String>,
    org_header: bool,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            out.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                statuses: op["responses"].as_object().unwrap().keys().cloned().collect(),
                org_header: params.iter().any(|p| p["in"] == "header" && p["name"] == ORG_HEADER),
            });
        }
    }
    out
}

/// Whether `path` (a query string allowed) fits the `template` (`{name}` segments match any
/// one segment), and how many literal segments it matched: the router prefers literals.
fn fits(template: &str, path: &str) -> Option<usize> {
    let path = path.split('?').next().unwrap();
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut literal = 0;
    for (t, p) in t.iter().zip(&p) {
        if t.starts_with('{') && t.ends_with('}') {
            if p.is_empty() {
                return None;
            }
        } else if t == p {
            literal += 1;
        } else {
            return None;
        }
    }
    Some(literal)
}

/// The operation an attempt exercises.
fn operation_of<'a>(ops: &'a [Operation], a: &Attempt) -> &'a Operation {
    ops.iter()
        .filter(|o| o.method == a.method.as_str())
        .filter_map(|o| fits(&o.path, &a.path).map(|n| (n, o)))
        .max_by_key(|(n, _)| *n)
        .map(|(_, o)| o)
        .unwrap_or_else(|| panic!("{} {} is no operation of the OpenAPI document", a.method, a.path))
}

/// A's world, and B with a team of its own.
struct World {
    a: TestUser,
    b: TestUser,
    /// A's team.
    team: String,
    invitation_id: String,
    invitation_token: String,
    /// A's installation of `a-tool` in A's personal org, and its key.
    inst: String,
    key: String,
    /// A's installation of `a-tool` in A's team, and its key.
    team_inst: String,
    team_key: String,
    /// A's account token.
    a_token: String,
    /// A's unread notification.
    notification: String,
    /// A card payment of A's team.
    payment: String,
    b_team: String,
}

impl World {
    /// In A's personal org: a published agent (`a-tool`), an installation of it with a key
    /// and a charged call. In A's team: an unlisted agent (`a-draft`, no version yet), an
    /// installation with a key and a call, a pending invitation, a budget and auto-recharge.
    /// A has an account token and an unread notification; someone else reviewed A's agent.
    /// B has a team of its own, whose paths B may use with A's ids.
    async fn new(app: &TestApp) -> World {
        let a = app.user("a@example.com").await;
        let b = app.user("b@example.com").await;
        let reviewer = app.user("r@example.com").await;
        let team = app.post("/api/v1/orgs", json!({"name": "A team"}), &a.caller()).await.body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let invitation = app
            .post(
                &format!("/api/v1/orgs/{team}/invitations"),
                json!({"email": "c@example.com", "role": "member"}),
                &a.caller(),
            )
            .await;
        app.publish(&a.caller(), "a-tool").await;
        let draft = json!({"slug": "a-draft", "name": "A draft", "description": "Not listed yet.",
            "category": "devtools", "protocol": "mcp"});
        let draft = app.post("/api/v1/agents", draft, &a.in_org(&team)).await;
        assert_eq!(draft.status, StatusCode::CREATED, "{:?}", draft.body);
        let inst = app.install(&a.caller(), "a-tool").await;
        let (key, _) = app.key(&a.caller(), &inst).await;
        let team_inst = app.install(&a.in_org(&team), "a-tool").await;
        let (team_key, _) = app.key(&a.in_org(&team), &team_inst).await;
        record_call(app, &a, &a.org_id, &inst, &key, A_CALL, true).await;
        record_call(app, &a, &team, &team_inst, &team_key, A_TEAM_CALL, false).await;
        for (path, body) in [
            ("/api/v1/billing/budget", json!({"monthly_limit": "50"})),
            ("/api/v1/billing/auto-recharge", json!({"enabled": true, "threshold": "10", "amount": "20"})),
        ] {
            assert_eq!(app.call(Method::PUT, path, Some(body), &a.in_org(&team)).await.status, StatusCode::OK);
        }
        app.store.notify(&a.id, "test", "For A only", "", None).await.unwrap();
        let payment =
            app.store.create_payment(&team, Some(&a.id), "checkout", "local", Nanos(10_000_000_000)).await.unwrap();
        let review = json!({"rating": 4, "body": "good"});
        assert_eq!(
            app.post("/api/v1/agents/a-tool/reviews", review, &reviewer.caller()).await.status,
            StatusCode::CREATED
        );
        let b_team = app.post("/api/v1/orgs", json!({"name": "B team"}), &b.caller()).await.body["id"]
            .as_str()
            .unwrap()
            .to_string();
        World {
            invitation_id: invitation.body["invitation"]["id"].as_str().unwrap().to_string(),
            invitation_token: invitation.body["token"].as_str().unwrap().to_string(),
            notification: app.get("/api/v1/notifications", &a.caller()).await.body[0]["id"]
                .as_str()
                .unwrap()
                .to_string(),
            a_token: app.get("/api/v1/tokens", &a.caller()).await.body[0]["id"].as_str().unwrap().to_string(),
            payment: payment.id,
            a,
            b,
            team,
            inst,
            key,
            team_inst,
            team_key,
            b_team,
        }
    }

    /// A's two orgs: the team and the personal one.
    fn a_orgs(&self) -> [&str; 2] {
        [&self.team, &self.a.org_id]
    }

    /// B's own contexts: the personal org (no header) and B's team.
    fn b_orgs(&self) -> [Option<&str>; 2] {
        [None, Some(&self.b_team)]
    }

    /// Every id of A's, each with an id of the same shape that names nothing. Slugs are not
    /// among them: they are global (listing an agent under a taken slug is a 409 for
    /// anyone), so which slugs exist is no secret; what only an agent's publisher may see is.
    fn ghosts(&self) -> Vec<(String, String)> {
        let w = self;
        let mut ids: Vec<(String, String)> = [
            &w.team,
            &w.a.org_id,
            &w.a.id,
            &w.invitation_id,
            &w.invitation_token,
            &w.inst,
            &w.team_inst,
            &w.key,
            &w.team_key,
            &w.a_token,
            &w.notification,
            &w.payment,
        ]
        .into_iter()
        .map(String::as_str)
        .chain([A_CALL, A_TEAM_CALL])
        .map(|id| (id.to_string(), ghost_id(id)))
        .collect();
        ids.sort_by_key(|(real, _)| std::cmp::Reverse(real.len()));
        ids
    }

    /// What B must never see of A's, in any view: A's ids, emails and invitee, the
    /// unlisted agent, and where the gateway forwards A's agent (its URL and credential,
    /// as `TestApp::publish` sets them).
    fn secrets(&self) -> Vec<&str> {
        let w = self;
        let ids = [&w.team, &w.a.org_id, &w.a.id, &w.a.email, &w.invitation_id, &w.invitation_token, &w.inst];
        let more = [&w.team_inst, &w.key, &w.team_key, &w.a_token, &w.notification, &w.payment];
        ids.into_iter()
            .chain(more)
            .map(String::as_str)
            .chain([A_CALL, A_TEAM_CALL, "a-draft", "c@example.com", "127.0.0.1:9/mcp", "upstream-secret"])
            .collect()
    }
}

/// The matrix: B's attempts on A's resources, through every operation that has any.
fn matrix(w: &World) -> Vec<Attempt> {
    let (a, b) = (&w.a, &w.b);
    let (invitation_id, invitation_token) = (&w.invitation_id, &w.invitation_token);
    let version = json!({"version": "2.0.0", "upstream_url": "http://127.0.0.1:9/evil", "upstream_headers": {}, "base_fee": "0",
        "functions": [], "dependencies": [], "task_timeout_seconds": 300, "cold_start": false});
    let new_agent = json!({"slug": "b-in-a", "name": "x", "description": "x", "category": "x", "protocol": "mcp"});
    let limits = json!({"requests": 1, "input_tokens": 0, "output_tokens": 0, "cache_tokens": 0});
    let mut attempts = vec![
        attempt(Method::DELETE, format!("/api/v1/tokens/{}", w.a_token)),
        // An invitation of A's team to someone else, by its token and by its id.
        attempt(Method::POST, format!("/api/v1/invitations/{invitation_token}/accept")).body(json!({})),
        attempt(Method::POST, format!("/api/v1/invitations/{invitation_id}/accept")).body(json!({})),
        attempt(Method::POST, "/api/v1/notifications/read").body(json!({"id": w.notification})),
        // A's listed agent: B has no review of it to change, and the reviewer's is not B's.
        attempt(Method::PUT, "/api/v1/agents/a-tool/reviews").body(json!({"rating": 1, "body": "bad"})),
        attempt(Method::DELETE, "/api/v1/agents/a-tool/reviews"),
        attempt(Method::GET, "/api/v1/agents/a-tool/reviews/mine"),
        attempt(Method::PATCH, "/api/v1/agents/a-tool/versions/1.0.0").body(json!({"status": "retired"})),
        // A's unlisted agent is in no public view, and cannot be reviewed or installed.
        attempt(Method::GET, "/api/v1/store/agents/a-draft"),
        attempt(Method::GET, "/api/v1/agents/a-draft/reviews"),
        attempt(Method::POST, "/api/v1/agents/a-draft/reviews").body(json!({"rating": 5, "body": "first"})),
        attempt(Method::POST, "/api/v1/installations").body(json!({"agent": "a-draft"})),
        attempt(Method::PATCH, "/api/v1/agents/a-draft/versions/1.0.0").body(json!({"status": "active"})),
    ];
    for slug in ["a-tool", "a-draft"] {
        attempts.extend([
            attempt(Method::GET, format!("/api/v1/agents/{slug}")),
            attempt(Method::PATCH, format!("/api/v1/agents/{slug}")).body(json!({"name": "Hijacked"})),
            attempt(Method::POST, format!("/api/v1/agents/{slug}/versions")).body(version.clone()),
        ]);
        for org in w.b_orgs() {
            attempts.push(attempt(Method::GET, format!("/api/v1/publisher/usage?agent={slug}")).org(org));
        }
    }
    // A's orgs by path, and as the org a request acts in.
    for org in w.a_orgs() {
        let o = Some(org);
        attempts.extend([
            attempt(Method::GET, format!("/api/v1/orgs/{org}")),
            attempt(Method::PATCH, format!("/api/v1/orgs/{org}")).body(json!({"name": "mine"})),
            attempt(Method::GET, format!("/api/v1/orgs/{org}/members")),
            attempt(Method::GET, format!("/api/v1/orgs/{org}/rate-limits")),
            attempt(Method::PUT, format!("/api/v1/orgs/{org}/rate-limits")).body(json!({"minute": 0})),
            attempt(Method::PATCH, format!("/api/v1/orgs/{org}/members/{}", a.id)).body(json!({"role": "viewer"})),
            attempt(Method::DELETE, format!("/api/v1/orgs/{org}/members/{}", a.id)),
            attempt(Method::GET, format!("/api/v1/orgs/{org}/invitations")),
            attempt(Method::POST, format!("/api/v1/orgs/{org}/invitations"))
                .body(json!({"email": "b2@example.com", "role": "owner"})),
            attempt(Method::DELETE, format!("/api/v1/orgs/{org}/invitations/{invitation_id}")),
            attempt(Method::POST, format!("/api/v1/admin/orgs/{org}/grants")).body(json!({"amount": "1000"})),
            attempt(Method::GET, "/api/v1/billing/balance").org(o),
            attempt(Method::GET, "/api/v1/billing/transactions").org(o),
            attempt(Method::PUT, "/api/v1/billing/budget").body(json!({"monthly_limit": "1"})).org(o),
            attempt(Method::PUT, "/api/v1/billing/auto-recharge")
                .body(json!({"enabled": false, "threshold": "1", "amount": "5"}))
                .org(o),
            attempt(Method::POST, "/api/v1/billing/checkout").body(json!({"amount": "10"})).org(o),
            attempt(Method::GET, "/api/v1/billing/payments").org(o),
            attempt(Method::GET, "/api/v1/installations?all=true").org(o),
            attempt(Method::POST, "/api/v1/installations").body(json!({"agent": "a-tool"})).org(o),
            attempt(Method::GET, "/api/v1/agents").org(o),
            attempt(Method::POST, "/api/v1/agents").body(new_agent.clone()).org(o),
            attempt(Method::GET, "/api/v1/publisher/usage").org(o),
            attempt(Method::GET, "/api/v1/usage").org(o),
            attempt(Method::GET, "/api/v1/usage/audit").org(o),
            attempt(Method::GET, "/api/v1/usage/audit.csv").org(o),
        ]);
        for call in [A_CALL, A_TEAM_CALL] {
            attempts.push(attempt(Method::GET, format!("/api/v1/usage/audit/{call}")).org(o));
        }
    }
    // B's own orgs by path, with A's member and A's invitation.
    for org in [&w.b_team, &b.org_id] {
        attempts.extend([
            attempt(Method::PATCH, format!("/api/v1/orgs/{org}/members/{}", a.id)).body(json!({"role": "viewer"})),
            attempt(Method::DELETE, format!("/api/v1/orgs/{org}/members/{}", a.id)),
            attempt(Method::DELETE, format!("/api/v1/orgs/{org}/invitations/{invitation_id}")),
        ]);
    }
    // A's installations, keys and calls, acting in B's own orgs.
    for org in w.b_orgs() {
        for i in [&w.inst, &w.team_inst] {
            attempts.extend([
                attempt(Method::GET, format!("/api/v1/installations/{i}")).org(org),
                attempt(Method::PATCH, format!("/api/v1/installations/{i}"))
                    .body(json!({"task_timeout_seconds": 120}))
                    .org(org),
                attempt(Method::DELETE, format!("/api/v1/installations/{i}")).org(org),
                attempt(Method::GET, format!("/api/v1/installations/{i}/keys")).org(org),
                attempt(Method::POST, format!("/api/v1/installations/{i}/keys"))
                    .body(json!({"name": "stolen"}))
                    .org(org),
                attempt(Method::GET, format!("/api/v1/usage?installation={i}")).org(org),
                attempt(Method::GET, format!("/api/v1/usage/audit?installation={i}")).org(org),
                attempt(Method::GET, format!("/api/v1/usage/audit.csv?installation={i}")).org(org),
            ]);
        }
        for k in [&w.key, &w.team_key] {
            attempts.extend([
                attempt(Method::PATCH, format!("/api/v1/keys/{k}"))
                    .body(json!({"name": "stolen", "daily_limits": limits}))
                    .org(org),
                attempt(Method::DELETE, format!("/api/v1/keys/{k}")).org(org),
            ]);
        }
        for call in [A_CALL, A_TEAM_CALL] {
            attempts.push(attempt(Method::GET, format!("/api/v1/usage/audit/{call}")).org(org));
        }
        attempts.extend([
            attempt(Method::GET, format!("/api/v1/billing/payments/{}", w.payment)).org(org),
            attempt(Method::POST, format!("/api/v1/billing/payments/{}/test-confirm", w.payment))
                .body(json!({}))
                .org(org),
        ]);
    }
    attempts
}

/// What keeps the matrix complete: every operation is attempted or has nothing of another
/// org's; an operation that acts in the org of `X-Tollgate-Org` documents the header, takes
/// an `OrgCtx`, and is attempted with one of A's orgs there. One line per problem.
fn coverage_problems(ops: &[Operation], routed: &[Routed], attempts: &[Attempt], a_orgs: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let org_scoped: BTreeSet<(&str, &str)> =
        routed.iter().filter(|r| r.org_scoped).map(|r| (r.method.as_str(), r.path.as_str())).collect();
    let mut tried: BTreeMap<(&str, &str), Vec<&Attempt>> = BTreeMap::new();
    for at in attempts {
        let op = operation_of(ops, at);
        tried.entry((op.method.as_str(), op.path.as_str())).or_default().push(at);
    }
    for op in ops {
        let id = (op.method.as_str(), op.path.as_str());
        let exempt = NOTHING_OF_ANOTHER_ORG.iter().any(|(m, p, _)| (*m, *p) == id);
        let tries = tried.get(&id).map(Vec::as_slice).unwrap_or_default();
        let (m, p) = id;
        match (exempt, tries.is_empty()) {
            (false, true) => problems.push(format!(
                "{m} {p} is attempted by no one: add attempts on A's resources to the matrix (or, if it \
                 has no other org's resource, list it in NOTHING_OF_ANOTHER_ORG with the reason)"
            )),
            (true, false) => problems.push(format!("{m} {p} is attempted and listed in NOTHING_OF_ANOTHER_ORG")),
            _ => {}
        }
        if op.org_header != org_scoped.contains(&id) {
            problems.push(format!(
                "{m} {p}: the handler {} an OrgCtx but the document {} the {ORG_HEADER} header",
                if org_scoped.contains(&id) { "takes" } else { "takes no" },
                if op.org_header { "lists" } else { "does not list" },
            ));
        }
        let in_a_org = tries.iter().any(|at| at.org.as_deref().is_some_and(|o| a_orgs.contains(&o)));
        if org_scoped.contains(&id) && !in_a_org {
            problems.push(format!("{m} {p} acts in the org of {ORG_HEADER}: attempt it with one of A's orgs there"));
        }
    }
    for (m, p, _) in NOTHING_OF_ANOTHER_ORG {
        if !ops.iter().any(|o| (o.method.as_str(), o.path.as_str()) == (*m, *p)) {
            problems.push(format!("NOTHING_OF_ANOTHER_ORG lists {m} {p}, which is no operation"));
        }
    }
    problems
}

/// Sends each attempt as B, with its account token and with its browser session. Each must
/// be refused (404 or 403, in the envelope, a status the document lists) exactly as the same
/// request with A's ids swapped for ids that name nothing. One line per problem.
async fn refusal_problems(app: &TestApp, w: &World, ops: &[Operation], attempts: &[Attempt]) -> Vec<String> {
    let ghosts = w.ghosts();
    let mut problems = Vec::new();
    for at in attempts {
        let op = operation_of(ops, at);
        for (how, as_b) in [("token", w.b.caller()), ("session", w.b.browser())] {
            let what = format!("{} {} (org {:?}) as B's {how}", at.method, at.path, at.org);
            let r = at.send(app, &as_b).await;
            if r.status != StatusCode::NOT_FOUND && r.status != StatusCode::FORBIDDEN {
                problems.push(format!("{what} answered {}: {}", r.status, r.body));
                continue;
            }
            if !r.body["error"]["code"].is_string() {
                problems.push(format!("{what} answered without the error envelope: {}", r.body));
            }
            if !op.statuses.contains(r.status.as_str()) {
                problems.push(format!("{what} answered {}, not listed for {} {}", r.status, op.method, op.path));
            }
            let ghost = at.ghost(&ghosts);
            if &ghost != at {
                let g = ghost.send(app, &as_b).await;
                if (g.status, &g.body) != (r.status, &r.body) {
                    problems.push(format!(
                        "{what} answered {} {}, but {} {} {} {}: a hint that A's resource exists",
                        r.status, r.body, ghost.method, ghost.path, g.status, g.body
                    ));
                }
            }
        }
    }
    problems
}

#[tokio::test]
async fn another_org_can_neither_read_nor_change_anything() {
    let app = TestApp::new().await;
    let w = World::new(&app).await;
    let (a, b) = (&w.a, &w.b);
    let attempts = matrix(&w);
    let doc: Value = serde_json::from_str(&tollgate_api::openapi_json()).unwrap();
    let ops = operations(&doc);
    let problems = coverage_problems(&ops, &routed(), &attempts, &w.a_orgs());
    assert!(problems.is_empty(), "the matrix is incomplete:\n{}", problems.join("\n"));

    let before = rows(&app, b).await;
    let problems = refusal_problems(&app, &w, &ops, &attempts).await;
    assert!(
        problems.is_empty(),
        "{} problems in {} attempts (each sent with B's token and B's session):\n{}",
        problems.len(),
        attempts.len(),
        problems.join("\n")
    );
    assert_same_rows(&before, &rows(&app, b).await, "B's attempts changed rows");
    assert_eq!(app.get("/api/v1/notifications", &a.caller()).await.body[0]["read"], false);

    // What B lists, in each of its orgs, shows nothing of A's. The public views (the store
    // and the reviews) show A's listed agent as they do to anyone, and no more of it; B's
    // own views do not show even that.
    let public = [
        "/api/v1/store/agents",
        "/api/v1/store/agents?q=draft",
        "/api/v1/store/agents/a-tool",
        "/api/v1/agents/a-tool/reviews",
    ];
    for org in w.b_orgs() {
        let who = Caller { org: org.map(str::to_string), ..b.caller() };
        for path in public.iter().map(|p| p.to_string()).chain([
            "/api/v1/me".to_string(),
            "/api/v1/orgs".into(),
            "/api/v1/invitations".into(),
            "/api/v1/notifications".into(),
            "/api/v1/tokens".into(),
            "/api/v1/installations?all=true".into(),
            "/api/v1/agents".into(),
            "/api/v1/billing/transactions".into(),
            "/api/v1/usage".into(),
            "/api/v1/usage/audit".into(),
            format!("/api/v1/usage/audit?key={}", w.key),
            format!("/api/v1/usage/audit?member={}", a.id),
            "/api/v1/usage/audit.csv".into(),
            "/api/v1/publisher/usage".into(),
        ]) {
            let r = app.get(&path, &who).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
            let body = r.body.to_string();
            let is_public = public.contains(&path.as_str());
            for secret in w.secrets().into_iter().chain((!is_public).then_some("a-tool")) {
                assert!(!body.contains(secret), "{path} (org {org:?}) shows B something of A's ({secret})");
            }
        }
    }

    // Closing B's account, even while naming A's team as the org, changes only B's rows.
    let not_b = |rows: Vec<String>| -> Vec<String> {
        rows.into_iter().filter(|r| ![&b.id, &b.org_id, &w.b_team].iter().any(|id| r.contains(id.as_str()))).collect()
    };
    let before = not_b(rows(&app, b).await);
    let closed = app.call(Method::DELETE, "/api/v1/me", Some(json!({"password": PASSWORD})), &b.in_org(&w.team)).await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT, "{:?}", closed.body);
    assert_same_rows(&before, &not_b(rows(&app, b).await), "closing B's account changed rows that are not B's");
    assert_eq!(app.get("/api/v1/me", &a.caller()).await.status, StatusCode::OK);
}

/// A route as the source registers it.
#[derive(Debug)]
struct Routed {
    method: String,
    /// The full path, `/api/v1` included.
    path: String,
    /// The handler takes an `OrgCtx`: it acts in the org named by `X-Tollgate-Org`.
    org_scoped: bool,
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The text from just after an opening parenthesis to its closing one.
fn inside_parens(text: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return &text[..i],
            ')' => depth -= 1,
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {text:.80}")
}

/// The calls at the top level of `expr` (`get(a).post(b)`, `axum::routing::get(c)`), as
/// (function name, argument text).
fn top_level_calls(expr: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find('(') {
        let name: String = rest[..open].chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let arg = inside_parens(&rest[open + 1..]);
        out.push((name.chars().rev().collect(), arg.trim().to_string()));
        rest = &rest[open + 1 + arg.len() + 1..];
    }
    out
}

/// Every route registered in `src/`, read from the source: each `.route("path", …)` call's
/// method router (`get(handler).post(handler)…`). `routes/system.rs` is merged at the root;
/// every other router is nested under `/api/v1`, the one `.nest` there is. Anything the
/// reader does not understand fails, so that no route can slip past it.
fn routed() -> Vec<Routed> {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut routes = Vec::new();
    let mut handlers = Vec::new();
    let mut nests = Vec::new();
    for (file, text) in &files {
        for other in [".route_service(", ".nest_service(", ".fallback_service("] {
            assert!(!text.contains(other), "{}: {other} registers routes this test cannot read", file.display());
        }
        nests.extend(text.match_indices(".nest(").map(|(i, _)| inside_parens(&text[i + 6..]).to_string()));
        let prefix = if file.ends_with("routes/system.rs") { "" } else { "/api/v1" };
        for (i, _) in text.match_indices(".route(") {
            let call = inside_parens(&text[i + 7..]);
            let (path, router) =
                call.trim_start().strip_prefix('"').and_then(|c| c.split_once('"')).unwrap_or_else(|| {
                    panic!("{}: a route whose path is not a string literal: {call}", file.display())
                });
            for (method, handler) in top_level_calls(router) {
                let known = ["get", "post", "put", "patch", "delete"];
                assert!(known.contains(&method.as_str()), "{}: {path}: cannot read `{method}(…)`", file.display());
                let name = handler.rsplit("::").next().unwrap().to_string();
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_'),
                    "{}: {path}: the handler `{handler}` is not a function's name",
                    file.display()
                );
                routes.push((method.to_uppercase(), format!("{prefix}{path}"), name.clone()));
                handlers.push(name);
            }
        }
    }
    assert_eq!(nests, ["\"/api/v1\", api"], "one nested router, at /api/v1");
    routes
        .into_iter()
        .map(|(method, path, handler)| {
            let signature = format!("async fn {handler}(");
            let defined: Vec<&str> = files
                .iter()
                .flat_map(|(_, text)| text.match_indices(signature.as_str()).map(|(i, m)| &text[i + m.len()..]))
                .collect();
            assert_eq!(defined.len(), 1, "{method} {path}: `async fn {handler}(` should be defined once in src/");
            Routed { org_scoped: inside_parens(defined[0]).contains("OrgCtx"), method, path }
        })
        .collect()
}

/// Whether a reply is the router's own "no such route" (a path it does not know, or a
/// method the path does not take).
fn unrouted(r: &Reply) -> bool {
    r.status == StatusCode::METHOD_NOT_ALLOWED
        || (r.status == StatusCode::NOT_FOUND && r.body["error"]["message"] == "endpoint not found")
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let doc: Value = serde_json::from_str(&tollgate_api::openapi_json()).unwrap();
    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().map(|o| (o.method, o.path)).collect();
    let routed = routed();
    let registered: BTreeSet<(String, String)> = routed.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(registered.len(), routed.len(), "a route is registered twice");
    let undocumented: BTreeSet<(String, String)> =
        UNDOCUMENTED.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let mut problems = Vec::new();
    for (m, p) in registered.difference(&documented).filter(|r| !undocumented.contains(r)) {
        problems.push(format!("{m} {p} is routed but not in the OpenAPI document"));
    }
    for (m, p) in documented.difference(&registered) {
        problems.push(format!("{m} {p} is in the OpenAPI document but no router registers it"));
    }
    for (m, p) in undocumented.iter().filter(|r| !registered.contains(r) || documented.contains(r)) {
        problems.push(format!("UNDOCUMENTED lists {m} {p}, which is not a route missing from the document"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The real router agrees with what was read: each route answers at its full path with
    // its method, and every other method on that path is refused by the router itself.
    let app = TestApp::new().await;
    let mut by_path: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (m, p) in &registered {
        by_path.entry(p).or_default().insert(m);
    }
    for (path, methods) in by_path {
        let concrete: String =
            path.split('/').map(|s| if s.starts_with('{') { "probe" } else { s }).collect::<Vec<_>>().join("/");
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let r = app.call(method.clone(), &concrete, None, &Caller::default()).await;
            let routes = methods.contains(method.as_str());
            assert_eq!(!unrouted(&r), routes, "{method} {concrete}: {} {:?}", r.status, r.body);
        }
    }
}
