//! Exponentially decayed counters, stored as value + last-update time and decayed
//! lazily to the moment they are read.
//!
//! The value of a counter at time `now` is, exactly,
//! `Σ_i w_i · 2^(−(now − t_i) / half_life)` over the contributions `(t_i, w_i)` applied
//! so far. An in-order contribution decays the stored value to `t_i` and adds `w_i`;
//! a late one (`t_i` before the last update) adds `w_i · 2^(−(last − t_i) / half_life)`,
//! its contribution as of the last update — the same sum, in any arrival order.
//! Reading at a `now` before the last update returns the value at the last update
//! (counters never grow backwards in time).

use serde::{Deserialize, Serialize};

/// The three decay horizons of item counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Horizon {
    /// Half-life one hour.
    Hour,
    /// Half-life 24 hours.
    Day,
    /// Half-life seven days.
    Week,
}

/// How many horizons there are.
pub const HORIZONS: usize = 3;

/// Half-lives in milliseconds, indexed by [`Horizon::index`]: 1 h, 24 h, 7 d.
pub const HALF_LIVES_MS: [i64; HORIZONS] = [3_600_000, 86_400_000, 604_800_000];

impl Horizon {
    /// All horizons, shortest first.
    pub const ALL: [Horizon; HORIZONS] = [Horizon::Hour, Horizon::Day, Horizon::Week];

    /// Index into the `[f64; 3]` arrays of [`flywheel_core::ItemFeatures`].
    pub fn index(self) -> usize {
        match self {
            Horizon::Hour => 0,
            Horizon::Day => 1,
            Horizon::Week => 2,
        }
    }

    /// The half-life in milliseconds.
    pub fn half_life_ms(self) -> i64 {
        HALF_LIVES_MS[self.index()]
    }
}

/// `2^(−elapsed / half_life)` for each horizon; elapsed times below zero count as zero.
pub fn decay_factors(elapsed_ms: i64) -> [f64; HORIZONS] {
    if elapsed_ms <= 0 {
        return [1.0; HORIZONS];
    }
    let elapsed = elapsed_ms as f64;
    HALF_LIVES_MS.map(|half_life| (-elapsed / half_life as f64).exp2())
}

/// What an item counts. `Engagement` sums `Action::implicit_weight` over all events;
/// `Impression` counts slots in served lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    /// `view` events.
    View = 0,
    /// `click` events.
    Click = 1,
    /// `purchase` events.
    Purchase = 2,
    /// Implicit weight of every event.
    Engagement = 3,
    /// Impression slots.
    Impression = 4,
}

/// How many counter kinds there are.
pub const KINDS: usize = 5;

/// Every counter of one item, all at every horizon, sharing one last-update time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecayedCounters {
    values: [[f64; HORIZONS]; KINDS],
    /// Milliseconds of the last in-order update; `None` before the first one.
    updated_at: Option<i64>,
}

impl DecayedCounters {
    /// Adds `increments` at time `at` (milliseconds), in or out of order.
    pub fn add(&mut self, at: i64, increments: &[(CounterKind, f64)]) {
        let scale = match self.updated_at {
            Some(last) if at < last => decay_factors(last - at),
            Some(last) => {
                if at > last {
                    let factors = decay_factors(at - last);
                    for row in &mut self.values {
                        for (value, factor) in row.iter_mut().zip(factors) {
                            *value *= factor;
                        }
                    }
                }
                self.updated_at = Some(at);
                [1.0; HORIZONS]
            }
            None => {
                self.updated_at = Some(at);
                [1.0; HORIZONS]
            }
        };
        for &(kind, weight) in increments {
            let row = &mut self.values[kind as usize];
            for (value, factor) in row.iter_mut().zip(scale) {
                *value += weight * factor;
            }
        }
    }

    /// The counter decayed to `now` (milliseconds), at all horizons. Does not mutate.
    pub fn at(&self, kind: CounterKind, now: i64) -> [f64; HORIZONS] {
        let row = self.values[kind as usize];
        match self.updated_at {
            Some(last) => {
                let factors = decay_factors(now - last);
                [0, 1, 2].map(|h| row[h] * factors[h])
            }
            None => row,
        }
    }

