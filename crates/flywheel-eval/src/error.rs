//! The crate's one error type: every variant says which file, line and column is wrong.

use std::path::PathBuf;

/// Everything that can go wrong while reading evaluation inputs or computing metrics.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source} (check that the file exists and is readable)")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// A CSV file is malformed (unbalanced quotes, ragged rows, invalid UTF-8).
    #[error("{path}, line {line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What the CSV reader reported.
        message: String,
    },
    /// A required column is absent from the CSV header.
    #[error(
        "{path}: missing column `{column}` (header has: {found}); add it or rename the column"
    )]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The required column.
        column: String,
        /// The columns the header does have, comma separated.
        found: String,
    },
    /// A field holds a value that is not allowed there.
    #[error("{path}, line {line}, column `{column}`: {reason} (found `{value}`)")]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column (CSV header name or TREC field name).
        column: String,
        /// The offending text.
        value: String,
        /// What is expected instead.
        reason: String,
    },
    /// A TREC qrels/run line does not have the expected number of fields.
    #[error("{path}, line {line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong and what the format is.
        reason: String,
    },
    /// The file has no data rows.
    #[error("{path}: no data rows; the file is empty or holds only a header")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The arguments cannot produce a result (e.g. no input given, k = 0).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias for this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

impl EvalError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn invalid(
        path: &std::path::Path,
        line: u64,
        column: &str,
        value: &[u8],
        reason: impl Into<String>,
    ) -> Self {
        EvalError::InvalidValue {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
            value: String::from_utf8_lossy(value).chars().take(80).collect(),
            reason: reason.into(),
        }
    }
}
