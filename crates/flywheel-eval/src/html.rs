//! The HTML report of `flywheel eval metrics|ope`, drawn with the
//! [`report_html`](crate::report_html) kit: which sections and which numbers.

use crate::ope::OpeReport;
use crate::preds::PointwiseMetrics;
use crate::report::MetricsReport;
use crate::report_html::{
    interval_plot, line_chart, number, reliability_diagram, Interval, Page, Series, Table, YAxis,
};
use crate::text::cutoff_table;

/// Renders the metrics and/or OPE reports as one HTML page with a reliability diagram,
/// metrics by slice, NDCG@k by k and estimator confidence intervals.
pub fn html_report(
    title: &str,
    metrics: Option<&MetricsReport>,
    ope: Option<&OpeReport>,
) -> String {
    let mut page = Page::new(title);
    if let Some(report) = metrics {
        ranking_section(&mut page, report);
        pointwise_section(&mut page, report);
        warnings(&mut page, &report.warnings);
    }
    if let Some(report) = ope {
        ope_section(&mut page, report);
        warnings(&mut page, &report.warnings);
    }
    page.finish()
}

fn cell(value: Option<f64>) -> String {
    number(value, 4)
}

fn ranking_section(page: &mut Page, report: &MetricsReport) {
    let Some(info) = &report.ranking else { return };
    page.h2("Ranking").paragraph(&format!(
        "{} queries evaluated ({} judged, {} in the run); ties broken {:?}; averaged over {:?}.",
        info.queries_evaluated,
        info.queries_judged,
        info.queries_in_run,
        info.options.tie_break,
        info.options.scope
    ));
    let (ks, rows) = cutoff_table(&report.mean);
    let mut table =
        Table::new(std::iter::once("metric".to_string()).chain(ks.iter().map(|k| format!("@{k}"))));
    for (base, cells) in &rows {
        table.row(std::iter::once(base.clone()).chain(cells.iter().map(|c| cell(*c))));
    }
    let wanted = ["ndcg", "ndcg_exp", "ndcg_bin", "r", "p", "map"];
    let series: Vec<Series> = rows
        .into_iter()
        .filter(|(b, _)| wanted.contains(&b.as_str()))
        .map(|(b, values)| Series {
            name: format!("{b}@k"),
            points: ks
                .iter()
                .zip(values)
                .filter_map(|(k, v)| v.map(|v| (*k as f64, v)))
                .collect(),
        })
        .collect();
    page.table(&table).h3("NDCG@k by k").push_html(&line_chart(
        "Metrics by cutoff k",
        "cutoff k",
        &ks,
        YAxis::Unit,
        &series,
    ));
}

fn pointwise_row(table: &mut Table, label: String, m: &PointwiseMetrics) {
    table.row([
        label,
        m.n.to_string(),
        m.positives.to_string(),
        cell(m.auc),
        cell(m.gauc),
        cell(m.log_loss),
        cell(m.normalized_entropy),
        cell(m.ece),
        cell(m.observed_over_expected),
    ]);
}

fn pointwise_section(page: &mut Page, report: &MetricsReport) {
    let Some(pw) = &report.pointwise else { return };
    let mut table = Table::new([
        "rows",
        "n",
        "positives",
        "AUC",
        "GAUC",
        "log-loss",
        "NE",
        "ECE",
        "O/E",
    ]);
    pointwise_row(&mut table, "all".to_string(), &pw.overall);
    for s in &pw.slices {
        pointwise_row(
            &mut table,
            format!("{} = {}", s.column, s.value),
            &s.metrics,
        );
    }
    page.h2("Predictions").h3("Metrics by slice").table(&table);
    let slice_aucs: Vec<Interval> = pw
        .slices
        .iter()
        .filter_map(|s| {
            s.metrics.auc.map(|a| Interval {
                label: format!("{}={}", s.column, s.value),
                estimate: a,
                low: a,
                high: a,
            })
        })
        .collect();
    if !slice_aucs.is_empty() {
        let reference = pw.overall.auc.map(|a| ("overall AUC", a));
        page.push_html(&interval_plot("AUC by slice", &slice_aucs, reference));
    }
    if !pw.overall.reliability.is_empty() {
        page.h3("Reliability diagram")
            .paragraph(&format!(
                "ECE {} · MCE {} over {} bins.",
                cell(pw.overall.ece),
                cell(pw.overall.mce),
                pw.n_bins
            ))
            .push_html(&reliability_diagram(&pw.overall.reliability));
    }
}

fn ope_section(page: &mut Page, report: &OpeReport) {
    let level = 100.0 * report.options.confidence;
    page.h2("Off-policy evaluation").paragraph(&format!(
        "{} instances; logging policy value {:.6}; effective sample size {:.1} ({:.2}% of n); max weight {:.3}.",
        report.n,
        report.behavior_value,
        report.weights.effective_sample_size,
        100.0 * report.weights.ess_fraction,
        report.weights.max_weight
    ));
    let mut table = Table::new([
        "estimator".to_string(),
        "estimate".to_string(),
        "se".to_string(),
        format!("{level:.0}% CI low"),
        format!("{level:.0}% CI high"),
        "bootstrap CI".to_string(),
    ]);
    for e in &report.estimators {
        let boot = e
            .bootstrap_ci
            .map_or_else(|| "–".to_string(), |[lo, hi]| format!("[{lo:.6}, {hi:.6}]"));
        table.row([
            e.name.to_string(),
            format!("{:.6}", e.estimate),
            format!("{:.6}", e.se),
            format!("{:.6}", e.ci_low),
            format!("{:.6}", e.ci_high),
            boot,
        ]);
    }
    let rows: Vec<Interval> = report
        .estimators
        .iter()
        .map(|e| Interval {
            label: e.name.to_string(),
            estimate: e.estimate,
            low: e.ci_low,
            high: e.ci_high,
        })
        .collect();
    page.table(&table).push_html(&interval_plot(
        "Estimator confidence intervals",
        &rows,
        Some(("logging policy", report.behavior_value)),
    ));
}

fn warnings(page: &mut Page, warnings: &[String]) {
    for w in warnings {
        page.warning(w);
    }
}
