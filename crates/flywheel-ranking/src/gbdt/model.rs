//! The boosting loop and the fitted model.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::ops::Range;

use super::binning::BinnedRows;
use super::grow::{grow_tree, GrowSettings};
use super::objective::{
    binary_gradients, lambdarank_gradients, log_loss, mean_ndcg, sigmoid, LambdaSettings,
};
use super::params::{GbdtObjective, GbdtParams};
use super::tree::Tree;
use crate::error::{RankingError, Result};
use crate::features::FeatureSchema;
use crate::params::TrainingRow;

/// Rows and the requests (groups) they belong to: `group_sizes` cuts `rows`, in
/// order, into consecutive groups. The binary objective ignores the groups except
/// in reports.
#[derive(Debug, Clone, Copy)]
pub struct GroupedRows<'a> {
    /// The rows.
    pub rows: &'a [TrainingRow],
    /// The size of each group, in row order; they sum to `rows.len()`.
    pub group_sizes: &'a [usize],
}

impl GroupedRows<'_> {
    fn ranges(&self, what: &'static str) -> Result<Vec<Range<usize>>> {
        let total: usize = self.group_sizes.iter().sum();
        if total != self.rows.len() {
            return Err(RankingError::BadParameter {
                field: what,
                value: format!(
                    "group sizes summing to {total} for {} rows",
                    self.rows.len()
                ),
                hint: "the group sizes must sum to the number of rows",
            });
        }
        let mut start = 0;
        Ok(self
            .group_sizes
            .iter()
            .filter(|size| **size > 0)
            .map(|size| {
                start += size;
                start - size..start
            })
            .collect())
    }
}

/// A feature that exists only in training rows (after the schema's features) and
/// is held at a constant when serving: e.g. the logged position, so that the trees
/// learn position bias apart from relevance and serving ranks as if every item sat
/// in the same slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingOnlyFeature {
    /// Its name, for importances.
    pub name: String,
    /// The value it takes when serving.
    pub serving_value: f32,
}

/// How much one feature was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    /// The feature.
    pub name: String,
    /// The total loss reduction of the splits on it.
    pub gain: f64,
    /// How many splits use it.
    pub splits: u32,
}

/// What training did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtReport {
    /// Rounds run (trees grown before early stopping).
    pub rounds_run: usize,
    /// Trees kept: the best validation round.
    pub trees_kept: usize,
    /// Training rows.
    pub train_rows: usize,
    /// Training groups.
    pub train_groups: usize,
    /// Validation rows (0: no validation slice).
    pub validation_rows: usize,
    /// Validation groups.
    pub validation_groups: usize,
    /// The validation metric's name (`ndcg@k` or `log_loss`).
    pub metric: String,
    /// The metric before any tree (the base score alone).
    pub metric_at_start: f64,
    /// The metric at the kept round.
    pub metric_best: f64,
}

/// The starting margin `scale · x[feature]` of every row (a missing value counts 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// The feature's index.
    pub feature: usize,
    /// Margin per unit of the feature.
    pub scale: f64,
}

impl Prior {
    fn margin(&self, features: &[f32]) -> f64 {
        let x = features.get(self.feature).copied().unwrap_or(0.0);
        if x.is_nan() {
            0.0
        } else {
            self.scale * f64::from(x)
        }
    }

    /// One unit per pooled within-group standard deviation of the feature.
    fn fit(feature: usize, data: GroupedRows, groups: &[Range<usize>]) -> Prior {
        let mut squares = 0.0;
        let mut count = 0usize;
        for group in groups {
            let values: Vec<f64> = data.rows[group.clone()]
                .iter()
                .filter_map(|r| r.features.get(feature).copied())
                .filter(|x| !x.is_nan())
                .map(f64::from)
                .collect();
            let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
            squares += values.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
            count += values.len();
        }
        let sd = (squares / count.max(1) as f64).sqrt();
        Prior {
            feature,
            scale: if sd > 0.0 { 1.0 / sd } else { 0.0 },
        }
    }
}

/// A gradient-boosted tree ensemble (see [`crate::gbdt`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtModel {
    schema: FeatureSchema,
    objective: GbdtObjective,
    base_score: f64,
    prior: Option<Prior>,
    trees: Vec<Tree>,
    training_only: Vec<TrainingOnlyFeature>,
    importances: Vec<FeatureImportance>,
    report: GbdtReport,
}

