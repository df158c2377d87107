//! The double-entry ledger: accounts, idempotent transfers and holds.
//!
//! Invariants (each has a test in `tests/ledger.rs`):
//! - every balance change is a transfer between two accounts, so the sum of all balances
//!   is always zero;
//! - an org's available balance (`balance − pending`) never drops below zero, except by
//!   the overrun of a hold posted for more than it held;
//! - a transfer or hold retried with the same idempotency key changes nothing;
//! - a hold is posted, voided or expired exactly once.
//!
//! Lock order: within a transaction, account rows are updated in ascending id order, so
//! concurrent transactions on PostgreSQL never deadlock.

use crate::row::get;
use crate::{Result, Store, StoreError};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use tollgate_domain::Nanos;
use tollgate_domain::secret::{new_id, ordered_id};
use tollgate_domain::time::now_ms;

/// The kinds of ledger account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// An org's prepaid credits.
    OrgCredit,
    /// An org's earnings as a publisher.
    PublisherEarnings,
    /// The platform's fee revenue (one account).
    PlatformRevenue,
    /// External source: free credit grants (signup, operator grants).
    Grants,
    /// External source: card payments.
    CardPayments,
    /// External sink: payouts to publishers.
    Payouts,
}

impl AccountKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::OrgCredit => "org_credit",
            AccountKind::PublisherEarnings => "publisher_earnings",
            AccountKind::PlatformRevenue => "platform_revenue",
            AccountKind::Grants => "grants",
            AccountKind::CardPayments => "card_payments",
            AccountKind::Payouts => "payouts",
        }
    }

    /// External accounts stand for money outside Tollgate; their balances go negative.
    pub fn is_external(self) -> bool {
        matches!(self, AccountKind::Grants | AccountKind::CardPayments | AccountKind::Payouts)
    }
}

/// A ledger account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub kind: String,
    pub owner_id: String,
    pub balance: Nanos,
    pub pending: Nanos,
}

impl Account {
    /// Balance minus open holds.
    pub fn available(&self) -> Nanos {
        Nanos(self.balance.0 - self.pending.0)
    }
}

/// A transfer to make. `idempotency_key` names it: a retry with the same key changes nothing.
#[derive(Debug, Clone)]
pub struct NewTransfer<'a> {
    pub idempotency_key: &'a str,
    pub debit_account_id: &'a str,
    pub credit_account_id: &'a str,
    pub amount: Nanos,
    /// What it is for: `signup_grant`, `grant`, `charge`, `platform_fee`, …
    pub kind: &'a str,
    pub memo: &'a str,
    /// Whether the debit account may go below zero available (external sources).
    pub allow_overdraft: bool,
}

/// A recorded transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub idempotency_key: String,
    pub debit_account_id: String,
    pub credit_account_id: String,
    pub amount: Nanos,
    pub kind: String,
    pub memo: String,
    pub hold_id: Option<String>,
    pub created_at: i64,
}

/// A hold's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl HoldState {
    fn parse(text: &str) -> Result<HoldState> {
        Ok(match text {
            "pending" => HoldState::Pending,
            "posted" => HoldState::Posted,
            "voided" => HoldState::Voided,
            "expired" => HoldState::Expired,
            other => return Err(StoreError::Corrupt(format!("hold state {other}"))),
        })
    }
}

/// A hold: money reserved on an account until posted, voided or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub idempotency_key: String,
    pub account_id: String,
    pub amount: Nanos,
    pub state: HoldState,
    pub posted_amount: Nanos,
    pub expires_at: i64,
}

/// Whether a resolution changed the hold or found it already resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// This call resolved the hold.
    Done,
    /// The hold had already been resolved (its state is returned); nothing changed.
    AlreadyResolved(HoldState),
}

const TRANSFER_COLUMNS: &str =
    "id, idempotency_key, debit_account_id, credit_account_id, amount, kind, memo, hold_id, created_at";
const HOLD_COLUMNS: &str = "id, idempotency_key, account_id, amount, state, posted_amount, expires_at";

