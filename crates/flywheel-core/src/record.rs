//! What the durable log stores: every change to the engine's state.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::ids::{ItemId, UserId};
use crate::impression::Impression;
use crate::item::Item;
use crate::time::Timestamp;
use crate::user::User;

/// One record of the event log. The log is the source of truth: replaying these in
/// order rebuilds the catalog, the users, the features and the training sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogRecord {
    /// A user event.
    Event(Event),
    /// An item was created or replaced.
    ItemUpsert(Item),
    /// An item was deleted.
    ItemDelete {
        /// The deleted item.
        id: ItemId,
        /// When.
        at: Timestamp,
    },
    /// A user was created or replaced.
    UserUpsert(User),
    /// A user was deleted.
    UserDelete {
        /// The deleted user.
        id: UserId,
        /// When.
        at: Timestamp,
    },
    /// A served list.
    Impression(Impression),
}

impl LogRecord {
    /// Encodes the record as the bytes stored in the log (compact JSON).
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain structs to a Vec cannot fail: no maps with
        // non-string keys, no failing Serialize impls.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes bytes read from the log.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// A short name of the record's kind, for `inspect` and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LogRecord::Event(_) => "event",
            LogRecord::ItemUpsert(_) => "item_upsert",
            LogRecord::ItemDelete { .. } => "item_delete",
            LogRecord::UserUpsert(_) => "user_upsert",
            LogRecord::UserDelete { .. } => "user_delete",
            LogRecord::Impression(_) => "impression",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Action;
    use crate::ids::{ItemId, UserId};

    #[test]
    fn records_round_trip_through_bytes() {
        let records = vec![
            LogRecord::Event(Event {
                user_id: UserId::new_unchecked("u"),
                item_id: ItemId::new_unchecked("i"),
                action: Action::Click,
                value: None,
                timestamp: Timestamp(1_000),
                request_id: None,
                position: Some(2),
                context: Default::default(),
            }),
            LogRecord::ItemUpsert(Item::new(ItemId::new_unchecked("i"), "books")),
            LogRecord::ItemDelete {
                id: ItemId::new_unchecked("i"),
                at: Timestamp(5),
            },
            LogRecord::UserDelete {
                id: UserId::new_unchecked("u"),
                at: Timestamp(6),
            },
        ];
        for r in records {
            assert_eq!(LogRecord::decode(&r.encode()).unwrap(), r);
        }
    }
}
