//! The one error type of the retrieval crate.

/// Why a retrieval model could not be trained or used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetrievalError {
    /// Training was asked for on a data set without a single usable interaction.
    #[error(
        "cannot train {model}: the interactions are empty (no (user, item) pair with a finite, \
         positive weight); import events first or fall back to the popularity channel"
    )]
    EmptyInteractions {
        /// The model that was being trained, e.g. "ALS".
        model: &'static str,
    },
    /// A hyper-parameter is out of its valid range.
    #[error("invalid {model} parameter `{param}` = {value}: {reason}")]
    InvalidParameter {
        /// The model the parameter belongs to.
        model: &'static str,
        /// The parameter's name as written in the config.
        param: &'static str,
        /// The offending value, rendered.
        value: String,
        /// What the valid range is.
        reason: &'static str,
    },
    /// A matrix that must be symmetric positive definite was not (numerically).
    #[error(
        "{model}: matrix is not positive definite at pivot {pivot} (value {value:e}); \
         increase the regularization"
    )]
    NotPositiveDefinite {
        /// The model whose linear algebra failed.
        model: &'static str,
        /// The row/column where the Cholesky factorisation broke down.
        pivot: usize,
        /// The non-positive (or non-finite) pivot value.
        value: f64,
    },
    /// The problem is too large for the chosen exact algorithm.
    #[error("{model}: {items} items exceed the limit of {limit}; {hint}")]
    TooLarge {
        /// The model.
        model: &'static str,
        /// How many items the data has.
        items: usize,
        /// The largest supported count.
        limit: usize,
        /// What to do instead.
        hint: &'static str,
    },
    /// An item-vector index could not be built, read or searched.
    #[error("ANN index: {0}")]
    Index(String),
}

/// Result alias for the retrieval crate.
pub type Result<T> = std::result::Result<T, RetrievalError>;
