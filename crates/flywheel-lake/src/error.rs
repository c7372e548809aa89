//! The one error type of the lake.

use std::path::PathBuf;

/// What can go wrong exporting to, reading from or erasing in the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The log could not be read.
    #[error("reading the log: {0}")]
    Log(#[from] flywheel_log::LogError),
    /// A Parquet file could not be written or read.
    #[error("parquet file {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow arrays could not be built or filtered.
    #[error("arrow data of table {table}: {source}")]
    Arrow {
        /// The table.
        table: &'static str,
        /// The cause.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A file of the lake does not hold what its table's schema says.
    #[error("lake file {path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The exporter's position file is unreadable.
    #[error("exporter position {path}: {reason}")]
    Position {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A bad setting.
    #[error("lake setting {setting}: {reason}")]
    Config {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The lake's result type.
pub type Result<T> = std::result::Result<T, LakeError>;

/// A closure turning an `io::Error` into [`LakeError::Io`] for `path`.
pub(crate) fn io_error(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> LakeError {
    let path = path.to_path_buf();
    move |source| LakeError::Io {
        action,
        path,
        source,
    }
}
