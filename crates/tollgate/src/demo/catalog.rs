//! The demo's agents: what the store lists on a first start, and how each is published
//! and kept pointing at the examples of the address the server serves on.
//!
//! Every MCP agent's upstream is one of the example servers of this binary
//! (`tollgate_examples`): `echo` (tools `echo`, `countdown`), `word-count` (`count_words`)
//! or `usage-reporter` (`summarize`, which reports token usage). The descriptions say
//! what each demo agent really does with them. The A2A agents are listed (with their MCP
//! dependencies, task timeouts and prices) but have no example server behind them.

use super::{Account, Demo};
use anyhow::{Context, Result, bail};
use axum::http::Method;
use serde_json::{Value, json};
use tollgate_domain::publish::Support;

/// Which demo account publishes an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Publisher {
    /// `publisher@demo.tollgate.dev`, "Demo Publisher".
    Main,
    /// `labs@demo.tollgate.dev`, "Northwind Labs".
    Labs,
}

/// How much the publisher declares about data handling (the trust score follows).
#[derive(Debug, Clone, Copy)]
enum Declared {
    /// Everything, with GDPR, SOC 2 and HIPAA.
    Complete,
    /// Everything, GDPR only.
    Gdpr,
    /// Region and retention, nothing about training or security.
    Partial,
    /// Nothing at all.
    Nothing,
}

/// One published version: its number, whether it is deprecated, its base fee and the
/// prices of its functions.
pub(super) struct Release {
    pub version: &'static str,
    pub deprecated: bool,
    pub base_fee: &'static str,
    pub functions: Value,
}

pub(super) struct DemoAgent {
    pub slug: &'static str,
    pub name: &'static str,
    pub publisher: Publisher,
    pub category: &'static str,
    pub description: &'static str,
    /// `mcp` or `a2a`.
    pub protocol: &'static str,
    /// The example server behind it (`/_examples/{server}/…`).
    pub server: &'static str,
    pub platforms: &'static [&'static str],
    pub capabilities: &'static [&'static str],
    pub tags: &'static [&'static str],
    pub use_cases: &'static [&'static str],
    declared: Declared,
    pub cold_start: bool,
    /// MCP agents an A2A agent calls (`latest` versions).
    pub dependencies: &'static [&'static str],
    /// Published in this order; the last one is what a re-pointed version copies.
    pub releases: Vec<Release>,
}

fn per_request(name: &str, price: &str, free_calls: i64, free_reset: &str) -> Value {
    json!({"name": name, "pricing": {"model": "per_request", "price": price}, "free_calls": free_calls, "free_reset": free_reset})
}

fn per_token(name: &str, [input, output, cache]: [&str; 3], free_calls: i64, free_reset: &str) -> Value {
    json!({"name": name, "pricing": {"model": "per_token", "input_per_million": input, "output_per_million": output,
        "cache_per_million": cache}, "free_calls": free_calls, "free_reset": free_reset})
}

fn one(version: &'static str, base_fee: &'static str, functions: Vec<Value>) -> Vec<Release> {
    vec![Release { version, deprecated: false, base_fee, functions: Value::Array(functions) }]
}

const EDITORS: &[&str] = &["Claude Desktop", "Cursor", "VS Code"];
const EVERYWHERE: &[&str] = &["Claude Desktop", "Cursor", "VS Code", "Windsurf", "Zed", "JetBrains"];
const CHAT: &[&str] = &["Claude Desktop", "ChatGPT", "Slack"];

