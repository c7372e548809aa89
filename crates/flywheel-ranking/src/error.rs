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
    /// A model file could not be read.
    #[error("cannot read the model file {path}: {reason}")]
    ModelFile {
        /// The file's path.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// An imported model file is not a valid model of the format it was loaded as.
    #[error("not a valid {format} model: {reason}")]
    BadModel {
        /// The format the file was read as (`LightGBM text` or `XGBoost JSON`).
        format: &'static str,
        /// What is wrong and where.
        reason: String,
    },
    /// A feature manifest is malformed or does not fit its model.
    #[error("feature manifest: {reason}")]
    BadManifest {
        /// What is wrong.
        reason: String,
    },
    /// A feature manifest names a feature flywheel does not compute.
    #[error("feature manifest: model feature `{model_feature}` is mapped to `{feature}`, which is not one of flywheel's ranking features (see FEATURE_NAMES in crates/flywheel-ranking/src/features.rs)")]
    UnknownFeature {
        /// The model's feature name.
        model_feature: String,
        /// The flywheel feature it was mapped to.
        feature: String,
    },
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, RankingError>;
