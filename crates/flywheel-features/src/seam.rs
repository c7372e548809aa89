//! The online feature state seam: what the serving pipeline reads and what the
//! consumer writes, as two traits. [`crate::FeatureStore`] (in process) implements
//! both; a store shared by replicas (Redis) implements the same traits. Reads are
//! batched — one call for every candidate of a request — so a remote store answers a
//! request in one round trip, not one per candidate.

use flywheel_core::{ItemFeatures, ItemId, LogRecord, Timestamp, UserFeatures, UserId};

use crate::store::FeatureStore;

/// Reads of the online features, batched per request.
pub trait FeatureReader: Send + Sync {
    /// The user's features at `now` (unknown users get empty features).
    fn user_features(&self, user: &UserId, now: Timestamp) -> UserFeatures;
    /// The features of every item in `items`, in order, at `now` (unknown items get
    /// the priors).
    fn item_features_many(&self, items: &[&ItemId], now: Timestamp) -> Vec<ItemFeatures>;
    /// For every item in `items`, in order, its `k` strongest co-visitation neighbours.
    fn co_visited_many(&self, items: &[&ItemId], k: usize) -> Vec<Vec<(ItemId, f32)>>;
    /// The `k` most popular items at `now`, globally or in one top-level category.
    fn popular(&self, category: Option<&str>, now: Timestamp, k: usize) -> Vec<(ItemId, f32)>;
    /// The `k` most trending items at `now`, globally or in one top-level category.
    fn trending(&self, category: Option<&str>, now: Timestamp, k: usize) -> Vec<(ItemId, f32)>;
    /// Why the store cannot answer right now, if it cannot (a remote store that is down
    /// or slow): its reads then returned empty features and its last good popular and
    /// trending lists, and the request reports a fallback. The in-process store is
    /// always available.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// Writes to the online features: every log record goes through this one call, online
/// (the consumer) and offline (a replay), so a feature has one definition.
pub trait FeatureWriter {
    /// Applies one log record.
    fn apply_record(&mut self, record: &LogRecord);
}

impl FeatureReader for FeatureStore {
    fn user_features(&self, user: &UserId, now: Timestamp) -> UserFeatures {
        FeatureStore::user_features(self, user, now)
    }

    fn item_features_many(&self, items: &[&ItemId], now: Timestamp) -> Vec<ItemFeatures> {
        items
            .iter()
            .map(|item| self.item_features(item, now))
            .collect()
    }

    fn co_visited_many(&self, items: &[&ItemId], k: usize) -> Vec<Vec<(ItemId, f32)>> {
        items.iter().map(|item| self.co_visited(item, k)).collect()
    }

    fn popular(&self, category: Option<&str>, now: Timestamp, k: usize) -> Vec<(ItemId, f32)> {
        FeatureStore::popular(self, category, now, k)
    }

    fn trending(&self, category: Option<&str>, now: Timestamp, k: usize) -> Vec<(ItemId, f32)> {
        FeatureStore::trending(self, category, now, k)
    }
}

impl FeatureWriter for FeatureStore {
    fn apply_record(&mut self, record: &LogRecord) {
        FeatureStore::apply_record(self, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FeatureConfig;
    use flywheel_core::{Action, Event};

    #[test]
    fn batched_reads_equal_single_reads() {
        let mut store = FeatureStore::new(FeatureConfig::default());
        let at = Timestamp::from_secs(1_700_000_000);
        for (i, item) in ["a", "b", "a", "c"].iter().enumerate() {
            let event = Event {
                user_id: UserId::new_unchecked("u"),
                item_id: ItemId::new_unchecked(*item),
                action: Action::Click,
                value: None,
                timestamp: at.plus_millis(i as i64 * 1000),
                request_id: None,
                position: None,
                context: Default::default(),
            };
            FeatureWriter::apply_record(&mut store, &LogRecord::Event(event));
        }
        let ids: Vec<ItemId> = ["a", "b", "zz"]
            .iter()
            .map(|i| ItemId::new_unchecked(*i))
            .collect();
        let refs: Vec<&ItemId> = ids.iter().collect();
        let reader: &dyn FeatureReader = &store;
        let many = reader.item_features_many(&refs, at);
        let single: Vec<ItemFeatures> = ids.iter().map(|i| store.item_features(i, at)).collect();
        assert_eq!(many, single);
        let covis = reader.co_visited_many(&refs, 5);
        assert_eq!(covis[0], store.co_visited(&ids[0], 5));
        assert!(covis[2].is_empty());
    }
}
