//! Train-set popularity, global and per category: the offline baseline and the
//! universal fallback. (Real-time trending lives in the features crate.)

use std::collections::{BTreeMap, HashSet};

use flywheel_core::{Item, ItemId};
use serde::{Deserialize, Serialize};

use crate::interactions::Interactions;
use crate::topk::TopK;

/// Items ranked by how many distinct users interacted with them in training.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PopularityModel {
    /// `(item, user count)`, most popular first (ties by first appearance).
    ranked: Vec<(ItemId, f32)>,
    /// Category (every prefix of a path: `books` and `books/scifi`) → ranked items.
    by_category: BTreeMap<String, Vec<(ItemId, f32)>>,
}

impl PopularityModel {
    /// Counts distinct users per item; `items` (possibly empty) supplies categories.
    pub fn train(data: &Interactions, items: &[Item]) -> PopularityModel {
        let counts: Vec<f32> = (0..data.num_items())
            .map(|i| data.by_item().row(i).len() as f32)
            .collect();
        let ranked: Vec<(ItemId, f32)> =
            TopK::of_scores(&counts, counts.len(), |i| counts[i] == 0.0)
                .into_iter()
                .map(|(i, c)| (data.item_ids()[i].clone(), c))
                .collect();
        let category_of: std::collections::HashMap<&ItemId, &str> = items
            .iter()
            .map(|item| (&item.id, item.category.as_str()))
            .collect();
        let mut by_category: BTreeMap<String, Vec<(ItemId, f32)>> = BTreeMap::new();
        for (id, count) in &ranked {
            let Some(category) = category_of.get(id).filter(|c| !c.is_empty()) else {
                continue;
            };
            for prefix in category_prefixes(category) {
                by_category
                    .entry(prefix.to_string())
                    .or_default()
                    .push((id.clone(), *count));
            }
        }
        PopularityModel {
            ranked,
            by_category,
        }
    }

    /// The `k` most popular items not in `exclude`.
    pub fn recommend(&self, k: usize, exclude: &HashSet<ItemId>) -> Vec<(ItemId, f32)> {
        take_unexcluded(&self.ranked, k, exclude)
    }

    /// The `k` most popular items of `category` (a path prefix such as `books` covers
    /// `books/scifi`) not in `exclude`; empty for an unknown category.
    pub fn recommend_in_category(
        &self,
        category: &str,
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32)> {
        let key = category.trim_matches('/');
        self.by_category
            .get(key)
            .map(|ranked| take_unexcluded(ranked, k, exclude))
            .unwrap_or_default()
    }

    /// The number of training users of `item` (0 when unseen).
    pub fn count(&self, item: &ItemId) -> f32 {
        self.ranked
            .iter()
            .find(|(id, _)| id == item)
            .map_or(0.0, |(_, c)| *c)
    }
}

fn category_prefixes(category: &str) -> impl Iterator<Item = &str> {
    category
        .match_indices('/')
        .map(|(i, _)| &category[..i])
        .chain(std::iter::once(category))
}

fn take_unexcluded(
    ranked: &[(ItemId, f32)],
    k: usize,
    exclude: &HashSet<ItemId>,
) -> Vec<(ItemId, f32)> {
    ranked
        .iter()
        .filter(|(id, _)| !exclude.contains(id))
        .take(k)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::UserId;

    #[test]
    fn ranks_by_distinct_users_globally_and_per_category_prefix() {
        let pairs = [
            ("u1", "a"),
            ("u2", "a"),
            ("u3", "a"),
            ("u1", "b"),
            ("u2", "b"),
            ("u1", "c"),
        ];
        let data = Interactions::from_triples(
            pairs
                .iter()
                .map(|(u, i)| (UserId::new_unchecked(*u), ItemId::new_unchecked(*i), 5.0)),
        );
        let item = |id: &str, cat: &str| Item::new(ItemId::new_unchecked(id), cat);
        let items = [
            item("a", "books/scifi"),
            item("b", "music"),
            item("c", "books/poetry"),
        ];
        let model = PopularityModel::train(&data, &items);
        let ids = |v: Vec<(ItemId, f32)>| {
            v.into_iter()
                .map(|(i, _)| i.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(model.recommend(10, &HashSet::new())), ["a", "b", "c"]);
        let no_a = HashSet::from([ItemId::new_unchecked("a")]);
        assert_eq!(ids(model.recommend(1, &no_a)), ["b"]);
        assert_eq!(
            ids(model.recommend_in_category("books", 5, &HashSet::new())),
            ["a", "c"]
        );
        assert_eq!(
            ids(model.recommend_in_category("/books/poetry/", 5, &HashSet::new())),
            ["c"]
        );
        assert!(model
            .recommend_in_category("films", 5, &HashSet::new())
            .is_empty());
        assert_eq!(model.count(&ItemId::new_unchecked("b")), 2.0);
    }
}
