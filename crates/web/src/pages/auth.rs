//! Sign-up, log-in and log-out: forms over `/api/v1/auth/*`, passing the API's session
//! cookie through to the browser. The log-in and sign-up forms carry a pre-session CSRF
//! token ([`FormToken`]) besides the [`SameOrigin`] check; a post without it is refused
//! before the API is asked anything.

use crate::Web;
use crate::client::{Failure, Reply};
use crate::guard::FormToken;
use crate::page::{
    Browser, Chrome, FormData, FormState, PageError, PageResult, SameOrigin, local_path, param, render_status,
    see_other, viewer, with_org_cookie,
};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    form: FormState,
    next: String,
    token: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    chrome: Chrome,
    form: FormState,
    next: String,
    token: String,
}

/// Where to go once signed in.
fn next_of(q: &str) -> String {
    local_path(q, "").to_string()
}

/// `GET /login`: the form; someone signed in goes on to where they were going.
pub async fn login_page(
    State(web): State<Web>,
    browser: Browser,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let next = next_of(param(&q, "next"));
    if viewer(&web, &browser).await?.is_some() {
        return Ok(see_other(local_path(&next, "/dashboard")));
    }
    let chrome = Chrome::new("Log in", "", None).with_notice(q.get("notice").map(String::as_str));
    let token = FormToken::of(&headers);
    let page = LoginPage { chrome, form: FormState::default(), next, token: token.value.clone() };
    Ok(token.set(&web, render_status(StatusCode::OK, &page)))
}

/// `GET /signup`.
pub async fn signup_page(
    State(web): State<Web>,
    browser: Browser,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let next = next_of(param(&q, "next"));
    if viewer(&web, &browser).await?.is_some() {
        return Ok(see_other(local_path(&next, "/dashboard")));
    }
    let token = FormToken::of(&headers);
    let page = SignupPage {
        chrome: Chrome::new("Sign up", "", None),
        form: FormState::default(),
        next,
        token: token.value.clone(),
    };
    Ok(token.set(&web, render_status(StatusCode::OK, &page)))
}

/// The message of a log-in or sign-up form posted without its token.
const FORM_EXPIRED: &str = "This form expired or did not come from this site, so nothing was done. \
     Check the fields and send it again.";

/// A log-in or sign-up form refused for its token, shown again (as typed, less the
/// password) with a new token.
fn refused(form: &FormData) -> (FormState, FormToken) {
    let mut form = FormState::from_data(form);
    form.values.remove("password");
    form.general = Some(FORM_EXPIRED.into());
    (form, FormToken::new())
}

/// A 303 to `location` carrying the API's `Set-Cookie` headers.
pub(crate) fn with_cookies(reply: &Reply, location: &str) -> Response {
    let mut response = see_other(location);
    for cookie in reply.set_cookies() {
        response.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
    response
}

/// "Try again in 3 minutes" for a 429.
fn wait_message(f: &Failure) -> String {
    let minutes = f.retry_after.map(|s| s.div_ceil(60)).unwrap_or(15).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Too many failed log-in attempts. For your safety, wait and try again in {minutes} {unit}.")
}

/// `POST /login`.
pub async fn login(
    State(web): State<Web>,
    _: SameOrigin,
    browser: Browser,
    headers: HeaderMap,
    data: FormData,
) -> PageResult {
    let next = next_of(data.get("next"));
    if !FormToken::matches(&headers, data.csrf()) {
        let (form, token) = refused(&data);
        let page = LoginPage { chrome: Chrome::new("Log in", "", None), form, next, token: token.value.clone() };
        return Ok(token.set(&web, render_status(StatusCode::FORBIDDEN, &page)));
    }
    let token = FormToken::of(&headers);
    let body = json!({"email": data.get("email"), "password": data.get("password")});
    let reply = web.api.post(&browser.caller, "/api/v1/auth/login", &body).await?;
    if reply.ok() {
        return Ok(with_cookies(&reply, local_path(&next, "/dashboard")));
    }
    let f = reply.failure();
    let mut form = FormState::from_data(&data);
    form.values.remove("password");
    form = match f.status {
        StatusCode::TOO_MANY_REQUESTS => FormState { general: Some(wait_message(&f)), ..form },
        StatusCode::UNAUTHORIZED => {
            FormState { general: Some("Wrong email or password. Check both and try again.".into()), ..form }
        }
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => form.fail(&f, &[], &["email", "password"]),
        _ => return Err(PageError::Failure(f)),
    };
    let page = LoginPage { chrome: Chrome::new("Log in", "", None), form, next, token: token.value.clone() };
    Ok(render_status(f.status, &page))
}

/// `POST /signup`.
pub async fn signup(
    State(web): State<Web>,
    _: SameOrigin,
    browser: Browser,
    headers: HeaderMap,
    data: FormData,
) -> PageResult {
    let next = next_of(data.get("next"));
    if !FormToken::matches(&headers, data.csrf()) {
        let (form, token) = refused(&data);
        let page = SignupPage { chrome: Chrome::new("Sign up", "", None), form, next, token: token.value.clone() };
        return Ok(token.set(&web, render_status(StatusCode::FORBIDDEN, &page)));
    }
    let token = FormToken::of(&headers);
    let body = json!({"email": data.get("email"), "password": data.get("password"), "name": data.get("name")});
    let reply = web.api.post(&browser.caller, "/api/v1/auth/signup", &body).await?;
    if reply.ok() {
        let location = if next.is_empty() { "/dashboard?notice=welcome".to_string() } else { next };
        return Ok(with_cookies(&reply, &location));
    }
    let f = reply.failure();
    let mut form = FormState::from_data(&data);
    form.values.remove("password");
    form = match (f.status, f.code.as_str()) {
        (StatusCode::CONFLICT, "email_taken") => {
            let mut form = form;
            form.errors.insert("email".into(), "An account with this email already exists. Log in instead.".into());
            form
        }
        (StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST, _) => {
            form.fail(&f, &[], &["name", "email", "password"])
        }
        _ => return Err(PageError::Failure(f)),
    };
    let page = SignupPage { chrome: Chrome::new("Sign up", "", None), form, next, token: token.value.clone() };
    Ok(render_status(f.status, &page))
}

/// `POST /logout`: ends the session (the form carries its CSRF token).
pub async fn logout(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let reply = web.api.post(&browser.caller.with_csrf(data.csrf()), "/api/v1/auth/logout", &json!({})).await?;
    match reply.status {
        s if s.is_success() => Ok(with_org_cookie(&web, with_cookies(&reply, "/login?notice=logged_out"), None)),
        StatusCode::UNAUTHORIZED => Ok(see_other("/login").into_response()),
        _ => Err(PageError::Failure(reply.failure())),
    }
}
