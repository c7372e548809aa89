//! The one error type of the core crate: validation failures that name the field.

/// Why a piece of input was rejected. Every variant names the offending field so
/// that an API client or an import file author knows what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// The input was not a JSON object (e.g. an array or a number where an object was expected).
    #[error("expected a JSON object, got {found}")]
    NotAnObject {
        /// What was found instead, e.g. "an array".
        found: &'static str,
    },
    /// A field that must be present is missing or null.
    #[error("field `{field}` is required")]
    MissingField {
        /// The missing field.
        field: String,
    },
    /// A field is present but has the wrong JSON type.
    #[error("field `{field}` must be {expected}, got {found}")]
    WrongType {
        /// The offending field.
        field: String,
        /// What the field must be, e.g. "a string".
        expected: &'static str,
        /// What was found, e.g. "a number".
        found: &'static str,
    },
    /// A field has the right type but an unacceptable value.
    #[error("field `{field}` is invalid: {reason}")]
    InvalidValue {
        /// The offending field.
        field: String,
        /// Why the value is unacceptable.
        reason: String,
    },
    /// A field the schema does not know (we reject these so typos are not silently ignored).
    #[error("unknown field `{field}`; allowed fields are: {allowed}")]
    UnknownField {
        /// The unknown field.
        field: String,
        /// The allowed field names, comma separated.
        allowed: String,
    },
}

impl CoreError {
    /// The name of the field this error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            CoreError::NotAnObject { .. } => None,
            CoreError::MissingField { field }
            | CoreError::WrongType { field, .. }
            | CoreError::InvalidValue { field, .. }
            | CoreError::UnknownField { field, .. } => Some(field),
        }
    }
}

/// Result alias for the core crate.
pub type Result<T> = std::result::Result<T, CoreError>;
