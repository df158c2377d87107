//! Counters shared by every replica through Redis: a key's usage today
//! (`tollgate:kd:{key id}:{day}`, a hash of requests and input/output/cache tokens) and an
//! org's free calls taken of a function (`tollgate:ft:{org}:{agent}:{function}:{period}`, a
//! number counting used and in-flight free calls). A counter Redis does not have is loaded
//! from the usage records first (only if still absent, so replicas loading it together
//! agree), then every check-and-count is one atomic script. Redis failing is a refusal
//! (503), as for rate limits.

use super::{FreeKey, internal};
use crate::error::GatewayError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use std::time::Duration;
use tollgate_domain::pricing::Tokens;
use tollgate_store::Store;
use tollgate_store::installs::ApiKey;

/// Checks a key's day against its limits and counts the request. KEYS[1]: the day's hash.
/// ARGV: the request, input, output and cache limits (0 = none). Returns -1 when the
/// counter must be loaded first, 0 when a limit is reached, 1 when counted.
const ADMIT_KEY: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local used = redis.call('HMGET', KEYS[1], 'r', 'i', 'o', 'c')
for n = 1, 4 do
  local limit = tonumber(ARGV[n])
  if limit > 0 and tonumber(used[n] or '0') >= limit then return 0 end
end
redis.call('HINCRBY', KEYS[1], 'r', 1)
return 1
";

/// Takes one free call. KEYS[1]: the counter; ARGV[1]: the free calls allowed. Returns -1
/// when the counter must be loaded first, 0 when none is left, 1 when taken.
const TAKE_FREE: &str = r"
local taken = redis.call('GET', KEYS[1])
if not taken then return -1 end
if tonumber(taken) >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
return 1
";

/// Loads a counter unless a replica already did. KEYS[1]: the counter; ARGV[1]: its
/// lifetime in ms; ARGV[2..]: field, value pairs (a hash), or one value (a number).
const LOAD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if #ARGV == 2 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
else
  for n = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[n], ARGV[n + 1]) end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
";

/// A key's day is kept a day past its end; a free-tier counter 40 days after its last
/// load (past a month's end; an expired one is loaded again from the usage records).
const DAY_TTL_MS: i64 = 2 * 86_400_000;
const FREE_TTL_MS: i64 = 40 * 86_400_000;

/// Per-key daily usage and free-tier counts in Redis.
pub struct SharedCounters {
    connection: ConnectionManager,
    admit: Script,
    take: Script,
    load: Script,
    timeout: Duration,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounters").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> GatewayError {
    tracing::error!(error = %e, "shared counters unavailable; refusing the call (fail closed)");
    GatewayError::Unavailable("usage limits cannot be checked right now; try again shortly".into())
}

fn day_key(key_id: &str, day_start: i64) -> String {
    format!("tollgate:kd:{key_id}:{}", day_start / 1000)
}

fn free_key((org, agent, function): &FreeKey, period_start: i64) -> String {
    format!("tollgate:ft:{org}:{agent}:{function}:{}", period_start / 1000)
}

