//! Re-ranking: business filters, the freshness boost and diversity, turning
//! scored candidates into the final list.

use std::collections::HashMap;
use std::sync::Arc;

use flywheel_core::{Candidate, Explanation, Item, Timestamp, UserFeatures};
use serde::{Deserialize, Serialize};

use crate::diversity::{cap_limit, select, DiversityParams};
use crate::error::{RankingError, Result};
use crate::features::item_age_days;

/// The knobs of [`rerank`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RerankConfig {
    /// Largest share of the first `cap_window` positions one top-level category may take.
    pub category_cap: f64,
    /// How many leading positions the category cap applies to.
    pub cap_window: usize,
    /// MMR trade-off in `[0, 1]`: 1 ranks by score alone, 0 by novelty alone.
    pub mmr_lambda: f64,
    /// Multiplicative boost of a brand-new item: `score × (1 + boost·2^(−age/half_life))`.
    pub freshness_boost: f64,
    /// Half-life of the freshness boost, in days.
    pub freshness_half_life_days: f64,
    /// Items already shown to the user more than this many times are dropped.
    pub max_times_shown: u32,
    /// Whether items the user bought are dropped.
    pub drop_purchased: bool,
}

impl Default for RerankConfig {
    fn default() -> Self {
        RerankConfig {
            category_cap: 0.3,
            cap_window: 10,
            mmr_lambda: 0.8,
            freshness_boost: 0.1,
            freshness_half_life_days: 7.0,
            max_times_shown: 20,
            drop_purchased: true,
        }
    }
}

impl RerankConfig {
    /// Checks every value's range (call it when the configuration is loaded).
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: f64, hint| RankingError::BadParameter {
            field,
            value: value.to_string(),
            hint,
        };
        if !(self.category_cap > 0.0 && self.category_cap <= 1.0) {
            return Err(bad(
                "category_cap",
                self.category_cap,
                "must be in (0, 1]; 0.3 allows 3 of the top 10",
            ));
        }
        if !(0.0..=1.0).contains(&self.mmr_lambda) {
            return Err(bad(
                "mmr_lambda",
                self.mmr_lambda,
                "must be in [0, 1]; 1 turns MMR off",
            ));
        }
        if !self.freshness_boost.is_finite() || self.freshness_boost < 0.0 {
            return Err(bad(
                "freshness_boost",
                self.freshness_boost,
                "must be finite and ≥ 0; 0 turns it off",
            ));
        }
        let half_life = self.freshness_half_life_days;
        if !half_life.is_finite() || half_life <= 0.0 {
            return Err(bad(
                "freshness_half_life_days",
                half_life,
                "must be a finite number of days > 0",
            ));
        }
        Ok(())
    }
}

/// A candidate with its ranking score, ready for re-ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The candidate as retrieval produced it.
    pub candidate: Candidate,
    /// The candidate's catalog item.
    pub item: Arc<Item>,
    /// The ranker's score (higher is better; a probability for [`crate::LogisticRegression`]).
    pub score: f64,
    /// Why the item is recommended, from [`crate::explain`].
    pub explanation: Explanation,
}

/// One item of the final list.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The candidate as retrieval produced it.
    pub candidate: Candidate,
    /// The catalog item.
    pub item: Arc<Item>,
    /// The final score, after the freshness boost.
    pub score: f64,
    /// The ranker's score before re-ranking.
    pub model_score: f64,
    /// Why the item is recommended.
    pub explanation: Explanation,
}

/// Re-ranks scored candidates into a list of at most `count` items, in this order:
///
/// 1. drop unavailable items, items the user bought (if `drop_purchased`), items
///    shown to the user more than `max_times_shown` times, and duplicate item ids
///    (the best-scored copy stays); a non-finite score counts as 0;
/// 2. freshness boost `s + |s|·boost·2^(−age_days/half_life)` for items with a
///    `created_at` (equal to `s·(1 + boost·2^(…))` for the usual scores ≥ 0);
/// 3. MMR diversity under the hard category cap (see [`crate::diversity`]).
///
/// Out-of-range configuration values are clamped here so that serving never
/// fails; [`RerankConfig::validate`] reports them when the configuration is loaded.
pub fn rerank(
    scored: Vec<Scored>,
    user: &UserFeatures,
    config: &RerankConfig,
    count: usize,
    now: Timestamp,
) -> Vec<Ranked> {
    let pool = keep_recommendable(scored, user, config);
    let boosted: Vec<f64> = pool.iter().map(|s| boost(s, config, now)).collect();
    let items: Vec<&Item> = pool.iter().map(|s| s.item.as_ref()).collect();
    let params = DiversityParams {
        lambda: if config.mmr_lambda.is_nan() {
            1.0
        } else {
            config.mmr_lambda.clamp(0.0, 1.0)
        },
        cap_limit: cap_limit(config.category_cap, config.cap_window),
        cap_window: config.cap_window,
    };
    let order = select(&items, &boosted, &params, count);
    let mut slots: Vec<Option<Scored>> = pool.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| {
            let s = slots[i].take()?;
            Some(Ranked {
                candidate: s.candidate,
                item: s.item,
                score: boosted[i],
                model_score: s.score,
                explanation: s.explanation,
            })
        })
        .collect()
}

