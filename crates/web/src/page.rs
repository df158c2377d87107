//! What every page shares: the browser's request as an API caller, the signed-in person,
//! the layout's data, forms and their errors, redirects and error pages.

use crate::Web;
use crate::assets;
use crate::client::{Caller, Failure, query};
use crate::guard::{ErrorPage, Unfinished};
use crate::model::{Me, OrgRef};
use crate::stash::Secret;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The cookie naming the org the UI acts in (a team's id); absent, the personal org.
pub const ORG_COOKIE: &str = "tollgate_org";

/// The browser's request: who it is for the API, and where it was going. Extracting it
/// reads `/api/v1/me` once (when a session cookie is there), so every page knows the
/// signed-in person and the org the UI acts in without asking again.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The caller, acting in the chosen org when it is one of the person's teams.
    pub caller: Caller,
    /// The path and query asked for, to come back to after logging in.
    pub here: String,
    viewer: Result<Option<Viewer>, Failure>,
    /// The browser sent a session cookie whose session has ended.
    ended: bool,
}

/// Refuses a form posted from another site. The log-in and sign-up forms carry no CSRF
/// token (there is no session yet), so without this a page elsewhere could sign a visitor
/// into an account of its choosing. Browsers say where a request comes from in
/// `Sec-Fetch-Site`, or at least in `Origin`; a request with neither (not from a browser)
/// passes.
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<SameOrigin, Response> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let cross = match (header("sec-fetch-site"), header("origin"), header("host")) {
            (Some(site), _, _) => site.eq_ignore_ascii_case("cross-site"),
            (None, Some(origin), Some(host)) => {
                origin != "null" && origin.split_once("://").map(|(_, authority)| authority) != Some(host)
            }
            (None, Some(origin), None) => origin != "null",
            (None, None, _) => false,
        };
        if cross {
            return Err(PageError::Failure(Failure {
                status: StatusCode::FORBIDDEN,
                code: "cross_site_form".into(),
                message: "this form was sent from another site, so nothing was done; open this site and try again"
                    .into(),
                field: None,
                retry_after: None,
            })
            .into_response());
        }
        Ok(SameOrigin)
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<Web> for Browser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Browser, Self::Rejection> {
        let mut caller = Caller {
            cookie: parts.headers.get(header::COOKIE).cloned(),
            csrf: None,
            forwarded_for: parts.headers.get_all("x-forwarded-for").iter().cloned().collect(),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            org: None,
        };
        let here = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let (viewer, ended) = match cookie(&parts.headers, tollgate_api::SESSION_COOKIE) {
            Some(_) => {
                let viewer = load_viewer(web, &caller, cookie(&parts.headers, ORG_COOKIE), &here).await;
                let ended = matches!(viewer, Ok(None));
                (viewer, ended)
            }
            None => (Ok(None), false),
        };
        if let Ok(Some(v)) = &viewer
            && !v.org.personal
        {
            caller.org = Some(v.org.id.clone());
        }
        Ok(Browser { caller, here, viewer, ended })
    }
}

/// The person behind `caller`'s session (`None` when it has ended), acting in `wanted` when
/// that is one of their orgs, else in their personal org.
pub(crate) async fn load_viewer(
    web: &Web,
    caller: &Caller,
    wanted: Option<&str>,
    here: &str,
) -> Result<Option<Viewer>, Failure> {
    let reply = web.api.get(caller, "/api/v1/me").await?;
    if reply.status == StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    let me: Me = reply.into_json()?;
    let csrf = me.csrf_token.clone().unwrap_or_default();
    let personal = &me.user.personal_org_id;
    let org = wanted
        .and_then(|id| me.orgs.iter().find(|o| o.id == id))
        .or_else(|| me.orgs.iter().find(|o| &o.id == personal))
        .cloned()
        .unwrap_or_else(|| OrgRef {
            id: personal.clone(),
            name: "Personal".into(),
            personal: true,
            role: Some("owner".into()),
        });
    Ok(Some(Viewer { me, csrf, org, here: here.to_string() }))
}

