//! Wire types: what the API returns, built from engine values.

use flywheel_engine::Served;
use serde::Serialize;
use utoipa::ToSchema;

/// One recommended item on the wire.
#[derive(Debug, Serialize, ToSchema)]
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
    /// Why, structured: `{"kind": ...}` and what the kind needs.
    #[schema(value_type = Object)]
    pub reason: flywheel_core::ExplanationKind,
    /// In an interleaving experiment, the variant that contributed the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub team: Option<String>,
    /// The probability the serving policy had of showing this item in this slot.
    pub propensity: f64,
    /// `deterministic`, `exact`, `estimated` or `interleaved`.
    #[schema(value_type = String)]
    pub propensity_kind: flywheel_core::PropensityKind,
}

/// The answer of `GET /v1/recommendations`.
#[derive(Debug, Serialize, ToSchema)]
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
    #[schema(required = false)]
    pub fallback_reasons: Vec<String>,
    /// The experiments the request was part of: `{"experiment", "variant"}` each.
    #[schema(value_type = Vec<Object>)]
    pub experiments: Vec<flywheel_core::ExperimentTag>,
    /// Whether a variant was forced (the request is not counted in experiments).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub forced: bool,
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
            experiments: served.experiments,
            forced: served.forced,
            items: served
                .recommendation
                .items
                .into_iter()
                .zip(served.slots)
                .map(|(item, slot)| WireItem {
                    item_id: item.item_id.to_string(),
                    score: item.score,
                    position: item.position,
                    channel: item.channel.as_str(),
                    explanation: item.explanation.text,
                    reason: item.explanation.kind,
                    team: slot.team,
                    propensity: slot.propensity,
                    propensity_kind: slot.propensity_kind,
                })
                .collect(),
        }
    }
}