impl SharedCounters {
    /// Connects to Redis at `url` (call within a Tokio runtime); fails at once if Redis
    /// cannot be reached.
    pub async fn connect(url: &str) -> Result<SharedCounters, String> {
        let timeout = Duration::from_millis(200);
        let client = Client::open(url).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2);
        let connect = ConnectionManager::new_with_config(client, config);
        let connection = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| "Redis did not answer within 5 s".to_string())?
            .map_err(|e| e.to_string())?;
        Ok(SharedCounters {
            connection,
            admit: Script::new(ADMIT_KEY),
            take: Script::new(TAKE_FREE),
            load: Script::new(LOAD),
            timeout,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    async fn run(&self, script: &Script, key: &str, args: &[String]) -> Result<i64, GatewayError> {
        let mut invocation = script.key(key);
        for arg in args {
            invocation.arg(arg);
        }
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, invocation.invoke_async::<i64>(&mut connection)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("timed out")),
        }
    }

    /// Counts a request of `api_key` on the day starting `day_start` if it is under every
    /// limit (`false` when one is reached).
    pub(super) async fn admit_key(
        &self,
        store: &Store,
        api_key: &ApiKey,
        day_start: i64,
    ) -> Result<bool, GatewayError> {
        let limits = api_key.limits;
        let key = day_key(&api_key.id, day_start);
        let args =
            [limits.requests, limits.input_tokens, limits.output_tokens, limits.cache_tokens].map(|l| l.to_string());
        for _ in 0..2 {
            match self.run(&self.admit, &key, &args).await? {
                -1 => {
                    let used = store
                        .key_usage_since(&api_key.installation_id, &api_key.id, day_start)
                        .await
                        .map_err(internal)?;
                    let fields = [
                        ("r", used.requests),
                        ("i", used.input_tokens),
                        ("o", used.output_tokens),
                        ("c", used.cache_tokens),
                    ];
                    let mut load = vec![DAY_TTL_MS.to_string()];
                    for (field, value) in fields {
                        load.push(field.to_string());
                        load.push(value.to_string());
                    }
                    self.run(&self.load, &key, &load).await?;
                }
                counted => return Ok(counted == 1),
            }
        }
        Err(unavailable("the key's counter could not be loaded"))
    }

    /// Takes one of `free_calls` for the period starting `period_start` (`false` when none
    /// is left).
    pub(super) async fn reserve_free(
        &self,
        store: &Store,
        counter: &FreeKey,
        free_calls: i64,
        period_start: i64,
    ) -> Result<bool, GatewayError> {
        let key = free_key(counter, period_start);
        let args = [free_calls.to_string()];
        for _ in 0..2 {
            match self.run(&self.take, &key, &args).await? {
                -1 => {
                    let (org, agent, function) = counter;
                    let used = store.free_calls_used(org, agent, function, period_start).await.map_err(internal)?;
                    self.run(&self.load, &key, &[FREE_TTL_MS.to_string(), used.to_string()]).await?;
                }
                taken => return Ok(taken == 1),
            }
        }
        Err(unavailable("the free-tier counter could not be loaded"))
    }

    /// Gives back a request that never reached the agent, and its free call.
    pub(super) fn spawn_refund(&self, key_day: Option<(String, i64)>, free: Option<(FreeKey, i64)>) {
        let mut pipe = redis::pipe();
        if let Some((key_id, day)) = key_day {
            pipe.hincr(day_key(&key_id, day), "r", -1).ignore();
        }
        if let Some((counter, period)) = free {
            pipe.decr(free_key(&counter, period), 1).ignore();
        }
        self.spawn(pipe);
    }

    /// Adds a finished call's tokens to its key's day, and gives back a free call it did
    /// not use.
    pub(super) fn spawn_settle(
        &self,
        key_day: Option<(String, i64)>,
        tokens: Tokens,
        unused_free: Option<(FreeKey, i64)>,
    ) {
        let mut pipe = redis::pipe();
        if let Some((key_id, day)) = key_day {
            let key = day_key(&key_id, day);
            pipe.hincr(&key, "i", tokens.input).ignore();
            pipe.hincr(&key, "o", tokens.output).ignore();
            pipe.hincr(&key, "c", tokens.cache).ignore();
        }
        if let Some((counter, period)) = unused_free {
            pipe.decr(free_key(&counter, period), 1).ignore();
        }
        self.spawn(pipe);
    }

    fn spawn(&self, pipe: redis::Pipeline) {
        let mut connection = self.connection.clone();
        let timeout = self.timeout;
        self.runtime.spawn(async move {
            match tokio::time::timeout(timeout * 5, pipe.query_async::<()>(&mut connection)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "updating shared counters failed"),
                Err(_) => tracing::warn!("updating shared counters timed out"),
            }
        });
    }
}
