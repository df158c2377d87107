//! Holds without a database round trip per call: each replica leases a slice of an org's
//! available credit (a ledger hold of kind `lease`, visible to every replica and to the
//! API), and carves each call's hold out of that slice in memory. Settled calls draw the
//! lease down in the same transaction that charges them; an idle lease is released, and a
//! lease whose replica died expires on its own.
//!
//! Invariant: the holds of calls in flight on this replica never exceed what its leases
//! reserve in the ledger, and a lease never exceeds the org's available balance (nor, with
//! a monthly budget, what is left of it) when it is taken or grown. So a call is admitted
//! only if the org's available balance covers its hold, on any number of replicas; the
//! charge may exceed the hold by the call's own overrun.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_domain::Nanos;
use tollgate_domain::time::{now_ms, utc_month_start};
use tollgate_store::{Store, StoreError};

/// Why a hold was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The available balance does not cover the hold.
    Insufficient,
    /// The org's monthly budget does not cover it.
    Budget,
    /// The ledger could not be reached.
    Unavailable(String),
}

/// A call's hold, carved from a lease. Give it back with [`Credit::settle`].
#[derive(Debug)]
pub(crate) struct Reservation {
    org_id: String,
    /// The lease it came from (`None` for a zero hold).
    lease_id: Option<String>,
    amount: i64,
}

/// What a settled call draws from its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draw {
    pub lease_id: String,
    pub amount: Nanos,
}

/// One org's lease on this replica.
#[derive(Debug, Default)]
struct Slice {
    lease_id: Option<String>,
    /// What the lease still reserves in the ledger, less draws already handed to the writer.
    remaining: i64,
    /// Holds of calls in flight.
    reserved: i64,
    /// When the ledger lets the lease expire unless renewed.
    expires_at: i64,
    last_used: Option<Instant>,
    /// Holds taken in the current second and the one before (to size the next grant).
    window_start: Option<Instant>,
    this_window: i64,
    last_window: i64,
}

impl Slice {
    fn room(&self) -> i64 {
        self.remaining - self.reserved
    }

    fn note_use(&mut self, amount: i64) {
        let now = Instant::now();
        self.last_used = Some(now);
        match self.window_start {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            Some(start) if now.duration_since(start) < Duration::from_secs(2) => {
                self.last_window = self.this_window;
                self.this_window = 0;
                self.window_start = Some(now);
            }
            _ => {
                self.last_window = 0;
                self.this_window = 0;
                self.window_start = Some(now);
            }
        }
        self.this_window += amount;
    }
}

/// An org's slice, with a lock that lets one grant at a time go to the ledger.
#[derive(Debug, Default)]
struct OrgCredit {
    slice: Mutex<Slice>,
    granting: tokio::sync::Mutex<()>,
}

/// Settings for leases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeasePolicy {
    /// How long the ledger keeps a lease its replica stopped renewing.
    pub ttl: Duration,
    /// An unused lease is released after this long.
    pub idle: Duration,
    /// A grant covers at least this many holds of the size that asked for it…
    pub min_holds: i64,
    /// … and at least this long at the recent rate of holds.
    pub horizon: Duration,
}

impl Default for LeasePolicy {
    fn default() -> Self {
        LeasePolicy {
            ttl: Duration::from_secs(120),
            idle: Duration::from_secs(30),
            min_holds: 16,
            horizon: Duration::from_secs(2),
        }
    }
}

/// Every org's slice on this replica.
pub(crate) struct Credit {
    store: Store,
    policy: LeasePolicy,
    orgs: Mutex<HashMap<String, Arc<OrgCredit>>>,
}

fn unavailable(e: StoreError) -> Refusal {
    Refusal::Unavailable(e.to_string())
}

impl Credit {
    pub fn new(store: Store, policy: LeasePolicy) -> Credit {
        Credit { store, policy, orgs: Mutex::new(HashMap::new()) }
    }

    fn org(&self, org_id: &str) -> Arc<OrgCredit> {
        let mut orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        orgs.entry(org_id.to_string()).or_default().clone()
    }

