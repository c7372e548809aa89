//! CUPED (Deng et al. 2013): subtract the part of the metric a pre-period covariate
//! predicts, with θ = cov(Y, X) / var(X) pooled over both arms, then run Welch's test on
//! the adjusted metric. The OLS ANCOVA `Y ~ T + (X − X̄)` with HC1 errors is reported as
//! a cross-check (statsmodels `OLS(...).fit(cov_type="HC1")`).

use serde::Serialize;

use crate::classic::welch_test;
use crate::comparison::{check_arm, covariance, mean, variance, Comparison};
use crate::dist::normal_two_sided_p;
use crate::error::{ExperimentError, Result};

/// One arm's per-user metric `Y` and pre-period covariate `X` (same length).
#[derive(Debug, Clone, Copy)]
pub struct CupedArm<'a> {
    /// The experiment-period metric per user.
    pub metric: &'a [f64],
    /// The pre-period covariate per user.
    pub covariate: &'a [f64],
}

/// CUPED result: the raw and adjusted Welch tests and how much variance was removed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CupedResult {
    /// θ = cov(Y, X) / var(X) over all users of both arms.
    pub theta: f64,
    /// Pearson correlation of Y and X over all users.
    pub corr_y_x: f64,
    /// Welch's test on the raw metric.
    pub unadjusted: Comparison,
    /// Welch's test on `Y − θ (X − X̄)`.
    pub adjusted: Comparison,
    /// `1 − var(Y_adj) / var(Y)` over all users.
    pub variance_reduction: f64,
    /// Adjusted SE divided by raw SE.
    pub se_ratio_cuped_over_raw: f64,
    /// OLS ANCOVA treatment effect with HC1 robust SE (normal p-value).
    pub ols_ancova_hc1: OlsEffect,
}

/// A regression coefficient with its robust standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OlsEffect {
    /// Coefficient of the treatment indicator.
    pub effect: f64,
    /// HC1 standard error.
    pub standard_error: f64,
    /// Two-sided normal p-value.
    pub p_value: f64,
}

/// Runs CUPED with θ pooled over both arms.
pub fn cuped_test(
    control: &CupedArm<'_>,
    treatment: &CupedArm<'_>,
    alpha: f64,
) -> Result<CupedResult> {
    check_cuped_arm(control, "control")?;
    check_cuped_arm(treatment, "treatment")?;
    let y: Vec<f64> = [control.metric, treatment.metric].concat();
    let x: Vec<f64> = [control.covariate, treatment.covariate].concat();
    let var_x = variance(&x);
    if !crate::comparison::is_positive(var_x) {
        return Err(ExperimentError::Undefined(
            "the pre-period covariate is constant: CUPED has nothing to adjust with".into(),
        ));
    }
    let theta = covariance(&y, &x) / var_x;
    let x_mean = mean(&x);
    let adjust = |arm: &CupedArm<'_>| -> Vec<f64> {
        arm.metric
            .iter()
            .zip(arm.covariate)
            .map(|(y, x)| y - theta * (x - x_mean))
            .collect()
    };
    let (adj_c, adj_t) = (adjust(control), adjust(treatment));
    let unadjusted = welch_test(control.metric, treatment.metric, alpha)?;
    let adjusted = welch_test(&adj_c, &adj_t, alpha)?;
    let var_y = variance(&y);
    let y_adj = [adj_c.as_slice(), adj_t.as_slice()].concat();
    Ok(CupedResult {
        theta,
        corr_y_x: covariance(&y, &x) / (var_y * var_x).sqrt(),
        unadjusted,
        adjusted,
        variance_reduction: 1.0 - variance(&y_adj) / var_y,
        se_ratio_cuped_over_raw: adjusted.standard_error / unadjusted.standard_error,
        ols_ancova_hc1: ols_hc1(&y, &x, x_mean, control.metric.len())?,
    })
}

fn check_cuped_arm(arm: &CupedArm<'_>, name: &str) -> Result<()> {
    if arm.metric.len() != arm.covariate.len() {
        return Err(ExperimentError::InvalidInput(format!(
            "the {name} arm has {} metric values but {} covariate values",
            arm.metric.len(),
            arm.covariate.len()
        )));
    }
    check_arm(arm.metric, name)?;
    check_arm(arm.covariate, name)
}

