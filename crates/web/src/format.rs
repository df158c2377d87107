//! How values read on a page. Money is formatted from the API's USD decimal strings by
//! moving characters, never through a float; times from its RFC 3339 strings.

use serde_json::Value;
use tollgate_domain::Nanos;
use tollgate_domain::time::{parse_instant, rfc3339};

/// Digits grouped by thousands: `1234567` → `1,234,567`.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A USD decimal string as money: `"99.998200"` → `$99.9982`, `"100.000000"` → `$100.00`,
/// `"0.000000500"` → `$0.0000005`, `"1234.5"` → `$1,234.50`. Anything else is shown as sent.
pub fn money(usd: &str) -> String {
    let text = usd.trim();
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) {
        return text.to_string();
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let mut frac = frac.trim_end_matches('0').to_string();
    while frac.len() < 2 {
        frac.push('0');
    }
    format!("{sign}${}.{frac}", group(whole))
}

/// Nano-USD as money (for amounts a chart computes, such as its axis ticks).
pub fn money_nanos(n: i64) -> String {
    money(&Nanos(n).to_usd_string())
}

/// A USD decimal string as nano-USD (for chart coordinates); 0 when it does not parse.
pub fn nanos(usd: &str) -> i64 {
    let text = usd.trim();
    match text.strip_prefix('-') {
        Some(rest) => Nanos::parse_usd(rest).map(|n| -n.0).unwrap_or(0),
        None => Nanos::parse_usd(text).map(|n| n.0).unwrap_or(0),
    }
}

/// A whole number with thousands separators.
pub fn count(n: i64) -> String {
    let digits = group(&n.unsigned_abs().to_string());
    if n < 0 { format!("-{digits}") } else { digits }
}

/// An error rate of 0–1 as a percentage with up to two decimals: `0.0125` → `1.25%`.
pub fn percent(rate: f64) -> String {
    let basis = (rate * 10_000.0).round() as i64;
    let (whole, frac) = (basis / 100, basis % 100);
    match frac {
        0 => format!("{whole}%"),
        f if f % 10 == 0 => format!("{whole}.{}%", f / 10),
        f => format!("{whole}.{f:02}%"),
    }
}

/// Milliseconds for a person: `850 ms`, `1.2 s`; `—` when unknown.
pub fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms < 1000.0 => format!("{} ms", ms.round() as i64),
        Some(ms) => format!("{:.1} s", ms / 1000.0),
    }
}

/// An RFC 3339 time as `2026-03-02 14:05 UTC`; as sent when it does not parse.
pub fn time(raw: &str) -> String {
    match parse_instant(raw).map(rfc3339) {
        Some(utc) if utc.len() >= 16 => format!("{} {} UTC", &utc[..10], &utc[11..16]),
        _ => raw.to_string(),
    }
}

/// An RFC 3339 time's UTC date, `2026-03-02`.
pub fn date(raw: &str) -> String {
    match parse_instant(raw).map(rfc3339) {
        Some(utc) if utc.len() >= 10 => utc[..10].to_string(),
        _ => raw.to_string(),
    }
}

/// A time's label on a chart's axis: `14:00` for hourly buckets, `03-02` for days.
pub fn axis_time(raw: &str, hourly: bool) -> String {
    match parse_instant(raw).map(rfc3339) {
        Some(utc) if utc.len() >= 16 => {
            if hourly {
                utc[11..16].to_string()
            } else {
                utc[5..10].to_string()
            }
        }
        _ => raw.to_string(),
    }
}

/// A version's pricing document as a sentence: `$0.005 per call`, or
/// `$2.00 / 1M input · $4.00 / 1M output · $0.50 / 1M cache tokens`.
pub fn pricing(doc: &Value) -> String {
    let usd = |key: &str| money(doc[key].as_str().unwrap_or("0"));
    match doc["model"].as_str() {
        Some("per_request") => format!("{} per call", usd("price")),
        Some("per_token") => format!(
            "{} / 1M input · {} / 1M output · {} / 1M cache tokens",
            usd("input_per_million"),
            usd("output_per_million"),
            usd("cache_per_million")
        ),
        _ => "—".into(),
    }
}

