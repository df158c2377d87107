//! Billing: the org's balance (and what calls in flight hold), how credits are added on
//! this instance, the monthly budget against this month's spend, auto-recharge, and the
//! transaction history with grants marked. Reads need any role; the budget and
//! auto-recharge forms are for owners and admins, as the API allows.

use crate::Web;
use crate::client::query;
use crate::format;
use crate::model::{Balance, TransactionPage};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageResult, Viewer, is_csrf, not_a_form_error, param, render_status,
    see_other, signed_in,
};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Transactions per page.
const PER_PAGE: i64 = 25;

pub struct Line {
    pub date: String,
    pub kind: String,
    pub grant: bool,
    pub memo: String,
    pub amount: String,
    pub credit: bool,
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingTemplate {
    chrome: Chrome,
    org_id: String,
    org_name: String,
    personal: bool,
    email: String,
    admin: bool,
    balance: String,
    available: String,
    pending: String,
    holds: bool,
    spent: String,
    budget: Option<String>,
    budget_percent: i64,
    over_budget: bool,
    budget_form: FormState,
    recharge: Option<(bool, String, String)>,
    recharge_form: FormState,
    lines: Vec<Line>,
    total: String,
    page_label: String,
    prev: Option<String>,
    next: Option<String>,
    history_error: Option<String>,
}

/// How a transfer's kind reads, and whether it is a grant of free credits.
fn kind_label(kind: &str) -> (String, bool) {
    match kind {
        "signup_grant" => ("Welcome credits".into(), true),
        "grant" => ("Credit grant".into(), true),
        "charge" => ("Agent call".into(), false),
        "platform_fee" => ("Platform fee on a call".into(), false),
        "payment" => ("Card payment".into(), false),
        other => (crate::page::sentence(&other.replace('_', " ")).trim_end_matches('.').to_string(), false),
    }
}

/// A USD amount as typed: `$1,250.50` → `1250.50`.
pub fn usd_typed(raw: &str) -> String {
    raw.trim().trim_start_matches('$').replace([',', ' '], "")
}

/// The forms as typed, when one was refused.
#[derive(Default)]
struct Shown {
    budget: Option<FormState>,
    recharge: Option<FormState>,
}

async fn render(
    web: &Web,
    browser: &Browser,
    viewer: &Viewer,
    q: &HashMap<String, String>,
    shown: Shown,
    status: StatusCode,
) -> PageResult {
    let b: Balance = web.api.read(&browser.caller, "/api/v1/billing/balance").await?;
    let page_param = param(q, "page");
    let per_page = PER_PAGE.to_string();
    let path = format!("/api/v1/billing/transactions{}", query(&[("page", page_param), ("per_page", &per_page)]));
    let reply = web.api.get(&browser.caller, &path).await?;
    let (history, history_error) = if reply.ok() {
        (Some(reply.into_json::<TransactionPage>()?), None)
    } else {
        let f = reply.failure();
        if f.status != StatusCode::UNPROCESSABLE_ENTITY {
            return Err(f.into());
        }
        (None, Some(crate::page::sentence(&f.message)))
    };
    let spent = format::nanos(&b.spent_this_month);
    let budget_nanos = b.monthly_budget.as_deref().map(format::nanos);
    let budget_percent = match budget_nanos {
        Some(0) => 100,
        Some(limit) => i64::try_from(i128::from(spent) * 100 / i128::from(limit)).unwrap_or(100).clamp(0, 100),
        None => 0,
    };
    let recharge = b.auto_recharge.as_ref().map(|r| {
        let text = |k: &str| r[k].as_str().unwrap_or("0").to_string();
        (r["enabled"].as_bool().unwrap_or(false), text("threshold"), text("amount"))
    });
    let link = |p: i64| format!("/billing{}#history", query(&[("page", &p.to_string())]));
    let (lines, total, page_label, prev, next) = match &history {
        Some(h) => {
            let pages = ((h.total + h.per_page - 1) / h.per_page.max(1)).max(1);
            (
                h.transactions
                    .iter()
                    .map(|t| {
                        let (kind, grant) = kind_label(&t.kind);
                        Line {
                            date: format::time(&t.created_at),
                            kind,
                            grant,
                            memo: t.memo.clone(),
                            credit: !t.amount.starts_with('-'),
                            amount: format::money(&t.amount),
                        }
                    })
                    .collect(),
                format::count(h.total),
                format!("Page {} of {}", h.page, pages),
                (h.page > 1).then(|| link(h.page - 1)),
                (h.page < pages).then(|| link(h.page + 1)),
            )
        }
        None => (Vec::new(), "0".into(), String::new(), None, None),
    };
    let page = BillingTemplate {
        chrome: Chrome::new("Billing", "billing", Some(viewer)).with_notice(q.get("notice").map(String::as_str)),
        org_id: viewer.org.id.clone(),
        org_name: viewer.org.name.clone(),
        personal: viewer.org.personal,
        email: viewer.me.user.email.clone(),
        admin: viewer.can_admin(),
        balance: format::money(&b.balance),
        available: format::money(&b.available),
        holds: format::nanos(&b.pending) != 0,
        pending: format::money(&b.pending),
        spent: format::money(&b.spent_this_month),
        over_budget: budget_nanos.is_some_and(|limit| spent >= limit),
        budget: b.monthly_budget.as_deref().map(format::money),
        budget_percent,
        budget_form: shown.budget.unwrap_or_else(|| {
            FormState::with(&[("monthly_limit", b.monthly_budget.as_deref().map(plain_usd).unwrap_or_default())])
        }),
        recharge_form: shown.recharge.unwrap_or_else(|| match &recharge {
            Some((enabled, threshold, amount)) => FormState::with(&[
                ("enabled", if *enabled { "on".to_string() } else { String::new() }),
                ("threshold", plain_usd(threshold)),
                ("amount", plain_usd(amount)),
            ]),
            None => FormState::with(&[("threshold", "5.00".into()), ("amount", "50.00".into())]),
        }),
        recharge: recharge.map(|(e, t, a)| (e, format::money(&t), format::money(&a))),
        lines,
        total,
        page_label,
        prev,
        next,
        history_error,
    };
    let status = if page.history_error.is_some() && status == StatusCode::OK {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        status
    };
    Ok(render_status(status, &page))
}

/// An API amount as a form shows it: `"50.000000"` → `50.00`.
fn plain_usd(usd: &str) -> String {
    format::money(usd).trim_start_matches('$').replace(',', "")
}

/// `GET /billing?page=`.
pub async fn billing(State(web): State<Web>, browser: Browser, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    render(&web, &browser, &viewer, &q, Shown::default(), StatusCode::OK).await
}

/// `POST /billing/budget`: sets the monthly budget, or removes it (`action=remove`).
pub async fn budget(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let (limit, done) = if data.get("action") == "remove" {
        (Value::Null, "budget_removed")
    } else {
        (Value::from(usd_typed(data.get("monthly_limit"))), "budget_saved")
    };
    let caller = browser.caller.with_csrf(data.csrf());
    let reply = web.api.put(&caller, "/api/v1/billing/budget", &json!({"monthly_limit": limit})).await?;
    if reply.ok() {
        return Ok(see_other(&format!("/billing?notice={done}")));
    }
    let f = reply.failure();
    if is_csrf(&f) || not_a_form_error(&f) {
        return Err(f.into());
    }
    let form = FormState::from_data(&data).fail(&f, &[], &["monthly_limit"]);
    let shown = Shown { budget: Some(form), ..Shown::default() };
    render(&web, &browser, &viewer, &HashMap::new(), shown, f.status).await
}

/// `POST /billing/auto-recharge`.
pub async fn auto_recharge(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let body = json!({
        "enabled": data.get("enabled") == "on",
        "threshold": usd_typed(data.get("threshold")),
        "amount": usd_typed(data.get("amount")),
    });
    let caller = browser.caller.with_csrf(data.csrf());
    let reply = web.api.put(&caller, "/api/v1/billing/auto-recharge", &body).await?;
    if reply.ok() {
        return Ok(see_other("/billing?notice=recharge_saved"));
    }
    let f = reply.failure();
    if is_csrf(&f) || not_a_form_error(&f) {
        return Err(f.into());
    }
    let form = FormState::from_data(&data).fail(&f, &[], &["threshold", "amount"]);
    let shown = Shown { recharge: Some(form), ..Shown::default() };
    render(&web, &browser, &viewer, &HashMap::new(), shown, f.status).await
}
