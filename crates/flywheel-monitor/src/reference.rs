//! A model version's reference distributions: what its training window looked like,
//! feature by feature, and the calibration that turns its served score into P(click).
//!
//! Training builds it ([`ReferenceBuilder`]) and the registry stores it beside the
//! version as `reference.json`; the live window is compared with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ctr::CtrModel;
use crate::error::{MonitorError, Result};
use crate::reservoir::Reservoir;

/// The file format version of [`Reference`].
pub const REFERENCE_FORMAT: u32 = 1;

/// The name of the numeric "feature" that is the calibrated P(click) of a served item.
pub const PREDICTED_CTR: &str = "predicted_ctr";

/// The numeric event-level feature: for each engagement, the share of the user's
/// engagement history in the engaged item's top-level category just before it (low
/// when users engage outside their past tastes, as after a taste shift).
pub const ENGAGED_AFFINITY: &str = "engaged_category_affinity";

/// The category every value beyond `max_categories` is counted under.
pub const OTHER_CATEGORY: &str = "other";

/// The event-level categorical features, in report order.
pub const CATEGORICAL_FEATURES: &[&str] = &[
    "event_action",
    "event_item_category",
    "engaged_item_category",
    "event_device",
    "event_page",
    "served_item_category",
];

/// The calibrated P(click) of a served item: a logistic model of its features
/// ([`CtrModel`]), with the held-out evidence that it is calibrated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The model.
    pub model: CtrModel,
    /// Rows it was fitted on.
    pub rows: u64,
    /// Positive labels among them.
    pub positives: u64,
    /// Held-out rows (the latest groups of the slice, not fitted on).
    pub holdout_rows: u64,
    /// Their positive rate.
    pub holdout_positive_rate: f64,
    /// The model's mean P(click) on them.
    pub holdout_mean_predicted: f64,
}

impl Calibration {
    /// The calibrated P(click) of a served item from its features (`None` when they
    /// are missing).
    pub fn probability(&self, features: &[f32]) -> Option<f64> {
        self.model.probability(features)
    }
}

/// The reference distributions of one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// [`REFERENCE_FORMAT`].
    pub format: u32,
    /// The version it belongs to.
    pub version: String,
    /// First and last event time (ms) of the window it was taken from.
    pub window_ms: Option<[i64; 2]>,
    /// Which rows the served slice is (`impressions` or `top_10_of_interactions`).
    pub served_slice: String,
    /// Served-slice rows it was taken from.
    pub served_rows: u64,
    /// Per numeric feature, a uniform sample of its values on the served slice.
    pub numeric: BTreeMap<String, Vec<f64>>,
    /// Per categorical feature, counts per category.
    pub categorical: BTreeMap<String, BTreeMap<String, u64>>,
    /// Score → P(click), when the slice held both outcomes.
    pub calibration: Option<Calibration>,
}

impl Reference {
    /// Parses a reference file; a foreign format version is an error.
    pub fn from_json(bytes: &[u8]) -> Result<Reference> {
        let reference: Reference = serde_json::from_slice(bytes)
            .map_err(|e| MonitorError::InvalidParameter(format!("reference file: {e}")))?;
        if reference.format != REFERENCE_FORMAT {
            return Err(MonitorError::InvalidParameter(format!(
                "reference file has format {}, this build reads {REFERENCE_FORMAT}",
                reference.format
            )));
        }
        Ok(reference)
    }

    /// The file's bytes.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| MonitorError::InvalidParameter(e.to_string()))
    }
}

/// Counts per category, at most `max` categories (the rest under [`OTHER_CATEGORY`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CategoryCounts {
    /// The counts.
    pub counts: BTreeMap<String, u64>,
}

impl CategoryCounts {
    /// Counts one value.
    pub fn add(&mut self, value: &str, max: usize) {
        self.add_n(value, 1, max);
    }

    /// Counts a value `n` times.
    pub fn add_n(&mut self, value: &str, n: u64, max: usize) {
        if let Some(count) = self.counts.get_mut(value) {
            *count += n;
        } else if self.counts.len() + 1 < max {
            self.counts.insert(value.to_string(), n);
        } else {
            *self.counts.entry(OTHER_CATEGORY.to_string()).or_insert(0) += n;
        }
    }

