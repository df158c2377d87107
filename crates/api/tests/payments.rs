//! Buying credits by card, end to end through the API: the local provider's test checkout
//! (confirmed through the signed-webhook path), Stripe's Checkout Sessions against a local
//! stand-in of its API, and webhooks that are forged, stale, replayed, raced, or disagree
//! with the payment — each credited once or not at all. On SQLite, and on PostgreSQL when
//! `TOLLGATE_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fake_stripe;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Caller, Reply, TestApp, TestUser};
use fake_stripe::{FakeStripe, WEBHOOK_SECRET, event, signature};
use serde_json::{Value, json};
use std::sync::Arc;

const PUBLIC: &str = common::PUBLIC_URL;

async fn stripe_app(fake: &FakeStripe) -> TestApp {
    TestApp::with_payments(Arc::new(fake.provider())).await
}

async fn balance(app: &TestApp, who: &Caller) -> String {
    app.get("/api/v1/billing/balance", who).await.body["balance"].as_str().unwrap().to_string()
}

async fn titles(app: &TestApp, user: &TestUser) -> Vec<String> {
    let list = app.get("/api/v1/notifications", &user.caller()).await.body;
    list.as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap().to_string()).collect()
}

/// Posts a webhook to `/api/v1/billing/webhooks/{provider}` with `signature`.
async fn deliver(app: &TestApp, provider: &str, body: &str, signature: Option<&str>) -> Reply {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/billing/webhooks/{provider}"))
        .header("content-type", "application/json");
    if let Some(s) = signature {
        req = req.header("stripe-signature", s);
    }
    app.send(req.body(Body::from(body.to_string())).unwrap()).await
}

async fn audit(app: &TestApp) {
    let (sum, consistent) = app.store.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true), "the ledger balances");
}

