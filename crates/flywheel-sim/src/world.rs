//! The world: catalog and users as the shop sees them, plus the hidden truth
//! and the behaviour model that turns it into probabilities.

use flywheel_core::{Item, Timestamp, User};
use std::collections::HashMap;

use crate::catalog::{generate_items, Taxonomy};
use crate::config::SimConfig;
use crate::error::Result;
use crate::population::generate_users;
use crate::similar::similar_items;
use crate::truth::{logit, sigmoid, ClickModel, Truth, TRUTH_FORMAT};

/// A generated shop. `items[i]` and `truth.items[i]` describe the same item,
/// `users[u]` and `truth.users[u]` the same user; functions take these indices.
#[derive(Debug, Clone)]
pub struct World {
    /// The catalog as `items.jsonl` holds it, ordered by creation time.
    pub items: Vec<Item>,
    /// The users as `users.jsonl` holds them.
    pub users: Vec<User>,
    /// The hidden parameters (as `truth.json` holds them).
    pub truth: Truth,
    item_index: HashMap<String, usize>,
    user_index: HashMap<String, usize>,
    similar: Vec<Vec<usize>>,
}

impl World {
    /// Generates the world of a config (validated first).
    pub fn generate(config: &SimConfig) -> Result<World> {
        config.validate()?;
        let taxonomy = Taxonomy::generate(config);
        let (items, item_truth) = generate_items(config, &taxonomy);
        let (users, user_truth) = generate_users(config);
        let truth = Truth {
            format: TRUTH_FORMAT.to_string(),
            config: config.clone(),
            model: ClickModel::default(),
            categories: taxonomy.names,
            items: item_truth,
            users: user_truth,
        };
        Ok(World::assemble(items, users, truth))
    }

