//! The inverse of a symmetric positive definite matrix by the block sweep operator
//! (block Gauss-Jordan without pivoting, which SPD matrices do not need).
//!
//! Sweeping the pivot block `K` of the current matrix `A` (`D = A_KK`, SPD: a Schur
//! complement of the original matrix) does
//!
//! ```text
//! A_ij ← A_ij − (A_iK·D⁻¹)·A_Kj      for i, j ∉ K
//! A_iK ← A_iK·D⁻¹                    for i ∉ K   (and A_Kj by symmetry)
//! A_KK ← −D⁻¹
//! ```
//!
//! and sweeping every block turns `A` into `−A⁻¹`. Only the lower triangle is stored
//! and touched, so the whole inverse costs `n³` flops (as Cholesky, triangular inverse
//! and product together), nearly all of it in one rank-`b` update of the lower triangle
//! per block. That update is register-tiled: 4×4 tiles of `f64` accumulators, panels
//! packed so every inner step is two aligned loads of the left panel (values stored
//! twice, so no broadcast shuffles are needed on plain SSE2), one of the right panel and
//! eight multiply-adds of two lanes; rows are processed in groups in parallel (rayon),
//! a group's panel tiles walked in column chunks that stay in L1.

use rayon::prelude::*;

use crate::linalg::{cholesky_in_place, cholesky_solve, NotPositiveDefinite};

/// Columns per pivot block: the rank of each update (larger = fewer passes over the
/// matrix, more work in the small per-block products).
const BLOCK: usize = 96;
/// Rows and columns of one register tile.
const TILE: usize = 4;
/// Rows per parallel task (a multiple of [`TILE`]).
const GROUP_ROWS: usize = 32;
/// Columns of the right panel walked per pass over a row group (a multiple of [`TILE`]).
const COLUMN_CHUNK: usize = 64;

/// Replaces the lower triangle of the SPD `n×n` row-major `a` by the lower triangle of
/// `a⁻¹` (the upper triangle is neither read nor written). Errors name the first pivot
/// (global index) whose Schur complement is not positive definite.
pub(crate) fn invert_lower_in_place(a: &mut [f64], n: usize) -> Result<(), NotPositiveDefinite> {
    let padded = n.div_ceil(TILE) * TILE;
    let mut k0 = 0;
    while k0 < n {
        let k1 = (k0 + BLOCK).min(n);
        let width = k1 - k0;
        let pivot_inverse = pivot_block_inverse(a, n, k0, k1)?;
        let panel = gather_panel(a, n, k0, k1, padded);
        let scaled = times_small(&panel, &pivot_inverse, width);
        let right = pack_tiles(&panel, width, 1);
        let left = pack_tiles(&scaled, width, 2);
        rank_update(a, n, &left, &right, width);
        scatter_panel(a, n, k0, k1, &scaled, &pivot_inverse);
        k0 = k1;
    }
    a.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
        row[..=i].iter_mut().for_each(|v| *v = -*v);
    });
    Ok(())
}

/// `D⁻¹` (full `width×width`) of the current diagonal block `A[k0..k1, k0..k1]`.
fn pivot_block_inverse(
    a: &[f64],
    n: usize,
    k0: usize,
    k1: usize,
) -> Result<Vec<f64>, NotPositiveDefinite> {
    let width = k1 - k0;
    let mut block = vec![0.0; width * width];
    for r in 0..width {
        let row = &a[(k0 + r) * n + k0..(k0 + r) * n + k0 + r + 1];
        block[r * width..r * width + r + 1].copy_from_slice(row);
    }
    cholesky_in_place(&mut block, width).map_err(|e| NotPositiveDefinite {
        pivot: k0 + e.pivot,
        value: e.value,
    })?;
    let mut inverse = vec![0.0; width * width];
    let mut column = vec![0.0; width];
    for c in 0..width {
        column.fill(0.0);
        column[c] = 1.0;
        cholesky_solve(&block, width, &mut column);
        for (r, &v) in column.iter().enumerate() {
            inverse[r * width + c] = v;
        }
    }
    Ok(inverse)
}

/// `V[i][p] = A[i][k0 + p]` for every row `i ∉ [k0, k1)` (read from the lower triangle),
/// zero for the pivot rows and the padding rows; `padded × width`, row-major.
fn gather_panel(a: &[f64], n: usize, k0: usize, k1: usize, padded: usize) -> Vec<f64> {
    let width = k1 - k0;
    let mut panel = vec![0.0; padded * width];
    panel[k1 * width..n * width]
        .par_chunks_mut(width)
        .enumerate()
        .for_each(|(r, out)| {
            let i = k1 + r;
            out.copy_from_slice(&a[i * n + k0..i * n + k1]);
        });
    for p in 0..width {
        let source = &a[(k0 + p) * n..(k0 + p) * n + k0];
        for (i, &v) in source.iter().enumerate() {
            panel[i * width + p] = v;
        }
    }
    panel
}

/// `panel · small` for a `rows × width` panel and a `width × width` matrix.
fn times_small(panel: &[f64], small: &[f64], width: usize) -> Vec<f64> {
    let mut out = vec![0.0; panel.len()];
    out.par_chunks_mut(width)
        .zip(panel.par_chunks(width))
        .with_min_len(16)
        .for_each(|(o, v)| {
            for (&vp, row) in v.iter().zip(small.chunks_exact(width)) {
                if vp != 0.0 {
                    o.iter_mut().zip(row).for_each(|(x, &s)| *x += vp * s);
                }
            }
        });
    out
}

