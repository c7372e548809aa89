//! Reading an observation against a rule: where its figures sit (above the threshold,
//! between, under the lower threshold, or no evidence) and the evidence that says so.

use crate::config::{DriftRule, QualityRule};
use crate::decision::{Evidence, Threshold};
use crate::hysteresis::Level;
use crate::observation::{DataQuality, DriftStatistic, FeatureDrift, Observation, PredictionDrift};

/// A rule's reading of one observation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assessment {
    /// Where the figures sit.
    pub(crate) level: Level,
    /// The figures above their thresholds when `Above`, the figures under their lower
    /// thresholds when `Clear`, nothing otherwise.
    pub(crate) evidence: Vec<Evidence>,
}

/// One figure with its threshold and its lower threshold.
struct Check {
    signal: String,
    value: f64,
    threshold: f64,
    lower: f64,
}

impl Check {
    fn breach(&self) -> Evidence {
        self.evidence(Threshold::Above {
            limit: self.threshold,
        })
    }

    fn clear(&self) -> Evidence {
        self.evidence(Threshold::AtMost { limit: self.lower })
    }

    fn evidence(&self, threshold: Threshold) -> Evidence {
        Evidence {
            signal: self.signal.clone(),
            value: self.value,
            threshold,
        }
    }
}

/// Combines threshold checks and an optional band into one assessment.
fn combine(checks: &[Check], band: Option<BandCheck>) -> Assessment {
    if checks.is_empty() && band.is_none() {
        return Assessment {
            level: Level::Unknown,
            evidence: Vec::new(),
        };
    }
    let mut breaches: Vec<Evidence> = checks
        .iter()
        .filter(|c| c.value > c.threshold)
        .map(Check::breach)
        .collect();
    breaches.extend(band.as_ref().and_then(BandCheck::breach));
    if !breaches.is_empty() {
        return Assessment {
            level: Level::Above,
            evidence: breaches,
        };
    }
    let all_clear =
        checks.iter().all(|c| c.value <= c.lower) && band.as_ref().is_none_or(BandCheck::is_clear);
    if !all_clear {
        return Assessment {
            level: Level::Between,
            evidence: Vec::new(),
        };
    }
    let mut evidence: Vec<Evidence> = checks.iter().map(Check::clear).collect();
    evidence.extend(band.as_ref().map(BandCheck::clear));
    Assessment {
        level: Level::Clear,
        evidence,
    }
}

/// Reads the data-quality figures against the quality rule.
pub(crate) fn quality(rule: &QualityRule, quality: &DataQuality) -> Assessment {
    if quality.events < rule.min_events {
        return combine(&[], None);
    }
    let check = |signal: &str, value: f64, threshold: f64| Check {
        signal: signal.to_string(),
        value,
        threshold,
        lower: threshold * rule.clear_ratio,
    };
    let checks = [
        check(
            "unknown_item_share",
            quality.unknown_item_share,
            rule.unknown_item_share,
        ),
        check(
            "missing_field_share",
            quality.missing_field_share,
            rule.missing_field_share,
        ),
        check(
            "rejected_share",
            quality.rejected_share,
            rule.rejected_share,
        ),
    ];
    combine(&checks, None)
}

/// Reads the drift figures of the watched features and the prediction against the
/// drift rule.
pub(crate) fn drift(rule: &DriftRule, observation: &Observation) -> Assessment {
    let checks: Vec<Check> = observation
        .features
        .iter()
        .filter(|f| is_watched(rule, f))
        .map(|f| feature_check(rule, f))
        .collect();
    let band = observation
        .prediction
        .filter(|_| rule.prediction)
        .map(|p| BandCheck::new(&p, rule.clear_ratio));
    combine(&checks, band)
}

fn is_watched(rule: &DriftRule, feature: &FeatureDrift) -> bool {
    rule.watched_features.is_empty() || rule.watched_features.contains(&feature.feature)
}

fn feature_check(rule: &DriftRule, feature: &FeatureDrift) -> Check {
    let (name, configured) = match feature.statistic {
        DriftStatistic::Psi => ("psi", rule.psi_threshold),
        DriftStatistic::Ks => ("ks", rule.ks_threshold),
    };
    let threshold = configured.unwrap_or(feature.threshold);
    Check {
        signal: format!("{name}:{}", feature.feature),
        value: feature.value,
        threshold,
        lower: threshold * rule.clear_ratio,
    }
}

/// Observed/expected against its band, and against the band shrunk towards 1.
struct BandCheck {
    value: f64,
    low: f64,
    high: f64,
    inner_low: f64,
    inner_high: f64,
}

