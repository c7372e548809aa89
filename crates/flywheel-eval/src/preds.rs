//! Predictions CSV (`user_id,label,score` + optional slice columns) and its metrics.

use std::path::Path;

use serde::Serialize;

use crate::csvio::{parse_f64, parse_label, CsvFile, Interner};
use crate::error::{EvalError, Result};
use crate::pointwise::{
    bernoulli_entropy, calibration, group_auc, log_loss, roc_auc, ReliabilityBin,
};

/// Slice columns with more distinct values than this are skipped (with a warning).
pub const MAX_SLICE_VALUES: usize = 1000;

/// Predictions loaded in columnar form.
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    /// Dense user ids (index into `user_names`).
    pub users: Vec<u32>,
    /// Distinct user ids.
    pub user_names: Vec<String>,
    /// Labels.
    pub labels: Vec<bool>,
    /// Scores.
    pub scores: Vec<f64>,
    /// Extra columns used to slice the metrics.
    pub slices: Vec<SliceColumn>,
}

/// One slicing column.
#[derive(Debug, Clone, Default)]
pub struct SliceColumn {
    /// Column name.
    pub name: String,
    /// Distinct values.
    pub values: Vec<String>,
    /// Per row, the index of its value.
    pub codes: Vec<u32>,
}

/// Pointwise metrics of one set of rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointwiseMetrics {
    /// Rows.
    pub n: u64,
    /// Positive labels.
    pub positives: u64,
    /// ROC AUC (sklearn); absent with a single class.
    pub auc: Option<f64>,
    /// Per-user AUC weighted by rows; absent when no user has both classes.
    pub gauc: Option<f64>,
    /// Log-loss (sklearn clipping); absent when a score lies outside [0, 1].
    pub log_loss: Option<f64>,
    /// Log-loss / entropy of the mean label.
    pub normalized_entropy: Option<f64>,
    /// Expected calibration error over the bins.
    pub ece: Option<f64>,
    /// Maximum calibration error.
    pub mce: Option<f64>,
    /// Σ labels / Σ scores.
    pub observed_over_expected: Option<f64>,
    /// Σ scores / Σ labels ("calibration" in He et al. 2014).
    pub expected_over_observed: Option<f64>,
    /// Reliability table (non-empty bins).
    pub reliability: Vec<ReliabilityBin>,
}

/// Metrics of one slice value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceMetrics {
    /// Slice column.
    pub column: String,
    /// Value of the column.
    pub value: String,
    /// Metrics of its rows.
    pub metrics: PointwiseMetrics,
}

/// Pointwise metrics overall and per slice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointwiseReport {
    /// Calibration bins used.
    pub n_bins: usize,
    /// All rows.
    pub overall: PointwiseMetrics,
    /// Per slice value.
    pub slices: Vec<SliceMetrics>,
    /// Conditions that make some metric absent or doubtful.
    pub warnings: Vec<String>,
}

/// Columns parsed from one chunk of a predictions file, with chunk-local ids.
#[derive(Default)]
struct Partial {
    labels: Vec<bool>,
    scores: Vec<f64>,
    users: Vec<u32>,
    user_ids: Interner,
    slice_codes: Vec<Vec<u32>>,
    slice_ids: Vec<Interner>,
}

/// Files smaller than this are parsed on one thread.
const PARALLEL_FROM_BYTES: u64 = 4 << 20;

/// Reads a predictions CSV (parsed in parallel chunks on large files).
pub fn read_predictions(path: &Path) -> Result<Predictions> {
    let file = CsvFile::open(path)?;
    let (user_col, label_col, score_col) = (
        file.column("user_id")?,
        file.column("label")?,
        file.column("score")?,
    );
    let slice_cols: Vec<usize> = (0..file.header.len())
        .filter(|c| ![user_col, label_col, score_col].contains(c))
        .collect();
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let parts = if size < PARALLEL_FROM_BYTES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    };
    let chunks = file.chunks(parts);
    let parse = |chunk| {
        let mut part = Partial {
            slice_codes: vec![Vec::new(); slice_cols.len()],
            slice_ids: slice_cols.iter().map(|_| Interner::default()).collect(),
            ..Partial::default()
        };
        file.for_each_row_in(chunk, |row| {
            part.labels
                .push(parse_label(path, row, label_col, "label")?);
            part.scores.push(parse_f64(path, row, score_col, "score")?);
            part.users.push(part.user_ids.intern(row.get(user_col)));
            for ((col, ids), codes) in slice_cols
                .iter()
                .zip(&mut part.slice_ids)
                .zip(&mut part.slice_codes)
            {
                codes.push(ids.intern(row.get(*col)));
            }
            Ok(())
        })?;
        Ok(part)
    };
    let partials: Vec<Result<Partial>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| scope.spawn(move || parse(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("CSV parsing threads do not panic"))
            .collect()
    });
    let mut merged: Option<Partial> = None;
    for partial in partials {
        let partial = partial?;
        match merged.as_mut() {
            None => merged = Some(partial),
            Some(base) => absorb(base, partial),
        }
    }
    let merged = merged.unwrap_or_default();
    if merged.labels.is_empty() {
        return Err(EvalError::Empty {
            path: path.to_path_buf(),
        });
    }
    let slices = slice_cols
        .iter()
        .zip(merged.slice_ids)
        .zip(merged.slice_codes)
        .map(|((col, ids), codes)| SliceColumn {
            name: file.header[*col].clone(),
            values: ids.names,
            codes,
        })
        .collect();
    Ok(Predictions {
        users: merged.users,
        user_names: merged.user_ids.names,
        labels: merged.labels,
        scores: merged.scores,
        slices,
    })
}

