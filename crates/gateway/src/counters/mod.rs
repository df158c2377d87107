//! Counters the gateway checks on every call without a database round trip: each key's
//! usage today (for its daily limits) and each org's free calls of each function. Each
//! counter is loaded from the usage records the first time it is needed (per day, per
//! free-tier period) and kept after that — in memory, or in Redis when replicas share it
//! ([`shared`]); calls in flight count as used, so parallel calls never exceed a limit.

mod shared;

pub use shared::SharedCounters;

use crate::error::GatewayError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tollgate_domain::pricing::{FreeReset, Tokens};
use tollgate_domain::time::{next_utc_midnight, utc_month_start};
use tollgate_store::Store;
use tollgate_store::installs::{ApiKey, DailyLimits};

/// A key's usage on one UTC day.
#[derive(Debug, Clone, Copy, Default)]
struct KeyDay {
    day_start: i64,
    requests: i64,
    input: i64,
    output: i64,
    cache: i64,
}

/// A free-tier counter: one org, agent and function, over one period.
#[derive(Debug, Clone, Copy, Default)]
struct Free {
    /// The period the count is for (`None` until loaded).
    period_start: Option<i64>,
    used: i64,
    in_flight: i64,
}

/// What a call took from the counters, given back or made final when it settles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Taken {
    /// The key's day, when the key has daily limits.
    key_day: Option<(String, i64)>,
    /// The free call this call may use.
    free: Option<(FreeKey, i64)>,
}

impl Taken {
    /// Whether the call may use a free call (if it succeeds).
    pub fn free_call(&self) -> bool {
        self.free.is_some()
    }
}

/// A free-tier counter's org, agent and function.
pub(crate) type FreeKey = (String, String, String);

/// The gateway's counters: in this process's memory, or shared through Redis.
pub(crate) struct Counters {
    store: Store,
    keys: Mutex<HashMap<String, KeyDay>>,
    free: Mutex<HashMap<FreeKey, Free>>,
    shared: Option<Arc<SharedCounters>>,
}

pub(crate) fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

fn day_start(now_ms: i64) -> i64 {
    next_utc_midnight(now_ms) - 86_400_000
}

impl Counters {
    pub fn new(store: Store, shared: Option<SharedCounters>) -> Counters {
        Counters {
            store,
            keys: Mutex::new(HashMap::new()),
            free: Mutex::new(HashMap::new()),
            shared: shared.map(Arc::new),
        }
    }

    /// Counts one request of key `key_id` today if it is under every daily limit
    /// (`Ok(false)` when a limit is reached). Keys without limits are not counted.
    pub async fn admit_key(&self, key: &ApiKey, now_ms: i64, taken: &mut Taken) -> Result<bool, GatewayError> {
        let (key_id, limits) = (key.id.as_str(), key.limits);
        if limits == DailyLimits::default() {
            return Ok(true);
        }
        let today = day_start(now_ms);
        if let Some(shared) = &self.shared {
            let within = shared.admit_key(&self.store, key, today).await?;
            if within {
                taken.key_day = Some((key_id.to_string(), today));
            }
            return Ok(within);
        }
        let loaded =
            self.keys.lock().unwrap_or_else(|p| p.into_inner()).get(key_id).is_some_and(|d| d.day_start == today);
        if !loaded {
            let used = self.store.key_usage_since(&key.installation_id, key_id, today).await.map_err(internal)?;
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            let entry = keys.entry(key_id.to_string()).or_default();
            if entry.day_start != today {
                *entry = KeyDay {
                    day_start: today,
                    requests: used.requests,
                    input: used.input_tokens,
                    output: used.output_tokens,
                    cache: used.cache_tokens,
                };
            }
        }
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let day = keys.entry(key_id.to_string()).or_default();
        let over = |limit: i64, used: i64| limit > 0 && used >= limit;
        if over(limits.requests, day.requests)
            || over(limits.input_tokens, day.input)
            || over(limits.output_tokens, day.output)
            || over(limits.cache_tokens, day.cache)
        {
            return Ok(false);
        }
        day.requests += 1;
        taken.key_day = Some((key_id.to_string(), today));
        Ok(true)
    }

    /// Reserves one of the org's `free_calls` of `function` for a call in flight; returns
    /// whether one was left.
    #[allow(clippy::too_many_arguments)]
    pub async fn reserve_free(
        &self,
        org_id: &str,
        agent_id: &str,
        function: &str,
        free_calls: i64,
        reset: FreeReset,
        now_ms: i64,
        taken: &mut Taken,
    ) -> Result<bool, GatewayError> {
        if free_calls <= 0 {
            return Ok(false);
        }
        let period_start = match reset {
            FreeReset::Lifetime => 0,
            FreeReset::Monthly => utc_month_start(now_ms),
        };
        let key: FreeKey = (org_id.to_string(), agent_id.to_string(), function.to_string());
        if let Some(shared) = &self.shared {
            let free = shared.reserve_free(&self.store, &key, free_calls, period_start).await?;
            if free {
                taken.free = Some((key, period_start));
            }
            return Ok(free);
        }
        let loaded = self
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .is_some_and(|f| f.period_start == Some(period_start));
        if !loaded {
            let used = self.store.free_calls_used(org_id, agent_id, function, period_start).await.map_err(internal)?;
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            let entry = free.entry(key.clone()).or_default();
            if entry.period_start != Some(period_start) {
                *entry = Free { period_start: Some(period_start), used, in_flight: entry.in_flight };
            }
        }
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let counter = free.entry(key.clone()).or_default();
        if counter.used + counter.in_flight >= free_calls {
            return Ok(false);
        }
        counter.in_flight += 1;
        taken.free = Some((key, period_start));
        Ok(true)
    }

    /// Gives back what a call that never reached the agent took.
    pub fn refund(&self, taken: Taken) {
        if let Some(shared) = &self.shared {
            shared.spawn_refund(taken.key_day, taken.free);
            return;
        }
        if let Some((key_id, day)) = taken.key_day {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(d) = keys.get_mut(&key_id).filter(|d| d.day_start == day) {
                d.requests -= 1;
            }
        }
        self.end_free(taken.free, false);
    }

    /// Makes a finished call's use final: its tokens count toward the key's day, and its
    /// free call is used if it succeeded and was billed as free.
    pub fn settle(&self, taken: Taken, tokens: Tokens, used_free_call: bool) {
        if let Some(shared) = &self.shared {
            shared.spawn_settle(taken.key_day, tokens, taken.free.filter(|_| !used_free_call));
            return;
        }
        if let Some((key_id, day)) = taken.key_day {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(d) = keys.get_mut(&key_id).filter(|d| d.day_start == day) {
                d.input += tokens.input;
                d.output += tokens.output;
                d.cache += tokens.cache;
            }
        }
        self.end_free(taken.free, used_free_call);
    }

    fn end_free(&self, free: Option<(FreeKey, i64)>, used: bool) {
        let Some((key, period_start)) = free else { return };
        let mut counters = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = counters.get_mut(&key) {
            c.in_flight -= 1;
            if used && c.period_start == Some(period_start) {
                c.used += 1;
            }
        }
    }
}
