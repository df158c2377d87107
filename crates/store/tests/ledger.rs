#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ledger's invariants (see `src/ledger.rs`), on SQLite and, when
//! `TOLLGATE_TEST_POSTGRES_URL` is set, on PostgreSQL:
//!
//! - a seeded random walk of operations checked step by step against an in-memory model
//!   (replay one seed with `TOLLGATE_LEDGER_SEED=<n>`, change its length with
//!   `TOLLGATE_LEDGER_OPS=<n>`);
//! - concurrent holds never overdraw, concurrent posts and voids settle exactly;
//! - one idempotency key used by many concurrent callers moves money once;
//! - a hold raced by posts, voids and the expiry sweeper is resolved exactly once;
//! - a post whose transfer key is already taken changes nothing.

use std::collections::HashMap;
use tokio::task::JoinSet;
use tollgate_domain::Nanos;
use tollgate_store::ledger::{AccountKind, Hold, HoldState, NewTransfer, PLATFORM, Resolution, Transfer};
use tollgate_store::testing::TestStore;
use tollgate_store::{Store, StoreError};

/// One US cent and one dollar in nano-USD.
const CENT: i64 = 10_000_000;
const DOLLAR: i64 = 100 * CENT;
/// An `expires_at` no test reaches.
const FAR_FUTURE: i64 = i64::MAX / 2;

// ---------------------------------------------------------------------------------------
// A small deterministic RNG (splitmix64): no proptest, every run is replayable by seed.
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------
// The model.
// ---------------------------------------------------------------------------------------

/// The largest amount by which the walk ever posts a hold above what it held.
const MAX_OVERRUN: i64 = 5 * CENT;
const DEFAULT_SEEDS: std::ops::RangeInclusive<u64> = 1..=8;
const DEFAULT_OPS: usize = 150;

#[derive(Debug, Clone, PartialEq, Eq)]
struct TransferReq {
    key: String,
    debit: String,
    credit: String,
    amount: i64,
    overdraft: bool,
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HoldReq {
    key: String,
    account: String,
    amount: i64,
    expires_at: i64,
}

#[derive(Debug, Clone)]
struct ModelHold {
    req: HoldReq,
    id: String,
    org: usize,
    state: HoldState,
    posted: i64,
}

/// What the walk must reach, counted per seed, to show it checks what it claims.
const OUTCOMES: [&str; 10] =
    ["transfer", "insufficient", "hold", "post", "overrun", "void", "expired", "retry", "conflict", "already resolved"];

type Stats = std::collections::BTreeMap<&'static str, usize>;

struct Walk {
    seed: u64,
    step: usize,
    desc: String,
    rng: Rng,
    store: TestStore,
    /// Every account the walk touches, in a fixed order, with a readable name.
    accounts: Vec<(String, String)>,
    orgs: Vec<String>,
    grants: String,
    /// Where posted holds go: publisher earnings and platform revenue.
    sinks: Vec<String>,
    payouts: String,
    /// The model: `(balance, pending)` by account id, and transfers per account.
    books: HashMap<String, (i64, i64)>,
    transfer_counts: HashMap<String, i64>,
    /// Successful transfers (including the ones posting holds), by idempotency key.
    transfers: Vec<(TransferReq, String)>,
    transfer_keys: HashMap<String, usize>,
    failed_transfers: Vec<TransferReq>,
    holds: Vec<ModelHold>,
    hold_keys: HashMap<String, usize>,
    failed_holds: Vec<HoldReq>,
    /// Whether an org has had a hold posted above its amount.
    overrun: Vec<bool>,
    clock: i64,
    next_key: u64,
    stats: Stats,
}

impl Walk {
    async fn new(seed: u64) -> Walk {
        let store = TestStore::new().await.unwrap();
        let mut accounts = Vec::new();
        let mut orgs = Vec::new();
        for i in 0..3 {
            let owner = format!("org_{i}");
            let a = store.ledger_account(AccountKind::OrgCredit, &owner).await.unwrap();
            accounts.push((a.id.clone(), format!("credit of {owner}")));
            orgs.push(a.id);
        }
        let grants = store.ledger_account(AccountKind::Grants, PLATFORM).await.unwrap().id;
        accounts.push((grants.clone(), "grants".into()));
        let mut sinks = Vec::new();
        for owner in ["pub_a", "pub_b"] {
            let a = store.ledger_account(AccountKind::PublisherEarnings, owner).await.unwrap();
            accounts.push((a.id.clone(), format!("earnings of {owner}")));
            sinks.push(a.id);
        }
        let platform = store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await.unwrap().id;
        accounts.push((platform.clone(), "platform revenue".into()));
        sinks.push(platform);
        let payouts = store.ledger_account(AccountKind::Payouts, PLATFORM).await.unwrap().id;
        accounts.push((payouts.clone(), "payouts".into()));
        let books = accounts.iter().map(|(id, _)| (id.clone(), (0, 0))).collect();
        let transfer_counts = accounts.iter().map(|(id, _)| (id.clone(), 0)).collect();
        Walk {
            seed,
            step: 0,
            desc: "setup".into(),
            rng: Rng(seed),
            store,
            accounts,
            overrun: vec![false; orgs.len()],
            orgs,
            grants,
            sinks,
            payouts,
            books,
            transfer_counts,
            transfers: Vec::new(),
            transfer_keys: HashMap::new(),
            failed_transfers: Vec::new(),
            holds: Vec::new(),
            hold_keys: HashMap::new(),
            failed_holds: Vec::new(),
            clock: 1_000_000,
            next_key: 0,
            stats: Stats::new(),
        }
    }

