//! Time as integer Unix milliseconds, with RFC 3339 at the edges.

use time::{Date, Month, OffsetDateTime, Time, format_description::well_known::Rfc3339};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds as an RFC 3339 UTC timestamp (`2026-11-23T19:04:45.123Z`).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp or a `YYYY-MM-DD` date (midnight UTC) into Unix ms.
pub fn parse_instant(raw: &str) -> Option<i64> {
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(raw, &fmt).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// The next midnight UTC after `ms`.
pub fn next_utc_midnight(ms: i64) -> i64 {
    let day = 86_400_000;
    (ms.div_euclid(day) + 1) * day
}

/// 00:00 UTC on the first day of the month after the one holding `ms`.
pub fn next_utc_month(ms: i64) -> i64 {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (year, month) = match t.month() {
        Month::December => (t.year() + 1, Month::January),
        m => (t.year(), m.next()),
    };
    Date::from_calendar_date(year, month, 1)
        .map(|d| d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp() * 1000)
        .unwrap_or(ms)
}

/// 00:00 UTC on the first day of the month holding `ms`.
pub fn utc_month_start(ms: i64) -> i64 {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Date::from_calendar_date(t.year(), t.month(), 1)
        .map(|d| d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp() * 1000)
        .unwrap_or(ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn calendar_edges() {
        let t = parse_instant("2026-12-31T23:59:59Z").unwrap();
        assert_eq!(rfc3339(next_utc_midnight(t)), "2027-01-01T00:00:00Z");
        assert_eq!(rfc3339(next_utc_month(t)), "2027-01-01T00:00:00Z");
        assert_eq!(rfc3339(utc_month_start(t)), "2026-12-01T00:00:00Z");
        assert_eq!(parse_instant("2026-02-03"), parse_instant("2026-02-03T00:00:00Z"));
        assert_eq!(parse_instant("yesterday"), None);
    }
}
