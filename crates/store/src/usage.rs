//! Usage reads: spend, the usage report of an org or one installation (totals, latency
//! percentiles, a time series, the cost split, per-key and per-installation totals), free
//! quota left, and the audit log. Usage records are written by the gateway
//! ([`Store::settle_calls`]).
//!
//! Every statement is fixed text with every value bound. A filter that is not used is bound
//! as `''`, `0` or `-1` and switched off in SQL, so one statement serves every combination.
//! Sums are `CAST(… AS BIGINT)` (PostgreSQL's `SUM(bigint)` is `numeric`); time buckets are
//! integer division of the millisecond column; percentiles are one `ORDER BY … LIMIT 1
//! OFFSET k` each — all portable between SQLite and PostgreSQL.

use crate::catalog::{Version, like_contains};
use crate::installs::Installation;
use crate::row::{flag, get};
use crate::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use std::collections::HashMap;
use tollgate_domain::Nanos;
use tollgate_domain::pricing::{FreeReset, Pricing, Tokens};
use tollgate_domain::time::{next_utc_month, utc_month_start};

/// Transfer kinds that are spending by an org on agents.
pub const SPEND_KINDS: [&str; 2] = ["charge", "platform_fee"];

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// A series never has more points than this, whatever range it is asked for.
pub const MAX_SERIES_POINTS: usize = 10_000;

/// The width of a time-series bucket: a UTC hour or a UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    /// The bucket's width in milliseconds.
    pub fn ms(self) -> i64 {
        match self {
            Bucket::Hour => HOUR_MS,
            Bucket::Day => DAY_MS,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    /// The bucket named `text`, if any.
    pub fn parse(text: &str) -> Option<Bucket> {
        match text {
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            _ => None,
        }
    }

    /// The default for `[from, to)`: hours for ranges up to two days, days beyond.
    pub fn for_range(from: i64, to: i64) -> Bucket {
        if to.saturating_sub(from) <= 2 * DAY_MS { Bucket::Hour } else { Bucket::Day }
    }
}

/// The records a usage query covers: one org's, optionally only one installation's,
/// created in `[from, to)` (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageScope {
    pub org_id: String,
    pub installation_id: Option<String>,
    pub from: i64,
    pub to: i64,
}

/// `$1`…`$4`, bound by [`scoped`].
const SCOPE: &str =
    "u.org_id = $1 AND ($2 = '' OR u.installation_id = $2) AND u.created_at >= $3 AND u.created_at < $4";

/// The aggregate columns read by [`totals_from`]. A call is an error when it has an error
/// code or an HTTP status of 400 or more (as [`AuditRow::is_error`]).
const TOTALS: &str = "CAST(COUNT(*) AS BIGINT) AS calls, \
    CAST(COALESCE(SUM(CASE WHEN u.error_code IS NOT NULL OR u.http_status >= 400 THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
    CAST(COALESCE(SUM(u.free_tier), 0) AS BIGINT) AS free_tier_calls, \
    CAST(COALESCE(SUM(u.divergent), 0) AS BIGINT) AS divergent_calls, \
    CAST(COALESCE(SUM(u.cost), 0) AS BIGINT) AS spend, \
    CAST(COALESCE(SUM(u.input_tokens), 0) AS BIGINT) AS input_tokens, \
    CAST(COALESCE(SUM(u.output_tokens), 0) AS BIGINT) AS output_tokens, \
    CAST(COALESCE(SUM(u.cache_tokens), 0) AS BIGINT) AS cache_tokens, \
    CAST(COALESCE(SUM(u.counted_input_tokens), 0) AS BIGINT) AS counted_input_tokens, \
    CAST(COALESCE(SUM(u.counted_output_tokens), 0) AS BIGINT) AS counted_output_tokens, \
    CAST(COALESCE(SUM(u.latency_ms), 0) AS BIGINT) AS latency_total_ms";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// `sql` with [`SCOPE`]'s `$1`…`$4` bound.
fn scoped<'q>(sql: &'q str, s: &'q UsageScope) -> AnyQuery<'q> {
    sqlx::query(sql).bind(s.org_id.as_str()).bind(s.installation_id.as_deref().unwrap_or("")).bind(s.from).bind(s.to)
}

