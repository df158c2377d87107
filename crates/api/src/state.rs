//! Shared state of the API.

use crate::throttle::{LoginThrottle, SignupThrottle};
use std::sync::Arc;
use tollgate_domain::Nanos;
use tollgate_domain::secret::Sealer;
use tollgate_store::Store;

/// The API's settings (a slice of the binary's configuration).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Credits granted to each new personal org.
    pub signup_grant: Nanos,
    /// Whether session cookies carry `Secure` (serve over HTTPS).
    pub cookie_secure: bool,
    /// The URL this instance is reached at, for links and snippets.
    pub public_url: String,
    /// The platform's share of each charge, in basis points (100 = 1%).
    pub platform_fee_bps: i64,
    /// Take the client's address (for log-in throttling) from the last `X-Forwarded-For`
    /// entry instead of the TCP peer. Set only behind a reverse proxy or load balancer that
    /// appends it; otherwise any client could pick its own address. Default false.
    pub trust_forwarded_for: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            signup_grant: Nanos(100_000_000_000),
            cookie_secure: false,
            public_url: "http://127.0.0.1:8080".into(),
            platform_fee_bps: 2000,
            trust_forwarded_for: false,
        }
    }
}

/// Everything a handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    /// Seals upstream credentials at rest.
    pub sealer: Sealer,
    pub(crate) throttle: Arc<LoginThrottle>,
    pub(crate) signups: Arc<SignupThrottle>,
}

impl AppState {
    /// State over a store.
    pub fn new(store: Store, config: ApiConfig, sealer: Sealer) -> AppState {
        AppState { store, config: Arc::new(config), sealer, throttle: Arc::default(), signups: Arc::default() }
    }
}