#[tokio::test]
async fn a_test_checkout_of_the_local_provider_credits_once_through_the_signed_webhook_path() {
    let app = TestApp::with_local_payments().await;
    let ada = app.user("ada@example.com").await;
    let me = ada.caller();
    let before = app.get("/api/v1/billing/balance", &me).await.body;
    assert_eq!(
        before["card_payments"],
        json!({"provider": "local", "min_amount": "5.000000", "max_amount": "10000.000000", "card_on_file": false})
    );

    let started = app.post("/api/v1/billing/checkout", json!({"amount": "25.00"}), &me).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let id = started.body["id"].as_str().unwrap().to_string();
    assert_eq!(started.body["url"], format!("{PUBLIC}/billing/test-checkout/{id}"));
    assert_eq!(
        (started.body["amount"].as_str(), started.body["provider"].as_str()),
        (Some("25.000000"), Some("local"))
    );
    let open = app.get(&format!("/api/v1/billing/payments/{id}"), &me).await;
    assert_eq!((open.body["status"].as_str(), open.body["kind"].as_str()), (Some("open"), Some("checkout")));
    assert_eq!(balance(&app, &me).await, "100.000000", "nothing credited before the payment");

    let confirmed = app.post(&format!("/api/v1/billing/payments/{id}/test-confirm"), json!({}), &me).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["status"], "succeeded");
    assert_eq!(balance(&app, &me).await, "125.000000");
    let again = app.post(&format!("/api/v1/billing/payments/{id}/test-confirm"), json!({}), &me).await;
    assert_eq!((again.status, again.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("payment_closed")));
    assert_eq!(balance(&app, &me).await, "125.000000", "confirmed once");

    let history = app.get("/api/v1/billing/transactions", &me).await.body;
    let line = &history["transactions"][0];
    assert_eq!((line["kind"].as_str(), line["amount"].as_str()), (Some("payment"), Some("25.000000")));
    assert_eq!(line["memo"], "Test payment (local provider, no card charged)");
    let after = app.get("/api/v1/billing/balance", &me).await.body;
    assert_eq!(after["card_payments"]["card_on_file"], true, "the test card is saved for auto-recharge");
    assert_eq!(titles(&app, &ada).await, vec!["Payment received"]);
    let list = app.get("/api/v1/billing/payments", &me).await.body;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    audit(&app).await;

    // The local provider's webhook path takes only what this process signed.
    let forged = event(
        "checkout.session.completed",
        json!({"id": "lcs_x", "payment_status": "paid", "amount_total": 500000,
        "metadata": {"tollgate_payment": id, "tollgate_org": ada.org_id}}),
    )
    .to_string();
    let r = deliver(&app, "local", &forged, Some(&signature("whsec_guess", &forged))).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_webhook")));
    assert_eq!(
        deliver(&app, "stripe", &forged, Some(&signature(WEBHOOK_SECRET, &forged))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(balance(&app, &me).await, "125.000000");
}

#[tokio::test]
async fn who_may_buy_and_what_amounts_are_refused() {
    let app = TestApp::with_local_payments().await;
    let owner = app.user("owner@example.com").await;
    let team = app.team(&owner, "Acme").await;
    let mut roles = Vec::new();
    for (email, role) in
        [("admin@example.com", "admin"), ("member@example.com", "member"), ("viewer@example.com", "viewer")]
    {
        roles.push((app.join(&owner, &team, email, role).await, role));
    }
    for (u, role) in &roles {
        let r = app.post("/api/v1/billing/checkout", json!({"amount": "10"}), &u.in_org(&team)).await;
        let expected = if *role == "admin" { StatusCode::CREATED } else { StatusCode::FORBIDDEN };
        assert_eq!(r.status, expected, "{role}: {:?}", r.body);
    }
    // A token without billing:write may read but not buy.
    let browser = owner.browser();
    let t = app.post("/api/v1/tokens", json!({"name": "read", "scopes": ["billing:read"]}), &browser).await;
    let reader = Caller { bearer: Some(t.body["token"].as_str().unwrap().into()), ..Caller::default() };
    assert_eq!(
        app.post("/api/v1/billing/checkout", json!({"amount": "10"}), &reader).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get("/api/v1/billing/payments", &reader).await.status, StatusCode::OK);

    let me = owner.caller();
    for bad in [
        json!({"amount": "4.99"}),
        json!({"amount": "10000.01"}),
        json!({"amount": "5.001"}),
        json!({"amount": "lots"}),
        json!({"amount": "-5"}),
        json!({"amount": 25}),
        json!({}),
        json!({"amount": "25", "card": "4242"}),
    ] {
        let r = app.post("/api/v1/billing/checkout", bad.clone(), &me).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {:?}", r.body);
    }
    let r = app.post("/api/v1/billing/checkout", json!({"amount": "4.99"}), &me).await;
    assert_eq!(r.body["error"]["message"], "amount: must be between $5.00 and $10,000.00");
    assert_eq!(app.get("/api/v1/billing/payments", &me).await.body, json!([]), "nothing recorded");

    // Another org's payment is not found, neither read nor confirmed.
    let admin = &roles[0].0;
    let theirs = app.post("/api/v1/billing/checkout", json!({"amount": "10"}), &admin.in_org(&team)).await;
    let id = theirs.body["id"].as_str().unwrap();
    let stranger = app.user("stranger@example.com").await;
    assert_eq!(
        app.get(&format!("/api/v1/billing/payments/{id}"), &stranger.caller()).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.post(&format!("/api/v1/billing/payments/{id}/test-confirm"), json!({}), &stranger.caller()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let member = &roles[1].0;
    let r = app.post(&format!("/api/v1/billing/payments/{id}/test-confirm"), json!({}), &member.in_org(&team)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "members cannot pay for the team");
    assert_eq!(balance(&app, &owner.in_org(&team)).await, "0.000000");

    // Without a provider: a clear refusal, and the balance says how credits come.
    let plain = TestApp::new().await;
    let bob = plain.user("bob@example.com").await;
    let r = plain.post("/api/v1/billing/checkout", json!({"amount": "25"}), &bob.caller()).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("payments_not_configured")));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("tollgate admin grant-credits"));
    assert_eq!(
        plain.get("/api/v1/billing/balance", &bob.caller()).await.body["card_payments"]["provider"],
        Value::Null
    );
    let r = deliver(&plain, "stripe", "{}", Some("t=1,v1=00")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// A paid checkout session event for `payment` of `org`.
fn session_paid(session: &str, payment: &str, org: &str, cents: i64) -> String {
    event(
        "checkout.session.completed",
        json!({"id": session, "object": "checkout.session", "amount_total": cents, "currency": "usd", "customer": "cus_ada",
            "payment_status": "paid", "payment_intent": "pi_checkout_1", "client_reference_id": org,
            "metadata": {"tollgate_payment": payment, "tollgate_org": org}}),
    )
    .to_string()
}

#[tokio::test]
async fn a_stripe_checkout_is_created_as_stripe_documents_and_credited_once_by_its_webhook() {
    let fake = FakeStripe::start().await;
    let app = stripe_app(&fake).await;
    let ada = app.user("ada@example.com").await;
    let me = ada.caller();
    let started = app.post("/api/v1/billing/checkout", json!({"amount": "25"}), &me).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    assert_eq!(started.body["url"], "https://checkout.stripe.test/c/pay/cs_test_1");
    let id = started.body["id"].as_str().unwrap().to_string();
    let sent = fake.seen_at("/v1/checkout/sessions");
    assert_eq!(sent.len(), 1);
    let s = &sent[0];
    assert_eq!(s.headers["authorization"], format!("Bearer {}", fake_stripe::SECRET_KEY));
    assert_eq!(s.headers["idempotency-key"], id.as_str());
    assert_eq!(s.field("line_items[0][price_data][unit_amount]"), Some("2500"));
    assert_eq!(s.field("metadata[tollgate_payment]"), Some(id.as_str()));
    assert_eq!(s.field("metadata[tollgate_org]"), Some(ada.org_id.as_str()));
    assert_eq!(s.field("success_url"), Some(format!("{PUBLIC}/billing?payment={id}").as_str()));
    assert_eq!(s.field("cancel_url"), Some(format!("{PUBLIC}/billing?payment={id}&canceled=1").as_str()));
    assert_eq!(s.field("customer_email"), Some("ada@example.com"));
    assert_eq!(s.field("payment_intent_data[setup_future_usage]"), Some("off_session"));

    let paid = session_paid("cs_test_1", &id, &ada.org_id, 2500);
    // Unsigned, forged, stale, tampered: refused, nothing changes.
    assert_eq!(deliver(&app, "stripe", &paid, None).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        deliver(&app, "stripe", &paid, Some(&signature("whsec_wrong", &paid))).await.status,
        StatusCode::BAD_REQUEST
    );
    let old = tollgate_integrations::payments::signature::sign(
        WEBHOOK_SECRET,
        tollgate_domain::time::now_ms() / 1000 - 301,
        paid.as_bytes(),
    );
    let stale = deliver(&app, "stripe", &paid, Some(&old)).await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST);
    assert!(stale.body["error"]["message"].as_str().unwrap().contains("too old"));
    let tampered = paid.replace("2500", "250000");
    assert_eq!(
        deliver(&app, "stripe", &tampered, Some(&signature(WEBHOOK_SECRET, &paid))).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(balance(&app, &me).await, "100.000000");

    // Signed by Stripe, but disagreeing with the payment Tollgate started: refused.
    let bob = app.user("bob@example.com").await;
    for wrong in [
        session_paid("cs_test_1", &id, &ada.org_id, 250000),
        session_paid("cs_test_1", &id, &bob.org_id, 2500),
        session_paid("cs_test_other", &id, &ada.org_id, 2500),
        session_paid("cs_test_1", &id, &ada.org_id, 2500).replace("\"usd\"", "\"eur\""),
    ] {
        let r = deliver(&app, "stripe", &wrong, Some(&signature(WEBHOOK_SECRET, &wrong))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}: {:?}", r.body);
    }
    assert_eq!(balance(&app, &me).await, "100.000000");
    assert_eq!(balance(&app, &bob.caller()).await, "100.000000");

    // The real one, delivered eight times at once and once more later: credited once.
    let header = signature(WEBHOOK_SECRET, &paid);
    let mut deliveries = Vec::new();
    for _ in 0..8 {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/billing/webhooks/stripe")
            .header("stripe-signature", header.as_str())
            .body(Body::from(paid.clone()))
            .unwrap();
        deliveries.push(tokio::spawn(common::send(app.router(), req)));
    }
    let mut applied = 0;
    for d in deliveries {
        let r = d.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        applied += usize::from(r.body["applied"] == true);
    }
    assert_eq!(applied, 1);
    let replay = deliver(&app, "stripe", &paid, Some(&signature(WEBHOOK_SECRET, &paid))).await;
    assert_eq!((replay.status, replay.body["applied"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(balance(&app, &me).await, "125.000000");
    let history = app.get("/api/v1/billing/transactions", &me).await.body;
    assert_eq!(
        (history["transactions"][0]["kind"].as_str(), history["transactions"][0]["memo"].as_str()),
        (Some("payment"), Some("Card payment"))
    );
    assert_eq!(app.get(&format!("/api/v1/billing/payments/{id}"), &me).await.body["status"], "succeeded");
    assert_eq!(titles(&app, &ada).await, vec!["Payment received"], "told once");

    // The checkout's payment intent saves the card for auto-recharge; the next checkout
    // reuses the customer.
    assert_eq!(app.get("/api/v1/billing/balance", &me).await.body["card_payments"]["card_on_file"], false);
    let intent = event(
        "payment_intent.succeeded",
        json!({"id": "pi_checkout_1", "amount": 2500, "amount_received": 2500,
        "currency": "usd", "customer": "cus_ada", "payment_method": "pm_card_visa", "status": "succeeded",
        "metadata": {"tollgate_payment": id, "tollgate_org": ada.org_id, "tollgate_purpose": "checkout"}}),
    )
    .to_string();
    let r = deliver(&app, "stripe", &intent, Some(&signature(WEBHOOK_SECRET, &intent))).await;
    assert_eq!(r.body["applied"], true);
    assert_eq!(app.get("/api/v1/billing/balance", &me).await.body["card_payments"]["card_on_file"], true);
    assert_eq!(balance(&app, &me).await, "125.000000", "the intent of a checkout credits nothing itself");
    app.post("/api/v1/billing/checkout", json!({"amount": "5"}), &me).await;
    let second = fake.seen_at("/v1/checkout/sessions").pop().unwrap();
    assert_eq!(second.field("customer"), Some("cus_ada"));
    assert_eq!(second.field("customer_email"), None);

    // Events Tollgate does not act on, or about payments that are not its own: 200, nothing.
    for other in [
        event("customer.created", json!({"id": "cus_1"})).to_string(),
        session_paid("cs_elsewhere", "pay_not_ours", &ada.org_id, 2500),
        event("checkout.session.completed", json!({"id": "cs_unpaid", "payment_status": "unpaid"})).to_string(),
    ] {
        let r = deliver(&app, "stripe", &other, Some(&signature(WEBHOOK_SECRET, &other))).await;
        assert_eq!((r.status, r.body["applied"].as_bool()), (StatusCode::OK, Some(false)), "{other}");
    }
    let r = deliver(&app, "stripe", "not json", Some(&signature(WEBHOOK_SECRET, "not json"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(balance(&app, &me).await, "125.000000");
    audit(&app).await;
}

#[tokio::test]
async fn an_expired_or_failed_checkout_ends_the_payment_and_a_provider_outage_charges_nothing() {
    let fake = FakeStripe::start().await;
    let app = stripe_app(&fake).await;
    let ada = app.user("ada@example.com").await;
    let me = ada.caller();
    let id = app.post("/api/v1/billing/checkout", json!({"amount": "25"}), &me).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let expired =
        event("checkout.session.expired", json!({"id": "cs_test_1", "metadata": {"tollgate_payment": id}})).to_string();
    assert_eq!(
        deliver(&app, "stripe", &expired, Some(&signature(WEBHOOK_SECRET, &expired))).await.body["applied"],
        true
    );
    assert_eq!(app.get(&format!("/api/v1/billing/payments/{id}"), &me).await.body["status"], "canceled");

    let id = app.post("/api/v1/billing/checkout", json!({"amount": "30"}), &me).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = event(
        "checkout.session.async_payment_failed",
        json!({"id": "cs_test_2", "metadata": {"tollgate_payment": id}}),
    )
    .to_string();
    assert_eq!(deliver(&app, "stripe", &failed, Some(&signature(WEBHOOK_SECRET, &failed))).await.body["applied"], true);
    let p = app.get(&format!("/api/v1/billing/payments/{id}"), &me).await.body;
    assert_eq!(p["status"], "failed");
    assert_eq!(titles(&app, &ada).await, vec!["Payment failed"]);
    assert_eq!(balance(&app, &me).await, "100.000000");

    // Stripe down: a 502 that says nothing was charged; the payment is recorded as failed.
    let down = TestApp::with_payments(Arc::new(
        tollgate_integrations::payments::Stripe::new(tollgate_integrations::payments::StripeConfig {
            secret_key: "sk".into(),
            webhook_secret: "whsec".into(),
            api_base: "http://127.0.0.1:9".into(),
            product_name: "Tollgate credits".into(),
        })
        .unwrap(),
    ))
    .await;
    let bob = down.user("bob@example.com").await;
    let r = down.post("/api/v1/billing/checkout", json!({"amount": "25"}), &bob.caller()).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("payment_provider_unavailable"))
    );
    assert!(r.body["error"]["message"].as_str().unwrap().contains("nothing was charged"));
    let list = down.get("/api/v1/billing/payments", &bob.caller()).await.body;
    assert_eq!(list[0]["status"], "failed");
}
