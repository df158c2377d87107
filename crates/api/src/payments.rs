//! Card payments: starting a checkout, reading the provider's webhooks into credits, the
//! local provider's test confirmation, and charging the saved card for auto-recharge.
//! Shared by the API's handlers and the billing watcher; the providers themselves live in
//! `tollgate-integrations`.
//!
//! Money invariant: a payment is credited only by [`tollgate_store::Store::credit_payment`],
//! once, for the amount Tollgate recorded when it started the payment (a webhook whose
//! amount, currency or org disagree changes nothing), under the provider's id of what was
//! paid as the ledger's idempotency key: the checkout session for a purchase, the payment
//! intent for an auto-recharge.

use crate::error::{ApiError, ApiResult};
use crate::notify;
use crate::state::AppState;
use std::sync::Arc;
use tollgate_domain::Nanos;
use tollgate_domain::time::now_ms;
use tollgate_integrations::payments::{
    ChargeOutcome, ChargeRequest, CheckoutRequest, Event, LocalCheckout, Metadata, PaymentError, PaymentProvider,
    to_cents,
};
use tollgate_store::StoreError;
use tollgate_store::accounts::User;
use tollgate_store::orgs::Org;
use tollgate_store::payments::{Credited, Crediting, Payment};

/// The configured provider, or a 409 saying how credits are added without one.
pub fn provider(state: &AppState) -> ApiResult<&Arc<dyn PaymentProvider>> {
    state.payments.as_ref().ok_or_else(|| {
        ApiError::Conflict(
            "payments_not_configured",
            "card payments are not set up on this instance; an operator adds credits with `tollgate admin grant-credits`"
                .into(),
        )
    })
}

/// Checks an amount a card is charged: whole cents, within the configured limits.
pub fn check_amount(state: &AppState, field: &str, amount: Nanos) -> ApiResult<()> {
    let (min, max) = (state.config.purchase_min, state.config.purchase_max);
    if amount < min || amount > max {
        let message = format!("must be between {} and {}", notify::dollars(min), notify::dollars(max));
        return Err(ApiError::invalid(field, message));
    }
    if to_cents(amount).is_none() {
        return Err(ApiError::invalid(field, "must be a whole number of cents, such as 25.00"));
    }
    Ok(())
}

/// A provider's failure as the API's: details logged here, a plain sentence to the caller.
fn provider_failed(what: &str, error: &PaymentError) -> ApiError {
    tracing::warn!(error = %error, "{what} failed at the payment provider");
    match error {
        PaymentError::Invalid(why) => ApiError::invalid("amount", why.clone()),
        PaymentError::Unavailable(_) => ApiError::BadGateway(
            "payment_provider_unavailable",
            "the payment provider did not answer; nothing was charged. Try again in a moment".into(),
        ),
        PaymentError::Refused(_) => ApiError::BadGateway(
            "payment_provider_refused",
            "the payment provider refused to start a payment; nothing was charged. If this persists, tell the operator"
                .into(),
        ),
    }
}

/// Starts a purchase of `amount` of credits for `org` by `user`: records the payment and
/// opens the provider's checkout. Returns the payment and the page to send the person to.
pub async fn start_checkout(state: &AppState, org: &Org, user: &User, amount: Nanos) -> ApiResult<(Payment, String)> {
    let provider = provider(state)?;
    check_amount(state, "amount", amount)?;
    let payment = state.store.create_payment(&org.id, Some(&user.id), "checkout", provider.name(), amount).await?;
    let saved = state.store.payment_method(&org.id, provider.name()).await?;
    let base = state.config.public_url.trim_end_matches('/');
    let request = CheckoutRequest {
        payment_id: payment.id.clone(),
        org_id: org.id.clone(),
        amount,
        success_url: format!("{base}/billing?payment={}", payment.id),
        cancel_url: format!("{base}/billing?payment={}&canceled=1", payment.id),
        email: saved.is_none().then(|| user.email.clone()),
        customer: saved.map(|m| m.customer),
    };
    match provider.create_checkout(&request).await {
        Ok(checkout) => {
            state.store.set_payment_reference(&payment.id, &checkout.reference).await?;
            tracing::info!(org.id = %org.id, payment.id = %payment.id, provider = provider.name(), "checkout started");
            Ok((state.store.payment(&payment.id).await?, checkout.url))
        }
        Err(e) => {
            state.store.end_payment(&payment.id, "failed", Some("the checkout could not be started"), None).await?;
            Err(provider_failed("starting a checkout", &e))
        }
    }
}

