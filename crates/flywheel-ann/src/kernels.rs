//! Distance kernels in safe Rust.
//!
//! Every loop runs over fixed chunks of 16 lanes with 16 independent accumulators, so
//! LLVM keeps them in vector registers and vectorizes without `unsafe`: on the generic
//! x86-64 target the release profile builds for (SSE2, no AVX, no FMA) that is four
//! 4-lane SSE registers per chunk. Stored vectors are zero-padded to a multiple of
//! [`LANES`], which changes neither a squared distance nor a dot product, so the
//! remainder loops only run for unpadded input.

/// The padding unit of stored vectors (values).
pub const LANES: usize = 16;

/// `dimension` rounded up to a multiple of [`LANES`].
pub fn padded(dimension: usize) -> usize {
    dimension.div_ceil(LANES) * LANES
}

/// Squared Euclidean distance of two equally long slices.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_rest) = a.as_chunks::<LANES>();
    let (b_chunks, b_rest) = b.as_chunks::<LANES>();
    let mut acc = [0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for lane in 0..LANES {
            let d = x[lane] - y[lane];
            acc[lane] += d * d;
        }
    }
    let tail: f32 = a_rest
        .iter()
        .zip(b_rest)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    reduce(&acc) + tail
}

/// Dot product of two equally long slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_rest) = a.as_chunks::<LANES>();
    let (b_chunks, b_rest) = b.as_chunks::<LANES>();
    let mut acc = [0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for lane in 0..LANES {
            acc[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    reduce(&acc) + tail
}

/// Squared distance between a prepared query `q` (the query minus the quantizer's
/// offsets) and an int8 code `c` decoded with per-dimension `scale`s:
/// `Σ (q[d] − scale[d]·c[d])²`.
#[inline]
pub fn l2_squared_u8(q: &[f32], scale: &[f32], c: &[u8]) -> f32 {
    let (q_chunks, q_rest) = q.as_chunks::<LANES>();
    let (s_chunks, s_rest) = scale.as_chunks::<LANES>();
    let (c_chunks, c_rest) = c.as_chunks::<LANES>();
    let mut acc = [0f32; LANES];
    for ((x, s), code) in q_chunks.iter().zip(s_chunks).zip(c_chunks) {
        for lane in 0..LANES {
            let d = x[lane] - s[lane] * f32::from(code[lane]);
            acc[lane] += d * d;
        }
    }
    let tail: f32 = q_rest
        .iter()
        .zip(s_rest)
        .zip(c_rest)
        .map(|((x, s), code)| {
            let d = x - s * f32::from(*code);
            d * d
        })
        .sum();
    reduce(&acc) + tail
}

/// `Σ w[d]·c[d]` for f32 weights and int8 codes.
#[inline]
pub fn dot_u8(w: &[f32], c: &[u8]) -> f32 {
    let (w_chunks, w_rest) = w.as_chunks::<LANES>();
    let (c_chunks, c_rest) = c.as_chunks::<LANES>();
    let mut acc = [0f32; LANES];
    for (x, code) in w_chunks.iter().zip(c_chunks) {
        for lane in 0..LANES {
            acc[lane] += x[lane] * f32::from(code[lane]);
        }
    }
    let tail: f32 = w_rest
        .iter()
        .zip(c_rest)
        .map(|(x, code)| x * f32::from(*code))
        .sum();
    reduce(&acc) + tail
}

/// Sum of the accumulators in a fixed order (so results are reproducible). The lanes
/// are added four apart first: a pattern that keeps LLVM's SLP vectorizer on 4-wide
/// loads (a halving tree, lane `i` + lane `i + 8`, made it fall back to 2-wide `movsd`
/// loads for the whole loop — measured in the disassembly).
#[inline]
fn reduce(acc: &[f32; LANES]) -> f32 {
    let mut quads = [0f32; 4];
    for (lane, quad) in quads.iter_mut().enumerate() {
        *quad = (acc[lane] + acc[lane + 4]) + (acc[lane + 8] + acc[lane + 12]);
    }
    (quads[0] + quads[1]) + (quads[2] + quads[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_l2(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum()
    }

    fn vector(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 250.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn kernels_match_naive_sums_for_every_length() {
        for len in [0, 1, 7, 15, 16, 17, 31, 32, 33, 64, 65, 100] {
            let (a, b) = (vector(len, 1), vector(len, 99));
            let expected = naive_l2(&a, &b);
            assert!(
                (f64::from(l2_squared(&a, &b)) - expected).abs() <= 1e-4 * (1.0 + expected),
                "len {len}"
            );
            let dot_expected: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!(
                (f64::from(dot(&a, &b)) - dot_expected).abs() <= 1e-4 * (1.0 + dot_expected.abs()),
                "len {len}"
            );
        }
    }

    #[test]
    fn u8_kernel_decodes_with_the_scales() {
        let codes: Vec<u8> = (0..37).map(|i| (i * 7 % 256) as u8).collect();
        let scale: Vec<f32> = (0..37).map(|i| 0.01 * (i + 1) as f32).collect();
        let q = vector(37, 5);
        let decoded: Vec<f32> = codes
            .iter()
            .zip(&scale)
            .map(|(c, s)| s * f32::from(*c))
            .collect();
        let expected = naive_l2(&q, &decoded);
        let got = f64::from(l2_squared_u8(&q, &scale, &codes));
        assert!((got - expected).abs() <= 1e-4 * (1.0 + expected));
    }

    #[test]
    fn padding_rounds_up_to_lanes() {
        assert_eq!(padded(0), 0);
        assert_eq!(padded(1), 16);
        assert_eq!(padded(64), 64);
        assert_eq!(padded(65), 80);
    }
}
