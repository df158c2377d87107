//! The governance declaration of an agent and the trust score computed from it.
//!
//! Trust score, 0–100 (documented in docs/API.md):
//! - governance completeness, 55 points: data collected declared 10, storage region 10,
//!   storage provider 5, retention declared 10, training use declared 5, at least one
//!   security measure 10, and 5 more when the agent does not train on user data;
//! - compliance, 30 points: GDPR 10, SOC 2 15, HIPAA 5;
//! - uptime, 15 points: 30-day measured uptime × 15, rounded down (0 until measured).

use crate::Invalid;
use serde::{Deserialize, Serialize};

/// Compliance frameworks an agent may declare.
pub const COMPLIANCE: &[&str] = &["gdpr", "soc2", "hipaa"];

/// What the publisher declares about data handling.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Governance {
    /// Kinds of data the agent collects ("prompts", "file contents", …). Empty = none declared.
    #[serde(default)]
    pub data_collected: Vec<String>,
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
    /// Checks the declaration's values.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(bad) = self.compliance.iter().find(|c| !COMPLIANCE.contains(&c.as_str())) {
            return Err(Invalid::new("governance.compliance", format!("\"{bad}\" is not one of gdpr, soc2, hipaa")));
        }
        if self.retention_days.is_some_and(|d| !(0..=36_500).contains(&d)) {
            return Err(Invalid::new("governance.retention_days", "must be between 0 and 36500"));
        }
        let lists = [&self.data_collected, &self.security_measures];
        if lists.iter().any(|l| l.len() > 50 || l.iter().any(|s| s.trim().is_empty() || s.len() > 200)) {
            return Err(Invalid::new("governance", "lists hold at most 50 non-empty entries of up to 200 characters"));
        }
        Ok(())
    }

    /// The trust score, 0–100. `uptime_permille` is the 30-day uptime in ‰, if measured.
    pub fn trust_score(&self, uptime_permille: Option<i64>) -> i64 {
        let has = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.trim().is_empty());
        let mut score = 0;
        score += if self.data_collected.is_empty() { 0 } else { 10 };
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
        assert!(full.validate().is_ok());
        let bad = Governance { compliance: vec!["iso9001".into()], ..Governance::default() };
        assert!(bad.validate().is_err());
    }
}
