//! Implicit alternating least squares (Hu, Koren & Volinsky 2008). Each half-step is
//! solved by a few warm-started conjugate-gradient steps in `f32` ([`AlsSolver`], the
//! default, `als_cg.rs`) or exactly by a k×k Cholesky per user and per item in `f64`.
//!
//! Each observed pair gets confidence `c = 1 + alpha·weight` and preference 1; unobserved
//! pairs have confidence 1 and preference 0. This is what `implicit`'s ALS computes when
//! fed the matrix `1 + α·x`. Each half-step solves, for every row `u`,
//! `(YᵀY + Yᵤᵀ(Cᵤ − I)Yᵤ + λI)·xᵤ = Yᵤᵀ·Cᵤ·1`.

use std::collections::HashSet;
use std::sync::Arc;

use flywheel_core::{ItemId, UserId};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::als_cg::{cg_half_step, gram_with_ridge};
use crate::error::{Result, RetrievalError};
use crate::ids::IdIndex;
use crate::interactions::{Interactions, SparseRows};
use crate::item_index::{AnnSettings, ItemIndex};
use crate::linalg::{cholesky_in_place, cholesky_solve, dot_f32};
use crate::topk::TopK;

/// Hyper-parameters of implicit ALS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlsParams {
    /// Latent dimension (1..=1024).
    pub factors: usize,
    /// L2 penalty λ on every factor vector (> 0; 10–30 suits MovieLens-like data).
    pub regularization: f32,
    /// Confidence slope: `c = 1 + alpha·weight` (≥ 0).
    pub alpha: f32,
    /// Alternating sweeps (≥ 1).
    pub iterations: usize,
    /// Seed of the random initialisation.
    pub seed: u64,
}

impl Default for AlsParams {
    /// The setting chosen on the MovieLens 100K validation slice (see the crate doc).
    fn default() -> Self {
        AlsParams {
            factors: 48,
            regularization: 30.0,
            alpha: 3.0,
            iterations: 15,
            seed: 42,
        }
    }
}

