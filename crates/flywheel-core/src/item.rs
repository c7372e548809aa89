//! Items of the catalog.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::error::Result;
use crate::ids::ItemId;
use crate::json::ObjectReader;
use crate::time::Timestamp;

/// The longest category path we accept, in bytes.
const MAX_CATEGORY_LEN: usize = 256;

/// One item of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The item's id.
    pub id: ItemId,
    /// Its category; may be a path like `books/scifi`. Empty means uncategorised.
    #[serde(default)]
    pub category: String,
    /// Free tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Price in the shop's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A content vector computed elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// When the item entered the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Whether it can be recommended now.
    #[serde(default = "default_true")]
    pub available: bool,
    /// Free-form scalar attributes (brand, seller, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
}

fn default_true() -> bool {
    true
}

impl Item {
    const FIELDS: [&'static str; 10] = [
        "id",
        "category",
        "tags",
        "price",
        "title",
        "text",
        "embedding",
        "created_at",
        "available",
        "attributes",
    ];

    /// A minimal available item with a category.
    pub fn new(id: ItemId, category: impl Into<String>) -> Self {
        Item {
            id,
            category: category.into(),
            tags: Vec::new(),
            price: None,
            title: None,
            text: None,
            embedding: None,
            created_at: None,
            available: true,
            attributes: BTreeMap::new(),
        }
    }

    /// Parses and validates an item from JSON. `id_from_path` (from `PUT /v1/items/:id`)
    /// is used when the body has no `id`, and must match it when it does.
    pub fn from_json(value: &Value, id_from_path: Option<&str>) -> Result<Self> {
        let r = ObjectReader::new(value, &Self::FIELDS, "")?;
        let id = r.id_with_path(id_from_path)?;
        let category = r.string("category")?.unwrap_or_default();
        if category.len() > MAX_CATEGORY_LEN {
            return Err(r.invalid("category", "must be at most 256 bytes"));
        }
        let price = r.number("price")?;
        if price.is_some_and(|p| p < 0.0) {
            return Err(r.invalid("price", "must not be negative"));
        }
        Ok(Item {
            id: ItemId::parse("id", &id)?,
            category: category.trim_matches('/').to_string(),
            tags: r.string_list("tags")?,
            price,
            title: r.string("title")?,
            text: r.string("text")?,
            embedding: r.float_list("embedding")?,
            created_at: r.timestamp("created_at")?,
            available: r.boolean("available")?.unwrap_or(true),
            attributes: r.attributes("attributes")?,
        })
    }

    /// The top-level category: `books` for `books/scifi`.
    pub fn top_category(&self) -> &str {
        self.category.split('/').next().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_parses_with_path_id_and_round_trips() {
        let item = Item::from_json(
            &json!({"category": "/books/scifi/", "tags": ["space"], "price": 12.5,
                "created_at": 1700000000, "attributes": {"brand": "x", "pages": 300}}),
            Some("b1"),
        )
        .unwrap();
        assert_eq!(item.id.as_str(), "b1");
        assert_eq!(item.category, "books/scifi");
        assert_eq!(item.top_category(), "books");
        assert!(item.available);
        let back = Item::from_json(&serde_json::to_value(&item).unwrap(), None).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn bad_items_name_the_field() {
        let cases = [
            (json!({"id": "a", "price": -1}), "price"),
            (json!({"id": "a", "tags": [1]}), "tags[0]"),
            (json!({"id": "a", "embedding": "x"}), "embedding"),
            (json!({"id": "a", "attributes": {"k": [1]}}), "attributes.k"),
            (json!({"id": "a", "available": "yes"}), "available"),
            (json!({"category": "c"}), "id"),
            (json!({"id": "a", "sku": "c"}), "sku"),
        ];
        for (input, field) in cases {
            let err = Item::from_json(&input, None).unwrap_err();
            assert_eq!(err.field(), Some(field), "{input}: {err}");
        }
        let mismatch = Item::from_json(&json!({"id": "a"}), Some("b")).unwrap_err();
        assert_eq!(mismatch.field(), Some("id"));
    }
}