fn transfer_from(row: &AnyRow) -> Result<Transfer> {
    Ok(Transfer {
        id: get(row, "id")?,
        idempotency_key: get(row, "idempotency_key")?,
        debit_account_id: get(row, "debit_account_id")?,
        credit_account_id: get(row, "credit_account_id")?,
        amount: Nanos(get(row, "amount")?),
        kind: get(row, "kind")?,
        memo: get(row, "memo")?,
        hold_id: get(row, "hold_id")?,
        created_at: get(row, "created_at")?,
    })
}

fn hold_from(row: &AnyRow) -> Result<Hold> {
    Ok(Hold {
        id: get(row, "id")?,
        idempotency_key: get(row, "idempotency_key")?,
        account_id: get(row, "account_id")?,
        amount: Nanos(get(row, "amount")?),
        state: HoldState::parse(&get::<String>(row, "state")?)?,
        posted_amount: Nanos(get(row, "posted_amount")?),
        expires_at: get(row, "expires_at")?,
    })
}

fn account_from(row: &AnyRow) -> Result<Account> {
    Ok(Account {
        id: get(row, "id")?,
        kind: get(row, "kind")?,
        owner_id: get(row, "owner_id")?,
        balance: Nanos(get(row, "balance")?),
        pending: Nanos(get(row, "pending")?),
    })
}

/// One account row change inside a transaction.
pub(crate) struct Delta<'a> {
    pub account_id: &'a str,
    pub balance: i64,
    pub pending: i64,
    /// Refuse unless `balance − pending ≥ required` before the change.
    pub required: Option<i64>,
}

