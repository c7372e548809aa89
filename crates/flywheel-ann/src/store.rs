//! Vectors in one flat, zero-padded `Vec<f32>` (row `i` at `i·stride`), normalized
//! for cosine (see [`crate::metric`]).

use serde::{Deserialize, Serialize};

use crate::error::{check_vector, AnnError, Result};
use crate::kernels::{dot, l2_squared, padded};
use crate::metric::Metric;

/// The stored vectors and the transform that made them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VectorStore {
    metric: Metric,
    dimension: usize,
    stride: usize,
    data: Vec<f32>,
}

impl VectorStore {
    /// An empty store.
    pub fn new(metric: Metric, dimension: usize) -> Result<Self> {
        if dimension == 0 {
            return Err(AnnError::InvalidParameter(
                "dimension must be at least 1".into(),
            ));
        }
        Ok(Self {
            metric,
            dimension,
            stride: padded(dimension),
            data: Vec::new(),
        })
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Values per stored row (padded).
    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.stride
    }

    /// Bytes held by the vectors.
    pub fn bytes(&self) -> usize {
        self.data.capacity() * std::mem::size_of::<f32>()
    }

    /// Stored row `node`.
    #[inline]
    pub fn row(&self, node: u32) -> &[f32] {
        let start = node as usize * self.stride;
        &self.data[start..start + self.stride]
    }

    /// Loads one value of each cache line of row `node` so that its misses overlap with
    /// other work (a software prefetch in safe code; the values are discarded).
    #[inline]
    pub fn touch(&self, node: u32) {
        touch_lines(self.row(node));
    }

    /// Checks every vector before any is stored (so a bad batch changes nothing).
    pub fn validate_batch<'a>(&self, mut vectors: impl Iterator<Item = &'a [f32]>) -> Result<()> {
        vectors.try_for_each(|vector| self.check(vector))
    }

    /// Errors unless `vector` can be stored or used as a query.
    pub fn check(&self, vector: &[f32]) -> Result<()> {
        check_vector(vector, self.dimension)?;
        if self.metric == Metric::Cosine && norm(vector) == 0.0 {
            return Err(AnnError::UnusableVector {
                metric: "cosine",
                reason: "a zero vector has no direction",
            });
        }
        Ok(())
    }

    /// Appends a vector already checked by [`Self::check`].
    pub fn push(&mut self, vector: &[f32]) {
        let start = self.data.len();
        self.data.resize(start + self.stride, 0.0);
        let row = &mut self.data[start..start + self.stride];
        let scale = match self.metric {
            Metric::Cosine => 1.0 / norm(vector),
            Metric::L2 | Metric::InnerProduct => 1.0,
        };
        for (slot, value) in row.iter_mut().zip(vector) {
            *slot = value * scale;
        }
    }

    /// A query transformed and padded like the stored rows (checked first).
    pub fn prepare_query(&self, query: &[f32]) -> Result<Vec<f32>> {
        self.check(query)?;
        let mut prepared = vec![0f32; self.stride];
        let scale = match self.metric {
            Metric::Cosine => 1.0 / norm(query),
            Metric::L2 | Metric::InnerProduct => 1.0,
        };
        for (slot, value) in prepared.iter_mut().zip(query) {
            *slot = value * scale;
        }
        Ok(prepared)
    }

    /// The graph's distance from a prepared query to row `node`.
    #[inline]
    pub fn internal_distance(&self, prepared: &[f32], node: u32) -> f32 {
        self.graph_distance(prepared, self.row(node))
    }

    /// The graph's distance between two stored (or prepared) rows.
    #[inline]
    pub fn graph_distance(&self, a: &[f32], b: &[f32]) -> f32 {
        if self.metric == Metric::InnerProduct {
            -dot(a, b)
        } else {
            l2_squared(a, b)
        }
    }

    /// The distance reported to callers, in the metric's own terms.
    #[inline]
    pub fn reported_distance(&self, prepared: &[f32], node: u32) -> f32 {
        let graph = self.internal_distance(prepared, node);
        match self.metric {
            Metric::Cosine => 0.5 * graph,
            Metric::L2 | Metric::InnerProduct => graph,
        }
    }

    /// Checks the invariants of a decoded store.
    pub fn validate_decoded(&self) -> Result<()> {
        let corrupt = |what: String| Err(AnnError::Corrupt(what));
        if self.dimension == 0 || self.stride != padded(self.dimension) {
            return corrupt(format!(
                "dimension {} and stride {} disagree",
                self.dimension, self.stride
            ));
        }
        if !self.data.len().is_multiple_of(self.stride) {
            return corrupt("vector data is not a whole number of rows".into());
        }
        if self.data.iter().any(|v| !v.is_finite()) {
            return corrupt("a stored vector value is not finite".into());
        }
        Ok(())
    }
}

/// Loads one element per 64-byte cache line of `values` (see [`VectorStore::touch`]).
#[inline]
pub(crate) fn touch_lines<T: Copy>(values: &[T]) {
    let per_line = (64 / std::mem::size_of::<T>()).max(1);
    for value in values.iter().step_by(per_line) {
        std::hint::black_box(*value);
    }
}

/// Euclidean norm.
pub(crate) fn norm(vector: &[f32]) -> f32 {
    dot(vector, vector).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_follow_the_metric() {
        let mut ip = VectorStore::new(Metric::InnerProduct, 2).unwrap();
        let mut cosine = VectorStore::new(Metric::Cosine, 2).unwrap();
        for item in [[3.0, 0.0], [1.0, 1.0]] {
            ip.push(&item);
            cosine.push(&item);
        }
        let query = ip.prepare_query(&[1.0, 0.5]).unwrap();
        assert_eq!(
            (
                ip.reported_distance(&query, 0),
                ip.reported_distance(&query, 1)
            ),
            (-3.0, -1.5)
        );
        let query = cosine.prepare_query(&[0.0, 2.0]).unwrap();
        assert!((cosine.reported_distance(&query, 0) - 1.0).abs() < 1e-6);
        assert!((cosine.reported_distance(&query, 1) - (1.0 - 0.5f32.sqrt())).abs() < 1e-6);
    }

    #[test]
    fn cosine_refuses_a_zero_vector_and_bad_values_are_named() {
        let store = VectorStore::new(Metric::Cosine, 2).unwrap();
        assert!(matches!(
            store.check(&[0.0, 0.0]),
            Err(AnnError::UnusableVector { .. })
        ));
        assert!(matches!(
            store.check(&[1.0]),
            Err(AnnError::DimensionMismatch {
                expected: 2,
                got: 1
            })
        ));
        assert!(matches!(
            store.check(&[1.0, f32::NAN]),
            Err(AnnError::NonFinite { position: 1, .. })
        ));
    }
}
