//! The `[monitoring]` settings: the live window, the reservoirs, the drift statistics
//! and their thresholds, the prediction band and the data-quality limits.

use serde::{Deserialize, Serialize};

use crate::error::{MonitorError, Result};

/// Which PSI definition bins a numeric feature (categoricals always get one bin per
/// category, which is the same under both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PsiVariant {
    /// Evidently 0.7: equal-width Sturges bins over the combined sample
    /// ([`crate::psi_evidently`]); Evidently's own threshold is 0.1.
    Evidently,
    /// The classic credit-scoring PSI: `psi_bins` bins at the reference quantiles
    /// ([`crate::psi_deciles`]).
    Deciles,
}

/// The statistic numeric features are judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericStatistic {
    /// The two-sample Kolmogorov–Smirnov test.
    Ks,
    /// PSI on binned values (the configured variant).
    Psi,
}

/// Settings of live monitoring (`[monitoring]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Length of the sliding live window, in seconds of event time.
    pub window_secs: u64,
    /// How many buckets the window slides by (the oldest bucket leaves at once).
    pub window_buckets: usize,
    /// Values kept per numeric feature over the whole window (a reservoir sample).
    pub reservoir_size: usize,
    /// Values kept per numeric feature in a version's reference.
    pub reference_size: usize,
    /// Below this many values on either side a feature is not judged.
    pub min_samples: usize,
    /// Categories kept per categorical feature; the rest are counted as `other`.
    pub max_categories: usize,
    /// How numeric features are judged.
    pub numeric_statistic: NumericStatistic,
    /// Which PSI binning numeric features get when judged by PSI.
    pub psi_variant: PsiVariant,
    /// Bins of the decile variant.
    pub psi_bins: usize,
    /// PSI at or above this is drift (the seeds' trigger is 0.15; Evidently's 0.1).
    pub psi_threshold: f64,
    /// A KS p-value at or below this, together with `ks_min_statistic`, is drift.
    pub ks_p_value: f64,
    /// The smallest KS distance D that counts as drift (large samples make tiny,
    /// harmless shifts significant; D is the effect size).
    pub ks_min_statistic: f64,
    /// Observed over expected CTR outside `[low, high]` is prediction drift.
    pub oe_band: [f64; 2],
    /// Fewer finalized served slots than this leave O/E unjudged.
    pub min_finalized_impressions: u64,
    /// A user with more events per minute than this over the window is bot-like.
    pub bot_events_per_minute: f64,
    /// A share of events naming unknown items above this is a data-quality breach.
    pub unknown_item_share: f64,
    /// A share of duplicate events above this is a data-quality breach.
    pub duplicate_share: f64,
    /// A share of served slots without features above this is a data-quality breach.
    pub missing_features_share: f64,
    /// Served lists kept waiting for their outcomes (the oldest leave first).
    pub max_pending_requests: usize,
    /// The features whose drift counts (empty: all but `unwatched_features`).
    pub watched_features: Vec<String>,
    /// Features whose drift never counts: by default those that move with the log's age
    /// or with the serving version rather than with the world ([`MOVES_WITH_THE_LOG`]).
    /// On a young log the decayed item counters (7-day half-life), item ages and per-user
    /// event counts grow for weeks whatever users do, so they drift against any earlier
    /// window, and the fused score and channel rank are on the serving version's scale.
    pub unwatched_features: Vec<String>,
}

/// The features that drift with the log's age or the serving version, not the world
/// (and the hour of day, which moves with the clock: a window shorter than a day
/// always differs from a reference taken over days).
pub const MOVES_WITH_THE_LOG: &[&str] = &[
    "item_ctr_log_odds",
    "item_views_1h_log1p",
    "item_views_24h_log1p",
    "item_views_7d_log1p",
    "item_clicks_1h_log1p",
    "item_clicks_24h_log1p",
    "item_clicks_7d_log1p",
    "item_purchases_1h_log1p",
    "item_purchases_24h_log1p",
    "item_purchases_7d_log1p",
    "item_trending_signed_log1p",
    "item_age_days_log1p",
    "item_hours_since_last_event_log1p",
    "user_event_count_log1p",
    "cross_affinity_x_ctr",
    "cross_affinity_x_trending",
    "predicted_ctr",
    "channel_score_squashed",
    "channel_rank_log1p",
    "context_hour_sin",
    "context_hour_cos",
];

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            window_secs: 3_600,
            window_buckets: 12,
            reservoir_size: 2_000,
            reference_size: 2_000,
            min_samples: 100,
            max_categories: 64,
            numeric_statistic: NumericStatistic::Ks,
            psi_variant: PsiVariant::Evidently,
            psi_bins: 10,
            psi_threshold: 0.15,
            ks_p_value: 0.05,
            ks_min_statistic: 0.1,
            oe_band: [0.8, 1.25],
            min_finalized_impressions: 200,
            bot_events_per_minute: 30.0,
            unknown_item_share: 0.05,
            duplicate_share: 0.05,
            missing_features_share: 0.05,
            max_pending_requests: 100_000,
            watched_features: Vec::new(),
            unwatched_features: MOVES_WITH_THE_LOG.iter().map(|f| f.to_string()).collect(),
        }
    }
}

