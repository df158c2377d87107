//! Stripe: Checkout Sessions for purchases (the card is kept for off-session use),
//! off-session PaymentIntents for auto-recharge, and `Stripe-Signature` webhooks.
//!
//! Requests are form-encoded POSTs to the configured API base (`https://api.stripe.com`
//! unless the operator, or a test, points it elsewhere) with the secret key as a bearer
//! token and Tollgate's payment id as the `Idempotency-Key`, so a retried request never
//! makes a second session or charge.

use super::signature::{self, TOLERANCE_SECS};
use super::{
    ChargeOutcome, ChargeRequest, Checkout, CheckoutRequest, Event, PaymentError, PaymentProvider, WebhookError, meta,
    parse_event, to_cents,
};
use crate::BoxFuture;
use crate::http::{HttpError, HttpsClient, Reply};
use serde_json::Value;
use std::time::Duration;

/// What the operator configures.
#[derive(Clone)]
pub struct StripeConfig {
    /// The secret API key (`sk_live_…` or `sk_test_…`).
    pub secret_key: String,
    /// The webhook endpoint's signing secret (`whsec_…`).
    pub webhook_secret: String,
    /// The API's base URL, without a trailing slash.
    pub api_base: String,
    /// The name on the line item of a purchase, e.g. "Tollgate credits".
    pub product_name: String,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig").field("api_base", &self.api_base).finish_non_exhaustive()
    }
}

/// The Stripe provider.
#[derive(Debug, Clone)]
pub struct Stripe {
    config: StripeConfig,
    http: HttpsClient,
}

/// How long one request to Stripe may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Stripe {
    /// A provider for `config`.
    pub fn new(config: StripeConfig) -> Result<Stripe, PaymentError> {
        let http = HttpsClient::new(REQUEST_TIMEOUT).map_err(|e| PaymentError::Invalid(format!("TLS: {e}")))?;
        let api_base = config.api_base.trim_end_matches('/').to_string();
        Ok(Stripe { config: StripeConfig { api_base, ..config }, http })
    }

    async fn post(&self, path: &str, idempotency_key: &str, form: String) -> Result<Reply, PaymentError> {
        let url = format!("{}{path}", self.config.api_base);
        let auth = format!("Bearer {}", self.config.secret_key);
        let headers = [("authorization", auth.as_str()), ("idempotency-key", idempotency_key)];
        self.http.post_form(&url, &headers, form).await.map_err(|e| match e {
            HttpError::Request(why) => PaymentError::Invalid(why),
            other => PaymentError::Unavailable(other.to_string()),
        })
    }
}

/// The `error.message` of a Stripe error body, else a short description.
fn error_message(reply: &Reply) -> String {
    serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {}", reply.status))
}

fn json(reply: &Reply) -> Result<Value, PaymentError> {
    serde_json::from_slice(&reply.body).map_err(|_| PaymentError::Unavailable("the answer is not JSON".into()))
}

/// A refusal (4xx other than 402) or an outage (5xx, 429) as an error.
fn failed(reply: &Reply) -> PaymentError {
    if reply.status >= 500 || reply.status == 429 {
        PaymentError::Unavailable(error_message(reply))
    } else {
        PaymentError::Refused(error_message(reply))
    }
}

fn cents(amount: tollgate_domain::Nanos) -> Result<String, PaymentError> {
    to_cents(amount)
        .map(|c| c.to_string())
        .ok_or_else(|| PaymentError::Invalid("the amount must be a positive number of whole cents".into()))
}

