//! The gateway's write path: settled calls — each a usage record and its charge — written
//! in batches (group commit), and the reads that seed the gateway's in-memory counters.
//!
//! Architecture invariant: a usage record and its ledger transfers are written in the same
//! transaction, and a record's id (the call's request id) is written at most once, so a
//! call is never charged twice and every charged record has exactly its transfers.

use crate::ledger::{Delta, apply};
use crate::row::get;
use crate::{Result, Store, StoreError};
use std::collections::{BTreeMap, HashSet};
use tollgate_domain::Nanos;
use tollgate_domain::secret::ordered_id;

/// One gateway call's metadata — never its content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageRecord {
    /// The call's request id (unique).
    pub id: String,
    pub created_at: i64,
    pub org_id: String,
    pub user_id: String,
    pub key_id: String,
    pub installation_id: String,
    pub agent_id: String,
    pub version: String,
    /// The function billed: a tool, prompt or resource name, a skill, or the method.
    pub function_name: String,
    /// The JSON-RPC method (`tools/call`, `initialize`, …) or `health`.
    pub method: String,
    /// Tokens billed (reported, or counted, or the lower of both when they diverge).
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
    /// Tokens the platform counted itself (`cl100k_base`).
    pub counted_input_tokens: i64,
    pub counted_output_tokens: i64,
    pub latency_ms: i64,
    pub http_status: i64,
    /// Why the call failed (`None` when it succeeded).
    pub error_code: Option<String>,
    /// What the org paid.
    pub cost: Nanos,
    /// The platform's share of `cost`.
    pub fee: Nanos,
    /// The call used one of the org's free calls.
    pub free_tier: bool,
    /// Reported and counted tokens differ by more than 20%: flagged for review.
    pub divergent: bool,
    /// The A2A task a dependency call was made for.
    pub parent_task_id: Option<String>,
}

/// Where a charged call's money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The org's credit account, debited `record.cost`.
    pub org_account: String,
    /// The credit lease the call's reservation came from, and how much of the cost it
    /// covers (the rest, a call's overrun, comes from the free balance).
    pub lease: Option<(String, Nanos)>,
    /// The publisher's earnings account, credited `cost − fee`.
    pub publisher_account: String,
    /// The platform's revenue account, credited `fee`.
    pub platform_account: String,
}

/// A finished call, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledCall {
    pub record: UsageRecord,
    /// `None` when the call costs nothing (failed, free tier, unpriced).
    pub charge: Option<Charge>,
}

/// What a batch wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settled {
    /// Usage records written (a record already written is skipped).
    pub records: usize,
    /// Ledger transfers made.
    pub transfers: usize,
}

/// Usage-record columns, in the order [`push_record`] binds them.
const RECORD_COLUMNS: &str = "id, request_id, created_at, org_id, user_id, key_id, installation_id, agent_id, version, \
    function_name, method, input_tokens, output_tokens, cache_tokens, counted_input_tokens, counted_output_tokens, \
    latency_ms, http_status, error_code, cost, fee, free_tier, divergent, parent_task_id, transfer_id";
const RECORD_ARITY: usize = 25;
/// [`RECORD_COLUMNS`] as inserted: with whether the call was refused.
const INSERT_COLUMNS: &str = "id, request_id, created_at, org_id, user_id, key_id, installation_id, agent_id, version, \
    function_name, method, input_tokens, output_tokens, cache_tokens, counted_input_tokens, counted_output_tokens, \
    latency_ms, http_status, error_code, cost, fee, free_tier, divergent, parent_task_id, transfer_id, refused";
const INSERT_ARITY: usize = RECORD_ARITY + 1;
const TRANSFER_COLUMNS: &str =
    "id, idempotency_key, debit_account_id, credit_account_id, amount, kind, memo, hold_id, created_at";
const TRANSFER_ARITY: usize = 9;

/// The most rows in one multi-row `INSERT`: well under both databases' bind-parameter
/// limits (SQLite 32,766; PostgreSQL 65,535).
const MAX_ROWS_PER_INSERT: usize = 128;