    /// Where we are, for every assertion message.
    fn ctx(&self) -> String {
        format!(
            "seed {} step {} [{}] (replay with TOLLGATE_LEDGER_SEED={})",
            self.seed, self.step, self.desc, self.seed
        )
    }

    fn name(&self, id: &str) -> String {
        self.accounts.iter().find(|(a, _)| a == id).map_or_else(|| id.to_string(), |(_, n)| n.clone())
    }

    fn count(&mut self, outcome: &'static str, n: usize) {
        *self.stats.entry(outcome).or_default() += n;
    }

    fn fresh_key(&mut self, what: &str) -> String {
        self.next_key += 1;
        format!("s{}-{what}-{}", self.seed, self.next_key)
    }

    /// A transfer under a fresh key; only the external source may overdraw.
    fn new_req(&mut self, kind: &'static str, debit: String, credit: String, amount: i64) -> TransferReq {
        let overdraft = debit == self.grants;
        TransferReq { key: self.fresh_key(kind), debit, credit, amount, overdraft, kind }
    }

    fn available(&self, id: &str) -> i64 {
        let (balance, pending) = self.books[id];
        balance - pending
    }

    fn org_of(&self, id: &str) -> Option<usize> {
        self.orgs.iter().position(|o| o == id)
    }

    /// A random amount for a debit from `id`: usually affordable, sometimes more than it has.
    fn debit_amount(&mut self, id: &str) -> i64 {
        let available = self.available(id).max(0);
        if available == 0 || self.rng.chance(1, 4) {
            available + self.rng.range(1, 50 * CENT)
        } else {
            self.rng.range(1, available)
        }
    }

    // --- transfers ----------------------------------------------------------------------

    /// Makes `req` and checks the result against what the model says must happen.
    async fn transfer(&mut self, req: &TransferReq) {
        let ctx = self.ctx();
        let nt = NewTransfer {
            idempotency_key: &req.key,
            debit_account_id: &req.debit,
            credit_account_id: &req.credit,
            amount: Nanos(req.amount),
            kind: req.kind,
            memo: "walk",
            allow_overdraft: req.overdraft,
        };
        let result = self.store.transfer(&nt).await;
        if let Some(&i) = self.transfer_keys.get(&req.key) {
            let (orig, id) = &self.transfers[i];
            let same = orig.debit == req.debit && orig.credit == req.credit && orig.amount == req.amount;
            if same {
                let t = result.unwrap_or_else(|e| panic!("{ctx}: a retry must succeed, got {e}"));
                assert_eq!(&t.id, id, "{ctx}: a retry must return the original transfer");
                assert_eq!(t.amount.0, orig.amount, "{ctx}: retry amount");
                self.count("retry", 1);
            } else {
                assert!(
                    matches!(result, Err(StoreError::Conflict(_))),
                    "{ctx}: a reused key must be a conflict, got {result:?}"
                );
                self.count("conflict", 1);
            }
            return;
        }
        if req.amount <= 0 {
            assert!(
                matches!(result, Err(StoreError::Conflict(_))),
                "{ctx}: amount ≤ 0 must be refused, got {result:?}"
            );
            self.count("conflict", 1);
            return;
        }
        if !req.overdraft && self.available(&req.debit) < req.amount {
            assert!(
                matches!(result, Err(StoreError::Insufficient)),
                "{ctx}: {} has {} available, a transfer of {} must be insufficient, got {result:?}",
                self.name(&req.debit),
                self.available(&req.debit),
                req.amount
            );
            self.count("insufficient", 1);
            self.failed_transfers.push(req.clone());
            return;
        }
        let t = result.unwrap_or_else(|e| panic!("{ctx}: the transfer must succeed, got {e}"));
        assert_eq!(
            (
                t.debit_account_id.as_str(),
                t.credit_account_id.as_str(),
                t.amount.0,
                t.idempotency_key.as_str(),
                t.hold_id.as_deref()
            ),
            (req.debit.as_str(), req.credit.as_str(), req.amount, req.key.as_str(), None),
            "{ctx}: the recorded transfer"
        );
        self.record_transfer(req.clone(), t.id);
        self.count("transfer", 1);
    }

    fn record_transfer(&mut self, req: TransferReq, id: String) {
        self.books.get_mut(&req.debit).unwrap().0 -= req.amount;
        self.books.get_mut(&req.credit).unwrap().0 += req.amount;
        *self.transfer_counts.get_mut(&req.debit).unwrap() += 1;
        *self.transfer_counts.get_mut(&req.credit).unwrap() += 1;
        self.transfer_keys.insert(req.key.clone(), self.transfers.len());
        self.transfers.push((req, id));
    }

    // --- holds --------------------------------------------------------------------------

