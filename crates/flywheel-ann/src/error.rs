//! The crate's single error type.

/// Why an index operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnnError {
    /// A vector's length differs from the index's dimension.
    #[error("vector has {got} values but the index has dimension {expected}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The length of the vector given.
        got: usize,
    },
    /// A vector holds NaN or an infinity.
    #[error("vector value {position} is not finite ({value})")]
    NonFinite {
        /// Position of the first bad value.
        position: usize,
        /// The value itself.
        value: f32,
    },
    /// A vector cannot be used with the metric (a zero vector under cosine).
    #[error("vector cannot be used with the {metric} metric: {reason}")]
    UnusableVector {
        /// The metric's name.
        metric: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An id is already in the index.
    #[error("id {0} is already in the index")]
    DuplicateId(u32),
    /// An id is not in the index.
    #[error("id {0} is not in the index")]
    UnknownId(u32),
    /// A parameter is outside its domain.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The index is full (more than `u32::MAX - 1` vectors).
    #[error("the index cannot hold more than {0} vectors")]
    Full(usize),
    /// The bytes are not a flywheel ANN index file.
    #[error("not a flywheel ANN index file (bad magic bytes); was it written by another program?")]
    ForeignFile,
    /// The file was written by an unknown format version.
    #[error(
        "index file format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The file ends before the index does.
    #[error("index file is truncated: {0}")]
    Truncated(String),
    /// The file decodes but does not describe a valid index.
    #[error("index file is corrupt: {0}")]
    Corrupt(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (names the file).
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, AnnError>;

/// Errors unless `vector` has `dimension` finite values.
pub(crate) fn check_vector(vector: &[f32], dimension: usize) -> Result<()> {
    if vector.len() != dimension {
        return Err(AnnError::DimensionMismatch {
            expected: dimension,
            got: vector.len(),
        });
    }
    match vector.iter().position(|v| !v.is_finite()) {
        Some(position) => Err(AnnError::NonFinite {
            position,
            value: vector[position],
        }),
        None => Ok(()),
    }
}
