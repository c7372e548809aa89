//! Feeding log records to the store: the live consumer and offline replay "as of"
//! a moment share this one function.

use flywheel_core::{LogRecord, Timestamp};

use crate::config::FeatureConfig;
use crate::keyed;
use crate::store::FeatureStore;

impl FeatureStore {
    /// Applies one log record: events (unless the bot rules drop them) and impressions
    /// as such, item upserts set the item's category, user deletions forget the user;
    /// other records carry no feature. The code is [`keyed::apply_record_to`], which a
    /// remote store (Redis) runs too.
    pub fn apply_record(&mut self, record: &LogRecord) {
        let mut partners = self.take_partners();
        keyed::apply_record_to(self, record, &mut partners);
        self.put_partners(partners);
    }
}

/// Builds a store from a prefix of the log, e.g. the records before an impression's
/// `features_offset`. Reading it at the impression's timestamp gives exactly the
/// features the live store served, late events included: the strongest parity check.
pub fn replay<'a>(
    records: impl IntoIterator<Item = &'a LogRecord>,
    config: FeatureConfig,
) -> FeatureStore {
    let mut store = FeatureStore::new(config);
    for record in records {
        store.apply_record(record);
    }
    store
}

/// Whether a record belongs to the past of `cut`: events and impressions strictly
/// before it; catalog and user records (which carry no event time) always, in log order.
pub fn is_before(record: &LogRecord, cut: Timestamp) -> bool {
    match record {
        LogRecord::Event(event) => event.timestamp < cut,
        LogRecord::Impression(impression) | LogRecord::ShadowImpression(impression) => {
            impression.timestamp < cut
        }
        LogRecord::ExperimentStart { at, .. }
        | LogRecord::ExperimentRamp { at, .. }
        | LogRecord::ExperimentStop { at, .. } => *at < cut,
        LogRecord::ItemUpsert(_)
        | LogRecord::ItemDelete { .. }
        | LogRecord::UserUpsert(_)
        | LogRecord::UserDelete { .. }
        | LogRecord::UserErase { .. }
        | LogRecord::Erased { .. } => true,
    }
}

/// Rebuilds the store "as of" `cut` by replaying the log in log order and applying
/// only the records that [`is_before`] `cut`: a training row for an impression at
/// `cut` sees no event at or after it. For a log whose event times never decrease,
/// the result equals the live store just before the first record at `cut`. An event
/// that arrived late (written after `cut` with an earlier time) is seen by the replay
/// but was not by the live store; [`replay`] the prefix before the impression's
/// `features_offset` when exact parity matters.
pub fn replay_as_of<'a>(
    records: impl IntoIterator<Item = &'a LogRecord>,
    cut: Timestamp,
    config: FeatureConfig,
) -> FeatureStore {
    let mut store = FeatureStore::new(config);
    for record in records.into_iter().filter(|r| is_before(r, cut)) {
        store.apply_record(record);
    }
    store
}
