//! Per-function pricing and the exact cost of one call.

use crate::Invalid;
use crate::money::{Nanos, mul_div_round_half_up};
use serde::{Deserialize, Serialize};

/// How a function is priced. Prices per 1M tokens are nano-USD per 1M tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Pricing {
    /// Pay per token, with separate prices per million input, output and cache tokens.
    PerToken { input_per_million: Nanos, output_per_million: Nanos, cache_per_million: Nanos },
    /// A fixed price per call.
    PerRequest { price: Nanos },
}

/// When a function's free calls come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FreeReset {
    /// N free calls per org, ever.
    #[default]
    Lifetime,
    /// N free calls per org per calendar month (UTC).
    Monthly,
}

/// One priced function of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionPrice {
    /// The tool / prompt / resource / skill name.
    pub name: String,
    /// Its pricing.
    pub pricing: Pricing,
    /// Free successful calls per org.
    pub free_calls: i64,
    /// When free calls reset.
    pub free_reset: FreeReset,
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tokens {
    pub input: i64,
    pub output: i64,
    pub cache: i64,
}

impl Pricing {
    /// The exact cost of one call with `tokens`, rounded half-up to the nano-USD once.
    pub fn cost(&self, tokens: Tokens) -> Option<Nanos> {
        match self {
            Pricing::PerRequest { price } => Some(*price),
            Pricing::PerToken { input_per_million, output_per_million, cache_per_million } => {
                // Sum the exact numerators first so the call is rounded once, not per part.
                let numerator = i128::from(tokens.input) * i128::from(input_per_million.0)
                    + i128::from(tokens.output) * i128::from(output_per_million.0)
                    + i128::from(tokens.cache) * i128::from(cache_per_million.0);
                let whole = i64::try_from(numerator / 1_000_000).ok()?;
                let rest = i64::try_from(numerator % 1_000_000).ok()?;
                Some(Nanos(whole.checked_add(mul_div_round_half_up(rest, 1, 1_000_000)?)?))
            }
        }
    }

    /// Parses the API form: `{model:"per_token", input_per_million:"2.00", …}` or
    /// `{model:"per_request", price:"0.005"}`, with USD decimal strings.
    pub fn parse(field: &str, value: &serde_json::Value) -> Result<Pricing, Invalid> {
        let obj = value.as_object().ok_or_else(|| Invalid::new(field, "must be an object with a \"model\""))?;
        let model = obj.get("model").and_then(|m| m.as_str()).unwrap_or_default();
        let usd = |key: &str, required: bool| -> Result<Nanos, Invalid> {
            let name = format!("{field}.{key}");
            match obj.get(key) {
                None | Some(serde_json::Value::Null) if !required => Ok(Nanos::ZERO),
                None | Some(serde_json::Value::Null) => Err(Invalid::new(name, "is required")),
                Some(serde_json::Value::String(s)) => {
                    Nanos::parse_usd(s).map_err(|e| Invalid::new(name, e.to_string()))
                }
                Some(_) => Err(Invalid::new(name, "must be a decimal string of US dollars such as \"2.00\"")),
            }
        };
        let allowed: &[&str] = match model {
            "per_token" => &["model", "input_per_million", "output_per_million", "cache_per_million"],
            "per_request" => &["model", "price"],
            _ => return Err(Invalid::new(format!("{field}.model"), "must be \"per_token\" or \"per_request\"")),
        };
        if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Invalid::new(format!("{field}.{unknown}"), "is not a field of this pricing model"));
        }
        Ok(match model {
            "per_token" => Pricing::PerToken {
                input_per_million: usd("input_per_million", true)?,
                output_per_million: usd("output_per_million", true)?,
                cache_per_million: usd("cache_per_million", false)?,
            },
            _ => Pricing::PerRequest { price: usd("price", true)? },
        })
    }

    /// The API form, with USD decimal strings.
    pub fn to_api(&self) -> serde_json::Value {
        match self {
            Pricing::PerToken { input_per_million, output_per_million, cache_per_million } => serde_json::json!({
                "model": "per_token",
                "input_per_million": input_per_million.to_usd_string(),
                "output_per_million": output_per_million.to_usd_string(),
                "cache_per_million": cache_per_million.to_usd_string(),
            }),
            Pricing::PerRequest { price } => {
                serde_json::json!({"model": "per_request", "price": price.to_usd_string()})
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn per_token(i: &str, o: &str, c: &str) -> Pricing {
        Pricing::parse(
            "pricing",
            &serde_json::json!({"model":"per_token","input_per_million":i,"output_per_million":o,"cache_per_million":c}),
        )
        .unwrap()
    }

    #[test]
    fn per_token_cost_is_exact_and_rounded_once() {
        let p = per_token("2.00", "4.00", "0.50");
        // 1,000 in × $2/M = $0.002; 500 out × $4/M = $0.002; 100 cache × $0.5/M = $0.00005
        let cost = p.cost(Tokens { input: 1000, output: 500, cache: 100 }).unwrap();
        assert_eq!(cost, Nanos(4_050_000));
        // 1 token at $0.0000015/M = 0.0015 nano-USD → rounds to 0; 1 token at $0.0000005/M
        // is exactly half a nano → rounds up.
        assert_eq!(per_token("0.0000015", "0", "0").cost(Tokens { input: 1, ..Tokens::default() }), Some(Nanos(0)));
        assert_eq!(per_token("0.0005", "0", "0").cost(Tokens { input: 1, ..Tokens::default() }), Some(Nanos(1)));
        // Three parts of 1/3 nano each round once to 1, not three times to 0.
        let third = per_token("0.000333334", "0.000333333", "0.000333333");
        assert_eq!(third.cost(Tokens { input: 1, output: 1, cache: 1 }), Some(Nanos(1)));
    }

    #[test]
    fn parse_refuses_bad_prices() {
        for bad in [
            serde_json::json!({"model":"per_token","input_per_million":"-1","output_per_million":"1"}),
            serde_json::json!({"model":"per_token","input_per_million":"abc","output_per_million":"1"}),
            serde_json::json!({"model":"per_token","input_per_million":2.0,"output_per_million":"1"}),
            serde_json::json!({"model":"per_token","output_per_million":"1"}),
            serde_json::json!({"model":"per_request"}),
            serde_json::json!({"model":"per_request","price":"1","extra":"x"}),
            serde_json::json!({"model":"per_minute","price":"1"}),
            serde_json::json!("1.00"),
        ] {
            assert!(Pricing::parse("pricing", &bad).is_err(), "{bad} should be refused");
        }
        let ok = Pricing::parse("p", &serde_json::json!({"model":"per_request","price":"0.005"})).unwrap();
        assert_eq!(ok, Pricing::PerRequest { price: Nanos(5_000_000) });
        assert_eq!(ok.to_api()["price"], "0.005000");
    }
}