/// An average rating with one decimal (`4.5`), or `No ratings yet`.
pub fn rating(average: Option<f64>) -> String {
    match average {
        Some(a) => format!("{a:.1}"),
        None => "No ratings yet".into(),
    }
}

/// Five stars, the first `round(average)` filled: `★★★★☆`.
pub fn stars(average: f64) -> String {
    let filled = average.round().clamp(0.0, 5.0) as usize;
    format!("{}{}", "★".repeat(filled), "☆".repeat(5 - filled))
}

/// Seconds as a duration: `5 minutes`, `1 hour`, `90 seconds`.
pub fn seconds(s: i64) -> String {
    let plural = |n: i64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    if s % 3600 == 0 && s >= 3600 {
        plural(s / 3600, "hour")
    } else if s % 60 == 0 && s >= 60 {
        plural(s / 60, "minute")
    } else {
        plural(s, "second")
    }
}

/// A limit, where 0 means none: `1,000` or `Unlimited`.
pub fn limit(n: i64) -> String {
    if n == 0 { "Unlimited".into() } else { count(n) }
}

/// Compliance codes as people write them.
pub fn compliance(code: &str) -> String {
    match code {
        "gdpr" => "GDPR".into(),
        "soc2" => "SOC 2".into(),
        "hipaa" => "HIPAA".into(),
        other => other.to_uppercase(),
    }
}

/// `mcp` → `MCP`, `a2a` → `A2A`.
pub fn protocol(p: &str) -> String {
    p.to_uppercase()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_moves_characters_only() {
        assert_eq!(money("99.998200"), "$99.9982");
        assert_eq!(money("100.000000"), "$100.00");
        assert_eq!(money("0.000000500"), "$0.0000005");
        assert_eq!(money("1234567.5"), "$1,234,567.50");
        assert_eq!(money("0"), "$0.00");
        assert_eq!(money("-12.340000"), "-$12.34");
        assert_eq!(money("007.10"), "$7.10");
        assert_eq!(money("n/a"), "n/a");
        assert_eq!(money_nanos(1_500_000_000), "$1.50");
        assert_eq!(nanos("0.000000001"), 1);
        assert_eq!(nanos("-1"), -1_000_000_000);
        assert_eq!(nanos("junk"), 0);
    }

    #[test]
    fn numbers_times_and_prices() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(-1234567), "-1,234,567");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0125), "1.25%");
        assert_eq!(percent(0.5), "50%");
        assert_eq!(percent(0.123), "12.3%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(millis(None), "—");
        assert_eq!(millis(Some(849.6)), "850 ms");
        assert_eq!(millis(Some(1234.0)), "1.2 s");
        assert_eq!(time("2026-03-02T14:05:06.123Z"), "2026-03-02 14:05 UTC");
        assert_eq!(time("2026-03-02T15:05:06+01:00"), "2026-03-02 14:05 UTC");
        assert_eq!(date("2026-03-02T14:05:06Z"), "2026-03-02");
        assert_eq!(axis_time("2026-03-02T14:00:00Z", true), "14:00");
        assert_eq!(axis_time("2026-03-02T00:00:00Z", false), "03-02");
        assert_eq!(time("soon"), "soon");
        assert_eq!(pricing(&json!({"model": "per_request", "price": "0.005"})), "$0.005 per call");
        assert_eq!(
            pricing(
                &json!({"model": "per_token", "input_per_million": "2", "output_per_million": "4.00", "cache_per_million": "0.5"})
            ),
            "$2.00 / 1M input · $4.00 / 1M output · $0.50 / 1M cache tokens"
        );
        assert_eq!(rating(Some(4.25)), "4.2");
        assert_eq!(rating(None), "No ratings yet");
        assert_eq!(stars(3.6), "★★★★☆");
        assert_eq!(seconds(300), "5 minutes");
        assert_eq!(seconds(3600), "1 hour");
        assert_eq!(seconds(90), "90 seconds");
        assert_eq!(limit(0), "Unlimited");
        assert_eq!(compliance("soc2"), "SOC 2");
    }
}
