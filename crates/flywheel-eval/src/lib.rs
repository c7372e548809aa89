//! # flywheel-eval: the measuring instrument
//!
//! flywheel decides which model serves by numbers this crate computes, so those numbers
//! must be the ones users already trust. Every metric here is checked in
//! `tests/integration.rs` against values produced by trec_eval (pytrec_eval), ranx,
//! scikit-learn and Open Bandit Pipeline (`shared/reference`), and where those tools
//! disagree the difference is a *named option*, never a tolerance:
//!
//! - **Ranking** ([`ranking`] on plain slices, [`trec`] on TREC qrels/run files):
//!   `ndcg@k` (linear gain, trec_eval), `ndcg_exp@k` (`2^rel-1`), `ndcg_bin@k` and
//!   `map_minkr@k` (Microsoft Recommenders), `map@k`, `mrr@k`, `p@k`, `r@k`, `hit@k`, and
//!   whole-list `ndcg`, `map`, `mrr`. Ties: [`trec::TieBreak::TrecEval`] (docid descending)
//!   or [`trec::TieBreak::InputOrder`] (ranx); scikit-learn's tie-averaged NDCG is
//!   `ndcg_sklearn@k`. Means over all judged queries (trec_eval `-c`, ranx) or only those in
//!   the run (pytrec_eval): [`trec::QueryScope`].
//! - **Pointwise** ([`pointwise`], [`preds`]): AUC (ties ½), GAUC, log-loss, normalized
//!   entropy, ECE/MCE with the reliability table, observed/expected — overall and per slice
//!   column. Sort-based (radix) AUC: ten million rows in about a second.
//! - **Off-policy evaluation** ([`ope`]): IPS, SNIPS, DM, DR, SNDR with standard errors,
//!   normal CIs, optional weight clipping and seeded bootstrap CIs, and warnings when the
//!   importance weights make the estimates unreliable.
//! - **Reports**: every result is `Serialize`; [`MetricsReport`] has `mean` and `per_query`
//!   objects keyed by metric name; each report has `render_text()`; [`html_report`] draws a
//!   self-contained page with inline SVG, built from [`report_html`], the HTML report kit
//!   (page shell and style sheet, escaping, tables, charts) that flywheel's other reports
//!   use too.
//!
//! Bad input is an [`EvalError`] naming the file, line and column — never a panic, never a NaN.
//!
//! ```no_run
//! use std::path::Path;
//! let report = flywheel_eval::metrics_from_files(
//!     Some(Path::new("qrels.txt")), Some(Path::new("run.txt")), None, &[5, 10])?;
//! println!("{}", report.render_text());
//! let ope = flywheel_eval::ope_from_file(Path::new("log.csv"), &flywheel_eval::OpeOptions::default())?;
//! std::fs::write("report.html", flywheel_eval::html_report("eval", Some(&report), Some(&ope)))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod csvio;
pub mod error;
mod html;
pub mod metric_map;
pub mod ope;
pub mod pointwise;
pub mod preds;
pub mod ranking;
pub mod report;
pub mod report_html;
mod sort;
pub mod stats;
mod svg;
mod text;
pub mod trec;

pub use error::{EvalError, Result};
pub use html::html_report;
pub use ope::{ope_from_file, OpeOptions, OpeReport};
pub use report::{metrics_from_files, metrics_from_files_with, MetricsOptions, MetricsReport};
pub use stats::percentile;
