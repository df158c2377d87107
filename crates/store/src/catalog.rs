//! The catalog: agents, versions and reviews, and the store's listing queries.

use crate::changes::Change;
use crate::row::{flag, get, json};
use crate::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use tollgate_domain::Nanos;
use tollgate_domain::catalog::Protocol;
use tollgate_domain::pricing::{FunctionPrice, Pricing};
use tollgate_domain::publish::Listing;
use tollgate_domain::trust::Governance;
use tollgate_domain::validate::SemVer;

/// Who to contact about an agent (defined with the listing rules in the domain).
pub use tollgate_domain::publish::Support;

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

impl Agent {
    /// A new agent of `publisher_org_id` with a checked listing; its trust score comes
    /// from the listing's governance declaration.
    pub fn new(
        id: String,
        slug: String,
        publisher_org_id: String,
        protocol: Protocol,
        listing: Listing,
        now: i64,
    ) -> Agent {
        let blank = Agent {
            id,
            slug,
            publisher_org_id,
            name: String::new(),
            description: String::new(),
            category: String::new(),
            protocol: protocol.as_str().to_string(),
            platforms: Vec::new(),
            capabilities: Vec::new(),
            tags: Vec::new(),
            use_cases: Vec::new(),
            support: Support::default(),
            governance: Governance::default(),
            trust_score: 0,
            created_at: now,
            updated_at: now,
        };
        blank.with_listing(listing, now)
    }

    /// The agent's listing metadata.
    pub fn listing(&self) -> Listing {
        Listing {
            name: self.name.clone(),
            description: self.description.clone(),
            category: self.category.clone(),
            platforms: self.platforms.clone(),
            capabilities: self.capabilities.clone(),
            tags: self.tags.clone(),
            use_cases: self.use_cases.clone(),
            governance: self.governance.clone(),
            support: self.support.clone(),
        }
    }

    /// The agent with `listing` (and the trust score it earns) as of `now`.
    pub fn with_listing(self, listing: Listing, now: i64) -> Agent {
        Agent {
            trust_score: listing.trust_score(),
            name: listing.name,
            description: listing.description,
            category: listing.category,
            platforms: listing.platforms,
            capabilities: listing.capabilities,
            tags: listing.tags,
            use_cases: listing.use_cases,
            governance: listing.governance,
            support: listing.support,
            updated_at: now,
            ..self
        }
    }
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
    /// Upstream headers (credential) sealed with the configured key as one JSON object
    /// `{name: value}` (`tollgate_domain::publish::{seal_headers, open_headers}`); never shown.
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
        newest_first(&mut versions);
        Ok(versions)
    }

    /// A version of an agent; `latest` is the newest active version.
    pub async fn agent_version(&self, agent_id: &str, version: &str) -> Result<Version> {
        if version == "latest" {
            return self
                .versions(agent_id)
                .await?
                .into_iter()
                .find(|v| v.status == "active")
                .ok_or(StoreError::NotFound);
        }
        let sql = format!("SELECT {VERSION_COLUMNS} FROM versions WHERE agent_id = $1 AND version = $2");
        version_from(&sqlx::query(&sql).bind(agent_id).bind(version).fetch_one(&self.read).await?)
    }
}

/// How the store orders agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreSort {
    /// Most active installations first.
    #[default]
    Popular,
    /// Most recently listed first.
    Newest,
    /// Highest average rating first.
    TopRated,
}

/// At most this many search terms in one store query.
pub const MAX_SEARCH_TERMS: usize = 6;

/// What the store lists. `None` and empty mean "any".
#[derive(Debug, Clone, Default)]
pub struct StoreFilter {
    /// Search terms, each matched (case-insensitively) against the agent's search text.
    pub terms: Vec<String>,
    pub category: Option<String>,
    /// One client platform the agent must list (case-insensitive, whole entry).
    pub platform: Option<String>,
    /// One capability the agent must list (case-insensitive, whole entry).
    pub capability: Option<String>,
    pub protocol: Option<String>,
    pub min_trust: i64,
    pub sort: StoreSort,
    pub limit: i64,
    pub offset: i64,
}

/// An agent as the store shows it: listed (at least one version not retired), with its
/// publisher's name and popularity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub agent: Agent,
    pub publisher: String,
    /// Active installations.
    pub installs: i64,
    pub review_count: i64,
    pub rating_sum: i64,
    /// Versions that are not retired, newest first.
    pub versions: Vec<Version>,
}