/// Splits `total` rows into inserts of power-of-two sizes (largest first, at most
/// [`MAX_ROWS_PER_INSERT`]), so batches of any size use one of eight statements, each
/// prepared once and then found in the connection's statement cache.
fn insert_sizes(total: usize) -> impl Iterator<Item = usize> {
    let mut left = total;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let size = if left >= MAX_ROWS_PER_INSERT { MAX_ROWS_PER_INSERT } else { 1 << left.ilog2() };
        left -= size;
        Some(size)
    })
}

/// `items` cut into consecutive slices of [`insert_sizes`].
fn insert_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut start = 0;
    insert_sizes(items.len()).map(move |size| {
        let chunk = &items[start..start + size];
        start += size;
        chunk
    })
}

/// `VALUES (…), (…)` for `rows` rows of `arity` columns. Only placeholders are built here;
/// every value is bound. PostgreSQL takes `$1, $2, …`; SQLite gets anonymous `?`s, which it
/// binds in order — it looks a numbered placeholder up by a linear scan, which made large
/// multi-row inserts quadratic in their number of values.
fn values_clause(rows: usize, arity: usize, backend: crate::Backend) -> String {
    let mut sql = String::with_capacity(rows * arity * 5 + 8);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..arity {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match backend {
                crate::Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
                crate::Backend::Sqlite => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// One ledger transfer of a charge.
struct NewCharge<'a> {
    id: String,
    key: String,
    debit: &'a str,
    credit: &'a str,
    amount: i64,
    kind: &'static str,
    hold_id: Option<&'a str>,
}

impl Store {
    /// Writes a batch of settled calls in one transaction: their usage records, their
    /// charges (`charge` to the publisher, `platform_fee` to the platform, both debited
    /// from the org), the draws on the credit leases their reservations came from, and the
    /// account balances. A record whose id is already written is skipped with its charge,
    /// so replaying a batch changes nothing. A lease that is no longer pending (it expired)
    /// covers nothing: the charge then comes from the free balance.
    pub async fn settle_calls(&self, calls: &[SettledCall]) -> Result<Settled> {
        self.settle_calls_and_refusals(calls, &[]).await
    }

    /// [`Store::settle_calls`], plus the usage records of calls the gateway `refused` once it
    /// knew the key (free, never charged; marked `refused` so the publisher's figures and
    /// the key's daily request count leave them out), in the same transaction.
    pub async fn settle_calls_and_refusals(&self, calls: &[SettledCall], refused: &[UsageRecord]) -> Result<Settled> {
        if calls.is_empty() && refused.is_empty() {
            return Ok(Settled::default());
        }
        let now = tollgate_domain::time::now_ms();
        // Transfer ids are made up front so each record can name its first transfer.
        let mut charges: Vec<Vec<NewCharge<'_>>> = Vec::with_capacity(calls.len());
        for call in calls {
            let mut made = Vec::new();
            if let Some(charge) = &call.charge {
                let (cost, fee) = (call.record.cost.0, call.record.fee.0);
                if cost < 0 || fee < 0 || fee > cost {
                    return Err(StoreError::Conflict(format!("call {}: bad cost {cost} / fee {fee}", call.record.id)));
                }
                let hold_id = charge.lease.as_ref().map(|(id, _)| id.as_str());
                for (credit, amount, kind) in
                    [(&charge.publisher_account, cost - fee, "charge"), (&charge.platform_account, fee, "platform_fee")]
                {
                    if amount > 0 {
                        made.push(NewCharge {
                            id: ordered_id("tr"),
                            key: format!("call:{}:{kind}", call.record.id),
                            debit: &charge.org_account,
                            credit,
                            amount,
                            kind,
                            hold_id,
                        });
                    }
                }
            }
            charges.push(made);
        }

        let mut tx = self.begin().await?;
        let mut written: HashSet<String> = HashSet::with_capacity(calls.len());
        for (chunk, chunk_charges) in insert_chunks(calls).zip(insert_chunks(&charges)) {
            let sql = format!(
                "INSERT INTO usage_records ({INSERT_COLUMNS}){} ON CONFLICT (id) DO NOTHING RETURNING id",
                values_clause(chunk.len(), INSERT_ARITY, self.backend())
            );
            let mut query = sqlx::query(&sql);
            for (call, made) in chunk.iter().zip(chunk_charges) {
                query = bind_record(query, &call.record, made.first().map(|c| c.id.as_str()), false);
            }
            for row in query.fetch_all(&mut *tx).await? {
                written.insert(get(&row, "id")?);
            }
        }
        for chunk in insert_chunks(refused) {
            let sql = format!(
                "INSERT INTO usage_records ({INSERT_COLUMNS}){} ON CONFLICT (id) DO NOTHING RETURNING id",
                values_clause(chunk.len(), INSERT_ARITY, self.backend())
            );
            let mut query = sqlx::query(&sql);
            for record in chunk {
                query = bind_record(query, record, None, true);
            }
            query.fetch_all(&mut *tx).await?;
        }
        // Only the calls whose records were written now are charged now.
        let fresh: Vec<usize> = (0..calls.len()).filter(|&i| written.contains(&calls[i].record.id)).collect();
        let new_transfers: Vec<&NewCharge<'_>> = fresh.iter().flat_map(|&i| charges[i].iter()).collect();
        for chunk in insert_chunks(&new_transfers) {
            let sql = format!(
                "INSERT INTO ledger_transfers ({TRANSFER_COLUMNS}){}",
                values_clause(chunk.len(), TRANSFER_ARITY, self.backend())
            );
            let mut query = sqlx::query(&sql);
            for t in chunk {
                query = query
                    .bind(&t.id)
                    .bind(&t.key)
                    .bind(t.debit)
                    .bind(t.credit)
                    .bind(t.amount)
                    .bind(t.kind)
                    .bind("")
                    .bind(t.hold_id)
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }

        // Draws on leases, in id order (holds are locked before accounts, in a fixed order).
        let mut draws: BTreeMap<&str, (&str, i64)> = BTreeMap::new();
        let mut deltas: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for &i in &fresh {
            let Some(charge) = &calls[i].charge else { continue };
            let cost = calls[i].record.cost.0;
            if cost == 0 {
                continue;
            }
            if let Some((lease, draw)) = &charge.lease {
                let entry = draws.entry(lease.as_str()).or_insert((charge.org_account.as_str(), 0));
                entry.1 += draw.0.clamp(0, cost);
            }
            deltas.entry(charge.org_account.as_str()).or_default().0 -= cost;
            deltas.entry(charge.publisher_account.as_str()).or_default().0 += cost - calls[i].record.fee.0;
            deltas.entry(charge.platform_account.as_str()).or_default().0 += calls[i].record.fee.0;
        }
        for (lease, (account, draw)) in draws {
            let drawn = draw_lease(&mut tx, lease, draw).await?;
            deltas.entry(account).or_default().1 -= drawn;
        }
        let mut deltas: Vec<Delta<'_>> = deltas
            .into_iter()
            .filter(|(_, (balance, pending))| *balance != 0 || *pending != 0)
            .map(|(account_id, (balance, pending))| Delta { account_id, balance, pending, required: None })
            .collect();
        apply(&mut tx, &mut deltas).await?;
        tx.commit().await?;
        Ok(Settled { records: fresh.len(), transfers: new_transfers.len() })
    }

    /// A key's usage since `since` (Unix ms): requests and input, output and cache tokens.
    /// Refused calls are not requests here. (Found through its installation's index: one
    /// index fewer to maintain per call.)
    pub async fn key_usage_since(&self, installation_id: &str, key_id: &str, since: i64) -> Result<KeyUsage> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS calls, CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS i, \
             CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS o, CAST(COALESCE(SUM(cache_tokens), 0) AS BIGINT) AS c \
             FROM usage_records WHERE installation_id = $1 AND created_at >= $2 AND key_id = $3 AND refused = 0",
        )
        .bind(installation_id)
        .bind(since)
        .bind(key_id)
        .fetch_one(&self.read)
        .await?;
        Ok(KeyUsage {
            requests: get(&row, "calls")?,
            input_tokens: get(&row, "i")?,
            output_tokens: get(&row, "o")?,
            cache_tokens: get(&row, "c")?,
        })
    }

    /// How many free calls of `function` on `agent_id` the org has used since `since`.
    pub async fn free_calls_used(&self, org_id: &str, agent_id: &str, function: &str, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM usage_records WHERE org_id = $1 AND agent_id = $2 AND function_name = $3 \
             AND free_tier = 1 AND created_at >= $4",
        )
        .bind(org_id)
        .bind(agent_id)
        .bind(function)
        .bind(since)
        .fetch_one(&self.read)
        .await?)
    }

    /// Checks that every usage record has exactly its transfers: its charge and fee sum to
    /// its cost, its first transfer exists, no call transfer lacks its record, and a free
    /// call has none. (Each call's transfers are unique by idempotency key, so a call can
    /// never be charged twice.)
    pub async fn settlement_audit(&self) -> Result<SettlementAudit> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS records, \
               CAST(COALESCE(SUM(CASE WHEN u.cost > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS charged, \
               CAST(COALESCE(SUM(CASE WHEN u.cost <> COALESCE(( \
                   SELECT SUM(t.amount) FROM ledger_transfers t \
                   WHERE t.idempotency_key IN ('call:' || u.id || ':charge', 'call:' || u.id || ':platform_fee')), 0) \
                 OR (u.cost > 0 AND NOT EXISTS (SELECT 1 FROM ledger_transfers f WHERE f.id = u.transfer_id)) \
                 OR (u.cost = 0 AND u.transfer_id IS NOT NULL) \
               THEN 1 ELSE 0 END), 0) AS BIGINT) AS mismatched \
             FROM usage_records u",
        )
        .fetch_one(&self.read)
        .await?;
        let orphans: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ledger_transfers t WHERE t.idempotency_key LIKE 'call:%' AND NOT EXISTS \
             (SELECT 1 FROM usage_records u WHERE u.id = substr(t.idempotency_key, 6, \
               length(t.idempotency_key) - 5 - CASE WHEN t.kind = 'charge' THEN 7 ELSE 13 END))",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(SettlementAudit {
            records: get(&row, "records")?,
            charged: get(&row, "charged")?,
            mismatched: get(&row, "mismatched")?,
            orphans,
        })
    }

    /// Whether the usage record `id` is of a refused call (`None`: no such record).
    pub async fn usage_refused(&self, id: &str) -> Result<Option<bool>> {
        let refused: Option<i64> = sqlx::query_scalar("SELECT refused FROM usage_records WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(refused.map(|r| r != 0))
    }

    /// A usage record by id (the call's request id).
    pub async fn usage_record(&self, id: &str) -> Result<Option<(UsageRecord, Option<String>)>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM usage_records WHERE id = $1");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        Ok(Some((record_from(&row)?, get(&row, "transfer_id")?)))
    }
}

