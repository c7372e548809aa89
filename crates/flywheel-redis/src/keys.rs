//! The store's key layout. Every key starts with the configured prefix:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:offset` | string | the next log offset to apply (the writer's position) |
//! | `P:items` | list | item ids; position = the item's index |
//! | `P:categories` | list | top-level categories; position = index |
//! | `P:u:USER` | string | bincode `UserState` |
//! | `P:b:USER` | string | bincode `BotTrack` (the bot rules' bucket and repeat run of the user) |
//! | `P:bots` | string | bincode `BotCounts` (what the bot rules judged and dropped; moves with the offset) |
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

    /// What every user's state key starts with.
    pub fn user_prefix(&self) -> String {
        format!("{}:u:", self.prefix)
    }

    /// The pattern matching every user's state key (for SCAN).
    pub fn user_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.user_prefix()))
    }

    /// What every user's bot-track key starts with.
    pub fn bot_track_prefix(&self) -> String {
        format!("{}:b:", self.prefix)
    }

    /// The pattern matching every user's bot-track key (for SCAN).
    pub fn bot_track_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.bot_track_prefix()))
    }

    /// One user's bot track (beside their state).
    pub fn bot_track(&self, user: &UserId) -> String {
        format!("{}:b:{}", self.prefix, user.as_str())
    }

    /// The bot rules' counts of the whole store.
    pub fn bot_counts(&self) -> String {
        format!("{}:bots", self.prefix)
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

/// `text` with the glob characters of a Redis MATCH pattern escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
