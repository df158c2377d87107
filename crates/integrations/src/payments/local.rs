//! The local provider, for development and tests: no money moves. Its checkout page is
//! served by Tollgate itself (`/billing/test-checkout/{payment}`, clearly labelled as a
//! test payment); confirming it produces the webhooks Stripe would send — a
//! `payment_intent.succeeded` for the card it "saves" and a `checkout.session.completed` —
//! signed with this process's own secret in Stripe's scheme, and handed to the same
//! verifying webhook path as Stripe's. Charging the saved card succeeds at once.

use super::signature::{self, TOLERANCE_SECS};
use super::{
    ChargeOutcome, ChargeRequest, Checkout, CheckoutRequest, Event, PaymentError, PaymentProvider, WebhookError, meta,
    parse_event, to_cents,
};
use crate::BoxFuture;
use serde_json::json;
use tollgate_domain::Nanos;
use tollgate_domain::secret::random_token;

/// The local provider.
pub struct LocalPayments {
    public_url: String,
    /// Signs this process's test webhooks; made at start, never shown.
    secret: String,
}

impl std::fmt::Debug for LocalPayments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPayments").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

/// A test checkout to confirm, as Tollgate recorded it.
#[derive(Debug, Clone)]
pub struct LocalCheckout {
    pub payment_id: String,
    pub org_id: String,
    /// The checkout's id (`lcs_…`).
    pub reference: String,
    pub amount: Nanos,
}

/// A webhook: its `Stripe-Signature` header value and body.
#[derive(Debug, Clone)]
pub struct SignedEvent {
    pub signature: String,
    pub payload: Vec<u8>,
}

fn token(prefix: &str) -> Result<String, PaymentError> {
    random_token(24).map(|t| format!("{prefix}_{t}")).map_err(|e| PaymentError::Unavailable(e.to_string()))
}

impl LocalPayments {
    /// A local provider whose test checkout pages live under `public_url`.
    pub fn new(public_url: &str) -> Result<LocalPayments, PaymentError> {
        Ok(LocalPayments { public_url: public_url.trim_end_matches('/').to_string(), secret: token("whsec_local")? })
    }

    fn sign(&self, event: &serde_json::Value, now: i64) -> SignedEvent {
        let payload = event.to_string().into_bytes();
        SignedEvent { signature: signature::sign(&self.secret, now, &payload), payload }
    }

    /// The webhooks a confirmed test checkout sends, in order: the card saved for the
    /// org, then the paid checkout.
    pub fn confirmation(&self, checkout: &LocalCheckout, now: i64) -> Result<Vec<SignedEvent>, PaymentError> {
        let cents = to_cents(checkout.amount)
            .ok_or_else(|| PaymentError::Invalid("the amount must be a positive number of whole cents".into()))?;
        let customer = format!("lcus_{}", checkout.org_id);
        let intent = token("lpi")?;
        let saved = json!({
            "id": token("evt")?, "object": "event", "type": "payment_intent.succeeded", "created": now,
            "data": {"object": {
                "id": intent, "object": "payment_intent", "amount": cents, "amount_received": cents,
                "currency": "usd", "status": "succeeded", "customer": customer, "payment_method": token("lpm")?,
                "metadata": {meta::PAYMENT: checkout.payment_id, meta::ORG: checkout.org_id, meta::PURPOSE: "checkout"}
            }}
        });
        let paid = json!({
            "id": token("evt")?, "object": "event", "type": "checkout.session.completed", "created": now,
            "data": {"object": {
                "id": checkout.reference, "object": "checkout.session", "amount_total": cents, "currency": "usd",
                "customer": customer, "payment_status": "paid", "payment_intent": intent,
                "client_reference_id": checkout.org_id,
                "metadata": {meta::PAYMENT: checkout.payment_id, meta::ORG: checkout.org_id}
            }}
        });
        Ok(vec![self.sign(&saved, now), self.sign(&paid, now)])
    }
}

