//! The object store adapter's error type.

use std::path::PathBuf;

/// What can go wrong between flywheel and an object store.
#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    /// The `--object-store` URL is not `s3://bucket[/prefix]` (or `memory://[prefix]`).
    #[error("invalid object store URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not be configured (missing region, bad endpoint, …).
    #[error("object store configuration: {0}")]
    Config(String),
    /// A request to the store failed.
    #[error("object store {operation} {key}: {message}")]
    Backend {
        /// `put`, `get`, `list` or `delete`.
        operation: &'static str,
        /// The object key (or prefix) involved.
        key: String,
        /// The store's error.
        message: String,
    },
    /// A downloaded object does not match what its publisher recorded (truncated,
    /// rewritten or missing): nothing of it was installed.
    #[error("damaged download of {key}: {reason}")]
    Damaged {
        /// The object key.
        key: String,
        /// Expected versus found.
        reason: String,
    },
    /// The remote and the local registry disagree on what a version name holds.
    #[error("{0}")]
    Conflict(String),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The local registry refused or failed.
    #[error(transparent)]
    Registry(#[from] flywheel_registry::RegistryError),
    /// The engine refused the swap (e.g. the version does not load).
    #[error("swapping in the downloaded version: {0}")]
    Engine(String),
}

impl ObjectStoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ObjectStoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn backend(
        operation: &'static str,
        key: &str,
        error: impl std::fmt::Display,
    ) -> Self {
        ObjectStoreError::Backend {
            operation,
            key: key.to_string(),
            message: error.to_string(),
        }
    }
}

/// Result alias of the adapter.
pub type Result<T> = std::result::Result<T, ObjectStoreError>;
