//! Log-in throttling against password guessing: after 5 failures for one email (or 20
//! from one address) within 15 minutes, further attempts wait until the window ends.

use std::collections::HashMap;
use std::sync::Mutex;

const WINDOW_MS: i64 = 15 * 60 * 1000;
const PER_EMAIL: u32 = 5;
const PER_ADDRESS: u32 = 20;

/// Failure counts per email and per client address, in memory.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

impl LoginThrottle {
    /// Seconds to wait before another attempt, if throttled.
    pub fn check(&self, email: &str, address: &str, now: i64) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        [(format!("e:{email}"), PER_EMAIL), (format!("a:{address}"), PER_ADDRESS)]
            .iter()
            .filter_map(|(key, max)| {
                let (count, start) = map.get(key)?;
                (*count >= *max && now - start < WINDOW_MS).then(|| ((start + WINDOW_MS - now) / 1000 + 1) as u64)
            })
            .max()
    }

    /// Records a failed attempt.
    pub fn fail(&self, email: &str, address: &str, now: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| now - *start < WINDOW_MS);
        }
        for key in [format!("e:{email}"), format!("a:{address}")] {
            let entry = map.entry(key).or_insert((0, now));
            if now - entry.1 >= WINDOW_MS {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// Forgets an email's failures after a successful log-in.
    pub fn succeed(&self, email: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("e:{email}"));
    }
}
