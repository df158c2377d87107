//! The load generator: HTTP/1.1 keep-alive connections on hyper's low-level client, one
//! request in flight per connection, the same pre-built body on every request.
//!
//! - Closed loop: each connection sends its next request as soon as the previous answer
//!   has ended, for a warm-up and then a measured window; throughput is the answers that
//!   ended inside the window divided by its length.
//! - Open loop: a pacing thread releases requests at a fixed rate; a free connection takes
//!   the next one, and latency runs from the request's *scheduled* time to the end of its
//!   answer, so time spent waiting for a connection counts (no coordinated omission).
//!
//! Latency is recorded per request in nanoseconds and the percentiles are read from the
//! sorted samples, so they are exact.

use crate::payload::{EVENTS_PER_STREAM, JSON_TOOL, STREAM_TOOL, request_body};
use crate::{BenchError, Workload};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

/// The pacing thread sleeps until this long before each send time and spins the rest:
/// waking a sleeping thread takes ~100 µs on some virtual machines.
const SPIN: Duration = Duration::from_micros(200);

/// How long an open-loop run may go on past its window to let late answers end.
const DRAIN: Duration = Duration::from_secs(10);

/// Where the load goes and with which credentials.
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    /// Path of the MCP endpoint, e.g. `/mcp` or `/bench/1.0.0/mcp`.
    pub(crate) path: Uri,
    pub(crate) host: HeaderValue,
    /// `Authorization` values, used in turn.
    pub(crate) keys: Arc<Vec<HeaderValue>>,
}

const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr, path: &str, keys: Arc<Vec<HeaderValue>>) -> Result<Self, BenchError> {
        let path = path.parse().map_err(|e| BenchError::Options(format!("path {path:?}: {e}")))?;
        let host = HeaderValue::from_str(&addr.to_string()).map_err(|e| BenchError::Options(e.to_string()))?;
        Ok(Endpoint { addr, path, host, keys })
    }

    fn request(&self, body: &Bytes, n: usize) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.path.clone();
        let headers = req.headers_mut();
        headers.reserve(8);
        headers.insert(HOST, self.host.clone());
        if !self.keys.is_empty() {
            headers.insert(AUTHORIZATION, self.keys[n % self.keys.len()].clone());
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        headers.insert(MCP_PROTOCOL_VERSION, HeaderValue::from_static("2025-06-18"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        req
    }
}

impl Workload {
    fn body(self) -> Bytes {
        request_body(match self {
            Workload::Json => JSON_TOOL,
            Workload::Stream => STREAM_TOOL,
        })
    }
}

/// What one run recorded.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Latency of each successful request in the measured window, nanoseconds.
    pub(crate) samples: Vec<u64>,
    /// Failed requests in the measured window.
    pub(crate) errors: u64,
    /// SSE events received by the successful requests in the window.
    pub(crate) events: u64,
    /// Open loop: how long after its scheduled time each request in the window was sent,
    /// nanoseconds.
    pub(crate) lags: Vec<u64>,
    /// Successful requests in the whole run, warm-up included (each one was billed).
    pub(crate) succeeded: u64,
    pub(crate) first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.samples.extend(other.samples);
        self.lags.extend(other.lags);
        self.errors += other.errors;
        self.events += other.events;
        self.succeeded += other.succeeded;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn fail(&mut self, counted: bool, why: String) {
        if counted {
            self.errors += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(why);
        }
    }

    /// Records the outcome of one request; `counted` says whether it is in the window.
    fn record(&mut self, workload: Workload, outcome: &Outcome, latency: Duration, counted: bool) {
        match judge(workload, outcome) {
            Ok(()) => {
                self.succeeded += 1;
                if counted {
                    self.samples.push(latency.as_nanos() as u64);
                    self.events += outcome.events;
                }
            }
            Err(why) => self.fail(counted, why),
        }
    }
}

/// One answer, as far as the load generator reads it.
struct Outcome {
    status: StatusCode,
    events: u64,
    /// The start of the body of an unsuccessful answer.
    head: Vec<u8>,
}

/// Success is a 2xx answer and, for the stream, all 50 events.
fn judge(workload: Workload, outcome: &Outcome) -> Result<(), String> {
    if !outcome.status.is_success() {
        let body = String::from_utf8_lossy(&outcome.head);
        return Err(format!("answered {}: {}", outcome.status, body.trim()));
    }
    if workload == Workload::Stream && outcome.events != EVENTS_PER_STREAM {
        return Err(format!("the stream ended after {} of {EVENTS_PER_STREAM} events", outcome.events));
    }
    Ok(())
}

