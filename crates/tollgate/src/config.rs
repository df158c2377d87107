//! Configuration, layered: defaults → `tollgate.toml` → `TOLLGATE_*` environment → flags.
//! Every key is documented here and in docs/OPERATIONS.md.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Tollgate's configuration. In `tollgate.toml` keys are written as below; in the
/// environment as `TOLLGATE_` + the key in upper case (`TOLLGATE_DATABASE_URL`); as flags
/// with dashes (`--database-url`). Secrets may come from a file: `TOLLGATE_<KEY>_FILE`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Directory for the SQLite database and generated secrets. Default `./tollgate-data`.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`. Default: `tollgate.db` inside `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Redis for rate-limit counters, per-key daily usage and free-tier counts shared by
    /// replicas (optional; revocation travels by PostgreSQL `NOTIFY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// The URL people reach this instance at (links, code snippets). Default `http://<listen>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// 64 hex characters: the key that seals upstream credentials at rest. Default: generated
    /// once into `data_dir/encryption.key`. Every replica must share the same key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    /// Credits each new account gets, in USD. Default `100`.
    pub signup_grant_usd: String,
    /// The platform's share of each charge in basis points (2000 = 20%). Default 2000.
    pub platform_fee_bps: i64,
    /// Mark session cookies `Secure` (set when served over HTTPS). Default false.
    pub cookie_secure: bool,
    /// Take the client's address (for log-in throttling) from the last `X-Forwarded-For`
    /// entry. Set only behind a proxy that appends it. Default false.
    pub trust_forwarded_for: bool,
    /// Default gateway rate limit per member per agent per minute (0 = unlimited). Default 60.
    pub rate_limit_minute: u64,
    /// … per hour. Default 1000.
    pub rate_limit_hour: u64,
    /// … per day. Default 10000.
    pub rate_limit_day: u64,
    /// `async` (group commit; a hard crash may leave the last ≤10 ms of calls uncharged)
    /// or `sync` (a call's charge is committed before its last byte is released). In
    /// `tollgate.toml` also as `durability` in a `[billing]` table.
    pub billing_durability: String,
    /// Connecting to an agent's upstream, in milliseconds. Default 5000.
    pub upstream_connect_timeout_ms: u64,
    /// From forwarding a call to the agent's response headers, in milliseconds. Default 120000.
    pub upstream_first_byte_timeout_ms: u64,
    /// The longest silence inside a streamed response, in milliseconds. Default 300000.
    pub upstream_idle_timeout_ms: u64,
    /// PEM files of extra root certificates trusted for HTTPS upstreams (agents behind a
    /// private CA), besides the Mozilla roots. In the environment or a flag: comma-separated
    /// paths. Default none.
    pub upstream_ca_files: Vec<PathBuf>,
    /// Let the gateway reach link-local upstream addresses (169.254.0.0/16, fe80::/10, where
    /// clouds serve instance metadata). Default false.
    pub upstream_allow_link_local: bool,
    /// Let the gateway reach loopback and private upstream addresses (127/8, 10/8,
    /// 172.16/12, 192.168/16, 100.64/10, ::1, fc00::/7), where self-hosted agents usually
    /// run. Default true.
    pub upstream_allow_private: bool,
    /// The most calls in flight to one agent version per replica; past it a call gets 503
    /// with `Retry-After` (0 = no cap). Default 0.
    pub upstream_max_in_flight: u64,
    /// The largest request body the gateway accepts, in bytes. Default 4194304 (4 MiB).
    pub max_request_bytes: u64,
    /// Threads that count tokens and settle calls (0 = one per core, at most 4). Default 1.
    pub meter_threads: u64,
    /// On SIGTERM or Ctrl-C, how long open requests (long-lived streams included) may go on
    /// before they are cut, in milliseconds. Default 10000.
    pub shutdown_grace_ms: u64,
    /// Log filter, e.g. `info` or `tollgate=debug`. Default `info`.
    pub log: String,
    /// How credits are bought by card: `none` (default: only operator grants), `stripe`,
    /// or `local` (a test checkout page on this instance; no money moves — development only).
    pub payments_provider: String,
    /// Stripe's secret API key (`sk_live_…` / `sk_test_…`). Required with `stripe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_secret_key: Option<String>,
    /// The signing secret (`whsec_…`) of the Stripe webhook endpoint pointed at
    /// `<public_url>/api/v1/billing/webhooks/stripe`. Required with `stripe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_webhook_secret: Option<String>,
    /// Stripe's API base URL. Default `https://api.stripe.com`.
    pub stripe_api_base: String,
    /// The smallest card purchase (and auto-recharge amount), USD. Default `5`.
    pub purchase_min_usd: String,
    /// The largest card purchase (and auto-recharge amount), USD. Default `10000`.
    pub purchase_max_usd: String,
    /// Orgs without auto-recharge whose balance falls below this (USD) get a low-balance
    /// notification. Default `5`.
    pub low_balance_usd: String,
    /// How often, in milliseconds, balances, budgets and auto-recharges are checked and
    /// queued emails sent. Default 10000.
    pub billing_watch_interval_ms: u64,
    /// How notifications are emailed: `none` (default), `smtp`, or `outbox` (`.eml` files in
    /// `data_dir/outbox`, for development).
    pub email_sender: String,
    /// The SMTP server: `smtps://user:password@host:465`,
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or `smtp://host:25`.
    /// Required with `smtp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// The sender of emails. Default `Tollgate <tollgate@localhost>`.
    pub email_from: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./tollgate-data"),
            database_url: None,
            redis_url: None,
            public_url: None,
            encryption_key: None,
            signup_grant_usd: "100".into(),
            platform_fee_bps: 2000,
            cookie_secure: false,
            trust_forwarded_for: false,
            rate_limit_minute: 60,
            rate_limit_hour: 1000,
            rate_limit_day: 10_000,
            billing_durability: "async".into(),
            upstream_connect_timeout_ms: 5000,
            upstream_first_byte_timeout_ms: 120_000,
            upstream_idle_timeout_ms: 300_000,
            upstream_ca_files: Vec::new(),
            upstream_allow_link_local: false,
            upstream_allow_private: true,
            upstream_max_in_flight: 0,
            max_request_bytes: 4 * 1024 * 1024,
            meter_threads: 1,
            shutdown_grace_ms: 10_000,
            log: "info".into(),
            payments_provider: "none".into(),
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_api_base: "https://api.stripe.com".into(),
            purchase_min_usd: "5".into(),
            purchase_max_usd: "10000".into(),
            low_balance_usd: "5".into(),
            billing_watch_interval_ms: 10_000,
            email_sender: "none".into(),
            smtp_url: None,
            email_from: "Tollgate <tollgate@localhost>".into(),
        }
    }
}

