//! Tollgate's metered gateway: every call to `/{agent}/{version}/mcp` is authenticated,
//! rate-limited, held against the org's credit, forwarded, metered and billed here.
//!
//! A call, in order: authenticate the key → the key belongs to this agent, its
//! installation is active, the version is not retired → rate limits → per-key daily limits
//! → org monthly budget and balance hold → forward → stream back → meter → settle → usage
//! record. See docs/ARCHITECTURE.md, "A metered call end to end".
//!
//! Architecture invariant: the hot path makes no database round trip in the default mode.
//! Keys, versions and orgs come from caches dropped on change; rate limits and counters
//! live in memory (or Redis); holds are carved from credit leases in memory; metering runs
//! on threads of its own; usage records and charges go through one writer that
//! group-commits.

mod admit;
mod body;
mod call;
mod counters;
mod credit;
mod directory;
mod error;
mod meter;
pub mod ratelimit;
mod upstream;
mod writer;

pub use counters::SharedCounters;
pub use upstream::AddressPolicy;
pub use writer::Writer;

pub use error::GatewayError;
pub use tollgate_store::changes::Change;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_domain::secret::Sealer;
use tollgate_domain::time::now_ms;
use tollgate_store::Store;

/// When a call's charge is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Group commit: a hard crash may leave the calls of the last batch window uncharged,
    /// never charged twice.
    #[default]
    Async,
    /// A call's charge is committed before the end of its response is released.
    Sync,
}

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The URL clients reach this instance at (for the RFC 9728 metadata).
    pub public_url: String,
    /// Default requests per member per agent per minute, hour and day (0 = unlimited).
    pub rate_limits: [u64; 3],
    /// Connecting to an upstream.
    pub connect_timeout: Duration,
    /// From sending the request to the upstream's response headers.
    pub first_byte_timeout: Duration,
    /// The longest silence inside a streamed response.
    pub idle_timeout: Duration,
    /// The largest request body forwarded.
    pub max_request_bytes: usize,
    /// A response stream is cut after this many events…
    pub max_stream_events: u64,
    /// … or this many bytes.
    pub max_stream_bytes: u64,
    /// The platform's share of each charge, in basis points.
    pub platform_fee_bps: i64,
    /// Output tokens a per-token call's hold covers before the call ends.
    pub hold_output_tokens: i64,
    /// When charges are committed.
    pub durability: Durability,
    /// With async durability, how long the writer gathers calls into one commit.
    pub write_window: Duration,
    /// Threads that count tokens and settle calls (0: one per core, at most 4).
    pub meter_threads: usize,
    /// With async durability, how far the writer may fall behind: once the oldest call
    /// finished and not yet committed is older than this, a finishing call's last bytes
    /// wait for its commit. A hard crash then leaves uncharged only calls answered within
    /// about this long (plus one write window) before it, however slow the database is.
    pub max_commit_lag: Duration,
    /// Which upstream addresses the gateway may connect to.
    pub upstream_addresses: AddressPolicy,
    /// Extra root certificates (PEM; each may hold several) trusted for HTTPS upstreams,
    /// besides the Mozilla roots: for agents behind a private CA.
    pub upstream_ca_pem: Vec<Vec<u8>>,
    /// The most calls in flight to one agent version on this replica; past it a call is
    /// answered 503 (over capacity) with `Retry-After`. 0 = no cap.
    pub max_in_flight_per_version: usize,
    /// The most refused calls recorded per key per minute: a client that keeps calling
    /// past its limits leaves this many usage records a minute, not one per attempt.
    pub max_refusals_recorded_per_minute: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            public_url: "http://127.0.0.1:8080".into(),
            rate_limits: [60, 1000, 10_000],
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(300),
            max_request_bytes: 4 * 1024 * 1024,
            max_stream_events: 100_000,
            max_stream_bytes: 1 << 30,
            platform_fee_bps: 2000,
            hold_output_tokens: 4096,
            durability: Durability::Async,
            write_window: Duration::from_millis(5),
            meter_threads: 1,
            max_commit_lag: Duration::from_millis(200),
            upstream_addresses: AddressPolicy::default(),
            upstream_ca_pem: Vec::new(),
            max_in_flight_per_version: 0,
            max_refusals_recorded_per_minute: 600,
        }
    }
}

