//! How a logistic model's output becomes a calibrated probability.
//!
//! 1. The model is fitted by weighted log-loss, so on its own training rows the
//!    mean prediction equals the (weighted) positive rate.
//! 2. Optional **Platt scaling** `p = σ(a·z + b)` on the model's margin `z`, fitted
//!    by log-loss on a held-out slice the model did not train on. It corrects
//!    over- or under-confidence (e.g. from strong L2 shrinkage).
//! 3. The **negative-sampling correction** `p' = p / (p + (1 − p)/w)` when the
//!    training rows kept each negative with probability `w`: it maps the rate of
//!    the sampled world back to the rate of the full population.

use serde::{Deserialize, Serialize};

use crate::error::{RankingError, Result};
use crate::linalg::{log_loss_from_margin, sigmoid, solve_with_jitter};

/// Platt scaling: `p = σ(a·z + b)` where `z` is the model's margin (log-odds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlattScaling {
    /// Slope on the margin (1 = keep the model's confidence).
    pub a: f64,
    /// Offset (0 = keep the model's base rate).
    pub b: f64,
}

impl PlattScaling {
    /// The identity mapping.
    pub const IDENTITY: PlattScaling = PlattScaling { a: 1.0, b: 0.0 };

    /// Applies the scaling to a margin and returns a margin.
    pub fn apply(&self, margin: f64) -> f64 {
        self.a * margin + self.b
    }
}

/// What the held-out slice said about calibration, before and after Platt scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HoldoutReport {
    /// Number of held-out rows.
    pub rows: usize,
    /// Weighted positive rate on the held-out rows.
    pub positive_rate: f64,
    /// Mean prediction of the raw model on them.
    pub mean_before: f64,
    /// Mean prediction after Platt scaling.
    pub mean_after: f64,
    /// Weighted mean log-loss of the raw model.
    pub log_loss_before: f64,
    /// Weighted mean log-loss after Platt scaling.
    pub log_loss_after: f64,
}

/// How a [`crate::LogisticRegression`] turns its margin into a probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationInfo {
    /// The rate at which negatives were kept in the training rows (1 = no sampling).
    pub negative_sampling_rate: f64,
    /// Platt scaling fitted on a held-out slice, if any.
    pub platt: Option<PlattScaling>,
    /// The held-out evidence behind `platt`.
    pub holdout: Option<HoldoutReport>,
    /// Weighted positive rate of the training rows (in the sampled world).
    pub train_positive_rate: f64,
    /// Weighted mean raw prediction on the training rows; equals
    /// `train_positive_rate` at the log-loss optimum (the intercept's score equation).
    pub train_mean_prediction: f64,
}

impl CalibrationInfo {
    /// A calibration without Platt scaling.
    pub fn uncalibrated(negative_sampling_rate: f64) -> Self {
        CalibrationInfo {
            negative_sampling_rate,
            platt: None,
            holdout: None,
            train_positive_rate: 0.0,
            train_mean_prediction: 0.0,
        }
    }

    /// Maps a raw margin to the calibrated probability (Platt, then the
    /// negative-sampling correction).
    pub fn probability(&self, margin: f64) -> f64 {
        let margin = self.platt.map_or(margin, |p| p.apply(margin));
        correct_for_negative_sampling(sigmoid(margin), self.negative_sampling_rate)
    }
}

/// The negative-downsampling correction `p / (p + (1 − p)/w)`: a model trained on
/// rows where each negative was kept with probability `w` predicts `p`; the
/// probability in the full population is the returned value. `w` outside `(0, 1]`
/// or not finite is treated as 1 (no correction).
pub fn correct_for_negative_sampling(p: f64, w: f64) -> f64 {
    if !w.is_finite() || w <= 0.0 || w >= 1.0 {
        return p;
    }
    let p = p.clamp(0.0, 1.0);
    let denominator = p + (1.0 - p) / w;
    if denominator > 0.0 {
        p / denominator
    } else {
        0.0
    }
}

