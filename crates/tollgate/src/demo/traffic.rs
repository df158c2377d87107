//! The demo's usage: real MCP calls through the gateway, made at seeding time with keys
//! the demo people create, to the demo agents (whose upstreams are this binary's example
//! servers). Nothing is written to the database but what the gateway itself records and
//! bills, so the dashboard, usage charts, audit log, billing history and the publishers'
//! earnings show calls that really happened — all at seeding time, since a usage record's
//! time is when its call was made.
//!
//! Each installation has a number of calls to reach. A start counts the records the
//! installation has and makes only the missing calls, so a second start makes none and a
//! start after a crash tops up what was lost. A key's secret is shown once, so the calls
//! of a start use a key made for them ("Production"; a "Production" key of an earlier,
//! interrupted start is revoked first). The calls of one installation stay under the
//! default rate limit of 60 a minute; a call the gateway refuses (429, 402) ends that
//! installation's calls for this start, since refused calls are not recorded.
//!
//! A dashboard shows the last 24 hours, so usage made once would leave it empty a day
//! later. Each start therefore looks whether the demo consumer made any call in the last
//! hour ([`IDLE_MS`]); when not, [`refresh`] makes a modest new batch the same way
//! ([`FRESH_CALLS`] more calls for each of the consumer's installations, continuing the
//! mix where it stopped).

use super::community::{People, TEAM, seeded_installation};
use super::{Account, Demo};
use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tollgate_gateway::Gateway;
use tollgate_store::usage::{AuditFilter, UsageScope};
use tower::ServiceExt;

/// Calls each installation reaches: (0 = consumer / 1–3 = Ana, Ben, Chen, in the team?,
/// agent, calls). Each is one of `community::INSTALLS` or `community::TEAM_INSTALLS`.
const TARGETS: &[(usize, bool, &str, usize)] = &[
    (0, false, "echo", 40),
    (0, false, "word-counter", 30),
    (0, false, "summarizer", 36),
    (0, false, "release-notes", 24),
    (0, false, "ticket-triage", 20),
    (0, false, "invoice-reader", 16),
    (0, false, "commit-message", 28),
    (0, false, "latency-probe", 14),
    (1, false, "summarizer", 8),
    (1, false, "echo", 6),
    (2, false, "commit-message", 8),
    (3, false, "echo", 6),
    (0, true, "ticket-triage", 12),
    (2, true, "word-counter", 10),
];

/// A start makes new calls when the demo consumer has made none for this long.
pub(super) const IDLE_MS: i64 = 3_600_000;

/// The new calls a start that finds the demo idle makes for each of the consumer's
/// installations.
pub(super) const FRESH_CALLS: usize = 4;

/// How many calls an installation's batch makes.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// Up to this many recorded calls in all.
    Reach(usize),
    /// This many more than it has recorded.
    More(usize),
}

/// The consumer's Echo also had a laptop key that made a few calls and was revoked.
const REVOKED_KEY: (&str, usize) = ("Old laptop", 6);

/// Texts the calls send, of different lengths (so token counts and costs differ).
const TEXTS: &[&str] = &[
    "hello",
    "Ship the billing fix before Friday's release.",
    "Customer reports that exports time out for ranges longer than ninety days; reproduced on staging.",
    "Añadir soporte para emojis 🎉 y acentos en los contadores de palabras.",
    "The quarterly review covered latency, error budgets, the new regions, onboarding feedback, pricing \
     experiments and the roadmap for the agent store, with owners and dates for each follow-up item.",
    "fix: keep the session cookie on redirects",
    "Abstract: we measure how tool-using assistants spend tokens across retrieval, planning and answering, \
     and show that caching plans cuts input tokens by a third without hurting answer quality.",
    "Invoice 2024-117: 3 × consulting days, 1 × travel, net 30.",
];

