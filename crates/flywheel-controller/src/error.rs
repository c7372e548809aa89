//! The crate's single error type.

use flywheel_core::Timestamp;

/// Why a configuration or an observation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControllerError {
    /// A configuration field has an unusable value.
    #[error("controller config field `{field}` is invalid: {reason}")]
    InvalidConfig {
        /// The offending field, dotted (`quality.unknown_item_share`).
        field: String,
        /// Why, and what range is accepted.
        reason: String,
    },
    /// An observation field has an unusable value.
    #[error("observation field `{field}` is invalid: {reason}")]
    InvalidObservation {
        /// The offending field, dotted (`features[2].value`).
        field: String,
        /// Why, and what range is accepted.
        reason: String,
    },
    /// Observations must arrive in time order: the controller runs on simulated time.
    #[error("observation at {at} is older than the previous one at {previous}; observations must arrive in time order")]
    OutOfOrder {
        /// The time of the previous observation.
        previous: Timestamp,
        /// The time of the refused one.
        at: Timestamp,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ControllerError>;

/// An [`ControllerError::InvalidConfig`] for `field`.
pub(crate) fn invalid_config<T>(field: &str, reason: &str) -> Result<T> {
    Err(ControllerError::InvalidConfig {
        field: field.to_string(),
        reason: reason.to_string(),
    })
}

/// An [`ControllerError::InvalidObservation`] for `field`.
pub(crate) fn invalid_observation<T>(field: &str, reason: &str) -> Result<T> {
    Err(ControllerError::InvalidObservation {
        field: field.to_string(),
        reason: reason.to_string(),
    })
}
