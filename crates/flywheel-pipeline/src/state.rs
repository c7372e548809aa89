//! The derived state: everything the log implies at one offset. The consumer thread
//! applies records to it online; training and evaluation apply the same records to a
//! fresh `State` offline. One `apply`, two uses.

use flywheel_core::LogRecord;
use flywheel_features::{FeatureConfig, FeatureReader, FeatureStore, FeatureWriter};

use crate::catalog::Catalog;

/// The catalog, the users and the online features, as of `applied` records. Its serde
/// form is canonical (maps in key order): two equal states give equal bytes, which is
/// what the engine's snapshots store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Items and users.
    pub catalog: Catalog,
    /// Online features.
    pub features: FeatureStore,
    /// How many log records have been applied: the next offset to apply.
    pub applied: u64,
}

impl State {
    /// An empty state, before any record.
    pub fn new(feature_config: FeatureConfig) -> Self {
        State {
            catalog: Catalog::default(),
            features: FeatureStore::new(feature_config),
            applied: 0,
        }
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
        &self.features
    }
}