/// Stars given to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RatingSummary {
    pub count: i64,
    pub sum: i64,
    /// How many reviews gave 1, 2, 3, 4 and 5 stars.
    pub stars: [i64; 5],
}

/// A review, with its author's display name (never their email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: String,
    pub agent_id: String,
    pub user_id: String,
    pub author: String,
    pub rating: i64,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The store's columns: the agent, its publisher's name, installs and ratings.
const LISTED_SELECT: &str = "SELECT a.id, a.slug, a.publisher_org_id, a.name, a.description, a.category, a.protocol, \
    a.platforms, a.capabilities, a.tags, a.use_cases, a.support, a.governance, a.trust_score, a.created_at, \
    a.updated_at, \
    o.name AS publisher_name, COALESCE(i.installs, 0) AS installs, COALESCE(r.review_count, 0) AS review_count, \
    COALESCE(r.rating_sum, 0) AS rating_sum \
    FROM agents a JOIN orgs o ON o.id = a.publisher_org_id \
    LEFT JOIN (SELECT agent_id, CAST(COUNT(*) AS BIGINT) AS review_count, CAST(SUM(rating) AS BIGINT) AS rating_sum, \
        CAST(SUM(rating) AS BIGINT) * 1000 / CAST(COUNT(*) AS BIGINT) AS rating_milli \
        FROM reviews GROUP BY agent_id) r \
        ON r.agent_id = a.id \
    LEFT JOIN (SELECT agent_id, CAST(COUNT(*) AS BIGINT) AS installs FROM installations WHERE status = 'active' \
        GROUP BY agent_id) i ON i.agent_id = a.id";

/// The store's filter; `$1`…`$11` as bound by [`Store::store_agents`]. Unused filters are
/// bound as `''` (text) or `'%'` (search terms). JSON arrays are matched with `LIKE` on one
/// whole quoted element; `!` escapes `%`, `_` and itself.
const LISTED_WHERE: &str = "EXISTS (SELECT 1 FROM versions v WHERE v.agent_id = a.id AND v.status <> 'retired') \
    AND ($1 = '' OR a.category = $1) AND ($2 = '' OR a.protocol = $2) AND a.trust_score >= $3 \
    AND ($4 = '' OR LOWER(a.platforms) LIKE $4 ESCAPE '!') AND ($5 = '' OR LOWER(a.capabilities) LIKE $5 ESCAPE '!') \
    AND a.search_text LIKE $6 ESCAPE '!' AND a.search_text LIKE $7 ESCAPE '!' AND a.search_text LIKE $8 ESCAPE '!' \
    AND a.search_text LIKE $9 ESCAPE '!' AND a.search_text LIKE $10 ESCAPE '!' AND a.search_text LIKE $11 ESCAPE '!'";

const REVIEW_SELECT: &str = "SELECT r.id, r.agent_id, r.user_id, u.name AS author, r.rating, r.body, r.created_at, \
    r.updated_at FROM reviews r JOIN users u ON u.id = r.user_id";

/// `text` for a `LIKE … ESCAPE '!'` pattern that finds it anywhere.
pub(crate) fn like_contains(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A pattern that finds the whole element `value` in a JSON array of strings passed
/// through SQL `LOWER` (ASCII letters only on SQLite, hence ASCII lowercasing here).
fn like_element(value: &Option<String>) -> Result<String> {
    match value {
        None => Ok(String::new()),
        Some(v) => Ok(like_contains(&serde_json::to_string(&v.to_ascii_lowercase())?)),
    }
}

/// The values bound to [`LISTED_WHERE`]'s `$1`…`$11`.
struct FilterBinds {
    text: [String; 4],
    min_trust: i64,
    terms: Vec<String>,
}

impl FilterBinds {
    fn new(f: &StoreFilter) -> Result<FilterBinds> {
        let mut terms: Vec<String> =
            f.terms.iter().take(MAX_SEARCH_TERMS).map(|t| like_contains(&t.to_lowercase())).collect();
        terms.resize(MAX_SEARCH_TERMS, "%".to_string());
        let text = [
            f.category.clone().unwrap_or_default(),
            f.protocol.clone().unwrap_or_default(),
            like_element(&f.platform)?,
            like_element(&f.capability)?,
        ];
        Ok(FilterBinds { text, min_trust: f.min_trust, terms })
    }

    fn query<'q>(&self, sql: &'q str) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let [category, protocol, platform, capability] = self.text.clone();
        let mut q = sqlx::query(sql).bind(category).bind(protocol).bind(self.min_trust).bind(platform).bind(capability);
        for term in &self.terms {
            q = q.bind(term.clone());
        }
        q
    }
}

