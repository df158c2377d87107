//! An installation's Usage page, with three tabs: Details (stats, charts, latency
//! percentiles, cost split, free quota), Settings (keys, daily limits, rate limits, task
//! timeout, uninstall) and Audit (every call, filtered, with row details and CSV export).

use crate::Web;
use crate::charts::{Bar, BarChart, LineChart, Scale, Series, bar_chart, line_chart};
use crate::client::{Caller, Reply, query, segment};
use crate::format;
use crate::model::{AgentDetail, AuditPage, AuditRow, Installation, Key, NewKey, Usage};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageError, PageResult, Reveal, Viewer, date_range, not_a_form_error, param,
    render_status, see_other, sentence, show_once, signed_in,
};
use crate::snippets::{Target, snippets};
use crate::stash::Secret;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The limit fields of a key's form, as the API names them.
const LIMITS: [&str; 4] = ["requests", "input_tokens", "output_tokens", "cache_tokens"];
/// Audit rows per page.
const AUDIT_PER_PAGE: i64 = 25;

const TABS: [(&str, &str); 3] = [("details", "Details"), ("settings", "Settings"), ("audit", "Audit")];

pub struct TabLink {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
    pub selected: bool,
}

pub struct Stat {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    pub sub: String,
}

pub struct QuotaRow {
    pub function: String,
    pub free_calls: String,
    pub reset: String,
    pub used: String,
    pub remaining: String,
    pub percent_left: i64,
}