    async fn create_hold(&mut self, req: &HoldReq) {
        let ctx = self.ctx();
        let result = self.store.create_hold(&req.key, &req.account, Nanos(req.amount), req.expires_at).await;
        if let Some(&i) = self.hold_keys.get(&req.key) {
            let orig = &self.holds[i];
            if orig.req.account == req.account && orig.req.amount == req.amount {
                let h = result.unwrap_or_else(|e| panic!("{ctx}: a retried hold must succeed, got {e}"));
                assert_eq!(h.id, orig.id, "{ctx}: a retry must return the original hold");
                assert_eq!(
                    (h.state, h.posted_amount.0),
                    (orig.state, orig.posted),
                    "{ctx}: a retry shows the hold as it is"
                );
                self.count("retry", 1);
            } else {
                assert!(
                    matches!(result, Err(StoreError::Conflict(_))),
                    "{ctx}: a reused hold key must be a conflict, got {result:?}"
                );
                self.count("conflict", 1);
            }
            return;
        }
        if req.amount <= 0 {
            assert!(
                matches!(result, Err(StoreError::Conflict(_))),
                "{ctx}: amount ≤ 0 must be refused, got {result:?}"
            );
            self.count("conflict", 1);
            return;
        }
        if self.available(&req.account) < req.amount {
            assert!(
                matches!(result, Err(StoreError::Insufficient)),
                "{ctx}: {} has {} available, a hold of {} must be insufficient, got {result:?}",
                self.name(&req.account),
                self.available(&req.account),
                req.amount
            );
            self.count("insufficient", 1);
            self.failed_holds.push(req.clone());
            return;
        }
        let h = result.unwrap_or_else(|e| panic!("{ctx}: the hold must succeed, got {e}"));
        assert_eq!(
            (h.account_id.as_str(), h.amount.0, h.state, h.posted_amount.0, h.expires_at),
            (req.account.as_str(), req.amount, HoldState::Pending, 0, req.expires_at),
            "{ctx}: the created hold"
        );
        self.books.get_mut(&req.account).unwrap().1 += req.amount;
        self.hold_keys.insert(req.key.clone(), self.holds.len());
        let org = self.org_of(&req.account).unwrap();
        self.holds.push(ModelHold { req: req.clone(), id: h.id, org, state: HoldState::Pending, posted: 0 });
        self.count("hold", 1);
    }

    /// A hold to resolve: a pending one when there is one (mostly), else any.
    fn pick_hold(&mut self, want_pending: bool) -> Option<usize> {
        let pending: Vec<usize> =
            (0..self.holds.len()).filter(|&i| self.holds[i].state == HoldState::Pending).collect();
        let resolved: Vec<usize> =
            (0..self.holds.len()).filter(|&i| self.holds[i].state != HoldState::Pending).collect();
        let pool = if want_pending { &pending } else { &resolved };
        if pool.is_empty() { None } else { Some(*self.rng.pick(pool)) }
    }

    /// Random splits for posting hold `h`: below, equal to or above what it held.
    fn splits_for(&mut self, h: usize) -> Vec<(String, i64)> {
        let held = self.holds[h].req.amount;
        let org = self.holds[h].org;
        let total = match self.rng.below(3) {
            0 => self.rng.range(0, held - 1),
            1 => held,
            // An overrun only on an org not already below zero: that is what keeps its
            // available balance ≥ −MAX_OVERRUN.
            _ if self.available(&self.orgs[org]) >= 0 => held + self.rng.range(1, MAX_OVERRUN),
            _ => held,
        };
        let parts = self.rng.range(1, 3) as usize;
        let mut cuts: Vec<i64> = (1..parts).map(|_| self.rng.range(0, total)).collect();
        cuts.push(0);
        cuts.push(total);
        cuts.sort_unstable();
        cuts.windows(2)
            .map(|w| {
                let sink = self.rng.pick(&self.sinks).clone();
                (sink, w[1] - w[0])
            })
            .collect()
    }

    async fn post(&mut self, h: usize, splits: &[(String, i64)]) {
        let ctx = self.ctx();
        let hold = self.holds[h].clone();
        let split_refs: Vec<(&str, Nanos, &str)> =
            splits.iter().map(|(credit, amount)| (credit.as_str(), Nanos(*amount), "charge")).collect();
        let result = self.store.post_hold(&hold.id, &split_refs).await;
        if hold.state != HoldState::Pending {
            assert!(
                matches!(result, Ok(Resolution::AlreadyResolved(s)) if s == hold.state),
                "{ctx}: posting a {:?} hold must change nothing, got {result:?}",
                hold.state
            );
            self.count("already resolved", 1);
            return;
        }
        assert!(matches!(result, Ok(Resolution::Done)), "{ctx}: posting a pending hold, got {result:?}");
        let total: i64 = splits.iter().map(|(_, a)| a).sum();
        assert!(total - hold.req.amount <= MAX_OVERRUN, "{ctx}: the walk overran too far");
        if total > hold.req.amount {
            self.overrun[hold.org] = true;
            self.count("overrun", 1);
        }
        self.books.get_mut(&hold.req.account).unwrap().1 -= hold.req.amount;
        let stored = self.store.hold(&hold.id).await.unwrap();
        assert_eq!((stored.state, stored.posted_amount.0), (HoldState::Posted, total), "{ctx}: the posted hold");
        // Each non-zero split is one transfer keyed `{hold key}:post:{i}`.
        let mut made: Vec<Transfer> = self
            .store
            .account_transfers(&hold.req.account, 1000, 0)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.hold_id.as_deref() == Some(hold.id.as_str()))
            .collect();
        made.sort_by(|a, b| a.idempotency_key.cmp(&b.idempotency_key));
        let mut expected: Vec<TransferReq> = splits
            .iter()
            .enumerate()
            .filter(|(_, (_, amount))| *amount > 0)
            .map(|(i, (credit, amount))| TransferReq {
                key: format!("{}:post:{i}", hold.req.key),
                debit: hold.req.account.clone(),
                credit: credit.clone(),
                amount: *amount,
                overdraft: false,
                kind: "charge",
            })
            .collect();
        expected.sort_by(|a, b| a.key.cmp(&b.key));
        let got: Vec<_> =
            made.iter().map(|t| (&t.idempotency_key, &t.debit_account_id, &t.credit_account_id, t.amount.0)).collect();
        let want: Vec<_> = expected.iter().map(|r| (&r.key, &r.debit, &r.credit, r.amount)).collect();
        assert_eq!(got, want, "{ctx}: the transfers of the post");
        for (req, t) in expected.into_iter().zip(made) {
            self.record_transfer(req, t.id);
        }
        let m = &mut self.holds[h];
        m.state = HoldState::Posted;
        m.posted = total;
        self.count("post", 1);
    }

