//! The training input of every model: a sparse user × item matrix of summed weights.

use std::collections::HashMap;

use flywheel_core::{ItemId, UserId};
use serde::{Deserialize, Serialize};

/// A compressed sparse row matrix: row `r` holds `(column, weight)` pairs
/// `entries[offsets[r]..offsets[r + 1]]`, sorted by column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseRows {
    offsets: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl SparseRows {
    /// Builds rows from `(row, column, weight)` triples already sorted by (row, column).
    fn from_sorted(rows: usize, triples: &[(u32, u32, f32)]) -> Self {
        let mut offsets = vec![0usize; rows + 1];
        for &(r, _, _) in triples {
            offsets[r as usize + 1] += 1;
        }
        for r in 0..rows {
            offsets[r + 1] += offsets[r];
        }
        let entries = triples.iter().map(|&(_, c, w)| (c, w)).collect();
        SparseRows { offsets, entries }
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The `(column, weight)` pairs of row `row` (empty when out of range).
    pub fn row(&self, row: usize) -> &[(u32, f32)] {
        match (self.offsets.get(row), self.offsets.get(row + 1)) {
            (Some(&start), Some(&end)) => &self.entries[start..end],
            _ => &[],
        }
    }
}

/// Implicit feedback as a sparse matrix, indexed both by user and by item.
///
/// Built from `(user, item, weight)` triples; the weights of duplicate pairs add up.
/// Triples with a non-finite weight are dropped (and counted), and pairs whose summed
/// weight is not positive are left out, so every stored weight is finite and > 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interactions {
    user_ids: Vec<UserId>,
    item_ids: Vec<ItemId>,
    by_user: SparseRows,
    by_item: SparseRows,
    dropped_non_finite: usize,
}

impl Interactions {
    /// Builds the matrix from `(user, item, weight)` triples. Duplicate pairs add.
    pub fn from_triples(iter: impl IntoIterator<Item = (UserId, ItemId, f32)>) -> Self {
        let mut users = Indexer::default();
        let mut items = Indexer::default();
        let mut summed: HashMap<(u32, u32), f64> = HashMap::new();
        let mut dropped_non_finite = 0;
        for (user, item, weight) in iter {
            if !weight.is_finite() {
                dropped_non_finite += 1;
                continue;
            }
            let key = (users.index_of(user), items.index_of(item));
            *summed.entry(key).or_insert(0.0) += f64::from(weight);
        }
        let mut triples: Vec<(u32, u32, f32)> = summed
            .into_iter()
            .filter(|&(_, w)| w > 0.0 && (w as f32).is_finite())
            .map(|((u, i), w)| (u, i, w as f32))
            .collect();
        Self::assemble(users.ids, items.ids, &mut triples, dropped_non_finite)
    }

    fn assemble(
        user_ids: Vec<UserId>,
        item_ids: Vec<ItemId>,
        triples: &mut [(u32, u32, f32)],
        dropped_non_finite: usize,
    ) -> Self {
        triples.sort_unstable_by_key(|&(u, i, _)| (u, i));
        let by_user = SparseRows::from_sorted(user_ids.len(), triples);
        for t in triples.iter_mut() {
            *t = (t.1, t.0, t.2);
        }
        triples.sort_unstable_by_key(|&(i, u, _)| (i, u));
        let by_item = SparseRows::from_sorted(item_ids.len(), triples);
        Interactions {
            user_ids,
            item_ids,
            by_user,
            by_item,
            dropped_non_finite,
        }
    }

    /// The users, by dense index.
    pub fn user_ids(&self) -> &[UserId] {
        &self.user_ids
    }

    /// The items, by dense index.
    pub fn item_ids(&self) -> &[ItemId] {
        &self.item_ids
    }

    /// The number of users (including users whose every pair was dropped).
    pub fn num_users(&self) -> usize {
        self.user_ids.len()
    }

    /// The number of items (including items whose every pair was dropped).
    pub fn num_items(&self) -> usize {
        self.item_ids.len()
    }

    /// The number of stored (user, item) pairs.
    pub fn num_pairs(&self) -> usize {
        self.by_user.entries.len()
    }

    /// How many input triples were dropped because their weight was NaN or infinite.
    pub fn dropped_non_finite(&self) -> usize {
        self.dropped_non_finite
    }

    /// The matrix by user: row `u` lists `(item_index, weight)`.
    pub fn by_user(&self) -> &SparseRows {
        &self.by_user
    }

    /// The matrix by item: row `i` lists `(user_index, weight)`.
    pub fn by_item(&self) -> &SparseRows {
        &self.by_item
    }

    /// Iterates over `(user_index, item_index, weight)` triples, sorted by user then item.
    pub fn triples(&self) -> impl Iterator<Item = (usize, usize, f32)> + '_ {
        (0..self.by_user.rows()).flat_map(move |u| {
            self.by_user
                .row(u)
                .iter()
                .map(move |&(i, w)| (u, i as usize, w))
        })
    }
}

/// Assigns dense indices to ids in first-seen order.
struct Indexer<T> {
    index: HashMap<T, u32>,
    ids: Vec<T>,
}

impl<T> Default for Indexer<T> {
    fn default() -> Self {
        Indexer {
            index: HashMap::new(),
            ids: Vec::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Indexer<T> {
    fn index_of(&mut self, id: T) -> u32 {
        if let Some(&i) = self.index.get(&id) {
            return i;
        }
        let i = u32::try_from(self.ids.len()).expect("fewer than 4 billion distinct ids");
        self.index.insert(id.clone(), i);
        self.ids.push(id);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(u: &str, i: &str, w: f32) -> (UserId, ItemId, f32) {
        (UserId::new_unchecked(u), ItemId::new_unchecked(i), w)
    }

    #[test]
    fn duplicate_pairs_add_and_bad_weights_are_left_out() {
        let data = Interactions::from_triples([
            t("u1", "a", 1.0),
            t("u1", "a", 2.0),
            t("u1", "b", f32::NAN),
            t("u2", "b", 1.0),
            t("u2", "c", -1.0),
        ]);
        assert_eq!(data.num_users(), 2);
        assert_eq!(data.num_items(), 3);
        assert_eq!(data.dropped_non_finite(), 1);
        let got: Vec<_> = data.triples().collect();
        // u1 = 0, a = 0, b = 1 (first seen in the NaN triple), c = 2 (negative sum: left out).
        assert_eq!(got, vec![(0, 0, 3.0), (1, 1, 1.0)]);
        assert_eq!(data.by_item().row(1), &[(1, 1.0)]);
        assert_eq!(data.by_item().row(2), &[]);
        assert_eq!(data.by_user().row(99), &[]);
    }
}
