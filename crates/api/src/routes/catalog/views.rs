//! What the catalog endpoints accept and return. Prices are USD decimal strings in the
//! form of `Pricing::to_api`; upstream headers are never part of any of these.

use crate::views::usd;
use serde::{Deserialize, Serialize};
use tollgate_domain::pricing::{FreeReset, FunctionPrice};
use tollgate_domain::publish::Support;
use tollgate_domain::time::rfc3339;
use tollgate_domain::trust::Governance;
use tollgate_store::catalog::{Agent, Dependency, Listed, RatingSummary, Review, Version};
use utoipa::ToSchema;

/// A function's pricing (USD decimal strings): per million tokens or per request.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum PricingDoc {
    PerToken { input_per_million: String, output_per_million: String, cache_per_million: String },
    PerRequest { price: String },
}

/// The data-governance declaration (the Data & privacy tab).
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct GovernanceBody {
    /// Kinds of data the agent collects, e.g. "prompts". Empty = not declared, unless
    /// `collects_no_data` is true.
    #[serde(default)]
    pub data_collected: Vec<String>,
    /// The agent collects no data (declared; `data_collected` must then be empty).
    #[serde(default)]
    pub collects_no_data: bool,
    /// Where data is stored, e.g. "eu-west-1".
    #[serde(default)]
    pub storage_region: Option<String>,
    /// Who stores it, e.g. "AWS".
    #[serde(default)]
    pub storage_provider: Option<String>,
    /// Days data is kept (0 = not retained).
    #[serde(default)]
    pub retention_days: Option<i64>,
    /// Whether user data trains models; null = not declared.
    #[serde(default)]
    pub training_use: Option<bool>,
    /// Any of `gdpr`, `soc2`, `hipaa`.
    #[serde(default)]
    pub compliance: Vec<String>,
    /// E.g. "encryption at rest".
    #[serde(default)]
    pub security_measures: Vec<String>,
}

impl From<GovernanceBody> for Governance {
    fn from(g: GovernanceBody) -> Self {
        Governance {
            data_collected: g.data_collected,
            collects_no_data: g.collects_no_data,
            storage_region: g.storage_region,
            storage_provider: g.storage_provider,
            retention_days: g.retention_days,
            training_use: g.training_use,
            compliance: g.compliance,
            security_measures: g.security_measures,
        }
    }
}

impl From<&Governance> for GovernanceBody {
    fn from(g: &Governance) -> Self {
        GovernanceBody {
            data_collected: g.data_collected.clone(),
            collects_no_data: g.collects_no_data,
            storage_region: g.storage_region.clone(),
            storage_provider: g.storage_provider.clone(),
            retention_days: g.retention_days,
            training_use: g.training_use,
            compliance: g.compliance.clone(),
            security_measures: g.security_measures.clone(),
        }
    }
}

/// Support contacts (the Support tab).
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SupportBody {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub docs_url: Option<String>,
}

impl From<SupportBody> for Support {
    fn from(s: SupportBody) -> Self {
        Support { email: s.email, url: s.url, docs_url: s.docs_url }
    }
}

impl From<&Support> for SupportBody {
    fn from(s: &Support) -> Self {
        SupportBody { email: s.email.clone(), url: s.url.clone(), docs_url: s.docs_url.clone() }
    }
}

/// A dependency on another (MCP) agent.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DependencyBody {
    /// The agent's slug.
    pub agent: String,
    /// A version of it, or `latest` (the default).
    #[serde(default = "latest")]
    pub version: String,
}

fn latest() -> String {
    "latest".into()
}

impl From<&Dependency> for DependencyBody {
    fn from(d: &Dependency) -> Self {
        DependencyBody { agent: d.agent.clone(), version: d.version.clone() }
    }
}

/// A priced function of a version (the Integration tab).
#[derive(Serialize, ToSchema)]
pub struct FunctionView {
    pub name: String,
    #[schema(value_type = PricingDoc)]
    pub pricing: serde_json::Value,
    /// Free successful calls per organization.
    pub free_calls: i64,
    /// `lifetime` or `monthly`.
    pub free_reset: String,
    /// Whether the function has free calls.
    pub freemium: bool,
}

impl From<&FunctionPrice> for FunctionView {
    fn from(f: &FunctionPrice) -> Self {
        FunctionView {
            name: f.name.clone(),
            pricing: f.pricing.to_api(),
            free_calls: f.free_calls,
            free_reset: match f.free_reset {
                FreeReset::Lifetime => "lifetime",
                FreeReset::Monthly => "monthly",
            }
            .into(),
            freemium: f.free_calls > 0,
        }
    }
}

