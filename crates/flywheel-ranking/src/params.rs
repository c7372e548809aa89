//! Training rows and the validated hyper-parameters of logistic regression.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{RankingError, Result};
use crate::features::FeatureSchema;

/// One labelled example: the features of a shown candidate and whether it was engaged with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRow {
    /// The feature vector, as [`crate::featurize`] produced it at impression time.
    pub features: Vec<f32>,
    /// 1 for a positive (click, purchase…), 0 for a negative; values in between are soft labels.
    pub label: f32,
    /// The row's weight in the log-loss (1 by default; 0 ignores the row).
    pub weight: f32,
}

/// Hyper-parameters of [`crate::LogisticRegression::train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrParams {
    /// L2 penalty on the standardised coefficients (not on the intercept), in units
    /// of total row weight: the penalty is `l2/2 · ‖β‖²` added to the summed log-loss.
    pub l2: f64,
    /// Newton iterations at most.
    pub max_iterations: usize,
    /// Stop when no coefficient moves more than this in one Newton step.
    pub tolerance: f64,
    /// The probability with which each negative was kept when building the rows
    /// (1 = all kept). Stored in the model; predictions are mapped back to the
    /// full population with `p / (p + (1 − p)/w)`. Leave it at 1 if the sampled
    /// negatives were instead given weight `1/w`.
    pub negative_sampling_rate: f64,
    /// Fraction of rows held out to fit Platt scaling (0 = no Platt scaling).
    pub platt_holdout_fraction: f64,
    /// `None`: hold out the last rows (rows in time order, the honest choice for
    /// logs); `Some(seed)`: a seeded random subset.
    pub holdout_seed: Option<u64>,
}

impl Default for LrParams {
    fn default() -> Self {
        LrParams {
            l2: 1.0,
            max_iterations: 50,
            tolerance: 1e-9,
            negative_sampling_rate: 1.0,
            platt_holdout_fraction: 0.0,
            holdout_seed: None,
        }
    }
}

impl LrParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: f64, hint| RankingError::BadParameter {
            field,
            value: value.to_string(),
            hint,
        };
        if !self.l2.is_finite() || self.l2 < 0.0 {
            return Err(bad(
                "l2",
                self.l2,
                "must be a finite number ≥ 0 (1.0 is a good start)",
            ));
        }
        if self.max_iterations == 0 {
            return Err(bad(
                "max_iterations",
                0.0,
                "must be at least 1 (50 is plenty for Newton)",
            ));
        }
        if !self.tolerance.is_finite() || self.tolerance <= 0.0 {
            return Err(bad(
                "tolerance",
                self.tolerance,
                "must be a finite number > 0",
            ));
        }
        let w = self.negative_sampling_rate;
        if !w.is_finite() || w <= 0.0 || w > 1.0 {
            return Err(bad(
                "negative_sampling_rate",
                w,
                "must be in (0, 1]; 1 means no sampling",
            ));
        }
        let f = self.platt_holdout_fraction;
        if !f.is_finite() || !(0.0..1.0).contains(&f) {
            return Err(bad(
                "platt_holdout_fraction",
                f,
                "must be in [0, 1); 0.2 is typical",
            ));
        }
        Ok(())
    }

    /// Splits row indices into (training, held-out) according to the parameters.
    pub(crate) fn split(&self, rows: usize) -> (Vec<usize>, Vec<usize>) {
        let held = (rows as f64 * self.platt_holdout_fraction).round() as usize;
        let held = held.min(rows.saturating_sub(1));
        let mut order: Vec<usize> = (0..rows).collect();
        if let Some(seed) = self.holdout_seed {
            order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        }
        let mut holdout = order.split_off(rows - held);
        order.sort_unstable();
        holdout.sort_unstable();
        (order, holdout)
    }
}

/// Checks that every row fits the schema and holds usable numbers.
pub(crate) fn validate_rows(rows: &[TrainingRow], schema: &FeatureSchema) -> Result<()> {
    if rows.is_empty() {
        return Err(RankingError::EmptyTrainingSet);
    }
    let bad = |row, field: String, value: f32, hint| RankingError::BadRow {
        row,
        field,
        value: value.to_string(),
        hint,
    };
    for (i, r) in rows.iter().enumerate() {
        if r.features.len() != schema.names.len() {
            return Err(RankingError::WrongWidth {
                row: i,
                found: r.features.len(),
                expected: schema.names.len(),
                schema: format!("v{}", schema.version),
            });
        }
        if !(0.0..=1.0).contains(&r.label) {
            return Err(bad(i, "label".into(), r.label, "labels must be in [0, 1]"));
        }
        if !r.weight.is_finite() || r.weight < 0.0 {
            return Err(bad(
                i,
                "weight".into(),
                r.weight,
                "weights must be finite and ≥ 0",
            ));
        }
        if let Some(j) = r.features.iter().position(|v| !v.is_finite()) {
            let name = &schema.names[j];
            return Err(bad(
                i,
                format!("features[{j}] ({name})"),
                r.features[j],
                "features must be finite",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_holds_out_the_last_rows_or_a_seeded_subset() {
        let p = LrParams {
            platt_holdout_fraction: 0.2,
            ..LrParams::default()
        };
        assert_eq!(p.split(10), ((0..8).collect(), vec![8, 9]));
        let seeded = LrParams {
            holdout_seed: Some(7),
            ..p
        };
        let (a, b) = seeded.split(10);
        assert_eq!(
            seeded.split(10),
            (a.clone(), b.clone()),
            "same seed, same split"
        );
        assert_eq!((a.len(), b.len()), (8, 2));
    }

    #[test]
    fn bad_parameters_and_rows_name_the_field() {
        let p = LrParams {
            l2: -1.0,
            ..LrParams::default()
        };
        assert!(p.validate().unwrap_err().to_string().contains("`l2`"));
        let p = LrParams {
            negative_sampling_rate: 0.0,
            ..LrParams::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("negative_sampling_rate"));
        let schema = FeatureSchema::custom(0, 2);
        let row = TrainingRow {
            features: vec![1.0, f32::NAN],
            label: 1.0,
            weight: 1.0,
        };
        let err = validate_rows(&[row], &schema).unwrap_err().to_string();
        assert!(
            err.contains("row 0") && err.contains("features[1] (x1)"),
            "{err}"
        );
        let short = TrainingRow {
            features: vec![1.0],
            label: 1.0,
            weight: 1.0,
        };
        assert!(matches!(
            validate_rows(&[short], &schema),
            Err(RankingError::WrongWidth { .. })
        ));
    }
}
