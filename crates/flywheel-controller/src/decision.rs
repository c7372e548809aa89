//! What the controller decided, why, and whether it acted: one [`Decision`] per
//! action it wanted, serializable so the engine can log it as it is.

use flywheel_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The rule that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Data quality breached its thresholds: the circuit breaker.
    DataQualityBreach,
    /// Data quality has been back under the lower threshold for the recovery period.
    DataQualityRecovered,
    /// A watched feature or the prediction drifted: natural drift.
    Drift,
}

/// What the controller asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControlAction {
    /// Open the circuit breaker: start no training until quality recovers.
    PauseTraining,
    /// Close the circuit breaker: training may run again.
    ResumeTraining,
    /// Serve `to` instead of `from`.
    Rollback {
        /// The version serving now.
        from: String,
        /// The last good version; `None` when there is none (the decision is then
        /// suppressed with [`Suppression::NoRollbackTarget`]).
        to: Option<String>,
    },
    /// Start a retraining job; its candidate must pass the promotion gate.
    Retrain {
        /// Start from the serving version's parameters.
        warm_start: bool,
    },
}

/// The kind of an action, without its arguments: what cooldowns are kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// [`ControlAction::PauseTraining`].
    PauseTraining,
    /// [`ControlAction::ResumeTraining`].
    ResumeTraining,
    /// [`ControlAction::Rollback`].
    Rollback,
    /// [`ControlAction::Retrain`].
    Retrain,
}

impl ControlAction {
    /// The action's kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            ControlAction::PauseTraining => ActionKind::PauseTraining,
            ControlAction::ResumeTraining => ActionKind::ResumeTraining,
            ControlAction::Rollback { .. } => ActionKind::Rollback,
            ControlAction::Retrain { .. } => ActionKind::Retrain,
        }
    }
}

/// How a figure was compared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum Threshold {
    /// The figure is above `limit` (a breach or drift).
    Above {
        /// The threshold.
        limit: f64,
    },
    /// The figure is at most `limit` (a recovery: the lower threshold).
    AtMost {
        /// The threshold.
        limit: f64,
    },
    /// The figure is outside `[low, high]`.
    Outside {
        /// The band's lower end.
        low: f64,
        /// The band's upper end.
        high: f64,
    },
    /// The figure is inside `[low, high]`.
    Inside {
        /// The band's lower end.
        low: f64,
        /// The band's upper end.
        high: f64,
    },
}

/// One figure behind a decision, with the threshold it was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What was measured: `unknown_item_share`, `psi:category`, `observed_over_expected`,
    /// `serving_trained_on_breach`…
    pub signal: String,
    /// Its value.
    pub value: f64,
    /// The comparison that held.
    pub threshold: Threshold,
}

/// Why an action the controller wanted was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Suppression {
    /// The same kind of action was taken too recently.
    Cooldown {
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// The cap on actions per hour is reached.
    Cap {
        /// The configured cap.
        limit: u32,
    },
    /// Dry-run mode: decisions are recorded, actions are not taken.
    DryRun,
    /// The circuit breaker is open: training is paused until quality recovers.
    TrainingPaused,
    /// A training job is already running.
    TrainingRunning,
    /// Nothing to roll back to: no last good version, or it is the serving one.
    NoRollbackTarget,
}

/// Whether the action was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The engine should carry the action out now.
    Taken,
    /// The action was held back.
    Suppressed {
        /// Why.
        #[serde(flatten)]
        why: Suppression,
    },
}

/// One decision of the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The observation's time.
    pub at: Timestamp,
    /// The rule that fired.
    pub rule: Rule,
    /// What it wanted done.
    pub action: ControlAction,
    /// The figures that triggered it, each with its threshold.
    pub evidence: Vec<Evidence>,
    /// Whether it was taken, or why not.
    pub outcome: Outcome,
}

impl Decision {
    /// Whether the engine should carry the action out.
    pub fn is_taken(&self) -> bool {
        self.outcome == Outcome::Taken
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Above { limit } => write!(f, "> {limit:.3}"),
            Threshold::AtMost { limit } => write!(f, "≤ {limit:.3}"),
            Threshold::Outside { low, high } => write!(f, "outside [{low:.3}, {high:.3}]"),
            Threshold::Inside { low, high } => write!(f, "inside [{low:.3}, {high:.3}]"),
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:.3} {}", self.signal, self.value, self.threshold)
    }
}

impl fmt::Display for ControlAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlAction::PauseTraining => f.write_str("pause training (breaker open)"),
            ControlAction::ResumeTraining => f.write_str("resume training (breaker closed)"),
            ControlAction::Rollback { from, to } => match to {
                Some(to) => write!(f, "roll back {from} → {to}"),
                None => write!(f, "roll back {from} → (no good version)"),
            },
            ControlAction::Retrain { warm_start: true } => f.write_str("retrain (warm start)"),
            ControlAction::Retrain { warm_start: false } => f.write_str("retrain (cold start)"),
        }
    }
}

impl fmt::Display for Suppression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Suppression::Cooldown { until } => write!(f, "cooldown until {until}"),
            Suppression::Cap { limit } => write!(f, "cap of {limit} actions per hour reached"),
            Suppression::DryRun => f.write_str("dry run"),
            Suppression::TrainingPaused => f.write_str("training paused by the breaker"),
            Suppression::TrainingRunning => f.write_str("a training job is running"),
            Suppression::NoRollbackTarget => f.write_str("no good version to roll back to"),
        }
    }
}

impl fmt::Display for Decision {
    /// One line for a timeline: time, rule, action, outcome, evidence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match self.rule {
            Rule::DataQualityBreach => "data-quality breach",
            Rule::DataQualityRecovered => "data quality recovered",
            Rule::Drift => "drift",
        };
        write!(f, "{} {rule}: {}", self.at, self.action)?;
        match &self.outcome {
            Outcome::Taken => f.write_str(" [taken]")?,
            Outcome::Suppressed { why } => write!(f, " [suppressed: {why}]")?,
        }
        let evidence: Vec<String> = self.evidence.iter().map(ToString::to_string).collect();
        if !evidence.is_empty() {
            write!(f, " ({})", evidence.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_serialize_with_flat_tags_and_read_back() {
        let decision = Decision {
            at: Timestamp::from_secs(3_600),
            rule: Rule::DataQualityBreach,
            action: ControlAction::Rollback {
                from: "v3".into(),
                to: Some("v2".into()),
            },
            evidence: vec![Evidence {
                signal: "unknown_item_share".into(),
                value: 0.2,
                threshold: Threshold::Above { limit: 0.05 },
            }],
            outcome: Outcome::Suppressed {
                why: Suppression::Cooldown {
                    until: Timestamp::from_secs(7_200),
                },
            },
        };
        let json = serde_json::to_value(&decision).unwrap();
        assert_eq!(json["rule"], "data_quality_breach");
        assert_eq!(json["action"]["kind"], "rollback");
        assert_eq!(json["outcome"]["status"], "suppressed");
        assert_eq!(json["outcome"]["reason"], "cooldown");
        assert_eq!(json["evidence"][0]["threshold"]["test"], "above");
        let back: Decision = serde_json::from_value(json).unwrap();
        assert_eq!(back, decision);
        let line = decision.to_string();
        assert!(line.contains("roll back v3 → v2"), "{line}");
        assert!(line.contains("unknown_item_share 0.200 > 0.050"), "{line}");
    }
}