/// Shared state of the gateway.
pub(crate) struct Inner {
    pub config: GatewayConfig,
    pub directory: directory::Directory,
    pub limiter: Arc<dyn ratelimit::RateLimiter>,
    pub counters: Arc<counters::Counters>,
    pub credit: Arc<credit::Credit>,
    pub meter: meter::Meter,
    pub upstream: upstream::Upstream,
    /// Where refused calls' usage records go.
    pub writer: Writer,
    /// How many refused calls each key has left on record this minute.
    pub refusals: call::RefusalQuota,
    /// Cancelled at shutdown, after the grace period: open response streams end.
    pub closing: tokio_util::sync::CancellationToken,
}

/// The gateway: shared by every call.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl Gateway {
    /// A gateway over `store` with `limiter` for rate limits and, when given, per-key daily
    /// usage and free-tier counts `shared` between replicas (else kept in memory). Starts
    /// its meter threads and its writer task (call from within a Tokio runtime). Fails
    /// when a thread cannot start or an extra root CA is not PEM.
    pub fn start(
        store: Store,
        sealer: Sealer,
        limiter: Arc<dyn ratelimit::RateLimiter>,
        shared: Option<SharedCounters>,
        config: GatewayConfig,
    ) -> std::io::Result<Gateway> {
        tollgate_metering::warm_up();
        let window = if config.durability == Durability::Sync { Duration::ZERO } else { config.write_window };
        let to_writer = Writer::start(store.clone(), window)?;
        let counters = Arc::new(counters::Counters::new(store.clone(), shared));
        let credit = Arc::new(credit::Credit::new(store.clone(), credit::LeasePolicy::default()));
        let threads = match config.meter_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            n => n,
        };
        let meter = meter::Meter::start(
            threads,
            credit.clone(),
            counters.clone(),
            to_writer.clone(),
            config.platform_fee_bps,
            config.durability == Durability::Sync,
            config.max_commit_lag,
        )?;
        let changes = store.clone();
        let inner = Arc::new(Inner {
            directory: directory::Directory::new(store, sealer),
            upstream: upstream::Upstream::new(&config)?,
            writer: to_writer,
            refusals: call::RefusalQuota::new(config.max_refusals_recorded_per_minute),
            closing: tokio_util::sync::CancellationToken::new(),
            limiter,
            counters,
            credit: credit.clone(),
            meter,
            config,
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.credit.maintain(false).await;
            }
        });
        let gateway = Gateway { inner };
        let weak = Arc::downgrade(&gateway.inner);
        changes.on_change(Arc::new(move |change: &Change| {
            if let Some(inner) = weak.upgrade() {
                Gateway { inner }.forget(change);
            }
        }));
        Ok(gateway)
    }

    /// Routes: `/{agent}/{version}/mcp` (POST, GET, DELETE), `/{agent}/{version}/health`,
    /// and the RFC 9728 metadata at `/.well-known/oauth-protected-resource/{agent}/{version}/mcp`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/{agent}/{version}/mcp", get(mcp).post(mcp).delete(mcp))
            .route("/{agent}/{version}/health", get(health))
            .route("/.well-known/oauth-protected-resource/{agent}/{version}/mcp", get(resource_metadata))
            .with_state(self.clone())
    }

    /// Drops what `change` made stale (cached keys, versions, org settings; an org's lease
    /// after its budget changed). The store's changes are applied this way as they happen.
    pub fn forget(&self, change: &Change) {
        self.inner.directory.apply(change);
        if let (Change::Org(org_id), Ok(runtime)) = (change, tokio::runtime::Handle::try_current()) {
            let (inner, org_id) = (self.inner.clone(), org_id.clone());
            runtime.spawn(async move { inner.credit.forget(&org_id).await });
        }
    }

    /// Ends every response still streaming (long-lived session streams, slow tools): an SSE
    /// stream gets a last event saying the gateway is shutting down; each call is settled
    /// as failed. For shutdown, once the grace period is over.
    pub fn close_streams(&self) {
        self.inner.closing.cancel();
    }

    /// Waits until every call finished so far is metered and its charge written.
    pub async fn flush(&self) {
        self.inner.meter.flush().await;
    }

    /// At shutdown, after the last call: writes every settlement, then releases this
    /// replica's credit leases.
    pub async fn shutdown(&self) {
        self.flush().await;
        self.inner.credit.maintain(true).await;
    }

    /// How many keys are cached.
    pub fn cached_keys(&self) -> usize {
        self.inner.directory.cached_keys()
    }
}

