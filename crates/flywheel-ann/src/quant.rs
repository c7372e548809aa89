//! Int8 scalar quantization of the stored vectors (like faiss' `SQ8`): per stored
//! coordinate `d`, `x[d] ≈ offset[d] + scale[d]·code[d]` with `code` in `0..=255` and the
//! range taken from the vectors present when quantization is enabled. Later vectors are
//! clamped into that range. The graph is navigated on codes (a quarter of the bytes
//! per visited node) and the best candidates are re-ranked in f32.
//!
//! Distances from an f32 query to a code are asymmetric (the query is not quantized):
//! squared L2 is `Σ (q[d] − offset[d] − scale[d]·code[d])²`, the inner product
//! `q·offset + Σ (q[d]·scale[d])·code[d]`, both with the per-query terms precomputed.

use serde::{Deserialize, Serialize};

use crate::error::{AnnError, Result};
use crate::kernels::{dot, dot_u8, l2_squared_u8};
use crate::metric::Metric;
use crate::store::VectorStore;

/// A query's precomputed terms for [`Int8Store::distance`].
#[derive(Debug, Clone)]
pub(crate) struct CodeQuery {
    values: Vec<f32>,
    constant: f32,
}

/// The codes of every stored row and how to decode them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Int8Store {
    inner_product: bool,
    stride: usize,
    offset: Vec<f32>,
    scale: Vec<f32>,
    codes: Vec<u8>,
}

impl Int8Store {
    /// Learns the ranges from `store` and encodes every row.
    pub fn train(store: &VectorStore) -> Self {
        let stride = store.stride();
        let mut low = vec![f32::INFINITY; stride];
        let mut high = vec![f32::NEG_INFINITY; stride];
        for node in 0..store.len() as u32 {
            for (d, value) in store.row(node).iter().enumerate() {
                low[d] = low[d].min(*value);
                high[d] = high[d].max(*value);
            }
        }
        let offset: Vec<f32> = low
            .iter()
            .map(|l| if l.is_finite() { *l } else { 0.0 })
            .collect();
        let scale = offset
            .iter()
            .zip(&high)
            .map(|(l, h)| {
                if h.is_finite() && h > l {
                    (h - l) / 255.0
                } else {
                    0.0
                }
            })
            .collect();
        let mut quantized = Self {
            inner_product: store.metric() == Metric::InnerProduct,
            stride,
            offset,
            scale,
            codes: Vec::with_capacity(store.len() * stride),
        };
        for node in 0..store.len() as u32 {
            quantized.push(store.row(node));
        }
        quantized
    }

    /// Encodes one stored row and appends it.
    pub fn push(&mut self, row: &[f32]) {
        for ((value, offset), scale) in row.iter().zip(&self.offset).zip(&self.scale) {
            let code = if *scale > 0.0 {
                ((value - offset) / scale).round().clamp(0.0, 255.0)
            } else {
                0.0
            };
            self.codes.push(code as u8);
        }
    }

    /// The per-query terms of a prepared (padded, transformed) query.
    pub fn prepare_query(&self, prepared: &[f32]) -> CodeQuery {
        if self.inner_product {
            CodeQuery {
                values: prepared
                    .iter()
                    .zip(&self.scale)
                    .map(|(q, s)| q * s)
                    .collect(),
                constant: dot(prepared, &self.offset),
            }
        } else {
            CodeQuery {
                values: prepared
                    .iter()
                    .zip(&self.offset)
                    .map(|(q, o)| q - o)
                    .collect(),
                constant: 0.0,
            }
        }
    }

    /// The approximate graph distance from `query` to `node`.
    #[inline]
    pub fn distance(&self, query: &CodeQuery, node: u32) -> f32 {
        let start = node as usize * self.stride;
        let codes = &self.codes[start..start + self.stride];
        if self.inner_product {
            -(query.constant + dot_u8(&query.values, codes))
        } else {
            l2_squared_u8(&query.values, &self.scale, codes)
        }
    }

    /// Loads the cache lines of `node`'s codes (see [`VectorStore::touch`]).
    #[inline]
    pub fn touch(&self, node: u32) {
        let start = node as usize * self.stride;
        crate::store::touch_lines(&self.codes[start..start + self.stride]);
    }

    /// Bytes held by the codes and ranges.
    pub fn bytes(&self) -> usize {
        self.codes.capacity() + 2 * self.stride * std::mem::size_of::<f32>()
    }

    /// Checks the invariants of a decoded store against the f32 rows it encodes.
    pub fn validate_decoded(&self, store: &VectorStore) -> Result<()> {
        if self.inner_product != (store.metric() == Metric::InnerProduct)
            || self.stride != store.stride()
            || self.offset.len() != self.stride
            || self.scale.len() != self.stride
            || self.codes.len() != store.len() * self.stride
        {
            return Err(AnnError::Corrupt(
                "int8 codes do not match the stored vectors".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decode_within_half_a_step() {
        let mut store = VectorStore::new(Metric::L2, 3).unwrap();
        let rows: [&[f32]; 3] = [&[0.0, -1.0, 5.0], &[1.0, 1.0, 5.0], &[0.3, 0.2, 5.0]];
        for row in rows {
            store.push(row);
        }
        let quantized = Int8Store::train(&store);
        let query = store.prepare_query(&[0.3, 0.2, 5.0]).unwrap();
        let shifted = quantized.prepare_query(&query);
        // Step sizes 1/255 and 2/255; the constant coordinate decodes exactly.
        let bound = 3.0 * (1.0f32 / 255.0).powi(2);
        assert!(quantized.distance(&shifted, 2) <= bound);
        let exact = store.internal_distance(&query, 0);
        assert!((quantized.distance(&shifted, 0) - exact).abs() < 0.02);
    }

    #[test]
    fn inner_product_codes_approximate_the_dot_product() {
        let mut store = VectorStore::new(Metric::InnerProduct, 2).unwrap();
        for row in [[0.0, -1.0], [2.0, 1.0], [1.0, 0.5]] {
            store.push(&row);
        }
        let quantized = Int8Store::train(&store);
        let query = store.prepare_query(&[1.0, 3.0]).unwrap();
        let codes = quantized.prepare_query(&query);
        for node in 0..3 {
            let exact = store.internal_distance(&query, node);
            assert!(
                (quantized.distance(&codes, node) - exact).abs() < 0.02,
                "node {node}"
            );
        }
    }
}
