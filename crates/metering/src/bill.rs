//! The billing decision of one call: which token counts are billed, whether they are
//! flagged for review, and the exact cost.

use tollgate_domain::Nanos;
use tollgate_domain::pricing::{Pricing, Tokens};

/// What one call is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bill {
    /// The token counts billed (and recorded as billed).
    pub tokens_billed: Tokens,
    /// The charge, in nano-USD.
    pub cost: Nanos,
    /// The agent's report and the platform's count differ by more than 20% on input or on
    /// output (or the report was absurd): flag the call for review.
    pub divergent: bool,
    /// The call used one of the org's free calls.
    pub free_tier_used: bool,
}

/// Whether a reported and a counted count differ by more than 20% of the larger:
/// `|r − c| × 100 > 20 × max(r, c)`. Exactly 20% is not divergent; 0 and 0 agree.
pub fn diverges(reported: i64, counted: i64) -> bool {
    let (r, c) = (i128::from(reported.max(0)), i128::from(counted.max(0)));
    (r - c).abs() * 100 > 20 * r.max(c)
}

/// Decides a call's bill.
///
/// - Tokens: with no report (`reported` is `None`) the platform's `counted` tokens are
///   billed. With a report, each of input and output is billed as reported unless it
///   [`diverges`] from the count — then the **lower** of the two is billed and the call is
///   flagged. Cache tokens are billed as reported (only the agent can count them). The
///   flag is a fact about the report and is set whatever the call costs.
/// - Cost: a failed call costs nothing and uses no free call, not even the base fee. A
///   utility method costs `base_fee`. A successful call with a free call available costs
///   nothing and uses it. Otherwise `pricing` prices the billed tokens exactly, rounded
///   once (a per-request price ignores tokens).
/// - A report so large the cost overflows is absurd: its cache tokens are dropped and the
///   call is flagged.
pub fn bill(
    reported: Option<Tokens>,
    counted: Tokens,
    pricing: &Pricing,
    base_fee: Nanos,
    utility: bool,
    free_call_available: bool,
    success: bool,
) -> Bill {
    let counted = Tokens { input: counted.input.max(0), output: counted.output.max(0), cache: counted.cache.max(0) };
    let (mut tokens_billed, mut divergent) = match reported {
        None => (counted, false),
        Some(r) => {
            let pick = |r: i64, c: i64| if diverges(r, c) { (r.max(0).min(c), true) } else { (r.max(0), false) };
            let (input, input_diverges) = pick(r.input, counted.input);
            let (output, output_diverges) = pick(r.output, counted.output);
            (Tokens { input, output, cache: r.cache.max(0) }, input_diverges || output_diverges)
        }
    };
    let decided = |cost: Nanos, free_tier_used: bool| Bill { tokens_billed, cost, divergent, free_tier_used };
    if !success {
        return decided(Nanos::ZERO, false);
    }
    if utility {
        return decided(base_fee, false);
    }
    if free_call_available {
        return decided(Nanos::ZERO, true);
    }
    let cost = match pricing.cost(tokens_billed) {
        Some(cost) => cost,
        None => {
            tokens_billed.cache = 0;
            divergent = true;
            pricing.cost(tokens_billed).unwrap_or(Nanos::ZERO)
        }
    };
    Bill { tokens_billed, cost, divergent, free_tier_used: false }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn t(input: i64, output: i64, cache: i64) -> Tokens {
        Tokens { input, output, cache }
    }

    /// $2 per 1M input, $4 per 1M output, $0.50 per 1M cache tokens.
    fn per_token() -> Pricing {
        Pricing::PerToken {
            input_per_million: Nanos(2_000_000_000),
            output_per_million: Nanos(4_000_000_000),
            cache_per_million: Nanos(500_000_000),
        }
    }

    const BASE_FEE: Nanos = Nanos(100_000);

    #[test]
    fn divergence_boundary_is_exactly_twenty_percent() {
        let cases = [
            (0, 0, false),
            (100, 80, false), // |20| × 100 = 2000 = 20 × 100: not more than 20%
            (80, 100, false),
            (100, 79, true), // 2100 > 2000
            (79, 100, true),
            (1000, 800, false),
            (1000, 799, true),
            (5, 4, false), // exactly 20% of 5
            (0, 1, true),
            (1, 0, true),
            (10, 10, false),
            (i64::MAX, i64::MAX, false),
            (i64::MAX, 0, true),
            (-5, 0, false),
        ];
        for (r, c, expected) in cases {
            assert_eq!(diverges(r, c), expected, "reported {r}, counted {c}");
        }
    }

    #[test]
    fn bills_exact_costs() {
        let cases = [
            // reported, counted, utility, free available, success → billed, cost, divergent, free used
            (Some(t(1000, 500, 100)), t(1000, 500, 0), false, false, true, t(1000, 500, 100), 4_050_000, false, false),
            // No report: the platform count is billed.
            (None, t(1000, 500, 0), false, false, true, t(1000, 500, 0), 4_000_000, false, false),
            // Within 20%: the agent's report is billed.
            (Some(t(900, 450, 0)), t(1000, 500, 0), false, false, true, t(900, 450, 0), 3_600_000, false, false),
            // Exactly 20% under: still the report.
            (Some(t(800, 500, 0)), t(1000, 500, 0), false, false, true, t(800, 500, 0), 3_600_000, false, false),
            // Over-reported input by more than 20%: flagged, the lower (counted) input billed.
            (Some(t(2000, 500, 0)), t(1000, 500, 0), false, false, true, t(1000, 500, 0), 4_000_000, true, false),
            // Under-reported output: flagged, the lower (reported) output billed.
            (Some(t(1000, 10, 0)), t(1000, 500, 0), false, false, true, t(1000, 10, 0), 2_040_000, true, false),
            // Both diverge; cache tokens are always as reported.
            (Some(t(1, 9_999, 7)), t(50, 30, 0), false, false, true, t(1, 30, 7), 125_500, true, false),
            // 1 input token at $2/M = 2,000 nano-USD; 1 cache token at $0.50/M = 500.
            (Some(t(1, 0, 1)), t(1, 0, 0), false, false, true, t(1, 0, 1), 2_500, false, false),
            // Failed: nothing, not even the base fee, and no free call.
            (Some(t(1000, 500, 0)), t(1000, 500, 0), false, true, false, t(1000, 500, 0), 0, false, false),
            (None, t(10, 10, 0), true, true, false, t(10, 10, 0), 0, false, false),
            // Utility: the base fee, never a free call.
            (None, t(10, 10, 0), true, true, true, t(10, 10, 0), 100_000, false, false),
            // A free call: nothing, and it is used.
            (None, t(1000, 500, 0), false, true, true, t(1000, 500, 0), 0, false, true),
            // Divergence is flagged even when the call costs nothing.
            (Some(t(0, 0, 0)), t(1000, 500, 0), false, true, true, t(0, 0, 0), 0, true, true),
        ];
        for (reported, counted, utility, free, success, billed, cost, divergent, used) in cases {
            let got = bill(reported, counted, &per_token(), BASE_FEE, utility, free, success);
            let want = Bill { tokens_billed: billed, cost: Nanos(cost), divergent, free_tier_used: used };
            assert_eq!(
                got, want,
                "reported {reported:?}, counted {counted:?}, utility {utility}, free {free}, ok {success}"
            );
        }
    }

    #[test]
    fn rounds_the_cost_once_half_up() {
        let thirds = Pricing::PerToken {
            input_per_million: Nanos(333_334),
            output_per_million: Nanos(333_333),
            cache_per_million: Nanos(333_333),
        };
        let cases = [(t(1, 1, 1), 1), (t(1, 0, 0), 0), (t(2, 0, 0), 1), (t(1_000_000, 0, 0), 333_334), (t(3, 3, 3), 3)];
        for (tokens, cost) in cases {
            assert_eq!(
                bill(Some(tokens), tokens, &thirds, BASE_FEE, false, false, true).cost,
                Nanos(cost),
                "{tokens:?}"
            );
        }
    }

    #[test]
    fn per_request_pricing_ignores_tokens() {
        let price = Pricing::PerRequest { price: Nanos(5_000_000) };
        for (reported, counted) in
            [(None, t(0, 0, 0)), (Some(t(1, 1, 1)), t(1_000_000, 9, 0)), (None, t(i64::MAX, 0, 0))]
        {
            let got = bill(reported, counted, &price, BASE_FEE, false, false, true);
            assert_eq!(got.cost, Nanos(5_000_000));
            assert!(!got.free_tier_used);
        }
        let free = bill(None, t(5, 5, 0), &price, BASE_FEE, false, true, true);
        assert_eq!((free.cost, free.free_tier_used), (Nanos::ZERO, true));
        assert_eq!(bill(None, t(5, 5, 0), &price, BASE_FEE, false, false, false).cost, Nanos::ZERO);
    }

    #[test]
    fn absurd_reports_never_overflow() {
        let got = bill(Some(t(10, 10, i64::MAX)), t(10, 10, 0), &per_token(), BASE_FEE, false, false, true);
        assert_eq!(got.tokens_billed, t(10, 10, 0));
        assert_eq!(got.cost, Nanos(60_000));
        assert!(got.divergent);
        // Counted tokens are bounded by the body in practice; past i64 nano-USD the cost is 0, not a panic.
        let huge = bill(None, t(i64::MAX, i64::MAX, 0), &per_token(), BASE_FEE, false, false, true);
        assert_eq!(huge.cost, Nanos::ZERO);
        let negative = bill(Some(t(-5, -5, -5)), t(-1, -1, -1), &per_token(), BASE_FEE, false, false, true);
        assert_eq!(negative.tokens_billed, t(0, 0, 0));
        assert_eq!(negative.cost, Nanos::ZERO);
    }
}
