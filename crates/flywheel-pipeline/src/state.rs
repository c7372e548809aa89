//! The derived state: everything the log implies at one offset. The consumer thread
//! applies records to it online; training and evaluation apply the same records to a
//! fresh `State` offline. One `apply`, two uses.

use std::sync::Arc;

use flywheel_core::LogRecord;
use flywheel_features::{FeatureConfig, FeatureReader, FeatureStore, FeatureWriter};

use crate::catalog::Catalog;

/// The catalog, the users and the online features, as of `applied` records.
#[derive(Debug, Clone)]
pub struct State {
    /// Items and users.
    pub catalog: Catalog,
    /// Online features.
    pub features: FeatureStore,
    /// How many log records have been applied: the next offset to apply.
    pub applied: u64,
    /// A feature store shared by replicas (e.g. Redis) that serving reads instead of
    /// `features`; its own writer keeps it in step with the log.
    shared: Option<SharedFeatures>,
}

/// A shared feature store, behind the reading seam.
#[derive(Clone)]
pub struct SharedFeatures(pub Arc<dyn FeatureReader>);

impl std::fmt::Debug for SharedFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedFeatures(..)")
    }
}

impl State {
    /// An empty state, before any record.
    pub fn new(feature_config: FeatureConfig) -> Self {
        State {
            catalog: Catalog::default(),
            features: FeatureStore::new(feature_config),
            applied: 0,
            shared: None,
        }
    }

    /// Serving reads its features from `shared` from now on (the in-process store is
    /// still applied: monitoring and the catalog read it).
    pub fn with_shared_features(mut self, shared: Arc<dyn FeatureReader>) -> Self {
        self.shared = Some(SharedFeatures(shared));
        self
    }

    /// Applies one record. This is the only way state changes: the catalog takes
    /// upserts and deletes, and the features take every record through their one
    /// write path ([`FeatureWriter::apply_record`]).
    pub fn apply(&mut self, record: &LogRecord) {
        match record {
            LogRecord::ItemUpsert(item) => self.catalog.upsert_item(item.clone()),
            LogRecord::ItemDelete { id, .. } => {
                self.catalog.delete_item(id);
            }
            LogRecord::UserUpsert(user) => self.catalog.upsert_user(user.clone()),
            LogRecord::UserDelete { id, .. } => {
                self.catalog.delete_user(id);
            }
            // Experiments and their outcomes are the engine's ledger, not the state.
            LogRecord::Event(_)
            | LogRecord::Impression(_)
            | LogRecord::ShadowImpression(_)
            | LogRecord::ExperimentStart { .. }
            | LogRecord::ExperimentRamp { .. }
            | LogRecord::ExperimentStop { .. } => {}
        }
        FeatureWriter::apply_record(&mut self.features, record);
        self.applied += 1;
    }

    /// Counts a record that was skipped because it could not be decoded: the offset
    /// advances as if it had been applied, and nothing else changes.
    pub fn skip(&mut self) {
        self.applied += 1;
    }

    /// The online features, read through their seam.
    pub fn feature_reader(&self) -> &dyn FeatureReader {
        match &self.shared {
            Some(shared) => shared.0.as_ref(),
            None => &self.features,
        }
    }
}
