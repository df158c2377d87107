//! Rate limits per member per agent over minute, hour and day windows.
//!
//! One operation, [`RateLimiter::consume`], checks and consumes one request for a subject
//! (`"{org}:{user}:{agent}"`) against three windows at once, **all or nothing**: if any window
//! is exhausted, no window is charged. Two backends implement it:
//! [`MemoryRateLimiter`] (one process, the default) and [`RedisRateLimiter`] (counters shared by
//! every replica, one atomic Lua script per call).
//!
//! Windows are **fixed and aligned to UTC**: a minute window runs from `hh:mm:00.000` to the
//! next minute, an hour window from `hh:00:00.000`, a day window from 00:00 UTC. Counting on
//! aligned boundaries costs one counter per window (no sliding log), gives every replica the
//! same window without coordination, and matches the per-key daily limits that also reset at
//! 00:00 UTC. The price is the usual fixed-window burst: up to twice a limit can pass across
//! one boundary.
//!
//! A limit of 0 means unlimited: that window is neither checked nor counted. A backend failure
//! is a [`RateLimitError`]; the gateway then refuses the call with 503 (fail closed) instead of
//! letting it through uncounted.
//!
//! Time is passed in (`now_ms`, Unix milliseconds) rather than read inside, so tests move the
//! clock without sleeping.

mod memory;
mod redis;

pub use self::memory::MemoryRateLimiter;
pub use self::redis::RedisRateLimiter;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A rate-limit window. Every `[_; 3]` in this module is indexed in [`Window::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// The current UTC minute.
    Minute,
    /// The current UTC hour.
    Hour,
    /// The current UTC day (from 00:00 UTC).
    Day,
}

impl Window {
    /// Minute, hour, day: the order of limits, counts and states everywhere in this module.
    pub const ALL: [Window; 3] = [Window::Minute, Window::Hour, Window::Day];

    /// The window's length in milliseconds.
    pub const fn length_ms(self) -> i64 {
        match self {
            Window::Minute => 60_000,
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
        }
    }

    /// A short lowercase name (`minute`, `hour`, `day`), used in Redis keys.
    pub const fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// The start (Unix ms) of the window holding `now_ms`.
    pub const fn start_ms(self, now_ms: i64) -> i64 {
        now_ms - now_ms.rem_euclid(self.length_ms())
    }

    /// Whole seconds, rounded up, from `now_ms` until the window holding it ends (at least 1).
    pub const fn reset_secs(self, now_ms: i64) -> u64 {
        let left_ms = self.start_ms(now_ms) + self.length_ms() - now_ms;
        ((left_ms + 999) / 1000) as u64
    }
}

/// One window's state after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// Requests allowed in this window; 0 means unlimited.
    pub limit: u64,
    /// Requests left in this window after this one (0 when unlimited: see [`Self::is_unlimited`]).
    pub remaining: u64,
    /// Seconds until this window resets (rounded up, at least 1).
    pub reset_secs: u64,
}

impl WindowState {
    /// Whether this window has no limit (it is then neither counted nor reported).
    pub const fn is_unlimited(&self) -> bool {
        self.limit == 0
    }
}

/// The outcome of one [`RateLimiter::consume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed (and was counted in every limited window).
    pub allowed: bool,
    /// Minute, hour and day, in [`Window::ALL`] order.
    pub windows: [WindowState; 3],
    /// When refused: seconds until every exhausted window has reset (the longest wait).
    pub retry_after_secs: Option<u64>,
}

impl Decision {
    /// Builds a decision from each window's count *after* the decision (including this request
    /// when allowed). Shared by the backends so they report identically.
    pub(crate) fn from_counts(limits: [u64; 3], counts: [u64; 3], allowed: bool, now_ms: i64) -> Decision {
        let mut windows = [WindowState { limit: 0, remaining: 0, reset_secs: 0 }; 3];
        let mut retry_after: Option<u64> = None;
        for (i, window) in Window::ALL.into_iter().enumerate() {
            let (limit, count) = (limits[i], counts[i]);
            let reset_secs = window.reset_secs(now_ms);
            windows[i] = WindowState { limit, remaining: limit.saturating_sub(count), reset_secs };
            if !allowed && limit > 0 && count >= limit {
                retry_after = Some(retry_after.map_or(reset_secs, |r| r.max(reset_secs)));
            }
        }
        let retry_after_secs = if allowed { None } else { Some(retry_after.unwrap_or(1)) };
        Decision { allowed, windows, retry_after_secs }
    }
}

