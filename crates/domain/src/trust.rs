//! The governance declaration of an agent and the trust score computed from it.
//!
//! Trust score, 0–100 (documented in docs/API.md):
//! - governance completeness, 55 points: data collected declared 10 (a list of kinds, or
//!   `collects_no_data`), storage region 10,
//!   storage provider 5, retention declared 10, training use declared 5, at least one
//!   security measure 10, and 5 more when the agent does not train on user data;
//! - compliance, 30 points: GDPR 10, SOC 2 15, HIPAA 5;
//! - uptime, 15 points: 30-day measured uptime × 15, rounded down (0 until measured).

use crate::publish::labels;
use crate::{Invalid, validate};
use serde::{Deserialize, Serialize};

/// Compliance frameworks an agent may declare.
pub const COMPLIANCE: &[&str] = &["gdpr", "soc2", "hipaa"];

/// What the publisher declares about data handling.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Governance {
    /// Kinds of data the agent collects ("prompts", "file contents", …). Empty = not
    /// declared, unless `collects_no_data` says the agent keeps nothing.
    #[serde(default)]
    pub data_collected: Vec<String>,
    /// The publisher declares that the agent collects no data (with an empty list).
    #[serde(default)]
    pub collects_no_data: bool,
    /// Where data is stored, e.g. "eu-west-1".
    #[serde(default)]
    pub storage_region: Option<String>,
    /// Who stores it, e.g. "AWS".
    #[serde(default)]
    pub storage_provider: Option<String>,
    /// How long data is kept, in days (0 = not retained).
    #[serde(default)]
    pub retention_days: Option<i64>,
    /// Whether user data trains models. `None` = not declared.
    #[serde(default)]
    pub training_use: Option<bool>,
    /// Compliance frameworks: `gdpr`, `soc2`, `hipaa`.
    #[serde(default)]
    pub compliance: Vec<String>,
    /// Security measures ("encryption at rest", "SSO", …).
    #[serde(default)]
    pub security_measures: Vec<String>,
}

impl Governance {
    /// The declaration checked and normalized: texts trimmed and free of control
    /// characters, lists without blanks or repeats, a blank region or provider undeclared.
    pub fn checked(self) -> Result<Governance, Invalid> {
        if let Some(bad) = self.compliance.iter().find(|c| !COMPLIANCE.contains(&c.as_str())) {
            return Err(Invalid::new("governance.compliance", format!("\"{bad}\" is not one of gdpr, soc2, hipaa")));
        }
        if self.retention_days.is_some_and(|d| !(0..=36_500).contains(&d)) {
            return Err(Invalid::new("governance.retention_days", "must be between 0 and 36500"));
        }
        if self.collects_no_data && !self.data_collected.is_empty() {
            return Err(Invalid::new(
                "governance.collects_no_data",
                "cannot be true while data_collected lists kinds of data",
            ));
        }
        let optional = |field: &str, value: Option<String>| match value {
            Some(text) if !text.trim().is_empty() => validate::text(field, &text, 100).map(Some),
            _ => Ok(None),
        };
        Ok(Governance {
            data_collected: labels("governance.data_collected", &self.data_collected, 50, 200)?,
            collects_no_data: self.collects_no_data,
            storage_region: optional("governance.storage_region", self.storage_region)?,
            storage_provider: optional("governance.storage_provider", self.storage_provider)?,
            retention_days: self.retention_days,
            training_use: self.training_use,
            compliance: self.compliance,
            security_measures: labels("governance.security_measures", &self.security_measures, 50, 200)?,
        })
    }

    /// The trust score, 0–100. `uptime_permille` is the 30-day uptime in ‰, if measured.
    pub fn trust_score(&self, uptime_permille: Option<i64>) -> i64 {
        let has = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.trim().is_empty());
        let mut score = 0;
        score += if self.data_collected.is_empty() && !self.collects_no_data { 0 } else { 10 };
        score += if has(&self.storage_region) { 10 } else { 0 };
        score += if has(&self.storage_provider) { 5 } else { 0 };
        score += if self.retention_days.is_some() { 10 } else { 0 };
        score += match self.training_use {
            Some(false) => 10,
            Some(true) => 5,
            None => 0,
        };
        score += if self.security_measures.is_empty() { 0 } else { 10 };
        for (name, points) in [("gdpr", 10), ("soc2", 15), ("hipaa", 5)] {
            if self.compliance.iter().any(|c| c == name) {
                score += points;
            }
        }
        score += uptime_permille.map_or(0, |u| u.clamp(0, 1000) * 15 / 1000);
        score
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_declaration_scores_zero_and_complete_one_scores_full() {
        assert_eq!(Governance::default().trust_score(None), 0);
        let full = Governance {
            data_collected: vec!["prompts".into()],
            collects_no_data: false,
            storage_region: Some("eu-west-1".into()),
            storage_provider: Some("Hetzner".into()),
            retention_days: Some(30),
            training_use: Some(false),
            compliance: vec!["gdpr".into(), "soc2".into(), "hipaa".into()],
            security_measures: vec!["encryption at rest".into()],
        };
        assert_eq!(full.trust_score(None), 85);
        assert_eq!(full.trust_score(Some(1000)), 100);
        assert_eq!(full.trust_score(Some(999)), 99);
        assert_eq!(full.clone().checked(), Ok(full.clone()));
        let bad = Governance { compliance: vec!["iso9001".into()], ..Governance::default() };
        assert!(bad.checked().is_err());
        // Declaring that nothing is collected earns the same points as a list of kinds.
        let nothing = Governance { data_collected: vec![], collects_no_data: true, ..full.clone() };
        assert_eq!(nothing.trust_score(None), 85);
    }

    #[test]
    fn the_declaration_is_normalized_and_bad_text_refused() {
        let g = Governance {
            data_collected: vec![" prompts ".into(), "Prompts".into()],
            storage_region: Some("  eu-west-1 ".into()),
            storage_provider: Some("   ".into()),
            security_measures: vec!["TLS".into()],
            ..Governance::default()
        };
        let g = g.checked().unwrap();
        assert_eq!(g.data_collected, vec!["prompts".to_string()]);
        assert_eq!((g.storage_region.as_deref(), g.storage_provider), (Some("eu-west-1"), None));
        let field = |g: Governance| g.checked().unwrap_err().field;
        let long = Governance { storage_region: Some("x".repeat(101)), ..Governance::default() };
        assert_eq!(field(long), "governance.storage_region");
        let control = Governance { storage_provider: Some("AWS\u{7}".into()), ..Governance::default() };
        assert_eq!(field(control), "governance.storage_provider");
        let control = Governance { data_collected: vec!["a\u{1b}[2J".into()], ..Governance::default() };
        assert_eq!(field(control), "governance.data_collected[0]");
        let blank = Governance { security_measures: vec![" ".into()], ..Governance::default() };
        assert_eq!(field(blank), "governance.security_measures[0]");
        let both = Governance { data_collected: vec!["x".into()], collects_no_data: true, ..Governance::default() };
        assert_eq!(field(both), "governance.collects_no_data");
    }
}
