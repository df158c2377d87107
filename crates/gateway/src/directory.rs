//! What the gateway knows about keys, agent versions, orgs and ledger accounts, cached so
//! the hot path makes no database round trip. Entries are dropped when the store reports a
//! change (a revoked key, an uninstall, a retired version, a new budget) — on this replica
//! at once, on others through the change feed — and expire after a while as a backstop.

use crate::error::GatewayError;
use axum::http::{HeaderName, HeaderValue, Uri};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tollgate_domain::secret::Sealer;
use tollgate_store::catalog::{Agent, Version};
use tollgate_store::changes::Change;
use tollgate_store::installs::GatewayKey;
use tollgate_store::ledger::AccountKind;
use tollgate_store::orgs::Org;
use tollgate_store::{Store, StoreError};

/// A map of entries that expire after `ttl`. A cached miss (`None`) expires after
/// `miss_ttl`, so a flood of bad keys costs one lookup per key per `miss_ttl`.
///
/// Every removal bumps a generation; a value loaded before a removal is not stored, so a
/// lookup racing a revocation cannot put the revoked key's old row back.
struct Cache<K, V> {
    ttl: Duration,
    miss_ttl: Duration,
    capacity: usize,
    generation: AtomicU64,
    entries: RwLock<HashMap<K, Entry<V>>>,
}

/// When a value (or a miss) was stored, and the value.
type Entry<V> = (Instant, Option<Arc<V>>);

impl<K: Eq + Hash + Clone, V> Cache<K, V> {
    fn new(ttl: Duration, miss_ttl: Duration, capacity: usize) -> Self {
        Cache { ttl, miss_ttl, capacity, generation: AtomicU64::new(0), entries: RwLock::new(HashMap::new()) }
    }

