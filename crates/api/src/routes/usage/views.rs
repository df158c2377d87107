//! What the usage endpoints return. Money is a USD decimal string; times are RFC 3339;
//! latencies and the error rate are plain numbers.

use crate::views::usd;
use serde::Serialize;
use tollgate_domain::catalog::Role;
use tollgate_domain::pricing::FreeReset;
use tollgate_domain::time::rfc3339;
use tollgate_store::installs::Installation;
use tollgate_store::usage::{
    AuditRow, Bucket, CostSplit, FreeQuota, InstallationTotals, KeyTotals, SeriesPoint, UsageReport, UsageTotals,
};
use utoipa::ToSchema;

/// Whose keys a caller may see, as in the key listing: owners and admins every key,
/// members and viewers their own. The calls themselves are the org's, visible to every role;
/// the id, name and prefix of a key that is not shown are null.
#[derive(Debug, Clone)]
pub struct KeyVisibility {
    all: bool,
    user_id: String,
}

impl KeyVisibility {
    /// For `user_id` acting with `role`.
    pub fn new(role: Role, user_id: &str) -> Self {
        KeyVisibility { all: role.can_admin(), user_id: user_id.to_string() }
    }

    /// Whether a key of `owner` is shown.
    pub fn shows(&self, owner: &str) -> bool {
        self.all || self.user_id == owner
    }

    /// The user whose keys a search may match by name or prefix (`None`: anyone's).
    pub fn search_keys_of(&self) -> Option<String> {
        (!self.all).then(|| self.user_id.clone())
    }
}

/// `errors / calls`, 0 when there were no calls.
fn rate(t: &UsageTotals) -> f64 {
    if t.calls == 0 { 0.0 } else { t.errors as f64 / t.calls as f64 }
}

/// The mean latency in ms, `None` when there were no calls.
fn average(t: &UsageTotals) -> Option<f64> {
    (t.calls > 0).then(|| t.latency_total_ms as f64 / t.calls as f64)
}

/// The usage of an org, or of one of its installations, over a range.
#[derive(Serialize, ToSchema)]
pub struct UsageView {
    pub org_id: String,
    /// The installation asked for; null for the whole org.
    pub installation_id: Option<String>,
    /// The range covered, `[from, to)`.
    pub from: String,
    pub to: String,
    /// `hour` or `day` (UTC): the width of each `series` point.
    pub bucket: String,
    pub calls: i64,
    /// Calls that failed: an error code, or an HTTP status of 400 or more.
    pub errors: i64,
    /// `errors / calls`, from 0 to 1 (0 without calls).
    pub error_rate: f64,
    /// Calls that used a free call (they cost nothing).
    pub free_tier_calls: i64,
    /// Calls whose reported and counted tokens differed by more than 20% (flagged, billed at the lower count).
    pub divergent_calls: i64,
    /// USD spent, e.g. `"0.012000"`.
    pub spend: String,
    pub cost: CostView,
    pub tokens: TokensView,
    pub latency_ms: LatencyView,
    /// One point per bucket of the range, oldest first, empty buckets included.
    pub series: Vec<SeriesPointView>,
    /// Per key, highest spend first.
    pub by_key: Vec<KeyUsageView>,
    /// Per installation, highest spend first.
    pub by_installation: Vec<InstallationUsageView>,
    /// Free calls left now (not in the range) per function with a free tier, for the
    /// installation asked for or every active installation.
    pub free_quota: Vec<FreeQuotaView>,
}

/// The spend split by what it paid for; the four parts add up to `spend` exactly.
#[derive(Serialize, ToSchema)]
pub struct CostView {
    /// Per-token charges for input tokens (USD).
    pub input: String,
    pub output: String,
    pub cache: String,
    /// Per-request prices and base fees of utility methods (USD).
    pub requests: String,
}

impl From<CostSplit> for CostView {
    fn from(c: CostSplit) -> Self {
        CostView { input: usd(c.input), output: usd(c.output), cache: usd(c.cache), requests: usd(c.requests) }
    }
}

/// Tokens billed, and the input and output tokens the platform counted itself.
#[derive(Serialize, ToSchema)]
pub struct TokensView {
    pub input: i64,
    pub output: i64,
    pub cache: i64,
    pub counted_input: i64,
    pub counted_output: i64,
}