fn listed_from(row: &AnyRow) -> Result<Listed> {
    Ok(Listed {
        agent: agent_from(row)?,
        publisher: get(row, "publisher_name")?,
        installs: get(row, "installs")?,
        review_count: get(row, "review_count")?,
        rating_sum: get(row, "rating_sum")?,
        versions: Vec::new(),
    })
}

fn review_from(row: &AnyRow) -> Result<Review> {
    Ok(Review {
        id: get(row, "id")?,
        agent_id: get(row, "agent_id")?,
        user_id: get(row, "user_id")?,
        author: get(row, "author")?,
        rating: get(row, "rating")?,
        body: get(row, "body")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn newest_first(versions: &mut [Version]) {
    versions.sort_by_key(|v| std::cmp::Reverse(SemVer::parse("version", &v.version).map(|s| s.sort_key()).ok()));
}

impl Store {
    /// Lists a new agent. A taken slug is a [`StoreError::Conflict`].
    pub async fn create_agent(&self, agent: &Agent, search_text: &str) -> Result<Agent> {
        sqlx::query(
            "INSERT INTO agents (id, slug, publisher_org_id, name, description, category, protocol, platforms, \
             capabilities, \
             tags, use_cases, support, governance, trust_score, search_text, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&agent.id)
        .bind(&agent.slug)
        .bind(&agent.publisher_org_id)
        .bind(&agent.name)
        .bind(&agent.description)
        .bind(&agent.category)
        .bind(&agent.protocol)
        .bind(serde_json::to_string(&agent.platforms)?)
        .bind(serde_json::to_string(&agent.capabilities)?)
        .bind(serde_json::to_string(&agent.tags)?)
        .bind(serde_json::to_string(&agent.use_cases)?)
        .bind(serde_json::to_string(&agent.support)?)
        .bind(serde_json::to_string(&agent.governance)?)
        .bind(agent.trust_score)
        .bind(search_text)
        .bind(agent.created_at)
        .bind(agent.updated_at)
        .execute(&self.write)
        .await?;
        self.agent(&agent.id).await
    }

    /// Replaces an agent's listing metadata (not its slug, publisher or protocol).
    pub async fn update_agent(&self, agent: &Agent, search_text: &str) -> Result<Agent> {
        let done = sqlx::query(
            "UPDATE agents SET name = $1, description = $2, category = $3, platforms = $4, capabilities = $5, \
             tags = $6, use_cases = $7, support = $8, governance = $9, trust_score = $10, search_text = $11, \
             updated_at = $12 WHERE id = $13",
        )
        .bind(&agent.name)
        .bind(&agent.description)
        .bind(&agent.category)
        .bind(serde_json::to_string(&agent.platforms)?)
        .bind(serde_json::to_string(&agent.capabilities)?)
        .bind(serde_json::to_string(&agent.tags)?)
        .bind(serde_json::to_string(&agent.use_cases)?)
        .bind(serde_json::to_string(&agent.support)?)
        .bind(serde_json::to_string(&agent.governance)?)
        .bind(agent.trust_score)
        .bind(search_text)
        .bind(agent.updated_at)
        .bind(&agent.id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.agent(&agent.id).await
    }

    /// The agents an org publishes, with all their versions (newest first), by slug.
    pub async fn org_agents(&self, org_id: &str) -> Result<Vec<(Agent, Vec<Version>)>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE publisher_org_id = $1 ORDER BY slug");
        let agents = sqlx::query(&sql).bind(org_id).fetch_all(&self.read).await?;
        let columns = VERSION_COLUMNS.split(", ").map(|c| format!("v.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns} FROM versions v JOIN agents a ON a.id = v.agent_id WHERE a.publisher_org_id = $1"
        );
        let versions = sqlx::query(&sql).bind(org_id).fetch_all(&self.read).await?;
        let versions = versions.iter().map(version_from).collect::<Result<Vec<_>>>()?;
        agents
            .iter()
            .map(|row| {
                let agent = agent_from(row)?;
                let mut own: Vec<Version> = versions.iter().filter(|v| v.agent_id == agent.id).cloned().collect();
                newest_first(&mut own);
                Ok((agent, own))
            })
            .collect()
    }

    /// Publishes a version and touches its agent's `updated_at`. A version number the
    /// agent already has is a [`StoreError::Conflict`].
    pub async fn create_version(&self, v: &Version) -> Result<Version> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO versions (id, agent_id, version, upstream_url, upstream_headers_sealed, base_fee, functions, \
             default_pricing, dependencies, task_timeout_seconds, cold_start, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&v.id)
        .bind(&v.agent_id)
        .bind(&v.version)
        .bind(&v.upstream_url)
        .bind(&v.upstream_headers_sealed)
        .bind(v.base_fee.0)
        .bind(serde_json::to_string(&v.functions)?)
        .bind(v.default_pricing.as_ref().map(serde_json::to_string).transpose()?)
        .bind(serde_json::to_string(&v.dependencies)?)
        .bind(v.task_timeout_seconds)
        .bind(i64::from(v.cold_start))
        .bind(&v.status)
        .bind(v.created_at)
        .bind(v.updated_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE agents SET updated_at = $1 WHERE id = $2")
            .bind(v.updated_at)
            .bind(&v.agent_id)
            .execute(&mut *tx)
            .await?;
        let changes = vec![Change::Agent(v.agent_id.clone())];
        self.announce(&mut tx, &changes).await?;
        tx.commit().await?;
        self.announced(changes);
        self.agent_version(&v.agent_id, &v.version).await
    }

    /// Moves a version from status `from` to `to` (the caller checked the transition). If
    /// the status changed meanwhile, nothing changes and the answer is a conflict.
    pub async fn set_version_status(&self, version: &Version, from: &str, to: &str, now: i64) -> Result<Version> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE versions SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
            .bind(to)
            .bind(now)
            .bind(&version.id)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("version_status".into()));
        }
        sqlx::query("UPDATE agents SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&version.agent_id)
            .execute(&mut *tx)
            .await?;
        let changes = vec![Change::Agent(version.agent_id.clone())];
        self.announce(&mut tx, &changes).await?;
        tx.commit().await?;
        self.announced(changes);
        self.agent_version(&version.agent_id, &version.version).await
    }

    /// One page of the store and the total number of agents that match. Ties in any order
    /// fall back to the slug, so pages never overlap.
    pub async fn store_agents(&self, f: &StoreFilter) -> Result<(Vec<Listed>, i64)> {
        let order = match f.sort {
            StoreSort::Popular => {
                "COALESCE(i.installs, 0) DESC, COALESCE(r.rating_milli, 0) DESC, a.created_at DESC, a.slug"
            }
            StoreSort::Newest => "a.created_at DESC, a.slug",
            StoreSort::TopRated => {
                "COALESCE(r.rating_milli, 0) DESC, COALESCE(r.review_count, 0) DESC, COALESCE(i.installs, 0) DESC, a.slug"
            }
        };
        let page_sql = format!("{LISTED_SELECT} WHERE {LISTED_WHERE} ORDER BY {order} LIMIT $12 OFFSET $13");
        let count_sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM agents a WHERE {LISTED_WHERE}");
        let bound = FilterBinds::new(f)?;
        let total: i64 = get(&bound.query(&count_sql).fetch_one(&self.read).await?, "n")?;
        let rows = bound.query(&page_sql).bind(f.limit).bind(f.offset).fetch_all(&self.read).await?;
        let mut page = rows.iter().map(listed_from).collect::<Result<Vec<_>>>()?;
        self.attach_live_versions(&mut page).await?;
        Ok((page, total))
    }

    /// A listed agent by slug; [`StoreError::NotFound`] when it has no version that is not
    /// retired.
    pub async fn listed_agent(&self, slug: &str) -> Result<Listed> {
        let sql = format!("{LISTED_SELECT} WHERE a.slug = $1");
        let mut one = vec![listed_from(&sqlx::query(&sql).bind(slug).fetch_one(&self.read).await?)?];
        self.attach_live_versions(&mut one).await?;
        one.pop().filter(|l| !l.versions.is_empty()).ok_or(StoreError::NotFound)
    }

    /// Fills in the versions that are not retired, in one query.
    async fn attach_live_versions(&self, listed: &mut [Listed]) -> Result<()> {
        if listed.is_empty() {
            return Ok(());
        }
        // Only the placeholders are generated; every id is bound.
        let slots = (1..=listed.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT {VERSION_COLUMNS} FROM versions WHERE status <> 'retired' AND agent_id IN ({slots})");
        let mut q = sqlx::query(&sql);
        for l in listed.iter() {
            q = q.bind(&l.agent.id);
        }
        let rows = q.fetch_all(&self.read).await?;
        let versions = rows.iter().map(version_from).collect::<Result<Vec<_>>>()?;
        for l in listed.iter_mut() {
            l.versions = versions.iter().filter(|v| v.agent_id == l.agent.id).cloned().collect();
            newest_first(&mut l.versions);
        }
        Ok(())
    }

    /// Active installations of an agent.
    pub async fn active_installs(&self, agent_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM installations WHERE agent_id = $1 AND status = 'active'",
        )
        .bind(agent_id)
        .fetch_one(&self.read)
        .await?)
    }

    /// Writes a user's review of an agent. A second review by the same user is a
    /// [`StoreError::Conflict`].
    pub async fn create_review(
        &self,
        agent_id: &str,
        user_id: &str,
        rating: i64,
        body: &str,
        now: i64,
    ) -> Result<Review> {
        let id = tollgate_domain::secret::new_id("rev")?;
        sqlx::query(
            "INSERT INTO reviews (id, agent_id, user_id, rating, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(agent_id)
        .bind(user_id)
        .bind(rating)
        .bind(body)
        .bind(now)
        .execute(&self.write)
        .await?;
        self.user_review(agent_id, user_id).await?.ok_or(StoreError::NotFound)
    }

    /// Changes a user's own review; [`StoreError::NotFound`] if they wrote none.
    pub async fn update_review(
        &self,
        agent_id: &str,
        user_id: &str,
        rating: i64,
        body: &str,
        now: i64,
    ) -> Result<Review> {
        let done = sqlx::query(
            "UPDATE reviews SET rating = $1, body = $2, updated_at = $3 WHERE agent_id = $4 AND user_id = $5",
        )
        .bind(rating)
        .bind(body)
        .bind(now)
        .bind(agent_id)
        .bind(user_id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.user_review(agent_id, user_id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a user's own review; [`StoreError::NotFound`] if they wrote none.
    pub async fn delete_review(&self, agent_id: &str, user_id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM reviews WHERE agent_id = $1 AND user_id = $2")
            .bind(agent_id)
            .bind(user_id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A user's review of an agent, if any.
    pub async fn user_review(&self, agent_id: &str, user_id: &str) -> Result<Option<Review>> {
        let sql = format!("{REVIEW_SELECT} WHERE r.agent_id = $1 AND r.user_id = $2");
        let row = sqlx::query(&sql).bind(agent_id).bind(user_id).fetch_optional(&self.read).await?;
        row.as_ref().map(review_from).transpose()
    }

    /// A page of an agent's reviews, newest first.
    pub async fn reviews(&self, agent_id: &str, limit: i64, offset: i64) -> Result<Vec<Review>> {
        let sql = format!("{REVIEW_SELECT} WHERE r.agent_id = $1 ORDER BY r.created_at DESC, r.id LIMIT $2 OFFSET $3");
        let rows = sqlx::query(&sql).bind(agent_id).bind(limit).bind(offset).fetch_all(&self.read).await?;
        rows.iter().map(review_from).collect()
    }

    /// How many reviews gave each number of stars.
    pub async fn rating_summary(&self, agent_id: &str) -> Result<RatingSummary> {
        let rows = sqlx::query(
            "SELECT rating, CAST(COUNT(*) AS BIGINT) AS n FROM reviews WHERE agent_id = $1 GROUP BY rating",
        )
        .bind(agent_id)
        .fetch_all(&self.read)
        .await?;
        let mut summary = RatingSummary::default();
        for row in &rows {
            let (rating, n): (i64, i64) = (get(row, "rating")?, get(row, "n")?);
            let slot = usize::try_from(rating - 1).ok().and_then(|i| summary.stars.get_mut(i));
            *slot.ok_or_else(|| StoreError::Corrupt(format!("rating {rating}")))? += n;
            summary.count += n;
            summary.sum += rating * n;
        }
        Ok(summary)
    }
}
