//! Tollgate's domain: the rules that hold whatever the transport or the database.
//!
//! Architecture invariant: this crate knows nothing of HTTP or SQL. Money is exact
//! integer nano-USD ([`Nanos`]); validation builds typed values only through `parse`.

pub mod catalog;
pub mod money;
pub mod pricing;
pub mod publish;
pub mod secret;
pub mod time;
pub mod trust;
pub mod validate;

pub use money::Nanos;

/// A request the domain refuses, with a message a person understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The input field at fault, e.g. `pricing.input_per_million`.
    pub field: String,
    /// What is wrong with it, as a sentence.
    pub message: String,
}

impl Invalid {
    /// An invalid-input error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}
