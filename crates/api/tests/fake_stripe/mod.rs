//! A local stand-in for Stripe's API on a free port: it records every request (path,
//! headers, form) and answers checkout sessions and payment intents the way Stripe does;
//! and webhooks signed the way Stripe signs them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tollgate_domain::time::now_ms;
use tollgate_integrations::payments::signature::sign;
use tollgate_integrations::payments::{Stripe, StripeConfig};

pub const SECRET_KEY: &str = "sk_test_tollgate";
pub const WEBHOOK_SECRET: &str = "whsec_tollgate_test";

/// A request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub form: Vec<(String, String)>,
}

impl Seen {
    /// A form field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How the fake answers payment intents: `(status code, PaymentIntent status or error)`.
#[derive(Debug, Clone)]
pub enum IntentAnswer {
    /// 200 with this `status` (`succeeded`, `processing`, …).
    Status(&'static str),
    /// 402 card_declined with this message.
    Declined(&'static str),
    /// 500.
    Outage,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    intent: Arc<Mutex<IntentAnswer>>,
}

async fn handle(State(fake): State<FakeStripe>, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let n = {
        let mut seen = fake.seen.lock().unwrap();
        seen.push(Seen { path: uri.path().to_string(), headers, form });
        seen.len()
    };
    if uri.path() == "/v1/checkout/sessions" {
        let id = format!("cs_test_{n}");
        return (
            StatusCode::OK,
            json!({"id": id, "object": "checkout.session", "url": format!("https://checkout.stripe.test/c/pay/{id}")})
                .to_string(),
        );
    }
    let id = format!("pi_test_{n}");
    match fake.intent.lock().unwrap().clone() {
        IntentAnswer::Status(status) => {
            (StatusCode::OK, json!({"id": id, "object": "payment_intent", "status": status}).to_string())
        }
        IntentAnswer::Declined(message) => (
            StatusCode::PAYMENT_REQUIRED,
            json!({"error": {"type": "card_error", "code": "card_declined", "message": message,
                "payment_intent": {"id": id, "status": "requires_payment_method"}}})
            .to_string(),
        ),
        IntentAnswer::Outage => (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": {"message": "boom"}}).to_string()),
    }
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeStripe {
            base: format!("http://{}", listener.local_addr().unwrap()),
            seen: Arc::default(),
            intent: Arc::new(Mutex::new(IntentAnswer::Status("succeeded"))),
        };
        let app = Router::new()
            .route("/v1/checkout/sessions", post(handle))
            .route("/v1/payment_intents", post(handle))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The provider, pointed at this fake.
    pub fn provider(&self) -> Stripe {
        Stripe::new(StripeConfig {
            secret_key: SECRET_KEY.into(),
            webhook_secret: WEBHOOK_SECRET.into(),
            api_base: self.base.clone(),
            product_name: "Tollgate credits".into(),
        })
        .unwrap()
    }

    pub fn answer_intents(&self, answer: IntentAnswer) {
        *self.intent.lock().unwrap() = answer;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests to `path`.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

/// A Stripe event of `kind` about `object`.
pub fn event(kind: &str, object: Value) -> Value {
    json!({"id": format!("evt_{}", now_ms()), "object": "event", "type": kind, "created": now_ms() / 1000,
        "data": {"object": object}})
}

/// The `Stripe-Signature` header for `body`, signed now with `secret`.
pub fn signature(secret: &str, body: &str) -> String {
    sign(secret, now_ms() / 1000, body.as_bytes())
}
