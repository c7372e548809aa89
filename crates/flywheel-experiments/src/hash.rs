//! MurmurHash3 x86_32 and deterministic user bucketing.
//!
//! The hash is Austin Appleby's reference `MurmurHash3_x86_32`, hand-written here and
//! checked against every vector of `shared/reference/murmur3_vectors.csv` (made with
//! `mmh3`). Bucketing conventions are named explicitly because tools differ:
//! modulo (`h % buckets`, flywheel's default), scaled (`floor(h * buckets / 2^32)`,
//! Optimizely) and `% 100` (Unleash, which adds 1).

use crate::error::{ExperimentError, Result};

/// Number of buckets of the default assignment (`% 10000`).
pub const DEFAULT_BUCKETS: u32 = 10_000;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// MurmurHash3 x86_32 of `bytes` with `seed`, as an unsigned 32-bit value.
pub fn murmur3_x86_32(bytes: &[u8], seed: u32) -> u32 {
    let mut h = seed;
    let mut blocks = bytes.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        h ^= mix_k(k);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, &b) in tail.iter().enumerate() {
            k |= u32::from(b) << (8 * i);
        }
        h ^= mix_k(k);
    }
    // The length is mixed in modulo 2^32, exactly as the reference C code does.
    h ^= bytes.len() as u32;
    fmix32(h)
}

fn mix_k(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// How a 32-bit hash is turned into a bucket number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BucketConvention {
    /// `h % buckets` (flywheel default; GrowthBook-style modulo).
    Modulo,
    /// `floor(h * buckets / 2^32)` (Optimizely).
    Scaled,
}

/// The bucket of hash `h` among `buckets` under `convention`; `None` if `buckets == 0`.
pub fn bucket_of_hash(h: u32, buckets: u32, convention: BucketConvention) -> Option<u32> {
    if buckets == 0 {
        return None;
    }
    Some(match convention {
        BucketConvention::Modulo => h % buckets,
        BucketConvention::Scaled => ((u64::from(h) * u64::from(buckets)) >> 32) as u32,
    })
}

/// `h % 10000` — the modulo convention of the reference CSV.
pub fn bucket_mod_10000(h: u32) -> u32 {
    h % 10_000
}

/// `floor(h * 10000 / 2^32)` — the Optimizely convention of the reference CSV.
pub fn bucket_scaled_10000(h: u32) -> u32 {
    ((u64::from(h) * 10_000) >> 32) as u32
}

/// `h % 100` — the Unleash convention of the reference CSV (Unleash then adds 1).
pub fn bucket_mod_100(h: u32) -> u32 {
    h % 100
}

/// The hash key of the default assignment: `"<salt>:<user_id>"`.
pub fn assignment_key(user_id: &str, salt: &str) -> String {
    format!("{salt}:{user_id}")
}

/// flywheel's default bucket in `0..10000`: MurmurHash3 x86_32 of the UTF-8 bytes of
/// `"<salt>:<user_id>"`, seed 0, modulo 10000. Stable per user and experiment salt.
pub fn assign_bucket(user_id: &str, salt: &str) -> u32 {
    bucket_mod_10000(murmur3_x86_32(assignment_key(user_id, salt).as_bytes(), 0))
}

/// Splits the 10000 buckets among variants in proportion to their weights.
///
/// Variant `i` owns a contiguous range of buckets; the ranges are cumulative weights
/// rounded to whole buckets, so weights `[0.5, 0.5]` give `0..5000` and `5000..10000`
/// (the split used to generate `ab_users.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSplit {
    upper_bounds: Vec<u32>,
}

impl VariantSplit {
    /// Validates `weights` (finite, non-negative, positive sum) into bucket ranges.
    pub fn new(weights: &[f64]) -> Result<Self> {
        if weights.is_empty() {
            return Err(ExperimentError::InvalidInput(
                "variant weights are empty; give at least one weight".into(),
            ));
        }
        if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(ExperimentError::InvalidInput(format!(
                "variant weight {w} must be finite and >= 0"
            )));
        }
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return Err(ExperimentError::InvalidInput(
                "variant weights sum to zero; give at least one positive weight".into(),
            ));
        }
        let mut cumulative = 0.0;
        let mut upper_bounds = Vec::with_capacity(weights.len());
        for w in weights {
            cumulative += w / total;
            let bound = (cumulative * f64::from(DEFAULT_BUCKETS)).round();
            upper_bounds.push(bound.min(f64::from(DEFAULT_BUCKETS)) as u32);
        }
        if let Some(last) = upper_bounds.last_mut() {
            *last = DEFAULT_BUCKETS;
        }
        Ok(Self { upper_bounds })
    }

    /// One variant owning every bucket.
    pub fn single() -> Self {
        Self {
            upper_bounds: vec![DEFAULT_BUCKETS],
        }
    }

    /// The index of the variant owning `bucket` (a value in `0..10000`).
    pub fn variant_of_bucket(&self, bucket: u32) -> usize {
        self.upper_bounds
            .iter()
            .position(|&upper| bucket < upper)
            .unwrap_or(self.upper_bounds.len() - 1)
    }

    /// The variant index of `user_id` in the experiment salted `salt`.
    pub fn assign(&self, user_id: &str, salt: &str) -> usize {
        self.variant_of_bucket(assign_bucket(user_id, salt))
    }
}

/// Convenience: the variant index of `user_id` under `weights` (see [`VariantSplit`]).
pub fn assign_variant(user_id: &str, salt: &str, weights: &[f64]) -> Result<usize> {
    Ok(VariantSplit::new(weights)?.assign(user_id, salt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_example_hash() {
        // shared/reference/README.md: hash("user_42salt", seed 0) = 178951475 (mmh3)
        assert_eq!(murmur3_x86_32(b"user_42salt", 0), 178_951_475);
    }

    #[test]
    fn split_respects_weights_and_edges() {
        let split = VariantSplit::new(&[0.5, 0.5]).expect("valid weights");
        assert_eq!(split.variant_of_bucket(0), 0);
        assert_eq!(split.variant_of_bucket(4999), 0);
        assert_eq!(split.variant_of_bucket(5000), 1);
        assert_eq!(split.variant_of_bucket(9999), 1);
        let zero_first = VariantSplit::new(&[0.0, 1.0]).expect("valid weights");
        assert_eq!(zero_first.variant_of_bucket(0), 1);
    }

    #[test]
    fn split_rejects_bad_weights() {
        assert!(VariantSplit::new(&[]).is_err());
        assert!(VariantSplit::new(&[0.0, 0.0]).is_err());
        assert!(VariantSplit::new(&[1.0, f64::NAN]).is_err());
        assert!(VariantSplit::new(&[1.0, -0.5]).is_err());
    }

    #[test]
    fn zero_buckets_is_none() {
        assert_eq!(bucket_of_hash(5, 0, BucketConvention::Modulo), None);
    }
}
