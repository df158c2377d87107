//! The usage endpoints' query strings, checked into the store's filters. Every check
//! happens here, before anything is read.

use crate::error::{ApiError, ApiResult};
use serde::Deserialize;
use tollgate_domain::time::parse_instant;
use tollgate_store::usage::{AuditFilter, Bucket, StatusFilter, UsageScope};

const DAY_MS: i64 = 86_400_000;
/// The range when none is given: the last 30 days.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest range one request covers.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The longest range hourly buckets cover (744 buckets).
pub const MAX_HOURLY_DAYS: i64 = 31;
/// Audit rows per page unless `per_page` says otherwise, and the most it may say.
pub const DEFAULT_PER_PAGE: i64 = 25;
pub const MAX_PER_PAGE: i64 = 100;
/// The longest search, function, key or member filter.
const MAX_FILTER_CHARS: usize = 200;

/// `GET /usage`.
#[derive(Deserialize, Default)]
pub(crate) struct UsageQuery {
    pub installation: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
}

/// `GET /usage/audit` and `/usage/audit.csv` (which ignores the paging).
#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    pub installation: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    status: Option<String>,
    key: Option<String>,
    member: Option<String>,
    function: Option<String>,
    free_tier: Option<String>,
    divergent: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

/// A query parameter that is present and not blank.
pub(crate) fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A time range `[from, to)` in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub from: i64,
    pub to: i64,
}

/// One end of a range: an RFC 3339 time or a `YYYY-MM-DD` date (UTC). A date alone as
/// `to` means the end of that day, so `from=2026-11-01&to=2026-11-30` is all of November.
fn instant(field: &str, raw: &str, end_of_day: bool) -> ApiResult<i64> {
    let ms = parse_instant(raw).filter(|ms| *ms >= 0).ok_or_else(|| {
        ApiError::invalid(
            field,
            "must be an RFC 3339 time such as 2026-11-23T19:04:45Z or a UTC date such as 2026-11-23, from 1970 on",
        )
    })?;
    let date_only = raw.len() == 10;
    Ok(if end_of_day && date_only { ms + DAY_MS } else { ms })
}

/// The checked range: `to` defaults to `now`, `from` to 30 days before `to`.
pub(crate) fn range(from: Option<&str>, to: Option<&str>, now: i64) -> ApiResult<Range> {
    let to = match to {
        Some(raw) => instant("to", raw, true)?,
        None => now,
    };
    let from = match from {
        Some(raw) => instant("from", raw, false)?,
        None => (to - DEFAULT_DAYS * DAY_MS).max(0),
    };
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    if to - from > MAX_RANGE_DAYS * DAY_MS {
        return Err(ApiError::invalid("to", format!("a range covers at most {MAX_RANGE_DAYS} days")));
    }
    Ok(Range { from, to })
}

impl UsageQuery {
    /// The checked range and bucket width.
    pub fn range_and_bucket(&self, now: i64) -> ApiResult<(Range, Bucket)> {
        range_and_bucket(given(&self.from), given(&self.to), given(&self.bucket), now)
    }
}

/// The checked range (as [`range`]) and bucket width: `bucket` as asked, else hours up to
/// two days and days beyond; hours cover at most 31 days.
pub(crate) fn range_and_bucket(
    from: Option<&str>,
    to: Option<&str>,
    bucket: Option<&str>,
    now: i64,
) -> ApiResult<(Range, Bucket)> {
    let range = range(from, to, now)?;
    let bucket = match bucket {
        None => Bucket::for_range(range.from, range.to),
        Some(raw) => Bucket::parse(raw).ok_or_else(|| ApiError::invalid("bucket", "must be \"hour\" or \"day\""))?,
    };
    if bucket == Bucket::Hour && range.to - range.from > MAX_HOURLY_DAYS * DAY_MS {
        return Err(ApiError::invalid(
            "bucket",
            format!("hourly buckets cover at most {MAX_HOURLY_DAYS} days; ask for \"day\" or a shorter range"),
        ));
    }
    Ok((range, bucket))
}

fn filter_text(field: &str, value: &Option<String>) -> ApiResult<Option<String>> {
    match given(value) {
        Some(v) if v.chars().count() > MAX_FILTER_CHARS => {
            Err(ApiError::invalid(field, format!("must be at most {MAX_FILTER_CHARS} characters")))
        }
        other => Ok(other.map(str::to_string)),
    }
}

fn yes_no(field: &str, value: &Option<String>) -> ApiResult<Option<bool>> {
    match given(value) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid(field, "must be true or false")),
    }
}

fn number(field: &str, value: &Option<String>, default: i64, max: i64) -> ApiResult<i64> {
    match given(value) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid(field, format!("must be a whole number from 1 to {max}"))),
    }
}

impl AuditQuery {
    /// The checked filter of the caller's org `org_id`, and its range. `search_keys_of`:
    /// the user whose keys the search may match by name (`None`: anyone's).
    pub fn filter(&self, org_id: &str, search_keys_of: Option<String>, now: i64) -> ApiResult<(AuditFilter, Range)> {
        let range = range(given(&self.from), given(&self.to), now)?;
        let status = match given(&self.status) {
            None => StatusFilter::Any,
            Some("success") => StatusFilter::Success,
            Some("error") => StatusFilter::Error,
            Some(raw) => match raw.parse::<i64>() {
                Ok(code) if (100..=599).contains(&code) => StatusFilter::Code(code),
                _ => {
                    return Err(ApiError::invalid(
                        "status",
                        "must be \"success\", \"error\" or an HTTP status from 100 to 599",
                    ));
                }
            },
        };
        let filter = AuditFilter {
            scope: UsageScope {
                org_id: org_id.to_string(),
                installation_id: given(&self.installation).map(str::to_string),
                from: range.from,
                to: range.to,
            },
            key_id: filter_text("key", &self.key)?,
            user_id: filter_text("member", &self.member)?,
            function: filter_text("function", &self.function)?,
            status,
            free_tier: yes_no("free_tier", &self.free_tier)?,
            divergent: yes_no("divergent", &self.divergent)?,
            search: filter_text("q", &self.q)?,
            search_keys_of,
        };
        Ok((filter, range))
    }

    /// The page (from 1) and rows per page.
    pub fn page(&self) -> ApiResult<(i64, i64)> {
        Ok((
            number("page", &self.page, 1, 100_000)?,
            number("per_page", &self.per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let day = |d: &str| parse_instant(d).unwrap();
        let now = day("2026-12-01T12:00:00Z");
        assert_eq!(range(None, None, now).unwrap(), Range { from: now - 30 * DAY_MS, to: now });
        let november = range(Some("2026-11-01"), Some("2026-11-30"), now).unwrap();
        assert_eq!(november, Range { from: day("2026-11-01"), to: day("2026-12-01") });
        let exact = range(Some("2026-11-01T10:00:00Z"), Some("2026-11-01T12:00:00+01:00"), now).unwrap();
        assert_eq!(exact, Range { from: day("2026-11-01T10:00:00Z"), to: day("2026-11-01T11:00:00Z") });
        let empty = range(Some("2026-11-01T10:00:00Z"), Some("2026-11-01T11:00:00+01:00"), now).unwrap_err();
        assert_eq!(empty.to_string(), "from: must be before `to`");
        assert!(range(Some("2025-01-01"), Some("2026-01-03"), now).is_err());
        assert!(range(Some("2025-01-01"), Some("2026-01-01"), now).is_ok());
        for bad in ["yesterday", "2026-13-01", "2026-11-01 10:00", "1969-12-31"] {
            assert!(range(Some(bad), None, now).is_err(), "{bad}");
        }
    }
}
