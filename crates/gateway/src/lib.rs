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
pub use writer::Writer;

pub use error::GatewayError;
pub use tollgate_store::changes::Change;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tollgate_domain::secret::Sealer;
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
}

/// The gateway: shared by every call.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl Gateway {
    /// A gateway over `store` with `limiter` for rate limits and, when given, per-key daily
    /// usage and free-tier counts `shared` between replicas (else kept in memory). Starts
    /// its meter threads and its writer task (call from within a Tokio runtime).
    pub fn start(
        store: Store,
        sealer: Sealer,
        limiter: Arc<dyn ratelimit::RateLimiter>,
        shared: Option<SharedCounters>,
        config: GatewayConfig,
    ) -> std::io::Result<Gateway> {
        tollgate_metering::warm_up();
        let window = if config.durability == Durability::Sync { Duration::ZERO } else { config.write_window };
        let to_writer = Writer::start(store.clone(), window);
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
            to_writer,
            config.platform_fee_bps,
            config.durability == Durability::Sync,
        )?;
        let changes = store.clone();
        let inner = Arc::new(Inner {
            directory: directory::Directory::new(store, sealer),
            upstream: upstream::Upstream::new(&config),
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

/// `POST|GET|DELETE /{agent}/{version}/mcp`.
async fn mcp(
    State(gw): State<Gateway>,
    Path((agent, version)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let inner = &gw.inner;
    let route = call::Route { agent: &agent, version: &version, health: false };
    let Ok(body) = axum::body::to_bytes(body, inner.config.max_request_bytes).await else {
        return call::refuse(inner, GatewayError::TooLarge(inner.config.max_request_bytes), &[], None, &route);
    };
    let asked = if method == Method::POST {
        match call::read_mcp(&body, &headers) {
            Ok(asked) => asked,
            Err((e, id)) => return call::refuse(inner, e, &[], id.as_ref(), &route),
        }
    } else if method == Method::GET {
        call::Asked::free("session/stream")
    } else {
        call::Asked::free("session/delete")
    };
    call::forward(inner, route, method, headers, body, asked).await
}

/// `GET /{agent}/{version}/health`: forwarded to the agent's `/health` (wakes cold starts),
/// billed as a utility call.
async fn health(
    State(gw): State<Gateway>,
    Path((agent, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let route = call::Route { agent: &agent, version: &version, health: true };
    call::forward(&gw.inner, route, Method::GET, headers, Bytes::new(), call::Asked::utility("health")).await
}

/// RFC 9728 protected-resource metadata for an agent's MCP endpoint.
async fn resource_metadata(State(gw): State<Gateway>, Path((agent, version)): Path<(String, String)>) -> Response {
    let base = gw.inner.config.public_url.trim_end_matches('/').to_string();
    match gw.inner.directory.target(&agent, &version).await {
        Ok(Some(target)) => axum::Json(serde_json::json!({
            "resource": format!("{base}/{agent}/{version}/mcp"),
            "authorization_servers": [base],
            "bearer_methods_supported": ["header"],
            "resource_name": target.agent.name,
            "resource_documentation": format!("{base}/api/v1/store/agents/{agent}"),
        }))
        .into_response(),
        Ok(None) => GatewayError::NotFound(format!("there is no agent version {agent}/{version}")).into_response(),
        Err(e) => e.into_response(),
    }
}