/// A rate-limit backend failed. The caller must refuse the request (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The backend did not answer in time.
    #[error("rate limit backend did not answer within {0:?}")]
    Timeout(Duration),
    /// The backend answered with an error, an unexpected reply, or could not be reached.
    #[error("rate limit backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The future returned by [`RateLimiter::consume`]: either already complete (the in-memory
/// backend, no allocation) or a boxed future (backends that do I/O).
#[must_use = "a rate-limit decision does nothing unless awaited"]
pub struct Consume<'a>(ConsumeInner<'a>);

/// A boxed, sendable consume future.
type BoxedConsume<'a> = Pin<Box<dyn Future<Output = Result<Decision, RateLimitError>> + Send + 'a>>;

enum ConsumeInner<'a> {
    Ready(Option<Result<Decision, RateLimitError>>),
    Boxed(BoxedConsume<'a>),
}

impl<'a> Consume<'a> {
    /// A consume that has already completed.
    pub fn ready(result: Result<Decision, RateLimitError>) -> Consume<'a> {
        Consume(ConsumeInner::Ready(Some(result)))
    }

    /// A consume still to be driven to completion.
    pub fn boxed(future: impl Future<Output = Result<Decision, RateLimitError>> + Send + 'a) -> Consume<'a> {
        Consume(ConsumeInner::Boxed(Box::pin(future)))
    }
}

impl Future for Consume<'_> {
    type Output = Result<Decision, RateLimitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            ConsumeInner::Ready(result) => Poll::Ready(
                result.take().unwrap_or_else(|| Err(RateLimitError::Backend("consume polled after completion".into()))),
            ),
            ConsumeInner::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

/// Checks and consumes requests against per-subject minute, hour and day limits.
///
/// Object-safe: the gateway holds an `Arc<dyn RateLimiter>`.
pub trait RateLimiter: Send + Sync {
    /// Atomically checks and consumes one request for `subject` at `now_ms` (Unix ms).
    ///
    /// `limits` are per minute, hour, day; 0 = unlimited. All or nothing: the request is
    /// counted in every limited window, or — when any window is already at its limit — in none.
    /// An error means the backend could not decide; the caller must refuse (fail closed).
    fn consume<'a>(&'a self, subject: &'a str, limits: [u64; 3], now_ms: i64) -> Consume<'a>;
}

/// Header names per window, in [`Window::ALL`] order: limit, remaining, reset.
const HEADER_NAMES: [[&str; 3]; 3] = [
    ["X-RateLimit-Limit-Requests-Minute", "X-RateLimit-Remaining-Requests-Minute", "X-RateLimit-Reset-Requests-Minute"],
    ["X-RateLimit-Limit-Requests-Hour", "X-RateLimit-Remaining-Requests-Hour", "X-RateLimit-Reset-Requests-Hour"],
    ["X-RateLimit-Limit-Requests-Day", "X-RateLimit-Remaining-Requests-Day", "X-RateLimit-Reset-Requests-Day"],
];

/// What `X-RateLimit-Limit-Requests-…` and `X-RateLimit-Remaining-Requests-…` say for an
/// unlimited window: the largest signed 64-bit integer, which every client parses as a
/// number and none mistakes for "nothing left".
pub const UNLIMITED: u64 = i64::MAX as u64;

/// The response headers of SPEC §3 for a decision.
///
/// Per window: `X-RateLimit-Limit-Requests-{Minute,Hour,Day}` (the limit),
/// `X-RateLimit-Remaining-Requests-…` (left after this request) and
/// `X-RateLimit-Reset-Requests-…` (whole seconds until the window resets, suffixed `s`, e.g.
/// `18s` or `3542s`). An unlimited window (limit 0) gets its headers too, with [`UNLIMITED`]
/// as its limit and remaining. When refused, `Retry-After` carries whole seconds until every
/// exhausted window has reset.
pub fn headers(decision: &Decision) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(10);
    for (state, [limit, remaining, reset]) in decision.windows.iter().zip(HEADER_NAMES) {
        let (shown_limit, shown_remaining) =
            if state.is_unlimited() { (UNLIMITED, UNLIMITED) } else { (state.limit, state.remaining) };
        out.push((limit, shown_limit.to_string()));
        out.push((remaining, shown_remaining.to_string()));
        out.push((reset, format!("{}s", state.reset_secs)));
    }
    if let (false, Some(secs)) = (decision.allowed, decision.retry_after_secs) {
        out.push(("Retry-After", secs.to_string()));
    }
    out
}

