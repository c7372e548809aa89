//! The offline crate's error type.

/// What can go wrong while training or evaluating offline.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// There is not enough data to do what was asked (e.g. train without events).
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// An option or the configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A model failed to train.
    #[error("model: {0}")]
    Model(String),
    /// The log being replayed could not be read.
    #[error("replaying the log: {0}")]
    Replay(String),
}

impl OfflineError {
    /// Whether the error is the caller's (not enough data, bad options).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            OfflineError::NotEnoughData(_) | OfflineError::Config(_)
        )
    }
}

/// Result alias of the offline crate.
pub type Result<T> = std::result::Result<T, OfflineError>;
