//! The publisher's two forms. A new agent: every listing field of `POST /api/v1/agents`,
//! governance and support included. A new version: upstream URL, upstream credential
//! headers (write-only: never shown again, not even after a refused form), base fee,
//! functions with per-function pricing (`per_request` or `per_token`) and free tiers,
//! default pricing, dependencies, task timeout and cold start.
//!
//! Both work without JavaScript. The version form has blank function rows; "Add another
//! function" is a submit button that re-renders the form as typed with one row more, and
//! `app.js` adds the row in place instead. Blank rows are left out, and the API's errors
//! (`functions[1].pricing.price`) land next to the field of the row they came from.

use super::own_agent;
use crate::Web;
use crate::client::{Failure, segment};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageError, PageResult, Viewer, is_csrf, not_a_form_error, render_status,
    see_other, signed_in,
};
use crate::pages::billing::usd_typed;
use crate::pages::store::{CAPABILITIES, CATEGORIES, PLATFORMS};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Function rows a new version form starts with.
const ROWS: usize = 3;
/// The most function rows a form has (the API's limit on functions).
const MAX_ROWS: usize = 200;
const COMPLIANCE: [(&str, &str); 3] = [("gdpr", "GDPR"), ("soc2", "SOC 2"), ("hipaa", "HIPAA")];

/// Fields of the agent form the API's errors may land on.
const AGENT_FIELDS: [&str; 20] = [
    "slug",
    "name",
    "description",
    "category",
    "protocol",
    "platforms",
    "capabilities",
    "tags",
    "use_cases",
    "data_collected",
    "collects_no_data",
    "storage_region",
    "storage_provider",
    "retention_days",
    "training_use",
    "compliance",
    "security_measures",
    "support_email",
    "support_url",
    "support_docs_url",
];

/// The refusal of a viewer, before showing a form they may not submit.
fn viewers_refused(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.can_write() {
        return Ok(());
    }
    Err(PageError::Failure(Failure {
        status: StatusCode::FORBIDDEN,
        code: "forbidden".into(),
        message: "viewers cannot publish in this organization; ask an owner or admin for another role".into(),
        field: None,
        retry_after: None,
    }))
}

/// Comma-separated entries, trimmed, blanks left out.
fn comma_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// One entry a line, trimmed, blanks left out.
fn line_list(raw: &str) -> Vec<String> {
    raw.lines().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A text that may be left empty: `null` when it is.
fn optional(raw: &str) -> Value {
    match raw.trim() {
        "" => Value::Null,
        text => Value::String(text.to_string()),
    }
}

/// The agent form's field for an API field: `platforms[2]` → `platforms`,
/// `governance.retention_days` → `retention_days`, `support.email` → `support_email`.
fn agent_field(api: &str) -> String {
    let base = api.split('[').next().unwrap_or(api);
    match base.split_once('.') {
        Some(("governance", rest)) => rest.to_string(),
        Some(("support", rest)) => format!("support_{rest}"),
        _ => base.to_string(),
    }
}

/// `f` with its field renamed by `rename`, for [`FormState::fail`].
fn renamed(f: &Failure, rename: impl Fn(&str) -> String) -> Failure {
    let field = f.field.as_deref().map(&rename);
    let message = match &f.field {
        Some(api) => f.message.strip_prefix(&format!("{api}: ")).unwrap_or(&f.message).to_string(),
        None => f.message.clone(),
    };
    Failure { field, message, ..f.clone() }
}

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "publisher_new_agent.html")]
struct NewAgentTemplate {
    chrome: Chrome,
    org_name: String,
    form: FormState,
    compliance: Vec<Choice>,
    categories: Vec<&'static str>,
    platforms: Vec<&'static str>,
    capabilities: Vec<&'static str>,
}

fn agent_page(viewer: &Viewer, form: FormState, checked: &[&str], status: StatusCode) -> PageResult {
    let page = NewAgentTemplate {
        chrome: Chrome::new("Create an agent", "publisher", Some(viewer)),
        org_name: viewer.org.name.clone(),
        compliance: COMPLIANCE
            .iter()
            .map(|(value, label)| Choice { value, label, checked: checked.contains(value) })
            .collect(),
        form,
        categories: CATEGORIES.to_vec(),
        platforms: PLATFORMS.to_vec(),
        capabilities: CAPABILITIES.to_vec(),
    };
    Ok(render_status(status, &page))
}

