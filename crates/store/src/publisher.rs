//! A publisher's view of its agents' usage: calls, errors, latency and earnings per agent,
//! per version and per installation, over a time range. Installations appear only by
//! their pseudonymous install token, never by the consumer's org, members, keys or calls.
//!
//! Earnings are what the publisher's earnings account was credited: the `charge` transfer
//! of each call (idempotency key `call:{record id}:charge`, see [`Store::settle_calls`]),
//! joined to the call's usage record. Free and failed calls earn nothing.

use crate::ledger::AccountKind;
use crate::row::get;
use crate::usage::{Bucket, MAX_SERIES_POINTS};
use crate::{Result, Store};
use sqlx::any::AnyRow;
use std::collections::HashMap;
use tollgate_domain::Nanos;

/// The calls a publisher report covers: those of the agents `org_id` publishes (or only
/// of `agent_id`), made in `[from, to)` (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublisherScope {
    pub org_id: String,
    pub agent_id: Option<String>,
    pub from: i64,
    pub to: i64,
}

/// Sums over a publisher's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublisherTotals {
    pub calls: i64,
    /// Calls with an error code or an HTTP status of 400 or more.
    pub errors: i64,
    /// The sum of every call's latency.
    pub latency_total_ms: i64,
    /// What the publisher's earnings account was credited for these calls.
    pub earnings: Nanos,
}

/// One agent's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEarnings {
    pub agent_id: String,
    pub slug: String,
    pub name: String,
    /// Active installations now (not in the range).
    pub active_installs: i64,
    pub totals: PublisherTotals,
}

/// One version's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEarnings {
    pub agent_id: String,
    pub version: String,
    pub totals: PublisherTotals,
}

/// One installation's totals, known only by its install token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallEarnings {
    pub agent_id: String,
    pub install_token: String,
    pub totals: PublisherTotals,
}

/// One bucket of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarningsPoint {
    /// The bucket's first millisecond (a UTC hour or midnight).
    pub start: i64,
    pub totals: PublisherTotals,
}

/// A publisher's report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublisherReport {
    pub totals: PublisherTotals,
    /// Every bucket of the range, oldest first, empty ones included.
    pub series: Vec<EarningsPoint>,
    /// Every agent in scope (calls or not), highest earnings first.
    pub by_agent: Vec<AgentEarnings>,
    /// Versions with calls, by agent and version.
    pub by_version: Vec<VersionEarnings>,
    /// Installations with calls, highest earnings first, at most [`MAX_INSTALL_ROWS`].
    pub by_install: Vec<InstallEarnings>,
}

/// The most installations a report lists.
pub const MAX_INSTALL_ROWS: i64 = 200;

/// `$1` org, `$2` the org's earnings account (`''` when it has none), `$3` agent (`''`:
/// all), `$4`…`$5` the range.
const FROM_SCOPE: &str = "FROM usage_records u JOIN agents a ON a.id = u.agent_id \
    LEFT JOIN ledger_transfers t ON t.idempotency_key = 'call:' || u.id || ':charge' AND t.credit_account_id = $2 \
    WHERE a.publisher_org_id = $1 AND ($3 = '' OR u.agent_id = $3) AND u.created_at >= $4 AND u.created_at < $5 \
    AND u.refused = 0";

/// [`FROM_SCOPE`] with each call's installation as `i`.
const FROM_SCOPE_INSTALLS: &str = "FROM usage_records u JOIN agents a ON a.id = u.agent_id \
    JOIN installations i ON i.id = u.installation_id \
    LEFT JOIN ledger_transfers t ON t.idempotency_key = 'call:' || u.id || ':charge' AND t.credit_account_id = $2 \
    WHERE a.publisher_org_id = $1 AND ($3 = '' OR u.agent_id = $3) AND u.created_at >= $4 AND u.created_at < $5 \
    AND u.refused = 0";

const TOTALS: &str = "CAST(COUNT(*) AS BIGINT) AS calls, \
    CAST(COALESCE(SUM(CASE WHEN u.error_code IS NOT NULL OR u.http_status >= 400 THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
    CAST(COALESCE(SUM(u.latency_ms), 0) AS BIGINT) AS latency_total_ms, \
    CAST(COALESCE(SUM(t.amount), 0) AS BIGINT) AS earnings";

