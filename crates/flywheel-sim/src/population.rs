//! The users: skewed activity, Dirichlet category tastes, latent vectors,
//! price sensitivity, country and device, sign-up times.

use flywheel_core::{Timestamp, User, UserId};
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeMap;

use crate::config::SimConfig;
use crate::rng::{dirichlet, normal, normal_vector, stream, weighted_index, Stream};
use crate::taxonomy::{COUNTRIES, DEVICES};
use crate::truth::UserTruth;

/// Concentration of the category-taste Dirichlet: below 1, so most users love a few departments.
const TASTE_CONCENTRATION: f64 = 0.4;
/// σ of the log activity: a few heavy users, many light ones.
const ACTIVITY_LOG_SIGMA: f64 = 1.0;
/// Days of sign-ups before the simulated period.
const SIGNUP_HISTORY_DAYS: i64 = 730;

/// Generates the users; ids `u00000`, `u00001`, …
pub(crate) fn generate_users(config: &SimConfig) -> (Vec<User>, Vec<UserTruth>) {
    (0..config.users)
        .map(|index| generate_user(config, index))
        .unzip()
}

fn generate_user(config: &SimConfig, index: usize) -> (User, UserTruth) {
    let mut rng = stream(config.seed, Stream::User(index));
    // Log-normal with mean exp(σ²/2); divide it out so the mean activity is 1.
    let activity = (ACTIVITY_LOG_SIGMA * normal(&mut rng)).exp()
        / (ACTIVITY_LOG_SIGMA * ACTIVITY_LOG_SIGMA / 2.0).exp();
    let category_preference = dirichlet(&mut rng, config.categories, TASTE_CONCENTRATION);
    let latent = normal_vector(&mut rng, config.latent_dim, 1.0);
    let price_sensitivity = rng.gen_range(0.3..1.5);
    let is_new = rng.gen::<f64>() < config.new_user_share;
    let created_at = if is_new {
        let period = config.end().millis() - config.start.millis();
        // New users sign up in the first 80% of the period, so they have time to act.
        config
            .start
            .plus_millis(rng.gen_range(0..(period * 4 / 5).max(1)))
    } else {
        config
            .start
            .plus_millis(-rng.gen_range(1..=SIGNUP_HISTORY_DAYS * Timestamp::DAY))
    };
    let country = pick(&mut rng, COUNTRIES);
    let device = pick(&mut rng, DEVICES);
    let drifted_category_preference = config
        .drift
        .map(|_| dirichlet(&mut rng, config.categories, TASTE_CONCENTRATION));
    let id = UserId::new_unchecked(format!("u{index:05}"));
    let mut attributes = BTreeMap::new();
    attributes.insert("country".to_string(), Value::from(country));
    attributes.insert("device".to_string(), Value::from(device));
    let user = User {
        id: id.clone(),
        attributes,
        created_at: Some(created_at),
        opted_out: false,
    };
    let truth = UserTruth {
        id,
        activity,
        category_preference,
        drifted_category_preference,
        latent,
        price_sensitivity,
    };
    (user, truth)
}

fn pick(rng: &mut rand::rngs::StdRng, table: &[(&'static str, f64)]) -> &'static str {
    let weights: Vec<f64> = table.iter().map(|(_, w)| *w).collect();
    table[weighted_index(rng, &weights)].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_have_tastes_attributes_and_mean_activity_near_one() {
        let config = SimConfig {
            users: 4_000,
            ..SimConfig::small()
        };
        let (users, truth) = generate_users(&config);
        assert_eq!(users.len(), 4_000);
        let mean = truth.iter().map(|t| t.activity).sum::<f64>() / 4_000.0;
        // Log-normal σ=1 normalised to mean 1: sd ≈ 1.31, standard error ≈ 0.021.
        assert!((mean - 1.0).abs() < 0.1, "{mean}");
        for (u, t) in users.iter().zip(&truth) {
            assert_eq!(u.id, t.id);
            assert!((t.category_preference.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            assert!(u.attributes.contains_key("country") && u.attributes.contains_key("device"));
            assert!(t.drifted_category_preference.is_none());
        }
        let new = users
            .iter()
            .filter(|u| u.created_at.is_some_and(|c| c >= config.start))
            .count();
        // new_user_share 0.1 of 4,000: expect 400 ± 19 (binomial sd); allow 4 sd.
        assert!((324..=476).contains(&new), "{new}");
    }
}
