//! Talking to agents: a pooled HTTP/HTTPS client, the addresses it may reach, and the
//! forwarding rules of SPEC §3.

use crate::GatewayConfig;
use crate::error::GatewayError;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Request headers passed to the agent unchanged (besides the body, method and path), and
/// every `Mcp-Param-*`.
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

/// Response headers never passed back to the client:
/// - hop-by-hop ones (and any the upstream's `Connection` names);
/// - ones the gateway sets itself (its request id, rate limits, buffering);
/// - ones that would act on Tollgate's own origin, which also serves the web UI and its
///   session: cookies, authentication challenges (an upstream's `WWW-Authenticate` can
///   name its private address), CORS, HSTS, `Alt-Svc`, content-security and cross-origin
///   policies, `Clear-Site-Data`, reporting endpoints;
/// - ones that tell where or what the upstream is (`Location`, `Content-Location`,
///   `Server`, `X-Powered-By`, `Via`).
const DROP_RESPONSE: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "x-request-id",
    "x-accel-buffering",
    "set-cookie",
    "set-cookie2",
    "www-authenticate",
    "proxy-authenticate",
    "authentication-info",
    "proxy-authentication-info",
    "strict-transport-security",
    "alt-svc",
    "clear-site-data",
    "content-security-policy",
    "content-security-policy-report-only",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
    "cross-origin-resource-policy",
    "permissions-policy",
    "public-key-pins",
    "public-key-pins-report-only",
    "expect-ct",
    "nel",
    "report-to",
    "reporting-endpoints",
    "refresh",
    "location",
    "content-location",
    "server",
    "x-powered-by",
    "via",
];

/// Response header prefixes never passed back (CORS, the gateway's own namespaces).
const DROP_RESPONSE_PREFIXES: &[&str] = &["access-control-", "x-ratelimit-", "x-tollgate-"];

/// Which upstream addresses the gateway may connect to, checked on the addresses a name
/// resolves to (so a name cannot point the gateway somewhere else) and on literal ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Link-local addresses (169.254.0.0/16, fe80::/10: where clouds serve instance
    /// metadata and credentials). Refused unless allowed.
    pub allow_link_local: bool,
    /// Loopback, private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) and unspecified
    /// addresses: where self-hosted agents usually run. Allowed unless denied.
    pub allow_private: bool,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy { allow_link_local: false, allow_private: true }
    }
}

impl AddressPolicy {
    /// Why `ip` may not be reached, or `None` when it may.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let (link_local, private) = match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                let shared = a == 100 && (64..128).contains(&b);
                (v4.is_link_local(), v4.is_loopback() || v4.is_private() || v4.is_unspecified() || shared)
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                let link_local = first & 0xffc0 == 0xfe80;
                let unique_local = first & 0xfe00 == 0xfc00;
                (link_local, v6.is_loopback() || v6.is_unspecified() || unique_local)
            }
        };
        if link_local && !self.allow_link_local {
            Some("a link-local address")
        } else if private && !self.allow_private {
            Some("a loopback or private address")
        } else {
            None
        }
    }
}

/// An upstream address the [`AddressPolicy`] refuses.
#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the upstream resolves to {}, which this gateway does not reach", self.0)
    }
}

impl std::error::Error for Refused {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves names with the system resolver and keeps only the addresses the policy allows
/// (refusing the name when none is left).
#[derive(Clone)]
struct GuardedResolver {
    policy: AddressPolicy,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.refuses(addr.ip()) {
                    None => true,
                    Some(why) => {
                        refusal = Some(why);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refusal) {
                (true, Some(why)) => Err(Box::new(Refused(why)) as BoxError),
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

/// The TCP connector with literal addresses checked too (the resolver never sees them).
#[derive(Clone)]
struct Guarded {
    inner: HttpConnector<GuardedResolver>,
    policy: AddressPolicy,
}

impl tower_service::Service<Uri> for Guarded {
    type Response = <HttpConnector<GuardedResolver> as tower_service::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let literal = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']')).and_then(|h| h.parse().ok());
        if let Some(why) = literal.and_then(|ip: IpAddr| self.policy.refuses(ip)) {
            return Box::pin(std::future::ready(Err(Box::new(Refused(why)) as BoxError)));
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

/// Whether `error` (or what caused it) is an address the policy refused.
fn refused_in(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(Refused(why)) = e.downcast_ref::<Refused>() {
            return Some(why);
        }
        if let Some(Refused(why)) =
            e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|e| e.downcast_ref::<Refused>())
        {
            return Some(why);
        }
        cause = e.source();
    }
    None
}

/// The TLS settings for HTTPS upstreams: the Mozilla roots of `webpki-roots`, plus the
/// operator's extra roots (`extra_roots`: PEM, each holding one or more certificates).
fn tls_config(extra_roots: &[Vec<u8>]) -> std::io::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (i, pem) in extra_roots.iter().enumerate() {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| invalid(format!("extra root CA file {}: {e}", i + 1)))?;
            roots.add(cert).map_err(|e| invalid(format!("extra root CA file {}: {e}", i + 1)))?;
            found += 1;
        }
        if found == 0 {
            return Err(invalid(format!("extra root CA file {} holds no PEM certificate", i + 1)));
        }
    }
    // ring keeps the build free of a C toolchain beyond `cc` (aws-lc-rs needs CMake); its
    // provider is deprecated only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The pooled client.
