//! Impressions: the lists flywheel served, written by flywheel itself.

use serde::{Deserialize, Serialize};

use crate::candidate::Channel;
use crate::context::RequestContext;
use crate::experiment::ExperimentTag;
use crate::ids::{ItemId, RequestId, UserId};
use crate::time::Timestamp;

/// One slot of a served list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpressionSlot {
    /// The item shown.
    pub item_id: ItemId,
    /// Its 0-based position.
    pub position: u32,
    /// The final score it was ranked by.
    pub score: f64,
    /// The probability the logging policy had of showing this item in this slot
    /// (the marginal probability of the item at its final slot).
    pub propensity: f64,
    /// What kind of probability `propensity` is; only `exact` and `estimated` slots
    /// are random draws a counterfactual estimator may use.
    #[serde(default)]
    pub propensity_kind: PropensityKind,
    /// In an interleaving experiment, the variant that contributed the slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The channel that proposed it.
    pub channel: Channel,
    /// The candidate's 0-based rank within its channel.
    #[serde(default)]
    pub channel_rank: u32,
    /// The channel's own score for the candidate.
    #[serde(default)]
    pub channel_score: f32,
    /// The user's item that drove the candidate, for history-driven channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_item: Option<ItemId>,
    /// The ranking features used for it, in the order of the ranker's feature names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<f32>,
}

/// A served recommendation list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impression {
    /// The id returned to the client; events carry it back.
    pub request_id: RequestId,
    /// Who it was served to.
    pub user_id: UserId,
    /// When.
    pub timestamp: Timestamp,
    /// The experiments the request was part of, with the variant of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<ExperimentTag>,
    /// Whether a variant was forced (`X-Flywheel-Variant`): such requests are kept
    /// out of the experiment statistics and counted apart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// The category the request asked for, if any (so a replay can redo the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// How many items the request asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Where and when the list was asked for (device, page, hour): ranking features,
    /// recomputed from here by training. Empty in logs written before it existed.
    #[serde(default, skip_serializing_if = "RequestContext::is_empty")]
    pub context: RequestContext,
    /// The version of the model set that ranked it.
    pub model_version: String,
    /// Whether a fallback replaced part of the pipeline.
    #[serde(default)]
    pub fallback: bool,
    /// The log offset the online features were read at: every record before it had
    /// been applied, none after. Offline replay recomputes the features "as of" this
    /// offset and `timestamp`, which is what makes the parity check exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features_offset: Option<u64>,
    /// How long the request took to serve, in milliseconds (guardrails read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The slots, in order.
    pub slots: Vec<ImpressionSlot>,
}

/// What a slot's propensity means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropensityKind {
    /// The policy could have shown nothing else here: propensity 1, not a random draw.
    #[default]
    Deterministic,
    /// A random draw whose marginal probability is known in closed form.
    Exact,
    /// A random draw whose probability was estimated by Monte Carlo.
    Estimated,
    /// A team-draft slot of an interleaving experiment: not usable for off-policy evaluation.
    Interleaved,
    /// A probability conditional on the earlier slots (the simulator's site policy), not
    /// the marginal of the item at its slot.
    Conditional,
}

impl PropensityKind {
    /// Whether the slot was a random draw with a marginal propensity an off-policy
    /// estimator may divide by.
    pub fn is_stochastic(self) -> bool {
        matches!(self, PropensityKind::Exact | PropensityKind::Estimated)
    }
}
