//! Off-policy evaluation of a target policy from a logged-bandit CSV.
//!
//! Each row is one (round, position) instance with the logged `action`, the `reward`,
//! the logging propensity `pscore` = π_b(a|x,pos) and the evaluation policy's probability
//! `pi_e` = π_e(a|x,pos) of the same action; optionally `q_hat` (reward model at the logged
//! action) and `dm_term` = Σ_a π_e(a|x,pos)·q̂(x,a,pos). With w = pi_e / pscore (as in Open
//! Bandit Pipeline 0.5.7; reference `shared/reference/check_obd_csv.py`):
//!
//! | name | estimate | standard error |
//! |---|---|---|
//! | `ips` (OBP `ipw`) | mean(w·r) | sd(w·r)/√n, ddof 1 |
//! | `snips` (OBP `snipw`) | Σw·r / Σw | √(Σ(w(r−V))²/(n(n−1))) / mean(w) |
//! | `dm` | mean(dm) | sd(dm)/√n |
//! | `dr` | mean(dm + w(r − q̂)) | sd/√n |
//! | `sndr` | mean(dm) + Σw(r−q̂)/Σw | sd of the linearised influence /√n |
//!
//! The primary CI is normal: estimate ± z·se. An optional percentile bootstrap (seeded)
//! resamples rows. Diagnostics: Kish effective sample size (Σw)²/Σw², max weight, mean weight.

use std::path::Path;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::stats::{mean_and_se, sum, two_sided_z};

mod bootstrap;
mod read;

pub use crate::stats::percentile;
use bootstrap::bootstrap;
pub use read::read_logged_bandit;

/// Logged bandit feedback in columns.
#[derive(Debug, Clone, Default)]
pub struct LoggedBandit {
    /// Rewards.
    pub reward: Vec<f64>,
    /// Logging propensities π_b, in (0, 1].
    pub pscore: Vec<f64>,
    /// Evaluation-policy probabilities π_e of the logged action, in [0, 1].
    pub pi_e: Vec<f64>,
    /// Reward model at the logged action (needs `dm_term` too).
    pub q_hat: Option<Vec<f64>>,
    /// Σ_a π_e(a)·q̂(a) per row.
    pub dm_term: Option<Vec<f64>>,
    /// Number of distinct positions (1 without a `position` column).
    pub n_positions: usize,
}

/// Percentile-bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapOptions {
    /// Number of resamples.
    pub resamples: usize,
    /// RNG seed (`StdRng::seed_from_u64`).
    pub seed: u64,
}

/// Options of off-policy evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpeOptions {
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// Clip importance weights at this value (none by default).
    pub clip_weights: Option<f64>,
    /// Also compute percentile-bootstrap intervals.
    pub bootstrap: Option<BootstrapOptions>,
    /// Warn when the effective sample size falls below this fraction of the rows (or below 100).
    pub min_ess_fraction: f64,
}

impl Default for OpeOptions {
    fn default() -> Self {
        OpeOptions {
            confidence: 0.95,
            clip_weights: None,
            bootstrap: None,
            min_ess_fraction: 0.01,
        }
    }
}

/// One estimator's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimatorResult {
    /// Estimator name: `ips`, `snips`, `dm`, `dr`, `sndr`.
    #[serde(skip)]
    pub name: &'static str,
    /// Point estimate of the evaluation policy's value (mean reward per instance).
    pub estimate: f64,
    /// Standard error.
    pub se: f64,
    /// Lower end of the normal CI.
    pub ci_low: f64,
    /// Upper end of the normal CI.
    pub ci_high: f64,
    /// Percentile-bootstrap CI, when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_ci: Option<[f64; 2]>,
}

/// Importance-weight diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightDiagnostics {
    /// Mean weight (≈ 1 when π_e and π_b share support and propensities are right).
    pub mean_weight: f64,
    /// Largest weight.
    pub max_weight: f64,
    /// Kish effective sample size (Σw)²/Σw².
    pub effective_sample_size: f64,
    /// ESS / n.
    pub ess_fraction: f64,
    /// Rows whose weight was clipped.
    pub clipped: u64,
}