/// Binds one usage record's [`INSERT_COLUMNS`].
fn bind_record<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    r: &'q UsageRecord,
    transfer_id: Option<&'q str>,
    refused: bool,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&r.id)
        .bind(&r.id)
        .bind(r.created_at)
        .bind(&r.org_id)
        .bind(&r.user_id)
        .bind(&r.key_id)
        .bind(&r.installation_id)
        .bind(&r.agent_id)
        .bind(&r.version)
        .bind(&r.function_name)
        .bind(&r.method)
        .bind(r.input_tokens)
        .bind(r.output_tokens)
        .bind(r.cache_tokens)
        .bind(r.counted_input_tokens)
        .bind(r.counted_output_tokens)
        .bind(r.latency_ms)
        .bind(r.http_status)
        .bind(r.error_code.as_deref())
        .bind(r.cost.0)
        .bind(r.fee.0)
        .bind(i64::from(r.free_tier))
        .bind(i64::from(r.divergent))
        .bind(r.parent_task_id.as_deref())
        .bind(transfer_id)
        .bind(i64::from(refused))
}

/// How settled calls and their ledger transfers agree (see [`Store::settlement_audit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SettlementAudit {
    /// Usage records.
    pub records: i64,
    /// Records with a cost.
    pub charged: i64,
    /// Records whose cost is not exactly the sum of their transfers, or whose first
    /// transfer is missing.
    pub mismatched: i64,
    /// Call transfers with no usage record.
    pub orphans: i64,
}

