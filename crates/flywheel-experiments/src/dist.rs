//! Thin, panic-free wrappers over the distributions the tests need (statrs 0.19), with
//! a Newton polish on Student's t quantile so it matches scipy's `t.ppf` to ~1e-13.

use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};

use crate::error::{ExperimentError, Result};

/// Standard normal CDF Φ(x).
pub fn normal_cdf(x: f64) -> f64 {
    Normal::standard().cdf(x)
}

/// Standard normal survival function 1 − Φ(x), accurate in the upper tail.
pub fn normal_sf(x: f64) -> f64 {
    Normal::standard().sf(x)
}

/// Two-sided normal p-value `2·(1 − Φ(|z|))`.
pub fn normal_two_sided_p(z: f64) -> f64 {
    (2.0 * normal_sf(z.abs())).min(1.0)
}

/// Standard normal quantile Φ⁻¹(p) for `p` in (0, 1).
pub fn normal_ppf(p: f64) -> Result<f64> {
    check_open_probability(p)?;
    Ok(Normal::standard().inverse_cdf(p))
}

/// Two-sided Student's t p-value `2·sf(|t|, df)`; falls back to the normal when
/// `df` is infinite.
pub fn t_two_sided_p(t: f64, df: f64) -> Result<f64> {
    let dist = students_t(df)?;
    Ok((2.0 * dist.sf(t.abs())).min(1.0))
}

/// Student's t quantile `t.ppf(p, df)` for `p` in (0, 1).
pub fn t_ppf(p: f64, df: f64) -> Result<f64> {
    check_open_probability(p)?;
    let dist = students_t(df)?;
    let mut x = dist.inverse_cdf(p);
    // statrs' inverse is only guaranteed to ~1e-3 relative: polish with Newton steps,
    // working on the smaller tail for precision.
    for _ in 0..8 {
        let density = dist.pdf(x);
        if !crate::comparison::is_positive(density) || !x.is_finite() {
            break;
        }
        let error = if p > 0.5 {
            (1.0 - p) - dist.sf(x)
        } else {
            dist.cdf(x) - p
        };
        // f(x) = sf(x) − (1 − p) has f' = −pdf, f(x) = cdf(x) − p has f' = pdf: in both
        // cases the Newton step is `error / pdf` with the error signs chosen above.
        let step = error / density;
        x -= step;
        if step.abs() <= 1e-15 * x.abs().max(1.0) {
            break;
        }
    }
    Ok(x)
}

/// Chi-square survival function with `k` degrees of freedom.
pub fn chi2_sf(x: f64, k: f64) -> Result<f64> {
    let dist = ChiSquared::new(k).map_err(|e| {
        ExperimentError::InvalidInput(format!("chi-square with {k} degrees of freedom: {e}"))
    })?;
    Ok(dist.sf(x))
}

fn students_t(df: f64) -> Result<StudentsT> {
    if !crate::comparison::is_positive(df) && df != f64::INFINITY {
        return Err(ExperimentError::Undefined(format!(
            "Student's t needs positive degrees of freedom, got {df}"
        )));
    }
    StudentsT::new(0.0, 1.0, df)
        .map_err(|e| ExperimentError::Undefined(format!("Student's t with df {df}: {e}")))
}

fn check_open_probability(p: f64) -> Result<()> {
    if p > 0.0 && p < 1.0 {
        Ok(())
    } else {
        Err(ExperimentError::InvalidInput(format!(
            "probability {p} must lie strictly between 0 and 1"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_scipy() {
        // scipy.stats.norm.ppf(0.975) = 1.959963984540054
        assert!((normal_ppf(0.975).expect("valid p") - 1.959963984540054).abs() < 1e-13);
        // Student's t table: t_{0.975, 10} = 2.228138852, t_{0.025, 3} = -3.182446305
        let t10 = t_ppf(0.975, 10.0).expect("valid");
        assert!((t10 - 2.228138852).abs() < 1e-9, "{t10:.17}");
        let t3 = t_ppf(0.025, 3.0).expect("valid");
        assert!((t3 + 3.182446305).abs() < 1e-9, "{t3:.17}");
        // the Newton polish makes the quantile invert statrs' CDF (itself good to ~1e-12 at large df)
        for (p, df) in [(0.975, 19893.25), (0.9, 2.5), (0.999, 7.0), (0.001, 40.0)] {
            let x = t_ppf(p, df).expect("valid");
            let back = StudentsT::new(0.0, 1.0, df).expect("df > 0").cdf(x);
            assert!((back - p).abs() < 1e-11, "p {p} df {df}: {back}");
        }
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        assert!(normal_ppf(1.0).is_err());
        assert!(t_ppf(0.5, 0.0).is_err());
        assert!(t_two_sided_p(1.0, f64::NAN).is_err());
        assert!(chi2_sf(1.0, 0.0).is_err());
    }
}
