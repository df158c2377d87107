//! Card payments behind one interface, [`PaymentProvider`]:
//!
//! - a **checkout**: the person is sent to the provider's page to pay an amount once; the
//!   provider tells Tollgate by a signed webhook when it is paid, and keeps the card for
//!   later payments made without the person (auto-recharge);
//! - a **charge** of that saved card for an amount (off-session);
//! - **webhooks**, verified by signature and read into [`Event`]s.
//!
//! Both implementations speak Stripe's formats: [`Stripe`] to Stripe's API, and
//! [`LocalPayments`] to itself (its test checkout page's confirmation is a webhook signed
//! the way Stripe signs them, so it goes through the same verifying path).
//!
//! Amounts cross this interface as [`Nanos`] and reach providers in whole cents.

mod events;
mod local;
pub mod signature;
mod stripe;

pub use events::{Event, Metadata, parse_event};
pub use local::{LocalCheckout, LocalPayments, SignedEvent};
pub use stripe::{Stripe, StripeConfig};

use crate::BoxFuture;
use tollgate_domain::Nanos;

/// Nano-USD per US cent.
pub const NANOS_PER_CENT: i64 = 10_000_000;

/// An amount in whole cents, if it is one.
pub fn to_cents(amount: Nanos) -> Option<i64> {
    (amount.0 > 0 && amount.0 % NANOS_PER_CENT == 0).then_some(amount.0 / NANOS_PER_CENT)
}

/// Cents as nano-USD.
pub fn from_cents(cents: i64) -> Option<Nanos> {
    cents.checked_mul(NANOS_PER_CENT).map(Nanos)
}

/// The metadata keys Tollgate puts on everything it creates at a provider, and reads back
/// from webhooks.
pub mod meta {
    /// Tollgate's id of the payment.
    pub const PAYMENT: &str = "tollgate_payment";
    /// The org the payment credits.
    pub const ORG: &str = "tollgate_org";
    /// `checkout` or `recharge`.
    pub const PURPOSE: &str = "tollgate_purpose";
}

/// A checkout to start.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// Tollgate's id of the payment: the provider's idempotency key and metadata.
    pub payment_id: String,
    pub org_id: String,
    /// Whole cents, at least one.
    pub amount: Nanos,
    /// Where the provider sends the person after paying.
    pub success_url: String,
    /// Where the provider sends the person who gives up.
    pub cancel_url: String,
    /// The customer a card was saved for before, so a new card joins it.
    pub customer: Option<String>,
    /// The payer's email, to fill in on the provider's page (new customers only).
    pub email: Option<String>,
}

/// A checkout started at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The provider's id of the checkout (a Checkout Session id).
    pub reference: String,
    /// The page to send the person to.
    pub url: String,
}

/// A charge of a saved card, made without the person present.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// Tollgate's id of the payment: the provider's idempotency key and metadata.
    pub payment_id: String,
    pub org_id: String,
    /// Whole cents, at least one.
    pub amount: Nanos,
    pub customer: String,
    pub payment_method: String,
}

/// What became of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Paid. (The provider's webhook says so again; crediting is idempotent.)
    Succeeded { reference: String },
    /// Accepted, not yet paid: a webhook tells the end.
    Pending { reference: String },
    /// Refused (a declined card, or one that needs its holder present).
    Declined { reference: Option<String>, reason: String },
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The provider could not be reached or failed; whether it acted is unknown.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request itself (configuration, or a bad request).
    #[error("the payment provider refused the request: {0}")]
    Refused(String),
    /// The request cannot be sent (an amount that is not whole cents).
    #[error("{0}")]
    Invalid(String),
}

/// Why a webhook was refused. Nothing is done with a refused webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook has no signature header")]
    MissingSignature,
    #[error("the webhook's signature does not match")]
    BadSignature,
    #[error("the webhook's signature is too old or from the future")]
    Stale,
    #[error("the webhook's body is not an event: {0}")]
    Malformed(String),
}

/// A card payment service.
pub trait PaymentProvider: Send + Sync + std::fmt::Debug {
    /// `stripe` or `local`: the name in the webhook URL and in payment records.
    fn name(&self) -> &'static str;

    /// Starts a checkout for `request.amount`.
    fn create_checkout<'a>(&'a self, request: &'a CheckoutRequest) -> BoxFuture<'a, Result<Checkout, PaymentError>>;

    /// Charges a saved card, off-session.
    fn charge_saved<'a>(&'a self, request: &'a ChargeRequest) -> BoxFuture<'a, Result<ChargeOutcome, PaymentError>>;

    /// Checks a webhook's signature (`Stripe-Signature` header value) at `now` (Unix
    /// seconds) and reads its event.
    fn verify_webhook(&self, signature: Option<&str>, payload: &[u8], now: i64) -> Result<Event, WebhookError>;

    /// The local provider, for its test checkout page; `None` for real ones.
    fn local(&self) -> Option<&LocalPayments> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_whole_and_positive() {
        assert_eq!(to_cents(Nanos(25_000_000_000)), Some(2500));
        assert_eq!(to_cents(Nanos(10_000_000)), Some(1));
        assert_eq!(to_cents(Nanos(10_000_001)), None);
        assert_eq!(to_cents(Nanos(5_000_000)), None);
        assert_eq!(to_cents(Nanos(0)), None);
        assert_eq!(to_cents(Nanos(-10_000_000)), None);
        assert_eq!(from_cents(2500), Some(Nanos(25_000_000_000)));
        assert_eq!(from_cents(i64::MAX), None);
    }
}
