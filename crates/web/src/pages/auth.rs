//! Sign-up, log-in and log-out: forms over `/api/v1/auth/*`, passing the API's session
//! cookie through to the browser.

use crate::Web;
use crate::client::{Failure, Reply};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageError, PageResult, SameOrigin, local_path, param, render_status,
    see_other, viewer, with_org_cookie,
};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    form: FormState,
    next: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    chrome: Chrome,
    form: FormState,
    next: String,
}

/// Where to go once signed in.
fn next_of(q: &str) -> String {
    local_path(q, "").to_string()
}

/// `GET /login`: the form; someone signed in goes on to where they were going.
pub async fn login_page(
    State(web): State<Web>,
    browser: Browser,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let next = next_of(param(&q, "next"));
    if viewer(&web, &browser).await?.is_some() {
        return Ok(see_other(local_path(&next, "/dashboard")));
    }
    let chrome = Chrome::new("Log in", "", None).with_notice(q.get("notice").map(String::as_str));
    Ok(render_status(StatusCode::OK, &LoginPage { chrome, form: FormState::default(), next }))
}

/// `GET /signup`.
pub async fn signup_page(
    State(web): State<Web>,
    browser: Browser,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let next = next_of(param(&q, "next"));
    if viewer(&web, &browser).await?.is_some() {
        return Ok(see_other(local_path(&next, "/dashboard")));
    }
    Ok(render_status(
        StatusCode::OK,
        &SignupPage { chrome: Chrome::new("Sign up", "", None), form: FormState::default(), next },
    ))
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
pub async fn login(State(web): State<Web>, _: SameOrigin, browser: Browser, data: FormData) -> PageResult {
    let next = next_of(data.get("next"));
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
    let page = LoginPage { chrome: Chrome::new("Log in", "", None), form, next };
    Ok(render_status(f.status, &page))
}

/// `POST /signup`.
pub async fn signup(State(web): State<Web>, _: SameOrigin, browser: Browser, data: FormData) -> PageResult {
    let next = next_of(data.get("next"));
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
    let page = SignupPage { chrome: Chrome::new("Sign up", "", None), form, next };
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