/// The payment an event names: by Tollgate's id in its metadata, else by the provider's id;
/// `None` when it is not one of Tollgate's (another product on the same account).
async fn named_payment(
    state: &AppState,
    provider: &str,
    metadata: &Metadata,
    reference: &str,
) -> ApiResult<Option<Payment>> {
    let payment = match &metadata.payment_id {
        Some(id) => match state.store.payment(id).await {
            Ok(p) => Some(p),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => state.store.payment_by_reference(provider, reference).await?,
    };
    Ok(payment.filter(|p| p.provider == provider))
}

/// Refuses an event that disagrees with the payment Tollgate recorded.
fn mismatch(payment: &Payment, why: &str) -> ApiError {
    tracing::error!(payment.id = %payment.id, org.id = %payment.org_id, "a payment webhook disagrees with the payment: {why}");
    ApiError::invalid("body", format!("the event does not match payment {}: {why}", payment.id))
}

/// Checks what an event says against what Tollgate recorded.
fn agrees(
    payment: &Payment,
    kind: &str,
    metadata: &Metadata,
    reference: Option<&str>,
    amount_cents: Option<i64>,
    currency: Option<&str>,
) -> ApiResult<()> {
    if payment.kind != kind {
        return Err(mismatch(payment, "another kind of payment"));
    }
    if metadata.org_id.as_deref().is_some_and(|org| org != payment.org_id) {
        return Err(mismatch(payment, "another organization"));
    }
    if let (Some(recorded), Some(said)) = (payment.reference.as_deref(), reference)
        && recorded != said
    {
        return Err(mismatch(payment, "another checkout or payment intent"));
    }
    if amount_cents.is_some() && amount_cents != to_cents(payment.amount) {
        return Err(mismatch(payment, "another amount"));
    }
    if currency.is_some_and(|c| !c.eq_ignore_ascii_case("usd")) {
        return Err(mismatch(payment, "another currency"));
    }
    Ok(())
}

/// Credits a paid payment (once) and tells the org's owners and admins.
async fn credit(state: &AppState, provider: &str, payment: &Payment, reference: &str) -> ApiResult<Credited> {
    let org = state.store.org(&payment.org_id).await?;
    let memo = match (provider, payment.kind.as_str()) {
        ("local", "recharge") => "Auto-recharge (test payment, no card charged)",
        ("local", _) => "Test payment (local provider, no card charged)",
        (_, "recharge") => "Auto-recharge",
        _ => "Card payment",
    };
    let key = format!("payment:{provider}:{reference}");
    let notice = notify::paid(state, &org, payment);
    let credited = state
        .store
        .credit_payment(&Crediting {
            payment_id: &payment.id,
            reference,
            transfer_key: &key,
            memo,
            notice: Some(&notice),
        })
        .await?;
    if let Credited::Now(t) = &credited {
        tracing::info!(org.id = %payment.org_id, payment.id = %payment.id, transfer.id = %t.id, provider, "payment credited");
    }
    Ok(credited)
}

/// Ends an open payment as failed and tells the org's owners and admins.
async fn fail(state: &AppState, payment: &Payment, reason: &str) -> ApiResult<()> {
    let org = state.store.org(&payment.org_id).await?;
    let notice = notify::payment_failed(state, &org, payment, reason);
    if state.store.end_payment(&payment.id, "failed", Some(reason), Some(&notice)).await? {
        tracing::info!(org.id = %payment.org_id, payment.id = %payment.id, "payment failed");
    }
    Ok(())
}

/// What a webhook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// It changed something (a credit, a saved card, a payment's end).
    Applied,
    /// It was already applied, or names nothing of Tollgate's, or is not acted on.
    Ignored,
}

