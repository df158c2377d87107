//! Seeds a fresh `tollgate serve` through its management API, as a user would: a publisher
//! lists an agent whose version forwards to the bench upstream, a consumer installs it and
//! creates the API keys the load uses.

use crate::BenchError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The agent the bench publishes.
pub(crate) const AGENT: &str = "bench";
pub(crate) const VERSION: &str = "1.0.0";

/// USD charged per successful `tools/call` (per-request pricing; utility calls are free).
pub const PRICE_USD: &str = "0.000001";

/// Concurrent key creations.
const KEY_WORKERS: usize = 4;

/// The seeded state the load needs.
pub(crate) struct Seeded {
    /// The consumer's gateway keys.
    pub(crate) keys: Vec<String>,
    /// The consumer's account token, to read its balance.
    consumer_token: String,
}

/// How a management request authenticates.
enum Auth<'a> {
    None,
    Session { cookie: &'a str, csrf: &'a str },
    Bearer(&'a str),
}

/// A small JSON client for `/api/v1`.
#[derive(Clone)]
pub(crate) struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Api {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Api { client: Client::builder(TokioExecutor::new()).build(connector), base: format!("http://{addr}") }
    }

    /// Sends a JSON request; any status but `expect` is an error with the answer's body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
        expect: StatusCode,
    ) -> Result<(Value, Option<String>), BenchError> {
        let what = format!("{method} {path}");
        let fail = |why: String| BenchError::Seed(format!("{what}: {why}"));
        let mut builder = Request::builder().method(method).uri(format!("{}{path}", self.base));
        match auth {
            Auth::None => {}
            Auth::Session { cookie, csrf } => builder = builder.header(COOKIE, cookie).header("x-csrf-token", csrf),
            Auth::Bearer(token) => builder = builder.header(AUTHORIZATION, format!("Bearer {token}")),
        }
        let bytes = match body {
            Some(body) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let req = builder.body(Full::new(bytes)).map_err(|e| fail(e.to_string()))?;
        let response = self.client.request(req).await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let cookie = response
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        let body = response.into_body().collect().await.map_err(|e| fail(e.to_string()))?.to_bytes();
        if status != expect {
            return Err(fail(format!("answered {status}: {}", String::from_utf8_lossy(&body).trim())));
        }
        let value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
        Ok((value, cookie))
    }

    /// Signs a user up and returns an account token for them.
    async fn user(&self, email: &str, name: &str) -> Result<String, BenchError> {
        let signup = json!({"email": email, "password": "Bench quokka 42 ledger", "name": name});
        let (session, cookie) =
            self.call(Method::POST, "/api/v1/auth/signup", Auth::None, Some(signup), StatusCode::CREATED).await?;
        let cookie = cookie.ok_or_else(|| BenchError::Seed("signup set no session cookie".into()))?;
        let csrf = text(&session, "csrf_token")?;
        let auth = Auth::Session { cookie: &cookie, csrf: &csrf };
        let body = json!({"name": "bench", "expires_in_days": null});
        let (token, _) = self.call(Method::POST, "/api/v1/tokens", auth, Some(body), StatusCode::CREATED).await?;
        text(&token, "token")
    }

    /// The org's balance in nano-USD.
    pub(crate) async fn balance_nanos(&self, seeded: &Seeded) -> Result<i64, BenchError> {
        let auth = Auth::Bearer(&seeded.consumer_token);
        let (balance, _) = self.call(Method::GET, "/api/v1/billing/balance", auth, None, StatusCode::OK).await?;
        let usd = text(&balance, "balance")?;
        nanos(&usd).ok_or_else(|| BenchError::Seed(format!("balance {usd:?} is not a USD amount")))
    }

    /// Publishes the bench agent forwarding to `upstream_mcp_url`, installs it for a
    /// consumer and creates `keys` gateway keys.
    pub(crate) async fn seed(&self, upstream_mcp_url: &str, keys: usize) -> Result<Seeded, BenchError> {
        let publisher = self.user("bench-publisher@example.com", "Bench Publisher").await?;
        let agent = json!({
            "slug": AGENT, "name": "Bench", "description": "The benchmark's upstream.",
            "category": "devtools", "protocol": "mcp",
        });
        self.call(Method::POST, "/api/v1/agents", Auth::Bearer(&publisher), Some(agent), StatusCode::CREATED).await?;
        let price = json!({"model": "per_request", "price": PRICE_USD});
        let version = json!({
            "version": VERSION, "upstream_url": upstream_mcp_url, "base_fee": "0",
            "functions": [
                {"name": crate::payload::JSON_TOOL, "pricing": price},
                {"name": crate::payload::STREAM_TOOL, "pricing": price},
            ],
        });
        let path = format!("/api/v1/agents/{AGENT}/versions");
        self.call(Method::POST, &path, Auth::Bearer(&publisher), Some(version), StatusCode::CREATED).await?;

        let consumer = self.user("bench-consumer@example.com", "Bench Consumer").await?;
        let install = json!({"agent": AGENT, "version": VERSION});
        let (installation, _) = self
            .call(Method::POST, "/api/v1/installations", Auth::Bearer(&consumer), Some(install), StatusCode::CREATED)
            .await?;
        let path = Arc::new(format!("/api/v1/installations/{}/keys", text(&installation, "id")?));
        let consumer = Arc::new(consumer);
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..KEY_WORKERS.min(keys) {
            let (api, path, consumer, next) = (self.clone(), path.clone(), consumer.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                let mut made = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= keys {
                        return Ok::<_, BenchError>(made);
                    }
                    let body = json!({"name": format!("bench {n}")});
                    let (key, _) =
                        api.call(Method::POST, &path, Auth::Bearer(&consumer), Some(body), StatusCode::CREATED).await?;
                    made.push(text(&key, "key")?);
                }
            }));
        }
        let mut all = Vec::with_capacity(keys);
        for worker in workers {
            all.extend(worker.await.map_err(|e| BenchError::Seed(format!("creating keys: {e}")))??);
        }
        Ok(Seeded { keys: all, consumer_token: consumer.to_string() })
    }
}

impl Seeded {
    /// The keys as `Authorization` header values.
    pub(crate) fn authorization(&self) -> Result<Vec<HeaderValue>, BenchError> {
        self.keys
            .iter()
            .map(|k| HeaderValue::from_str(&format!("Bearer {k}")).map_err(|e| BenchError::Seed(e.to_string())))
            .collect()
    }
}

fn text(value: &Value, field: &str) -> Result<String, BenchError> {
    value[field].as_str().map(str::to_string).ok_or_else(|| BenchError::Seed(format!("no {field:?} in {value}")))
}

/// A USD decimal string (`"99.998200"`) in nano-USD.
pub(crate) fn nanos(usd: &str) -> Option<i64> {
    let (negative, usd) = match usd.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, usd),
    };
    let (whole, fraction) = usd.split_once('.').unwrap_or((usd, ""));
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<9}").parse().ok()?;
    let value = whole.checked_mul(1_000_000_000)?.checked_add(fraction)?;
    Some(if negative { -value } else { value })
}

/// Nano-USD as a USD decimal string with six places (rounded toward zero).
pub(crate) fn usd(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000_000, (abs % 1_000_000_000) / 1_000)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_usd() {
        assert_eq!(nanos("99.998200"), Some(99_998_200_000));
        assert_eq!(nanos("0.000001"), Some(1_000));
        assert_eq!(nanos("-1.5"), Some(-1_500_000_000));
        assert_eq!(nanos("1.x"), None);
        assert_eq!(usd(99_998_200_000), "99.998200");
        assert_eq!(usd(-1_000), "-0.000001");
    }
}