/// The `Set-Cookie` value that makes the UI act in `org` (a team), or, with `None`, in the
/// personal org again.
pub fn org_cookie(web: &Web, org: Option<&str>) -> HeaderValue {
    let secure = if web.cookie_secure { "; Secure" } else { "" };
    let value = match org.filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')) {
        Some(id) => format!("{ORG_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000{secure}"),
        None => format!("{ORG_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("tollgate_org=; Path=/; Max-Age=0"))
}

/// `response` setting the org cookie to `org`.
pub fn with_org_cookie(web: &Web, mut response: Response, org: Option<&str>) -> Response {
    response.headers_mut().append(header::SET_COOKIE, org_cookie(web, org));
    response
}

/// A signed-in person, their session's CSRF token and the org the UI acts in.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub me: Me,
    pub csrf: String,
    /// The org pages act in: the chosen team, or the personal org.
    pub org: OrgRef,
    /// The path asked for.
    pub here: String,
}

impl Viewer {
    /// The person's role in the org the UI acts in.
    pub fn role(&self) -> &str {
        self.org.role.as_deref().unwrap_or("viewer")
    }

    /// Owners and admins manage members, billing settings and installations.
    pub fn can_admin(&self) -> bool {
        matches!(self.role(), "owner" | "admin")
    }

    /// Everyone but viewers installs, creates keys and publishes.
    pub fn can_write(&self) -> bool {
        self.role() != "viewer"
    }

    /// Whether `token` is this session's CSRF token (for forms the UI handles itself).
    pub fn csrf_ok(&self, token: &str) -> bool {
        let (a, b) = (token.as_bytes(), self.csrf.as_bytes());
        !b.is_empty() && a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: to the log-in page, then back to `next` (the layer of
    /// [`crate::guard::layout_errors`] puts the page asked for there); `expired` when a
    /// session had been there and ended.
    Login { next: String, expired: bool },
    /// No such thing, or not yours.
    NotFound,
    /// The API refused or failed.
    Failure(Failure),
}

impl From<Failure> for PageError {
    fn from(f: Failure) -> Self {
        match f.status {
            StatusCode::UNAUTHORIZED => {
                PageError::Login { next: "/dashboard".into(), expired: f.code == "session_expired" }
            }
            StatusCode::NOT_FOUND => PageError::NotFound,
            _ => PageError::Failure(f),
        }
    }
}

/// A page's result.
pub type PageResult = Result<Response, PageError>;

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::Login { next, expired } => {
                let mut response = see_other(&format!("/login{}", query(&[("next", &next)])));
                response.extensions_mut().insert(Unfinished::Login { expired });
                return response;
            }
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found".to_string(),
                "There is nothing here, or it belongs to another organization.".to_string(),
            ),
            PageError::Failure(f) if is_csrf(&f) => (
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
        let unfinished = Unfinished::Error { heading: heading.clone(), message: message.clone() };
        let page = ErrorPage { chrome: Chrome::anonymous(&heading), heading, message };
        let mut response = render_status(status, &page);
        response.extensions_mut().insert(unfinished);
        response
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
pub async fn viewer(_web: &Web, browser: &Browser) -> Result<Option<Viewer>, PageError> {
    browser.viewer.clone().map_err(PageError::from)
}

/// The signed-in person, or a redirect to the log-in page and back here.
pub async fn signed_in(web: &Web, browser: &Browser) -> Result<Viewer, PageError> {
    viewer(web, browser).await?.ok_or_else(|| PageError::Login { next: browser.here.clone(), expired: browser.ended })
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
        "session_expired" => Some(Notice {
            kind: "warn",
            text: "Your session has ended. Log in again to go back to the page you were on.".into(),
        }),
        "installed" => ok("Installed. Create a key below to start calling the agent."),
        "uninstalled" => ok("Uninstalled. Every key of that installation was revoked."),
        "key_revoked" => ok("The key is revoked; calls with it are refused from now on."),
        "limits_saved" => ok("The key's daily limits are saved."),
        "timeout_saved" => ok("The task timeout is saved."),
        "review_saved" => ok("Your review is saved."),
        "review_deleted" => ok("Your review is deleted."),
        "switched" => ok("Switched organization: pages now show and act in it."),
        "team_created" => ok("Team created. Invite people below; you are its owner."),
        "renamed" => ok("The team's name is saved."),
        "invitation_revoked" => ok("The invitation is revoked; its link no longer works."),
        "role_changed" => ok("The member's role is changed."),
        "member_removed" => ok("The member is removed, and their keys in this team are revoked."),
        "left_team" => ok("You left the team. Your keys in it are revoked."),
        "joined" => ok("You joined the team. Pages now show and act in it."),
        "budget_saved" => ok("The monthly budget is saved."),
        "budget_removed" => ok("The monthly budget is removed: calls are no longer capped by spend."),
        "recharge_saved" => ok("The auto-recharge settings are saved."),
        "theme_saved" => ok("Your theme is saved."),
        "email_saved" => ok("Your email preference is saved."),
        "token_revoked" => ok("The token is revoked; requests with it are refused from now on."),
        "read" => ok("Marked as read."),
        "all_read" => ok("Every notification is marked as read."),
        "agent_created" => ok("The agent is created. Publish a version to list it in the store."),
        "version_published" => ok("The version is published and listed in the store."),
        "status_saved" => ok("The version's status is saved."),
        "account_closed" => ok("Your account is closed. Its keys, tokens and sessions no longer work."),
        _ => None,
    }
}

/// An org the person can switch to, in the header.
#[derive(Debug, Clone)]
pub struct OrgChoice {
    pub id: String,
    pub name: String,
    pub current: bool,
}

/// What the layout shows around every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    /// The nav entry to mark current: `store`, `dashboard`, `billing`, `team`,
    /// `publisher`, `notifications`, `settings` or empty.
    pub nav: &'static str,
    /// The signed-in person's name, if any.
    pub user: Option<String>,
    pub csrf: String,
    /// `light`, `dark`, or empty to follow the system.
    pub theme: String,
    pub notice: Option<Notice>,
    /// Unread notifications.
    pub unread: i64,
    /// The orgs to switch between (empty when the person has only their personal one).
    pub orgs: Vec<OrgChoice>,
    /// The path shown, to come back to after switching org.
    pub here: String,
    pub css: String,
    pub js: String,
    pub logo: String,
}

