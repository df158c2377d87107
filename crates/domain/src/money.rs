//! Exact money: integer nano-USD (10⁻⁹ USD) in an `i64`, never a float.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Nano-USD per USD.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// An amount of money in integer nano-USD. Arithmetic is checked: an overflow is an
/// error, never a wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nanos(pub i64);

/// Why a decimal USD string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal number of US dollars such as \"2.50\"")]
    NotANumber,
    #[error("must not be negative")]
    Negative,
    #[error("has more than 9 decimal places (the smallest unit is 0.000000001 USD)")]
    TooPrecise,
    #[error("is too large")]
    TooLarge,
}

impl Nanos {
    /// Zero dollars.
    pub const ZERO: Nanos = Nanos(0);

    /// Whole US dollars.
    pub fn from_usd(usd: i64) -> Option<Nanos> {
        usd.checked_mul(NANOS_PER_USD).map(Nanos)
    }

    /// Parses a non-negative decimal USD string (`"2"`, `"0.005"`, `"99.998200"`).
    pub fn parse_usd(text: &str) -> Result<Nanos, MoneyError> {
        let text = text.trim();
        if text.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && frac.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return Err(MoneyError::NotANumber);
        }
        if text.ends_with('.') {
            return Err(MoneyError::NotANumber);
        }
        if frac.len() > 9 {
            return Err(MoneyError::TooPrecise);
        }
        let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| MoneyError::TooLarge)? };
        let mut frac_nanos: i64 = 0;
        for (i, digit) in frac.bytes().enumerate() {
            frac_nanos += i64::from(digit - b'0') * 10i64.pow(8 - i as u32);
        }
        whole.checked_mul(NANOS_PER_USD).and_then(|n| n.checked_add(frac_nanos)).map(Nanos).ok_or(MoneyError::TooLarge)
    }

    /// Checked addition.
    pub fn checked_add(self, other: Nanos) -> Option<Nanos> {
        self.0.checked_add(other.0).map(Nanos)
    }

    /// Checked subtraction.
    pub fn checked_sub(self, other: Nanos) -> Option<Nanos> {
        self.0.checked_sub(other.0).map(Nanos)
    }

    /// The amount as a USD decimal string with six decimals, or nine when the
    /// amount has sub-micro-dollar precision: `"99.998200"`, `"0.000000500"`.
    pub fn to_usd_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / NANOS_PER_USD as u64;
        let frac = abs % NANOS_PER_USD as u64;
        if frac.is_multiple_of(1000) {
            format!("{sign}{whole}.{:06}", frac / 1000)
        } else {
            format!("{sign}{whole}.{frac:09}")
        }
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_usd_string())
    }
}

/// `value × numerator ÷ denominator` rounded half-up, in 128-bit arithmetic.
/// `None` when the result does not fit an `i64` or `denominator` is zero.
pub fn mul_div_round_half_up(value: i64, numerator: i64, denominator: i64) -> Option<i64> {
    if denominator == 0 {
        return None;
    }
    let product = i128::from(value) * i128::from(numerator);
    let den = i128::from(denominator);
    let (q, r) = (product / den, product % den);
    // Half-up: away from zero when the remainder is at least half the divisor.
    let rounded = if 2 * r.abs() >= den.abs() { if (product < 0) != (den < 0) { q - 1 } else { q + 1 } } else { q };
    i64::try_from(rounded).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_usd_exactly() {
        assert_eq!(Nanos::parse_usd("2.00"), Ok(Nanos(2_000_000_000)));
        assert_eq!(Nanos::parse_usd("0.005"), Ok(Nanos(5_000_000)));
        assert_eq!(Nanos::parse_usd(".5"), Ok(Nanos(500_000_000)));
        assert_eq!(Nanos::parse_usd("100"), Ok(Nanos(100_000_000_000)));
        assert_eq!(Nanos::parse_usd("0.000000001"), Ok(Nanos(1)));
        assert_eq!(Nanos(99_998_200_000).to_usd_string(), "99.998200");
        assert_eq!(Nanos(500).to_usd_string(), "0.000000500");
        assert_eq!(Nanos(-1_500_000_000).to_usd_string(), "-1.500000");
    }

    #[test]
    fn refuses_bad_usd() {
        assert_eq!(Nanos::parse_usd("-1"), Err(MoneyError::Negative));
        assert_eq!(Nanos::parse_usd("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Nanos::parse_usd(""), Err(MoneyError::NotANumber));
        assert_eq!(Nanos::parse_usd("1."), Err(MoneyError::NotANumber));
        assert_eq!(Nanos::parse_usd("1e5"), Err(MoneyError::NotANumber));
        assert_eq!(Nanos::parse_usd("0.0000000001"), Err(MoneyError::TooPrecise));
        assert_eq!(Nanos::parse_usd("99999999999999999999"), Err(MoneyError::TooLarge));
        assert_eq!(Nanos::parse_usd("9300000000"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn rounds_half_up() {
        assert_eq!(mul_div_round_half_up(1, 1, 2), Some(1));
        assert_eq!(mul_div_round_half_up(1, 1, 3), Some(0));
        assert_eq!(mul_div_round_half_up(2, 1, 3), Some(1));
        assert_eq!(mul_div_round_half_up(-1, 1, 2), Some(-1));
        assert_eq!(mul_div_round_half_up(i64::MAX, 2, 1), None);
        assert_eq!(mul_div_round_half_up(1, 1, 0), None);
    }
}
