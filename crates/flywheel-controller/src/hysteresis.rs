//! The hysteresis both rules share: a condition becomes active only after it has
//! held for N consecutive observations, and clears only once its figures are under a
//! lower threshold, for a period when one is configured.

use flywheel_core::Timestamp;
use serde::{Deserialize, Serialize};

/// Where an observation's figures sit against a rule's two thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Above the threshold: the condition holds.
    Above,
    /// Under the threshold but above the lower one: neither holds nor clears.
    Between,
    /// At most the lower threshold: clearing.
    Clear,
    /// Not enough data to say (too few events, nothing measured): changes nothing.
    Unknown,
}

/// What an update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    /// The condition just became active.
    Rose,
    /// The condition just cleared.
    Fell,
    /// No change.
    Steady,
}

/// A condition with hysteresis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hysteresis {
    /// Consecutive observations above the threshold while inactive.
    streak: u32,
    /// Since when the condition is active.
    active_since: Option<Timestamp>,
    /// Since when the figures are clear, while active.
    clear_since: Option<Timestamp>,
}

impl Hysteresis {
    /// Whether the condition is active.
    pub(crate) fn is_active(&self) -> bool {
        self.active_since.is_some()
    }

    /// Since when the condition is active.
    pub(crate) fn active_since(&self) -> Option<Timestamp> {
        self.active_since
    }

    /// Since when the figures have been clear (while active).
    pub(crate) fn clear_since(&self) -> Option<Timestamp> {
        self.clear_since
    }

    /// Takes one observation's level: rises after `rise_after` consecutive `Above`,
    /// falls once `Clear` has held without interruption for `clear_for_ms`.
    pub(crate) fn update(
        &mut self,
        level: Level,
        at: Timestamp,
        rise_after: u32,
        clear_for_ms: i64,
    ) -> Edge {
        if self.is_active() {
            self.update_active(level, at, clear_for_ms)
        } else {
            self.update_inactive(level, at, rise_after)
        }
    }

    fn update_inactive(&mut self, level: Level, at: Timestamp, rise_after: u32) -> Edge {
        match level {
            Level::Above => {
                self.streak += 1;
                if self.streak < rise_after {
                    return Edge::Steady;
                }
                self.streak = 0;
                self.active_since = Some(at);
                Edge::Rose
            }
            Level::Between | Level::Clear => {
                self.streak = 0;
                Edge::Steady
            }
            Level::Unknown => Edge::Steady,
        }
    }

    fn update_active(&mut self, level: Level, at: Timestamp, clear_for_ms: i64) -> Edge {
        match level {
            Level::Clear => {
                let since = *self.clear_since.get_or_insert(at);
                if at.millis() - since.millis() < clear_for_ms {
                    return Edge::Steady;
                }
                self.active_since = None;
                self.clear_since = None;
                Edge::Fell
            }
            Level::Above | Level::Between => {
                self.clear_since = None;
                Edge::Steady
            }
            Level::Unknown => Edge::Steady,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn rises_only_after_consecutive_observations_above() {
        let mut h = Hysteresis::default();
        assert_eq!(h.update(Level::Above, t(0), 3, 0), Edge::Steady);
        assert_eq!(h.update(Level::Above, t(1), 3, 0), Edge::Steady);
        // An observation under the threshold restarts the count…
        assert_eq!(h.update(Level::Between, t(2), 3, 0), Edge::Steady);
        assert_eq!(h.update(Level::Above, t(3), 3, 0), Edge::Steady);
        assert_eq!(h.update(Level::Above, t(4), 3, 0), Edge::Steady);
        // …one without evidence does not.
        assert_eq!(h.update(Level::Unknown, t(5), 3, 0), Edge::Steady);
        assert_eq!(h.update(Level::Above, t(6), 3, 0), Edge::Rose);
        assert_eq!(h.active_since(), Some(t(6)));
    }

    #[test]
    fn falls_only_below_the_lower_threshold_for_the_whole_period() {
        let mut h = Hysteresis::default();
        assert_eq!(h.update(Level::Above, t(0), 1, 100_000), Edge::Rose);
        // Under the threshold but not under the lower one: still active.
        assert_eq!(h.update(Level::Between, t(10), 1, 100_000), Edge::Steady);
        assert_eq!(h.update(Level::Clear, t(20), 1, 100_000), Edge::Steady);
        assert_eq!(h.clear_since(), Some(t(20)));
        // Interrupted: the period starts again.
        assert_eq!(h.update(Level::Between, t(60), 1, 100_000), Edge::Steady);
        assert_eq!(h.update(Level::Clear, t(70), 1, 100_000), Edge::Steady);
        assert_eq!(h.update(Level::Clear, t(169), 1, 100_000), Edge::Steady);
        assert!(h.is_active());
        assert_eq!(h.update(Level::Clear, t(170), 1, 100_000), Edge::Fell);
        assert!(!h.is_active());
        assert_eq!(h.clear_since(), None);
    }
}
