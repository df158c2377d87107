//! Orgs (teams), members, roles, invitations and notifications.

use crate::auth::{Auth, OrgCtx, org_ctx};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views::{ErrorBody, InvitationView, MemberView, NotificationView, OrgView};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tollgate_domain::catalog::{Role, Scope};
use tollgate_domain::secret::{random_token, sha256_hex};
use tollgate_domain::time::now_ms;
use tollgate_domain::validate;
use tollgate_store::StoreError;
use utoipa::ToSchema;

/// Invitations are valid for 14 days.
const INVITATION_TTL_MS: i64 = 14 * 86_400_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs", get(list_orgs).post(create_org))
        .route("/orgs/{org}", get(get_org).patch(rename_org))
        .route("/orgs/{org}/rate-limits", get(get_rate_limits).put(set_rate_limits))
        .route("/orgs/{org}/members", get(list_members))
        .route("/orgs/{org}/members/{user}", patch(change_role).delete(remove_member))
        .route("/orgs/{org}/invitations", get(list_invitations).post(invite))
        .route("/orgs/{org}/invitations/{id}", delete(revoke_invitation))
        .route("/invitations", get(my_invitations))
        .route("/invitations/{token}/accept", post(accept_invitation))
        .route("/notifications", get(notifications))
        .route("/notifications/read", post(mark_read))
}

async fn ctx(state: &AppState, auth: Auth, org: &str, scope: Scope) -> ApiResult<OrgCtx> {
    auth.require(scope)?;
    org_ctx(state, auth, org).await
}

