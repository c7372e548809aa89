//! Seeded random streams. Every part of the world draws from its own stream
//! (one per user, one per item, one for the site…), so changing how one part
//! draws never reshuffles another, and the same seed always gives the same world.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, StandardNormal};

/// Independent streams, one per purpose.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Taxonomy,
    Catalog,
    Item(usize),
    User(usize),
    Sessions(usize),
    Site,
    Corruption,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The generator of one stream of one seed.
pub(crate) fn stream(seed: u64, which: Stream) -> StdRng {
    let (domain, index) = match which {
        Stream::Taxonomy => (1u64, 0usize),
        Stream::Catalog => (6, 0),
        Stream::Item(i) => (2, i),
        Stream::User(u) => (3, u),
        Stream::Sessions(u) => (4, u),
        Stream::Site => (5, 0),
        Stream::Corruption => (7, 0),
    };
    let mixed = splitmix64(splitmix64(seed ^ domain.rotate_left(56)) ^ index as u64);
    StdRng::seed_from_u64(mixed)
}

/// A standard normal draw.
pub(crate) fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

/// A vector of `dim` independent normal draws scaled by `scale`.
pub(crate) fn normal_vector(rng: &mut StdRng, dim: usize, scale: f64) -> Vec<f64> {
    (0..dim).map(|_| normal(rng) * scale).collect()
}

/// A draw from a symmetric Dirichlet distribution with concentration `alpha`.
pub(crate) fn dirichlet(rng: &mut StdRng, size: usize, alpha: f64) -> Vec<f64> {
    let gamma = Gamma::new(alpha, 1.0).expect("alpha is a positive constant");
    let mut draws: Vec<f64> = (0..size).map(|_| gamma.sample(rng)).collect();
    let total: f64 = draws.iter().sum();
    if total > 0.0 && total.is_finite() {
        draws.iter_mut().for_each(|d| *d /= total);
    } else {
        draws.iter_mut().for_each(|d| *d = 1.0 / size as f64);
    }
    draws
}

/// An index drawn with probability proportional to `weights` (all finite, ≥ 0).
pub(crate) fn weighted_index(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return rng.gen_range(0..weights.len().max(1));
    }
    let mut target = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    weights.len() - 1
}

/// A Poisson draw (Knuth's method for small means, normal approximation above 30).
pub(crate) fn poisson(rng: &mut StdRng, mean: f64) -> usize {
    if mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    if mean > 30.0 {
        let x = mean + mean.sqrt() * normal(rng);
        return x.round().max(0.0) as usize;
    }
    let limit = (-mean).exp();
    let mut product = rng.gen::<f64>();
    let mut count = 0;
    while product > limit {
        product *= rng.gen::<f64>();
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream(7, Stream::User(3)).gen();
        let b: u64 = stream(7, Stream::User(3)).gen();
        let c: u64 = stream(7, Stream::User(4)).gen();
        let d: u64 = stream(8, Stream::User(3)).gen();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn dirichlet_sums_to_one_and_poisson_has_the_right_mean() {
        let mut rng = stream(1, Stream::Site);
        let p = dirichlet(&mut rng, 12, 0.4);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let n = 20_000;
        let mean = (0..n).map(|_| poisson(&mut rng, 2.5)).sum::<usize>() as f64 / n as f64;
        // Standard error of the mean is sqrt(2.5 / 20000) ≈ 0.011; allow 5 of them.
        assert!((mean - 2.5).abs() < 0.06, "{mean}");
    }

    #[test]
    fn weighted_index_follows_the_weights() {
        let mut rng = stream(2, Stream::Site);
        let weights = [1.0, 0.0, 3.0];
        let mut counts = [0usize; 3];
        for _ in 0..40_000 {
            counts[weighted_index(&mut rng, &weights)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 40_000.0;
        // Expected 0.75, standard error ≈ 0.0022.
        assert!((share - 0.75).abs() < 0.012, "{share}");
    }
}
