#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Card payments and the billing watcher's state, on SQLite and (when
//! `TOLLGATE_TEST_POSTGRES_URL` is set) PostgreSQL:
//!
//! - a payment credits its org exactly once, however many callers race, and a late "paid"
//!   credits a payment already marked failed;
//! - an org has at most one recharge in flight;
//! - a balance crossing below the threshold is reported once, re-armed by rising above it,
//!   and never for an org not seen above it;
//! - budget alerts go out once per level, month and limit;
//! - notices reach the right people once per event key, and the email queue is claimed once.

use std::sync::Arc;
use tokio::task::JoinSet;
use tollgate_domain::Nanos;
use tollgate_domain::catalog::Role;
use tollgate_store::Store;
use tollgate_store::ledger::{AccountKind, NewTransfer, PLATFORM};
use tollgate_store::notices::{Audience, Notice};
use tollgate_store::payments::{Credited, Crediting, RechargeSettings};
use tollgate_store::testing::TestStore;

const DOLLAR: i64 = 1_000_000_000;

async fn person(store: &Store, email: &str, grant: i64) -> (String, String) {
    let (user, org) = store.create_user(email, "Person", "x", Nanos(grant * DOLLAR)).await.unwrap();
    (user.id, org.id)
}

fn notice(key: &str) -> Notice {
    Notice {
        kind: "payment".into(),
        title: "Payment received".into(),
        body: "$25.00 was added.".into(),
        link: Some("/billing".into()),
        event_key: key.into(),
        email: true,
    }
}

async fn balance(store: &Store, org: &str) -> Nanos {
    store.ledger_account(AccountKind::OrgCredit, org).await.unwrap().balance
}

/// Spends `dollars` of an org's credits (to the platform's revenue account).
async fn spend(store: &Store, org: &str, dollars: i64, key: &str) {
    let credit = store.ledger_account(AccountKind::OrgCredit, org).await.unwrap();
    let revenue = store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await.unwrap();
    store
        .transfer(&NewTransfer {
            idempotency_key: key,
            debit_account_id: &credit.id,
            credit_account_id: &revenue.id,
            amount: Nanos(dollars * DOLLAR),
            kind: "charge",
            memo: "",
            allow_overdraft: false,
        })
        .await
        .unwrap();
}

/// Adds `user` (with `email`) to `org` as `role`, invited by `by`.
async fn join(store: &Store, org: &str, by: &str, user: &str, email: &str, role: Role) {
    let hash = format!("hash-{user}");
    store.create_invitation(org, email, role, &hash, by, i64::MAX / 2).await.unwrap();
    store.accept_invitation(&hash, user, email).await.unwrap();
}

