//! The engine's error type. It wraps the error of each crate below it, and keeps user
//! errors (bad input) apart from internal ones so the server can map them to 4xx and
//! 5xx respectively.

use std::path::PathBuf;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A request record was invalid; `index` is its position in a batch.
    #[error("{}{source}", index.map(|i| format!("record {i}: ")).unwrap_or_default())]
    Invalid {
        /// Position of the bad record in its batch, if it came in a batch.
        index: Option<usize>,
        /// What was wrong.
        source: flywheel_core::CoreError,
    },
    /// Something the caller asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The data directory is used by another flywheel process.
    #[error(
        "data directory {0} is in use by another flywheel process (is `flywheel serve` running?)"
    )]
    Locked(PathBuf),
    /// A job of this kind is already running; names its id.
    #[error("a {kind} job is already running: {id}")]
    Busy {
        /// The kind of job.
        kind: &'static str,
        /// The running job's id.
        id: String,
    },
    /// The controller's circuit breaker is open: training waits for data quality to
    /// recover.
    #[error("training is paused by the controller's circuit breaker (data-quality breach{}); it resumes once quality has recovered (GET /v1/controller)", since.map(|t| format!(" since {t}")).unwrap_or_default())]
    TrainingPaused {
        /// When the breaker opened.
        since: Option<flywheel_core::Timestamp>,
    },
    /// The controller refused an observation or its configuration.
    #[error("controller: {0}")]
    Controller(String),
    /// The durable log failed.
    #[error("event log: {0}")]
    Log(#[from] flywheel_log::LogError),
    /// A record could not be encoded for the log.
    #[error("encoding a log record: {0}")]
    Encode(String),
    /// The configuration is invalid.
    #[error(transparent)]
    Pipeline(#[from] flywheel_pipeline::PipelineError),
    /// The model registry failed.
    #[error(transparent)]
    Registry(#[from] flywheel_registry::RegistryError),
    /// Training or evaluation failed.
    #[error(transparent)]
    Offline(#[from] flywheel_offline::OfflineError),
    /// An import failed.
    #[error(transparent)]
    Import(#[from] flywheel_import::ImportError),
    /// A snapshot of the state could not be encoded.
    #[error("snapshot: {0}")]
    Snapshot(String),
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
            | EngineError::NotFound(_)
            | EngineError::Busy { .. }
            | EngineError::TrainingPaused { .. }
            | EngineError::Controller(_) => true,
            EngineError::Pipeline(_) => true,
            EngineError::Registry(e) => e.is_user_error(),
            EngineError::Offline(e) => e.is_user_error(),
            EngineError::Import(e) => e.is_user_error(),
            EngineError::Locked(_)
            | EngineError::Log(_)
            | EngineError::Encode(_)
            | EngineError::Snapshot(_)
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
