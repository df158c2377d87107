//! Sign-up, log-in, log-out, `me`, and account tokens.

use crate::auth::{ACCOUNT_TOKEN_PREFIX, Auth, ClientAddr, SESSION_COOKIE, cookie};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views::{ErrorBody, InvitationView, MeView, NewTokenView, OrgView, SessionView, TokenView, UserView};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tollgate_domain::catalog::{Role, Scope};
use tollgate_domain::secret::{hash_password, new_id, random_token, sha256_hex, verify_password};
use tollgate_domain::time::now_ms;
use tollgate_domain::validate;
use tollgate_store::StoreError;
use tollgate_store::accounts::{AccountToken, User};
use tollgate_store::orgs::Org;
use utoipa::ToSchema;

/// Sessions last seven days.
pub const SESSION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me).patch(update_me).delete(close_account))
        .route("/tokens", post(create_token).get(list_tokens))
        .route("/tokens/{id}", delete(revoke_token))
}

/// Sign-up form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: String,
    /// 10–128 characters mixing at least two of lowercase, uppercase, digits, symbols.
    pub password: String,
    pub name: String,
}

/// Log-in form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Creates a user with a personal org and the signup grant. Shared by the API, the
/// CLI (`tollgate admin create-user`) and the demo seeder.
pub async fn sign_up(state: &AppState, email: &str, password: &str, name: &str) -> ApiResult<(User, Org)> {
    let email = validate::email("email", email)?;
    validate::password("password", password)?;
    let name = validate::text("name", name, 100)?;
    let password = password.to_owned();
    let hash = off_workers(move || hash_password(&password)).await??;
    match state.store.create_user(&email, &name, &hash, state.config.signup_grant).await {
        Err(StoreError::Conflict(_)) => {
            Err(ApiError::Conflict("email_taken", "an account with this email already exists; log in instead".into()))
        }
        other => Ok(other?),
    }
}

/// At most this many password hashes are computed at once. Each takes tens of milliseconds
/// of CPU and 19 MiB of memory, so they run on the blocking pool, never on the workers that
/// serve the gateway, and a flood of sign-ups or log-ins queues here instead of piling up
/// threads.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Runs password hashing or verification off the async workers.
async fn off_workers<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    let _permit = HASHING.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(e.to_string()))
}

/// Whether `password` matches `hash`, checked off the async workers.
async fn password_matches(password: &str, hash: &str) -> ApiResult<bool> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    off_workers(move || verify_password(&password, &hash)).await
}

async fn start_session(state: &AppState, user: &User, org: &Org, status: StatusCode) -> ApiResult<Response> {
    let token = random_token(43)?;
    let csrf = random_token(32)?;
    state.store.create_session(&sha256_hex(token.as_bytes()), &user.id, &csrf, now_ms() + SESSION_TTL_MS).await?;
    let secure = if state.config.cookie_secure { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", SESSION_TTL_MS / 1000);
    let body = SessionView { user: user.into(), org: OrgView::new(org, Some(Role::Owner)), csrf_token: csrf };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?);
    Ok(response)
}

