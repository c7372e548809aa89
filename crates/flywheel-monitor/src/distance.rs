//! The distances Evidently 0.7 picks by default for large samples: the normed
//! Wasserstein distance for numerical features and the Jensen–Shannon distance for
//! categorical ones (both with drift threshold 0.1).

use crate::error::{check_sample, sorted, Result};
use crate::psi::category_shares;

/// Evidently's threshold for both distances.
pub const EVIDENTLY_DISTANCE_THRESHOLD: f64 = 0.1;

/// `scipy.stats.wasserstein_distance(reference, current)`: ∫ |F_ref − F_cur|.
pub fn wasserstein_distance(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_sample(reference, "reference")?;
    check_sample(current, "current")?;
    let (u, v) = (sorted(reference), sorted(current));
    let all = sorted(&[reference, current].concat());
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let mut total = 0.0;
    for w in all.windows(2) {
        let fu = u.partition_point(|x| *x <= w[0]) as f64 / nu;
        let fv = v.partition_point(|x| *x <= w[0]) as f64 / nv;
        total += (fu - fv).abs() * (w[1] - w[0]);
    }
    Ok(total)
}

/// Evidently's `wasserstein` stattest score: the distance divided by
/// `max(std(reference), 0.001)` (population standard deviation).
pub fn wasserstein_distance_norm(reference: &[f64], current: &[f64]) -> Result<f64> {
    let distance = wasserstein_distance(reference, current)?;
    let n = reference.len() as f64;
    let mean = reference.iter().sum::<f64>() / n;
    let std = (reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    Ok(distance / std.max(0.001))
}

/// Evidently's `jensenshannon` stattest score on categories:
/// `scipy.spatial.distance.jensenshannon(ref_shares, cur_shares)` (natural log, no
/// empty-bin floor).
pub fn jensen_shannon_categorical<T: Ord + Clone>(reference: &[T], current: &[T]) -> Result<f64> {
    let (p, q) = category_shares(reference, current)?;
    Ok(jensen_shannon_distance(&p, &q))
}

/// Jensen–Shannon distance (square root of the divergence, natural log) of two
/// distributions given as non-negative weights (each normalised to sum 1).
pub fn jensen_shannon_distance(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    let rel_entr = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let js: f64 = p
        .iter()
        .zip(q)
        .map(|(a, b)| {
            let (a, b) = (a / sp, b / sq);
            let m = (a + b) / 2.0;
            rel_entr(a, m) + rel_entr(b, m)
        })
        .sum::<f64>()
        / 2.0;
    js.max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasserstein_of_shift_is_the_shift() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) = 5.0
        let d = wasserstein_distance(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]).expect("defined");
        assert!((d - 5.0).abs() < 1e-12);
    }

    #[test]
    fn jensen_shannon_bounds() {
        assert_eq!(jensen_shannon_distance(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        // disjoint supports: sqrt(ln 2)
        let d = jensen_shannon_distance(&[1.0, 0.0], &[0.0, 1.0]);
        assert!((d - std::f64::consts::LN_2.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn constant_reference_uses_the_std_floor() {
        let d = wasserstein_distance_norm(&[1.0, 1.0], &[1.0, 1.001]).expect("defined");
        assert!((d - 0.5).abs() < 1e-9, "{d}");
    }
}
