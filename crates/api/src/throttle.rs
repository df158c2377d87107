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
//! Counts live in the database (`Store::throttle_count`), so every replica behind a load
//! balancer counts against the same windows and a restart forgets nothing. Subjects are
//! stored as SHA-256 hashes: no email or address is kept in clear for this.

use tollgate_domain::secret::sha256_hex;
use tollgate_store::{Result, Store};

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

/// Counts per subject in fixed windows: `max` counted events within `window_ms` of the
/// first one refuse the subject until the window ends.
#[derive(Debug, Clone)]
struct Windows {
    store: Store,
    /// What is counted, so one value counted by two rules is two subjects.
    rule: &'static str,
    max: u32,
    window_ms: i64,
}

impl Windows {
    fn subject(&self, who: &str) -> String {
        sha256_hex(format!("{}\0{who}", self.rule).as_bytes())
    }

    /// Seconds until `who` may act again, if it is refused now.
    async fn wait(&self, who: &str, now: i64) -> Result<Option<u64>> {
        let Some(window) = self.store.throttle_window(&self.subject(who), now).await? else { return Ok(None) };
        let seconds = u64::try_from((window.ends_at - now) / 1000 + 1).unwrap_or(1);
        Ok((window.count >= i64::from(self.max)).then_some(seconds))
    }

    async fn count(&self, who: &str, now: i64) -> Result<()> {
        self.store.throttle_count(&self.subject(who), self.window_ms, now).await
    }

    async fn forget(&self, who: &str) -> Result<()> {
        self.store.throttle_forget(&self.subject(who)).await
    }
}

/// Failed log-ins per email and per client address.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    emails: Windows,
    addresses: Windows,
}

impl LoginThrottle {
    pub fn new(store: Store) -> LoginThrottle {
        LoginThrottle {
            emails: Windows { store: store.clone(), rule: "login-email", max: PER_EMAIL, window_ms: WINDOW_MS },
            addresses: Windows { store, rule: "login-address", max: PER_ADDRESS, window_ms: WINDOW_MS },
        }
    }

    /// Seconds to wait before another attempt for `email` from `address`, if throttled.
    pub async fn check(&self, email: &str, address: &str, now: i64) -> Result<Option<u64>> {
        let by_address = if address.is_empty() { None } else { self.addresses.wait(address, now).await? };
        Ok(self.emails.wait(email, now).await?.max(by_address))
    }

    /// Records a failed attempt.
    pub async fn fail(&self, email: &str, address: &str, now: i64) -> Result<()> {
        self.emails.count(email, now).await?;
        if !address.is_empty() {
            self.addresses.count(address, now).await?;
        }
        Ok(())
    }

    /// Forgets an email's failures after a successful log-in (the address keeps its count).
    pub async fn succeed(&self, email: &str) -> Result<()> {
        self.emails.forget(email).await
    }
}

/// Sign-ups per client address.
#[derive(Debug, Clone)]
pub struct SignupThrottle(Windows);

impl SignupThrottle {
    pub fn new(store: Store) -> SignupThrottle {
        SignupThrottle(Windows { store, rule: "signup-address", max: SIGNUPS_PER_ADDRESS, window_ms: SIGNUP_WINDOW_MS })
    }

    /// Seconds to wait before `address` may sign up again, if throttled. An unknown address
    /// (empty) is not throttled.
    pub async fn check(&self, address: &str, now: i64) -> Result<Option<u64>> {
        if address.is_empty() { Ok(None) } else { self.0.wait(address, now).await }
    }

