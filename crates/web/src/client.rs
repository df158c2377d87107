//! The management API, called in process: every page reads through it and every form
//! acts through it, with the browser's own session, so the UI holds no second
//! implementation of any action and cannot skip a role or scope check.
//!
//! A request is built like the browser's would be (the `Cookie` header forwarded whole,
//! `X-CSRF-Token` from the form, the client address for log-in throttling) and sent to the
//! API's router with `tower::ServiceExt::oneshot`; the answer is decoded as JSON.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

/// The API's router, ready to be called.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// Whom a call is made for: what the browser sent that the API needs.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The browser's `Cookie` header, forwarded as is (it holds the session).
    pub cookie: Option<HeaderValue>,
    /// The session's CSRF token, from the form's hidden `csrf` field.
    pub csrf: Option<String>,
    /// The browser's `X-Forwarded-For` headers (the API decides whether to trust them).
    pub forwarded_for: Vec<HeaderValue>,
    /// The TCP peer, for log-in throttling.
    pub peer: Option<SocketAddr>,
    /// The org to act in, sent as `X-Tollgate-Org` (none: the personal org).
    pub org: Option<String>,
}

impl Caller {
    /// The same caller, sending `csrf` as `X-CSRF-Token`.
    pub fn with_csrf(&self, csrf: &str) -> Caller {
        Caller { csrf: Some(csrf.to_string()), ..self.clone() }
    }

    /// The same caller, acting in `org`.
    pub fn in_org(&self, org: &str) -> Caller {
        Caller { org: Some(org.to_string()), ..self.clone() }
    }
}

/// What the API answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body; `Null` when empty, a string when not JSON.
    pub body: Value,
}

/// An error answer of the API, from its envelope `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// The field at fault (422 answers).
    pub field: Option<String>,
    /// Seconds to wait (429 answers).
    pub retry_after: Option<u64>,
}

impl Failure {
    /// A failure that did not come from the API (its answer could not be read).
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal".into(),
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The message, when it names `field` (or a part of it, `daily_limits.requests`).
    pub fn for_field(&self, field: &str) -> Option<&str> {
        let f = self.field.as_deref()?;
        (f == field || f.starts_with(&format!("{field}.")) || f.starts_with(&format!("{field}[")))
            .then_some(self.message.as_str())
    }
}

impl Reply {
    /// An answer read from its parts: the body as JSON, `Null` when empty, else a string.
    pub fn from_raw(status: StatusCode, headers: HeaderMap, bytes: &[u8]) -> Reply {
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
        };
        Reply { status, headers, body }
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The error envelope of a non-2xx answer.
    pub fn failure(&self) -> Failure {
        let error = &self.body["error"];
        let text = |key: &str| error[key].as_str().map(str::to_string);
        Failure {
            status: self.status,
            code: text("code").unwrap_or_else(|| "error".into()),
            message: text("message").unwrap_or_else(|| format!("the request failed ({})", self.status)),
            field: text("field"),
            retry_after: self
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok()),
        }
    }

    /// The body as `T` when the status is 2xx, else the failure.
    pub fn into_json<T: DeserializeOwned>(self) -> Result<T, Failure> {
        if !self.ok() {
            return Err(self.failure());
        }
        serde_json::from_value(self.body).map_err(|e| Failure::internal(format!("unexpected API answer: {e}")))
    }

    /// The `Set-Cookie` headers, to pass on to the browser.
    pub fn set_cookies(&self) -> impl Iterator<Item = &HeaderValue> {
        self.headers.get_all(header::SET_COOKIE).iter()
    }
}

impl Api {
    /// Calls go to `router` (the API's, `tollgate_api::router`).
    pub fn new(router: Router) -> Api {
        Api { router }
    }

    /// Sends `method path` with an optional JSON body as `caller`.
    pub async fn send(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, Failure> {
        let (status, headers, bytes) = self.send_raw(caller, method, path, body).await?;
        Ok(Reply::from_raw(status, headers, &bytes))
    }

    /// Sends `method path` as [`Api::send`] does; answers the status, headers and body bytes.
    pub async fn send_raw(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, axum::body::Bytes), Failure> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(cookie) = &caller.cookie {
            req = req.header(header::COOKIE, cookie.clone());
        }
        if let Some(csrf) = &caller.csrf {
            req = req.header("x-csrf-token", csrf.as_str());
        }
        if let Some(org) = &caller.org {
            req = req.header("x-tollgate-org", org.as_str());
        }
        for hop in &caller.forwarded_for {
            req = req.header("x-forwarded-for", hop.clone());
        }
        let body = match body {
            Some(json) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(json).map_err(|e| Failure::internal(e.to_string()))?)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).map_err(|e| Failure::internal(format!("building {path}: {e}")))?;
        if let Some(peer) = caller.peer {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        let response = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::internal(format!("reading {path}: {e}")))?
            .to_bytes();
        Ok((status, headers, bytes))
    }

    pub async fn get(&self, caller: &Caller, path: &str) -> Result<Reply, Failure> {
        self.send(caller, Method::GET, path, None).await
    }

    /// `GET path` decoded as `T`; any non-2xx answer is the failure.
    pub async fn read<T: DeserializeOwned>(&self, caller: &Caller, path: &str) -> Result<T, Failure> {
        self.get(caller, path).await?.into_json()
    }

    pub async fn post(&self, caller: &Caller, path: &str, body: &Value) -> Result<Reply, Failure> {
        self.send(caller, Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, caller: &Caller, path: &str, body: &Value) -> Result<Reply, Failure> {
        self.send(caller, Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, caller: &Caller, path: &str, body: &Value) -> Result<Reply, Failure> {
        self.send(caller, Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, caller: &Caller, path: &str) -> Result<Reply, Failure> {
        self.send(caller, Method::DELETE, path, None).await
    }
}

/// A query string from `pairs`, leaving out empty values: `?a=1&b=x%20y`, or `""`.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if !v.trim().is_empty() {
            s.append_pair(k, v.trim());
            any = true;
        }
    }
    if any { format!("?{}", s.finish()) } else { String::new() }
}

