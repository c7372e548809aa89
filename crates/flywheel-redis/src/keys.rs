//! The store's key layout. Every key starts with the configured prefix:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:offset` | string | the next log offset to apply (the writer's position) |
//! | `P:items` | list | item ids; position = the item's index |
//! | `P:categories` | list | top-level categories; position = index |
//! | `P:u:USER` | string | bincode `UserState` |
//! | `P:i:ITEM` | string | bincode `ItemState` |
//! | `P:n:ITEM` | string | bincode `Neighbors` (co-visitation) |
//! | `P:rank:popular:all`, `P:rank:popular:c:CAT` | sorted set | items by popularity key |
//! | `P:rank:trending:all`, `P:rank:trending:c:CAT` | sorted set | items by hourly engagement key |

use flywheel_core::{ItemId, UserId};
use flywheel_features::keyed::RankedList;

/// Builds the keys of one store.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    /// The pattern matching every key of the store (for SCAN).
    pub fn all_pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }

    /// The writer's position.
    pub fn offset(&self) -> String {
        format!("{}:offset", self.prefix)
    }

    /// The item table.
    pub fn items(&self) -> String {
        format!("{}:items", self.prefix)
    }

    /// The category table.
    pub fn categories(&self) -> String {
        format!("{}:categories", self.prefix)
    }

    /// One user's state.
    pub fn user(&self, user: &UserId) -> String {
        format!("{}:u:{}", self.prefix, user.as_str())
    }

    /// One item's state.
    pub fn item(&self, item: &ItemId) -> String {
        format!("{}:i:{}", self.prefix, item.as_str())
    }

    /// One item's co-visitation list.
    pub fn neighbors(&self, item: &ItemId) -> String {
        format!("{}:n:{}", self.prefix, item.as_str())
    }

    /// A ranked list, globally (`None`) or of one top-level category.
    pub fn ranked(&self, list: RankedList, category: Option<&str>) -> String {
        let name = match list {
            RankedList::Popular => "popular",
            RankedList::Trending => "trending",
        };
        match category {
            None => format!("{}:rank:{name}:all", self.prefix),
            Some(category) => format!("{}:rank:{name}:c:{category}", self.prefix),
        }
    }
}