/// Result of off-policy evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpeReport {
    /// Options used.
    pub options: OpeOptions,
    /// Rows (round × position instances).
    pub n: u64,
    /// Distinct positions.
    pub n_positions: usize,
    /// Mean logged reward (the logging policy's on-policy value).
    pub behavior_value: f64,
    /// Weight diagnostics.
    pub weights: WeightDiagnostics,
    /// Estimators in the order ips, snips, dm, dr, sndr.
    #[serde(serialize_with = "estimators_as_map")]
    pub estimators: Vec<EstimatorResult>,
    /// Reasons to distrust the estimates.
    pub warnings: Vec<String>,
}

impl OpeReport {
    /// The result of an estimator by name.
    pub fn estimator(&self, name: &str) -> Option<&EstimatorResult> {
        self.estimators.iter().find(|e| e.name == name)
    }
}

fn estimators_as_map<S: Serializer>(
    estimators: &[EstimatorResult],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(estimators.len()))?;
    for e in estimators {
        map.serialize_entry(e.name, e)?;
    }
    map.end()
}

/// Runs every estimator the columns allow.
pub fn evaluate_policy(log: &LoggedBandit, options: &OpeOptions) -> Result<OpeReport> {
    let n = log.reward.len();
    if n < 2 {
        return Err(EvalError::InvalidArgument(format!(
            "off-policy evaluation needs at least 2 rows, got {n}"
        )));
    }
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(EvalError::InvalidArgument(format!(
            "confidence must lie in (0, 1), got {}",
            options.confidence
        )));
    }
    let clip = options.clip_weights.unwrap_or(f64::INFINITY);
    if clip.is_nan() || clip <= 0.0 {
        return Err(EvalError::InvalidArgument(format!(
            "weight clip must be > 0, got {clip}"
        )));
    }
    let raw: Vec<f64> = log
        .pi_e
        .iter()
        .zip(&log.pscore)
        .map(|(e, b)| e / b)
        .collect();
    let clipped = raw.iter().filter(|w| **w > clip).count() as u64;
    let w: Vec<f64> = raw.iter().map(|w| w.min(clip)).collect();
    let weights = diagnostics(&w, clipped);
    let mut warnings = weight_warnings(&weights, n, options);
    let z = two_sided_z(options.confidence);
    let mut estimators = Vec::new();
    let columns = Columns {
        w: &w,
        r: &log.reward,
        q: log.q_hat.as_deref(),
        dm: log.dm_term.as_deref(),
    };
    let w_sum = sum(w.iter().copied());
    estimators.push(finish(
        "ips",
        mean_and_se(w.iter().zip(&log.reward).map(|(w, r)| w * r)),
        z,
    ));
    if w_sum > 0.0 {
        estimators.push(finish("snips", snips(&columns), z));
    } else {
        warnings.push("all importance weights are 0: the evaluation policy never takes a logged action; SNIPS/SNDR undefined".into());
    }
    if let (Some(q), Some(dm)) = (columns.q, columns.dm) {
        estimators.push(finish("dm", mean_and_se(dm.iter().copied()), z));
        let dr = (0..n).map(|i| dm[i] + w[i] * (log.reward[i] - q[i]));
        estimators.push(finish("dr", mean_and_se(dr), z));
        if w_sum > 0.0 {
            estimators.push(finish("sndr", sndr(&columns, q, dm), z));
        }
    } else {
        warnings.push("no q_hat/dm_term columns: DM, DR and SNDR need a reward model".into());
    }
    if let Some(boot) = options.bootstrap {
        bootstrap(&columns, &mut estimators, boot, options.confidence);
    }
    let behavior_value = sum(log.reward.iter().copied()) / n as f64;
    Ok(OpeReport {
        options: options.clone(),
        n: n as u64,
        n_positions: log.n_positions,
        behavior_value,
        weights,
        estimators,
        warnings,
    })
}

