//! The Redis rate limiter: counters shared by every replica, one atomic Lua script per call.

use super::{Consume, Decision, RateLimitError, RateLimiter, Window, unlimited};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};
use std::time::Duration;

/// Checks the three counters and increments them only if all are under their limits.
///
/// KEYS: the minute, hour and day counters. ARGV[1..3]: their limits (0 = unlimited: neither
/// checked nor counted). ARGV[4..6]: their expiries in ms, set when a counter is created.
/// Returns `{allowed (1|0), minute, hour, day}`: each count after the decision.
const CONSUME_LUA: &str = r"
local counts = {0, 0, 0}
local allowed = 1
for i = 1, 3 do
  local limit = tonumber(ARGV[i])
  if limit > 0 then
    counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
    if counts[i] >= limit then allowed = 0 end
  end
end
if allowed == 1 then
  for i = 1, 3 do
    if tonumber(ARGV[i]) > 0 then
      counts[i] = redis.call('INCR', KEYS[i])
      if counts[i] == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[3 + i]) end
    end
  end
end
return {allowed, counts[1], counts[2], counts[3]}
";

/// How long a counter outlives its window, so a replica whose clock lags a little still finds
/// (and counts in) the window it thinks is current instead of recreating it at zero.
const EXPIRY_SLACK_MS: i64 = 60_000;

/// Rate limits in Redis, shared by every replica.
///
/// Each call runs one Lua script (`EVALSHA`, loaded on first use and again after a Redis
/// restart) that reads the three counters and increments all three only if all are under their
/// limits, so replicas racing for the last slot never exceed a limit. Keys are
/// `tollgate:rl:{<subject>}:<minute|hour|day>:<window start, Unix seconds>`; the braces are a
/// Redis Cluster hash tag that keeps a subject's three counters in one slot. A counter expires
/// a minute after its window ends.
///
/// The connection is a multiplexed [`ConnectionManager`] that reconnects on its own. Every call
/// is bounded by a timeout (200 ms by default): a slow or unreachable Redis is an error, and
/// the gateway refuses the call (fail closed). A call cut off by the timeout may still have
/// been counted by Redis; that errs on the side of refusing.
#[derive(Clone)]
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    script: Script,
    timeout: Duration,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// The default bound on each call.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

    /// The bound on the first connection made by [`RedisRateLimiter::connect`].
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Connects to `url` (`redis://…` or `rediss://…` if built with TLS) with the default
    /// timeout, and loads the script: a wrong URL or an unreachable server fails here, at start.
    pub async fn connect(url: &str) -> Result<RedisRateLimiter, RateLimitError> {
        let limiter = RedisRateLimiter::lazy(url, RedisRateLimiter::DEFAULT_TIMEOUT)?;
        let mut connection = limiter.connection.clone();
        let load = limiter.script.load_async(&mut connection);
        match tokio::time::timeout(RedisRateLimiter::CONNECT_TIMEOUT, load).await {
            Ok(Ok(_sha)) => Ok(limiter),
            Ok(Err(e)) => Err(RateLimitError::Backend(Box::new(e))),
            Err(_) => Err(RateLimitError::Timeout(RedisRateLimiter::CONNECT_TIMEOUT)),
        }
    }

    /// A limiter for `url` that connects on first use, with `timeout` on each call. Only the
    /// URL is checked here. Must be called inside a Tokio runtime.
    pub fn lazy(url: &str, timeout: Duration) -> Result<RedisRateLimiter, RateLimitError> {
        let client = Client::open(url).map_err(|e| RateLimitError::Backend(Box::new(e)))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RateLimitError::Backend(Box::new(e)))?;
        Ok(RedisRateLimiter { connection, script: Script::new(CONSUME_LUA), timeout })
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The Redis key of `subject`'s counter for `window` at `now_ms`.
    pub fn key(subject: &str, window: Window, now_ms: i64) -> String {
        format!("tollgate:rl:{{{subject}}}:{}:{}", window.name(), window.start_ms(now_ms).div_euclid(1000))
    }

    async fn run(&self, subject: &str, limits: [u64; 3], now_ms: i64) -> Result<Decision, RateLimitError> {
        let mut invocation = self.script.prepare_invoke();
        for window in Window::ALL {
            invocation.key(RedisRateLimiter::key(subject, window, now_ms));
        }
        for limit in limits {
            invocation.arg(limit);
        }
        for window in Window::ALL {
            invocation.arg(window.start_ms(now_ms) + window.length_ms() - now_ms + EXPIRY_SLACK_MS);
        }
        let mut connection = self.connection.clone();
        let reply: Vec<i64> =
            invocation.invoke_async(&mut connection).await.map_err(|e| RateLimitError::Backend(Box::new(e)))?;
        let [allowed, minute, hour, day] = reply[..] else {
            return Err(RateLimitError::Backend(format!("unexpected rate limit script reply {reply:?}").into()));
        };
        let counts = [minute, hour, day].map(|c| u64::try_from(c).unwrap_or(0));
        Ok(Decision::from_counts(limits, counts, allowed == 1, now_ms))
    }
}

impl RateLimiter for RedisRateLimiter {
    fn consume<'a>(&'a self, subject: &'a str, limits: [u64; 3], now_ms: i64) -> Consume<'a> {
        if limits == [0; 3] {
            return Consume::ready(Ok(unlimited(now_ms)));
        }
        Consume::boxed(async move {
            match tokio::time::timeout(self.timeout, self.run(subject, limits, now_ms)).await {
                Ok(result) => result,
                Err(_) => Err(RateLimitError::Timeout(self.timeout)),
            }
        })
    }
}
