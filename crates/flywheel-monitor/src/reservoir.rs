//! Bounded uniform samples (Vitter's algorithm R) with a seeded generator, so a
//! replay of the same records keeps the same sample.

use serde::{Deserialize, Serialize};

/// SplitMix64: a tiny, seedable generator (no dependency needed for sampling).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A uniform sample of at most `capacity` values of a stream, and how many it saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservoir {
    capacity: usize,
    seen: u64,
    values: Vec<f64>,
    rng: SplitMix,
}

impl Reservoir {
    /// An empty reservoir keeping at most `capacity` values.
    pub fn new(capacity: usize, seed: u64) -> Self {
        Reservoir {
            capacity,
            seen: 0,
            values: Vec::new(),
            rng: SplitMix::new(seed),
        }
    }

    /// Offers one value; non-finite values are refused (and not counted).
    pub fn offer(&mut self, value: f64) {
        if !value.is_finite() || self.capacity == 0 {
            return;
        }
        self.seen += 1;
        if self.values.len() < self.capacity {
            self.values.push(value);
            return;
        }
        let slot = self.rng.below(self.seen) as usize;
        if slot < self.capacity {
            self.values[slot] = value;
        }
    }

    /// Values offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The sample.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

/// One sample of several reservoirs, each contributing in proportion to what it saw
/// (at most `target` values in all), so a busy bucket weighs more than a quiet one.
pub fn merge_weighted<'a>(
    parts: impl IntoIterator<Item = &'a Reservoir>,
    target: usize,
) -> Vec<f64> {
    let parts: Vec<&Reservoir> = parts.into_iter().collect();
    let total: u64 = parts.iter().map(|r| r.seen).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut merged = Vec::with_capacity(target);
    for part in parts {
        let share = (target as f64 * part.seen as f64 / total as f64).round() as usize;
        merged.extend(part.values.iter().take(share.max(1).min(part.values.len())));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservoir_keeps_a_bounded_uniform_sample() {
        let mut r = Reservoir::new(1_000, 7);
        for i in 0..100_000 {
            r.offer(f64::from(i));
        }
        assert_eq!(r.values().len(), 1_000);
        assert_eq!(r.seen(), 100_000);
        let mean = r.values().iter().sum::<f64>() / 1_000.0;
        assert!((mean - 50_000.0).abs() < 3_000.0, "{mean}");
        r.offer(f64::NAN);
        assert_eq!(r.seen(), 100_000);
    }

    #[test]
    fn merging_weighs_parts_by_what_they_saw() {
        let mut busy = Reservoir::new(100, 1);
        let mut quiet = Reservoir::new(100, 2);
        for _ in 0..900 {
            busy.offer(1.0);
        }
        for _ in 0..100 {
            quiet.offer(2.0);
        }
        let merged = merge_weighted([&busy, &quiet], 100);
        let twos = merged.iter().filter(|v| **v == 2.0).count();
        assert_eq!((merged.len(), twos), (100, 10));
    }
}
