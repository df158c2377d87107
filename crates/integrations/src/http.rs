//! The HTTPS client for payment providers: hyper over rustls (the `ring` provider, the
//! Mozilla roots of `webpki-roots`), the same stack the gateway uses for HTTPS upstreams.
//! Plain `http://` is accepted too, so tests can point a provider at a local server.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The largest response body read from a provider.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("bad request: {0}")]
    Request(String),
    #[error("could not reach the service: {0}")]
    Unreachable(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A response: its status and body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// A pooled HTTPS (and HTTP) client.
#[derive(Clone)]
pub(crate) struct HttpsClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient").field("timeout", &self.timeout).finish()
    }
}

impl HttpsClient {
    /// A client whose every request (connect, send, read the whole answer) ends within
    /// `timeout`.
    pub fn new(timeout: Duration) -> Result<HttpsClient, rustls::Error> {
        // `ring` is the provider the whole binary uses (no C toolchain beyond a compiler, no
        // CMake). rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which
        // does not weaken these short API calls' classical TLS 1.3/1.2 security.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpsClient { client, timeout })
    }

    /// POSTs a form-encoded body with `headers`.
    pub async fn post_form(&self, url: &str, headers: &[(&str, &str)], form: String) -> Result<Reply, HttpError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, concat!("Tollgate/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(form))).map_err(|e| HttpError::Request(e.to_string()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| HttpError::Unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| HttpError::Unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(Reply { status, body })
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| HttpError::Timeout(self.timeout))?
    }
}