fn check_rows(rows: &[TrainingRow], width: usize, objective: GbdtObjective) -> Result<()> {
    let bad = |row, field: &str, value: f32, hint| RankingError::BadRow {
        row,
        field: field.to_string(),
        value: value.to_string(),
        hint,
    };
    for (index, row) in rows.iter().enumerate() {
        if row.features.len() != width {
            return Err(RankingError::WrongWidth {
                row: index,
                found: row.features.len(),
                expected: width,
                schema: "gbdt training rows".into(),
            });
        }
        if !row.label.is_finite() || row.label < 0.0 {
            return Err(bad(
                index,
                "label",
                row.label,
                "must be a finite number ≥ 0",
            ));
        }
        if objective == GbdtObjective::Binary && row.label > 1.0 {
            return Err(bad(
                index,
                "label",
                row.label,
                "must be in [0, 1] for the binary objective",
            ));
        }
        if objective == GbdtObjective::LambdaRank && row.label > 30.0 {
            return Err(bad(
                index,
                "label",
                row.label,
                "graded relevance must be ≤ 30",
            ));
        }
        if !row.weight.is_finite() || row.weight < 0.0 {
            return Err(bad(
                index,
                "weight",
                row.weight,
                "must be a finite number ≥ 0",
            ));
        }
        if row.features.iter().any(|v| v.is_infinite()) {
            return Err(bad(
                index,
                "features",
                f32::INFINITY,
                "must be finite or NaN (missing)",
            ));
        }
    }
    Ok(())
}

/// Scores and metric of one set of rows while boosting.
struct Tracked<'a> {
    rows: &'a [TrainingRow],
    labels: Vec<f32>,
    weights: Vec<f32>,
    groups: Vec<Range<usize>>,
    scores: Vec<f64>,
}

impl<'a> Tracked<'a> {
    fn new(
        data: GroupedRows<'a>,
        base: f64,
        prior: Option<Prior>,
        what: &'static str,
    ) -> Result<Self> {
        Ok(Tracked {
            rows: data.rows,
            labels: data.rows.iter().map(|r| r.label).collect(),
            weights: data.rows.iter().map(|r| r.weight).collect(),
            groups: data.ranges(what)?,
            scores: data
                .rows
                .iter()
                .map(|r| base + prior.map_or(0.0, |p| p.margin(&r.features)))
                .collect(),
        })
    }

    fn add(&mut self, tree: &Tree) {
        for (score, row) in self.scores.iter_mut().zip(self.rows) {
            *score += tree.predict(&row.features);
        }
    }

    /// The metric (higher is better: the log-loss is negated).
    fn metric(&self, params: &GbdtParams) -> f64 {
        match params.objective {
            GbdtObjective::LambdaRank => {
                mean_ndcg(&self.scores, &self.labels, &self.groups, params.ndcg_at)
            }
            GbdtObjective::Binary => -log_loss(&self.scores, &self.labels, &self.weights),
        }
    }
}

fn base_score(rows: &[TrainingRow], objective: GbdtObjective) -> f64 {
    match objective {
        GbdtObjective::LambdaRank => 0.0,
        GbdtObjective::Binary => {
            let weight: f64 = rows.iter().map(|r| f64::from(r.weight)).sum();
            let positive: f64 = rows.iter().map(|r| f64::from(r.weight * r.label)).sum();
            let rate = (positive / weight.max(f64::MIN_POSITIVE)).clamp(1e-6, 1.0 - 1e-6);
            (rate / (1.0 - rate)).ln()
        }
    }
}

