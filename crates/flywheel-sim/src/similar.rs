//! "Similar items": the neighbours a browsing user moves to from an item page.
//! Browse chains follow these, which gives co-visitation real signal.

use std::collections::BTreeMap;

use crate::truth::ItemTruth;

/// Neighbours kept per item.
pub(crate) const SIMILAR_PER_ITEM: usize = 8;
/// Leaf members compared per item (a window around it), bounding the cost on big catalogs.
const CANDIDATE_WINDOW: usize = 200;

/// For every item, up to [`SIMILAR_PER_ITEM`] items of its leaf category with the
/// highest cosine similarity of latent vectors, best first (ties by index).
pub(crate) fn similar_items(items: &[ItemTruth]) -> Vec<Vec<usize>> {
    let mut leaves: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        leaves.entry(&item.category_path).or_default().push(index);
    }
    let norms: Vec<f64> = items
        .iter()
        .map(|item| {
            item.latent
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
                .max(1e-12)
        })
        .collect();
    let mut similar = vec![Vec::new(); items.len()];
    for members in leaves.values() {
        for (position, &item) in members.iter().enumerate() {
            similar[item] = neighbours(items, &norms, members, position);
        }
    }
    similar
}

fn neighbours(
    items: &[ItemTruth],
    norms: &[f64],
    members: &[usize],
    position: usize,
) -> Vec<usize> {
    let item = members[position];
    let window = CANDIDATE_WINDOW.min(members.len());
    let first = position
        .saturating_sub(window / 2)
        .min(members.len() - window);
    let mut scored: Vec<(f64, usize)> = members[first..first + window]
        .iter()
        .filter(|&&other| other != item)
        .map(|&other| {
            let dot: f64 = items[item]
                .latent
                .iter()
                .zip(&items[other].latent)
                .map(|(a, b)| a * b)
                .sum();
            (dot / (norms[item] * norms[other]), other)
        })
        .collect();
    let best_first = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if scored.len() > SIMILAR_PER_ITEM {
        scored.select_nth_unstable_by(SIMILAR_PER_ITEM, best_first);
        scored.truncate(SIMILAR_PER_ITEM);
    }
    scored.sort_by(best_first);
    scored
        .into_iter()
        .take(SIMILAR_PER_ITEM)
        .map(|(_, other)| other)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::ItemId;

    fn item(path: &str, latent: Vec<f64>) -> ItemTruth {
        ItemTruth {
            id: ItemId::new_unchecked("x"),
            category: 0,
            category_path: path.to_string(),
            latent,
            quality: 0.0,
            prior_popularity: 1.0,
            price: 1.0,
            median_price: 1.0,
        }
    }

    #[test]
    fn neighbours_stay_in_the_leaf_and_rank_by_cosine() {
        let items = vec![
            item("a/x", vec![1.0, 0.0]),
            item("a/x", vec![0.0, 1.0]),
            item("a/x", vec![0.9, 0.1]),
            item("a/y", vec![1.0, 0.0]),
        ];
        let similar = similar_items(&items);
        assert_eq!(similar[0], vec![2, 1]);
        assert_eq!(similar[1], vec![2, 0]);
        assert!(similar[3].is_empty());
    }

    #[test]
    fn big_leaves_keep_the_eight_closest_in_order() {
        // Items on a circle: the closest by cosine are the nearest angles.
        let items: Vec<ItemTruth> = (0..40)
            .map(|k| {
                let angle = k as f64 * 0.05;
                item("a/x", vec![angle.cos(), angle.sin()])
            })
            .collect();
        let similar = similar_items(&items);
        assert_eq!(similar[20], vec![19, 21, 18, 22, 17, 23, 16, 24]);
        assert_eq!(similar[0], (1..=8).collect::<Vec<_>>());
    }
}
