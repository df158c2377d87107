//! Stripe's wire format, against a local HTTP server that records each request exactly and
//! answers as Stripe does: the checkout session and payment intent forms, the headers,
//! and how each kind of answer (success, decline, refusal, outage) is read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::sync::{Arc, Mutex};
use tollgate_domain::Nanos;
use tollgate_integrations::payments::signature::sign;
use tollgate_integrations::payments::{
    ChargeOutcome, ChargeRequest, CheckoutRequest, Event, PaymentError, PaymentProvider, Stripe, StripeConfig,
    WebhookError,
};

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    form: Vec<(String, String)>,
}

/// The fake API: what it saw, and the answer (status, JSON) it gives next.
#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<(u16, String)>>,
}

impl Fake {
    fn answer(&self, status: u16, body: serde_json::Value) {
        *self.answer.lock().unwrap() = (status, body.to_string());
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("a request")
    }
}

async fn record(
    State(fake): State<Fake>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let form = form_urlencoded::parse(&body).into_owned().collect();
    fake.seen.lock().unwrap().push(Seen { path: uri.path().to_string(), headers, form });
    let (status, body) = fake.answer.lock().unwrap().clone();
    (StatusCode::from_u16(status).unwrap(), body)
}

async fn serve() -> (Fake, String) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/v1/checkout/sessions", post(record))
        .route("/v1/payment_intents", post(record))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, base)
}

