//! Shared state of the API.

use crate::throttle::{LoginThrottle, SignupThrottle};
use std::sync::Arc;
use std::time::Duration;
use tollgate_domain::Nanos;
use tollgate_domain::secret::Sealer;
use tollgate_integrations::email::EmailSender;
use tollgate_integrations::payments::PaymentProvider;
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
    /// The smallest purchase of credits by card (and auto-recharge amount).
    pub purchase_min: Nanos,
    /// The largest purchase of credits by card (and auto-recharge amount).
    pub purchase_max: Nanos,
    /// The low-balance threshold of orgs without auto-recharge: falling below it sends
    /// their owners and admins a notification.
    pub low_balance: Nanos,
    /// How often the billing watcher looks at balances, budgets and recharges, and the
    /// mailer at the email queue.
    pub watch_interval: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            signup_grant: Nanos(100_000_000_000),
            cookie_secure: false,
            public_url: "http://127.0.0.1:8080".into(),
            platform_fee_bps: 2000,
            trust_forwarded_for: false,
            purchase_min: Nanos(5_000_000_000),
            purchase_max: Nanos(10_000_000_000_000),
            low_balance: Nanos(5_000_000_000),
            watch_interval: Duration::from_secs(10),
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
    /// Card payments, when the operator set them up.
    pub payments: Option<Arc<dyn PaymentProvider>>,
    /// Email, when the operator set it up.
    pub email: Option<Arc<dyn EmailSender>>,
    pub(crate) throttle: LoginThrottle,
    pub(crate) signups: SignupThrottle,
}

impl AppState {
    /// State over a store.
    pub fn new(store: Store, config: ApiConfig, sealer: Sealer) -> AppState {
        AppState {
            throttle: LoginThrottle::new(store.clone()),
            signups: SignupThrottle::new(store.clone()),
            store,
            config: Arc::new(config),
            sealer,
            payments: None,
            email: None,
        }
    }

    /// The same, taking card payments through `provider`.
    pub fn with_payments(self, provider: Arc<dyn PaymentProvider>) -> AppState {
        AppState { payments: Some(provider), ..self }
    }

    /// The same, emailing notifications through `sender`.
    pub fn with_email(self, sender: Arc<dyn EmailSender>) -> AppState {
        AppState { email: Some(sender), ..self }
    }
}
