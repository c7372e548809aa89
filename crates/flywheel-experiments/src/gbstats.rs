//! GrowthBook's frequentist engine (gbstats 0.8.0) re-implemented on summary statistics:
//! the Welch-style t-test on absolute or relative differences, regression adjustment
//! (CUPED) with θ pooled over both arms, and the sequential always-valid interval.
//!
//! The sequential test is the asymptotic confidence sequence of Waudby-Smith et al.
//! (arXiv:2103.06476v7): with `N = n_c + n_t`, `ρ = sqrt((−2 ln α + ln(−2 ln α + 1)) / N*)`
//! (eq. 161; `N*` the tuning parameter, 5000 by default), `s² = Var(estimate) · N`,
//! half-width `sqrt(s²) · sqrt(2 (Nρ² + 1) ln(sqrt(Nρ² + 1) / α) / (Nρ)²)` (eq. 9) and
//! p-value `min(1, sqrt(Nρ² + 1) · exp(−ρ² N d² / Var / (2 (Nρ² + 1))))` (eq. 155).

use serde::{Deserialize, Serialize};

use crate::comparison::{check_alpha, relative_lift, ArmMoments, Comparison};
use crate::cuped::CupedArm;
use crate::dist::{t_ppf, t_two_sided_p};
use crate::error::{ExperimentError, Result};
use crate::ratio::{ratio_and_variance, RatioArm};

/// The default sequential tuning parameter `N*` of gbstats.
pub const DEFAULT_SEQUENTIAL_TUNING: f64 = 5000.0;

/// Whether a test reports `treatment − control` or `(treatment − control) / control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DifferenceType {
    /// `treatment − control`.
    Absolute,
    /// `(treatment − control) / control` (delta-method variance).
    Relative,
}

/// One arm as gbstats summarises it: units, per-unit value and per-unit variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GbArm {
    /// Number of units (users).
    pub n: f64,
    /// The arm's value: a mean, a proportion or a ratio.
    pub value: f64,
    /// Per-unit variance of `value` (so `variance / n` is the estimate's variance).
    pub variance: f64,
}

impl GbArm {
    /// `SampleMeanStatistic`: mean and ddof-1 variance of per-user values.
    pub fn sample_mean(values: &[f64], arm: &str) -> Result<Self> {
        let m = ArmMoments::from_values(values, arm)?;
        Ok(Self {
            n: m.n,
            value: m.mean,
            variance: m.variance,
        })
    }

    /// `ProportionStatistic`: rate `p` with per-unit variance `p (1 − p)`.
    pub fn proportion(successes: u64, n: u64) -> Result<Self> {
        if n == 0 || successes > n {
            return Err(ExperimentError::InvalidInput(format!(
                "a proportion needs 0 <= successes ({successes}) <= n ({n}) and n > 0"
            )));
        }
        let p = successes as f64 / n as f64;
        Ok(Self {
            n: n as f64,
            value: p,
            variance: p * (1.0 - p),
        })
    }

    /// `RatioStatistic`: Σnum/Σden with the delta-method per-unit variance.
    pub fn ratio(arm: &RatioArm<'_>, name: &str) -> Result<Self> {
        let (ratio, var) = ratio_and_variance(arm, name)?;
        let n = arm.numerators.len() as f64;
        Ok(Self {
            n,
            value: ratio,
            variance: var * n,
        })
    }
}

/// Configuration of the sequential test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialConfig {
    /// Significance level (0.05 for 95% intervals).
    pub alpha: f64,
    /// Tuning parameter `N*`: the total sample size where the interval is tightest.
    pub tuning_parameter: f64,
}

impl Default for SequentialConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            tuning_parameter: DEFAULT_SEQUENTIAL_TUNING,
        }
    }
}

/// Point estimate, its variance and the Welch–Satterthwaite degrees of freedom.
struct Moments {
    control: f64,
    treatment: f64,
    estimate: f64,
    variance: f64,
    dof: f64,
    n_total: f64,
}