#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = SessionView, description = "Signed up and signed in; the session cookie is set"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "Too many accounts made from this address lately")))]
pub(crate) async fn signup(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<Response> {
    if let Some(retry_after_secs) = state.signups.check(&address, now_ms()).await? {
        return Err(ApiError::TooManyRequests {
            message: "too many accounts were made from your address lately; wait and try again".into(),
            retry_after_secs,
        });
    }
    let (user, org) = sign_up(&state, &req.email, &req.password, &req.name).await?;
    state.signups.signed_up(&address, now_ms()).await?;
    tracing::info!(user.id = %user.id, org.id = %org.id, "user signed up");
    start_session(&state, &user, &org, StatusCode::CREATED).await
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let email = req.email.trim().to_ascii_lowercase();
    let now = now_ms();
    if let Some(retry_after_secs) = state.throttle.check(&email, &address, now).await? {
        return Err(ApiError::TooManyRequests {
            message: "too many failed log-in attempts; wait and try again".into(),
            retry_after_secs,
        });
    }
    let found = state.store.user_by_email(&email).await?;
    // Verify against a fixed hash when the user is unknown, so timing does not tell.
    const UNKNOWN: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wH0bSJ9fGm5DFLDvTUdSPJ/Oo0zKmaMgV+JbqLTj9j0";
    let ok = match &found {
        Some((_, hash)) => password_matches(&req.password, hash).await?,
        None => {
            let _ = password_matches(&req.password, UNKNOWN).await?;
            false
        }
    };
    let Some((user, _)) = found.filter(|_| ok) else {
        state.throttle.fail(&email, &address, now).await?;
        return Err(ApiError::Unauthorized("wrong email or password".into()));
    };
    state.throttle.succeed(&email).await?;
    let org = state.store.personal_org(&user).await?;
    start_session(&state, &user, &org, StatusCode::OK).await
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out; the cookie is cleared")))]
pub(crate) async fn logout(State(state): State<AppState>, _auth: Auth, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.store.delete_session(&sha256_hex(token.as_bytes())).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
pub(crate) async fn me(State(state): State<AppState>, auth: Auth, headers: HeaderMap) -> ApiResult<Json<MeView>> {
    auth.require(Scope::AccountRead)?;
    let orgs = state.store.orgs_of_user(&auth.user.id).await?;
    let invitations = state.store.invitations_for_email(&auth.user.email).await?;
    let csrf_token = match cookie(&headers, SESSION_COOKIE) {
        Some(token) if headers.get(header::AUTHORIZATION).is_none() => {
            state.store.session(&sha256_hex(token.as_bytes()), now_ms()).await?.map(|(_, csrf)| csrf)
        }
        _ => None,
    };
    let unread_notifications = match auth.require(Scope::NotificationsRead) {
        Ok(()) => Some(state.store.unread_notifications(&auth.user.id).await?),
        Err(_) => None,
    };
    Ok(Json(MeView {
        user: (&auth.user).into(),
        unread_notifications,
        orgs: orgs.iter().map(|(o, r)| OrgView::new(o, Some(*r))).collect(),
        invitations: invitations.iter().map(InvitationView::from).collect(),
        csrf_token,
    }))
}

/// Profile and preference changes; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    pub name: Option<String>,
    /// `light`, `dark`, or `system` (follow the device's setting; what new users start with).
    pub theme: Option<String>,
    pub email_notifications: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "auth", request_body = UpdateMeRequest,
    responses((status = 200, body = UserView), (status = 422, body = ErrorBody)))]
pub(crate) async fn update_me(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> ApiResult<Json<UserView>> {
    auth.require(Scope::AccountWrite)?;
    let name = req.name.as_deref().map(|n| validate::text("name", n, 100)).transpose()?;
    if let Some(theme) = req.theme.as_deref().filter(|t| !["light", "dark", "system"].contains(t)) {
        return Err(ApiError::invalid("theme", format!("must be \"light\", \"dark\" or \"system\", not \"{theme}\"")));
    }
    let user =
        state.store.update_user(&auth.user.id, name.as_deref(), req.theme.as_deref(), req.email_notifications).await?;
    Ok(Json((&user).into()))
}

/// Closing the account, confirmed with its password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseAccountRequest {
    pub password: String,
}

#[utoipa::path(delete, path = "/api/v1/me", tag = "auth", request_body = CloseAccountRequest,
    responses((status = 204, description = "Closed: keys, tokens and sessions revoked; the session cookie is cleared"),
              (status = 409, body = ErrorBody, description = "The only owner of a team with other members, or agents still published"),
              (status = 422, body = ErrorBody, description = "Not the account's password"), (status = 429, body = ErrorBody)))]
