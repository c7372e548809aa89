//! The import crate's error type: every error names the file and, where it can, the line.

use std::path::PathBuf;

/// What can go wrong while importing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A record was invalid; `index` is its position in its batch or file.
    #[error("{}{source}", index.map(|i| format!("record {i}: ")).unwrap_or_default())]
    Invalid {
        /// Position of the bad record, if known.
        index: Option<usize>,
        /// What was wrong.
        source: flywheel_core::CoreError,
    },
    /// An input file could not be parsed; names the file and line.
    #[error("{path}:{line}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        message: String,
    },
    /// A file or folder the import needs does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A filesystem operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The sink that takes the records (e.g. the log) failed.
    #[error("{0}")]
    Sink(Box<dyn std::error::Error + Send + Sync>),
}

impl ImportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImportError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the error is the input's fault rather than the machine's.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ImportError::Io { .. } | ImportError::Sink(_))
    }
}

/// Result alias of the import crate.
pub type Result<T> = std::result::Result<T, ImportError>;