/// `POST /api/v1/billing/webhooks/{provider}`: checks the signature, then applies the
/// event, at most once. A forged, stale or malformed webhook is refused and changes
/// nothing; so is one that disagrees with the payment it names.
pub async fn receive_webhook(
    state: &AppState,
    name: &str,
    signature: Option<&str>,
    body: &[u8],
) -> ApiResult<Received> {
    let provider = match &state.payments {
        Some(p) if p.name() == name => p,
        _ => return Err(ApiError::NotFound("payment provider")),
    };
    let event = provider.verify_webhook(signature, body, now_ms() / 1000).map_err(|e| {
        tracing::warn!(provider = name, error = %e, "payment webhook refused");
        ApiError::BadRequest("invalid_webhook", e.to_string())
    })?;
    match event {
        Event::CheckoutPaid { session, amount_cents, currency, customer, metadata } => {
            let Some(payment) = named_payment(state, name, &metadata, &session).await? else {
                return Ok(Received::Ignored);
            };
            agrees(&payment, "checkout", &metadata, Some(&session), amount_cents, currency.as_deref())?;
            if let Some(customer) = customer {
                state.store.save_payment_method(&payment.org_id, name, &customer, None).await?;
            }
            Ok(match credit(state, name, &payment, &session).await? {
                Credited::Now(_) => Received::Applied,
                Credited::Already => Received::Ignored,
            })
        }
        Event::CheckoutEnded { session, failed, metadata } => {
            let Some(payment) = named_payment(state, name, &metadata, &session).await? else {
                return Ok(Received::Ignored);
            };
            agrees(&payment, "checkout", &metadata, Some(&session), None, None)?;
            let ended = if failed {
                fail(state, &payment, "the bank did not confirm the payment").await?;
                true
            } else {
                state.store.end_payment(&payment.id, "canceled", Some("the checkout expired"), None).await?
            };
            Ok(if ended { Received::Applied } else { Received::Ignored })
        }
        Event::PaymentSucceeded { intent, amount_cents, currency, customer, payment_method, metadata } => {
            let Some(payment) = named_payment(state, name, &metadata, &intent).await? else {
                return Ok(Received::Ignored);
            };
            match metadata.purpose.as_deref() {
                // The purchase's card: saved for auto-recharge (the checkout event credits).
                Some("checkout") => {
                    agrees(&payment, "checkout", &metadata, None, amount_cents, currency.as_deref())?;
                    let Some(customer) = customer else { return Ok(Received::Ignored) };
                    state
                        .store
                        .save_payment_method(&payment.org_id, name, &customer, payment_method.as_deref())
                        .await?;
                    Ok(Received::Applied)
                }
                Some("recharge") => {
                    agrees(&payment, "recharge", &metadata, Some(&intent), amount_cents, currency.as_deref())?;
                    Ok(match credit(state, name, &payment, &intent).await? {
                        Credited::Now(_) => Received::Applied,
                        Credited::Already => Received::Ignored,
                    })
                }
                _ => Ok(Received::Ignored),
            }
        }
        Event::PaymentFailed { intent, reason, metadata } => {
            let Some(payment) = named_payment(state, name, &metadata, &intent).await? else {
                return Ok(Received::Ignored);
            };
            if payment.kind != "recharge" || payment.status != "open" {
                return Ok(Received::Ignored);
            }
            agrees(&payment, "recharge", &metadata, Some(&intent), None, None)?;
            state.store.set_payment_reference(&payment.id, &intent).await?;
            fail(state, &payment, &reason).await?;
            Ok(Received::Applied)
        }
        Event::Ignored { .. } => Ok(Received::Ignored),
    }
}

/// Confirms a test checkout of the local provider: its webhooks, signed as the provider
/// signs them, go through [`receive_webhook`] like any provider's.
pub async fn confirm_test_checkout(state: &AppState, payment: &Payment) -> ApiResult<()> {
    let local = state.payments.as_ref().and_then(|p| p.local()).ok_or(ApiError::NotFound("test checkout"))?;
    let reference = match (&payment.reference, payment.provider.as_str(), payment.kind.as_str()) {
        (Some(reference), "local", "checkout") => reference.clone(),
        _ => return Err(ApiError::NotFound("test checkout")),
    };
    if payment.status != "open" {
        return Err(ApiError::Conflict("payment_closed", format!("this payment is already {}", payment.status)));
    }
    let checkout = LocalCheckout {
        payment_id: payment.id.clone(),
        org_id: payment.org_id.clone(),
        reference,
        amount: payment.amount,
    };
    let events = local.confirmation(&checkout, now_ms() / 1000).map_err(|e| provider_failed("a test payment", &e))?;
    for event in events {
        receive_webhook(state, local.name(), Some(&event.signature), &event.payload).await?;
    }
    Ok(())
}

/// Charges an org's saved card for an auto-recharge already recorded (`payment`, the org's
/// one in flight). Paid at once: credited now (the provider's webhook finds it done).
/// Pending: the webhook ends it. Declined, refused, no card, no answer: failed, and the
/// owners and admins are told (a charge that went through after all is still credited when
/// its webhook arrives).
pub async fn charge_recharge(state: &AppState, provider: &dyn PaymentProvider, payment: &Payment) -> ApiResult<()> {
    let saved = state.store.payment_method(&payment.org_id, provider.name()).await?;
    let Some((customer, payment_method)) = saved.and_then(|m| Some((m.customer, m.payment_method?))) else {
        return fail(state, payment, "no card is saved; buy credits once with a card to save one").await;
    };
    let request = ChargeRequest {
        payment_id: payment.id.clone(),
        org_id: payment.org_id.clone(),
        amount: payment.amount,
        customer,
        payment_method,
    };
    match provider.charge_saved(&request).await {
        Ok(ChargeOutcome::Succeeded { reference }) => {
            state.store.set_payment_reference(&payment.id, &reference).await?;
            credit(state, provider.name(), payment, &reference).await.map(|_| ())
        }
        Ok(ChargeOutcome::Pending { reference }) => {
            state.store.set_payment_reference(&payment.id, &reference).await.map_err(ApiError::from)
        }
        Ok(ChargeOutcome::Declined { reference, reason }) => {
            if let Some(reference) = reference {
                state.store.set_payment_reference(&payment.id, &reference).await?;
            }
            fail(state, payment, &reason).await
        }
        Err(e) => {
            tracing::warn!(org.id = %payment.org_id, payment.id = %payment.id, error = %e, "auto-recharge failed at the payment provider");
            let reason = match e {
                PaymentError::Unavailable(_) => "the payment provider did not answer",
                PaymentError::Refused(_) | PaymentError::Invalid(_) => "the payment provider refused the charge",
            };
            fail(state, payment, reason).await
        }
    }
}
