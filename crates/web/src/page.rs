//! What every page shares: the browser's request as an API caller, the signed-in person,
//! the layout's data, forms and their errors, redirects and error pages.

use crate::Web;
use crate::assets;
use crate::client::{Caller, Failure, query};
use crate::model::Me;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The browser's request: who it is for the API, and where it was going.
#[derive(Debug, Clone)]
pub struct Browser {
    pub caller: Caller,
    /// The path and query asked for, to come back to after logging in.
    pub here: String,
}

impl FromRequestParts<Web> for Browser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Browser, Self::Rejection> {
        let caller = Caller {
            cookie: parts.headers.get(header::COOKIE).cloned(),
            csrf: None,
            forwarded_for: parts.headers.get_all("x-forwarded-for").iter().cloned().collect(),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
        };
        let here = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        Ok(Browser { caller, here })
    }
}

/// A signed-in person and their session's CSRF token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub me: Me,
    pub csrf: String,
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: to the log-in page, then back to `next`.
    Login { next: String },
    /// No such thing, or not yours.
    NotFound,
    /// The API refused or failed.
    Failure(Failure),
}

impl From<Failure> for PageError {
    fn from(f: Failure) -> Self {
        match f.status {
            StatusCode::UNAUTHORIZED => PageError::Login { next: "/dashboard".into() },
            StatusCode::NOT_FOUND => PageError::NotFound,
            _ => PageError::Failure(f),
        }
    }
}

/// A page's result.
pub type PageResult = Result<Response, PageError>;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: String,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::Login { next } => return see_other(&format!("/login{}", query(&[("next", &next)]))),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found".to_string(),
                "There is nothing here, or it belongs to another organization.".to_string(),
            ),
            PageError::Failure(f) if f.status == StatusCode::FORBIDDEN && f.message.contains("CSRF") => (
                StatusCode::FORBIDDEN,
                "This form has expired".to_string(),
                "The form did not carry this session's security token, so nothing was changed. Go back, reload \
                 the page and try again."
                    .to_string(),
            ),
            PageError::Failure(f) if f.status == StatusCode::FORBIDDEN => {
                (StatusCode::FORBIDDEN, "Not allowed".to_string(), sentence(&f.message))
            }
            PageError::Failure(f) if f.status.is_server_error() => {
                tracing::error!(error = %f.message, "page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong".to_string(),
                    "Something went wrong on our side. Try again in a moment.".to_string(),
                )
            }
            PageError::Failure(f) => (f.status, "That did not work".to_string(), sentence(&f.message)),
        };
        let page = ErrorPage { chrome: Chrome::anonymous(&heading), heading, message };
        render_status(status, &page)
    }
}

/// `message` with a capital first letter and a full stop.
pub fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A 303 to `location`.
pub fn see_other(location: &str) -> Response {
    let value = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response()
}

/// A page rendered with `status`.
pub fn render_status<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong on our side").into_response()
        }
    }
}

/// The signed-in person, if the session is live.
pub async fn viewer(web: &Web, browser: &Browser) -> Result<Option<Viewer>, PageError> {
    if browser.caller.cookie.is_none() {
        return Ok(None);
    }
    let reply = web.api.get(&browser.caller, "/api/v1/me").await?;
    if reply.status == StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    let me: Me = reply.into_json()?;
    let csrf = me.csrf_token.clone().unwrap_or_default();
    Ok(Some(Viewer { me, csrf }))
}

/// The signed-in person, or a redirect to the log-in page and back here.
pub async fn signed_in(web: &Web, browser: &Browser) -> Result<Viewer, PageError> {
    viewer(web, browser).await?.ok_or_else(|| PageError::Login { next: browser.here.clone() })
}

/// A message shown at the top of a page after something was done.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `ok`, `warn` or `error`.
    pub kind: &'static str,
    pub text: String,
}

/// The fixed messages a redirect can ask for with `?notice=`.
pub fn notice(code: &str) -> Option<Notice> {
    let ok = |text: &str| Some(Notice { kind: "ok", text: text.into() });
    match code {
        "welcome" => ok("Welcome! Your account is ready, with free credits to try any agent."),
        "logged_out" => ok("You are logged out."),
        "installed" => ok("Installed. Create a key below to start calling the agent."),
        "uninstalled" => ok("Uninstalled. Every key of that installation was revoked."),
        "key_revoked" => ok("The key is revoked; calls with it are refused from now on."),
        "limits_saved" => ok("The key's daily limits are saved."),
        "timeout_saved" => ok("The task timeout is saved."),
        "review_saved" => ok("Your review is saved."),
        "review_deleted" => ok("Your review is deleted."),
        _ => None,
    }
}

/// What the layout shows around every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    /// The nav entry to mark current: `store`, `dashboard` or empty.
    pub nav: &'static str,
    /// The signed-in person's name, if any.
    pub user: Option<String>,
    pub csrf: String,
    /// `light`, `dark`, or empty to follow the system.
    pub theme: String,
    pub notice: Option<Notice>,
    pub css: String,
    pub js: String,
    pub logo: String,
}