impl BandCheck {
    fn new(prediction: &PredictionDrift, clear_ratio: f64) -> BandCheck {
        BandCheck {
            value: prediction.observed_over_expected,
            low: prediction.band_low,
            high: prediction.band_high,
            inner_low: 1.0 - (1.0 - prediction.band_low) * clear_ratio,
            inner_high: 1.0 + (prediction.band_high - 1.0) * clear_ratio,
        }
    }

    fn breach(&self) -> Option<Evidence> {
        let outside = self.value < self.low || self.value > self.high;
        outside.then(|| {
            self.evidence(Threshold::Outside {
                low: self.low,
                high: self.high,
            })
        })
    }

    fn is_clear(&self) -> bool {
        (self.inner_low..=self.inner_high).contains(&self.value)
    }

    fn clear(&self) -> Evidence {
        self.evidence(Threshold::Inside {
            low: self.inner_low,
            high: self.inner_high,
        })
    }

    fn evidence(&self, threshold: Threshold) -> Evidence {
        Evidence {
            signal: "observed_over_expected".to_string(),
            value: self.value,
            threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::Timestamp;

    fn quality_of(unknown: f64, events: u64) -> DataQuality {
        DataQuality {
            events,
            unknown_item_share: unknown,
            missing_field_share: 0.0,
            rejected_share: 0.0,
        }
    }

    #[test]
    fn quality_levels_follow_both_thresholds_and_the_minimum_of_events() {
        let rule = QualityRule::default();
        let above = quality(&rule, &quality_of(0.2, 1_000));
        assert_eq!(above.level, Level::Above);
        assert_eq!(above.evidence.len(), 1);
        assert_eq!(above.evidence[0].signal, "unknown_item_share");
        assert_eq!(
            quality(&rule, &quality_of(0.04, 1_000)).level,
            Level::Between
        );
        let clear = quality(&rule, &quality_of(0.02, 1_000));
        assert_eq!(clear.level, Level::Clear);
        assert_eq!(clear.evidence.len(), 3);
        assert_eq!(quality(&rule, &quality_of(0.9, 10)).level, Level::Unknown);
    }

    fn observation(features: Vec<FeatureDrift>, oe: Option<f64>) -> Observation {
        Observation {
            at: Timestamp::from_secs(0),
            quality: quality_of(0.0, 1_000),
            features,
            prediction: oe.map(|v| PredictionDrift {
                observed_over_expected: v,
                band_low: 0.8,
                band_high: 1.25,
            }),
            serving_version: None,
            last_good_version: None,
            training_running: false,
            serving_trained_on_breach: false,
        }
    }

    fn psi(feature: &str, value: f64) -> FeatureDrift {
        FeatureDrift {
            feature: feature.into(),
            statistic: DriftStatistic::Psi,
            value,
            threshold: 0.1,
        }
    }

    #[test]
    fn drift_uses_the_configured_psi_threshold_and_only_watched_features() {
        let rule = DriftRule::default();
        // 0.13 is above the monitor's 0.1 but not above the configured 0.15.
        let o = observation(vec![psi("category", 0.13)], None);
        assert_eq!(drift(&rule, &o).level, Level::Between);
        let o = observation(vec![psi("category", 0.2)], None);
        let a = drift(&rule, &o);
        assert_eq!(a.level, Level::Above);
        assert_eq!(a.evidence[0].signal, "psi:category");
        let watched = DriftRule {
            watched_features: vec!["price".into()],
            ..DriftRule::default()
        };
        assert_eq!(drift(&watched, &o).level, Level::Unknown);
        let monitors = DriftRule {
            psi_threshold: None,
            ..DriftRule::default()
        };
        let o = observation(vec![psi("category", 0.12)], None);
        assert_eq!(drift(&monitors, &o).level, Level::Above);
    }

    #[test]
    fn prediction_outside_its_band_is_drift_and_clears_inside_the_shrunk_band() {
        let rule = DriftRule::default();
        let a = drift(&rule, &observation(Vec::new(), Some(0.7)));
        assert_eq!(a.level, Level::Above);
        assert_eq!(a.evidence[0].signal, "observed_over_expected");
        // Inside the band but outside [0.84, 1.2]: between.
        let between = drift(&rule, &observation(Vec::new(), Some(0.82)));
        assert_eq!(between.level, Level::Between);
        assert_eq!(
            drift(&rule, &observation(Vec::new(), Some(1.1))).level,
            Level::Clear
        );
        let ignored = DriftRule {
            prediction: false,
            ..DriftRule::default()
        };
        assert_eq!(
            drift(&ignored, &observation(Vec::new(), Some(0.5))).level,
            Level::Unknown
        );
    }
}
