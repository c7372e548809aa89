//! The simulated shop's own recommender: the logging policy whose lists users see.
//!
//! Each slot is filled, with probability `exploration_rate`, by an item drawn
//! uniformly from the available items not shown yet, and otherwise by a
//! Plackett–Luce draw (without replacement) with weight
//! `(prominence + clicks so far) · (0.1 + share)²`, where `share` is the user's
//! smoothed share of clicks in the item's category: "popular in the categories you
//! like", plus exploration. The propensity logged for each slot is the exact
//! probability of that item in that slot given the slots before it, which is what
//! off-policy estimators divide by.
//!
//! Items are sampled category first, then item within the category through a
//! Fenwick tree, so a list costs O(categories + length · log items).

use flywheel_core::Channel;
use rand::rngs::StdRng;
use rand::Rng;

use crate::fenwick::Fenwick;
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

/// What the site has learned so far, and which items exist yet.
pub(crate) struct Site {
    exploration_rate: f64,
    /// Per category: its items in creation order, and their popularity weights.
    members: Vec<Vec<usize>>,
    popularity: Vec<Fenwick>,
    /// Per item: its category and its slot in that category's list.
    slot_of: Vec<(usize, usize)>,
    /// Items `0..available` exist; per category, how many of its members do.
    available: usize,
    available_in: Vec<usize>,
    user_category_clicks: Vec<Vec<f64>>,
}

/// A list under construction: what is taken and how much weight it took.
struct Draft {
    factor: Vec<f64>,
    mass: Vec<f64>,
    taken: Vec<usize>,
}

impl Site {
    pub(crate) fn new(world: &World) -> Site {
        let categories = world.config().categories;
        let mut members = vec![Vec::new(); categories];
        let mut slot_of = Vec::with_capacity(world.items.len());
        for (item, truth) in world.truth.items.iter().enumerate() {
            slot_of.push((truth.category, members[truth.category].len()));
            members[truth.category].push(item);
        }
        let popularity = members
            .iter()
            .map(|m| {
                let w: Vec<f64> = m
                    .iter()
                    .map(|i| world.truth.items[*i].prior_popularity)
                    .collect();
                Fenwick::from_weights(&w)
            })
            .collect();
        Site {
            exploration_rate: world.config().exploration_rate,
            members,
            popularity,
            slot_of,
            available: 0,
            available_in: vec![0; categories],
            user_category_clicks: vec![vec![0.0; categories]; world.users.len()],
        }
    }

    /// Makes items `0..available` showable (items are ordered by creation time).
    pub(crate) fn open_until(&mut self, available: usize) {
        while self.available < available.min(self.slot_of.len()) {
            self.available_in[self.slot_of[self.available].0] += 1;
            self.available += 1;
        }
    }

    /// Learns from a click.
    pub(crate) fn record_click(&mut self, user: usize, item: usize) {
        let (category, slot) = self.slot_of[item];
        self.popularity[category].add(slot, 1.0);
        self.user_category_clicks[user][category] += 1.0;
    }

    fn category_factors(&self, user: usize) -> Vec<f64> {
        let clicks = &self.user_category_clicks[user];
        let total: f64 = clicks.iter().sum();
        let k = clicks.len() as f64;
        clicks
            .iter()
            .map(|c| {
                let share = (c + 0.5) / (total + 0.5 * k);
                (0.1 + share) * (0.1 + share)
            })
            .collect()
    }

    fn weight(&self, draft: &Draft, item: usize) -> f64 {
        let (category, slot) = self.slot_of[item];
        draft.factor[category] * self.popularity[category].weight(slot)
    }