impl Chrome {
    /// The layout for `viewer` (or nobody).
    pub fn new(title: &str, nav: &'static str, viewer: Option<&Viewer>) -> Chrome {
        Chrome {
            title: title.to_string(),
            nav,
            user: viewer.map(|v| v.me.user.name.clone()),
            csrf: viewer.map(|v| v.csrf.clone()).unwrap_or_default(),
            theme: viewer.map(|v| v.me.user.theme.clone()).filter(|t| t == "light" || t == "dark").unwrap_or_default(),
            notice: None,
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            logo: assets::url("logo.svg"),
        }
    }

    /// The layout for nobody in particular (error pages).
    pub fn anonymous(title: &str) -> Chrome {
        Chrome::new(title, "", None)
    }

    /// With the notice `?notice=` asked for, if it is one.
    pub fn with_notice(mut self, code: Option<&str>) -> Chrome {
        self.notice = code.and_then(notice);
        self
    }

    /// With an error notice.
    pub fn with_error(mut self, text: &str) -> Chrome {
        self.notice = Some(Notice { kind: "error", text: sentence(text) });
        self
    }
}

/// A submitted form: its fields in order (a name may repeat).
#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// The form's CSRF token (the hidden `csrf` field).
    pub fn csrf(&self) -> &str {
        self.get("csrf")
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<FormData, Response> {
        let bytes = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        Ok(FormData(form_urlencoded::parse(&bytes).into_owned().collect()))
    }
}

/// A form as shown: the values typed and the errors next to the fields.
#[derive(Debug, Clone, Default)]
pub struct FormState {
    pub values: HashMap<String, String>,
    pub errors: HashMap<String, String>,
    /// An error about the whole form.
    pub general: Option<String>,
}

impl FormState {
    /// A form showing `values`.
    pub fn with(values: &[(&str, String)]) -> FormState {
        FormState { values: values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(), ..FormState::default() }
    }

    /// The form as submitted.
    pub fn from_data(data: &FormData) -> FormState {
        FormState {
            values: data.0.iter().filter(|(k, _)| k != "csrf").map(|(k, v)| (k.clone(), v.clone())).collect(),
            ..FormState::default()
        }
    }

    /// The value of `name`, or "".
    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    /// Whether `name` holds `value` (for `selected` and `checked`).
    pub fn is(&self, name: &str, value: &str) -> bool {
        self.value(name) == value
    }

    /// The error next to `name`.
    pub fn error(&self, name: &str) -> Option<&str> {
        self.errors.get(name).map(String::as_str)
    }

    /// Places the API's failure next to the form field it names (`fields` maps API fields
    /// to form fields; a name not listed maps to itself), or on the whole form.
    pub fn fail(mut self, f: &Failure, fields: &[(&str, &str)], known: &[&str]) -> FormState {
        let api_field = f.field.as_deref().unwrap_or("");
        let field = fields.iter().find(|(api, _)| *api == api_field).map(|(_, form)| *form).unwrap_or(api_field);
        let message = sentence(f.message.strip_prefix(&format!("{api_field}: ")).unwrap_or(&f.message));
        if known.contains(&field) {
            self.errors.insert(field.to_string(), message);
        } else {
            self.general = Some(message);
        }
        self
    }

    /// Whether anything is wrong.
    pub fn failed(&self) -> bool {
        self.general.is_some() || !self.errors.is_empty()
    }
}

/// A local path to go to after logging in: `next` when it is one, else `fallback`.
pub fn local_path<'a>(next: &'a str, fallback: &'a str) -> &'a str {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.starts_with("/login");
    if ok && !next.chars().any(char::is_control) { next } else { fallback }
}

/// The query parameter `name` of a raw query map, or "".
pub fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> &'a str {
    q.get(name).map(String::as_str).unwrap_or("")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn failures_land_next_to_their_field() {
        let f = Failure {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_request".into(),
            message: "daily_limits.requests: must be 0 (unlimited) or a positive number".into(),
            field: Some("daily_limits.requests".into()),
            retry_after: None,
        };
        let form = FormState::default().fail(&f, &[("daily_limits.requests", "requests")], &["name", "requests"]);
        assert_eq!(form.error("requests"), Some("Must be 0 (unlimited) or a positive number."));
        assert!(form.general.is_none());
        let other = FormState::default().fail(&Failure { field: None, ..f }, &[], &["name"]);
        assert!(other.general.is_some() && other.errors.is_empty());
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/agents/echo?tab=reviews", "/d"), "/agents/echo?tab=reviews");
        for bad in ["https://evil.example", "//evil.example", "/\\evil", "", "/login?next=/x", "/x\r\nSet-Cookie: a"] {
            assert_eq!(local_path(bad, "/d"), "/d", "{bad}");
        }
    }

    #[test]
    fn sentences() {
        assert_eq!(sentence("wrong email or password"), "Wrong email or password.");
        assert_eq!(sentence("Done!"), "Done!");
        assert_eq!(sentence(""), "");
    }
}