    async fn void(&mut self, h: usize) {
        let ctx = self.ctx();
        let hold = self.holds[h].clone();
        let result = self.store.void_hold(&hold.id).await;
        if hold.state != HoldState::Pending {
            assert!(
                matches!(result, Ok(Resolution::AlreadyResolved(s)) if s == hold.state),
                "{ctx}: voiding a {:?} hold must change nothing, got {result:?}",
                hold.state
            );
            self.count("already resolved", 1);
            return;
        }
        assert!(matches!(result, Ok(Resolution::Done)), "{ctx}: voiding a pending hold, got {result:?}");
        self.books.get_mut(&hold.req.account).unwrap().1 -= hold.req.amount;
        self.holds[h].state = HoldState::Voided;
        self.count("void", 1);
    }

    async fn expire(&mut self) {
        let ctx = self.ctx();
        let due: Vec<usize> = (0..self.holds.len())
            .filter(|&i| self.holds[i].state == HoldState::Pending && self.holds[i].req.expires_at <= self.clock)
            .collect();
        let n = self.store.expire_holds(self.clock).await.unwrap();
        assert_eq!(n, due.len(), "{ctx}: holds expired at {}", self.clock);
        for i in due {
            let (account, amount) = (self.holds[i].req.account.clone(), self.holds[i].req.amount);
            self.books.get_mut(&account).unwrap().1 -= amount;
            self.holds[i].state = HoldState::Expired;
        }
        self.count("expired", n);
    }

    // --- one random step ----------------------------------------------------------------

    async fn step(&mut self) {
        let roll = self.rng.below(100);
        match roll {
            // A grant from the external source (may overdraw it).
            0..=11 => {
                let org = self.rng.pick(&self.orgs).clone();
                let amount = self.rng.range(1, 40 * CENT);
                self.desc = format!("grant {amount} to {}", self.name(&org));
                let req = self.new_req("grant", self.grants.clone(), org, amount);
                self.transfer(&req).await;
            }
            // Org to org, no overdraft.
            12..=25 => {
                let from = self.rng.below(self.orgs.len());
                let to = (from + 1 + self.rng.below(self.orgs.len() - 1)) % self.orgs.len();
                let (debit, credit) = (self.orgs[from].clone(), self.orgs[to].clone());
                let amount = self.debit_amount(&debit);
                self.desc = format!("transfer {amount} from {} to {}", self.name(&debit), self.name(&credit));
                let req = self.new_req("transfer", debit, credit, amount);
                self.transfer(&req).await;
            }
            // A payout of publisher earnings (no overdraft).
            26..=28 => {
                let debit = self.rng.pick(&self.sinks[..2]).clone();
                let amount = self.debit_amount(&debit);
                self.desc = format!("payout {amount} from {}", self.name(&debit));
                let req = self.new_req("payout", debit, self.payouts.clone(), amount);
                self.transfer(&req).await;
            }
            // A hold, sometimes for more than is available.
            29..=46 => {
                let account = self.rng.pick(&self.orgs).clone();
                let amount = self.debit_amount(&account);
                let expires_at = self.clock + self.rng.range(1, 60);
                self.desc = format!("hold {amount} on {} until {expires_at}", self.name(&account));
                let req = HoldReq { key: self.fresh_key("hold"), account, amount, expires_at };
                self.create_hold(&req).await;
            }
            // Post a pending hold with random splits.
            47..=60 => {
                let Some(h) = self.pick_hold(true) else {
                    return self.fallback().await;
                };
                let splits = self.splits_for(h);
                self.desc = format!("post hold #{h} ({}) with {splits:?}", self.holds[h].req.amount);
                self.post(h, &splits).await;
            }
            // Void a pending hold.
            61..=68 => {
                let Some(h) = self.pick_hold(true) else {
                    return self.fallback().await;
                };
                self.desc = format!("void hold #{h}");
                self.void(h).await;
            }
            // The expiry sweeper, a little later.
            69..=74 => {
                self.clock += self.rng.range(5, 60);
                self.desc = format!("expire holds at {}", self.clock);
                self.expire().await;
            }
            // Post or void a resolved hold again: nothing changes.
            75..=79 => {
                let Some(h) = self.pick_hold(false) else {
                    return self.fallback().await;
                };
                if self.rng.chance(1, 2) {
                    let splits = vec![(self.sinks[0].clone(), self.holds[h].req.amount)];
                    self.desc = format!("post resolved hold #{h} again");
                    self.post(h, &splits).await;
                } else {
                    self.desc = format!("void resolved hold #{h} again");
                    self.void(h).await;
                }
            }
            // Retry an earlier successful transfer or hold with the same key.
            80..=87 => {
                if !self.holds.is_empty() && (self.transfers.is_empty() || self.rng.chance(1, 2)) {
                    let req = self.rng.pick(&self.holds).req.clone();
                    self.desc = format!("retry hold {}", req.key);
                    self.create_hold(&req).await;
                } else if !self.transfers.is_empty() {
                    let req = self.rng.pick(&self.transfers).0.clone();
                    self.desc = format!("retry transfer {}", req.key);
                    self.transfer(&req).await;
                } else {
                    self.fallback().await;
                }
            }
            // Reuse a key for something else: a conflict.
            88..=92 => {
                if !self.holds.is_empty() && (self.transfers.is_empty() || self.rng.chance(1, 2)) {
                    let mut req = self.rng.pick(&self.holds).req.clone();
                    if self.rng.chance(1, 2) {
                        req.amount += self.rng.range(1, CENT);
                    } else {
                        let other = (self.org_of(&req.account).unwrap() + 1) % self.orgs.len();
                        req.account = self.orgs[other].clone();
                    }
                    self.desc = format!("reuse hold key {} for {} on {}", req.key, req.amount, self.name(&req.account));
                    self.create_hold(&req).await;
                } else if !self.transfers.is_empty() {
                    let mut req = self.rng.pick(&self.transfers).0.clone();
                    match self.rng.below(3) {
                        0 => req.amount += self.rng.range(1, CENT),
                        1 => req.credit = self.grants.clone(),
                        _ => std::mem::swap(&mut req.debit, &mut req.credit),
                    }
                    req.overdraft = true;
                    self.desc = format!("reuse transfer key {} for {req:?}", req.key);
                    self.transfer(&req).await;
                } else {
                    self.fallback().await;
                }
            }
            // Retry something that failed: it may succeed now, as a first attempt.
            93..=96 => {
                if !self.failed_holds.is_empty() && (self.failed_transfers.is_empty() || self.rng.chance(1, 2)) {
                    let req = self.rng.pick(&self.failed_holds).clone();
                    self.desc = format!("retry failed hold {req:?}");
                    self.create_hold(&req).await;
                } else if !self.failed_transfers.is_empty() {
                    let req = self.rng.pick(&self.failed_transfers).clone();
                    self.desc = format!("retry failed transfer {req:?}");
                    self.transfer(&req).await;
                } else {
                    self.fallback().await;
                }
            }
            // Nonsense: non-positive amounts, unknown holds.
            _ => {
                let org = self.rng.pick(&self.orgs).clone();
                let amount = -self.rng.range(0, CENT);
                self.desc = format!("non-positive amount {amount} / unknown hold");
                let req = self.new_req("grant", self.grants.clone(), org.clone(), amount);
                self.transfer(&req).await;
                let hreq = HoldReq { key: self.fresh_key("badhold"), account: org, amount, expires_at: FAR_FUTURE };
                self.create_hold(&hreq).await;
                let ctx = self.ctx();
                let post = self.store.post_hold("hold_missing", &[]).await;
                assert!(matches!(post, Err(StoreError::NotFound)), "{ctx}: posting an unknown hold, got {post:?}");
                let void = self.store.void_hold("hold_missing").await;
                assert!(matches!(void, Err(StoreError::NotFound)), "{ctx}: voiding an unknown hold, got {void:?}");
            }
        }
    }