async fn notifications(store: &Store, user: &str) -> Vec<String> {
    store.notifications(user, 100).await.unwrap().into_iter().map(|n| n.title).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_credits_its_org_exactly_once_under_races_and_retries() {
    let store = TestStore::new().await.unwrap();
    let (ada, org) = person(&store, "ada@example.com", 100).await;
    let payment = store.create_payment(&org, Some(&ada), "checkout", "stripe", Nanos(25 * DOLLAR)).await.unwrap();
    assert_eq!((payment.status.as_str(), payment.reference.as_deref()), ("open", None));
    store.set_payment_reference(&payment.id, "cs_1").await.unwrap();
    store.set_payment_reference(&payment.id, "cs_other").await.unwrap();
    assert_eq!(store.payment_by_reference("stripe", "cs_1").await.unwrap().unwrap().id, payment.id);
    assert!(store.payment_by_reference("stripe", "cs_other").await.unwrap().is_none(), "a reference is set once");

    let store = Arc::new(store.store.clone());
    let mut racers = JoinSet::new();
    for _ in 0..8 {
        let (store, id) = (store.clone(), payment.id.clone());
        racers.spawn(async move {
            let n = notice(&format!("payment:{id}"));
            store
                .credit_payment(&Crediting {
                    payment_id: &id,
                    reference: "cs_1",
                    transfer_key: "payment:stripe:cs_1",
                    memo: "Card payment",
                    notice: Some(&n),
                })
                .await
                .unwrap()
        });
    }
    let mut credited = 0;
    while let Some(done) = racers.join_next().await {
        if matches!(done.unwrap(), Credited::Now(_)) {
            credited += 1;
        }
    }
    assert_eq!(credited, 1, "one caller credits; the others find it done");
    assert_eq!(balance(&store, &org).await, Nanos(125 * DOLLAR));
    let paid = store.payment(&payment.id).await.unwrap();
    assert_eq!(paid.status, "succeeded");
    let transfers = store
        .account_transfers(&store.ledger_account(AccountKind::OrgCredit, &org).await.unwrap().id, 10, 0)
        .await
        .unwrap();
    let t = transfers.iter().find(|t| Some(&t.id) == paid.transfer_id.as_ref()).unwrap();
    assert_eq!((t.kind.as_str(), t.memo.as_str(), t.amount), ("payment", "Card payment", Nanos(25 * DOLLAR)));
    assert_eq!(notifications(&store, &ada).await, vec!["Payment received"], "told once");
    // Ending a paid payment changes nothing.
    assert!(!store.end_payment(&payment.id, "failed", Some("declined"), None).await.unwrap());
    assert_eq!(store.payment(&payment.id).await.unwrap().status, "succeeded");
    let (sum, consistent) = store.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true));

    // A recharge marked failed, then reported paid after all, is credited once.
    let late = store.create_payment(&org, None, "recharge", "stripe", Nanos(10 * DOLLAR)).await.unwrap();
    assert!(store.end_payment(&late.id, "failed", Some("no answer"), None).await.unwrap());
    let c = Crediting {
        payment_id: &late.id,
        reference: "pi_9",
        transfer_key: "payment:stripe:pi_9",
        memo: "Auto-recharge",
        notice: None,
    };
    assert!(matches!(store.credit_payment(&c).await.unwrap(), Credited::Now(_)));
    assert_eq!(store.credit_payment(&c).await.unwrap(), Credited::Already);
    assert_eq!(balance(&store, &org).await, Nanos(135 * DOLLAR));
    let missing = Crediting { payment_id: "pay_nope", ..c };
    assert!(store.credit_payment(&missing).await.is_err());
}

#[tokio::test]
async fn recharge_settings_one_in_flight_and_the_monthly_total() {
    let store = TestStore::new().await.unwrap();
    let (_, org) = person(&store, "rex@example.com", 100).await;
    assert_eq!(store.recharge_settings(&org).await.unwrap(), None);
    let settings = RechargeSettings {
        enabled: true,
        threshold: Nanos(10 * DOLLAR),
        amount: Nanos(25 * DOLLAR),
        monthly_limit: Some(Nanos(60 * DOLLAR)),
    };
    store.set_recharge(&org, "{}", &settings).await.unwrap();
    assert_eq!(store.recharge_settings(&org).await.unwrap(), Some(settings));
    assert_eq!(store.org(&org).await.unwrap().auto_recharge.as_deref(), Some("{}"));
    assert!(store.set_recharge("org_nope", "{}", &settings).await.is_err());

    let first = store.begin_recharge(&org, "local", settings.amount).await.unwrap().unwrap();
    assert_eq!((first.kind.as_str(), first.status.as_str()), ("recharge", "open"));
    assert_eq!(store.begin_recharge(&org, "local", settings.amount).await.unwrap(), None, "one in flight");
    let status = store.recharge_status(&org, 0).await.unwrap();
    assert_eq!(status.in_flight.as_ref().map(|p| p.id.as_str()), Some(first.id.as_str()));
    assert_eq!(status.this_month, Nanos(25 * DOLLAR));
    assert!(store.end_payment(&first.id, "failed", Some("Your card was declined."), None).await.unwrap());
    let status = store.recharge_status(&org, 0).await.unwrap();
    assert_eq!((status.in_flight, status.failures, status.this_month), (None, 1, Nanos(0)));
    assert_eq!(status.last_failure.unwrap().failure.as_deref(), Some("Your card was declined."));

    let second = store.begin_recharge(&org, "local", settings.amount).await.unwrap().unwrap();
    let c = Crediting {
        payment_id: &second.id,
        reference: "lpi_1",
        transfer_key: "payment:local:lpi_1",
        memo: "Auto-recharge",
        notice: None,
    };
    store.credit_payment(&c).await.unwrap();
    let status = store.recharge_status(&org, 0).await.unwrap();
    assert_eq!((status.in_flight, status.failures, status.this_month), (None, 0, Nanos(25 * DOLLAR)));
    assert_eq!(status.last_success.unwrap().id, second.id);
    assert_eq!(store.recharge_status(&org, i64::MAX / 2).await.unwrap().this_month, Nanos(0));

    // Stale recharges: those in flight since before a time.
    let third = store.begin_recharge(&org, "local", settings.amount).await.unwrap().unwrap();
    assert_eq!(store.stale_recharges(third.created_at).await.unwrap(), vec![]);
    assert_eq!(store.stale_recharges(third.created_at + 1).await.unwrap(), vec![third]);
}

