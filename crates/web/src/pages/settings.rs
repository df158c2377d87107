//! Settings: the theme (light, dark or the system's), the email preference, and account
//! tokens for the management API (create with scopes and an expiry, shown once; list;
//! revoke). Everything goes through `/api/v1/me` and `/api/v1/tokens`.

use crate::Web;
use crate::client::segment;
use crate::format;
use crate::model::{NewToken, Token};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageError, PageResult, Reveal, Viewer, is_csrf, not_a_form_error,
    render_status, see_other, show_once, signed_in,
};
use crate::stash::Secret;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use tollgate_domain::catalog::Scope;

/// The most active tokens a person may have (as the API enforces).
const MAX_TOKENS: usize = 10;
const EXPIRIES: [(&str, &str); 4] = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")];
const THEMES: [(&str, &str, &str); 3] = [
    ("system", "Follow my device", "Light or dark, as your operating system or browser is set."),
    ("light", "Light", ""),
    ("dark", "Dark", ""),
];

/// What a scope allows, for a person.
fn scope_text(scope: Scope) -> &'static str {
    match scope {
        Scope::AccountRead => "Read your profile and settings",
        Scope::AccountWrite => "Change settings, install agents, manage keys and publish",
        Scope::UsageRead => "Read usage, the audit log and publisher earnings",
        Scope::BillingRead => "Read the balance and transactions",
        Scope::BillingWrite => "Change the budget and auto-recharge",
        Scope::TeamRead => "List teams and members",
        Scope::TeamWrite => "Invite and remove members, change roles",
        Scope::AgentsRead => "List installed and published agents",
        Scope::NotificationsRead => "Read notifications",
    }
}

pub struct ScopeChoice {
    pub scope: &'static str,
    pub text: &'static str,
    pub checked: bool,
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub expires: String,
    pub last_used: String,
    pub created: String,
    pub status: String,
    pub active: bool,
}

pub struct ThemeChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub checked: bool,
}

