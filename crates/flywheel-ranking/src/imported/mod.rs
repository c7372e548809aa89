//! Bring-your-own rankers: gradient-boosted tree models trained with LightGBM or
//! XGBoost in Python, evaluated here in pure Rust (no C++ library is linked).
//!
//! - [`ImportedBooster`] is a parsed model file ([`LightGbmModel`] from a LightGBM
//!   text file, [`XgBoostModel`] from an XGBoost JSON file). Its
//!   [`predict`](ImportedBooster::predict) takes a row in the model's own column order
//!   (NaN = missing) and returns what the library's `predict` returns: a probability for
//!   a binary objective, the raw score for a ranking objective. `flywheel ranker
//!   predict` uses it directly.
//! - [`ImportedModel`] is a booster bound to flywheel's features by a
//!   [`FeatureManifest`]; it scores the vectors of [`crate::featurize`] and is the
//!   [`crate::Ranker::Imported`] variant.
//!
//! Every error happens at load time: a truncated file, a file of the other format, an
//! unsupported objective, or a manifest naming a feature flywheel does not have.
//! ONNX models are not supported yet.

mod lightgbm;
mod manifest;
mod xgboost;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use lightgbm::{LightGbmModel, LightGbmOutput};
pub use manifest::FeatureManifest;
pub use xgboost::{XgBoostModel, XgBoostOutput};

use crate::{FeatureSchema, RankingError, Result};

/// The file formats an imported model can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelFormat {
    /// LightGBM's text format (`Booster.save_model("m.txt")`).
    #[serde(rename = "lightgbm")]
    LightGbm,
    /// XGBoost's JSON format (`Booster.save_model("m.json")`).
    #[serde(rename = "xgboost")]
    XgBoost,
}

impl ModelFormat {
    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::LightGbm => "lightgbm",
            ModelFormat::XgBoost => "xgboost",
        }
    }
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelFormat {
    type Err = RankingError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "lightgbm" => Ok(ModelFormat::LightGbm),
            "xgboost" => Ok(ModelFormat::XgBoost),
            other => Err(RankingError::BadParameter {
                field: "format",
                value: other.to_string(),
                hint: "expected lightgbm or xgboost (onnx is not supported yet)",
            }),
        }
    }
}

/// A parsed tree-ensemble model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImportedBooster {
    /// A LightGBM text model.
    LightGbm(LightGbmModel),
    /// An XGBoost JSON model.
    XgBoost(XgBoostModel),
}

impl ImportedBooster {
    /// Parses model text of the given format.
    pub fn parse(text: &str, format: ModelFormat) -> Result<Self> {
        match format {
            ModelFormat::LightGbm => LightGbmModel::parse(text).map(ImportedBooster::LightGbm),
            ModelFormat::XgBoost => XgBoostModel::parse(text).map(ImportedBooster::XgBoost),
        }
    }

    /// Reads and parses a model file; errors name the file.
    pub fn load(path: &Path, format: ModelFormat) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|error| RankingError::ModelFile {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| RankingError::ModelFile {
            path: path.display().to_string(),
            reason: format!(
                "it is not UTF-8 text, so not a {format} model file (binary formats such as \
                 XGBoost's .ubj are not supported: save the model as text/JSON)"
            ),
        })?;
        Self::parse(&text, format).map_err(|error| RankingError::ModelFile {
            path: path.display().to_string(),
            reason: error.to_string(),
        })
    }

    /// The file format.
    pub fn format(&self) -> ModelFormat {
        match self {
            ImportedBooster::LightGbm(_) => ModelFormat::LightGbm,
            ImportedBooster::XgBoost(_) => ModelFormat::XgBoost,
        }
    }

    /// The model's feature names, in its column order.
    pub fn feature_names(&self) -> &[String] {
        match self {
            ImportedBooster::LightGbm(model) => model.feature_names(),
            ImportedBooster::XgBoost(model) => model.feature_names(),
        }
    }

    /// The objective as the file names it.
    pub fn objective(&self) -> &str {
        match self {
            ImportedBooster::LightGbm(model) => model.objective(),
            ImportedBooster::XgBoost(model) => model.objective(),
        }
    }

    /// The number of trees.
    pub fn tree_count(&self) -> usize {
        match self {
            ImportedBooster::LightGbm(model) => model.tree_count(),
            ImportedBooster::XgBoost(model) => model.tree_count(),
        }
    }

    /// The library's prediction for one row in the model's column order (NaN = missing).
    pub fn predict(&self, row: &[f64]) -> f64 {
        match self {
            ImportedBooster::LightGbm(model) => model.predict(row),
            ImportedBooster::XgBoost(model) => f64::from(model.predict(row)),
        }
    }
}

/// An imported booster bound to flywheel's ranking features: the ranker seam's
/// [`crate::Ranker::Imported`] variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedModel {
    booster: ImportedBooster,
    /// For each model input, its index in the [`crate::featurize`] vector.
    inputs: Vec<usize>,
    schema: FeatureSchema,
}

impl ImportedModel {
    /// Binds a booster to flywheel's features through a manifest.
    pub fn new(booster: ImportedBooster, manifest: &FeatureManifest) -> Result<Self> {
        manifest.check_format(booster.format())?;
        let inputs = manifest.bind(booster.feature_names())?;
        Ok(ImportedModel {
            booster,
            inputs,
            schema: FeatureSchema::current(),
        })
    }

    /// Loads a model file and its manifest file.
    pub fn load(model: &Path, format: ModelFormat, manifest: &Path) -> Result<Self> {
        let manifest = FeatureManifest::load(manifest)?;
        Self::new(ImportedBooster::load(model, format)?, &manifest)
    }

    /// The ranker kind, as manifests name it: `imported_lightgbm` or `imported_xgboost`.
    pub fn kind(&self) -> &'static str {
        match self.booster.format() {
            ModelFormat::LightGbm => "imported_lightgbm",
            ModelFormat::XgBoost => "imported_xgboost",
        }
    }

    /// The booster.
    pub fn booster(&self) -> &ImportedBooster {
        &self.booster
    }

    /// For each model input, in the model's order, the index of the flywheel feature.
    pub fn inputs(&self) -> &[usize] {
        &self.inputs
    }

    /// The schema of the vectors it scores: today's [`crate::featurize`].
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// The score of one [`crate::featurize`] vector (a feature past its end is missing).
    pub fn predict(&self, features: &[f32]) -> f64 {
        let row: Vec<f64> = self
            .inputs
            .iter()
            .map(|&j| features.get(j).map_or(f64::NAN, |v| f64::from(*v)))
            .collect();
        self.booster.predict(&row)
    }
}

#[cfg(test)]
mod tests;
