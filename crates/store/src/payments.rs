//! Card payments (purchases and auto-recharges), the card an org saved, and per org the
//! auto-recharge settings and the state of its alerts.
//!
//! Money invariant: a payment credits its org once. Crediting is one transaction that
//! moves the payment to `succeeded` with a conditional update (only one caller wins),
//! makes the ledger transfer from the card-payments account under the idempotency key the
//! caller names (the provider's id of the checkout or payment intent), clears the org's
//! recharge in flight, re-arms auto-recharge if the balance is back above its threshold,
//! and tells the org's owners and admins.

use crate::ledger::{AccountKind, NewTransfer, PLATFORM, Transfer, account_in, transfer_in};
use crate::notices::{Audience, Notice, notify_in};
use crate::row::{flag, get};
use crate::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use tollgate_domain::Nanos;
use tollgate_domain::secret::new_id;
use tollgate_domain::time::now_ms;

/// A card payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub org_id: String,
    /// Who started a checkout; `None` for an auto-recharge.
    pub user_id: Option<String>,
    /// `checkout` or `recharge`.
    pub kind: String,
    /// `stripe` or `local`.
    pub provider: String,
    /// The provider's id: a checkout session or a payment intent.
    pub reference: Option<String>,
    pub amount: Nanos,
    /// `open`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub failure: Option<String>,
    pub transfer_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const PAYMENT_COLUMNS: &str =
    "id, org_id, user_id, kind, provider, reference, amount, status, failure, transfer_id, created_at, updated_at";

fn payment_from(row: &AnyRow) -> Result<Payment> {
    Ok(Payment {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        user_id: get(row, "user_id")?,
        kind: get(row, "kind")?,
        provider: get(row, "provider")?,
        reference: get(row, "reference")?,
        amount: Nanos(get(row, "amount")?),
        status: get(row, "status")?,
        failure: get(row, "failure")?,
        transfer_id: get(row, "transfer_id")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// A card saved at a provider for an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub customer: String,
    /// `None` until the provider says which card (the customer is known first).
    pub payment_method: Option<String>,
    pub updated_at: i64,
}

/// Auto-recharge as set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RechargeSettings {
    pub enabled: bool,
    /// Recharge when the balance falls below this.
    pub threshold: Nanos,
    /// What each recharge buys.
    pub amount: Nanos,
    /// At most this much auto-recharged per calendar month (UTC), if set.
    pub monthly_limit: Option<Nanos>,
}

/// A payment made final: how to credit it.
#[derive(Debug, Clone)]
pub struct Crediting<'a> {
    pub payment_id: &'a str,
    /// The provider's id, recorded if the payment had none yet.
    pub reference: &'a str,
    /// The ledger transfer's idempotency key.
    pub transfer_key: &'a str,
    /// The history line: "Card payment", "Auto-recharge", …
    pub memo: &'a str,
    /// Told to the org's owners and admins when this call credits it.
    pub notice: Option<&'a Notice>,
}

/// What crediting did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credited {
    /// This call credited the org.
    Now(Transfer),
    /// It was credited before; nothing changed.
    Already,
}

/// An org whose balance just crossed below its low-balance threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub org_id: String,
    pub balance: Nanos,
    pub threshold: Nanos,
    /// Auto-recharge, if on.
    pub recharge: Option<RechargeSettings>,
    /// A recharge already in flight.
    pub in_flight: Option<String>,
}

/// An org with a budget and how much of it is spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetWatch {
    pub org_id: String,
    pub account_id: String,
    pub limit: Nanos,
    /// The highest alert already sent for this month and limit (0, 80 or 100).
    pub alerted: i64,
}

/// The state of an org's auto-recharge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RechargeStatus {
    pub in_flight: Option<Payment>,
    pub last_success: Option<Payment>,
    pub last_failure: Option<Payment>,
    /// Failed recharges since the last success.
    pub failures: i64,
    /// Auto-recharged (succeeded or in flight) since the first of this month (UTC).
    pub this_month: Nanos,
}

