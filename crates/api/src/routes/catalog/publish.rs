//! Publisher endpoints: agents (listing metadata) and their versions (immutable pricing).

use super::views::{AgentView, DependencyBody, GovernanceBody, PricingDoc, PublisherVersionView, SupportBody};
use super::{missing, publisher_agent};
use crate::auth::{Auth, OrgCtx};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views::ErrorBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use tollgate_domain::catalog::{Protocol, Scope, VersionStatus};
use tollgate_domain::publish::{FunctionDraft, Listing, ListingDraft, NewVersion, VersionDraft, seal_headers};
use tollgate_domain::secret::new_id;
use tollgate_domain::time::now_ms;
use tollgate_domain::{Invalid, validate};
use tollgate_store::StoreError;
use tollgate_store::catalog::{Agent, Dependency, Version};
use tollgate_store::orgs::Org;
use utoipa::ToSchema;

/// A new agent, owned by the org the request acts in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    /// 2–64 of `a-z0-9-`, starting with a letter; part of every gateway URL; never changes.
    pub slug: String,
    pub name: String,
    pub description: String,
    /// E.g. `devtools`, `productivity`, `security`.
    pub category: String,
    /// `mcp` or `a2a`; never changes.
    pub protocol: String,
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub use_cases: Vec<String>,
    #[serde(default)]
    pub governance: Option<GovernanceBody>,
    #[serde(default)]
    pub support: Option<SupportBody>,
}

/// Listing changes; absent fields stay as they are. Slug and protocol never change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub platforms: Option<Vec<String>>,
    pub capabilities: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub use_cases: Option<Vec<String>>,
    pub governance: Option<GovernanceBody>,
    pub support: Option<SupportBody>,
}

impl From<UpdateAgentRequest> for ListingDraft {
    fn from(r: UpdateAgentRequest) -> Self {
        ListingDraft {
            name: r.name,
            description: r.description,
            category: r.category,
            platforms: r.platforms,
            capabilities: r.capabilities,
            tags: r.tags,
            use_cases: r.use_cases,
            governance: r.governance.map(Into::into),
            support: r.support.map(Into::into),
        }
    }
}

/// Lists a new agent published by `org`: what `POST /api/v1/agents` does once the caller
/// is authorized (also for the demo seeder and the CLI).
pub async fn list_agent(state: &AppState, org: &Org, req: CreateAgentRequest) -> ApiResult<Agent> {
    let slug = validate::slug("slug", &req.slug)?;
    let protocol =
        Protocol::parse(&req.protocol).ok_or_else(|| ApiError::invalid("protocol", "must be \"mcp\" or \"a2a\""))?;
    let draft = ListingDraft {
        name: Some(req.name),
        description: Some(req.description),
        category: Some(req.category),
        platforms: Some(req.platforms),
        capabilities: Some(req.capabilities),
        tags: Some(req.tags),
        use_cases: Some(req.use_cases),
        governance: req.governance.map(Into::into),
        support: req.support.map(Into::into),
    };
    let listing = draft.apply(Listing::default())?;
    let search_text = listing.search_text(&slug, &org.name);
    let new = Agent::new(new_id("agt")?, slug, org.id.clone(), protocol, listing, now_ms());
    match state.store.create_agent(&new, &search_text).await {
        Err(StoreError::Conflict(_)) => {
            let message = format!("the slug \"{}\" is taken; choose another", new.slug);
            Err(ApiError::Conflict("slug_taken", message))
        }
        other => Ok(other?),
    }
}

