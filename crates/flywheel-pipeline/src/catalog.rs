//! The catalog and the user directory: the latest version of every item and user,
//! derived from the log's upsert and delete records.

use flywheel_core::{Item, ItemId, User, UserId};
use flywheel_retrieval::ContentIndex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
use std::sync::Arc;

/// Items and users by id. Items are shared as `Arc` so a request can hold them
/// without copying while the consumer keeps applying changes.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    items: HashMap<ItemId, Arc<Item>>,
    users: HashMap<UserId, Arc<User>>,
    /// Items per category path and per each of its ancestors (`books` and
    /// `books/scifi` for an item in `books/scifi`).
    categories: HashMap<String, usize>,
}

/// The stored form of a [`Catalog`]: items and users in id order, each as its JSON
/// (the wire form, which leaves optional fields out), so two equal catalogs give equal
/// bytes. The category counts are rebuilt from the items when it is read back.
#[derive(Serialize)]
struct CatalogImageRef<'a> {
    items: Vec<JsonRef<'a, Item>>,
    users: Vec<JsonRef<'a, User>>,
}

#[derive(Deserialize)]
struct CatalogImage {
    items: Vec<Json<Item>>,
    users: Vec<Json<User>>,
}

/// A value written as its JSON text.
#[derive(Serialize)]
#[serde(transparent)]
struct JsonRef<'a, T: Serialize>(#[serde(with = "flywheel_core::canonical::as_json")] &'a T);

/// A value read from its JSON text.
#[derive(Deserialize)]
#[serde(transparent)]
struct Json<T: serde::de::DeserializeOwned>(#[serde(with = "flywheel_core::canonical::as_json")] T);

impl Serialize for Catalog {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut items: Vec<&Item> = self.items.values().map(Arc::as_ref).collect();
        items.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut users: Vec<&User> = self.users.values().map(Arc::as_ref).collect();
        users.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        CatalogImageRef {
            items: items.into_iter().map(JsonRef).collect(),
            users: users.into_iter().map(JsonRef).collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Catalog {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let image = CatalogImage::deserialize(deserializer)?;
        let mut catalog = Catalog::default();
        for Json(item) in image.items {
            catalog.upsert_item(item);
        }
        for Json(user) in image.users {
            catalog.upsert_user(user);
        }
        Ok(catalog)
    }
}

/// `category` and its ancestors: `books/scifi/old`, `books/scifi`, `books`.
fn category_paths(category: &str) -> impl Iterator<Item = &str> {
    let ends = category
        .match_indices('/')
        .map(|(at, _)| at)
        .chain((!category.is_empty()).then_some(category.len()));
    ends.map(move |end| &category[..end])
}

/// Whether `category` is `path` or below it (`books/scifi` is in `books`, `bookshop` is not).
pub fn in_category(category: &str, path: &str) -> bool {
    category
        .strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Catalog {
    /// Inserts or replaces an item.
    pub fn upsert_item(&mut self, item: Item) {
        self.count_categories(&item.category, true);
        if let Some(old) = self.items.insert(item.id.clone(), Arc::new(item)) {
            self.count_categories(&old.category, false);
        }
    }

    /// Removes an item; returns whether it existed.
    pub fn delete_item(&mut self, id: &ItemId) -> bool {
        match self.items.remove(id) {
            Some(old) => {
                self.count_categories(&old.category, false);
                true
            }
            None => false,
        }
    }

    fn count_categories(&mut self, category: &str, add: bool) {
        for path in category_paths(category) {
            if add {
                *self.categories.entry(path.to_string()).or_default() += 1;
            } else if let Some(count) = self.categories.get_mut(path) {
                *count -= 1;
                if *count == 0 {
                    self.categories.remove(path);
                }
            }
        }
    }

    /// Whether some item is in the category `path` or below it.
    pub fn has_category(&self, path: &str) -> bool {
        self.categories.contains_key(path)
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

    /// The category path of an item, if the item is known.
    pub fn category_of(&self, id: &ItemId) -> Option<&str> {
        self.items.get(id).map(|item| item.category.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, category: &str) -> Item {
        Item::new(ItemId::new_unchecked(id), category)
    }

    #[test]
    fn categories_are_known_with_their_ancestors_while_an_item_is_in_them() {
        let mut catalog = Catalog::default();
        catalog.upsert_item(item("a", "books/scifi"));
        catalog.upsert_item(item("b", "books/history"));
        for path in ["books", "books/scifi", "books/history"] {
            assert!(catalog.has_category(path), "{path}");
        }
        for path in ["book", "books/sci", "scifi", "", "books/scifi/old"] {
            assert!(!catalog.has_category(path), "{path}");
        }
        catalog.upsert_item(item("a", "music"));
        assert!(!catalog.has_category("books/scifi"));
        assert!(catalog.has_category("books") && catalog.has_category("music"));
        catalog.delete_item(&ItemId::new_unchecked("b"));
        assert!(!catalog.has_category("books"));
        assert!(in_category("books/scifi", "books") && in_category("books", "books"));
        assert!(!in_category("bookshop", "books") && !in_category("books", "books/scifi"));
    }
}
