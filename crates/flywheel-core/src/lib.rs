//! # flywheel-core: the vocabulary every other crate speaks
//!
//! This crate is the bottom of the dependency graph. It defines the data model of
//! the product (`Item`, `User`, `Event`, `Impression`), the records the durable log
//! stores (`LogRecord`), what retrieval hands to ranking (`Candidate`, `Channel`,
//! `Explanation`) and the feature snapshots ranking consumes (`UserFeatures`,
//! `ItemFeatures`). It has no IO and no async.
//!
//! Input from the outside world (HTTP bodies, import files) is parsed with the
//! `from_json` constructors, which validate every field and name the field that is
//! wrong. The `Serialize` form of each type is the same wire format, so what the
//! simulator writes is exactly what `flywheel import` and `POST /v1/events` read.

pub mod bots;
mod candidate;
pub mod canonical;
mod context;
mod error;
mod event;
mod experiment;
mod features;
mod ids;
mod impression;
mod item;
mod json;
pub mod limits;
mod record;
mod time;
mod user;

pub use bots::{judge_event, BotCounts, BotFilter, BotReason, BotRules, BotTrack};
pub use candidate::{Candidate, Channel, Explanation, ExplanationKind};
pub use context::{utc_hour, RequestContext, MAX_CONTEXT_VALUE_BYTES};
pub use error::{CoreError, Result};
pub use event::{Action, ActionSet, Event};
pub use experiment::{
    check_name, ExperimentDef, ExperimentKind, ExperimentTag, ExplorationSettings, Guardrails,
    PrimaryMetric, RerankOverride, VariantDef, DEFAULT_ATTRIBUTION_HOURS, MIN_THOMPSON_DRAWS,
};
pub use features::{ItemFeatures, UserFeatures};
pub use ids::{ItemId, RequestId, UserId};
pub use impression::{Impression, ImpressionSlot, PropensityKind};
pub use item::Item;
pub use record::LogRecord;
pub use time::Timestamp;
pub use user::User;