fn moments(a: &GbArm, b: &GbArm, difference: DifferenceType) -> Result<Moments> {
    let (estimate, variance) = match difference {
        DifferenceType::Absolute => (b.value - a.value, a.variance / a.n + b.variance / b.n),
        DifferenceType::Relative => {
            nonzero_control(a.value)?;
            (
                (b.value - a.value) / a.value,
                b.variance / (a.value.powi(2) * b.n)
                    + a.variance * b.value.powi(2) / (a.value.powi(4) * a.n),
            )
        }
    };
    Ok(Moments {
        control: a.value,
        treatment: b.value,
        estimate,
        variance,
        dof: welch_dof(a, b),
        n_total: a.n + b.n,
    })
}

fn welch_dof(a: &GbArm, b: &GbArm) -> f64 {
    (b.variance / b.n + a.variance / a.n).powi(2)
        / (b.variance.powi(2) / (b.n.powi(2) * (b.n - 1.0))
            + a.variance.powi(2) / (a.n.powi(2) * (a.n - 1.0)))
}

fn nonzero_control(value: f64) -> Result<()> {
    if value == 0.0 {
        return Err(ExperimentError::Undefined(
            "the control value is zero: a relative difference is undefined".into(),
        ));
    }
    Ok(())
}

/// gbstats `TwoSidedTTest`: t interval and p-value with Welch degrees of freedom.
pub fn gb_ttest(
    a: &GbArm,
    b: &GbArm,
    difference: DifferenceType,
    alpha: f64,
) -> Result<Comparison> {
    finish_t(moments(a, b, difference)?, alpha)
}

/// gbstats `SequentialTwoSidedTTest`: the always-valid interval and p-value.
pub fn gb_sequential_ttest(
    a: &GbArm,
    b: &GbArm,
    difference: DifferenceType,
    config: &SequentialConfig,
) -> Result<Comparison> {
    finish_sequential(moments(a, b, difference)?, config)
}

/// gbstats `TwoSidedTTest` on `RegressionAdjustedStatistic` arms (CUPED), θ pooled over
/// both arms; the relative effect divides by the *unadjusted* control mean.
pub fn gb_cuped_ttest(
    control: &CupedArm<'_>,
    treatment: &CupedArm<'_>,
    difference: DifferenceType,
    alpha: f64,
) -> Result<Comparison> {
    let a = RegressionArm::new(control, "control")?;
    let b = RegressionArm::new(treatment, "treatment")?;
    let theta = pooled_theta(control, treatment)?;
    let adj = |r: &RegressionArm| GbArm {
        n: r.n,
        value: r.post_mean - theta * r.pre_mean,
        variance: r.post_var + theta * theta * r.pre_var - 2.0 * theta * r.cov,
    };
    let (adj_a, adj_b) = (adj(&a), adj(&b));
    let mut m = moments(&adj_a, &adj_b, DifferenceType::Absolute)?;
    m.control = a.post_mean;
    m.treatment = b.post_mean;
    if difference == DifferenceType::Relative {
        nonzero_control(a.post_mean)?;
        m.estimate /= a.post_mean;
        m.variance = relative_cuped_variance(&a, &b, &adj_a, &adj_b);
    }
    finish_t(m, alpha)
}

struct RegressionArm {
    n: f64,
    post_mean: f64,
    post_var: f64,
    pre_mean: f64,
    pre_var: f64,
    cov: f64,
}

impl RegressionArm {
    fn new(arm: &CupedArm<'_>, name: &str) -> Result<Self> {
        if arm.metric.len() != arm.covariate.len() {
            return Err(ExperimentError::InvalidInput(format!(
                "the {name} arm has metric and covariate of different lengths"
            )));
        }
        let post = ArmMoments::from_values(arm.metric, name)?;
        let pre = ArmMoments::from_values(arm.covariate, name)?;
        Ok(Self {
            n: post.n,
            post_mean: post.mean,
            post_var: post.variance,
            pre_mean: pre.mean,
            pre_var: pre.variance,
            cov: crate::comparison::covariance(arm.metric, arm.covariate),
        })
    }
}

fn pooled_theta(control: &CupedArm<'_>, treatment: &CupedArm<'_>) -> Result<f64> {
    let y = [control.metric, treatment.metric].concat();
    let x = [control.covariate, treatment.covariate].concat();
    let var_x = crate::comparison::variance(&x);
    if !crate::comparison::is_positive(var_x) {
        return Err(ExperimentError::Undefined(
            "the pre-period covariate is constant: CUPED has nothing to adjust with".into(),
        ));
    }
    Ok(crate::comparison::covariance(&y, &x) / var_x)
}

