//! Usage of the caller's org (SPEC §5), or of one of its installations: the report
//! (totals, latency percentiles, series, cost split, free quota left), the audit log with
//! filters, one audit row, and the audit log as CSV.
//!
//! Every endpoint needs the `usage:read` scope and any role in the org (viewers read). An
//! installation of another org is 404, exactly like one that does not exist. As in the key
//! listing, members and viewers see the id, name and prefix of their own keys only.

mod csv;
pub(crate) mod query;
mod views;

use crate::auth::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::state::AppState;
use crate::views::ErrorBody;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use query::{AuditQuery, UsageQuery, given};
use tollgate_domain::catalog::Scope;
use tollgate_domain::time::{now_ms, rfc3339};
use tollgate_store::StoreError;
use tollgate_store::installs::Installation;
use tollgate_store::usage::UsageScope;
use views::{AuditPage, AuditRowView, FreeQuotaView, KeyVisibility, UsageView};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/usage", get(usage))
        .route("/usage/audit", get(audit))
        .route("/usage/audit.csv", get(audit_csv))
        .route("/usage/audit/{id}", get(audit_row))
}

/// The usage part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(usage, audit, audit_csv, audit_row),
    tags((name = "usage", description = "Calls, spend, latency, free quota and the audit log of your org's agent calls"))
)]
pub(crate) struct UsageApi;

/// The installation `id` of the caller's org; any other (or none) is 404.
async fn own_installation(state: &AppState, c: &OrgCtx, id: Option<&str>) -> ApiResult<Option<Installation>> {
    let Some(id) = id else { return Ok(None) };
    match state.store.installation(id).await {
        Ok(inst) if inst.org_id == c.org.id => Ok(Some(inst)),
        Ok(_) | Err(StoreError::NotFound) => Err(ApiError::NotFound("installation")),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/usage", tag = "usage",
    params(
        ("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)"),
        ("installation" = Option<String>, Query, description = "One installation of the org (default: all of them)"),
        ("from" = Option<String>, Query, description = "RFC 3339 time or YYYY-MM-DD (UTC), inclusive; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "RFC 3339 time (exclusive) or YYYY-MM-DD (through the end of that day); default now. At most 366 days after `from`"),
        ("bucket" = Option<String>, Query, description = "hour (ranges up to 31 days) or day; default hour up to 2 days, day beyond"),
    ),
    responses((status = 200, body = UsageView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "No such installation in this org"),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn usage(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<UsageView>> {
    c.auth.require(Scope::UsageRead)?;
    let now = now_ms();
    let (range, bucket) = q.range_and_bucket(now)?;
    let installation = own_installation(&state, &c, given(&q.installation)).await?;
    let scope = UsageScope {
        org_id: c.org.id.clone(),
        installation_id: installation.as_ref().map(|i| i.id.clone()),
        from: range.from,
        to: range.to,
    };
    let report = state.store.usage_report(&scope, bucket).await?;
    let installs = match &installation {
        Some(inst) => vec![inst.clone()],
        None => state.store.installations(&c.org.id, false).await?,
    };
    let mut quota = Vec::new();
    for inst in &installs {
        quota.extend(state.store.free_quota(inst, now).await?.iter().map(|q| FreeQuotaView::new(inst, q)));
    }
    Ok(Json(UsageView::new(
        &c.org.id,
        scope.installation_id.as_deref(),
        (range.from, range.to),
        bucket,
        &report,
        quota,
        &KeyVisibility::new(c.role, &c.auth.user.id),
    )))
}

#[utoipa::path(get, path = "/api/v1/usage/audit", tag = "usage",
    params(
        ("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)"),
        ("installation" = Option<String>, Query, description = "One installation of the org"),
        ("from" = Option<String>, Query, description = "As for /usage; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "As for /usage; default now"),
        ("q" = Option<String>, Query, description = "Text found, ignoring case, in the function, method, request id, key name or key prefix"),
        ("status" = Option<String>, Query, description = "success, error, or an HTTP status such as 429"),
        ("key" = Option<String>, Query, description = "A key id"),
        ("member" = Option<String>, Query, description = "A member's user id"),
        ("function" = Option<String>, Query, description = "Exactly this function"),
        ("free_tier" = Option<bool>, Query, description = "Only calls that used (true) or did not use (false) a free call"),
        ("divergent" = Option<bool>, Query, description = "Only calls flagged (true) or not flagged (false) for token divergence"),
        ("page" = Option<i64>, Query, description = "From 1"),
        ("per_page" = Option<i64>, Query, description = "1–100, default 25"),
    ),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    c.auth.require(Scope::UsageRead)?;
    let vis = KeyVisibility::new(c.role, &c.auth.user.id);
    let (filter, _) = q.filter(&c.org.id, vis.search_keys_of(), now_ms())?;
    let (page, per_page) = q.page()?;
    own_installation(&state, &c, given(&q.installation)).await?;
    let (rows, total) = state.store.audit_page(&filter, per_page, (page - 1) * per_page).await?;
    let rows = rows.iter().map(|r| AuditRowView::new(r, &vis)).collect();
    Ok(Json(AuditPage { rows, page, per_page, total }))
}

#[utoipa::path(get, path = "/api/v1/usage/audit/{id}", tag = "usage",
    params(("id" = String, Path, description = "The call's request id"),
           ("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)")),
    responses((status = 200, body = AuditRowView), (status = 404, body = ErrorBody, description = "No such call in this org")))]
pub(crate) async fn audit_row(
    State(state): State<AppState>,
    c: OrgCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<AuditRowView>> {
    c.auth.require(Scope::UsageRead)?;
    let row = state.store.audit_row(&c.org.id, &id).await?.ok_or(ApiError::NotFound("call"))?;
    Ok(Json(AuditRowView::new(&row, &KeyVisibility::new(c.role, &c.auth.user.id))))
}

#[utoipa::path(get, path = "/api/v1/usage/audit.csv", tag = "usage",
    params(
        ("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)"),
        ("from" = Option<String>, Query, description = "As for /usage; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "As for /usage; default now"),
        ("installation" = Option<String>, Query, description = "One installation of the org"),
        ("q" = Option<String>, Query, description = "The filters of /usage/audit also apply"),
    ),
    responses(
        (status = 200, content_type = "text/csv", body = String,
         description = "A header row and one row per call, newest first, at most 50,000 rows. \
         `X-Tollgate-Export-Rows` gives the count; `X-Tollgate-Export-Truncated: true` means older rows were left out."),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn audit_csv(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    c.auth.require(Scope::UsageRead)?;
    let vis = KeyVisibility::new(c.role, &c.auth.user.id);
    let (filter, range) = q.filter(&c.org.id, vis.search_keys_of(), now_ms())?;
    own_installation(&state, &c, given(&q.installation)).await?;
    let export = csv::export(&state.store, &filter, &vis).await?;
    let day = |ms: i64| rfc3339(ms).chars().take(10).collect::<String>();
    let filename = format!("tollgate-usage-{}-to-{}.csv", day(range.from), day(range.to - 1));
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        (header::HeaderName::from_static("x-tollgate-export-rows"), export.rows.to_string()),
        (header::HeaderName::from_static("x-tollgate-export-truncated"), export.truncated.to_string()),
    ];
    Ok((headers, export.body).into_response())
}
