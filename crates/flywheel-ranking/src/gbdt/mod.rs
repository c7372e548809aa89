//! Gradient-boosted decision trees, written here (no C++ library): the ranker that
//! ships, and the pointwise P(click) / P(purchase) models.
//!
//! **Histograms.** Each feature is cut into at most `max_bins` bins of similar row
//! counts ([`binning`]); bin 0 holds missing values (NaN). A tree grows best leaf
//! first: every leaf keeps a histogram of gradient and hessian sums per (feature,
//! bin); the best split of a leaf is the bin boundary, with missing values sent left
//! or right, that maximises `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)`; after a split
//! only the smaller child's histogram is built and the larger one is the parent's
//! minus it. Leaf values are the Newton step `−G/(H+λ)`, shrunk by the learning rate.
//! Thresholds are training values, so trees run on raw features at serving.
//!
//! **Objectives** ([`GbdtObjective`]). *LambdaRank* (LambdaMART): within each
//! group (one request's candidates), every pair of rows with different labels pulls
//! the better one up and the worse one down by the derivative of a pairwise logistic
//! loss, weighted by `|ΔNDCG|` of swapping them at the current order; a group's
//! lambdas are normalised by `log2(1 + Σ|λ|)/Σ|λ|`. *Binary* log-loss gives
//! probabilities. Early stopping watches NDCG@k (or the log-loss) on a validation
//! slice and keeps the best round.
//!
//! **Training-only features** ([`TrainingOnlyFeature`]) follow the schema's
//! features in training rows and are held at a constant when serving: the logged
//! position, so the trees separate "it was on top" from "it is relevant".

mod binning;
mod grow;
mod model;
mod objective;
mod params;
mod tree;

