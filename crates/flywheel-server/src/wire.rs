//! Wire types: what the API returns, built from engine values.

use flywheel_engine::Served;
use serde::Serialize;

/// One recommended item on the wire.
#[derive(Debug, Serialize)]
pub struct WireItem {
    /// The item.
    pub item_id: String,
    /// Its final score.
    pub score: f64,
    /// 0-based position.
    pub position: u32,
    /// The retrieval channel it came from.
    pub channel: &'static str,
    /// Why, in words.
    pub explanation: String,
    /// Why, structured.
    pub reason: flywheel_core::ExplanationKind,
}

/// The answer of `GET /v1/recommendations`.
#[derive(Debug, Serialize)]
pub struct WireRecommendations {
    /// Send it back with events as `request_id`.
    pub request_id: String,
    /// Who the list is for.
    pub user_id: String,
    /// The model version that ranked the list.
    pub model_version: String,
    /// Whether a fallback was used.
    pub fallback: bool,
    /// Why, when it was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback_reasons: Vec<String>,
    /// The items, best first.
    pub items: Vec<WireItem>,
}

impl WireRecommendations {
    /// Converts an engine answer.
    pub fn from_served(user_id: String, served: Served) -> Self {
        WireRecommendations {
            request_id: served.request_id.to_string(),
            user_id,
            model_version: served.model_version,
            fallback: served.recommendation.fallback,
            fallback_reasons: served.recommendation.fallback_reasons,
            items: served
                .recommendation
                .items
                .into_iter()
                .map(|item| WireItem {
                    item_id: item.item_id.to_string(),
                    score: item.score,
                    position: item.position,
                    channel: item.channel.as_str(),
                    explanation: item.explanation.text,
                    reason: item.explanation.kind,
                })
                .collect(),
        }
    }
}