#[utoipa::path(post, path = "/api/v1/agents", tag = "publisher", request_body = CreateAgentRequest,
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The publishing org (default: your personal org)")),
    responses((status = 201, body = AgentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "The slug is taken"), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_agent(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiJson(req): ApiJson<CreateAgentRequest>,
) -> ApiResult<(StatusCode, Json<AgentView>)> {
    c.auth.require(Scope::AccountWrite)?;
    c.require_write()?;
    let agent = list_agent(&state, &c.org, req).await?;
    tracing::info!(org.id = %c.org.id, agent.slug = %agent.slug, "agent listed");
    Ok((StatusCode::CREATED, Json(AgentView::new(&agent, &[], &state.config.public_url))))
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "publisher",
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The publishing org (default: your personal org)")),
    responses((status = 200, body = Vec<AgentView>, description = "The org's agents, each with every version"),
              (status = 404, body = ErrorBody)))]
pub(crate) async fn list_agents(State(state): State<AppState>, c: OrgCtx) -> ApiResult<Json<Vec<AgentView>>> {
    c.auth.require(Scope::AgentsRead)?;
    let agents = state.store.org_agents(&c.org.id).await?;
    Ok(Json(agents.iter().map(|(a, v)| AgentView::new(a, v, &state.config.public_url)).collect()))
}

#[utoipa::path(get, path = "/api/v1/agents/{slug}", tag = "publisher",
    responses((status = 200, body = AgentView), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> ApiResult<Json<AgentView>> {
    auth.require(Scope::AgentsRead)?;
    let (_, agent) = publisher_agent(&state, auth, &slug).await?;
    let versions = state.store.versions(&agent.id).await?;
    Ok(Json(AgentView::new(&agent, &versions, &state.config.public_url)))
}

#[utoipa::path(patch, path = "/api/v1/agents/{slug}", tag = "publisher", request_body = UpdateAgentRequest,
    responses((status = 200, body = AgentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn update_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<UpdateAgentRequest>,
) -> ApiResult<Json<AgentView>> {
    auth.require(Scope::AccountWrite)?;
    let (c, agent) = publisher_agent(&state, auth, &slug).await?;
    c.require_write()?;
    let listing = ListingDraft::from(req).apply(agent.listing())?;
    let search_text = listing.search_text(&agent.slug, &c.org.name);
    let agent = state.store.update_agent(&agent.with_listing(listing, now_ms()), &search_text).await?;
    let versions = state.store.versions(&agent.id).await?;
    Ok(Json(AgentView::new(&agent, &versions, &state.config.public_url)))
}

/// One priced function.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionRequest {
    /// The tool, prompt, resource or skill name.
    pub name: String,
    #[schema(value_type = PricingDoc)]
    pub pricing: serde_json::Value,
    /// Free successful calls per organization (default 0).
    #[serde(default)]
    pub free_calls: Option<i64>,
    /// `lifetime` (default) or `monthly`.
    #[serde(default)]
    pub free_reset: Option<String>,
}

/// A new version. Everything but its status is final once published.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersionRequest {
    /// Semantic version, e.g. `1.2.0`.
    pub version: String,
    /// Where the gateway forwards calls (`http://` or `https://`).
    pub upstream_url: String,
    /// Headers the gateway adds upstream (e.g. a credential). Encrypted at rest, never shown again.
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
    /// USD per utility call (initialize, tools/list, ping, …); default `"0"`.
    #[serde(default)]
    pub base_fee: Option<String>,
    #[serde(default)]
    pub functions: Vec<FunctionRequest>,
    /// Pricing of functions not listed.
    #[serde(default)]
    #[schema(value_type = Option<PricingDoc>)]
    pub default_pricing: Option<serde_json::Value>,
    /// MCP agents this one calls with its task token.
    #[serde(default)]
    pub dependencies: Vec<DependencyBody>,
    /// 60–86400, default 300.
    #[serde(default)]
    pub task_timeout_seconds: Option<i64>,
    #[serde(default)]
    pub cold_start: bool,
}

