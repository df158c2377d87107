//! The catalog: agents, versions and reviews.

use crate::row::{flag, get, json};
use crate::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use tollgate_domain::pricing::{FunctionPrice, Pricing};
use tollgate_domain::trust::Governance;
use tollgate_domain::validate::SemVer;
use tollgate_domain::Nanos;

/// Who to contact about an agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub docs_url: Option<String>,
}

/// An agent listed in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
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
    pub support: Support,
    pub governance: Governance,
    pub trust_score: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A dependency of a version on another agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// The agent's slug.
    pub agent: String,
    /// A version of it, or `latest`.
    pub version: String,
}

/// A published version of an agent. Its pricing never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: String,
    pub agent_id: String,
    pub version: String,
    pub upstream_url: String,
    /// Upstream headers (credential) sealed with the configured key; never shown.
    pub upstream_headers_sealed: Option<String>,
    pub base_fee: Nanos,
    pub functions: Vec<FunctionPrice>,
    pub default_pricing: Option<Pricing>,
    pub dependencies: Vec<Dependency>,
    pub task_timeout_seconds: i64,
    pub cold_start: bool,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const AGENT_COLUMNS: &str = "id, slug, publisher_org_id, name, description, category, protocol, platforms, \
    capabilities, tags, use_cases, support, governance, trust_score, created_at, updated_at";
pub(crate) const VERSION_COLUMNS: &str = "id, agent_id, version, upstream_url, upstream_headers_sealed, base_fee, functions, \
    default_pricing, dependencies, task_timeout_seconds, cold_start, status, created_at, updated_at";

pub(crate) fn agent_from(row: &AnyRow) -> Result<Agent> {
    Ok(Agent {
        id: get(row, "id")?,
        slug: get(row, "slug")?,
        publisher_org_id: get(row, "publisher_org_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        category: get(row, "category")?,
        protocol: get(row, "protocol")?,
        platforms: json(row, "platforms")?,
        capabilities: json(row, "capabilities")?,
        tags: json(row, "tags")?,
        use_cases: json(row, "use_cases")?,
        support: json(row, "support")?,
        governance: json(row, "governance")?,
        trust_score: get(row, "trust_score")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn version_from(row: &AnyRow) -> Result<Version> {
    let default_pricing: Option<String> = get(row, "default_pricing")?;
    Ok(Version {
        id: get(row, "id")?,
        agent_id: get(row, "agent_id")?,
        version: get(row, "version")?,
        upstream_url: get(row, "upstream_url")?,
        upstream_headers_sealed: get(row, "upstream_headers_sealed")?,
        base_fee: Nanos(get(row, "base_fee")?),
        functions: json(row, "functions")?,
        default_pricing: default_pricing.map(|p| serde_json::from_str(&p)).transpose()?,
        dependencies: json(row, "dependencies")?,
        task_timeout_seconds: get(row, "task_timeout_seconds")?,
        cold_start: flag(row, "cold_start")?,
        status: get(row, "status")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

impl Store {
    /// An agent by slug.
    pub async fn agent_by_slug(&self, slug: &str) -> Result<Agent> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE slug = $1");
        agent_from(&sqlx::query(&sql).bind(slug).fetch_one(&self.read).await?)
    }

    /// An agent by id.
    pub async fn agent(&self, id: &str) -> Result<Agent> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1");
        agent_from(&sqlx::query(&sql).bind(id).fetch_one(&self.read).await?)
    }

    /// Every version of an agent, newest (by semver precedence) first.
    pub async fn versions(&self, agent_id: &str) -> Result<Vec<Version>> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM versions WHERE agent_id = $1");
        let rows = sqlx::query(&sql).bind(agent_id).fetch_all(&self.read).await?;
        let mut versions = rows.iter().map(version_from).collect::<Result<Vec<_>>>()?;
        versions.sort_by_key(|v| std::cmp::Reverse(SemVer::parse("version", &v.version).map(|s| s.sort_key()).ok()));
        Ok(versions)
    }

    /// A version of an agent; `latest` is the newest active version.
    pub async fn agent_version(&self, agent_id: &str, version: &str) -> Result<Version> {
        if version == "latest" {
            return self.versions(agent_id).await?.into_iter().find(|v| v.status == "active").ok_or(StoreError::NotFound);
        }
        let sql = format!("SELECT {VERSION_COLUMNS} FROM versions WHERE agent_id = $1 AND version = $2");
        version_from(&sqlx::query(&sql).bind(agent_id).bind(version).fetch_one(&self.read).await?)
    }
}
