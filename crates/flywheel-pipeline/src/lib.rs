//! # flywheel-pipeline: the serving pipeline, as pure functions
//!
//! Everything one recommendation needs, with no threads, no IO and no clock of its
//! own, so the server calls it online and training and evaluation call it offline on a
//! state replayed to a cut-off:
//! - [`State`]: the catalog ([`Catalog`]) and the online features as of an offset of
//!   the log, changed only by [`State::apply`];
//! - [`ModelSet`]: the models served together (retrieval models and a ranker behind
//!   their seams, the fusion weights) and their [`Manifest`];
//! - [`recommend`]: one request, retrieval → ranking → re-ranking, with deadlines and
//!   fallbacks;
//! - [`EngineConfig`]: the one typed configuration of the engine.

mod catalog;
pub mod config;
mod error;
mod models;
mod recommend;
mod state;

pub use catalog::{in_category, Catalog};
pub use config::{
    feature_config, monitored_feature_names, EngineConfig, ExperimentSettings, GateRuleKind,
    GateSettings, PositionBias, RankerKind, SnapshotSettings,
};
pub use error::{PipelineError, Result};
pub use models::{Manifest, ModelSet};
pub use recommend::{
    recommend, retrieve_candidates, RecItem, RecRequest, Recommendation, StageTimings,
};
pub use state::State;