pub use model::{FeatureImportance, GbdtModel, GbdtReport, GroupedRows, TrainingOnlyFeature};
pub use params::{GbdtObjective, GbdtParams};
pub use tree::{Split, Tree};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FeatureSchema, TrainingRow};
    use rand::{Rng, SeedableRng};

    /// A uniform draw in `[0, 1)`.
    fn uniform(rng: &mut rand::rngs::StdRng) -> f32 {
        rng.gen::<f32>()
    }

    const WIDTH: usize = 5;

    /// The true relevance of a row: a non-linear function of its features.
    fn truth(x: &[f32]) -> f32 {
        2.0 * x[0] - x[1] + 1.5 * x[2] * x[3]
    }

    /// Groups of 20 rows; in each, the 3 rows of highest true relevance are labelled 1.
    fn ranking_fixture(groups: usize, seed: u64) -> (Vec<TrainingRow>, Vec<usize>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut rows = Vec::new();
        for _ in 0..groups {
            let mut group: Vec<Vec<f32>> = (0..20)
                .map(|_| (0..WIDTH).map(|_| uniform(&mut rng)).collect())
                .collect();
            group.sort_by(|a, b| truth(b).total_cmp(&truth(a)));
            for (rank, features) in group.into_iter().enumerate() {
                rows.push(TrainingRow {
                    features,
                    label: if rank < 3 { 1.0 } else { 0.0 },
                    weight: 1.0,
                });
            }
        }
        // Shuffle rows inside groups so the order carries no information.
        let sizes = vec![20; groups];
        let mut start = 0;
        for size in &sizes {
            let slice = &mut rows[start..start + size];
            slice.reverse();
            slice.rotate_left(7);
            start += size;
        }
        (rows, sizes)
    }

    fn params(objective: GbdtObjective) -> GbdtParams {
        GbdtParams {
            objective,
            trees: 150,
            learning_rate: 0.1,
            num_leaves: 15,
            min_rows_in_leaf: 10,
            early_stopping_rounds: 20,
            ..GbdtParams::default()
        }
    }

    #[test]
    fn lambdamart_learns_the_known_order_and_beats_every_single_feature() {
        let (train, train_sizes) = ranking_fixture(300, 1);
        let (valid, valid_sizes) = ranking_fixture(100, 2);
        let model = GbdtModel::train(
            FeatureSchema::custom(0, WIDTH),
            vec![],
            GroupedRows {
                rows: &train,
                group_sizes: &train_sizes,
            },
            Some(GroupedRows {
                rows: &valid,
                group_sizes: &valid_sizes,
            }),
            &params(GbdtObjective::LambdaRank),
        )
        .unwrap();
        let report = model.report();
        assert!(report.metric_best > 0.9, "{report:?}");
        assert!(
            report.metric_best > report.metric_at_start + 0.3,
            "{report:?}"
        );
        // On fresh rows, the model's order beats ranking by any one feature.
        let (test, test_sizes) = ranking_fixture(100, 3);
        let labels: Vec<f32> = test.iter().map(|r| r.label).collect();
        let mut start = 0;
        let groups: Vec<std::ops::Range<usize>> = test_sizes
            .iter()
            .map(|s| {
                start += s;
                start - s..start
            })
            .collect();
        let scores: Vec<f64> = test.iter().map(|r| model.predict(&r.features)).collect();
        let ndcg = super::objective::mean_ndcg(&scores, &labels, &groups, 10);
        for j in 0..WIDTH {
            let single: Vec<f64> = test.iter().map(|r| f64::from(r.features[j])).collect();
            let by_feature = super::objective::mean_ndcg(&single, &labels, &groups, 10);
            assert!(
                ndcg > by_feature + 0.1,
                "feature {j}: {by_feature} vs model {ndcg}"
            );
        }
        assert_eq!(
            model.importances()[0].name,
            "x0",
            "{:?}",
            model.importances()
        );
    }

    #[test]
    fn binary_objective_gives_calibrated_probabilities_and_handles_missing_values() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        // P(y = 1) = 0.8 when x0 > 0.5 or x0 is missing, else 0.1.
        let rows: Vec<TrainingRow> = (0..20_000)
            .map(|i| {
                let x0 = if i % 5 == 0 {
                    f32::NAN
                } else {
                    uniform(&mut rng)
                };
                let p = if x0.is_nan() || x0 > 0.5 { 0.8 } else { 0.1 };
                TrainingRow {
                    features: vec![x0, uniform(&mut rng)],
                    label: f32::from(u8::from(uniform(&mut rng) < p)),
                    weight: 1.0,
                }
            })
            .collect();
        let sizes = vec![1; rows.len()];
        let (fit, valid) = rows.split_at(16_000);
        let model = GbdtModel::train(
            FeatureSchema::custom(0, 2),
            vec![],
            GroupedRows {
                rows: fit,
                group_sizes: &sizes[..16_000],
            },
            Some(GroupedRows {
                rows: valid,
                group_sizes: &sizes[16_000..],
            }),
            &params(GbdtObjective::Binary),
        )
        .unwrap();
        for (x, p) in [([0.9, 0.5], 0.8), ([0.2, 0.5], 0.1), ([f32::NAN, 0.5], 0.8)] {
            let predicted = model.predict(&x);
            assert!((predicted - p).abs() < 0.04, "{x:?}: {predicted} vs {p}");
        }
        assert!(
            model.report().trees_kept < model.report().rounds_run,
            "early stopping ran"
        );
    }

    #[test]
    fn a_training_only_feature_is_held_at_its_serving_value() {
        // The label depends only on the training-only column (a "position").
        let rows: Vec<TrainingRow> = (0..2_000)
            .map(|i| TrainingRow {
                features: vec![(i % 13) as f32, (i % 2) as f32],
                label: (i % 2) as f32,
                weight: 1.0,
            })
            .collect();
        let sizes = vec![1; rows.len()];
        let model = GbdtModel::train(
            FeatureSchema::custom(0, 1),
            vec![TrainingOnlyFeature {
                name: "position".into(),
                serving_value: 1.0,
            }],
            GroupedRows {
                rows: &rows,
                group_sizes: &sizes,
            },
            None,
            &params(GbdtObjective::Binary),
        )
        .unwrap();
        // Serving passes only the schema's feature; the held value decides.
        assert!(model.predict(&[3.0]) > 0.95);
        assert_eq!(model.predict(&[3.0]), model.predict(&[7.0]));
        assert_eq!(model.importances()[0].name, "position");
    }

    #[test]
    fn bad_rows_are_refused_with_their_index() {
        let rows = vec![
            TrainingRow {
                features: vec![0.0, 1.0],
                label: 1.0,
                weight: 1.0,
            },
            TrainingRow {
                features: vec![0.0],
                label: 0.0,
                weight: 1.0,
            },
        ];
        let err = GbdtModel::train(
            FeatureSchema::custom(0, 2),
            vec![],
            GroupedRows {
                rows: &rows,
                group_sizes: &[2],
            },
            None,
            &GbdtParams::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
        let err = GbdtModel::train(
            FeatureSchema::custom(0, 1),
            vec![],
            GroupedRows {
                rows: &rows[1..],
                group_sizes: &[3],
            },
            None,
            &GbdtParams::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("group"), "{err}");
    }

    #[test]
    fn a_model_survives_serialization() {
        let (train, sizes) = ranking_fixture(50, 4);
        let model = GbdtModel::train(
            FeatureSchema::custom(0, WIDTH),
            vec![],
            GroupedRows {
                rows: &train,
                group_sizes: &sizes,
            },
            None,
            &GbdtParams {
                trees: 10,
                ..params(GbdtObjective::LambdaRank)
            },
        )
        .unwrap();
        let bytes = bincode::serialize(&model).unwrap();
        let back: GbdtModel = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, model);
        assert_eq!(
            back.predict(&train[3].features),
            model.predict(&train[3].features)
        );
    }
}
