//! Tollgate's metered gateway: every call to `/{agent}/{version}/mcp` is authenticated,
//! rate-limited, forwarded, metered and billed here.
//!
//! Architecture invariant: the hot path does no synchronous database round trip per call
//! in the default mode; counters live in memory (or Redis), and usage and ledger writes go
//! through one writer task that group-commits.

pub mod metering;
pub mod ratelimit;
