//! The benchmark's figures: a struct for tests and CI (also as JSON), and the table a
//! person reads.

use crate::load::Tally;
use crate::seed::{PRICE_USD, nanos, usd};
use crate::writer::{MIN_SETTLED_PER_SECOND, WriterResult};
use crate::{Target, Workload};
use serde::Serialize;
use std::fmt::{self, Write as _};
use std::time::Duration;

/// Gateway throughput over the bare proxy's must be at least this.
pub const MIN_THROUGHPUT_RATIO: f64 = 0.8;
/// Gateway p99 minus proxy p99 at the fixed rate must be at most this many milliseconds.
pub const MAX_ADDED_P99_MS: f64 = 1.0;
/// Gateway peak RSS must be at most this many megabytes (10^6 bytes).
pub const MAX_GATEWAY_RSS_MB: f64 = 150.0;

/// Everything one benchmark run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub settings: Settings,
    /// Seconds spent seeding the gateway (users, agent, installation, keys).
    pub seed_seconds: Option<f64>,
    pub workloads: Vec<WorkloadReport>,
    /// Peak RSS of each process, read after all the load.
    pub memory: Vec<Memory>,
    pub billing: Option<Billing>,
    /// The ledger writer alone (settled calls committed a second).
    pub writer: Option<WriterResult>,
    /// The targets the gateway is judged by, each met or missed.
    pub checks: Vec<Check>,
}

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub cpus: usize,
    pub connections: usize,
    pub warmup_seconds: f64,
    pub duration_seconds: f64,
    /// Requests per second of the open loop.
    pub rate: u32,
    /// Gateway keys created and cycled through (0 without a gateway).
    pub keys: usize,
}

/// One workload's results, per target.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    pub workload: Workload,
    pub targets: Vec<TargetResult>,
}

/// One target under one workload.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    pub target: Target,
    /// Maximum throughput.
    pub closed: Run,
    /// At the fixed rate, latency from each request's scheduled time.
    pub open: Run,
}

/// One measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Successful requests in the window.
    pub requests: u64,
    /// Failed requests in the window (non-2xx, broken connection, short stream).
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub latency: Latency,
    /// Open loop only: how far behind its scheduled time each request was sent (the
    /// load generator's own pacing delay plus any wait for a free connection).
    pub send_lag: Option<Latency>,
    /// SSE events received by the successful requests (50 each for the stream).
    pub events: u64,
    pub cpu: Cpu,
}

/// Latency percentiles in microseconds, exact (from every sample).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub mean_us: f64,
    pub max_us: f64,
}

/// CPU used during a window, in cores (CPU seconds per second).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cpu {
    /// The process under test.
    pub target: Option<f64>,
    /// The upstream behind it (none when the upstream is the target).
    pub upstream: Option<f64>,
    /// The process running the load generator.
    pub load_generator: Option<f64>,
}

/// A process's peak resident memory.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    pub target: Target,
    pub peak_rss_bytes: Option<u64>,
}

/// What the gateway charged for the run's calls, read from the consumer's balance.
#[derive(Debug, Clone, Serialize)]
pub struct Billing {
    /// Calls the load generator saw succeed (key-cache priming and warm-ups included).
    pub calls: u64,
    pub price_usd: String,
    pub expected_usd: String,
    pub charged_usd: String,
}

/// One target the gateway is judged by.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// A stable identifier, e.g. `json.throughput_ratio`.
    pub id: String,
    pub description: String,
    pub value: f64,
    pub limit: f64,
    /// Whether `value` must be at most (`true`) or at least (`false`) `limit`.
    pub at_most: bool,
    pub unit: String,
    pub met: bool,
}

impl Latency {
    fn of(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1] as f64 / 1000.0
        };
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Latency {
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
            mean_us: sum as f64 / samples.len() as f64 / 1000.0,
            max_us: at(1.0),
        }
    }
}

impl Run {
    pub(crate) fn new(mut tally: Tally, window: Duration, cpu: Cpu) -> Self {
        let seconds = window.as_secs_f64();
        let requests = tally.samples.len() as u64;
        Run {
            requests,
            errors: tally.errors,
            first_error: tally.first_error.take(),
            seconds,
            requests_per_second: requests as f64 / seconds,
            latency: Latency::of(&mut tally.samples),
            send_lag: (!tally.lags.is_empty()).then(|| Latency::of(&mut tally.lags)),
            events: tally.events,
            cpu,
        }
    }
}

impl Billing {
    pub(crate) fn new(calls: u64, charged_nanos: i64) -> Self {
        let price = nanos(PRICE_USD).unwrap_or(0);
        let expected = i64::try_from(calls).unwrap_or(i64::MAX).saturating_mul(price);
        Billing {
            calls,
            price_usd: PRICE_USD.to_string(),
            expected_usd: usd(expected),
            charged_usd: usd(charged_nanos),
        }
    }
}

