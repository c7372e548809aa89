//! Hand-written dense linear algebra: dot products, Cholesky factorisation and solves
//! for the small k×k ALS normal equations, a parallel blocked Cholesky, and the inverse
//! of the n×n EASE Gram matrix (a block sweep, `sweep.rs`). Matrices are row-major `f64` slices of length `n * n`.

use rayon::prelude::*;

/// Columns per block of the blocked Cholesky factorisation.
const BLOCK: usize = 64;

/// Why a Cholesky factorisation failed: the pivot index and its (non-positive) value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NotPositiveDefinite {
    /// The row/column of the failing pivot.
    pub pivot: usize,
    /// The pivot value that was not strictly positive and finite.
    pub value: f64,
}

/// The dot product of two equally long slices, with four independent accumulators.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f64; 4];
    let chunks = len / 4 * 4;
    for (x, y) in a[..chunks].chunks_exact(4).zip(b[..chunks].chunks_exact(4)) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let tail: f64 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The dot product of two `f32` slices, accumulated in `f32` with four accumulators.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f32; 4];
    let chunks = len / 4 * 4;
    for (x, y) in a[..chunks].chunks_exact(4).zip(b[..chunks].chunks_exact(4)) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

fn check_pivot(pivot: usize, value: f64) -> Result<f64, NotPositiveDefinite> {
    if value > 0.0 && value.is_finite() {
        Ok(value.sqrt())
    } else {
        Err(NotPositiveDefinite { pivot, value })
    }
}

/// Factorises the symmetric positive definite `n×n` matrix `a` as `L·Lᵀ` in place:
/// afterwards the lower triangle (diagonal included) holds `L`. Only the lower
/// triangle of the input is read. Unblocked; meant for small `n` (ALS factors).
pub fn cholesky_in_place(a: &mut [f64], n: usize) -> Result<(), NotPositiveDefinite> {
    for i in 0..n {
        for j in 0..=i {
            let s = a[i * n + j] - dot(&a[i * n..i * n + j], &a[j * n..j * n + j]);
            if i == j {
                a[i * n + i] = check_pivot(i, s)?;
            } else {
                a[i * n + j] = s / a[j * n + j];
            }
        }
    }
    Ok(())
}

/// Solves `L·Lᵀ·x = b` in place (`b` becomes `x`), given the factor from
/// [`cholesky_in_place`].
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let s = b[i] - dot(&l[i * n..i * n + i], &b[..i]);
        b[i] = s / l[i * n + i];
    }
    for k in (0..n).rev() {
        b[k] /= l[k * n + k];
        let xk = b[k];
        for (bi, lki) in b[..k].iter_mut().zip(&l[k * n..k * n + k]) {
            *bi -= lki * xk;
        }
    }
}

/// Blocked, rayon-parallel version of [`cholesky_in_place`] for large `n`.
pub fn cholesky_blocked(a: &mut [f64], n: usize) -> Result<(), NotPositiveDefinite> {
    let mut k0 = 0;
    while k0 < n {
        let k1 = (k0 + BLOCK).min(n);
        factor_diagonal_block(a, n, k0, k1)?;
        let (top, bottom) = a.split_at_mut(k1 * n);
        let top: &[f64] = top;
        bottom.par_chunks_mut(n).for_each(|row| {
            for j in k0..k1 {
                let s = row[j] - dot(&row[k0..j], &top[j * n + k0..j * n + j]);
                row[j] = s / top[j * n + j];
            }
        });
        let width = k1 - k0;
        let panel: Vec<f64> = bottom
            .chunks(n)
            .flat_map(|row| row[k0..k1].iter().copied())
            .collect();
        bottom.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
            let (mine, _) = row.split_at_mut(k1 + r + 1);
            let own = &panel[r * width..(r + 1) * width];
            for (c, value) in mine[k1..].iter_mut().enumerate() {
                *value -= dot(own, &panel[c * width..(c + 1) * width]);
            }
        });
        k0 = k1;
    }
    Ok(())
}

fn factor_diagonal_block(
    a: &mut [f64],
    n: usize,
    k0: usize,
    k1: usize,
) -> Result<(), NotPositiveDefinite> {
    for i in k0..k1 {
        for j in k0..=i {
            let s = a[i * n + j] - dot(&a[i * n + k0..i * n + j], &a[j * n + k0..j * n + j]);
            if i == j {
                a[i * n + i] = check_pivot(i, s)?;
            } else {
                a[i * n + j] = s / a[j * n + j];
            }
        }
    }
    Ok(())
}

/// Inverts the symmetric positive definite `n×n` matrix `a` (only its lower triangle is
/// read). Returns the full symmetric inverse, row-major. A register-tiled block sweep
/// (Gauss-Jordan) in place, parallel over row groups (`sweep.rs`).
pub fn spd_inverse(mut a: Vec<f64>, n: usize) -> Result<Vec<f64>, NotPositiveDefinite> {
    crate::sweep::invert_lower_in_place(&mut a, n)?;
    mirror_lower(&mut a, n);
    Ok(a)
}

/// Copies the lower triangle onto the upper one, by tiles of rows so both stay cached.
pub(crate) fn mirror_lower(a: &mut [f64], n: usize) {
    const STRIPE: usize = 64;
    for i0 in (0..n).step_by(STRIPE) {
        let i1 = (i0 + STRIPE).min(n);
        for j in i0..n {
            for i in i0..i1.min(j) {
                a[i * n + j] = a[j * n + i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn solves_a_hand_checked_system() {
        // A = [[4, 2], [2, 3]]; L = [[2, 0], [1, √2]]; A·x = [2, 5] has x = [-0.5, 2]
        // (4·-0.5 + 2·2 = 2, 2·-0.5 + 3·2 = 5).
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        cholesky_in_place(&mut a, 2).unwrap();
        assert!((a[0] - 2.0).abs() < 1e-12 && (a[2] - 1.0).abs() < 1e-12);
        assert!((a[3] - 2f64.sqrt()).abs() < 1e-12);
        let mut b = vec![2.0, 5.0];
        cholesky_solve(&a, 2, &mut b);
        assert!(
            (b[0] + 0.5).abs() < 1e-12 && (b[1] - 2.0).abs() < 1e-12,
            "{b:?}"
        );
    }

    #[test]
    fn rejects_indefinite_and_nan_matrices_naming_the_pivot() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        let err = cholesky_in_place(&mut a, 2).unwrap_err();
        assert_eq!(err.pivot, 1);
        let mut nan = vec![f64::NAN];
        assert_eq!(cholesky_in_place(&mut nan, 1).unwrap_err().pivot, 0);
        assert!(spd_inverse(vec![0.0; 4], 2).is_err());
    }

    fn random_spd(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let m: Vec<f64> = (0..n * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>();
            }
            a[i * n + i] += 0.5;
        }
        a
    }

    #[test]
    fn blocked_factor_matches_unblocked_and_inverse_is_exact() {
        let n = 150; // more than two blocks, with a ragged last block
        let a = random_spd(n, 11);
        let mut blocked = a.clone();
        cholesky_blocked(&mut blocked, n).unwrap();
        let mut plain = a.clone();
        cholesky_in_place(&mut plain, n).unwrap();
        for i in 0..n {
            for j in 0..=i {
                assert!((blocked[i * n + j] - plain[i * n + j]).abs() < 1e-9);
            }
        }
        let inv = spd_inverse(a.clone(), n).unwrap();
        for i in 0..n {
            for j in 0..n {
                let prod: f64 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((prod - expected).abs() < 1e-8, "({i},{j}) = {prod}");
            }
        }
    }
}