/// Sums over a set of usage records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageTotals {
    pub calls: i64,
    /// Calls with an error code or an HTTP status of 400 or more.
    pub errors: i64,
    pub free_tier_calls: i64,
    pub divergent_calls: i64,
    /// What the org paid.
    pub spend: Nanos,
    /// Billed tokens.
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
    /// Tokens the platform counted itself.
    pub counted_input_tokens: i64,
    pub counted_output_tokens: i64,
    /// The sum of every call's latency.
    pub latency_total_ms: i64,
}

fn totals_from(row: &AnyRow) -> Result<UsageTotals> {
    Ok(UsageTotals {
        calls: get(row, "calls")?,
        errors: get(row, "errors")?,
        free_tier_calls: get(row, "free_tier_calls")?,
        divergent_calls: get(row, "divergent_calls")?,
        spend: Nanos(get(row, "spend")?),
        input_tokens: get(row, "input_tokens")?,
        output_tokens: get(row, "output_tokens")?,
        cache_tokens: get(row, "cache_tokens")?,
        counted_input_tokens: get(row, "counted_input_tokens")?,
        counted_output_tokens: get(row, "counted_output_tokens")?,
        latency_total_ms: get(row, "latency_total_ms")?,
    })
}

/// Latency percentiles (nearest rank) in milliseconds; `None` when there are no calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

/// The 1-based nearest rank of percentile `p` among `n > 0` sorted values: the smallest
/// rank with at least `p`% of the values at or below it.
pub fn nearest_rank(p: i64, n: i64) -> i64 {
    ((p * n + 99) / 100).clamp(1, n.max(1))
}

/// What the org paid, split by what it paid for. The four parts sum to the spend exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CostSplit {
    /// Per-token charges for input, output and cache tokens.
    pub input: Nanos,
    pub output: Nanos,
    pub cache: Nanos,
    /// Per-request prices and base fees.
    pub requests: Nanos,
}

impl CostSplit {
    fn add(&mut self, other: CostSplit) {
        self.input.0 += other.input.0;
        self.output.0 += other.output.0;
        self.cache.0 += other.cache.0;
        self.requests.0 += other.requests.0;
    }
}

/// Splits `cost`, charged for calls billed `tokens` at `pricing`, into its parts. With
/// per-token pricing the token part is the tokens times the prices (rounded half-up once,
/// at most `cost`), divided between input, output and cache in proportion to each kind's
/// price × count (the nano-USD of rounding go to the largest); the rest of `cost` (base
/// fees, per-request prices of a batch, per-call rounding) is the per-request part. The
/// parts always sum to `cost`.
pub fn split_cost(cost: Nanos, pricing: Option<&Pricing>, tokens: Tokens) -> CostSplit {
    let requests = CostSplit { requests: cost, ..CostSplit::default() };
    let Some(Pricing::PerToken { input_per_million, output_per_million, cache_per_million }) = pricing else {
        return requests;
    };
    let parts = [
        i128::from(tokens.input) * i128::from(input_per_million.0),
        i128::from(tokens.output) * i128::from(output_per_million.0),
        i128::from(tokens.cache) * i128::from(cache_per_million.0),
    ];
    let whole: i128 = parts.iter().sum();
    if cost.0 <= 0 || whole <= 0 || parts.iter().any(|p| *p < 0) {
        return requests;
    }
    // Half-up to the nano-USD, capped at what was paid.
    let token_cost = ((whole + 500_000) / 1_000_000).min(i128::from(cost.0));
    let mut shares = parts.map(|p| i64::try_from(token_cost * p / whole).unwrap_or(0));
    let largest = (0..3).max_by_key(|&i| (parts[i], std::cmp::Reverse(i))).unwrap_or(0);
    let token_cost = i64::try_from(token_cost).unwrap_or(cost.0);
    shares[largest] += token_cost - shares.iter().sum::<i64>();
    CostSplit {
        input: Nanos(shares[0]),
        output: Nanos(shares[1]),
        cache: Nanos(shares[2]),
        requests: Nanos(cost.0 - token_cost),
    }
}

