//! The one error type of the feature crate.

/// Why the feature store refused something. Today only configuration can be wrong:
/// applying events never fails (every event is accepted, late ones included).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    /// A field of [`crate::FeatureConfig`] has an unusable value.
    #[error("feature config field `{field}` is invalid: {reason}; fix it in the `features` section of the configuration")]
    InvalidConfig {
        /// The offending field of `FeatureConfig`.
        field: &'static str,
        /// Why the value is unusable and what would be accepted.
        reason: String,
    },
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, FeatureError>;
