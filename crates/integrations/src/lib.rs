//! The external services Tollgate talks to — card payments and email — each behind a small
//! interface with a real implementation the operator configures and a local one for
//! development and tests (SPEC §9). None is needed to run the gateway.
//!
//! Architecture invariant: this crate speaks the services' wire formats and nothing else.
//! It has no SQL and serves no HTTP; what a payment or an email means for an org (the
//! ledger, notifications, who may do what) is decided by `tollgate-api` over the store.
//!
//! - [`payments`]: [`payments::PaymentProvider`], implemented by [`payments::Stripe`]
//!   (Checkout Sessions, off-session PaymentIntents, `Stripe-Signature` webhooks) and
//!   [`payments::LocalPayments`] (a test checkout page served by Tollgate whose
//!   confirmation is a webhook signed the same way).
//! - [`email`]: [`email::EmailSender`], implemented by [`email::Smtp`] and
//!   [`email::Outbox`] (`.eml` files in a folder).

pub mod email;
mod http;
pub mod payments;

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the interfaces can be used as `dyn` objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
