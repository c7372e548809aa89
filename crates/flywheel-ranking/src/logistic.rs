//! Logistic regression, the baseline ranker: standardised features, L2 penalty,
//! fitted by Newton's method (IRLS) with a backtracking line search. Newton is
//! exact and deterministic: the same rows give the same model, bit for bit.

use serde::{Deserialize, Serialize};

use crate::calibration::{fit_platt, CalibrationInfo, HoldoutReport};
use crate::error::{RankingError, Result};
use crate::features::FeatureSchema;
use crate::linalg::{log_loss_from_margin, sigmoid, solve_with_jitter};
use crate::params::{validate_rows, LrParams, TrainingRow};

/// A trained logistic-regression model, with the schema it was trained on and
/// its calibration. Serialise it with serde to store it in the model registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    schema: FeatureSchema,
    /// Per-feature weighted mean of the training rows.
    means: Vec<f64>,
    /// Per-feature weighted standard deviation (1 for constant features).
    scales: Vec<f64>,
    /// Intercept in the standardised space.
    intercept: f64,
    /// Coefficients on the standardised features.
    weights: Vec<f64>,
    calibration: CalibrationInfo,
    /// Newton iterations used.
    iterations: usize,
}

/// Rows seen through the standardisation of one training run.
struct Design<'a> {
    rows: Vec<&'a TrainingRow>,
    means: Vec<f64>,
    scales: Vec<f64>,
}

impl Design<'_> {
    fn standardised(&self, row: &TrainingRow, out: &mut Vec<f64>) {
        out.clear();
        out.push(1.0);
        let features = row.features.iter().zip(&self.means).zip(&self.scales);
        out.extend(features.map(|((x, m), s)| (f64::from(*x) - m) / s));
    }

    /// Penalised log-loss of the parameters `beta = [intercept, weights…]`.
    fn objective(&self, beta: &[f64], l2: f64) -> f64 {
        let mut x = Vec::with_capacity(beta.len());
        let mut loss = 0.0;
        for row in &self.rows {
            self.standardised(row, &mut x);
            let z: f64 = x.iter().zip(beta).map(|(a, b)| a * b).sum();
            loss += f64::from(row.weight) * log_loss_from_margin(z, f64::from(row.label));
        }
        loss + 0.5 * l2 * beta[1..].iter().map(|b| b * b).sum::<f64>()
    }

    /// Gradient and Hessian (row-major) of the penalised log-loss.
    fn gradient_hessian(&self, beta: &[f64], l2: f64) -> (Vec<f64>, Vec<f64>) {
        let d = beta.len();
        let mut g = vec![0.0; d];
        let mut h = vec![0.0; d * d];
        let mut x = Vec::with_capacity(d);
        for row in &self.rows {
            self.standardised(row, &mut x);
            let z: f64 = x.iter().zip(beta).map(|(a, b)| a * b).sum();
            let p = sigmoid(z);
            let w = f64::from(row.weight);
            let (r, c) = (w * (p - f64::from(row.label)), w * p * (1.0 - p));
            for i in 0..d {
                g[i] += r * x[i];
                let cx = c * x[i];
                for j in 0..=i {
                    h[i * d + j] += cx * x[j];
                }
            }
        }
        for i in 1..d {
            g[i] += l2 * beta[i];
            h[i * d + i] += l2;
        }
        for i in 0..d {
            for j in 0..i {
                h[j * d + i] = h[i * d + j];
            }
        }
        (g, h)
    }
}

fn weighted_moments(rows: &[&TrainingRow], width: usize) -> (Vec<f64>, Vec<f64>) {
    let total: f64 = rows.iter().map(|r| f64::from(r.weight)).sum();
    let mut means = vec![0.0; width];
    for r in rows {
        for (m, x) in means.iter_mut().zip(&r.features) {
            *m += f64::from(r.weight) * f64::from(*x) / total;
        }
    }
    let mut vars = vec![0.0; width];
    for r in rows {
        for ((v, x), m) in vars.iter_mut().zip(&r.features).zip(&means) {
            *v += f64::from(r.weight) * (f64::from(*x) - m).powi(2) / total;
        }
    }
    let scales = vars
        .into_iter()
        .map(|v| if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 })
        .collect();
    (means, scales)
}

