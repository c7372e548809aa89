//! The catalog and the user directory: the latest version of every item and user,
//! derived from the log's upsert and delete records.

use flywheel_core::{Item, ItemId, User, UserId};
use flywheel_retrieval::ContentIndex;
use std::collections::HashMap;
use std::sync::Arc;

/// Items and users by id. Items are shared as `Arc` so a request can hold them
/// without copying while the consumer keeps applying changes.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    items: HashMap<ItemId, Arc<Item>>,
    users: HashMap<UserId, Arc<User>>,
}

impl Catalog {
    /// Inserts or replaces an item.
    pub fn upsert_item(&mut self, item: Item) {
        self.items.insert(item.id.clone(), Arc::new(item));
    }

    /// Removes an item; returns whether it existed.
    pub fn delete_item(&mut self, id: &ItemId) -> bool {
        self.items.remove(id).is_some()
    }

    /// Inserts or replaces a user.
    pub fn upsert_user(&mut self, user: User) {
        self.users.insert(user.id.clone(), Arc::new(user));
    }

    /// Removes a user; returns whether they existed.
    pub fn delete_user(&mut self, id: &UserId) -> bool {
        self.users.remove(id).is_some()
    }

    /// An item by id.
    pub fn item(&self, id: &ItemId) -> Option<&Arc<Item>> {
        self.items.get(id)
    }

    /// A user by id.
    pub fn user(&self, id: &UserId) -> Option<&Arc<User>> {
        self.users.get(id)
    }

    /// All items, in no particular order.
    pub fn items(&self) -> impl Iterator<Item = &Arc<Item>> {
        self.items.values()
    }

    /// All users, in no particular order.
    pub fn users(&self) -> impl Iterator<Item = &Arc<User>> {
        self.users.values()
    }

    /// Number of items.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// Number of users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The content index of the catalog's items. They are indexed in id order, so the
    /// same catalog always gives the same index, bit for bit, whatever the hash order:
    /// serving and training (which rebuilds it as of each row's moment) build it here.
    pub fn content_index(&self) -> ContentIndex {
        let mut items: Vec<&Arc<Item>> = self.items.values().collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        let items: Vec<Item> = items.into_iter().map(|i| Item::clone(i)).collect();
        ContentIndex::build(&items)
    }

    /// The top-level category of an item, if the item is known.
    pub fn category_of(&self, id: &ItemId) -> Option<&str> {
        self.items.get(id).map(|item| item.category.as_str())
    }
}