fn stripe(base: &str) -> Stripe {
    Stripe::new(StripeConfig {
        secret_key: "sk_test_123".into(),
        webhook_secret: "whsec_abc".into(),
        api_base: format!("{base}/"),
        product_name: "Tollgate credits".into(),
    })
    .unwrap()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn checkout_request() -> CheckoutRequest {
    CheckoutRequest {
        payment_id: "pay_1".into(),
        org_id: "org_1".into(),
        amount: Nanos(25_000_000_000),
        success_url: "https://tollgate.example/billing?checkout=pay_1".into(),
        cancel_url: "https://tollgate.example/billing?checkout=pay_1&canceled=1".into(),
        customer: None,
        email: Some("ada@example.com".into()),
    }
}

#[tokio::test]
async fn a_checkout_session_is_the_exact_form_stripe_documents() {
    let (fake, base) = serve().await;
    let stripe = stripe(&base);
    fake.answer(200, serde_json::json!({"id": "cs_test_a1", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_a1"}));
    let checkout = stripe.create_checkout(&checkout_request()).await.unwrap();
    assert_eq!(checkout.reference, "cs_test_a1");
    assert_eq!(checkout.url, "https://checkout.stripe.com/c/pay/cs_test_a1");
    let seen = fake.last();
    assert_eq!(seen.path, "/v1/checkout/sessions");
    assert_eq!(seen.headers["authorization"], "Bearer sk_test_123");
    assert_eq!(seen.headers["idempotency-key"], "pay_1");
    assert_eq!(seen.headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(
        seen.form,
        pairs(&[
            ("mode", "payment"),
            ("success_url", "https://tollgate.example/billing?checkout=pay_1"),
            ("cancel_url", "https://tollgate.example/billing?checkout=pay_1&canceled=1"),
            ("client_reference_id", "org_1"),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", "usd"),
            ("line_items[0][price_data][unit_amount]", "2500"),
            ("line_items[0][price_data][product_data][name]", "Tollgate credits"),
            ("metadata[tollgate_payment]", "pay_1"),
            ("metadata[tollgate_org]", "org_1"),
            ("payment_intent_data[setup_future_usage]", "off_session"),
            ("payment_intent_data[metadata][tollgate_payment]", "pay_1"),
            ("payment_intent_data[metadata][tollgate_org]", "org_1"),
            ("payment_intent_data[metadata][tollgate_purpose]", "checkout"),
            ("customer_creation", "always"),
            ("customer_email", "ada@example.com"),
        ])
    );

    // A customer saved before: the new card joins it; no new customer, no email.
    let again = CheckoutRequest { customer: Some("cus_9".into()), payment_id: "pay_2".into(), ..checkout_request() };
    stripe.create_checkout(&again).await.unwrap();
    let seen = fake.last();
    assert_eq!(seen.headers["idempotency-key"], "pay_2");
    assert_eq!(seen.form.last().unwrap(), &("customer".to_string(), "cus_9".to_string()));
    assert!(!seen.form.iter().any(|(k, _)| k == "customer_creation" || k == "customer_email"));
}

#[tokio::test]
async fn checkout_failures_are_told_apart() {
    let (fake, base) = serve().await;
    let stripe = stripe(&base);
    fake.answer(401, serde_json::json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_***123"}}));
    assert_eq!(
        stripe.create_checkout(&checkout_request()).await,
        Err(PaymentError::Refused("Invalid API Key provided: sk_test_***123".into()))
    );
    fake.answer(500, serde_json::json!({"error": {"message": "An unknown error occurred"}}));
    assert!(matches!(stripe.create_checkout(&checkout_request()).await, Err(PaymentError::Unavailable(_))));
    fake.answer(200, serde_json::json!({"id": "cs_1"}));
    assert!(matches!(stripe.create_checkout(&checkout_request()).await, Err(PaymentError::Unavailable(_))));
    let odd = CheckoutRequest { amount: Nanos(25_000_000_001), ..checkout_request() };
    let before = fake.seen.lock().unwrap().len();
    assert!(matches!(stripe.create_checkout(&odd).await, Err(PaymentError::Invalid(_))));
    assert_eq!(fake.seen.lock().unwrap().len(), before, "nothing sent");
    // Nobody listening.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    assert!(matches!(
        crate::stripe(&gone).create_checkout(&checkout_request()).await,
        Err(PaymentError::Unavailable(_))
    ));
}

fn charge_request() -> ChargeRequest {
    ChargeRequest {
        payment_id: "pay_r1".into(),
        org_id: "org_1".into(),
        amount: Nanos(50_000_000_000),
        customer: "cus_1".into(),
        payment_method: "pm_1".into(),
    }
}

#[tokio::test]
async fn an_off_session_charge_and_what_its_answers_mean() {
    let (fake, base) = serve().await;
    let stripe = stripe(&base);
    fake.answer(
        200,
        serde_json::json!({"id": "pi_1", "object": "payment_intent", "status": "succeeded", "amount": 5000}),
    );
    assert_eq!(stripe.charge_saved(&charge_request()).await, Ok(ChargeOutcome::Succeeded { reference: "pi_1".into() }));
    let seen = fake.last();
    assert_eq!(seen.path, "/v1/payment_intents");
    assert_eq!(seen.headers["authorization"], "Bearer sk_test_123");
    assert_eq!(seen.headers["idempotency-key"], "pay_r1");
    assert_eq!(
        seen.form,
        pairs(&[
            ("amount", "5000"),
            ("currency", "usd"),
            ("customer", "cus_1"),
            ("payment_method", "pm_1"),
            ("off_session", "true"),
            ("confirm", "true"),
            ("description", "Auto-recharge"),
            ("metadata[tollgate_payment]", "pay_r1"),
            ("metadata[tollgate_org]", "org_1"),
            ("metadata[tollgate_purpose]", "recharge"),
        ])
    );
    fake.answer(200, serde_json::json!({"id": "pi_2", "status": "processing"}));
    assert_eq!(stripe.charge_saved(&charge_request()).await, Ok(ChargeOutcome::Pending { reference: "pi_2".into() }));
    fake.answer(200, serde_json::json!({"id": "pi_3", "status": "requires_action"}));
    assert!(matches!(stripe.charge_saved(&charge_request()).await,
        Ok(ChargeOutcome::Declined { reference: Some(r), .. }) if r == "pi_3"));
    fake.answer(402, serde_json::json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.", "payment_intent": {"id": "pi_4", "status": "requires_payment_method"}}}));
    assert_eq!(
        stripe.charge_saved(&charge_request()).await,
        Ok(ChargeOutcome::Declined {
            reference: Some("pi_4".into()),
            reason: "Your card has insufficient funds.".into()
        })
    );
    fake.answer(400, serde_json::json!({"error": {"message": "No such customer: 'cus_1'"}}));
    assert_eq!(
        stripe.charge_saved(&charge_request()).await,
        Err(PaymentError::Refused("No such customer: 'cus_1'".into()))
    );
    fake.answer(429, serde_json::json!({"error": {"message": "Too many requests"}}));
    assert!(matches!(stripe.charge_saved(&charge_request()).await, Err(PaymentError::Unavailable(_))));
}

#[tokio::test]
async fn webhooks_are_verified_with_the_endpoint_secret() {
    let stripe = stripe("http://127.0.0.1:9");
    let body = serde_json::json!({"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {
        "id": "cs_1", "payment_status": "paid", "amount_total": 2500, "currency": "usd",
        "metadata": {"tollgate_payment": "pay_1", "tollgate_org": "org_1"}}}})
    .to_string();
    let now = 1_750_000_000;
    let header = sign("whsec_abc", now - 10, body.as_bytes());
    assert!(matches!(stripe.verify_webhook(Some(&header), body.as_bytes(), now), Ok(Event::CheckoutPaid { .. })));
    let forged = sign("whsec_guess", now, body.as_bytes());
    assert_eq!(stripe.verify_webhook(Some(&forged), body.as_bytes(), now), Err(WebhookError::BadSignature));
    assert_eq!(stripe.verify_webhook(None, body.as_bytes(), now), Err(WebhookError::MissingSignature));
    assert_eq!(stripe.verify_webhook(Some(&header), body.as_bytes(), now + 3600), Err(WebhookError::Stale));
    let tampered = body.replace("2500", "250000");
    assert_eq!(stripe.verify_webhook(Some(&header), tampered.as_bytes(), now), Err(WebhookError::BadSignature));
}

#[test]
fn the_secret_key_is_never_in_debug_output() {
    let text = format!("{:?}", stripe("http://127.0.0.1:9"));
    assert!(!text.contains("sk_test_123") && !text.contains("whsec_abc"), "{text}");
}
