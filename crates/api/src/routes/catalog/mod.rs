//! Publishing (agents, versions), the store, and reviews.
//!
//! Publisher endpoints act in the agent's publisher org: anyone else gets 404, as if the
//! agent did not exist. The store and review lists are public. Upstream headers are
//! write-only: sealed on the way in and never part of any response.

mod earnings;
/// Also publishing without HTTP (`list_agent`, `publish_version`) for the demo seeder and the CLI.
pub(crate) mod publish;
mod reviews;
mod storefront;
mod views;

use crate::auth::{Auth, OrgCtx, org_ctx};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::routing::{get, patch, post};
use tollgate_store::StoreError;
use tollgate_store::catalog::Agent;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/agents", post(publish::create_agent).get(publish::list_agents))
        .route("/agents/{slug}", get(publish::get_agent).patch(publish::update_agent))
        .route("/agents/{slug}/versions", post(publish::create_version))
        .route("/agents/{slug}/versions/{version}", patch(publish::update_version))
        .route(
            "/agents/{slug}/reviews",
            get(reviews::list_reviews)
                .post(reviews::create_review)
                .put(reviews::update_review)
                .delete(reviews::delete_review),
        )
        .route("/agents/{slug}/reviews/mine", get(reviews::my_review))
        .route("/publisher/usage", get(earnings::publisher_usage))
        .route("/store/agents", get(storefront::store_agents))
        .route("/store/agents/{slug}", get(storefront::store_agent))
}

/// The catalog's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        publish::create_agent, publish::list_agents, publish::get_agent, publish::update_agent,
        publish::create_version, publish::update_version, earnings::publisher_usage,
        storefront::store_agents, storefront::store_agent,
        reviews::list_reviews, reviews::create_review, reviews::update_review, reviews::delete_review,
        reviews::my_review,
    ),
    tags(
        (name = "publisher", description = "List agents and publish versions with immutable pricing"),
        (name = "store", description = "Browse listed agents; no authentication needed"),
        (name = "reviews", description = "One review per user per agent"),
    )
)]
pub(crate) struct CatalogApi;

/// Maps a storage miss to a 404 for `what`; other errors stay what they are.
fn missing(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
}

/// The agent `slug` and the caller acting in its publisher org. Anyone who is not a
/// member gets 404, exactly as for an agent that does not exist.
async fn publisher_agent(state: &AppState, auth: Auth, slug: &str) -> ApiResult<(OrgCtx, Agent)> {
    let agent = state.store.agent_by_slug(slug).await.map_err(missing("agent"))?;
    match org_ctx(state, auth, &agent.publisher_org_id).await {
        Ok(c) => Ok((c, agent)),
        Err(ApiError::NotFound(_)) => Err(ApiError::NotFound("agent")),
        Err(other) => Err(other),
    }
}

/// A page number from a query string: empty or absent is 1.
fn page_number(raw: Option<&str>) -> ApiResult<i64> {
    match raw.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(1),
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| ApiError::invalid("page", "must be a whole number from 1 to 100000")),
    }
}