    /// Holds `amount` for a call of `org_id` whose credit account is `account_id`, with the
    /// org's monthly budget if it has one. Almost always answered from memory; when the
    /// slice is short, one grant at a time goes to the ledger.
    pub async fn reserve(
        &self,
        org_id: &str,
        account_id: &str,
        amount: Nanos,
        budget: Option<Nanos>,
    ) -> Result<Reservation, Refusal> {
        if amount.0 <= 0 {
            return Ok(Reservation { org_id: org_id.to_string(), lease_id: None, amount: 0 });
        }
        let org = self.org(org_id);
        if let Some(r) = Self::take(&org, org_id, amount.0) {
            return Ok(r);
        }
        let _granting = org.granting.lock().await;
        if let Some(r) = Self::take(&org, org_id, amount.0) {
            return Ok(r);
        }
        self.grant(&org, account_id, amount.0, budget).await?;
        Self::take(&org, org_id, amount.0).ok_or(Refusal::Insufficient)
    }

    fn take(org: &OrgCredit, org_id: &str, amount: i64) -> Option<Reservation> {
        let mut slice = org.slice.lock().unwrap_or_else(|p| p.into_inner());
        let lease_id = slice.lease_id.clone()?;
        if slice.room() < amount {
            return None;
        }
        slice.reserved += amount;
        slice.note_use(amount);
        Some(Reservation { org_id: org_id.to_string(), lease_id: Some(lease_id), amount })
    }

    /// Grows this replica's lease (or opens one) so it has room for `amount`.
    async fn grant(
        &self,
        org: &OrgCredit,
        account_id: &str,
        amount: i64,
        budget: Option<Nanos>,
    ) -> Result<(), Refusal> {
        let (lease_id, need, recent) = {
            let slice = org.slice.lock().unwrap_or_else(|p| p.into_inner());
            (slice.lease_id.clone(), amount - slice.room(), slice.last_window.max(slice.this_window))
        };
        let account = self.store.ledger_account_by_id(account_id).await.map_err(unavailable)?;
        let available = account.available().0;
        let budget_room = match budget {
            None => i64::MAX,
            Some(budget) => {
                let spent = self.store.spend_since(account_id, utc_month_start(now_ms())).await.map_err(unavailable)?;
                budget.0.saturating_sub(spent.0).saturating_sub(account.pending.0)
            }
        };
        if budget_room < need {
            return Err(Refusal::Budget);
        }
        if available < need {
            return Err(Refusal::Insufficient);
        }
        let horizon_ms = i64::try_from(self.policy.horizon.as_millis()).unwrap_or(i64::MAX);
        let wanted =
            need.max(amount.saturating_mul(self.policy.min_holds)).max(recent.saturating_mul(horizon_ms) / 1000);
        // Near the end of a balance, take at most half of what is left (but never less than
        // needed), so other replicas serving the same org are not starved.
        let grant = wanted.min(need.max(available / 2)).min(available).min(budget_room);
        let expires_at = now_ms() + i64::try_from(self.policy.ttl.as_millis()).unwrap_or(i64::MAX);
        let grown = match &lease_id {
            Some(id) => match self.store.extend_lease(id, Nanos(grant), expires_at).await {
                Ok(()) => Some(id.clone()),
                Err(StoreError::NotFound) => None,
                Err(StoreError::Insufficient) => return Err(Refusal::Insufficient),
                Err(e) => return Err(unavailable(e)),
            },
            None => None,
        };
        let slice_update = |lease: String, fresh: bool| {
            let mut slice = org.slice.lock().unwrap_or_else(|p| p.into_inner());
            if fresh {
                // The old lease is gone (it expired): what it reserved is no longer reserved.
                slice.remaining = 0;
            }
            slice.lease_id = Some(lease);
            slice.remaining += grant;
            slice.expires_at = expires_at;
        };
        match grown {
            Some(id) => slice_update(id, false),
            None => match self.store.open_lease(account_id, Nanos(grant), expires_at).await {
                Ok(hold) => slice_update(hold.id, true),
                Err(StoreError::Insufficient) => return Err(Refusal::Insufficient),
                Err(e) => return Err(unavailable(e)),
            },
        }
        Ok(())
    }

