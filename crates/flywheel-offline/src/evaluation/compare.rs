//! The promotion gate: a candidate model set against the serving one, on the same
//! holdout users, with a paired bootstrap confidence interval of the NDCG@10 lift.
//!
//! Both sets serve the full pipeline (blend, ranker, re-ranking) from the same state
//! as of the split; each warm test user contributes one paired difference
//! `ndcg@10(candidate) − ndcg@10(serving)`. The users are resampled with replacement
//! (seeded), the mean difference of each resample is kept, and the CI is the
//! percentile interval of those means (linear interpolation between order
//! statistics, as `numpy.percentile`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::HashMap;

use super::metrics::{self, SystemMetrics};
use super::{EvalOptions, Holdout, Protocol, SplitLog};
use crate::error::{OfflineError, Result};
use crate::training::Replay;
use flywheel_pipeline::EngineConfig;
use flywheel_pipeline::ModelSet;

/// When a candidate is promoted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionRule {
    /// The CI's lower bound of the NDCG@10 lift is above 0.
    CiAboveZero,
    /// The mean NDCG@10 lift is above this value.
    MeanLiftAbove(f64),
}

/// The gate's rule and its bootstrap.
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

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            rule: PromotionRule::CiAboveZero,
            resamples: 1000,
            seed: 12345,
            confidence: 0.95,
        }
    }
}

/// The verdict of the gate.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The protocol, in words.
    pub protocol: String,
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

/// `numpy.percentile(sorted, q * 100)` with linear interpolation; `sorted` must be non-empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
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
        percentile(&means, alpha),
        percentile(&means, 1.0 - alpha),
    )
}

/// Whether the rule accepts a lift with this mean and CI lower bound.
fn passes(rule: PromotionRule, mean: f64, ci_low: f64, users: usize) -> bool {
    users > 0
        && match rule {
            PromotionRule::CiAboveZero => ci_low > 0.0,
            PromotionRule::MeanLiftAbove(min_lift) => mean > min_lift,
        }
}

/// Scores `serving` and `candidate` on the same holdout users and applies the rule.
/// The models are used as given (not retrained on the training part).
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
    progress("reading the log");
    let log = SplitLog::read(replay, protocol, options)?;
    progress("replaying the state from the training records");
    let holdout = Holdout::prepare(config, &log, options);
    if holdout.warm.is_empty() {
        return Err(OfflineError::NotEnoughData(
            "no test user has training history; the gate has nobody to compare on".into(),
        ));
    }
    progress("scoring both model sets on the same users");
    let blend = (None, true);
    let base = holdout.lists(config, serving, &holdout.warm, blend);
    let new = holdout.lists(config, candidate, &holdout.warm, blend);
    let ndcg = |lists: &[metrics::UserList]| -> HashMap<String, f64> {
        lists
            .iter()
            .map(|l| {
                let ranked: Vec<&str> = l.ranked.iter().map(|i| i.as_str()).collect();
                let rel: HashMap<&str, f64> =
                    l.relevant.iter().map(|i| (i.as_str(), 1.0)).collect();
                (
                    l.user.as_str().to_string(),
                    flywheel_eval::ranking::ndcg_at_k(&ranked, &rel, 10),
                )
            })
            .collect()
    };
    let (base_ndcg, new_ndcg) = (ndcg(&base), ndcg(&new));
    let differences: Vec<f64> = holdout
        .warm
        .iter()
        .filter_map(|u| Some(new_ndcg.get(u.as_str())? - base_ndcg.get(u.as_str())?))
        .collect();
    let (mean, ci_low, ci_high) =
        paired_bootstrap_ci(&differences, gate.resamples, gate.seed, gate.confidence);
    Ok(Comparison {
        protocol: log.marked.description.clone(),
        serving_version: serving.version().to_string(),
        candidate_version: candidate.version().to_string(),
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
        promote: passes(gate.rule, mean, ci_low, differences.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 25) = 1.75; 97.5 → 3.925
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 0.975) - 3.925).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_ci_has_the_sign_of_a_clear_lift() {
        // Every user gains between 0.01 and 0.05: every resample mean is in that range.
        let gains: Vec<f64> = (0..200)
            .map(|i| 0.01 + 0.04 * (i % 7) as f64 / 6.0)
            .collect();
        let (mean, low, high) = paired_bootstrap_ci(&gains, 1000, 1, 0.95);
        assert!(low > 0.0 && low <= mean && mean <= high && high <= 0.05);
        assert!(passes(PromotionRule::CiAboveZero, mean, low, 200));
        let losses: Vec<f64> = gains.iter().map(|g| -g).collect();
        let (mean, low, high) = paired_bootstrap_ci(&losses, 1000, 1, 0.95);
        assert!(high < 0.0 && low <= mean);
        assert!(!passes(PromotionRule::CiAboveZero, mean, low, 200));
        assert!(!passes(PromotionRule::MeanLiftAbove(0.0), mean, low, 200));
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