/// `GET /publisher/new`.
pub async fn new_agent(State(web): State<Web>, browser: Browser) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    viewers_refused(&viewer)?;
    agent_page(&viewer, FormState::with(&[("protocol", "mcp".into())]), &[], StatusCode::OK)
}

/// The listing the agent form describes, or the form with errors next to the fields the
/// UI itself can check (numbers and choices).
fn listing_of(data: &FormData) -> Result<Value, FormState> {
    let mut form = FormState::from_data(data);
    let retention: Value = match data.get("retention_days").trim() {
        "" => Value::Null,
        raw => match raw.parse::<i64>() {
            Ok(days) => days.into(),
            Err(_) => {
                form.errors.insert("retention_days".into(), "Enter a whole number of days, or leave it empty.".into());
                Value::Null
            }
        },
    };
    let training: Value = match data.get("training_use") {
        "yes" => true.into(),
        "no" => false.into(),
        _ => Value::Null,
    };
    if form.failed() {
        return Err(form);
    }
    Ok(json!({
        "slug": data.get("slug").trim(),
        "name": data.get("name"),
        "description": data.get("description"),
        "category": data.get("category"),
        "protocol": data.get("protocol"),
        "platforms": comma_list(data.get("platforms")),
        "capabilities": comma_list(data.get("capabilities")),
        "tags": comma_list(data.get("tags")),
        "use_cases": line_list(data.get("use_cases")),
        "governance": {
            "data_collected": comma_list(data.get("data_collected")),
            "collects_no_data": data.get("collects_no_data") == "on",
            "storage_region": optional(data.get("storage_region")),
            "storage_provider": optional(data.get("storage_provider")),
            "retention_days": retention,
            "training_use": training,
            "compliance": data.all("compliance"),
            "security_measures": comma_list(data.get("security_measures")),
        },
        "support": {
            "email": optional(data.get("support_email")),
            "url": optional(data.get("support_url")),
            "docs_url": optional(data.get("support_docs_url")),
        },
    }))
}

/// `POST /publisher/new`: lists the agent, then on to publishing its first version.
pub async fn create_agent(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let checked = data.all("compliance");
    let body = match listing_of(&data) {
        Ok(body) => body,
        Err(form) => return agent_page(&viewer, form, &checked, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let reply = web.api.post(&browser.caller.with_csrf(data.csrf()), "/api/v1/agents", &body).await?;
    if reply.ok() {
        let slug = segment(data.get("slug").trim());
        return Ok(see_other(&format!("/publisher/agents/{slug}/versions/new?notice=agent_created")));
    }
    let f = reply.failure();
    if is_csrf(&f) || not_a_form_error(&f) {
        return Err(f.into());
    }
    let f = if f.code == "slug_taken" { Failure { field: Some("slug".into()), ..f } } else { renamed(&f, agent_field) };
    let form = FormState::from_data(&data).fail(&f, &[], &AGENT_FIELDS);
    agent_page(&viewer, form, &checked, f.status)
}

/// One function row of the version form, as shown.
pub struct FnRow {
    pub i: usize,
    pub name: String,
    pub model: String,
    pub price: String,
    pub input: String,
    pub output: String,
    pub cache: String,
    pub free: String,
    pub reset: String,
    pub errors: Vec<(String, String)>,
}

impl FnRow {
    /// The row's text inputs: (field, label, value).
    pub fn cells(&self) -> Vec<(&'static str, &'static str, &str)> {
        vec![
            ("price", "Price per call (USD)", &self.price),
            ("input", "Input per 1M tokens", &self.input),
            ("output", "Output per 1M tokens", &self.output),
            ("cache", "Cache per 1M tokens", &self.cache),
            ("free", "Free calls", &self.free),
        ]
    }

    /// The error next to the row's `field` (`name`, `price`, `free`, …).
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(k, _)| k == field).map(|(_, v)| v.as_str())
    }
}

#[derive(Template)]
#[template(path = "publisher_version.html")]
struct VersionTemplate {
    chrome: Chrome,
    slug: String,
    name: String,
    protocol: String,
    existing: String,
    form: FormState,
    rows: Vec<FnRow>,
    row_count: usize,
    headers_cleared: bool,
}

