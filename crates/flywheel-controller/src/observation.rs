//! What the controller sees at one instant: a plain summary of the monitoring report
//! and of the registry, filled by whoever runs the controller (the engine, or a test).
//!
//! How to fill it from a live window of monitoring:
//! - [`DataQuality`]: the window's event counts and shares (unknown item ids, events
//!   with missing or null fields, events rejected at ingestion);
//! - [`FeatureDrift`]: one entry per feature the monitor compares with its training
//!   reference (PSI for categorical features, KS for numeric ones), with the threshold
//!   the monitor itself uses;
//! - [`PredictionDrift`]: mean observed CTR over mean predicted CTR on finalized
//!   labels, with the band inside which it is considered calibrated;
//! - the registry side: the serving version, the last version known to be good (the
//!   newest one whose training window overlaps no data-quality breach), whether a
//!   training job is running, and whether the serving version's training window
//!   overlaps a breach.

use flywheel_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{invalid_observation, Result};

/// One observation, at simulated (or wall-clock) time `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// When the window ends. Observations must arrive in time order.
    pub at: Timestamp,
    /// The data quality of the window.
    pub quality: DataQuality,
    /// Drift of each monitored feature against its training reference.
    #[serde(default)]
    pub features: Vec<FeatureDrift>,
    /// Prediction drift, when enough labels are final to measure it.
    #[serde(default)]
    pub prediction: Option<PredictionDrift>,
    /// The version serving now, if any.
    #[serde(default)]
    pub serving_version: Option<String>,
    /// The newest version trained on a window without a data-quality breach.
    #[serde(default)]
    pub last_good_version: Option<String>,
    /// Whether a training job is running now.
    #[serde(default)]
    pub training_running: bool,
    /// Whether the serving version was trained on a window that overlaps a
    /// data-quality breach (the reason to roll it back).
    #[serde(default)]
    pub serving_trained_on_breach: bool,
}

/// The data-quality figures of a window. Shares are of `events`, in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataQuality {
    /// Events seen in the window, accepted and rejected.
    pub events: u64,
    /// Share of events naming an item the catalog does not know.
    pub unknown_item_share: f64,
    /// Share of events with a missing or null field.
    pub missing_field_share: f64,
    /// Share of events refused at ingestion.
    pub rejected_share: f64,
}

/// Which drift statistic a figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatistic {
    /// Population stability index (categorical features).
    Psi,
    /// Kolmogorov–Smirnov statistic (numeric features).
    Ks,
}

/// One feature's drift against its training reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureDrift {
    /// The feature's name, as [`crate::DriftRule::watched_features`] names it.
    pub feature: String,
    /// Which statistic `value` is.
    pub statistic: DriftStatistic,
    /// The statistic (≥ 0).
    pub value: f64,
    /// The threshold the monitor uses for it (> 0); the controller's configured
    /// threshold for the statistic, when set, takes precedence.
    pub threshold: f64,
}

/// Observed over expected clicks, with its band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionDrift {
    /// Observed CTR over mean predicted CTR (1 = calibrated; ≥ 0).
    pub observed_over_expected: f64,
    /// The lowest calibrated value (< 1).
    pub band_low: f64,
    /// The highest calibrated value (> 1).
    pub band_high: f64,
}

fn check_share(field: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        return Ok(());
    }
    invalid_observation(field, "must be a share in [0, 1]")
}

impl Observation {
    /// Checks every figure, naming the first one that is not usable.
    pub fn validate(&self) -> Result<()> {
        self.quality.validate()?;
        for (index, drift) in self.features.iter().enumerate() {
            drift.validate(index)?;
        }
        if let Some(prediction) = &self.prediction {
            prediction.validate()?;
        }
        Ok(())
    }
}

impl DataQuality {
    fn validate(&self) -> Result<()> {
        check_share("quality.unknown_item_share", self.unknown_item_share)?;
        check_share("quality.missing_field_share", self.missing_field_share)?;
        check_share("quality.rejected_share", self.rejected_share)
    }
}

impl FeatureDrift {
    fn validate(&self, index: usize) -> Result<()> {
        if self.feature.trim().is_empty() {
            return invalid_observation(&format!("features[{index}].feature"), "is empty");
        }
        if !self.value.is_finite() || self.value < 0.0 {
            return invalid_observation(
                &format!("features[{index}].value"),
                "must be a finite number ≥ 0",
            );
        }
        if !self.threshold.is_finite() || self.threshold <= 0.0 {
            return invalid_observation(
                &format!("features[{index}].threshold"),
                "must be a finite number > 0",
            );
        }
        Ok(())
    }
}

impl PredictionDrift {
    fn validate(&self) -> Result<()> {
        let oe = self.observed_over_expected;
        if !oe.is_finite() || oe < 0.0 {
            return invalid_observation(
                "prediction.observed_over_expected",
                "must be a finite number ≥ 0",
            );
        }
        let band_ok = self.band_low.is_finite()
            && self.band_high.is_finite()
            && 0.0 < self.band_low
            && self.band_low < 1.0
            && 1.0 < self.band_high;
        if !band_ok {
            return invalid_observation(
                "prediction.band_low",
                "the band must satisfy 0 < band_low < 1 < band_high",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Observation {
        Observation {
            at: Timestamp::from_secs(1_000),
            quality: DataQuality {
                events: 500,
                unknown_item_share: 0.0,
                missing_field_share: 0.0,
                rejected_share: 0.0,
            },
            features: vec![FeatureDrift {
                feature: "category".into(),
                statistic: DriftStatistic::Psi,
                value: 0.01,
                threshold: 0.1,
            }],
            prediction: Some(PredictionDrift {
                observed_over_expected: 1.0,
                band_low: 0.8,
                band_high: 1.25,
            }),
            serving_version: Some("v1".into()),
            last_good_version: Some("v1".into()),
            training_running: false,
            serving_trained_on_breach: false,
        }
    }

    #[test]
    fn bad_figures_are_named() {
        assert!(healthy().validate().is_ok());
        let mut o = healthy();
        o.quality.missing_field_share = f64::NAN;
        let err = o.validate().unwrap_err().to_string();
        assert!(err.contains("quality.missing_field_share"), "{err}");
        let mut o = healthy();
        o.features[0].value = -1.0;
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("features[0].value"));
        let mut o = healthy();
        o.features[0].threshold = 0.0;
        assert!(o.validate().unwrap_err().to_string().contains("threshold"));
        let mut o = healthy();
        o.prediction = Some(PredictionDrift {
            observed_over_expected: 1.0,
            band_low: 1.2,
            band_high: 1.25,
        });
        assert!(o.validate().unwrap_err().to_string().contains("band"));
    }

    #[test]
    fn json_round_trips_and_refuses_unknown_fields() {
        let o = healthy();
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Observation>(&text).unwrap(), o);
        let bad = text.replace("\"training_running\"", "\"trainin\"");
        assert!(serde_json::from_str::<Observation>(&bad).is_err());
    }
}