/// Fits Platt scaling by Newton's method on (margin, label, weight) triples. A
/// tiny ridge towards the identity keeps the fit finite on separable slices.
pub fn fit_platt(margins: &[f64], labels: &[f64], weights: &[f64]) -> Result<PlattScaling> {
    let total: f64 = weights.iter().sum();
    let positive: f64 = labels.iter().zip(weights).map(|(y, w)| y * w).sum();
    if total.is_nan() || total <= 0.0 || positive <= 0.0 || positive >= total {
        return Err(RankingError::SingleClass {
            what: "Platt scaling",
            rows: margins.len(),
            positives: labels.iter().filter(|y| **y > 0.5).count(),
        });
    }
    let ridge = 1e-6 * total;
    let objective = |s: PlattScaling| -> f64 {
        let loss: f64 = margins
            .iter()
            .zip(labels)
            .zip(weights)
            .map(|((z, y), w)| w * log_loss_from_margin(s.apply(*z), *y))
            .sum();
        loss + 0.5 * ridge * ((s.a - 1.0).powi(2) + s.b.powi(2))
    };
    let mut s = PlattScaling::IDENTITY;
    let mut current = objective(s);
    for _ in 0..100 {
        let (mut g, mut h) = ([ridge * (s.a - 1.0), ridge * s.b], [ridge, 0.0, 0.0, ridge]);
        for ((z, y), w) in margins.iter().zip(labels).zip(weights) {
            let p = sigmoid(s.apply(*z));
            let r = w * (p - y);
            let c = w * p * (1.0 - p);
            g[0] += r * z;
            g[1] += r;
            h[0] += c * z * z;
            h[1] += c * z;
            h[2] += c * z;
            h[3] += c;
        }
        let step = solve_with_jitter(&h, &g).ok_or_else(|| RankingError::NoConvergence {
            what: "Platt scaling",
            reason: "the Hessian is singular".into(),
        })?;
        let (next, value) = line_search(s, &step, current, &objective);
        let moved = (next.a - s.a).abs().max((next.b - s.b).abs());
        s = next;
        current = value;
        if moved < 1e-10 {
            break;
        }
    }
    Ok(s)
}

fn line_search(
    s: PlattScaling,
    step: &[f64],
    current: f64,
    objective: &impl Fn(PlattScaling) -> f64,
) -> (PlattScaling, f64) {
    let mut t = 1.0;
    for _ in 0..40 {
        let next = PlattScaling {
            a: s.a - t * step[0],
            b: s.b - t * step[1],
        };
        let value = objective(next);
        if value <= current {
            return (next, value);
        }
        t *= 0.5;
    }
    (s, current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_sampling_correction_matches_the_formula() {
        // By hand: p = 0.5, w = 0.1 → 0.5 / (0.5 + 0.5/0.1) = 0.5 / 5.5 = 1/11.
        assert!((correct_for_negative_sampling(0.5, 0.1) - 1.0 / 11.0).abs() < 1e-15);
        // In odds: the correction multiplies the odds by w (odds 1 → 0.1 → p = 1/11).
        let p: f64 = 0.3;
        let q = correct_for_negative_sampling(p, 0.25);
        assert!((q / (1.0 - q) - 0.25 * p / (1.0 - p)).abs() < 1e-12);
        assert_eq!(correct_for_negative_sampling(0.3, 1.0), 0.3);
        assert_eq!(correct_for_negative_sampling(0.3, f64::NAN), 0.3);
        assert_eq!(correct_for_negative_sampling(0.0, 0.1), 0.0);
        assert_eq!(correct_for_negative_sampling(1.0, 0.1), 1.0);
    }

    #[test]
    fn platt_recovers_a_known_scaling() {
        // Labels drawn as the exact expected counts of σ(2z − 1): on a grid of
        // margins with fractional labels the optimum is exactly a = 2, b = −1.
        let margins: Vec<f64> = (-20..=20).map(|i| f64::from(i) / 5.0).collect();
        let labels: Vec<f64> = margins.iter().map(|z| sigmoid(2.0 * z - 1.0)).collect();
        let weights = vec![1.0; margins.len()];
        let s = fit_platt(&margins, &labels, &weights).expect("two classes");
        assert!(
            (s.a - 2.0).abs() < 1e-4 && (s.b + 1.0).abs() < 1e-4,
            "{s:?}"
        );
    }

    #[test]
    fn platt_refuses_a_single_class() {
        let err = fit_platt(&[0.0, 1.0], &[1.0, 1.0], &[1.0, 1.0]).unwrap_err();
        assert!(matches!(err, RankingError::SingleClass { .. }));
    }
}