fn rows_of(form: &FormState, count: usize) -> Vec<FnRow> {
    (0..count)
        .map(|i| {
            let v = |k: &str| form.value(&format!("f{i}_{k}")).to_string();
            let prefix = format!("f{i}_");
            FnRow {
                i,
                name: v("name"),
                model: match v("model").as_str() {
                    "" => "per_request".into(),
                    m => m.into(),
                },
                price: v("price"),
                input: v("input"),
                output: v("output"),
                cache: v("cache"),
                free: v("free"),
                reset: v("reset"),
                errors: form
                    .errors
                    .iter()
                    .filter_map(|(k, e)| k.strip_prefix(&prefix).map(|f| (f.to_string(), e.clone())))
                    .collect(),
            }
        })
        .collect()
}

/// The version form as it is shown: values and errors, how many function rows, whether
/// typed headers were cleared, and a notice.
struct Shown {
    form: FormState,
    rows: usize,
    headers_cleared: bool,
    notice: Option<String>,
}

async fn version_page(
    web: &Web,
    browser: &Browser,
    viewer: &Viewer,
    slug: &str,
    shown: Shown,
    status: StatusCode,
) -> PageResult {
    let a = own_agent(web, browser, slug).await?;
    let page = VersionTemplate {
        chrome: Chrome::new(&format!("Publish a version of {}", a.name), "publisher", Some(viewer))
            .with_notice(shown.notice.as_deref()),
        slug: a.slug.clone(),
        name: a.name.clone(),
        protocol: crate::format::protocol(&a.protocol),
        existing: a.versions.iter().map(|v| v.version.version.clone()).collect::<Vec<_>>().join(", "),
        rows: rows_of(&shown.form, shown.rows),
        row_count: shown.rows,
        form: shown.form,
        headers_cleared: shown.headers_cleared,
    };
    Ok(render_status(status, &page))
}

/// `GET /publisher/agents/{slug}/versions/new`.
pub async fn new_version(
    State(web): State<Web>,
    browser: Browser,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    viewers_refused(&viewer)?;
    let shown = Shown {
        form: FormState::with(&[("base_fee", "0".into()), ("dp_model", "none".into())]),
        rows: ROWS,
        headers_cleared: false,
        notice: q.get("notice").cloned(),
    };
    version_page(&web, &browser, &viewer, &slug, shown, StatusCode::OK).await
}

/// A version request built from the form, and for each function sent, the form row it
/// came from; or the form with errors next to the fields the UI itself checks.
fn version_of(data: &FormData, rows: usize) -> Result<(Value, Vec<usize>), FormState> {
    let mut form = FormState::from_data(data);
    let price = |raw: &str| -> Option<Value> {
        let typed = usd_typed(raw);
        (!typed.is_empty()).then_some(Value::String(typed))
    };
    let pricing = |model: &str, p: &str, i: &str, o: &str, c: &str| -> Value {
        let mut doc = Map::new();
        doc.insert("model".into(), model.into());
        let fields: &[(&str, &str)] = if model == "per_token" {
            &[("input_per_million", i), ("output_per_million", o), ("cache_per_million", c)]
        } else {
            &[("price", p)]
        };
        for (k, v) in fields {
            if let Some(v) = price(v) {
                doc.insert((*k).into(), v);
            }
        }
        Value::Object(doc)
    };
    let mut functions = Vec::new();
    let mut sent = Vec::new();
    for i in 0..rows {
        let f = |k: &str| data.get(&format!("f{i}_{k}")).trim().to_string();
        let (name, model) = (f("name"), f("model"));
        let blank = ["name", "price", "input", "output", "cache", "free"].iter().all(|k| f(k).is_empty());
        if blank {
            continue;
        }
        let free_calls = match f("free").replace([',', '_'], "").as_str() {
            "" => 0,
            raw => raw.parse::<i64>().unwrap_or_else(|_| {
                form.errors.insert(format!("f{i}_free"), "Enter a whole number of free calls, or 0.".into());
                0
            }),
        };
        let model = if model.is_empty() { "per_request".to_string() } else { model };
        functions.push(json!({
            "name": name,
            "pricing": pricing(&model, &f("price"), &f("input"), &f("output"), &f("cache")),
            "free_calls": free_calls,
            "free_reset": if f("reset") == "monthly" { "monthly" } else { "lifetime" },
        }));
        sent.push(i);
    }
    let mut headers = Map::new();
    for line in data.get("headers").lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((name, value)) => {
                headers.insert(name.trim().to_string(), value.trim().into());
            }
            None => {
                form.errors.insert("headers".into(), "Write one header a line, as Name: value.".into());
            }
        }
    }
    let mut dependencies = Vec::new();
    for line in line_list(data.get("dependencies")) {
        let mut parts = line.split(['@', ' ']).filter(|p| !p.is_empty());
        let agent = parts.next().unwrap_or_default();
        let version = parts.next().unwrap_or("latest");
        dependencies.push(json!({"agent": agent, "version": version}));
    }
    let timeout: Value = match data.get("timeout").trim() {
        "" => Value::Null,
        raw => raw.parse::<i64>().map(Value::from).unwrap_or_else(|_| {
            form.errors.insert("timeout".into(), "Enter a whole number of seconds, from 60 to 86400.".into());
            Value::Null
        }),
    };
    let default_pricing = match data.get("dp_model") {
        "per_request" | "per_token" => pricing(
            data.get("dp_model"),
            data.get("dp_price"),
            data.get("dp_input"),
            data.get("dp_output"),
            data.get("dp_cache"),
        ),
        _ => Value::Null,
    };
    if form.failed() {
        return Err(form);
    }
    let body = json!({
        "version": data.get("version").trim(),
        "upstream_url": data.get("upstream_url").trim(),
        "upstream_headers": headers,
        "base_fee": match usd_typed(data.get("base_fee")).as_str() { "" => "0".to_string(), fee => fee.to_string() },
        "functions": functions,
        "default_pricing": default_pricing,
        "dependencies": dependencies,
        "task_timeout_seconds": timeout,
        "cold_start": data.get("cold_start") == "on",
    });
    Ok((body, sent))
}

