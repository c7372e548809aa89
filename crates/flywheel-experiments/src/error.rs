//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong when assigning users or analysing an experiment.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The users file could not be opened or read.
    #[error("cannot read {path}: {source}; check that the file exists and is readable")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// A value in the users file is malformed; names the line and column.
    #[error("{path}, line {line}, column `{column}`: {message}")]
    Malformed {
        /// The offending file.
        path: PathBuf,
        /// 1-based line number (the header is line 1).
        line: u64,
        /// Column name as written in the header.
        column: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An argument is outside its domain (a weight, a share, alpha, a sample too small).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The data make the statistic undefined (for example zero variance in both arms).
    #[error("statistic undefined: {0}")]
    Undefined(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ExperimentError>;
