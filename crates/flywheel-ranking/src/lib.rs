//! Ranking features, logistic regression, calibration, re-ranking and explanations.

mod calibration;
pub mod diversity;
mod explain;
mod rerank;
mod error;
mod features;
mod linalg;
mod logistic;
mod params;

pub use calibration::{correct_for_negative_sampling, fit_platt, CalibrationInfo, HoldoutReport, PlattScaling};
pub use error::{RankingError, Result};
pub use features::{
    featurize, item_age_days, FeatureSchema, RankingInput, FEATURE_NAMES, FEATURE_SCHEMA_VERSION, NEUTRAL_AGE_DAYS,
    NEW_ITEM_DAYS, NO_EVENT_HOURS,
};
pub use logistic::LogisticRegression;
pub use params::{LrParams, TrainingRow};
pub use diversity::item_similarity;
pub use explain::{explain, TRENDING_THRESHOLD};
pub use rerank::{rerank, Ranked, RerankConfig, Scored};
