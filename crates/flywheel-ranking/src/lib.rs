//! # flywheel-ranking: from candidates to the final, explained list
//!
//! Retrieval hands the engine a few hundred [`flywheel_core::Candidate`]s. This
//! crate turns them into the ten items a user sees, in three steps.
//!
//! **1. Features.** [`featurize`] is *the* feature definition: the engine calls it
//! online when scoring a request, and offline replay calls it with the feature
//! snapshots "as of" each impression to build [`TrainingRow`]s, so training and
//! serving can never disagree. [`FEATURE_NAMES`] lists the features in order
//! (user–category affinity, smoothed CTR log-odds, decayed counters, trending,
//! age and freshness, price, the retrieval channel one-hot, channel rank and
//! score, user history, frequency, and crosses such as affinity × CTR). Every
//! value is finite for any input: non-finite inputs count as 0, missing values
//! get a neutral value and a flag. Changing a feature bumps
//! [`FEATURE_SCHEMA_VERSION`]; a model records the [`FeatureSchema`] it was trained on.
//!
//! **2. Scoring.** Every ranker sits behind the [`Ranker`] seam (one enum, one
//! interface), so a GBDT or an imported model is a new variant.
//! [`ImportedModel`] ([`imported`]) evaluates LightGBM text and XGBoost JSON models
//! in pure Rust, mapped onto [`FEATURE_NAMES`] by a [`FeatureManifest`].
//! [`LogisticRegression`] is the baseline ranker: features are
//! standardised (weighted mean and standard deviation of the training rows),
//! an L2 penalty applies to the standardised coefficients (not the intercept),
//! and the penalised log-loss is minimised by Newton's method with step halving,
//! which is exact and deterministic.
//!
//! ## How the output is calibrated
//!
//! [`LogisticRegression::predict`] returns a probability built in three stages
//! (see [`CalibrationInfo`]):
//!
//! 1. the model's margin `z` is fitted by log-loss, so on the training rows the
//!    mean of `σ(z)` equals the observed positive rate exactly (the intercept's
//!    optimality condition); [`CalibrationInfo::train_mean_prediction`] records it;
//! 2. if [`LrParams::platt_holdout_fraction`] is positive, a slice of rows (the
//!    last ones, or a seeded random subset) is held out of training and
//!    **Platt scaling** `σ(a·z + b)` is fitted on it by log-loss; the held-out
//!    log-loss and mean prediction before and after are kept in a [`HoldoutReport`]
//!    ([`LogisticRegression::fit_platt`] refits on any held-out rows);
//! 3. if the training rows kept each negative with probability `w`
//!    ([`LrParams::negative_sampling_rate`], stored in the model), the
//!    probability is mapped back to the full population with
//!    `p' = p / (p + (1 − p)/w)` ([`correct_for_negative_sampling`]). Platt is
//!    fitted before this correction, on held-out rows sampled the same way.
//!
//! **3. Re-ranking.** [`rerank`] drops unavailable, already-bought and
//! over-shown items, applies the freshness boost, then fills positions greedily
//! by maximal marginal relevance under a hard per-category cap (at most
//! `floor(category_cap · cap_window)` items of one top-level category in the
//! first `cap_window` positions, relaxed only when nothing else is left; see
//! [`diversity`]). Each item carries an [`flywheel_core::Explanation`] chosen
//! by [`explain`]: "because you viewed X", "trending in Y", "new in Y",
//! "popular with people like you", "popular in Y".

mod calibration;
pub mod diversity;
mod error;
mod explain;
mod features;
pub mod gbdt;
pub mod imported;
mod linalg;
mod logistic;
mod params;
mod ranker;
mod rerank;

pub use calibration::{
    correct_for_negative_sampling, fit_platt, CalibrationInfo, HoldoutReport, PlattScaling,
};
pub use diversity::item_similarity;
pub use error::{RankingError, Result};
pub use explain::{explain, TRENDING_THRESHOLD};
pub use features::{
    featurize, item_age_days, FeatureSchema, RankingInput, FEATURE_NAMES, FEATURE_SCHEMA_VERSION,
    NEUTRAL_AGE_DAYS, NEW_ITEM_DAYS, NO_EVENT_HOURS,
};
pub use gbdt::{GbdtModel, GbdtObjective, GbdtParams};
pub use imported::{FeatureManifest, ImportedBooster, ImportedModel, ModelFormat};
pub use logistic::LogisticRegression;
pub use params::{LrParams, TrainingRow};
pub use ranker::Ranker;
pub use rerank::{rerank, Ranked, RerankConfig, Scored};
