//! The ledger writer alone: how many settled calls a second the gateway's one writer
//! commits to SQLite — usage records, their charge and fee transfers, the draws on a credit
//! lease and the balances — measured in this process on a fresh database, then audited.

use serde::Serialize;
use std::path::Path;
use std::time::Instant;
use tollgate_domain::Nanos;
use tollgate_gateway::Writer;
use tollgate_store::Store;
use tollgate_store::calls::{Charge, SettledCall, UsageRecord};
use tollgate_store::ledger::{AccountKind, NewTransfer, PLATFORM};

/// The writer must settle at least this many calls a second on SQLite.
pub const MIN_SETTLED_PER_SECOND: f64 = 20_000.0;

/// What the writer benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct WriterResult {
    /// Settled calls submitted and committed.
    pub calls: usize,
    pub seconds: f64,
    pub settled_per_second: f64,
    /// The records and transfers were all there and the ledger balanced afterwards.
    pub audited: bool,
}

fn fail(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Submits `calls` charged calls to a writer over a new SQLite database in `dir`, waits until
/// all are committed, and audits what was written.
pub async fn measure(dir: &Path, calls: usize) -> Result<WriterResult, String> {
    std::fs::create_dir_all(dir).map_err(|e| fail("creating the database directory", e))?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("writer.db").display());
    let store = Store::connect(&url).await.map_err(|e| fail("opening the database", e))?;
    store.migrate().await.map_err(|e| fail("migrating", e))?;
    let (org, publisher, platform, grants) = (
        store.ledger_account(AccountKind::OrgCredit, "org_bench").await,
        store.ledger_account(AccountKind::PublisherEarnings, "org_publisher").await,
        store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await,
        store.ledger_account(AccountKind::Grants, PLATFORM).await,
    );
    let accounts = org.and_then(|o| Ok((o, publisher?, platform?, grants?)));
    let (org, publisher, platform, grants) = accounts.map_err(|e| fail("creating accounts", e))?;
    // $1,000 of credit and a lease covering every call (1,000 nano-USD each).
    let cost = 1_000i64;
    store
        .transfer(&NewTransfer {
            idempotency_key: "bench-grant",
            debit_account_id: &grants.id,
            credit_account_id: &org.id,
            amount: Nanos(1_000_000_000_000),
            kind: "grant",
            memo: "",
            allow_overdraft: true,
        })
        .await
        .map_err(|e| fail("granting credit", e))?;
    let total = i64::try_from(calls).unwrap_or(i64::MAX).saturating_mul(cost);
    let lease = store
        .open_lease(&org.id, Nanos(total), tollgate_domain::time::now_ms() + 3_600_000)
        .await
        .map_err(|e| fail("opening a lease", e))?;
    let now = tollgate_domain::time::now_ms();
    let settled: Vec<SettledCall> = (0..calls)
        .map(|i| SettledCall {
            record: UsageRecord {
                id: format!("req_bench_{i:09}"),
                created_at: now + i64::try_from(i / 1000).unwrap_or(0),
                org_id: "org_bench".into(),
                user_id: "usr_bench".into(),
                key_id: format!("key_bench_{}", i % 100),
                installation_id: "inst_bench".into(),
                agent_id: "agt_bench".into(),
                version: "1.0.0".into(),
                function_name: "work".into(),
                method: "tools/call".into(),
                input_tokens: 260,
                output_tokens: 240,
                counted_input_tokens: 262,
                counted_output_tokens: 238,
                latency_ms: 3,
                http_status: 200,
                cost: Nanos(cost),
                fee: Nanos(cost / 5),
                ..UsageRecord::default()
            },
            charge: Some(Charge {
                org_account: org.id.clone(),
                lease: Some((lease.id.clone(), Nanos(cost))),
                publisher_account: publisher.id.clone(),
                platform_account: platform.id.clone(),
            }),
        })
        .collect();

    let writer = Writer::start(store.clone(), std::time::Duration::ZERO).map_err(|e| fail("starting the writer", e))?;
    let started = Instant::now();
    for call in settled {
        writer.submit(call, None);
    }
    writer.flush().await;
    let seconds = started.elapsed().as_secs_f64();

    let audit = store.settlement_audit().await.map_err(|e| fail("auditing", e))?;
    let (sum, consistent) = store.ledger_audit().await.map_err(|e| fail("auditing the ledger", e))?;
    let org_after = store.ledger_account_by_id(&org.id).await.map_err(|e| fail("reading the org", e))?;
    let audited = usize::try_from(audit.charged).ok() == Some(calls)
        && audit.mismatched == 0
        && audit.orphans == 0
        && sum == 0
        && consistent
        && org_after.balance.0 == 1_000_000_000_000 - total
        && org_after.pending.0 == 0;
    store.close().await;
    Ok(WriterResult { calls, seconds, settled_per_second: calls as f64 / seconds.max(1e-9), audited })
}