/// A published version as anyone may see it: never its upstream.
#[derive(Serialize, ToSchema)]
pub struct VersionView {
    pub version: String,
    /// `active`, `deprecated` or `retired`.
    pub status: String,
    /// `mcp` or `a2a`.
    pub protocol: String,
    /// The gateway URL to call this version at.
    pub endpoint: String,
    /// USD charged for utility calls (initialize, tools/list, ping, …).
    pub base_fee: String,
    pub functions: Vec<FunctionView>,
    /// Pricing of functions not listed, if any.
    #[schema(value_type = Option<PricingDoc>)]
    pub default_pricing: Option<serde_json::Value>,
    pub dependencies: Vec<DependencyBody>,
    /// The task-token timeout for dependency calls (A2A).
    pub task_timeout_seconds: i64,
    /// The upstream may take seconds to wake up on a first call.
    pub cold_start: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl VersionView {
    /// The view of `v` of agent `a`, reached through the gateway at `public_url`.
    pub fn new(a: &Agent, v: &Version, public_url: &str) -> Self {
        VersionView {
            version: v.version.clone(),
            status: v.status.clone(),
            protocol: a.protocol.clone(),
            endpoint: format!("{}/{}/{}/{}", public_url.trim_end_matches('/'), a.slug, v.version, a.protocol),
            base_fee: usd(v.base_fee),
            functions: v.functions.iter().map(FunctionView::from).collect(),
            default_pricing: v.default_pricing.as_ref().map(|p| p.to_api()),
            dependencies: v.dependencies.iter().map(DependencyBody::from).collect(),
            task_timeout_seconds: v.task_timeout_seconds,
            cold_start: v.cold_start,
            created_at: rfc3339(v.created_at),
            updated_at: rfc3339(v.updated_at),
        }
    }
}

/// A version as its publisher sees it: also where the gateway forwards to. The upstream
/// headers are write-only.
#[derive(Serialize, ToSchema)]
pub struct PublisherVersionView {
    #[serde(flatten)]
    pub version: VersionView,
    pub upstream_url: String,
    /// Whether upstream headers (a credential) are configured; their values are never shown.
    pub has_upstream_headers: bool,
}

impl PublisherVersionView {
    pub fn new(a: &Agent, v: &Version, public_url: &str) -> Self {
        PublisherVersionView {
            version: VersionView::new(a, v, public_url),
            upstream_url: v.upstream_url.clone(),
            has_upstream_headers: v.upstream_headers_sealed.is_some(),
        }
    }
}

/// An agent as its publisher sees it, with every version (retired ones too).
#[derive(Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub slug: String,
    pub publisher_org_id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub protocol: String,
    pub platforms: Vec<String>,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub use_cases: Vec<String>,
    pub governance: GovernanceBody,
    /// 0–100, computed from the governance declaration.
    pub trust_score: i64,
    pub support: SupportBody,
    /// Shown in the store: at least one version is not retired.
    pub listed: bool,
    pub versions: Vec<PublisherVersionView>,
    pub created_at: String,
    pub updated_at: String,
}