    /// When the chosen operation has nothing to act on: a grant to a random org.
    async fn fallback(&mut self) {
        let org = self.rng.pick(&self.orgs).clone();
        let amount = self.rng.range(1, 40 * CENT);
        self.desc = format!("fallback grant {amount} to {}", self.name(&org));
        let req = self.new_req("grant", self.grants.clone(), org, amount);
        self.transfer(&req).await;
    }

    /// Every account against the model, the audit, and the available-balance floor.
    async fn check(&self) {
        let ctx = self.ctx();
        let model_sum: i64 = self.books.values().map(|(b, _)| b).sum();
        assert_eq!(model_sum, 0, "{ctx}: the model itself must balance");
        let mut stored = HashMap::new();
        for (id, name) in &self.accounts {
            let a = self.store.ledger_account_by_id(id).await.unwrap();
            assert_eq!((a.balance.0, a.pending.0), self.books[id], "{ctx}: (balance, pending) of {name}");
            stored.insert(id.as_str(), a);
        }
        assert_eq!(self.store.ledger_audit().await.unwrap(), (0, true), "{ctx}: ledger audit");
        for (i, org) in self.orgs.iter().enumerate() {
            let available = stored[org.as_str()].available().0;
            assert!(
                available >= -MAX_OVERRUN,
                "{ctx}: {} is {available} available, beyond the overrun bound",
                self.name(org)
            );
            if !self.overrun[i] {
                assert!(available >= 0, "{ctx}: {} is {available} available with no overrun post", self.name(org));
            }
        }
    }

    /// At the end: every hold's stored state and every account's transfer count.
    async fn final_check(&self) {
        let ctx = format!("seed {} final check (replay with TOLLGATE_LEDGER_SEED={})", self.seed, self.seed);
        for (i, m) in self.holds.iter().enumerate() {
            let h: Hold = self.store.hold(&m.id).await.unwrap();
            assert_eq!((h.state, h.posted_amount.0, h.amount.0), (m.state, m.posted, m.req.amount), "{ctx}: hold #{i}");
        }
        for (id, name) in &self.accounts {
            let n = self.store.count_account_transfers(id).await.unwrap();
            assert_eq!(n, self.transfer_counts[id], "{ctx}: transfers touching {name}");
        }
    }
}

async fn run_seed(seed: u64, ops: usize) -> Stats {
    let mut walk = Walk::new(seed).await;
    walk.check().await;
    for step in 1..=ops {
        walk.step = step;
        walk.step().await;
        walk.check().await;
    }
    walk.final_check().await;
    walk.stats
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let raw = std::env::var(name).ok().filter(|v| !v.is_empty())?;
    Some(raw.parse().unwrap_or_else(|_| panic!("{name} must be a number, got {raw:?}")))
}