/// Latency in milliseconds: the mean and nearest-rank percentiles; null without calls.
#[derive(Serialize, ToSchema)]
pub struct LatencyView {
    pub average: Option<f64>,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

/// One bucket of the series.
#[derive(Serialize, ToSchema)]
pub struct SeriesPointView {
    /// The bucket's start (a UTC hour or midnight).
    pub start: String,
    pub calls: i64,
    pub errors: i64,
    pub spend: String,
    pub average_latency_ms: Option<f64>,
}

impl From<&SeriesPoint> for SeriesPointView {
    fn from(p: &SeriesPoint) -> Self {
        SeriesPointView {
            start: rfc3339(p.start),
            calls: p.totals.calls,
            errors: p.totals.errors,
            spend: usd(p.totals.spend),
            average_latency_ms: average(&p.totals),
        }
    }
}

/// One key's usage. Members and viewers see the id, name and prefix of their own keys only.
#[derive(Serialize, ToSchema)]
pub struct KeyUsageView {
    pub key_id: Option<String>,
    pub name: Option<String>,
    pub prefix: Option<String>,
    /// The member the key belongs to.
    pub member_id: String,
    pub member_email: Option<String>,
    pub calls: i64,
    pub errors: i64,
    pub spend: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
}

impl KeyUsageView {
    /// The view of `k` for a caller who sees `vis`.
    pub fn new(k: &KeyTotals, vis: &KeyVisibility) -> Self {
        let shown = vis.shows(&k.user_id);
        KeyUsageView {
            key_id: shown.then(|| k.key_id.clone()),
            name: k.key_name.clone().filter(|_| shown),
            prefix: k.key_prefix.clone().filter(|_| shown),
            member_id: k.user_id.clone(),
            member_email: k.member_email.clone(),
            calls: k.totals.calls,
            errors: k.totals.errors,
            spend: usd(k.totals.spend),
            input_tokens: k.totals.input_tokens,
            output_tokens: k.totals.output_tokens,
            cache_tokens: k.totals.cache_tokens,
        }
    }
}

/// One installation's usage.
#[derive(Serialize, ToSchema)]
pub struct InstallationUsageView {
    pub installation_id: String,
    /// The agent's slug.
    pub agent: Option<String>,
    pub agent_name: Option<String>,
    pub calls: i64,
    pub errors: i64,
    pub spend: String,
}

impl From<&InstallationTotals> for InstallationUsageView {
    fn from(i: &InstallationTotals) -> Self {
        InstallationUsageView {
            installation_id: i.installation_id.clone(),
            agent: i.agent_slug.clone(),
            agent_name: i.agent_name.clone(),
            calls: i.totals.calls,
            errors: i.totals.errors,
            spend: usd(i.totals.spend),
        }
    }
}

/// A function's free tier and what is left of it.
#[derive(Serialize, ToSchema)]
pub struct FreeQuotaView {
    pub installation_id: String,
    /// The agent's slug.
    pub agent: String,
    pub function: String,
    /// Free successful calls per org (per month for `monthly`).
    pub free_calls: i64,
    /// `lifetime` or `monthly`.
    pub reset: String,
    pub used: i64,
    pub remaining: i64,
    /// When a monthly tier starts again (00:00 UTC on the first of next month).
    pub resets_at: Option<String>,
}

impl FreeQuotaView {
    /// `q` of installation `inst`.
    pub fn new(inst: &Installation, q: &FreeQuota) -> Self {
        FreeQuotaView {
            installation_id: inst.id.clone(),
            agent: inst.agent_slug.clone(),
            function: q.function.clone(),
            free_calls: q.free_calls,
            reset: match q.reset {
                FreeReset::Lifetime => "lifetime",
                FreeReset::Monthly => "monthly",
            }
            .into(),
            used: q.used,
            remaining: q.remaining,
            resets_at: q.resets_at.map(rfc3339),
        }
    }
}

impl UsageView {
    /// The view of `report` over `[from, to)`.
    pub fn new(
        org_id: &str,
        installation_id: Option<&str>,
        (from, to): (i64, i64),
        bucket: Bucket,
        report: &UsageReport,
        free_quota: Vec<FreeQuotaView>,
        vis: &KeyVisibility,
    ) -> Self {
        let t = &report.totals;
        UsageView {
            org_id: org_id.to_string(),
            installation_id: installation_id.map(str::to_string),
            from: rfc3339(from),
            to: rfc3339(to),
            bucket: bucket.as_str().into(),
            calls: t.calls,
            errors: t.errors,
            error_rate: rate(t),
            free_tier_calls: t.free_tier_calls,
            divergent_calls: t.divergent_calls,
            spend: usd(t.spend),
            cost: report.cost.into(),
            tokens: TokensView {
                input: t.input_tokens,
                output: t.output_tokens,
                cache: t.cache_tokens,
                counted_input: t.counted_input_tokens,
                counted_output: t.counted_output_tokens,
            },
            latency_ms: LatencyView {
                average: average(t),
                p50: report.latency.p50,
                p95: report.latency.p95,
                p99: report.latency.p99,
            },
            series: report.series.iter().map(SeriesPointView::from).collect(),
            by_key: report.by_key.iter().map(|k| KeyUsageView::new(k, vis)).collect(),
            by_installation: report.by_installation.iter().map(InstallationUsageView::from).collect(),
            free_quota,
        }
    }
}

/// One call in the audit log: metadata only, never content.
#[derive(Serialize, ToSchema)]
pub struct AuditRowView {
    /// The call's request id (sent upstream as `X-Request-Id`).
    pub request_id: String,
    pub time: String,
    pub installation_id: String,
    /// The agent's slug.
    pub agent: Option<String>,
    pub agent_name: Option<String>,
    pub version: String,
    /// The function billed: a tool, prompt or resource name, a skill, or the method.
    pub function: String,
    /// The protocol method, e.g. `tools/call`.
    pub method: String,
    /// The key's id, name and prefix; members and viewers see them for their own keys only.
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub key_prefix: Option<String>,
    pub member_id: String,
    pub member_name: Option<String>,
    pub member_email: Option<String>,
    /// Tokens billed.
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
    /// Tokens the platform counted itself (`cl100k_base`).
    pub counted_input_tokens: i64,
    pub counted_output_tokens: i64,
    pub latency_ms: i64,
    /// The HTTP status the caller got.
    pub status: i64,
    /// False when the call failed (then it cost nothing).
    pub success: bool,
    /// Why it failed, e.g. `upstream_timeout`.
    pub error_code: Option<String>,
    /// USD paid.
    pub cost: String,
    pub free_tier: bool,
    /// Reported and counted tokens differed by more than 20%: flagged for review.
    pub divergent: bool,
    /// The A2A task a dependency call was made for.
    pub parent_task_id: Option<String>,
    /// The charge's ledger transfer (see `/billing/transactions`); null when free.
    pub transfer_id: Option<String>,
}

impl AuditRowView {
    /// The view of `r` for a caller who sees `vis`.
    pub fn new(r: &AuditRow, vis: &KeyVisibility) -> Self {
        let shown = vis.shows(&r.user_id);
        AuditRowView {
            request_id: r.id.clone(),
            time: rfc3339(r.created_at),
            installation_id: r.installation_id.clone(),
            agent: r.agent_slug.clone(),
            agent_name: r.agent_name.clone(),
            version: r.version.clone(),
            function: r.function_name.clone(),
            method: r.method.clone(),
            key_id: shown.then(|| r.key_id.clone()),
            key_name: r.key_name.clone().filter(|_| shown),
            key_prefix: r.key_prefix.clone().filter(|_| shown),
            member_id: r.user_id.clone(),
            member_name: r.member_name.clone(),
            member_email: r.member_email.clone(),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_tokens: r.cache_tokens,
            counted_input_tokens: r.counted_input_tokens,
            counted_output_tokens: r.counted_output_tokens,
            latency_ms: r.latency_ms,
            status: r.http_status,
            success: !r.is_error(),
            error_code: r.error_code.clone(),
            cost: usd(r.cost),
            free_tier: r.free_tier,
            divergent: r.divergent,
            parent_task_id: r.parent_task_id.clone(),
            transfer_id: r.transfer_id.clone(),
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub rows: Vec<AuditRowView>,
    pub page: i64,
    pub per_page: i64,
    /// Rows matching the filters in all.
    pub total: i64,
}
