//! Dense indices for ids, shared by every model: ids are stored once in a vector and
//! looked up through a hash map rebuilt on deserialisation.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use flywheel_core::ItemId;
use serde::{Deserialize, Serialize};

/// A bijection between ids and `0..len` indices. Serialises as the plain id list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<T>", into = "Vec<T>")]
#[serde(bound(
    serialize = "T: Serialize + Clone",
    deserialize = "T: Deserialize<'de> + Hash + Eq + Clone"
))]
pub struct IdIndex<T: Hash + Eq + Clone> {
    ids: Vec<T>,
    index: HashMap<T, usize>,
}

impl<T: Hash + Eq + Clone> From<Vec<T>> for IdIndex<T> {
    fn from(ids: Vec<T>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        IdIndex { ids, index }
    }
}

impl<T: Hash + Eq + Clone> From<IdIndex<T>> for Vec<T> {
    fn from(value: IdIndex<T>) -> Self {
        value.ids
    }
}

impl<T: Hash + Eq + Clone> IdIndex<T> {
    /// The index of `id`, if known.
    pub fn get(&self, id: &T) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The id at `index`.
    pub fn id(&self, index: usize) -> &T {
        &self.ids[index]
    }

    /// All ids by index.
    pub fn ids(&self) -> &[T] {
        &self.ids
    }

    /// How many ids there are.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl IdIndex<ItemId> {
    /// A per-index mask of the excluded items (unknown ids are ignored).
    pub fn mask(&self, exclude: &HashSet<ItemId>) -> Vec<bool> {
        let mut mask = vec![false; self.ids.len()];
        for id in exclude {
            if let Some(i) = self.get(id) {
                mask[i] = true;
            }
        }
        mask
    }

    /// Sums the weights of a history per known item index, dropping unknown items and
    /// non-finite weights; keeps only items with a positive total.
    pub fn history_weights(&self, history: &[(ItemId, f32)]) -> Vec<(usize, f32)> {
        let mut summed: Vec<(usize, f64)> = Vec::with_capacity(history.len());
        let mut position: HashMap<usize, usize> = HashMap::with_capacity(history.len());
        for (id, weight) in history {
            let Some(i) = self.get(id) else { continue };
            if !weight.is_finite() {
                continue;
            }
            let slot = *position.entry(i).or_insert_with(|| {
                summed.push((i, 0.0));
                summed.len() - 1
            });
            summed[slot].1 += f64::from(*weight);
        }
        summed
            .into_iter()
            .filter(|&(_, w)| w > 0.0 && (w as f32).is_finite())
            .map(|(i, w)| (i, w as f32))
            .collect()
    }

    /// Turns `(index, score)` pairs into `(ItemId, score)` pairs.
    pub fn name(&self, scored: Vec<(usize, f32)>) -> Vec<(ItemId, f32)> {
        scored
            .into_iter()
            .map(|(i, s)| (self.ids[i].clone(), s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_and_sums_histories() {
        let ids: IdIndex<ItemId> =
            vec![ItemId::new_unchecked("a"), ItemId::new_unchecked("b")].into();
        let json = serde_json::to_string(&ids).unwrap();
        assert_eq!(json, r#"["a","b"]"#);
        let back: IdIndex<ItemId> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get(&ItemId::new_unchecked("b")), Some(1));
        let history = [
            (ItemId::new_unchecked("b"), 1.0),
            (ItemId::new_unchecked("zz"), 1.0),
            (ItemId::new_unchecked("a"), f32::NAN),
            (ItemId::new_unchecked("b"), 2.0),
            (ItemId::new_unchecked("a"), -1.0),
        ];
        assert_eq!(back.history_weights(&history), vec![(1, 3.0)]);
    }
}
