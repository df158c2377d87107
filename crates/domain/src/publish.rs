//! What a publisher sends, checked: an agent's listing metadata and a new version
//! (pricing, free tiers, upstream, dependencies). Every function returns checked values or
//! an [`Invalid`] naming the field at fault, e.g. `functions[1].pricing.price`.
//!
//! Upstream headers (the publisher's credential for its own server) are sealed as one JSON
//! object `{name: value}` with [`seal_headers`] and read back only by the gateway with
//! [`open_headers`]; no API response ever carries them.

use crate::Invalid;
use crate::money::Nanos;
use crate::pricing::{FreeReset, FunctionPrice, Pricing};
use crate::secret::{Sealer, SecretError};
use crate::trust::Governance;
use crate::validate::{self, SemVer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// A version's task-token timeout when the publisher sets none (A2A), in seconds.
pub const DEFAULT_TASK_TIMEOUT_SECONDS: i64 = 300;
/// The task-token timeout's bounds: one minute to 24 hours.
pub const TASK_TIMEOUT_SECONDS: std::ops::RangeInclusive<i64> = 60..=86_400;
/// At most this many priced functions per version.
pub const MAX_FUNCTIONS: usize = 200;
/// At most this many dependencies per version.
pub const MAX_DEPENDENCIES: usize = 20;
/// At most this many upstream headers per version.
pub const MAX_HEADERS: usize = 20;
/// At most this many free calls per function.
pub const MAX_FREE_CALLS: i64 = 1_000_000;

/// Headers the gateway sets or manages itself; a publisher cannot override them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "x-request-id",
    "mcp-session-id",
    "mcp-protocol-version",
];

/// Who to contact about an agent (the Support tab).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub docs_url: Option<String>,
}

impl Support {
    /// The contacts, checked: an email address and `http(s)` URLs; blank ones are dropped.
    pub fn check(&self) -> Result<Support, Invalid> {
        let present = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let url = |field: &str, v: &Option<String>| present(v).map(|u| web_url(field, &u)).transpose();
        Ok(Support {
            email: present(&self.email).map(|e| validate::email("support.email", &e)).transpose()?,
            url: url("support.url", &self.url)?,
            docs_url: url("support.docs_url", &self.docs_url)?,
        })
    }
}

/// A public web link (`http://` or `https://`, a host, no credentials).
pub fn web_url(field: &str, raw: &str) -> Result<String, Invalid> {
    validate::upstream_url(field, raw.trim())
}

/// An agent's listing: everything the store shows except its slug and protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    pub name: String,
    pub description: String,
    /// Lowercase, e.g. `devtools`.
    pub category: String,
    /// Client platforms, e.g. "Claude Desktop", "VS Code".
    pub platforms: Vec<String>,
    /// E.g. "reasoning", "code generation".
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub use_cases: Vec<String>,
    pub governance: Governance,
    pub support: Support,
}

/// A change to a listing: absent fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct ListingDraft {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub platforms: Option<Vec<String>>,
    pub capabilities: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub use_cases: Option<Vec<String>>,
    pub governance: Option<Governance>,
    pub support: Option<Support>,
}

impl ListingDraft {
    /// The draft laid over `base` (a stored listing, or the empty one for a new agent),
    /// checked and normalized as a whole.
    pub fn apply(self, base: Listing) -> Result<Listing, Invalid> {
        let governance = self.governance.unwrap_or(base.governance).checked()?;
        Ok(Listing {
            name: validate::text("name", &self.name.unwrap_or(base.name), 100)?,
            description: validate::text("description", &self.description.unwrap_or(base.description), 10_000)?,
            category: category("category", &self.category.unwrap_or(base.category))?,
            platforms: labels("platforms", &self.platforms.unwrap_or(base.platforms), 30, 60)?,
            capabilities: labels("capabilities", &self.capabilities.unwrap_or(base.capabilities), 30, 60)?,
            tags: labels("tags", &self.tags.unwrap_or(base.tags), 20, 40)?,
            use_cases: labels("use_cases", &self.use_cases.unwrap_or(base.use_cases), 20, 500)?,
            governance,
            support: self.support.unwrap_or(base.support).check()?,
        })
    }
}

impl Listing {
    /// The trust score stored with the listing (uptime is not measured yet).
    pub fn trust_score(&self) -> i64 {
        self.governance.trust_score(None)
    }

