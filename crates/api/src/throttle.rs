//! Throttling of the account endpoints, in fixed windows per subject.
//!
//! Log-in, against password guessing, with two rules that hold together:
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
//! Sign-up, against scripted account farming (each account gets the sign-up grant): at most
//! 10 accounts from one client address an hour.
//!
//! Counts live in this process's memory: with N replicas behind a load balancer an
//! attacker gets up to N times the attempts, and a restart forgets them.

use std::collections::HashMap;
use std::sync::Mutex;

/// The window log-in failures are counted in.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failures for one email before it is throttled.
pub const PER_EMAIL: u32 = 5;
/// Failures from one address before it is throttled.
pub const PER_ADDRESS: u32 = 20;
/// The window sign-ups are counted in.
pub const SIGNUP_WINDOW_MS: i64 = 60 * 60 * 1000;
/// Sign-ups from one address per window.
pub const SIGNUPS_PER_ADDRESS: u32 = 10;
/// Above this many tracked subjects, the ones that throttle nobody are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// Counts per subject in fixed windows: `max` counted events within `window_ms` of the
/// first one refuse the subject until the window ends.
#[derive(Debug)]
struct Windows {
    max: u32,
    window_ms: i64,
    /// Subject → (count, start of its window).
    counts: Mutex<HashMap<String, (u32, i64)>>,
}

impl Windows {
    fn new(max: u32, window_ms: i64) -> Windows {
        Windows { max, window_ms, counts: Mutex::default() }
    }

    /// Seconds until `subject` may act again, if it is refused now.
    fn wait(&self, subject: &str, now: i64) -> Option<u64> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (count, start) = counts.get(subject)?;
        (*count >= self.max && now - start < self.window_ms).then(|| ((start + self.window_ms - now) / 1000 + 1) as u64)
    }

    fn count(&self, subject: &str, now: i64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() > MAX_TRACKED {
            counts.retain(|_, (_, start)| now - *start < self.window_ms);
        }
        if counts.len() > MAX_TRACKED {
            counts.retain(|_, (count, _)| *count >= self.max);
        }
        let entry = counts.entry(subject.to_string()).or_insert((0, now));
        if now - entry.1 >= self.window_ms {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    fn forget(&self, subject: &str) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).remove(subject);
    }
}

/// Failed log-ins per email and per client address, in memory.
#[derive(Debug)]
pub struct LoginThrottle {
    emails: Windows,
    addresses: Windows,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle { emails: Windows::new(PER_EMAIL, WINDOW_MS), addresses: Windows::new(PER_ADDRESS, WINDOW_MS) }
    }
}

impl LoginThrottle {
    /// Seconds to wait before another attempt for `email` from `address`, if throttled.
    pub fn check(&self, email: &str, address: &str, now: i64) -> Option<u64> {
        let by_address = if address.is_empty() { None } else { self.addresses.wait(address, now) };
        self.emails.wait(email, now).max(by_address)
    }

    /// Records a failed attempt.
    pub fn fail(&self, email: &str, address: &str, now: i64) {
        self.emails.count(email, now);
        if !address.is_empty() {
            self.addresses.count(address, now);
        }
    }

    /// Forgets an email's failures after a successful log-in (the address keeps its count).
    pub fn succeed(&self, email: &str) {
        self.emails.forget(email);
    }
}

/// Sign-ups per client address, in memory.
#[derive(Debug)]
pub struct SignupThrottle(Windows);

impl Default for SignupThrottle {
    fn default() -> Self {
        SignupThrottle(Windows::new(SIGNUPS_PER_ADDRESS, SIGNUP_WINDOW_MS))
    }
}

impl SignupThrottle {
    /// Seconds to wait before `address` may sign up again, if throttled. An unknown address
    /// (empty) is not throttled.
    pub fn check(&self, address: &str, now: i64) -> Option<u64> {
        if address.is_empty() { None } else { self.0.wait(address, now) }
    }

    /// Records an account made from `address`.
    pub fn signed_up(&self, address: &str, now: i64) {
        if !address.is_empty() {
            self.0.count(address, now);
        }
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
    fn sign_ups_are_limited_per_address_and_window() {
        let t = SignupThrottle::default();
        for _ in 0..SIGNUPS_PER_ADDRESS {
            assert_eq!(t.check("203.0.113.7", T0), None);
            t.signed_up("203.0.113.7", T0);
        }
        assert_eq!(t.check("203.0.113.7", T0 + 1000), Some((SIGNUP_WINDOW_MS / 1000) as u64));
        assert_eq!(t.check("203.0.113.8", T0), None, "another address is unaffected");
        assert_eq!(t.check("203.0.113.7", T0 + SIGNUP_WINDOW_MS), None, "the window ends");
        for _ in 0..SIGNUPS_PER_ADDRESS * 2 {
            t.signed_up("", T0);
        }
        assert_eq!(t.check("", T0), None, "unknown addresses do not share a bucket");
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
