//! Offline metrics, counterfactual estimators and reports that match trusted tools.

mod csvio;
pub mod error;
pub mod metric_map;
pub mod ope;
pub mod pointwise;
pub mod preds;
pub mod ranking;
mod sort;
pub mod stats;
pub mod trec;

pub use error::{EvalError, Result};
pub mod report;
pub use ope::{ope_from_file, OpeOptions, OpeReport};
pub use report::{metrics_from_files, metrics_from_files_with, MetricsOptions, MetricsReport};
