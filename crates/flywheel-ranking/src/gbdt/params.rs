//! The validated hyper-parameters of [`crate::GbdtModel::train`].

use serde::{Deserialize, Serialize};

use crate::error::{RankingError, Result};

/// What the trees are fitted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GbdtObjective {
    /// LambdaMART: pairwise logistic gradients inside each group (request), each pair
    /// weighted by how much swapping the two rows would change the group's NDCG.
    /// Predictions are raw scores: only their order within a request means anything.
    #[serde(rename = "lambdarank")]
    LambdaRank,
    /// Binary log-loss: predictions are probabilities (e.g. P(click)).
    Binary,
}

impl GbdtObjective {
    /// The objective's name, as manifests and reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            GbdtObjective::LambdaRank => "lambdarank",
            GbdtObjective::Binary => "binary",
        }
    }
}

/// Hyper-parameters of gradient boosting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbdtParams {
    /// The loss the trees descend.
    pub objective: GbdtObjective,
    /// Boosting rounds at most (one tree each).
    pub trees: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Leaves per tree at most (trees grow best-first, leaf by leaf).
    pub num_leaves: usize,
    /// Depth at most (0: limited by `num_leaves` only).
    pub max_depth: usize,
    /// Rows a leaf needs at least.
    pub min_rows_in_leaf: usize,
    /// Sum of hessians a leaf needs at least.
    pub min_hessian_in_leaf: f64,
    /// L2 penalty on leaf values.
    pub l2: f64,
    /// A split must reduce the loss by more than this.
    pub min_split_gain: f64,
    /// Histogram bins per feature (2..=255), not counting the bin of missing values.
    pub max_bins: usize,
    /// Share of rows (by group for LambdaRank) each tree sees, drawn anew per tree.
    pub row_subsample: f64,
    /// Stop when the validation metric has not improved for this many rounds
    /// (0: never stop early); the model keeps the best round's trees.
    pub early_stopping_rounds: usize,
    /// The cut-off of NDCG in the LambdaRank objective's validation metric.
    pub ndcg_at: usize,
    /// The sigmoid's steepness in the pairwise loss.
    pub sigma: f64,
    /// The seed of every random choice (row subsampling).
    pub seed: u64,
    /// A feature whose value, scaled to one within-group standard deviation per
    /// unit, is the starting margin of every row (LightGBM's init score): the trees
    /// learn corrections of that order, and with no tree kept the model ranks by it.
    /// Empty: start from a constant.
    pub prior_feature: String,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            objective: GbdtObjective::LambdaRank,
            trees: 300,
            learning_rate: 0.05,
            num_leaves: 31,
            max_depth: 0,
            min_rows_in_leaf: 50,
            min_hessian_in_leaf: 1e-3,
            l2: 1.0,
            min_split_gain: 0.0,
            max_bins: 63,
            row_subsample: 1.0,
            early_stopping_rounds: 30,
            ndcg_at: 10,
            sigma: 1.0,
            seed: 42,
            prior_feature: String::new(),
        }
    }
}

impl GbdtParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: String, hint| RankingError::BadParameter { field, value, hint };
        if self.trees == 0 {
            return Err(bad(
                "trees",
                "0".into(),
                "must be at least 1 (300 is typical)",
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(bad(
                "learning_rate",
                self.learning_rate.to_string(),
                "must be in (0, 1] (0.05 to 0.1 is typical)",
            ));
        }
        if self.num_leaves < 2 {
            return Err(bad(
                "num_leaves",
                self.num_leaves.to_string(),
                "must be at least 2 (31 is typical)",
            ));
        }
        if self.min_rows_in_leaf == 0 {
            return Err(bad("min_rows_in_leaf", "0".into(), "must be at least 1"));
        }
        for (field, value) in [
            ("min_hessian_in_leaf", self.min_hessian_in_leaf),
            ("l2", self.l2),
            ("min_split_gain", self.min_split_gain),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(bad(field, value.to_string(), "must be a finite number ≥ 0"));
            }
        }
        if !(2..=255).contains(&self.max_bins) {
            return Err(bad(
                "max_bins",
                self.max_bins.to_string(),
                "must be in 2..=255 (63 is typical)",
            ));
        }
        if !(self.row_subsample > 0.0 && self.row_subsample <= 1.0) {
            return Err(bad(
                "row_subsample",
                self.row_subsample.to_string(),
                "must be in (0, 1]",
            ));
        }
        if self.ndcg_at == 0 {
            return Err(bad(
                "ndcg_at",
                "0".into(),
                "must be at least 1 (10 is typical)",
            ));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(bad(
                "sigma",
                self.sigma.to_string(),
                "must be a finite number > 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        GbdtParams::default().validate().unwrap();
        let err = GbdtParams {
            max_bins: 300,
            ..GbdtParams::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("max_bins"), "{err}");
        let err = GbdtParams {
            learning_rate: 0.0,
            ..GbdtParams::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("learning_rate"), "{err}");
    }
}