impl GbdtModel {
    /// Fits the ensemble on `train`, early-stopping on `validation` when given. The
    /// rows hold the schema's features followed by the `training_only` ones; NaN
    /// marks a missing value.
    pub fn train(
        schema: FeatureSchema,
        training_only: Vec<TrainingOnlyFeature>,
        train: GroupedRows,
        validation: Option<GroupedRows>,
        params: &GbdtParams,
    ) -> Result<GbdtModel> {
        params.validate()?;
        if train.rows.is_empty() {
            return Err(RankingError::EmptyTrainingSet);
        }
        let width = schema.names.len() + training_only.len();
        check_rows(train.rows, width, params.objective)?;
        if let Some(valid) = validation {
            check_rows(valid.rows, width, params.objective)?;
        }
        let base = base_score(train.rows, params.objective);
        let prior = prior_of(&schema, params, train)?;
        let mut fit = Tracked::new(train, base, prior, "group_sizes")?;
        let mut held = validation
            .filter(|v| !v.rows.is_empty())
            .map(|v| Tracked::new(v, base, prior, "validation group_sizes"))
            .transpose()?;
        let refs: Vec<&[f32]> = train.rows.iter().map(|r| r.features.as_slice()).collect();
        let data = BinnedRows::new(&refs, width, params.max_bins);
        drop(refs);
        let settings = GrowSettings {
            num_leaves: params.num_leaves,
            max_depth: params.max_depth,
            min_rows_in_leaf: params.min_rows_in_leaf,
            min_hessian_in_leaf: params.min_hessian_in_leaf,
            l2: params.l2,
            min_split_gain: params.min_split_gain,
            learning_rate: params.learning_rate,
        };
        let n = train.rows.len();
        let (mut grad, mut hess) = (vec![0.0; n], vec![0.0; n]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        let metric_at_start = held.as_ref().map_or(0.0, |h| h.metric(params));
        let mut best = (metric_at_start, 0usize);
        let mut trees: Vec<Tree> = Vec::new();
        let mut gains: Vec<Vec<(usize, f64)>> = Vec::new();
        for round in 0..params.trees {
            gradients(&fit, params, &mut grad, &mut hess);
            let mut indices: Vec<u32> = (0..n as u32)
                .filter(|_| params.row_subsample >= 1.0 || rng.gen::<f64>() < params.row_subsample)
                .collect();
            let grown = grow_tree(&data, &mut indices, &grad, &hess, &settings);
            fit.add(&grown.tree);
            if let Some(held) = held.as_mut() {
                held.add(&grown.tree);
            }
            trees.push(grown.tree);
            gains.push(grown.gains);
            let Some(held) = held.as_ref() else { continue };
            let metric = held.metric(params);
            if metric > best.0 {
                best = (metric, round + 1);
            } else if params.early_stopping_rounds > 0
                && round + 1 - best.1 >= params.early_stopping_rounds
            {
                break;
            }
        }
        let rounds_run = trees.len();
        let kept = if held.is_some() { best.1 } else { rounds_run };
        trees.truncate(kept);
        gains.truncate(kept);
        let names: Vec<String> = schema
            .names
            .iter()
            .cloned()
            .chain(training_only.iter().map(|f| f.name.clone()))
            .collect();
        let report = GbdtReport {
            rounds_run,
            trees_kept: kept,
            train_rows: n,
            train_groups: fit.groups.len(),
            validation_rows: held.as_ref().map_or(0, |h| h.rows.len()),
            validation_groups: held.as_ref().map_or(0, |h| h.groups.len()),
            metric: match params.objective {
                GbdtObjective::LambdaRank => format!("ndcg@{}", params.ndcg_at),
                GbdtObjective::Binary => "neg_log_loss".to_string(),
            },
            metric_at_start,
            metric_best: if held.is_some() {
                best.0
            } else {
                fit.metric(params)
            },
        };
        Ok(GbdtModel {
            schema,
            objective: params.objective,
            base_score: base,
            prior,
            trees,
            importances: importances(&names, &gains),
            training_only,
            report,
        })
    }

    /// The raw score (margin) of a row of the schema's features; training-only
    /// features take their serving value.
    pub fn predict_margin(&self, features: &[f32]) -> f64 {
        let width = self.schema.names.len();
        let value = |j: usize| {
            if j < width {
                features.get(j).copied().unwrap_or(f32::NAN)
            } else {
                self.training_only
                    .get(j - width)
                    .map_or(f32::NAN, |f| f.serving_value)
            }
        };
        let prior = self.prior.map_or(0.0, |p| p.margin(features));
        let trees: f64 = self.trees.iter().map(|t| t.predict_with(value)).sum();
        self.base_score + prior + trees
    }

    /// The model's prediction: a probability for the binary objective, the raw
    /// ranking score for LambdaRank.
    pub fn predict(&self, features: &[f32]) -> f64 {
        let margin = self.predict_margin(features);
        match self.objective {
            GbdtObjective::Binary => sigmoid(margin),
            GbdtObjective::LambdaRank => margin,
        }
    }

    /// The feature schema (without the training-only features).
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// The objective it was fitted to.
    pub fn objective(&self) -> GbdtObjective {
        self.objective
    }

    /// The trees.
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// Every feature's importance, most important (by gain) first.
    pub fn importances(&self) -> &[FeatureImportance] {
        &self.importances
    }

    /// What training did.
    pub fn report(&self) -> &GbdtReport {
        &self.report
    }
}

/// The prior of `params.prior_feature` (none when it is empty).
fn prior_of(
    schema: &FeatureSchema,
    params: &GbdtParams,
    train: GroupedRows,
) -> Result<Option<Prior>> {
    if params.prior_feature.is_empty() {
        return Ok(None);
    }
    let feature = schema
        .names
        .iter()
        .position(|name| *name == params.prior_feature)
        .ok_or(RankingError::BadParameter {
            field: "prior_feature",
            value: params.prior_feature.clone(),
            hint: "must name a feature of the schema (or be empty)",
        })?;
    Ok(Some(Prior::fit(
        feature,
        train,
        &train.ranges("group_sizes")?,
    )))
}

fn gradients(fit: &Tracked, params: &GbdtParams, grad: &mut [f64], hess: &mut [f64]) {
    match params.objective {
        GbdtObjective::Binary => {
            binary_gradients(&fit.scores, &fit.labels, &fit.weights, grad, hess);
        }
        GbdtObjective::LambdaRank => lambdarank_gradients(
            &fit.scores,
            &fit.labels,
            &fit.weights,
            &fit.groups,
            LambdaSettings {
                sigma: params.sigma,
                normalize: true,
            },
            grad,
            hess,
        ),
    }
}

fn importances(names: &[String], gains: &[Vec<(usize, f64)>]) -> Vec<FeatureImportance> {
    let mut out: Vec<FeatureImportance> = names
        .iter()
        .map(|name| FeatureImportance {
            name: name.clone(),
            gain: 0.0,
            splits: 0,
        })
        .collect();
    for (feature, gain) in gains.iter().flatten() {
        if let Some(entry) = out.get_mut(*feature) {
            entry.gain += gain;
            entry.splits += 1;
        }
    }
    out.sort_by(|a, b| b.gain.total_cmp(&a.gain).then_with(|| a.name.cmp(&b.name)));
    out
}
