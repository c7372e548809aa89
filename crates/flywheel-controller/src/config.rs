//! The controller's rules and limits, as an operator configures them. Read from JSON
//! or TOML: missing fields take the defaults below, unknown fields are refused.

use serde::{Deserialize, Serialize};

use crate::error::{invalid_config, Result};

/// Everything the controller is allowed to do, and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControllerConfig {
    /// Record every decision but take no action (default `false`). The controller
    /// keeps its books (breaker, cooldowns, cap) as if the actions had been taken, so
    /// the recorded timeline is the one it would have followed.
    pub dry_run: bool,
    /// The data-quality rule: the circuit breaker.
    pub quality: QualityRule,
    /// The natural-drift rule: warm-start retraining.
    pub drift: DriftRule,
    /// Cooldowns and the cap on model actions.
    pub limits: ActionLimits,
}

/// On a data-quality breach, open the circuit breaker: pause training (and roll back
/// any serving version trained on a bad window) until quality has recovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityRule {
    /// Breach when the share of events naming an item the catalog does not know is
    /// above this (default 0.05).
    pub unknown_item_share: f64,
    /// Breach when the share of events with missing or null fields is above this
    /// (default 0.05).
    pub missing_field_share: f64,
    /// Breach when the share of events refused at ingestion is above this (default 0.05).
    pub rejected_share: f64,
    /// Observations of fewer events than this are no evidence either way (default 200).
    pub min_events: u64,
    /// How many consecutive breaching observations open the breaker (default 2).
    pub breach_observations: u32,
    /// Quality has recovered when every share is at most `clear_ratio` × its
    /// threshold (the lower threshold of the hysteresis; default 0.5)…
    pub clear_ratio: f64,
    /// …without interruption for this many seconds (default 7,200: two hours).
    pub recovery_secs: u64,
}

/// On natural drift, start a warm-start retraining job; its candidate must pass the
/// engine's promotion gate (the controller asks, the gate decides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftRule {
    /// The features whose drift counts; empty (the default) means every feature the
    /// observation reports.
    pub watched_features: Vec<String>,
    /// The PSI above which a feature has drifted (default 0.15, the seeds' trigger).
    /// `null` uses the threshold the monitor reports with each statistic.
    pub psi_threshold: Option<f64>,
    /// The KS statistic above which a feature has drifted; `null` (the default) uses
    /// the threshold the monitor reports.
    pub ks_threshold: Option<f64>,
    /// Whether observed/expected outside its band counts as drift (default `true`).
    pub prediction: bool,
    /// How many consecutive drifting observations start a retraining (default 2).
    pub trigger_observations: u32,
    /// Drift has cleared when every watched statistic is at most `clear_ratio` × its
    /// threshold and O/E is inside its band shrunk by the same ratio towards 1
    /// (default 0.8).
    pub clear_ratio: f64,
    /// Ask for a warm start (from the serving version) rather than a cold one
    /// (default `true`).
    pub warm_start: bool,
}

/// How often the controller may act on the models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionLimits {
    /// Seconds after a rollback before another one (default 3,600).
    pub rollback_cooldown_secs: u64,
    /// Seconds after a retraining request before another one (default 21,600: six hours).
    pub retrain_cooldown_secs: u64,
    /// At most this many rollbacks and retrainings in any trailing hour (default 3).
    /// Opening and closing the breaker is never capped: it is a safety switch,
    /// bounded by the quality rule's hysteresis instead.
    pub max_actions_per_hour: u32,
}

impl Default for QualityRule {
    fn default() -> Self {
        QualityRule {
            unknown_item_share: 0.05,
            missing_field_share: 0.05,
            rejected_share: 0.05,
            min_events: 200,
            breach_observations: 2,
            clear_ratio: 0.5,
            recovery_secs: 7_200,
        }
    }
}

impl Default for DriftRule {
    fn default() -> Self {
        DriftRule {
            watched_features: Vec::new(),
            psi_threshold: Some(0.15),
            ks_threshold: None,
            prediction: true,
            trigger_observations: 2,
            clear_ratio: 0.8,
            warm_start: true,
        }
    }
}

