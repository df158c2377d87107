//! The store: public listing, search, filters, sorting, and an agent's detail page.

use super::views::{AgentDetailView, CardView, StorePage};
use super::{missing, page_number};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::ErrorBody;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use tollgate_domain::catalog::Protocol;
use tollgate_domain::publish;
use tollgate_store::catalog::{MAX_SEARCH_TERMS, StoreFilter, StoreSort};

/// Agents per store page.
pub const PER_PAGE: i64 = 12;
/// The detail page shows this many recent reviews.
const RECENT_REVIEWS: i64 = 5;

/// The store's query string. Every parameter is optional; empty means "any".
#[derive(Deserialize, Default)]
pub(crate) struct StoreQuery {
    q: Option<String>,
    category: Option<String>,
    platform: Option<String>,
    capability: Option<String>,
    protocol: Option<String>,
    min_trust: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

/// A query parameter that is present and not blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn label(field: &str, value: &Option<String>) -> ApiResult<Option<String>> {
    match given(value) {
        Some(v) if v.chars().count() > 100 => Err(ApiError::invalid(field, "must be at most 100 characters")),
        other => Ok(other.map(str::to_string)),
    }
}

impl StoreQuery {
    /// The checked filter for page `page`.
    fn filter(&self) -> ApiResult<(StoreFilter, i64)> {
        let terms: Vec<String> =
            given(&self.q).map(|q| q.split_whitespace().map(str::to_lowercase).collect()).unwrap_or_default();
        if terms.len() > MAX_SEARCH_TERMS || terms.iter().any(|t| t.chars().count() > 100) {
            return Err(ApiError::invalid(
                "q",
                format!("takes at most {MAX_SEARCH_TERMS} words of up to 100 characters"),
            ));
        }
        let protocol = given(&self.protocol)
            .map(|p| Protocol::parse(p).ok_or_else(|| ApiError::invalid("protocol", "must be \"mcp\" or \"a2a\"")))
            .transpose()?;
        let min_trust = given(&self.min_trust)
            .map(|t| t.parse::<i64>().ok().filter(|t| (0..=100).contains(t)))
            .map(|t| t.ok_or_else(|| ApiError::invalid("min_trust", "must be a whole number from 0 to 100")))
            .transpose()?;
        let sort = match given(&self.sort) {
            None | Some("popular") => StoreSort::Popular,
            Some("newest") => StoreSort::Newest,
            Some("top_rated") => StoreSort::TopRated,
            Some(_) => {
                return Err(ApiError::invalid("sort", "must be \"popular\", \"newest\" or \"top_rated\""));
            }
        };
        let page = page_number(self.page.as_deref())?;
        let filter = StoreFilter {
            terms,
            category: given(&self.category).map(|c| publish::category("category", c)).transpose()?,
            platform: label("platform", &self.platform)?,
            capability: label("capability", &self.capability)?,
            protocol: protocol.map(|p| p.as_str().to_string()),
            min_trust: min_trust.unwrap_or(0),
            sort,
            limit: PER_PAGE,
            offset: (page - 1) * PER_PAGE,
        };
        Ok((filter, page))
    }
}

#[utoipa::path(get, path = "/api/v1/store/agents", tag = "store",
    params(
        ("q" = Option<String>, Query, description = "Words that must all appear in the name, publisher, description or tags"),
        ("category" = Option<String>, Query, description = "E.g. devtools"),
        ("platform" = Option<String>, Query, description = "A client platform the agent lists, e.g. Cursor"),
        ("capability" = Option<String>, Query, description = "A capability the agent lists, e.g. reasoning"),
        ("protocol" = Option<String>, Query, description = "mcp or a2a"),
        ("min_trust" = Option<i64>, Query, description = "Lowest trust score, 0–100"),
        ("sort" = Option<String>, Query, description = "popular (default, most installs), newest or top_rated"),
        ("page" = Option<i64>, Query, description = "From 1; 12 agents per page"),
    ),
    responses((status = 200, body = StorePage), (status = 422, body = ErrorBody)))]
pub(crate) async fn store_agents(
    State(state): State<AppState>,
    query: Result<Query<StoreQuery>, QueryRejection>,
) -> ApiResult<Json<StorePage>> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let (filter, page) = query.filter()?;
    let (agents, total) = state.store.store_agents(&filter).await?;
    Ok(Json(StorePage { agents: agents.iter().map(CardView::from).collect(), page, per_page: PER_PAGE, total }))
}

#[utoipa::path(get, path = "/api/v1/store/agents/{slug}", tag = "store",
    responses((status = 200, body = AgentDetailView), (status = 404, body = ErrorBody)))]
pub(crate) async fn store_agent(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<AgentDetailView>> {
    let listed = state.store.listed_agent(&slug).await.map_err(missing("agent"))?;
    let rating = state.store.rating_summary(&listed.agent.id).await?;
    let reviews = state.store.reviews(&listed.agent.id, RECENT_REVIEWS, 0).await?;
    Ok(Json(AgentDetailView::new(&listed, &rating, &reviews, &state.config.public_url)))
}
