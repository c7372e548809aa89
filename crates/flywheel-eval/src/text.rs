//! Plain-text renderings of the reports, for terminals and logs.

use std::fmt::Write;

use crate::metric_map::MetricMap;
use crate::ope::OpeReport;
use crate::preds::PointwiseMetrics;
use crate::report::MetricsReport;

/// Splits `name@k` into (`name`, k).
pub(crate) fn split_cutoff(name: &str) -> Option<(&str, usize)> {
    let (base, k) = name.split_once('@')?;
    Some((base, k.parse().ok()?))
}

/// Cutoff metrics as rows (metric) × columns (k), in first-seen order.
/// Rows of a cutoff table: metric base name and its value at each k.
pub(crate) type CutoffRows = Vec<(String, Vec<Option<f64>>)>;

pub(crate) fn cutoff_table(mean: &MetricMap) -> (Vec<usize>, CutoffRows) {
    let mut ks: Vec<usize> = Vec::new();
    let mut rows: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for (name, value) in &mean.0 {
        let Some((base, k)) = split_cutoff(name) else {
            continue;
        };
        if !ks.contains(&k) {
            ks.push(k);
        }
        match rows.iter_mut().find(|(b, _)| b == base) {
            Some((_, values)) => values.push((k, *value)),
            None => rows.push((base.to_string(), vec![(k, *value)])),
        }
    }
    let table = rows
        .into_iter()
        .map(|(base, values)| {
            let cells = ks
                .iter()
                .map(|k| values.iter().find(|(vk, _)| vk == k).map(|(_, v)| *v))
                .collect();
            (base, cells)
        })
        .collect();
    (ks, table)
}

fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

fn pointwise_line(m: &PointwiseMetrics) -> String {
    format!(
        "{:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        m.n,
        fmt_opt(m.auc),
        fmt_opt(m.gauc),
        fmt_opt(m.log_loss),
        fmt_opt(m.normalized_entropy),
        fmt_opt(m.ece),
        fmt_opt(m.observed_over_expected)
    )
}

impl MetricsReport {
    /// A human-readable summary: ranking metrics by k, pointwise metrics, reliability, slices.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        if let Some(info) = &self.ranking {
            let _ = writeln!(
                out,
                "Ranking: {} queries evaluated ({} judged, {} in run; ties: {:?}; scope: {:?})",
                info.queries_evaluated,
                info.queries_judged,
                info.queries_in_run,
                info.options.tie_break,
                info.options.scope
            );
            let (ks, rows) = cutoff_table(&self.mean);
            let _ = write!(out, "  {:<12}", "metric");
            ks.iter().for_each(|k| {
                let _ = write!(out, " {:>8}", format!("@{k}"));
            });
            out.push('\n');
            for (base, cells) in rows {
                let _ = write!(out, "  {base:<12}");
                cells.iter().for_each(|c| {
                    let _ = write!(out, " {:>8}", fmt_opt(*c));
                });
                out.push('\n');
            }
            for name in ["ndcg", "map", "mrr"] {
                if let Some(v) = self.mean.get(name) {
                    let _ = writeln!(out, "  {name:<12} {v:>8.4}  (whole list)");
                }
            }
        }
        if let Some(pw) = &self.pointwise {
            let _ = writeln!(
                out,
                "Pointwise: {} rows, {} positive",
                pw.overall.n, pw.overall.positives
            );
            let _ = writeln!(
                out,
                "  {:<24} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "rows", "n", "auc", "gauc", "logloss", "NE", "ece", "O/E"
            );
            let _ = writeln!(out, "  {:<24} {}", "all", pointwise_line(&pw.overall));
            for s in &pw.slices {
                let _ = writeln!(
                    out,
                    "  {:<24} {}",
                    format!("{}={}", s.column, s.value),
                    pointwise_line(&s.metrics)
                );
            }
            if let Some(mce) = pw.overall.mce {
                let _ = writeln!(
                    out,
                    "  max calibration error {mce:.4}; reliability ({} bins):",
                    pw.n_bins
                );
            }
            for b in &pw.overall.reliability {
                let _ = writeln!(
                    out,
                    "    ({:.2}, {:.2}] n={:<8} mean_pred={:.4} frac_pos={:.4}",
                    b.lo, b.hi, b.count, b.mean_pred, b.frac_pos
                );
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

impl OpeReport {
    /// A human-readable table of the estimators, weight diagnostics and warnings.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let level = 100.0 * self.options.confidence;
        let _ = writeln!(
            out,
            "Off-policy evaluation: {} instances, {} position(s); logging policy value {:.6}",
            self.n, self.n_positions, self.behavior_value
        );
        let _ = writeln!(
            out,
            "  {:<6} {:>12} {:>12} {:>28} {:>28}",
            "est",
            "estimate",
            "se",
            format!("{level:.0}% normal CI"),
            "bootstrap CI"
        );
        for e in &self.estimators {
            let boot = e
                .bootstrap_ci
                .map_or_else(|| "-".to_string(), |[lo, hi]| format!("[{lo:.6}, {hi:.6}]"));
            let _ = writeln!(
                out,
                "  {:<6} {:>12.6} {:>12.6} {:>28} {:>28}",
                e.name,
                e.estimate,
                e.se,
                format!("[{:.6}, {:.6}]", e.ci_low, e.ci_high),
                boot
            );
        }
        let w = &self.weights;
        let _ = writeln!(
            out,
            "  weights: mean {:.4}, max {:.4}, effective sample size {:.1} ({:.2}% of n), clipped {}",
            w.mean_weight,
            w.max_weight,
            w.effective_sample_size,
            100.0 * w.ess_fraction,
            w.clipped
        );
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        out
    }
}