impl From<CreateVersionRequest> for VersionDraft {
    fn from(r: CreateVersionRequest) -> Self {
        VersionDraft {
            version: r.version,
            upstream_url: r.upstream_url,
            upstream_headers: r.upstream_headers,
            base_fee: r.base_fee,
            functions: r
                .functions
                .into_iter()
                .map(|f| FunctionDraft {
                    name: f.name,
                    pricing: f.pricing,
                    free_calls: f.free_calls,
                    free_reset: f.free_reset,
                })
                .collect(),
            default_pricing: r.default_pricing,
            dependencies: r.dependencies.into_iter().map(|d| (d.agent, d.version)).collect(),
            task_timeout_seconds: r.task_timeout_seconds,
            cold_start: r.cold_start,
        }
    }
}

/// Checks each dependency against the catalog: an existing MCP agent other than `agent`,
/// with that version (or an active one for `latest`) not retired.
async fn resolve_dependencies(state: &AppState, agent: &Agent, v: &NewVersion) -> ApiResult<Vec<Dependency>> {
    let mut out = Vec::with_capacity(v.dependencies.len());
    for (i, (slug, version)) in v.dependencies.iter().enumerate() {
        let field = |key: &str| format!("dependencies[{i}].{key}");
        let dep = match state.store.agent_by_slug(slug).await {
            Err(StoreError::NotFound) => {
                return Err(Invalid::new(field("agent"), format!("no agent is called \"{slug}\"")).into());
            }
            other => other?,
        };
        if dep.id == agent.id {
            return Err(Invalid::new(field("agent"), "an agent cannot depend on itself").into());
        }
        if dep.protocol != Protocol::Mcp.as_str() {
            return Err(Invalid::new(
                field("agent"),
                format!("\"{slug}\" is not an MCP agent; only MCP agents can be dependencies"),
            )
            .into());
        }
        let found = match state.store.agent_version(&dep.id, version).await {
            Err(StoreError::NotFound) => None,
            other => Some(other?),
        };
        if found.is_none_or(|f| f.status == VersionStatus::Retired.as_str()) {
            return Err(
                Invalid::new(field("version"), format!("\"{slug}\" has no usable version \"{version}\"")).into()
            );
        }
        out.push(Dependency { agent: slug.clone(), version: version.clone() });
    }
    Ok(out)
}

/// Publishes a new version of `agent`: what `POST /api/v1/agents/{slug}/versions` does
/// once the caller is authorized (also for the demo seeder and the CLI).
pub async fn publish_version(state: &AppState, agent: &Agent, req: CreateVersionRequest) -> ApiResult<Version> {
    let checked = VersionDraft::from(req).check()?;
    let dependencies = resolve_dependencies(state, agent, &checked).await?;
    let now = now_ms();
    let version = Version {
        id: new_id("ver")?,
        agent_id: agent.id.clone(),
        upstream_headers_sealed: seal_headers(&state.sealer, &checked.upstream_headers)?,
        version: checked.version,
        upstream_url: checked.upstream_url,
        base_fee: checked.base_fee,
        functions: checked.functions,
        default_pricing: checked.default_pricing,
        dependencies,
        task_timeout_seconds: checked.task_timeout_seconds,
        cold_start: checked.cold_start,
        status: VersionStatus::Active.as_str().into(),
        created_at: now,
        updated_at: now,
    };
    let version = match state.store.create_version(&version).await {
        Err(StoreError::Conflict(_)) => {
            let message = format!("{} {} is already published; pick a new number", agent.slug, version.version);
            return Err(ApiError::Conflict("version_exists", message));
        }
        other => other?,
    };
    crate::notify::log_failure("new version", crate::notify::new_version(state, agent, &version).await);
    Ok(version)
}

