//! The conjugate-gradient half-step of implicit ALS, in `f32` (Takács, Pilászy & Tikk
//! 2011, "Applications of the conjugate gradient method for implicit feedback
//! collaborative filtering"; the solver `implicit` uses by default).
//!
//! For every row `u` the normal equations are `A·x = b` with
//! `A = YᵀY + λI + Σᵢ (cᵢ − 1)·yᵢyᵢᵀ` and `b = Σᵢ cᵢ·yᵢ` over the row's observed items.
//! `YᵀY + λI` is computed once per half-step ([`gram_with_ridge`]); `A` is never formed:
//! each product `A·p` costs one k×k mat-vec plus two passes over the row's item vectors.
//! A few steps warm-started from the previous sweep's vector are enough, because the
//! vector changes little between sweeps.

use rayon::prelude::*;

use crate::interactions::SparseRows;

/// Rows of the factor matrix per partial Gram matrix (each summed in `f32`, the partial
/// sums added in `f64`, so long factor matrices lose no precision).
const GRAM_CHUNK_ROWS: usize = 256;
/// Below this squared residual norm a row counts as solved (as `implicit`).
const SOLVED: f32 = 1e-20;

/// `YᵀY + ridge·I` of a row-major `rows × k` factor matrix, full (both triangles), `f32`.
pub(crate) fn gram_with_ridge(factors: &[f32], k: usize, ridge: f32) -> Vec<f32> {
    let sum = factors
        .par_chunks(k * GRAM_CHUNK_ROWS)
        .map(|block| partial_gram(block, k))
        .fold(
            || vec![0.0f64; k * k],
            |mut total, part| {
                total
                    .iter_mut()
                    .zip(&part)
                    .for_each(|(t, &p)| *t += f64::from(p));
                total
            },
        )
        .reduce(
            || vec![0.0f64; k * k],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let mut gram: Vec<f32> = sum.into_iter().map(|v| v as f32).collect();
    for d in 0..k {
        gram[d * k + d] += ridge;
    }
    gram
}

/// `Σ y·yᵀ` over the rows of one block, full k×k, accumulated row by row as axpys.
fn partial_gram(block: &[f32], k: usize) -> Vec<f32> {
    let mut gram = vec![0.0f32; k * k];
    for y in block.chunks_exact(k) {
        for (row, &scale) in gram.chunks_exact_mut(k).zip(y) {
            axpy(row, scale, y);
        }
    }
    gram
}

/// One half-step: improves every row of `target` (warm start: its current values) by
/// `steps` conjugate-gradient steps on that row's normal equations. Rows without any
/// interaction get the zero vector (their exact solution).
pub(crate) fn cg_half_step(
    rows: &SparseRows,
    other: &[f32],
    target: &mut [f32],
    gram: &[f32],
    alpha: f32,
    steps: usize,
) {
    let k = gram.len().isqrt();
    target
        .par_chunks_mut(k)
        .enumerate()
        .with_min_len(8)
        .for_each_init(
            || Work::new(k),
            |work, (r, x)| {
                let row = rows.row(r);
                let system = RowSystem {
                    row,
                    other,
                    gram,
                    alpha,
                    k,
                };
                if row.is_empty() {
                    x.fill(0.0);
                } else {
                    system.solve(x, steps, work);
                }
            },
        );
}

/// Scratch vectors of one worker (allocated once per rayon job, not per row).
pub(crate) struct Work {
    residual: Vec<f32>,
    direction: Vec<f32>,
    product: Vec<f32>,
    /// The row's item vectors copied side by side (read 2·(steps + 1) times, so from L1
    /// rather than scattered over the factor matrix).
    gathered: Vec<f32>,
    /// `cᵢ − 1 = alpha·weightᵢ` per gathered vector.
    slopes: Vec<f32>,
    /// One number per gathered vector (its dot product with the current vector).
    dots: Vec<f32>,
}

impl Work {
    pub(crate) fn new(k: usize) -> Self {
        Work {
            residual: vec![0.0; k],
            direction: vec![0.0; k],
            product: vec![0.0; k],
            gathered: Vec::new(),
            slopes: Vec::new(),
            dots: Vec::new(),
        }
    }
}

/// One row's normal equations, never formed: the Gram matrix plus the row's items.
pub(crate) struct RowSystem<'a> {
    /// The row's `(other index, weight)` pairs.
    pub(crate) row: &'a [(u32, f32)],
    /// The other side's factors, row-major `· × k`.
    pub(crate) other: &'a [f32],
    /// `YᵀY + λI`, full k×k.
    pub(crate) gram: &'a [f32],
    /// Confidence slope: `c = 1 + alpha·weight`.
    pub(crate) alpha: f32,
    /// The latent dimension.
    pub(crate) k: usize,
}