/// The version form's field for an API field; `sent[k]` is the form row of the k-th
/// function sent.
fn version_field(api: &str, sent: &[usize]) -> String {
    if let Some(rest) = api.strip_prefix("functions[") {
        let Some((k, tail)) = rest.split_once(']') else { return "functions".into() };
        let Some(row) = k.parse::<usize>().ok().and_then(|k| sent.get(k)) else { return "functions".into() };
        let field = match tail.trim_start_matches('.') {
            "name" => "name",
            "pricing.price" => "price",
            "pricing.input_per_million" => "input",
            "pricing.output_per_million" => "output",
            "pricing.cache_per_million" => "cache",
            "free_calls" => "free",
            "free_reset" => "reset",
            _ => "model",
        };
        return format!("f{row}_{field}");
    }
    let base = api.split(['.', '[']).next().unwrap_or(api);
    match (base, api) {
        ("upstream_headers", _) => "headers".into(),
        ("dependencies", _) => "dependencies".into(),
        ("task_timeout_seconds", _) => "timeout".into(),
        ("default_pricing", "default_pricing.price") => "dp_price".into(),
        ("default_pricing", "default_pricing.input_per_million") => "dp_input".into(),
        ("default_pricing", "default_pricing.output_per_million") => "dp_output".into(),
        ("default_pricing", "default_pricing.cache_per_million") => "dp_cache".into(),
        ("default_pricing", _) => "dp_model".into(),
        _ => base.to_string(),
    }
}