fn check(id: String, description: String, value: f64, limit: f64, at_most: bool, unit: &str) -> Check {
    let met = if at_most { value <= limit } else { value >= limit };
    Check { id, description, value, limit, at_most, unit: unit.to_string(), met }
}

impl Report {
    pub(crate) fn new(
        settings: Settings,
        seed_seconds: Option<f64>,
        workloads: &[Workload],
        results: Vec<(Target, Workload, Run, Run)>,
        memory: Vec<Memory>,
        billing: Option<Billing>,
    ) -> Self {
        let workloads: Vec<WorkloadReport> = workloads
            .iter()
            .map(|&workload| WorkloadReport {
                workload,
                targets: results
                    .iter()
                    .filter(|r| r.1 == workload)
                    .map(|(target, _, closed, open)| TargetResult {
                        target: *target,
                        closed: closed.clone(),
                        open: open.clone(),
                    })
                    .collect(),
            })
            .collect();
        let mut checks = Vec::new();
        for w in &workloads {
            let (Some(gateway), Some(proxy)) = (w.get(Target::Gateway), w.get(Target::Proxy)) else { continue };
            let name = w.workload.as_str();
            let ratio = gateway.closed.requests_per_second / proxy.closed.requests_per_second.max(1e-9);
            checks.push(check(
                format!("{name}.throughput_ratio"),
                format!("gateway ÷ proxy throughput, {name}"),
                ratio,
                MIN_THROUGHPUT_RATIO,
                false,
                "×",
            ));
            let added = (gateway.open.latency.p99_us - proxy.open.latency.p99_us) / 1000.0;
            checks.push(check(
                format!("{name}.added_p99_ms"),
                format!("gateway p99 − proxy p99 at {} req/s, {name}", settings.rate),
                added,
                MAX_ADDED_P99_MS,
                true,
                "ms",
            ));
        }
        if let Some(rss) = memory.iter().find(|m| m.target == Target::Gateway).and_then(|m| m.peak_rss_bytes) {
            checks.push(check(
                "gateway.peak_rss_mb".into(),
                format!("gateway peak RSS with {} keys", settings.keys),
                rss as f64 / 1e6,
                MAX_GATEWAY_RSS_MB,
                true,
                "MB",
            ));
        }
        Report { settings, seed_seconds, workloads, memory, billing, writer: None, checks }
    }

    /// Adds the ledger writer's figure, and its target.
    pub(crate) fn with_writer(mut self, writer: WriterResult) -> Self {
        let rate = if writer.audited { writer.settled_per_second } else { 0.0 };
        self.checks.push(check(
            "writer.settled_per_second".into(),
            format!("ledger writer alone on SQLite ({} calls, audited)", writer.calls),
            rate,
            MIN_SETTLED_PER_SECOND,
            false,
            "calls/s",
        ));
        self.writer = Some(writer);
        self
    }

    /// Whether every check was met (true when there are none).
    pub fn all_met(&self) -> bool {
        self.checks.iter().all(|c| c.met)
    }

    /// The figures as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// One target's result under one workload.
    pub fn result(&self, workload: Workload, target: Target) -> Option<&TargetResult> {
        self.workloads.iter().find(|w| w.workload == workload)?.get(target)
    }

    fn peak_rss(&self, target: Target) -> Option<u64> {
        self.memory.iter().find(|m| m.target == target)?.peak_rss_bytes
    }
}

impl WorkloadReport {
    pub fn get(&self, target: Target) -> Option<&TargetResult> {
        self.targets.iter().find(|t| t.target == target)
    }
}

/// Microseconds as `87.3µs` or `1.234ms`.
fn duration_text(us: f64) -> String {
    if us < 1000.0 { format!("{us:.1}µs") } else { format!("{:.3}ms", us / 1000.0) }
}

fn cores(c: Option<f64>) -> String {
    c.map_or("-".into(), |c| format!("{c:.2}"))
}

