//! The engine's error type. User errors (bad input) are kept apart from internal
//! ones so the server can map them to 4xx and 5xx respectively.

use std::path::PathBuf;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A request or import record was invalid; `index` is its position in a batch.
    #[error("{}{source}", index.map(|i| format!("record {i}: ")).unwrap_or_default())]
    Invalid {
        /// Position of the bad record in its batch, if it came in a batch.
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
    /// Something the caller asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data directory is used by another flywheel process.
    #[error(
        "data directory {0} is in use by another flywheel process (is `flywheel serve` running?)"
    )]
    Locked(PathBuf),
    /// There is not enough data to do what was asked (e.g. train without events).
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// The durable log failed.
    #[error("event log: {0}")]
    Log(#[from] flywheel_log::LogError),
    /// A log record could not be decoded.
    #[error("corrupt log record at offset {offset}: {message}")]
    CorruptRecord {
        /// Where.
        offset: u64,
        /// Why.
        message: String,
    },
    /// A model failed to train or load.
    #[error("model: {0}")]
    Model(String),
    /// A filesystem operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl EngineError {
    /// Whether the error is the caller's fault (bad input) rather than ours.
    pub fn is_user_error(&self) -> bool {
        match self {
            EngineError::Invalid { .. }
            | EngineError::BadFile { .. }
            | EngineError::NotFound(_)
            | EngineError::Config(_)
            | EngineError::NotEnoughData(_) => true,
            EngineError::Locked(_)
            | EngineError::Log(_)
            | EngineError::CorruptRecord { .. }
            | EngineError::Model(_)
            | EngineError::Io { .. } => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the engine.
pub type Result<T> = std::result::Result<T, EngineError>;