/// `POST /publisher/agents/{slug}/versions/new`: publishes the version (or, with
/// `action=add_row`, shows the form again with one more function row).
pub async fn publish_version(
    State(web): State<Web>,
    browser: Browser,
    Path(slug): Path<String>,
    data: FormData,
) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let rows = data.get("rows").parse::<usize>().unwrap_or(ROWS).clamp(1, MAX_ROWS);
    let typed_headers = !data.get("headers").trim().is_empty();
    // Upstream headers are write-only: a form shown again never holds them.
    let shown = |mut form: FormState, rows: usize| {
        form.values.remove("headers");
        Shown { form, rows, headers_cleared: typed_headers, notice: None }
    };
    if data.get("action") == "add_row" {
        let form = FormState::from_data(&data);
        let rows = (rows + 1).min(MAX_ROWS);
        return version_page(&web, &browser, &viewer, &slug, shown(form, rows), StatusCode::OK).await;
    }
    let (body, sent) = match version_of(&data, rows) {
        Ok(made) => made,
        Err(form) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return version_page(&web, &browser, &viewer, &slug, shown(form, rows), status).await;
        }
    };
    let path = format!("/api/v1/agents/{}/versions", segment(&slug));
    let reply = web.api.post(&browser.caller.with_csrf(data.csrf()), &path, &body).await?;
    if reply.ok() {
        return Ok(see_other(&format!("/publisher/agents/{}?notice=version_published", segment(&slug))));
    }
    let f = reply.failure();
    if is_csrf(&f) || not_a_form_error(&f) {
        return Err(f.into());
    }
    let f = if f.code == "version_exists" {
        Failure { field: Some("version".into()), ..f }
    } else {
        renamed(&f, |api| version_field(api, &sent))
    };
    let mut known: Vec<String> = [
        "version",
        "upstream_url",
        "headers",
        "base_fee",
        "dependencies",
        "timeout",
        "dp_model",
        "dp_price",
        "dp_input",
        "dp_output",
        "dp_cache",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    known.extend(f.field.iter().filter(|name| name.starts_with('f') && name.contains('_')).cloned());
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let form = FormState::from_data(&data).fail(&f, &[], &known);
    version_page(&web, &browser, &viewer, &slug, shown(form, rows), f.status).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_land_on_the_row_they_came_from() {
        let sent = [0, 2];
        assert_eq!(version_field("functions[1].pricing.price", &sent), "f2_price");
        assert_eq!(version_field("functions[0].name", &sent), "f0_name");
        assert_eq!(version_field("functions[1].pricing.input_per_million", &sent), "f2_input");
        assert_eq!(version_field("functions[1].pricing.model", &sent), "f2_model");
        assert_eq!(version_field("functions[5].name", &sent), "functions");
        assert_eq!(version_field("upstream_headers.Host", &sent), "headers");
        assert_eq!(version_field("dependencies[0].agent", &sent), "dependencies");
        assert_eq!(version_field("default_pricing.output_per_million", &sent), "dp_output");
        assert_eq!(version_field("task_timeout_seconds", &sent), "timeout");
        assert_eq!(agent_field("platforms[3]"), "platforms");
        assert_eq!(agent_field("governance.retention_days"), "retention_days");
        assert_eq!(agent_field("support.docs_url"), "support_docs_url");
    }

    #[test]
    fn blank_rows_are_left_out_and_prices_are_typed_as_people_write_them() {
        let data = FormData(
            [
                ("version", "1.2.0"),
                ("upstream_url", "https://agent.example/mcp"),
                ("headers", "Authorization: Bearer s3cret\n\nX-Team: a"),
                ("base_fee", "$0.0001"),
                ("f0_name", "search"),
                ("f0_model", "per_request"),
                ("f0_price", "$0.005"),
                ("f0_free", "1,000"),
                ("f0_reset", "monthly"),
                ("f1_model", "per_token"),
                ("f2_name", "summarize"),
                ("f2_model", "per_token"),
                ("f2_input", "2.00"),
                ("f2_output", "4"),
                ("dependencies", "web-search@1.0.0\nlookup"),
                ("timeout", ""),
                ("cold_start", "on"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let (body, sent) = version_of(&data, 3).unwrap();
        assert_eq!(sent, [0, 2]);
        assert_eq!(body["functions"][0]["pricing"], json!({"model": "per_request", "price": "0.005"}));
        assert_eq!(body["functions"][0]["free_calls"], 1000);
        assert_eq!(body["functions"][0]["free_reset"], "monthly");
        assert_eq!(
            body["functions"][1]["pricing"],
            json!({"model": "per_token", "input_per_million": "2.00", "output_per_million": "4"})
        );
        assert_eq!(body["upstream_headers"], json!({"Authorization": "Bearer s3cret", "X-Team": "a"}));
        assert_eq!(body["base_fee"], "0.0001");
        assert_eq!(
            body["dependencies"],
            json!([{"agent": "web-search", "version": "1.0.0"}, {"agent": "lookup", "version": "latest"}])
        );
        assert_eq!((body["task_timeout_seconds"].clone(), body["cold_start"].clone()), (Value::Null, json!(true)));
        assert_eq!(body["default_pricing"], Value::Null);

        let bad = FormData(vec![
            ("f0_name".into(), "x".into()),
            ("f0_free".into(), "lots".into()),
            ("headers".into(), "no colon".into()),
        ]);
        let form = version_of(&bad, 1).unwrap_err();
        assert!(form.error("f0_free").is_some() && form.error("headers").is_some());
    }
}
