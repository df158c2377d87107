//! The rate limiter's behaviour, one suite run against both backends: in memory always, and
//! Redis when `TOLLGATE_TEST_REDIS_URL` is set (with `CI=true` it must be). The clock is
//! passed in, so window rollovers need no sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_gateway::ratelimit::{
    Decision, MemoryRateLimiter, RateLimitError, RateLimiter, RedisRateLimiter, Window, headers,
};

/// 2026-11-23T19:04:42.500Z: 18 s left in the minute, 3,318 s in the hour, 17,718 s in the day.
const T: i64 = 1_795_460_682_500;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// A subject no other test or earlier run uses (Redis keeps counters between runs).
fn subject(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("test-{name}-{}-{nanos}", std::process::id())
}

/// The Redis URL under test, or `None` (after saying why) when Redis tests are skipped.
fn redis_url(test: &str) -> Option<String> {
    match std::env::var("TOLLGATE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but TOLLGATE_TEST_REDIS_URL is not set: the Redis rate-limit tests must run in CI")
        }
        _ => {
            eprintln!("skipping redis::{test}: set TOLLGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run it");
            None
        }
    }
}

async fn consume(limiter: &dyn RateLimiter, subject: &str, limits: [u64; 3], now_ms: i64) -> Decision {
    limiter.consume(subject, limits, now_ms).await.unwrap()
}

/// Calls until refused (at most `max`); returns how many were allowed.
async fn drain(limiter: &dyn RateLimiter, subject: &str, limits: [u64; 3], now_ms: i64, max: u64) -> u64 {
    for allowed in 0..max {
        if !consume(limiter, subject, limits, now_ms).await.allowed {
            return allowed;
        }
    }
    max
}

async fn limits_are_enforced_per_window(l: &dyn RateLimiter) {
    let s = subject("minute");
    assert_eq!(drain(l, &s, [3, 0, 0], T, 10).await, 3);
    assert_eq!(drain(l, &s, [3, 0, 0], Window::Minute.start_ms(T) + MINUTE - 1, 10).await, 0, "same minute");
    assert_eq!(drain(l, &s, [3, 0, 0], Window::Minute.start_ms(T) + MINUTE, 10).await, 3, "next minute");

    let s = subject("hour");
    for minute in 0..3 {
        assert!(consume(l, &s, [0, 3, 0], T + minute * MINUTE).await.allowed);
    }
    let refused = consume(l, &s, [0, 3, 0], T + 10 * MINUTE).await;
    assert!(!refused.allowed, "a new minute does not reset the hour");
    assert_eq!(refused.retry_after_secs, Some(3318 - 600));
    assert!(consume(l, &s, [0, 3, 0], Window::Hour.start_ms(T) + HOUR).await.allowed, "next hour");

    let s = subject("day");
    assert!(consume(l, &s, [0, 0, 2], T).await.allowed);
    assert!(consume(l, &s, [0, 0, 2], T + HOUR).await.allowed);
    assert!(!consume(l, &s, [0, 0, 2], T + 2 * HOUR).await.allowed, "a new hour does not reset the day");
    let next_day = consume(l, &s, [0, 0, 2], Window::Day.start_ms(T) + DAY).await;
    assert!(next_day.allowed, "00:00 UTC resets the day");
    assert_eq!(next_day.windows[2].reset_secs, 86_400);
}

async fn refused_requests_consume_nothing(l: &dyn RateLimiter) {
    let s = subject("all-or-nothing");
    let limits = [2, 5, 100];
    assert_eq!(drain(l, &s, limits, T, 2).await, 2);
    for _ in 0..10 {
        let refused = consume(l, &s, limits, T).await;
        assert!(!refused.allowed);
        assert_eq!(refused.windows.map(|w| w.remaining), [0, 3, 98], "the hour and day were not charged");
    }
    let next = consume(l, &s, limits, T + MINUTE).await;
    assert!(next.allowed);
    assert_eq!(next.windows.map(|w| w.remaining), [1, 2, 97]);

    // The hour runs out first: the minute must not be charged either.
    let s = subject("hour-first");
    let limits = [10, 2, 100];
    assert_eq!(drain(l, &s, limits, T, 10).await, 2);
    let refused = consume(l, &s, limits, T).await;
    assert_eq!(refused.windows.map(|w| w.remaining), [8, 0, 98]);
    assert_eq!(refused.retry_after_secs, Some(3318));
}

