//! Tollgate's storage: one [`Store`] over SQLite (default) or PostgreSQL.
//!
//! Architecture invariant: SQL lives only in this crate, every value is bound (no SQL
//! built from input), and the same queries run on both databases through sqlx's `Any`
//! driver, using only portable types (TEXT, BIGINT). See docs/ARCHITECTURE.md.

mod db;
mod error;
mod row;

pub mod accounts;
pub mod calls;
pub mod catalog;
pub mod changes;
pub mod closing;
pub mod installs;
pub mod ledger;
pub mod notices;
pub mod orgs;
pub mod payments;
pub mod publisher;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttles;
pub mod usage;

pub use db::{Backend, Store};
pub use error::StoreError;
/// The database driver's error, for telling outages from refusals.
pub use sqlx::Error as SqlxError;

/// The result of a storage call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