/// Reads a logged-bandit CSV and evaluates it.
pub fn ope_from_file(log: &Path, options: &OpeOptions) -> Result<OpeReport> {
    evaluate_policy(&read_logged_bandit(log)?, options)
}

pub(crate) struct Columns<'a> {
    pub w: &'a [f64],
    pub r: &'a [f64],
    pub q: Option<&'a [f64]>,
    pub dm: Option<&'a [f64]>,
}

fn finish(name: &'static str, (estimate, se): (f64, f64), z: f64) -> EstimatorResult {
    EstimatorResult {
        name,
        estimate,
        se,
        ci_low: estimate - z * se,
        ci_high: estimate + z * se,
        bootstrap_ci: None,
    }
}

fn snips(c: &Columns) -> (f64, f64) {
    let n = c.w.len() as f64;
    let w_sum = sum(c.w.iter().copied());
    let estimate = sum(c.w.iter().zip(c.r).map(|(w, r)| w * r)) / w_sum;
    let ss = sum(c
        .w
        .iter()
        .zip(c.r)
        .map(|(w, r)| (w * (r - estimate)).powi(2)));
    (estimate, (ss / (n * (n - 1.0))).sqrt() / (w_sum / n))
}

fn sndr(c: &Columns, q: &[f64], dm: &[f64]) -> (f64, f64) {
    let n = c.w.len() as f64;
    let w_sum = sum(c.w.iter().copied());
    let correction = sum((0..c.w.len()).map(|i| c.w[i] * (c.r[i] - q[i]))) / w_sum;
    let (mean_w, mean_dm) = (w_sum / n, sum(dm.iter().copied()) / n);
    let influence = (0..c.w.len())
        .map(move |i| (dm[i] - mean_dm) + c.w[i] * (c.r[i] - q[i] - correction) / mean_w);
    let (_, se) = mean_and_se(influence);
    (mean_dm + correction, se)
}

fn diagnostics(w: &[f64], clipped: u64) -> WeightDiagnostics {
    let n = w.len() as f64;
    let total = sum(w.iter().copied());
    let squares = sum(w.iter().map(|w| w * w));
    let ess = if squares > 0.0 {
        total * total / squares
    } else {
        0.0
    };
    WeightDiagnostics {
        mean_weight: total / n,
        max_weight: w.iter().copied().fold(0.0, f64::max),
        effective_sample_size: ess,
        ess_fraction: ess / n,
        clipped,
    }
}

