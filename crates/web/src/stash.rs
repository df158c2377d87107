//! A one-time, short-lived stash of secrets the API shows once (a new API key, account
//! token or invitation link), so that a form can answer POST → 303 → GET: the POST puts
//! the secret here under a random nonce and redirects to a page with `?shown=<nonce>`; that
//! GET takes it out and shows it. A reload finds nothing, so it neither shows the secret
//! again nor creates another one.
//!
//! The secret is only in this process's memory: never in a URL (only the nonce is), a log
//! line (`Debug` leaves it out), a cookie or the database. An entry is bound to the session
//! that made it (by the SHA-256 of the session cookie), is dropped once taken, and expires
//! after [`TTL`]. Behind several replicas, the redirect must reach the process that took
//! the POST (sticky sessions); elsewhere the page says the secret can no longer be shown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tollgate_domain::secret::random_token;

/// How long a stashed secret waits to be shown.
pub const TTL: Duration = Duration::from_secs(300);
/// At most this many secrets wait at once; past it, the oldest are dropped.
pub const CAPACITY: usize = 10_000;

/// What a page shows once.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// What it is, for the page that shows it: `key`, `token` or `invitation`.
    pub kind: &'static str,
    /// The resource it belongs to (a key's or token's id, an invitation's email).
    pub about: String,
    /// A name to show with it.
    pub label: String,
    /// The secret itself.
    pub value: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret").field("kind", &self.kind).field("about", &self.about).finish_non_exhaustive()
    }
}

struct Entry {
    owner: String,
    secret: Secret,
    made: Instant,
}

/// The stash.
pub struct Stash {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
}

impl Default for Stash {
    fn default() -> Self {
        Stash::with_capacity(CAPACITY)
    }
}

impl std::fmt::Debug for Stash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stash").finish_non_exhaustive()
    }
}

impl Stash {
    /// A stash holding at most `capacity` secrets.
    pub fn with_capacity(capacity: usize) -> Stash {
        Stash { entries: Mutex::default(), capacity: capacity.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `secret` for `owner` (the SHA-256 of a session cookie); answers the nonce to
    /// take it with, or `None` when no random nonce could be made.
    pub fn put(&self, owner: &str, secret: Secret) -> Option<String> {
        self.put_at(owner, secret, Instant::now())
    }

    fn put_at(&self, owner: &str, secret: Secret, now: Instant) -> Option<String> {
        let nonce = random_token(32).ok()?;
        let mut entries = self.lock();
        entries.retain(|_, e| now.saturating_duration_since(e.made) < TTL);
        while entries.len() >= self.capacity {
            let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.made).map(|(k, _)| k.clone()) else { break };
            entries.remove(&oldest);
        }
        entries.insert(nonce.clone(), Entry { owner: owner.to_string(), secret, made: now });
        Some(nonce)
    }

    /// Takes out the secret stashed under `nonce` for `owner`, if it is there and fresh.
    /// Anyone else's nonce finds nothing and leaves the entry in place.
    pub fn take(&self, owner: &str, nonce: &str) -> Option<Secret> {
        self.take_at(owner, nonce, Instant::now())
    }

    fn take_at(&self, owner: &str, nonce: &str, now: Instant) -> Option<Secret> {
        let mut entries = self.lock();
        match entries.get(nonce) {
            Some(e) if e.owner != owner => return None,
            Some(_) => {}
            None => return None,
        }
        let entry = entries.remove(nonce)?;
        (now.saturating_duration_since(entry.made) < TTL).then_some(entry.secret)
    }

    /// How many secrets wait.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn secret(value: &str) -> Secret {
        Secret { kind: "key", about: "key_1".into(), label: "Production".into(), value: value.into() }
    }

    #[test]
    fn a_secret_is_taken_once_by_its_owner_only() {
        let stash = Stash::default();
        let nonce = stash.put("session-a", secret("tgk_x_secret")).unwrap();
        assert!(nonce.len() >= 32);
        assert_eq!(stash.take("session-b", &nonce), None, "another session finds nothing");
        assert_eq!(stash.take("session-a", &nonce).unwrap().value, "tgk_x_secret");
        assert_eq!(stash.take("session-a", &nonce), None, "only once");
        assert_eq!(stash.take("session-a", "made-up"), None);
        assert!(stash.is_empty());
    }

    #[test]
    fn secrets_expire_and_the_stash_is_bounded() {
        let stash = Stash::default();
        let t0 = Instant::now();
        let nonce = stash.put_at("s", secret("old"), t0).unwrap();
        assert_eq!(stash.take_at("s", &nonce, t0 + TTL), None, "expired");
        assert!(stash.is_empty(), "and dropped");
        let stale = stash.put_at("s", secret("stale"), t0).unwrap();
        stash.put_at("s", secret("fresh"), t0 + TTL).unwrap();
        assert_eq!(stash.len(), 1, "putting sweeps what expired");
        assert_eq!(stash.take_at("s", &stale, t0 + TTL), None);
        let full = Stash::with_capacity(3);
        let first = full.put_at("s", secret("first"), t0).unwrap();
        for i in 1..=3 {
            full.put_at("s", secret("more"), t0 + Duration::from_millis(i)).unwrap();
        }
        assert_eq!(full.len(), 3);
        assert_eq!(full.take_at("s", &first, t0 + Duration::from_secs(1)), None, "the oldest made room");
    }

    #[test]
    fn debug_output_never_holds_the_secret() {
        let stash = Stash::default();
        stash.put("s", secret("tgk_x_supersecret")).unwrap();
        let shown = format!("{:?} {:?}", stash, secret("tgk_x_supersecret"));
        assert!(!shown.contains("supersecret"), "{shown}");
    }
}
