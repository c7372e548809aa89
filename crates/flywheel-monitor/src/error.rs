//! The crate's single error type.

/// Why a drift statistic could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// A sample is empty; drift needs data on both sides.
    #[error("the {0} sample is empty; drift needs at least one value on each side")]
    EmptySample(&'static str),
    /// A sample contains NaN or an infinity.
    #[error(
        "the {sample} sample has a non-finite value at index {index}; drop or impute it first"
    )]
    NonFinite {
        /// `reference` or `current`.
        sample: &'static str,
        /// Position of the first bad value.
        index: usize,
    },
    /// A parameter is outside its domain.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, MonitorError>;

/// Errors unless `values` is non-empty and finite.
pub(crate) fn check_sample(values: &[f64], sample: &'static str) -> Result<()> {
    if values.is_empty() {
        return Err(MonitorError::EmptySample(sample));
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MonitorError::NonFinite { sample, index }),
        None => Ok(()),
    }
}

/// A sorted copy of finite values (callers have run [`check_sample`]).
pub(crate) fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}