pub struct NewTokenShown {
    pub name: String,
    pub token: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsTemplate {
    chrome: Chrome,
    email: String,
    themes: Vec<ThemeChoice>,
    theme_error: Option<String>,
    email_notifications: bool,
    tokens: Vec<TokenRow>,
    active: usize,
    max: usize,
    create: FormState,
    scopes: Vec<ScopeChoice>,
    expiries: Vec<(&'static str, &'static str)>,
    new_token: Option<NewTokenShown>,
    token_gone: bool,
    close: FormState,
}

/// The forms as submitted, when one was refused.
#[derive(Default)]
struct Shown {
    create: Option<(FormState, Vec<String>)>,
    theme_error: Option<String>,
    close: Option<FormState>,
    reveal: Reveal,
}

async fn render(
    web: &Web,
    browser: &Browser,
    viewer: &Viewer,
    notice: Option<&str>,
    shown: Shown,
    status: StatusCode,
) -> PageResult {
    let tokens: Vec<Token> = web.api.read(&browser.caller, "/api/v1/tokens").await?;
    let user = &viewer.me.user;
    let theme = if user.theme.is_empty() { "system" } else { user.theme.as_str() };
    let (create, checked) =
        shown.create.unwrap_or_else(|| (FormState::with(&[("expires", "90".to_string())]), Vec::new()));
    let new_token = shown.reveal.secret().map(|s| NewTokenShown { name: s.label.clone(), token: s.value.clone() });
    let page = SettingsTemplate {
        chrome: Chrome::new("Settings", "settings", Some(viewer)).with_notice(notice),
        email: user.email.clone(),
        themes: THEMES
            .iter()
            .map(|(value, label, hint)| ThemeChoice { value, label, hint, checked: *value == theme })
            .collect(),
        theme_error: shown.theme_error,
        email_notifications: user.email_notifications,
        active: tokens.iter().filter(|t| t.status == "active").count(),
        max: MAX_TOKENS,
        tokens: tokens
            .iter()
            .map(|t| TokenRow {
                id: t.id.clone(),
                name: t.name.clone(),
                prefix: t.prefix.clone(),
                scopes: if t.scopes.is_empty() { "All".into() } else { t.scopes.join(", ") },
                expires: t.expires_at.as_deref().map(format::date).unwrap_or_else(|| "Never".into()),
                last_used: t.last_used_at.as_deref().map(format::time).unwrap_or_else(|| "Never".into()),
                created: format::date(&t.created_at),
                status: t.status.clone(),
                active: t.status == "active",
            })
            .collect(),
        scopes: Scope::ALL
            .iter()
            .map(|s| ScopeChoice {
                scope: s.as_str(),
                text: scope_text(*s),
                checked: checked.iter().any(|c| c == s.as_str()),
            })
            .collect(),
        expiries: EXPIRIES.to_vec(),
        create,
        token_gone: shown.reveal.gone(),
        new_token,
        close: shown.close.unwrap_or_default(),
    };
    Ok(shown.reveal.protect(render_status(status, &page)))
}

/// `GET /settings`.
pub async fn settings(
    State(web): State<Web>,
    browser: Browser,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let shown = Shown { reveal: Reveal::take(&web, &browser, &q, "token"), ..Shown::default() };
    render(&web, &browser, &viewer, q.get("notice").map(String::as_str), shown, StatusCode::OK).await
}

/// `POST /settings/theme`: `light`, `dark` or `system`.
pub async fn theme(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let reply = web
        .api
        .patch(&browser.caller.with_csrf(data.csrf()), "/api/v1/me", &json!({"theme": data.get("theme")}))
        .await?;
    if reply.ok() {
        return Ok(see_other("/settings?notice=theme_saved"));
    }
    let f = reply.failure();
    if not_a_form_error(&f) {
        return Err(f.into());
    }
    let shown = Shown {
        theme_error: Some(crate::page::sentence(f.for_field("theme").unwrap_or(&f.message))),
        ..Shown::default()
    };
    render(&web, &browser, &viewer, None, shown, f.status).await
}

/// `POST /settings/email`: the email-notifications checkbox.
pub async fn email(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    signed_in(&web, &browser).await?;
    let on = data.get("email_notifications") == "on";
    let body = json!({"email_notifications": on});
    let reply = web.api.patch(&browser.caller.with_csrf(data.csrf()), "/api/v1/me", &body).await?;
    if reply.ok() { Ok(see_other("/settings?notice=email_saved")) } else { Err(reply.failure().into()) }
}

/// `POST /settings/tokens`: creates an account token and shows it once.
pub async fn create_token(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let scopes: Vec<String> = data.all("scopes").into_iter().map(str::to_string).collect();
    let expires: Value = match data.get("expires") {
        "never" => Value::Null,
        days => days.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(days)),
    };
    let body = json!({"name": data.get("name"), "scopes": scopes, "expires_in_days": expires});
    let reply = web.api.post(&browser.caller.with_csrf(data.csrf()), "/api/v1/tokens", &body).await?;
    if reply.ok() {
        let token: NewToken = reply.into_json()?;
        tracing::info!(token.id = %token.id, "account token created from the web UI");
        let secret = Secret { kind: "token", about: token.id, label: token.name, value: token.token };
        return Ok(show_once(&web, &browser, secret, "/settings", &[], "#new-token"));
    }
    let f = reply.failure();
    if is_csrf(&f) || (not_a_form_error(&f) && f.status != StatusCode::FORBIDDEN) {
        return Err(f.into());
    }
    let form = FormState::from_data(&data).fail(&f, &[("expires_in_days", "expires")], &["name", "scopes", "expires"]);
    let shown = Shown { create: Some((form, scopes)), ..Shown::default() };
    render(&web, &browser, &viewer, None, shown, f.status).await
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(web): State<Web>,
    browser: Browser,
    Path(id): Path<String>,
    data: FormData,
) -> PageResult {
    signed_in(&web, &browser).await?;
    let reply =
        web.api.delete(&browser.caller.with_csrf(data.csrf()), &format!("/api/v1/tokens/{}", segment(&id))).await?;
    if reply.ok() {
        Ok(see_other("/settings?notice=token_revoked#tokens"))
    } else {
        Err(PageError::from(reply.failure()))
    }
}

/// `POST /settings/close`: closes the account, confirmed with the password and a tick.
pub async fn close_account(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let mut form = FormState::default();
    if data.get("confirm") != "yes" {
        form.errors.insert("confirm".into(), "Tick the box to confirm: closing the account cannot be undone.".into());
        let shown = Shown { close: Some(form), ..Shown::default() };
        return render(&web, &browser, &viewer, None, shown, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let caller = browser.caller.with_csrf(data.csrf());
    let reply = web
        .api
        .send(&caller, axum::http::Method::DELETE, "/api/v1/me", Some(&json!({"password": data.get("password")})))
        .await?;
    if reply.ok() {
        let response = crate::pages::auth::with_cookies(&reply, "/login?notice=account_closed");
        return Ok(crate::page::with_org_cookie(&web, response, None));
    }
    let f = reply.failure();
    if is_csrf(&f)
        || !matches!(f.status, StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS)
    {
        return Err(f.into());
    }
    let form = form.fail(&f, &[], &["password"]);
    let shown = Shown { close: Some(form), ..Shown::default() };
    render(&web, &browser, &viewer, None, shown, f.status).await
}
