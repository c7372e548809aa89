//! The fixed-horizon tests as scipy and statsmodels compute them: sample-ratio mismatch,
//! two proportions, Welch's t.

use serde::Serialize;

use crate::comparison::{check_alpha, relative_lift, ArmMoments, Comparison};
use crate::dist::{chi2_sf, normal_ppf, normal_two_sided_p, t_ppf, t_two_sided_p};
use crate::error::{ExperimentError, Result};

/// Sample-ratio-mismatch check: chi-square goodness of fit of the user counts against
/// the configured split (`scipy.stats.chisquare`, `gbstats.utils.check_srm`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SrmResult {
    /// Users observed in control.
    pub n_control: u64,
    /// Users observed in treatment.
    pub n_treatment: u64,
    /// Configured share of users in treatment.
    pub expected_treatment_share: f64,
    /// Chi-square statistic (1 degree of freedom).
    pub chi2: f64,
    /// p-value; a small value (e.g. < 0.001) means the assignment is broken.
    pub p_value: f64,
}

/// SRM chi-square of observed counts against `treatment_share` of users in treatment.
pub fn srm_test(n_control: u64, n_treatment: u64, treatment_share: f64) -> Result<SrmResult> {
    if !(treatment_share > 0.0 && treatment_share < 1.0) {
        return Err(ExperimentError::InvalidInput(format!(
            "treatment share {treatment_share} must lie strictly between 0 and 1"
        )));
    }
    let total = (n_control + n_treatment) as f64;
    if total == 0.0 {
        return Err(ExperimentError::InvalidInput(
            "no users in either arm; the SRM check needs counts".into(),
        ));
    }
    let expected = [total * (1.0 - treatment_share), total * treatment_share];
    let observed = [n_control as f64, n_treatment as f64];
    let chi2: f64 = observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e).powi(2) / e)
        .sum();
    Ok(SrmResult {
        n_control,
        n_treatment,
        expected_treatment_share: treatment_share,
        chi2,
        p_value: chi2_sf(chi2, 1.0)?,
    })
}

/// Two-proportion z-test: pooled standard error for the statistic and p-value
/// (statsmodels `proportions_ztest`), unpooled Wald interval (statsmodels
/// `confint_proportions_2indep(method="wald")`). `standard_error` is the unpooled one.
pub fn two_proportion_test(
    successes_control: u64,
    n_control: u64,
    successes_treatment: u64,
    n_treatment: u64,
    alpha: f64,
) -> Result<Comparison> {
    check_alpha(alpha)?;
    if n_control == 0 || n_treatment == 0 {
        return Err(ExperimentError::InvalidInput(
            "an arm has no users; both arms need at least one".into(),
        ));
    }
    if successes_control > n_control || successes_treatment > n_treatment {
        return Err(ExperimentError::InvalidInput(
            "successes exceed the number of users in an arm".into(),
        ));
    }
    let (na, nb) = (n_control as f64, n_treatment as f64);
    let (pa, pb) = (
        successes_control as f64 / na,
        successes_treatment as f64 / nb,
    );
    let pooled = (successes_control + successes_treatment) as f64 / (na + nb);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let se_unpooled = (pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb).sqrt();
    if se_pooled == 0.0 {
        return Err(ExperimentError::Undefined(
            "every user converted or none did: the two-proportion z-test has zero variance".into(),
        ));
    }
    let diff = pb - pa;
    let z = diff / se_pooled;
    let half = normal_ppf(1.0 - alpha / 2.0)? * se_unpooled;
    Ok(Comparison {
        control: pa,
        treatment: pb,
        effect: diff,
        relative_lift: relative_lift(pa, pb),
        standard_error: se_unpooled,
        statistic: z,
        degrees_of_freedom: None,
        ci_low: diff - half,
        ci_high: diff + half,
        p_value: normal_two_sided_p(z),
    })
}

/// Welch's unequal-variance t-test on per-user values (`scipy.stats.ttest_ind(equal_var=False)`,
/// interval from statsmodels `tconfint_diff(usevar="unequal")`).
pub fn welch_test(control: &[f64], treatment: &[f64], alpha: f64) -> Result<Comparison> {
    let a = ArmMoments::from_values(control, "control")?;
    let b = ArmMoments::from_values(treatment, "treatment")?;
    welch_from_moments(&a, &b, alpha)
}

/// Welch's t-test from arm moments.
pub fn welch_from_moments(a: &ArmMoments, b: &ArmMoments, alpha: f64) -> Result<Comparison> {
    check_alpha(alpha)?;
    let (va, vb) = (a.variance / a.n, b.variance / b.n);
    let se = (va + vb).sqrt();
    if !crate::comparison::is_positive(se) {
        return Err(ExperimentError::Undefined(
            "zero variance in both arms: Welch's t-test is undefined".into(),
        ));
    }
    let df = (va + vb).powi(2) / (va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0));
    let diff = b.mean - a.mean;
    let t = diff / se;
    let half = t_ppf(1.0 - alpha / 2.0, df)? * se;
    Ok(Comparison {
        control: a.mean,
        treatment: b.mean,
        effect: diff,
        relative_lift: relative_lift(a.mean, b.mean),
        standard_error: se,
        statistic: t,
        degrees_of_freedom: Some(df),
        ci_low: diff - half,
        ci_high: diff + half,
        p_value: t_two_sided_p(t, df)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_zero_variance_is_an_error() {
        let err = welch_test(&[1.0, 1.0], &[1.0, 1.0], 0.05).expect_err("undefined");
        assert!(err.to_string().contains("zero variance"));
    }

    #[test]
    fn welch_zero_variance_in_one_arm_still_works() {
        let r = welch_test(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], 0.05).expect("defined");
        assert!((r.effect - 1.0).abs() < 1e-15);
        assert!(r.p_value.is_finite());
    }

    #[test]
    fn empty_or_tiny_arms_are_errors() {
        assert!(welch_test(&[], &[1.0, 2.0], 0.05).is_err());
        assert!(welch_test(&[1.0], &[1.0, 2.0], 0.05).is_err());
        assert!(two_proportion_test(0, 0, 1, 2, 0.05).is_err());
        assert!(srm_test(0, 0, 0.5).is_err());
        assert!(srm_test(10, 10, 1.0).is_err());
    }

    #[test]
    fn two_proportion_all_or_nothing_is_undefined() {
        assert!(two_proportion_test(0, 10, 0, 10, 0.05).is_err());
        assert!(two_proportion_test(10, 10, 10, 10, 0.05).is_err());
        assert!(two_proportion_test(11, 10, 1, 10, 0.05).is_err());
    }
}