async fn zero_means_unlimited(l: &dyn RateLimiter) {
    let s = subject("unlimited");
    assert_eq!(drain(l, &s, [0, 0, 0], T, 500).await, 500);
    let d = consume(l, &s, [0, 0, 0], T).await;
    assert!(d.windows.iter().all(|w| w.is_unlimited()));
    let shown = headers(&d);
    assert_eq!(shown.len(), 9, "each window is reported, unlimited ones too");
    assert!(shown.iter().filter(|(k, _)| k.starts_with("X-RateLimit-Limit")).all(|(_, v)| v == "9223372036854775807"));

    let s = subject("day-only");
    assert_eq!(drain(l, &s, [0, 0, 3], T, 10).await, 3);
    let refused = consume(l, &s, [0, 0, 3], T).await;
    assert_eq!((refused.windows[0].limit, refused.windows[1].limit, refused.windows[2].remaining), (0, 0, 0));
    assert_eq!(refused.retry_after_secs, Some(17_718));
    // Unlimited windows were not counted: a minute limit set later starts from zero.
    assert_eq!(drain(l, &s, [2, 0, 0], T, 10).await, 2);
}

async fn subjects_are_independent(l: &dyn RateLimiter) {
    let (a, b) = (subject("a"), subject("b"));
    assert_eq!(drain(l, &a, [2, 10, 10], T, 5).await, 2);
    assert_eq!(drain(l, &b, [2, 10, 10], T, 5).await, 2, "b has its own counters");
    assert!(!consume(l, &a, [2, 10, 10], T).await.allowed);
}

async fn decisions_report_remaining_reset_and_retry_after(l: &dyn RateLimiter) {
    let s = subject("values");
    let limits = [60, 1000, 10_000];
    let first = consume(l, &s, limits, T).await;
    assert!(first.allowed && first.retry_after_secs.is_none());
    assert_eq!(first.windows.map(|w| (w.limit, w.remaining)), [(60, 59), (1000, 999), (10_000, 9_999)]);
    assert_eq!(first.windows.map(|w| w.reset_secs), [18, 3318, 17_718]);
    assert_eq!(drain(l, &s, limits, T, 100).await, 59);
    let refused = consume(l, &s, limits, T + 500).await;
    assert_eq!(refused.retry_after_secs, Some(17), "17 s left, half a second later");
    assert_eq!(refused.windows.map(|w| w.remaining), [0, 940, 9_940]);

    let h = headers(&refused);
    let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
    assert_eq!(get("X-RateLimit-Limit-Requests-Minute").as_deref(), Some("60"));
    assert_eq!(get("X-RateLimit-Remaining-Requests-Minute").as_deref(), Some("0"));
    assert_eq!(get("X-RateLimit-Reset-Requests-Minute").as_deref(), Some("17s"));
    assert_eq!(get("X-RateLimit-Remaining-Requests-Hour").as_deref(), Some("940"));
    assert_eq!(get("X-RateLimit-Reset-Requests-Day").as_deref(), Some("17717s"));
    assert_eq!(get("Retry-After").as_deref(), Some("17"));

    // Both the minute and the hour exhausted: wait for the later of the two.
    let s = subject("both");
    assert_eq!(drain(l, &s, [2, 2, 0], T, 5).await, 2);
    assert_eq!(consume(l, &s, [2, 2, 0], T).await.retry_after_secs, Some(3318));
}

async fn concurrent_requests_never_exceed_a_limit(l: Arc<dyn RateLimiter>) {
    let s = Arc::new(subject("concurrent"));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (l, s) = (l.clone(), s.clone());
            tokio::spawn(async move { l.consume(&s, [60, 1000, 10_000], T).await.unwrap() })
        })
        .collect();
    let mut remaining = Vec::new();
    for task in tasks {
        let d = task.await.unwrap();
        if d.allowed {
            remaining.push(d.windows[0].remaining);
        }
    }
    assert_eq!(remaining.len(), 60, "exactly the limit is allowed");
    remaining.sort_unstable();
    assert_eq!(remaining, (0..60).collect::<Vec<u64>>(), "each slot was handed out once");
    assert_eq!(consume(&*l, &s, [60, 1000, 10_000], T).await.windows[1].remaining, 940);
}

/// Runs each behaviour against both backends: `memory::name` and `redis::name`.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(&tollgate_gateway::ratelimit::MemoryRateLimiter::new()).await;
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_requests_never_exceed_a_limit() {
                super::concurrent_requests_never_exceed_a_limit(std::sync::Arc::new(super::MemoryRateLimiter::new())).await;
            }
        }

        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(url) = super::redis_url(stringify!($name)) else { return };
                    super::$name(&super::RedisRateLimiter::connect(&url).await.unwrap()).await;
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_requests_never_exceed_a_limit() {
                let Some(url) = super::redis_url("concurrent_requests_never_exceed_a_limit") else { return };
                let limiter = super::RedisRateLimiter::connect(&url).await.unwrap();
                super::concurrent_requests_never_exceed_a_limit(std::sync::Arc::new(limiter)).await;
            }
        }
    };
}