impl AgentView {
    pub fn new(a: &Agent, versions: &[Version], public_url: &str) -> Self {
        AgentView {
            id: a.id.clone(),
            slug: a.slug.clone(),
            publisher_org_id: a.publisher_org_id.clone(),
            name: a.name.clone(),
            description: a.description.clone(),
            category: a.category.clone(),
            protocol: a.protocol.clone(),
            platforms: a.platforms.clone(),
            capabilities: a.capabilities.clone(),
            tags: a.tags.clone(),
            use_cases: a.use_cases.clone(),
            governance: (&a.governance).into(),
            trust_score: a.trust_score,
            support: (&a.support).into(),
            listed: versions.iter().any(|v| v.status != "retired"),
            versions: versions.iter().map(|v| PublisherVersionView::new(a, v, public_url)).collect(),
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

/// The average of `sum` over `count` stars, to one decimal (half up); `None` unrated.
pub fn average_rating(sum: i64, count: i64) -> Option<f64> {
    (count > 0).then(|| ((2 * 10 * sum + count) / (2 * count)) as f64 / 10.0)
}

/// Cards show this many characters of the description.
const CARD_DESCRIPTION_CHARS: usize = 280;

/// The newest active version, else the newest one not retired.
fn latest_of(l: &Listed) -> Option<&Version> {
    l.versions.iter().find(|v| v.status == "active").or_else(|| l.versions.first())
}

/// An agent's card in the store.
#[derive(Serialize, ToSchema)]
pub struct CardView {
    pub slug: String,
    pub name: String,
    /// The publishing organization's name.
    pub publisher: String,
    /// The start of the description (up to 280 characters).
    pub description: String,
    pub category: String,
    pub protocol: String,
    pub platforms: Vec<String>,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    /// Average stars (1–5, one decimal), null when unrated.
    pub rating: Option<f64>,
    pub review_count: i64,
    /// Active installations.
    pub installs: i64,
    pub trust_score: i64,
    /// Compliance frameworks the governance declaration names (`gdpr`, `soc2`, `hipaa`),
    /// for the card's badges.
    pub compliance: Vec<String>,
    pub latest_version: Option<String>,
    /// The latest version may take seconds to wake up.
    pub cold_start: bool,
    /// The latest version has free calls on some function.
    pub freemium: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Listed> for CardView {
    fn from(l: &Listed) -> Self {
        let a = &l.agent;
        let latest = latest_of(l);
        let mut description: String = a.description.chars().take(CARD_DESCRIPTION_CHARS).collect();
        if description.len() < a.description.len() {
            description.push('…');
        }
        CardView {
            slug: a.slug.clone(),
            name: a.name.clone(),
            publisher: l.publisher.clone(),
            description,
            category: a.category.clone(),
            protocol: a.protocol.clone(),
            platforms: a.platforms.clone(),
            capabilities: a.capabilities.clone(),
            tags: a.tags.clone(),
            rating: average_rating(l.rating_sum, l.review_count),
            review_count: l.review_count,
            installs: l.installs,
            trust_score: a.trust_score,
            compliance: a.governance.compliance.clone(),
            latest_version: latest.map(|v| v.version.clone()),
            cold_start: latest.is_some_and(|v| v.cold_start),
            freemium: latest.is_some_and(|v| v.functions.iter().any(|f| f.free_calls > 0)),
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

/// A page of the store.
#[derive(Serialize, ToSchema)]
pub struct StorePage {
    pub agents: Vec<CardView>,
    pub page: i64,
    pub per_page: i64,
    /// Agents matching the query, on all pages.
    pub total: i64,
}

/// Stars given to an agent.
#[derive(Serialize, ToSchema)]
pub struct RatingView {
    /// Average stars, one decimal; null when unrated.
    pub average: Option<f64>,
    pub count: i64,
    /// How many reviews gave 1, 2, 3, 4 and 5 stars (in that order).
    pub stars: Vec<i64>,
}

impl From<&RatingSummary> for RatingView {
    fn from(r: &RatingSummary) -> Self {
        RatingView { average: average_rating(r.sum, r.count), count: r.count, stars: r.stars.to_vec() }
    }
}

/// A review, signed with its author's display name.
#[derive(Serialize, ToSchema)]
pub struct ReviewView {
    pub id: String,
    /// The agent's slug.
    pub agent: String,
    /// 1–5 stars.
    pub rating: i64,
    pub body: String,
    /// The author's display name.
    pub author: String,
    pub created_at: String,
    pub updated_at: String,
}

impl ReviewView {
    pub fn new(slug: &str, r: &Review) -> Self {
        ReviewView {
            id: r.id.clone(),
            agent: slug.to_string(),
            rating: r.rating,
            body: r.body.clone(),
            author: r.author.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// A page of reviews, newest first.
#[derive(Serialize, ToSchema)]
pub struct ReviewPage {
    pub reviews: Vec<ReviewView>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub rating: RatingView,
}

/// Everything an agent's store page shows: description, integration (versions, functions,
/// prices, free tiers, dependencies), use cases, data & privacy, reviews and support.
#[derive(Serialize, ToSchema)]
pub struct AgentDetailView {
    pub slug: String,
    pub name: String,
    pub publisher: String,
    pub description: String,
    pub category: String,
    pub protocol: String,
    pub platforms: Vec<String>,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub use_cases: Vec<String>,
    pub governance: GovernanceBody,
    pub trust_score: i64,
    pub support: SupportBody,
    pub installs: i64,
    pub rating: RatingView,
    /// The five newest reviews.
    pub recent_reviews: Vec<ReviewView>,
    pub latest_version: Option<String>,
    pub cold_start: bool,
    /// Versions that are not retired, newest first.
    pub versions: Vec<VersionView>,
    pub created_at: String,
    pub updated_at: String,
}

impl AgentDetailView {
    pub fn new(l: &Listed, rating: &RatingSummary, reviews: &[Review], public_url: &str) -> Self {
        let a = &l.agent;
        let latest = latest_of(l);
        AgentDetailView {
            slug: a.slug.clone(),
            name: a.name.clone(),
            publisher: l.publisher.clone(),
            description: a.description.clone(),
            category: a.category.clone(),
            protocol: a.protocol.clone(),
            platforms: a.platforms.clone(),
            capabilities: a.capabilities.clone(),
            tags: a.tags.clone(),
            use_cases: a.use_cases.clone(),
            governance: (&a.governance).into(),
            trust_score: a.trust_score,
            support: (&a.support).into(),
            installs: l.installs,
            rating: rating.into(),
            recent_reviews: reviews.iter().map(|r| ReviewView::new(&a.slug, r)).collect(),
            latest_version: latest.map(|v| v.version.clone()),
            cold_start: latest.is_some_and(|v| v.cold_start),
            versions: l.versions.iter().map(|v| VersionView::new(a, v, public_url)).collect(),
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}
