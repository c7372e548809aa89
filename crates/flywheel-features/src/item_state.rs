//! What the store keeps per item: decayed counters and the top-level category; and the formulas that turn them into item features.

use flywheel_core::{Action, ItemFeatures, ItemId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::config::FeatureConfig;
use crate::decay::{CounterKind, DecayedCounters, Horizon, HALF_LIVES_MS};

/// The state of one item. Items are interned: other structures refer to them by
/// their index in the store's item table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemState {
    pub(crate) id: ItemId,
    /// Index of the top-level category in the store's category table.
    pub(crate) category: Option<u32>,
    pub(crate) counters: DecayedCounters,
    /// Latest event time (ms) seen for the item.
    pub(crate) last_event: Option<i64>,
}

impl ItemState {
    pub(crate) fn new(id: ItemId) -> Self {
        ItemState {
            id,
            category: None,
            counters: DecayedCounters::default(),
            last_event: None,
        }
    }

    /// Adds one event to the counters: views, clicks and purchases count 1 in their own
    /// counter; every action adds its implicit weight to engagement.
    pub(crate) fn count_event(&mut self, action: &Action, at: i64) {
        let engagement = (CounterKind::Engagement, f64::from(action.implicit_weight()));
        let own = match action {
            Action::View => Some(CounterKind::View),
            Action::Click => Some(CounterKind::Click),
            Action::Purchase => Some(CounterKind::Purchase),
            Action::AddToCart | Action::Like | Action::Dislike | Action::Custom(_) => None,
        };
        match own {
            Some(kind) => self.counters.add(at, &[(kind, 1.0), engagement]),
            None => self.counters.add(at, &[engagement]),
        }
        self.last_event = Some(self.last_event.map_or(at, |last| last.max(at)));
    }

    /// Counts one slot of a served list as an exposure.
    pub(crate) fn count_impression(&mut self, at: i64) {
        self.counters.add(at, &[(CounterKind::Impression, 1.0)]);
    }

    /// The item's features at `now` (ms). Reading does not mutate.
    pub(crate) fn features(&self, config: &FeatureConfig, now: i64) -> ItemFeatures {
        let all = self.counters.all_at(now);
        let [views, clicks, purchases, engagement, impressions] = [
            CounterKind::View,
            CounterKind::Click,
            CounterKind::Purchase,
            CounterKind::Engagement,
            CounterKind::Impression,
        ]
        .map(|kind| all[kind as usize]);
        let (hour, week) = (Horizon::Hour.index(), Horizon::Week.index());
        ItemFeatures {
            views,
            clicks,
            purchases,
            impressions,
            ctr: smoothed_ctr(config, clicks[week], views[week] + impressions[week]),
            trending: trending_score(config, engagement[hour], engagement[week]),
            last_event: self.last_event.map(Timestamp::from_millis),
        }
    }

    /// Decayed engagement at the configured popularity horizon.
    pub(crate) fn popularity(&self, config: &FeatureConfig, now: i64) -> f64 {
        self.counters
            .at_horizon(CounterKind::Engagement, config.popular_horizon, now)
    }

    /// See [`trending_score`].
    pub(crate) fn trending(&self, config: &FeatureConfig, now: i64) -> f64 {
        let engagement = self.counters.at(CounterKind::Engagement, now);
        trending_score(
            config,
            engagement[Horizon::Hour.index()],
            engagement[Horizon::Week.index()],
        )
    }
}

/// `(clicks + prior_clicks) / (exposures + prior_exposures)`, capped at 1 (clicks can come
/// from outside served lists); 0 when the denominator is not positive.
pub fn smoothed_ctr(config: &FeatureConfig, clicks: f64, exposures: f64) -> f64 {
    let denominator = exposures + config.ctr_prior_exposures;
    if denominator > 0.0 {
        ((clicks + config.ctr_prior_clicks) / denominator).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Trending: how far the last hour's engagement exceeds what the weekly rate predicts,
/// in Poisson standard deviations with a prior:
/// `(e_1h − e_7d · ρ) / sqrt(e_7d · ρ + trending_prior)`, `ρ = 1 h / 7 d`.
/// A decayed count with half-life `h` of a steady rate `r` is `r·h/ln 2`, so `e_7d · ρ`
/// is the 1 h count the weekly rate predicts: a steady item scores 0, a rising one
/// scores high, and the prior keeps one or two events from looking like a surge.
pub fn trending_score(config: &FeatureConfig, hour: f64, week: f64) -> f64 {
    let ratio = HALF_LIVES_MS[0] as f64 / HALF_LIVES_MS[2] as f64;
    let expected = week * ratio;
    let spread = (expected + config.trending_prior)
        .max(f64::MIN_POSITIVE)
        .sqrt();
    (hour - expected) / spread
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> ItemState {
        ItemState::new(ItemId::new_unchecked("i"))
    }

    #[test]
    fn ctr_is_smoothed_with_the_prior() {
        let config = FeatureConfig::default();
        // No data: the prior CTR 1/20.
        assert_eq!(item().features(&config, 0).ctr, 0.05);
        let mut it = item();
        for _ in 0..10 {
            it.count_impression(0);
        }
        it.count_event(&Action::Click, 0);
        it.count_event(&Action::Click, 0);
        // (2 + 1) / (10 impressions + 0 views + 20) = 0.1.
        assert!((it.features(&config, 0).ctr - 0.1).abs() < 1e-15);
        // Views count as exposures too: (2 + 1) / (10 + 10 + 20).
        for _ in 0..10 {
            it.count_event(&Action::View, 0);
        }
        assert!((it.features(&config, 0).ctr - 3.0 / 40.0).abs() < 1e-15);
    }

    #[test]
    fn engagement_weights_and_counters_follow_the_action() {
        let config = FeatureConfig::default();
        let mut it = item();
        it.count_event(&Action::Purchase, 0);
        it.count_event(&Action::AddToCart, 0);
        it.count_event(&Action::Dislike, 0);
        let f = it.features(&config, 0);
        assert_eq!(f.purchases, [1.0; 3]);
        assert_eq!(f.views, [0.0; 3]);
        // Engagement = 6 (purchase) + 4 (cart) + 0 (dislike).
        assert_eq!(it.popularity(&config, 0), 10.0);
    }

    #[test]
    fn trending_is_zero_for_a_steady_rate_and_positive_for_a_burst() {
        let config = FeatureConfig::default();
        // Steady state of rate r: e_1h = r·1h/ln2, e_7d = r·7d/ln2.
        let r = 0.001;
        let hour = r * 3_600_000.0 / std::f64::consts::LN_2;
        let week = r * 604_800_000.0 / std::f64::consts::LN_2;
        assert!(trending_score(&config, hour, week).abs() < 1e-9);
        assert!(trending_score(&config, 50.0, 50.0) > 40.0);
        assert!(trending_score(&config, 1.0, 1.0) < 1.0);
        assert!(trending_score(&config, 0.0, 500.0) < 0.0);
    }
}
