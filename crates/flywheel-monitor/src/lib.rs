//! Drift statistics (PSI, KS) and data quality checks.
//!
//! A model is trained on one window of data and served on another; this crate measures
//! how far the live ("current") window has moved from the training ("reference") one,
//! feature by feature, with the definitions the tools users already trust:
//!
//! * [`psi`]: the Population Stability Index, both as Evidently computes it
//!   ([`psi::psi_evidently`], equal-width Sturges bins over the combined sample) and in
//!   the classic reference-decile form ([`psi::psi_deciles`]); categorical features with
//!   [`psi::psi_categorical`]. The two numeric definitions differ and are named apart.
//! * [`ks`]: the two-sample Kolmogorov–Smirnov test exactly as `scipy.stats.ks_2samp`
//!   computes it, exact or asymptotic by scipy's own rule.
//! * [`distance`]: Evidently's default distances for large samples (normed Wasserstein,
//!   Jensen–Shannon).
//!
//!
//! Live monitoring is built on them, with no engine dependency:
//! * [`config`]: the `[monitoring]` settings ([`MonitoringConfig`]);
//! * [`reference`]: a model version's reference distributions and its calibrated
//!   P(click) model ([`ctr`]) ([`Reference`], stored as `reference.json` beside the version);
//! * [`reservoir`]: bounded seeded samples;
//! * [`window`]: the sliding live window the engine feeds record by record
//!   ([`LiveWindow`]);
//! * [`report`]: the window against the reference ([`MonitoringReport`]).
//!
//! All functions take `&[f64]` (or category) slices and return an error, never a panic
//! or a NaN, on empty or non-finite input. Values are pinned to
//! `shared/reference/drift_example` (Evidently 0.7.23, scipy) by `tests/integration.rs`.

pub mod config;
pub mod ctr;
pub mod distance;
pub mod error;
pub mod ks;
pub mod psi;
pub mod reference;
pub mod report;
pub mod reservoir;
pub mod window;

pub use config::{MonitoringConfig, NumericStatistic, PsiVariant, MOVES_WITH_THE_LOG};
pub use ctr::CtrModel;
pub use distance::{jensen_shannon_categorical, wasserstein_distance, wasserstein_distance_norm};
pub use error::{MonitorError, Result};
pub use ks::{ks_2samp, KsMethod, KsResult};
pub use psi::{psi_categorical, psi_categorical_counts, psi_deciles, psi_evidently, PsiResult};
pub use reference::{
    Calibration, Reference, ReferenceBuilder, CATEGORICAL_FEATURES, PREDICTED_CTR,
};
pub use report::{
    BotFilterFigures, DataQuality, FeatureDrift, FeatureKind, Freshness, MonitoringReport,
    PredictionDrift, Skew, StageLatencySummary, Statistic, WindowSummary,
};
pub use window::{key, EventObservation, ImpressionObservation, LiveWindow, SlotObservation};
