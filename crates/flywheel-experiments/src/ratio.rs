//! Ratio metrics (CTR = Σclicks / Σexposures per arm) with the delta method on per-user
//! pairs, the user being the randomisation unit. The naive impression-level z-test is
//! reported beside it to show how much it understates the standard error.

use serde::Serialize;

use crate::comparison::{check_alpha, check_arm, covariance, mean, variance, Comparison};
use crate::dist::{normal_ppf, normal_two_sided_p};
use crate::error::{ExperimentError, Result};

/// One arm of a ratio metric: per-user numerators (clicks) and denominators (exposures).
#[derive(Debug, Clone, Copy)]
pub struct RatioArm<'a> {
    /// Per-user numerators, e.g. clicks.
    pub numerators: &'a [f64],
    /// Per-user denominators, e.g. exposures; same length as `numerators`.
    pub denominators: &'a [f64],
}

/// Delta-method ratio comparison, absolute and relative.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioComparison {
    /// Absolute difference of ratios with the delta-method SE and a normal interval.
    pub absolute: Comparison,
    /// Relative lift `r_t / r_c − 1`.
    pub relative_lift: f64,
    /// Delta-method SE of the relative lift (gbstats form).
    pub relative_standard_error: f64,
    /// Lower end of the normal interval for the relative lift.
    pub relative_ci_low: f64,
    /// Upper end of the normal interval for the relative lift.
    pub relative_ci_high: f64,
    /// The naive test that treats each impression as an independent Bernoulli trial.
    pub naive_impression_level: NaiveImpressionTest,
}

/// Impression-level binomial z-test (wrong unit; shown for comparison only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NaiveImpressionTest {
    /// Unpooled binomial SE over impressions.
    pub standard_error: f64,
    /// Pooled z statistic (statsmodels `proportions_ztest` on the sums).
    pub z_pooled: f64,
    /// Its two-sided p-value.
    pub p_value: f64,
    /// Delta-method SE divided by the naive SE (> 1 means the naive test is overconfident).
    pub se_ratio_delta_over_naive: f64,
}

/// The ratio Σnum/Σden of one arm and the delta-method variance of that estimate.
pub fn ratio_and_variance(arm: &RatioArm<'_>, name: &str) -> Result<(f64, f64)> {
    check_pairs(arm, name)?;
    let (num, den) = (arm.numerators, arm.denominators);
    let n = num.len() as f64;
    let (mx, my) = (mean(den), mean(num));
    let (vx, vy, cxy) = (variance(den), variance(num), covariance(num, den));
    let ratio = num.iter().sum::<f64>() / den.iter().sum::<f64>();
    let var = (vy / mx.powi(2) - 2.0 * my * cxy / mx.powi(3) + my.powi(2) * vx / mx.powi(4)) / n;
    Ok((ratio, var))
}

/// Delta-method test of the ratio metric between arms (reference: `ab_reference.py`
/// `delta_ratio`, user-level moments with ddof 1).
pub fn delta_ratio_test(
    control: &RatioArm<'_>,
    treatment: &RatioArm<'_>,
    alpha: f64,
) -> Result<RatioComparison> {
    check_alpha(alpha)?;
    let (ra, va) = ratio_and_variance(control, "control")?;
    let (rb, vb) = ratio_and_variance(treatment, "treatment")?;
    let se = (va + vb).sqrt();
    if !crate::comparison::is_positive(se) || ra == 0.0 {
        return Err(ExperimentError::Undefined(
            "the ratio has zero variance or the control ratio is zero".into(),
        ));
    }
    let z_crit = normal_ppf(1.0 - alpha / 2.0)?;
    let diff = rb - ra;
    let rel = rb / ra - 1.0;
    let se_rel = (vb / ra.powi(2) + va * rb.powi(2) / ra.powi(4)).sqrt();
    Ok(RatioComparison {
        absolute: Comparison {
            control: ra,
            treatment: rb,
            effect: diff,
            relative_lift: Some(rel),
            standard_error: se,
            statistic: diff / se,
            degrees_of_freedom: None,
            ci_low: diff - z_crit * se,
            ci_high: diff + z_crit * se,
            p_value: normal_two_sided_p(diff / se),
        },
        relative_lift: rel,
        relative_standard_error: se_rel,
        relative_ci_low: rel - z_crit * se_rel,
        relative_ci_high: rel + z_crit * se_rel,
        naive_impression_level: naive_test(control, treatment, ra, rb, se),
    })
}

fn naive_test(
    control: &RatioArm<'_>,
    treatment: &RatioArm<'_>,
    ra: f64,
    rb: f64,
    se_delta: f64,
) -> NaiveImpressionTest {
    let (xa, na) = sums(control);
    let (xb, nb) = sums(treatment);
    let se = (ra * (1.0 - ra) / na + rb * (1.0 - rb) / nb).sqrt();
    let pooled = (xa + xb) / (na + nb);
    let z = (rb - ra) / (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    NaiveImpressionTest {
        standard_error: se,
        z_pooled: z,
        p_value: normal_two_sided_p(z),
        se_ratio_delta_over_naive: se_delta / se,
    }
}

fn sums(arm: &RatioArm<'_>) -> (f64, f64) {
    (arm.numerators.iter().sum(), arm.denominators.iter().sum())
}

fn check_pairs(arm: &RatioArm<'_>, name: &str) -> Result<()> {
    if arm.numerators.len() != arm.denominators.len() {
        return Err(ExperimentError::InvalidInput(format!(
            "the {name} arm has {} numerators but {} denominators",
            arm.numerators.len(),
            arm.denominators.len()
        )));
    }
    check_arm(arm.numerators, name)?;
    check_arm(arm.denominators, name)?;
    if !crate::comparison::is_positive(arm.denominators.iter().sum::<f64>()) {
        return Err(ExperimentError::Undefined(format!(
            "the {name} arm has no exposures: its ratio is undefined"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_exposures_is_an_error() {
        let zeros = [0.0, 0.0];
        let arm = RatioArm {
            numerators: &zeros,
            denominators: &zeros,
        };
        assert!(delta_ratio_test(&arm, &arm, 0.05).is_err());
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        let arm = RatioArm {
            numerators: &[1.0, 2.0],
            denominators: &[3.0],
        };
        assert!(ratio_and_variance(&arm, "control").is_err());
    }
}
