//! Auto-recharge and the money alerts, driven by the billing watcher (one look per call of
//! `tasks::watch_billing`, as `serve` runs it every few seconds): a recharge fires once per
//! crossing below the threshold, one at a time per org, within the monthly limit; the local
//! provider succeeds at once; Stripe's off-session charge is the form Stripe documents and
//! its answers (paid, declined, pending, no answer) end as they should; owners and admins
//! are told, members and other orgs are not. On SQLite, and on PostgreSQL when
//! `TOLLGATE_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fake_stripe;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Caller, TestApp, TestUser};
use fake_stripe::{FakeStripe, IntentAnswer, WEBHOOK_SECRET, event, signature};
use serde_json::{Value, json};
use std::sync::Arc;
use tollgate_api::tasks::{Watched, watch_billing};
use tollgate_domain::Nanos;
use tollgate_store::ledger::{AccountKind, NewTransfer, PLATFORM};

const DOLLAR: i64 = 1_000_000_000;

/// Moves `dollars` between an org's credits and the platform: with `spend`, from the
/// credits to platform revenue (as calls would); otherwise from grants into the credits.
async fn move_money(app: &TestApp, org: &str, dollars: i64, spend: bool) {
    let credit = app.store.ledger_account(AccountKind::OrgCredit, org).await.unwrap();
    let other_kind = if spend { AccountKind::PlatformRevenue } else { AccountKind::Grants };
    let other = app.store.ledger_account(other_kind, PLATFORM).await.unwrap();
    let key = tollgate_domain::secret::new_id("test").unwrap();
    let (debit, credit_to, kind) =
        if spend { (&credit.id, &other.id, "charge") } else { (&other.id, &credit.id, "grant") };
    app.store
        .transfer(&NewTransfer {
            idempotency_key: &key,
            debit_account_id: debit,
            credit_account_id: credit_to,
            amount: Nanos(dollars * DOLLAR),
            kind,
            memo: "",
            allow_overdraft: !spend,
        })
        .await
        .unwrap();
}

async fn spend(app: &TestApp, org: &str, dollars: i64) {
    move_money(app, org, dollars, true).await;
}

async fn fund(app: &TestApp, org: &str, dollars: i64) {
    move_money(app, org, dollars, false).await;
}

async fn watch(app: &TestApp) -> Watched {
    watch_billing(&app.state).await.unwrap()
}

async fn balance(app: &TestApp, who: &Caller) -> Value {
    app.get("/api/v1/billing/balance", who).await.body
}

async fn titles(app: &TestApp, user: &TestUser) -> Vec<String> {
    let list = app.get("/api/v1/notifications", &user.caller()).await.body;
    let mut t: Vec<String> =
        list.as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap().to_string()).collect();
    t.reverse();
    t
}

async fn bodies(app: &TestApp, user: &TestUser) -> Vec<String> {
    let list = app.get("/api/v1/notifications", &user.caller()).await.body;
    list.as_array().unwrap().iter().map(|n| n["body"].as_str().unwrap().to_string()).collect()
}