impl Store {
    /// Records a new, `open` payment.
    pub async fn create_payment(
        &self,
        org_id: &str,
        user_id: Option<&str>,
        kind: &str,
        provider: &str,
        amount: Nanos,
    ) -> Result<Payment> {
        let id = new_id("pay")?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO payments (id, org_id, user_id, kind, provider, amount, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $7)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(user_id)
        .bind(kind)
        .bind(provider)
        .bind(amount.0)
        .bind(now)
        .execute(&self.write)
        .await?;
        self.payment(&id).await
    }

    /// Records the provider's id of a payment that has none yet.
    pub async fn set_payment_reference(&self, id: &str, reference: &str) -> Result<()> {
        sqlx::query("UPDATE payments SET reference = $1, updated_at = $2 WHERE id = $3 AND reference IS NULL")
            .bind(reference)
            .bind(now_ms())
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// A payment by id.
    pub async fn payment(&self, id: &str) -> Result<Payment> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
        payment_from(&sqlx::query(&sql).bind(id).fetch_one(&self.read).await?)
    }

    /// A payment by the provider's id.
    pub async fn payment_by_reference(&self, provider: &str, reference: &str) -> Result<Option<Payment>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE provider = $1 AND reference = $2");
        let row = sqlx::query(&sql).bind(provider).bind(reference).fetch_optional(&self.read).await?;
        row.as_ref().map(payment_from).transpose()
    }

    /// An org's payments, newest first.
    pub async fn org_payments(&self, org_id: &str, limit: i64) -> Result<Vec<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(org_id).bind(limit).fetch_all(&self.read).await?;
        rows.iter().map(payment_from).collect()
    }

    /// Credits a paid payment to its org, exactly once (see the module's invariant). A
    /// payment marked failed or canceled is still credited when the provider says it was
    /// paid after all: money received is never lost.
    pub async fn credit_payment(&self, c: &Crediting<'_>) -> Result<Credited> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let won = sqlx::query(
            "UPDATE payments SET status = 'succeeded', failure = NULL, reference = COALESCE(reference, $1), updated_at = $2 \
             WHERE id = $3 AND status <> 'succeeded'",
        )
        .bind(c.reference)
        .bind(now)
        .bind(c.payment_id)
        .execute(&mut *tx)
        .await?;
        if won.rows_affected() == 0 {
            let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
            sqlx::query(&sql).bind(c.payment_id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            return Ok(Credited::Already);
        }
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
        let payment = payment_from(&sqlx::query(&sql).bind(c.payment_id).fetch_one(&mut *tx).await?)?;
        let card = account_in(&mut tx, AccountKind::CardPayments, PLATFORM).await?;
        let credit = account_in(&mut tx, AccountKind::OrgCredit, &payment.org_id).await?;
        let transfer = transfer_in(
            &mut tx,
            &NewTransfer {
                idempotency_key: c.transfer_key,
                debit_account_id: &card.id,
                credit_account_id: &credit.id,
                amount: payment.amount,
                kind: "payment",
                memo: c.memo,
                allow_overdraft: true,
            },
            None,
        )
        .await?;
        sqlx::query("UPDATE payments SET transfer_id = $1 WHERE id = $2")
            .bind(&transfer.id)
            .bind(&payment.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE org_billing SET recharge_payment_id = NULL, updated_at = $1 WHERE org_id = $2 AND recharge_payment_id = $3",
        )
        .bind(now)
        .bind(&payment.org_id)
        .bind(&payment.id)
        .execute(&mut *tx)
        .await?;
        // Credited back above the auto-recharge threshold: the next fall is a new crossing,
        // even if it comes before the watcher's next look.
        sqlx::query(
            "UPDATE org_billing SET balance_low = 0, updated_at = $1 WHERE org_id = $2 AND balance_low = 1 \
             AND recharge_enabled = 1 AND recharge_threshold <= (SELECT balance FROM ledger_accounts WHERE id = $3)",
        )
        .bind(now)
        .bind(&payment.org_id)
        .bind(&credit.id)
        .execute(&mut *tx)
        .await?;
        if let Some(notice) = c.notice {
            notify_in(&mut tx, &Audience::OrgAdmins(payment.org_id.clone()), notice).await?;
        }
        tx.commit().await?;
        Ok(Credited::Now(transfer))
    }

    /// Ends an `open` payment as `failed` (with why) or `canceled`, clears the org's
    /// recharge in flight if it was this one, and tells the org's owners and admins.
    /// False (and nothing changes) when the payment was no longer open.
    pub async fn end_payment(
        &self,
        id: &str,
        status: &str,
        failure: Option<&str>,
        notice: Option<&Notice>,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE payments SET status = $1, failure = $2, updated_at = $3 WHERE id = $4 AND status = 'open'",
        )
        .bind(status)
        .bind(failure)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let org_id: String =
            sqlx::query_scalar("SELECT org_id FROM payments WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
        sqlx::query(
            "UPDATE org_billing SET recharge_payment_id = NULL, updated_at = $1 WHERE org_id = $2 AND recharge_payment_id = $3",
        )
        .bind(now)
        .bind(&org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(notice) = notice {
            notify_in(&mut tx, &Audience::OrgAdmins(org_id), notice).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records the card an org saved at `provider` (the customer, and the card once known).
    pub async fn save_payment_method(
        &self,
        org_id: &str,
        provider: &str,
        customer: &str,
        payment_method: Option<&str>,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO payment_methods (org_id, provider, customer, payment_method, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (org_id, provider) DO UPDATE SET customer = excluded.customer, \
             payment_method = COALESCE(excluded.payment_method, payment_methods.payment_method), updated_at = excluded.updated_at",
        )
        .bind(org_id)
        .bind(provider)
        .bind(customer)
        .bind(payment_method)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The card an org saved at `provider`, if any.
    pub async fn payment_method(&self, org_id: &str, provider: &str) -> Result<Option<PaymentMethod>> {
        let row = sqlx::query(
            "SELECT customer, payment_method, updated_at FROM payment_methods WHERE org_id = $1 AND provider = $2",
        )
        .bind(org_id)
        .bind(provider)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(PaymentMethod {
                customer: get(&r, "customer")?,
                payment_method: get(&r, "payment_method")?,
                updated_at: get(&r, "updated_at")?,
            })
        })
        .transpose()
    }

    /// Saves auto-recharge: the JSON the API shows and the settings the watcher reads, in
    /// one transaction. Turning it on re-arms the low-balance crossing, so an org already
    /// below the threshold recharges at the watcher's next look.
    pub async fn set_recharge(&self, org_id: &str, json: &str, s: &RechargeSettings) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE orgs SET auto_recharge = $1 WHERE id = $2")
            .bind(json)
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO org_billing (org_id, recharge_enabled, recharge_threshold, recharge_amount, recharge_monthly_limit, \
             balance_low, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (org_id) DO UPDATE SET recharge_enabled = excluded.recharge_enabled, \
             recharge_threshold = excluded.recharge_threshold, recharge_amount = excluded.recharge_amount, \
             recharge_monthly_limit = excluded.recharge_monthly_limit, \
             balance_low = CASE WHEN excluded.recharge_enabled = 1 THEN 0 ELSE org_billing.balance_low END, \
             updated_at = excluded.updated_at",
        )
        .bind(org_id)
        .bind(i64::from(s.enabled))
        .bind(s.threshold.0)
        .bind(s.amount.0)
        .bind(s.monthly_limit.map(|n| n.0))
        .bind(i64::from(!s.enabled))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An org's auto-recharge settings, if saved.
    pub async fn recharge_settings(&self, org_id: &str) -> Result<Option<RechargeSettings>> {
        let row = sqlx::query(
            "SELECT recharge_enabled, recharge_threshold, recharge_amount, recharge_monthly_limit FROM org_billing \
             WHERE org_id = $1 AND (recharge_amount > 0 OR recharge_enabled = 1)",
        )
        .bind(org_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(recharge_from).transpose()
    }

    /// Starts a recharge of `amount` for an org, if none is in flight: records the payment
    /// and marks it the org's one in flight, in one transaction. `None` when one already is.
    pub async fn begin_recharge(&self, org_id: &str, provider: &str, amount: Nanos) -> Result<Option<Payment>> {
        let id = new_id("pay")?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        let claimed = sqlx::query(
            "UPDATE org_billing SET recharge_payment_id = $1, updated_at = $2 WHERE org_id = $3 AND recharge_payment_id IS NULL",
        )
        .bind(&id)
        .bind(now)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO payments (id, org_id, kind, provider, amount, status, created_at, updated_at) \
             VALUES ($1, $2, 'recharge', $3, $4, 'open', $5, $5)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(provider)
        .bind(amount.0)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(self.payment(&id).await?))
    }

    /// The state of an org's auto-recharge; `month_start` bounds `this_month`.
    pub async fn recharge_status(&self, org_id: &str, month_start: i64) -> Result<RechargeStatus> {
        let in_flight: Option<Option<String>> =
            sqlx::query_scalar("SELECT recharge_payment_id FROM org_billing WHERE org_id = $1")
                .bind(org_id)
                .fetch_optional(&self.read)
                .await?;
        let in_flight = match in_flight.flatten() {
            Some(id) => Some(self.payment(&id).await?),
            None => None,
        };
        let last = |status: &'static str| {
            let sql = format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE org_id = $1 AND kind = 'recharge' AND status = $2 \
                 ORDER BY updated_at DESC, id DESC LIMIT 1"
            );
            async move {
                let row = sqlx::query(&sql).bind(org_id).bind(status).fetch_optional(&self.read).await?;
                row.as_ref().map(payment_from).transpose()
            }
        };
        let last_success = last("succeeded").await?;
        let last_failure = last("failed").await?;
        let failures: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments WHERE org_id = $1 AND kind = 'recharge' AND status = 'failed' AND updated_at > $2",
        )
        .bind(org_id)
        .bind(last_success.as_ref().map_or(0, |p| p.updated_at))
        .fetch_one(&self.read)
        .await?;
        let this_month: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(amount) AS BIGINT) FROM payments WHERE org_id = $1 AND kind = 'recharge' \
             AND status IN ('open', 'succeeded') AND created_at >= $2",
        )
        .bind(org_id)
        .bind(month_start)
        .fetch_one(&self.read)
        .await?;
        Ok(RechargeStatus {
            in_flight,
            last_success,
            last_failure,
            failures,
            this_month: Nanos(this_month.unwrap_or(0)),
        })
    }

    /// Recharges in flight since before `before` (no answer from the provider).
    pub async fn stale_recharges(&self, before: i64) -> Result<Vec<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id IN (SELECT recharge_payment_id FROM org_billing \
             WHERE recharge_payment_id IS NOT NULL) AND created_at < $1 ORDER BY created_at"
        );
        let rows = sqlx::query(&sql).bind(before).fetch_all(&self.read).await?;
        rows.iter().map(payment_from).collect()
    }

    /// The watcher's look at balances: gives every org a billing row (new ones count as
    /// below their threshold: no alert for an org never seen above it), re-arms the orgs
    /// now at or above their threshold, and returns those that fell below it since, each
    /// claimed once across replicas. The threshold is the auto-recharge threshold when
    /// auto-recharge is on, else `default_threshold`.
    pub async fn balance_crossings(&self, default_threshold: Nanos) -> Result<Vec<Crossing>> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO org_billing (org_id, balance_low, updated_at) \
             SELECT o.id, 1, $1 FROM orgs o WHERE NOT EXISTS (SELECT 1 FROM org_billing b WHERE b.org_id = o.id) \
             ON CONFLICT (org_id) DO NOTHING",
        )
        .bind(now)
        .execute(&self.write)
        .await?;
        sqlx::query(
            "UPDATE org_billing SET balance_low = 0, updated_at = $1 WHERE balance_low = 1 AND EXISTS ( \
             SELECT 1 FROM ledger_accounts a WHERE a.kind = 'org_credit' AND a.owner_id = org_billing.org_id \
             AND a.balance >= CASE WHEN org_billing.recharge_enabled = 1 THEN org_billing.recharge_threshold ELSE $2 END)",
        )
        .bind(now)
        .bind(default_threshold.0)
        .execute(&self.write)
        .await?;
        let rows = sqlx::query(
            "SELECT b.org_id, a.balance, b.recharge_enabled, b.recharge_threshold, b.recharge_amount, \
             b.recharge_monthly_limit, b.recharge_payment_id \
             FROM org_billing b JOIN ledger_accounts a ON a.kind = 'org_credit' AND a.owner_id = b.org_id \
             WHERE b.balance_low = 0 \
             AND a.balance < CASE WHEN b.recharge_enabled = 1 THEN b.recharge_threshold ELSE $1 END",
        )
        .bind(default_threshold.0)
        .fetch_all(&self.read)
        .await?;
        let mut crossings = Vec::new();
        for row in &rows {
            let org_id: String = get(row, "org_id")?;
            let claimed = sqlx::query(
                "UPDATE org_billing SET balance_low = 1, updated_at = $1 WHERE org_id = $2 AND balance_low = 0",
            )
            .bind(now)
            .bind(&org_id)
            .execute(&self.write)
            .await?;
            if claimed.rows_affected() == 0 {
                continue;
            }
            let settings = recharge_from(row)?;
            let recharge = settings.enabled.then_some(settings);
            crossings.push(Crossing {
                org_id,
                balance: Nanos(get(row, "balance")?),
                threshold: recharge.map_or(default_threshold, |r| r.threshold),
                recharge,
                in_flight: get(row, "recharge_payment_id")?,
            });
        }
        Ok(crossings)
    }

    /// Orgs with a monthly budget not yet alerted at 100% for `month_start` and their
    /// current limit.
    pub async fn budgets_to_watch(&self, month_start: i64) -> Result<Vec<BudgetWatch>> {
        let rows = sqlx::query(
            "SELECT o.id, a.id AS account_id, o.monthly_budget, \
             CASE WHEN b.budget_alert_month = $1 AND b.budget_alert_limit = o.monthly_budget THEN b.budget_alert_level ELSE 0 END AS alerted \
             FROM orgs o JOIN ledger_accounts a ON a.kind = 'org_credit' AND a.owner_id = o.id \
             LEFT JOIN org_billing b ON b.org_id = o.id \
             WHERE o.monthly_budget IS NOT NULL AND o.monthly_budget > 0",
        )
        .bind(month_start)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let alerted: i64 = get(r, "alerted")?;
            if alerted < 100 {
                out.push(BudgetWatch {
                    org_id: get(r, "id")?,
                    account_id: get(r, "account_id")?,
                    limit: Nanos(get(r, "monthly_budget")?),
                    alerted,
                });
            }
        }
        Ok(out)
    }

    /// Records that the budget alert at `level` (80 or 100) went out for `month_start` and
    /// `limit`, and tells the org's owners and admins — once: false when this or a higher
    /// level was recorded already for that month and limit.
    pub async fn budget_alert(
        &self,
        org_id: &str,
        month_start: i64,
        limit: Nanos,
        level: i64,
        notice: &Notice,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO org_billing (org_id, updated_at) VALUES ($1, $2) ON CONFLICT (org_id) DO NOTHING")
            .bind(org_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let won = sqlx::query(
            "UPDATE org_billing SET budget_alert_month = $1, budget_alert_limit = $2, budget_alert_level = $3, updated_at = $4 \
             WHERE org_id = $5 AND (budget_alert_month IS NULL OR budget_alert_month <> $1 OR budget_alert_limit IS NULL \
             OR budget_alert_limit <> $2 OR budget_alert_level < $3)",
        )
        .bind(month_start)
        .bind(limit.0)
        .bind(level)
        .bind(now)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        if won.rows_affected() == 0 {
            return Ok(false);
        }
        notify_in(&mut tx, &Audience::OrgAdmins(org_id.to_string()), notice).await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn recharge_from(row: &AnyRow) -> Result<RechargeSettings> {
    Ok(RechargeSettings {
        enabled: flag(row, "recharge_enabled")?,
        threshold: Nanos(get(row, "recharge_threshold")?),
        amount: Nanos(get(row, "recharge_amount")?),
        monthly_limit: get::<Option<i64>>(row, "recharge_monthly_limit")?.map(Nanos),
    })
}
