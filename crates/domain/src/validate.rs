//! Parsing of user input into checked values. Every function returns a typed value or an
//! [`Invalid`] that says what is wrong, in words a person understands.

use crate::Invalid;

/// Top-level paths of the service that an agent slug must never shadow.
pub const RESERVED_SLUGS: &[&str] = &[
    "api",
    "static",
    "assets",
    "_examples",
    "examples",
    "healthz",
    "readyz",
    "metrics",
    ".well-known",
    "well-known",
    "login",
    "logout",
    "signup",
    "store",
    "agents",
    "dashboard",
    "billing",
    "team",
    "settings",
    "notifications",
    "usage",
    "installations",
    "publisher",
    "invitations",
    "org",
    "orgs",
    "wallets",
    "payments",
    "checkout",
    "webhooks",
    "external",
    "hosted",
    "admin",
    "docs",
    "favicon.ico",
    "robots.txt",
    "ui",
    "app",
    "auth",
    "oauth",
    "mcp",
    "a2a",
    "latest",
    "www",
    "tollgate",
];

/// A lowercased email address of a plausible shape.
pub fn email(field: &str, raw: &str) -> Result<String, Invalid> {
    let email = raw.trim().to_ascii_lowercase();
    let bad = || Invalid::new(field, "must be an email address such as ada@example.com");
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|b| b.is_ascii_graphic() && !b"@<>()[]\\,;:\"".contains(&b));
    if !domain_ok || !local_ok || email.len() > 254 {
        return Err(bad());
    }
    Ok(email)
}

/// A password strong enough to keep: 10–128 characters, not all one character class.
pub fn password(field: &str, raw: &str) -> Result<(), Invalid> {
    let len = raw.chars().count();
    if len < 10 {
        return Err(Invalid::new(field, "must be at least 10 characters long"));
    }
    if len > 128 {
        return Err(Invalid::new(field, "must be at most 128 characters long"));
    }
    let classes = [
        raw.chars().any(|c| c.is_lowercase()),
        raw.chars().any(|c| c.is_uppercase()),
        raw.chars().any(|c| c.is_ascii_digit()),
        raw.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|&&c| c).count() < 2 {
        return Err(Invalid::new(field, "must mix at least two of: lowercase, uppercase, digits, symbols"));
    }
    let lower = raw.to_lowercase();
    if ["password", "1234567890", "qwertyuiop"].iter().any(|weak| lower.contains(weak)) {
        return Err(Invalid::new(field, "is too easy to guess"));
    }
    Ok(())
}

/// A non-empty, trimmed text of at most `max` characters.
pub fn text(field: &str, raw: &str, max: usize) -> Result<String, Invalid> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if text.chars().count() > max {
        return Err(Invalid::new(field, format!("must be at most {max} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(text.to_string())
}

/// An agent slug: 2–64 of `a-z0-9-`, starting with a letter, no leading/trailing or
/// doubled hyphen, and never one of the service's own paths.
pub fn slug(field: &str, raw: &str) -> Result<String, Invalid> {
    let ok_chars = raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if raw.len() < 2 || raw.len() > 64 || !ok_chars {
        return Err(Invalid::new(field, "must be 2–64 characters of lowercase letters, digits and hyphens"));
    }
    if !raw.as_bytes()[0].is_ascii_lowercase() || raw.ends_with('-') || raw.contains("--") {
        return Err(Invalid::new(field, "must start with a letter and not end with or double a hyphen"));
    }
    if RESERVED_SLUGS.contains(&raw) {
        return Err(Invalid::new(field, format!("\"{raw}\" is reserved by the service")));
    }
    Ok(raw.to_string())
}

/// A semantic version `MAJOR.MINOR.PATCH[-pre][+build]` (semver 2.0.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: String,
    pub build: String,
}

impl SemVer {
    /// Parses a semantic version string.
    pub fn parse(field: &str, raw: &str) -> Result<SemVer, Invalid> {
        let bad = || Invalid::new(field, "must be a semantic version such as 1.2.0");
        let (rest, build) = raw.split_once('+').unwrap_or((raw, ""));
        let (core, pre) = rest.split_once('-').unwrap_or((rest, ""));
        let ident_ok = |s: &str, numeric_no_zero: bool| {
            s.split('.').all(|id| {
                !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !(numeric_no_zero
                        && id.len() > 1
                        && id.starts_with('0')
                        && id.bytes().all(|b| b.is_ascii_digit()))
            })
        };
        if (rest.contains('-') && pre.is_empty()) || (raw.contains('+') && build.is_empty()) {
            return Err(bad());
        }
        if (!pre.is_empty() && !ident_ok(pre, true)) || (!build.is_empty() && !ident_ok(build, false)) {
            return Err(bad());
        }
        let nums: Vec<&str> = core.split('.').collect();
        if nums.len() != 3 || raw.len() > 64 {
            return Err(bad());
        }
        let num = |s: &str| -> Result<u64, Invalid> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        Ok(SemVer {
            major: num(nums[0])?,
            minor: num(nums[1])?,
            patch: num(nums[2])?,
            pre: pre.into(),
            build: build.into(),
        })
    }

    /// A key that orders versions by semver 2.0.0 precedence: `MAJOR.MINOR.PATCH`
    /// numerically, then a pre-release before its release; pre-releases compare identifier
    /// by identifier (numeric ones numerically and below alphanumeric ones, which compare
    /// in ASCII order), and a shorter list of equal identifiers comes first. Build
    /// metadata is ignored. `1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta.2 < 1.0.0-beta.11 <
    /// 1.0.0-rc.1 < 1.0.0`.
    pub fn sort_key(&self) -> Precedence {
        let pre = if self.pre.is_empty() {
            Vec::new()
        } else {
            self.pre
                .split('.')
                .map(|id| {
                    if id.bytes().all(|b| b.is_ascii_digit()) {
                        // No leading zeros (checked by `parse`), so length then digits is
                        // numeric order, for numbers of any size.
                        Identifier::Numeric(id.len(), id.to_string())
                    } else {
                        Identifier::Alphanumeric(id.to_string())
                    }
                })
                .collect()
        };
        Precedence { core: (self.major, self.minor, self.patch), release: self.pre.is_empty(), pre }
    }
}

/// The precedence of a [`SemVer`] (from [`SemVer::sort_key`]): compare two to order
/// versions. Versions that differ only in build metadata are equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Precedence {
    core: (u64, u64, u64),
    /// A release sorts after every pre-release of the same core version.
    release: bool,
    pre: Vec<Identifier>,
}

/// One dot-separated pre-release identifier. The variant order is the precedence order:
/// numeric identifiers come before alphanumeric ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Identifier {
    /// Digits only: (number of digits, digits).
    Numeric(usize, String),
    Alphanumeric(String),
}

