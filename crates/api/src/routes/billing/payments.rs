//! Buying credits by card: `POST /billing/checkout` opens the provider's checkout,
//! `POST /billing/webhooks/{provider}` is where the provider says what was paid,
//! `GET /billing/payments[/{id}]` shows card payments, and
//! `POST /billing/payments/{id}/test-confirm` confirms a test checkout of the local
//! provider (its signed webhooks then take the same path as the provider's).

use crate::auth::{Auth, OrgCtx, org_ctx};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::payments::{self, Received};
use crate::state::AppState;
use crate::views::{ErrorBody, usd};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tollgate_domain::Nanos;
use tollgate_domain::catalog::Scope;
use tollgate_domain::time::rfc3339;
use tollgate_store::payments::Payment;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/billing/checkout", post(checkout))
        .route("/billing/payments", get(list_payments))
        .route("/billing/payments/{id}", get(get_payment))
        .route("/billing/payments/{id}/test-confirm", post(test_confirm))
        .route("/billing/webhooks/{provider}", post(webhook))
}

/// Card payments' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(checkout, list_payments, get_payment, test_confirm, webhook))]
pub(crate) struct PaymentsApi;

/// A card payment: a purchase, or an auto-recharge.
#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    pub id: String,
    /// `checkout` (a purchase) or `recharge` (auto-recharge).
    pub kind: String,
    /// `stripe` or `local` (a test payment: no card charged).
    pub provider: String,
    /// USD.
    pub amount: String,
    /// `open` (waiting for the provider), `succeeded` (credited), `failed` or `canceled`.
    pub status: String,
    /// Why it failed.
    pub failure: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        PaymentView {
            id: p.id.clone(),
            kind: p.kind.clone(),
            provider: p.provider.clone(),
            amount: usd(p.amount),
            status: p.status.clone(),
            failure: p.failure.clone(),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

/// A purchase of credits.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// USD in whole cents, within the purchase limits (by default `"5.00"` to `"10000.00"`).
    pub amount: String,
}

/// A checkout opened at the provider.
#[derive(Serialize, ToSchema)]
pub struct CheckoutView {
    /// The payment's id: `GET /api/v1/billing/payments/{id}` tells how it ended.
    pub id: String,
    /// The provider's page to send the person to.
    pub url: String,
    pub amount: String,
    pub provider: String,
}

#[utoipa::path(post, path = "/api/v1/billing/checkout", tag = "billing", request_body = CheckoutRequest,
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)")),
    responses((status = 201, body = CheckoutView), (status = 403, body = ErrorBody, description = "Not an owner or admin"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Card payments are not set up"),
              (status = 422, body = ErrorBody), (status = 502, body = ErrorBody, description = "The payment provider failed; nothing was charged")))]
pub(crate) async fn checkout(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiJson(req): ApiJson<CheckoutRequest>,
) -> ApiResult<(StatusCode, Json<CheckoutView>)> {
    c.auth.require(Scope::BillingWrite)?;
    c.require_admin()?;
    let amount = Nanos::parse_usd(&req.amount).map_err(|e| ApiError::invalid("amount", e.to_string()))?;
    let (payment, url) = payments::start_checkout(&state, &c.org, &c.auth.user, amount).await?;
    Ok((
        StatusCode::CREATED,
        Json(CheckoutView { id: payment.id, url, amount: usd(payment.amount), provider: payment.provider }),
    ))
}

/// Paging of card payments.
#[derive(Deserialize)]
pub(crate) struct PaymentsQuery {
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/billing/payments", tag = "billing",
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)"),
           ("limit" = Option<i64>, Query, description = "1–100, default 20")),
    responses((status = 200, body = Vec<PaymentView>, description = "The org's card payments, newest first"),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn list_payments(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiQuery(q): ApiQuery<PaymentsQuery>,
) -> ApiResult<Json<Vec<PaymentView>>> {
    c.auth.require(Scope::BillingRead)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let list = state.store.org_payments(&c.org.id, limit).await?;
    Ok(Json(list.iter().map(PaymentView::from).collect()))
}

/// A payment of an org the caller belongs to; anyone else gets 404.
async fn member_payment(state: &AppState, auth: Auth, id: &str) -> ApiResult<(OrgCtx, Payment)> {
    let payment = state.store.payment(id).await.map_err(|_| ApiError::NotFound("payment"))?;
    let c = org_ctx(state, auth, &payment.org_id).await.map_err(|_| ApiError::NotFound("payment"))?;
    Ok((c, payment))
}

#[utoipa::path(get, path = "/api/v1/billing/payments/{id}", tag = "billing",
    responses((status = 200, body = PaymentView), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_payment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PaymentView>> {
    auth.require(Scope::BillingRead)?;
    let (_, payment) = member_payment(&state, auth, &id).await?;
    Ok(Json((&payment).into()))
}

#[utoipa::path(post, path = "/api/v1/billing/payments/{id}/test-confirm", tag = "billing",
    responses((status = 200, body = PaymentView, description = "Paid: the test payment's webhooks were applied"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "No such test checkout (or the local provider is not the one configured)"),
              (status = 409, body = ErrorBody, description = "The payment is no longer open")))]
pub(crate) async fn test_confirm(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PaymentView>> {
    auth.require(Scope::BillingWrite)?;
    let (c, payment) = member_payment(&state, auth, &id).await?;
    c.require_admin()?;
    payments::confirm_test_checkout(&state, &payment).await?;
    Ok(Json((&state.store.payment(&payment.id).await?).into()))
}

/// How a webhook was taken.
#[derive(Serialize, ToSchema)]
pub struct WebhookReply {
    pub received: bool,
    /// Whether it changed anything (false for a repeat or an event not acted on).
    pub applied: bool,
}

#[utoipa::path(post, path = "/api/v1/billing/webhooks/{provider}", tag = "billing",
    params(("provider" = String, Path, description = "`stripe` (or `local`): the provider configured"),
           ("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">`")),
    request_body(content = String, description = "The provider's event, as sent", content_type = "application/json"),
    responses((status = 200, body = WebhookReply), (status = 400, body = ErrorBody, description = "Unsigned, forged, stale or malformed: nothing changed"),
              (status = 404, body = ErrorBody, description = "Not the provider configured"),
              (status = 422, body = ErrorBody, description = "The event disagrees with the payment it names: nothing changed")))]
pub(crate) async fn webhook(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookReply>> {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let received = payments::receive_webhook(&state, &provider, signature, &body).await?;
    Ok(Json(WebhookReply { received: true, applied: received == Received::Applied }))
}
