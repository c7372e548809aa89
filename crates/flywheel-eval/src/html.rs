//! A self-contained HTML report: inline CSS and SVG only, no scripts, no external fonts.

use std::fmt::Write;

use crate::ope::OpeReport;
use crate::preds::PointwiseMetrics;
use crate::report::MetricsReport;
use crate::svg::{escape, interval_plot, line_chart, reliability_diagram};
use crate::text::cutoff_table;

const STYLE: &str = "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.warn{color:#a33}";

/// Renders the metrics and/or OPE reports as one HTML page with a reliability diagram,
/// metrics by slice, NDCG@k by k and estimator confidence intervals.
pub fn html_report(
    title: &str,
    metrics: Option<&MetricsReport>,
    ope: Option<&OpeReport>,
) -> String {
    let mut out = String::new();
    let _ = write!(out, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title><style>{STYLE}</style></head><body><h1>{0}</h1>", escape(title));
    if let Some(report) = metrics {
        ranking_section(&mut out, report);
        pointwise_section(&mut out, report);
        warnings(&mut out, &report.warnings);
    }
    if let Some(report) = ope {
        ope_section(&mut out, report);
        warnings(&mut out, &report.warnings);
    }
    out.push_str("</body></html>\n");
    out
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), |v| format!("{v:.4}"))
}

fn ranking_section(out: &mut String, report: &MetricsReport) {
    let Some(info) = &report.ranking else { return };
    let _ = write!(
        out,
        "<h2>Ranking</h2><p>{} queries evaluated ({} judged, {} in the run); ties broken {:?}; averaged over {:?}.</p>",
        info.queries_evaluated, info.queries_judged, info.queries_in_run, info.options.tie_break, info.options.scope
    );
    let (ks, rows) = cutoff_table(&report.mean);
    out.push_str("<table><tr><th>metric</th>");
    ks.iter().for_each(|k| {
        let _ = write!(out, "<th>@{k}</th>");
    });
    out.push_str("</tr>");
    for (base, cells) in &rows {
        let _ = write!(out, "<tr><td>{}</td>", escape(base));
        cells.iter().for_each(|c| {
            let _ = write!(out, "<td>{}</td>", cell(*c));
        });
        out.push_str("</tr>");
    }
    out.push_str("</table><h3>NDCG@k by k</h3>");
    let wanted = ["ndcg", "ndcg_exp", "ndcg_bin", "r", "p", "map"];
    let series: Vec<(String, Vec<Option<f64>>)> = rows
        .into_iter()
        .filter(|(b, _)| wanted.contains(&b.as_str()))
        .map(|(b, c)| (format!("{b}@k"), c))
        .collect();
    out.push_str(&line_chart("Metrics by cutoff k", &ks, &series));
}

fn pointwise_row(out: &mut String, label: &str, m: &PointwiseMetrics) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        escape(label),
        m.n,
        m.positives,
        cell(m.auc),
        cell(m.gauc),
        cell(m.log_loss),
        cell(m.normalized_entropy),
        cell(m.ece),
        cell(m.observed_over_expected)
    );
}

fn pointwise_section(out: &mut String, report: &MetricsReport) {
    let Some(pw) = &report.pointwise else { return };
    out.push_str("<h2>Predictions</h2><h3>Metrics by slice</h3><table><tr><th>rows</th><th>n</th><th>positives</th><th>AUC</th><th>GAUC</th><th>log-loss</th><th>NE</th><th>ECE</th><th>O/E</th></tr>");
    pointwise_row(out, "all", &pw.overall);
    for s in &pw.slices {
        pointwise_row(out, &format!("{} = {}", s.column, s.value), &s.metrics);
    }
    out.push_str("</table>");
    let slice_aucs: Vec<(String, f64, f64, f64)> = pw
        .slices
        .iter()
        .filter_map(|s| {
            s.metrics
                .auc
                .map(|a| (format!("{}={}", s.column, s.value), a, a, a))
        })
        .collect();
    if !slice_aucs.is_empty() {
        let reference = pw.overall.auc.map(|a| ("overall AUC".to_string(), a));
        out.push_str(&interval_plot("AUC by slice", &slice_aucs, reference));
    }
    if !pw.overall.reliability.is_empty() {
        let _ = write!(
            out,
            "<h3>Reliability diagram</h3><p>ECE {} · MCE {} over {} bins.</p>",
            cell(pw.overall.ece),
            cell(pw.overall.mce),
            pw.n_bins
        );
        let bins: Vec<(f64, f64, f64, f64, u64)> = pw
            .overall
            .reliability
            .iter()
            .map(|b| (b.lo, b.hi, b.mean_pred, b.frac_pos, b.count))
            .collect();
        out.push_str(&reliability_diagram(&bins));
    }
}

fn ope_section(out: &mut String, report: &OpeReport) {
    let level = 100.0 * report.options.confidence;
    let _ = write!(
        out,
        "<h2>Off-policy evaluation</h2><p>{} instances; logging policy value {:.6}; effective sample size {:.1} ({:.2}% of n); max weight {:.3}.</p>",
        report.n,
        report.behavior_value,
        report.weights.effective_sample_size,
        100.0 * report.weights.ess_fraction,
        report.weights.max_weight
    );
    let _ = write!(out, "<table><tr><th>estimator</th><th>estimate</th><th>se</th><th>{level:.0}% CI low</th><th>{level:.0}% CI high</th><th>bootstrap CI</th></tr>");
    for e in &report.estimators {
        let boot = e
            .bootstrap_ci
            .map_or_else(|| "–".to_string(), |[lo, hi]| format!("[{lo:.6}, {hi:.6}]"));
        let _ = write!(out, "<tr><td>{}</td><td>{:.6}</td><td>{:.6}</td><td>{:.6}</td><td>{:.6}</td><td>{boot}</td></tr>", e.name, e.estimate, e.se, e.ci_low, e.ci_high);
    }
    out.push_str("</table>");
    let rows: Vec<(String, f64, f64, f64)> = report
        .estimators
        .iter()
        .map(|e| (e.name.to_string(), e.estimate, e.ci_low, e.ci_high))
        .collect();
    out.push_str(&interval_plot(
        "Estimator confidence intervals",
        &rows,
        Some(("logging policy".to_string(), report.behavior_value)),
    ));
}

fn warnings(out: &mut String, warnings: &[String]) {
    for w in warnings {
        let _ = write!(out, "<p class=\"warn\">⚠ {}</p>", escape(w));
    }
}
