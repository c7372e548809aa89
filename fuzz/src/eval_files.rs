//! `eval_files`: the files `flywheel eval metrics` and `flywheel eval ope` read, through
//! `flywheel_eval`: TREC qrels and runs, prediction CSVs (both CSV paths: the fast
//! unquoted one and the quoted one), and logged-bandit CSVs.
//!
//! Input: a mode byte, then the file(s). Mode % 3: 0 = qrels and run (split at the
//! first NUL byte), 1 = predictions, 2 = a bandit log; the mode's bits 2–3 choose the
//! tie policy and the query scope. Properties:
//! - a bad file is an `EvalError`, never a panic;
//! - an accepted file evaluates to a report without a NaN or an infinity anywhere
//!   (the crate promises "never a NaN"), and the report renders as text and as HTML.

use flywheel_eval::trec::{QueryScope, TieBreak};
use flywheel_eval::{
    html_report, metrics_from_files_with, ope_from_file, MetricsOptions, OpeOptions,
};

use crate::finite::assert_finite;
use crate::{scratch_file, split_at_nul};

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut options = MetricsOptions::default();
    if mode & 4 != 0 {
        options.ranking.tie_break = TieBreak::InputOrder;
    }
    if mode & 8 != 0 {
        options.ranking.scope = QueryScope::RunAndJudged;
    }
    options.ranking.sklearn_ndcg = mode & 16 != 0;
    match mode % 3 {
        0 => {
            let (qrels, run) = split_at_nul(rest);
            let qrels = scratch_file("qrels.txt", qrels);
            let run = scratch_file("run.txt", run);
            check_metrics(metrics_from_files_with(
                Some(&qrels),
                Some(&run),
                None,
                &options,
            ));
        }
        1 => {
            let preds = scratch_file("preds.csv", rest);
            check_metrics(metrics_from_files_with(None, None, Some(&preds), &options));
        }
        _ => {
            let log = scratch_file("bandit.csv", rest);
            if let Ok(report) = ope_from_file(&log, &OpeOptions::default()) {
                assert_finite("an OPE report", &report);
                let _ = report.render_text();
                let _ = html_report("ope", None, Some(&report));
            }
        }
    }
}

fn check_metrics(report: flywheel_eval::Result<flywheel_eval::MetricsReport>) {
    if let Ok(report) = report {
        assert_finite("a metrics report", &report);
        let _ = report.render_text();
        let _ = html_report("metrics", Some(&report), None);
    }
}
