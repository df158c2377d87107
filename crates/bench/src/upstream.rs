//! The bench upstream: the cheapest MCP server that still speaks the protocol, so it is the
//! same small constant in every measurement.
//!
//! - `POST /mcp` with a JSON-RPC `tools/call`: a ~1 KB JSON result carrying
//!   `_meta.usage {input_tokens, output_tokens, cache_tokens}`. When the tool name is
//!   `stream`, the answer is instead `text/event-stream` with 50 events
//!   (`event: message\ndata: {json}\n\n`): 49 `notifications/progress` messages and then the
//!   JSON-RPC result, each written and flushed on its own.
//! - `initialize`, `tools/list` and `ping` get minimal results; a notification (no `id`)
//!   gets 202; other methods get JSON-RPC error -32601.
//! - `GET /health` → 200 `{"status":"ok"}`.
//!
//! HTTP/1.1 with keep-alive; no session, no state.

use crate::payload::{Answers, EVENTS_PER_STREAM, STREAM_TOOL};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;

type UpBody = Either<Full<Bytes>, EventStream>;

/// Serves the bench upstream on `listener` until the task is dropped. Only a failure to
/// accept that persists is returned.
pub async fn serve_upstream(listener: TcpListener) -> std::io::Result<()> {
    let answers = Arc::new(Answers::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        let answers = answers.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(answers.clone(), req));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Accept errors that pass (out of file descriptors, a connection reset before accept).
pub(crate) fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | OutOfMemory)
        || e.raw_os_error().is_some_and(|code| code == 23 || code == 24)
}

async fn handle(answers: Arc<Answers>, req: Request<Incoming>) -> Result<Response<UpBody>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/health") => json(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#)),
        (&Method::POST, "/mcp") => match req.into_body().collect().await {
            Ok(body) => answer(&answers, &body.to_bytes()),
            Err(_) => plain(StatusCode::BAD_REQUEST),
        },
        (_, "/mcp") => plain(StatusCode::METHOD_NOT_ALLOWED),
        _ => plain(StatusCode::NOT_FOUND),
    })
}

/// The part of a JSON-RPC message the upstream looks at; `arguments` are skipped unread.
#[derive(Deserialize)]
struct Call {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    method: String,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    name: Option<String>,
}

fn answer(answers: &Arc<Answers>, body: &[u8]) -> Response<UpBody> {
    let Ok(call) = serde_json::from_slice::<Call>(body) else {
        return json(
            StatusCode::BAD_REQUEST,
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#),
        );
    };
    let Some(id) = call.id.filter(|id| !id.is_null()) else {
        return plain(StatusCode::ACCEPTED);
    };
    let raw_id = id.to_string();
    let reply = |result: serde_json::Value| {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result});
        json(StatusCode::OK, Bytes::from(body.to_string()))
    };
    match call.method.as_str() {
        "tools/call" => {
            if call.params.and_then(|p| p.name).as_deref() == Some(STREAM_TOOL) {
                stream(EventStream { answers: answers.clone(), id: raw_id.into_bytes(), next: 0, yielded: false })
            } else {
                json(StatusCode::OK, answers.json(raw_id.as_bytes()))
            }
        }
        "initialize" => reply(serde_json::json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "tollgate-bench-upstream", "version": env!("CARGO_PKG_VERSION")},
        })),
        "tools/list" => reply(serde_json::json!({"tools": [
            {"name": "echo", "description": "Answers with about 1 KB of text.",
             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
            {"name": STREAM_TOOL, "description": "Streams 49 progress notifications, then the result.",
             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
        ]})),
        "ping" => reply(serde_json::json!({})),
        _ => {
            let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}});
            json(StatusCode::OK, Bytes::from(body.to_string()))
        }
    }
}

fn json(status: StatusCode, body: Bytes) -> Response<UpBody> {
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn plain(status: StatusCode) -> Response<UpBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::new())));
    *response.status_mut() = status;
    response
}

fn stream(events: EventStream) -> Response<UpBody> {
    let mut response = Response::new(Either::Right(events));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The streamed answer: one event per frame, with a yield to the connection between
/// frames so that hyper writes and flushes each event on its own instead of coalescing
/// them into one write.
pub(crate) struct EventStream {
    answers: Arc<Answers>,
    id: Vec<u8>,
    next: u64,
    yielded: bool,
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.next >= EVENTS_PER_STREAM {
            return Poll::Ready(None);
        }
        if self.next > 0 && !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        let event = self.answers.event(&self.id, self.next);
        self.next += 1;
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= EVENTS_PER_STREAM
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