/// Packs a `padded × width` panel by tiles of [`TILE`] rows, `p`-major inside a tile:
/// element `(tile·width + p)·TILE + r` (each value written `copies` times in a row).
fn pack_tiles(panel: &[f64], width: usize, copies: usize) -> Vec<f64> {
    let tiles = panel.len() / width / TILE;
    let tile_len = width * TILE * copies;
    let mut packed = vec![0.0; tiles * tile_len];
    packed
        .par_chunks_mut(tile_len)
        .enumerate()
        .for_each(|(t, out)| {
            for r in 0..TILE {
                let row = &panel[(t * TILE + r) * width..(t * TILE + r + 1) * width];
                for (p, &v) in row.iter().enumerate() {
                    let at = (p * TILE + r) * copies;
                    out[at..at + copies].fill(v);
                }
            }
        });
    packed
}

/// `A[i][j] −= Σ_p left[i][p]·right[j][p]` for every `j ≤ i < n`.
fn rank_update(a: &mut [f64], n: usize, left: &[f64], right: &[f64], width: usize) {
    let left_tile = width * TILE * 2;
    let right_tile = width * TILE;
    a.par_chunks_mut(GROUP_ROWS * n)
        .enumerate()
        .for_each(|(g, rows)| {
            let first = g * GROUP_ROWS;
            let end = first + rows.len() / n;
            for chunk in (0..end).step_by(COLUMN_CHUNK) {
                for i0 in (first..end).step_by(TILE) {
                    let last_row = (i0 + TILE - 1).min(end - 1);
                    let stop = (chunk + COLUMN_CHUNK).min(last_row + 1);
                    let lt = &left[i0 / TILE * left_tile..][..left_tile];
                    for j0 in (chunk..stop).step_by(TILE) {
                        let rt = &right[j0 / TILE * right_tile..][..right_tile];
                        let product = tile_product(lt, rt);
                        subtract_tile(rows, n, first, end, i0, j0, &product);
                    }
                }
            }
        });
}

/// The 4×4 block `Σ_p left[r][p]·right[c][p]` of two packed tiles.
#[inline(always)]
fn tile_product(left: &[f64], right: &[f64]) -> [[f64; TILE]; TILE] {
    let (left, _) = left.as_chunks::<{ 2 * TILE }>();
    let (right, _) = right.as_chunks::<TILE>();
    let mut acc = [[0.0f64; TILE]; TILE];
    for (l, v) in left.iter().zip(right) {
        for r in 0..TILE {
            for c in 0..TILE {
                acc[r][c] += l[2 * r + (c & 1)] * v[c];
            }
        }
    }
    acc
}

/// Subtracts a tile product at rows `i0..`, columns `j0..` of the row group starting at
/// row `first` (lower triangle and the matrix bounds only).
fn subtract_tile(
    rows: &mut [f64],
    n: usize,
    first: usize,
    end: usize,
    i0: usize,
    j0: usize,
    product: &[[f64; TILE]; TILE],
) {
    for (r, values) in product.iter().enumerate() {
        let i = i0 + r;
        if i >= end {
            break;
        }
        let last = (i + 1).min(n).min(j0 + TILE);
        let row = &mut rows[(i - first) * n..(i - first + 1) * n];
        for (j, v) in (j0..last).zip(values) {
            row[j] -= v;
        }
    }
}

/// Writes the swept panel back (`A_iK ← A_iK·D⁻¹`) and `A_KK ← −D⁻¹`.
fn scatter_panel(a: &mut [f64], n: usize, k0: usize, k1: usize, scaled: &[f64], inverse: &[f64]) {
    let width = k1 - k0;
    a[k1 * n..]
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(r, row)| {
            let i = k1 + r;
            row[k0..k1].copy_from_slice(&scaled[i * width..(i + 1) * width]);
        });
    for p in 0..width {
        let row = &mut a[(k0 + p) * n..(k0 + p + 1) * n];
        for (i, v) in row[..k0].iter_mut().enumerate() {
            *v = scaled[i * width + p];
        }
        for (q, v) in row[k0..=k0 + p].iter_mut().enumerate() {
            *v = -inverse[p * width + q];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn sweeps_a_two_by_two_by_hand() {
        // G = [[4, 2], [2, 3]], det 8: G⁻¹ = [[3, −2], [−2, 4]] / 8.
        let mut a = vec![4.0, f64::NAN, 2.0, 3.0];
        invert_lower_in_place(&mut a, 2).unwrap();
        assert!((a[0] - 0.375).abs() < 1e-12);
        assert!((a[2] + 0.25).abs() < 1e-12);
        assert!((a[3] - 0.5).abs() < 1e-12);
        assert!(a[1].is_nan(), "the upper triangle is not touched");
    }

    #[test]
    fn inverse_times_matrix_is_identity_across_block_and_tile_edges() {
        for n in [1usize, 3, 97, 250] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
            let m: Vec<f64> = (0..n * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut g = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    g[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>();
                }
                g[i * n + i] += 1.0;
            }
            let mut inv = g.clone();
            invert_lower_in_place(&mut inv, n).unwrap();
            let at = |i: usize, j: usize| {
                if j <= i {
                    inv[i * n + j]
                } else {
                    inv[j * n + i]
                }
            };
            for i in 0..n {
                for j in 0..n {
                    let prod: f64 = (0..n).map(|k| g[i * n + k] * at(k, j)).sum();
                    let expected = if i == j { 1.0 } else { 0.0 };
                    assert!((prod - expected).abs() < 1e-8, "n {n} ({i},{j}) = {prod}");
                }
            }
        }
    }

    #[test]
    fn a_singular_schur_complement_names_its_global_pivot() {
        // Rows 0..150 are the identity; row/column 120 is zero: pivot 120 fails in the
        // second block.
        let n = 150;
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            a[i * n + i] = if i == 120 { 0.0 } else { 1.0 };
        }
        assert_eq!(invert_lower_in_place(&mut a, n).unwrap_err().pivot, 120);
    }
}
