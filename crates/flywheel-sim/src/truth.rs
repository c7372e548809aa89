//! The ground truth of a world: the hidden parameters behind every event.
//! It is written to `truth.json` so evaluation can check estimates against it.

use flywheel_core::{ItemId, UserId};
use serde::{Deserialize, Serialize};

use crate::config::SimConfig;

/// The version tag written into `truth.json`.
pub const TRUTH_FORMAT: &str = "flywheel-sim-truth/1";

/// The parameters of the behaviour model shared by all users.
///
/// * Examination: a user looks at list slot `p` (0-based) with probability
///   `1 / (1 + p)^examination_exponent`.
/// * Preference, `P(click | examined)`: `σ(preference_bias + category_weight ·
///   ln(K · share_c + category_floor) + latent_weight · ⟨u, v⟩ + quality)`, where
///   `share_c` is the user's taste for the item's top-level category among `K`.
/// * Purchase, `P(purchase | click)`: `σ(purchase_bias + purchase_preference_weight ·
///   logit(preference) − price_sensitivity · ln(price / median_price))`.
/// * Cart: `P(add_to_cart | click) = min(1, cart_multiplier · P(purchase | click))`, and
///   every purchase goes through the cart, so `P(purchase | click)` holds exactly.
/// * Device (off by default): on a `mobile` request the preference logit gains
///   `−device_price_weight · ln(price / median_price)` (cheap items appeal more on a
///   phone), on a `desktop` one `+device_price_weight · ln(price / median_price)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClickModel {
    /// Exponent of the position-bias curve.
    pub examination_exponent: f64,
    /// Intercept of the preference logit.
    pub preference_bias: f64,
    /// Weight of the log category taste.
    pub category_weight: f64,
    /// Floor inside the log category taste, so an unloved category is not impossible.
    pub category_floor: f64,
    /// Weight of the latent dot product.
    pub latent_weight: f64,
    /// Intercept of the purchase logit.
    pub purchase_bias: f64,
    /// Weight of the preference logit in the purchase logit.
    pub purchase_preference_weight: f64,
    /// `P(add_to_cart | click)` as a multiple of `P(purchase | click)`.
    pub cart_multiplier: f64,
    /// How much the device turns the price into appeal (0: the device does not matter).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub device_price_weight: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for ClickModel {
    fn default() -> Self {
        ClickModel {
            examination_exponent: 0.7,
            preference_bias: -2.2,
            category_weight: 0.8,
            category_floor: 0.1,
            latent_weight: 1.0,
            purchase_bias: -2.2,
            purchase_preference_weight: 1.0,
            cart_multiplier: 2.5,
            device_price_weight: 0.0,
        }
    }
}

/// The hidden side of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemTruth {
    /// The item, as in `items.jsonl`.
    pub id: ItemId,
    /// Index of its top-level category in [`Truth::categories`].
    pub category: usize,
    /// Its leaf category path, e.g. `electronics/audio`.
    pub category_path: String,
    /// Its latent vector (length `latent_dim`).
    pub latent: Vec<f64>,
    /// Its intrinsic appeal, added to every user's preference logit.
    pub quality: f64,
    /// How prominent the shop makes it before any click (long-tailed, Pareto).
    pub prior_popularity: f64,
    /// Its price.
    pub price: f64,
    /// The median price of its top-level category.
    pub median_price: f64,
}

/// The hidden side of one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserTruth {
    /// The user, as in `users.jsonl`.
    pub id: UserId,
    /// Multiplier of the session rate (mean 1 over users, log-normal).
    pub activity: f64,
    /// Taste over top-level categories (sums to 1; Dirichlet).
    pub category_preference: Vec<f64>,
    /// The tastes after [`crate::TasteDrift`], if the config has drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drifted_category_preference: Option<Vec<f64>>,
    /// Latent taste vector (length `latent_dim`).
    pub latent: Vec<f64>,
    /// How much a price above the category median deters a purchase.
    pub price_sensitivity: f64,
}

/// Everything hidden about a world, as written to `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Always [`TRUTH_FORMAT`].
    pub format: String,
    /// The config the world was generated from.
    pub config: SimConfig,
    /// The behaviour model.
    pub model: ClickModel,
    /// Top-level category names, indexed by [`ItemTruth::category`].
    pub categories: Vec<String>,
    /// One entry per item, in the order of `items.jsonl`.
    pub items: Vec<ItemTruth>,
    /// One entry per user, in the order of `users.jsonl`.
    pub users: Vec<UserTruth>,
}

/// The logistic function.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The log-odds of a probability, clamped away from 0 and 1.
pub(crate) fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_and_logit_are_inverse_and_stable() {
        for x in [-20.0, -2.0, 0.0, 0.5, 7.0] {
            assert!((logit(sigmoid(x)) - x).abs() < 1e-9, "{x}");
        }
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(-1000.0) >= 0.0 && sigmoid(1000.0) <= 1.0);
        assert!(logit(0.0).is_finite() && logit(1.0).is_finite());
    }
}
