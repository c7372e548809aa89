//! The registry's error type.

use std::path::PathBuf;

/// What can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The version (or an older one to roll back to) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A version name that is not a registry name (e.g. a path).
    #[error("invalid model version `{0}`: versions are names like v3, never paths")]
    InvalidVersion(String),
    /// The registry refuses the change as asked (e.g. a canary share out of range, a
    /// canary version that does not load); the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// A model file or manifest could not be read, written or decoded.
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

impl RegistryError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RegistryError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the error is the caller's (an unknown or malformed version name).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            RegistryError::NotFound(_)
                | RegistryError::InvalidVersion(_)
                | RegistryError::Refused(_)
        )
    }
}

/// Result alias of the registry.
pub type Result<T> = std::result::Result<T, RegistryError>;