    /// Shows up to `length` distinct available items to `user`.
    pub(crate) fn show(&self, rng: &mut StdRng, user: usize, length: usize) -> Vec<ShownSlot> {
        let factor = self.category_factors(user);
        let mass: Vec<f64> = (0..factor.len())
            .map(|c| factor[c] * self.popularity[c].prefix(self.available_in[c]))
            .collect();
        let mut draft = Draft {
            factor,
            mass,
            taken: Vec::with_capacity(length),
        };
        let mut slots = Vec::with_capacity(length.min(self.available));
        for slot in 0..length.min(self.available) {
            let explore = rng.gen::<f64>() < self.exploration_rate;
            let item = if explore {
                self.uniform_untaken(rng, &draft.taken)
            } else {
                self.weighted_untaken(rng, &draft)
            };
            let weight = self.weight(&draft, item);
            let left: f64 = draft.mass.iter().sum::<f64>().max(f64::MIN_POSITIVE);
            let propensity = self.exploration_rate / (self.available - slot) as f64
                + (1.0 - self.exploration_rate) * weight / left;
            slots.push(ShownSlot {
                item,
                score: weight,
                propensity: propensity.min(1.0),
                channel: if explore {
                    Channel::Exploration
                } else {
                    Channel::Popularity
                },
            });
            draft.mass[self.slot_of[item].0] -= weight;
            draft.taken.push(item);
        }
        slots
    }

    fn uniform_untaken(&self, rng: &mut StdRng, taken: &[usize]) -> usize {
        for _ in 0..MAX_REJECTIONS {
            let candidate = rng.gen_range(0..self.available);
            if !taken.contains(&candidate) {
                return candidate;
            }
        }
        let free: Vec<usize> = (0..self.available).filter(|i| !taken.contains(i)).collect();
        free[rng.gen_range(0..free.len())]
    }

    /// A Plackett–Luce draw among the untaken available items.
    fn weighted_untaken(&self, rng: &mut StdRng, draft: &Draft) -> usize {
        let full: Vec<f64> = (0..draft.factor.len())
            .map(|c| draft.factor[c] * self.popularity[c].prefix(self.available_in[c]))
            .collect();
        let total: f64 = full.iter().sum();
        for _ in 0..MAX_REJECTIONS {
            let category = pick(rng, &full, total);
            let count = self.available_in[category];
            if count == 0 {
                continue;
            }
            let target = rng.gen::<f64>() * self.popularity[category].prefix(count);
            let item = self.members[category][self.popularity[category].search(target, count)];
            if !draft.taken.contains(&item) {
                return item;
            }
        }
        self.exact_untaken(rng, draft)
    }

    /// The exact draw after too many rejections: a scan of the untaken items.
    fn exact_untaken(&self, rng: &mut StdRng, draft: &Draft) -> usize {
        let candidates: Vec<(usize, f64)> = (0..self.available)
            .filter(|i| !draft.taken.contains(i))
            .map(|i| (i, self.weight(draft, i)))
            .collect();
        let total: f64 = candidates.iter().map(|(_, w)| w).sum();
        let mut target = rng.gen::<f64>() * total;
        for (item, weight) in &candidates {
            if target < *weight {
                return *item;
            }
            target -= weight;
        }
        candidates.last().map(|(i, _)| *i).unwrap_or(0)
    }
}

/// An index drawn proportionally to `weights`, whose sum is `total`.
fn pick(rng: &mut StdRng, weights: &[f64], total: f64) -> usize {
    let mut target = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
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
        let mut site = Site::new(&world);
        site.open_until(6);
        site.record_click(0, 2);
        let mut rng = stream(9, Stream::Site);
        let runs = 40_000;
        let mut first_slot = [0usize; 6];
        let mut second_given_first = [0usize; 6];
        let mut propensity = [0.0f64; 6];
        let mut conditional = [0.0f64; 6];
        for _ in 0..runs {
            let list = site.show(&mut rng, 0, 3);
            let mut items: Vec<usize> = list.iter().map(|s| s.item).collect();
            items.sort();
            items.dedup();
            assert_eq!(items.len(), 3);
            first_slot[list[0].item] += 1;
            propensity[list[0].item] = list[0].propensity;
            if list[0].item == 2 {
                second_given_first[list[1].item] += 1;
                conditional[list[1].item] = list[1].propensity;
            }
        }
        // The first slot's propensity is unconditional: it must match the frequency;
        // the second slot's, given item 2 first, must match the conditional frequency.
        let given = first_slot[2];
        assert!(given > 1_000, "{given}");
        for i in 0..6 {
            for (count, n, p) in [
                (first_slot[i], runs, propensity[i]),
                (second_given_first[i], given, conditional[i]),
            ] {
                let freq = count as f64 / n as f64;
                let se = (p * (1.0 - p) / n as f64).sqrt();
                assert!(
                    (freq - p).abs() < 5.0 * se + 1e-9,
                    "item {i}: {freq} vs {p}"
                );
            }
        }
    }
}