impl PaymentProvider for LocalPayments {
    fn name(&self) -> &'static str {
        "local"
    }

    fn create_checkout<'a>(&'a self, request: &'a CheckoutRequest) -> BoxFuture<'a, Result<Checkout, PaymentError>> {
        Box::pin(async move {
            if to_cents(request.amount).is_none() {
                return Err(PaymentError::Invalid("the amount must be a positive number of whole cents".into()));
            }
            Ok(Checkout {
                reference: token("lcs")?,
                url: format!("{}/billing/test-checkout/{}", self.public_url, request.payment_id),
            })
        })
    }

    fn charge_saved<'a>(&'a self, request: &'a ChargeRequest) -> BoxFuture<'a, Result<ChargeOutcome, PaymentError>> {
        Box::pin(async move {
            if to_cents(request.amount).is_none() {
                return Err(PaymentError::Invalid("the amount must be a positive number of whole cents".into()));
            }
            Ok(ChargeOutcome::Succeeded { reference: token("lpi")? })
        })
    }

    fn verify_webhook(&self, signature: Option<&str>, payload: &[u8], now: i64) -> Result<Event, WebhookError> {
        signature::verify(&self.secret, signature, payload, now, TOLERANCE_SECS)?;
        parse_event(payload)
    }

    fn local(&self) -> Option<&LocalPayments> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_confirmation_is_two_signed_events_only_this_provider_accepts() {
        let local = LocalPayments::new("http://127.0.0.1:8080/").unwrap();
        let checkout = LocalCheckout {
            payment_id: "pay_1".into(),
            org_id: "org_1".into(),
            reference: "lcs_1".into(),
            amount: Nanos(25_000_000_000),
        };
        let events = local.confirmation(&checkout, 1_700_000_000).unwrap();
        assert_eq!(events.len(), 2);
        let saved = local.verify_webhook(Some(&events[0].signature), &events[0].payload, 1_700_000_001).unwrap();
        assert!(matches!(saved, Event::PaymentSucceeded { ref metadata, ref customer, .. }
            if metadata.purpose.as_deref() == Some("checkout") && customer.as_deref() == Some("lcus_org_1")));
        let paid = local.verify_webhook(Some(&events[1].signature), &events[1].payload, 1_700_000_001).unwrap();
        assert!(
            matches!(paid, Event::CheckoutPaid { ref session, amount_cents: Some(2500), .. } if session == "lcs_1")
        );
        // Another process (another secret) refuses them; so does a later replay.
        let other = LocalPayments::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            other.verify_webhook(Some(&events[1].signature), &events[1].payload, 1_700_000_001),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            local.verify_webhook(Some(&events[1].signature), &events[1].payload, 1_700_001_000),
            Err(WebhookError::Stale)
        );
        let odd = LocalCheckout { amount: Nanos(1), ..checkout };
        assert!(local.confirmation(&odd, 1_700_000_000).is_err());
    }

    #[tokio::test]
    async fn checkouts_go_to_the_test_page_and_charges_succeed() {
        let local = LocalPayments::new("http://127.0.0.1:8080/").unwrap();
        let request = CheckoutRequest {
            payment_id: "pay_9".into(),
            org_id: "org_1".into(),
            amount: Nanos(5_000_000_000),
            success_url: String::new(),
            cancel_url: String::new(),
            customer: None,
            email: None,
        };
        let checkout = local.create_checkout(&request).await.unwrap();
        assert_eq!(checkout.url, "http://127.0.0.1:8080/billing/test-checkout/pay_9");
        assert!(checkout.reference.starts_with("lcs_"));
        let charge = ChargeRequest {
            payment_id: "pay_10".into(),
            org_id: "org_1".into(),
            amount: Nanos(5_000_000_000),
            customer: "lcus_org_1".into(),
            payment_method: "lpm_1".into(),
        };
        assert!(matches!(local.charge_saved(&charge).await, Ok(ChargeOutcome::Succeeded { .. })));
        let bad = ChargeRequest { amount: Nanos(5), ..charge };
        assert!(matches!(local.charge_saved(&bad).await, Err(PaymentError::Invalid(_))));
    }
}