/// Appends `next` to `base`, translating its chunk-local ids into `base`'s.
fn absorb(base: &mut Partial, next: Partial) {
    let remap = |ids: &mut Interner, local: &Interner| -> Vec<u32> {
        local
            .names
            .iter()
            .map(|n| ids.intern(n.as_bytes()))
            .collect()
    };
    let users = remap(&mut base.user_ids, &next.user_ids);
    base.users
        .extend(next.users.iter().map(|u| users[*u as usize]));
    for (i, codes) in next.slice_codes.iter().enumerate() {
        let values = remap(&mut base.slice_ids[i], &next.slice_ids[i]);
        base.slice_codes[i].extend(codes.iter().map(|c| values[*c as usize]));
    }
    base.labels.extend(next.labels);
    base.scores.extend(next.scores);
}

/// Pointwise metrics of rows given as columns (`users` dense in `0..n_users`).
pub fn pointwise_metrics(
    users: &[u32],
    n_users: usize,
    labels: &[bool],
    scores: &[f64],
    n_bins: usize,
) -> PointwiseMetrics {
    let n = labels.len() as u64;
    let positives = labels.iter().filter(|l| **l).count() as u64;
    let probabilities = scores.iter().all(|s| (0.0..=1.0).contains(s));
    let (mut metrics, calibrated) = (
        PointwiseMetrics {
            n,
            positives,
            auc: None,
            gauc: None,
            log_loss: None,
            normalized_entropy: None,
            ece: None,
            mce: None,
            observed_over_expected: None,
            expected_over_observed: None,
            reliability: Vec::new(),
        },
        probabilities && n > 0,
    );
    // GAUC on a second thread: it and AUC are the two sorts that dominate large inputs
    (metrics.auc, metrics.gauc) = std::thread::scope(|scope| {
        let gauc = scope.spawn(|| group_auc(users, n_users, labels, scores));
        let auc = roc_auc(labels, scores);
        (auc, gauc.join().expect("group_auc does not panic"))
    });
    if calibrated {
        let ll = log_loss(labels, scores);
        let score_sum = crate::stats::sum(scores.iter().copied());
        let cal = calibration(labels, scores, n_bins);
        metrics.log_loss = Some(ll);
        metrics.normalized_entropy = bernoulli_entropy(positives as f64 / n as f64).map(|h| ll / h);
        metrics.ece = Some(cal.ece);
        metrics.mce = Some(cal.mce);
        metrics.observed_over_expected = (score_sum > 0.0).then(|| positives as f64 / score_sum);
        metrics.expected_over_observed = (positives > 0).then(|| score_sum / positives as f64);
        metrics.reliability = cal.bins;
    }
    metrics
}

/// Metrics overall and per slice value.
pub fn evaluate_predictions(preds: &Predictions, n_bins: usize) -> PointwiseReport {
    let overall = pointwise_metrics(
        &preds.users,
        preds.user_names.len(),
        &preds.labels,
        &preds.scores,
        n_bins,
    );
    let mut warnings = warnings_for("all rows", &overall);
    let mut slices = Vec::new();
    for column in &preds.slices {
        if column.values.len() > MAX_SLICE_VALUES {
            warnings.push(format!(
                "slice column `{}` has {} distinct values (> {MAX_SLICE_VALUES}); not sliced",
                column.name,
                column.values.len()
            ));
            continue;
        }
        let mut rows_by_value: Vec<Vec<usize>> = vec![Vec::new(); column.values.len()];
        for (row, code) in column.codes.iter().enumerate() {
            rows_by_value[*code as usize].push(row);
        }
        for (value, rows) in column.values.iter().zip(&rows_by_value) {
            let metrics = slice_metrics(preds, rows, n_bins);
            warnings.extend(warnings_for(
                &format!("slice {}={}", column.name, value),
                &metrics,
            ));
            slices.push(SliceMetrics {
                column: column.name.clone(),
                value: value.clone(),
                metrics,
            });
        }
    }
    PointwiseReport {
        n_bins,
        overall,
        slices,
        warnings,
    }
}

fn slice_metrics(preds: &Predictions, rows: &[usize], n_bins: usize) -> PointwiseMetrics {
    let users: Vec<u32> = rows.iter().map(|r| preds.users[*r]).collect();
    let labels: Vec<bool> = rows.iter().map(|r| preds.labels[*r]).collect();
    let scores: Vec<f64> = rows.iter().map(|r| preds.scores[*r]).collect();
    pointwise_metrics(&users, preds.user_names.len(), &labels, &scores, n_bins)
}

fn warnings_for(what: &str, m: &PointwiseMetrics) -> Vec<String> {
    let mut out = Vec::new();
    if m.auc.is_none() {
        out.push(format!("{what}: AUC undefined (only one label class)"));
    }
    if m.log_loss.is_none() {
        out.push(format!(
            "{what}: scores outside [0, 1]; log-loss and calibration need probabilities"
        ));
    }
    out
}
