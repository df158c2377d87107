//! The command line: `serve`, `migrate`, `admin …`, `config`.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use tollgate_store::Store;

/// A marketplace and metered gateway for AI agents.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the store, the management API and the gateway.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(Common),
    /// Administer users and credits.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print the effective configuration (secrets hidden).
    Config(ServeArgs),
    /// Measure the gateway against a bare proxy and a minimal upstream on this machine.
    Bench(BenchArgs),
}

/// Flags of `bench`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// A few seconds per target and 100 keys, instead of the full run.
    #[arg(long)]
    pub quick: bool,
    /// What to measure: upstream, proxy, gateway (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub targets: Option<Vec<tollgate_bench::Target>>,
    /// Workloads: json, stream (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub workloads: Option<Vec<tollgate_bench::Workload>>,
    /// Keep-alive connections of the load generator.
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Seconds of load before each measured window.
    #[arg(long, value_name = "SECONDS")]
    pub warmup: Option<f64>,
    /// Seconds measured per run.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Requests per second of the open loop.
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,
    /// Gateway API keys to create and cycle through.
    #[arg(long, value_name = "N")]
    pub keys: Option<usize>,
    /// Settled calls for the ledger-writer measurement (0 skips it).
    #[arg(long, value_name = "N")]
    pub writer_calls: Option<usize>,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Serve one of the benchmark's own processes (used by the benchmark itself).
    #[arg(long, hide = true, value_name = "ROLE")]
    pub role: Option<tollgate_bench::Role>,
    #[arg(long, hide = true, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    #[arg(long, hide = true, value_name = "URL")]
    pub target: Option<String>,
}

/// Flags every command shares.
#[derive(Debug, Args, Clone, Default)]
pub struct Common {
    /// Configuration file (default: ./tollgate.toml if present) [env: TOLLGATE_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory for SQLite and generated secrets [env: TOLLGATE_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// sqlite://… or postgres://… [env: TOLLGATE_DATABASE_URL]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// Flags of `serve`.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Address to listen on [env: TOLLGATE_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Redis for multi-replica rate limits and usage counters [env: TOLLGATE_REDIS_URL]
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Public URL of this instance [env: TOLLGATE_PUBLIC_URL]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Requests per member per agent per minute, 0 = unlimited [env: TOLLGATE_RATE_LIMIT_MINUTE] [default: 60]
    #[arg(long, value_name = "N")]
    pub rate_limit_minute: Option<u64>,
    /// … per hour [env: TOLLGATE_RATE_LIMIT_HOUR] [default: 1000]
    #[arg(long, value_name = "N")]
    pub rate_limit_hour: Option<u64>,
    /// … per day [env: TOLLGATE_RATE_LIMIT_DAY] [default: 10000]
    #[arg(long, value_name = "N")]
    pub rate_limit_day: Option<u64>,
    /// async or sync [env: TOLLGATE_BILLING_DURABILITY] [default: async]
    #[arg(long, value_name = "MODE")]
    pub billing_durability: Option<String>,
    /// Seed demo publishers, consumers and agents (idempotent)
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user (with a personal org and the signup grant).
    CreateUser {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The password; or set TOLLGATE_ADMIN_PASSWORD to keep it out of the shell history.
        #[arg(long)]
        password: Option<String>,
        /// Also make the user an operator.
        #[arg(long)]
        operator: bool,
    },
    /// Make an existing user an operator.
    MakeOperator {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
    },
    /// Add free credits to an org.
    GrantCredits {
        #[command(flatten)]
        common: Common,
        /// An org id, or a user's email (their personal org).
        #[arg(long)]
        org: String,
        /// USD, e.g. 25 or 12.50.
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "Operator grant")]
        memo: String,
    },
}

impl Common {
    fn flags(&self) -> Vec<(&'static str, String)> {
        let mut flags = Vec::new();
        if let Some(v) = &self.data_dir {
            flags.push(("data_dir", v.clone()));
        }
        if let Some(v) = &self.database_url {
            flags.push(("database_url", v.clone()));
        }
        flags
    }

    /// The configuration from file, environment and these flags.
    pub fn load(&self, extra: Vec<(&'static str, String)>) -> Result<Config> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let mut flags = self.flags();
        flags.extend(extra);
        let (config, warnings) = Config::load(self.config.as_deref(), &env, &flags)?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(config)
    }
}

impl ServeArgs {
    /// The configuration with `serve`'s flags on top.
    pub fn load(&self) -> Result<Config> {
        let mut flags = Vec::new();
        let mut push = |key, value: Option<String>| {
            if let Some(v) = value {
                flags.push((key, v));
            }
        };
        push("listen", self.listen.clone());
        push("redis_url", self.redis_url.clone());
        push("public_url", self.public_url.clone());
        push("rate_limit_minute", self.rate_limit_minute.map(|v| v.to_string()));
        push("rate_limit_hour", self.rate_limit_hour.map(|v| v.to_string()));
        push("rate_limit_day", self.rate_limit_day.map(|v| v.to_string()));
        push("billing_durability", self.billing_durability.clone());
        self.common.load(flags)
    }
}

/// Opens and migrates the configured database, creating the data directory for SQLite.
pub async fn open_store(config: &Config) -> Result<(Store, usize)> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    }
    let store = Store::connect(&url).await.context("connecting to the database")?;
    let applied = store.migrate().await.context("migrating the database")?;
    Ok((store, applied))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => crate::serve::serve(args).await,
        Command::Migrate(common) => {
            let config = common.load(Vec::new())?;
            let (_, applied) = open_store(&config).await?;
            println!("applied {applied} migration(s); the database is up to date");
            Ok(())
        }
        Command::Admin(cmd) => crate::admin::run(cmd).await,
        Command::Config(args) => {
            print!("{}", args.load()?.redacted());
            Ok(())
        }
        Command::Bench(args) => bench(args).await,
    }
}

/// `tollgate bench`: the whole benchmark, or (`--role`) one of its processes. Fails when a
/// target is missed, so a script can gate on it.
async fn bench(args: BenchArgs) -> Result<()> {
    if let Some(role) = args.role {
        return tollgate_bench::serve_role(role, &args.listen, args.target.as_deref()).await.map_err(Into::into);
    }
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut options = if args.quick { tollgate_bench::Options::quick(exe) } else { tollgate_bench::Options::new(exe) };
    options.verbose = !args.json;
    if let Some(targets) = args.targets {
        options.targets = targets;
    }
    if let Some(workloads) = args.workloads {
        options.workloads = workloads;
    }
    let seconds = |s: f64| std::time::Duration::try_from_secs_f64(s).context("a number of seconds");
    if let Some(s) = args.warmup {
        options.warmup = seconds(s)?;
    }
    if let Some(s) = args.duration {
        options.duration = seconds(s)?;
    }
    options.connections = args.connections.unwrap_or(options.connections);
    options.rate = args.rate.unwrap_or(options.rate);
    options.keys = args.keys.unwrap_or(options.keys);
    options.writer_calls = args.writer_calls.unwrap_or(options.writer_calls);
    let report = tollgate_bench::run(options).await?;
    if args.json {
        println!("{:#}", report.to_json());
    } else {
        print!("{report}");
    }
    if !report.all_met() {
        anyhow::bail!("a performance target was missed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