fn weight_warnings(d: &WeightDiagnostics, n: usize, options: &OpeOptions) -> Vec<String> {
    let mut out = Vec::new();
    if d.ess_fraction < options.min_ess_fraction || d.effective_sample_size < 100.0 {
        out.push(format!(
            "effective sample size {:.0} is {:.2}% of {n} rows: a few large weights dominate; IPS/DR are unreliable (clip weights or collect more exploration)",
            d.effective_sample_size,
            100.0 * d.ess_fraction
        ));
    }
    if d.max_weight > 0.05 * d.mean_weight * n as f64 {
        out.push(format!(
            "one row carries more than 5% of the total weight (max weight {:.3})",
            d.max_weight
        ));
    }
    if d.clipped == 0 && (d.mean_weight - 1.0).abs() > 0.1 {
        out.push(format!(
            "mean importance weight is {:.3}, not ≈1: the logging policy may not cover the evaluation policy, or propensities may be wrong",
            d.mean_weight
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LoggedBandit {
        // weights pi_e / pscore = 0.5, 2, 1
        LoggedBandit {
            reward: vec![1.0, 0.0, 1.0],
            pscore: vec![0.5, 0.25, 1.0],
            pi_e: vec![0.25, 0.5, 1.0],
            q_hat: Some(vec![0.5, 0.5, 0.5]),
            dm_term: Some(vec![0.4, 0.4, 0.4]),
            n_positions: 1,
        }
    }

    #[test]
    fn estimators_by_hand() {
        let report = evaluate_policy(&tiny(), &OpeOptions::default()).expect("valid log");
        let ips = report.estimator("ips").expect("ips");
        // w·r = [0.5, 0, 1]: mean 0.5, sd (ddof 1) 0.5, se 0.5/√3
        assert!((ips.estimate - 0.5).abs() < 1e-15);
        assert!((ips.se - 0.5 / 3f64.sqrt()).abs() < 1e-15);
        assert!((ips.ci_high - (0.5 + 1.959963984540054 * ips.se)).abs() < 1e-15);
        // SNIPS = Σw·r / Σw = 1.5 / 3.5
        assert!((report.estimator("snips").expect("snips").estimate - 3.0 / 7.0).abs() < 1e-15);
        // DR = mean(0.4 + w·(r − 0.5)) = 0.4 + (0.25 − 1 + 0.5)/3
        let dr = report.estimator("dr").expect("dr").estimate;
        assert!((dr - (0.4 + (0.25 - 1.0 + 0.5) / 3.0)).abs() < 1e-15);
        // SNDR = 0.4 + Σw(r − q)/Σw = 0.4 − 0.25/3.5
        let sndr = report.estimator("sndr").expect("sndr").estimate;
        assert!((sndr - (0.4 - 0.25 / 3.5)).abs() < 1e-15);
        // ESS = 3.5² / (0.25 + 4 + 1)
        assert!((report.weights.effective_sample_size - 12.25 / 5.25).abs() < 1e-15);
    }

    #[test]
    fn clipping_caps_weights_and_counts_them() {
        let options = OpeOptions {
            clip_weights: Some(1.0),
            ..OpeOptions::default()
        };
        let report = evaluate_policy(&tiny(), &options).expect("valid log");
        assert_eq!(report.weights.clipped, 1);
        assert_eq!(report.weights.max_weight, 1.0);
        // w·r = [0.5, 0, 1] unchanged since the clipped row has reward 0; SNIPS = 1.5 / 2.5
        assert!((report.estimator("snips").expect("snips").estimate - 0.6).abs() < 1e-15);
        assert!(evaluate_policy(
            &tiny(),
            &OpeOptions {
                clip_weights: Some(0.0),
                ..OpeOptions::default()
            }
        )
        .is_err());
    }

    #[test]
    fn zero_weights_leave_self_normalised_estimators_out_with_a_warning() {
        let mut log = tiny();
        log.pi_e = vec![0.0; 3];
        let report = evaluate_policy(&log, &OpeOptions::default()).expect("valid log");
        assert!(report.estimator("snips").is_none() && report.estimator("sndr").is_none());
        assert!(report
            .warnings
            .iter()
            .any(|w| w.contains("SNIPS/SNDR undefined")));
        assert!(report
            .estimators
            .iter()
            .all(|e| e.estimate.is_finite() && e.se.is_finite()));
    }

    #[test]
    fn a_dominant_weight_is_flagged() {
        let n = 1000;
        let mut log = LoggedBandit {
            reward: vec![0.0; n],
            pscore: vec![0.5; n],
            pi_e: vec![0.01; n],
            n_positions: 1,
            ..Default::default()
        };
        log.pscore[0] = 0.0001; // weight 100 among weights 0.02
        log.pi_e[0] = 0.01;
        let report = evaluate_policy(&log, &OpeOptions::default()).expect("valid log");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("effective sample size")),
            "{:?}",
            report.warnings
        );
        assert!(report
            .warnings
            .iter()
            .any(|w| w.contains("5% of the total weight")));
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 25) = 1.75; 97.5 -> 3.925
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 0.25) - 1.75).abs() < 1e-15);
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 0.975) - 3.925).abs() < 1e-12);
    }
}
