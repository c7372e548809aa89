//! Diversity: maximal marginal relevance under a hard per-category cap.
//!
//! Positions are filled greedily. At each position the candidates that would not
//! break the cap are *eligible*; among them the one with the best MMR value
//! `λ·score − (1−λ)·max similarity to the items already chosen` wins (scores are
//! min-max normalised to `[0, 1]` first, so that λ weighs comparable quantities).
//! The cap: within the first `cap_window` positions, at most
//! `max(1, floor(category_cap · cap_window))` items share a top-level category.
//! When no remaining candidate is eligible (every one belongs to a category
//! already at its cap), the cap is relaxed for that position and the best MMR
//! candidate overall is taken: a full list beats an empty slot. Uncategorised
//! items (empty category) are not capped and are similar to nothing by category.

use std::collections::HashMap;

use flywheel_core::Item;

/// The largest number of items of one top-level category allowed in the window.
pub(crate) fn cap_limit(category_cap: f64, cap_window: usize) -> usize {
    let limit = (category_cap * cap_window as f64 + 1e-9).floor();
    if limit.is_finite() && limit >= 1.0 {
        limit as usize
    } else {
        1
    }
}

/// Similarity of two items in `[0, 1]`: 0.5 for the same top-level category, 0.3
/// more for the same full category path, and 0.2 × the Jaccard index of their tags.
pub fn item_similarity(a: &Item, b: &Item) -> f64 {
    let mut interner = HashMap::new();
    let pa = Profile::new(a, &mut interner);
    let pb = Profile::new(b, &mut interner);
    pa.similarity(&pb)
}

/// What similarity looks at, precomputed once per item: interned category ids
/// (so the comparisons are integer compares) and sorted, deduplicated tags.
struct Profile<'a> {
    /// Interned top-level category; `None` when uncategorised.
    top: Option<usize>,
    /// Interned full category path.
    path: usize,
    tags: Vec<&'a str>,
}

impl<'a> Profile<'a> {
    fn new(item: &'a Item, interner: &mut HashMap<&'a str, usize>) -> Self {
        let mut intern = |text: &'a str| {
            let next = interner.len();
            *interner.entry(text).or_insert(next)
        };
        let top = item.top_category();
        let mut tags: Vec<&str> = item.tags.iter().map(String::as_str).collect();
        tags.sort_unstable();
        tags.dedup();
        Profile {
            top: (!top.is_empty()).then(|| intern(top)),
            path: intern(item.category.as_str()),
            tags,
        }
    }

    fn similarity(&self, other: &Profile) -> f64 {
        let same_top = self.top.is_some() && self.top == other.top;
        let same_path = same_top && self.path == other.path;
        let jaccard = jaccard(&self.tags, &other.tags);
        0.5 * f64::from(u8::from(same_top)) + 0.3 * f64::from(u8::from(same_path)) + 0.2 * jaccard
    }
}

/// The Jaccard index of two sorted, deduplicated lists (0 when both are empty).
fn jaccard(a: &[&str], b: &[&str]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// The diversity knobs, already validated.
pub(crate) struct DiversityParams {
    pub lambda: f64,
    pub cap_limit: usize,
    pub cap_window: usize,
}

/// Min-max normalised scores (all 1 when they are all equal).
fn normalise(scores: &[f64]) -> Vec<f64> {
    let (low, high) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), s| {
            (l.min(*s), h.max(*s))
        });
    let span = high - low;
    scores
        .iter()
        .map(|s| if span > 0.0 { (s - low) / span } else { 1.0 })
        .collect()
}

/// Chooses up to `count` of `items` (with `scores`), returning their indices in
/// list order.
pub(crate) fn select(
    items: &[&Item],
    scores: &[f64],
    params: &DiversityParams,
    count: usize,
) -> Vec<usize> {
    let normalised = normalise(scores);
    let mut interner = HashMap::new();
    let profiles: Vec<Profile> = items
        .iter()
        .map(|i| Profile::new(i, &mut interner))
        .collect();
    let mut per_category = vec![0usize; interner.len()];
    let mut max_sim = vec![0.0f64; items.len()];
    let mut remaining: Vec<usize> = (0..items.len()).collect();
    let mut chosen = Vec::with_capacity(count.min(items.len()));
    while chosen.len() < count && !remaining.is_empty() {
        let in_window = chosen.len() < params.cap_window;
        let allowed = |i: &usize| {
            !in_window
                || profiles[*i]
                    .top
                    .is_none_or(|c| per_category[c] < params.cap_limit)
        };
        let any_allowed = remaining.iter().any(allowed);
        let value = |i: usize| params.lambda * normalised[i] - (1.0 - params.lambda) * max_sim[i];
        let Some(best_slot) = remaining
            .iter()
            .enumerate()
            .filter(|(_, i)| !any_allowed || allowed(i))
            .max_by(|(_, a), (_, b)| {
                let by_value = value(**a).total_cmp(&value(**b));
                by_value
                    .then(scores[**a].total_cmp(&scores[**b]))
                    .then(b.cmp(a))
            })
            .map(|(slot, _)| slot)
        else {
            break; // unreachable: `remaining` is not empty and the filter keeps all when none is allowed
        };
        let best = remaining.remove(best_slot);
        if let (true, Some(c)) = (in_window, profiles[best].top) {
            per_category[c] += 1;
        }
        for &i in &remaining {
            max_sim[i] = max_sim[i].max(profiles[i].similarity(&profiles[best]));
        }
        chosen.push(best);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::ItemId;

    fn item(id: &str, category: &str, tags: &[&str]) -> Item {
        let mut item = Item::new(ItemId::new_unchecked(id), category);
        item.tags = tags.iter().map(|t| t.to_string()).collect();
        item
    }

    #[test]
    fn similarity_weights_category_path_and_tags() {
        let a = item("a", "books/scifi", &["space", "classic"]);
        assert_eq!(
            item_similarity(&a, &item("b", "books/scifi", &["space", "classic"])),
            1.0
        );
        assert_eq!(item_similarity(&a, &item("c", "books/crime", &[])), 0.5);
        // Jaccard {space, classic} vs {space, new} = 1/3.
        let d = item("d", "music", &["space", "new"]);
        assert!((item_similarity(&a, &d) - 0.2 / 3.0).abs() < 1e-12);
        assert_eq!(
            item_similarity(&item("e", "", &[]), &item("f", "", &[])),
            0.0
        );
    }

    #[test]
    fn cap_limit_is_floor_of_share_times_window() {
        assert_eq!(cap_limit(0.3, 10), 3);
        assert_eq!(
            cap_limit(0.29, 100),
            29,
            "0.29·100 rounds down to 28.999… without the epsilon"
        );
        assert_eq!(cap_limit(0.05, 10), 1, "never below one");
        assert_eq!(cap_limit(1.0, 10), 10);
    }
}
