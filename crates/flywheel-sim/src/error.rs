//! The one error type of the simulator.

use std::path::PathBuf;

/// Why a simulation could not be configured, written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A configuration field has an unusable value.
    #[error("simulator config field `{field}` is invalid: {reason}")]
    InvalidConfig {
        /// The offending field of [`crate::SimConfig`].
        field: &'static str,
        /// Why, and what range is accepted.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} `{path}` failed: {source}")]
    Io {
        /// What we were doing ("creating", "writing", "reading").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line or file is not valid JSON, or not the shape we expect.
    #[error("`{path}` line {line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (1 for whole-file documents).
        line: usize,
        /// What is wrong and which field.
        reason: String,
    },
    /// The truth file does not describe the same catalog and users as the JSONL files.
    #[error("`{path}` does not match the dataset beside it: {reason}; regenerate the dataset with `flywheel simulate`")]
    TruthMismatch {
        /// The truth file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

/// Result alias for the simulator.
pub type Result<T> = std::result::Result<T, SimError>;