fn megabytes(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        writeln!(
            f,
            "Tollgate benchmark: {} CPUs, {} connections, {:.1} s measured per run after {:.1} s of warm-up, open loop at {} req/s{}",
            s.cpus,
            s.connections,
            s.duration_seconds,
            s.warmup_seconds,
            s.rate,
            if s.keys > 0 { format!(", {} gateway keys", s.keys) } else { String::new() },
        )?;
        writeln!(
            f,
            "closed = max throughput; open = latency from each request's scheduled time at the fixed rate; \
             cores = CPU of the target, of the upstream behind it, of the load generator"
        )?;
        for w in &self.workloads {
            writeln!(f, "\n{}", w.workload.title())?;
            writeln!(
                f,
                "{:<9}│{:>9} {:>9} {:>9} {:>9} {:>5} {:>5} {:>5} │{:>7} {:>9} {:>9} {:>9} │{:>7} {:>10}",
                "",
                "closed",
                "p50",
                "p99",
                "p99.9",
                "cpu",
                "up",
                "load",
                "open",
                "p50",
                "p99",
                "p99.9",
                "errors",
                "peak RSS"
            )?;
            writeln!(
                f,
                "{:<9}│{:>9} {:>9} {:>9} {:>9} {:>5} {:>5} {:>5} │{:>7} {:>9} {:>9} {:>9} │{:>7} {:>10}",
                "target", "req/s", "", "", "", "cores", "", "", "req/s", "", "", "", "", ""
            )?;
            for t in &w.targets {
                let (c, o) = (&t.closed, &t.open);
                writeln!(
                    f,
                    "{:<9}│{:>9} {:>9} {:>9} {:>9} {:>5} {:>5} {:>5} │{:>7} {:>9} {:>9} {:>9} │{:>7} {:>10}",
                    t.target.as_str(),
                    thousands(c.requests_per_second),
                    duration_text(c.latency.p50_us),
                    duration_text(c.latency.p99_us),
                    duration_text(c.latency.p999_us),
                    cores(c.cpu.target),
                    cores(c.cpu.upstream),
                    cores(c.cpu.load_generator),
                    thousands(o.requests_per_second),
                    duration_text(o.latency.p50_us),
                    duration_text(o.latency.p99_us),
                    duration_text(o.latency.p999_us),
                    c.errors + o.errors,
                    megabytes(self.peak_rss(t.target)),
                )?;
            }
            if w.workload == Workload::Stream {
                for t in &w.targets {
                    let per = t.closed.events as f64 / t.closed.requests.max(1) as f64;
                    writeln!(f, "  {}: {per:.0} events per stream received", t.target.as_str())?;
                }
            }
            for t in &w.targets {
                for (mode, run) in [("closed loop", &t.closed), ("open loop", &t.open)] {
                    if let Some(e) = &run.first_error {
                        writeln!(f, "  {} {mode}: {} errors, first: {e}", t.target.as_str(), run.errors)?;
                    }
                }
            }
            let lags: Vec<String> = w
                .targets
                .iter()
                .filter_map(|t| {
                    let lag = t.open.send_lag?;
                    Some(format!("{} {}/{}", t.target.as_str(), duration_text(lag.p50_us), duration_text(lag.p99_us)))
                })
                .collect();
            if !lags.is_empty() {
                writeln!(f, "  open loop, send lag behind schedule p50/p99: {}", lags.join(", "))?;
            }
            let direct = w.get(Target::Upstream).map(|u| u.closed.requests_per_second);
            let mut reference = String::new();
            for target in [Target::Proxy, Target::Gateway] {
                if let (Some(direct), Some(t)) = (direct, w.get(target)) {
                    let ratio = t.closed.requests_per_second / direct.max(1e-9);
                    let _ = write!(reference, "  {} ÷ direct throughput {ratio:.2}", target.as_str());
                }
            }
            if !reference.is_empty() {
                writeln!(f, "{reference}")?;
            }
        }
        if !self.checks.is_empty() {
            writeln!(f, "\nTargets")?;
            for c in &self.checks {
                let value = match c.unit.as_str() {
                    "×" => format!("{:.2}", c.value),
                    "ms" => format!("{:+.3} ms", c.value),
                    "calls/s" => format!("{} /s", thousands(c.value)),
                    unit => format!("{:.1} {unit}", c.value),
                };
                let limit = match c.unit.as_str() {
                    "×" => format!("{:.2}", c.limit),
                    "calls/s" => format!("{} /s", thousands(c.limit)),
                    unit => format!("{} {unit}", c.limit),
                };
                let rule = if c.at_most { "≤" } else { "≥" };
                let verdict = if c.met { "met" } else { "MISSED" };
                writeln!(f, "  {:<48} {value:>11}   target {rule} {limit:<8} {verdict}", c.description)?;
            }
        }
        if let Some(b) = &self.billing {
            writeln!(
                f,
                "\nBilling: {} successful gateway calls at ${} each: expected ${}, charged ${}",
                b.calls, b.price_usd, b.expected_usd, b.charged_usd
            )?;
        }
        if let Some(seconds) = self.seed_seconds {
            writeln!(f, "Seeding the gateway ({} keys) took {seconds:.1} s", s.keys)?;
        }
        if let Some(w) = &self.writer {
            writeln!(
                f,
                "Ledger writer: {} settled calls (usage record, charge and fee transfers, lease draw) committed in {:.2} s: {} calls/s; audit {}",
                w.calls,
                w.seconds,
                thousands(w.settled_per_second),
                if w.audited { "passed" } else { "FAILED" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact() {
        let mut samples: Vec<u64> = (1..=1000).map(|n| n * 1000).collect();
        let l = Latency::of(&mut samples);
        assert_eq!((l.p50_us, l.p99_us, l.p999_us, l.max_us), (500.0, 990.0, 999.0, 1000.0));
        assert_eq!(Latency::of(&mut []).p99_us, 0.0);
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(duration_text(87.34), "87.3µs");
        assert_eq!(duration_text(1234.5), "1.234ms");
    }
}