    /// Records an account made from `address`.
    pub async fn signed_up(&self, address: &str, now: i64) -> Result<()> {
        if address.is_empty() { Ok(()) } else { self.0.count(address, now).await }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tollgate_store::testing::TestStore;

    const T0: i64 = 1_700_000_000_000;

    #[tokio::test]
    async fn one_email_is_throttled_from_every_address() {
        let store = TestStore::new().await.unwrap();
        let t = LoginThrottle::new(store.store.clone());
        for i in 0..PER_EMAIL {
            assert_eq!(t.check("ada@x.io", &format!("10.0.0.{i}"), T0).await.unwrap(), None);
            t.fail("ada@x.io", &format!("10.0.0.{i}"), T0).await.unwrap();
        }
        assert!(t.check("ada@x.io", "192.0.2.99", T0).await.unwrap().is_some(), "a fresh address does not help");
        assert!(t.check("ada@x.io", "", T0).await.unwrap().is_some());
        assert_eq!(t.check("bob@x.io", "10.0.0.1", T0).await.unwrap(), None, "other accounts are unaffected");
        assert_eq!(t.check("ada@x.io", "192.0.2.99", T0 + WINDOW_MS).await.unwrap(), None, "the window ends");
        t.fail("ada@x.io", "", T0 + WINDOW_MS).await.unwrap();
        assert_eq!(t.check("ada@x.io", "", T0 + WINDOW_MS).await.unwrap(), None, "a new window counts from one");
    }

    #[tokio::test]
    async fn one_address_is_throttled_for_every_email_and_only_itself() {
        let store = TestStore::new().await.unwrap();
        let t = LoginThrottle::new(store.store.clone());
        for i in 0..PER_ADDRESS {
            t.fail(&format!("user{i}@x.io"), "203.0.113.7", T0).await.unwrap();
        }
        let wait = t.check("new@x.io", "203.0.113.7", T0 + 1000).await.unwrap();
        assert_eq!(wait, Some((WINDOW_MS / 1000) as u64), "seconds until the window ends, rounded up");
        assert_eq!(t.check("new@x.io", "203.0.113.8", T0).await.unwrap(), None, "another address is unaffected");
        assert_eq!(
            t.check("user0@x.io", "198.51.100.1", T0).await.unwrap(),
            None,
            "one failure per email is under its limit"
        );
    }

    #[tokio::test]
    async fn unknown_addresses_do_not_share_a_bucket() {
        let store = TestStore::new().await.unwrap();
        let t = LoginThrottle::new(store.store.clone());
        for i in 0..PER_ADDRESS * 2 {
            t.fail(&format!("user{i}@x.io"), "", T0).await.unwrap();
        }
        assert_eq!(t.check("new@x.io", "", T0).await.unwrap(), None);
    }

    #[tokio::test]
    async fn sign_ups_are_limited_per_address_and_window() {
        let store = TestStore::new().await.unwrap();
        let t = SignupThrottle::new(store.store.clone());
        for _ in 0..SIGNUPS_PER_ADDRESS {
            assert_eq!(t.check("203.0.113.7", T0).await.unwrap(), None);
            t.signed_up("203.0.113.7", T0).await.unwrap();
        }
        assert_eq!(t.check("203.0.113.7", T0 + 1000).await.unwrap(), Some((SIGNUP_WINDOW_MS / 1000) as u64));
        assert_eq!(t.check("203.0.113.8", T0).await.unwrap(), None, "another address is unaffected");
        assert_eq!(t.check("203.0.113.7", T0 + SIGNUP_WINDOW_MS).await.unwrap(), None, "the window ends");
        for _ in 0..SIGNUPS_PER_ADDRESS * 2 {
            t.signed_up("", T0).await.unwrap();
        }
        assert_eq!(t.check("", T0).await.unwrap(), None, "unknown addresses do not share a bucket");
    }

    #[tokio::test]
    async fn success_forgets_the_email_but_not_the_address() {
        let store = TestStore::new().await.unwrap();
        let t = LoginThrottle::new(store.store.clone());
        for i in 0..PER_ADDRESS - 1 {
            t.fail(if i < PER_EMAIL - 1 { "ada@x.io" } else { "bob@x.io" }, "203.0.113.7", T0).await.unwrap();
        }
        t.succeed("ada@x.io").await.unwrap();
        t.fail("ada@x.io", "203.0.113.7", T0).await.unwrap();
        assert!(t.check("cy@x.io", "203.0.113.7", T0).await.unwrap().is_some());
        assert_eq!(t.check("ada@x.io", "198.51.100.1", T0).await.unwrap(), None);
    }

    #[tokio::test]
    async fn replicas_count_against_the_same_windows_and_store_no_email_or_address() {
        let store = TestStore::new().await.unwrap();
        // Two replicas: two throttles over one database.
        let (a, b) = (LoginThrottle::new(store.store.clone()), LoginThrottle::new(store.store.clone()));
        for i in 0..PER_EMAIL {
            let replica = if i % 2 == 0 { &a } else { &b };
            replica.fail("ada@x.io", "203.0.113.7", T0).await.unwrap();
        }
        assert!(a.check("ada@x.io", "198.51.100.1", T0).await.unwrap().is_some());
        assert!(b.check("ada@x.io", "198.51.100.1", T0).await.unwrap().is_some());
        let dump = store.dump().await.unwrap();
        assert!(!dump.contains("ada@x.io") && !dump.contains("203.0.113.7"), "subjects are hashed at rest");
        assert_eq!(store.delete_ended_throttles(T0 + WINDOW_MS).await.unwrap(), 2, "the email's and the address's");
        assert_eq!(a.check("ada@x.io", "203.0.113.7", T0).await.unwrap(), None);
    }
}
