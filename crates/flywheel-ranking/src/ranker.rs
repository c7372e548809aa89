//! The ranker seam: every model that scores featurised candidates is a variant of one
//! enum with one interface. A GBDT, an imported LightGBM/XGBoost model or an ONNX
//! network is a new variant here, not edits in the pipeline, training and registry.

use serde::{Deserialize, Serialize};

use crate::{FeatureSchema, GbdtModel, ImportedModel, LogisticRegression};

/// A trained ranker. Stored with bincode, which names variants by position: new
/// variants go at the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Ranker {
    /// Logistic regression fitted by Newton/IRLS, calibrated.
    Logistic(LogisticRegression),
    /// Gradient-boosted trees (LambdaMART scores, or binary probabilities).
    Gbdt(GbdtModel),
    /// A LightGBM or XGBoost model trained elsewhere, bound by a feature manifest.
    Imported(ImportedModel),
}

impl Ranker {
    /// The ranker's kind, as manifests name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Ranker::Logistic(_) => "logistic",
            Ranker::Gbdt(_) => "gbdt",
            Ranker::Imported(model) => model.kind(),
        }
    }

    /// The score of one feature vector (higher ranks first).
    pub fn predict(&self, features: &[f32]) -> f64 {
        match self {
            Ranker::Logistic(model) => model.predict(features),
            Ranker::Gbdt(model) => model.predict(features),
            Ranker::Imported(model) => model.predict(features),
        }
    }

    /// Whether [`Ranker::predict`] is a probability (a ranking score is only an order).
    pub fn predicts_probability(&self) -> bool {
        match self {
            Ranker::Logistic(_) => true,
            Ranker::Gbdt(model) => model.objective() == crate::GbdtObjective::Binary,
            Ranker::Imported(model) => model.booster().objective().starts_with("binary"),
        }
    }

    /// The feature schema the ranker was trained on.
    pub fn schema(&self) -> &FeatureSchema {
        match self {
            Ranker::Logistic(model) => model.schema(),
            Ranker::Gbdt(model) => model.schema(),
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

impl From<GbdtModel> for Ranker {
    fn from(model: GbdtModel) -> Self {
        Ranker::Gbdt(model)
    }
}

impl From<ImportedModel> for Ranker {
    fn from(model: ImportedModel) -> Self {
        Ranker::Imported(model)
    }
}