/// OLS of `y` on `[1, T, x − x̄]` (the first `n_control` rows are control) with HC1 errors.
fn ols_hc1(y: &[f64], x: &[f64], x_mean: f64, n_control: usize) -> Result<OlsEffect> {
    let row = |i: usize| [1.0, if i < n_control { 0.0 } else { 1.0 }, x[i] - x_mean];
    let mut xtx = [[0.0; 3]; 3];
    let mut xty = [0.0; 3];
    for (i, yi) in y.iter().enumerate() {
        let r = row(i);
        for a in 0..3 {
            xty[a] += r[a] * yi;
            for b in 0..3 {
                xtx[a][b] += r[a] * r[b];
            }
        }
    }
    let inv = invert3(&xtx)
        .ok_or_else(|| ExperimentError::Undefined("the ANCOVA design matrix is singular".into()))?;
    let beta: Vec<f64> = (0..3)
        .map(|a| (0..3).map(|b| inv[a][b] * xty[b]).sum())
        .collect();
    let mut meat = [[0.0; 3]; 3];
    for (i, yi) in y.iter().enumerate() {
        let r = row(i);
        let e = yi - (0..3).map(|a| beta[a] * r[a]).sum::<f64>();
        for a in 0..3 {
            for b in 0..3 {
                meat[a][b] += e * e * r[a] * r[b];
            }
        }
    }
    // Sandwich element [1][1]: inv[1]·meat·inv[·][1], scaled by n / (n − k).
    let n = y.len() as f64;
    let mut var_t = 0.0;
    for a in 0..3 {
        for b in 0..3 {
            var_t += inv[1][a] * meat[a][b] * inv[b][1];
        }
    }
    let se = (var_t * n / (n - 3.0)).sqrt();
    Ok(OlsEffect {
        effect: beta[1],
        standard_error: se,
        p_value: normal_two_sided_p(beta[1] / se),
    })
}

fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let cof =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let c = [
        [cof(1, 2, 1, 2), -cof(1, 2, 0, 2), cof(1, 2, 0, 1)],
        [-cof(0, 2, 1, 2), cof(0, 2, 0, 2), -cof(0, 2, 0, 1)],
        [cof(0, 1, 1, 2), -cof(0, 1, 0, 2), cof(0, 1, 0, 1)],
    ];
    let det = m[0][0] * c[0][0] + m[0][1] * c[0][1] + m[0][2] * c[0][2];
    if det == 0.0 || !det.is_finite() {
        return None;
    }
    // inverse = adjugate / det, adjugate = transpose of the cofactor matrix.
    let mut inv = [[0.0; 3]; 3];
    for (a, row) in inv.iter_mut().enumerate() {
        for (b, v) in row.iter_mut().enumerate() {
            *v = c[b][a] / det;
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_covariate_is_an_error() {
        let arm = CupedArm {
            metric: &[1.0, 2.0, 3.0],
            covariate: &[5.0, 5.0, 5.0],
        };
        let err = cuped_test(&arm, &arm, 0.05).expect_err("undefined");
        assert!(err.to_string().contains("constant"));
    }

    #[test]
    fn perfectly_predictive_covariate_removes_all_variance_but_the_effect() {
        // Y = X + 1 in treatment, Y = X in control: the covariate explains
        // nearly all within-arm variance.
        let c = CupedArm {
            metric: &[1.0, 2.0, 3.0, 4.0],
            covariate: &[1.0, 2.0, 3.0, 4.0],
        };
        let t = CupedArm {
            metric: &[2.0, 3.0, 4.0, 5.5],
            covariate: &[1.0, 2.0, 3.0, 4.0],
        };
        let r = cuped_test(&c, &t, 0.05).expect("defined");
        assert!(r.variance_reduction > 0.8, "{r:?}");
        assert!(r.se_ratio_cuped_over_raw < 0.2, "{r:?}");
    }
}
