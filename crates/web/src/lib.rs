//! Tollgate's web UI: server-rendered pages from compile-checked templates (askama),
//! built on the management API called in process.
//!
//! Architecture invariant: a page reads and acts only through `/api/v1` (see [`client`]),
//! with the browser's own session and CSRF token, so there is one implementation of each
//! action and the UI cannot skip a role or scope check. Nothing here touches the store.
//!
//! Every page works without JavaScript; `app.js` adds copy buttons, tab switching without
//! a reload, confirmations and chart tooltips. Charts are inline SVG drawn by [`charts`].

pub mod assets;
pub mod charts;
pub mod client;
pub mod format;
pub mod guard;
mod model;
mod page;
mod pages;
pub mod snippets;
pub mod stash;

use axum::Router;
use axum::routing::{get, post};
use client::Api;
use std::sync::Arc;
use tollgate_api::AppState;

/// Settings of the UI that the API does not expose.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The gateway's default rate limits per member per agent (minute, hour, day; 0 =
    /// unlimited), shown on an installation's settings.
    pub rate_limits: [u64; 3],
    /// Whether this instance's gateway serves A2A agents. Until it does, an A2A agent's
    /// pages say plainly that it cannot be called here, instead of showing code that
    /// would fail.
    pub a2a_calls: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { rate_limits: [60, 1000, 10_000], a2a_calls: false }
    }
}

/// The management API and the UI over `state`, every response with the security headers
/// of [`guard::SECURITY_HEADERS`]: what `tollgate serve` answers besides the gateway.
pub fn site(state: AppState, config: WebConfig) -> Router {
    guard::with_security_headers(tollgate_api::router(state.clone()).merge(router(state, config)))
}

/// What every page handler has.
#[derive(Clone)]
pub struct Web {
    pub(crate) api: Api,
    pub(crate) config: Arc<WebConfig>,
    /// Secrets waiting to be shown once (POST → 303 → GET).
    pub(crate) stash: Arc<stash::Stash>,
    /// Whether cookies the UI sets carry `Secure` (as the API's session cookie does).
    pub(crate) cookie_secure: bool,
    /// The platform's share of each charge, in basis points.
    pub(crate) fee_bps: i64,
}

/// The UI's routes, over the API of `state`:
/// `/`, `/store`, `/agents/{slug}`, `/signup`, `/login`, `/logout`, `/dashboard`,
/// `/usage/{installation}`, `/billing`, `/team`, `/invitations/{token}`,
/// `/notifications`, `/settings`, `/publisher/…`, the forms they post to, and
/// `/static/…`. Unknown paths get an HTML 404. Error pages get the layout of the person
/// signed in, and a redirect to log in carries the page asked for (see
/// [`guard::layout_errors`]).
pub fn router(state: AppState, config: WebConfig) -> Router {
    let web = Web {
        cookie_secure: state.config.cookie_secure,
        fee_bps: state.config.platform_fee_bps,
        api: Api::new(tollgate_api::router(state)),
        config: Arc::new(config),
        stash: Arc::default(),
    };
    Router::new()
        .route("/", get(pages::store::home))
        .route("/store", get(pages::store::store))
        .route("/agents/{slug}", get(pages::agent::agent))
        .route("/agents/{slug}/install", post(pages::agent::install))
        .route("/agents/{slug}/review", post(pages::agent::review))
        .route("/signup", get(pages::auth::signup_page).post(pages::auth::signup))
        .route("/login", get(pages::auth::login_page).post(pages::auth::login))
        .route("/logout", post(pages::auth::logout))
        .route("/dashboard", get(pages::dashboard::dashboard))
        .route("/usage/{id}", get(pages::usage::usage))
        .route("/usage/{id}/audit.csv", get(pages::usage::audit_csv))
        .route("/usage/{id}/keys", post(pages::usage::create_key))
        .route("/usage/{id}/keys/{key}/limits", post(pages::usage::key_limits))
        .route("/usage/{id}/keys/{key}/revoke", post(pages::usage::revoke_key))
        .route("/usage/{id}/timeout", post(pages::usage::task_timeout))
        .route("/usage/{id}/uninstall", post(pages::usage::uninstall))
        .route("/org", post(pages::team::switch))
        .route("/billing", get(pages::billing::billing))
        .route("/billing/budget", post(pages::billing::budget))
        .route("/billing/auto-recharge", post(pages::billing::auto_recharge))
        .route("/billing/checkout", post(pages::billing::checkout))
        .route(
            "/billing/test-checkout/{id}",
            get(pages::billing::test_checkout).post(pages::billing::confirm_test_checkout),
        )
        .route("/team", get(pages::team::team))
        .route("/team/new", post(pages::team::create))
        .route("/team/{org}/rename", post(pages::team::rename))
        .route("/team/{org}/invite", post(pages::team::invite))
        .route("/team/{org}/invitations/{id}/revoke", post(pages::team::revoke_invitation))
        .route("/team/{org}/members/{user}/role", post(pages::team::change_role))
        .route("/team/{org}/members/{user}/remove", post(pages::team::remove))
        .route("/invitations/{token}", get(pages::team::invitation))
        .route("/invitations/{token}/accept", post(pages::team::accept))
        .route("/notifications", get(pages::notifications::notifications))
        .route("/notifications/read", post(pages::notifications::mark_all_read))
        .route("/notifications/{id}/read", post(pages::notifications::mark_read))
        .route("/notifications/{id}/open", post(pages::notifications::open))
        .route("/settings", get(pages::settings::settings))
        .route("/settings/theme", post(pages::settings::theme))
        .route("/settings/email", post(pages::settings::email))
        .route("/settings/tokens", post(pages::settings::create_token))
        .route("/settings/tokens/{id}/revoke", post(pages::settings::revoke_token))
        .route("/settings/close", post(pages::settings::close_account))
        .route("/publisher", get(pages::publisher::console))
        .route("/publisher/new", get(pages::publisher::forms::new_agent).post(pages::publisher::forms::create_agent))
        .route("/publisher/agents/{slug}", get(pages::publisher::agent))
        .route(
            "/publisher/agents/{slug}/versions/new",
            get(pages::publisher::forms::new_version).post(pages::publisher::forms::publish_version),
        )
        .route("/publisher/agents/{slug}/versions/{version}/status", post(pages::publisher::set_status))
        .route("/static/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(web.clone(), guard::layout_errors))
        .with_state(web)
}