impl RowSystem<'_> {
    /// Copies the row's item vectors and confidence slopes into `work`.
    fn gather(&self, gathered: &mut Vec<f32>, slopes: &mut Vec<f32>) {
        gathered.clear();
        slopes.clear();
        for &(j, weight) in self.row {
            let start = j as usize * self.k;
            gathered.extend_from_slice(&self.other[start..start + self.k]);
            slopes.push(self.alpha * weight);
        }
    }

    /// `out = b − A·x = −G·x + Σᵢ (1 + sᵢ − sᵢ·yᵢ·x)·yᵢ` (`sᵢ = cᵢ − 1`).
    fn residual(&self, items: &RowItems, x: &[f32], out: &mut [f32], dots: &mut Vec<f32>) {
        symmetric_times(self.gram, x, out);
        out.iter_mut().for_each(|v| *v = -*v);
        items.dots(x, dots);
        dots.iter_mut()
            .zip(items.slopes)
            .for_each(|(d, &s)| *d = 1.0 + s - s * *d);
        items.add_combination(dots, out);
    }

    /// `out = A·p = G·p + Σᵢ sᵢ·(yᵢ·p)·yᵢ`.
    fn times(&self, items: &RowItems, p: &[f32], out: &mut [f32], dots: &mut Vec<f32>) {
        symmetric_times(self.gram, p, out);
        items.dots(p, dots);
        dots.iter_mut()
            .zip(items.slopes)
            .for_each(|(d, &s)| *d *= s);
        items.add_combination(dots, out);
    }

    /// `steps` CG iterations from `x`; a non-finite result becomes the zero vector.
    pub(crate) fn solve(&self, x: &mut [f32], steps: usize, work: &mut Work) {
        let Work {
            residual,
            direction,
            product,
            gathered,
            slopes,
            dots,
        } = work;
        self.gather(gathered, slopes);
        let items = RowItems {
            vectors: gathered,
            slopes,
            k: self.k,
        };
        self.residual(&items, x, residual, dots);
        direction.copy_from_slice(residual);
        let mut norm = dot(residual, residual);
        for _ in 0..steps {
            if norm < SOLVED {
                break;
            }
            self.times(&items, direction, product, dots);
            let curvature = dot(direction, product);
            if curvature.is_nan() || curvature <= 0.0 {
                break;
            }
            let step = norm / curvature;
            axpy(x, step, direction);
            axpy(residual, -step, product);
            let next = dot(residual, residual);
            let beta = next / norm;
            direction
                .iter_mut()
                .zip(residual.iter())
                .for_each(|(d, &r)| *d = r + beta * *d);
            norm = next;
        }
        if !x.iter().all(|v| v.is_finite()) {
            x.fill(0.0);
        }
    }
}

/// A row's item vectors side by side (`slopes.len() × k`, row-major) and their slopes.
struct RowItems<'a> {
    vectors: &'a [f32],
    slopes: &'a [f32],
    k: usize,
}

impl RowItems<'_> {
    /// `out[i] = yᵢ·v` for every item vector (a mat-vec, four vectors per pass).
    fn dots(&self, v: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.slopes.len(), 0.0);
        symmetric_times(self.vectors, v, out);
    }

    /// `out += Σᵢ coefficients[i]·yᵢ`, four vectors per pass over `out`.
    fn add_combination(&self, coefficients: &[f32], out: &mut [f32]) {
        let k = self.k;
        let mut blocks = self.vectors.chunks_exact(MATVEC_ROWS * k);
        let mut coefficient_blocks = coefficients.chunks_exact(MATVEC_ROWS);
        for (block, c) in (&mut blocks).zip(&mut coefficient_blocks) {
            let (y0, rest) = block.split_at(k);
            let (y1, rest) = rest.split_at(k);
            let (y2, y3) = rest.split_at(k);
            for ((((o, a), b), d), e) in out.iter_mut().zip(y0).zip(y1).zip(y2).zip(y3) {
                *o += c[0] * a + c[1] * b + c[2] * d + c[3] * e;
            }
        }
        for (y, &c) in blocks
            .remainder()
            .chunks_exact(k)
            .zip(coefficient_blocks.remainder())
        {
            axpy(out, c, y);
        }
    }
}

