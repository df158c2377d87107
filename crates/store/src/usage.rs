//! Spend and usage queries (usage records themselves are written by the gateway).

use crate::{Result, Store};
use tollgate_domain::Nanos;

/// Transfer kinds that are spending by an org on agents.
pub const SPEND_KINDS: [&str; 2] = ["charge", "platform_fee"];

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
}