    /// The generation to pass to [`Cache::put`] for a value about to be loaded.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `Some(entry)` when fresh (the entry may be a cached miss).
    fn get<Q>(&self, key: &Q) -> Option<Option<Arc<V>>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let (at, value) = entries.get(key)?;
        let ttl = if value.is_some() { self.ttl } else { self.miss_ttl };
        (at.elapsed() < ttl).then(|| value.clone())
    }

    /// Stores a value loaded at `generation`, unless something was removed since.
    fn put(&self, generation: u64, key: K, value: Option<Arc<V>>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let (ttl, miss_ttl) = (self.ttl, self.miss_ttl);
            entries.retain(|_, (at, v)| at.elapsed() < if v.is_some() { ttl } else { miss_ttl });
            if entries.len() >= self.capacity {
                // Still full of fresh entries: drop the misses, then everything.
                entries.retain(|_, (_, v)| v.is_some());
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn remove_where(&self, mut doomed: impl FnMut(&K, Option<&V>) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|k, (_, v)| !doomed(k, v.as_deref()));
    }

    fn clear(&self) {
        self.remove_where(|_, _| true);
    }

    fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// An agent version calls go to, prepared for forwarding: its upstream credential opened
/// and parsed, its addresses parsed, its publisher's earnings account found.
#[derive(Debug)]
pub(crate) struct Target {
    pub agent: Agent,
    pub version: Version,
    /// The version's upstream headers (its credential), sent instead of the caller's.
    pub upstream_headers: Vec<(HeaderName, HeaderValue)>,
    /// The MCP endpoint, and the health URL beside it (`None`: not a valid `http://` or
    /// `https://` URL).
    pub endpoint: Option<Uri>,
    pub health: Option<Uri>,
    /// The publisher's earnings account.
    pub publisher_account: String,
    /// Calls to this version in flight on this replica (shared by every copy of the
    /// version loaded since, so a reload never resets it).
    pub in_flight: Arc<AtomicUsize>,
}

/// A call counted in its version's [`Target::in_flight`] until this is dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl Target {
    /// Counts a call in flight, unless `max` (0: no cap) are already.
    pub fn enter(&self, max: usize) -> Option<InFlight> {
        let mut now = self.in_flight.load(Ordering::Relaxed);
        loop {
            if max > 0 && now >= max {
                return None;
            }
            match self.in_flight.compare_exchange_weak(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(InFlight(self.in_flight.clone())),
                Err(actual) => now = actual,
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A key as the gateway admits it: the stored key and what every call with it needs.
#[derive(Debug)]
pub(crate) struct Caller {
    pub key: GatewayKey,
    /// The rate-limit subject: this member, this agent (`org:user:agent`).
    pub subject: String,
    /// The org's credit account.
    pub org_account: String,
}

/// The gateway's caches over the store.
pub(crate) struct Directory {
    store: Store,
    sealer: Sealer,
    keys: Cache<String, Caller>,
    targets: Cache<(String, String), Target>,
    orgs: Cache<String, Org>,
    accounts: Cache<(&'static str, String), String>,
    /// Each version's in-flight count, by version id.
    in_flight: std::sync::Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

impl Directory {
    pub fn new(store: Store, sealer: Sealer) -> Directory {
        Directory {
            store,
            sealer,
            keys: Cache::new(Duration::from_secs(300), Duration::from_secs(5), 200_000),
            targets: Cache::new(Duration::from_secs(60), Duration::from_secs(2), 20_000),
            orgs: Cache::new(Duration::from_secs(60), Duration::from_secs(2), 200_000),
            accounts: Cache::new(Duration::MAX, Duration::ZERO, 400_000),
            in_flight: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The key whose secret hashes to `hash`, revoked keys included.
    pub async fn key(&self, hash: &str) -> Result<Option<Arc<Caller>>, GatewayError> {
        if let Some(hit) = self.keys.get(hash) {
            return Ok(hit);
        }
        let generation = self.keys.generation();
        let found = match self.store.gateway_key(hash).await.map_err(internal)? {
            None => None,
            Some(key) => {
                let org_account = self.account(AccountKind::OrgCredit, &key.key.org_id).await?;
                let subject = format!("{}:{}:{}", key.key.org_id, key.key.user_id, key.key.agent_id);
                Some(Arc::new(Caller { key, subject, org_account }))
            }
        };
        self.keys.put(generation, hash.to_string(), found.clone());
        Ok(found)
    }

    /// The agent version `slug`/`version` (`latest`: the newest active one), or `None`.
    pub async fn target(&self, slug: &str, version: &str) -> Result<Option<Arc<Target>>, GatewayError> {
        let cache_key = (slug.to_string(), version.to_string());
        if let Some(hit) = self.targets.get(&cache_key) {
            return Ok(hit);
        }
        let generation = self.targets.generation();
        let found = self.load_target(slug, version).await?.map(Arc::new);
        self.targets.put(generation, cache_key, found.clone());
        Ok(found)
    }

    async fn load_target(&self, slug: &str, version: &str) -> Result<Option<Target>, GatewayError> {
        let agent = match self.store.agent_by_slug(slug).await {
            Ok(agent) => agent,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(internal(e)),
        };
        let version = match self.store.agent_version(&agent.id, version).await {
            Ok(v) => v,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(internal(e)),
        };
        let opened = match &version.upstream_headers_sealed {
            Some(sealed) => tollgate_domain::publish::open_headers(&self.sealer, sealed).map_err(internal)?,
            None => Vec::new(),
        };
        let mut upstream_headers = Vec::with_capacity(opened.len());
        for (name, value) in opened {
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                (Ok(name), Ok(value)) => upstream_headers.push((name, value)),
                // Logged by name only: the value is a credential.
                _ => {
                    tracing::warn!(agent.slug = %agent.slug, header = %name, "skipping an upstream header that is not valid HTTP")
                }
            }
        }
        let http = |url: &str| {
            url.parse::<Uri>().ok().filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
        };
        let endpoint = http(&version.upstream_url);
        let health = http(&crate::upstream::health_url(&version.upstream_url));
        let publisher_account = self.account(AccountKind::PublisherEarnings, &agent.publisher_org_id).await?;
        let in_flight = {
            let mut counts = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            // Counts of versions nobody calls any more go (a count is only ever kept alive
            // by cached targets and calls in flight).
            if counts.len() > 20_000 {
                counts.retain(|_, c| Arc::strong_count(c) > 1);
            }
            counts.entry(version.id.clone()).or_default().clone()
        };
        Ok(Some(Target { agent, version, upstream_headers, endpoint, health, publisher_account, in_flight }))
    }

    /// An org (its budget and rate limits).
    pub async fn org(&self, id: &str) -> Result<Arc<Org>, GatewayError> {
        if let Some(Some(org)) = self.orgs.get(id) {
            return Ok(org);
        }
        let generation = self.orgs.generation();
        let org = Arc::new(self.store.org(id).await.map_err(internal)?);
        self.orgs.put(generation, id.to_string(), Some(org.clone()));
        Ok(org)
    }

    /// The id of the ledger account of `kind` for `owner` (ids never change).
    pub async fn account(&self, kind: AccountKind, owner: &str) -> Result<String, GatewayError> {
        let key = (kind.as_str(), owner.to_string());
        if let Some(Some(id)) = self.accounts.get(&key) {
            return Ok(id.as_ref().clone());
        }
        let generation = self.accounts.generation();
        let id = self.store.ledger_account(kind, owner).await.map_err(internal)?.id;
        self.accounts.put(generation, key, Some(Arc::new(id.clone())));
        Ok(id)
    }

    /// Forgets what `change` may have made stale.
    pub fn apply(&self, change: &Change) {
        match change {
            Change::Key(hash) => self.keys.remove_where(|k, _| k == hash),
            Change::Installation(id) => {
                self.keys.remove_where(|_, caller| caller.is_some_and(|c| &c.key.key.installation_id == id));
            }
            Change::Member(org, user) => {
                self.keys.remove_where(|_, c| c.is_some_and(|c| &c.key.key.org_id == org && &c.key.key.user_id == user))
            }
            Change::Agent(id) => self.targets.remove_where(|_, t| t.is_none_or(|t| &t.agent.id == id)),
            Change::Org(id) => self.orgs.remove_where(|k, _| k == id),
            Change::All => {
                self.keys.clear();
                self.targets.clear();
                self.orgs.clear();
            }
        }
    }

    /// How many keys are cached (for the benchmark and metrics).
    pub fn cached_keys(&self) -> usize {
        self.keys.len()
    }
}