fn check_two_classes(rows: &[&TrainingRow], what: &'static str) -> Result<()> {
    let total: f64 = rows.iter().map(|r| f64::from(r.weight)).sum();
    let positive: f64 = rows.iter().map(|r| f64::from(r.weight * r.label)).sum();
    if total.is_nan() || total <= 0.0 || positive <= 0.0 || positive >= total {
        return Err(RankingError::SingleClass {
            what,
            rows: rows.len(),
            positives: rows.iter().filter(|r| r.label > 0.5).count(),
        });
    }
    Ok(())
}

/// Newton's method with step halving; returns `[intercept, weights…]` and the iterations.
fn newton(design: &Design, params: &LrParams) -> Result<(Vec<f64>, usize)> {
    let d = design.means.len() + 1;
    let mut beta = vec![0.0; d];
    let total: f64 = design.rows.iter().map(|r| f64::from(r.weight)).sum();
    let positive: f64 = design
        .rows
        .iter()
        .map(|r| f64::from(r.weight * r.label))
        .sum();
    let rate = positive / total;
    beta[0] = (rate / (1.0 - rate)).ln();
    let mut current = design.objective(&beta, params.l2);
    for iteration in 1..=params.max_iterations {
        let (g, h) = design.gradient_hessian(&beta, params.l2);
        let step = solve_with_jitter(&h, &g).ok_or_else(|| RankingError::NoConvergence {
            what: "logistic regression",
            reason: format!("the Hessian is singular at iteration {iteration}"),
        })?;
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let next: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b - t * s).collect();
            let value = design.objective(&next, params.l2);
            if value <= current {
                accepted = Some((next, value));
                break;
            }
            t *= 0.5;
        }
        let Some((next, value)) = accepted else {
            return Ok((beta, iteration));
        };
        let moved = next
            .iter()
            .zip(&beta)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        beta = next;
        current = value;
        if moved < params.tolerance {
            return Ok((beta, iteration));
        }
    }
    Ok((beta, params.max_iterations))
}

impl LogisticRegression {
    /// Trains on rows built by [`crate::featurize`] (schema [`FeatureSchema::current`]).
    pub fn train(rows: &[TrainingRow], params: &LrParams) -> Result<LogisticRegression> {
        Self::train_with_schema(rows, params, FeatureSchema::current())
    }

    /// Trains on rows of any schema (rows built elsewhere, tests).
    pub fn train_with_schema(
        rows: &[TrainingRow],
        params: &LrParams,
        schema: FeatureSchema,
    ) -> Result<LogisticRegression> {
        params.validate()?;
        validate_rows(rows, &schema)?;
        let (train_idx, holdout_idx) = params.split(rows.len());
        let train_rows: Vec<&TrainingRow> = train_idx.iter().map(|&i| &rows[i]).collect();
        check_two_classes(&train_rows, "training")?;
        let (means, scales) = weighted_moments(&train_rows, schema.names.len());
        let design = Design {
            rows: train_rows,
            means,
            scales,
        };
        let (beta, iterations) = newton(&design, params)?;
        let mut model = LogisticRegression {
            schema,
            means: design.means.clone(),
            scales: design.scales.clone(),
            intercept: beta[0],
            weights: beta[1..].to_vec(),
            calibration: CalibrationInfo::uncalibrated(params.negative_sampling_rate),
            iterations,
        };
        let (rate, mean) = model.rate_and_mean(&design.rows);
        model.calibration.train_positive_rate = rate;
        model.calibration.train_mean_prediction = mean;
        if !holdout_idx.is_empty() {
            let holdout: Vec<TrainingRow> = holdout_idx.iter().map(|&i| rows[i].clone()).collect();
            model.fit_platt(&holdout)?;
        }
        Ok(model)
    }

