//! The combined metrics report and the top-level entry point the binary calls.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::metric_map::MetricMap;
use crate::preds::{evaluate_predictions, read_predictions, PointwiseMetrics, PointwiseReport};
use crate::trec::{evaluate_run, read_qrels, read_run, RankingOptions};

/// Everything `metrics_from_files` can vary.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsOptions {
    /// Ranking options (cutoffs, tie policy, query scope).
    pub ranking: RankingOptions,
    /// Calibration bins (10 as in the reference).
    pub n_bins: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            ranking: RankingOptions::default(),
            n_bins: 10,
        }
    }
}

/// Counts describing the ranking evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct RankingInfo {
    /// Options used.
    pub options: RankingOptions,
    /// Queries in the qrels.
    pub queries_judged: usize,
    /// Queries in the run.
    pub queries_in_run: usize,
    /// Queries averaged.
    pub queries_evaluated: usize,
    /// Run queries that have no judgments (ignored).
    pub run_queries_without_judgments: Vec<String>,
}

/// Offline metrics: ranking metrics per query and their means, pointwise metrics overall
/// and per slice. `mean` holds every headline number (`ndcg@10`, `map`, `auc`, `log_loss`, `ece`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct MetricsReport {
    /// Headline numbers: ranking means followed by the overall pointwise metrics.
    pub mean: MetricMap,
    /// Ranking metrics of each query.
    pub per_query: BTreeMap<String, MetricMap>,
    /// Ranking evaluation details, when qrels and run were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<RankingInfo>,
    /// Pointwise details (reliability table, slices), when predictions were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointwise: Option<PointwiseReport>,
    /// Reasons some numbers are missing or doubtful.
    pub warnings: Vec<String>,
}

/// Computes ranking metrics from TREC `qrels` + `run` and pointwise metrics from `preds`
/// with default options (trec_eval ties, all judged queries, 10 calibration bins).
pub fn metrics_from_files(
    qrels: Option<&Path>,
    run: Option<&Path>,
    preds: Option<&Path>,
    ks: &[usize],
) -> Result<MetricsReport> {
    let mut options = MetricsOptions::default();
    if !ks.is_empty() {
        options.ranking.ks = ks.to_vec();
    }
    metrics_from_files_with(qrels, run, preds, &options)
}

/// As [`metrics_from_files`], with every option explicit.
pub fn metrics_from_files_with(
    qrels: Option<&Path>,
    run: Option<&Path>,
    preds: Option<&Path>,
    options: &MetricsOptions,
) -> Result<MetricsReport> {
    let mut report = MetricsReport {
        mean: MetricMap::default(),
        per_query: BTreeMap::new(),
        ranking: None,
        pointwise: None,
        warnings: Vec::new(),
    };
    match (qrels, run) {
        (Some(q), Some(r)) => {
            let ranking = evaluate_run(&read_qrels(q)?, &read_run(r)?, &options.ranking)?;
            if !ranking.run_queries_without_judgments.is_empty() {
                report.warnings.push(format!(
                    "{} run queries have no judgments and were ignored",
                    ranking.run_queries_without_judgments.len()
                ));
            }
            if ranking.queries_evaluated == 0 {
                report.warnings.push(
                    "no query is both judged and in the run: check that qrels and run use the same query ids".into(),
                );
            }
            report.mean = ranking.mean;
            report.per_query = ranking.per_query;
            report.ranking = Some(RankingInfo {
                options: ranking.options,
                queries_judged: ranking.queries_judged,
                queries_in_run: ranking.queries_in_run,
                queries_evaluated: ranking.queries_evaluated,
                run_queries_without_judgments: ranking.run_queries_without_judgments,
            });
        }
        (None, None) => {}
        _ => {
            return Err(EvalError::InvalidArgument(
                "ranking metrics need both a qrels file and a run file".into(),
            ))
        }
    }
    if let Some(p) = preds {
        let pointwise = evaluate_predictions(&read_predictions(p)?, options.n_bins);
        push_pointwise(&mut report.mean, &pointwise.overall);
        report.warnings.extend(pointwise.warnings.iter().cloned());
        report.pointwise = Some(pointwise);
    }
    if qrels.is_none() && preds.is_none() {
        return Err(EvalError::InvalidArgument(
            "give qrels + run, predictions, or both".into(),
        ));
    }
    Ok(report)
}

/// Appends the defined pointwise metrics under their report names.
pub fn push_pointwise(out: &mut MetricMap, m: &PointwiseMetrics) {
    let named = [
        ("auc", m.auc),
        ("gauc", m.gauc),
        ("log_loss", m.log_loss),
        ("normalized_entropy", m.normalized_entropy),
        ("ece", m.ece),
        ("mce", m.mce),
        ("observed_over_expected", m.observed_over_expected),
    ];
    for (name, value) in named {
        if let Some(v) = value {
            out.push(name, v);
        }
    }
}
