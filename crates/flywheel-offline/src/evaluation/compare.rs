//! The promotion gate: a candidate against the serving version, on the same holdout
//! users, with a paired bootstrap confidence interval of the NDCG@10 difference — on
//! data neither side was trained on.
//!
//! Two ways to make the sides ([`GateMethod`]):
//! - **retrained** ([`compare_configs`]): when the two configurations differ, both are
//!   retrained on the same training part of the split and scored on its holdout;
//! - **frozen** ([`compare_versions`]): both versions' models as trained, scored on a
//!   temporal holdout that starts after both training windows.
//!
//! Both sides serve the full pipeline (blend, ranker, re-ranking) from the same state
//! as of the split; each warm test user contributes one paired difference
//! `ndcg@10(candidate) − ndcg@10(serving)`. The users are resampled with replacement
//! (seeded), the mean difference of each resample is kept, and the CI is the
//! percentile interval of those means ([`flywheel_eval::percentile`], linear
//! interpolation between order statistics, as `numpy.percentile`).

use flywheel_core::{LogRecord, Timestamp};
use flywheel_pipeline::{EngineConfig, GateRuleKind, GateSettings, ModelSet};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::HashMap;

use super::metrics::{self, SystemMetrics, UserList};
use super::{EvalOptions, Holdout, Protocol, Split, SplitLog};
use crate::error::{OfflineError, Result};
use crate::training::{self, Replay};

/// When a candidate is promoted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PromotionRule {
    /// Promote unless the CI of the NDCG@10 difference lies wholly below −margin.
    NonInferiority {
        /// The margin, in NDCG@10 points.
        margin: f64,
    },
    /// Promote only if the CI lies wholly above +margin.
    Superiority {
        /// The margin, in NDCG@10 points.
        margin: f64,
    },
    /// Promote if the mean difference is above this value.
    MeanLiftAbove {
        /// The least mean difference.
        lift: f64,
    },
}

impl PromotionRule {
    /// The rule the configuration asks for.
    pub fn from_settings(settings: &GateSettings) -> Self {
        match settings.rule {
            GateRuleKind::NonInferiority => PromotionRule::NonInferiority {
                margin: settings.margin,
            },
            GateRuleKind::Superiority => PromotionRule::Superiority {
                margin: settings.margin,
            },
        }
    }

    /// The rule in words.
    pub fn describe(&self) -> String {
        match self {
            PromotionRule::NonInferiority { margin } => {
                format!("non-inferiority: promote unless the CI lies wholly below -{margin}")
            }
            PromotionRule::Superiority { margin } => {
                format!("superiority: promote only if the CI lies wholly above +{margin}")
            }
            PromotionRule::MeanLiftAbove { lift } => {
                format!("mean lift: promote if the mean difference is above {lift}")
            }
        }
    }

    /// Whether a difference with this mean and CI passes (never with no users).
    pub fn passes(&self, mean: f64, ci_low: f64, ci_high: f64, users: usize) -> bool {
        users > 0
            && match *self {
                PromotionRule::NonInferiority { margin } => ci_high >= -margin,
                PromotionRule::Superiority { margin } => ci_low > margin,
                PromotionRule::MeanLiftAbove { lift } => mean > lift,
            }
    }
}

/// The gate's rule, its bootstrap and its holdout.
#[derive(Debug, Clone, PartialEq)]
pub struct GateOptions {
    /// The rule.
    pub rule: PromotionRule,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Two-sided confidence level of the interval.
    pub confidence: f64,
}

impl GateOptions {
    /// The gate the configuration asks for.
    pub fn from_settings(settings: &GateSettings) -> Self {
        GateOptions {
            rule: PromotionRule::from_settings(settings),
            resamples: settings.resamples,
            seed: settings.seed,
            confidence: settings.confidence,
        }
    }
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions::from_settings(&GateSettings::default())
    }
}

/// How the two sides of a comparison were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMethod {
    /// Both configurations retrained on the same training part, scored on the same
    /// holdout (their configurations differ).
    Retrained,
    /// Both versions' models as trained, scored on a holdout after both training windows.
    Frozen,
}

impl GateMethod {
    /// The method in words.
    pub fn describe(self) -> &'static str {
        match self {
            GateMethod::Retrained => {
                "both configurations retrained on the same training part, scored on the same holdout"
            }
            GateMethod::Frozen => {
                "both versions' models as trained, scored on a holdout after both training windows"
            }
        }
    }
}

