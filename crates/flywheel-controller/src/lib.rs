//! # flywheel-controller: the self-healing loop's rule engine
//!
//! A pure, deterministic state machine: it is given an [`Observation`] (a plain
//! summary of the monitoring report and the registry at time `t`) and returns
//! [`Decision`]s. It does no IO, keeps no clock of its own and never acts itself:
//! the engine carries out the decisions that are [`Outcome::Taken`] and logs all of
//! them.
//!
//! Rules ([`ControllerConfig`]):
//! * **data-quality breach** (a share of unknown item ids, missing fields or rejected
//!   events above its threshold for N consecutive observations) opens the circuit
//!   breaker: [`ControlAction::PauseTraining`]; training stays paused until every
//!   share has been under the lower threshold for the recovery period
//!   ([`ControlAction::ResumeTraining`]);
//! * a serving version **trained on a bad window** is rolled back to the last good
//!   version ([`ControlAction::Rollback`]);
//! * **natural drift** (a watched feature's PSI or KS above its threshold, or
//!   observed/expected outside its band, for N consecutive observations, until it
//!   clears under the lower threshold) asks for a warm-start retraining
//!   ([`ControlAction::Retrain`]) whose candidate must pass the engine's promotion gate.
//!
//! Rollbacks and retrainings have cooldowns and share a cap per trailing hour; in
//! dry-run every decision is recorded and none is taken. A held-back action says why
//! ([`Suppression`]): cooldown, cap, dry-run, training paused, a job running, or no
//! version to roll back to.
//!
//! ```
//! use flywheel_controller::*;
//! use flywheel_core::Timestamp;
//!
//! let mut controller = Controller::new(ControllerConfig::default()).unwrap();
//! let corrupted = |minute: i64| Observation {
//!     at: Timestamp::from_secs(minute * 60),
//!     quality: DataQuality { events: 1_000, unknown_item_share: 0.2,
//!                            missing_field_share: 0.0, rejected_share: 0.0 },
//!     features: Vec::new(),
//!     prediction: None,
//!     serving_version: Some("v2".into()),
//!     last_good_version: Some("v1".into()),
//!     training_running: false,
//!     serving_trained_on_breach: true,
//! };
//! // The breach must persist for two observations (hysteresis)…
//! let first = controller.observe(&corrupted(0)).unwrap();
//! assert!(first.iter().all(|d| d.action.kind() != ActionKind::PauseTraining));
//! let second = controller.observe(&corrupted(10)).unwrap();
//! assert!(second.iter().any(|d| d.action == ControlAction::PauseTraining && d.is_taken()));
//! assert!(controller.status().breaker_open);
//! ```

mod assess;
mod config;
mod controller;
mod decision;
mod error;
mod hysteresis;
mod observation;
#[cfg(test)]
mod tests;

pub use config::{ActionLimits, ControllerConfig, DriftRule, QualityRule};
pub use controller::{Controller, ControllerState, ControllerStatus};
pub use decision::{
    ActionKind, ControlAction, Decision, Evidence, Outcome, Rule, Suppression, Threshold,
};
pub use error::{ControllerError, Result};
pub use observation::{DataQuality, DriftStatistic, FeatureDrift, Observation, PredictionDrift};
