//! The dashboard: the last 24 hours at a glance (calls with a sparkline, active agents,
//! average latency, error rate), spend over a chosen range with a chart, and My agents.

use crate::Web;
use crate::charts::{LineChart, Scale, Series, line_chart, sparkline};
use crate::client::{query, segment};
use crate::format;
use crate::model::{Balance, Installation, Usage};
use crate::page::{Browser, Chrome, DAY_MS, FormState, PageResult, date_range, render_status, signed_in};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use std::collections::HashMap;
use tollgate_domain::time::{now_ms, rfc3339};

pub struct AgentRow {
    pub name: String,
    pub slug: String,
    pub href: String,
    pub version: String,
    pub since: String,
    pub calls: String,
    pub spend: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardTemplate {
    chrome: Chrome,
    form: FormState,
    calls_24h: String,
    spark: String,
    active_agents: String,
    latency_24h: String,
    error_rate_24h: String,
    errors_24h: String,
    spend: String,
    balance: Option<String>,
    range_label: String,
    chart: String,
    agents: Vec<AgentRow>,
}

/// `GET /dashboard?from=&to=`.
pub async fn dashboard(
    State(web): State<Web>,
    browser: Browser,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let now = now_ms();
    let last_day: Usage = web
        .api
        .read(
            &browser.caller,
            &format!("/api/v1/usage{}", query(&[("from", &rfc3339(now - DAY_MS)), ("bucket", "hour")])),
        )
        .await?;
    let (from, to) = date_range(&q);
    let mut form = FormState::with(&[("from", from.clone()), ("to", to.clone())]);
    let reply =
        web.api.get(&browser.caller, &format!("/api/v1/usage{}", query(&[("from", &from), ("to", &to)]))).await?;
    let range: Option<Usage> = if reply.ok() {
        Some(reply.into_json()?)
    } else {
        let f = reply.failure();
        if f.status != StatusCode::UNPROCESSABLE_ENTITY {
            return Err(f.into());
        }
        form = form.fail(&f, &[], &["from", "to"]);
        None
    };
    let installations: Vec<Installation> = web.api.read(&browser.caller, "/api/v1/installations").await?;
    let balance = web
        .api
        .read::<Balance>(&browser.caller, "/api/v1/billing/balance")
        .await
        .ok()
        .map(|b| format::money(&b.balance));
    let spark_values: Vec<i64> = last_day.series.iter().map(|p| p.calls).collect();
    let chart = match &range {
        Some(u) => line_chart(&LineChart {
            id: "spend-chart".into(),
            title: "Spend".into(),
            x_labels: u.series.iter().map(|p| format::axis_time(&p.start, u.bucket == "hour")).collect(),
            series: vec![Series {
                name: "Spend".into(),
                values: u.series.iter().map(|p| format::nanos(&p.spend)).collect(),
            }],
            scale: Scale::Money,
            area: true,
        }),
        None => String::new(),
    };
    let agents = installations
        .iter()
        .map(|i| {
            let totals = range.as_ref().and_then(|u| u.by_installation.iter().find(|t| t.installation_id == i.id));
            AgentRow {
                name: i.agent_name.clone(),
                slug: i.agent.clone(),
                href: format!("/usage/{}", segment(&i.id)),
                version: i.version.clone(),
                since: format::date(&i.created_at),
                calls: format::count(totals.map(|t| t.calls).unwrap_or(0)),
                spend: format::money(totals.map(|t| t.spend.as_str()).unwrap_or("0")),
            }
        })
        .collect();
    let page = DashboardTemplate {
        chrome: Chrome::new("Dashboard", "dashboard", Some(&viewer)).with_notice(q.get("notice").map(String::as_str)),
        calls_24h: format::count(last_day.calls),
        spark: sparkline(&spark_values, &format!("Calls per hour over the last 24 hours, {} in all", last_day.calls)),
        active_agents: format::count(installations.len() as i64),
        latency_24h: format::millis(last_day.latency_ms.average),
        error_rate_24h: format::percent(last_day.error_rate),
        errors_24h: format::count(last_day.errors),
        spend: range.as_ref().map(|u| format::money(&u.spend)).unwrap_or_else(|| "—".into()),
        balance,
        range_label: if range.is_some() { format!("{from} to {to}") } else { String::new() },
        chart,
        agents,
        form,
    };
    let status = if page.form.failed() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(render_status(status, &page))
}
