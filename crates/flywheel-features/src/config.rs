//! The feature store's settings, with defaults and validation.

use flywheel_core::{BotRules, Timestamp};
use serde::{Deserialize, Serialize};

use crate::decay::Horizon;
use crate::error::{FeatureError, Result};

/// How the online features are computed. Every field has a sensible default
/// ([`FeatureConfig::default`]); call [`FeatureConfig::validate`] on configuration
/// that comes from outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// How many of a user's last actions are kept (most recent first). Default 50.
    pub recent_actions: usize,
    /// Two events of a user at most this far apart (ms) belong to one session and
    /// co-visit each other. Default 30 minutes.
    pub session_gap_ms: i64,
    /// How many of the user's earlier events (by time, within the session gap) an event
    /// is paired with for co-visitation. Default 10.
    pub covis_window: usize,
    /// Neighbours kept per item for co-visitation. Lists grow to twice this, then the
    /// weakest are pruned back to this size. Default 50.
    pub covis_max_neighbors: usize,
    /// Prior clicks of the smoothed CTR. Default 1.
    pub ctr_prior_clicks: f64,
    /// Prior exposures of the smoothed CTR (prior CTR = clicks / exposures). Default 20.
    pub ctr_prior_exposures: f64,
    /// Impressions older than this (ms) no longer count in a user's `shown`. Default 24 h.
    pub shown_window_ms: i64,
    /// At most this many shown slots are remembered per user (oldest dropped). Default 1000.
    pub shown_max_slots: usize,
    /// Pseudo-count added under the square root of the trending score, so that items
    /// with tiny counts do not look like they are exploding. Default 1.
    pub trending_prior: f64,
    /// The half-life of the engagement that `popular` ranks by. Default one week.
    pub popular_horizon: Horizon,
    /// Cached popular/trending lists are recomputed when `now` moved this far (ms)
    /// from the time they were computed at. Default 1 s.
    pub ranking_refresh_ms: i64,
    /// … or when this many events were applied since. Default 10 000.
    pub ranking_refresh_events: u64,
    /// How many items per category the popular/trending cache keeps. Requests for
    /// more are answered by a full scan. Default 200.
    pub ranking_cache_depth: usize,
    /// The spam and bot rules applied on the log's write path
    /// ([`crate::FeatureWriter::apply_record`]): dropped events change no feature.
    pub bots: BotRules,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            recent_actions: 50,
            session_gap_ms: 30 * 60 * Timestamp::SECOND,
            covis_window: 10,
            covis_max_neighbors: 50,
            ctr_prior_clicks: 1.0,
            ctr_prior_exposures: 20.0,
            shown_window_ms: Timestamp::DAY,
            shown_max_slots: 1000,
            trending_prior: 1.0,
            popular_horizon: Horizon::Week,
            ranking_refresh_ms: Timestamp::SECOND,
            ranking_refresh_events: 10_000,
            ranking_cache_depth: 200,
            bots: BotRules::default(),
        }
    }
}

impl FeatureConfig {
    /// Checks every field; the error names the field and the accepted range.
    /// A store built from an unvalidated config still never panics or yields NaN
    /// (a zero CTR denominator gives CTR 0), but its features may be meaningless.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: &str| {
            Err(FeatureError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        if self.session_gap_ms < 0 {
            return invalid("session_gap_ms", "must be >= 0 milliseconds");
        }
        if let Err(reason) = self.bots.validate() {
            return invalid("bots", &reason);
        }
        if self.shown_window_ms < 0 {
            return invalid("shown_window_ms", "must be >= 0 milliseconds");
        }
        if self.ranking_refresh_ms < 0 {
            return invalid("ranking_refresh_ms", "must be >= 0 milliseconds");
        }
        if !(self.ctr_prior_clicks.is_finite() && self.ctr_prior_clicks >= 0.0) {
            return invalid("ctr_prior_clicks", "must be a finite number >= 0");
        }
        if !(self.ctr_prior_exposures.is_finite() && self.ctr_prior_exposures > 0.0) {
            return invalid("ctr_prior_exposures", "must be a finite number > 0");
        }
        if self.ctr_prior_clicks > self.ctr_prior_exposures {
            return invalid(
                "ctr_prior_clicks",
                "must not exceed ctr_prior_exposures (prior CTR <= 1)",
            );
        }
        if !(self.trending_prior.is_finite() && self.trending_prior > 0.0) {
            return invalid("trending_prior", "must be a finite number > 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_spec() {
        let c = FeatureConfig::default();
        c.validate().unwrap();
        assert_eq!(c.recent_actions, 50);
        assert_eq!(c.session_gap_ms, 1_800_000);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: [(FeatureConfig, &str); 4] = [
            (
                FeatureConfig {
                    session_gap_ms: -1,
                    ..Default::default()
                },
                "session_gap_ms",
            ),
            (
                FeatureConfig {
                    ctr_prior_exposures: 0.0,
                    ..Default::default()
                },
                "ctr_prior_exposures",
            ),
            (
                FeatureConfig {
                    ctr_prior_clicks: f64::NAN,
                    ..Default::default()
                },
                "ctr_prior_clicks",
            ),
            (
                FeatureConfig {
                    trending_prior: -1.0,
                    ..Default::default()
                },
                "trending_prior",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert!(matches!(&err, FeatureError::InvalidConfig { field: f, .. } if *f == field));
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected_when_parsing() {
        let parsed: std::result::Result<FeatureConfig, _> =
            serde_json::from_str(r#"{"recent_actions": 5, "colour": 1}"#);
        assert!(parsed.is_err());
        let ok: FeatureConfig = serde_json::from_str(r#"{"recent_actions": 5}"#).unwrap();
        assert_eq!(ok.recent_actions, 5);
        assert_eq!(ok.covis_window, 10);
    }
}