/// gbstats 0.8.0 relative variance for regression-adjusted arms: the delta method of
/// a ratio of means with the *adjusted* per-unit variances and the *unadjusted* means.
fn relative_cuped_variance(
    a: &RegressionArm,
    b: &RegressionArm,
    adj_a: &GbArm,
    adj_b: &GbArm,
) -> f64 {
    adj_b.variance / (a.post_mean.powi(2) * b.n)
        + adj_a.variance * b.post_mean.powi(2) / (a.post_mean.powi(4) * a.n)
}

fn finish_t(m: Moments, alpha: f64) -> Result<Comparison> {
    check_alpha(alpha)?;
    let se = positive_se(m.variance)?;
    let t = m.estimate / se;
    let half = t_ppf(1.0 - alpha / 2.0, m.dof)? * se;
    Ok(Comparison {
        control: m.control,
        treatment: m.treatment,
        effect: m.estimate,
        relative_lift: relative_lift(m.control, m.treatment),
        standard_error: se,
        statistic: t,
        degrees_of_freedom: Some(m.dof),
        ci_low: m.estimate - half,
        ci_high: m.estimate + half,
        p_value: t_two_sided_p(t, m.dof)?,
    })
}

/// `ρ` of eq. 161 for `alpha` and tuning parameter `N*`.
pub fn sequential_rho(alpha: f64, tuning_parameter: f64) -> Result<f64> {
    check_alpha(alpha)?;
    if !(tuning_parameter > 0.0 && tuning_parameter.is_finite()) {
        return Err(ExperimentError::InvalidInput(format!(
            "sequential tuning parameter {tuning_parameter} must be positive (5000 by default)"
        )));
    }
    let l = alpha.ln();
    Ok(((-2.0 * l + (-2.0 * l + 1.0).ln()) / tuning_parameter).sqrt())
}

fn finish_sequential(m: Moments, config: &SequentialConfig) -> Result<Comparison> {
    let rho = sequential_rho(config.alpha, config.tuning_parameter)?;
    let se = positive_se(m.variance)?;
    let n = m.n_total;
    let tr2p1 = n * rho * rho + 1.0;
    let s2 = m.variance * n;
    let half =
        s2.sqrt() * (2.0 * tr2p1 * (tr2p1.sqrt() / config.alpha).ln() / (n * rho).powi(2)).sqrt();
    let st2 = m.estimate.powi(2) * n / m.variance;
    let log_evalue = rho * rho * st2 / (2.0 * tr2p1) - 0.5 * tr2p1.ln();
    Ok(Comparison {
        control: m.control,
        treatment: m.treatment,
        effect: m.estimate,
        relative_lift: relative_lift(m.control, m.treatment),
        standard_error: se,
        statistic: m.estimate / se,
        degrees_of_freedom: None,
        ci_low: m.estimate - half,
        ci_high: m.estimate + half,
        p_value: (-log_evalue).exp().min(1.0),
    })
}

fn positive_se(variance: f64) -> Result<f64> {
    if variance > 0.0 && variance.is_finite() {
        Ok(variance.sqrt())
    } else {
        Err(ExperimentError::Undefined(format!(
            "the estimate's variance is {variance}: the test is undefined (zero variance?)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_rejects_bad_tuning() {
        assert!(sequential_rho(0.05, 0.0).is_err());
        assert!(sequential_rho(1.5, 5000.0).is_err());
    }

    #[test]
    fn relative_with_zero_control_is_undefined() {
        let a = GbArm {
            n: 10.0,
            value: 0.0,
            variance: 1.0,
        };
        let b = GbArm {
            n: 10.0,
            value: 1.0,
            variance: 1.0,
        };
        assert!(gb_ttest(&a, &b, DifferenceType::Relative, 0.05).is_err());
    }

    #[test]
    fn zero_variance_is_undefined() {
        let a = GbArm {
            n: 10.0,
            value: 1.0,
            variance: 0.0,
        };
        let seq = gb_sequential_ttest(
            &a,
            &a,
            DifferenceType::Absolute,
            &SequentialConfig::default(),
        );
        assert!(seq.is_err());
    }
}