/// The memo and amount of the org's two newest transactions, newest first (a spend and the
/// recharge the watcher makes right after it often share a millisecond: they are listed in
/// the order they were made).
async fn newest_two(app: &TestApp, who: &Caller) -> Vec<(String, String)> {
    let history = app.get("/api/v1/billing/transactions?per_page=2", who).await.body;
    history["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["memo"].as_str().unwrap().to_string(), t["amount"].as_str().unwrap().to_string()))
        .collect()
}

async fn set_recharge(app: &TestApp, who: &Caller, settings: Value) {
    let r = app.call(Method::PUT, "/api/v1/billing/auto-recharge", Some(settings), who).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// Buys `amount` through the local provider's test checkout (which saves the test card).
async fn buy_locally(app: &TestApp, who: &Caller, amount: &str) {
    let id = app.post("/api/v1/billing/checkout", json!({"amount": amount}), who).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.post(&format!("/api/v1/billing/payments/{id}/test-confirm"), json!({}), who).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

fn watched(low_balances: usize, recharges: usize) -> Watched {
    Watched { low_balances, recharges, ..Watched::default() }
}

#[tokio::test]
async fn auto_recharge_with_the_local_provider_fires_once_per_crossing() {
    let app = TestApp::with_local_payments().await;
    let ada = app.user("ada@example.com").await;
    let me = ada.caller();
    buy_locally(&app, &me, "25").await;
    set_recharge(&app, &me, json!({"enabled": true, "threshold": "50", "amount": "20"})).await;
    assert_eq!(watch(&app).await, Watched::default(), "125 is above 50");

    spend(&app, &ada.org_id, 80).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    assert_eq!(balance(&app, &me).await["balance"], "65.000000");
    assert_eq!(watch(&app).await, Watched::default(), "back above the threshold: nothing more");
    assert_eq!(
        newest_two(&app, &me).await,
        [
            ("Auto-recharge (test payment, no card charged)".to_string(), "20.000000".to_string()),
            ("".into(), "-80.000000".into())
        ]
    );

    // A recharge too small to lift the balance above the threshold: once per crossing.
    spend(&app, &ada.org_id, 50).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    assert_eq!(balance(&app, &me).await["balance"], "35.000000");
    assert_eq!(watch(&app).await, Watched::default(), "still the same crossing");
    spend(&app, &ada.org_id, 30).await;
    assert_eq!(watch(&app).await, Watched::default(), "falling further is not a new crossing");
    assert_eq!(balance(&app, &me).await["balance"], "5.000000");

    let b = balance(&app, &me).await;
    let status = &b["recharge_status"];
    assert_eq!((status["in_flight"].as_bool(), status["failures"].as_i64()), (Some(false), Some(0)));
    assert_eq!(
        (status["last_recharge_amount"].as_str(), status["this_month"].as_str()),
        (Some("20.000000"), Some("40.000000"))
    );
    assert!(status["last_recharge_at"].is_string());
    assert_eq!(
        titles(&app, &ada).await,
        vec!["Payment received", "Low balance", "Auto-recharge succeeded", "Low balance", "Auto-recharge succeeded"]
    );
    assert!(bodies(&app, &ada).await.iter().any(|b| b == "Your balance is $45.00, below $50.00. Auto-recharge is buying $20.00 with the card on file."));
    let (sum, consistent) = app.store.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true));
}

#[tokio::test]
async fn a_recharge_without_a_card_fails_once_and_tells_only_owners_and_admins() {
    let app = TestApp::with_local_payments().await;
    let owner = app.user("owner@example.com").await;
    let team = app.team(&owner, "Acme").await;
    let admin = app.join(&owner, &team, "admin@example.com", "admin").await;
    let member = app.join(&owner, &team, "member@example.com", "member").await;
    fund(&app, &team, 60).await;
    let as_owner = owner.in_org(&team);
    set_recharge(&app, &as_owner, json!({"enabled": true, "threshold": "50", "amount": "20"})).await;
    assert_eq!(watch(&app).await, Watched::default());
    spend(&app, &team, 20).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    assert_eq!(watch(&app).await, Watched::default(), "a failed recharge is not retried for the same crossing");
    assert_eq!(balance(&app, &as_owner).await["balance"], "40.000000");
    let status = balance(&app, &as_owner).await["recharge_status"].clone();
    assert_eq!(status["failures"], 1);
    assert_eq!(status["last_failure"], "no card is saved; buy credits once with a card to save one");
    for who in [&owner, &admin] {
        // Both come from one pass of the watcher, often within one millisecond, and are
        // listed in the order they were sent.
        let told: Vec<String> = titles(&app, who).await.into_iter().filter(|t| !t.contains("invited")).collect();
        assert_eq!(told, vec!["Low balance", "Auto-recharge failed"], "{}", who.email);
    }
    assert!(
        bodies(&app, &owner)
            .await
            .iter()
            .any(|b| b.starts_with("Auto-recharge could not buy $20.00 of credits for the team Acme: no card is saved"))
    );
    assert!(titles(&app, &member).await.iter().all(|t| t.contains("invited")), "members are not told about money");

    // Saving the settings again is a new try.
    set_recharge(&app, &as_owner, json!({"enabled": true, "threshold": "50", "amount": "20"})).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    assert_eq!(balance(&app, &as_owner).await["recharge_status"]["failures"], 2);
    // Turning it off: the crossing is the default low-balance one, no recharge.
    set_recharge(&app, &as_owner, json!({"enabled": false, "threshold": "50", "amount": "20"})).await;
    assert_eq!(watch(&app).await, Watched::default());
}

#[tokio::test]
async fn the_monthly_limit_pauses_auto_recharge_until_next_month() {
    let app = TestApp::with_local_payments().await;
    let ada = app.user("ada@example.com").await;
    let me = ada.caller();
    buy_locally(&app, &me, "5").await;
    let bad = app
        .call(
            Method::PUT,
            "/api/v1/billing/auto-recharge",
            Some(json!({"enabled": true, "threshold": "50", "amount": "20", "monthly_limit": "10"})),
            &me,
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("monthly_limit"))
    );
    set_recharge(&app, &me, json!({"enabled": true, "threshold": "50", "amount": "20", "monthly_limit": "30"})).await;
    assert_eq!(balance(&app, &me).await["auto_recharge"]["monthly_limit"], "30.000000");
    watch(&app).await;
    spend(&app, &ada.org_id, 60).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    fund(&app, &ada.org_id, 10).await;
    watch(&app).await;
    spend(&app, &ada.org_id, 40).await;
    assert_eq!(watch(&app).await, watched(1, 0), "20 more would pass the 30 limit");
    let told = titles(&app, &ada).await;
    assert_eq!(told[told.len() - 2..], ["Low balance", "Auto-recharge paused for this month"], "{told:?}");
    assert_eq!(told.iter().filter(|t| *t == "Auto-recharge paused for this month").count(), 1, "{told:?}");
    assert_eq!(balance(&app, &me).await["recharge_status"]["this_month"], "20.000000");
}