fn totals_from(row: &AnyRow) -> Result<PublisherTotals> {
    Ok(PublisherTotals {
        calls: get(row, "calls")?,
        errors: get(row, "errors")?,
        latency_total_ms: get(row, "latency_total_ms")?,
        earnings: Nanos(get(row, "earnings")?),
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl Store {
    /// The usage and earnings of the agents `scope` covers, the series in buckets of
    /// `bucket`.
    pub async fn publisher_report(&self, scope: &PublisherScope, bucket: Bucket) -> Result<PublisherReport> {
        let account = self.find_ledger_account(AccountKind::PublisherEarnings, &scope.org_id).await?;
        let account_id = account.map(|a| a.id).unwrap_or_default();
        let agent = scope.agent_id.as_deref().unwrap_or("");

        let totals_sql = format!("SELECT {TOTALS} {FROM_SCOPE}");
        let totals = totals_from(&scoped(&totals_sql, scope, &account_id).fetch_one(&self.read).await?)?;

        let series_sql = format!("SELECT u.created_at / $6 AS bucket, {TOTALS} {FROM_SCOPE} GROUP BY 1 ORDER BY 1");
        let rows = scoped(&series_sql, scope, &account_id).bind(bucket.ms()).fetch_all(&self.read).await?;
        let found: HashMap<i64, PublisherTotals> =
            rows.iter().map(|r| Ok((get::<i64>(r, "bucket")?, totals_from(r)?))).collect::<Result<_>>()?;
        let size = bucket.ms();
        let (first, last) = (scope.from.div_euclid(size), (scope.to - 1).div_euclid(size));
        let series = (first..=last)
            .take(MAX_SERIES_POINTS)
            .map(|i| EarningsPoint { start: i * size, totals: found.get(&i).copied().unwrap_or_default() })
            .collect();

        let agent_sql = format!("SELECT u.agent_id, {TOTALS} {FROM_SCOPE} GROUP BY u.agent_id");
        let rows = scoped(&agent_sql, scope, &account_id).fetch_all(&self.read).await?;
        let per_agent: HashMap<String, PublisherTotals> =
            rows.iter().map(|r| Ok((get::<String>(r, "agent_id")?, totals_from(r)?))).collect::<Result<_>>()?;
        let agents = sqlx::query(
            "SELECT a.id, a.slug, a.name, \
             (SELECT CAST(COUNT(*) AS BIGINT) FROM installations i WHERE i.agent_id = a.id AND i.status = 'active') AS installs \
             FROM agents a WHERE a.publisher_org_id = $1 AND ($2 = '' OR a.id = $2) ORDER BY a.slug",
        )
        .bind(scope.org_id.as_str())
        .bind(agent)
        .fetch_all(&self.read)
        .await?;
        let mut by_agent = agents
            .iter()
            .map(|r| {
                let agent_id: String = get(r, "id")?;
                Ok(AgentEarnings {
                    totals: per_agent.get(&agent_id).copied().unwrap_or_default(),
                    slug: get(r, "slug")?,
                    name: get(r, "name")?,
                    active_installs: get(r, "installs")?,
                    agent_id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        by_agent.sort_by(|a, b| b.totals.earnings.cmp(&a.totals.earnings).then(b.totals.calls.cmp(&a.totals.calls)));

        let version_sql = format!(
            "SELECT u.agent_id, u.version, {TOTALS} {FROM_SCOPE} GROUP BY u.agent_id, u.version ORDER BY u.agent_id, u.version"
        );
        let rows = scoped(&version_sql, scope, &account_id).fetch_all(&self.read).await?;
        let by_version = rows
            .iter()
            .map(|r| {
                Ok(VersionEarnings {
                    agent_id: get(r, "agent_id")?,
                    version: get(r, "version")?,
                    totals: totals_from(r)?,
                })
            })
            .collect::<Result<_>>()?;

        let install_sql = format!(
            "SELECT u.agent_id, i.install_token, {TOTALS} {FROM_SCOPE_INSTALLS} \
             GROUP BY u.agent_id, i.install_token ORDER BY earnings DESC, calls DESC, i.install_token LIMIT $6"
        );
        let rows = scoped(&install_sql, scope, &account_id).bind(MAX_INSTALL_ROWS).fetch_all(&self.read).await?;
        let by_install = rows
            .iter()
            .map(|r| {
                Ok(InstallEarnings {
                    agent_id: get(r, "agent_id")?,
                    install_token: get(r, "install_token")?,
                    totals: totals_from(r)?,
                })
            })
            .collect::<Result<_>>()?;

        Ok(PublisherReport { totals, series, by_agent, by_version, by_install })
    }
}

/// `sql` with [`FROM_SCOPE`]'s `$1`…`$5` bound.
fn scoped<'q>(sql: &'q str, s: &'q PublisherScope, account_id: &'q str) -> AnyQuery<'q> {
    sqlx::query(sql)
        .bind(s.org_id.as_str())
        .bind(account_id)
        .bind(s.agent_id.as_deref().unwrap_or(""))
        .bind(s.from)
        .bind(s.to)
}
