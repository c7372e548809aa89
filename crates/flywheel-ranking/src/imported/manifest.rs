//! The feature manifest: which of flywheel's ranking features feeds each input of an
//! imported model.
//!
//! A manifest is a JSON object:
//!
//! ```json
//! {
//!   "format": "lightgbm",
//!   "features": {
//!     "affinity": "user_category_affinity",
//!     "ctr": "item_ctr_log_odds"
//!   }
//! }
//! ```
//!
//! `features` maps a model feature name to a name of [`crate::FEATURE_NAMES`]; a model
//! feature that already carries a flywheel name needs no entry. `format` (`lightgbm` or
//! `xgboost`) is optional and, when given, must agree with the format the model is
//! loaded as. Unknown keys, a flywheel name that does not exist, a model feature left
//! unmapped and an entry for a feature the model does not have are all refused.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ModelFormat;
use crate::{RankingError, Result, FEATURE_NAMES};

/// How an imported model's inputs are taken from flywheel's feature vector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureManifest {
    /// The model's format, if the manifest names it.
    #[serde(default)]
    pub format: Option<ModelFormat>,
    /// Model feature name → flywheel feature name.
    #[serde(default)]
    pub features: BTreeMap<String, String>,
}

impl FeatureManifest {
    /// Parses a manifest from JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|error| RankingError::BadManifest {
            reason: error.to_string(),
        })
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| RankingError::BadManifest {
            reason: format!("cannot read {}: {error}", path.display()),
        })?;
        Self::from_json(&text).map_err(|error| match error {
            RankingError::BadManifest { reason } => RankingError::BadManifest {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    /// For each model feature, in the model's order, its index in [`FEATURE_NAMES`].
    pub fn bind(&self, model_features: &[String]) -> Result<Vec<usize>> {
        for mapped in self.features.keys() {
            if !model_features.contains(mapped) {
                return Err(RankingError::BadManifest {
                    reason: format!(
                        "it maps `{mapped}`, which is not a feature of the model (the model's features: {})",
                        model_features.join(", ")
                    ),
                });
            }
        }
        model_features
            .iter()
            .map(|name| self.flywheel_index(name))
            .collect()
    }

    fn flywheel_index(&self, model_feature: &str) -> Result<usize> {
        let target = self
            .features
            .get(model_feature)
            .map(String::as_str)
            .unwrap_or(model_feature);
        match FEATURE_NAMES.iter().position(|name| *name == target) {
            Some(index) => Ok(index),
            None if self.features.contains_key(model_feature) => {
                Err(RankingError::UnknownFeature {
                    model_feature: model_feature.to_string(),
                    feature: target.to_string(),
                })
            }
            None => Err(RankingError::BadManifest {
                reason: format!(
                    "model feature `{model_feature}` is not one of flywheel's features and the manifest \
                     does not map it: add \"{model_feature}\": \"<flywheel feature>\" to `features`"
                ),
            }),
        }
    }

    /// Refuses a manifest whose `format` contradicts the format the model is read as.
    pub fn check_format(&self, format: ModelFormat) -> Result<()> {
        match self.format {
            Some(declared) if declared != format => Err(RankingError::BadManifest {
                reason: format!("it says the model is {declared}, but it is loaded as {format}"),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn maps_model_names_and_keeps_flywheel_names() {
        let manifest = FeatureManifest::from_json(
            r#"{"format": "xgboost", "features": {"aff": "user_category_affinity"}}"#,
        )
        .unwrap();
        let bound = manifest
            .bind(&names(&["item_ctr_log_odds", "aff"]))
            .unwrap();
        assert_eq!(bound, vec![1, 0]);
        assert_eq!(manifest.format, Some(ModelFormat::XgBoost));
    }

    #[test]
    fn a_feature_flywheel_lacks_is_named() {
        let manifest = FeatureManifest::from_json(r#"{"features": {"aff": "user_mood"}}"#).unwrap();
        let error = manifest.bind(&names(&["aff"])).unwrap_err();
        assert_eq!(
            error,
            RankingError::UnknownFeature {
                model_feature: "aff".into(),
                feature: "user_mood".into()
            }
        );
        assert!(error.to_string().contains("`user_mood`"), "{error}");
    }

    #[test]
    fn an_unmapped_model_feature_is_named() {
        let error = FeatureManifest::default()
            .bind(&names(&["user_category_affinity", "colour"]))
            .unwrap_err();
        assert!(error.to_string().contains("`colour`"), "{error}");
    }

    #[test]
    fn an_entry_for_a_feature_the_model_lacks_is_refused() {
        let manifest =
            FeatureManifest::from_json(r#"{"features": {"typo": "item_price_log1p"}}"#).unwrap();
        let error = manifest.bind(&names(&["item_price_log1p"])).unwrap_err();
        assert!(error.to_string().contains("`typo`"), "{error}");
    }

    #[test]
    fn unknown_keys_and_formats_are_refused() {
        let error = FeatureManifest::from_json(r#"{"feature": {}}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `feature`"),
            "{error}"
        );
        let error = FeatureManifest::from_json(r#"{"format": "onnx"}"#).unwrap_err();
        assert!(error.to_string().contains("onnx"), "{error}");
        let manifest = FeatureManifest::from_json(r#"{"format": "lightgbm"}"#).unwrap();
        assert!(manifest.check_format(ModelFormat::XgBoost).is_err());
        assert!(manifest.check_format(ModelFormat::LightGbm).is_ok());
    }
}