/// One call of the mix.
enum Shape {
    /// `initialize` (2025-06-18): a utility call, at the base fee.
    Initialize,
    /// `tools/list` (2026-07-28): a utility call.
    ListTools,
    /// `tools/call` of `name` with `arguments` (2026-07-28).
    Tool(&'static str, Value),
}

/// The `i`-th call to an agent served by the example `server`: mostly its main tool with
/// a text, some utility calls, some failures (bad arguments or an unknown tool, which
/// cost nothing), and on Echo's server countdowns that take 100 ms a step.
fn shape(server: &str, i: usize) -> Shape {
    let text = TEXTS[i % TEXTS.len()];
    if i == 0 {
        return Shape::Initialize;
    }
    if i % 10 == 5 {
        return Shape::ListTools;
    }
    let failing = i % 13 == 7;
    let bad_arguments = i % 29 == 11;
    match server {
        _ if failing => Shape::Tool("translate", json!({"text": text})),
        "echo" if bad_arguments => Shape::Tool("countdown", json!({"n": 60})),
        "echo" if i % 9 == 2 || i % 9 == 6 => Shape::Tool("countdown", json!({"n": 1 + i % 3})),
        "echo" => Shape::Tool("echo", json!({"text": text})),
        "word-count" if bad_arguments => Shape::Tool("count_words", json!({})),
        "word-count" => Shape::Tool("count_words", json!({"text": text})),
        _ if bad_arguments => Shape::Tool("summarize", json!({"words": text})),
        _ => Shape::Tool("summarize", json!({"text": text})),
    }
}

/// The gateway request for `shape`, numbered `id`.
fn request(slug: &str, version: &str, key: &str, id: usize, shape: &Shape) -> Result<Request<Body>> {
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    let (era, method, name, params) = match shape {
        Shape::Initialize => (
            "2025-06-18",
            "initialize",
            None,
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "tollgate-demo", "version": "1"}}),
        ),
        Shape::ListTools => ("2026-07-28", "tools/list", None, json!({"_meta": meta})),
        Shape::Tool(name, arguments) => {
            let mut meta = meta;
            if *name == "countdown" {
                meta["progressToken"] = json!(id);
            }
            ("2026-07-28", "tools/call", Some(*name), json!({"name": name, "arguments": arguments, "_meta": meta}))
        }
    };
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(format!("/{slug}/{version}/mcp"))
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", era);
    if era == "2026-07-28" {
        builder = builder.header("mcp-method", method);
        if let Some(name) = name {
            builder = builder.header("mcp-name", name);
        }
    }
    Ok(builder.body(Body::from(serde_json::to_vec(&body)?))?)
}

/// Makes the calls at `range` of the mix to `batch`'s agent with `key`; returns how many
/// the gateway answered (every answered call is recorded). Stops at the first refusal.
async fn calls(gateway: &axum::Router, batch: &Batch, key: &str, range: std::ops::Range<usize>) -> usize {
    let mut made = 0;
    for i in range {
        let Ok(req) = request(batch.slug, &batch.version, key, i + 1, &shape(batch.server, i)) else { return made };
        let Ok(response) = gateway.clone().oneshot(req).await;
        let status = response.status().as_u16();
        // The whole answer, so the call is metered as delivered.
        let _ = response.into_body().collect().await;
        if matches!(status, 401 | 402 | 403 | 404 | 410 | 429) {
            tracing::warn!(
                agent.slug = batch.slug,
                status,
                "the gateway refused a demo call; this start makes no more for it"
            );
            return made;
        }
        made += 1;
    }
    made
}

/// One installation's calls still to make: with each key, the mix positions it calls.
struct Batch {
    slug: &'static str,
    version: String,
    server: &'static str,
    keys: Vec<(String, std::ops::Range<usize>)>,
}

/// The calls still to make for one of [`TARGETS`] to reach `goal` (`None` when it has them
/// all, or its installation is gone), with the keys made for them; keys to revoke once the
/// calls are made go to `revoke`.
async fn batch<'a>(
    demo: &Demo<'_>,
    member: &'a Account<'a>,
    org: &str,
    (who, in_team, slug): (usize, bool, &'static str),
    goal: Goal,
    revoke: &mut Vec<(&'a Account<'a>, String)>,
) -> Result<Option<Batch>> {
    let store = &demo.state.store;
    let Some(installation) = seeded_installation(store, org, slug).await? else { return Ok(None) };
    if installation.status != "active" {
        return Ok(None);
    }
    let keys_now = store.installation_keys(&installation.id).await?;
    let with_revoked_key = who == 0 && !in_team && slug == "echo";
    let (revoked_name, revoked_calls) = REVOKED_KEY;
    if with_revoked_key {
        // Left active by a start cut off before it revoked it.
        let left = keys_now.iter().filter(|k| k.name == revoked_name && k.revoked_at.is_none());
        revoke.extend(left.map(|k| (member, k.id.clone())));
    }
    let scope =
        UsageScope { org_id: org.to_string(), installation_id: Some(installation.id.clone()), from: 0, to: i64::MAX };
    let (_, recorded) = store.audit_page(&AuditFilter { scope, ..AuditFilter::default() }, 1, 0).await?;
    let mut done = usize::try_from(recorded).unwrap_or(usize::MAX);
    let target = match goal {
        Goal::Reach(target) => target,
        Goal::More(n) => done.saturating_add(n),
    };
    if done >= target {
        return Ok(None);
    }
    let api = member.api().await?;
    let keys_path = format!("/api/v1/installations/{}/keys", installation.id);
    let mut keys = Vec::new();
    if with_revoked_key && !keys_now.iter().any(|k| k.name == revoked_name) {
        let key = api.call(Method::POST, &keys_path, Some(json!({"name": revoked_name}))).await?;
        let calls = revoked_calls.min(target - done);
        keys.push((secret(&key)?, done..done + calls));
        revoke.push((member, key["id"].as_str().unwrap_or_default().to_string()));
        done += calls;
    }
    if done < target {
        for old in keys_now.iter().filter(|k| k.name == "Production" && k.revoked_at.is_none()) {
            api.call(Method::DELETE, &format!("/api/v1/keys/{}", old.id), None).await?;
        }
        let limits = json!({"requests": 5000, "input_tokens": 0, "output_tokens": 0, "cache_tokens": 0});
        let body = json!({"name": "Production", "daily_limits": limits});
        let key = api.call(Method::POST, &keys_path, Some(body)).await?;
        keys.push((secret(&key)?, done..target));
    }
    let agents = super::catalog::agents();
    let server = agents.iter().find(|a| a.slug == slug).map_or("echo", |a| a.server);
    Ok(Some(Batch { slug, version: installation.version, server, keys }))
}