/// Counts SSE events in a byte stream that may be split anywhere: an event ends at an
/// empty line after at least one `data:` line (`\r` is ignored; comments and other fields
/// alone are not events).
#[derive(Debug, Default)]
pub(crate) struct EventCounter {
    events: u64,
    /// Bytes of the current line so far.
    line_len: usize,
    /// Whether the current line so far matches `data:`.
    prefix_ok: bool,
    event_has_data: bool,
}

impl EventCounter {
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        const DATA: &[u8] = b"data:";
        for &b in bytes {
            match b {
                b'\n' => {
                    if self.line_len == 0 && self.event_has_data {
                        self.events += 1;
                        self.event_has_data = false;
                    }
                    self.line_len = 0;
                }
                b'\r' => {}
                _ => {
                    if self.line_len < DATA.len() {
                        self.prefix_ok = (self.line_len == 0 || self.prefix_ok) && b == DATA[self.line_len];
                        if self.prefix_ok && self.line_len + 1 == DATA.len() {
                            self.event_has_data = true;
                        }
                    }
                    self.line_len += 1;
                }
            }
        }
    }

    pub(crate) fn events(&self) -> u64 {
        self.events
    }
}

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Connects, retrying until `until`.
async fn reconnect(addr: SocketAddr, until: Instant) -> Option<Sender> {
    while Instant::now() < until {
        if let Ok(sender) = connect(addr).await {
            return Some(sender);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Sends one request and reads its answer to the end.
async fn exchange(sender: &mut Sender, req: Request<Full<Bytes>>, stream: bool) -> Result<Outcome, String> {
    sender.ready().await.map_err(|e| format!("connection: {e}"))?;
    let response = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let mut body = response.into_body();
    let mut counter = EventCounter::default();
    let mut head = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the answer: {e}"))?;
        if let Some(data) = frame.data_ref() {
            if stream {
                counter.feed(data);
            }
            if !status.is_success() && head.len() < 300 {
                head.extend_from_slice(&data[..data.len().min(300 - head.len())]);
            }
        }
    }
    Ok(Outcome { status, events: counter.events(), head })
}

/// When a run starts, and the measured window `[from, until]` after its warm-up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: Instant,
    pub(crate) from: Instant,
    pub(crate) until: Instant,
}

impl Window {
    /// A window that starts `lead` from now, after `warmup`, lasting `duration`.
    pub(crate) fn new(lead: Duration, warmup: Duration, duration: Duration) -> Self {
        let start = Instant::now() + lead;
        Window { start, from: start + warmup, until: start + warmup + duration }
    }
}

/// Closed loop: `connections` connections, each sending back to back through `window`.
pub(crate) async fn closed_loop(
    endpoint: &Arc<Endpoint>,
    workload: Workload,
    connections: usize,
    window: Window,
) -> Tally {
    let body = workload.body();
    let Window { from, until, .. } = window;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (endpoint, body, next) = (endpoint.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let Some(mut sender) = reconnect(endpoint.addr, until).await else {
                tally.fail(true, format!("could not connect to {}", endpoint.addr));
                return tally;
            };
            while Instant::now() < until {
                let req = endpoint.request(&body, next.fetch_add(1, Ordering::Relaxed));
                let sent = Instant::now();
                let result = exchange(&mut sender, req, workload == Workload::Stream).await;
                let ended = Instant::now();
                let counted = ended >= from && ended <= until;
                match result {
                    Ok(outcome) => tally.record(workload, &outcome, ended - sent, counted),
                    Err(why) => {
                        tally.fail(counted, why);
                        match reconnect(endpoint.addr, until).await {
                            Some(s) => sender = s,
                            None => break,
                        }
                    }
                }
            }
            tally
        }));
    }
    join(tasks).await
}