    /// Gives back a call's hold; returns what its `cost` draws from the lease: at most its
    /// hold plus what no other call holds. The rest of an overrun comes from the balance.
    pub fn settle(&self, reservation: Reservation, cost: Nanos) -> Option<Draw> {
        let org = self.org(&reservation.org_id);
        let mut slice = org.slice.lock().unwrap_or_else(|p| p.into_inner());
        slice.reserved -= reservation.amount;
        let lease_id = reservation.lease_id?;
        if slice.lease_id.as_deref() != Some(lease_id.as_str()) || cost.0 <= 0 {
            return None;
        }
        // The call's own hold plus any slack; never what other calls in flight hold.
        let drawn = cost.0.min(slice.room().max(0));
        slice.remaining -= drawn;
        (drawn > 0).then_some(Draw { lease_id, amount: Nanos(drawn) })
    }

    /// Releases leases unused for a while, and renews the others before they expire.
    /// Called every few seconds, and with `all` at shutdown (after every settlement is
    /// written).
    pub async fn maintain(&self, all: bool) {
        let orgs: Vec<(String, Arc<OrgCredit>)> = {
            let orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
            orgs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let now = now_ms();
        let ttl_ms = i64::try_from(self.policy.ttl.as_millis()).unwrap_or(i64::MAX);
        for (org_id, org) in orgs {
            let Ok(_granting) = org.granting.try_lock() else { continue };
            let (lease_id, idle, renew) = {
                let slice = org.slice.lock().unwrap_or_else(|p| p.into_inner());
                let idle = slice.reserved == 0 && slice.last_used.is_none_or(|t| t.elapsed() >= self.policy.idle);
                (slice.lease_id.clone(), all || idle, slice.expires_at - now < ttl_ms / 2)
            };
            let Some(lease_id) = lease_id else { continue };
            if idle {
                {
                    let mut slice = org.slice.lock().unwrap_or_else(|p| p.into_inner());
                    if !all && slice.reserved != 0 {
                        continue;
                    }
                    slice.lease_id = None;
                    slice.remaining = 0;
                }
                if let Err(e) = self.store.void_hold(&lease_id).await {
                    tracing::warn!(error = %e, lease.id = %lease_id, "releasing a credit lease failed; it expires on its own");
                }
                let mut orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
                if Arc::strong_count(&org) <= 2 {
                    orgs.remove(&org_id);
                }
            } else if renew {
                let expires_at = now + ttl_ms;
                match self.store.extend_lease(&lease_id, Nanos::ZERO, expires_at).await {
                    Ok(()) => org.slice.lock().unwrap_or_else(|p| p.into_inner()).expires_at = expires_at,
                    Err(StoreError::NotFound) => {
                        let mut slice = org.slice.lock().unwrap_or_else(|p| p.into_inner());
                        slice.lease_id = None;
                        slice.remaining = 0;
                    }
                    Err(e) => tracing::warn!(error = %e, lease.id = %lease_id, "renewing a credit lease failed"),
                }
            }
        }
    }

    /// Drops an org's lease from memory after its settings changed (a lower budget), so the
    /// next call takes a fresh grant under the new settings.
    pub async fn forget(&self, org_id: &str) {
        let org = self.orgs.lock().unwrap_or_else(|p| p.into_inner()).get(org_id).cloned();
        let Some(org) = org else { return };
        let _granting = org.granting.lock().await;
        let lease_id = {
            let mut slice = org.slice.lock().unwrap_or_else(|p| p.into_inner());
            slice.remaining = slice.reserved.min(slice.remaining);
            if slice.reserved > 0 { None } else { slice.lease_id.take() }
        };
        if let Some(lease_id) = lease_id
            && let Err(e) = self.store.void_hold(&lease_id).await
        {
            tracing::warn!(error = %e, lease.id = %lease_id, "releasing a credit lease failed; it expires on its own");
        }
    }
}
