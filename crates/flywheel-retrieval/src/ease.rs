//! EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): the
//! closed-form item-item model `B = I − P·diag(1/diag(P))` with `P = (XᵀX + λI)⁻¹`,
//! i.e. `B[i][j] = −P[i][j] / P[j][j]` off the diagonal and `B[j][j] = 0`.
//! A user with history row `x` scores item `j` as `Σᵢ x[i]·B[i][j]`.
//!
//! `P` is computed the cheaper of two exact ways (both in `f64`):
//! - **primal**: the sparse Gram `XᵀX` (by user, pairs of items) plus `λI`, inverted by
//!   the register-tiled block sweep of [`crate::linalg::spd_inverse`] — `n³` flops;
//! - **dual** (Woodbury), when there are fewer users `m` than items `n`:
//!   `(XᵀX + λI)⁻¹ = (I − Xᵀ(XXᵀ + λI)⁻¹X) / λ`, so only the `m×m` user Gram is inverted
//!   and the rest are sparse-times-dense products: `m³ + 2·nnz·(m + n)` flops.
//!
//! The choice changes nothing but the time (the tests compare both on the same data).

use std::collections::HashSet;

use flywheel_core::ItemId;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RetrievalError};
use crate::ids::IdIndex;
use crate::interactions::{Interactions, SparseRows};
use crate::linalg::{mirror_lower, spd_inverse};
use crate::topk::TopK;

/// The largest catalog EASE accepts: the dense `n×n` inverse costs `O(n³)` time and
/// `8·n²` bytes (3.2 GB at 20,000 items).
pub const EASE_MAX_ITEMS: usize = 20_000;

/// A trained EASE model: the dense `n×n` item-item weight matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EaseModel {
    lambda: f32,
    items: IdIndex<ItemId>,
    /// `B`, row-major: row `i` holds the weights from history item `i` to every item.
    weights: Vec<f32>,
}

impl EaseModel {
    /// Trains EASE with L2 penalty `lambda` (> 0; about 500 suits MovieLens 100K).
    /// The interaction weights are the entries of `X` (use 1.0 for plain implicit data).
    pub fn train(data: &Interactions, lambda: f32) -> Result<EaseModel> {
        if !(lambda.is_finite() && lambda > 0.0) {
            return Err(RetrievalError::InvalidParameter {
                model: "EASE",
                param: "lambda",
                value: lambda.to_string(),
                reason: "must be finite and > 0",
            });
        }
        if data.num_pairs() == 0 {
            return Err(RetrievalError::EmptyInteractions { model: "EASE" });
        }
        let n = data.num_items();
        if n > EASE_MAX_ITEMS {
            return Err(RetrievalError::TooLarge {
                model: "EASE",
                items: n,
                limit: EASE_MAX_ITEMS,
                hint: "train on the most popular items only, or use the ALS channel",
            });
        }
        let p = regularized_gram_inverse(data, f64::from(lambda))?;
        let mut weights = vec![0.0f32; n * n];
        weights.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
            for (j, w) in row.iter_mut().enumerate() {
                if i != j {
                    *w = (-p[i * n + j] / p[j * n + j]) as f32;
                }
            }
        });
        Ok(EaseModel {
            lambda,
            items: data.item_ids().to_vec().into(),
            weights,
        })
    }

    /// Whether the weight matrix matches the item list (a model read back from a damaged
    /// snapshot may not); every query on an inconsistent model returns nothing.
    pub fn is_consistent(&self) -> bool {
        self.weights.len() == self.items.len() * self.items.len()
    }

    /// The penalty the model was trained with.
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// The items the model knows, by index.
    pub fn item_ids(&self) -> &[ItemId] {
        self.items.ids()
    }

    /// The weight from history item `from` to candidate `to` (`None` if either is unknown).
    pub fn weight(&self, from: &ItemId, to: &ItemId) -> Option<f32> {
        let n = self.items.len();
        self.weights
            .get(self.items.get(from)? * n + self.items.get(to)?)
            .copied()
    }

    /// Dense scores of every item for a history (unknown items ignored, duplicates add).
    fn scores(&self, history: &[(usize, f32)]) -> Vec<f32> {
        let n = self.items.len();
        let mut scores = vec![0.0f32; n];
        for &(i, w) in history {
            for (s, b) in scores.iter_mut().zip(&self.weights[i * n..(i + 1) * n]) {
                *s += w * b;
            }
        }
        scores
    }

    /// Top-`k` items for a history of `(item, weight)`, skipping `exclude`. History items
    /// are not removed automatically: pass them in `exclude` when they should not return.
    /// An empty or entirely unknown history gives an empty list.
    pub fn recommend_for_history(
        &self,
        history: &[(ItemId, f32)],
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32)> {
        self.recommend_with_sources(history, k, exclude)
            .into_iter()
            .map(|(item, score, _)| (item, score))
            .collect()
    }

    /// As [`Self::recommend_for_history`], with each item's strongest contributor from the
    /// history (the `i` maximising `x[i]·B[i][j]`), for "because you viewed X".
    pub fn recommend_with_sources(
        &self,
        history: &[(ItemId, f32)],
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32, Option<ItemId>)> {
        let known = self.items.history_weights(history);
        if known.is_empty() || !self.is_consistent() {
            return Vec::new();
        }
        let mask = self.items.mask(exclude);
        let top = TopK::of_scores(&self.scores(&known), k, |j| mask[j]);
        let n = self.items.len();
        top.into_iter()
            .map(|(j, score)| {
                let source = known
                    .iter()
                    .map(|&(i, w)| (i, w * self.weights[i * n + j]))
                    .filter(|&(_, c)| c > 0.0)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(i, _)| self.items.id(i).clone());
                (self.items.id(j).clone(), score, source)
            })
            .collect()
    }
}