/// The verdict of the gate.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The protocol, in words.
    pub protocol: String,
    /// How the two sides were made.
    pub method: GateMethod,
    /// Recommendations were made as of this time (the holdout starts here).
    pub cut: Timestamp,
    /// The serving version.
    pub serving_version: String,
    /// The candidate version.
    pub candidate_version: String,
    /// Paired users.
    pub users: usize,
    /// The serving set's blend metrics on those users.
    pub serving: SystemMetrics,
    /// The candidate's.
    pub candidate: SystemMetrics,
    /// Mean per-user NDCG@10 difference (candidate − serving).
    pub mean_difference: f64,
    /// Lower bound of the bootstrap CI of the mean difference.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
    /// The CI's confidence level.
    pub confidence: f64,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// The rule applied.
    pub rule: PromotionRule,
    /// Whether the candidate passes.
    pub promote: bool,
}

impl Comparison {
    /// The figures in one sentence: both NDCG@10s, the difference and its CI.
    pub fn figures(&self) -> String {
        format!(
            "ndcg@10 {:.4} ({}, candidate) vs {:.4} ({}, serving), difference {:+.4}, {:.0}% paired bootstrap CI [{:+.4}, {:+.4}] on {} users ({} resamples, seed {})",
            self.candidate.ndcg_at_10,
            self.candidate_version,
            self.serving.ndcg_at_10,
            self.serving_version,
            self.mean_difference,
            self.confidence * 100.0,
            self.ci_low,
            self.ci_high,
            self.users,
            self.resamples,
            self.seed,
        )
    }

    /// The rule and its verdict in words.
    pub fn verdict(&self) -> String {
        let decision = if self.promote {
            "promote"
        } else {
            "keep serving"
        };
        format!("{}: {decision}", self.rule.describe())
    }
}

/// Mean of `differences` and its percentile bootstrap CI: `resamples` resamples with
/// replacement drawn with `StdRng::seed_from_u64(seed)`. `(0, 0, 0)` for no data.
pub fn paired_bootstrap_ci(
    differences: &[f64],
    resamples: usize,
    seed: u64,
    confidence: f64,
) -> (f64, f64, f64) {
    let n = differences.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let mean = differences.iter().sum::<f64>() / n as f64;
    if resamples == 0 {
        return (mean, mean, mean);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            (0..n)
                .map(|_| differences[rng.gen_range(0..n)])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    (
        mean,
        flywheel_eval::percentile(&means, alpha),
        flywheel_eval::percentile(&means, 1.0 - alpha),
    )
}

/// One side of a comparison: the configuration it serves with and its models.
#[derive(Clone, Copy)]
struct Side<'a> {
    /// The configuration (quotas, re-ranking…) the side's pipeline runs with.
    config: &'a EngineConfig,
    /// The models.
    models: &'a ModelSet,
}

