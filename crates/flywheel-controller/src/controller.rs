//! The controller: a deterministic state machine over observation time. Each
//! [`Controller::observe`] reads the rules, forms the actions it wants, passes each
//! through the limits (breaker, running job, cooldown, cap, dry-run) and returns one
//! [`Decision`] per action, taken or suppressed.

use flywheel_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use crate::assess::{self, Assessment};
use crate::config::ControllerConfig;
use crate::decision::{
    ActionKind, ControlAction, Decision, Evidence, Outcome, Rule, Suppression, Threshold,
};
use crate::error::{ControllerError, Result};
use crate::hysteresis::{Edge, Hysteresis, Level};
use crate::observation::Observation;

/// The window of the cap on actions.
const HOUR_MS: i64 = 3_600_000;

/// An action a rule wants, before the limits.
struct Intent {
    rule: Rule,
    action: ControlAction,
    evidence: Vec<Evidence>,
}

/// The self-healing controller.
#[derive(Debug, Clone)]
pub struct Controller {
    config: ControllerConfig,
    state: ControllerState,
}

/// Everything the controller remembers between observations: the breaker, the drift
/// condition, the cooldowns, the cap's window. Opaque, but serializable, so the engine
/// can persist it and a restart in the middle of a breach keeps training paused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerState {
    last_at: Option<Timestamp>,
    quality: Hysteresis,
    drift: Hysteresis,
    /// The evidence that last put drift above its threshold.
    drift_evidence: Vec<Evidence>,
    /// When a rollback was last taken (or would have been, in dry-run).
    last_rollback: Option<Timestamp>,
    /// When a retraining was last taken (or would have been, in dry-run).
    last_retrain: Option<Timestamp>,
    /// When capped actions were taken in the trailing hour, oldest first.
    capped_actions: VecDeque<Timestamp>,
    /// The suppression last recorded per rule and action while the rule keeps wanting
    /// it, so a held-back action is recorded once per reason, not at every observation.
    held: Vec<Held>,
}

/// An action held back, and why, as last recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Held {
    rule: Rule,
    kind: ActionKind,
    why: Suppression,
}

/// The controller's state, as `GET /v1/controller` could show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    /// Whether actions are only recorded.
    pub dry_run: bool,
    /// Whether the circuit breaker is open (training paused).
    pub breaker_open: bool,
    /// When the breaker opened.
    pub breaker_opened_at: Option<Timestamp>,
    /// Since when quality has been under the lower threshold, while the breaker is open.
    pub quality_clear_since: Option<Timestamp>,
    /// When the breaker closes if quality stays clear.
    pub breaker_closes_at: Option<Timestamp>,
    /// Whether natural drift is active (retraining wanted).
    pub drift_active: bool,
    /// Rollbacks and retrainings taken in the trailing hour.
    pub actions_last_hour: u32,
    /// The time of the last observation.
    pub last_observation: Option<Timestamp>,
}

impl Controller {
    /// A controller with a validated configuration, in its initial state (breaker
    /// closed, no drift, no cooldown running).
    pub fn new(config: ControllerConfig) -> Result<Controller> {
        config.validate()?;
        Ok(Controller {
            config,
            state: ControllerState::default(),
        })
    }

    /// A controller that resumes from a state [`Controller::state`] returned earlier
    /// (persisted across a restart), with a validated configuration.
    pub fn with_state(config: ControllerConfig, state: ControllerState) -> Result<Controller> {
        config.validate()?;
        Ok(Controller { config, state })
    }