#[utoipa::path(post, path = "/api/v1/agents/{slug}/versions", tag = "publisher", request_body = CreateVersionRequest,
    responses((status = 201, body = PublisherVersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "The version exists"), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_version(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<CreateVersionRequest>,
) -> ApiResult<(StatusCode, Json<PublisherVersionView>)> {
    auth.require(Scope::AccountWrite)?;
    let (c, agent) = publisher_agent(&state, auth, &slug).await?;
    c.require_write()?;
    let version = publish_version(&state, &agent, req).await?;
    tracing::info!(org.id = %c.org.id, agent.slug = %agent.slug, version = %version.version, "version published");
    Ok((StatusCode::CREATED, Json(PublisherVersionView::new(&agent, &version, &state.config.public_url))))
}

/// A version's lifecycle change. Only `status` may change: everything else is final.
/// (For the document only: the handler reads the body as JSON so that a change to an
/// immutable field is told apart — 409 — from an unknown field — 422.)
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct UpdateVersionRequest {
    /// `active` ⇄ `deprecated`; either → `retired` (final).
    pub status: String,
}

/// Fields a published version never changes.
const IMMUTABLE: &[&str] = &[
    "version",
    "upstream_url",
    "upstream_headers",
    "base_fee",
    "functions",
    "default_pricing",
    "dependencies",
    "task_timeout_seconds",
    "cold_start",
];

/// The status a version update asks for; a change to anything else is a 409.
fn requested_status(body: &serde_json::Value) -> ApiResult<VersionStatus> {
    let fields = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("body", "must be a JSON object such as {\"status\": \"deprecated\"}"))?;
    if let Some(field) = fields.keys().find(|k| IMMUTABLE.contains(&k.as_str())) {
        return Err(ApiError::Conflict(
            "version_immutable",
            format!(
                "{field} cannot change: a published version's pricing and upstream are immutable; \
                 publish a new version instead"
            ),
        ));
    }
    if let Some(field) = fields.keys().find(|k| k.as_str() != "status") {
        return Err(ApiError::invalid(field, "is not a field of a version; only status can change"));
    }
    fields
        .get("status")
        .and_then(|s| s.as_str())
        .and_then(VersionStatus::parse)
        .ok_or_else(|| ApiError::invalid("status", "must be \"active\", \"deprecated\" or \"retired\""))
}

#[utoipa::path(patch, path = "/api/v1/agents/{slug}/versions/{version}", tag = "publisher", request_body = UpdateVersionRequest,
    responses((status = 200, body = PublisherVersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "Pricing or upstream change (immutable), or the version is retired"),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn update_version(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, number)): Path<(String, String)>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<PublisherVersionView>> {
    auth.require(Scope::AccountWrite)?;
    let (c, agent) = publisher_agent(&state, auth, &slug).await?;
    c.require_write()?;
    let versions = state.store.versions(&agent.id).await?;
    let version = versions.into_iter().find(|v| v.version == number).ok_or(ApiError::NotFound("version"))?;
    let to = requested_status(&body)?;
    let from = VersionStatus::parse(&version.status)
        .ok_or_else(|| ApiError::Internal(format!("version status {}", version.status)))?;
    let view = |v: &Version| Json(PublisherVersionView::new(&agent, v, &state.config.public_url));
    if from == to {
        return Ok(view(&version));
    }
    if !from.can_become(to) {
        return Err(ApiError::Conflict(
            "version_retired",
            format!("{} {} is retired, and retirement is final", agent.slug, number),
        ));
    }
    let latest = state.store.agent_version(&agent.id, "latest").await.ok();
    let updated =
        state.store.set_version_status(&version, from.as_str(), to.as_str(), now_ms()).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::Conflict("version_changed", "the version changed meanwhile; reload and retry".into())
            }
            other => missing("version")(other),
        })?;
    tracing::info!(org.id = %c.org.id, agent.slug = %agent.slug, version = %number, status = to.as_str(),
        "version status changed");
    if to != VersionStatus::Active {
        let was_latest = latest.is_some_and(|l| l.id == updated.id);
        crate::notify::log_failure(
            "version status",
            crate::notify::version_status(&state, &agent, &updated, was_latest).await,
        );
    }
    Ok(view(&updated))
}
