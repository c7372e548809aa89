//! A fitted regression tree, evaluated on raw feature values.

use serde::{Deserialize, Serialize};

/// One internal node: rows with `features[feature] ≤ threshold` go left, others
/// right, and missing values (NaN) go where `missing_left` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// The feature's index in the schema.
    pub feature: u32,
    /// The largest value that goes left.
    pub threshold: f32,
    /// Where NaN goes.
    pub missing_left: bool,
    /// The left child: `>= 0` a node index, `< 0` the leaf `!child`.
    pub left: i32,
    /// The right child, coded like `left`.
    pub right: i32,
}

/// A regression tree: internal nodes (node 0 is the root) and leaf values, shrinkage
/// already applied. A tree without nodes is a single leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The internal nodes.
    pub splits: Vec<Split>,
    /// The leaf values.
    pub leaves: Vec<f64>,
}

impl Tree {
    /// The value of the leaf the row falls into.
    pub fn predict(&self, features: &[f32]) -> f64 {
        self.predict_with(|j| features.get(j).copied().unwrap_or(f32::NAN))
    }

    /// The value of the leaf a row falls into, the row given as a function from
    /// feature index to value (NaN: missing).
    pub fn predict_with(&self, value: impl Fn(usize) -> f32) -> f64 {
        self.leaves
            .get(self.leaf_with(value))
            .copied()
            .unwrap_or(0.0)
    }

    fn leaf_with(&self, value: impl Fn(usize) -> f32) -> usize {
        if self.splits.is_empty() {
            return 0;
        }
        let mut node = 0i32;
        while node >= 0 {
            let Some(split) = self.splits.get(node as usize) else {
                return 0;
            };
            let x = value(split.feature as usize);
            let left = if x.is_nan() {
                split.missing_left
            } else {
                x <= split.threshold
            };
            node = if left { split.left } else { split.right };
        }
        (!node) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_thresholds_and_missing_values_their_default() {
        // x0 ≤ 1 → (x1 ≤ 0 → -1, else 2), else 5; NaN in x0 goes right, in x1 left.
        let tree = Tree {
            splits: vec![
                Split {
                    feature: 0,
                    threshold: 1.0,
                    missing_left: false,
                    left: 1,
                    right: !2,
                },
                Split {
                    feature: 1,
                    threshold: 0.0,
                    missing_left: true,
                    left: !0,
                    right: !1,
                },
            ],
            leaves: vec![-1.0, 2.0, 5.0],
        };
        assert_eq!(tree.predict(&[1.0, 0.0]), -1.0);
        assert_eq!(tree.predict(&[0.5, 0.1]), 2.0);
        assert_eq!(tree.predict(&[1.5, -3.0]), 5.0);
        assert_eq!(tree.predict(&[f32::NAN, -3.0]), 5.0);
        assert_eq!(tree.predict(&[0.0, f32::NAN]), -1.0);
        let stump = Tree {
            splits: vec![],
            leaves: vec![0.25],
        };
        assert_eq!(stump.predict(&[9.0]), 0.25);
    }
}