    /// The lowercased text the store's search matches: slug, name, publisher, description
    /// and tags.
    pub fn search_text(&self, slug: &str, publisher: &str) -> String {
        [slug, &self.name, publisher, &self.description, &self.tags.join(" ")].join("\n").to_lowercase()
    }
}

/// A category: 2–40 lowercase letters, digits, spaces and hyphens (`devtools`).
pub fn category(field: &str, raw: &str) -> Result<String, Invalid> {
    let c = raw.trim().to_lowercase();
    let ok = c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b' ');
    if !(2..=40).contains(&c.len()) || !ok {
        return Err(Invalid::new(field, "must be 2–40 letters, digits, spaces or hyphens, e.g. \"devtools\""));
    }
    Ok(c)
}

/// A list of short texts: each trimmed and non-empty, duplicates (ignoring case) dropped.
pub fn labels(field: &str, items: &[String], max_items: usize, max_len: usize) -> Result<Vec<String>, Invalid> {
    if items.len() > max_items {
        return Err(Invalid::new(field, format!("holds at most {max_items} entries")));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let text = validate::text(&format!("{field}[{i}]"), item, max_len)?;
        if seen.insert(text.to_lowercase()) {
            out.push(text);
        }
    }
    Ok(out)
}

/// One priced function as sent.
#[derive(Debug, Clone)]
pub struct FunctionDraft {
    pub name: String,
    /// The API form of [`Pricing`].
    pub pricing: serde_json::Value,
    pub free_calls: Option<i64>,
    /// `lifetime` (default) or `monthly`.
    pub free_reset: Option<String>,
}

/// A new version as sent.
#[derive(Debug, Clone, Default)]
pub struct VersionDraft {
    pub version: String,
    pub upstream_url: String,
    pub upstream_headers: BTreeMap<String, String>,
    /// USD, default `"0"`.
    pub base_fee: Option<String>,
    pub functions: Vec<FunctionDraft>,
    pub default_pricing: Option<serde_json::Value>,
    /// `(agent slug, version or "latest")`.
    pub dependencies: Vec<(String, String)>,
    pub task_timeout_seconds: Option<i64>,
    pub cold_start: bool,
}

/// A new version, checked. Dependencies still need to be resolved against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    pub version: String,
    pub upstream_url: String,
    /// Header names and values, names unique ignoring case.
    pub upstream_headers: Vec<(String, String)>,
    pub base_fee: Nanos,
    pub functions: Vec<FunctionPrice>,
    pub default_pricing: Option<Pricing>,
    pub dependencies: Vec<(String, String)>,
    pub task_timeout_seconds: i64,
    pub cold_start: bool,
}

impl VersionDraft {
    /// Checks every field; the first fault wins.
    pub fn check(self) -> Result<NewVersion, Invalid> {
        let semver = SemVer::parse("version", self.version.trim())?;
        if !semver.build.is_empty() {
            return Err(Invalid::new("version", "must not carry +build metadata (versions appear in URLs)"));
        }
        let base_fee = match self.base_fee.as_deref() {
            None => Nanos::ZERO,
            Some(fee) => Nanos::parse_usd(fee).map_err(|e| Invalid::new("base_fee", e.to_string()))?,
        };
        let task_timeout_seconds = self.task_timeout_seconds.unwrap_or(DEFAULT_TASK_TIMEOUT_SECONDS);
        if !TASK_TIMEOUT_SECONDS.contains(&task_timeout_seconds) {
            return Err(Invalid::new("task_timeout_seconds", "must be between 60 (1 minute) and 86400 (24 hours)"));
        }
        Ok(NewVersion {
            version: self.version.trim().to_string(),
            upstream_url: validate::upstream_url("upstream_url", self.upstream_url.trim())?,
            upstream_headers: upstream_headers("upstream_headers", &self.upstream_headers)?,
            base_fee,
            functions: functions("functions", &self.functions)?,
            default_pricing: self.default_pricing.as_ref().map(|p| Pricing::parse("default_pricing", p)).transpose()?,
            dependencies: dependencies("dependencies", &self.dependencies)?,
            task_timeout_seconds,
            cold_start: self.cold_start,
        })
    }
}