/// `P = (XᵀX + λI)⁻¹`, full `n×n`, by the cheaper of the primal and the dual way.
fn regularized_gram_inverse(data: &Interactions, lambda: f64) -> Result<Vec<f64>> {
    let (m, n, nnz) = (
        data.num_users() as f64,
        data.num_items() as f64,
        data.num_pairs() as f64,
    );
    if m.powi(3) + 2.0 * nnz * (m + n) < n.powi(3) {
        dual_inverse(data, lambda)
    } else {
        primal_inverse(data, lambda)
    }
}

fn not_positive_definite(e: crate::linalg::NotPositiveDefinite) -> RetrievalError {
    RetrievalError::NotPositiveDefinite {
        model: "EASE",
        pivot: e.pivot,
        value: e.value,
    }
}

/// `(XᵀX + λI)⁻¹` by inverting the `n×n` item Gram matrix.
fn primal_inverse(data: &Interactions, lambda: f64) -> Result<Vec<f64>> {
    let n = data.num_items();
    let mut gram = gram_lower(data.by_item(), data.by_user(), n);
    for d in 0..n {
        gram[d * n + d] += lambda;
    }
    spd_inverse(gram, n).map_err(not_positive_definite)
}

/// `(XᵀX + λI)⁻¹ = (I − XᵀMX) / λ` with `M = (XXᵀ + λI)⁻¹` (Woodbury): inverts the
/// `m×m` user Gram matrix, then `W = M·X` (`m×n`, a sparse gather per entry) and row `a`
/// of `XᵀW` as the sum of the rows of `W` of item `a`'s users.
fn dual_inverse(data: &Interactions, lambda: f64) -> Result<Vec<f64>> {
    let (m, n) = (data.num_users(), data.num_items());
    let mut user_gram = gram_lower(data.by_user(), data.by_item(), m);
    for d in 0..m {
        user_gram[d * m + d] += lambda;
    }
    // A failing pivot here is a user's; the primal way would name an item, so say the
    // first item instead of a user index that means nothing to the caller.
    let inverse = spd_inverse(user_gram, m).map_err(|e| {
        not_positive_definite(crate::linalg::NotPositiveDefinite {
            pivot: 0,
            value: e.value,
        })
    })?;
    let w = transpose(&items_times_inverse(data.by_item(), &inverse, m), n, m);
    let mut p = lower_items_times(data.by_item(), &w, n);
    p.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(a, p_row)| {
            p_row[a] += 1.0;
            p_row[..=a].iter_mut().for_each(|p| *p /= lambda);
        });
    mirror_lower(&mut p, n);
    Ok(p)
}

