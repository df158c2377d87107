//! `tollgate bench`: measures, in one run on one machine, a minimal upstream MCP server
//! called directly, the same upstream behind a bare pass-through proxy (the floor), and
//! behind the full gateway (a real `tollgate serve`: SQLite, auth, limits, metering,
//! billing, usage records), under the same load.
//!
//! Each target is a child process of the tollgate binary, so its CPU time and peak memory
//! are its own: the upstream and the proxy are the hidden roles
//! `tollgate bench --role upstream|proxy --listen ADDR [--target URL]` (see [`serve_role`]),
//! the gateway is `tollgate serve` on a fresh data directory, seeded through its
//! management API. The load generator runs in the calling process.
//!
//! Workloads: a 1,024-byte JSON-RPC `tools/call` answered with ~1 KB of JSON, and the same
//! call of the `stream` tool answered with a 50-event SSE stream. Each is driven in a closed
//! loop (maximum throughput over N keep-alive connections) and in an open loop at a fixed
//! rate, latency measured from each request's scheduled time.

mod child;
mod load;
mod payload;
mod proxy;
mod report;
mod seed;
mod upstream;
mod writer;

pub use child::LISTENING;
pub use payload::{EVENTS_PER_STREAM, JSON_TOOL, REQUEST_BYTES, STREAM_TOOL, request_body};
pub use proxy::serve_proxy;
pub use report::{Billing, Check, Cpu, Latency, Memory, Report, Run, Settings, TargetResult, WorkloadReport};
pub use seed::PRICE_USD;
pub use upstream::serve_upstream;
pub use writer::{MIN_SETTLED_PER_SECOND, WriterResult, measure as measure_writer};

use child::{Process, Scratch, cpu_seconds, peak_rss};
use hyper::header::HeaderValue;
use load::{Endpoint, Tally, Window};
use serde::Serialize;
use std::io::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What the benchmark can measure, in the order it measures them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The bench upstream, called directly.
    Upstream,
    /// The bare pass-through proxy in front of the upstream.
    Proxy,
    /// A real `tollgate serve` in front of the upstream.
    Gateway,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Upstream, Target::Proxy, Target::Gateway];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Upstream => "upstream",
            Target::Proxy => "proxy",
            Target::Gateway => "gateway",
        }
    }
}

impl FromStr for Target {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, BenchError> {
        Target::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| BenchError::Options(format!("unknown target {s:?}: use upstream, proxy or gateway")))
    }
}

/// The request the load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// A 1 KB `tools/call` answered with ~1 KB of JSON.
    Json,
    /// A 1 KB `tools/call` of the `stream` tool, answered with a 50-event SSE stream; a
    /// request ends when the stream does.
    Stream,
}

impl Workload {
    pub const ALL: [Workload; 2] = [Workload::Json, Workload::Stream];

    pub fn as_str(self) -> &'static str {
        match self {
            Workload::Json => "json",
            Workload::Stream => "stream",
        }
    }

    /// A heading for the report.
    pub fn title(self) -> &'static str {
        match self {
            Workload::Json => "1 KB tools/call, JSON answer",
            Workload::Stream => "1 KB tools/call, 50-event SSE stream",
        }
    }
}

impl FromStr for Workload {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, BenchError> {
        Workload::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| BenchError::Options(format!("unknown workload {s:?}: use json or stream")))
    }
}

/// The role of a helper process (`tollgate bench --role …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Upstream,
    Proxy,
}

impl FromStr for Role {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, BenchError> {
        match s {
            "upstream" => Ok(Role::Upstream),
            "proxy" => Ok(Role::Proxy),
            _ => Err(BenchError::Options(format!("unknown role {s:?}: use upstream or proxy"))),
        }
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Options(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{name} did not start: {why}\n{log}")]
    Start { name: String, why: String, log: String },
    #[error("seeding the gateway: {0}")]
    Seed(String),
    #[error("{0}")]
    Load(String),
}

impl BenchError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        BenchError::Io { what: what.into(), source }
    }
}