pub(crate) async fn close_account(
    State(state): State<AppState>,
    auth: Auth,
    ClientAddr(address): ClientAddr,
    ApiJson(req): ApiJson<CloseAccountRequest>,
) -> ApiResult<Response> {
    auth.require(Scope::AccountWrite)?;
    let (me, email, now) = (&auth.user.id, &auth.user.email, now_ms());
    if let Some(retry_after_secs) = state.throttle.check(email, &address, now).await? {
        return Err(ApiError::TooManyRequests {
            message: "too many wrong passwords; wait and try again".into(),
            retry_after_secs,
        });
    }
    let (_, hash) = state.store.user_by_email(email).await?.ok_or(ApiError::NotFound("user"))?;
    if !password_matches(&req.password, &hash).await? {
        state.throttle.fail(email, &address, now).await?;
        return Err(ApiError::invalid("password", "is not this account's password"));
    }
    // Teams with someone else in them are left; the personal org and teams of one are
    // left behind, inert.
    let (mut leave, mut inert, mut sole) = (Vec::new(), Vec::new(), Vec::new());
    for (org, role) in state.store.orgs_of_user(me).await? {
        let members = if org.personal { Vec::new() } else { state.store.members(&org.id).await? };
        let others: Vec<_> = members.iter().filter(|m| &m.user_id != me).collect();
        if others.is_empty() {
            inert.push(org.id);
        } else if role == Role::Owner && !others.iter().any(|m| m.role == Role::Owner) {
            sole.push(org.name);
        } else {
            leave.push(org.id);
        }
    }
    if !sole.is_empty() {
        let message = format!("you are the only owner of {}; make another member owner first", sole.join(", "));
        return Err(ApiError::Conflict("sole_owner", message));
    }
    let mut published = Vec::new();
    for org in &inert {
        for (agent, versions) in state.store.org_agents(org).await? {
            if versions.iter().any(|v| v.status != "retired") {
                published.push(agent.slug);
            }
        }
    }
    if !published.is_empty() {
        let message = format!(
            "retire every version of {} first: consumers call them, and nobody could manage them once the account is closed",
            published.join(", ")
        );
        return Err(ApiError::Conflict("publishes_agents", message));
    }
    match state.store.close_account(me, &leave, &inert).await {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict("sole_owner", "a team's owners changed meanwhile; try again".into()));
        }
        other => other?,
    }
    tracing::info!(user.id = %me, "account closed");
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// A new account token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    /// Scopes such as `usage:read`; empty or absent = every scope.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// 30, 90 or 365; null or absent = never expires.
    pub expires_in_days: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = NewTokenView), (status = 409, body = ErrorBody, description = "Already 10 active tokens"),
              (status = 422, body = ErrorBody)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<NewTokenView>)> {
    auth.require(Scope::AccountWrite)?;
    let name = validate::text("name", &req.name, 100)?;
    let mut scopes = Vec::new();
    for s in &req.scopes {
        let scope = Scope::parse(s).ok_or_else(|| {
            let all: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid("scopes", format!("\"{s}\" is not a scope; use {}", all.join(", ")))
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    // A scoped token cannot mint a token with more power than it has.
    if let Some(own) = &auth.scopes
        && (scopes.is_empty() || scopes.iter().any(|s| !own.contains(s)))
    {
        return Err(ApiError::Forbidden("a scoped token can only create tokens with a subset of its scopes".into()));
    }
    let now = now_ms();
    let expires_at = match req.expires_in_days {
        None => None,
        Some(days @ (30 | 90 | 365)) => Some(now + days * 86_400_000),
        Some(_) => return Err(ApiError::invalid("expires_in_days", "must be 30, 90, 365 or null (never)")),
    };
    let secret = format!("{ACCOUNT_TOKEN_PREFIX}{}", random_token(40)?);
    let token = AccountToken {
        id: new_id("tok")?,
        user_id: auth.user.id.clone(),
        name,
        prefix: secret.chars().take(ACCOUNT_TOKEN_PREFIX.len() + 6).collect(),
        scopes: scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
        expires_at,
        revoked_at: None,
        last_used_at: None,
        created_at: now,
    };
    match state.store.create_account_token(&token, &sha256_hex(secret.as_bytes())).await {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(
                "too_many_tokens",
                "you already have 10 active tokens; revoke one first".into(),
            ));
        }
        other => other?,
    }
    Ok((StatusCode::CREATED, Json(NewTokenView { token: TokenView::new(&token, now), token_secret: secret })))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenView>)))]
pub(crate) async fn list_tokens(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<TokenView>>> {
    auth.require(Scope::AccountRead)?;
    let now = now_ms();
    Ok(Json(state.store.account_tokens(&auth.user.id).await?.iter().map(|t| TokenView::new(t, now)).collect()))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::AccountWrite)?;
    match state.store.revoke_account_token(&auth.user.id, &id).await {
        Err(StoreError::NotFound) => Err(ApiError::NotFound("token")),
        other => other.map(|_| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}
