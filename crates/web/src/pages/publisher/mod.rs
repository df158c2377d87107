//! The publisher console, for the org the UI acts in: its agents with their versions and
//! statuses, anonymous usage and earnings (per agent, version and install token, from
//! `/api/v1/publisher/usage`), creating an agent and publishing versions ([`forms`]), and
//! deprecating, reactivating or retiring versions. Viewers read; the other roles act.

pub mod forms;

use crate::Web;
use crate::charts::{Bar, BarChart, LineChart, Scale, Series, bar_chart, line_chart};
use crate::client::{Failure, query, segment};
use crate::format;
use crate::model::{AgentEarnings, EarningsTotals, PublisherAgent, PublisherUsage};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageError, PageResult, Viewer, date_range, is_csrf, render_status, see_other,
    sentence, signed_in,
};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::json;
use std::collections::HashMap;

/// Totals as a row shows them.
pub struct Totals {
    pub calls: String,
    pub errors: String,
    pub error_rate: String,
    pub latency: String,
    pub earnings: String,
}

impl From<&EarningsTotals> for Totals {
    fn from(t: &EarningsTotals) -> Self {
        Totals {
            calls: format::count(t.calls),
            errors: format::count(t.errors),
            error_rate: format::percent(t.error_rate),
            latency: format::millis(t.average_latency_ms),
            earnings: format::money(&t.earnings),
        }
    }
}

pub struct AgentRow {
    pub slug: String,
    pub name: String,
    pub protocol: String,
    pub listed: bool,
    pub versions: Vec<(String, String)>,
    pub installs: String,
    pub totals: Option<Totals>,
}

#[derive(Template)]
#[template(path = "publisher.html")]
struct PublisherTemplate {
    chrome: Chrome,
    org_name: String,
    personal: bool,
    write: bool,
    fee: String,
    form: FormState,
    totals: Option<Totals>,
    earnings_chart: String,
    calls_chart: String,
    agents: Vec<AgentRow>,
}

/// The platform's fee as a percentage: 2000 basis points → `20%`.
fn fee_percent(bps: i64) -> String {
    format::percent(bps as f64 / 10_000.0)
}

/// The org's usage and earnings over the range of `q`, or the range form with the API's
/// error next to its field.
async fn usage(
    web: &Web,
    browser: &Browser,
    q: &HashMap<String, String>,
    agent: Option<&str>,
) -> Result<(FormState, Option<PublisherUsage>), PageError> {
    let (from, to) = date_range(q);
    let form = FormState::with(&[("from", from.clone()), ("to", to.clone())]);
    let path =
        format!("/api/v1/publisher/usage{}", query(&[("agent", agent.unwrap_or("")), ("from", &from), ("to", &to)]));
    let reply = web.api.get(&browser.caller, &path).await?;
    if reply.ok() {
        return Ok((form, Some(reply.into_json()?)));
    }
    let f = reply.failure();
    if f.status != StatusCode::UNPROCESSABLE_ENTITY {
        return Err(f.into());
    }
    Ok((form.fail(&f, &[], &["from", "to"]), None))
}

/// The earnings and calls charts of a report.
fn charts(u: &PublisherUsage) -> (String, String) {
    let hourly = u.bucket == "hour";
    let labels: Vec<String> = u.series.iter().map(|p| format::axis_time(&p.start, hourly)).collect();
    let per = if hourly { "hour" } else { "day" };
    let earnings = line_chart(&LineChart {
        id: "earnings-chart".into(),
        title: format!("Earnings per {per}"),
        x_labels: labels.clone(),
        series: vec![Series {
            name: "Earnings".into(),
            values: u.series.iter().map(|p| format::nanos(&p.earnings)).collect(),
        }],
        scale: Scale::Money,
        area: true,
    });
    let calls = bar_chart(&BarChart {
        id: "publisher-calls-chart".into(),
        title: format!("Calls per {per}"),
        bars: u.series.iter().zip(&labels).map(|(p, l)| Bar { label: l.clone(), value: p.calls }).collect(),
        scale: Scale::Count,
    });
    (earnings, calls)
}