impl Default for ActionLimits {
    fn default() -> Self {
        ActionLimits {
            rollback_cooldown_secs: 3_600,
            retrain_cooldown_secs: 21_600,
            max_actions_per_hour: 3,
        }
    }
}

impl ControllerConfig {
    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        self.quality.validate()?;
        self.drift.validate()?;
        self.limits.validate()
    }
}

/// At most ten years, so seconds always fit milliseconds in an `i64`.
const MAX_SECS: u64 = 10 * 365 * 86_400;

fn check_share(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        return Ok(());
    }
    invalid_config(field, "must be a share in (0, 1]")
}

fn check_count(field: &str, value: u32) -> Result<()> {
    if (1..=1_000).contains(&value) {
        return Ok(());
    }
    invalid_config(field, "must be between 1 and 1,000")
}

fn check_secs(field: &str, value: u64) -> Result<()> {
    if value <= MAX_SECS {
        return Ok(());
    }
    invalid_config(field, "must be at most ten years (315,360,000 seconds)")
}

fn check_threshold(field: &str, value: Option<f64>) -> Result<()> {
    match value {
        Some(t) if !t.is_finite() || t <= 0.0 => invalid_config(
            field,
            "must be a positive number, or null for the monitor's",
        ),
        _ => Ok(()),
    }
}

impl QualityRule {
    fn validate(&self) -> Result<()> {
        check_share("quality.unknown_item_share", self.unknown_item_share)?;
        check_share("quality.missing_field_share", self.missing_field_share)?;
        check_share("quality.rejected_share", self.rejected_share)?;
        check_count("quality.breach_observations", self.breach_observations)?;
        check_share("quality.clear_ratio", self.clear_ratio)?;
        check_secs("quality.recovery_secs", self.recovery_secs)
    }
}

impl DriftRule {
    fn validate(&self) -> Result<()> {
        check_threshold("drift.psi_threshold", self.psi_threshold)?;
        check_threshold("drift.ks_threshold", self.ks_threshold)?;
        check_count("drift.trigger_observations", self.trigger_observations)?;
        check_share("drift.clear_ratio", self.clear_ratio)?;
        if self.watched_features.iter().any(|f| f.trim().is_empty()) {
            return invalid_config("drift.watched_features", "names must not be empty");
        }
        Ok(())
    }
}

impl ActionLimits {
    fn validate(&self) -> Result<()> {
        check_secs("limits.rollback_cooldown_secs", self.rollback_cooldown_secs)?;
        check_secs("limits.retrain_cooldown_secs", self.retrain_cooldown_secs)?;
        if self.max_actions_per_hour == 0 || self.max_actions_per_hour > 1_000 {
            return invalid_config(
                "limits.max_actions_per_hour",
                "must be between 1 and 1,000 (use dry_run to act on nothing)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_documented_values() {
        let config = ControllerConfig::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.drift.psi_threshold, Some(0.15));
        assert!(!config.dry_run);
    }

    #[test]
    fn json_fills_defaults_and_refuses_unknown_fields() {
        let c: ControllerConfig =
            serde_json::from_str(r#"{"dry_run": true, "quality": {"min_events": 10}}"#).unwrap();
        assert!(c.dry_run);
        assert_eq!(c.quality.min_events, 10);
        assert_eq!(c.quality.unknown_item_share, 0.05);
        let err =
            serde_json::from_str::<ControllerConfig>(r#"{"quality": {"unknown": 1}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown"), "{err}");
        let c: ControllerConfig =
            serde_json::from_str(r#"{"drift": {"psi_threshold": null}}"#).unwrap();
        assert_eq!(c.drift.psi_threshold, None);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut c = ControllerConfig::default();
        c.quality.unknown_item_share = 1.5;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("quality.unknown_item_share"), "{err}");
        let mut c = ControllerConfig::default();
        c.drift.psi_threshold = Some(f64::NAN);
        assert!(c.validate().unwrap_err().to_string().contains("psi"));
        let mut c = ControllerConfig::default();
        c.limits.max_actions_per_hour = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_actions"));
        let mut c = ControllerConfig::default();
        c.quality.breach_observations = 0;
        assert!(c.validate().is_err());
        let mut c = ControllerConfig::default();
        c.drift.watched_features = vec![" ".into()];
        assert!(c.validate().is_err());
    }
}
