//! A small logistic model of P(click) from a served item's ranking features: the
//! calibrated prediction that prediction drift compares with the observed CTR.
//!
//! Why features and not the served score: a score is calibrated only on the lists it
//! was fitted on. Measured on the simulator, a Platt scaling of the fused score fitted
//! on the previous version's served lists predicted 0.076 for the new version's own
//! lists, whose observed CTR was 0.059 (O/E 0.78 with no drift at all): the new
//! version picks the items its own score likes best, and the scaling extrapolates.
//! The features describe the item and the user, whoever picked the item, so the same
//! model is fair to both lists.
//!
//! Fitted by Newton's method on standardised features with a small L2 penalty (no
//! penalty on the intercept, so the mean prediction on the fitted rows equals their
//! positive rate).

use serde::{Deserialize, Serialize};

/// L2 penalty per standardised weight.
const L2: f64 = 1.0;
/// Newton steps (the log-loss is convex; a few steps converge).
const STEPS: usize = 12;

/// Logistic regression on standardised features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtrModel {
    /// Mean of each feature on the fitted rows.
    pub means: Vec<f64>,
    /// Standard deviation of each feature (1 for a constant one).
    pub scales: Vec<f64>,
    /// Weight of each standardised feature.
    pub weights: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl CtrModel {
    /// Fits on `(features, clicked)` rows; `None` without both outcomes or with
    /// feature vectors of different lengths.
    pub fn fit(rows: &[(&[f32], bool)]) -> Option<CtrModel> {
        let width = rows.first()?.0.len();
        let positives = rows.iter().filter(|r| r.1).count();
        if width == 0 || positives == 0 || positives == rows.len() {
            return None;
        }
        if rows.iter().any(|r| r.0.len() != width) {
            return None;
        }
        let n = rows.len() as f64;
        let mut means = vec![0.0; width];
        for (features, _) in rows {
            for (m, x) in means.iter_mut().zip(*features) {
                *m += f64::from(*x) / n;
            }
        }
        let mut scales = vec![0.0; width];
        for (features, _) in rows {
            for ((s, m), x) in scales.iter_mut().zip(&means).zip(*features) {
                *s += (f64::from(*x) - m).powi(2) / n;
            }
        }
        for s in &mut scales {
            *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
        }
        let rate = positives as f64 / n;
        let mut model = CtrModel {
            means,
            scales,
            weights: vec![0.0; width],
            intercept: (rate / (1.0 - rate)).ln(),
        };
        let standardised: Vec<(Vec<f64>, f64)> = rows
            .iter()
            .map(|(features, y)| (model.standardise(features), f64::from(u8::from(*y))))
            .collect();
        for _ in 0..STEPS {
            if !model.newton_step(&standardised) {
                break;
            }
        }
        Some(model)
    }

    fn standardise(&self, features: &[f32]) -> Vec<f64> {
        features
            .iter()
            .zip(self.means.iter().zip(&self.scales))
            .map(|(x, (m, s))| (f64::from(*x) - m) / s)
            .collect()
    }

    /// One Newton step on the penalised log-loss; false when the system is singular.
    fn newton_step(&mut self, rows: &[(Vec<f64>, f64)]) -> bool {
        let d = self.weights.len() + 1;
        let mut hessian = vec![0.0; d * d];
        let mut gradient = vec![0.0; d];
        for (x, y) in rows {
            let p = sigmoid(self.margin(x));
            let w = (p * (1.0 - p)).max(1e-9);
            let row: Vec<f64> = std::iter::once(1.0).chain(x.iter().copied()).collect();
            for i in 0..d {
                gradient[i] += (p - y) * row[i];
                for j in 0..=i {
                    hessian[i * d + j] += w * row[i] * row[j];
                }
            }
        }
        for i in 1..d {
            gradient[i] += L2 * self.weights[i - 1];
            hessian[i * d + i] += L2;
        }
        for i in 0..d {
            for j in 0..i {
                hessian[j * d + i] = hessian[i * d + j];
            }
        }
        let Some(step) = solve_cholesky(&mut hessian, &gradient, d) else {
            return false;
        };
        self.intercept -= step[0];
        for (w, s) in self.weights.iter_mut().zip(&step[1..]) {
            *w -= s;
        }
        step.iter().map(|s| s.abs()).fold(0.0, f64::max) > 1e-9
    }

    fn margin(&self, standardised: &[f64]) -> f64 {
        self.intercept
            + self
                .weights
                .iter()
                .zip(standardised)
                .map(|(w, x)| w * x)
                .sum::<f64>()
    }

    /// P(click) of a served item from its features; `None` when they are missing or of
    /// another length.
    pub fn probability(&self, features: &[f32]) -> Option<f64> {
        if features.len() != self.weights.len() || features.is_empty() {
            return None;
        }
        let p = sigmoid(self.margin(&self.standardise(features)));
        p.is_finite().then_some(p)
    }
}

/// Solves `a x = b` for a symmetric positive definite `a` (row-major, `d × d`,
/// overwritten by its Cholesky factor).
fn solve_cholesky(a: &mut [f64], b: &[f64], d: usize) -> Option<Vec<f64>> {
    for j in 0..d {
        let mut diagonal = a[j * d + j];
        for k in 0..j {
            diagonal -= a[j * d + k] * a[j * d + k];
        }
        if !(diagonal > 0.0 && diagonal.is_finite()) {
            return None;
        }
        let diagonal = diagonal.sqrt();
        a[j * d + j] = diagonal;
        for i in (j + 1)..d {
            let mut v = a[i * d + j];
            for k in 0..j {
                v -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = v / diagonal;
        }
    }
    let mut y = vec![0.0; d];
    for i in 0..d {
        let mut v = b[i];
        for k in 0..i {
            v -= a[i * d + k] * y[k];
        }
        y[i] = v / a[i * d + i];
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        let mut v = y[i];
        for k in (i + 1)..d {
            v -= a[k * d + i] * x[k];
        }
        x[i] = v / a[i * d + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reservoir::SplitMix;

    #[test]
    fn a_fitted_model_recovers_the_click_rate_by_feature() {
        // P(click) = 0.05 when x = 0, 0.3 when x = 1; a constant second feature.
        let mut rng = SplitMix::new(9);
        let mut data = Vec::new();
        for i in 0..20_000 {
            let x = (i % 2) as f32;
            let p = if x > 0.5 { 0.3 } else { 0.05 };
            let clicked = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p;
            data.push(([x, 1.0], clicked));
        }
        let rows: Vec<(&[f32], bool)> = data.iter().map(|(f, y)| (&f[..], *y)).collect();
        let model = CtrModel::fit(&rows).unwrap();
        let low = model.probability(&[0.0, 1.0]).unwrap();
        let high = model.probability(&[1.0, 1.0]).unwrap();
        assert!(
            (low - 0.05).abs() < 0.01 && (high - 0.3).abs() < 0.02,
            "{low} {high}"
        );
        assert_eq!(model.probability(&[1.0]), None);
        assert!(CtrModel::fit(&[(&[1.0][..], true)]).is_none());
    }
}