/// Requests and tokens of one key over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyUsage {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
}

/// Reads a usage record row (the columns of [`RECORD_COLUMNS`]).
pub(crate) fn record_from(row: &sqlx::any::AnyRow) -> Result<UsageRecord> {
    Ok(UsageRecord {
        id: get(row, "id")?,
        created_at: get(row, "created_at")?,
        org_id: get(row, "org_id")?,
        user_id: get(row, "user_id")?,
        key_id: get(row, "key_id")?,
        installation_id: get(row, "installation_id")?,
        agent_id: get(row, "agent_id")?,
        version: get(row, "version")?,
        function_name: get(row, "function_name")?,
        method: get(row, "method")?,
        input_tokens: get(row, "input_tokens")?,
        output_tokens: get(row, "output_tokens")?,
        cache_tokens: get(row, "cache_tokens")?,
        counted_input_tokens: get(row, "counted_input_tokens")?,
        counted_output_tokens: get(row, "counted_output_tokens")?,
        latency_ms: get(row, "latency_ms")?,
        http_status: get(row, "http_status")?,
        error_code: get(row, "error_code")?,
        cost: Nanos(get(row, "cost")?),
        fee: Nanos(get(row, "fee")?),
        free_tier: get::<i64>(row, "free_tier")? != 0,
        divergent: get::<i64>(row, "divergent")? != 0,
        parent_task_id: get(row, "parent_task_id")?,
    })
}