/// Open loop at `rate` requests per second over `connections` connections, through
/// `window` (whose start leaves time to connect).
pub(crate) async fn open_loop(
    endpoint: &Arc<Endpoint>,
    workload: Workload,
    connections: usize,
    rate: u32,
    window: Window,
) -> Tally {
    let body = workload.body();
    let mut senders = Vec::with_capacity(connections);
    let mut tally = Tally::default();
    for _ in 0..connections {
        match connect(endpoint.addr).await {
            Ok(sender) => senders.push(sender),
            Err(why) => tally.fail(true, why),
        }
    }
    if senders.is_empty() {
        return tally;
    }
    let Window { start, from, until } = window;
    let (tx, rx) = mpsc::unbounded_channel::<Instant>();
    let interval_ns = 1_000_000_000 / u64::from(rate.max(1));
    std::thread::spawn(move || pace(tx, start, until, interval_ns));
    let rx = Arc::new(Mutex::new(rx));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(senders.len());
    for mut sender in senders {
        let (endpoint, body, rx, next) = (endpoint.clone(), body.clone(), rx.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let scheduled = rx.lock().await.recv().await;
                let Some(scheduled) = scheduled else { break };
                if Instant::now() > until + DRAIN {
                    break;
                }
                let counted = scheduled >= from;
                let req = endpoint.request(&body, next.fetch_add(1, Ordering::Relaxed));
                if counted {
                    tally.lags.push(Instant::now().saturating_duration_since(scheduled).as_nanos() as u64);
                }
                let result = exchange(&mut sender, req, workload == Workload::Stream).await;
                let ended = Instant::now();
                match result {
                    Ok(outcome) => {
                        tally.record(workload, &outcome, ended.saturating_duration_since(scheduled), counted)
                    }
                    Err(why) => {
                        tally.fail(counted, why);
                        match reconnect(endpoint.addr, until + DRAIN).await {
                            Some(s) => sender = s,
                            None => break,
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut all = join(tasks).await;
    all.merge(tally);
    all
}

/// Releases one scheduled send time every `interval_ns` from `start` until `until`. A
/// thread, not a timer task, because tokio's timers have millisecond resolution; it lowers
/// its timer slack (best effort) from Linux's default 50 µs and spins the last [`SPIN`]
/// before each send so that it releases the send on time.
fn pace(tx: mpsc::UnboundedSender<Instant>, start: Instant, until: Instant, interval_ns: u64) {
    let _ = std::fs::write("/proc/thread-self/timerslack_ns", "1");
    let mut n: u64 = 0;
    loop {
        let at = start + Duration::from_nanos(n.saturating_mul(interval_ns));
        if at >= until {
            return;
        }
        let now = Instant::now();
        if at > now + SPIN {
            std::thread::sleep(at - now - SPIN);
        }
        while Instant::now() < at {
            std::hint::spin_loop();
        }
        if tx.send(at).is_err() {
            return;
        }
        n += 1;
    }
}

/// One successful request per key, so the gateway has every key cached before it is
/// measured. Fails on the first unsuccessful answer.
pub(crate) async fn prime(endpoint: &Arc<Endpoint>, connections: usize) -> Result<u64, BenchError> {
    let body = Workload::Json.body();
    let total = endpoint.keys.len();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections.min(total.max(1)) {
        let (endpoint, body, next) = (endpoint.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(endpoint.addr).await?;
            let mut done = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<u64, String>(done);
                }
                let outcome = exchange(&mut sender, endpoint.request(&body, n), false).await?;
                judge(Workload::Json, &outcome)?;
                done += 1;
            }
        }));
    }
    let mut done = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(n)) => done += n,
            Ok(Err(why)) => return Err(BenchError::Load(format!("priming the gateway's key cache: {why}"))),
            Err(e) => return Err(BenchError::Load(format!("priming the gateway's key cache: {e}"))),
        }
    }
    Ok(done)
}

async fn join(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut all = Tally::default();
    for task in tasks {
        match task.await {
            Ok(tally) => all.merge(tally),
            Err(e) => all.fail(true, format!("a load task failed: {e}")),
        }
    }
    all
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_events_split_anywhere() {
        let stream = b"event: message\ndata: {}\n\nevent: message\r\ndata: {\"a\":1}\r\n\r\n: comment\n\n";
        for split in 0..stream.len() {
            let mut c = EventCounter::default();
            c.feed(&stream[..split]);
            c.feed(&stream[split..]);
            assert_eq!(c.events(), 2, "split at {split}");
        }
        let mut c = EventCounter::default();
        c.feed(b"\n\nevent: x\n\ndat: 1\n\n");
        assert_eq!(c.events(), 0);
    }
}