/// The demo's agents. Echo, Word Counter and Summarizer come first: the README and the
/// tests rely on them.
pub(super) fn agents() -> Vec<DemoAgent> {
    use Declared::*;
    use Publisher::*;
    vec![
        DemoAgent {
            slug: "echo",
            name: "Echo",
            publisher: Main,
            category: "devtools",
            description: "Sends back exactly what you give it. The quickest way to check that your key, your client and the gateway work.\n\n\
                Its countdown tool streams one progress notification a step, so you can watch a streamed call arrive event by event.",
            protocol: "mcp",
            server: "echo",
            platforms: EVERYWHERE,
            capabilities: &["testing", "streaming"],
            tags: &["demo", "hello world"],
            use_cases: &[
                "Check a new key and client setup in a minute.",
                "Watch streamed progress notifications with countdown.",
            ],
            declared: Gdpr,
            cold_start: false,
            dependencies: &[],
            releases: one(
                "1.0.0",
                "0.0001",
                vec![per_request("echo", "0.001", 25, "monthly"), per_request("countdown", "0.002", 0, "lifetime")],
            ),
        },
        DemoAgent {
            slug: "word-counter",
            name: "Word Counter",
            publisher: Main,
            category: "productivity",
            description: "Counts the words and characters of any text, Unicode-aware: accents, emoji and scripts without spaces count right.",
            protocol: "mcp",
            server: "word-count",
            platforms: EDITORS,
            capabilities: &["text analysis"],
            tags: &["demo", "writing"],
            use_cases: &["Keep posts under a word limit.", "Count characters of a tweet or an SMS."],
            declared: Complete,
            cold_start: false,
            dependencies: &[],
            releases: one("1.0.0", "0", vec![per_request("count_words", "0.0005", 100, "lifetime")]),
        },
        DemoAgent {
            slug: "summarizer",
            name: "Summarizer",
            publisher: Main,
            category: "productivity",
            description: "Shortens long text to its opening words and reports the tokens it used, billed per token.\n\n\
                Version 1.1.0 halves the per-token prices of 1.0.0, which is deprecated but keeps working.",
            protocol: "mcp",
            server: "usage-reporter",
            platforms: EVERYWHERE,
            capabilities: &["summarization", "reasoning"],
            tags: &["demo", "tokens"],
            use_cases: &["Turn a long thread into its first lines.", "See per-token billing with reported usage."],
            declared: Gdpr,
            cold_start: false,
            dependencies: &[],
            releases: vec![
                Release {
                    version: "1.0.0",
                    deprecated: true,
                    base_fee: "0.0001",
                    functions: json!([per_token("summarize", ["4.00", "8.00", "1.00"], 0, "lifetime")]),
                },
                Release {
                    version: "1.1.0",
                    deprecated: false,
                    base_fee: "0.0001",
                    functions: json!([per_token("summarize", ["2.00", "4.00", "0.50"], 10, "monthly")]),
                },
            ],
        },
        DemoAgent {
            slug: "release-notes",
            name: "Release Notes Writer",
            publisher: Main,
            category: "devtools",
            description: "Turns a list of changes into short release notes for your changelog: it keeps the opening words of what you give it.",
            protocol: "mcp",
            server: "usage-reporter",
            platforms: EDITORS,
            capabilities: &["code generation", "summarization"],
            tags: &["changelog", "git"],
            use_cases: &["Draft the notes of a release from its commit list."],
            declared: Partial,
            cold_start: false,
            dependencies: &[],
            releases: one("1.0.0", "0.0001", vec![per_token("summarize", ["1.00", "3.00", "0.25"], 0, "lifetime")]),
        },
        DemoAgent {
            slug: "ticket-triage",
            name: "Ticket Triage",
            publisher: Main,
            category: "communication",
            description: "Reads a support ticket and sizes it up before a person picks it up: how long it is, in words and characters.",
            protocol: "mcp",
            server: "word-count",
            platforms: CHAT,
            capabilities: &["classification", "planning"],
            tags: &["support", "helpdesk"],
            use_cases: &["Size the morning's tickets before stand-up."],
            declared: Gdpr,
            cold_start: false,
            dependencies: &[],
            releases: one("1.0.0", "0.0001", vec![per_request("count_words", "0.002", 0, "lifetime")]),
        },
        DemoAgent {
            slug: "audit-trail",
            name: "Audit Trail",
            publisher: Main,
            category: "security",
            description: "Repeats inputs verbatim into your own audit pipeline, with SOC 2 and HIPAA controls declared.",
            protocol: "mcp",
            server: "echo",
            platforms: EDITORS,
            capabilities: &["compliance"],
            tags: &["audit", "logging"],
            use_cases: &["Mirror what an assistant sends into an append-only log."],
            declared: Complete,
            cold_start: false,
            dependencies: &[],
            releases: one("1.0.0", "0.0001", vec![per_request("echo", "0.0002", 0, "lifetime")]),
        },
        DemoAgent {
            slug: "meeting-minutes",
            name: "Meeting Minutes",
            publisher: Labs,
            category: "productivity",
            description: "Keeps the opening of a meeting transcript as its minutes and reports the tokens it read. It sleeps when idle: the first call after a while may take a few seconds.",
            protocol: "mcp",
            server: "usage-reporter",
            platforms: CHAT,
            capabilities: &["summarization", "transcription"],
            tags: &["meetings", "notes"],
            use_cases: &["Post minutes to the team channel after a call."],
            declared: Partial,
            cold_start: true,
            dependencies: &[],
            releases: one("2.0.0", "0.0002", vec![per_token("summarize", ["3.00", "6.00", "0.75"], 5, "monthly")]),
        },
        DemoAgent {
            slug: "seo-snippet",
            name: "SEO Snippet Writer",
            publisher: Labs,
            category: "marketing",
            description: "Cuts a page's copy down to a search-result snippet of its first dozen words.",
            protocol: "mcp",
            server: "usage-reporter",
            platforms: &["ChatGPT", "Claude Desktop"],
            capabilities: &["copywriting", "summarization"],
            tags: &["seo", "content"],
            use_cases: &["Write meta descriptions for a batch of pages."],
            declared: Nothing,
            cold_start: false,
            dependencies: &[],
            releases: one("0.3.1", "0", vec![per_token("summarize", ["0.80", "2.40", "0.20"], 20, "lifetime")]),
        },
        DemoAgent {
            slug: "readability",
            name: "Readability Check",
            publisher: Labs,
            category: "education",
            description: "Counts words and characters so you can tell whether a paragraph is short enough for its readers.",
            protocol: "mcp",
            server: "word-count",
            platforms: &["VS Code", "Zed", "JetBrains"],
            capabilities: &["text analysis", "writing"],
            tags: &["docs", "plain language"],
            use_cases: &["Keep documentation paragraphs short."],
            declared: Gdpr,
            cold_start: false,
            dependencies: &[],
            releases: one("1.2.0", "0", vec![per_request("count_words", "0.001", 50, "monthly")]),
        },
        DemoAgent {
            slug: "log-redactor",
            name: "Log Redactor",
            publisher: Labs,
            category: "security",
            description: "Passes log lines through unchanged in this demo, so you can wire it into a pipeline and watch the metering before real redaction rules go in.",
            protocol: "mcp",
            server: "echo",
            platforms: &["Cursor", "VS Code"],
            capabilities: &["compliance", "data cleaning"],
            tags: &["logs", "privacy"],
            use_cases: &["Put a gate in front of logs that leave your network."],
            declared: Complete,
            cold_start: false,
            dependencies: &[],
            releases: one("1.0.0", "0.0001", vec![per_request("echo", "0.0008", 0, "lifetime")]),
        },
        DemoAgent {
            slug: "invoice-reader",
            name: "Invoice Reader",
            publisher: Labs,
            category: "finance",
            description: "Measures an invoice's text (words and characters) before it goes to bookkeeping.\n\n\
                Version 1.0.0 is deprecated: it still answers, at its old price; 1.1.0 costs less per call.",
            protocol: "mcp",
            server: "word-count",
            platforms: &["Claude Desktop", "ChatGPT"],
            capabilities: &["document processing", "extraction"],
            tags: &["accounting", "invoices"],
            use_cases: &["Check that scanned invoices were read in full."],
            declared: Complete,
            cold_start: false,
            dependencies: &[],
            releases: vec![
                Release {
                    version: "1.0.0",
                    deprecated: true,
                    base_fee: "0.0001",
                    functions: json!([per_request("count_words", "0.004", 0, "lifetime")]),
                },
                Release {
                    version: "1.1.0",
                    deprecated: false,
                    base_fee: "0.0001",
                    functions: json!([per_request("count_words", "0.003", 0, "lifetime")]),
                },
            ],
        },
        DemoAgent {
            slug: "paper-digest",
            name: "Paper Digest",
            publisher: Main,
            category: "research",
            description: "Gives you the opening of a paper's abstract and what reading it cost in tokens. Wakes up on the first call after idling.",
            protocol: "mcp",
            server: "usage-reporter",
            platforms: &["Claude Desktop", "Zed"],
            capabilities: &["summarization", "research"],
            tags: &["papers", "science"],
            use_cases: &["Skim a reading list before a journal club."],
            declared: Gdpr,
            cold_start: true,
            dependencies: &[],
            releases: one("1.0.0", "0.0001", vec![per_token("summarize", ["1.50", "3.00", "0.30"], 0, "lifetime")]),
        },
        DemoAgent {
            slug: "commit-message",
            name: "Commit Message Helper",
            publisher: Main,
            category: "devtools",
            description: "Shortens a diff description to a one-line commit subject of at most a dozen words.",
            protocol: "mcp",
            server: "usage-reporter",
            platforms: EVERYWHERE,
            capabilities: &["code generation"],
            tags: &["git"],
            use_cases: &["Write the subject line of a commit from its description."],
            declared: Partial,
            cold_start: false,
            dependencies: &[],
            releases: one("1.0.0", "0", vec![per_token("summarize", ["0.50", "1.50", "0.10"], 30, "monthly")]),
        },
        DemoAgent {
            slug: "latency-probe",
            name: "Latency Probe",
            publisher: Labs,
            category: "devtools",
            description: "Answers after a delay you choose (countdown, 100 ms a step): a way to see how latency percentiles and timeouts behave.",
            protocol: "mcp",
            server: "echo",
            platforms: &["Cursor", "VS Code", "JetBrains"],
            capabilities: &["testing", "monitoring"],
            tags: &["latency", "sre"],
            use_cases: &["Test how your client handles a slow tool."],
            declared: Nothing,
            cold_start: false,
            dependencies: &[],
            releases: one(
                "0.1.0",
                "0",
                vec![per_request("countdown", "0.0001", 0, "lifetime"), per_request("echo", "0.0001", 0, "lifetime")],
            ),
        },
        DemoAgent {
            slug: "research-assistant",
            name: "Research Assistant",
            publisher: Labs,
            category: "research",
            description: "An A2A agent that plans a literature search and calls Paper Digest and Summarizer for each source, billed to you through its task token.",
            protocol: "a2a",
            server: "research-assistant",
            platforms: &["Claude Desktop", "ChatGPT"],
            capabilities: &["research", "planning", "reasoning"],
            tags: &["agents", "multi-step"],
            use_cases: &["Collect and digest five sources on a topic."],
            declared: Gdpr,
            cold_start: false,
            dependencies: &["paper-digest", "summarizer"],
            releases: one(
                "1.0.0",
                "0.0005",
                vec![
                    per_request("literature-search", "0.02", 3, "monthly"),
                    per_request("brief", "0.01", 0, "lifetime"),
                ],
            ),
        },
        DemoAgent {
            slug: "support-concierge",
            name: "Support Concierge",
            publisher: Main,
            category: "communication",
            description: "An A2A agent for support queues: it sizes each ticket with Ticket Triage and counts the reply with Word Counter before sending it.",
            protocol: "a2a",
            server: "support-concierge",
            platforms: CHAT,
            capabilities: &["classification", "planning"],
            tags: &["agents", "support"],
            use_cases: &["Answer first-line tickets overnight."],
            declared: Partial,
            cold_start: true,
            dependencies: &["ticket-triage", "word-counter"],
            releases: one("1.0.0", "0.0005", vec![per_request("handle-ticket", "0.015", 0, "lifetime")]),
        },
    ]
}