/// Rows of `G` per pass of [`symmetric_times`] (each load of `v` serves all of them).
const MATVEC_ROWS: usize = 4;
/// Columns per step of [`symmetric_times`]: two SSE registers per row.
const MATVEC_LANES: usize = 8;

/// `out = G·v` for a full row-major `G` (`out.len() × v.len()`, symmetric or not: the
/// item vectors use it too), four rows at a time.
fn symmetric_times(gram: &[f32], v: &[f32], out: &mut [f32]) {
    let k = v.len();
    let (v_blocks, v_tail) = v.as_chunks::<MATVEC_LANES>();
    let split = v_blocks.len() * MATVEC_LANES;
    let mut outs = out.chunks_exact_mut(MATVEC_ROWS);
    let mut rows = gram.chunks_exact(MATVEC_ROWS * k);
    for (o, block) in (&mut outs).zip(&mut rows) {
        let mut acc = [[0.0f32; MATVEC_LANES]; MATVEC_ROWS];
        for (r, acc_row) in acc.iter_mut().enumerate() {
            let (g_blocks, _) = block[r * k..r * k + split].as_chunks::<MATVEC_LANES>();
            for (g, vb) in g_blocks.iter().zip(v_blocks) {
                for lane in 0..MATVEC_LANES {
                    acc_row[lane] += g[lane] * vb[lane];
                }
            }
        }
        for (r, (value, acc_row)) in o.iter_mut().zip(&acc).enumerate() {
            let tail: f32 = block[r * k + split..(r + 1) * k]
                .iter()
                .zip(v_tail)
                .map(|(g, x)| g * x)
                .sum();
            *value = acc_row.iter().sum::<f32>() + tail;
        }
    }
    let done = out.len() / MATVEC_ROWS * MATVEC_ROWS;
    for (o, row) in out[done..].iter_mut().zip(gram[done * k..].chunks_exact(k)) {
        *o = dot(row, v);
    }
}

/// `y += a·x`.
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(yi, &xi)| *yi += a * xi);
}

/// Lanes of [`dot`]'s accumulator: four SSE registers of four `f32`, enough independent
/// additions to hide the adder's latency.
const DOT_LANES: usize = 16;

/// The dot product with [`DOT_LANES`] independent partial sums (vectorised by LLVM).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let (a_blocks, a_tail) = a.as_chunks::<DOT_LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<DOT_LANES>();
    let mut acc = [0.0f32; DOT_LANES];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for lane in 0..DOT_LANES {
            acc[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    let mut width = DOT_LANES;
    while width > 1 {
        width /= 2;
        for lane in 0..width {
            acc[lane] += acc[lane + width];
        }
    }
    acc[0] + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum_for_every_length() {
        for len in [0usize, 1, 5, 16, 17, 64, 70] {
            let a: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..len).map(|i| 1.0 - i as f32 * 0.25).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot(&a, &b) - plain).abs() <= 1e-3 * (1.0 + plain.abs()),
                "{len}"
            );
        }
    }

    #[test]
    fn symmetric_times_matches_row_dots_for_ragged_sizes() {
        for k in [1usize, 3, 4, 9, 64, 70] {
            let g: Vec<f32> = (0..k * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let v: Vec<f32> = (0..k).map(|i| i as f32 * 0.1 - 1.0).collect();
            let mut out = vec![0.0; k];
            symmetric_times(&g, &v, &mut out);
            for (r, &o) in out.iter().enumerate() {
                let plain: f32 = g[r * k..(r + 1) * k]
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| a * b)
                    .sum();
                assert!(
                    (o - plain).abs() <= 1e-3 * (1.0 + plain.abs()),
                    "k {k} row {r}"
                );
            }
        }
    }

    #[test]
    fn gram_with_ridge_is_yty_plus_ridge() {
        // Y = [[1, 2], [3, 4]]: YᵀY = [[10, 14], [14, 20]].
        let gram = gram_with_ridge(&[1.0, 2.0, 3.0, 4.0], 2, 0.5);
        assert_eq!(gram, vec![10.5, 14.0, 14.0, 20.5]);
    }
}