/// The org's agents.
async fn agents(web: &Web, browser: &Browser) -> Result<Vec<PublisherAgent>, PageError> {
    Ok(web.api.read(&browser.caller, "/api/v1/agents").await?)
}

/// `GET /publisher?from=&to=`.
pub async fn console(State(web): State<Web>, browser: Browser, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let list = agents(&web, &browser).await?;
    let (form, report) = usage(&web, &browser, &q, None).await?;
    let earned = |slug: &str| -> Option<&AgentEarnings> { report.as_ref()?.agents.iter().find(|a| a.slug == slug) };
    let (earnings_chart, calls_chart) = report.as_ref().map(charts).unwrap_or_default();
    let rows = list
        .iter()
        .map(|a| AgentRow {
            slug: a.slug.clone(),
            name: a.name.clone(),
            protocol: format::protocol(&a.protocol),
            listed: a.listed,
            versions: a.versions.iter().map(|v| (v.version.version.clone(), v.version.status.clone())).collect(),
            installs: format::count(earned(&a.slug).map(|e| e.installs).unwrap_or(0)),
            totals: earned(&a.slug).map(|e| Totals::from(&e.totals)),
        })
        .collect();
    let status = if form.failed() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = PublisherTemplate {
        chrome: Chrome::new("Publisher", "publisher", Some(&viewer)).with_notice(q.get("notice").map(String::as_str)),
        org_name: viewer.org.name.clone(),
        personal: viewer.org.personal,
        write: viewer.can_write(),
        fee: fee_percent(web.fee_bps),
        totals: report.as_ref().map(|r| Totals::from(&r.totals)),
        earnings_chart,
        calls_chart,
        agents: rows,
        form,
    };
    Ok(render_status(status, &page))
}

pub struct VersionRow {
    pub version: String,
    pub status: String,
    pub published: String,
    pub endpoint: String,
    pub upstream_url: String,
    pub has_headers: bool,
    pub base_fee: String,
    pub functions: Vec<(String, String, Option<String>)>,
    pub default_pricing: Option<String>,
    pub dependencies: String,
    pub timeout: String,
    pub cold_start: bool,
    pub totals: Option<Totals>,
    /// The status changes offered.
    pub moves: Vec<Move>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "publisher_agent.html")]
struct AgentTemplate {
    chrome: Chrome,
    a: PublisherAgent,
    write: bool,
    protocol: String,
    form: FormState,
    totals: Option<Totals>,
    earnings_chart: String,
    calls_chart: String,
    versions: Vec<VersionRow>,
    installs: String,
    installations: Vec<(String, Totals)>,
}

/// A status change a version may make.
pub struct Move {
    pub to: &'static str,
    pub label: &'static str,
    /// Retiring: final, so it asks for a confirmation.
    pub retire: bool,
}

/// The status changes a version in `status` may make.
fn moves(status: &str) -> Vec<Move> {
    let to = |to, label| Move { to, label, retire: to == "retired" };
    match status {
        "active" => vec![to("deprecated", "Deprecate"), to("retired", "Retire")],
        "deprecated" => vec![to("active", "Reactivate"), to("retired", "Retire")],
        _ => Vec::new(),
    }
}

/// The agent `slug` of the org the UI acts in, or 404.
pub(crate) async fn own_agent(web: &Web, browser: &Browser, slug: &str) -> Result<PublisherAgent, PageError> {
    agents(web, browser).await?.into_iter().find(|a| a.slug == slug).ok_or(PageError::NotFound)
}