fn governance(declared: Declared) -> Value {
    match declared {
        Declared::Complete => json!({
            "data_collected": ["tool arguments"], "storage_region": "eu-central", "storage_provider": "Self-hosted",
            "retention_days": 0, "training_use": false, "compliance": ["gdpr", "soc2", "hipaa"],
            "security_measures": ["TLS in transit", "no content stored"]}),
        Declared::Gdpr => json!({
            "data_collected": ["tool arguments"], "storage_region": "eu-central", "storage_provider": "Self-hosted",
            "retention_days": 0, "training_use": false, "compliance": ["gdpr"],
            "security_measures": ["TLS in transit"]}),
        Declared::Partial => {
            json!({"data_collected": ["tool arguments"], "storage_region": "us-east", "retention_days": 30})
        }
        Declared::Nothing => json!({}),
    }
}

/// Where `a`'s upstream is when this server is reached at `public_url`: its example
/// server's MCP endpoint, or for an A2A agent the `/a2a` path beside the examples.
pub(super) fn upstream_url(public_url: &str, a: &DemoAgent) -> String {
    let path = if a.protocol == "a2a" { "a2a" } else { "mcp" };
    format!("{}/_examples/{}/{path}", public_url.trim_end_matches('/'), a.server)
}

/// The version after every one in `versions` (`major.minor.patch+1` of the highest).
pub(super) fn next_version<'a>(versions: impl Iterator<Item = &'a str>) -> String {
    let numbers = |text: &str| -> Option<(u64, u64, u64)> {
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    };
    let (major, minor, patch) = versions.filter_map(numbers).max().unwrap_or((1, 0, 0));
    format!("{major}.{minor}.{}", patch + 1)
}