suite!(
    limits_are_enforced_per_window,
    refused_requests_consume_nothing,
    zero_means_unlimited,
    subjects_are_independent,
    decisions_report_remaining_reset_and_retry_after,
);

#[tokio::test]
async fn redis_keys_are_namespaced_and_expire() {
    let Some(url) = redis_url("redis_keys_are_namespaced_and_expire") else { return };
    let limiter = RedisRateLimiter::connect(&url).await.unwrap();
    let s = subject("keys");
    assert!(consume(&limiter, &s, [5, 0, 7], T).await.allowed);
    let mut raw = ::redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let minute_key = format!("tollgate:rl:{{{s}}}:minute:{}", Window::Minute.start_ms(T) / 1000);
    assert_eq!(RedisRateLimiter::key(&s, Window::Minute, T), minute_key);
    let count: Option<u64> = ::redis::cmd("GET").arg(&minute_key).query_async(&mut raw).await.unwrap();
    assert_eq!(count, Some(1));
    let ttl: i64 = ::redis::cmd("PTTL").arg(&minute_key).query_async(&mut raw).await.unwrap();
    assert!((1..=18_000 + 60_000).contains(&ttl), "expires a minute after its window ends: {ttl}");
    let hour: Option<u64> =
        ::redis::cmd("GET").arg(RedisRateLimiter::key(&s, Window::Hour, T)).query_async(&mut raw).await.unwrap();
    assert_eq!(hour, None, "unlimited windows are not counted");

    // A Redis restart forgets loaded scripts: the limiter loads it again.
    let _: () = ::redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
    assert_eq!(consume(&limiter, &s, [5, 0, 7], T).await.windows[0].remaining, 3);
}

/// A Redis that cannot be reached is an error (fail closed), and quickly.
#[tokio::test]
async fn unreachable_redis_is_an_error_within_the_timeout() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // Closed again: nothing listens there now.
    let url = format!("redis://127.0.0.1:{port}");
    let timeout = Duration::from_millis(200);
    let limiter = RedisRateLimiter::lazy(&url, timeout).unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let err = limiter.consume(&subject("down"), [60, 1000, 10_000], T).await.unwrap_err();
        assert!(started.elapsed() < timeout + Duration::from_millis(300), "took {:?}", started.elapsed());
        assert!(matches!(err, RateLimitError::Timeout(_) | RateLimitError::Backend(_)), "{err}");
    }
    let started = Instant::now();
    assert!(RedisRateLimiter::connect(&url).await.is_err(), "connect checks the server at start");
    assert!(started.elapsed() < RedisRateLimiter::CONNECT_TIMEOUT + Duration::from_secs(1));
    assert!(RedisRateLimiter::lazy("not a url", timeout).is_err());
}

/// A Redis that accepts connections but never answers times out.
#[tokio::test]
async fn silent_redis_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // Keep it open, say nothing.
        }
    });
    let timeout = Duration::from_millis(150);
    let limiter = RedisRateLimiter::lazy(&url, timeout).unwrap();
    let started = Instant::now();
    let err = limiter.consume(&subject("silent"), [60, 1000, 10_000], T).await.unwrap_err();
    assert!(started.elapsed() < timeout + Duration::from_millis(300), "took {:?}", started.elapsed());
    assert!(matches!(err, RateLimitError::Timeout(_) | RateLimitError::Backend(_)), "{err}");
    assert!(err.to_string().contains("rate limit backend"), "{err}");
}

/// Unlimited subjects never touch the backend, so they pass even with Redis down.
#[tokio::test]
async fn all_unlimited_needs_no_backend() {
    let limiter = RedisRateLimiter::lazy("redis://127.0.0.1:1", Duration::from_millis(50)).unwrap();
    assert!(consume(&limiter, "anyone", [0, 0, 0], T).await.allowed);
}

/// The in-memory check stays well under a microsecond per call (checked in optimized builds).
#[test]
fn memory_consume_is_fast() {
    let limiter = MemoryRateLimiter::new();
    let subjects: Vec<String> = (0..1000).map(|i| subject(&format!("fast{i}"))).collect();
    let calls = 200_000u32;
    let started = Instant::now();
    for i in 0..calls {
        let d = limiter.consume_now(&subjects[i as usize % subjects.len()], [1_000_000, 0, 0], T + i64::from(i / 1000));
        assert!(d.allowed);
    }
    let per_call = started.elapsed() / calls;
    eprintln!("memory rate limiter: {per_call:?} per call");
    let budget = if cfg!(debug_assertions) { Duration::from_micros(20) } else { Duration::from_micros(1) };
    assert!(per_call < budget, "{per_call:?} per call");
}