    /// Every counter decayed to `now`, indexed `[kind as usize][horizon]`: one set of
    /// decay factors for all kinds. Does not mutate.
    pub fn all_at(&self, now: i64) -> [[f64; HORIZONS]; KINDS] {
        let factors = match self.updated_at {
            Some(last) => decay_factors(now - last),
            None => [1.0; HORIZONS],
        };
        self.values
            .map(|row| [0, 1, 2].map(|h| row[h] * factors[h]))
    }

    /// A key that orders counters by their value at any common `now` at or after every
    /// update: `log2(value) + updated_at / half_life`, since all values of one horizon
    /// decay at the same rate. `None` when the value is not positive (it ranks nowhere).
    pub fn ordering_key(&self, kind: CounterKind, horizon: Horizon) -> Option<f64> {
        let h = horizon.index();
        let value = self.values[kind as usize][h];
        if value <= 0.0 || !value.is_finite() {
            return None;
        }
        let updated = self.updated_at.unwrap_or(0) as f64;
        Some(value.log2() + updated / HALF_LIVES_MS[h] as f64)
    }

    /// One horizon of [`Self::at`].
    pub fn at_horizon(&self, kind: CounterKind, horizon: Horizon, now: i64) -> f64 {
        let h = horizon.index();
        let value = self.values[kind as usize][h];
        match self.updated_at {
            Some(last) if now > last => {
                value * (-((now - last) as f64) / HALF_LIVES_MS[h] as f64).exp2()
            }
            _ => value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn one_half_life_halves_the_value_at_each_horizon() {
        let mut c = DecayedCounters::default();
        c.add(0, &[(CounterKind::Click, 8.0)]);
        // After one hour: the 1 h counter halves; the 24 h counter keeps 2^(-1/24).
        let v = c.at(CounterKind::Click, H);
        assert!((v[0] - 4.0).abs() < 1e-12);
        assert!((v[1] - 8.0 * 2f64.powf(-1.0 / 24.0)).abs() < 1e-12);
        assert!((v[2] - 8.0 * 2f64.powf(-1.0 / 168.0)).abs() < 1e-12);
        assert!((c.at(CounterKind::Click, 24 * H)[1] - 4.0).abs() < 1e-12);
        assert!((c.at(CounterKind::Click, 168 * H)[2] - 4.0).abs() < 1e-12);
        assert_eq!(c.at(CounterKind::View, H), [0.0; 3]);
    }

    #[test]
    fn late_contributions_equal_in_order_ones() {
        let mut in_order = DecayedCounters::default();
        in_order.add(1_000, &[(CounterKind::View, 1.0)]);
        in_order.add(2 * H, &[(CounterKind::View, 1.0)]);
        in_order.add(3 * H, &[(CounterKind::View, 1.0)]);
        let mut shuffled = DecayedCounters::default();
        shuffled.add(3 * H, &[(CounterKind::View, 1.0)]);
        shuffled.add(1_000, &[(CounterKind::View, 1.0)]);
        shuffled.add(2 * H, &[(CounterKind::View, 1.0)]);
        let a = in_order.at(CounterKind::View, 5 * H);
        let b = shuffled.at(CounterKind::View, 5 * H);
        for h in 0..3 {
            assert!((a[h] - b[h]).abs() <= 1e-12 * a[h]);
        }
        // Exact formula: sum of 2^(-(5h - t)/1h).
        let exact = 2f64.powf(-(5.0 * H as f64 - 1000.0) / H as f64) + 0.125 + 0.25;
        assert!((a[0] - exact).abs() < 1e-12);
    }

    #[test]
    fn reading_before_the_last_update_does_not_grow_the_value() {
        let mut c = DecayedCounters::default();
        c.add(10 * H, &[(CounterKind::Purchase, 3.0)]);
        assert_eq!(c.at(CounterKind::Purchase, 0), [3.0; 3]);
        assert_eq!(c.at_horizon(CounterKind::Purchase, Horizon::Day, 0), 3.0);
        let week = c.at_horizon(CounterKind::Purchase, Horizon::Week, 10 * H + 168 * H);
        assert!((week - 1.5).abs() < 1e-12);
    }
}