/// Scores `serving` and `candidate` as given on a temporal holdout that starts after
/// both versions' training windows (and no earlier than the `options.holdout` share).
/// A frozen comparison needs a temporal split: any other split would hold out data
/// the versions were trained on.
#[allow(clippy::too_many_arguments)]
pub fn compare_versions(
    config: &EngineConfig,
    replay: &Replay,
    options: &EvalOptions,
    protocol: &Protocol,
    serving: &ModelSet,
    candidate: &ModelSet,
    gate: &GateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Comparison> {
    if protocol.split != Split::Temporal {
        return Err(OfflineError::Config(
            "comparing trained versions needs the temporal split: any other split holds out \
             events the versions were trained on"
                .into(),
        ));
    }
    let protocol = Protocol {
        not_before: after_training_windows(&[serving, candidate]),
        ..protocol.clone()
    };
    progress("reading the log");
    let log = SplitLog::read(replay, &protocol, options)?;
    compare_versions_on(&log, config, options, serving, candidate, gate, progress)
}

/// [`compare_versions`] on a log already split after both training windows.
pub(super) fn compare_versions_on(
    log: &SplitLog,
    config: &EngineConfig,
    options: &EvalOptions,
    serving: &ModelSet,
    candidate: &ModelSet,
    gate: &GateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Comparison> {
    require_test_events(log, &[serving, candidate])?;
    progress("replaying the state from the training records");
    let holdout = Holdout::prepare(config, log, options);
    progress("scoring both versions on the same users");
    let sides = [
        Side {
            config,
            models: serving,
        },
        Side {
            config,
            models: candidate,
        },
    ];
    paired(&holdout, log, sides, GateMethod::Frozen, gate)
}

/// Retrains both configurations on the same training part of the split and scores
/// them on its holdout; the versions are named for the report only.
#[allow(clippy::too_many_arguments)]
pub fn compare_configs(
    serving: (&str, &EngineConfig),
    candidate: (&str, &EngineConfig),
    replay: &Replay,
    options: &EvalOptions,
    protocol: &Protocol,
    gate: &GateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Comparison> {
    progress("reading the log");
    let log = SplitLog::read(replay, protocol, options)?;
    let train_replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> Result<()>| -> Result<()> {
        log.visit_train(visit)
    };
    progress("retraining the serving configuration on the training part");
    let (serving_models, _) =
        training::train(serving.1, &train_replay, serving.0.to_string(), &mut |_| {})?;
    progress("retraining the candidate configuration on the training part");
    let (candidate_models, _) = training::train(
        candidate.1,
        &train_replay,
        candidate.0.to_string(),
        &mut |_| {},
    )?;
    progress("replaying the state from the training records");
    let holdout = Holdout::prepare(candidate.1, &log, options);
    progress("scoring both configurations on the same users");
    let sides = [
        Side {
            config: serving.1,
            models: &serving_models,
        },
        Side {
            config: candidate.1,
            models: &candidate_models,
        },
    ];
    paired(&holdout, &log, sides, GateMethod::Retrained, gate)
}

/// The promotion gate between two registered versions, on data neither was trained on:
/// when their model settings differ both configurations are retrained on the split
/// ([`compare_configs`]); otherwise their models are compared as trained
/// ([`compare_versions`]). `config` serves the frozen comparison.
#[allow(clippy::too_many_arguments)]
pub fn compare_registered(
    config: &EngineConfig,
    replay: &Replay,
    options: &EvalOptions,
    protocol: &Protocol,
    serving: &ModelSet,
    candidate: &ModelSet,
    gate: &GateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Comparison> {
    let settings = |set: &ModelSet| set.manifest.as_ref().and_then(|m| m.config.clone());
    match (settings(serving), settings(candidate)) {
        (Some(old), Some(new)) if !old.same_models_as(&new) => compare_configs(
            (serving.version(), &old),
            (candidate.version(), &new),
            replay,
            options,
            protocol,
            gate,
            progress,
        ),
        _ => compare_versions(
            config, replay, options, protocol, serving, candidate, gate, progress,
        ),
    }
}

/// The earliest time after every given version's training window.
fn after_training_windows(sets: &[&ModelSet]) -> Option<Timestamp> {
    sets.iter()
        .filter_map(|s| s.manifest.as_ref()?.trained_until)
        .max()
        .map(|t| t.plus_millis(1))
}

fn require_test_events(log: &SplitLog, sets: &[&ModelSet]) -> Result<()> {
    if log.marked.is_test.iter().any(|t| *t) {
        return Ok(());
    }
    let windows: Vec<String> = sets
        .iter()
        .map(
            |s| match s.manifest.as_ref().and_then(|m| m.trained_until) {
                Some(until) => format!("{} trained until {until}", s.version()),
                None => format!("{} (training window unknown)", s.version()),
            },
        )
        .collect();
    Err(OfflineError::NotEnoughData(format!(
        "no events after both training windows ({}); send more events first",
        windows.join(", ")
    )))
}

/// Scores both sides on the holdout's warm users and applies the rule.
fn paired(
    holdout: &Holdout,
    log: &SplitLog,
    [serving, candidate]: [Side; 2],
    method: GateMethod,
    gate: &GateOptions,
) -> Result<Comparison> {
    if holdout.warm.is_empty() {
        return Err(OfflineError::NotEnoughData(
            "no test user has training history; the gate has nobody to compare on".into(),
        ));
    }
    let blend = (None, true);
    let base = holdout.lists(serving.config, serving.models, &holdout.warm, blend);
    let new = holdout.lists(candidate.config, candidate.models, &holdout.warm, blend);
    let (base_ndcg, new_ndcg) = (ndcg_by_user(&base), ndcg_by_user(&new));
    let differences: Vec<f64> = holdout
        .warm
        .iter()
        .filter_map(|u| Some(new_ndcg.get(u.as_str())? - base_ndcg.get(u.as_str())?))
        .collect();
    let (mean, ci_low, ci_high) =
        paired_bootstrap_ci(&differences, gate.resamples, gate.seed, gate.confidence);
    Ok(Comparison {
        protocol: log.marked.description.clone(),
        method,
        cut: log.marked.now,
        serving_version: serving.models.version().to_string(),
        candidate_version: candidate.models.version().to_string(),
        users: differences.len(),
        serving: metrics::system_metrics(&base, &holdout.stats),
        candidate: metrics::system_metrics(&new, &holdout.stats),
        mean_difference: mean,
        ci_low,
        ci_high,
        confidence: gate.confidence,
        resamples: gate.resamples,
        seed: gate.seed,
        rule: gate.rule,
        promote: gate.rule.passes(mean, ci_low, ci_high, differences.len()),
    })
}

fn ndcg_by_user(lists: &[UserList]) -> HashMap<String, f64> {
    lists
        .iter()
        .map(|l| {
            let ranked: Vec<&str> = l.ranked.iter().map(|i| i.as_str()).collect();
            let rel: HashMap<&str, f64> = l.relevant.iter().map(|i| (i.as_str(), 1.0)).collect();
            (
                l.user.as_str().to_string(),
                flywheel_eval::ranking::ndcg_at_k(&ranked, &rel, 10),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NON_INFERIORITY: PromotionRule = PromotionRule::NonInferiority { margin: 0.01 };
    const SUPERIORITY: PromotionRule = PromotionRule::Superiority { margin: 0.0 };

    #[test]
    fn bootstrap_ci_has_the_sign_of_a_clear_lift() {
        // Every user gains between 0.01 and 0.05: every resample mean is in that range.
        let gains: Vec<f64> = (0..200)
            .map(|i| 0.01 + 0.04 * (i % 7) as f64 / 6.0)
            .collect();
        let (mean, low, high) = paired_bootstrap_ci(&gains, 1000, 1, 0.95);
        assert!(low > 0.0 && low <= mean && mean <= high && high <= 0.05);
        assert!(SUPERIORITY.passes(mean, low, high, 200));
        assert!(NON_INFERIORITY.passes(mean, low, high, 200));
        let losses: Vec<f64> = gains.iter().map(|g| -g).collect();
        let (mean, low, high) = paired_bootstrap_ci(&losses, 1000, 1, 0.95);
        assert!(high < 0.0 && low <= mean);
        assert!(!SUPERIORITY.passes(mean, low, high, 200));
        assert!(!PromotionRule::MeanLiftAbove { lift: 0.0 }.passes(mean, low, high, 200));
        // The losses' CI lies wholly below -0.01: non-inferiority says no too.
        assert!(high < -0.01);
        assert!(!NON_INFERIORITY.passes(mean, low, high, 200));
    }

    #[test]
    fn non_inferiority_accepts_noise_and_superiority_does_not() {
        let noise: Vec<f64> = (0..400)
            .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let (mean, low, high) = paired_bootstrap_ci(&noise, 1000, 9, 0.95);
        assert!(low < 0.0 && high > 0.0);
        assert!(NON_INFERIORITY.passes(mean, low, high, 400));
        assert!(!SUPERIORITY.passes(mean, low, high, 400));
        assert!(
            !NON_INFERIORITY.passes(mean, low, high, 0),
            "nobody compared"
        );
    }

    #[test]
    fn bootstrap_ci_straddles_zero_for_noise_and_is_seeded() {
        let noise: Vec<f64> = (0..400)
            .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let first = paired_bootstrap_ci(&noise, 1000, 9, 0.95);
        assert_eq!(first.0, 0.0);
        assert!(first.1 < 0.0 && first.2 > 0.0);
        assert_eq!(first, paired_bootstrap_ci(&noise, 1000, 9, 0.95));
        assert_eq!(paired_bootstrap_ci(&[], 1000, 9, 0.95), (0.0, 0.0, 0.0));
    }
}