/// `XᵀM` (`n×m`, row-major): row `b` is the sum of the rows of `M` of item `b`'s users,
/// each an axpy over contiguous memory.
fn items_times_inverse(by_item: &SparseRows, inverse: &[f64], m: usize) -> Vec<f64> {
    let n = by_item.rows();
    let mut out = vec![0.0f64; n * m];
    out.par_chunks_mut(m.max(1))
        .enumerate()
        .for_each(|(b, row)| {
            for &(v, x) in by_item.row(b) {
                let m_row = &inverse[v as usize * m..(v as usize + 1) * m];
                let x = f64::from(x);
                row.iter_mut().zip(m_row).for_each(|(o, &y)| *o += x * y);
            }
        });
    out
}

/// The `cols × rows` transpose of a row-major `rows × cols` matrix, by 32×32 tiles.
fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    const TILE: usize = 32;
    let mut out = vec![0.0f64; rows * cols];
    out.par_chunks_mut((TILE * rows).max(1))
        .enumerate()
        .for_each(|(block, out_rows)| {
            let c0 = block * TILE;
            let height = out_rows.len() / rows.max(1);
            for r0 in (0..rows).step_by(TILE) {
                for c in 0..height {
                    for r in r0..(r0 + TILE).min(rows) {
                        out_rows[c * rows + r] = a[r * cols + c0 + c];
                    }
                }
            }
        });
    out
}

/// Columns of `XᵀW` summed per pass, so the touched part of `W` stays in L2.
const COLUMN_BLOCK: usize = 192;
/// Items per parallel task of [`lower_items_times`].
const ITEM_CHUNK: usize = 16;

/// `−XᵀW` on and below the diagonal (`n×n`, row-major, upper triangle zero): row `a`
/// minus the rows of `W` (`m×n`) of item `a`'s users, column block by column block.
fn lower_items_times(by_item: &SparseRows, w: &[f64], n: usize) -> Vec<f64> {
    let mut p = vec![0.0f64; n * n];
    p.par_chunks_mut((ITEM_CHUNK * n).max(1))
        .enumerate()
        .for_each(|(chunk, rows)| {
            let first = chunk * ITEM_CHUNK;
            let count = rows.len() / n.max(1);
            for c0 in (0..first + count).step_by(COLUMN_BLOCK) {
                for r in 0..count {
                    let a = first + r;
                    let c1 = (c0 + COLUMN_BLOCK).min(a + 1);
                    if c1 <= c0 {
                        continue;
                    }
                    let p_part = &mut rows[r * n + c0..r * n + c1];
                    for &(u, x) in by_item.row(a) {
                        let x = f64::from(x);
                        let w_part = &w[u as usize * n + c0..u as usize * n + c1];
                        p_part
                            .iter_mut()
                            .zip(w_part)
                            .for_each(|(p, &w)| *p -= x * w);
                    }
                }
            }
        });
    p
}

