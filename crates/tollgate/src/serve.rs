//! `tollgate serve`: one listener for the web UI, the API and the gateway.

use crate::cli::{ServeArgs, open_store};
use crate::config::Config;
use anyhow::{Context, Result, anyhow};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tollgate_api::{ApiConfig, AppState};
use tollgate_domain::Nanos;
use tollgate_domain::secret::Sealer;
use tollgate_gateway::ratelimit::{MemoryRateLimiter, RateLimiter, RedisRateLimiter};
use tollgate_gateway::{AddressPolicy, Durability, Gateway, GatewayConfig, SharedCounters};
use tollgate_store::Store;
use tracing_subscriber::EnvFilter;

/// The encryption key: configured, or the one in `data_dir/encryption.key`, or on SQLite
/// one generated there now. On PostgreSQL nothing is generated: each replica would make its
/// own key and could not open the credentials the others sealed, so without a configured key
/// (or one already in `data_dir`, a single server that moved from SQLite) this refuses.
fn sealer(config: &Config) -> Result<Sealer> {
    if let Some(key) = &config.encryption_key {
        return Sealer::from_hex(key).map_err(|e| anyhow!("encryption_key: {e}"));
    }
    let path = config.data_dir.join("encryption.key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Sealer::from_hex(&key).map_err(|e| anyhow!("{}: {e}", path.display()));
    }
    let url = config.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(anyhow!(
            "on PostgreSQL every replica needs the same encryption key, and none is configured: set \
             TOLLGATE_ENCRYPTION_KEY (or TOLLGATE_ENCRYPTION_KEY_FILE, a file holding it; or encryption_key in \
             tollgate.toml) to 64 hex characters, e.g. from `openssl rand -hex 32`"
        ));
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let key = Sealer::generate_key_hex()?;
    write_private(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(path = %path.display(), "generated a new encryption key; back it up");
    Sealer::from_hex(&key).map_err(|e| anyhow!("{e}"))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// The public URL: configured, or `http://<listen>`.
pub fn public_url(config: &Config, bound: &str) -> String {
    config.public_url.clone().unwrap_or_else(|| format!("http://{bound}"))
}

/// The API's state for `config` over `store`.
pub fn app_state(config: &Config, store: Store) -> Result<AppState> {
    let api = ApiConfig {
        signup_grant: Nanos::parse_usd(&config.signup_grant_usd).map_err(|e| anyhow!("signup_grant_usd {e}"))?,
        cookie_secure: config.cookie_secure,
        public_url: public_url(config, &config.listen),
        platform_fee_bps: config.platform_fee_bps,
        trust_forwarded_for: config.trust_forwarded_for,
        purchase_min: config.purchase_limits()?.0,
        purchase_max: config.purchase_limits()?.1,
        low_balance: config.low_balance()?,
        watch_interval: Duration::from_millis(config.billing_watch_interval_ms),
    };
    crate::services::attach(config, AppState::new(store, api, sealer(config)?))
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let config = args.load()?;
    let filter = log_filter(&config.log);
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).init();
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let bound = listener.local_addr()?.to_string();
    let config = Config { public_url: Some(public_url(&config, &bound)), ..config };
    let (store, applied) = open_store(&config).await?;
    if applied > 0 {
        tracing::info!(migrations = applied, "database migrated");
    }
    let state = app_state(&config, store.clone())?;
    store.listen_for_changes().await.context("listening for changes on PostgreSQL")?;
    let gateway = gateway(&config, &state).await?;
    let shutdown = CancellationToken::new();
    let app = tollgate_web::site(
        state.clone(),
        tollgate_web::WebConfig {
            rate_limits: [config.rate_limit_minute, config.rate_limit_hour, config.rate_limit_day],
            a2a_calls: false,
        },
    )
    .merge(gateway.router())
    .nest("/_examples", tollgate_examples::router_with_shutdown(shutdown.clone()));
    let shutdown_signal = shutdown_signal();
    let stop = shutdown.clone();
    // Small writes (SSE events, short JSON answers) go out at once, not after a delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // Serving starts before the demo is seeded: the demo's calls go through the gateway to
    // the example agents on this listener. The URL is printed once seeding is done.
    let serving = tokio::spawn(
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move {
                tokio::select! {
                    () = shutdown_signal => tracing::info!("shutting down: finishing in-flight requests"),
                    () = stop.cancelled() => {}
                }
                stop.cancel();
            })
            .into_future(),
    );
    let demo = if args.demo {
        let url = public_url(&config, &bound);
        let seeding = crate::demo::seed(&state, &gateway, &url);
        let seeded = tokio::select! {
            seeded = seeding => seeded.map(Some),
            // Stopped while seeding: the next start finishes it.
            () = shutdown.cancelled() => Ok(None),
        };
        match seeded {
            Ok(Some(lines)) => lines,
            stopped_or_failed => {
                shutdown.cancel();
                let _ = serving.await;
                gateway.shutdown().await;
                store.close().await;
                return stopped_or_failed.map(|_| ());
            }
        }
    } else {
        Vec::new()
    };
    let sweeper = tokio::spawn(sweep_holds(store.clone(), shutdown.clone()));
    let billing = tokio::spawn(tollgate_api::tasks::run(state.clone(), shutdown.clone().cancelled_owned()));
    println!("listening on http://{bound}");
    for line in demo {
        println!("{line}");
    }
    // Stopping: in-flight requests finish; what still streams after the grace period (a
    // long-lived session stream, a slow tool) is cut, and its call settled as failed.
    let mut serving = serving;
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let finished = tokio::select! {
        served = &mut serving => Some(served),
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => None,
    };
    match finished {
        Some(served) => served.context("the server task failed")??,
        None => {
            tracing::warn!(
                grace_ms = config.shutdown_grace_ms,
                "requests still open after the grace period; cutting them"
            );
            gateway.close_streams();
            match tokio::time::timeout(Duration::from_secs(5), &mut serving).await {
                Ok(served) => served.context("the server task failed")??,
                Err(_) => {
                    tracing::warn!("requests still open after the streams were cut; stopping without them");
                    serving.abort();
                }
            }
        }
    }
    shutdown.cancel();
    gateway.shutdown().await;
    let _ = sweeper.await;
    let _ = billing.await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Crates that log message content at debug level or finer (the MCP SDK behind the
/// example agents logs whole requests and results): capped at `info` whatever the
/// configured filter says, so no log ever holds a call's content.
const CONTENT_LOGGERS: &[&str] = &["rmcp"];

/// The configured log filter, with [`CONTENT_LOGGERS`] capped.
fn log_filter(configured: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(configured).unwrap_or_else(|_| EnvFilter::new("info"));
    for target in CONTENT_LOGGERS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// The gateway, with rate limits and usage counters in Redis when `redis_url` is set (shared
/// by every replica), in memory otherwise.
async fn gateway(config: &Config, state: &AppState) -> Result<Gateway> {
    let (limiter, shared): (Arc<dyn RateLimiter>, _) = match &config.redis_url {
        Some(url) => (
            Arc::new(RedisRateLimiter::connect(url).await.map_err(|e| anyhow!("redis_url: {e}"))?),
            Some(SharedCounters::connect(url).await.map_err(|e| anyhow!("redis_url: {e}"))?),
        ),
        None => (Arc::new(MemoryRateLimiter::new()), None),
    };
    let gateway_config = GatewayConfig {
        public_url: state.config.public_url.clone(),
        rate_limits: [config.rate_limit_minute, config.rate_limit_hour, config.rate_limit_day],
        platform_fee_bps: config.platform_fee_bps,
        connect_timeout: Duration::from_millis(config.upstream_connect_timeout_ms),
        first_byte_timeout: Duration::from_millis(config.upstream_first_byte_timeout_ms),
        idle_timeout: Duration::from_millis(config.upstream_idle_timeout_ms),
        durability: if config.billing_durability == "sync" { Durability::Sync } else { Durability::Async },
        max_request_bytes: usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX),
        meter_threads: usize::try_from(config.meter_threads).unwrap_or(1),
        upstream_addresses: AddressPolicy {
            allow_link_local: config.upstream_allow_link_local,
            allow_private: config.upstream_allow_private,
        },
        upstream_ca_pem: config
            .upstream_ca_files
            .iter()
            .map(|path| std::fs::read(path).with_context(|| format!("upstream_ca_files: reading {}", path.display())))
            .collect::<Result<_>>()?,
        max_in_flight_per_version: usize::try_from(config.upstream_max_in_flight).unwrap_or(usize::MAX),
        ..GatewayConfig::default()
    };
    Gateway::start(state.store.clone(), state.sealer.clone(), limiter, shared, gateway_config)
        .context("starting the gateway")
}

/// Expires holds whose time has passed, every few seconds, and deletes ended sessions and
/// throttle windows.
async fn sweep_holds(store: Store, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let now = tollgate_domain::time::now_ms();
                match store.expire_holds(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(holds = n, "expired holds"),
                    Err(e) => tracing::warn!(error = %e, "hold sweeper failed"),
                }
                if let Err(e) = store.delete_expired_sessions(now).await {
                    tracing::warn!(error = %e, "session sweeper failed");
                }
                if let Err(e) = store.delete_ended_throttles(now).await {
                    tracing::warn!(error = %e, "throttle sweeper failed");
                }
            }
        }
    }
}

/// Listens for SIGTERM and Ctrl-C (SIGINT) from now on — before the server says it is
/// listening, so a signal sent right after that line stops it cleanly; the future ends at
/// the first.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => {},
            _ = wait(interrupt) => {},
        }
    }
}

/// Listens for Ctrl-C; the future ends at the first.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
