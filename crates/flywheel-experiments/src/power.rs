//! Planning: power, minimum detectable effect and sample size for a two-arm test with
//! equal arms, under the normal approximation (two-sided, both rejection tails counted,
//! as statsmodels `NormalIndPower` does).

use crate::comparison::{check_alpha, is_positive};
use crate::dist::{normal_cdf, normal_ppf};
use crate::error::{ExperimentError, Result};

/// Per-user standard deviation of a conversion metric with baseline rate `p`.
pub fn proportion_sd(p: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&p) {
        return Err(ExperimentError::InvalidInput(format!(
            "baseline rate {p} must lie in [0, 1]"
        )));
    }
    Ok((p * (1.0 - p)).sqrt())
}

/// Probability of rejecting H0 when the true difference is `effect`, with per-user
/// standard deviation `sd` and `n_per_arm` users in each arm.
pub fn power_two_sample(effect: f64, sd: f64, n_per_arm: f64, alpha: f64) -> Result<f64> {
    check_alpha(alpha)?;
    let se = standard_error(sd, n_per_arm)?;
    let z = normal_ppf(1.0 - alpha / 2.0)?;
    let shift = effect.abs() / se;
    Ok(normal_cdf(shift - z) + normal_cdf(-shift - z))
}

/// Smallest absolute effect detected with probability `power` (far tail ignored):
/// `(z_{1−α/2} + z_power) · sd · sqrt(2 / n)`.
pub fn minimum_detectable_effect(sd: f64, n_per_arm: f64, alpha: f64, power: f64) -> Result<f64> {
    check_alpha(alpha)?;
    let se = standard_error(sd, n_per_arm)?;
    Ok((normal_ppf(1.0 - alpha / 2.0)? + normal_ppf(power)?) * se)
}

/// Users needed per arm to detect `effect` with probability `power` (far tail ignored):
/// `2 · ((z_{1−α/2} + z_power) · sd / effect)²`.
pub fn sample_size_per_arm(effect: f64, sd: f64, alpha: f64, power: f64) -> Result<f64> {
    check_alpha(alpha)?;
    if !(effect != 0.0 && effect.is_finite() && is_positive(sd)) {
        return Err(ExperimentError::InvalidInput(format!(
            "effect ({effect}) must be non-zero and sd ({sd}) positive"
        )));
    }
    let z = normal_ppf(1.0 - alpha / 2.0)? + normal_ppf(power)?;
    Ok(2.0 * (z * sd / effect).powi(2))
}

fn standard_error(sd: f64, n_per_arm: f64) -> Result<f64> {
    if !(is_positive(sd) && is_positive(n_per_arm)) {
        return Err(ExperimentError::InvalidInput(format!(
            "sd ({sd}) and users per arm ({n_per_arm}) must be positive"
        )));
    }
    Ok(sd * (2.0 / n_per_arm).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_sample_size() {
        // Cohen's d = 0.5, alpha 0.05, power 0.8: 2·(1.959964 + 0.841621)² / 0.25 = 62.79
        let n = sample_size_per_arm(0.5, 1.0, 0.05, 0.8).expect("valid");
        assert!((n - 62.7907).abs() < 1e-3, "{n}");
    }

    #[test]
    fn mde_and_power_round_trip() {
        let mde = minimum_detectable_effect(2.0, 1000.0, 0.05, 0.8).expect("valid");
        let power = power_two_sample(mde, 2.0, 1000.0, 0.05).expect("valid");
        // the far tail adds ~1e-9 on top of 0.8
        assert!((power - 0.8).abs() < 1e-6, "{power}");
        let n = sample_size_per_arm(mde, 2.0, 0.05, 0.8).expect("valid");
        assert!((n - 1000.0).abs() < 1e-6, "{n}");
    }

    #[test]
    fn bad_planning_inputs_are_errors() {
        assert!(sample_size_per_arm(0.0, 1.0, 0.05, 0.8).is_err());
        assert!(minimum_detectable_effect(1.0, 0.0, 0.05, 0.8).is_err());
        assert!(power_two_sample(1.0, 1.0, 10.0, 0.0).is_err());
        assert!(proportion_sd(1.5).is_err());
    }
}
