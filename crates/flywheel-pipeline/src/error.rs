//! The pipeline crate's error type.

/// What can go wrong in the pipeline crate: only configuration, since serving
/// itself never fails (it falls back and says so).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A configuration file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result alias of the pipeline crate.
pub type Result<T> = std::result::Result<T, PipelineError>;