/// Every key, as written in `tollgate.toml`.
pub const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "redis_url",
    "public_url",
    "encryption_key",
    "signup_grant_usd",
    "platform_fee_bps",
    "cookie_secure",
    "trust_forwarded_for",
    "rate_limit_minute",
    "rate_limit_hour",
    "rate_limit_day",
    "billing_durability",
    "upstream_connect_timeout_ms",
    "upstream_first_byte_timeout_ms",
    "upstream_idle_timeout_ms",
    "upstream_ca_files",
    "upstream_allow_link_local",
    "upstream_allow_private",
    "upstream_max_in_flight",
    "max_request_bytes",
    "meter_threads",
    "shutdown_grace_ms",
    "log",
    "payments_provider",
    "stripe_secret_key",
    "stripe_webhook_secret",
    "stripe_api_base",
    "purchase_min_usd",
    "purchase_max_usd",
    "low_balance_usd",
    "billing_watch_interval_ms",
    "email_sender",
    "smtp_url",
    "email_from",
];

/// Keys whose values are never printed.
const SECRET_KEYS: &[&str] =
    &["encryption_key", "database_url", "redis_url", "stripe_secret_key", "stripe_webhook_secret", "smtp_url"];

/// Environment variables that are not configuration keys but are allowed: the
/// configuration file's path, and the password of `tollgate admin create-user`.
const OTHER_ENV: &[&str] = &["TOLLGATE_CONFIG", "TOLLGATE_ADMIN_PASSWORD"];