pub struct Details {
    pub form: FormState,
    pub stats: Vec<Stat>,
    pub calls_chart: String,
    pub cost_chart: String,
    pub latency_chart: String,
    pub latency: Vec<(&'static str, String)>,
    pub cost: Vec<(&'static str, String)>,
    pub cost_chart_split: String,
    pub tokens: Vec<(&'static str, String)>,
    pub errors: String,
    pub errors_href: String,
    pub divergent: String,
    pub free_tier_calls: String,
    pub quota: Vec<QuotaRow>,
    pub has_calls: bool,
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub active: bool,
    pub managed: bool,
    pub last_used: String,
    pub calls: String,
    pub spend: String,
    pub tokens: String,
    pub limits: Vec<(&'static str, String)>,
    pub form: FormState,
    pub open: bool,
}

pub struct NewKeyShown {
    pub name: String,
    pub key: String,
    pub prefix: String,
    pub curl: String,
}

pub struct Settings {
    pub keys: Vec<KeyRow>,
    pub new_key: Option<NewKeyShown>,
    /// A key was to be shown, but can no longer be.
    pub key_gone: bool,
    pub create: FormState,
    pub rate_limits: Vec<(&'static str, String)>,
    pub a2a: bool,
    pub timeout: FormState,
    pub timeout_default: String,
    pub timeout_current: String,
    /// Owner or admin of the installation's org: may change the task timeout and uninstall.
    pub admin: bool,
    /// Not a viewer there: may create keys and change or revoke the keys listed (the API
    /// lists a member only their own keys, an admin everyone's).
    pub write: bool,
    /// Whether this instance's gateway can call the agent (A2A agents: not yet).
    pub callable: bool,
    pub uninstall_error: Option<String>,
}

pub struct AuditLine {
    pub request_id: String,
    pub href: String,
    pub time: String,
    pub version: String,
    pub function: String,
    pub input: String,
    pub output: String,
    pub cache: String,
    pub latency: String,
    pub status: String,
    pub ok: bool,
    pub cost: String,
    pub selected: bool,
}

pub struct Audit {
    pub form: FormState,
    pub lines: Vec<AuditLine>,
    pub total: String,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub page_label: String,
    pub csv: String,
    pub detail: Option<Vec<(&'static str, String)>>,
    pub detail_id: String,
    pub filtered: bool,
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsageTemplate {
    chrome: Chrome,
    inst: Installation,
    active: bool,
    agent_name: String,
    protocol: String,
    tab: &'static str,
    tabs: Vec<TabLink>,
    details: Option<Details>,
    settings: Option<Settings>,
    audit: Option<Audit>,
}

/// The installation and what the page shows around it.
struct Ctx {
    viewer: Viewer,
    inst: Installation,
    agent: Option<AgentDetail>,
    /// The browser's caller, acting in the installation's org.
    caller: Caller,
}

impl Ctx {
    fn base(&self) -> String {
        format!("/usage/{}", segment(&self.inst.id))
    }

    fn is_a2a(&self) -> bool {
        self.agent.as_ref().is_some_and(|a| a.protocol == "a2a")
    }

    /// The viewer's role in the installation's org.
    fn role(&self) -> Option<&str> {
        self.viewer.me.orgs.iter().find(|o| o.id == self.inst.org_id).and_then(|o| o.role.as_deref())
    }

    /// Whether the viewer may manage the installation (owner or admin of its org).
    fn admin(&self) -> bool {
        matches!(self.role(), Some("owner") | Some("admin"))
    }

    /// Whether the viewer may create and change keys there (anyone but a viewer).
    fn write(&self) -> bool {
        matches!(self.role(), Some("owner") | Some("admin") | Some("member"))
    }
}

async fn load(web: &Web, browser: &Browser, id: &str) -> Result<Ctx, PageError> {
    let viewer = signed_in(web, browser).await?;
    let inst: Installation = web.api.read(&browser.caller, &format!("/api/v1/installations/{}", segment(id))).await?;
    let agent = web.api.read(&browser.caller, &format!("/api/v1/store/agents/{}", segment(&inst.agent))).await.ok();
    let caller = browser.caller.in_org(&inst.org_id);
    Ok(Ctx { viewer, inst, agent, caller })
}

async fn details(web: &Web, caller: &Caller, ctx: &Ctx, q: &HashMap<String, String>) -> Result<Details, PageError> {
    let (from, to) = date_range(q);
    let mut form = FormState::with(&[("from", from.clone()), ("to", to.clone())]);
    let path = format!("/api/v1/usage{}", query(&[("installation", &ctx.inst.id), ("from", &from), ("to", &to)]));
    let reply = web.api.get(caller, &path).await?;
    let usage: Option<Usage> = if reply.ok() {
        Some(reply.into_json()?)
    } else {
        let f = reply.failure();
        if f.status != StatusCode::UNPROCESSABLE_ENTITY {
            return Err(f.into());
        }
        form = form.fail(&f, &[], &["from", "to"]);
        None
    };
    let Some(u) = usage else {
        return Ok(Details {
            form,
            stats: Vec::new(),
            calls_chart: String::new(),
            cost_chart: String::new(),
            latency_chart: String::new(),
            latency: Vec::new(),
            cost: Vec::new(),
            cost_chart_split: String::new(),
            tokens: Vec::new(),
            errors: String::new(),
            errors_href: String::new(),
            divergent: String::new(),
            free_tier_calls: String::new(),
            quota: Vec::new(),
            has_calls: false,
        });
    };
    let hourly = u.bucket == "hour";
    let labels: Vec<String> = u.series.iter().map(|p| format::axis_time(&p.start, hourly)).collect();
    let calls_chart = bar_chart(&BarChart {
        id: "calls-chart".into(),
        title: format!("Calls per {}", if hourly { "hour" } else { "day" }),
        bars: u.series.iter().zip(&labels).map(|(p, l)| Bar { label: l.clone(), value: p.calls }).collect(),
        scale: Scale::Count,
    });
    let cost_chart = line_chart(&LineChart {
        id: "cost-chart".into(),
        title: format!("Cost per {}", if hourly { "hour" } else { "day" }),
        x_labels: labels.clone(),
        series: vec![Series {
            name: "Cost".into(),
            values: u.series.iter().map(|p| format::nanos(&p.spend)).collect(),
        }],
        scale: Scale::Money,
        area: true,
    });
    let l = &u.latency_ms;
    let latency_chart = if u.calls > 0 {
        bar_chart(&BarChart {
            id: "latency-chart".into(),
            title: "Latency percentiles".into(),
            bars: [("p50", l.p50), ("p95", l.p95), ("p99", l.p99)]
                .iter()
                .map(|(k, v)| Bar { label: k.to_string(), value: v.unwrap_or(0) })
                .collect(),
            scale: Scale::Millis,
        })
    } else {
        String::new()
    };
    let ms = |v: Option<i64>| format::millis(v.map(|x| x as f64));
    let split = [
        ("Input tokens", &u.cost.input),
        ("Output tokens", &u.cost.output),
        ("Cache tokens", &u.cost.cache),
        ("Requests and base fees", &u.cost.requests),
    ];
    let cost_chart_split = if u.calls > 0 {
        bar_chart(&BarChart {
            id: "cost-split-chart".into(),
            title: "Cost by what it paid for".into(),
            bars: split
                .iter()
                .map(|(k, v)| Bar { label: k.split(' ').next().unwrap_or(k).to_string(), value: format::nanos(v) })
                .collect(),
            scale: Scale::Money,
        })
    } else {
        String::new()
    };
    let base = ctx.base();
    Ok(Details {
        form,
        stats: vec![
            Stat {
                key: "calls",
                label: "Total calls",
                value: format::count(u.calls),
                sub: format!("{} used a free call", format::count(u.free_tier_calls)),
            },
            Stat {
                key: "spend",
                label: "Total spend",
                value: format::money(&u.spend),
                sub: "failed calls cost nothing".into(),
            },
            Stat {
                key: "latency",
                label: "Avg latency",
                value: format::millis(l.average),
                sub: format!("p95 {}", ms(l.p95)),
            },
            Stat {
                key: "errors",
                label: "Error rate",
                value: format::percent(u.error_rate),
                sub: format!("{} failed calls", format::count(u.errors)),
            },
        ],
        calls_chart,
        cost_chart,
        latency_chart,
        latency: vec![
            ("Average", format::millis(l.average)),
            ("p50", ms(l.p50)),
            ("p95", ms(l.p95)),
            ("p99", ms(l.p99)),
        ],
        cost: split.iter().map(|(k, v)| (*k, format::money(v))).chain([("Total", format::money(&u.spend))]).collect(),
        cost_chart_split,
        tokens: vec![
            ("Input", format::count(u.tokens.input)),
            ("Output", format::count(u.tokens.output)),
            ("Cache", format::count(u.tokens.cache)),
        ],
        errors: format::count(u.errors),
        errors_href: format!("{base}{}", query(&[("tab", "audit"), ("status", "error"), ("from", &from), ("to", &to)])),
        divergent: format::count(u.divergent_calls),
        free_tier_calls: format::count(u.free_tier_calls),
        quota: u
            .free_quota
            .iter()
            .map(|f| QuotaRow {
                function: f.function.clone(),
                free_calls: format::count(f.free_calls),
                reset: match (&f.reset[..], &f.resets_at) {
                    ("monthly", Some(at)) => format!("Monthly, next on {}", format::date(at)),
                    ("monthly", None) => "Monthly".into(),
                    _ => "Never (lifetime)".into(),
                },
                used: format::count(f.used),
                remaining: format::count(f.remaining),
                percent_left: if f.free_calls > 0 { (f.remaining * 100 / f.free_calls).clamp(0, 100) } else { 0 },
            })
            .collect(),
        has_calls: u.calls > 0,
    })
}

/// What a settings tab shows besides the data: a key just made, forms as typed.
#[derive(Default)]
struct SettingsState {
    reveal: Reveal,
    create: Option<FormState>,
    key_form: Option<(String, FormState)>,
    timeout: Option<FormState>,
    uninstall_error: Option<String>,
}

async fn settings(web: &Web, caller: &Caller, ctx: &Ctx, state: SettingsState) -> Result<Settings, PageError> {
    let base = format!("/api/v1/installations/{}", segment(&ctx.inst.id));
    let keys: Vec<Key> = web.api.read(caller, &format!("{base}/keys")).await?;
    let usage: Usage =
        web.api.read(caller, &format!("/api/v1/usage{}", query(&[("installation", &ctx.inst.id)]))).await?;
    let version = ctx.agent.as_ref().and_then(|a| {
        a.versions
            .iter()
            .find(|v| v.version == ctx.inst.version)
            .or_else(|| a.versions.iter().find(|v| Some(&v.version) == a.latest_version.as_ref()))
    });
    let rows = keys
        .iter()
        .map(|k| {
            let used = usage.by_key.iter().find(|u| u.key_id.as_deref() == Some(k.id.as_str()));
            let l = k.daily_limits;
            let (form, open) = match &state.key_form {
                Some((id, form)) if *id == k.id => (form.clone(), true),
                _ => (
                    FormState::with(&[
                        ("requests", l.requests.to_string()),
                        ("input_tokens", l.input_tokens.to_string()),
                        ("output_tokens", l.output_tokens.to_string()),
                        ("cache_tokens", l.cache_tokens.to_string()),
                    ]),
                    false,
                ),
            };
            KeyRow {
                id: k.id.clone(),
                name: k.name.clone(),
                prefix: k.prefix.clone(),
                active: k.status == "active",
                managed: k.managed,
                last_used: k.last_used_at.as_deref().map(format::time).unwrap_or_else(|| "Never".into()),
                calls: format::count(used.map(|u| u.calls).unwrap_or(0)),
                spend: format::money(used.map(|u| u.spend.as_str()).unwrap_or("0")),
                tokens: used
                    .map(|u| {
                        format!(
                            "{} in · {} out · {} cache",
                            format::count(u.input_tokens),
                            format::count(u.output_tokens),
                            format::count(u.cache_tokens)
                        )
                    })
                    .unwrap_or_else(|| "—".into()),
                limits: vec![
                    ("Requests", format::limit(l.requests)),
                    ("Input tokens", format::limit(l.input_tokens)),
                    ("Output tokens", format::limit(l.output_tokens)),
                    ("Cache tokens", format::limit(l.cache_tokens)),
                ],
                form,
                open,
            }
        })
        .collect();
    let shown = state.reveal.secret().map(|s| {
        let prefix = keys.iter().find(|k| k.id == s.about).map(|k| k.prefix.clone()).unwrap_or_default();
        NewKey { id: s.about.clone(), name: s.label.clone(), prefix, key: s.value.clone() }
    });
    let new_key = shown.map(|k| {
        let curl = match version {
            Some(v) if !ctx.is_a2a() || web.config.a2a_calls => {
                let target = Target {
                    endpoint: &v.endpoint,
                    protocol: &v.protocol,
                    function: v.functions.first().map(|f| f.name.as_str()),
                    cold_start: v.cold_start,
                    key: &k.key,
                };
                snippets(&target).curl
            }
            _ => String::new(),
        };
        NewKeyShown { name: k.name, key: k.key, prefix: k.prefix, curl }
    });
    let [minute, hour, day] = web.config.rate_limits;
    let rate = |n: u64| format::limit(i64::try_from(n).unwrap_or(i64::MAX));
    let current = ctx.inst.task_timeout_seconds;
    Ok(Settings {
        keys: rows,
        new_key,
        key_gone: state.reveal.gone(),
        create: state
            .create
            .unwrap_or_else(|| FormState::with(&LIMITS.iter().map(|l| (*l, "0".to_string())).collect::<Vec<_>>())),
        rate_limits: vec![("Per minute", rate(minute)), ("Per hour", rate(hour)), ("Per day", rate(day))],
        a2a: ctx.is_a2a(),
        timeout: state
            .timeout
            .unwrap_or_else(|| FormState::with(&[("seconds", current.map(|s| s.to_string()).unwrap_or_default())])),
        timeout_default: version.map(|v| format::seconds(v.task_timeout_seconds)).unwrap_or_else(|| "—".into()),
        timeout_current: match current {
            Some(s) => format::seconds(s),
            None => "the publisher's default".into(),
        },
        admin: ctx.admin(),
        write: ctx.write(),
        callable: !ctx.is_a2a() || web.config.a2a_calls,
        uninstall_error: state.uninstall_error,
    })
}

/// The audit tab's filters, in URL order.
const AUDIT_FILTERS: [&str; 4] = ["q", "from", "to", "status"];

async fn audit(web: &Web, caller: &Caller, ctx: &Ctx, q: &HashMap<String, String>) -> Result<Audit, PageError> {
    let values: Vec<(&str, String)> = AUDIT_FILTERS.iter().map(|f| (*f, param(q, f).to_string())).collect();
    let mut form = FormState::with(&values);
    let mut pairs: Vec<(&str, &str)> = vec![("installation", &ctx.inst.id)];
    pairs.extend(values.iter().map(|(k, v)| (*k, v.as_str())));
    let csv = format!("{}/audit.csv{}", ctx.base(), query(&pairs[1..]));
    let per_page = AUDIT_PER_PAGE.to_string();
    let mut page_pairs = pairs.clone();
    page_pairs.push(("page", param(q, "page")));
    page_pairs.push(("per_page", &per_page));
    let reply = web.api.get(caller, &format!("/api/v1/usage/audit{}", query(&page_pairs))).await?;
    let page: Option<AuditPage> = if reply.ok() {
        Some(reply.into_json()?)
    } else {
        let f = reply.failure();
        if f.status != StatusCode::UNPROCESSABLE_ENTITY {
            return Err(f.into());
        }
        form = form.fail(&f, &[], &["q", "from", "to", "status", "page"]);
        None
    };
    let base = ctx.base();
    let link = |extra: &[(&str, &str)]| {
        let mut p: Vec<(&str, &str)> = vec![("tab", "audit")];
        p.extend(values.iter().map(|(k, v)| (*k, v.as_str())));
        p.extend(extra.iter().copied());
        format!("{base}{}", query(&p))
    };
    let row_id = param(q, "row");
    let detail_row = if row_id.is_empty() {
        None
    } else {
        let reply = web.api.get(caller, &format!("/api/v1/usage/audit/{}", segment(row_id))).await?;
        if reply.ok() { Some(reply.into_json::<AuditRow>()?) } else { None }
    };
    let current_page = page.as_ref().map(|p| p.page.to_string()).unwrap_or_else(|| "1".into());
    let lines = page
        .as_ref()
        .map(|p| {
            p.rows
                .iter()
                .map(|r| AuditLine {
                    href: format!(
                        "{}#call-detail",
                        link(&[("page", current_page.as_str()), ("row", r.request_id.as_str())])
                    ),
                    request_id: r.request_id.clone(),
                    time: format::time(&r.time),
                    version: r.version.clone(),
                    function: r.function.clone(),
                    input: format::count(r.input_tokens),
                    output: format::count(r.output_tokens),
                    cache: format::count(r.cache_tokens),
                    latency: format::millis(Some(r.latency_ms as f64)),
                    status: r.status.to_string(),
                    ok: r.success,
                    cost: format::money(&r.cost),
                    selected: r.request_id == row_id,
                })
                .collect()
        })
        .unwrap_or_default();
    let (prev, next, page_label, total) = match &page {
        Some(p) => {
            let pages = ((p.total + p.per_page - 1) / p.per_page.max(1)).max(1);
            (
                (p.page > 1).then(|| link(&[("page", &(p.page - 1).to_string())])),
                (p.page < pages).then(|| link(&[("page", &(p.page + 1).to_string())])),
                format!("Page {} of {}", p.page, pages),
                format::count(p.total),
            )
        }
        None => (None, None, String::new(), "0".into()),
    };
    let detail = detail_row.as_ref().map(detail_rows);
    Ok(Audit {
        form,
        lines,
        total,
        prev,
        next,
        page_label,
        csv,
        detail,
        detail_id: detail_row.map(|r| r.request_id).unwrap_or_default(),
        filtered: values.iter().any(|(_, v)| !v.is_empty()),
    })
}

/// Everything the audit log knows about one call.
fn detail_rows(r: &AuditRow) -> Vec<(&'static str, String)> {
    let yes = |b: bool| if b { "Yes".to_string() } else { "No".to_string() };
    vec![
        ("Request ID", r.request_id.clone()),
        ("Date/Time", format::time(&r.time)),
        ("Version", r.version.clone()),
        ("Function", r.function.clone()),
        ("Method", r.method.clone()),
        ("Status", format!("{} ({})", r.status, if r.success { "succeeded" } else { "failed, not charged" })),
        ("Error", r.error_code.clone().unwrap_or_else(|| "—".into())),
        ("Latency", format::millis(Some(r.latency_ms as f64))),
        (
            "Input tokens (billed / counted)",
            format!("{} / {}", format::count(r.input_tokens), format::count(r.counted_input_tokens)),
        ),
        (
            "Output tokens (billed / counted)",
            format!("{} / {}", format::count(r.output_tokens), format::count(r.counted_output_tokens)),
        ),
        ("Cache tokens", format::count(r.cache_tokens)),
        ("Cost", format::money(&r.cost)),
        ("Free call", yes(r.free_tier)),
        ("Flagged (reported and counted tokens differ by over 20%)", yes(r.divergent)),
        (
            "Key",
            match (&r.key_name, &r.key_prefix) {
                (Some(n), Some(p)) => format!("{n} ({p}…)"),
                _ => "Another member's key".into(),
            },
        ),
        ("Member", r.member_name.clone().or_else(|| r.member_email.clone()).unwrap_or_else(|| "—".into())),
        ("Parent task", r.parent_task_id.clone().unwrap_or_else(|| "—".into())),
        ("Charge", r.transfer_id.clone().unwrap_or_else(|| "None (free)".into())),
    ]
}

/// Renders the page for `tab` of `ctx`.
async fn render_tab(
    web: &Web,
    ctx: Ctx,
    tab: &str,
    q: &HashMap<String, String>,
    state: SettingsState,
    status: StatusCode,
) -> PageResult {
    let tab = TABS.iter().find(|(k, _)| *k == tab).map(|(k, _)| *k).unwrap_or("details");
    let caller = &ctx.caller.clone();
    let (mut d, mut s, mut a) = (None, None, None);
    match tab {
        "settings" => s = Some(settings(web, caller, &ctx, state).await?),
        "audit" => a = Some(audit(web, caller, &ctx, q).await?),
        _ => d = Some(details(web, caller, &ctx, q).await?),
    }
    let base = ctx.base();
    let tabs = TABS
        .iter()
        .map(|(key, label)| TabLink { key, label, href: format!("{base}?tab={key}"), selected: *key == tab })
        .collect();
    let failed = d.as_ref().is_some_and(|d| d.form.failed()) || a.as_ref().is_some_and(|a| a.form.failed());
    let status = if failed && status == StatusCode::OK { StatusCode::UNPROCESSABLE_ENTITY } else { status };
    let new_key = s.as_ref().is_some_and(|s| s.new_key.is_some());
    let page = UsageTemplate {
        chrome: Chrome::new(&format!("{} usage", ctx.inst.agent_name), "dashboard", Some(&ctx.viewer))
            .with_notice(q.get("notice").map(String::as_str)),
        active: ctx.inst.status == "active",
        agent_name: ctx.inst.agent_name.clone(),
        protocol: ctx.agent.as_ref().map(|a| format::protocol(&a.protocol)).unwrap_or_default(),
        tab,
        tabs,
        details: d,
        settings: s,
        audit: a,
        inst: ctx.inst,
    };
    let mut response = render_status(status, &page);
    if new_key {
        // The key is in this page only: never kept by a cache.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// `GET /usage/{id}?tab=…`.
pub async fn usage(
    State(web): State<Web>,
    browser: Browser,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let ctx = load(&web, &browser, &id).await?;
    let tab = param(&q, "tab").to_string();
    let state = match tab.as_str() {
        "settings" => SettingsState { reveal: Reveal::take(&web, &browser, &q, "key"), ..SettingsState::default() },
        _ => SettingsState::default(),
    };
    render_tab(&web, ctx, &tab, &q, state, StatusCode::OK).await
}

/// The daily limits typed into a form, or the form with errors next to the fields that
/// are not whole numbers.
fn limits_of(data: &FormData) -> Result<Value, FormState> {
    let mut form = FormState::from_data(data);
    let mut limits = serde_json::Map::new();
    for name in LIMITS {
        let raw = data.get(name).trim().replace([',', '_', ' '], "");
        match if raw.is_empty() { Ok(0) } else { raw.parse::<i64>() } {
            Ok(n) => {
                limits.insert(name.to_string(), n.into());
            }
            Err(_) => {
                form.errors.insert(name.to_string(), "Enter a whole number, or 0 for no limit.".into());
            }
        }
    }
    if form.failed() { Err(form) } else { Ok(Value::Object(limits)) }
}

/// How the API names the limit fields.
const LIMIT_FIELDS: [(&str, &str); 4] = [
    ("daily_limits.requests", "requests"),
    ("daily_limits.input_tokens", "input_tokens"),
    ("daily_limits.output_tokens", "output_tokens"),
    ("daily_limits.cache_tokens", "cache_tokens"),
];

/// `POST /usage/{id}/keys`: creates a key and shows it this once.
pub async fn create_key(
    State(web): State<Web>,
    browser: Browser,
    Path(id): Path<String>,
    data: FormData,
) -> PageResult {
    let ctx = load(&web, &browser, &id).await?;
    let q = HashMap::new();
    let failed = |form: FormState| SettingsState { create: Some(form), ..SettingsState::default() };
    let limits = match limits_of(&data) {
        Ok(l) => l,
        Err(form) => {
            return render_tab(&web, ctx, "settings", &q, failed(form), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let body = json!({"name": data.get("name"), "daily_limits": limits});
    let caller = browser.caller.with_csrf(data.csrf());
    let reply = web.api.post(&caller, &format!("/api/v1/installations/{}/keys", segment(&id)), &body).await?;
    if reply.ok() {
        let key: NewKey = reply.into_json()?;
        tracing::info!(key.id = %key.id, "key created from the web UI");
        let secret = Secret { kind: "key", about: key.id, label: key.name, value: key.key };
        return Ok(show_once(&web, &browser, secret, &ctx.base(), &[("tab", "settings")], "#new-key"));
    }
    let f = reply.failure();
    if not_a_form_error(&f) {
        return Err(PageError::Failure(f));
    }
    let mut known = vec!["name"];
    known.extend(LIMITS);
    let form = FormState::from_data(&data).fail(&f, &LIMIT_FIELDS, &known);
    render_tab(&web, ctx, "settings", &q, failed(form), f.status).await
}

/// `POST /usage/{id}/keys/{key}/limits`: changes a key's daily limits.
pub async fn key_limits(
    State(web): State<Web>,
    browser: Browser,
    Path((id, key)): Path<(String, String)>,
    data: FormData,
) -> PageResult {
    let ctx = load(&web, &browser, &id).await?;
    let q = HashMap::new();
    let failed = |form: FormState| SettingsState { key_form: Some((key.clone(), form)), ..SettingsState::default() };
    let limits = match limits_of(&data) {
        Ok(l) => l,
        Err(form) => {
            return render_tab(&web, ctx, "settings", &q, failed(form), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let caller = browser.caller.with_csrf(data.csrf());
    let reply =
        web.api.patch(&caller, &format!("/api/v1/keys/{}", segment(&key)), &json!({"daily_limits": limits})).await?;
    if reply.ok() {
        return Ok(see_other(&format!("{}?tab=settings&notice=limits_saved", ctx.base())));
    }
    let f = reply.failure();
    if not_a_form_error(&f) {
        return Err(PageError::Failure(f));
    }
    let form = FormState::from_data(&data).fail(&f, &LIMIT_FIELDS, &LIMITS);
    render_tab(&web, ctx, "settings", &q, failed(form), f.status).await
}

/// `POST /usage/{id}/keys/{key}/revoke`.
pub async fn revoke_key(
    State(web): State<Web>,
    browser: Browser,
    Path((id, key)): Path<(String, String)>,
    data: FormData,
) -> PageResult {
    let ctx = load(&web, &browser, &id).await?;
    let caller = browser.caller.with_csrf(data.csrf());
    let reply = web.api.delete(&caller, &format!("/api/v1/keys/{}", segment(&key))).await?;
    if reply.ok() {
        Ok(see_other(&format!("{}?tab=settings&notice=key_revoked", ctx.base())))
    } else {
        Err(reply.failure().into())
    }
}

/// `POST /usage/{id}/timeout`: the task-token timeout of an A2A installation; empty
/// goes back to the publisher's default.
pub async fn task_timeout(
    State(web): State<Web>,
    browser: Browser,
    Path(id): Path<String>,
    data: FormData,
) -> PageResult {
    let ctx = load(&web, &browser, &id).await?;
    let q = HashMap::new();
    let raw = data.get("seconds").trim().to_string();
    let seconds: Value = match raw.parse::<i64>() {
        _ if raw.is_empty() => Value::Null,
        Ok(n) => n.into(),
        Err(_) => {
            let mut form = FormState::from_data(&data);
            form.errors.insert("seconds".into(), "Enter a whole number of seconds, from 60 to 86400.".into());
            let state = SettingsState { timeout: Some(form), ..SettingsState::default() };
            return render_tab(&web, ctx, "settings", &q, state, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let caller = browser.caller.with_csrf(data.csrf());
    let path = format!("/api/v1/installations/{}", segment(&id));
    let reply = web.api.patch(&caller, &path, &json!({"task_timeout_seconds": seconds})).await?;
    if reply.ok() {
        return Ok(see_other(&format!("{}?tab=settings&notice=timeout_saved", ctx.base())));
    }
    let f = reply.failure();
    if not_a_form_error(&f) {
        return Err(PageError::Failure(f));
    }
    let form = FormState::from_data(&data).fail(&f, &[("task_timeout_seconds", "seconds")], &["seconds"]);
    let state = SettingsState { timeout: Some(form), ..SettingsState::default() };
    render_tab(&web, ctx, "settings", &q, state, f.status).await
}

/// `POST /usage/{id}/uninstall`: needs the confirmation box ticked.
pub async fn uninstall(State(web): State<Web>, browser: Browser, Path(id): Path<String>, data: FormData) -> PageResult {
    let ctx = load(&web, &browser, &id).await?;
    if data.get("confirm") != "yes" {
        let state = SettingsState {
            uninstall_error: Some("Tick the box to confirm: uninstalling revokes every key at once.".into()),
            ..SettingsState::default()
        };
        return render_tab(&web, ctx, "settings", &HashMap::new(), state, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let caller = browser.caller.with_csrf(data.csrf());
    let reply = web.api.delete(&caller, &format!("/api/v1/installations/{}", segment(&id))).await?;
    if reply.ok() {
        return Ok(see_other("/dashboard?notice=uninstalled"));
    }
    let f = reply.failure();
    if f.status == StatusCode::FORBIDDEN && !crate::page::is_csrf(&f) {
        let state = SettingsState { uninstall_error: Some(sentence(&f.message)), ..SettingsState::default() };
        return render_tab(&web, ctx, "settings", &HashMap::new(), state, f.status).await;
    }
    Err(f.into())
}

/// `GET /usage/{id}/audit.csv?q=&from=&to=&status=`: the audit log as CSV, from the API in
/// the installation's org, with the API's headers (file name, row count, truncation).
pub async fn audit_csv(
    State(web): State<Web>,
    browser: Browser,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let ctx = load(&web, &browser, &id).await?;
    let mut pairs: Vec<(&str, &str)> = vec![("installation", &ctx.inst.id)];
    pairs.extend(AUDIT_FILTERS.iter().map(|f| (*f, param(&q, f))));
    let path = format!("/api/v1/usage/audit.csv{}", query(&pairs));
    let (status, headers, bytes) = web.api.send_raw(&ctx.caller, axum::http::Method::GET, &path, None).await?;
    if !status.is_success() {
        return Err(Reply::from_raw(status, headers, &bytes).failure().into());
    }
    let mut response = axum::response::IntoResponse::into_response(bytes);
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_DISPOSITION,
        header::HeaderName::from_static("x-tollgate-export-rows"),
        header::HeaderName::from_static("x-tollgate-export-truncated"),
    ] {
        if let Some(value) = headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    Ok(response)
}
