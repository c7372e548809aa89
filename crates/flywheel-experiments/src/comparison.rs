//! The shape every A/B test returns, and the sample moments the tests are built on.

use serde::Serialize;

use crate::error::{ExperimentError, Result};

/// The outcome of comparing treatment with control on one metric.
///
/// `effect` is always `treatment − control` on the metric's own scale;
/// `relative_lift` is `treatment / control − 1` (absent when the control value is 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// The control arm's value (mean, rate or ratio).
    pub control: f64,
    /// The treatment arm's value.
    pub treatment: f64,
    /// `treatment − control` (or the relative lift, for tests run on the relative scale).
    pub effect: f64,
    /// `treatment / control − 1`; `None` when the control value is zero.
    pub relative_lift: Option<f64>,
    /// Standard error of `effect` used for the confidence interval.
    pub standard_error: f64,
    /// Test statistic (z or t).
    pub statistic: f64,
    /// Degrees of freedom for t-based tests; `None` for normal (z) tests.
    pub degrees_of_freedom: Option<f64>,
    /// Lower end of the `1 − alpha` confidence interval for `effect`.
    pub ci_low: f64,
    /// Upper end of the confidence interval.
    pub ci_high: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// `treatment / control − 1`, or `None` when the control is zero or either is not finite.
pub fn relative_lift(control: f64, treatment: f64) -> Option<f64> {
    let lift = treatment / control - 1.0;
    (control != 0.0 && lift.is_finite()).then_some(lift)
}

/// Count, mean and sample variance (ddof 1) of one arm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ArmMoments {
    /// Number of units (users).
    pub n: f64,
    /// Sample mean.
    pub mean: f64,
    /// Sample variance with ddof 1.
    pub variance: f64,
}

impl ArmMoments {
    /// Two-pass moments of `values`; errors when fewer than two values or any is not finite.
    pub fn from_values(values: &[f64], arm: &str) -> Result<Self> {
        check_arm(values, arm)?;
        let n = values.len() as f64;
        let mean = mean(values);
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Ok(Self { n, mean, variance })
    }
}

/// Errors unless `values` has at least two finite entries.
pub fn check_arm(values: &[f64], arm: &str) -> Result<()> {
    if values.len() < 2 {
        return Err(ExperimentError::InvalidInput(format!(
            "the {arm} arm has {} users; at least 2 are needed for a variance",
            values.len()
        )));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(ExperimentError::InvalidInput(format!(
            "the {arm} arm contains a non-finite value"
        )));
    }
    Ok(())
}

/// Arithmetic mean (callers guarantee a non-empty slice).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample covariance (ddof 1) of two equally long slices of length ≥ 2.
pub fn covariance(x: &[f64], y: &[f64]) -> f64 {
    let (mx, my) = (mean(x), mean(y));
    let sum: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    sum / (x.len() as f64 - 1.0)
}

/// Sample variance (ddof 1) of a slice of length ≥ 2.
pub fn variance(x: &[f64]) -> f64 {
    covariance(x, x)
}

/// Checks `alpha` lies in (0, 1).
pub fn check_alpha(alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(ExperimentError::InvalidInput(format!(
            "alpha {alpha} must lie strictly between 0 and 1 (0.05 for 95% intervals)"
        )))
    }
}

/// True when `x` is a finite number greater than zero (false for NaN).
pub fn is_positive(x: f64) -> bool {
    x > 0.0 && x.is_finite()
}
