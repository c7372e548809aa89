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

/// A broken stream from a given day on: a share of events name items the catalog
/// does not know, and a share lose their optional fields (as a faulty client or a
/// bad deploy of the tracking code would send them). The users' behaviour and the
/// truth are unchanged; only what the log receives is damaged. Each event is
/// damaged independently: it has an unknown item id with probability
/// `unknown_item_share` and, independently, missing fields with probability
/// `missing_field_share`. See [`crate::World::damage_of`] for what each means.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamCorruption {
    /// The first damaged day (0-based, counted from [`SimConfig::start`]).
    pub day: u32,
    /// The first day that is clean again; `None` (the default) keeps the stream damaged
    /// to the end of the run.
    #[serde(default)]
    pub until_day: Option<u32>,
    /// Share of events, in `[0, 1]`, whose item id is replaced by one the catalog does not know.
    #[serde(default)]
    pub unknown_item_share: f64,
    /// Share of events, in `[0, 1]`, that lose their `context` (device, page, session)
    /// and, for purchases, their `value`.
    #[serde(default)]
    pub missing_field_share: f64,
}

impl StreamCorruption {
    /// Whether an event at `at` falls in the damaged period of a run starting at `start`.
    pub fn is_active_at(&self, start: Timestamp, at: Timestamp) -> bool {
        let day_start = |day: u32| start.plus_millis(i64::from(day) * Timestamp::DAY);
        at >= day_start(self.day) && self.until_day.is_none_or(|end| at < day_start(end))
    }

    fn validate(&self, days: u32) -> Result<()> {
        let invalid = |reason: &str| {
            Err(SimError::InvalidConfig {
                field: "corruption",
                reason: reason.to_string(),
            })
        };
        if self.day >= days {
            return invalid("corruption.day must be before the last day");
        }
        if self.until_day.is_some_and(|end| end <= self.day) {
            return invalid("corruption.until_day must be after corruption.day");
        }
        for (name, share) in [
            ("unknown_item_share", self.unknown_item_share),
            ("missing_field_share", self.missing_field_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return invalid(&format!("corruption.{name} must be a number in [0, 1]"));
            }
        }
        if self.unknown_item_share == 0.0 && self.missing_field_share == 0.0 {
            return invalid("corruption needs unknown_item_share or missing_field_share above 0");
        }
        Ok(())
    }
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
    /// Optional damage to the event stream from a given day (not written when absent,
    /// so `truth.json` files stay byte-identical to those written before it existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corruption: Option<StreamCorruption>,
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
            corruption: None,
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
        if let Some(corruption) = &self.corruption {
            corruption.validate(self.days)?;
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
        let corruption = StreamCorruption {
            day: 2,
            until_day: Some(4),
            unknown_item_share: 0.2,
            missing_field_share: 0.1,
        };
        let with = |c: StreamCorruption| SimConfig {
            corruption: Some(c),
            ..SimConfig::small()
        };
        assert!(with(corruption).validate().is_ok());
        for bad in [
            StreamCorruption {
                day: 7,
                ..corruption
            },
            StreamCorruption {
                until_day: Some(2),
                ..corruption
            },
            StreamCorruption {
                unknown_item_share: 1.5,
                ..corruption
            },
            StreamCorruption {
                missing_field_share: f64::NAN,
                ..corruption
            },
            StreamCorruption {
                unknown_item_share: 0.0,
                missing_field_share: 0.0,
                ..corruption
            },
        ] {
            let err = with(bad).validate().unwrap_err().to_string();
            assert!(err.contains("corruption"), "{err}");
        }
    }

    #[test]
    fn corruption_is_active_from_its_day_until_its_end() {
        let c = SimConfig::small();
        let corruption = StreamCorruption {
            day: 2,
            until_day: Some(4),
            unknown_item_share: 0.2,
            missing_field_share: 0.0,
        };
        let at = |ms: i64| c.start.plus_millis(ms);
        assert!(!corruption.is_active_at(c.start, at(2 * Timestamp::DAY - 1)));
        assert!(corruption.is_active_at(c.start, at(2 * Timestamp::DAY)));
        assert!(corruption.is_active_at(c.start, at(4 * Timestamp::DAY - 1)));
        assert!(!corruption.is_active_at(c.start, at(4 * Timestamp::DAY)));
        let open = StreamCorruption {
            until_day: None,
            ..corruption
        };
        assert!(open.is_active_at(c.start, at(100 * Timestamp::DAY)));
        let parsed: StreamCorruption =
            serde_json::from_str(r#"{"day": 3, "unknown_item_share": 0.3}"#).unwrap();
        assert_eq!((parsed.until_day, parsed.missing_field_share), (None, 0.0));
        assert!(serde_json::from_str::<StreamCorruption>(r#"{"day": 3, "share": 1}"#).is_err());
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
