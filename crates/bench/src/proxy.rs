//! The bare pass-through proxy, the floor the gateway is compared with: a hyper server in
//! front of a pooled hyper-util client that forwards method, path, headers (with `Host`
//! rewritten to the target and hop-by-hop headers dropped) and streams both bodies as they
//! come. No other logic.

use crate::BenchError;
use crate::upstream::is_transient;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, Scheme};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

type ProxyBody = Either<Incoming, Full<Bytes>>;

struct Forward {
    client: Client<HttpConnector, Incoming>,
    authority: Authority,
    host: HeaderValue,
    /// The target URL's path without its trailing `/`, put before each request's path.
    prefix: String,
}

const HOP_BY_HOP: [HeaderName; 6] = [
    hyper::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    hyper::header::TRANSFER_ENCODING,
    hyper::header::TE,
    hyper::header::UPGRADE,
];

/// Serves the bare proxy on `listener`, forwarding every request to `target`
/// (`http://host:port`, optionally with a path prefix).
pub async fn serve_proxy(listener: TcpListener, target: &str) -> Result<(), BenchError> {
    let uri: Uri = target.parse().map_err(|e| BenchError::Options(format!("proxy target {target:?}: {e}")))?;
    let authority = match (uri.scheme(), uri.authority()) {
        (Some(scheme), Some(authority)) if *scheme == Scheme::HTTP => authority.clone(),
        _ => return Err(BenchError::Options(format!("proxy target {target:?} must be an http:// URL"))),
    };
    let host = HeaderValue::from_str(authority.as_str())
        .map_err(|e| BenchError::Options(format!("proxy target {target:?}: {e}")))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector);
    let prefix = uri.path().trim_end_matches('/').to_string();
    let forward = Arc::new(Forward { client, authority, host, prefix });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => return Err(BenchError::io("accepting a connection", e)),
        };
        let _ = stream.set_nodelay(true);
        let forward = forward.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| forward.clone().send(req));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

impl Forward {
    async fn send(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(format!("{}{path}", self.prefix))
            .build();
        let Ok(uri) = uri else { return Ok(status(StatusCode::BAD_REQUEST)) };
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(HOST, self.host.clone());
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Ok(Response::from_parts(parts, Either::Left(body)))
            }
            Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
        }
    }
}

fn status(code: StatusCode) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = code;
    response
}
