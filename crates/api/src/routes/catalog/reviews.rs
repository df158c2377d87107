//! Reviews: one per user per agent, public, signed with the author's display name.

use super::views::{RatingView, ReviewPage, ReviewView};
use super::{missing, page_number};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views::ErrorBody;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use tollgate_domain::catalog::Scope;
use tollgate_domain::time::now_ms;
use tollgate_domain::validate;
use tollgate_store::StoreError;
use utoipa::ToSchema;

/// Reviews per page.
const PER_PAGE: i64 = 10;

/// A review.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// 1–5 stars.
    pub rating: i64,
    /// Up to 5,000 characters.
    pub body: String,
}

impl ReviewRequest {
    fn check(&self) -> ApiResult<(i64, String)> {
        if !(1..=5).contains(&self.rating) {
            return Err(ApiError::invalid("rating", "must be a whole number of stars from 1 to 5"));
        }
        Ok((self.rating, validate::text("body", &self.body, 5_000)?))
    }
}

#[utoipa::path(post, path = "/api/v1/agents/{slug}/reviews", tag = "reviews", request_body = ReviewRequest,
    responses((status = 201, body = ReviewView), (status = 403, body = ErrorBody, description = "Your org publishes the agent"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "You already reviewed it"),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn create_review(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> ApiResult<(StatusCode, Json<ReviewView>)> {
    auth.require(Scope::AccountWrite)?;
    let agent = state.store.listed_agent(&slug).await.map_err(missing("agent"))?.agent;
    let (rating, body) = req.check()?;
    if state.store.membership(&agent.publisher_org_id, &auth.user.id).await?.is_some() {
        return Err(ApiError::Forbidden("publishers cannot review their own agents".into()));
    }
    match state.store.create_review(&agent.id, &auth.user.id, rating, &body, now_ms()).await {
        Err(StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "already_reviewed",
            "you have already reviewed this agent; edit your review instead".into(),
        )),
        other => Ok((StatusCode::CREATED, Json(ReviewView::new(&agent.slug, &other?)))),
    }
}

#[utoipa::path(put, path = "/api/v1/agents/{slug}/reviews", tag = "reviews", request_body = ReviewRequest,
    responses((status = 200, body = ReviewView), (status = 404, body = ErrorBody, description = "No such agent, or no review of yours"),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn update_review(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> ApiResult<Json<ReviewView>> {
    auth.require(Scope::AccountWrite)?;
    let agent = state.store.agent_by_slug(&slug).await.map_err(missing("agent"))?;
    let (rating, body) = req.check()?;
    let review = state
        .store
        .update_review(&agent.id, &auth.user.id, rating, &body, now_ms())
        .await
        .map_err(missing("review"))?;
    Ok(Json(ReviewView::new(&agent.slug, &review)))
}

#[utoipa::path(delete, path = "/api/v1/agents/{slug}/reviews", tag = "reviews",
    responses((status = 204, description = "Your review is deleted"), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_review(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::AccountWrite)?;
    let agent = state.store.agent_by_slug(&slug).await.map_err(missing("agent"))?;
    state.store.delete_review(&agent.id, &auth.user.id).await.map_err(missing("review"))?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/agents/{slug}/reviews/mine", tag = "reviews",
    responses((status = 200, body = ReviewView), (status = 404, body = ErrorBody, description = "No review of yours")))]
pub(crate) async fn my_review(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> ApiResult<Json<ReviewView>> {
    auth.require(Scope::AccountRead)?;
    let agent = state.store.agent_by_slug(&slug).await.map_err(missing("agent"))?;
    let review = state.store.user_review(&agent.id, &auth.user.id).await?.ok_or(ApiError::NotFound("review"))?;
    Ok(Json(ReviewView::new(&agent.slug, &review)))
}

/// Paging.
#[derive(Deserialize)]
pub(crate) struct PageQuery {
    page: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/agents/{slug}/reviews", tag = "reviews",
    params(("page" = Option<i64>, Query, description = "From 1; 10 reviews per page")),
    responses((status = 200, body = ReviewPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn list_reviews(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ReviewPage>> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let page = page_number(query.page.as_deref())?;
    let agent = state.store.listed_agent(&slug).await.map_err(missing("agent"))?.agent;
    let rating = state.store.rating_summary(&agent.id).await?;
    let reviews = state.store.reviews(&agent.id, PER_PAGE, (page - 1) * PER_PAGE).await?;
    Ok(Json(ReviewPage {
        reviews: reviews.iter().map(|r| ReviewView::new(&agent.slug, r)).collect(),
        page,
        per_page: PER_PAGE,
        total: rating.count,
        rating: RatingView::from(&rating),
    }))
}