#[utoipa::path(get, path = "/api/v1/orgs", tag = "team", responses((status = 200, body = Vec<OrgView>)))]
pub(crate) async fn list_orgs(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<OrgView>>> {
    auth.require(Scope::TeamRead)?;
    let orgs = state.store.orgs_of_user(&auth.user.id).await?;
    Ok(Json(orgs.iter().map(|(o, r)| OrgView::new(o, Some(*r))).collect()))
}

/// A team's name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgRequest {
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/orgs", tag = "team", request_body = OrgRequest,
    responses((status = 201, body = OrgView), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_org(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<OrgRequest>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    auth.require(Scope::TeamWrite)?;
    let name = validate::text("name", &req.name, 100)?;
    let org = state.store.create_team(&name, &auth.user.id).await?;
    Ok((StatusCode::CREATED, Json(OrgView::new(&org, Some(Role::Owner)))))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "team",
    responses((status = 200, body = OrgView), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_org(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
) -> ApiResult<Json<OrgView>> {
    let c = ctx(&state, auth, &org, Scope::TeamRead).await?;
    Ok(Json(OrgView::new(&c.org, Some(c.role))))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "team", request_body = OrgRequest,
    responses((status = 200, body = OrgView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn rename_org(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<OrgRequest>,
) -> ApiResult<Json<OrgView>> {
    let c = ctx(&state, auth, &org, Scope::TeamWrite).await?;
    c.require_admin()?;
    let name = validate::text("name", &req.name, 100)?;
    let org = state.store.rename_org(&c.org.id, &name).await?;
    Ok(Json(OrgView::new(&org, Some(c.role))))
}

/// The org's gateway rate limits per member per agent, in requests per minute, hour and
/// day: `null` is the operator's default, 0 is unlimited.
#[derive(Deserialize, Serialize, ToSchema, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    pub minute: Option<i64>,
    pub hour: Option<i64>,
    pub day: Option<i64>,
}

/// The most requests a rate-limit window may allow (above it, set 0: unlimited).
const MAX_RATE_LIMIT: i64 = 1_000_000_000;

impl RateLimits {
    fn of(org: &tollgate_store::orgs::Org) -> RateLimits {
        RateLimits { minute: org.rate_limit_minute, hour: org.rate_limit_hour, day: org.rate_limit_day }
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/rate-limits", tag = "team",
    responses((status = 200, body = RateLimits), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_rate_limits(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
) -> ApiResult<Json<RateLimits>> {
    let c = ctx(&state, auth, &org, Scope::TeamRead).await?;
    Ok(Json(RateLimits::of(&c.org)))
}

/// Sets the org's gateway rate limits (owners and admins); every gateway replica applies
/// them to the next call.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/rate-limits", tag = "team", request_body = RateLimits,
    responses((status = 200, body = RateLimits), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn set_rate_limits(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<RateLimits>,
) -> ApiResult<Json<RateLimits>> {
    let c = ctx(&state, auth, &org, Scope::TeamWrite).await?;
    c.require_admin()?;
    for (field, value) in [("minute", req.minute), ("hour", req.hour), ("day", req.day)] {
        if value.is_some_and(|v| !(0..=MAX_RATE_LIMIT).contains(&v)) {
            return Err(ApiError::invalid(
                field,
                format!("must be null (the operator's default), 0 (unlimited) or up to {MAX_RATE_LIMIT}"),
            ));
        }
    }
    let org = state.store.set_rate_limits(&c.org.id, [req.minute, req.hour, req.day]).await?;
    Ok(Json(RateLimits::of(&org)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "team",
    responses((status = 200, body = Vec<MemberView>), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_members(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<MemberView>>> {
    let c = ctx(&state, auth, &org, Scope::TeamRead).await?;
    Ok(Json(state.store.members(&c.org.id).await?.iter().map(MemberView::from).collect()))
}

/// A role: `owner`, `admin`, `member` or `viewer`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub role: String,
}

fn parse_role(text: &str) -> ApiResult<Role> {
    Role::parse(text).ok_or_else(|| ApiError::invalid("role", "must be owner, admin, member or viewer"))
}

fn last_owner() -> ApiError {
    ApiError::Conflict("last_owner", "an organization needs at least one owner; make someone else owner first".into())
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/members/{user}", tag = "team", request_body = RoleRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn change_role(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, user)): Path<(String, String)>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> ApiResult<StatusCode> {
    let c = ctx(&state, auth, &org, Scope::TeamWrite).await?;
    c.require_admin()?;
    let role = parse_role(&req.role)?;
    let current = state.store.membership(&c.org.id, &user).await?.ok_or(ApiError::NotFound("member"))?;
    if c.org.personal {
        return Err(ApiError::Forbidden("a personal organization has one member; create a team to share".into()));
    }
    if (role == Role::Owner || current == Role::Owner) && c.role != Role::Owner {
        return Err(ApiError::Forbidden("only owners can grant or take away the owner role".into()));
    }
    match state.store.set_role(&c.org.id, &user, role).await {
        Err(StoreError::Conflict(_)) => Err(last_owner()),
        other => other.map(|_| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/{user}", tag = "team",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let c = ctx(&state, auth, &org, Scope::TeamWrite).await?;
    let leaving_self = user == c.auth.user.id;
    if !leaving_self {
        c.require_admin()?;
    }
    let current = state.store.membership(&c.org.id, &user).await?.ok_or(ApiError::NotFound("member"))?;
    if c.org.personal {
        return Err(ApiError::Forbidden("nobody can leave or be removed from a personal organization".into()));
    }
    if current == Role::Owner && c.role != Role::Owner {
        return Err(ApiError::Forbidden("only owners can remove an owner".into()));
    }
    match state.store.remove_member(&c.org.id, &user).await {
        Err(StoreError::Conflict(_)) => Err(last_owner()),
        other => other.map(|_| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}

/// Whom to invite, with which role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    pub role: String,
}

/// A new invitation. `token` is shown once: the invitee accepts with it (or from the list
/// of invitations addressed to their email).
#[derive(Serialize, ToSchema)]
pub struct NewInvitationView {
    pub invitation: InvitationView,
    pub token: String,
    pub accept_url: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invitations", tag = "team", request_body = InviteRequest,
    responses((status = 201, body = NewInvitationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn invite(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<NewInvitationView>)> {
    let c = ctx(&state, auth, &org, Scope::TeamWrite).await?;
    c.require_admin()?;
    if c.org.personal {
        return Err(ApiError::Forbidden(
            "create a team to invite people; personal organizations have one member".into(),
        ));
    }
    let email = validate::email("email", &req.email)?;
    let role = parse_role(&req.role)?;
    if role == Role::Owner && c.role != Role::Owner {
        return Err(ApiError::Forbidden("only owners can invite owners".into()));
    }
    if state.store.members(&c.org.id).await?.iter().any(|m| m.email == email) {
        return Err(ApiError::Conflict("already_member", format!("{email} is already a member")));
    }
    let token = format!("tg_inv_{}", random_token(32)?);
    let invitation = state
        .store
        .create_invitation(
            &c.org.id,
            &email,
            role,
            &sha256_hex(token.as_bytes()),
            &c.auth.user.id,
            now_ms() + INVITATION_TTL_MS,
        )
        .await?;
    if let Some((invitee, _)) = state.store.user_by_email(&email).await? {
        crate::notify::invitation(&state, &invitee.id, &c.auth.user, &c.org, role, &invitation.id).await?;
    }
    tracing::info!(org.id = %c.org.id, invitation.id = %invitation.id, "invitation created");
    let accept_url = format!("{}/invitations/{token}", state.config.public_url.trim_end_matches('/'));
    Ok((StatusCode::CREATED, Json(NewInvitationView { invitation: (&invitation).into(), token, accept_url })))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invitations", tag = "team",
    responses((status = 200, body = Vec<InvitationView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_invitations(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<InvitationView>>> {
    let c = ctx(&state, auth, &org, Scope::TeamRead).await?;
    c.require_admin()?;
    Ok(Json(state.store.org_invitations(&c.org.id).await?.iter().map(InvitationView::from).collect()))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/invitations/{id}", tag = "team",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_invitation(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let c = ctx(&state, auth, &org, Scope::TeamWrite).await?;
    c.require_admin()?;
    match state.store.revoke_invitation(&c.org.id, &id).await {
        Err(StoreError::NotFound) => Err(ApiError::NotFound("invitation")),
        other => other.map(|_| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}

#[utoipa::path(get, path = "/api/v1/invitations", tag = "team", responses((status = 200, body = Vec<InvitationView>)))]
pub(crate) async fn my_invitations(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<InvitationView>>> {
    auth.require(Scope::TeamRead)?;
    Ok(Json(state.store.invitations_for_email(&auth.user.email).await?.iter().map(InvitationView::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", tag = "team",
    params(("token" = String, Path, description = "The invitation's token (`tg_inv_…`), from the link the inviter shared. \
        Only the token accepts: an account's email is not proof of owning the address, so an invitation listed as \
        addressed to you still needs its link")),
    responses((status = 200, body = InvitationView), (status = 404, body = ErrorBody)))]
pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    auth: Auth,
    Path(token): Path<String>,
) -> ApiResult<Json<InvitationView>> {
    auth.require(Scope::TeamWrite)?;
    if !token.starts_with("tg_inv_") {
        return Err(ApiError::NotFound("invitation"));
    }
    match state.store.accept_invitation(&sha256_hex(token.as_bytes()), &auth.user.id, &auth.user.email).await {
        Err(StoreError::NotFound) => Err(ApiError::NotFound("invitation")),
        other => Ok(Json((&other?).into())),
    }
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", responses((status = 200, body = Vec<NotificationView>)))]
pub(crate) async fn notifications(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<NotificationView>>> {
    auth.require(Scope::NotificationsRead)?;
    Ok(Json(state.store.notifications(&auth.user.id, 100).await?.iter().map(NotificationView::from).collect()))
}

/// Which notification to mark read; absent = all.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    pub id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications", request_body = MarkReadRequest,
    responses((status = 204), (status = 404, body = ErrorBody, description = "No such notification of yours")))]
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<MarkReadRequest>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::NotificationsRead)?;
    match state.store.mark_notifications_read(&auth.user.id, req.id.as_deref()).await {
        Err(StoreError::NotFound) => Err(ApiError::NotFound("notification")),
        other => other.map(|_| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}
