//! The in-process rate limiter: counters in sharded, mutex-guarded hash maps.

use super::{Consume, Decision, RateLimiter, Window, unlimited};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};

/// How often (in the callers' clock) a shard drops subjects whose counted windows have all ended.
const SWEEP_EVERY_MS: i64 = 60_000;

/// Rate limits kept in this process's memory (one replica, or tests).
///
/// Subjects are spread over a power-of-two number of shards, each a `Mutex<HashMap>`, so
/// concurrent calls for different subjects rarely contend; a call locks one shard once, and
/// check and consume happen under that lock, so no interleaving can exceed a limit. A subject's
/// key is allocated once, on its first call; later calls allocate nothing.
///
/// Memory stays bounded: about once a minute (of the callers' clock) a shard that is used drops
/// the subjects whose counted windows have all ended, and shrinks its table when it emptied out;
/// [`MemoryRateLimiter::sweep`] does the same for every shard at once.
///
/// A subject's clock never runs backwards: a call stamped earlier than one already counted (two
/// threads reading the clock around a boundary) is counted in the newer window.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    subjects: HashMap<Box<str>, Counters>,
    next_sweep_ms: i64,
}

/// One subject's counters.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    /// The latest time counted for this subject (Unix ms).
    last_ms: i64,
    /// Per window: its start (Unix ms) and the requests counted in it.
    windows: [(i64, u64); 3],
}

impl Counters {
    /// Counts for `now_ms`, resetting windows that have ended.
    fn counts_at(&self, now_ms: i64) -> [u64; 3] {
        let mut counts = [0; 3];
        for (i, window) in Window::ALL.into_iter().enumerate() {
            let (start, count) = self.windows[i];
            counts[i] = if start == window.start_ms(now_ms) { count } else { 0 };
        }
        counts
    }

    /// Checks and, when every limited window has room, counts one request at `now_ms`.
    fn consume(&mut self, limits: [u64; 3], now_ms: i64) -> Decision {
        let now_ms = now_ms.max(self.last_ms);
        self.last_ms = now_ms;
        let mut counts = self.counts_at(now_ms);
        let allowed = limits.iter().zip(counts).all(|(&limit, count)| limit == 0 || count < limit);
        if allowed {
            for (i, window) in Window::ALL.into_iter().enumerate() {
                if limits[i] > 0 {
                    counts[i] += 1;
                    self.windows[i] = (window.start_ms(now_ms), counts[i]);
                }
            }
        }
        Decision::from_counts(limits, counts, allowed, now_ms)
    }

    /// Whether every window that holds a count has ended by `now_ms` (the subject can go).
    fn expired(&self, now_ms: i64) -> bool {
        Window::ALL
            .into_iter()
            .zip(self.windows)
            .all(|(w, (start, count))| count == 0 || start + w.length_ms() <= now_ms)
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        MemoryRateLimiter::new()
    }
}

impl MemoryRateLimiter {
    /// A limiter with four shards per available CPU (at least 16, at most 1024).
    pub fn new() -> MemoryRateLimiter {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        MemoryRateLimiter::with_shards(cpus * 4)
    }

    /// A limiter with `shards` shards, rounded up to a power of two within 16..=1024.
    pub fn with_shards(shards: usize) -> MemoryRateLimiter {
        let n = shards.clamp(16, 1024).next_power_of_two();
        MemoryRateLimiter { shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(), hasher: RandomState::new() }
    }

    /// The number of subjects currently tracked (for metrics and tests; locks every shard).
    pub fn tracked_subjects(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).subjects.len()).sum()
    }

    /// Drops, in every shard, the subjects whose counted windows have all ended by `now_ms`.
    pub fn sweep(&self, now_ms: i64) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(PoisonError::into_inner).sweep(now_ms);
        }
    }

    /// The synchronous check-and-consume behind [`RateLimiter::consume`].
    pub fn consume_now(&self, subject: &str, limits: [u64; 3], now_ms: i64) -> Decision {
        if limits == [0; 3] {
            return unlimited(now_ms);
        }
        // The shard count is a power of two, so masking the hash picks a shard uniformly.
        let index = (self.hasher.hash_one(subject) as usize) & (self.shards.len() - 1);
        let mut shard = self.shards[index].lock().unwrap_or_else(PoisonError::into_inner);
        if now_ms >= shard.next_sweep_ms {
            shard.sweep(now_ms);
        }
        if let Some(counters) = shard.subjects.get_mut(subject) {
            return counters.consume(limits, now_ms);
        }
        shard.subjects.entry(Box::from(subject)).or_default().consume(limits, now_ms)
    }
}

impl Shard {
    fn sweep(&mut self, now_ms: i64) {
        self.subjects.retain(|_, counters| !counters.expired(now_ms));
        if self.subjects.capacity() > 64 && self.subjects.capacity() > 4 * self.subjects.len() {
            self.subjects.shrink_to_fit();
        }
        self.next_sweep_ms = now_ms.saturating_add(SWEEP_EVERY_MS);
    }
}

impl RateLimiter for MemoryRateLimiter {
    fn consume<'a>(&'a self, subject: &'a str, limits: [u64; 3], now_ms: i64) -> Consume<'a> {
        Consume::ready(Ok(self.consume_now(subject, limits, now_ms)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const T: i64 = 1_795_460_682_500;

    #[test]
    fn expired_subjects_are_dropped() {
        let limiter = MemoryRateLimiter::with_shards(16);
        for i in 0..1000 {
            assert!(limiter.consume_now(&format!("s{i}"), [5, 0, 0], T).allowed);
        }
        assert_eq!(limiter.tracked_subjects(), 1000);
        limiter.sweep(T + 1);
        assert_eq!(limiter.tracked_subjects(), 1000, "their minute has not ended");
        limiter.sweep(Window::Minute.start_ms(T) + 60_000);
        assert_eq!(limiter.tracked_subjects(), 0);
        let capacity: usize = limiter.shards.iter().map(|s| s.lock().unwrap().subjects.capacity()).sum();
        assert!(capacity < 1000, "emptied tables shrink (capacity {capacity})");
    }

    #[test]
    fn day_counts_keep_a_subject_until_midnight() {
        let limiter = MemoryRateLimiter::with_shards(16);
        limiter.consume_now("a", [5, 0, 100], T);
        limiter.sweep(T + 3_600_000);
        assert_eq!(limiter.tracked_subjects(), 1);
        limiter.sweep(Window::Day.start_ms(T) + 86_400_000);
        assert_eq!(limiter.tracked_subjects(), 0);
    }

    #[test]
    fn used_shards_sweep_themselves() {
        let limiter = MemoryRateLimiter::with_shards(16);
        for i in 0..200 {
            limiter.consume_now(&format!("old{i}"), [5, 5, 0], T);
        }
        // Two hours later, traffic on every shard sweeps the old subjects out.
        let later = T + 7_200_000;
        for i in 0..200 {
            limiter.consume_now(&format!("new{i}"), [5, 5, 0], later);
        }
        assert_eq!(limiter.tracked_subjects(), 200);
    }

    #[test]
    fn a_late_stamp_counts_in_the_newer_window() {
        let limiter = MemoryRateLimiter::with_shards(16);
        let boundary = Window::Minute.start_ms(T) + 60_000;
        assert!(limiter.consume_now("a", [1, 0, 0], boundary).allowed);
        let late = limiter.consume_now("a", [1, 0, 0], boundary - 1);
        assert!(!late.allowed, "the earlier stamp is counted after the boundary");
        assert_eq!(late.retry_after_secs, Some(60));
    }
}