/// What to measure and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// The binary that provides `bench --role upstream|proxy` (the real caller passes
    /// `std::env::current_exe()`).
    pub exe: PathBuf,
    /// The binary run as `serve` for the gateway target; `None` = `exe`.
    pub gateway_exe: Option<PathBuf>,
    /// Extra arguments for `serve`, after the ones the benchmark sets.
    pub gateway_args: Vec<String>,
    /// Which targets to measure (the upstream always runs, as everyone's upstream).
    pub targets: Vec<Target>,
    pub workloads: Vec<Workload>,
    /// Keep-alive connections of the load generator, in both loops.
    pub connections: usize,
    /// Load before each measured window, not recorded.
    pub warmup: Duration,
    /// Length of each measured window.
    pub duration: Duration,
    /// Requests per second of the open loop.
    pub rate: u32,
    /// Gateway API keys to create and cycle through.
    pub keys: usize,
    /// Settled calls for the ledger-writer measurement (0 = skip it).
    pub writer_calls: usize,
    /// Print progress to stderr.
    pub verbose: bool,
}

impl Options {
    /// The full benchmark: every target and workload, 32 connections, 2 s of warm-up and
    /// 10 s measured per run, 1,000 requests/s open loop, 10,000 keys.
    pub fn new(exe: PathBuf) -> Self {
        Options {
            exe,
            gateway_exe: None,
            gateway_args: Vec::new(),
            targets: Target::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            connections: 32,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(10),
            rate: 1000,
            keys: 10_000,
            writer_calls: 200_000,
            verbose: false,
        }
    }

    /// A smoke run of a few seconds per target: 8 connections, 0.3 s of warm-up and 1 s
    /// measured per run, 100 keys.
    pub fn quick(exe: PathBuf) -> Self {
        Options {
            connections: 8,
            warmup: Duration::from_millis(300),
            duration: Duration::from_secs(1),
            keys: 100,
            writer_calls: 10_000,
            ..Options::new(exe)
        }
    }

    fn check(&self) -> Result<(), BenchError> {
        let bad = |why: &str| Err(BenchError::Options(why.to_string()));
        if self.targets.is_empty() || self.workloads.is_empty() {
            return bad("choose at least one target and one workload");
        }
        if !(1..=4096).contains(&self.connections) {
            return bad("connections must be between 1 and 4096");
        }
        if self.rate == 0 || self.duration.is_zero() {
            return bad("rate and duration must be more than zero");
        }
        if self.targets.contains(&Target::Gateway) && self.keys == 0 {
            return bad("the gateway needs at least one key");
        }
        Ok(())
    }

    fn say(&self, message: &str) {
        if self.verbose {
            eprintln!("bench: {message}");
        }
    }
}

/// Binds `listen`, prints `listening on http://ADDR` on stdout once ready, and serves
/// `role` until the process is killed. `target` is the proxy's upstream base URL.
pub async fn serve_role(role: Role, listen: &str, target: Option<&str>) -> Result<(), BenchError> {
    let listener = TcpListener::bind(listen).await.map_err(|e| BenchError::io(format!("binding {listen}"), e))?;
    let addr = listener.local_addr().map_err(|e| BenchError::io("reading the bound address", e))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{LISTENING}{addr}")
        .and_then(|()| stdout.flush())
        .map_err(|e| BenchError::io("writing to stdout", e))?;
    drop(stdout);
    match (role, target) {
        (Role::Upstream, _) => serve_upstream(listener).await.map_err(|e| BenchError::io("serving", e)),
        (Role::Proxy, Some(target)) => serve_proxy(listener, target).await,
        (Role::Proxy, None) => Err(BenchError::Options("the proxy needs --target".into())),
    }
}

/// The gateway under test, seeded.
struct Gateway {
    process: Process,
    api: seed::Api,
    seeded: seed::Seeded,
    endpoint: Arc<Endpoint>,
    seed_seconds: f64,
    balance_before: i64,
    primed: u64,
}