/// The demo team's id.
async fn team(demo: &Demo<'_>, people: &People<'_>) -> Result<String> {
    demo.state
        .store
        .orgs_of_user(&people.consumer.user_id)
        .await?
        .into_iter()
        .find(|(o, _)| !o.personal && o.name == TEAM)
        .map(|(o, _)| o.id)
        .context("the demo team is missing")
}

/// Makes the missing calls of every installation in [`TARGETS`], all installations at
/// once, and waits until the gateway has written them.
pub(super) async fn seed(demo: &Demo<'_>, people: &People<'_>, gateway: &Gateway) -> Result<()> {
    let team = team(demo, people).await?;
    let mut batches = Vec::new();
    let mut revoke = Vec::new();
    for &(who, in_team, slug, target) in TARGETS {
        let member = people.member(who);
        let org = if in_team { team.as_str() } else { member.personal_org_id.as_str() };
        batches.extend(batch(demo, member, org, (who, in_team, slug), Goal::Reach(target), &mut revoke).await?);
    }
    let made = run(gateway, batches, revoke).await?;
    if made > 0 {
        tracing::info!(calls = made, "demo usage made through the gateway");
    }
    Ok(())
}

/// When the demo consumer has made no call in the [`IDLE_MS`] before `now` (Unix ms), makes
/// [`FRESH_CALLS`] new calls for each of the consumer's installations (personal and in the
/// team) through the gateway, so the dashboard's last 24 hours are never empty; returns
/// how many calls were made.
pub(super) async fn refresh(demo: &Demo<'_>, people: &People<'_>, gateway: &Gateway, now: i64) -> Result<usize> {
    let consumer = &people.consumer;
    let scope = UsageScope {
        org_id: consumer.personal_org_id.clone(),
        installation_id: None,
        from: now.saturating_sub(IDLE_MS),
        to: now,
    };
    let (_, recent) = demo.state.store.audit_page(&AuditFilter { scope, ..AuditFilter::default() }, 1, 0).await?;
    if recent > 0 {
        return Ok(0);
    }
    let team = team(demo, people).await?;
    let mut batches = Vec::new();
    let mut revoke = Vec::new();
    for &(who, in_team, slug, _) in TARGETS.iter().filter(|t| t.0 == 0) {
        let org = if in_team { team.as_str() } else { consumer.personal_org_id.as_str() };
        batches.extend(batch(demo, consumer, org, (who, in_team, slug), Goal::More(FRESH_CALLS), &mut revoke).await?);
    }
    let made = run(gateway, batches, revoke).await?;
    tracing::info!(calls = made, "the demo was idle: fresh usage made through the gateway");
    Ok(made)
}

/// Makes the calls of `batches`, all installations at once, revokes the keys of `revoke`,
/// and waits until the gateway has written the calls; returns how many were answered.
async fn run(gateway: &Gateway, batches: Vec<Batch>, revoke: Vec<(&Account<'_>, String)>) -> Result<usize> {
    let router = gateway.router();
    let mut running = tokio::task::JoinSet::new();
    for batch in batches {
        let router = router.clone();
        running.spawn(async move {
            let mut made = 0;
            for (key, range) in &batch.keys {
                made += calls(&router, &batch, key, range.clone()).await;
            }
            made
        });
    }
    let mut made = 0;
    while let Some(n) = running.join_next().await {
        made += n.context("a demo traffic task failed")?;
    }
    for (member, id) in revoke {
        member.api().await?.call(Method::DELETE, &format!("/api/v1/keys/{id}"), None).await?;
    }
    gateway.flush().await;
    Ok(made)
}

fn secret(key: &Value) -> Result<String> {
    key["key"].as_str().map(str::to_string).context("a new key without its secret")
}
