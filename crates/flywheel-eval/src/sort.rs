//! Order-preserving float keys and an LSD radix sort: ten million scores sort in a
//! fraction of a second without comparisons.

/// Maps a finite f64 to a u64 whose unsigned order is the float order (-0.0 == 0.0).
#[inline]
pub fn order_key(value: f64) -> u64 {
    let bits = (value + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Sorts `keys` ascending (byte-wise LSD radix sort; passes whose digit is constant are skipped).
pub fn radix_sort(keys: &mut Vec<u64>) {
    if keys.len() < 256 {
        keys.sort_unstable();
        return;
    }
    let mut buffer = vec![0u64; keys.len()];
    for pass in 0..8 {
        let shift = pass * 8;
        let mut counts = [0usize; 256];
        for key in keys.iter() {
            counts[((key >> shift) & 0xff) as usize] += 1;
        }
        if counts.contains(&keys.len()) {
            continue;
        }
        let mut offsets = [0usize; 256];
        let mut running = 0;
        for (offset, count) in offsets.iter_mut().zip(counts.iter()) {
            *offset = running;
            running += count;
        }
        for key in keys.iter() {
            let digit = ((key >> shift) & 0xff) as usize;
            buffer[offsets[digit]] = *key;
            offsets[digit] += 1;
        }
        std::mem::swap(keys, &mut buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn keys_preserve_float_order() {
        let values = [
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            0.3,
            0.30000000000000004,
            7.0,
            f64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(order_key(pair[0]) <= order_key(pair[1]), "{pair:?}");
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
    }

    #[test]
    fn radix_sort_equals_comparison_sort() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut keys: Vec<u64> = (0..10_000)
            .map(|_| order_key(rng.gen_range(-5.0..5.0)))
            .collect();
        let mut want = keys.clone();
        want.sort_unstable();
        radix_sort(&mut keys);
        assert_eq!(keys, want);
    }
}
