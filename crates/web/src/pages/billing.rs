//! Billing: the org's balance (and what calls in flight hold), adding credits (the card
//! payment provider's checkout, and the result when the person comes back; without a
//! provider, how an operator adds them), the monthly budget against this month's spend,
//! auto-recharge and what it did, and the transaction history with grants and card
//! payments marked. Reads need any role; buying and the budget and auto-recharge forms are
//! for owners and admins, as the API allows. The local provider's test checkout page lives
//! here too (`/billing/test-checkout/{payment}`).

use crate::Web;
use crate::client::{query, segment};
use crate::format;
use crate::model::{Balance, TransactionPage};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageResult, Viewer, is_csrf, not_a_form_error, param, render_status,
    see_other, signed_in,
};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Transactions per page.
const PER_PAGE: i64 = 25;

pub struct Line {
    pub date: String,
    pub kind: String,
    pub grant: bool,
    /// Bought with a card (a purchase or an auto-recharge).
    pub card: bool,
    pub memo: String,
    pub amount: String,
    pub credit: bool,
}

/// How credits are bought on this instance (`card_payments` of the balance).
#[derive(Debug, Default, Deserialize)]
struct CardPayments {
    provider: Option<String>,
    min_amount: String,
    max_amount: String,
    card_on_file: bool,
}

/// What auto-recharge did (`recharge_status` of the balance).
#[derive(Debug, Default, Deserialize)]
struct RechargeStatus {
    in_flight: bool,
    last_recharge_at: Option<String>,
    last_recharge_amount: Option<String>,
    last_failure: Option<String>,
    last_failure_at: Option<String>,
    failures: i64,
    this_month: String,
}

/// The balance's card payment parts.
#[derive(Debug, Default, Deserialize)]
struct PaymentParts {
    #[serde(default)]
    card_payments: CardPayments,
    #[serde(default)]
    recharge_status: RechargeStatus,
}

/// `GET /api/v1/billing/payments/{id}`.
#[derive(Debug, Deserialize)]
struct Payment {
    id: String,
    kind: String,
    provider: String,
    amount: String,
    status: String,
    failure: Option<String>,
}

/// How a checkout the person came back from ended, as the page says it.
pub struct Outcome {
    /// `succeeded`, `open`, `failed`, `canceled` or `unknown`.
    pub status: String,
    pub text: String,
}

/// Auto-recharge's record, as the page says it.
pub struct RechargeRecord {
    pub in_flight: bool,
    pub last: Option<String>,
    pub failure: Option<String>,
    pub failures: i64,
    pub this_month: String,
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
    recharge_limit: Option<String>,
    recharge_record: RechargeRecord,
    recharge_form: FormState,
    /// `stripe`, `local`, or none (grants only).
    provider: Option<String>,
    purchase_min: String,
    purchase_max: String,
    card_on_file: bool,
    checkout_form: FormState,
    outcome: Option<Outcome>,
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
        "auto_recharge" => ("Auto-recharge".into(), false),
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
    checkout: Option<FormState>,
}

/// The result of the checkout `?payment=` names, for the person coming back from it.
async fn outcome(
    web: &Web,
    browser: &Browser,
    q: &HashMap<String, String>,
) -> Result<Option<Outcome>, crate::page::PageError> {
    let id = param(q, "payment");
    if id.is_empty() {
        return Ok(None);
    }
    let reply = web.api.get(&browser.caller, &format!("/api/v1/billing/payments/{}", segment(id))).await?;
    if !reply.ok() {
        let text = "This payment is not one of yours; nothing is shown for it.".to_string();
        return Ok(Some(Outcome { status: "unknown".into(), text }));
    }
    let p: Payment = reply.into_json()?;
    let amount = format::money(&p.amount);
    let left = q.get("canceled").is_some_and(|c| c == "1");
    let text = match p.status.as_str() {
        "succeeded" => format!("Payment received: {amount} was added to the balance."),
        "open" if left => format!("You left the checkout; the {amount} payment was not made and nothing was charged."),
        "open" => format!(
            "Your payment of {amount} is being confirmed by the payment provider; the credits appear as soon as it \
             is (reload in a few seconds)."
        ),
        "canceled" => format!("The {amount} checkout expired; nothing was charged."),
        _ => format!(
            "The payment of {amount} failed: {}. Nothing was added.",
            p.failure.as_deref().unwrap_or("the payment provider refused it").trim_end_matches('.')
        ),
    };
    let status = if p.status == "open" && left { "canceled".to_string() } else { p.status };
    Ok(Some(Outcome { status, text }))
}

/// What auto-recharge did, as sentences.
fn record(r: &RechargeStatus) -> RechargeRecord {
    RechargeRecord {
        in_flight: r.in_flight,
        last: r.last_recharge_at.as_ref().map(|at| {
            let amount = r.last_recharge_amount.as_deref().map(format::money).unwrap_or_default();
            format!("{amount} on {}", format::time(at))
        }),
        failure: r.last_failure.as_ref().map(|why| {
            let at = r.last_failure_at.as_deref().map(format::time).unwrap_or_default();
            format!("{} ({at})", crate::page::sentence(why).trim_end_matches('.'))
        }),
        failures: r.failures,
        this_month: if r.this_month.is_empty() { "$0.00".into() } else { format::money(&r.this_month) },
    }
}