/// Draws up to `amount` from a pending lease; returns what it drew (less when the lease
/// holds less, nothing when it is no longer pending).
async fn draw_lease(conn: &mut sqlx::AnyConnection, lease_id: &str, amount: i64) -> Result<i64> {
    if amount <= 0 {
        return Ok(0);
    }
    let full = sqlx::query(
        "UPDATE ledger_holds SET amount = amount - $1, posted_amount = posted_amount + $1 \
         WHERE id = $2 AND state = 'pending' AND amount >= $1",
    )
    .bind(amount)
    .bind(lease_id)
    .execute(&mut *conn)
    .await?;
    if full.rows_affected() == 1 {
        return Ok(amount);
    }
    let left: Option<i64> = sqlx::query_scalar("SELECT amount FROM ledger_holds WHERE id = $1 AND state = 'pending'")
        .bind(lease_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(left) = left.filter(|l| *l > 0) else { return Ok(0) };
    let drawn = left.min(amount);
    let partial = sqlx::query(
        "UPDATE ledger_holds SET amount = amount - $1, posted_amount = posted_amount + $1 \
         WHERE id = $2 AND state = 'pending' AND amount >= $1",
    )
    .bind(drawn)
    .bind(lease_id)
    .execute(&mut *conn)
    .await?;
    Ok(if partial.rows_affected() == 1 { drawn } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::{MAX_ROWS_PER_INSERT, insert_chunks, insert_sizes};

    #[test]
    fn batches_split_into_few_statement_sizes() {
        for total in 0..1000 {
            let sizes: Vec<usize> = insert_sizes(total).collect();
            assert_eq!(sizes.iter().sum::<usize>(), total);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MAX_ROWS_PER_INSERT), "{total}: {sizes:?}");
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest first");
        }
        let items: Vec<u32> = (0..300).collect();
        let joined: Vec<u32> = insert_chunks(&items).flatten().copied().collect();
        assert_eq!(joined, items);
    }
}
