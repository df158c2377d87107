//! Installations and their per-member API keys.

use crate::auth::{Auth, OrgCtx, org_ctx};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::views::{ErrorBody, InstallationView, KeyView, LimitsView, NewKeyView};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use tollgate_domain::catalog::Scope;
use tollgate_domain::secret::{new_id, random_token, sha256_hex};
use tollgate_domain::time::now_ms;
use tollgate_domain::validate;
use tollgate_store::StoreError;
use tollgate_store::installs::{ApiKey, DailyLimits, Installation};
use utoipa::ToSchema;

/// Gateway keys start with this, followed by the agent's slug.
pub const KEY_PREFIX: &str = "tgk_";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/installations", post(install).get(list_installations))
        .route("/installations/{id}", get(get_installation).patch(update_installation).delete(uninstall))
        .route("/installations/{id}/keys", post(create_key).get(list_keys))
        .route("/keys/{id}", patch(update_key).delete(revoke_key))
}

/// What to install.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// The agent's slug.
    pub agent: String,
    /// A version, or `latest` (the default).
    #[serde(default)]
    pub version: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/installations", tag = "installations", request_body = InstallRequest,
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The org to act in (default: your personal org)")),
    responses((status = 201, body = InstallationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 410, body = ErrorBody)))]
pub(crate) async fn install(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiJson(req): ApiJson<InstallRequest>,
) -> ApiResult<(StatusCode, Json<InstallationView>)> {
    c.auth.require(Scope::AccountWrite)?;
    c.require_write()?;
    let agent = state.store.agent_by_slug(&req.agent).await.map_err(|_| ApiError::NotFound("agent"))?;
    let wanted = req.version.as_deref().unwrap_or("latest");
    let version = state.store.agent_version(&agent.id, wanted).await.map_err(|_| ApiError::NotFound("version"))?;
    if version.status == "retired" {
        return Err(ApiError::Gone(
            "version_retired",
            format!("version {} is retired; install a newer one", version.version),
        ));
    }
    let pinned = if wanted == "latest" { "latest" } else { version.version.as_str() };
    match state.store.install(&c.org.id, &agent.id, pinned, &c.auth.user.id).await {
        Err(StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "already_installed",
            format!("{} is already installed in this organization", agent.name),
        )),
        Err(e) => Err(e.into()),
        Ok(inst) => {
            tracing::info!(org.id = %c.org.id, agent.slug = %agent.slug, installation.id = %inst.id, "agent installed");
            Ok((StatusCode::CREATED, Json((&inst).into())))
        }
    }
}

/// Listing options.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    /// Include uninstalled ones.
    #[serde(default)]
    all: bool,
}

