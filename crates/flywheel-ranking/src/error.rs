//! The one error type of the ranking crate.

/// Why training, calibration or configuration was rejected. Every message says
/// which input is wrong and what to do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RankingError {
    /// Training was asked to fit a model on no rows.
    #[error("training set is empty: build training rows from impressions before calling train")]
    EmptyTrainingSet,
    /// A training row does not have the width of the feature schema.
    #[error("training row {row} has {found} features, the schema `{schema}` has {expected}: rebuild the rows with featurize()")]
    WrongWidth {
        /// The 0-based row index.
        row: usize,
        /// The row's feature count.
        found: usize,
        /// The schema's feature count.
        expected: usize,
        /// The schema's version, as text.
        schema: String,
    },
    /// A training row holds a value that is not usable.
    #[error("training row {row}, field `{field}` is {value}: {hint}")]
    BadRow {
        /// The 0-based row index.
        row: usize,
        /// The field (`label`, `weight` or `features[j]`).
        field: String,
        /// The offending value, as text.
        value: String,
        /// What is expected.
        hint: &'static str,
    },
    /// A hyper-parameter or configuration value is out of its range.
    #[error("parameter `{field}` = {value} is invalid: {hint}")]
    BadParameter {
        /// The parameter's name, e.g. `l2`.
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// The accepted range.
        hint: &'static str,
    },
    /// The rows given to a fit hold only one class, so nothing can be learned.
    #[error("{what} needs both positive and negative labels, got {positives} positive(s) out of {rows} row(s): widen the data window or lower the held-out fraction")]
    SingleClass {
        /// What was being fitted (`training` or `Platt scaling`).
        what: &'static str,
        /// Number of rows.
        rows: usize,
        /// Number of rows with label 1.
        positives: usize,
    },
    /// The numerical solver failed (a singular system that regularisation did not fix).
    #[error("{what} did not converge: {reason}; raise `l2` or check the features for duplicates")]
    NoConvergence {
        /// What was being fitted.
        what: &'static str,
        /// Why it stopped.
        reason: String,
    },
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, RankingError>;
