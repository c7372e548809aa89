//! The simulated shop's own recommender: the logging policy whose lists users see.
//!
//! Each slot is filled, with probability `exploration_rate`, by an item drawn
//! uniformly from the items not shown yet, and otherwise by a Plackett–Luce draw
//! (without replacement) with weight `(prominence + clicks so far) · (0.1 + share)²`,
//! where `share` is the user's smoothed share of clicks in the item's category:
//! "popular in the categories you like", plus exploration. The propensity logged
//! for each slot is the exact probability of that item in that slot given the
//! slots before it, which is what off-policy estimators divide by.

use flywheel_core::Channel;
use rand::rngs::StdRng;
use rand::Rng;

use crate::world::World;

/// Draws before a rejection sampler falls back to an exact scan.
const MAX_REJECTIONS: usize = 64;

/// One slot of a list the site showed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShownSlot {
    pub item: usize,
    pub score: f64,
    pub propensity: f64,
    pub channel: Channel,
}

/// What the site has learned so far: clicks per item and per user and category.
pub(crate) struct Site {
    exploration_rate: f64,
    item_clicks: Vec<f64>,
    user_category_clicks: Vec<Vec<f64>>,
}

impl Site {
    pub(crate) fn new(world: &World) -> Site {
        let config = world.config();
        Site {
            exploration_rate: config.exploration_rate,
            item_clicks: vec![0.0; world.items.len()],
            user_category_clicks: vec![vec![0.0; config.categories]; world.users.len()],
        }
    }

    /// Learns from a click.
    pub(crate) fn record_click(&mut self, world: &World, user: usize, item: usize) {
        self.item_clicks[item] += 1.0;
        let category = world.truth.items[item].category;
        self.user_category_clicks[user][category] += 1.0;
    }

    /// The policy's weight of every item in `0..available` for `user`.
    fn weights(&self, world: &World, user: usize, available: usize) -> Vec<f64> {
        let clicks = &self.user_category_clicks[user];
        let total: f64 = clicks.iter().sum();
        let k = clicks.len() as f64;
        let factor: Vec<f64> = clicks
            .iter()
            .map(|c| {
                let share = (c + 0.5) / (total + 0.5 * k);
                (0.1 + share) * (0.1 + share)
            })
            .collect();
        (0..available)
            .map(|i| {
                let truth = &world.truth.items[i];
                (truth.prior_popularity + self.item_clicks[i]) * factor[truth.category]
            })
            .collect()
    }

    /// Shows `length` distinct items among the first `available` (those created by now).
    pub(crate) fn show(
        &self,
        world: &World,
        rng: &mut StdRng,
        user: usize,
        available: usize,
        length: usize,
    ) -> Vec<ShownSlot> {
        let weights = self.weights(world, user, available);
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut running = 0.0;
        for w in &weights {
            running += w;
            cumulative.push(running);
        }
        let total = running;
        let mut shown = vec![false; available];
        let mut chosen_weight = 0.0;
        let mut slots = Vec::with_capacity(length.min(available));
        for slot in 0..length.min(available) {
            let remaining = (available - slot) as f64;
            let explore = rng.gen::<f64>() < self.exploration_rate;
            let item = if explore {
                uniform_unshown(rng, &shown)
            } else {
                weighted_unshown(rng, &cumulative, &weights, &shown, total - chosen_weight)
            };
            let left = (total - chosen_weight).max(f64::MIN_POSITIVE);
            let propensity = self.exploration_rate / remaining
                + (1.0 - self.exploration_rate) * weights[item] / left;
            slots.push(ShownSlot {
                item,
                score: weights[item],
                propensity: propensity.min(1.0),
                channel: if explore {
                    Channel::Exploration
                } else {
                    Channel::Popularity
                },
            });
            shown[item] = true;
            chosen_weight += weights[item];
        }
        slots
    }
}

fn uniform_unshown(rng: &mut StdRng, shown: &[bool]) -> usize {
    for _ in 0..MAX_REJECTIONS {
        let candidate = rng.gen_range(0..shown.len());
        if !shown[candidate] {
            return candidate;
        }
    }
    let free: Vec<usize> = (0..shown.len()).filter(|i| !shown[*i]).collect();
    free[rng.gen_range(0..free.len())]
}

fn weighted_unshown(
    rng: &mut StdRng,
    cumulative: &[f64],
    weights: &[f64],
    shown: &[bool],
    remaining_weight: f64,
) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    for _ in 0..MAX_REJECTIONS {
        let target = rng.gen::<f64>() * total;
        let candidate = cumulative
            .partition_point(|c| *c <= target)
            .min(shown.len() - 1);
        if !shown[candidate] {
            return candidate;
        }
    }
    // Exact draw over the unshown items only.
    let mut target = rng.gen::<f64>() * remaining_weight;
    let mut last_free = 0;
    for (i, w) in weights.iter().enumerate() {
        if shown[i] {
            continue;
        }
        last_free = i;
        if target < *w {
            return i;
        }
        target -= w;
    }
    last_free
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use crate::rng::{stream, Stream};

    #[test]
    fn lists_are_distinct_and_propensities_match_frequencies() {
        let config = SimConfig {
            items: 6,
            ..SimConfig::small()
        };
        let world = World::generate(&config).unwrap();
        let site = Site::new(&world);
        let mut rng = stream(9, Stream::Site);
        let runs = 40_000;
        let mut first_slot = [0usize; 6];
        let mut propensity = [0.0f64; 6];
        for _ in 0..runs {
            let list = site.show(&world, &mut rng, 0, 6, 3);
            let mut items: Vec<usize> = list.iter().map(|s| s.item).collect();
            items.sort();
            items.dedup();
            assert_eq!(items.len(), 3);
            first_slot[list[0].item] += 1;
            propensity[list[0].item] = list[0].propensity;
        }
        // The first slot's propensity is unconditional: it must match the frequency.
        for i in 0..6 {
            let freq = first_slot[i] as f64 / runs as f64;
            let p = propensity[i];
            let se = (p * (1.0 - p) / runs as f64).sqrt();
            assert!(
                (freq - p).abs() < 5.0 * se + 1e-9,
                "item {i}: {freq} vs {p}"
            );
        }
    }
}
