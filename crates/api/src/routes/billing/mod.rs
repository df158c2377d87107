//! Balance, transaction history, budget, auto-recharge and operator grants; card
//! payments in [`payments`].

pub(crate) mod payments;

use crate::auth::{Auth, OrgCtx};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::views::{ErrorBody, usd};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tollgate_domain::Nanos;
use tollgate_domain::catalog::Scope;
use tollgate_domain::secret::random_token;
use tollgate_domain::time::{now_ms, rfc3339, utc_month_start};
use tollgate_store::ledger::{AccountKind, NewTransfer, PLATFORM, Transfer};
use tollgate_store::payments::RechargeSettings;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/billing/balance", get(balance))
        .route("/billing/transactions", get(transactions))
        .route("/billing/budget", put(set_budget))
        .route("/billing/auto-recharge", put(set_auto_recharge))
        .route("/admin/orgs/{org}/grants", post(admin_grant))
        .merge(payments::routes())
}

/// An org's credits.
#[derive(Serialize, ToSchema)]
pub struct BalanceView {
    /// Credits in USD, e.g. `"99.998200"`.
    pub balance: String,
    /// Balance minus open holds (calls in flight).
    pub available: String,
    pub pending: String,
    pub currency: String,
    /// Monthly spending limit, if set.
    pub monthly_budget: Option<String>,
    /// Spent on agents since the first of this month (UTC).
    pub spent_this_month: String,
    /// Auto-recharge settings, if set.
    pub auto_recharge: Option<serde_json::Value>,
    /// What auto-recharge has done: the recharge in flight, the last one, failures.
    pub recharge_status: RechargeStatusView,
    /// How credits are bought on this instance.
    pub card_payments: CardPaymentsView,
}

/// Auto-recharge's record.
#[derive(Serialize, ToSchema)]
pub struct RechargeStatusView {
    /// A recharge is being charged now.
    pub in_flight: bool,
    pub last_recharge_at: Option<String>,
    pub last_recharge_amount: Option<String>,
    /// Why the last failed recharge failed.
    pub last_failure: Option<String>,
    pub last_failure_at: Option<String>,
    /// Failed recharges since the last one that succeeded.
    pub failures: i64,
    /// Auto-recharged since the first of this month (UTC).
    pub this_month: String,
}

/// Card payments on this instance.
#[derive(Serialize, ToSchema)]
pub struct CardPaymentsView {
    /// `stripe` or `local` (test payments, no card charged); null when card payments are
    /// not set up and credits come only from grants.
    pub provider: Option<String>,
    /// The smallest and largest purchase, USD.
    pub min_amount: String,
    pub max_amount: String,
    /// A card is saved for this org (auto-recharge charges it).
    pub card_on_file: bool,
}