fn strings<const N: usize>(args: [&str; N]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

async fn start_gateway(options: &Options, scratch: &Scratch, upstream: &Process) -> Result<Gateway, BenchError> {
    let exe = options.gateway_exe.as_ref().unwrap_or(&options.exe);
    let data = scratch.join("gateway-data");
    let mut args = strings(["serve", "--listen", "127.0.0.1:0", "--data-dir"]);
    args.push(data.display().to_string());
    // High but not 0: 0 would skip the rate-limit check instead of measuring it.
    for window in ["--rate-limit-minute", "--rate-limit-hour", "--rate-limit-day"] {
        args.extend(strings([window, "1000000000"]));
    }
    args.extend(options.gateway_args.iter().cloned());
    let process = Process::start("gateway", exe, &args, scratch.join("gateway.log")).await?;
    let api = seed::Api::new(process.addr);
    options.say(&format!("gateway on {}; creating {} keys", process.addr, options.keys));
    let began = Instant::now();
    let seeded = api.seed(&format!("http://{}/mcp", upstream.addr), options.keys).await?;
    let seed_seconds = began.elapsed().as_secs_f64();
    let balance_before = api.balance_nanos(&seeded).await?;
    let path = format!("/{}/{}/mcp", seed::AGENT, seed::VERSION);
    let endpoint = Arc::new(Endpoint::new(process.addr, &path, Arc::new(seeded.authorization()?))?);
    options.say(&format!("seeded in {seed_seconds:.1} s; one call per key to fill the key cache"));
    let primed = load::prime(&endpoint, options.connections).await?;
    Ok(Gateway { process, api, seeded, endpoint, seed_seconds, balance_before, primed })
}

/// Runs the benchmark described by `options` and returns its figures.
pub async fn run(options: Options) -> Result<Report, BenchError> {
    options.check()?;
    let scratch = Scratch::new()?;
    let role = |role: &str| strings(["bench", "--role", role, "--listen", "127.0.0.1:0"]);
    let upstream = Process::start("upstream", &options.exe, &role("upstream"), scratch.join("upstream.log")).await?;
    options.say(&format!("upstream on {}", upstream.addr));
    let proxy = if options.targets.contains(&Target::Proxy) {
        let mut args = role("proxy");
        args.extend(strings(["--target", &format!("http://{}", upstream.addr)]));
        let proxy = Process::start("proxy", &options.exe, &args, scratch.join("proxy.log")).await?;
        options.say(&format!("proxy on {}", proxy.addr));
        Some(proxy)
    } else {
        None
    };
    let gateway = match options.targets.contains(&Target::Gateway) {
        true => Some(start_gateway(&options, &scratch, &upstream).await?),
        false => None,
    };
    // The upstream and the proxy get a key-shaped header too, so every target reads the
    // same request bytes.
    let fake_key = HeaderValue::from_static("Bearer tgk_bench_0000000000000000000000000000000000000000");
    let fake_keys = Arc::new(vec![fake_key]);

    let mut results: Vec<(Target, Workload, Run, Run)> = Vec::new();
    let mut gateway_calls = gateway.as_ref().map_or(0, |g| g.primed);
    for target in Target::ALL.into_iter().filter(|t| options.targets.contains(t)) {
        let (endpoint, pid) = match (target, &proxy, &gateway) {
            (Target::Upstream, _, _) => {
                (Arc::new(Endpoint::new(upstream.addr, "/mcp", fake_keys.clone())?), upstream.pid())
            }
            (Target::Proxy, Some(p), _) => (Arc::new(Endpoint::new(p.addr, "/mcp", fake_keys.clone())?), p.pid()),
            (Target::Gateway, _, Some(g)) => (g.endpoint.clone(), g.process.pid()),
            _ => continue,
        };
        let pids = Pids { target: pid, upstream: (target != Target::Upstream).then(|| upstream.pid()) };
        for &workload in &options.workloads {
            options.say(&format!("{} / {}: closed loop", target.as_str(), workload.as_str()));
            let window = Window::new(Duration::ZERO, options.warmup, options.duration);
            let load = load::closed_loop(&endpoint, workload, options.connections, window);
            let (closed, closed_ok) = measured(load, window, pids, options.duration).await;
            options.say(&format!("{} / {}: open loop at {}/s", target.as_str(), workload.as_str(), options.rate));
            let window = Window::new(Duration::from_millis(50), options.warmup, options.duration);
            let load = load::open_loop(&endpoint, workload, options.connections, options.rate, window);
            let (open, open_ok) = measured(load, window, pids, options.duration).await;
            if target == Target::Gateway {
                gateway_calls += closed_ok + open_ok;
            }
            results.push((target, workload, closed, open));
        }
    }

    let mut memory = vec![Memory::of(Target::Upstream, upstream.pid())];
    if let Some(p) = &proxy {
        memory.push(Memory::of(Target::Proxy, p.pid()));
    }
    let mut billing = None;
    let mut seed_seconds = None;
    if let Some(g) = &gateway {
        memory.push(Memory::of(Target::Gateway, g.process.pid()));
        seed_seconds = Some(g.seed_seconds);
        billing = Some(settle(g, gateway_calls).await?);
    }
    let settings = Settings {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        connections: options.connections,
        warmup_seconds: options.warmup.as_secs_f64(),
        duration_seconds: options.duration.as_secs_f64(),
        rate: options.rate,
        keys: if gateway.is_some() { options.keys } else { 0 },
    };
    let report = Report::new(settings, seed_seconds, &options.workloads, results, memory, billing);
    if options.writer_calls == 0 {
        return Ok(report);
    }
    options.say(&format!("the ledger writer alone: {} settled calls", options.writer_calls));
    let writer = writer::measure(&scratch.join("writer"), options.writer_calls).await.map_err(BenchError::Load)?;
    Ok(report.with_writer(writer))
}

/// The processes whose CPU time a run reports.
#[derive(Debug, Clone, Copy)]
struct Pids {
    target: u32,
    upstream: Option<u32>,
}

/// Runs `load` while sampling CPU time over its measured window; returns the run's
/// figures and how many requests succeeded in all (warm-up included).
async fn measured(load: impl Future<Output = Tally>, window: Window, pids: Pids, duration: Duration) -> (Run, u64) {
    let probe = tokio::spawn(async move {
        tokio::time::sleep_until(window.from.into()).await;
        let before = (
            Instant::now(),
            cpu_seconds(Some(pids.target)),
            pids.upstream.map(|p| cpu_seconds(Some(p))),
            cpu_seconds(None),
        );
        tokio::time::sleep_until(window.until.into()).await;
        let wall = before.0.elapsed().as_secs_f64().max(1e-9);
        let cores = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (b - a) / wall);
        Cpu {
            target: cores(before.1, cpu_seconds(Some(pids.target))),
            upstream: match (before.2, pids.upstream) {
                (Some(a), Some(p)) => cores(a, cpu_seconds(Some(p))),
                _ => None,
            },
            load_generator: cores(before.3, cpu_seconds(None)),
        }
    });
    let tally = load.await;
    let cpu = probe.await.unwrap_or_default();
    let succeeded = tally.succeeded;
    (Run::new(tally, duration, cpu), succeeded)
}

/// Reads what the gateway charged once its writer has caught up.
async fn settle(g: &Gateway, calls: u64) -> Result<Billing, BenchError> {
    let mut after = g.api.balance_nanos(&g.seeded).await?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = g.api.balance_nanos(&g.seeded).await?;
        if now == after {
            break;
        }
        after = now;
    }
    Ok(Billing::new(calls, g.balance_before - after))
}

impl Memory {
    fn of(target: Target, pid: u32) -> Self {
        Memory { target, peak_rss_bytes: peak_rss(pid) }
    }
}