#[tokio::test]
async fn ledger_matches_model_under_random_operations() {
    let ops = env_number("TOLLGATE_LEDGER_OPS").unwrap_or(DEFAULT_OPS);
    let replay: Option<u64> = env_number("TOLLGATE_LEDGER_SEED");
    let seeds: Vec<u64> = replay.map_or_else(|| DEFAULT_SEEDS.collect(), |s| vec![s]);
    let mut total = Stats::new();
    for seed in &seeds {
        let stats = run_seed(*seed, ops).await;
        eprintln!("seed {seed}: {stats:?}");
        for (outcome, n) in stats {
            *total.entry(outcome).or_default() += n;
        }
    }
    if replay.is_none() && ops >= DEFAULT_OPS {
        // The walk must reach every kind of outcome, or it checks less than it claims.
        for outcome in OUTCOMES {
            let n = total.get(outcome).copied().unwrap_or(0);
            assert!(n >= 5, "the walk reached {outcome:?} only {n} times: {total:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Concurrency.
// ---------------------------------------------------------------------------------------

/// The id of the account of `kind` for `owner`.
async fn account(store: &Store, kind: AccountKind, owner: &str) -> String {
    store.ledger_account(kind, owner).await.unwrap().id
}

/// Moves `amount` from `from` to `to` under `key`; only `overdraft` lets `from` go below zero.
async fn pay(
    store: &Store,
    key: &str,
    from: &str,
    to: &str,
    amount: i64,
    overdraft: bool,
) -> Result<Transfer, StoreError> {
    let transfer = NewTransfer {
        idempotency_key: key,
        debit_account_id: from,
        credit_account_id: to,
        amount: Nanos(amount),
        kind: "test",
        memo: "",
        allow_overdraft: overdraft,
    };
    store.transfer(&transfer).await
}

/// An org credit account funded with `amount` from grants.
async fn funded_org(store: &Store, owner: &str, amount: i64) -> String {
    let grants = account(store, AccountKind::Grants, PLATFORM).await;
    let org = account(store, AccountKind::OrgCredit, owner).await;
    pay(store, &format!("fund:{owner}"), &grants, &org, amount, true).await.unwrap();
    org
}

async fn balance(store: &Store, id: &str) -> (i64, i64) {
    let a = store.ledger_account_by_id(id).await.unwrap();
    (a.balance.0, a.pending.0)
}

async fn assert_audit(store: &Store) {
    assert_eq!(store.ledger_audit().await.unwrap(), (0, true), "ledger audit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_never_overdraw_and_settle_exactly() {
    let ts = TestStore::new().await.unwrap();
    let store = ts.store.clone();
    let org = funded_org(&store, "org_busy", DOLLAR).await;
    let publisher = account(&store, AccountKind::PublisherEarnings, "pub").await;
    let platform = account(&store, AccountKind::PlatformRevenue, PLATFORM).await;
    let grants = account(&store, AccountKind::Grants, PLATFORM).await;

    // 200 holds of a cent against a dollar: exactly 100 fit.
    let mut tasks = JoinSet::new();
    for i in 0..200 {
        let (store, org) = (store.clone(), org.clone());
        tasks.spawn(async move { store.create_hold(&format!("call:{i}"), &org, Nanos(CENT), FAR_FUTURE).await });
    }
    let mut held = Vec::new();
    let mut refused = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(hold) => held.push(hold.id),
            Err(StoreError::Insufficient) => refused += 1,
            Err(e) => panic!("a concurrent hold failed with {e}"),
        }
    }
    assert_eq!((held.len(), refused), (100, 100), "holds granted and refused");
    assert_eq!(balance(&store, &org).await, (DOLLAR, DOLLAR), "every cent is held");
    assert_audit(&store).await;

    // Post half (9 of 10 mills: 7 to the publisher, 2 to the platform, in either order),
    // void the other half, all at once.
    let mut tasks = JoinSet::new();
    for (i, id) in held.iter().enumerate() {
        let (store, id) = (store.clone(), id.clone());
        let (publisher, platform) = (publisher.clone(), platform.clone());
        tasks.spawn(async move {
            if i % 2 == 1 {
                return store.void_hold(&id).await;
            }
            let to_publisher = (publisher.as_str(), Nanos(7 * CENT / 10), "charge");
            let to_platform = (platform.as_str(), Nanos(2 * CENT / 10), "platform_fee");
            let splits = if i % 4 == 0 { [to_publisher, to_platform] } else { [to_platform, to_publisher] };
            store.post_hold(&id, &splits).await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let resolution = joined.unwrap().unwrap_or_else(|e| panic!("a concurrent post or void failed with {e}"));
        assert_eq!(resolution, Resolution::Done);
    }
    assert_eq!(balance(&store, &org).await, (DOLLAR - 50 * 9 * CENT / 10, 0), "org after settling");
    assert_eq!(balance(&store, &publisher).await, (50 * 7 * CENT / 10, 0), "publisher earnings");
    assert_eq!(balance(&store, &platform).await, (50 * 2 * CENT / 10, 0), "platform revenue");
    assert_eq!(balance(&store, &grants).await, (-DOLLAR, 0), "grants");
    assert_eq!(store.count_account_transfers(&publisher).await.unwrap(), 50);
    assert_audit(&store).await;
}

/// Posts on many orgs, crediting the same two accounts in both orders, beside transfers
/// between the orgs: on PostgreSQL this deadlocks unless every transaction locks accounts
/// in one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_and_transfers_across_orgs_do_not_deadlock() {
    let ts = TestStore::new().await.unwrap();
    let store = ts.store.clone();
    const ORGS: usize = 8;
    const HOLDS: usize = 15;
    let mut orgs = Vec::new();
    for i in 0..ORGS {
        orgs.push(funded_org(&store, &format!("org_{i}"), DOLLAR).await);
    }
    let publisher = account(&store, AccountKind::PublisherEarnings, "pub").await;
    let platform = account(&store, AccountKind::PlatformRevenue, PLATFORM).await;
    let mut holds = Vec::new();
    for (o, org) in orgs.iter().enumerate() {
        for h in 0..HOLDS {
            let hold = store.create_hold(&format!("h:{o}:{h}"), org, Nanos(CENT), FAR_FUTURE).await.unwrap();
            holds.push(hold.id);
        }
    }
    let mut tasks: JoinSet<Result<(), StoreError>> = JoinSet::new();
    for (i, id) in holds.iter().enumerate() {
        let (store, id) = (store.clone(), id.clone());
        let (publisher, platform) = (publisher.clone(), platform.clone());
        tasks.spawn(async move {
            let a = (publisher.as_str(), Nanos(CENT / 2), "charge");
            let b = (platform.as_str(), Nanos(CENT / 2), "platform_fee");
            let splits = if i % 2 == 0 { [a, b] } else { [b, a] };
            assert_eq!(store.post_hold(&id, &splits).await?, Resolution::Done);
            Ok(())
        });
    }
    // Each org sends a cent to each of the next three orgs, twice over.
    for round in 0..2 {
        for (o, from) in orgs.iter().enumerate() {
            for step in 1..=3 {
                let to = orgs[(o + step) % ORGS].clone();
                let (store, from) = (store.clone(), from.clone());
                tasks.spawn(async move {
                    let key = format!("x:{round}:{from}:{to}");
                    pay(&store, &key, &from, &to, CENT, false).await.map(|_| ())
                });
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap().unwrap_or_else(|e| panic!("a concurrent post or transfer failed with {e}"));
    }
    // Transfers cancel out (each org sends and receives six cents); posts take HOLDS cents.
    for org in &orgs {
        assert_eq!(balance(&store, org).await, (DOLLAR - HOLDS as i64 * CENT, 0));
    }
    let posted = (ORGS * HOLDS) as i64 * CENT / 2;
    assert_eq!(balance(&store, &publisher).await, (posted, 0));
    assert_eq!(balance(&store, &platform).await, (posted, 0));
    assert_audit(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_from_many_concurrent_callers_moves_money_once() {
    let ts = TestStore::new().await.unwrap();
    let store = ts.store.clone();
    let grants = account(&store, AccountKind::Grants, PLATFORM).await;
    let org = account(&store, AccountKind::OrgCredit, "org_retry").await;

    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let (store, grants, org) = (store.clone(), grants.clone(), org.clone());
        tasks.spawn(async move { pay(&store, "purchase:42", &grants, &org, 5 * DOLLAR, true).await });
    }
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        ids.push(joined.unwrap().unwrap_or_else(|e| panic!("a concurrent retry failed with {e}")).id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller gets the same transfer: {ids:?}");
    assert_eq!(balance(&store, &org).await, (5 * DOLLAR, 0));
    assert_eq!(store.count_account_transfers(&org).await.unwrap(), 1);

    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let (store, org) = (store.clone(), org.clone());
        tasks.spawn(async move { store.create_hold("call:req-7", &org, Nanos(3 * DOLLAR), FAR_FUTURE).await });
    }
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        ids.push(joined.unwrap().unwrap_or_else(|e| panic!("a concurrent hold retry failed with {e}")).id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller gets the same hold: {ids:?}");
    assert_eq!(balance(&store, &org).await, (5 * DOLLAR, 3 * DOLLAR), "held once");
    assert_audit(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_raced_by_posts_voids_and_the_sweeper_resolves_exactly_once() {
    let ts = TestStore::new().await.unwrap();
    let store = ts.store.clone();
    let org = funded_org(&store, "org_race", DOLLAR).await;
    let publisher = account(&store, AccountKind::PublisherEarnings, "pub").await;

    // Many holds, each raced by two posts, two voids and (for the expired ones) the sweeper.
    const HOLDS: usize = 30;
    let now = 1_000_000;
    let mut holds = Vec::new();
    for i in 0..HOLDS {
        let expires_at = if i % 3 == 0 { now - 1 } else { FAR_FUTURE };
        holds.push(store.create_hold(&format!("race:{i}"), &org, Nanos(CENT), expires_at).await.unwrap().id);
    }
    let mut tasks = JoinSet::new();
    for (i, id) in holds.iter().enumerate() {
        for contender in 0..4 {
            let (store, id, publisher) = (store.clone(), id.clone(), publisher.clone());
            tasks.spawn(async move {
                let resolution = if contender % 2 == 0 {
                    store.post_hold(&id, &[(publisher.as_str(), Nanos(CENT), "charge")]).await
                } else {
                    store.void_hold(&id).await
                };
                (i, resolution)
            });
        }
    }
    let sweepers: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.expire_holds(now).await })
        })
        .collect();
    let mut done = [0; HOLDS];
    while let Some(joined) = tasks.join_next().await {
        let (i, resolution) = joined.unwrap();
        match resolution.unwrap_or_else(|e| panic!("resolving hold {i} failed with {e}")) {
            Resolution::Done => done[i] += 1,
            Resolution::AlreadyResolved(state) => assert_ne!(state, HoldState::Pending),
        }
    }
    let mut swept = 0;
    for sweeper in sweepers {
        swept += sweeper.await.unwrap().unwrap();
    }
    let mut expired = 0;
    let mut posted = 0;
    for (i, id) in holds.iter().enumerate() {
        let hold = store.hold(id).await.unwrap();
        match hold.state {
            HoldState::Expired => {
                assert_eq!(done[i], 0, "hold {i} expired and was also resolved by a call");
                expired += 1;
            }
            HoldState::Pending => panic!("hold {i} is still pending"),
            state => {
                assert_eq!(done[i], 1, "hold {i} ({state:?}) resolved {} times", done[i]);
                if state == HoldState::Posted {
                    posted += 1;
                }
            }
        }
    }
    assert_eq!(swept, expired, "the sweepers' count");

    // One hold, sixty contenders at once: more than the PostgreSQL pool has connections.
    let last = store.create_hold("race:last", &org, Nanos(CENT), FAR_FUTURE).await.unwrap().id;
    let mut tasks = JoinSet::new();
    for contender in 0..60 {
        let (store, id, publisher) = (store.clone(), last.clone(), publisher.clone());
        tasks.spawn(async move {
            if contender % 2 == 0 {
                store.post_hold(&id, &[(publisher.as_str(), Nanos(CENT), "charge")]).await
            } else {
                store.void_hold(&id).await
            }
        });
    }
    let mut last_done = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap().unwrap_or_else(|e| panic!("resolving the last hold failed with {e}")) {
            Resolution::Done => last_done += 1,
            Resolution::AlreadyResolved(state) => assert_ne!(state, HoldState::Pending),
        }
    }
    assert_eq!(last_done, 1, "the last hold resolved {last_done} times");
    if store.hold(&last).await.unwrap().state == HoldState::Posted {
        posted += 1;
    }

    assert_eq!(balance(&store, &org).await, (DOLLAR - posted * CENT, 0), "org after the races");
    assert_eq!(balance(&store, &publisher).await, (posted * CENT, 0), "publisher after the races");
    assert_audit(&store).await;
}

#[tokio::test]
async fn a_post_whose_transfer_key_is_taken_changes_nothing() {
    let ts = TestStore::new().await.unwrap();
    let store = ts.store.clone();
    let org = funded_org(&store, "org_taken", DOLLAR).await;
    let publisher = account(&store, AccountKind::PublisherEarnings, "pub").await;
    let hold = store.create_hold("call:taken", &org, Nanos(CENT), FAR_FUTURE).await.unwrap();
    // Someone already used the key the post's first split would get, for the same movement.
    pay(&store, "call:taken:post:0", &org, &publisher, CENT, false).await.unwrap();
    let before = (balance(&store, &org).await, balance(&store, &publisher).await);
    let result = store.post_hold(&hold.id, &[(publisher.as_str(), Nanos(CENT), "charge")]).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "got {result:?}");
    assert_eq!((balance(&store, &org).await, balance(&store, &publisher).await), before, "nothing moved");
    assert_eq!(store.hold(&hold.id).await.unwrap().state, HoldState::Pending, "the hold is still open");
    assert_eq!(store.void_hold(&hold.id).await.unwrap(), Resolution::Done);
    assert_eq!(balance(&store, &org).await, (DOLLAR - CENT, 0));
    assert_audit(&store).await;
}

#[tokio::test]
async fn a_transfer_that_would_overflow_a_balance_is_refused_and_changes_nothing() {
    let ts = TestStore::new().await.unwrap();
    let store = ts.store.clone();
    let near_max = i64::MAX - DOLLAR;
    let org = funded_org(&store, "org_rich", near_max).await;
    let grants = account(&store, AccountKind::Grants, PLATFORM).await;
    let before = (balance(&store, &org).await, balance(&store, &grants).await);
    assert_eq!(before.0, (near_max, 0));
    // Two dollars more would pass i64::MAX: refused, on both databases alike.
    let result = pay(&store, "fund:again", &grants, &org, 2 * DOLLAR, true).await;
    assert!(matches!(result, Err(StoreError::Overflow)), "got {result:?}");
    assert_eq!((balance(&store, &org).await, balance(&store, &grants).await), before, "nothing moved");
    assert_eq!(store.count_account_transfers(&org).await.unwrap(), 1, "no transfer row");
    // One dollar still fits exactly; the grants account reaches -i64::MAX, also in range.
    pay(&store, "fund:last", &grants, &org, DOLLAR, true).await.unwrap();
    assert_eq!(balance(&store, &org).await, (i64::MAX, 0));
    assert_eq!(balance(&store, &grants).await, (-i64::MAX, 0));
    // Spending from the full account works as usual.
    let publisher = account(&store, AccountKind::PublisherEarnings, "pub").await;
    pay(&store, "spend", &org, &publisher, CENT, false).await.unwrap();
    assert_eq!(balance(&store, &org).await, (i64::MAX - CENT, 0));
}

#[tokio::test]
async fn transfers_made_within_one_millisecond_are_listed_in_the_order_they_were_made() {
    let ts = TestStore::new().await.unwrap();
    let store = ts.store.clone();
    let org = funded_org(&store, "org_order", DOLLAR).await;
    let publisher = account(&store, AccountKind::PublisherEarnings, "pub_order").await;
    // Amounts 1, 2, …, 40 nanos, one after another: many share a millisecond.
    for n in 1..=40 {
        pay(&store, &format!("order:{n}"), &org, &publisher, n, false).await.unwrap();
    }
    let listed: Vec<i64> =
        store.account_transfers(&publisher, 100, 0).await.unwrap().iter().map(|t| t.amount.0).collect();
    assert_eq!(listed, (1..=40).rev().collect::<Vec<i64>>(), "newest first, in the order made");
}
