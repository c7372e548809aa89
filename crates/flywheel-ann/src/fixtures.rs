//! Seeded synthetic vectors for tests and benchmarks (made by code, never stored).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f32 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// `rows × dimension` values (row-major) from a mixture of `clusters` Gaussians with
/// unit-variance centres and per-cluster spreads in 0.35..0.65, so clusters overlap a
/// little (like `ann_anchor.py`'s vectors, smaller).
pub fn clustered(rows: usize, dimension: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dimension)
        .map(|_| normal(&mut rng))
        .collect();
    let spreads: Vec<f32> = (0..clusters).map(|_| rng.gen_range(0.35..0.65)).collect();
    let mut values = Vec::with_capacity(rows * dimension);
    for _ in 0..rows {
        let cluster = rng.gen_range(0..clusters);
        let centre = &centres[cluster * dimension..(cluster + 1) * dimension];
        for c in centre {
            values.push(c + spreads[cluster] * normal(&mut rng));
        }
    }
    values
}

/// Item and user factors shaped like an ALS model's: `rank`-dimensional latent tastes
/// mapped into `dimension` values plus a little noise, items scaled by log-normal
/// norms (popular items have long vectors). Returns `(items, users)`, row-major.
pub fn als_like(
    items: usize,
    users: usize,
    dimension: usize,
    rank: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let basis: Vec<f32> = (0..rank * dimension)
        .map(|_| normal(&mut rng) / (rank as f32).sqrt())
        .collect();
    let factor = |rng: &mut StdRng, scale: f32| -> Vec<f32> {
        let taste: Vec<f32> = (0..rank).map(|_| normal(rng)).collect();
        (0..dimension)
            .map(|d| {
                let mapped: f32 = taste
                    .iter()
                    .enumerate()
                    .map(|(r, t)| t * basis[r * dimension + d])
                    .sum();
                scale * (mapped + 0.1 * normal(rng))
            })
            .collect()
    };
    let mut item_values = Vec::with_capacity(items * dimension);
    for _ in 0..items {
        let norm = (0.5 * normal(&mut rng)).exp();
        item_values.extend(factor(&mut rng, norm));
    }
    let mut user_values = Vec::with_capacity(users * dimension);
    for _ in 0..users {
        user_values.extend(factor(&mut rng, 1.0));
    }
    (item_values, user_values)
}