#[tokio::test]
async fn a_crossing_below_the_threshold_is_reported_once_and_rearmed_above_it() {
    let store = TestStore::new().await.unwrap();
    let default = Nanos(5 * DOLLAR);
    let (_, rich) = person(&store, "rich@example.com", 100).await;
    let (_, poor) = person(&store, "poor@example.com", 0).await;
    // First look: every org gets its row; nobody has been seen above and then below yet.
    assert_eq!(store.balance_crossings(default).await.unwrap(), vec![]);
    spend(&store, &rich, 96, "s1").await;
    let crossings = store.balance_crossings(default).await.unwrap();
    assert_eq!(crossings.len(), 1, "{crossings:?}");
    assert_eq!(
        (crossings[0].org_id.as_str(), crossings[0].balance, crossings[0].threshold),
        (rich.as_str(), Nanos(4 * DOLLAR), default)
    );
    assert_eq!(crossings[0].recharge, None);
    assert_eq!(store.balance_crossings(default).await.unwrap(), vec![], "once per crossing");
    spend(&store, &rich, 1, "s2").await;
    assert_eq!(store.balance_crossings(default).await.unwrap(), vec![], "still the same crossing");

    // Rising above re-arms it; the next fall is a new crossing.
    let grants = store.ledger_account(AccountKind::Grants, PLATFORM).await.unwrap();
    let credit = store.ledger_account(AccountKind::OrgCredit, &rich).await.unwrap();
    let top_up = NewTransfer {
        idempotency_key: "g1",
        debit_account_id: &grants.id,
        credit_account_id: &credit.id,
        amount: Nanos(10 * DOLLAR),
        kind: "grant",
        memo: "",
        allow_overdraft: true,
    };
    store.transfer(&top_up).await.unwrap();
    assert_eq!(store.balance_crossings(default).await.unwrap(), vec![]);
    spend(&store, &rich, 9, "s3").await;
    assert_eq!(store.balance_crossings(default).await.unwrap().len(), 1);

    // Auto-recharge on: its threshold is the one watched, and saving it re-arms an org
    // already below it.
    let settings = RechargeSettings {
        enabled: true,
        threshold: Nanos(20 * DOLLAR),
        amount: Nanos(25 * DOLLAR),
        monthly_limit: None,
    };
    store.set_recharge(&poor, "{}", &settings).await.unwrap();
    let crossings = store.balance_crossings(default).await.unwrap();
    assert_eq!(crossings.len(), 1);
    assert_eq!((crossings[0].org_id.as_str(), crossings[0].threshold), (poor.as_str(), Nanos(20 * DOLLAR)));
    assert_eq!(crossings[0].recharge, Some(settings));
    assert_eq!(crossings[0].in_flight, None);
    assert_eq!(store.balance_crossings(default).await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_watching_at_once_report_a_crossing_once() {
    let store = TestStore::new().await.unwrap();
    let (_, org) = person(&store, "duo@example.com", 10).await;
    store.balance_crossings(Nanos(5 * DOLLAR)).await.unwrap();
    spend(&store, &org, 6, "s1").await;
    let mut watchers = JoinSet::new();
    for _ in 0..4 {
        let store = store.store.clone();
        watchers.spawn(async move { store.balance_crossings(Nanos(5 * DOLLAR)).await.unwrap().len() });
    }
    let mut total = 0;
    while let Some(n) = watchers.join_next().await {
        total += n.unwrap();
    }
    assert_eq!(total, 1);
}

#[tokio::test]
async fn budget_alerts_go_out_once_per_level_month_and_limit() {
    let store = TestStore::new().await.unwrap();
    let (owner, org) = person(&store, "own@example.com", 100).await;
    let team = store.create_team("Acme", &owner).await.unwrap();
    let (member, _) = person(&store, "mem@example.com", 0).await;
    let (admin, _) = person(&store, "adm@example.com", 0).await;
    join(&store, &team.id, &owner, &member, "mem@example.com", Role::Member).await;
    join(&store, &team.id, &owner, &admin, "adm@example.com", Role::Admin).await;
    assert_eq!(store.budgets_to_watch(1000).await.unwrap(), vec![]);
    store.set_budget(&team.id, Some(Nanos(50 * DOLLAR))).await.unwrap();
    store.set_budget(&org, Some(Nanos(0))).await.unwrap();
    let watched = store.budgets_to_watch(1000).await.unwrap();
    assert_eq!(watched.len(), 1, "a zero budget is not watched");
    assert_eq!(
        (watched[0].org_id.as_str(), watched[0].limit, watched[0].alerted),
        (team.id.as_str(), Nanos(50 * DOLLAR), 0)
    );

    let n80 = Notice { kind: "budget".into(), event_key: format!("budget:{}:1000:80", team.id), ..notice("") };
    assert!(store.budget_alert(&team.id, 1000, Nanos(50 * DOLLAR), 80, &n80).await.unwrap());
    assert!(!store.budget_alert(&team.id, 1000, Nanos(50 * DOLLAR), 80, &n80).await.unwrap(), "once");
    assert_eq!(store.budgets_to_watch(1000).await.unwrap()[0].alerted, 80);
    let n100 = Notice { event_key: format!("budget:{}:1000:100", team.id), ..n80.clone() };
    assert!(store.budget_alert(&team.id, 1000, Nanos(50 * DOLLAR), 100, &n100).await.unwrap());
    assert!(!store.budget_alert(&team.id, 1000, Nanos(50 * DOLLAR), 80, &n80).await.unwrap(), "never back down");
    assert_eq!(store.budgets_to_watch(1000).await.unwrap(), vec![], "done for the month");
    // A new month, or a new limit, starts over.
    assert_eq!(store.budgets_to_watch(2000).await.unwrap()[0].alerted, 0);
    store.set_budget(&team.id, Some(Nanos(80 * DOLLAR))).await.unwrap();
    assert_eq!(store.budgets_to_watch(1000).await.unwrap()[0].alerted, 0);
    // Owners and admins were told, each once; the member was not.
    assert_eq!(notifications(&store, &owner).await.len(), 2);
    assert_eq!(notifications(&store, &admin).await.len(), 2);
    assert_eq!(notifications(&store, &member).await.len(), 0);
}

#[tokio::test]
async fn notices_reach_their_audience_once_and_emails_are_claimed_once() {
    let store = TestStore::new().await.unwrap();
    let (ada, ada_org) = person(&store, "ada@example.com", 0).await;
    let (bob, bob_org) = person(&store, "bob@example.com", 0).await;
    let team = store.create_team("Acme", &ada).await.unwrap();
    join(&store, &team.id, &ada, &bob, "bob@example.com", Role::Viewer).await;
    store.update_user(&bob, None, None, Some(false)).await.unwrap();

    assert_eq!(store.notify_audience(&Audience::OrgMembers(team.id.clone()), &notice("e1")).await.unwrap(), 2);
    assert_eq!(store.notify_audience(&Audience::OrgMembers(team.id.clone()), &notice("e1")).await.unwrap(), 0);
    assert_eq!(store.notify_audience(&Audience::OrgAdmins(team.id.clone()), &notice("e2")).await.unwrap(), 1);
    assert_eq!(store.notify_audience(&Audience::OrgAdmins(bob_org.clone()), &notice("e3")).await.unwrap(), 1);
    assert_eq!(
        store.notify_audience(&Audience::User(ada.clone()), &Notice { email: false, ..notice("e4") }).await.unwrap(),
        1
    );
    assert_eq!(notifications(&store, &ada).await.len(), 3);
    assert_eq!(notifications(&store, &bob).await.len(), 2);
    assert_eq!(store.notify_audience(&Audience::OrgAdmins("org_nope".into()), &notice("e5")).await.unwrap(), 0);
    let _ = ada_org;

    // Emails: only for people with email on, and only notices that asked for one.
    let due = store.due_emails(i64::MAX / 2, 100).await.unwrap();
    assert_eq!(due.len(), 2, "{due:?}");
    assert!(due.iter().all(|e| e.to == "ada@example.com" && e.wanted && e.attempts == 0));
    let first = &due[0];
    assert!(store.claim_email(&first.id, i64::MAX / 2, i64::MAX / 2 + 1000).await.unwrap());
    assert!(!store.claim_email(&first.id, i64::MAX / 2, i64::MAX / 2 + 1000).await.unwrap(), "claimed once");
    assert_eq!(store.due_emails(i64::MAX / 2, 100).await.unwrap().len(), 1, "the claimed one waits for its retry time");
    store.finish_email(&first.id, "sent").await.unwrap();
    assert_eq!(store.due_emails(i64::MAX, 100).await.unwrap().len(), 1);
    // Turning email off later: still due, but no longer wanted.
    store.update_user(&ada, None, None, Some(false)).await.unwrap();
    assert!(!store.due_emails(i64::MAX, 100).await.unwrap()[0].wanted);
}

#[tokio::test]
async fn auto_recharge_saved_before_payments_existed_is_carried_over() {
    // A database as the release before card payments left it, with auto-recharge saved
    // as JSON only.
    let base = TestStore::new().await.unwrap();
    let suffix = tollgate_domain::secret::random_token(10).unwrap().to_ascii_lowercase();
    let schema = base.schema().map(|_| format!("p_{suffix}"));
    let url = if schema.is_some() { base.url.clone() } else { base.url.replace("tollgate.db", "older.db") };
    let store = Store::connect_in_schema(&url, schema.as_deref()).await.unwrap();
    store.migrate_until(3).await.unwrap();
    let (_, on) = person(&store, "on@example.com", 100).await;
    let (_, off) = person(&store, "off@example.com", 100).await;
    let (_, none) = person(&store, "none@example.com", 100).await;
    let json = |enabled: bool, threshold: &str, amount: &str| {
        serde_json::json!({"enabled": enabled, "threshold": threshold, "amount": amount}).to_string()
    };
    store.set_auto_recharge(&on, Some(&json(true, "10.500000", "25.000000"))).await.unwrap();
    store.set_auto_recharge(&off, Some(&json(false, "0.000000500", "1234.000001"))).await.unwrap();

    assert!(store.migrate().await.unwrap() >= 1, "0004 ran now");
    assert_eq!(
        store.recharge_settings(&on).await.unwrap(),
        Some(RechargeSettings {
            enabled: true,
            threshold: Nanos(10_500_000_000),
            amount: Nanos(25 * DOLLAR),
            monthly_limit: None
        })
    );
    assert_eq!(
        store.recharge_settings(&off).await.unwrap(),
        Some(RechargeSettings {
            enabled: false,
            threshold: Nanos(500),
            amount: Nanos(1_234_000_001_000),
            monthly_limit: None
        })
    );
    assert_eq!(store.recharge_settings(&none).await.unwrap(), None);
    // Carried-over orgs are not reported as crossing at the first look after the upgrade.
    assert_eq!(store.balance_crossings(Nanos(200 * DOLLAR)).await.unwrap(), vec![]);
    store.close().await;
    if let Some(schema) = schema {
        base.drop_schema_for_tests(&schema).await.unwrap();
    }
}

#[tokio::test]
async fn notifications_sent_within_one_millisecond_are_listed_in_the_order_they_were_sent() {
    let ts = TestStore::new().await.unwrap();
    let store = ts.store.clone();
    let (ada, _) = store.create_user("ada@example.com", "Ada", "x", Nanos(0)).await.unwrap();
    // Forty one after another, both ways of sending one: many share a millisecond.
    for n in 1..=40 {
        if n % 2 == 0 {
            store.notify(&ada.id, "test", &format!("notice {n}"), "", None).await.unwrap();
        } else {
            let notice = Notice {
                kind: "test".into(),
                title: format!("notice {n}"),
                body: String::new(),
                link: None,
                event_key: format!("test:{n}"),
                email: false,
            };
            store.notify_audience(&Audience::User(ada.id.clone()), &notice).await.unwrap();
        }
    }
    let expected: Vec<String> = (1..=40).rev().map(|n| format!("notice {n}")).collect();
    assert_eq!(notifications(&store, &ada.id).await, expected, "newest first, in the order sent");
}