impl Config {
    /// Sets one key from text (an environment variable or a flag).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let num = |v: &str| v.parse::<u64>().with_context(|| format!("{key} must be a whole number, not {v:?}"));
        let flag = |v: &str| match v {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => bail!("{key} must be true or false, not {v:?}"),
        };
        match key {
            "listen" => self.listen = value.into(),
            "data_dir" => self.data_dir = value.into(),
            "database_url" => self.database_url = Some(value.into()),
            "redis_url" => self.redis_url = Some(value.into()),
            "public_url" => self.public_url = Some(value.into()),
            "encryption_key" => self.encryption_key = Some(value.into()),
            "signup_grant_usd" => self.signup_grant_usd = value.into(),
            "platform_fee_bps" => self.platform_fee_bps = num(value)? as i64,
            "cookie_secure" => self.cookie_secure = flag(value)?,
            "trust_forwarded_for" => self.trust_forwarded_for = flag(value)?,
            "rate_limit_minute" => self.rate_limit_minute = num(value)?,
            "rate_limit_hour" => self.rate_limit_hour = num(value)?,
            "rate_limit_day" => self.rate_limit_day = num(value)?,
            "billing_durability" => self.billing_durability = value.into(),
            "upstream_connect_timeout_ms" => self.upstream_connect_timeout_ms = num(value)?,
            "upstream_first_byte_timeout_ms" => self.upstream_first_byte_timeout_ms = num(value)?,
            "upstream_idle_timeout_ms" => self.upstream_idle_timeout_ms = num(value)?,
            "upstream_ca_files" => {
                self.upstream_ca_files =
                    value.split(',').map(str::trim).filter(|p| !p.is_empty()).map(PathBuf::from).collect()
            }
            "upstream_allow_link_local" => self.upstream_allow_link_local = flag(value)?,
            "upstream_allow_private" => self.upstream_allow_private = flag(value)?,
            "upstream_max_in_flight" => self.upstream_max_in_flight = num(value)?,
            "max_request_bytes" => self.max_request_bytes = num(value)?,
            "meter_threads" => self.meter_threads = num(value)?,
            "shutdown_grace_ms" => self.shutdown_grace_ms = num(value)?,
            "log" => self.log = value.into(),
            "payments_provider" => self.payments_provider = value.into(),
            "stripe_secret_key" => self.stripe_secret_key = Some(value.into()),
            "stripe_webhook_secret" => self.stripe_webhook_secret = Some(value.into()),
            "stripe_api_base" => self.stripe_api_base = value.into(),
            "purchase_min_usd" => self.purchase_min_usd = value.into(),
            "purchase_max_usd" => self.purchase_max_usd = value.into(),
            "low_balance_usd" => self.low_balance_usd = value.into(),
            "billing_watch_interval_ms" => self.billing_watch_interval_ms = num(value)?,
            "email_sender" => self.email_sender = value.into(),
            "smtp_url" => self.smtp_url = Some(value.into()),
            "email_from" => self.email_from = value.into(),
            _ => bail!("unknown configuration key {key:?}"),
        }
        Ok(())
    }

    /// Loads the layers: defaults, then `file` (or `./tollgate.toml` if present), then the
    /// environment, then `flags` (key, value) in order. Returns warnings to log.
    pub fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        flags: &[(&str, String)],
    ) -> Result<(Config, Vec<String>)> {
        let mut warnings = Vec::new();
        let env_file = env.iter().find(|(k, _)| k == "TOLLGATE_CONFIG").map(|(_, v)| PathBuf::from(v));
        let path = file.map(Path::to_path_buf).or(env_file);
        let mut config = match &path {
            Some(p) => Self::from_file(p)?,
            None if Path::new("tollgate.toml").exists() => Self::from_file(Path::new("tollgate.toml"))?,
            None => Config::default(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("TOLLGATE_") else { continue };
            if OTHER_ENV.contains(&name.as_str()) || rest.starts_with("TEST_") {
                continue;
            }
            let lower = rest.to_ascii_lowercase();
            if let Some(key) = lower.strip_suffix("_file").filter(|k| KEYS.contains(k)) {
                let secret = std::fs::read_to_string(value).with_context(|| format!("reading {name}={value}"))?;
                config.set(key, secret.trim())?;
            } else if KEYS.contains(&lower.as_str()) {
                config.set(&lower, value).with_context(|| format!("in {name}"))?;
            } else {
                warnings.push(format!("ignoring unknown environment variable {name}"));
            }
        }
        for (key, value) in flags {
            config.set(key, value).with_context(|| format!("in --{}", key.replace('_', "-")))?;
        }
        config.check()?;
        Ok((config, warnings))
    }

    fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Reads `tollgate.toml`'s text. Keys may also sit in tables named by their first word:
    /// `[billing] durability = "sync"` is `billing_durability = "sync"`.
    fn from_toml(text: &str) -> Result<Config> {
        let mut table: toml::Table = toml::from_str(text)?;
        for section in ["billing"] {
            let Some(value) = table.remove(section) else { continue };
            let toml::Value::Table(inner) = value else {
                bail!("{section} must be a table, e.g. [{section}]");
            };
            for (key, value) in inner {
                let flat = format!("{section}_{key}");
                if !KEYS.contains(&flat.as_str()) {
                    bail!("unknown configuration key {section}.{key}");
                }
                if table.insert(flat.clone(), value).is_some() {
                    bail!("{flat} is set twice (also as {section}.{key})");
                }
            }
        }
        Ok(toml::Value::Table(table).try_into::<Config>()?)
    }

    fn check(&self) -> Result<()> {
        if !["async", "sync"].contains(&self.billing_durability.as_str()) {
            bail!("billing_durability must be \"async\" or \"sync\", not {:?}", self.billing_durability);
        }
        if self.max_request_bytes == 0 || self.max_request_bytes > 1 << 30 {
            bail!("max_request_bytes must be between 1 and 1073741824");
        }
        if self.meter_threads > 64 {
            bail!("meter_threads must be at most 64");
        }
        if !(0..=10_000).contains(&self.platform_fee_bps) {
            bail!("platform_fee_bps must be between 0 and 10000");
        }
        tollgate_domain::Nanos::parse_usd(&self.signup_grant_usd)
            .map_err(|e| anyhow::anyhow!("signup_grant_usd {e}"))?;
        self.check_payments()?;
        self.check_email()
    }

    /// The card payments settings: a known provider, Stripe's secrets when it is Stripe,
    /// purchase limits in whole cents with the smallest no larger than the largest.
    fn check_payments(&self) -> Result<()> {
        match self.payments_provider.as_str() {
            "none" | "local" => {}
            "stripe" => {
                let missing = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
                if missing(&self.stripe_secret_key) || missing(&self.stripe_webhook_secret) {
                    bail!("payments_provider \"stripe\" needs stripe_secret_key and stripe_webhook_secret");
                }
                if !self.stripe_api_base.starts_with("https://") && !self.stripe_api_base.starts_with("http://") {
                    bail!("stripe_api_base must be an http(s):// URL");
                }
            }
            other => bail!("payments_provider must be \"none\", \"stripe\" or \"local\", not {other:?}"),
        }
        let (min, max) = self.purchase_limits()?;
        if min > max {
            bail!("purchase_min_usd must not be more than purchase_max_usd");
        }
        self.low_balance()?;
        if self.billing_watch_interval_ms == 0 {
            bail!("billing_watch_interval_ms must be more than 0");
        }
        Ok(())
    }

    /// The smallest and largest card purchase.
    pub fn purchase_limits(&self) -> Result<(tollgate_domain::Nanos, tollgate_domain::Nanos)> {
        let cents = |key: &str, text: &str| -> Result<tollgate_domain::Nanos> {
            let amount = tollgate_domain::Nanos::parse_usd(text).map_err(|e| anyhow::anyhow!("{key} {e}"))?;
            if amount.0 <= 0 || amount.0 % 10_000_000 != 0 {
                bail!("{key} must be a positive number of whole cents, such as 5 or 5.50");
            }
            Ok(amount)
        };
        Ok((cents("purchase_min_usd", &self.purchase_min_usd)?, cents("purchase_max_usd", &self.purchase_max_usd)?))
    }

    /// The low-balance threshold of orgs without auto-recharge.
    pub fn low_balance(&self) -> Result<tollgate_domain::Nanos> {
        tollgate_domain::Nanos::parse_usd(&self.low_balance_usd).map_err(|e| anyhow::anyhow!("low_balance_usd {e}"))
    }

    /// The email settings: a known sender, an SMTP URL when it is SMTP.
    fn check_email(&self) -> Result<()> {
        match self.email_sender.as_str() {
            "none" | "outbox" => Ok(()),
            "smtp" if self.smtp_url.as_deref().is_some_and(|u| !u.trim().is_empty()) => Ok(()),
            "smtp" => bail!("email_sender \"smtp\" needs smtp_url"),
            other => bail!("email_sender must be \"none\", \"smtp\" or \"outbox\", not {other:?}"),
        }
    }

    /// The database URL: configured, or SQLite inside `data_dir`.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("tollgate.db").display()))
    }

    /// The configuration as TOML, secrets hidden.
    pub fn redacted(&self) -> String {
        let mut table = toml::Table::try_from(self.clone()).unwrap_or_default();
        for key in SECRET_KEYS {
            if table.contains_key(*key) {
                table.insert((*key).into(), "<hidden>".into());
            }
        }
        toml::to_string(&table).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("tollgate-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tollgate.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\nrate_limit_minute = 5\nrate_limit_hour = 50\n").unwrap();
        let env = vec![
            ("TOLLGATE_RATE_LIMIT_HOUR".to_string(), "70".to_string()),
            ("TOLLGATE_BOGUS".to_string(), "1".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let flags = vec![("rate_limit_day", "700".to_string())];
        let (c, warnings) = Config::load(Some(&file), &env, &flags).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!((c.rate_limit_minute, c.rate_limit_hour, c.rate_limit_day), (5, 70, 700));
        assert_eq!(warnings, vec!["ignoring unknown environment variable TOLLGATE_BOGUS".to_string()]);
        std::fs::write(&file, "listne = \"typo\"\n").unwrap();
        assert!(Config::load(Some(&file), &[], &[]).is_err());
        let bad = vec![("TOLLGATE_RATE_LIMIT_DAY".to_string(), "lots".to_string())];
        assert!(Config::load(None, &bad, &[]).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_are_hidden_and_every_key_is_settable() {
        let mut c = Config::default();
        for key in KEYS {
            let value = match *key {
                "cookie_secure" | "trust_forwarded_for" | "upstream_allow_link_local" | "upstream_allow_private" => {
                    "true"
                }
                "max_request_bytes" | "meter_threads" | "shutdown_grace_ms" => "7",
                k if k.starts_with("rate_limit")
                    || k.starts_with("upstream_")
                    || k == "platform_fee_bps"
                    || k == "billing_watch_interval_ms" =>
                {
                    "7"
                }
                "billing_durability" => "sync",
                _ => "value",
            };
            c.set(key, value).unwrap();
        }
        c.encryption_key = Some("deadbeef-secret".into());
        c.stripe_secret_key = Some("sk_live_secret".into());
        c.stripe_webhook_secret = Some("whsec_secret".into());
        c.smtp_url = Some("smtps://mailer:pw-secret@smtp.example.com".into());
        let shown = c.redacted();
        for secret in ["deadbeef-secret", "sk_live_secret", "whsec_secret", "pw-secret"] {
            assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        }
        assert!(shown.contains("encryption_key = \"<hidden>\""));
        assert!(shown.contains("stripe_secret_key = \"<hidden>\""));
    }

    #[test]
    fn payments_and_email_settings_are_checked() {
        let load = |pairs: &[(&str, &str)]| {
            let env: Vec<(String, String)> =
                pairs.iter().map(|(k, v)| (format!("TOLLGATE_{}", k.to_ascii_uppercase()), v.to_string())).collect();
            Config::load(None, &env, &[]).map(|(c, _)| c)
        };
        let c = load(&[]).unwrap();
        assert_eq!((c.payments_provider.as_str(), c.email_sender.as_str()), ("none", "none"));
        assert_eq!(
            c.purchase_limits().unwrap(),
            (tollgate_domain::Nanos(5_000_000_000), tollgate_domain::Nanos(10_000_000_000_000))
        );
        assert!(load(&[("payments_provider", "local"), ("email_sender", "outbox")]).is_ok());
        let stripe =
            [("payments_provider", "stripe"), ("stripe_secret_key", "sk_test_1"), ("stripe_webhook_secret", "whsec_1")];
        assert!(load(&stripe).is_ok());
        for bad in [
            vec![("payments_provider", "paypal")],
            vec![("payments_provider", "stripe")],
            vec![("payments_provider", "stripe"), ("stripe_secret_key", "sk_test_1")],
            vec![("purchase_min_usd", "0")],
            vec![("purchase_min_usd", "5.001")],
            vec![("purchase_min_usd", "50"), ("purchase_max_usd", "20")],
            vec![("purchase_max_usd", "lots")],
            vec![("low_balance_usd", "-1")],
            vec![("billing_watch_interval_ms", "0")],
            vec![("email_sender", "pigeon")],
            vec![("email_sender", "smtp")],
        ] {
            assert!(load(&bad).is_err(), "{bad:?}");
        }
        let mut with_base = stripe.to_vec();
        with_base.push(("stripe_api_base", "ftp://stripe"));
        assert!(load(&with_base).is_err());
        assert!(load(&[("email_sender", "smtp"), ("smtp_url", "smtp://localhost:25")]).is_ok());
    }

    #[test]
    fn billing_durability_can_be_a_billing_table() {
        let (c, _) = Config::load(None, &[], &[]).unwrap();
        assert_eq!(c.billing_durability, "async");
        let c = Config::from_toml("listen = \"0.0.0.0:1\"\n[billing]\ndurability = \"sync\"\n").unwrap();
        assert_eq!((c.listen.as_str(), c.billing_durability.as_str()), ("0.0.0.0:1", "sync"));
        let c = Config::from_toml("billing_durability = \"sync\"\n").unwrap();
        assert_eq!(c.billing_durability, "sync");
        for bad in [
            "[billing]\ndurabilty = \"sync\"\n",
            "billing = 3\n",
            "billing_durability = \"sync\"\n[billing]\ndurability = \"async\"\n",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
        let mut c = Config::default();
        c.set("upstream_ca_files", "/a.pem, /b.pem,").unwrap();
        assert_eq!(c.upstream_ca_files, vec![PathBuf::from("/a.pem"), PathBuf::from("/b.pem")]);
        let c = Config::from_toml("upstream_ca_files = [\"/c.pem\"]\nmax_request_bytes = 1024\n").unwrap();
        assert_eq!((c.upstream_ca_files.len(), c.max_request_bytes), (1, 1024));
        assert!(Config::load(None, &[("TOLLGATE_MAX_REQUEST_BYTES".into(), "0".into())], &[]).is_err());
    }

    #[test]
    fn other_variables_are_not_warned_about() {
        let env = vec![
            ("TOLLGATE_ADMIN_PASSWORD".to_string(), "a long password".to_string()),
            ("TOLLGATE_TEST_POSTGRES_URL".to_string(), "postgres://localhost/test".to_string()),
        ];
        let (_, warnings) = Config::load(None, &env, &[]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    /// docs/OPERATIONS.md, read at test time.
    fn operations_doc() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/OPERATIONS.md");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// Where the configuration table of `doc` and [`KEYS`] disagree: a key without a row
    /// (or whose row does not name its variable), or a row for no key.
    fn table_drift(doc: &str) -> Vec<String> {
        // The table's rows are those whose first cell is a `key`.
        let rows: Vec<Vec<&str>> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.trim().trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        let mut drift = Vec::new();
        for key in KEYS {
            let variable = format!("`TOLLGATE_{}`", key.to_ascii_uppercase());
            match rows.iter().find(|r| r[0] == format!("`{key}`")) {
                None => drift.push(format!("no row for the key `{key}`")),
                Some(row) if !row.get(1).is_some_and(|c| c.contains(&variable)) => {
                    drift.push(format!("the row of `{key}` does not name {variable}"))
                }
                Some(_) => {}
            }
        }
        for row in &rows {
            let key = row[0].trim_matches('`');
            if !KEYS.contains(&key) {
                drift.push(format!("a row for `{key}`, which is not a configuration key"));
            }
        }
        drift
    }

    /// Every `TOLLGATE_…` name in `doc` that `Config::load` would warn about: not a key's
    /// variable (or its `_FILE`), not in [`OTHER_ENV`], not the tests' `TOLLGATE_TEST_…`.
    fn unknown_variables(doc: &str) -> Vec<String> {
        let mut unknown = Vec::new();
        for (at, _) in doc.match_indices("TOLLGATE_") {
            let rest: String = doc[at + "TOLLGATE_".len()..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // `TOLLGATE_<KEY>_FILE` in prose names no variable.
            if rest.is_empty() {
                continue;
            }
            let name = format!("TOLLGATE_{rest}");
            let lower = rest.to_ascii_lowercase();
            let known = OTHER_ENV.contains(&name.as_str())
                || rest.starts_with("TEST_")
                || KEYS.contains(&lower.as_str())
                || lower.strip_suffix("_file").is_some_and(|k| KEYS.contains(&k));
            if !known && !unknown.contains(&name) {
                unknown.push(name);
            }
        }
        unknown
    }

    #[test]
    fn every_key_has_a_row_in_the_operations_guide() {
        let doc = operations_doc();
        assert!(doc.contains("| `listen` |"), "the guide has the configuration table");
        assert_eq!(table_drift(&doc), Vec::<String>::new(), "docs/OPERATIONS.md and config::KEYS disagree");
        let drifted = doc.replace("| `log` | `TOLLGATE_LOG`", "| `logging` | `TOLLGATE_LOGGING`");
        assert_eq!(
            table_drift(&drifted),
            vec!["no row for the key `log`", "a row for `logging`, which is not a configuration key"]
        );
    }

    #[test]
    fn every_variable_in_the_operations_guide_exists() {
        let doc = operations_doc();
        assert_eq!(unknown_variables(&doc), Vec::<String>::new(), "docs/OPERATIONS.md names unknown variables");
        let drifted = format!("{doc}\nSet `TOLLGATE_ENCRYPTION_KEY_FILE` or `TOLLGATE_LISTEN_PORT`.\n");
        assert_eq!(unknown_variables(&drifted), vec!["TOLLGATE_LISTEN_PORT"]);
    }
}