/// The per-token pricing a call of `function` (by `method`) on `version` was billed at, if
/// any: the function's own pricing, or the version's default for a named call that is not
/// listed. Calls that name no function (utility methods) pay the base fee.
fn token_pricing<'v>(version: &'v Version, function: &str, method: &str) -> Option<&'v Pricing> {
    let pricing = match version.functions.iter().find(|f| f.name == function) {
        Some(f) => &f.pricing,
        None if function != method => version.default_pricing.as_ref()?,
        None => return None,
    };
    matches!(pricing, Pricing::PerToken { .. }).then_some(pricing)
}

/// One bucket of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeriesPoint {
    /// The bucket's first millisecond (a UTC hour or midnight).
    pub start: i64,
    pub totals: UsageTotals,
}

/// Every bucket from the one holding `from` to the one holding `to - 1`, with `found`
/// (bucket index, totals) filled in and the rest zero; at most [`MAX_SERIES_POINTS`].
pub fn fill_series(from: i64, to: i64, bucket: Bucket, found: &[(i64, UsageTotals)]) -> Vec<SeriesPoint> {
    let size = bucket.ms();
    let (first, last) = (from.div_euclid(size), (to - 1).div_euclid(size));
    let by_index: HashMap<i64, UsageTotals> = found.iter().copied().collect();
    (first..=last)
        .take(MAX_SERIES_POINTS)
        .map(|i| SeriesPoint { start: i * size, totals: by_index.get(&i).copied().unwrap_or_default() })
        .collect()
}

/// One key's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTotals {
    pub key_id: String,
    pub key_name: Option<String>,
    pub key_prefix: Option<String>,
    pub user_id: String,
    pub member_name: Option<String>,
    pub member_email: Option<String>,
    pub totals: UsageTotals,
}

/// One installation's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationTotals {
    pub installation_id: String,
    pub agent_slug: Option<String>,
    pub agent_name: Option<String>,
    pub totals: UsageTotals,
}

/// Everything the usage page shows for a scope, except free quota (which is "now", not
/// "in the range": see [`Store::free_quota`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageReport {
    pub totals: UsageTotals,
    pub latency: Percentiles,
    pub cost: CostSplit,
    pub series: Vec<SeriesPoint>,
    /// By spend, then calls, highest first.
    pub by_key: Vec<KeyTotals>,
    pub by_installation: Vec<InstallationTotals>,
}

/// A function's free calls and how many of them the org has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeQuota {
    pub function: String,
    pub free_calls: i64,
    pub reset: FreeReset,
    /// Free calls used since the current period began.
    pub used: i64,
    pub remaining: i64,
    /// When the count starts again (monthly tiers): 00:00 UTC on the first of next month.
    pub resets_at: Option<i64>,
}

/// When a free tier's current period began: the epoch for a lifetime tier, 00:00 UTC on
/// the first of this month for a monthly one.
pub fn free_period_start(reset: FreeReset, now: i64) -> i64 {
    match reset {
        FreeReset::Lifetime => 0,
        FreeReset::Monthly => utc_month_start(now),
    }
}

/// Which calls an audit query lists, besides its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    #[default]
    Any,
    /// No error code and an HTTP status below 400.
    Success,
    /// The rest.
    Error,
    /// This HTTP status.
    Code(i64),
}

/// The audit log's filters. `None` means "any".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditFilter {
    pub scope: UsageScope,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    /// Exactly this function.
    pub function: Option<String>,
    pub status: StatusFilter,
    pub free_tier: Option<bool>,
    pub divergent: Option<bool>,
    /// Found, ignoring case, anywhere in the function, the method, the request id, the
    /// key's name or its prefix.
    pub search: Option<String>,
    /// When set, the search matches the names and prefixes of this user's keys only (for
    /// callers who may not see other members' keys).
    pub search_keys_of: Option<String>,
}