#[utoipa::path(get, path = "/api/v1/billing/balance", tag = "billing",
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)")),
    responses((status = 200, body = BalanceView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn balance(State(state): State<AppState>, c: OrgCtx) -> ApiResult<Json<BalanceView>> {
    c.auth.require(Scope::BillingRead)?;
    // A read never creates the account (that would take the write connection); every org
    // gets one at sign-up, and one without is empty.
    let account = state.store.find_ledger_account(AccountKind::OrgCredit, &c.org.id).await?.unwrap_or_default();
    let month = utc_month_start(now_ms());
    let spent = state.store.spend_since(&account.id, month).await?;
    let status = state.store.recharge_status(&c.org.id, month).await?;
    let provider = state.payments.as_ref().map(|p| p.name());
    let card_on_file = match provider {
        Some(name) => state.store.payment_method(&c.org.id, name).await?.is_some_and(|m| m.payment_method.is_some()),
        None => false,
    };
    Ok(Json(BalanceView {
        balance: usd(account.balance),
        available: usd(account.available()),
        pending: usd(account.pending),
        currency: "USD".into(),
        monthly_budget: c.org.monthly_budget.map(usd),
        spent_this_month: usd(spent),
        auto_recharge: c.org.auto_recharge.as_deref().and_then(|s| serde_json::from_str(s).ok()),
        recharge_status: RechargeStatusView {
            in_flight: status.in_flight.is_some(),
            last_recharge_at: status.last_success.as_ref().map(|p| rfc3339(p.updated_at)),
            last_recharge_amount: status.last_success.as_ref().map(|p| usd(p.amount)),
            last_failure: status.last_failure.as_ref().and_then(|p| p.failure.clone()),
            last_failure_at: status.last_failure.as_ref().map(|p| rfc3339(p.updated_at)),
            failures: status.failures,
            this_month: usd(status.this_month),
        },
        card_payments: CardPaymentsView {
            provider: provider.map(str::to_string),
            min_amount: usd(state.config.purchase_min),
            max_amount: usd(state.config.purchase_max),
            card_on_file,
        },
    }))
}

/// One line of the transaction history, from the org's point of view.
#[derive(Serialize, ToSchema)]
pub struct TransactionView {
    pub id: String,
    /// `signup_grant`, `grant`, `charge`, `platform_fee`, `payment`, …
    pub kind: String,
    /// Signed USD: positive adds credits, negative spends them.
    pub amount: String,
    pub memo: String,
    pub created_at: String,
}

/// A page of transactions.
#[derive(Serialize, ToSchema)]
pub struct TransactionPage {
    pub transactions: Vec<TransactionView>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

/// The last page number a query may ask for.
const MAX_PAGE: i64 = 100_000;

/// Paging.
#[derive(Deserialize)]
pub(crate) struct PageQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/billing/transactions", tag = "billing",
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)"),
           ("page" = Option<i64>, Query, description = "From 1"), ("per_page" = Option<i64>, Query, description = "1–100, default 25")),
    responses((status = 200, body = TransactionPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn transactions(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<TransactionPage>> {
    c.auth.require(Scope::BillingRead)?;
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(25);
    if !(1..=MAX_PAGE).contains(&page) || !(1..=100).contains(&per_page) {
        return Err(ApiError::invalid(
            "page",
            format!("page is between 1 and {MAX_PAGE} and per_page is between 1 and 100"),
        ));
    }
    let Some(account) = state.store.find_ledger_account(AccountKind::OrgCredit, &c.org.id).await? else {
        return Ok(Json(TransactionPage { transactions: Vec::new(), page, per_page, total: 0 }));
    };
    let rows = state.store.account_transfers(&account.id, per_page, (page - 1) * per_page).await?;
    let view = |t: &Transfer| TransactionView {
        id: t.id.clone(),
        kind: t.kind.clone(),
        amount: usd(if t.debit_account_id == account.id { Nanos(-t.amount.0) } else { t.amount }),
        memo: t.memo.clone(),
        created_at: rfc3339(t.created_at),
    };
    Ok(Json(TransactionPage {
        transactions: rows.iter().map(view).collect(),
        page,
        per_page,
        total: state.store.count_account_transfers(&account.id).await?,
    }))
}

fn parse_usd(field: &str, text: &str) -> ApiResult<Nanos> {
    Nanos::parse_usd(text).map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// A monthly spending limit in USD; null removes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetRequest {
    pub monthly_limit: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/billing/budget", tag = "billing", request_body = BudgetRequest,
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)")),
    responses((status = 200, body = BalanceView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn set_budget(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiJson(req): ApiJson<BudgetRequest>,
) -> ApiResult<Json<BalanceView>> {
    c.auth.require(Scope::BillingWrite)?;
    c.require_admin()?;
    let limit = req.monthly_limit.as_deref().map(|t| parse_usd("monthly_limit", t)).transpose()?;
    state.store.set_budget(&c.org.id, limit).await?;
    let org = state.store.org(&c.org.id).await?;
    balance(State(state), OrgCtx { org, ..c }).await
}

/// Auto-recharge: when the balance falls below `threshold`, buy `amount` with the card
/// saved at the org's last card purchase, at most `monthly_limit` a month.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoRechargeRequest {
    pub enabled: bool,
    /// USD, e.g. `"10.00"`.
    pub threshold: String,
    /// USD, whole cents within the purchase limits (by default `"5.00"` to `"10000.00"`).
    pub amount: String,
    /// USD; at most this much auto-recharged per calendar month (UTC). Null or absent:
    /// no limit.
    #[serde(default)]
    pub monthly_limit: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/billing/auto-recharge", tag = "billing", request_body = AutoRechargeRequest,
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)")),
    responses((status = 200, body = BalanceView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn set_auto_recharge(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiJson(req): ApiJson<AutoRechargeRequest>,
) -> ApiResult<Json<BalanceView>> {
    c.auth.require(Scope::BillingWrite)?;
    c.require_admin()?;
    let threshold = parse_usd("threshold", &req.threshold)?;
    let amount = parse_usd("amount", &req.amount)?;
    crate::payments::check_amount(&state, "amount", amount)?;
    let monthly_limit = req.monthly_limit.as_deref().map(|t| parse_usd("monthly_limit", t)).transpose()?;
    if monthly_limit.is_some_and(|limit| limit < amount) {
        return Err(ApiError::invalid("monthly_limit", "must be at least the amount of one recharge"));
    }
    let mut json = serde_json::json!({"enabled": req.enabled, "threshold": usd(threshold), "amount": usd(amount)});
    if let Some(limit) = monthly_limit {
        json["monthly_limit"] = usd(limit).into();
    }
    let settings = RechargeSettings { enabled: req.enabled, threshold, amount, monthly_limit };
    state.store.set_recharge(&c.org.id, &json.to_string(), &settings).await?;
    let org = state.store.org(&c.org.id).await?;
    balance(State(state), OrgCtx { org, ..c }).await
}

/// Adds `amount` of free credits to an org from the platform's grants account, once per
/// `idempotency_key`. Shared by the operator API and `tollgate admin grant-credits`.
pub async fn grant_credits(
    state: &AppState,
    org_id: &str,
    amount: Nanos,
    memo: &str,
    idempotency_key: &str,
) -> ApiResult<Transfer> {
    if amount.0 <= 0 {
        return Err(ApiError::invalid("amount", "must be more than 0"));
    }
    state.store.org(org_id).await.map_err(|_| ApiError::NotFound("organization"))?;
    let credit = state.store.ledger_account(AccountKind::OrgCredit, org_id).await?;
    let grants = state.store.ledger_account(AccountKind::Grants, PLATFORM).await?;
    let transfer = state
        .store
        .transfer(&NewTransfer {
            idempotency_key,
            debit_account_id: &grants.id,
            credit_account_id: &credit.id,
            amount,
            kind: "grant",
            memo,
            allow_overdraft: true,
        })
        .await?;
    tracing::info!(org.id = %org_id, transfer.id = %transfer.id, "credits granted");
    Ok(transfer)
}

/// An operator's grant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// USD, e.g. `"25.00"`.
    pub amount: String,
    #[serde(default)]
    pub memo: Option<String>,
    /// Makes a retried grant harmless; a random one is used when absent.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/admin/orgs/{org}/grants", tag = "admin", request_body = GrantRequest,
    responses((status = 201, body = TransactionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn admin_grant(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<GrantRequest>,
) -> ApiResult<(StatusCode, Json<TransactionView>)> {
    auth.require(Scope::BillingWrite)?;
    auth.require_operator()?;
    let amount = parse_usd("amount", &req.amount)?;
    let key = match req.idempotency_key {
        Some(k) if !k.is_empty() && k.len() <= 200 => format!("grant:{k}"),
        Some(_) => return Err(ApiError::invalid("idempotency_key", "must be 1–200 characters")),
        None => format!("grant:{}", random_token(24)?),
    };
    let memo = req.memo.unwrap_or_else(|| "Operator grant".into());
    let t = grant_credits(&state, &org, amount, &memo, &key).await?;
    Ok((
        StatusCode::CREATED,
        Json(TransactionView {
            id: t.id,
            kind: t.kind,
            amount: usd(t.amount),
            memo: t.memo,
            created_at: rfc3339(t.created_at),
        }),
    ))
}