async fn render(
    web: &Web,
    browser: &Browser,
    viewer: &Viewer,
    q: &HashMap<String, String>,
    shown: Shown,
    status: StatusCode,
) -> PageResult {
    let raw: Value = web.api.read(&browser.caller, "/api/v1/billing/balance").await?;
    let b: Balance = serde_json::from_value(raw.clone())
        .map_err(|e| crate::client::Failure::internal(format!("the balance: {e}")))?;
    let parts: PaymentParts = serde_json::from_value(raw).unwrap_or_default();
    let outcome = outcome(web, browser, q).await?;
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
    let recharge_limit = b.auto_recharge.as_ref().and_then(|r| r["monthly_limit"].as_str().map(str::to_string));
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
                            card: t.kind == "payment",
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
                ("monthly_limit", recharge_limit.as_deref().map(plain_usd).unwrap_or_default()),
            ]),
            None => FormState::with(&[("threshold", "5.00".into()), ("amount", "50.00".into())]),
        }),
        recharge: recharge.map(|(e, t, a)| (e, format::money(&t), format::money(&a))),
        recharge_limit: recharge_limit.as_deref().map(format::money),
        recharge_record: record(&parts.recharge_status),
        provider: parts.card_payments.provider.clone(),
        purchase_min: format::money(&parts.card_payments.min_amount),
        purchase_max: format::money(&parts.card_payments.max_amount),
        card_on_file: parts.card_payments.card_on_file,
        checkout_form: shown.checkout.unwrap_or_else(|| FormState::with(&[("amount", "25.00".into())])),
        outcome,
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
    let limit = usd_typed(data.get("monthly_limit"));
    let body = json!({
        "enabled": data.get("enabled") == "on",
        "threshold": usd_typed(data.get("threshold")),
        "amount": usd_typed(data.get("amount")),
        "monthly_limit": if limit.is_empty() { Value::Null } else { Value::from(limit) },
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
    let form = FormState::from_data(&data).fail(&f, &[], &["threshold", "amount", "monthly_limit"]);
    let shown = Shown { recharge: Some(form), ..Shown::default() };
    render(&web, &browser, &viewer, &HashMap::new(), shown, f.status).await
}

/// `POST /billing/checkout`: opens the payment provider's checkout for the amount typed and
/// sends the person there; a refusal (amount, no provider, provider down) shows on the form.
pub async fn checkout(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let caller = browser.caller.with_csrf(data.csrf());
    let body = json!({"amount": usd_typed(data.get("amount"))});
    let reply = web.api.post(&caller, "/api/v1/billing/checkout", &body).await?;
    if reply.ok() {
        let opened: Value = reply.into_json()?;
        let url = opened["url"].as_str().unwrap_or("/billing").to_string();
        return Ok(see_other(&url));
    }
    let f = reply.failure();
    if is_csrf(&f) || (not_a_form_error(&f) && f.status != StatusCode::BAD_GATEWAY) {
        return Err(f.into());
    }
    let form = FormState::from_data(&data).fail(&f, &[], &["amount"]);
    let shown = Shown { checkout: Some(form), ..Shown::default() };
    render(&web, &browser, &viewer, &HashMap::new(), shown, f.status).await
}

#[derive(Template)]
#[template(path = "test_checkout.html")]
struct TestCheckoutTemplate {
    chrome: Chrome,
    id: String,
    amount: String,
    /// Whether this is an open test checkout that can be paid here.
    payable: bool,
    /// Why not, when it is not.
    why_not: String,
}

/// `GET /billing/test-checkout/{payment}`: the local provider's checkout page. It says
/// plainly that it is a test payment: no card is asked for and none is charged.
pub async fn test_checkout(State(web): State<Web>, browser: Browser, Path(id): Path<String>) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let p: Payment = web.api.read(&browser.caller, &format!("/api/v1/billing/payments/{}", segment(&id))).await?;
    let why_not = if p.provider != "local" || p.kind != "checkout" {
        "This payment is not a test payment: it is paid on the payment provider's own page.".to_string()
    } else if p.status != "open" {
        format!("This test payment is already {}.", p.status)
    } else {
        String::new()
    };
    let page = TestCheckoutTemplate {
        chrome: Chrome::new("Test payment", "billing", Some(&viewer)),
        payable: why_not.is_empty(),
        id: p.id,
        amount: format::money(&p.amount),
        why_not,
    };
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /billing/test-checkout/{payment}`: confirms the test payment (its signed webhooks
/// go through the same path as a real provider's) and goes back to Billing, which shows
/// how it ended.
pub async fn confirm_test_checkout(
    State(web): State<Web>,
    browser: Browser,
    Path(id): Path<String>,
    data: FormData,
) -> PageResult {
    signed_in(&web, &browser).await?;
    let caller = browser.caller.with_csrf(data.csrf());
    let path = format!("/api/v1/billing/payments/{}/test-confirm", segment(&id));
    let reply = web.api.post(&caller, &path, &json!({})).await?;
    let f = if reply.ok() { None } else { Some(reply.failure()) };
    match f {
        Some(f) if f.status != StatusCode::CONFLICT => Err(f.into()),
        _ => Ok(see_other(&format!("/billing{}#add-credits", query(&[("payment", &id)])))),
    }
}