/// One call as the audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRow {
    /// The request id.
    pub id: String,
    pub created_at: i64,
    pub installation_id: String,
    pub agent_id: String,
    pub agent_slug: Option<String>,
    pub agent_name: Option<String>,
    pub version: String,
    pub function_name: String,
    pub method: String,
    pub key_id: String,
    pub key_name: Option<String>,
    pub key_prefix: Option<String>,
    pub user_id: String,
    pub member_name: Option<String>,
    pub member_email: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
    pub counted_input_tokens: i64,
    pub counted_output_tokens: i64,
    pub latency_ms: i64,
    pub http_status: i64,
    pub error_code: Option<String>,
    pub cost: Nanos,
    pub free_tier: bool,
    pub divergent: bool,
    pub parent_task_id: Option<String>,
    /// The call's charge in the ledger (none when it cost nothing).
    pub transfer_id: Option<String>,
}

impl AuditRow {
    /// Whether the call failed (the same rule as the report's error count).
    pub fn is_error(&self) -> bool {
        self.error_code.is_some() || self.http_status >= 400
    }
}

const AUDIT_SELECT: &str = "SELECT u.id, u.created_at, u.installation_id, u.agent_id, a.slug AS agent_slug, \
    a.name AS agent_name, u.version, u.function_name, u.method, u.key_id, k.name AS key_name, k.prefix AS key_prefix, \
    u.user_id, m.name AS member_name, m.email AS member_email, u.input_tokens, u.output_tokens, u.cache_tokens, \
    u.counted_input_tokens, u.counted_output_tokens, u.latency_ms, u.http_status, u.error_code, u.cost, u.free_tier, \
    u.divergent, u.parent_task_id, u.transfer_id \
    FROM usage_records u LEFT JOIN agents a ON a.id = u.agent_id LEFT JOIN api_keys k ON k.id = u.key_id \
    LEFT JOIN users m ON m.id = u.user_id";

/// [`SCOPE`] plus `$5`…`$16` as bound by [`audit_query`]: key, member, function, status kind
/// and code, free tier, divergent, search pattern (`LIKE … ESCAPE '!'`), a keyset cursor
/// (flag, time, id) that continues after a row in newest-first order, and the user whose
/// keys the search may match by name (`''`: anyone's).
const AUDIT_FILTERS: &str = "($5 = '' OR u.key_id = $5) AND ($6 = '' OR u.user_id = $6) \
    AND ($7 = '' OR u.function_name = $7) \
    AND ($8 = 0 OR ($8 = 1 AND u.error_code IS NULL AND u.http_status < 400) \
        OR ($8 = 2 AND (u.error_code IS NOT NULL OR u.http_status >= 400)) OR ($8 = 3 AND u.http_status = $9)) \
    AND ($10 = -1 OR u.free_tier = $10) AND ($11 = -1 OR u.divergent = $11) \
    AND ($12 = '' OR LOWER(u.function_name) LIKE $12 ESCAPE '!' OR LOWER(u.method) LIKE $12 ESCAPE '!' \
        OR LOWER(u.id) LIKE $12 ESCAPE '!' \
        OR ((LOWER(COALESCE(k.name, '')) LIKE $12 ESCAPE '!' OR LOWER(COALESCE(k.prefix, '')) LIKE $12 ESCAPE '!') \
            AND ($16 = '' OR u.user_id = $16))) \
    AND ($13 = 0 OR u.created_at < $14 OR (u.created_at = $14 AND u.id < $15))";

/// Binds [`SCOPE`] and [`AUDIT_FILTERS`] (`$1`…`$16`).
fn audit_query<'q>(sql: &'q str, f: &'q AuditFilter, after: Option<(i64, &'q str)>) -> AnyQuery<'q> {
    let text = |v: &'q Option<String>| v.as_deref().unwrap_or("");
    let tristate = |v: Option<bool>| v.map_or(-1, i64::from);
    let (status_kind, status_code) = match f.status {
        StatusFilter::Any => (0, 0),
        StatusFilter::Success => (1, 0),
        StatusFilter::Error => (2, 0),
        StatusFilter::Code(code) => (3, code),
    };
    let search = f.search.as_deref().filter(|s| !s.is_empty()).map(|s| like_contains(&s.to_lowercase()));
    scoped(sql, &f.scope)
        .bind(text(&f.key_id))
        .bind(text(&f.user_id))
        .bind(text(&f.function))
        .bind(status_kind)
        .bind(status_code)
        .bind(tristate(f.free_tier))
        .bind(tristate(f.divergent))
        .bind(search.unwrap_or_default())
        .bind(i64::from(after.is_some()))
        .bind(after.map_or(0, |(t, _)| t))
        .bind(after.map_or("", |(_, id)| id))
        .bind(text(&f.search_keys_of))
}