    /// The state to persist.
    pub fn state(&self) -> &ControllerState {
        &self.state
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// Reads one observation and returns the decisions it leads to, in the order the
    /// engine should carry out the taken ones. An invalid or out-of-order observation
    /// is refused and changes nothing.
    pub fn observe(&mut self, observation: &Observation) -> Result<Vec<Decision>> {
        observation.validate()?;
        self.check_order(observation.at)?;
        self.state.last_at = Some(observation.at);
        self.expire_capped(observation.at);
        let intents = self.intents(observation);
        let decisions = intents
            .into_iter()
            .filter_map(|intent| self.decide(intent, observation))
            .collect();
        Ok(decisions)
    }

    /// The state, for an operator.
    pub fn status(&self) -> ControllerStatus {
        let recovery = self.recovery_ms();
        ControllerStatus {
            dry_run: self.config.dry_run,
            breaker_open: self.state.quality.is_active(),
            breaker_opened_at: self.state.quality.active_since(),
            quality_clear_since: self.state.quality.clear_since(),
            breaker_closes_at: self
                .state
                .quality
                .clear_since()
                .map(|t| t.plus_millis(recovery)),
            drift_active: self.state.drift.is_active(),
            actions_last_hour: self.state.capped_actions.len() as u32,
            last_observation: self.state.last_at,
        }
    }

    /// Whether training is paused by the open breaker.
    pub fn training_paused(&self) -> bool {
        self.state.quality.is_active()
    }

    fn check_order(&self, at: Timestamp) -> Result<()> {
        match self.state.last_at {
            Some(previous) if at < previous => Err(ControllerError::OutOfOrder { previous, at }),
            _ => Ok(()),
        }
    }

    fn recovery_ms(&self) -> i64 {
        secs_to_ms(self.config.quality.recovery_secs)
    }

    fn expire_capped(&mut self, at: Timestamp) {
        while self
            .state
            .capped_actions
            .front()
            .is_some_and(|t| at.millis() - t.millis() >= HOUR_MS)
        {
            self.state.capped_actions.pop_front();
        }
    }

    /// What the rules want, safety first: the breaker, then a rollback, then a retrain.
    fn intents(&mut self, observation: &Observation) -> Vec<Intent> {
        let mut intents = Vec::new();
        intents.extend(self.breaker_intent(observation));
        intents.extend(rollback_intent(observation));
        intents.extend(self.retrain_intent(observation));
        let wanted: Vec<(Rule, ActionKind)> =
            intents.iter().map(|i| (i.rule, i.action.kind())).collect();
        self.state
            .held
            .retain(|held| wanted.contains(&(held.rule, held.kind)));
        intents
    }

    fn breaker_intent(&mut self, observation: &Observation) -> Option<Intent> {
        let rule = &self.config.quality;
        let Assessment { level, evidence } = assess::quality(rule, &observation.quality);
        let edge = self.state.quality.update(
            level,
            observation.at,
            rule.breach_observations,
            self.recovery_ms(),
        );
        let (rule, action) = match edge {
            Edge::Rose => (Rule::DataQualityBreach, ControlAction::PauseTraining),
            Edge::Fell => (Rule::DataQualityRecovered, ControlAction::ResumeTraining),
            Edge::Steady => return None,
        };
        Some(Intent {
            rule,
            action,
            evidence,
        })
    }

    fn retrain_intent(&mut self, observation: &Observation) -> Option<Intent> {
        let rule = &self.config.drift;
        let Assessment { level, evidence } = assess::drift(rule, observation);
        if level == Level::Above {
            self.state.drift_evidence = evidence;
        }
        self.state
            .drift
            .update(level, observation.at, rule.trigger_observations, 0);
        if !self.state.drift.is_active() {
            return None;
        }
        Some(Intent {
            rule: Rule::Drift,
            action: ControlAction::Retrain {
                warm_start: rule.warm_start,
            },
            evidence: self.state.drift_evidence.clone(),
        })
    }

    /// Passes an intent through the limits; `None` when it is held back for the same
    /// reason as the last time it was recorded.
    fn decide(&mut self, intent: Intent, observation: &Observation) -> Option<Decision> {
        let at = observation.at;
        let kind = intent.action.kind();
        let outcome = match self.hold_back(&intent.action, observation) {
            Some(why) => Outcome::Suppressed { why },
            None => {
                self.book(kind, at);
                if self.config.dry_run {
                    Outcome::Suppressed {
                        why: Suppression::DryRun,
                    }
                } else {
                    Outcome::Taken
                }
            }
        };
        if !self.is_new(intent.rule, kind, &outcome) {
            return None;
        }
        Some(Decision {
            at,
            rule: intent.rule,
            action: intent.action,
            evidence: intent.evidence,
            outcome,
        })
    }

    /// Why the action cannot be taken now, if it cannot (dry-run aside).
    fn hold_back(&self, action: &ControlAction, observation: &Observation) -> Option<Suppression> {
        match action {
            ControlAction::PauseTraining | ControlAction::ResumeTraining => None,
            ControlAction::Rollback { to, from } => {
                if to.as_ref().is_none_or(|to| to == from) {
                    return Some(Suppression::NoRollbackTarget);
                }
                self.limit(ActionKind::Rollback, observation.at)
            }
            ControlAction::Retrain { .. } => {
                if self.training_paused() {
                    return Some(Suppression::TrainingPaused);
                }
                if observation.training_running {
                    return Some(Suppression::TrainingRunning);
                }
                self.limit(ActionKind::Retrain, observation.at)
            }
        }
    }

    /// The cooldown of `kind`, then the cap.
    fn limit(&self, kind: ActionKind, at: Timestamp) -> Option<Suppression> {
        if let Some(until) = self.cooldown_until(kind) {
            if at < until {
                return Some(Suppression::Cooldown { until });
            }
        }
        let limit = self.config.limits.max_actions_per_hour;
        if self.state.capped_actions.len() >= limit as usize {
            return Some(Suppression::Cap { limit });
        }
        None
    }

    fn cooldown_until(&self, kind: ActionKind) -> Option<Timestamp> {
        let limits = &self.config.limits;
        let secs = match kind {
            ActionKind::Rollback => limits.rollback_cooldown_secs,
            ActionKind::Retrain => limits.retrain_cooldown_secs,
            ActionKind::PauseTraining | ActionKind::ResumeTraining => return None,
        };
        let last = match kind {
            ActionKind::Rollback => self.state.last_rollback,
            ActionKind::Retrain => self.state.last_retrain,
            ActionKind::PauseTraining | ActionKind::ResumeTraining => None,
        }?;
        Some(last.plus_millis(secs_to_ms(secs)))
    }

    /// Records that an action is taken (or would be, in dry-run) for the cooldowns and
    /// the cap.
    fn book(&mut self, kind: ActionKind, at: Timestamp) {
        let last = match kind {
            ActionKind::Rollback => &mut self.state.last_rollback,
            ActionKind::Retrain => &mut self.state.last_retrain,
            ActionKind::PauseTraining | ActionKind::ResumeTraining => return,
        };
        *last = Some(at);
        self.state.capped_actions.push_back(at);
    }

    /// Whether the outcome is worth a decision: anything taken, and a suppression
    /// unless the same rule's same action was already held back for the same reason.
    fn is_new(&mut self, rule: Rule, kind: ActionKind, outcome: &Outcome) -> bool {
        match outcome {
            Outcome::Suppressed { why } if *why != Suppression::DryRun => {
                let held = &mut self.state.held;
                let known = held.iter().position(|h| h.rule == rule && h.kind == kind);
                if let Some(index) = known {
                    if held[index].why == *why {
                        return false;
                    }
                    held.remove(index);
                }
                held.push(Held {
                    rule,
                    kind,
                    why: why.clone(),
                });
                true
            }
            _ => {
                self.state.held.retain(|h| h.rule != rule || h.kind != kind);
                true
            }
        }
    }
}

/// A rollback whenever the serving version was trained on a bad window.
fn rollback_intent(observation: &Observation) -> Option<Intent> {
    if !observation.serving_trained_on_breach {
        return None;
    }
    let from = observation.serving_version.clone()?;
    Some(Intent {
        rule: Rule::DataQualityBreach,
        action: ControlAction::Rollback {
            from,
            to: observation.last_good_version.clone(),
        },
        evidence: vec![Evidence {
            signal: "serving_trained_on_breach".to_string(),
            value: 1.0,
            threshold: Threshold::Above { limit: 0.0 },
        }],
    })
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).map_or(i64::MAX, |s| s.saturating_mul(1_000))
}
