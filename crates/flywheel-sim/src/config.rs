//! What world to build and how long to run it.

use flywheel_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SimError};

/// A shift of every user's category tastes from a given day on: the hook for
/// drift experiments (monitoring must notice it, retraining must recover).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TasteDrift {
    /// The day (0-based, counted from [`SimConfig::start`]) at which tastes shift.
    pub day: u32,
    /// How far tastes move, in `[0, 1]`: 0 = no change, 1 = entirely new category tastes.
    pub strength: f64,
}

/// Everything that determines a simulated shop. The same config (seed included)
/// always produces byte-identical output. Read from JSON, missing fields take the
/// [`SimConfig::quickstart`] values and unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random draw.
    pub seed: u64,
    /// Number of users.
    pub users: usize,
    /// Number of items in the catalog (including those created during the run).
    pub items: usize,
    /// Number of top-level categories (each has a few subcategories).
    pub categories: usize,
    /// Length of the simulated period in days.
    pub days: u32,
    /// The first instant of the simulated period.
    pub start: Timestamp,
    /// Dimension of the latent taste vectors of users and items.
    pub latent_dim: usize,
    /// Mean number of sessions per user per day (each user's rate is scaled by
    /// their activity, which is skewed: a few heavy users, many light ones).
    pub sessions_per_user_per_day: f64,
    /// Number of items the site shows per list.
    pub list_length: usize,
    /// Share of list slots the logging policy fills uniformly at random (exploration).
    pub exploration_rate: f64,
    /// Share of items created during the simulated period (new items for cold start).
    pub new_item_share: f64,
    /// Share of users who sign up during the simulated period (new users).
    pub new_user_share: f64,
    /// Probability that a user who clicked an item goes on to a similar one.
    pub browse_continue: f64,
    /// When set, items carry a content `embedding`: their latent vector plus
    /// Gaussian noise of this relative size (0 = exact, 1 = as much noise as
    /// signal), L2-normalised, as a content model computed elsewhere would supply.
    pub embedding_noise: Option<f64>,
    /// Optional shift of category tastes at a given day.
    pub drift: Option<TasteDrift>,
}

impl SimConfig {
    /// The world of `flywheel quickstart`: about 2,000 users, 1,000 items in 12
    /// categories over 14 days, a few hundred thousand events.
    pub fn quickstart() -> Self {
        SimConfig {
            seed: 42,
            users: 2_000,
            items: 1_000,
            categories: 12,
            days: 14,
            // 2026-01-05T00:00:00Z, a Monday.
            start: Timestamp::from_secs(1_767_571_200),
            latent_dim: 16,
            sessions_per_user_per_day: 2.0,
            list_length: 10,
            exploration_rate: 0.1,
            new_item_share: 0.15,
            new_user_share: 0.1,
            browse_continue: 0.5,
            embedding_noise: Some(0.7),
            drift: None,
        }
    }

    /// A small world for tests: 200 users, 150 items, 5 categories, 7 days.
    pub fn small() -> Self {
        SimConfig {
            users: 200,
            items: 150,
            categories: 5,
            days: 7,
            latent_dim: 8,
            ..Self::quickstart()
        }
    }

    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: &str| {
            Err(SimError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        if self.users == 0 || self.users > 10_000_000 {
            return invalid("users", "must be between 1 and 10,000,000");
        }
        if self.items < 2 || self.items > 10_000_000 {
            return invalid("items", "must be between 2 and 10,000,000");
        }
        if self.categories == 0 || self.categories > 1_000 {
            return invalid("categories", "must be between 1 and 1,000");
        }
        if self.days == 0 || self.days > 3_650 {
            return invalid("days", "must be between 1 and 3,650");
        }
        let end = i64::from(self.days) * Timestamp::DAY;
        if self.start.millis() < 400 * Timestamp::DAY
            || Timestamp::parse_rfc3339("2199-01-01T00:00:00Z")
                .map(|limit| self.start.millis() + end > limit.millis())
                .unwrap_or(true)
        {
            return invalid("start", "must leave a year before it and end before 2199");
        }
        if self.latent_dim == 0 || self.latent_dim > 1_024 {
            return invalid("latent_dim", "must be between 1 and 1,024");
        }
        let rate = self.sessions_per_user_per_day;
        if !rate.is_finite() || rate <= 0.0 || rate > 1_000.0 {
            return invalid("sessions_per_user_per_day", "must be in (0, 1000]");
        }
        if self.list_length == 0 || self.list_length > 1_000 {
            return invalid("list_length", "must be between 1 and 1,000");
        }
        for (field, share) in [
            ("exploration_rate", self.exploration_rate),
            ("new_item_share", self.new_item_share),
            ("new_user_share", self.new_user_share),
            ("browse_continue", self.browse_continue),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return invalid(field, "must be a number in [0, 1]");
            }
        }
        if self.new_item_share > 0.9 {
            return invalid(
                "new_item_share",
                "must be at most 0.9 so the shop opens with a catalog",
            );
        }
        if let Some(noise) = self.embedding_noise {
            if !noise.is_finite() || !(0.0..=100.0).contains(&noise) {
                return invalid("embedding_noise", "must be a number in [0, 100]");
            }
        }
        if let Some(drift) = self.drift {
            if drift.day >= self.days {
                return invalid("drift", "drift.day must be before the last day");
            }
            if !(0.0..=1.0).contains(&drift.strength) {
                return invalid("drift", "drift.strength must be in [0, 1]");
            }
        }
        Ok(())
    }

    /// The first instant after the simulated period; every event is before it.
    pub fn end(&self) -> Timestamp {
        self.start
            .plus_millis(i64::from(self.days).saturating_mul(Timestamp::DAY))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::quickstart()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_bad_fields_are_named() {
        assert!(SimConfig::quickstart().validate().is_ok());
        assert!(SimConfig::small().validate().is_ok());
        let bad = SimConfig {
            exploration_rate: 1.5,
            ..SimConfig::small()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains("exploration_rate"), "{err}");
        let nan = SimConfig {
            sessions_per_user_per_day: f64::NAN,
            ..SimConfig::small()
        };
        assert!(nan.validate().is_err());
        let late_drift = SimConfig {
            drift: Some(TasteDrift {
                day: 7,
                strength: 0.5,
            }),
            ..SimConfig::small()
        };
        assert!(late_drift.validate().is_err());
    }

    #[test]
    fn json_configs_fill_defaults_and_refuse_unknown_fields() {
        let c: SimConfig = serde_json::from_str(r#"{"seed": 7, "users": 50}"#).unwrap();
        assert_eq!((c.seed, c.users, c.items), (7, 50, 1_000));
        let err = serde_json::from_str::<SimConfig>(r#"{"user": 50}"#).unwrap_err();
        assert!(err.to_string().contains("user"), "{err}");
    }

    #[test]
    fn end_is_days_after_start() {
        let c = SimConfig::small();
        assert_eq!(c.end().millis() - c.start.millis(), 7 * Timestamp::DAY);
    }
}