pub(crate) struct Upstream {
    client: Client<HttpsConnector<Guarded>, Full<Bytes>>,
    first_byte: Duration,
}

/// What is sent upstream besides the body.
pub(crate) struct Outgoing<'a> {
    pub method: Method,
    /// The agent's address (`None`: the version's URL is not a valid `http://` or
    /// `https://` URL).
    pub uri: Option<&'a Uri>,
    pub client_headers: &'a HeaderMap,
    pub upstream_headers: &'a [(HeaderName, HeaderValue)],
    pub install_token: &'a str,
    pub request_id: &'a str,
}

impl Upstream {
    /// The client for `config`; fails when an extra root CA is not valid PEM.
    pub fn new(config: &GatewayConfig) -> std::io::Result<Upstream> {
        let policy = config.upstream_addresses;
        let mut connector = HttpConnector::new_with_resolver(GuardedResolver { policy });
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&config.upstream_ca_pem)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(Guarded { inner: connector, policy });
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
        Ok(Upstream { client, first_byte: config.first_byte_timeout })
    }

    /// Sends a request; a connect failure (or a refused address) is 503, no response
    /// headers in time 504.
    pub async fn send(&self, out: Outgoing<'_>, body: Bytes) -> Result<hyper::Response<Incoming>, GatewayError> {
        let uri = out.uri.cloned().ok_or_else(|| {
            GatewayError::Unavailable("the agent's upstream address is not a valid http(s):// URL".into())
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
            Ok(Err(e)) => match refused_in(&e) {
                Some(why) => {
                    tracing::warn!(refused = why, "an upstream address was refused by the address policy");
                    Err(GatewayError::AddressRefused(format!(
                        "the agent's upstream is {why}, which this gateway is configured not to reach"
                    )))
                }
                None => {
                    tracing::warn!(error = %e, "upstream unreachable");
                    Err(GatewayError::Unavailable("the agent is unreachable right now".into()))
                }
            },
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// Copies an upstream response's headers for the client, minus those of [`DROP_RESPONSE`],
/// [`DROP_RESPONSE_PREFIXES`] and any the upstream's `Connection` header names.
pub(crate) fn response_headers(upstream: &HeaderMap, into: &mut HeaderMap) {
    let named: Vec<String> = upstream
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in upstream {
        let n = name.as_str();
        let dropped = DROP_RESPONSE.contains(&n)
            || DROP_RESPONSE_PREFIXES.iter().any(|p| n.starts_with(p))
            || named.iter().any(|c| c == n);
        if !dropped {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_address_policy_refuses_metadata_ranges_by_default() {
        let default = AddressPolicy::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for refused in ["169.254.169.254", "169.254.0.1", "fe80::1", "::ffff:169.254.169.254"] {
            assert_eq!(default.refuses(ip(refused)), Some("a link-local address"), "{refused}");
        }
        for allowed in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "fd00::1", "8.8.8.8", "2001:db8::1"] {
            assert_eq!(default.refuses(ip(allowed)), None, "{allowed}");
        }
        let open = AddressPolicy { allow_link_local: true, allow_private: true };
        assert_eq!(open.refuses(ip("169.254.169.254")), None);
        let strict = AddressPolicy { allow_link_local: false, allow_private: false };
        for refused in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "100.64.0.1", "0.0.0.0", "::1", "fd00::1"]
        {
            assert_eq!(strict.refuses(ip(refused)), Some("a loopback or private address"), "{refused}");
        }
        assert_eq!(strict.refuses(ip("8.8.8.8")), None);
    }

    #[test]
    fn response_headers_that_must_not_cross_are_dropped() {
        let mut upstream = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("mcp-session-id", "s-1"),
            ("retry-after", "3"),
            ("x-custom", "kept"),
            ("set-cookie", "tollgate_session=stolen"),
            ("www-authenticate", "Bearer realm=\"http://10.0.0.5\""),
            ("access-control-allow-origin", "*"),
            ("strict-transport-security", "max-age=1"),
            ("alt-svc", "h3=\":443\""),
            ("location", "http://10.0.0.5/mcp"),
            ("x-ratelimit-remaining-requests-minute", "999"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("clear-site-data", "\"cookies\""),
        ] {
            upstream.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        let mut out = HeaderMap::new();
        response_headers(&upstream, &mut out);
        let mut kept: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec!["content-type", "mcp-session-id", "retry-after", "x-custom"]);
    }

    #[test]
    fn extra_roots_must_be_pem_certificates() {
        assert!(tls_config(&[]).is_ok());
        assert!(tls_config(&[b"not a certificate".to_vec()]).is_err());
    }
}