/// The headers of a response that did not reach the rate limiter (refused before it, or
/// before the caller was known): the `limits` in force, each with all of it remaining.
pub fn headers_in_force(limits: [u64; 3], now_ms: i64) -> Vec<(&'static str, String)> {
    headers(&Decision::from_counts(limits, [0; 3], true, now_ms))
}

/// The decision for a subject whose three windows are all unlimited (no backend involved).
pub(crate) fn unlimited(now_ms: i64) -> Decision {
    Decision::from_counts([0; 3], [0; 3], true, now_ms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// 2026-11-23T19:04:42.500Z.
    const T: i64 = 1_795_460_682_500;

    #[test]
    fn windows_are_aligned_to_utc() {
        assert_eq!(Window::Minute.start_ms(T), 1_795_460_640_000);
        assert_eq!(Window::Hour.start_ms(T), 1_795_460_400_000);
        assert_eq!(Window::Day.start_ms(T), 1_795_392_000_000);
        assert_eq!(Window::Minute.reset_secs(T), 18);
        assert_eq!(Window::Hour.reset_secs(T), 3318);
        assert_eq!(Window::Minute.reset_secs(Window::Minute.start_ms(T)), 60);
        assert_eq!(Window::Minute.reset_secs(Window::Minute.start_ms(T) + 59_999), 1);
    }

    #[test]
    fn headers_render_limited_windows_and_retry_after() {
        let d = Decision::from_counts([60, 1000, 0], [60, 7, 0], false, T);
        assert_eq!(d.retry_after_secs, Some(18));
        let h = headers(&d);
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("X-RateLimit-Limit-Requests-Minute"), Some("60"));
        assert_eq!(get("X-RateLimit-Remaining-Requests-Minute"), Some("0"));
        assert_eq!(get("X-RateLimit-Reset-Requests-Minute"), Some("18s"));
        assert_eq!(get("X-RateLimit-Remaining-Requests-Hour"), Some("993"));
        assert_eq!(get("X-RateLimit-Reset-Requests-Hour"), Some("3318s"));
        assert_eq!(get("X-RateLimit-Limit-Requests-Day"), Some("9223372036854775807"), "unlimited");
        assert_eq!(get("X-RateLimit-Remaining-Requests-Day"), Some("9223372036854775807"));
        assert_eq!(get("X-RateLimit-Reset-Requests-Day"), Some("17718s"));
        assert_eq!(get("Retry-After"), Some("18"));
        assert_eq!(h.len(), 10);
    }

    #[test]
    fn allowed_decisions_have_no_retry_after() {
        let d = Decision::from_counts([60, 1000, 10_000], [60, 60, 60], true, T);
        assert!(d.allowed && d.retry_after_secs.is_none());
        assert_eq!(d.windows[0].remaining, 0);
        assert!(!headers(&d).iter().any(|(k, _)| *k == "Retry-After"));
        assert_eq!(headers(&unlimited(T)).len(), 9, "unlimited windows have their headers too");
        let in_force = headers_in_force([60, 0, 10], T);
        assert!(in_force.contains(&("X-RateLimit-Remaining-Requests-Minute", "60".to_string())));
        assert!(in_force.contains(&("X-RateLimit-Remaining-Requests-Day", "10".to_string())));
        assert!(!in_force.iter().any(|(k, _)| *k == "Retry-After"));
    }

    #[test]
    fn consume_futures_can_cross_threads() {
        fn send<T: Send>(_: &T) {}
        let limiter: std::sync::Arc<dyn RateLimiter> = std::sync::Arc::new(MemoryRateLimiter::new());
        send(&limiter.consume("s", [1, 0, 0], T));
    }

    #[test]
    fn retry_after_is_the_longest_exhausted_window() {
        let d = Decision::from_counts([5, 5, 100], [5, 5, 5], false, T);
        assert_eq!(d.retry_after_secs, Some(3318));
    }
}