    /// Builds the indexes of a world whose parts are known to agree.
    pub(crate) fn assemble(items: Vec<Item>, users: Vec<User>, truth: Truth) -> World {
        let item_index = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.id.as_str().to_string(), i))
            .collect();
        let user_index = users
            .iter()
            .enumerate()
            .map(|(u, user)| (user.id.as_str().to_string(), u))
            .collect();
        let similar = similar_items(&truth.items);
        World {
            items,
            users,
            truth,
            item_index,
            user_index,
            similar,
        }
    }

    /// The config the world was generated from.
    pub fn config(&self) -> &SimConfig {
        &self.truth.config
    }

    /// The index of an item id, if the world has it.
    pub fn item_index(&self, id: &str) -> Option<usize> {
        self.item_index.get(id).copied()
    }

    /// The index of a user id, if the world has it.
    pub fn user_index(&self, id: &str) -> Option<usize> {
        self.user_index.get(id).copied()
    }

    /// Items most similar to `item` (same leaf category, closest latent vectors), best first.
    ///
    /// # Panics
    /// If `item` is not an index of `items`, like slice indexing.
    pub fn similar_items(&self, item: usize) -> &[usize] {
        &self.similar[item]
    }

    /// The probability that a user examines list slot `position` (0-based):
    /// `1 / (1 + position)^examination_exponent`.
    pub fn examination_probability(&self, position: u32) -> f64 {
        let exponent = self.truth.model.examination_exponent;
        (1.0 + f64::from(position)).powf(-exponent)
    }

    /// The truth: `P(click | examined)` for a user and an item, with the tastes the
    /// user has before any drift.
    ///
    /// # Panics
    /// If `user` or `item` is not an index of `users` / `items`, like slice indexing.
    pub fn true_preference(&self, user: usize, item: usize) -> f64 {
        let tastes = &self.truth.users[user].category_preference;
        self.preference_with(tastes, user, item)
    }

    /// `P(click | examined)` at a given time: after the configured
    /// [`crate::TasteDrift`] day, category tastes have shifted.
    ///
    /// # Panics
    /// As [`World::true_preference`].
    pub fn true_preference_at(&self, user: usize, item: usize, at: Timestamp) -> f64 {
        let truth = &self.truth.users[user];
        let config = &self.truth.config;
        match (config.drift, &truth.drifted_category_preference) {
            (Some(drift), Some(shifted))
                if at
                    >= config
                        .start
                        .plus_millis(i64::from(drift.day) * Timestamp::DAY) =>
            {
                let mixed: Vec<f64> = truth
                    .category_preference
                    .iter()
                    .zip(shifted)
                    .map(|(old, new)| (1.0 - drift.strength) * old + drift.strength * new)
                    .collect();
                self.preference_with(&mixed, user, item)
            }
            _ => self.true_preference(user, item),
        }
    }

    /// `P(click | examined)` at `at` on a request from `device` (`mobile`, `desktop`;
    /// anything else is neutral): [`World::true_preference_at`] with the click model's
    /// device effect (`device_price_weight`), which is 0 unless a study sets it.
    ///
    /// # Panics
    /// As [`World::true_preference`].
    pub fn true_preference_on(&self, user: usize, item: usize, at: Timestamp, device: &str) -> f64 {
        let preference = self.true_preference_at(user, item, at);
        let weight = self.truth.model.device_price_weight;
        let direction = match device {
            "mobile" => -1.0,
            "desktop" => 1.0,
            _ => 0.0,
        };
        if weight == 0.0 || direction == 0.0 {
            return preference;
        }
        let item_truth = &self.truth.items[item];
        let relative_price = (item_truth.price / item_truth.median_price).max(1e-6);
        sigmoid(logit(preference) + direction * weight * relative_price.ln())
    }

    fn preference_with(&self, tastes: &[f64], user: usize, item: usize) -> f64 {
        let model = &self.truth.model;
        let item_truth = &self.truth.items[item];
        let user_truth = &self.truth.users[user];
        let k = tastes.len() as f64;
        let share = tastes.get(item_truth.category).copied().unwrap_or(0.0);
        let dot: f64 = user_truth
            .latent
            .iter()
            .zip(&item_truth.latent)
            .map(|(a, b)| a * b)
            .sum();
        let z = model.preference_bias
            + model.category_weight * (k * share + model.category_floor).ln()
            + model.latent_weight * dot
            + item_truth.quality;
        sigmoid(z)
    }

    /// The truth: `P(purchase | click)` for a user and an item (before drift).
    ///
    /// # Panics
    /// As [`World::true_preference`].
    pub fn true_purchase_probability(&self, user: usize, item: usize) -> f64 {
        self.purchase_given_preference(user, item, self.true_preference(user, item))
    }

    pub(crate) fn purchase_given_preference(
        &self,
        user: usize,
        item: usize,
        preference: f64,
    ) -> f64 {
        let model = &self.truth.model;
        let item_truth = &self.truth.items[item];
        let sensitivity = self.truth.users[user].price_sensitivity;
        let relative_price = (item_truth.price / item_truth.median_price).max(1e-6);
        sigmoid(
            model.purchase_bias + model.purchase_preference_weight * logit(preference)
                - sensitivity * relative_price.ln(),
        )
    }

    /// `P(add_to_cart | click)`: the cart step every purchase goes through.
    pub(crate) fn cart_given_purchase(&self, purchase: f64) -> f64 {
        (self.truth.model.cart_multiplier * purchase).min(1.0)
    }

    /// `P(click)` of an item shown in slot `position`: examination × preference.
    ///
    /// # Panics
    /// As [`World::true_preference`].
    pub fn click_probability(&self, user: usize, item: usize, position: u32) -> f64 {
        self.examination_probability(position) * self.true_preference(user, item)
    }

    /// The true value of showing `list` (item indices, slot 0 first) to `user`:
    /// the expected number of clicks. Comparing policies by this is the ground truth
    /// that off-policy estimates and A/B tests should recover.
    ///
    /// # Panics
    /// As [`World::true_preference`].
    pub fn expected_clicks(&self, user: usize, list: &[usize]) -> f64 {
        list.iter()
            .zip(0u32..)
            .map(|(item, position)| self.click_probability(user, *item, position))
            .sum()
    }

    /// The true value of showing `list` to `user` at `at`: the expected number of
    /// clicks with the tastes of that moment (after a configured [`crate::TasteDrift`]
    /// day, the shifted ones). How a served list's quality is measured against the
    /// truth before and after drift, or before and after a model change.
    ///
    /// # Panics
    /// As [`World::true_preference`].
    pub fn expected_clicks_at(&self, user: usize, list: &[usize], at: Timestamp) -> f64 {
        list.iter()
            .zip(0u32..)
            .map(|(item, position)| {
                self.examination_probability(position) * self.true_preference_at(user, *item, at)
            })
            .sum()
    }

    /// The best list of `count` items the truth allows for `user` at `at`: the items
    /// available then, by true preference at `at`, best first. With examination falling
    /// with the position this order maximizes [`World::expected_clicks_at`], so it is
    /// the ceiling a served list's quality can be compared with.
    ///
    /// # Panics
    /// As [`World::true_preference`].
    pub fn ideal_list_at(&self, user: usize, count: usize, at: Timestamp) -> Vec<usize> {
        let mut scored: Vec<(f64, usize)> = (0..self.items_available_at(at))
            .map(|item| (self.true_preference_at(user, item, at), item))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(count)
            .map(|(_, item)| item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examination_follows_the_power_law() {
        let world = World::generate(&SimConfig::small()).unwrap();
        assert_eq!(world.examination_probability(0), 1.0);
        // 1 / 2^0.7 = 0.615572…
        assert!((world.examination_probability(1) - 0.615_572_206_672_458_5).abs() < 1e-12);
        let p = world.true_preference(3, 7);
        assert!((world.click_probability(3, 7, 1) - p * 0.615_572_206_672_458_5).abs() < 1e-12);
    }

    #[test]
    fn preferences_are_probabilities_and_category_taste_matters() {
        let world = World::generate(&SimConfig::small()).unwrap();
        let user = 0;
        let tastes = &world.truth.users[user].category_preference;
        let favourite = (0..tastes.len())
            .max_by(|a, b| tastes[*a].total_cmp(&tastes[*b]))
            .unwrap();
        let least = (0..tastes.len())
            .min_by(|a, b| tastes[*a].total_cmp(&tastes[*b]))
            .unwrap();
        let (mut loved, mut other) = (Vec::new(), Vec::new());
        for item in 0..world.items.len() {
            let p = world.true_preference(user, item);
            assert!((0.0..=1.0).contains(&p));
            let q = world.true_purchase_probability(user, item);
            assert!((0.0..=1.0).contains(&q));
            if world.truth.items[item].category == favourite {
                loved.push(p);
            } else if world.truth.items[item].category == least {
                other.push(p);
            }
        }
        assert!(!loved.is_empty() && !other.is_empty());
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&loved) > 2.0 * mean(&other),
            "{} vs {}",
            mean(&loved),
            mean(&other)
        );
        assert_eq!(world.item_index("i00003"), Some(3));
        assert_eq!(world.user_index("nobody"), None);
    }
}