/// The form of `POST /v1/checkout/sessions`.
pub(crate) fn checkout_form(request: &CheckoutRequest, product_name: &str) -> Result<String, PaymentError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("mode", "payment")
        .append_pair("success_url", &request.success_url)
        .append_pair("cancel_url", &request.cancel_url)
        .append_pair("client_reference_id", &request.org_id)
        .append_pair("line_items[0][quantity]", "1")
        .append_pair("line_items[0][price_data][currency]", "usd")
        .append_pair("line_items[0][price_data][unit_amount]", &cents(request.amount)?)
        .append_pair("line_items[0][price_data][product_data][name]", product_name)
        .append_pair(&format!("metadata[{}]", meta::PAYMENT), &request.payment_id)
        .append_pair(&format!("metadata[{}]", meta::ORG), &request.org_id)
        .append_pair("payment_intent_data[setup_future_usage]", "off_session")
        .append_pair(&format!("payment_intent_data[metadata][{}]", meta::PAYMENT), &request.payment_id)
        .append_pair(&format!("payment_intent_data[metadata][{}]", meta::ORG), &request.org_id)
        .append_pair(&format!("payment_intent_data[metadata][{}]", meta::PURPOSE), "checkout");
    match (&request.customer, &request.email) {
        (Some(customer), _) => {
            form.append_pair("customer", customer);
        }
        (None, email) => {
            form.append_pair("customer_creation", "always");
            if let Some(email) = email {
                form.append_pair("customer_email", email);
            }
        }
    }
    Ok(form.finish())
}

/// The form of `POST /v1/payment_intents` for an off-session charge.
pub(crate) fn charge_form(request: &ChargeRequest) -> Result<String, PaymentError> {
    Ok(form_urlencoded::Serializer::new(String::new())
        .append_pair("amount", &cents(request.amount)?)
        .append_pair("currency", "usd")
        .append_pair("customer", &request.customer)
        .append_pair("payment_method", &request.payment_method)
        .append_pair("off_session", "true")
        .append_pair("confirm", "true")
        .append_pair("description", "Auto-recharge")
        .append_pair(&format!("metadata[{}]", meta::PAYMENT), &request.payment_id)
        .append_pair(&format!("metadata[{}]", meta::ORG), &request.org_id)
        .append_pair(&format!("metadata[{}]", meta::PURPOSE), "recharge")
        .finish())
}

/// What a PaymentIntent (or a 402 card error carrying one) says about a charge.
fn charge_outcome(reply: &Reply) -> Result<ChargeOutcome, PaymentError> {
    match reply.status {
        200..=299 => {
            let intent = json(reply)?;
            let reference = intent["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| PaymentError::Unavailable("the payment intent has no id".into()))?;
            Ok(match intent["status"].as_str().unwrap_or_default() {
                "succeeded" => ChargeOutcome::Succeeded { reference },
                "processing" => ChargeOutcome::Pending { reference },
                "requires_action" | "requires_confirmation" => ChargeOutcome::Declined {
                    reference: Some(reference),
                    reason: "the card needs its holder to confirm the payment".into(),
                },
                other => ChargeOutcome::Declined {
                    reference: Some(reference),
                    reason: format!("the payment is {}", other.replace('_', " ")),
                },
            })
        }
        // A declined card: `error.payment_intent` is the failed intent.
        402 => {
            let body = json(reply)?;
            Ok(ChargeOutcome::Declined {
                reference: body["error"]["payment_intent"]["id"].as_str().map(str::to_string),
                reason: error_message(reply),
            })
        }
        _ => Err(failed(reply)),
    }
}

impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn create_checkout<'a>(&'a self, request: &'a CheckoutRequest) -> BoxFuture<'a, Result<Checkout, PaymentError>> {
        Box::pin(async move {
            let form = checkout_form(request, &self.config.product_name)?;
            let reply = self.post("/v1/checkout/sessions", &request.payment_id, form).await?;
            if !(200..300).contains(&reply.status) {
                return Err(failed(&reply));
            }
            let session = json(&reply)?;
            match (session["id"].as_str(), session["url"].as_str()) {
                (Some(id), Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
                    Ok(Checkout { reference: id.to_string(), url: url.to_string() })
                }
                _ => Err(PaymentError::Unavailable("the checkout session has no id or url".into())),
            }
        })
    }

    fn charge_saved<'a>(&'a self, request: &'a ChargeRequest) -> BoxFuture<'a, Result<ChargeOutcome, PaymentError>> {
        Box::pin(async move {
            let form = charge_form(request)?;
            let reply = self.post("/v1/payment_intents", &request.payment_id, form).await?;
            charge_outcome(&reply)
        })
    }

    fn verify_webhook(&self, signature: Option<&str>, payload: &[u8], now: i64) -> Result<Event, WebhookError> {
        signature::verify(&self.config.webhook_secret, signature, payload, now, TOLERANCE_SECS)?;
        parse_event(payload)
    }
}