/// Applies `deltas` in ascending account-id order (the lock order). Fails with
/// [`StoreError::Insufficient`] when a required available balance is missing, and with
/// [`StoreError::Overflow`] when a balance would leave the range of an `i64` (checked in
/// the statement itself, so the database never computes an overflowing sum: PostgreSQL
/// would fail the statement, SQLite would silently turn the value into a float).
pub(crate) async fn apply(conn: &mut AnyConnection, deltas: &mut [Delta<'_>]) -> Result<()> {
    deltas.sort_by(|a, b| a.account_id.cmp(b.account_id));
    for d in deltas.iter() {
        // `column + delta` stays in range exactly when `column` is within these bounds.
        let range = |delta: i64| (i64::MIN - delta.min(0), i64::MAX - delta.max(0));
        let ((balance_lo, balance_hi), (pending_lo, pending_hi)) = (range(d.balance), range(d.pending));
        let result = sqlx::query(
            "UPDATE ledger_accounts SET balance = balance + $1, pending = pending + $2 \
             WHERE id = $3 AND ($4 IS NULL OR balance - pending >= $4) \
             AND balance BETWEEN $5 AND $6 AND pending BETWEEN $7 AND $8",
        )
        .bind(d.balance)
        .bind(d.pending)
        .bind(d.account_id)
        .bind(d.required)
        .bind(balance_lo)
        .bind(balance_hi)
        .bind(pending_lo)
        .bind(pending_hi)
        .execute(&mut *conn)
        .await?;
        if result.rows_affected() != 1 {
            let row = sqlx::query("SELECT balance, pending FROM ledger_accounts WHERE id = $1")
                .bind(d.account_id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else { return Err(StoreError::NotFound) };
            let (balance, pending): (i64, i64) = (get(&row, "balance")?, get(&row, "pending")?);
            let in_range = balance.checked_add(d.balance).is_some() && pending.checked_add(d.pending).is_some();
            return Err(if in_range { StoreError::Insufficient } else { StoreError::Overflow });
        }
    }
    Ok(())
}

fn checked_positive(amount: Nanos) -> Result<i64> {
    if amount.0 <= 0 {
        return Err(StoreError::Conflict("amount must be positive".into()));
    }
    Ok(amount.0)
}

/// A transfer row just written, or the one its idempotency key already names.
enum Inserted {
    New(Transfer),
    Existing(Transfer),
}

/// Writes a transfer row without moving money, inside the caller's transaction.
async fn insert_transfer(conn: &mut AnyConnection, t: &NewTransfer<'_>, hold_id: Option<&str>) -> Result<Inserted> {
    let amount = checked_positive(t.amount)?;
    if t.debit_account_id == t.credit_account_id {
        return Err(StoreError::Conflict("a transfer needs two different accounts".into()));
    }
    let now = now_ms();
    let id = ordered_id("tr");
    let inserted = sqlx::query(
        "INSERT INTO ledger_transfers (id, idempotency_key, debit_account_id, credit_account_id, amount, kind, memo, hold_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&id)
    .bind(t.idempotency_key)
    .bind(t.debit_account_id)
    .bind(t.credit_account_id)
    .bind(amount)
    .bind(t.kind)
    .bind(t.memo)
    .bind(hold_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        let sql = format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE idempotency_key = $1");
        let existing = transfer_from(&sqlx::query(&sql).bind(t.idempotency_key).fetch_one(&mut *conn).await?)?;
        return Ok(Inserted::Existing(existing));
    }
    Ok(Inserted::New(Transfer {
        id,
        idempotency_key: t.idempotency_key.to_string(),
        debit_account_id: t.debit_account_id.to_string(),
        credit_account_id: t.credit_account_id.to_string(),
        amount: t.amount,
        kind: t.kind.to_string(),
        memo: t.memo.to_string(),
        hold_id: hold_id.map(str::to_string),
        created_at: now,
    }))
}

/// Inserts a transfer row and moves the money, inside the caller's transaction.
/// A retry with the same idempotency key and the same content returns the original.
pub(crate) async fn transfer_in(
    conn: &mut AnyConnection,
    t: &NewTransfer<'_>,
    hold_id: Option<&str>,
) -> Result<Transfer> {
    match insert_transfer(conn, t, hold_id).await? {
        Inserted::Existing(existing) => {
            let same = existing.debit_account_id == t.debit_account_id
                && existing.credit_account_id == t.credit_account_id
                && existing.amount == t.amount;
            if same {
                Ok(existing)
            } else {
                Err(StoreError::Conflict("idempotency key reused for a different transfer".into()))
            }
        }
        Inserted::New(transfer) => {
            let amount = transfer.amount.0;
            apply(
                conn,
                &mut [
                    Delta {
                        account_id: t.debit_account_id,
                        balance: -amount,
                        pending: 0,
                        required: (!t.allow_overdraft).then_some(amount),
                    },
                    Delta { account_id: t.credit_account_id, balance: amount, pending: 0, required: None },
                ],
            )
            .await?;
            Ok(transfer)
        }
    }
}

/// Gets or creates the account of `kind` for `owner_id` inside the caller's transaction.
pub(crate) async fn account_in(conn: &mut AnyConnection, kind: AccountKind, owner_id: &str) -> Result<Account> {
    sqlx::query(
        "INSERT INTO ledger_accounts (id, kind, owner_id, balance, pending, created_at) VALUES ($1, $2, $3, 0, 0, $4) \
         ON CONFLICT (kind, owner_id) DO NOTHING",
    )
    .bind(new_id("acct")?)
    .bind(kind.as_str())
    .bind(owner_id)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(
        "SELECT id, kind, owner_id, balance, pending FROM ledger_accounts WHERE kind = $1 AND owner_id = $2",
    )
    .bind(kind.as_str())
    .bind(owner_id)
    .fetch_one(&mut *conn)
    .await?;
    account_from(&row)
}

/// A hold by id, read on the caller's connection. A call that already holds a
/// transaction must not ask the pool for a second connection: on PostgreSQL, enough
/// concurrent callers doing so exhaust the pool and wait on each other until it times out.
async fn hold_in(conn: &mut AnyConnection, hold_id: &str) -> Result<Hold> {
    let sql = format!("SELECT {HOLD_COLUMNS} FROM ledger_holds WHERE id = $1");
    hold_from(&sqlx::query(&sql).bind(hold_id).fetch_one(&mut *conn).await?)
}

/// The owner id of the platform's single accounts (revenue, external sources).
pub const PLATFORM: &str = "platform";

/// Posts a pending hold inside the caller's transaction (see [`Store::post_hold`]);
/// returns the resolution and the id of the first transfer it made.
pub(crate) async fn post_hold_in(
    conn: &mut AnyConnection,
    hold_id: &str,
    total: Nanos,
    splits: &[(&str, Nanos, &str)],
) -> Result<(Resolution, Option<String>)> {
    let mut first = None;
    let Some(hold) = claim_hold(conn, hold_id, "posted", total).await? else {
        return Ok((Resolution::AlreadyResolved(hold_in(conn, hold_id).await?.state), None));
    };
    // Every account row changes in one `apply`, so in the lock order; updating the held
    // account first and then each split's pair would lock in split order and deadlock
    // against concurrent posts and transfers on PostgreSQL.
    let mut deltas =
        vec![Delta { account_id: &hold.account_id, balance: -total.0, pending: -hold.amount.0, required: None }];
    for (i, (credit, amount, kind)) in splits.iter().enumerate() {
        if amount.0 == 0 {
            continue;
        }
        let key = format!("{}:post:{i}", hold.idempotency_key);
        let transfer = NewTransfer {
            idempotency_key: &key,
            debit_account_id: &hold.account_id,
            credit_account_id: credit,
            amount: *amount,
            kind,
            memo: "",
            allow_overdraft: true,
        };
        match insert_transfer(conn, &transfer, Some(&hold.id)).await? {
            Inserted::Existing(_) => {
                return Err(StoreError::Conflict(format!("idempotency key {key} is already used")));
            }
            Inserted::New(t) => first.get_or_insert(t.id),
        };
        deltas.push(Delta { account_id: credit, balance: amount.0, pending: 0, required: None });
    }
    apply(conn, &mut deltas).await?;
    Ok((Resolution::Done, first))
}

/// Voids or expires a pending hold inside the caller's transaction, exactly once: what it
/// still reserves is released. A lease that was drawn on ends `posted` (partly), one that
/// was not `voided`; an expired hold or lease ends `expired`. What a lease's draws posted
/// stays in `posted_amount`.
pub(crate) async fn release_hold_in(conn: &mut AnyConnection, hold_id: &str, state: &str) -> Result<Resolution> {
    let claimed =
        sqlx::query("UPDATE ledger_holds SET state = $1, resolved_at = $2 WHERE id = $3 AND state = 'pending'")
            .bind(state)
            .bind(now_ms())
            .bind(hold_id)
            .execute(&mut *conn)
            .await?;
    if claimed.rows_affected() == 0 {
        return Ok(Resolution::AlreadyResolved(hold_in(conn, hold_id).await?.state));
    }
    // The row is locked by the update above: its amount is what it still reserves.
    let hold = hold_in(conn, hold_id).await?;
    if state == "voided" && hold.posted_amount.0 > 0 {
        sqlx::query("UPDATE ledger_holds SET state = 'posted' WHERE id = $1").bind(hold_id).execute(&mut *conn).await?;
    }
    apply(conn, &mut [Delta { account_id: &hold.account_id, balance: 0, pending: -hold.amount.0, required: None }])
        .await?;
    Ok(Resolution::Done)
}

/// Moves a hold from pending to `state`; `None` when it was not pending.
async fn claim_hold(conn: &mut AnyConnection, hold_id: &str, state: &str, posted: Nanos) -> Result<Option<Hold>> {
    let claimed = sqlx::query(
        "UPDATE ledger_holds SET state = $1, posted_amount = $2, resolved_at = $3 WHERE id = $4 AND state = 'pending' AND kind = 'hold'",
    )
    .bind(state)
    .bind(posted.0)
    .bind(now_ms())
    .bind(hold_id)
    .execute(&mut *conn)
    .await?;
    if claimed.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(hold_in(conn, hold_id).await?))
}

impl Store {
    /// The account of `kind` for `owner_id` (an org id, or [`PLATFORM`]), created if missing.
    pub async fn ledger_account(&self, kind: AccountKind, owner_id: &str) -> Result<Account> {
        let mut conn = self.write.acquire().await?;
        account_in(&mut conn, kind, owner_id).await
    }

    /// The account of `kind` for `owner_id`, if it exists (never creates one).
    pub async fn find_ledger_account(&self, kind: AccountKind, owner_id: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT id, kind, owner_id, balance, pending FROM ledger_accounts WHERE kind = $1 AND owner_id = $2",
        )
        .bind(kind.as_str())
        .bind(owner_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    /// An account by id.
    pub async fn ledger_account_by_id(&self, id: &str) -> Result<Account> {
        let row = sqlx::query("SELECT id, kind, owner_id, balance, pending FROM ledger_accounts WHERE id = $1")
            .bind(id)
            .fetch_one(&self.read)
            .await?;
        account_from(&row)
    }

    /// Makes a transfer, once: a retry with the same key returns the original and changes
    /// nothing; the same key for a different transfer is a conflict.
    pub async fn transfer(&self, t: &NewTransfer<'_>) -> Result<Transfer> {
        let mut tx = self.begin().await?;
        let transfer = transfer_in(&mut tx, t, None).await?;
        tx.commit().await?;
        Ok(transfer)
    }

    /// Reserves `amount` on `account_id` until `expires_at` if its available balance covers
    /// it; [`StoreError::Insufficient`] otherwise. Idempotent by `idempotency_key`.
    pub async fn create_hold(
        &self,
        idempotency_key: &str,
        account_id: &str,
        amount: Nanos,
        expires_at: i64,
    ) -> Result<Hold> {
        self.reserve(idempotency_key, account_id, amount, expires_at, "hold").await
    }

    /// Opens a credit lease of `amount` on `account_id` until `expires_at`, if the account's
    /// available balance covers it ([`StoreError::Insufficient`] otherwise). A lease is a
    /// hold that settled calls draw down while it is pending ([`Store::settle_calls`]); it
    /// can grow ([`Store::extend_lease`]) and ends when voided or expired, releasing what it
    /// still reserves.
    pub async fn open_lease(&self, account_id: &str, amount: Nanos, expires_at: i64) -> Result<Hold> {
        let key = new_id("lease")?;
        self.reserve(&key, account_id, amount, expires_at, "lease").await
    }

    /// Grows a pending lease by `amount` and moves its expiry to `expires_at`, if the
    /// account's available balance covers it ([`StoreError::Insufficient`] otherwise, and
    /// nothing changes). [`StoreError::NotFound`] when the lease is no longer pending.
    pub async fn extend_lease(&self, lease_id: &str, amount: Nanos, expires_at: i64) -> Result<()> {
        let amount = checked_positive(amount)?;
        let mut tx = self.begin().await?;
        let grown = sqlx::query(
            "UPDATE ledger_holds SET amount = amount + $1, expires_at = $2 WHERE id = $3 AND state = 'pending' AND kind = 'lease'",
        )
        .bind(amount)
        .bind(expires_at)
        .bind(lease_id)
        .execute(&mut *tx)
        .await?;
        if grown.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let account_id = hold_in(&mut tx, lease_id).await?.account_id;
        apply(&mut tx, &mut [Delta { account_id: &account_id, balance: 0, pending: amount, required: Some(amount) }])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reserve(
        &self,
        idempotency_key: &str,
        account_id: &str,
        amount: Nanos,
        expires_at: i64,
        kind: &str,
    ) -> Result<Hold> {
        let amount_raw = checked_positive(amount)?;
        let mut tx = self.begin().await?;
        let id = new_id("hold")?;
        let inserted = sqlx::query(
            "INSERT INTO ledger_holds (id, idempotency_key, account_id, amount, state, posted_amount, expires_at, created_at, kind) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(idempotency_key)
        .bind(account_id)
        .bind(amount_raw)
        .bind(expires_at)
        .bind(now_ms())
        .bind(kind)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let sql = format!("SELECT {HOLD_COLUMNS} FROM ledger_holds WHERE idempotency_key = $1");
            let existing = hold_from(&sqlx::query(&sql).bind(idempotency_key).fetch_one(&mut *tx).await?)?;
            tx.commit().await?;
            return if existing.account_id == account_id && existing.amount == amount {
                Ok(existing)
            } else {
                Err(StoreError::Conflict("idempotency key reused for a different hold".into()))
            };
        }
        apply(&mut tx, &mut [Delta { account_id, balance: 0, pending: amount_raw, required: Some(amount_raw) }])
            .await?;
        tx.commit().await?;
        Ok(Hold {
            id,
            idempotency_key: idempotency_key.to_string(),
            account_id: account_id.to_string(),
            amount,
            state: HoldState::Pending,
            posted_amount: Nanos::ZERO,
            expires_at,
        })
    }

    /// A hold by id.
    pub async fn hold(&self, id: &str) -> Result<Hold> {
        let sql = format!("SELECT {HOLD_COLUMNS} FROM ledger_holds WHERE id = $1");
        hold_from(&sqlx::query(&sql).bind(id).fetch_one(&self.read).await?)
    }

    /// Posts a pending hold: releases its reservation and moves each `(credit account,
    /// amount)` of `splits` from the held account, exactly once. The total may differ from
    /// the amount held (less: the rest is released; more: the bounded overrun of a call).
    /// Zero splits are skipped. Transfer keys are the hold's key + `:post:{i}`; if one of
    /// them already names a transfer, nothing happens and the post is a conflict.
    pub async fn post_hold(&self, hold_id: &str, splits: &[(&str, Nanos, &str)]) -> Result<Resolution> {
        let total = splits.iter().try_fold(
            Nanos::ZERO,
            |sum, (_, amount, _)| {
                if amount.0 < 0 { None } else { sum.checked_add(*amount) }
            },
        );
        let total = total.ok_or_else(|| StoreError::Conflict("split amounts must be non-negative".into()))?;
        let mut tx = self.begin().await?;
        let (resolution, _) = post_hold_in(&mut tx, hold_id, total, splits).await?;
        tx.commit().await?;
        Ok(resolution)
    }

    /// Voids a pending hold, releasing its reservation, exactly once.
    pub async fn void_hold(&self, hold_id: &str) -> Result<Resolution> {
        self.release_hold(hold_id, "voided").await
    }

    async fn release_hold(&self, hold_id: &str, state: &str) -> Result<Resolution> {
        let mut tx = self.begin().await?;
        let resolution = release_hold_in(&mut tx, hold_id, state).await?;
        tx.commit().await?;
        Ok(resolution)
    }

    /// Expires every pending hold whose time has passed; returns how many.
    pub async fn expire_holds(&self, now: i64) -> Result<usize> {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM ledger_holds WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT 1000",
        )
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        let mut expired = 0;
        for id in due {
            if self.release_hold(&id, "expired").await? == Resolution::Done {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Transfers touching `account_id`, newest first.
    pub async fn account_transfers(&self, account_id: &str, limit: i64, offset: i64) -> Result<Vec<Transfer>> {
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE debit_account_id = $1 OR credit_account_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql).bind(account_id).bind(limit).bind(offset).fetch_all(&self.read).await?;
        rows.iter().map(transfer_from).collect()
    }

    /// How many transfers touch `account_id`.
    pub async fn count_account_transfers(&self, account_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM ledger_transfers WHERE debit_account_id = $1 OR credit_account_id = $1",
        )
        .bind(account_id)
        .fetch_one(&self.read)
        .await?)
    }

    /// The sum of all balances (always zero) and the sum of all transfer amounts checked
    /// against balances: `(sum of balances, every balance equals its transfers)`.
    pub async fn ledger_audit(&self) -> Result<(i64, bool)> {
        let sum: Option<i64> = sqlx::query_scalar("SELECT CAST(SUM(balance) AS BIGINT) FROM ledger_accounts")
            .fetch_one(&self.read)
            .await?;
        let mismatched: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ledger_accounts a WHERE a.balance <> \
             COALESCE((SELECT CAST(SUM(amount) AS BIGINT) FROM ledger_transfers WHERE credit_account_id = a.id), 0) - \
             COALESCE((SELECT CAST(SUM(amount) AS BIGINT) FROM ledger_transfers WHERE debit_account_id = a.id), 0)",
        )
        .fetch_one(&self.read)
        .await?;
        let pending_mismatch: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ledger_accounts a WHERE a.pending <> \
             COALESCE((SELECT CAST(SUM(amount) AS BIGINT) FROM ledger_holds WHERE account_id = a.id AND state = 'pending'), 0)",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((sum.unwrap_or(0), mismatched == 0 && pending_mismatch == 0))
    }
}
