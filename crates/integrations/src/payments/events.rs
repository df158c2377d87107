//! Webhook events in Stripe's format, read into what Tollgate acts on. Only the fields
//! used are read; everything else in an event is ignored, and event types Tollgate does
//! not act on become [`Event::Ignored`].

use super::{WebhookError, meta};
use serde_json::Value;

/// Tollgate's metadata on a checkout session or payment intent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Tollgate's payment id.
    pub payment_id: Option<String>,
    pub org_id: Option<String>,
    /// `checkout` or `recharge`.
    pub purpose: Option<String>,
}

/// What a webhook says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A checkout is paid (`checkout.session.completed` with `payment_status: paid`, or
    /// `checkout.session.async_payment_succeeded`).
    CheckoutPaid {
        session: String,
        amount_cents: Option<i64>,
        currency: Option<String>,
        customer: Option<String>,
        metadata: Metadata,
    },
    /// A checkout ended unpaid: `checkout.session.expired` (`failed: false`) or
    /// `checkout.session.async_payment_failed` (`failed: true`).
    CheckoutEnded { session: String, failed: bool, metadata: Metadata },
    /// A payment intent is paid (`payment_intent.succeeded`): a checkout's (its card is
    /// the one saved) or an auto-recharge's.
    PaymentSucceeded {
        intent: String,
        amount_cents: Option<i64>,
        currency: Option<String>,
        customer: Option<String>,
        payment_method: Option<String>,
        metadata: Metadata,
    },
    /// A payment intent failed (`payment_intent.payment_failed`).
    PaymentFailed { intent: String, reason: String, metadata: Metadata },
    /// Anything else, including a checkout completed but not yet paid.
    Ignored { kind: String },
}

