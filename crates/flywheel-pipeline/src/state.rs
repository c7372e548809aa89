//! The derived state: everything the log implies at one offset. The consumer thread
//! applies records to it online; training and evaluation apply the same records to a
//! fresh `State` offline. One `apply`, two uses.

use std::sync::Arc;

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
    /// A feature store shared by replicas (e.g. Redis) that serving reads instead of
    /// `features`; its own writer keeps it in step with the log. Not part of a
    /// snapshot: the engine re-attaches it at start-up.
    #[serde(skip)]
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

    /// Replaces this state with `restored` (e.g. a snapshot read back), keeping the
    /// shared feature store this one serves from (a snapshot never holds it).
    pub fn restore(&mut self, restored: State) {
        let shared = self.shared.take();
        *self = restored;
        self.shared = shared;
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
            | LogRecord::ExperimentStop { .. }
            // An erasure's marker and placeholders: the erasure itself removed the user
            // from the state (`State::erase_user`), and a replay never sees them.
            | LogRecord::UserErase { .. }
            | LogRecord::Erased { .. } => {}
        }
        FeatureWriter::apply_record(&mut self.features, record);
        self.applied += 1;
    }

    /// Erasure (GDPR): removes the user from the catalog and the features at once, the
    /// one change that does not come from a record (the user's records are being
    /// compacted out of the log, so a replay never sees them). Returns whether the state
    /// knew the user.
    pub fn erase_user(&mut self, user: &flywheel_core::UserId) -> bool {
        let in_catalog = self.catalog.delete_user(user);
        let in_features = self.features.knows_user(user);
        self.features.forget_user(user);
        in_catalog || in_features
    }

    /// Whether the state knows the user: in the catalog or from their events and lists.
    pub fn knows_user(&self, user: &flywheel_core::UserId) -> bool {
        self.catalog.user(user).is_some() || self.features.knows_user(user)
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