#[utoipa::path(get, path = "/api/v1/installations", tag = "installations",
    params(("X-Tollgate-Org" = Option<String>, Header, description = "The org (default: your personal org)"),
           ("all" = Option<bool>, Query, description = "Include uninstalled installations")),
    responses((status = 200, body = Vec<InstallationView>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn list_installations(
    State(state): State<AppState>,
    c: OrgCtx,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<InstallationView>>> {
    c.auth.require(Scope::AgentsRead)?;
    Ok(Json(state.store.installations(&c.org.id, q.all).await?.iter().map(InstallationView::from).collect()))
}

/// An installation the caller's org owns; anything else is 404.
async fn owned(state: &AppState, auth: Auth, id: &str) -> ApiResult<(OrgCtx, Installation)> {
    let inst = state.store.installation(id).await.map_err(|_| ApiError::NotFound("installation"))?;
    let c = org_ctx(state, auth, &inst.org_id).await.map_err(|_| ApiError::NotFound("installation"))?;
    Ok((c, inst))
}

#[utoipa::path(get, path = "/api/v1/installations/{id}", tag = "installations",
    responses((status = 200, body = InstallationView), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_installation(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<InstallationView>> {
    auth.require(Scope::AgentsRead)?;
    let (_, inst) = owned(&state, auth, &id).await?;
    Ok(Json((&inst).into()))
}

/// Installation settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstallationRequest {
    /// Task-token timeout for A2A agents, 60–86400 seconds; null = the publisher's default.
    pub task_timeout_seconds: Option<i64>,
}

#[utoipa::path(patch, path = "/api/v1/installations/{id}", tag = "installations", request_body = UpdateInstallationRequest,
    responses((status = 200, body = InstallationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn update_installation(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateInstallationRequest>,
) -> ApiResult<Json<InstallationView>> {
    auth.require(Scope::AccountWrite)?;
    let (c, inst) = owned(&state, auth, &id).await?;
    c.require_admin()?;
    if req.task_timeout_seconds.is_some_and(|s| !(60..=86_400).contains(&s)) {
        return Err(ApiError::invalid("task_timeout_seconds", "must be between 60 (1 minute) and 86400 (24 hours)"));
    }
    state.store.set_installation_task_timeout(&inst.id, req.task_timeout_seconds).await?;
    Ok(Json((&state.store.installation(&inst.id).await?).into()))
}

#[utoipa::path(delete, path = "/api/v1/installations/{id}", tag = "installations",
    responses((status = 204, description = "Uninstalled; every key of it is revoked"), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(crate) async fn uninstall(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::AccountWrite)?;
    let (c, inst) = owned(&state, auth, &id).await?;
    c.require_admin()?;
    let keys = state.store.installation_keys(&inst.id).await?;
    match state.store.uninstall(&inst.id).await {
        Err(StoreError::NotFound) => Err(ApiError::NotFound("active installation")),
        other => {
            other?;
            tracing::info!(org.id = %c.org.id, installation.id = %inst.id, "agent uninstalled");
            let mut owners: Vec<&str> = keys
                .iter()
                .filter(|k| k.revoked_at.is_none() && k.user_id != c.auth.user.id)
                .map(|k| k.user_id.as_str())
                .collect();
            owners.sort_unstable();
            owners.dedup();
            if !owners.is_empty() {
                let agent = state.store.agent(&inst.agent_id).await?;
                let what = format!("uninstalled {} from {}, which revoked every key of it", agent.name, c.org.name);
                for owner in owners {
                    let event = format!("{}:{owner}", inst.id);
                    let sent = crate::notify::keys_revoked(&state, owner, &c.auth.user, &agent, &what, &event).await;
                    crate::notify::log_failure("keys revoked", sent);
                }
            }
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// A new key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub name: String,
    #[serde(default)]
    pub daily_limits: Option<LimitsView>,
}

fn limits(field: &str, l: LimitsView) -> ApiResult<DailyLimits> {
    for (name, value) in [
        ("requests", l.requests),
        ("input_tokens", l.input_tokens),
        ("output_tokens", l.output_tokens),
        ("cache_tokens", l.cache_tokens),
    ] {
        if value < 0 {
            return Err(ApiError::invalid(&format!("{field}.{name}"), "must be 0 (unlimited) or a positive number"));
        }
    }
    Ok(DailyLimits {
        requests: l.requests,
        input_tokens: l.input_tokens,
        output_tokens: l.output_tokens,
        cache_tokens: l.cache_tokens,
    })
}

#[utoipa::path(post, path = "/api/v1/installations/{id}/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = NewKeyView, description = "The key is in `key`, shown this once"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<NewKeyView>)> {
    auth.require(Scope::AccountWrite)?;
    let (c, inst) = owned(&state, auth, &id).await?;
    c.require_write()?;
    if inst.status != "active" {
        return Err(ApiError::NotFound("active installation"));
    }
    let name = validate::text("name", &req.name, 100)?;
    let limits = limits("daily_limits", req.daily_limits.unwrap_or_default())?;
    let secret = format!("{KEY_PREFIX}{}_{}", inst.agent_slug, random_token(40)?);
    let key = ApiKey {
        id: new_id("key")?,
        installation_id: inst.id.clone(),
        org_id: inst.org_id.clone(),
        agent_id: inst.agent_id.clone(),
        user_id: c.auth.user.id.clone(),
        name,
        prefix: secret.chars().take(KEY_PREFIX.len() + inst.agent_slug.len() + 5).collect(),
        limits,
        managed: false,
        created_at: now_ms(),
        revoked_at: None,
        last_used_at: None,
    };
    state.store.create_key(&key, &sha256_hex(secret.as_bytes())).await?;
    tracing::info!(org.id = %c.org.id, key.id = %key.id, agent.slug = %inst.agent_slug, "key created");
    Ok((StatusCode::CREATED, Json(NewKeyView { view: (&key).into(), key: secret })))
}

#[utoipa::path(get, path = "/api/v1/installations/{id}/keys", tag = "keys",
    responses((status = 200, body = Vec<KeyView>, description = "Admins see every key; others their own"), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<KeyView>>> {
    auth.require(Scope::AgentsRead)?;
    let (c, inst) = owned(&state, auth, &id).await?;
    let keys = state.store.installation_keys(&inst.id).await?;
    let visible = keys.iter().filter(|k| c.role.can_admin() || k.user_id == c.auth.user.id);
    Ok(Json(visible.map(KeyView::from).collect()))
}

/// A key the caller may change: their own, or any in an org they administer.
async fn own_key(state: &AppState, auth: Auth, id: &str) -> ApiResult<ApiKey> {
    let key = state.store.key(id).await.map_err(|_| ApiError::NotFound("key"))?;
    let c = org_ctx(state, auth, &key.org_id).await.map_err(|_| ApiError::NotFound("key"))?;
    if key.user_id != c.auth.user.id && !c.role.can_admin() {
        return Err(ApiError::Forbidden("only the key's owner or an admin can change it".into()));
    }
    c.require_write()?;
    Ok(key)
}

/// Key changes; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    pub name: Option<String>,
    pub daily_limits: Option<LimitsView>,
}

#[utoipa::path(patch, path = "/api/v1/keys/{id}", tag = "keys", request_body = UpdateKeyRequest,
    responses((status = 200, body = KeyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn update_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateKeyRequest>,
) -> ApiResult<Json<KeyView>> {
    auth.require(Scope::AccountWrite)?;
    let key = own_key(&state, auth, &id).await?;
    let name = req.name.as_deref().map(|n| validate::text("name", n, 100)).transpose()?;
    let limits = req.daily_limits.map(|l| limits("daily_limits", l)).transpose()?;
    if key.revoked_at.is_some() {
        return Err(ApiError::Conflict("key_revoked", "a revoked key cannot be changed".into()));
    }
    Ok(Json((&state.store.update_key(&key.id, name.as_deref(), limits).await?).into()))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    responses((status = 204, description = "Revoked"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::AccountWrite)?;
    let by = auth.user.clone();
    let key = own_key(&state, auth, &id).await?;
    state.store.revoke_key(&key.id).await?;
    tracing::info!(key.id = %key.id, "key revoked");
    if key.revoked_at.is_none() && key.user_id != by.id {
        let agent = state.store.agent(&key.agent_id).await?;
        let what = format!("revoked your key \"{}\"", key.name);
        crate::notify::log_failure(
            "key revoked",
            crate::notify::keys_revoked(&state, &key.user_id, &by, &agent, &what, &key.id).await,
        );
    }
    Ok(StatusCode::NO_CONTENT)
}