    /// The total count.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Builds a [`Reference`] from the rows and events of a training window.
#[derive(Debug)]
pub struct ReferenceBuilder {
    names: Vec<String>,
    numeric: Vec<Reservoir>,
    predicted: Reservoir,
    engaged: Reservoir,
    categorical: BTreeMap<String, CategoryCounts>,
    max_categories: usize,
    window: Option<[i64; 2]>,
    rows: u64,
}

impl ReferenceBuilder {
    /// A builder for the numeric features `names` (in feature-vector order), keeping
    /// `size` values each.
    pub fn new(names: &[&str], size: usize, max_categories: usize, seed: u64) -> Self {
        let numeric = (0..names.len())
            .map(|i| Reservoir::new(size, seed ^ (i as u64 + 1).wrapping_mul(0x9e37)))
            .collect();
        ReferenceBuilder {
            names: names.iter().map(|n| n.to_string()).collect(),
            numeric,
            predicted: Reservoir::new(size, seed ^ 0xabcd),
            engaged: Reservoir::new(size, seed ^ 0xef01),
            categorical: BTreeMap::new(),
            max_categories,
            window: None,
            rows: 0,
        }
    }

    /// One served-slice row: its feature vector and its P(click), if calibrated.
    pub fn row(&mut self, features: &[f32], predicted: Option<f64>) {
        self.rows += 1;
        for (reservoir, value) in self.numeric.iter_mut().zip(features) {
            reservoir.offer(f64::from(*value));
        }
        if let Some(p) = predicted {
            self.predicted.offer(p);
        }
    }

    /// One engagement's [`ENGAGED_AFFINITY`].
    pub fn engaged_affinity(&mut self, value: f64) {
        self.engaged.offer(value);
    }

    /// One categorical value of `feature`.
    pub fn category(&mut self, feature: &str, value: &str) {
        self.category_n(feature, value, 1);
    }

    /// A categorical value of `feature`, `n` times.
    pub fn category_n(&mut self, feature: &str, value: &str, n: u64) {
        let max = self.max_categories;
        self.categorical
            .entry(feature.to_string())
            .or_default()
            .add_n(value, n, max);
    }

    /// Widens the window to include `at` (ms).
    pub fn saw_time(&mut self, at: i64) {
        self.window = Some(match self.window {
            None => [at, at],
            Some([from, to]) => [from.min(at), to.max(at)],
        });
    }

    /// The reference.
    pub fn finish(
        self,
        version: &str,
        served_slice: &str,
        calibration: Option<Calibration>,
    ) -> Reference {
        let mut numeric: BTreeMap<String, Vec<f64>> = self
            .names
            .into_iter()
            .zip(self.numeric)
            .map(|(name, r)| (name, r.values().to_vec()))
            .collect();
        if self.engaged.seen() > 0 {
            numeric.insert(ENGAGED_AFFINITY.to_string(), self.engaged.values().to_vec());
        }
        if self.predicted.seen() > 0 {
            numeric.insert(PREDICTED_CTR.to_string(), self.predicted.values().to_vec());
        }
        Reference {
            format: REFERENCE_FORMAT,
            version: version.to_string(),
            window_ms: self.window,
            served_slice: served_slice.to_string(),
            served_rows: self.rows,
            numeric,
            categorical: self
                .categorical
                .into_iter()
                .map(|(k, v)| (k, v.counts))
                .collect(),
            calibration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_round_trips_and_refuses_other_formats() {
        let mut builder = ReferenceBuilder::new(&["a", "b"], 10, 4, 1);
        builder.row(&[1.0, 2.0], Some(0.1));
        builder.category("event_action", "click");
        builder.saw_time(5);
        let reference = builder.finish("v1", "impressions", None);
        let bytes = reference.to_json().unwrap();
        assert_eq!(Reference::from_json(&bytes).unwrap(), reference);
        let mut other = reference.clone();
        other.format = 99;
        let err = Reference::from_json(&other.to_json().unwrap()).unwrap_err();
        assert!(err.to_string().contains("format 99"), "{err}");
        assert!(Reference::from_json(b"{").is_err());
    }

    #[test]
    fn categories_beyond_the_cap_are_other() {
        let mut counts = CategoryCounts::default();
        for value in ["a", "b", "c", "d", "a"] {
            counts.add(value, 3);
        }
        assert_eq!(counts.counts.get("a"), Some(&2));
        assert_eq!(counts.counts.get(OTHER_CATEGORY), Some(&2));
        assert_eq!(counts.total(), 5);
    }
}