/// Step 1: the business filters and deduplication.
fn keep_recommendable(
    mut scored: Vec<Scored>,
    user: &UserFeatures,
    config: &RerankConfig,
) -> Vec<Scored> {
    for s in &mut scored {
        if !s.score.is_finite() {
            s.score = 0.0;
        }
    }
    let recommendable = |s: &Scored| {
        let item = s.item.as_ref();
        let bought = config.drop_purchased && user.purchased.contains(&item.id);
        let shown = user.shown.get(&item.id).copied().unwrap_or(0);
        item.available && !bought && shown <= config.max_times_shown
    };
    // The index of the copy to keep per item id: the best score, the first on ties.
    let mut keep: HashMap<&str, usize> = HashMap::with_capacity(scored.len());
    for (i, s) in scored.iter().enumerate().filter(|(_, s)| recommendable(s)) {
        let slot = keep.entry(s.item.id.as_str()).or_insert(i);
        if scored[*slot].score < s.score {
            *slot = i;
        }
    }
    let mut kept = vec![false; scored.len()];
    for i in keep.into_values() {
        kept[i] = true;
    }
    scored
        .into_iter()
        .zip(kept)
        .filter_map(|(s, keep)| keep.then_some(s))
        .collect()
}

/// Step 2: the freshness boost of one candidate.
fn boost(s: &Scored, config: &RerankConfig, now: Timestamp) -> f64 {
    let half_life = config.freshness_half_life_days;
    let strength = config.freshness_boost;
    match item_age_days(&s.item, now) {
        Some(age) if half_life > 0.0 && strength.is_finite() && strength > 0.0 => {
            let boosted = s.score + s.score.abs() * strength * (-age / half_life).exp2();
            if boosted.is_finite() {
                boosted
            } else {
                s.score
            }
        }
        _ => s.score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_bad_values_name_the_field() {
        assert!(RerankConfig::default().validate().is_ok());
        let cases = [
            (
                RerankConfig {
                    category_cap: 0.0,
                    ..RerankConfig::default()
                },
                "category_cap",
            ),
            (
                RerankConfig {
                    mmr_lambda: f64::NAN,
                    ..RerankConfig::default()
                },
                "mmr_lambda",
            ),
            (
                RerankConfig {
                    freshness_boost: -1.0,
                    ..RerankConfig::default()
                },
                "freshness_boost",
            ),
            (
                RerankConfig {
                    freshness_half_life_days: 0.0,
                    ..RerankConfig::default()
                },
                "freshness_half_life_days",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{field}`")), "{err}");
        }
    }

    #[test]
    fn invalid_config_is_clamped_not_a_panic() {
        let item = Arc::new(Item::new(flywheel_core::ItemId::new_unchecked("i"), "a"));
        let candidate = Candidate {
            item_id: item.id.clone(),
            channel: flywheel_core::Channel::Popularity,
            channel_score: 0.0,
            channel_rank: 0,
            source_item: None,
        };
        let explanation = Explanation::new(flywheel_core::ExplanationKind::Exploration);
        let scored = vec![Scored {
            candidate,
            item,
            score: f64::NAN,
            explanation,
        }];
        let config = RerankConfig {
            category_cap: f64::NAN,
            mmr_lambda: 7.0,
            freshness_half_life_days: -1.0,
            ..RerankConfig::default()
        };
        let out = rerank(scored, &UserFeatures::default(), &config, 3, Timestamp(0));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].score, 0.0, "a NaN score counts as 0");
    }
}