fn text(object: &Value, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

/// An id field that may be a string or an expanded object with an `id`.
fn id(object: &Value, key: &str) -> Option<String> {
    match object.get(key) {
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(str::to_string),
        _ => text(object, key),
    }
}

fn metadata(object: &Value) -> Metadata {
    let m = object.get("metadata").cloned().unwrap_or(Value::Null);
    Metadata { payment_id: text(&m, meta::PAYMENT), org_id: text(&m, meta::ORG), purpose: text(&m, meta::PURPOSE) }
}

/// Why a payment intent failed, in the provider's words.
fn failure(object: &Value) -> String {
    let error = object.get("last_payment_error").cloned().unwrap_or(Value::Null);
    text(&error, "message")
        .or_else(|| text(&error, "decline_code").or_else(|| text(&error, "code")).map(|c| c.replace('_', " ")))
        .unwrap_or_else(|| "the payment failed".into())
}

/// Reads an event from a webhook's body.
pub fn parse_event(payload: &[u8]) -> Result<Event, WebhookError> {
    let event: Value = serde_json::from_slice(payload).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let kind = text(&event, "type").ok_or_else(|| WebhookError::Malformed("no type".into()))?;
    let object = event
        .get("data")
        .and_then(|d| d.get("object"))
        .filter(|o| o.is_object())
        .ok_or_else(|| WebhookError::Malformed("no data.object".into()))?;
    let object_id = || text(object, "id").ok_or_else(|| WebhookError::Malformed("the object has no id".into()));
    let amount = |key: &str| object.get(key).and_then(Value::as_i64);
    Ok(match kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded"
            if text(object, "payment_status").as_deref() == Some("paid") =>
        {
            Event::CheckoutPaid {
                session: object_id()?,
                amount_cents: amount("amount_total"),
                currency: text(object, "currency"),
                customer: id(object, "customer"),
                metadata: metadata(object),
            }
        }
        "checkout.session.expired" | "checkout.session.async_payment_failed" => Event::CheckoutEnded {
            session: object_id()?,
            failed: kind == "checkout.session.async_payment_failed",
            metadata: metadata(object),
        },
        "payment_intent.succeeded" => Event::PaymentSucceeded {
            intent: object_id()?,
            amount_cents: amount("amount_received").or_else(|| amount("amount")),
            currency: text(object, "currency"),
            customer: id(object, "customer"),
            payment_method: id(object, "payment_method"),
            metadata: metadata(object),
        },
        "payment_intent.payment_failed" => {
            Event::PaymentFailed { intent: object_id()?, reason: failure(object), metadata: metadata(object) }
        }
        _ => Event::Ignored { kind },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Event, WebhookError> {
        parse_event(v.to_string().as_bytes())
    }

    #[test]
    fn a_paid_checkout_session() {
        let e = parse(json!({
            "id": "evt_1", "object": "event", "type": "checkout.session.completed",
            "data": {"object": {
                "id": "cs_test_1", "object": "checkout.session", "amount_total": 2500, "currency": "usd",
                "customer": "cus_1", "payment_status": "paid", "payment_intent": "pi_1",
                "metadata": {"tollgate_payment": "pay_1", "tollgate_org": "org_1"}
            }}
        }));
        assert_eq!(
            e,
            Ok(Event::CheckoutPaid {
                session: "cs_test_1".into(),
                amount_cents: Some(2500),
                currency: Some("usd".into()),
                customer: Some("cus_1".into()),
                metadata: Metadata { payment_id: Some("pay_1".into()), org_id: Some("org_1".into()), purpose: None },
            })
        );
        // Completed but not paid yet (a bank transfer): nothing to do until it is.
        let unpaid = parse(json!({"type": "checkout.session.completed",
            "data": {"object": {"id": "cs_2", "payment_status": "unpaid"}}}));
        assert_eq!(unpaid, Ok(Event::Ignored { kind: "checkout.session.completed".into() }));
        let later = parse(json!({"type": "checkout.session.async_payment_succeeded",
            "data": {"object": {"id": "cs_2", "payment_status": "paid", "amount_total": 500, "customer": {"id": "cus_9"}}}}));
        assert!(matches!(later, Ok(Event::CheckoutPaid { ref customer, .. }) if customer.as_deref() == Some("cus_9")));
    }

    #[test]
    fn payment_intents_and_failures() {
        let ok = parse(json!({"type": "payment_intent.succeeded", "data": {"object": {
            "id": "pi_1", "amount": 5000, "amount_received": 5000, "currency": "usd", "customer": "cus_1",
            "payment_method": "pm_1", "metadata": {"tollgate_payment": "pay_2", "tollgate_org": "org_1", "tollgate_purpose": "recharge"}
        }}}));
        assert!(matches!(ok, Ok(Event::PaymentSucceeded { ref payment_method, amount_cents: Some(5000), .. })
            if payment_method.as_deref() == Some("pm_1")));
        let failed = parse(json!({"type": "payment_intent.payment_failed", "data": {"object": {
            "id": "pi_2", "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"},
            "metadata": {"tollgate_purpose": "recharge"}
        }}}));
        assert!(matches!(failed, Ok(Event::PaymentFailed { ref reason, .. }) if reason == "insufficient funds"));
        let expired = parse(json!({"type": "checkout.session.expired", "data": {"object": {"id": "cs_3"}}}));
        assert!(matches!(expired, Ok(Event::CheckoutEnded { failed: false, .. })));
        let other = parse(json!({"type": "customer.created", "data": {"object": {"id": "cus_1"}}}));
        assert_eq!(other, Ok(Event::Ignored { kind: "customer.created".into() }));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"type": "payment_intent.succeeded"}"#,
            br#"{"type": "payment_intent.succeeded", "data": {"object": 5}}"#,
            br#"{"type": "payment_intent.succeeded", "data": {"object": {"amount": 5}}}"#,
        ] {
            assert!(matches!(parse_event(body), Err(WebhookError::Malformed(_))), "{}", String::from_utf8_lossy(body));
        }
    }
}