async fn deliver(app: &TestApp, body: &str) -> Value {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/billing/webhooks/stripe")
        .header("stripe-signature", signature(WEBHOOK_SECRET, body))
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// An intent event for a recharge `payment` of `org`.
fn intent(kind: &str, id: &str, payment: &str, org: &str, cents: i64) -> String {
    event(
        kind,
        json!({"id": id, "amount": cents, "amount_received": cents, "currency": "usd", "customer": "cus_ada",
        "payment_method": "pm_card_visa", "last_payment_error": {"message": "Your card was declined."},
        "metadata": {"tollgate_payment": payment, "tollgate_org": org, "tollgate_purpose": "recharge"}}),
    )
    .to_string()
}

#[tokio::test]
async fn stripe_auto_recharge_charges_the_saved_card_off_session_and_ends_as_stripe_says() {
    let fake = FakeStripe::start().await;
    let provider = fake.provider();
    let app = TestApp::with_payments(Arc::new(provider)).await;
    let ada = app.user("ada@example.com").await;
    let me = ada.caller();
    // A purchase saves the card (customer from the session, card from its intent).
    let id = app.post("/api/v1/billing/checkout", json!({"amount": "25"}), &me).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let saved = event("payment_intent.succeeded", json!({"id": "pi_checkout", "amount": 2500, "currency": "usd", "customer": "cus_ada",
        "payment_method": "pm_card_visa", "metadata": {"tollgate_payment": id, "tollgate_org": ada.org_id, "tollgate_purpose": "checkout"}}))
    .to_string();
    deliver(&app, &saved).await;
    let paid = event("checkout.session.completed", json!({"id": "cs_test_1", "amount_total": 2500, "currency": "usd",
        "customer": "cus_ada", "payment_status": "paid", "metadata": {"tollgate_payment": id, "tollgate_org": ada.org_id}}))
    .to_string();
    assert_eq!(deliver(&app, &paid).await["applied"], true);
    set_recharge(&app, &me, json!({"enabled": true, "threshold": "120", "amount": "20"})).await;
    watch(&app).await;

    // Paid at once: credited now; Stripe's webhook about it later changes nothing.
    spend(&app, &ada.org_id, 10).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    let charges = fake.seen_at("/v1/payment_intents");
    assert_eq!(charges.len(), 1);
    let c = &charges[0];
    let pairs: Vec<(&str, &str)> = c.form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let payment = c.field("metadata[tollgate_payment]").unwrap().to_string();
    assert_eq!(
        pairs,
        vec![
            ("amount", "2000"),
            ("currency", "usd"),
            ("customer", "cus_ada"),
            ("payment_method", "pm_card_visa"),
            ("off_session", "true"),
            ("confirm", "true"),
            ("description", "Auto-recharge"),
            ("metadata[tollgate_payment]", payment.as_str()),
            ("metadata[tollgate_org]", ada.org_id.as_str()),
            ("metadata[tollgate_purpose]", "recharge"),
        ]
    );
    assert_eq!(c.headers["idempotency-key"], payment.as_str());
    assert_eq!(balance(&app, &me).await["balance"], "135.000000");
    assert_eq!(
        deliver(&app, &intent("payment_intent.succeeded", "pi_test_2", &payment, &ada.org_id, 2000)).await["applied"],
        false
    );
    assert_eq!(balance(&app, &me).await["balance"], "135.000000");
    assert_eq!(newest_two(&app, &me).await[0], ("Auto-recharge".to_string(), "20.000000".to_string()));

    // Declined: told with Stripe's reason; no retry for the same crossing.
    fake.answer_intents(IntentAnswer::Declined("Your card has insufficient funds."));
    spend(&app, &ada.org_id, 20).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    assert_eq!(watch(&app).await, Watched::default());
    assert_eq!(fake.seen_at("/v1/payment_intents").len(), 2);
    assert_eq!(balance(&app, &me).await["recharge_status"]["last_failure"], "Your card has insufficient funds.");
    assert!(bodies(&app, &ada).await[0].contains("Your card has insufficient funds"));
    assert_eq!(balance(&app, &me).await["balance"], "115.000000");

    // Pending: in flight until the webhook; a new crossing meanwhile charges nothing more.
    fake.answer_intents(IntentAnswer::Status("processing"));
    fund(&app, &ada.org_id, 10).await;
    watch(&app).await;
    spend(&app, &ada.org_id, 10).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    assert_eq!(balance(&app, &me).await["recharge_status"]["in_flight"], true);
    let pending = fake.seen_at("/v1/payment_intents").pop().unwrap();
    let pending_payment = pending.field("metadata[tollgate_payment]").unwrap().to_string();
    fund(&app, &ada.org_id, 10).await;
    watch(&app).await;
    spend(&app, &ada.org_id, 10).await;
    assert_eq!(watch(&app).await, watched(1, 0), "one recharge in flight at a time");
    assert_eq!(fake.seen_at("/v1/payment_intents").len(), 3);
    let done = intent("payment_intent.succeeded", "pi_test_4", &pending_payment, &ada.org_id, 2000);
    assert_eq!(deliver(&app, &done).await["applied"], true);
    let b = balance(&app, &me).await;
    assert_eq!((b["balance"].as_str(), b["recharge_status"]["in_flight"].as_bool()), (Some("135.000000"), Some(false)));

    // No answer: failed and told; if Stripe charged after all, its webhook still credits.
    fake.answer_intents(IntentAnswer::Outage);
    fund(&app, &ada.org_id, 10).await;
    watch(&app).await;
    spend(&app, &ada.org_id, 30).await;
    assert_eq!(watch(&app).await, watched(1, 1));
    let lost = fake.seen_at("/v1/payment_intents").pop().unwrap();
    let lost_payment = lost.field("metadata[tollgate_payment]").unwrap().to_string();
    assert_eq!(balance(&app, &me).await["recharge_status"]["last_failure"], "the payment provider did not answer");
    let late = intent("payment_intent.succeeded", "pi_test_5", &lost_payment, &ada.org_id, 2000);
    assert_eq!(deliver(&app, &late).await["applied"], true);
    assert_eq!(balance(&app, &me).await["balance"], "135.000000");
    assert_eq!(deliver(&app, &late).await["applied"], false);

    // A pending recharge that fails by webhook: failed, told.
    fake.answer_intents(IntentAnswer::Status("processing"));
    watch(&app).await;
    spend(&app, &ada.org_id, 20).await;
    watch(&app).await;
    let last = fake.seen_at("/v1/payment_intents").pop().unwrap();
    let last_payment = last.field("metadata[tollgate_payment]").unwrap().to_string();
    let failed = intent("payment_intent.payment_failed", "pi_test_6", &last_payment, &ada.org_id, 2000);
    assert_eq!(deliver(&app, &failed).await["applied"], true);
    assert_eq!(deliver(&app, &failed).await["applied"], false);
    let b = balance(&app, &me).await;
    assert_eq!(b["recharge_status"]["last_failure"], "Your card was declined.");
    assert_eq!(b["recharge_status"]["in_flight"], false);
    let (sum, consistent) = app.store.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true));
}