async fn render_agent(
    web: &Web,
    browser: &Browser,
    viewer: &Viewer,
    slug: &str,
    q: &HashMap<String, String>,
    refused: Option<(String, String)>,
    status: StatusCode,
) -> PageResult {
    let a = own_agent(web, browser, slug).await?;
    let (form, report) = usage(web, browser, q, Some(&a.slug)).await?;
    let earned = report.as_ref().and_then(|r| r.agents.iter().find(|e| e.slug == a.slug));
    let (earnings_chart, calls_chart) = report.as_ref().map(charts).unwrap_or_default();
    let versions = a
        .versions
        .iter()
        .map(|pv| {
            let v = &pv.version;
            VersionRow {
                version: v.version.clone(),
                status: v.status.clone(),
                published: format::date(&v.created_at),
                endpoint: v.endpoint.clone(),
                upstream_url: pv.upstream_url.clone(),
                has_headers: pv.has_upstream_headers,
                base_fee: format::money(&v.base_fee),
                functions: v
                    .functions
                    .iter()
                    .map(|f| {
                        let free = (f.free_calls > 0).then(|| {
                            let per = if f.free_reset == "monthly" { " a month" } else { "" };
                            format!("{} free calls{per}", format::count(f.free_calls))
                        });
                        (f.name.clone(), format::pricing(&f.pricing), free)
                    })
                    .collect(),
                default_pricing: v.default_pricing.as_ref().map(format::pricing),
                dependencies: v
                    .dependencies
                    .iter()
                    .map(|d| format!("{} {}", d.agent, d.version))
                    .collect::<Vec<_>>()
                    .join(", "),
                timeout: format::seconds(v.task_timeout_seconds),
                cold_start: v.cold_start,
                totals: earned
                    .and_then(|e| e.versions.iter().find(|x| x.version == v.version))
                    .map(|x| Totals::from(&x.totals)),
                moves: moves(&v.status),
                error: refused.as_ref().filter(|(n, _)| *n == v.version).map(|(_, e)| e.clone()),
            }
        })
        .collect();
    let status = if form.failed() && status == StatusCode::OK { StatusCode::UNPROCESSABLE_ENTITY } else { status };
    let page = AgentTemplate {
        chrome: Chrome::new(&a.name, "publisher", Some(viewer)).with_notice(q.get("notice").map(String::as_str)),
        write: viewer.can_write(),
        protocol: format::protocol(&a.protocol),
        form,
        totals: earned.map(|e| Totals::from(&e.totals)),
        earnings_chart,
        calls_chart,
        versions,
        installs: format::count(earned.map(|e| e.installs).unwrap_or(0)),
        installations: earned
            .map(|e| e.installations.iter().map(|i| (i.install_token.clone(), Totals::from(&i.totals))).collect())
            .unwrap_or_default(),
        a,
    };
    Ok(render_status(status, &page))
}

/// `GET /publisher/agents/{slug}?from=&to=`.
pub async fn agent(
    State(web): State<Web>,
    browser: Browser,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    render_agent(&web, &browser, &viewer, &slug, &q, None, StatusCode::OK).await
}

/// `POST /publisher/agents/{slug}/versions/{version}/status`: deprecate, reactivate or
/// retire (retiring needs the confirmation box: it is final).
pub async fn set_status(
    State(web): State<Web>,
    browser: Browser,
    Path((slug, version)): Path<(String, String)>,
    data: FormData,
) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let to = data.get("status");
    let q = HashMap::new();
    if to == "retired" && data.get("confirm") != "yes" {
        let refused = Some((version, "Tick the box to confirm: retiring is final, and calls to it answer 410.".into()));
        return render_agent(&web, &browser, &viewer, &slug, &q, refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    own_agent(&web, &browser, &slug).await?;
    let path = format!("/api/v1/agents/{}/versions/{}", segment(&slug), segment(&version));
    let reply = web.api.patch(&browser.caller.with_csrf(data.csrf()), &path, &json!({"status": to})).await?;
    if reply.ok() {
        return Ok(see_other(&format!("/publisher/agents/{}?notice=status_saved", segment(&slug))));
    }
    let f: Failure = reply.failure();
    if is_csrf(&f) || !matches!(f.status, StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY) {
        return Err(f.into());
    }
    let refused = Some((version, sentence(&f.message)));
    render_agent(&web, &browser, &viewer, &slug, &q, refused, f.status).await
}
