//! A new version and the gate's decision about it: what `flywheel train` and
//! `POST /v1/models/train` run.
//!
//! - Nothing serves: the candidate is trained on the whole log and promoted.
//! - The serving version's model settings differ from the candidate's
//!   ([`EngineConfig::same_models_as`]: retrieval, re-ranking, training, actions): the candidate
//!   is trained on the whole log; the gate retrains both configurations on the same
//!   training part of a temporal split and scores them on its holdout
//!   ([`compare_configs`]).
//! - Only the data is newer (same model settings, or the serving version does not say
//!   which): the candidate is trained on the log up to a cut after the serving
//!   version's training window, and compared with the serving version's frozen models
//!   on the events after that cut, on the same in-memory split
//!   ([`crate::evaluation::compare_versions`]).
//!
//! The default rule is non-inferiority; `force` promotes whatever the gate says, and
//! the decision says so.

use flywheel_pipeline::{EngineConfig, ModelSet};
use serde::Serialize;

use crate::error::{OfflineError, Result};
use crate::evaluation::{compare_configs, Comparison, EvalOptions, GateOptions, Protocol};
use crate::training::{self, Replay, TrainReport};

/// The gate's decision about a candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Whether the candidate is promoted.
    pub promote: bool,
    /// Whether it is promoted only because `force` was given.
    pub forced: bool,
    /// The decision in words, with the figures behind it.
    pub reason: String,
}

/// A trained candidate with the gate's comparison and decision.
#[derive(Debug)]
pub struct Candidate {
    /// The candidate's models (saved by the caller as a candidate version).
    pub models: ModelSet,
    /// What training did.
    pub report: TrainReport,
    /// The comparison with the serving version, when one was made.
    pub comparison: Option<Comparison>,
    /// The decision.
    pub decision: Decision,
}

/// How a candidate's served ALS begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From random factors.
    Cold,
    /// From the serving version's item factors (when it has an ALS of the same
    /// dimension; a cold start otherwise), with `training.warm_start_iterations` sweeps.
    WarmFromServing,
}

/// Trains a candidate `version` with `config` and judges it against `serving`.
pub fn train_candidate(
    config: &EngineConfig,
    replay: &Replay,
    serving: &ModelSet,
    version: String,
    force: bool,
    start: Start,
    progress: &mut dyn FnMut(&str),
) -> Result<Candidate> {
    let Some(serving_manifest) = serving.manifest.as_ref() else {
        let (models, report) = training::train(config, replay, version, progress)?;
        let decision = Decision {
            promote: true,
            forced: false,
            reason: "first version: nothing serves yet".into(),
        };
        return Ok(Candidate {
            models,
            report,
            comparison: None,
            decision,
        });
    };
    let (options, gate) = judging(config);
    let judged = match serving_manifest.config.as_ref() {
        Some(serving_config) if !serving_config.same_models_as(config) => {
            let (models, report) = training::train(config, replay, version.clone(), progress)?;
            let comparison = compare_configs(
                (serving.version(), serving_config),
                (&version, config),
                replay,
                &options,
                &Protocol::default(),
                &gate,
                progress,
            );
            comparison.map(|c| (models, report, c))
        }
        _ => {
            let warm = match start {
                Start::WarmFromServing => serving.als(),
                Start::Cold => None,
            };
            train_before_cut_and_compare(config, replay, serving, &version, warm, progress)
        }
    };
    match judged {
        Ok((models, report, comparison)) => {
            let decision = decide(&comparison, &gate, force);
            Ok(Candidate {
                models,
                report,
                comparison: Some(comparison),
                decision,
            })
        }
        Err(OfflineError::NotEnoughData(why)) if force => {
            let (models, report) = training::train(config, replay, version, progress)?;
            let decision = Decision {
                promote: true,
                forced: true,
                reason: format!("forced; the gate could not compare: {why}"),
            };
            Ok(Candidate {
                models,
                report,
                comparison: None,
                decision,
            })
        }
        Err(e) => Err(e),
    }
}

/// The same-configuration path: the candidate learns from the log up to a cut after
/// the serving version's training window and is judged on the events after it.
fn train_before_cut_and_compare(
    config: &EngineConfig,
    replay: &Replay,
    serving: &ModelSet,
    version: &str,
    warm: Option<&flywheel_retrieval::AlsModel>,
    progress: &mut dyn FnMut(&str),
) -> Result<(ModelSet, TrainReport, Comparison)> {
    let (options, gate) = judging(config);
    let protocol = Protocol {
        not_before: serving
            .manifest
            .as_ref()
            .and_then(|m| m.trained_until)
            .map(|t| t.plus_millis(1)),
        ..Protocol::default()
    };
    let split = crate::evaluation::split_for_gate(replay, &protocol, &options)?;
    let (models, report) = split.train(config, version, progress, warm)?;
    // Judged on the very split it was trained on (its window ends before the cut).
    let comparison = split.compare_frozen(config, &options, serving, &models, &gate, progress)?;
    Ok((models, report, comparison))
}

/// How the gate compares (the holdout and the user cap) and what it asks.
fn judging(config: &EngineConfig) -> (EvalOptions, GateOptions) {
    let options = EvalOptions {
        holdout: config.gate.holdout,
        max_users: (config.gate.max_users > 0).then_some(config.gate.max_users),
    };
    (options, GateOptions::from_settings(&config.gate))
}

/// Applies the rule (or `force`) and says why in words.
fn decide(comparison: &Comparison, gate: &GateOptions, force: bool) -> Decision {
    let figures = format!("{}; {}", comparison.figures(), gate.rule.describe());
    match (comparison.promote, force) {
        (true, _) => Decision {
            promote: true,
            forced: false,
            reason: format!("passed the gate: {figures}"),
        },
        (false, true) => Decision {
            promote: true,
            forced: true,
            reason: format!("FORCED past a failing gate: {figures}"),
        },
        (false, false) => Decision {
            promote: false,
            forced: false,
            reason: format!("rejected by the gate: {figures}"),
        },
    }
}