/// Whether reading a body failed because it is larger than the limit.
fn too_large(error: axum::Error) -> bool {
    let inner = error.into_inner();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `POST|GET|DELETE /{agent}/{version}/mcp`: the key is checked and the call admitted
/// before the body is read, so a request without a valid key gets 401 whatever it holds.
async fn mcp(
    State(gw): State<Gateway>,
    Path((agent, version)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let inner = &gw.inner;
    let route = call::Route { agent: &agent, version: &version, health: false };
    let started = call::Started { at: Instant::now(), now_ms: now_ms() };
    let endpoint = match method {
        Method::POST => "mcp",
        Method::GET => "session/stream",
        _ => "session/delete",
    };
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let mut admitted = match admit::admit(inner, authorization, &agent, &version, started.now_ms).await {
        Ok(admitted) => admitted,
        Err(refused) => return call::refuse_unadmitted(inner, refused, &route, endpoint, started),
    };
    let body = match axum::body::to_bytes(body, inner.config.max_request_bytes).await {
        Ok(body) => body,
        Err(e) => {
            let error = if too_large(e) {
                GatewayError::TooLarge(inner.config.max_request_bytes)
            } else {
                GatewayError::InvalidRequest("the request body could not be read".into())
            };
            return call::refuse_admitted(inner, &mut admitted, error, (endpoint, endpoint, None), &route, started);
        }
    };
    let asked = if method == Method::POST {
        match call::read_mcp(&body, &headers) {
            Ok(asked) => asked,
            Err((e, id)) => {
                return call::refuse_admitted(
                    inner,
                    &mut admitted,
                    e,
                    (endpoint, endpoint, id.as_ref()),
                    &route,
                    started,
                );
            }
        }
    } else {
        call::Asked::free(endpoint)
    };
    call::forward(inner, route, method, headers, body, asked, admitted, started).await
}

/// `GET /{agent}/{version}/health`: forwarded to the agent's `/health` (wakes cold starts),
/// billed as a utility call.
async fn health(
    State(gw): State<Gateway>,
    Path((agent, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let inner = &gw.inner;
    let route = call::Route { agent: &agent, version: &version, health: true };
    let started = call::Started { at: Instant::now(), now_ms: now_ms() };
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let admitted = match admit::admit(inner, authorization, &agent, &version, started.now_ms).await {
        Ok(admitted) => admitted,
        Err(refused) => return call::refuse_unadmitted(inner, refused, &route, "health", started),
    };
    let asked = call::Asked::utility("health");
    call::forward(inner, route, Method::GET, headers, Bytes::new(), asked, admitted, started).await
}

/// RFC 9728 protected-resource metadata for an agent's MCP endpoint. It names no
/// authorization server: keys are issued by the store, not by an OAuth flow.
async fn resource_metadata(State(gw): State<Gateway>, Path((agent, version)): Path<(String, String)>) -> Response {
    let base = gw.inner.config.public_url.trim_end_matches('/').to_string();
    let mut response = match gw.inner.directory.target(&agent, &version).await {
        Ok(Some(target)) => axum::Json(serde_json::json!({
            "resource": format!("{base}/{agent}/{version}/mcp"),
            "bearer_methods_supported": ["header"],
            "resource_name": target.agent.name,
            "resource_documentation": format!("{base}/api/v1/store/agents/{agent}"),
        }))
        .into_response(),
        Ok(None) => GatewayError::NotFound(format!("there is no agent version {agent}/{version}")).into_response(),
        Err(e) => e.into_response(),
    };
    let in_force = ratelimit::headers_in_force(gw.inner.config.rate_limits, now_ms());
    error::add_headers(&mut response, &in_force);
    response
}
