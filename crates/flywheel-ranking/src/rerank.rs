//! Re-ranking: business filters, the freshness boost and diversity, turning
//! scored candidates into the final list.

use std::collections::BTreeMap;
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
    scored: Vec<Scored>,
    user: &UserFeatures,
    config: &RerankConfig,
) -> Vec<Scored> {
    let mut best: BTreeMap<String, usize> = BTreeMap::new();
    let mut pool: Vec<Scored> = Vec::with_capacity(scored.len());
    for mut s in scored {
        if !s.score.is_finite() {
            s.score = 0.0;
        }
        let item = s.item.as_ref();
        let bought = config.drop_purchased && user.purchased.contains(&item.id);
        let over_shown = user
            .shown
            .get(&item.id)
            .is_some_and(|n| *n > config.max_times_shown);
        if !item.available || bought || over_shown {
            continue;
        }
        match best.get(item.id.as_str()) {
            Some(&at) if pool[at].score >= s.score => {}
            Some(&at) => pool[at] = s,
            None => {
                best.insert(item.id.as_str().to_string(), pool.len());
                pool.push(s);
            }
        }
    }
    pool
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