fn audit_row_from(row: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        id: get(row, "id")?,
        created_at: get(row, "created_at")?,
        installation_id: get(row, "installation_id")?,
        agent_id: get(row, "agent_id")?,
        agent_slug: get(row, "agent_slug")?,
        agent_name: get(row, "agent_name")?,
        version: get(row, "version")?,
        function_name: get(row, "function_name")?,
        method: get(row, "method")?,
        key_id: get(row, "key_id")?,
        key_name: get(row, "key_name")?,
        key_prefix: get(row, "key_prefix")?,
        user_id: get(row, "user_id")?,
        member_name: get(row, "member_name")?,
        member_email: get(row, "member_email")?,
        input_tokens: get(row, "input_tokens")?,
        output_tokens: get(row, "output_tokens")?,
        cache_tokens: get(row, "cache_tokens")?,
        counted_input_tokens: get(row, "counted_input_tokens")?,
        counted_output_tokens: get(row, "counted_output_tokens")?,
        latency_ms: get(row, "latency_ms")?,
        http_status: get(row, "http_status")?,
        error_code: get(row, "error_code")?,
        cost: Nanos(get(row, "cost")?),
        free_tier: flag(row, "free_tier")?,
        divergent: flag(row, "divergent")?,
        parent_task_id: get(row, "parent_task_id")?,
        transfer_id: get(row, "transfer_id")?,
    })
}

