//! Impressions: the lists flywheel served, written by flywheel itself.

use serde::{Deserialize, Serialize};

use crate::candidate::Channel;
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
    /// The probability the logging policy had of showing this item in this slot.
    pub propensity: f64,
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
    /// The experiment the request was part of, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// The experiment variant, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
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
    /// The slots, in order.
    pub slots: Vec<ImpressionSlot>,
}
