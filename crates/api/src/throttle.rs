//! Log-in throttling against password guessing, with two rules that hold together:
//!
//! - **per account**: after 5 failures for one email within 15 minutes, that email is
//!   refused from every address until the window ends, so spreading guesses over many
//!   addresses does not help;
//! - **per address**: after 20 failures from one client address (over any emails) within
//!   15 minutes, that address is refused, so one address cannot try many accounts. Other
//!   addresses are not affected, so one attacker cannot lock everyone out, as long as the
//!   address is the client's: behind a proxy, set `ApiConfig::trust_forwarded_for` (see
//!   `auth::ClientAddr`). An unknown address (empty) is only throttled per account.
//!
//! Counts live in this process's memory: with N replicas behind a load balancer an
//! attacker gets up to N times the attempts, and a restart forgets them.

use std::collections::HashMap;
use std::sync::Mutex;

/// The window failures are counted in.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failures for one email before it is throttled.
pub const PER_EMAIL: u32 = 5;
/// Failures from one address before it is throttled.
pub const PER_ADDRESS: u32 = 20;
/// Above this many tracked subjects, the ones that throttle nobody are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// Failure counts per email and per client address, in memory.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    /// Subject (`e:<email>` or `a:<address>`) → (failures, start of the window).
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

/// The subjects an attempt counts against, with the failures each may have.
fn subjects(email: &str, address: &str) -> Vec<(String, u32)> {
    let mut out = vec![(format!("e:{email}"), PER_EMAIL)];
    if !address.is_empty() {
        out.push((format!("a:{address}"), PER_ADDRESS));
    }
    out
}

impl LoginThrottle {
    /// Seconds to wait before another attempt for `email` from `address`, if throttled.
    pub fn check(&self, email: &str, address: &str, now: i64) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        subjects(email, address)
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
        if map.len() > MAX_TRACKED {
            map.retain(|_, (_, start)| now - *start < WINDOW_MS);
        }
        if map.len() > MAX_TRACKED {
            map.retain(|key, (count, _)| *count >= if key.starts_with("e:") { PER_EMAIL } else { PER_ADDRESS });
        }
        for (key, _) in subjects(email, address) {
            let entry = map.entry(key).or_insert((0, now));
            if now - entry.1 >= WINDOW_MS {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// Forgets an email's failures after a successful log-in (the address keeps its count).
    pub fn succeed(&self, email: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("e:{email}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn one_email_is_throttled_from_every_address() {
        let t = LoginThrottle::default();
        for i in 0..PER_EMAIL {
            assert_eq!(t.check("ada@x.io", &format!("10.0.0.{i}"), T0), None);
            t.fail("ada@x.io", &format!("10.0.0.{i}"), T0);
        }
        assert!(t.check("ada@x.io", "192.0.2.99", T0).is_some(), "a fresh address does not help");
        assert!(t.check("ada@x.io", "", T0).is_some());
        assert_eq!(t.check("bob@x.io", "10.0.0.1", T0), None, "other accounts are unaffected");
        assert_eq!(t.check("ada@x.io", "192.0.2.99", T0 + WINDOW_MS), None, "the window ends");
    }

    #[test]
    fn one_address_is_throttled_for_every_email_and_only_itself() {
        let t = LoginThrottle::default();
        for i in 0..PER_ADDRESS {
            t.fail(&format!("user{i}@x.io"), "203.0.113.7", T0);
        }
        let wait = t.check("new@x.io", "203.0.113.7", T0 + 1000);
        assert_eq!(wait, Some((WINDOW_MS / 1000) as u64), "seconds until the window ends, rounded up");
        assert_eq!(t.check("new@x.io", "203.0.113.8", T0), None, "another address is unaffected");
        assert_eq!(t.check("user0@x.io", "198.51.100.1", T0), None, "one failure per email is under its limit");
    }

    #[test]
    fn unknown_addresses_do_not_share_a_bucket() {
        let t = LoginThrottle::default();
        for i in 0..PER_ADDRESS * 2 {
            t.fail(&format!("user{i}@x.io"), "", T0);
        }
        assert_eq!(t.check("new@x.io", "", T0), None);
    }

    #[test]
    fn success_forgets_the_email_but_not_the_address() {
        let t = LoginThrottle::default();
        for i in 0..PER_ADDRESS - 1 {
            t.fail(if i < PER_EMAIL - 1 { "ada@x.io" } else { "bob@x.io" }, "203.0.113.7", T0);
        }
        t.succeed("ada@x.io");
        t.fail("ada@x.io", "203.0.113.7", T0);
        assert!(t.check("cy@x.io", "203.0.113.7", T0).is_some());
        assert_eq!(t.check("ada@x.io", "198.51.100.1", T0), None);
    }
}
