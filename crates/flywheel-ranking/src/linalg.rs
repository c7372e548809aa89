//! The little dense linear algebra Newton's method needs: a Cholesky solve of a
//! symmetric positive definite system, and numerically stable logistic helpers.

/// Solves `A x = b` for a symmetric positive definite `A` (row-major, `n × n`) by
/// Cholesky factorisation. Returns `None` when `A` is not positive definite.
pub(crate) fn cholesky_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    if a.len() != n * n {
        return None;
    }
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            let v = a[i * n + j] - dot;
            if i == j {
                if v <= 0.0 || !v.is_finite() {
                    return None;
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - dot) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - dot) / l[i * n + i];
    }
    Some(x)
}

/// Solves `A x = b`, adding a growing ridge to the diagonal when `A` is only
/// semi-definite (e.g. a constant feature without regularisation).
pub(crate) fn solve_with_jitter(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let trace: f64 = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>().max(1.0);
    let mut jitter = 0.0;
    for _ in 0..12 {
        let mut shifted = a.to_vec();
        for i in 0..n {
            shifted[i * n + i] += jitter;
        }
        if let Some(x) = cholesky_solve(&shifted, b) {
            return Some(x);
        }
        jitter = if jitter == 0.0 {
            trace * 1e-12
        } else {
            jitter * 100.0
        };
    }
    None
}

/// The logistic function, stable for large `|z|`.
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^z)`, stable for large `|z|`.
pub(crate) fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// The log-loss of margin `z` against a label `y` in `[0, 1]`:
/// `ln(1 + e^z) − y·z`, which equals `−y ln σ(z) − (1−y) ln(1−σ(z))`.
pub(crate) fn log_loss_from_margin(z: f64, y: f64) -> f64 {
    softplus(z) - y * z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4, 2], [2, 3]], b = [2, 1] → x = [0.5, 0] (by hand: 4·0.5 + 2·0 = 2, 2·0.5 + 3·0 = 1).
        let x = cholesky_solve(&[4.0, 2.0, 2.0, 3.0], &[2.0, 1.0]).expect("SPD");
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        assert!(cholesky_solve(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0]).is_none());
        assert!(solve_with_jitter(&[1.0, 0.0, 0.0, 0.0], &[1.0, 0.0]).is_some());
    }

    #[test]
    fn logistic_helpers_are_stable() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
        assert!((softplus(800.0) - 800.0).abs() < 1e-9);
        assert!((log_loss_from_margin(0.0, 1.0) - 2f64.ln()).abs() < 1e-15);
    }
}
