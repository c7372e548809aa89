//! The ranker seam: every model that scores featurised candidates is a variant of one
//! enum with one interface. A GBDT, an imported LightGBM/XGBoost model or an ONNX
//! network is a new variant here, not edits in the pipeline, training and registry.

use serde::{Deserialize, Serialize};

use crate::{FeatureSchema, ImportedModel, LogisticRegression};

/// A trained ranker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Ranker {
    /// Logistic regression fitted by Newton/IRLS, calibrated.
    Logistic(LogisticRegression),
    /// A LightGBM or XGBoost model trained elsewhere, bound by a feature manifest.
    Imported(ImportedModel),
}

impl Ranker {
    /// The ranker's kind, as manifests name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Ranker::Logistic(_) => "logistic",
            Ranker::Imported(model) => model.kind(),
        }
    }

    /// The score of one feature vector (higher ranks first).
    pub fn predict(&self, features: &[f32]) -> f64 {
        match self {
            Ranker::Logistic(model) => model.predict(features),
            Ranker::Imported(model) => model.predict(features),
        }
    }

    /// The feature schema the ranker was trained on.
    pub fn schema(&self) -> &FeatureSchema {
        match self {
            Ranker::Logistic(model) => model.schema(),
            Ranker::Imported(model) => model.schema(),
        }
    }

    /// Whether feature vectors from today's [`crate::featurize`] fit this ranker.
    pub fn accepts_current_features(&self) -> bool {
        self.schema().is_current()
    }
}

impl From<LogisticRegression> for Ranker {
    fn from(model: LogisticRegression) -> Self {
        Ranker::Logistic(model)
    }
}

impl From<ImportedModel> for Ranker {
    fn from(model: ImportedModel) -> Self {
        Ranker::Imported(model)
    }
}