/// An upstream base URL: `http` or `https`, with a host, no credentials, no fragment.
pub fn upstream_url(field: &str, raw: &str) -> Result<String, Invalid> {
    let bad = |why: &str| Invalid::new(field, why.to_string());
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or_else(|| bad("must be an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("must name a host and carry no user name or password"));
    }
    if raw.contains('#') || raw.chars().any(|c| c.is_whitespace() || c.is_control()) || raw.len() > 2048 {
        return Err(bad("must be a plain URL without spaces or a #fragment"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("email", " Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@x.io", "ada@localhost", "a b@x.io", "ada@x..io", "ada@-x.io."] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("p", "correct horse 42").is_ok());
        for bad in ["short1A", "alllowercaseletters", "Password123!", "1234567890123"] {
            assert!(password("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("slug", "web-search-2").unwrap(), "web-search-2");
        for bad in
            ["", "a", "Web", "web_search", "-web", "web-", "web--x", "2web", "api", "healthz", "_examples", "static"]
        {
            assert!(slug("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn semvers() {
        let v = SemVer::parse("v", "1.2.3-beta.1+build.5").unwrap();
        assert_eq!((v.major, v.minor, v.patch, v.pre.as_str(), v.build.as_str()), (1, 2, 3, "beta.1", "build.5"));
        for bad in ["1", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "v1.2.3", "1.2.3-", "1.2.3+", "1.2.3-01", ""] {
            assert!(SemVer::parse("v", bad).is_err(), "{bad}");
        }
    }

    fn key(v: &str) -> Precedence {
        SemVer::parse("v", v).unwrap().sort_key()
    }

    #[test]
    fn semver_precedence_follows_semver_2() {
        // The example of semver.org §11, plus numbers past one digit, in ascending order.
        let ascending = [
            "0.9.9",
            "1.0.0-0",
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-99999999999999999999999",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0-rc.2",
            "1.0.0-rc.10",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0-rc.1",
            "2.0.0",
            "10.0.0",
        ];
        for pair in ascending.windows(2) {
            assert!(key(pair[0]) < key(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        let mut shuffled: Vec<&str> = ascending.iter().rev().copied().collect();
        shuffled.swap(0, 7);
        shuffled.sort_by_key(|v| key(v));
        assert_eq!(shuffled, ascending);
        // Build metadata does not count; alphanumeric identifiers compare in ASCII order.
        assert_eq!(key("1.0.0+build.1"), key("1.0.0+build.2"));
        assert_eq!(key("1.0.0-rc.1+x"), key("1.0.0-rc.1"));
        assert!(key("1.0.0-Beta") < key("1.0.0-alpha"));
        assert!(key("1.0.0-rc-1") > key("1.0.0-rc"));
    }

    #[test]
    fn upstream_urls() {
        assert_eq!(upstream_url("u", "http://127.0.0.1:9000/mcp/").unwrap(), "http://127.0.0.1:9000/mcp");
        for bad in ["ftp://x", "http://", "https://u:p@x.io", "http://x.io/#frag", "http://x .io"] {
            assert!(upstream_url("u", bad).is_err(), "{bad}");
        }
    }
}