/// A path segment, percent-encoded.
pub fn segment(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::Json;
    use axum::routing::{get, post};
    use serde_json::json;

    /// A stand-in API that echoes what it was sent.
    fn echo() -> Api {
        async fn show(headers: HeaderMap, method: Method, body: String) -> Json<Value> {
            let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            Json(json!({
                "method": method.as_str(), "cookie": h("cookie"), "csrf": h("x-csrf-token"),
                "content_type": h("content-type"), "forwarded": h("x-forwarded-for"), "org": h("x-tollgate-org"),
                "body": body,
            }))
        }
        async fn refuse() -> (StatusCode, [(header::HeaderName, &'static str); 1], Json<Value>) {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "42")],
                Json(json!({"error": {"code": "rate_limited", "message": "wait"}})),
            )
        }
        async fn invalid() -> (StatusCode, Json<Value>) {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": {"code": "invalid_request", "message": "name: too long", "field": "name"}})),
            )
        }
        Api::new(
            Router::new()
                .route("/echo", get(show).post(show).put(show).patch(show).delete(show))
                .route("/refuse", post(refuse))
                .route("/invalid", post(invalid)),
        )
    }

    fn browser() -> Caller {
        Caller {
            cookie: Some(HeaderValue::from_static("tollgate_session=abc; other=1")),
            forwarded_for: vec![HeaderValue::from_static("203.0.113.7")],
            ..Caller::default()
        }
    }

    #[tokio::test]
    async fn forwards_the_session_csrf_and_json() {
        let api = echo();
        let r = api.get(&browser(), "/echo").await.unwrap();
        assert!(r.ok());
        assert_eq!(r.body["method"], "GET");
        assert_eq!(r.body["cookie"], "tollgate_session=abc; other=1");
        assert_eq!(r.body["csrf"], Value::Null, "no CSRF token unless a form sent one");
        assert_eq!(r.body["org"], Value::Null, "the personal org unless another is chosen");
        let r = api.get(&browser().in_org("org_team"), "/echo").await.unwrap();
        assert_eq!(r.body["org"], "org_team");
        assert_eq!(r.body["forwarded"], "203.0.113.7");
        let r = api.post(&browser().with_csrf("tok"), "/echo", &json!({"a": 1})).await.unwrap();
        assert_eq!(r.body["method"], "POST");
        assert_eq!(r.body["csrf"], "tok");
        assert_eq!(r.body["content_type"], "application/json");
        assert_eq!(r.body["body"], "{\"a\":1}");
        for (reply, method) in [
            (api.put(&browser(), "/echo", &json!({})).await.unwrap(), "PUT"),
            (api.patch(&browser(), "/echo", &json!({})).await.unwrap(), "PATCH"),
            (api.delete(&browser(), "/echo").await.unwrap(), "DELETE"),
        ] {
            assert_eq!(reply.body["method"], method);
        }
    }

    #[tokio::test]
    async fn decodes_failures() {
        let api = echo();
        let f = api.post(&browser(), "/refuse", &json!({})).await.unwrap().failure();
        assert_eq!(
            (f.status, f.code.as_str(), f.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(42))
        );
        let f = api.post(&browser(), "/invalid", &json!({})).await.unwrap().into_json::<Value>().unwrap_err();
        assert_eq!(f.field.as_deref(), Some("name"));
        assert_eq!(f.for_field("name"), Some("name: too long"));
        assert_eq!(f.for_field("email"), None);
        let missing = api.get(&browser(), "/nowhere").await.unwrap();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.failure().message.contains("404"));
        let nested = Failure { field: Some("daily_limits.requests".into()), ..f };
        assert!(nested.for_field("daily_limits").is_some());
        assert!(nested.for_field("daily").is_none());
    }

    #[test]
    fn query_strings_leave_out_blanks_and_encode() {
        assert_eq!(query(&[("q", "web search"), ("page", ""), ("sort", "newest")]), "?q=web+search&sort=newest");
        assert_eq!(query(&[("q", "  ")]), "");
        assert_eq!(query(&[("to", "2026-01-01T00:00:00+01:00")]), "?to=2026-01-01T00%3A00%3A00%2B01%3A00");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
