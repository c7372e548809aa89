//! Items of the catalog.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::error::Result;
use crate::ids::ItemId;
use crate::json::ObjectReader;
use crate::limits::{
    MAX_ATTRIBUTES, MAX_CATEGORY_BYTES, MAX_EMBEDDING_LEN, MAX_TAGS, MAX_TAG_BYTES, MAX_TEXT_BYTES,
    MAX_TITLE_BYTES,
};
use crate::time::Timestamp;

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
        if category.len() > MAX_CATEGORY_BYTES {
            return Err(r.invalid(
                "category",
                &format!("must be at most {MAX_CATEGORY_BYTES} bytes"),
            ));
        }
        let price = r.number("price")?;
        if price.is_some_and(|p| p < 0.0) {
            return Err(r.invalid("price", "must not be negative"));
        }
        Ok(Item {
            id: ItemId::parse("id", &id)?,
            category: category.trim_matches('/').to_string(),
            tags: r.string_list("tags", MAX_TAGS, MAX_TAG_BYTES)?,
            price,
            title: r.bounded_string("title", MAX_TITLE_BYTES)?,
            text: r.bounded_string("text", MAX_TEXT_BYTES)?,
            embedding: r.float_list("embedding", MAX_EMBEDDING_LEN)?,
            created_at: r.timestamp("created_at")?,
            available: r.boolean("available")?.unwrap_or(true),
            attributes: r.attributes("attributes", MAX_ATTRIBUTES)?,
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
    fn limits_are_inclusive_and_f32_extremes_fit() {
        let item = Item::from_json(
            &json!({"id": "a", "title": "t".repeat(1024), "tags": vec!["t"; 64],
                "embedding": [3.4028234e38, -3.4028234e38, 1e-50]}),
            None,
        )
        .unwrap();
        assert_eq!(item.embedding.unwrap()[0], f32::MAX);
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
            // Beyond f32: it would be stored as infinity, which JSON cannot carry.
            (json!({"id": "a", "embedding": [0.5, 1e39]}), "embedding[1]"),
            (json!({"id": "a", "embedding": [-1e39]}), "embedding[0]"),
            (json!({"id": "a", "title": "t".repeat(1025)}), "title"),
            (
                json!({"id": "a", "text": "t".repeat(64 * 1024 + 1)}),
                "text",
            ),
            (json!({"id": "a", "tags": vec!["t"; 65]}), "tags"),
            (json!({"id": "a", "tags": ["t".repeat(129)]}), "tags[0]"),
            (
                json!({"id": "a", "embedding": vec![0.5; 4097]}),
                "embedding",
            ),
            (
                json!({"id": "a", "attributes": {"k".repeat(129): 1}}),
                "attributes",
            ),
            (
                json!({"id": "a", "attributes": {"k": "v".repeat(1025)}}),
                "attributes.k",
            ),
        ];
        for (input, field) in cases {
            let err = Item::from_json(&input, None).unwrap_err();
            assert_eq!(err.field(), Some(field), "{input}: {err}");
        }
        let many: serde_json::Map<String, Value> =
            (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
        let err = Item::from_json(&json!({"id": "a", "attributes": many}), None).unwrap_err();
        assert_eq!(err.field(), Some("attributes"), "{err}");
        let mismatch = Item::from_json(&json!({"id": "a"}), Some("b")).unwrap_err();
        assert_eq!(mismatch.field(), Some("id"));
    }
}