impl AlsParams {
    fn invalid(param: &'static str, value: String, reason: &'static str) -> RetrievalError {
        RetrievalError::InvalidParameter {
            model: "ALS",
            param,
            value,
            reason,
        }
    }

    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=1024).contains(&self.factors) {
            return Err(Self::invalid(
                "factors",
                self.factors.to_string(),
                "must be in 1..=1024",
            ));
        }
        if !(self.regularization.is_finite() && self.regularization > 0.0) {
            let value = self.regularization.to_string();
            return Err(Self::invalid(
                "regularization",
                value,
                "must be finite and > 0",
            ));
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(Self::invalid(
                "alpha",
                self.alpha.to_string(),
                "must be finite and >= 0",
            ));
        }
        if self.iterations == 0 {
            return Err(Self::invalid(
                "iterations",
                "0".into(),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// How each ALS half-step solves its per-row normal equations. Not stored in the model:
/// a model trained either way has the same shape and serialized form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlsSolver {
    /// `steps` conjugate-gradient steps in `f32`, warm-started from the previous sweep's
    /// vector, with `YᵀY` computed once per half-step (as `implicit`'s default solver).
    ConjugateGradient {
        /// CG steps per row and half-step (1..=1024; 3 is `implicit`'s default).
        steps: usize,
    },
    /// The exact solve: a k×k Cholesky factorisation per row, in `f64`.
    Cholesky,
}

impl Default for AlsSolver {
    /// Three conjugate-gradient steps.
    fn default() -> Self {
        AlsSolver::ConjugateGradient { steps: 3 }
    }
}

impl AlsSolver {
    /// Checks the step count of the CG solver.
    pub fn validate(&self) -> Result<()> {
        match *self {
            AlsSolver::ConjugateGradient { steps } if !(1..=1024).contains(&steps) => Err(
                AlsParams::invalid("cg_steps", steps.to_string(), "must be in 1..=1024"),
            ),
            _ => Ok(()),
        }
    }
}

/// A trained implicit-ALS model: one factor vector per user and per item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlsModel {
    params: AlsParams,
    users: IdIndex<UserId>,
    items: IdIndex<ItemId>,
    /// `users × factors`, row-major.
    user_factors: Vec<f32>,
    /// `items × factors`, row-major.
    item_factors: Vec<f32>,
    /// `YᵀY` of the item factors (lower triangle), cached for fold-in.
    item_gram: Vec<f64>,
    /// An inner-product ANN graph over the item factors, when the catalog is large
    /// enough to want one: ranking then searches it instead of scanning every item. Not
    /// part of the model file (the registry keeps it in a file of its own).
    #[serde(skip)]
    index: Option<Arc<ItemIndex>>,
}

impl AlsModel {
    /// Trains the model with the default solver (three CG steps per half-step).
    /// Errors on invalid parameters or data without any pair.
    pub fn train(data: &Interactions, params: &AlsParams) -> Result<AlsModel> {
        Self::train_with_solver(data, params, AlsSolver::default())
    }

    /// Trains the model with the given solver. Errors on invalid parameters or data
    /// without any pair. Parallel over rows on the current rayon pool.
    pub fn train_with_solver(
        data: &Interactions,
        params: &AlsParams,
        solver: AlsSolver,
    ) -> Result<AlsModel> {
        Self::train_from(data, params, solver, None)
    }

    /// Warm start: trains with the item factors initialised from `previous` (a model
    /// of the same dimension) for every item it knows, and randomly for new items, so
    /// that a few sweeps (`params.iterations`) reach what a cold fit needs many for.
    /// A `previous` of another dimension is ignored (a cold start). Errors as
    /// [`AlsModel::train`].
    pub fn train_warm(
        data: &Interactions,
        params: &AlsParams,
        previous: &AlsModel,
    ) -> Result<AlsModel> {
        Self::train_from(data, params, AlsSolver::default(), Some(previous))
    }

    /// How many of `data`'s items a warm start from `self` would initialise (0 when
    /// the dimensions differ).
    pub fn warm_start_coverage(&self, params: &AlsParams, data: &Interactions) -> usize {
        if params.factors != self.params.factors || !self.is_consistent() {
            return 0;
        }
        data.item_ids()
            .iter()
            .filter(|id| self.items.get(id).is_some())
            .count()
    }

    fn train_from(
        data: &Interactions,
        params: &AlsParams,
        solver: AlsSolver,
        previous: Option<&AlsModel>,
    ) -> Result<AlsModel> {
        params.validate()?;
        solver.validate()?;
        if data.num_pairs() == 0 {
            return Err(RetrievalError::EmptyInteractions { model: "ALS" });
        }
        let k = params.factors;
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        let mut init =
            |rows: usize| -> Vec<f32> { (0..rows * k).map(|_| rng.gen::<f32>() * 0.01).collect() };
        let mut user_factors = init(data.num_users());
        let mut item_factors = init(data.num_items());
        if let Some(previous) = previous {
            previous.copy_item_factors_into(data.item_ids(), k, &mut item_factors);
        }
        for _ in 0..params.iterations {
            match solver {
                AlsSolver::Cholesky => {
                    user_factors = solve_side(data.by_user(), &item_factors, params);
                    item_factors = solve_side(data.by_item(), &user_factors, params);
                }
                AlsSolver::ConjugateGradient { steps } => {
                    cg_side(
                        data.by_user(),
                        &item_factors,
                        &mut user_factors,
                        params,
                        steps,
                    );
                    cg_side(
                        data.by_item(),
                        &user_factors,
                        &mut item_factors,
                        params,
                        steps,
                    );
                }
            }
        }
        Ok(AlsModel {
            params: params.clone(),
            users: data.user_ids().to_vec().into(),
            items: data.item_ids().to_vec().into(),
            user_factors,
            item_gram: gram_matrix(&item_factors, k),
            item_factors,
            index: None,
        })
    }

    /// Overwrites the rows of `target` (one per id of `ids`, `k` wide) with this model's
    /// vectors for the ids it knows, when its dimension is `k`.
    fn copy_item_factors_into(&self, ids: &[ItemId], k: usize, target: &mut [f32]) {
        if k != self.params.factors || !self.is_consistent() {
            return;
        }
        for (row, id) in ids.iter().enumerate() {
            if let Some(vector) = self.item_vector(id) {
                target[row * k..(row + 1) * k].copy_from_slice(vector);
            }
        }
    }

    /// Builds the ANN index over the item factors when `settings` want one for this
    /// catalog's size; returns whether it did.
    pub fn build_index(&mut self, settings: &AnnSettings) -> Result<bool> {
        if !settings.wants_index(self.items.len()) || !self.is_consistent() {
            self.index = None;
            return Ok(false);
        }
        let index = ItemIndex::build(&self.item_factors, self.params.factors, settings)?;
        self.index = Some(Arc::new(index));
        Ok(true)
    }

    /// The ANN index over the item factors, when there is one.
    pub fn index(&self) -> Option<&ItemIndex> {
        self.index.as_deref()
    }

    /// Serves from `index` (read back from its file): refused unless it holds one vector
    /// per item of the model's dimension.
    pub fn attach_index(&mut self, index: ItemIndex) -> Result<()> {
        if index.len() != self.items.len() || index.dimension() != self.params.factors {
            return Err(RetrievalError::Index(format!(
                "the index holds {} vectors of dimension {}; the model has {} items of {} factors",
                index.len(),
                index.dimension(),
                self.items.len(),
                self.params.factors
            )));
        }
        self.index = Some(Arc::new(index));
        Ok(())
    }

    /// Whether the stored arrays agree with the id lists (a model read back from a
    /// damaged snapshot may not); every query on an inconsistent model returns nothing.
    pub fn is_consistent(&self) -> bool {
        let k = self.params.factors;
        self.user_factors.len() == self.users.len() * k
            && self.item_factors.len() == self.items.len() * k
            && self.item_gram.len() == k * k
    }

    /// The parameters the model was trained with.
    pub fn params(&self) -> &AlsParams {
        &self.params
    }

    /// The latent dimension.
    pub fn factors(&self) -> usize {
        self.params.factors
    }

    /// The items the model knows, by index.
    pub fn item_ids(&self) -> &[ItemId] {
        self.items.ids()
    }

    /// A trained user's factor vector (`None` for users unseen in training).
    pub fn user_vector(&self, user: &UserId) -> Option<&[f32]> {
        let k = self.params.factors;
        self.users
            .get(user)
            .and_then(|u| self.user_factors.get(u * k..(u + 1) * k))
    }

    /// Drops every trained user for whom `erase` says yes, with their factor vector
    /// (erasure); returns how many. Item factors are untouched: serving folds in live
    /// histories and never reads a user's trained vector.
    pub fn forget_users(&mut self, erase: &dyn Fn(&UserId) -> bool) -> usize {
        let k = self.params.factors;
        let mut kept_ids = Vec::with_capacity(self.users.len());
        let mut kept_factors = Vec::with_capacity(self.user_factors.len());
        for (index, id) in self.users.ids().iter().enumerate() {
            if erase(id) {
                continue;
            }
            kept_ids.push(id.clone());
            kept_factors.extend_from_slice(&self.user_factors[index * k..(index + 1) * k]);
        }
        let dropped = self.users.len() - kept_ids.len();
        if dropped > 0 {
            self.users = kept_ids.into();
            self.user_factors = kept_factors;
        }
        dropped
    }

    /// A known item's factor vector.
    pub fn item_vector(&self, item: &ItemId) -> Option<&[f32]> {
        let k = self.params.factors;
        self.items
            .get(item)
            .and_then(|i| self.item_factors.get(i * k..(i + 1) * k))
    }

    /// Top-`k` items for a trained user by `xᵤ·yᵢ`, skipping `exclude`. The user's own
    /// training items are *not* removed automatically: pass them in `exclude`.
    /// Unknown users get an empty list (use [`Self::recommend_for_history`]).
    pub fn recommend_for_user(
        &self,
        user: &UserId,
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32)> {
        match self.user_vector(user) {
            Some(vector) => self.recommend_for_vector(vector, k, exclude),
            None => Vec::new(),
        }
    }

    /// Fold-in: solves the user vector from a live history of `(item, weight)` (items
    /// unknown to the model are ignored, duplicate items add up), then ranks as
    /// [`Self::recommend_for_user`]. An empty or entirely unknown history gives an empty list.
    pub fn recommend_for_history(
        &self,
        history: &[(ItemId, f32)],
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32)> {
        match self.fold_in(history) {
            Some(vector) => self.recommend_for_vector(&vector, k, exclude),
            None => Vec::new(),
        }
    }

    /// The least-squares user vector for a history, with the item factors held fixed
    /// (`None` when no item of the history is known).
    pub fn fold_in(&self, history: &[(ItemId, f32)]) -> Option<Vec<f32>> {
        let row: Vec<(u32, f32)> = self
            .items
            .history_weights(history)
            .into_iter()
            .map(|(i, w)| (i as u32, w))
            .collect();
        if row.is_empty() || !self.is_consistent() {
            return None;
        }
        Some(solve_row(
            &row,
            &self.item_factors,
            &self.item_gram,
            &self.params,
        ))
    }

    /// Top-`k` items for an arbitrary user vector (length must equal the factor count;
    /// otherwise the list is empty).
    pub fn recommend_for_vector(
        &self,
        vector: &[f32],
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32)> {
        let f = self.params.factors;
        if vector.len() != f || !self.is_consistent() {
            return Vec::new();
        }
        if let Some(index) = &self.index {
            let excluded: HashSet<usize> =
                exclude.iter().filter_map(|id| self.items.get(id)).collect();
            if let Ok(found) = index.search(vector, k, &|i| excluded.contains(&i)) {
                return self.items.name(found);
            }
        }
        self.recommend_exactly(vector, k, exclude)
    }

    /// [`Self::recommend_for_vector`] by scanning every item (the oracle of the index).
    pub fn recommend_exactly(
        &self,
        vector: &[f32],
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32)> {
        let f = self.params.factors;
        if vector.len() != f || !self.is_consistent() {
            return Vec::new();
        }
        let mask = self.items.mask(exclude);
        let scores: Vec<f32> = self
            .item_factors
            .chunks_exact(f)
            .map(|y| dot_f32(vector, y))
            .collect();
        self.items.name(TopK::of_scores(&scores, k, |i| mask[i]))
    }

    /// The `k` items whose factor vectors have the highest cosine with `item`'s (itself
    /// excluded). Unknown items give an empty list.
    pub fn similar_items(&self, item: &ItemId, k: usize) -> Vec<(ItemId, f32)> {
        let f = self.params.factors;
        let Some(target) = self.items.get(item).filter(|_| self.is_consistent()) else {
            return Vec::new();
        };
        let query = &self.item_factors[target * f..(target + 1) * f];
        let query_norm = dot_f32(query, query).sqrt();
        if query_norm == 0.0 {
            return Vec::new();
        }
        let scores: Vec<f32> = self
            .item_factors
            .chunks_exact(f)
            .map(|y| {
                let norm = dot_f32(y, y).sqrt();
                if norm == 0.0 {
                    0.0
                } else {
                    dot_f32(query, y) / (norm * query_norm)
                }
            })
            .collect();
        self.items
            .name(TopK::of_scores(&scores, k, |i| i == target))
    }
}

/// `YᵀY` of a row-major `rows × k` factor matrix, in `f64`, lower triangle filled.
fn gram_matrix(factors: &[f32], k: usize) -> Vec<f64> {
    factors
        .par_chunks(k * 256)
        .map(|block| {
            let mut gram = vec![0.0f64; k * k];
            for y in block.chunks_exact(k) {
                add_outer(&mut gram, y, 1.0, k);
            }
            gram
        })
        .reduce(
            || vec![0.0f64; k * k],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// `a += scale · y·yᵀ` on the lower triangle.
fn add_outer(a: &mut [f64], y: &[f32], scale: f64, k: usize) {
    for r in 0..k {
        let s = scale * f64::from(y[r]);
        for (value, &yc) in a[r * k..r * k + r + 1].iter_mut().zip(&y[..=r]) {
            *value += s * f64::from(yc);
        }
    }
}

/// Improves every row's vector in place by `steps` CG steps, the other side fixed.
fn cg_side(rows: &SparseRows, other: &[f32], target: &mut [f32], params: &AlsParams, steps: usize) {
    let gram = gram_with_ridge(other, params.factors, params.regularization);
    cg_half_step(rows, other, target, &gram, params.alpha, steps);
}

/// Recomputes every row's vector with the other side's factors fixed.
fn solve_side(rows: &SparseRows, other: &[f32], params: &AlsParams) -> Vec<f32> {
    let k = params.factors;
    let gram = gram_matrix(other, k);
    let mut out = vec![0.0f32; rows.rows() * k];
    out.par_chunks_mut(k).enumerate().for_each(|(r, target)| {
        let row = rows.row(r);
        if !row.is_empty() {
            target.copy_from_slice(&solve_row(row, other, &gram, params));
        }
    });
    out
}

/// Solves one row's normal equations; a row whose system fails (impossible for λ > 0
/// and finite inputs) gets the zero vector rather than NaN.
fn solve_row(row: &[(u32, f32)], other: &[f32], gram: &[f64], params: &AlsParams) -> Vec<f32> {
    let k = params.factors;
    let alpha = f64::from(params.alpha);
    let mut a = gram.to_vec();
    for d in 0..k {
        a[d * k + d] += f64::from(params.regularization);
    }
    let mut b = vec![0.0f64; k];
    for &(j, weight) in row {
        let y = &other[j as usize * k..(j as usize + 1) * k];
        let confidence_minus_one = alpha * f64::from(weight);
        add_outer(&mut a, y, confidence_minus_one, k);
        for (bi, &yi) in b.iter_mut().zip(y) {
            *bi += (1.0 + confidence_minus_one) * f64::from(yi);
        }
    }
    if cholesky_in_place(&mut a, k).is_err() {
        return vec![0.0; k];
    }
    cholesky_solve(&a, k, &mut b);
    b.into_iter()
        .map(|x| if x.is_finite() { x as f32 } else { 0.0 })
        .collect()
}

#[cfg(test)]
#[path = "als_tests.rs"]
mod tests;