#[tokio::test]
async fn low_balance_and_budget_alerts_go_to_owners_and_admins_once() {
    let app = TestApp::new().await;
    let owner = app.user("owner@example.com").await;
    let team = app.team(&owner, "Acme").await;
    let admin = app.join(&owner, &team, "admin@example.com", "admin").await;
    let member = app.join(&owner, &team, "member@example.com", "member").await;
    let outsider = app.user("outsider@example.com").await;
    fund(&app, &team, 100).await;
    let r = app
        .call(Method::PUT, "/api/v1/billing/budget", Some(json!({"monthly_limit": "50"})), &owner.in_org(&team))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(watch(&app).await, Watched::default());
    spend(&app, &team, 39).await;
    assert_eq!(watch(&app).await, Watched::default(), "78% of the budget");
    spend(&app, &team, 1).await;
    assert_eq!(watch(&app).await, Watched { budget_alerts: 1, ..Watched::default() });
    assert_eq!(watch(&app).await, Watched::default(), "once");
    spend(&app, &team, 10).await;
    assert_eq!(watch(&app).await, Watched { budget_alerts: 1, ..Watched::default() });
    for who in [&owner, &admin] {
        let t = titles(&app, who).await;
        let money: Vec<&String> = t.iter().filter(|t| !t.contains("invited")).collect();
        assert_eq!(money, vec!["80% of the monthly budget spent", "Monthly budget reached"], "{}", who.email);
    }
    assert!(bodies(&app, &owner).await[0].starts_with("The team Acme's $50.00 of the $50.00 monthly budget is spent."));

    // The team's balance is 50: no low balance. The owner's own org: 100 → 4.
    spend(&app, &owner.org_id, 96).await;
    assert_eq!(watch(&app).await, watched(1, 0));
    assert_eq!(watch(&app).await, Watched::default());
    assert_eq!(titles(&app, &owner).await.last().unwrap(), "Low balance");
    assert_eq!(
        bodies(&app, &owner).await[0],
        "Your balance is $4.00, below $5.00. Add credits so calls are not refused for lack of credits."
    );
    for who in [&member, &outsider] {
        assert!(
            titles(&app, who).await.iter().all(|t| t.contains("invited")),
            "{}: {:?}",
            who.email,
            titles(&app, who).await
        );
    }
    assert!(titles(&app, &admin).await.iter().all(|t| t != "Low balance"), "the owner's personal org is theirs alone");
}