/// The Gram matrix of the rows of `by_row` (`dim` of them): `G[a][b] = Σ_u x[u][a]·x[u][b]`, rows
/// filled up to the diagonal (`b ≤ a`), parallel by row. `by_column` is the same matrix
/// indexed the other way (for the item Gram: by item, then by user).
fn gram_lower(by_row: &SparseRows, by_column: &SparseRows, dim: usize) -> Vec<f64> {
    let mut gram = vec![0.0f64; dim * dim];
    gram.par_chunks_mut(dim.max(1))
        .enumerate()
        .for_each(|(a, row)| {
            for &(u, wa) in by_row.row(a) {
                for &(b, wb) in by_column.row(u as usize) {
                    if b as usize > a {
                        break;
                    }
                    row[b as usize] += f64::from(wa) * f64::from(wb);
                }
            }
        });
    gram
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::UserId;

    fn data(pairs: &[(&str, &str)]) -> Interactions {
        Interactions::from_triples(
            pairs
                .iter()
                .map(|(u, i)| (UserId::new_unchecked(*u), ItemId::new_unchecked(*i), 1.0)),
        )
    }

    #[test]
    fn matches_the_closed_form_on_a_two_item_case() {
        // X = [[1,1],[1,0]] → XᵀX = [[2,1],[1,1]]; with λ = 1: A = [[3,1],[1,2]],
        // P = A⁻¹ = [[2,−1],[−1,3]]/5, so B[0][1] = −P01/P11 = 1/3 and B[1][0] = 1/2.
        let model = EaseModel::train(&data(&[("u1", "a"), ("u1", "b"), ("u2", "a")]), 1.0).unwrap();
        let (a, b) = (ItemId::new_unchecked("a"), ItemId::new_unchecked("b"));
        assert!((model.weight(&a, &b).unwrap() - 1.0 / 3.0).abs() < 1e-6);
        assert!((model.weight(&b, &a).unwrap() - 0.5).abs() < 1e-6);
        assert_eq!(model.weight(&a, &a), Some(0.0));
        let recs =
            model.recommend_with_sources(&[(a.clone(), 1.0)], 5, &HashSet::from([a.clone()]));
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].0, b);
        assert!((recs[0].1 - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(recs[0].2, Some(a));
    }

    /// 400 users with 5 to 60 of 230 items (more than two pivot blocks), seeded.
    fn random_data() -> Interactions {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let all: Vec<usize> = (0..230).collect();
        let mut triples = Vec::new();
        for u in 0..400 {
            let n = rng.gen_range(5..=60);
            for &i in all.choose_multiple(&mut rng, n) {
                let user = UserId::new_unchecked(format!("u{u}"));
                triples.push((user, ItemId::new_unchecked(format!("i{i}")), 1.0));
            }
        }
        Interactions::from_triples(triples)
    }

    #[test]
    fn the_inverse_of_the_gram_matrix_times_the_gram_matrix_is_the_identity() {
        let data = random_data();
        let n = data.num_items();
        let mut gram = gram_lower(data.by_item(), data.by_user(), n);
        for d in 0..n {
            gram[d * n + d] += 20.0;
        }
        let full = |i: usize, j: usize| gram[i.max(j) * n + i.min(j)];
        let p = spd_inverse(gram.clone(), n).unwrap();
        for i in 0..n {
            for j in 0..n {
                let prod: f64 = (0..n).map(|k| full(i, k) * p[k * n + j]).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((prod - expected).abs() < 1e-9, "({i},{j}) = {prod}");
            }
        }
    }

    #[test]
    fn weights_equal_the_closed_form_from_an_exact_column_by_column_inverse() {
        use crate::linalg::{cholesky_in_place, cholesky_solve};
        let data = random_data();
        let n = data.num_items();
        let lambda = 20.0;
        let model = EaseModel::train(&data, lambda).unwrap();
        let mut l = gram_lower(data.by_item(), data.by_user(), n);
        for d in 0..n {
            l[d * n + d] += f64::from(lambda);
        }
        cholesky_in_place(&mut l, n).unwrap();
        let mut worst = 0.0f64;
        for j in 0..n {
            let mut column = vec![0.0; n];
            column[j] = 1.0;
            cholesky_solve(&l, n, &mut column);
            for i in 0..n {
                let expected = if i == j { 0.0 } else { -column[i] / column[j] };
                let got = f64::from(model.weights[i * n + j]);
                worst = worst.max((got - expected).abs());
            }
        }
        assert!(worst < 1e-6, "largest weight difference {worst}");
    }

    #[test]
    fn the_dual_way_equals_the_primal_way_both_ways_round() {
        // random_data has more users than items (the primal way is chosen); the same data
        // transposed has fewer (the dual way is chosen). Both ways agree on both.
        let data = random_data();
        let transposed = Interactions::from_triples(data.triples().map(|(u, i, w)| {
            (
                UserId::new_unchecked(data.item_ids()[i].as_str()),
                ItemId::new_unchecked(data.user_ids()[u].as_str()),
                w,
            )
        }));
        for d in [&data, &transposed] {
            let primal = primal_inverse(d, 20.0).unwrap();
            let dual = dual_inverse(d, 20.0).unwrap();
            let worst = primal
                .iter()
                .zip(&dual)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f64, f64::max);
            assert!(worst < 1e-12, "largest difference {worst}");
        }
    }

    #[test]
    fn rejects_empty_data_and_bad_lambda() {
        let empty = Interactions::from_triples(Vec::new());
        assert!(matches!(
            EaseModel::train(&empty, 10.0),
            Err(RetrievalError::EmptyInteractions { .. })
        ));
        let some = data(&[("u", "a")]);
        assert!(EaseModel::train(&some, 0.0).is_err());
        assert!(EaseModel::train(&some, f32::NAN).is_err());
        let model = EaseModel::train(&some, 1.0).unwrap();
        assert!(model
            .recommend_for_history(&[], 3, &HashSet::new())
            .is_empty());
    }
}
