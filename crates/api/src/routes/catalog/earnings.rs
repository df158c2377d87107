//! A publisher's usage and earnings: for each agent the org publishes, calls, errors,
//! latency and what the org's earnings account was credited, per version and per
//! installation. Consumers appear only as the pseudonymous install token the agent itself
//! receives (`X-Tollgate-Install`): never their org, members, keys or request ids.

use super::missing;
use crate::auth::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::routes::usage::query::{given, range_and_bucket};
use crate::state::AppState;
use crate::views::{ErrorBody, usd};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_domain::catalog::Scope;
use tollgate_domain::time::{now_ms, rfc3339};
use tollgate_store::publisher::{PublisherReport, PublisherScope, PublisherTotals};
use utoipa::ToSchema;

/// `GET /publisher/usage`.
#[derive(Deserialize, Default)]
pub(crate) struct EarningsQuery {
    agent: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
}

/// Calls, errors, latency and earnings of a set of calls.
#[derive(Serialize, ToSchema)]
pub struct EarningsTotalsView {
    pub calls: i64,
    /// Calls that failed (an error code, or an HTTP status of 400 or more); they earn nothing.
    pub errors: i64,
    /// `errors / calls`, 0–1 (0 without calls).
    pub error_rate: f64,
    /// Mean latency in ms; null without calls.
    pub average_latency_ms: Option<f64>,
    /// USD credited to the org's earnings account for these calls (the charge less the platform's fee).
    pub earnings: String,
}

impl From<&PublisherTotals> for EarningsTotalsView {
    fn from(t: &PublisherTotals) -> Self {
        EarningsTotalsView {
            calls: t.calls,
            errors: t.errors,
            error_rate: if t.calls == 0 { 0.0 } else { t.errors as f64 / t.calls as f64 },
            average_latency_ms: (t.calls > 0).then(|| t.latency_total_ms as f64 / t.calls as f64),
            earnings: usd(t.earnings),
        }
    }
}

/// One bucket of the series.
#[derive(Serialize, ToSchema)]
pub struct EarningsPointView {
    pub start: String,
    pub calls: i64,
    pub errors: i64,
    pub earnings: String,
}

/// One version's totals.
#[derive(Serialize, ToSchema)]
pub struct VersionEarningsView {
    pub version: String,
    #[serde(flatten)]
    pub totals: EarningsTotalsView,
}

/// One installation's totals, known only by its pseudonymous install token.
#[derive(Serialize, ToSchema)]
pub struct InstallEarningsView {
    pub install_token: String,
    #[serde(flatten)]
    pub totals: EarningsTotalsView,
}

/// One agent's totals.
#[derive(Serialize, ToSchema)]
pub struct AgentEarningsView {
    pub slug: String,
    pub name: String,
    /// Active installations now.
    pub installs: i64,
    #[serde(flatten)]
    pub totals: EarningsTotalsView,
    /// Versions with calls in the range.
    pub versions: Vec<VersionEarningsView>,
    /// Installations with calls in the range, highest earnings first (at most 200 over all agents).
    pub installations: Vec<InstallEarningsView>,
}

/// A publisher org's usage and earnings over a range.
#[derive(Serialize, ToSchema)]
pub struct PublisherUsageView {
    pub org_id: String,
    /// The range covered, `[from, to)`.
    pub from: String,
    pub to: String,
    /// `hour` or `day`: the width of each `series` point.
    pub bucket: String,
    #[serde(flatten)]
    pub totals: EarningsTotalsView,
    /// One point per bucket of the range, oldest first, empty buckets included.
    pub series: Vec<EarningsPointView>,
    /// Every agent the org publishes (or the one asked for), highest earnings first.
    pub agents: Vec<AgentEarningsView>,
}

impl PublisherUsageView {
    fn new(org_id: &str, from: i64, to: i64, bucket: &str, r: &PublisherReport) -> Self {
        let agents = r
            .by_agent
            .iter()
            .map(|a| AgentEarningsView {
                slug: a.slug.clone(),
                name: a.name.clone(),
                installs: a.active_installs,
                totals: (&a.totals).into(),
                versions: r
                    .by_version
                    .iter()
                    .filter(|v| v.agent_id == a.agent_id)
                    .map(|v| VersionEarningsView { version: v.version.clone(), totals: (&v.totals).into() })
                    .collect(),
                installations: r
                    .by_install
                    .iter()
                    .filter(|i| i.agent_id == a.agent_id)
                    .map(|i| InstallEarningsView { install_token: i.install_token.clone(), totals: (&i.totals).into() })
                    .collect(),
            })
            .collect();
        PublisherUsageView {
            org_id: org_id.to_string(),
            from: rfc3339(from),
            to: rfc3339(to),
            bucket: bucket.to_string(),
            totals: (&r.totals).into(),
            series: r
                .series
                .iter()
                .map(|p| EarningsPointView {
                    start: rfc3339(p.start),
                    calls: p.totals.calls,
                    errors: p.totals.errors,
                    earnings: usd(p.totals.earnings),
                })
                .collect(),
            agents,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/publisher/usage", tag = "publisher",
    params(
        ("X-Tollgate-Org" = Option<String>, Header, description = "The publishing org (default: your personal org)"),
        ("agent" = Option<String>, Query, description = "One agent of the org, by slug (default: all of them)"),
        ("from" = Option<String>, Query, description = "As for /usage: RFC 3339 time or YYYY-MM-DD (UTC), inclusive; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "As for /usage; default now"),
        ("bucket" = Option<String>, Query, description = "hour (ranges up to 31 days) or day; default hour up to 2 days, day beyond"),
    ),
    responses((status = 200, body = PublisherUsageView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "No such agent in this org"), (status = 422, body = ErrorBody)))]
pub(crate) async fn publisher_usage(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiQuery(q): ApiQuery<EarningsQuery>,
) -> ApiResult<Json<PublisherUsageView>> {
    c.auth.require(Scope::UsageRead)?;
    let (range, bucket) = range_and_bucket(given(&q.from), given(&q.to), given(&q.bucket), now_ms())?;
    let agent_id = match given(&q.agent) {
        None => None,
        Some(slug) => {
            let agent = state.store.agent_by_slug(slug).await.map_err(missing("agent"))?;
            if agent.publisher_org_id != c.org.id {
                return Err(ApiError::NotFound("agent"));
            }
            Some(agent.id)
        }
    };
    let scope = PublisherScope { org_id: c.org.id.clone(), agent_id, from: range.from, to: range.to };
    let report = state.store.publisher_report(&scope, bucket).await?;
    Ok(Json(PublisherUsageView::new(&c.org.id, range.from, range.to, bucket.as_str(), &report)))
}