    /// Weighted positive rate and weighted mean raw prediction over `rows`.
    fn rate_and_mean(&self, rows: &[&TrainingRow]) -> (f64, f64) {
        let total: f64 = rows
            .iter()
            .map(|r| f64::from(r.weight))
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        let rate = rows
            .iter()
            .map(|r| f64::from(r.weight * r.label))
            .sum::<f64>()
            / total;
        let mean = rows
            .iter()
            .map(|r| f64::from(r.weight) * sigmoid(self.margin(&r.features)))
            .sum::<f64>();
        (rate, mean / total)
    }

    /// Fits Platt scaling on rows the model did not train on (replacing any
    /// previous scaling) and records the held-out evidence.
    pub fn fit_platt(&mut self, holdout: &[TrainingRow]) -> Result<()> {
        validate_rows(holdout, &self.schema)?;
        let margins: Vec<f64> = holdout.iter().map(|r| self.margin(&r.features)).collect();
        let labels: Vec<f64> = holdout.iter().map(|r| f64::from(r.label)).collect();
        let weights: Vec<f64> = holdout.iter().map(|r| f64::from(r.weight)).collect();
        let platt = fit_platt(&margins, &labels, &weights)?;
        let total: f64 = weights.iter().sum();
        let mean_of = |f: &dyn Fn(f64, f64) -> f64| -> f64 {
            margins
                .iter()
                .zip(&labels)
                .zip(&weights)
                .map(|((z, y), w)| w * f(*z, *y))
                .sum::<f64>()
                / total
        };
        self.calibration.holdout = Some(HoldoutReport {
            rows: holdout.len(),
            positive_rate: mean_of(&|_, y| y),
            mean_before: mean_of(&|z, _| sigmoid(z)),
            mean_after: mean_of(&|z, _| sigmoid(platt.apply(z))),
            log_loss_before: mean_of(&|z, y| log_loss_from_margin(z, y)),
            log_loss_after: mean_of(&|z, y| log_loss_from_margin(platt.apply(z), y)),
        });
        self.calibration.platt = Some(platt);
        Ok(())
    }

    /// The raw margin (log-odds) before calibration. Features beyond the schema
    /// are ignored; missing or non-finite ones count as the training mean.
    pub fn margin(&self, features: &[f32]) -> f64 {
        let terms = features
            .iter()
            .zip(&self.means)
            .zip(&self.scales)
            .zip(&self.weights);
        let z = self.intercept
            + terms
                .filter(|(((x, _), _), _)| x.is_finite())
                .map(|(((x, m), s), w)| w * (f64::from(*x) - m) / s)
                .sum::<f64>();
        if z.is_finite() {
            z
        } else {
            0.0
        }
    }

    /// The calibrated probability of a positive for one feature vector.
    pub fn predict(&self, features: &[f32]) -> f64 {
        self.calibration.probability(self.margin(features))
    }

    /// How the output is calibrated.
    pub fn calibration(&self) -> &CalibrationInfo {
        &self.calibration
    }

    /// The schema (version and names) the model was trained on.
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// Whether feature vectors from today's [`crate::featurize`] fit this model.
    pub fn accepts_current_features(&self) -> bool {
        self.schema.is_current()
    }

    /// The intercept in original feature units (raw margin at all features 0).
    pub fn intercept(&self) -> f64 {
        let shift: f64 = self
            .weights
            .iter()
            .zip(&self.means)
            .zip(&self.scales)
            .map(|((w, m), s)| w * m / s)
            .sum();
        self.intercept - shift
    }

    /// The coefficients in original feature units, in schema order.
    pub fn coefficients(&self) -> Vec<f64> {
        self.weights
            .iter()
            .zip(&self.scales)
            .map(|(w, s)| w / s)
            .collect()
    }

    /// The coefficients on standardised features (comparable importances), in schema order.
    pub fn standardized_coefficients(&self) -> &[f64] {
        &self.weights
    }

    /// The weighted means and standard deviations used to standardise features.
    pub fn standardization(&self) -> (&[f64], &[f64]) {
        (&self.means, &self.scales)
    }

    /// Newton iterations the fit used.
    pub fn iterations(&self) -> usize {
        self.iterations
    }
}
