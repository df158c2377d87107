//! Talking to agents: a pooled HTTP client and the forwarding rules of SPEC §3.

use crate::GatewayConfig;
use crate::error::GatewayError;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Request headers passed to the agent unchanged (besides the body, method and path).
const PASS_REQUEST: &[&str] = &[
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "a2a-version",
    "a2a-extensions",
];

/// Response headers never passed back (hop-by-hop, or set by the gateway).
const DROP_RESPONSE: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "x-request-id"];

/// The pooled client.
pub(crate) struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    first_byte: Duration,
}

/// What is sent upstream besides the body.
pub(crate) struct Outgoing<'a> {
    pub method: Method,
    /// The agent's address (`None`: the version's URL is not a valid `http://` URL).
    pub uri: Option<&'a Uri>,
    pub client_headers: &'a HeaderMap,
    pub upstream_headers: &'a [(HeaderName, HeaderValue)],
    pub install_token: &'a str,
    pub request_id: &'a str,
}

impl Upstream {
    pub fn new(config: &GatewayConfig) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector);
        Upstream { client, first_byte: config.first_byte_timeout }
    }

    /// Sends a request; a connect failure is 503, no response headers in time 504.
    pub async fn send(&self, out: Outgoing<'_>, body: Bytes) -> Result<hyper::Response<Incoming>, GatewayError> {
        let uri = out.uri.cloned().ok_or_else(|| {
            GatewayError::Unavailable("the agent's upstream address is not a valid http:// URL".into())
        })?;
        let mut request = Request::builder().method(out.method).uri(uri);
        let headers = request.headers_mut().ok_or_else(|| GatewayError::Internal("request builder".into()))?;
        for (name, value) in out.client_headers {
            let n = name.as_str();
            if PASS_REQUEST.contains(&n) || n.starts_with("mcp-param-") {
                headers.append(name.clone(), value.clone());
            }
        }
        // The publisher's credential replaces the consumer's; the consumer's key, address
        // and identity never reach the agent.
        for (name, value) in out.upstream_headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Ok(v) = HeaderValue::from_str(out.install_token) {
            headers.insert(HeaderName::from_static("x-tollgate-install"), v);
        }
        if let Ok(v) = HeaderValue::from_str(out.request_id) {
            headers.insert(HeaderName::from_static("x-request-id"), v);
        }
        // Host comes from the upstream URL's authority (hyper sets it from the URI).
        headers.remove(header::HOST);
        let request = request.body(Full::new(body)).map_err(|e| GatewayError::Internal(e.to_string()))?;
        match tokio::time::timeout(self.first_byte, self.client.request(request)).await {
            Err(_) => Err(GatewayError::GatewayTimeout("the agent did not answer in time".into())),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "upstream unreachable");
                Err(GatewayError::Unavailable("the agent is unreachable right now".into()))
            }
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// Copies an upstream response's headers for the client, minus hop-by-hop ones.
pub(crate) fn response_headers(upstream: &HeaderMap, into: &mut HeaderMap) {
    for (name, value) in upstream {
        if !DROP_RESPONSE.contains(&name.as_str()) {
            into.append(name.clone(), value.clone());
        }
    }
}

/// The agent's health URL: its MCP endpoint with a last `/mcp` segment replaced by
/// `/health`, or `/health` appended.
pub(crate) fn health_url(upstream_url: &str) -> String {
    match upstream_url.strip_suffix("/mcp") {
        Some(base) => format!("{base}/health"),
        None => format!("{}/health", upstream_url.trim_end_matches('/')),
    }
}