fn functions(field: &str, drafts: &[FunctionDraft]) -> Result<Vec<FunctionPrice>, Invalid> {
    if drafts.len() > MAX_FUNCTIONS {
        return Err(Invalid::new(field, format!("holds at most {MAX_FUNCTIONS} functions")));
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(drafts.len());
    for (i, f) in drafts.iter().enumerate() {
        let at = |key: &str| format!("{field}[{i}].{key}");
        let name = validate::text(&at("name"), &f.name, 200)?;
        if !names.insert(name.clone()) {
            return Err(Invalid::new(at("name"), format!("\"{name}\" is listed twice")));
        }
        let free_calls = f.free_calls.unwrap_or(0);
        if !(0..=MAX_FREE_CALLS).contains(&free_calls) {
            return Err(Invalid::new(at("free_calls"), format!("must be between 0 and {MAX_FREE_CALLS}")));
        }
        let free_reset = match f.free_reset.as_deref() {
            None | Some("lifetime") => FreeReset::Lifetime,
            Some("monthly") => FreeReset::Monthly,
            Some(_) => {
                return Err(Invalid::new(at("free_reset"), "must be \"lifetime\" or \"monthly\""));
            }
        };
        out.push(FunctionPrice { name, pricing: Pricing::parse(&at("pricing"), &f.pricing)?, free_calls, free_reset });
    }
    Ok(out)
}

fn dependencies(field: &str, deps: &[(String, String)]) -> Result<Vec<(String, String)>, Invalid> {
    if deps.len() > MAX_DEPENDENCIES {
        return Err(Invalid::new(field, format!("holds at most {MAX_DEPENDENCIES} dependencies")));
    }
    let mut seen = HashSet::new();
    for (i, (agent, version)) in deps.iter().enumerate() {
        validate::slug(&format!("{field}[{i}].agent"), agent)
            .map_err(|_| Invalid::new(format!("{field}[{i}].agent"), format!("no agent is called \"{agent}\"")))?;
        if version != "latest" {
            SemVer::parse(&format!("{field}[{i}].version"), version)?;
        }
        if !seen.insert(agent.as_str()) {
            return Err(Invalid::new(format!("{field}[{i}].agent"), format!("\"{agent}\" is listed twice")));
        }
    }
    Ok(deps.to_vec())
}

/// Upstream headers: HTTP token names (unique ignoring case, not one the gateway manages)
/// and printable ASCII values.
pub fn upstream_headers(field: &str, headers: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, Invalid> {
    if headers.len() > MAX_HEADERS {
        return Err(Invalid::new(field, format!("holds at most {MAX_HEADERS} headers")));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || name.len() > 64 || !name.bytes().all(tchar) {
            return Err(Invalid::new(
                field,
                "header names must be 1–64 characters of letters, digits and -_.!#$%&'*+^`|~",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-tollgate-") {
            return Err(Invalid::new(format!("{field}.{name}"), "is set by the gateway and cannot be configured"));
        }
        if !seen.insert(lower) {
            return Err(Invalid::new(format!("{field}.{name}"), "is given twice (header names ignore case)"));
        }
        let value = value.trim();
        if value.is_empty() || value.len() > 4096 || !value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            return Err(Invalid::new(
                format!("{field}.{name}"),
                "values must be 1–4096 printable ASCII characters without line breaks",
            ));
        }
        out.push((name.clone(), value.to_string()));
    }
    Ok(out)
}

/// Seals upstream headers as one JSON object; no headers, no sealed value.
pub fn seal_headers(sealer: &Sealer, headers: &[(String, String)]) -> Result<Option<String>, SecretError> {
    if headers.is_empty() {
        return Ok(None);
    }
    let map: BTreeMap<&str, &str> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let plain = serde_json::to_vec(&map).map_err(|_| SecretError::Open)?;
    sealer.seal(&plain).map(Some)
}

/// Opens headers sealed by [`seal_headers`] (the gateway's side).
pub fn open_headers(sealer: &Sealer, sealed: &str) -> Result<Vec<(String, String)>, SecretError> {
    let map: BTreeMap<String, String> = serde_json::from_slice(&sealer.open(sealed)?).map_err(|_| SecretError::Open)?;
    Ok(map.into_iter().collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft() -> VersionDraft {
        VersionDraft {
            version: "1.0.0".into(),
            upstream_url: "https://agent.example.com/mcp".into(),
            functions: vec![FunctionDraft {
                name: "search".into(),
                pricing: json!({"model": "per_request", "price": "0.005"}),
                free_calls: Some(5),
                free_reset: Some("monthly".into()),
            }],
            ..VersionDraft::default()
        }
    }

    fn fault(d: VersionDraft) -> String {
        d.check().unwrap_err().field
    }

    #[test]
    fn a_good_version_is_checked_with_defaults() {
        let v = draft().check().unwrap();
        assert_eq!(v.base_fee, Nanos::ZERO);
        assert_eq!(v.task_timeout_seconds, DEFAULT_TASK_TIMEOUT_SECONDS);
        assert_eq!(v.functions[0].free_reset, FreeReset::Monthly);
        assert_eq!(v.functions[0].pricing, Pricing::PerRequest { price: Nanos(5_000_000) });
    }

    #[test]
    fn bad_versions_name_the_field() {
        assert_eq!(fault(VersionDraft { version: "1.0".into(), ..draft() }), "version");
        assert_eq!(fault(VersionDraft { version: "1.0.0+b1".into(), ..draft() }), "version");
        assert_eq!(fault(VersionDraft { base_fee: Some("-1".into()), ..draft() }), "base_fee");
        assert_eq!(fault(VersionDraft { task_timeout_seconds: Some(59), ..draft() }), "task_timeout_seconds");
        assert_eq!(fault(VersionDraft { upstream_url: "ftp://x".into(), ..draft() }), "upstream_url");
        let mut twice = draft();
        twice.functions.push(twice.functions[0].clone());
        assert_eq!(fault(twice), "functions[1].name");
        let mut negative = draft();
        negative.functions[0].free_calls = Some(-1);
        assert_eq!(fault(negative), "functions[0].free_calls");
        let mut precise = draft();
        precise.functions[0].pricing = json!({"model": "per_request", "price": "0.0000000001"});
        assert_eq!(fault(precise), "functions[0].pricing.price");
        let deps =
            vec![("web-search".to_string(), "1.0.0".to_string()), ("web-search".to_string(), "latest".to_string())];
        assert_eq!(fault(VersionDraft { dependencies: deps, ..draft() }), "dependencies[1].agent");
    }

    #[test]
    fn headers_are_checked_and_round_trip_sealed() {
        let ok = BTreeMap::from([("Authorization".to_string(), "Bearer s3cret".to_string())]);
        let headers = upstream_headers("h", &ok).unwrap();
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        let sealed = seal_headers(&sealer, &headers).unwrap().unwrap();
        assert!(!sealed.contains("s3cret"));
        assert_eq!(open_headers(&sealer, &sealed).unwrap(), headers);
        assert_eq!(seal_headers(&sealer, &[]).unwrap(), None);
        for (name, value) in
            [("Host", "x"), ("X-Tollgate-Install", "x"), ("bad name", "x"), ("X-Key", "a\r\nb"), ("X-Key", "")]
        {
            let bad = BTreeMap::from([(name.to_string(), value.to_string())]);
            assert!(upstream_headers("h", &bad).is_err(), "{name}: {value:?}");
        }
        let twice = BTreeMap::from([("X-Key".to_string(), "a".to_string()), ("x-key".to_string(), "b".to_string())]);
        assert!(upstream_headers("h", &twice).is_err());
    }

    #[test]
    fn listings_are_normalized() {
        let draft = ListingDraft {
            name: Some(" Web Search ".into()),
            description: Some("Searches the web.".into()),
            category: Some("DevTools".into()),
            tags: Some(vec!["search".into(), "Search".into(), " web ".into()]),
            ..ListingDraft::default()
        };
        let listing = draft.apply(Listing::default()).unwrap();
        assert_eq!((listing.name.as_str(), listing.category.as_str()), ("Web Search", "devtools"));
        assert_eq!(listing.tags, vec!["search", "web"]);
        assert!(listing.search_text("web-search", "Ada's org").contains("ada's org"));
        let err = ListingDraft { tags: Some(vec!["".into()]), ..ListingDraft::default() }.apply(listing.clone());
        assert_eq!(err.unwrap_err().field, "tags[0]");
        let err = ListingDraft {
            support: Some(Support { email: Some("nope".into()), ..Support::default() }),
            ..ListingDraft::default()
        }
        .apply(listing);
        assert_eq!(err.unwrap_err().field, "support.email");
        assert_eq!(ListingDraft::default().apply(Listing::default()).unwrap_err().field, "name");
    }
}