impl Store {
    /// What `account_id` has spent on agents since `since` (Unix ms).
    pub async fn spend_since(&self, account_id: &str, since: i64) -> Result<Nanos> {
        let sum: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(amount) AS BIGINT) FROM ledger_transfers WHERE debit_account_id = $1 AND created_at >= $2 AND kind IN ($3, $4)",
        )
        .bind(account_id)
        .bind(since)
        .bind(SPEND_KINDS[0])
        .bind(SPEND_KINDS[1])
        .fetch_one(&self.read)
        .await?;
        Ok(Nanos(sum.unwrap_or(0)))
    }

    /// The usage report of `scope`, its series in buckets of `bucket`.
    pub async fn usage_report(&self, scope: &UsageScope, bucket: Bucket) -> Result<UsageReport> {
        let sql = format!("SELECT {TOTALS} FROM usage_records u WHERE {SCOPE}");
        let totals = totals_from(&scoped(&sql, scope).fetch_one(&self.read).await?)?;
        Ok(UsageReport {
            totals,
            latency: self.latency_percentiles(scope, totals.calls).await?,
            cost: self.cost_split(scope).await?,
            series: self.usage_series(scope, bucket).await?,
            by_key: self.usage_by_key(scope).await?,
            by_installation: self.usage_by_installation(scope).await?,
        })
    }

    async fn latency_percentiles(&self, scope: &UsageScope, calls: i64) -> Result<Percentiles> {
        if calls == 0 {
            return Ok(Percentiles::default());
        }
        let sql =
            format!("SELECT u.latency_ms FROM usage_records u WHERE {SCOPE} ORDER BY u.latency_ms LIMIT 1 OFFSET $5");
        let mut out = [None; 3];
        for (slot, p) in out.iter_mut().zip([50, 95, 99]) {
            let offset = nearest_rank(p, calls) - 1;
            *slot = scoped(&sql, scope)
                .bind(offset)
                .fetch_optional(&self.read)
                .await?
                .map(|r| get(&r, "latency_ms"))
                .transpose()?;
        }
        Ok(Percentiles { p50: out[0], p95: out[1], p99: out[2] })
    }

    async fn usage_series(&self, scope: &UsageScope, bucket: Bucket) -> Result<Vec<SeriesPoint>> {
        let sql = format!(
            "SELECT u.bucket, {TOTALS} FROM (SELECT u.*, u.created_at / $5 AS bucket FROM usage_records u WHERE {SCOPE}) u \
             GROUP BY u.bucket ORDER BY u.bucket"
        );
        let rows = scoped(&sql, scope).bind(bucket.ms()).fetch_all(&self.read).await?;
        let found = rows.iter().map(|r| Ok((get::<i64>(r, "bucket")?, totals_from(r)?))).collect::<Result<Vec<_>>>()?;
        Ok(fill_series(scope.from, scope.to, bucket, &found))
    }

    /// The spend of `scope` split into input, output, cache and per-request charges, from
    /// the billed tokens of its charged calls and the pricing of the versions they called.
    async fn cost_split(&self, scope: &UsageScope) -> Result<CostSplit> {
        let sql = format!(
            "SELECT u.agent_id, u.version, u.function_name, u.method, CAST(SUM(u.cost) AS BIGINT) AS cost, \
             CAST(SUM(u.input_tokens) AS BIGINT) AS input_tokens, CAST(SUM(u.output_tokens) AS BIGINT) AS output_tokens, \
             CAST(SUM(u.cache_tokens) AS BIGINT) AS cache_tokens \
             FROM usage_records u WHERE {SCOPE} AND u.cost > 0 GROUP BY u.agent_id, u.version, u.function_name, u.method"
        );
        let mut versions: HashMap<(String, String), Option<Version>> = HashMap::new();
        let mut split = CostSplit::default();
        for row in scoped(&sql, scope).fetch_all(&self.read).await? {
            let (agent_id, version): (String, String) = (get(&row, "agent_id")?, get(&row, "version")?);
            let key = (agent_id, version);
            if !versions.contains_key(&key) {
                let found = match self.agent_version(&key.0, &key.1).await {
                    Ok(v) => Some(v),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(e),
                };
                versions.insert(key.clone(), found);
            }
            let (function, method): (String, String) = (get(&row, "function_name")?, get(&row, "method")?);
            let pricing =
                versions.get(&key).and_then(Option::as_ref).and_then(|v| token_pricing(v, &function, &method));
            let tokens = Tokens {
                input: get(&row, "input_tokens")?,
                output: get(&row, "output_tokens")?,
                cache: get(&row, "cache_tokens")?,
            };
            split.add(split_cost(Nanos(get(&row, "cost")?), pricing, tokens));
        }
        Ok(split)
    }

    async fn usage_by_key(&self, scope: &UsageScope) -> Result<Vec<KeyTotals>> {
        let sql = format!(
            "SELECT u.key_id, u.user_id, k.name AS key_name, k.prefix AS key_prefix, m.name AS member_name, \
             m.email AS member_email, {TOTALS} \
             FROM usage_records u LEFT JOIN api_keys k ON k.id = u.key_id LEFT JOIN users m ON m.id = u.user_id \
             WHERE {SCOPE} GROUP BY u.key_id, u.user_id, k.name, k.prefix, m.name, m.email \
             ORDER BY spend DESC, calls DESC, u.key_id"
        );
        let rows = scoped(&sql, scope).fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(KeyTotals {
                    key_id: get(r, "key_id")?,
                    key_name: get(r, "key_name")?,
                    key_prefix: get(r, "key_prefix")?,
                    user_id: get(r, "user_id")?,
                    member_name: get(r, "member_name")?,
                    member_email: get(r, "member_email")?,
                    totals: totals_from(r)?,
                })
            })
            .collect()
    }

    async fn usage_by_installation(&self, scope: &UsageScope) -> Result<Vec<InstallationTotals>> {
        let sql = format!(
            "SELECT u.installation_id, a.slug AS agent_slug, a.name AS agent_name, {TOTALS} \
             FROM usage_records u LEFT JOIN agents a ON a.id = u.agent_id \
             WHERE {SCOPE} GROUP BY u.installation_id, a.slug, a.name ORDER BY spend DESC, calls DESC, u.installation_id"
        );
        let rows = scoped(&sql, scope).fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(InstallationTotals {
                    installation_id: get(r, "installation_id")?,
                    agent_slug: get(r, "agent_slug")?,
                    agent_name: get(r, "agent_name")?,
                    totals: totals_from(r)?,
                })
            })
            .collect()
    }

    /// Free quota left, as of `now`, on each function with a free tier in the version
    /// `inst` runs (its pinned version, or the newest active one for `latest`). Free calls
    /// count per org and agent, across installations and keys. None when no such version
    /// is left.
    pub async fn free_quota(&self, inst: &Installation, now: i64) -> Result<Vec<FreeQuota>> {
        let version = match self.agent_version(&inst.agent_id, &inst.version).await {
            Ok(v) => v,
            Err(StoreError::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for f in version.functions.iter().filter(|f| f.free_calls > 0) {
            let since = free_period_start(f.free_reset, now);
            let used = self.free_calls_used(&inst.org_id, &inst.agent_id, &f.name, since).await?;
            out.push(FreeQuota {
                function: f.name.clone(),
                free_calls: f.free_calls,
                reset: f.free_reset,
                used,
                remaining: (f.free_calls - used).max(0),
                resets_at: (f.free_reset == FreeReset::Monthly).then(|| next_utc_month(now)),
            });
        }
        Ok(out)
    }

    /// One page of the audit log, newest first, and how many rows match in all.
    pub async fn audit_page(&self, f: &AuditFilter, limit: i64, offset: i64) -> Result<(Vec<AuditRow>, i64)> {
        let count_sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM usage_records u LEFT JOIN api_keys k ON k.id = u.key_id \
             WHERE {SCOPE} AND {AUDIT_FILTERS}"
        );
        let total: i64 = get(&audit_query(&count_sql, f, None).fetch_one(&self.read).await?, "n")?;
        let sql = format!(
            "{AUDIT_SELECT} WHERE {SCOPE} AND {AUDIT_FILTERS} ORDER BY u.created_at DESC, u.id DESC LIMIT $17 OFFSET $18"
        );
        let rows = audit_query(&sql, f, None).bind(limit).bind(offset).fetch_all(&self.read).await?;
        Ok((rows.iter().map(audit_row_from).collect::<Result<_>>()?, total))
    }

    /// Up to `limit` audit rows, newest first, that come after `after` (the time and id of
    /// the last row already read) — for reading a whole range in chunks.
    pub async fn audit_rows_after(
        &self,
        f: &AuditFilter,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let sql =
            format!("{AUDIT_SELECT} WHERE {SCOPE} AND {AUDIT_FILTERS} ORDER BY u.created_at DESC, u.id DESC LIMIT $17");
        let rows = audit_query(&sql, f, after).bind(limit).fetch_all(&self.read).await?;
        rows.iter().map(audit_row_from).collect()
    }

    /// One call of `org_id` by request id.
    pub async fn audit_row(&self, org_id: &str, id: &str) -> Result<Option<AuditRow>> {
        let sql = format!("{AUDIT_SELECT} WHERE u.org_id = $1 AND u.id = $2");
        let row = sqlx::query(&sql).bind(org_id).bind(id).fetch_optional(&self.read).await?;
        row.as_ref().map(audit_row_from).transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn per_token(input: i64, output: i64, cache: i64) -> Pricing {
        Pricing::PerToken {
            input_per_million: Nanos(input),
            output_per_million: Nanos(output),
            cache_per_million: Nanos(cache),
        }
    }

    fn sum(s: CostSplit) -> i64 {
        s.input.0 + s.output.0 + s.cache.0 + s.requests.0
    }

    #[test]
    fn cost_splits_sum_to_the_cost() {
        // $2 / $4 / $0.50 per million: 2,000 / 4,000 / 500 nano-USD a token.
        let p = per_token(2_000_000_000, 4_000_000_000, 500_000_000);
        let tokens = Tokens { input: 10, output: 5, cache: 4 };
        let exact = split_cost(Nanos(2_000 * 10 + 4_000 * 5 + 500 * 4), Some(&p), tokens);
        assert_eq!(
            exact,
            CostSplit { input: Nanos(20_000), output: Nanos(20_000), cache: Nanos(2_000), requests: Nanos(0) }
        );
        // A base fee paid with the tokens (a batch) is a per-request part.
        let batch = split_cost(Nanos(42_000 + 100_000), Some(&p), tokens);
        assert_eq!((batch.input.0, batch.output.0, batch.cache.0, batch.requests.0), (20_000, 20_000, 2_000, 100_000));
        // 1 token at 1, 1 and 1 nano-USD per million: 3 millionths of a nano-USD round to 0.
        let tiny = per_token(1, 1, 1);
        assert_eq!(split_cost(Nanos(1), Some(&tiny), Tokens { input: 1, output: 1, cache: 1 }).requests, Nanos(1));
        let even = Tokens { input: 100_000_000, output: 100_000_000, cache: 100_000_000 };
        let thirds = split_cost(Nanos(300), Some(&tiny), even);
        assert_eq!((thirds.input.0, thirds.output.0, thirds.cache.0, thirds.requests.0), (100, 100, 100, 0));
        // Capped at what was paid; thirds of 100: the rounding goes to the largest part
        // (the first on a tie).
        let capped = split_cost(
            Nanos(100),
            Some(&tiny),
            Tokens { input: 1_000_000_000, output: 1_000_000_000, cache: 1_000_000_000 },
        );
        assert_eq!((capped.input.0, capped.output.0, capped.cache.0, capped.requests.0), (34, 33, 33, 0));
        let skewed = split_cost(
            Nanos(7_000),
            Some(&per_token(1_000_000, 5_000_000, 1_000_000)),
            Tokens { input: 1, output: 1, cache: 1 },
        );
        assert_eq!((skewed.input.0, skewed.output.0, skewed.cache.0, skewed.requests.0), (1, 5, 1, 6_993));
        for cost in [0, 1, 2, 999_999_999, 123_456_789_012] {
            for tokens in [
                Tokens { input: 3, output: 7, cache: 11 },
                Tokens { input: 0, output: 1, cache: 0 },
                Tokens { input: 10_000_000, output: 1, cache: 0 },
            ] {
                let split = split_cost(Nanos(cost), Some(&p), tokens);
                assert_eq!(sum(split), cost, "{cost} {tokens:?}");
                assert!([split.input, split.output, split.cache, split.requests].iter().all(|n| n.0 >= 0));
            }
        }
        let fixed =
            split_cost(Nanos(5_000_000), Some(&Pricing::PerRequest { price: Nanos(5_000_000) }), Tokens::default());
        assert_eq!(fixed, CostSplit { requests: Nanos(5_000_000), ..CostSplit::default() });
        // A per-token function called with no tokens charged only its base fee.
        assert_eq!(split_cost(Nanos(9), Some(&p), Tokens::default()).requests, Nanos(9));
    }

    #[test]
    fn nearest_ranks() {
        assert_eq!(nearest_rank(50, 1), 1);
        assert_eq!(nearest_rank(99, 1), 1);
        assert_eq!(nearest_rank(50, 4), 2);
        assert_eq!(nearest_rank(95, 20), 19);
        assert_eq!(nearest_rank(95, 21), 20);
        assert_eq!(nearest_rank(99, 100), 99);
        assert_eq!(nearest_rank(99, 101), 100);
    }

    #[test]
    fn series_cover_every_bucket_of_the_range() {
        let day = Bucket::Day.ms();
        let t = UsageTotals { calls: 3, ..UsageTotals::default() };
        let s = fill_series(day + 5, 4 * day, Bucket::Day, &[(2, t)]);
        assert_eq!(s.iter().map(|p| p.start).collect::<Vec<_>>(), vec![day, 2 * day, 3 * day]);
        assert_eq!(s.iter().map(|p| p.totals.calls).collect::<Vec<_>>(), vec![0, 3, 0]);
        assert_eq!(fill_series(0, Bucket::Hour.ms() + 1, Bucket::Hour, &[]).len(), 2);
        assert_eq!(fill_series(0, i64::MAX / 2, Bucket::Hour, &[]).len(), MAX_SERIES_POINTS);
        assert_eq!(Bucket::for_range(0, 2 * day), Bucket::Hour);
        assert_eq!(Bucket::for_range(0, 2 * day + 1), Bucket::Day);
    }
}