fn version_body(a: &DemoAgent, release: &Release, version: &str, upstream_url: &str) -> Value {
    let dependencies: Vec<Value> = a.dependencies.iter().map(|d| json!({"agent": d, "version": "latest"})).collect();
    json!({
        "version": version,
        "upstream_url": upstream_url,
        "upstream_headers": {},
        "base_fee": release.base_fee,
        "functions": release.functions,
        "dependencies": dependencies,
        "task_timeout_seconds": if a.protocol == "a2a" { 900 } else { 300 },
        "cold_start": a.cold_start
    })
}

pub(super) fn support(public_url: &str) -> Value {
    let base = public_url.trim_end_matches('/');
    json!({"email": "support@demo.tollgate.dev", "url": base, "docs_url": format!("{base}/api/v1/openapi.json")})
}

fn support_is(found: &Support, public_url: &str) -> bool {
    let base = public_url.trim_end_matches('/');
    found.email.as_deref() == Some("support@demo.tollgate.dev")
        && found.url.as_deref() == Some(base)
        && found.docs_url.as_deref() == Some(format!("{base}/api/v1/openapi.json").as_str())
}

/// Makes the demo agent `a` exist, published by `owner`, with its releases (the
/// deprecated ones deprecated), its live versions' upstreams at this server's examples
/// (see the module's documentation of `demo`) and its support links on this address.
/// Reads the store to find what is done; signs `owner` in only to change something.
pub(super) async fn seed_agent(demo: &Demo<'_>, owner: &Account<'_>, a: &DemoAgent) -> Result<()> {
    let store = &demo.state.store;
    let path = format!("/api/v1/agents/{}", a.slug);
    let mut agent = match store.agent_by_slug(a.slug).await {
        Ok(agent) => Some(agent),
        Err(tollgate_store::StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    if agent.is_none() {
        owner
            .api()
            .await?
            .create(
                "/api/v1/agents",
                json!({
                    "slug": a.slug, "name": a.name, "description": a.description, "category": a.category,
                    "protocol": a.protocol, "platforms": a.platforms, "capabilities": a.capabilities, "tags": a.tags,
                    "use_cases": a.use_cases, "governance": governance(a.declared), "support": support(demo.public_url)
                }),
            )
            .await?;
        agent = Some(store.agent_by_slug(a.slug).await?);
    }
    let agent = agent.context("the demo agent is missing after creating it")?;
    if agent.publisher_org_id != owner.personal_org_id {
        bail!("the demo agent slug {:?} belongs to another publisher", a.slug);
    }
    let wanted = upstream_url(demo.public_url, a);
    let mut versions = store.versions(&agent.id).await?;
    // The releases, while only releases were published (a start that was cut off between
    // two of them left the rest to do); once re-pointed, new patch versions follow instead.
    if versions.iter().all(|v| a.releases.iter().any(|r| r.version == v.version)) {
        for release in &a.releases {
            if !versions.iter().any(|v| v.version == release.version) {
                let body = version_body(a, release, release.version, &wanted);
                owner.api().await?.create(&format!("{path}/versions"), body).await?;
            }
        }
        versions = store.versions(&agent.id).await?;
    }
    for release in a.releases.iter().filter(|r| r.deprecated) {
        if versions.iter().any(|v| v.version == release.version && v.status == "active") {
            let status = Some(json!({"status": "deprecated"}));
            owner.api().await?.call(Method::PATCH, &format!("{path}/versions/{}", release.version), status).await?;
        }
    }
    // Live versions on the examples of another address; a version the publisher pointed
    // anywhere else is theirs and left alone.
    let live: Vec<_> = versions.iter().filter(|v| v.status != "retired").collect();
    let stale: Vec<_> =
        live.iter().filter(|v| v.upstream_url.contains("/_examples/") && v.upstream_url != wanted).collect();
    if !stale.is_empty() && !live.iter().any(|v| v.upstream_url == wanted) {
        let next = next_version(versions.iter().map(|v| v.version.as_str()));
        let latest = a.releases.last().context("a demo agent without releases")?;
        owner.api().await?.create(&format!("{path}/versions"), version_body(a, latest, &next, &wanted)).await?;
        tracing::info!(agent.slug = a.slug, version = %next, upstream = %wanted, "demo agent re-pointed at this address");
    }
    for v in stale {
        let retired = Some(json!({"status": "retired"}));
        owner.api().await?.call(Method::PATCH, &format!("{path}/versions/{}", v.version), retired).await?;
    }
    if !support_is(&agent.support, demo.public_url) {
        owner.api().await?.call(Method::PATCH, &path, Some(json!({"support": support(demo.public_url)}))).await?;
    }
    Ok(())
}
