//! What protects every response and every form before a session exists: the security
//! headers, the log-in and sign-up forms' own CSRF token, and the layer that gives error
//! pages the signed-in person's layout and sends a 401 to the log-in page with `next=`
//! the page they were on.

use crate::Web;
use crate::client::{Caller, query};
use crate::page::{self, Chrome, cookie, local_path, render_status};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;

/// The Content-Security-Policy of every response: only this origin's own (embedded)
/// scripts, styles, images and connections; no plugins, no `<base>` elsewhere, forms post
/// only here, and no page may be framed. Inline `style` attributes are allowed (bar
/// widths are computed on the server); inline scripts are not.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The headers every web and API response carries (set unless a handler set its own).
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("cross-origin-opener-policy", "same-origin"),
];

async fn add_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// `router` with [`SECURITY_HEADERS`] on every response, its fallback's included.
pub fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::middleware::map_response(add_security_headers))
}

/// The cookie holding the log-in and sign-up forms' token (there is no session yet whose
/// CSRF token they could carry).
pub const FORM_COOKIE: &str = "tollgate_form";

/// How long a log-in or sign-up form's token lasts, in seconds.
const FORM_TOKEN_SECONDS: u32 = 4 * 3600;

/// A pre-session form token: a random value in a `SameSite=Strict` cookie that the form
/// repeats in its hidden `csrf` field (double submit). A page elsewhere can make the
/// browser post the form but can neither read nor set the cookie, so its post does not
/// match. This is on top of the `Sec-Fetch-Site`/`Origin` check of [`page::SameOrigin`].
#[derive(Debug, Clone)]
pub struct FormToken {
    pub value: String,
    /// Whether the cookie must be (re)set with the page.
    fresh: bool,
}

fn well_formed(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl FormToken {
    /// The browser's token, or a new one when it has none.
    pub fn of(headers: &HeaderMap) -> FormToken {
        match cookie(headers, FORM_COOKIE).filter(|t| well_formed(t)) {
            Some(t) => FormToken { value: t.to_string(), fresh: false },
            None => FormToken::new(),
        }
    }

    /// A new token (after a refused post, so a forged value is never reused).
    pub fn new() -> FormToken {
        // Without randomness the form cannot be protected: an empty token matches nothing,
        // so posts are refused rather than accepted.
        let value = tollgate_domain::secret::random_token(32).unwrap_or_default();
        FormToken { value, fresh: true }
    }

    /// Whether the posted `field` repeats the browser's cookie.
    pub fn matches(headers: &HeaderMap, field: &str) -> bool {
        let Some(cookie) = cookie(headers, FORM_COOKIE).filter(|t| well_formed(t)) else { return false };
        let (a, b) = (cookie.as_bytes(), field.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// `response` setting the cookie when the token is new.
    pub fn set(&self, web: &Web, mut response: Response) -> Response {
        if self.fresh && !self.value.is_empty() {
            let secure = if web.cookie_secure { "; Secure" } else { "" };
            let value = format!(
                "{FORM_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={FORM_TOKEN_SECONDS}{secure}",
                self.value
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }
}

impl Default for FormToken {
    fn default() -> Self {
        FormToken::new()
    }
}

/// What a page's error leaves for [`layout_errors`] to finish, as a response extension.
#[derive(Debug, Clone)]
pub(crate) enum Unfinished {
    /// An error page: shown in the layout of whoever is signed in.
    Error { heading: String, message: String },
    /// Not signed in (or the session ended): to the log-in page, then back.
    Login { expired: bool },
}

/// The error page's template.
#[derive(askama::Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
}

/// The local path the browser was on when it sent `headers` (its `Referer`, when that is
/// this site), for a form posted after the session ended.
fn referring_page(headers: &HeaderMap) -> Option<String> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let rest = referer.strip_prefix("http://").or_else(|| referer.strip_prefix("https://"))?;
    let path = rest.strip_prefix(host)?;
    let path = path.split('#').next().unwrap_or_default();
    let local = local_path(path, "");
    (!local.is_empty()).then(|| local.to_string())
}

/// Finishes error responses of the UI's pages: an error page is rendered again in the
/// layout of the person signed in (navigation, theme, org switcher), and a redirect to
/// log in gets `next=` the page asked for (for a form, the page it was posted from).
pub(crate) async fn layout_errors(State(web): State<Web>, request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let method = request.method().clone();
    let here = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let response = next.run(request).await;
    let Some(unfinished) = response.extensions().get::<Unfinished>().cloned() else { return response };
    match unfinished {
        Unfinished::Login { expired } => {
            let back = if matches!(method, Method::GET | Method::HEAD) {
                Some(local_path(&here, "").to_string()).filter(|p| !p.is_empty())
            } else {
                referring_page(&headers)
            };
            let back = back.unwrap_or_else(|| "/dashboard".into());
            let notice = if expired { "session_expired" } else { "" };
            page::see_other(&format!("/login{}", query(&[("next", &back), ("notice", notice)])))
        }
        Unfinished::Error { heading, message } => {
            let caller = Caller {
                cookie: headers.get(header::COOKIE).cloned(),
                forwarded_for: headers.get_all("x-forwarded-for").iter().cloned().collect(),
                peer,
                ..Caller::default()
            };
            let viewer = match cookie(&headers, tollgate_api::SESSION_COOKIE) {
                Some(_) => {
                    page::load_viewer(&web, &caller, cookie(&headers, page::ORG_COOKIE), &here).await.ok().flatten()
                }
                None => None,
            };
            let status = response.status();
            let chrome = Chrome::new(&heading, "", viewer.as_ref());
            let mut finished = render_status(status, &ErrorPage { chrome, heading, message });
            for (name, value) in response.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    finished.headers_mut().append(name, value.clone());
                }
            }
            finished
        }
    }
}