impl Chrome {
    /// The layout for `viewer` (or nobody).
    pub fn new(title: &str, nav: &'static str, viewer: Option<&Viewer>) -> Chrome {
        let orgs = match viewer {
            Some(v) if v.me.orgs.len() > 1 => {
                v.me.orgs
                    .iter()
                    .map(|o| OrgChoice {
                        id: o.id.clone(),
                        name: if o.personal { format!("{} (personal)", o.name) } else { o.name.clone() },
                        current: o.id == v.org.id,
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        Chrome {
            title: title.to_string(),
            nav,
            user: viewer.map(|v| v.me.user.name.clone()),
            csrf: viewer.map(|v| v.csrf.clone()).unwrap_or_default(),
            theme: viewer.map(|v| v.me.user.theme.clone()).filter(|t| t == "light" || t == "dark").unwrap_or_default(),
            notice: None,
            unread: viewer.and_then(|v| v.me.unread_notifications).unwrap_or(0),
            orgs,
            here: viewer.map(|v| v.here.clone()).unwrap_or_default(),
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

    /// Every value of `name` (checkboxes sharing a name), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
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

/// Whether the API refused for a missing or wrong CSRF token (shown as "form expired"):
/// told by the API's error code, never by its message.
pub fn is_csrf(f: &Failure) -> bool {
    f.status == StatusCode::FORBIDDEN && f.code == "csrf_token"
}

/// A refusal that is not about the form's values: shown as an error page.
pub fn not_a_form_error(f: &Failure) -> bool {
    !matches!(f.status, StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::BAD_REQUEST)
}

/// Who owns what this session stashes: the SHA-256 of its session cookie.
pub fn session_owner(browser: &Browser) -> Option<String> {
    let headers = browser.caller.cookie.as_ref()?.to_str().ok()?;
    let value = headers
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == tollgate_api::SESSION_COOKIE)
        .map(|(_, v)| v)?;
    Some(tollgate_domain::secret::sha256_hex(value.as_bytes()))
}

/// A 303 to `path` with the query `pairs` and `shown=<nonce>` for `secret`, stashed for
/// this session, then `fragment`. Without a session (or a nonce) the page it leads to says
/// the secret can no longer be shown.
pub fn show_once(
    web: &Web,
    browser: &Browser,
    secret: Secret,
    path: &str,
    pairs: &[(&str, &str)],
    fragment: &str,
) -> Response {
    let nonce = session_owner(browser).and_then(|owner| web.stash.put(&owner, secret)).unwrap_or_else(|| "-".into());
    let mut all = pairs.to_vec();
    all.push(("shown", &nonce));
    see_other(&format!("{path}{}{fragment}", query(&all)))
}

/// What `?shown=` asks to show once.
#[derive(Debug, Clone, Default)]
pub enum Reveal {
    /// Nothing was asked for.
    #[default]
    Nothing,
    /// The secret, this once.
    Secret(Secret),
    /// Asked for, but already shown, expired, or never stashed here.
    Gone,
}

impl Reveal {
    /// The secret of `kind` the query's `shown` nonce names, taken out of the stash.
    pub fn take(web: &Web, browser: &Browser, q: &HashMap<String, String>, kind: &str) -> Reveal {
        let nonce = param(q, "shown");
        if nonce.is_empty() {
            return Reveal::Nothing;
        }
        match session_owner(browser).and_then(|owner| web.stash.take(&owner, nonce)) {
            Some(secret) if secret.kind == kind => Reveal::Secret(secret),
            _ => Reveal::Gone,
        }
    }

    /// The secret, if there is one to show.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Reveal::Secret(s) => Some(s),
            _ => None,
        }
    }

    /// Whether a secret was asked for but can no longer be shown.
    pub fn gone(&self) -> bool {
        matches!(self, Reveal::Gone)
    }

    /// The response, marked never to be cached when it holds a secret.
    pub fn protect(&self, mut response: Response) -> Response {
        if self.secret().is_some() {
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response
    }
}

/// A local path to go to after logging in: `next` when it is one, else `fallback`.
pub fn local_path<'a>(next: &'a str, fallback: &'a str) -> &'a str {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.starts_with("/login");
    if ok && !next.chars().any(char::is_control) { next } else { fallback }
}

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The date range of a form: `from` and `to` as typed, or the last 30 days (UTC dates,
/// `to` inclusive, as the API reads them).
pub fn date_range(q: &HashMap<String, String>) -> (String, String) {
    let day = |ms: i64| -> String { tollgate_domain::time::rfc3339(ms).chars().take(10).collect() };
    let now = tollgate_domain::time::now_ms();
    let from = match param(q, "from") {
        "" => day(now - 29 * DAY_MS),
        f => f.to_string(),
    };
    let to = match param(q, "to") {
        "" => day(now),
        t => t.to_string(),
    };
    (from, to)
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
    fn csrf_refusals_and_ended_sessions_are_told_by_their_code() {
        let f = |status: StatusCode, code: &str, message: &str| Failure {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            retry_after: None,
        };
        assert!(is_csrf(&f(StatusCode::FORBIDDEN, "csrf_token", "any words at all")));
        assert!(!is_csrf(&f(StatusCode::FORBIDDEN, "forbidden", "a CSRF word in a message decides nothing")));
        let expired = PageError::from(f(StatusCode::UNAUTHORIZED, "session_expired", "x"));
        assert!(matches!(expired, PageError::Login { expired: true, .. }));
        let anonymous = PageError::from(f(StatusCode::UNAUTHORIZED, "unauthorized", "your session has ended"));
        assert!(matches!(anonymous, PageError::Login { expired: false, .. }));
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