impl MonitoringConfig {
    /// Checks every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: &str| {
            Err(MonitorError::InvalidParameter(format!(
                "monitoring.{field} {reason}"
            )))
        };
        let share = |v: f64| (0.0..=1.0).contains(&v);
        if self.window_secs == 0 {
            return bad("window_secs", "must be at least 1");
        }
        if !(1..=1_000).contains(&self.window_buckets) {
            return bad("window_buckets", "must be between 1 and 1000");
        }
        if !(self.window_buckets..=1_000_000).contains(&self.reservoir_size) {
            return bad(
                "reservoir_size",
                "must be between window_buckets and 1,000,000",
            );
        }
        if !(1..=1_000_000).contains(&self.reference_size) {
            return bad("reference_size", "must be between 1 and 1,000,000");
        }
        if self.max_pending_requests == 0 {
            return bad("max_pending_requests", "must be at least 1");
        }
        if self.min_samples == 0 {
            return bad("min_samples", "must be at least 1");
        }
        if !(2..=10_000).contains(&self.max_categories) {
            return bad("max_categories", "must be between 2 and 10,000");
        }
        if !(2..=1_000).contains(&self.psi_bins) {
            return bad("psi_bins", "must be between 2 and 1000");
        }
        if !(self.psi_threshold.is_finite() && self.psi_threshold > 0.0) {
            return bad("psi_threshold", "must be a positive number");
        }
        if !(self.ks_p_value > 0.0 && self.ks_p_value < 1.0) {
            return bad("ks_p_value", "must be in (0, 1)");
        }
        if !share(self.ks_min_statistic) {
            return bad("ks_min_statistic", "must be in [0, 1]");
        }
        let [low, high] = self.oe_band;
        if !(high.is_finite() && (0.0..1.0).contains(&low) && high > 1.0) {
            return bad("oe_band", "must be [low, high] with 0 <= low < 1 < high");
        }
        if !(self.bot_events_per_minute.is_finite() && self.bot_events_per_minute > 0.0) {
            return bad("bot_events_per_minute", "must be a positive number");
        }
        for (field, value) in [
            ("unknown_item_share", self.unknown_item_share),
            ("duplicate_share", self.duplicate_share),
            ("missing_features_share", self.missing_features_share),
        ] {
            if !share(value) {
                return bad(field, "must be a share in [0, 1]");
            }
        }
        Ok(())
    }

    /// Whether drift of `feature` counts.
    pub fn is_watched(&self, feature: &str) -> bool {
        let listed = |list: &[String]| list.iter().any(|f| f == feature);
        (self.watched_features.is_empty() || listed(&self.watched_features))
            && !listed(&self.unwatched_features)
    }

    /// The window length in milliseconds.
    pub fn window_ms(&self) -> i64 {
        i64::try_from(self.window_secs.saturating_mul(1_000)).unwrap_or(i64::MAX)
    }

    /// The length of one bucket in milliseconds (at least 1).
    pub fn bucket_ms(&self) -> i64 {
        (self.window_ms() / self.window_buckets.max(1) as i64).max(1)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn features_that_move_with_the_log_are_not_watched_by_default() {
        let config = MonitoringConfig::default();
        assert!(!config.is_watched("item_views_7d_log1p"));
        assert!(!config.is_watched("channel_score_squashed"));
        assert!(config.is_watched("engaged_category_affinity"));
        assert!(config.is_watched("event_item_category"));
        let narrowed = MonitoringConfig {
            watched_features: vec!["item_age_days_log1p".into(), "event_page".into()],
            ..MonitoringConfig::default()
        };
        assert!(
            !narrowed.is_watched("item_age_days_log1p"),
            "unwatched wins"
        );
        assert!(narrowed.is_watched("event_page"));
        assert!(!narrowed.is_watched("event_action"));
    }

    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(MonitoringConfig::default().validate().is_ok());
        let bad = MonitoringConfig {
            oe_band: [1.2, 0.8],
            ..MonitoringConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("oe_band"), "{err}");
        let bad = MonitoringConfig {
            psi_threshold: f64::NAN,
            ..MonitoringConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("psi_threshold"));
    }
}
