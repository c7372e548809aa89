//! Content similarity for cold-start items and users: TF-IDF vectors over category path
//! prefixes, tags and title/text words, blended with supplied dense embeddings; cosine.

use std::collections::{HashMap, HashSet};

use flywheel_core::{Item, ItemId};
use serde::{Deserialize, Serialize};

use crate::ids::IdIndex;
use crate::linalg::dot_f32;
use crate::topk::TopK;

/// Words too common to say anything about an item.
const STOPWORDS: [&str; 24] = [
    "the", "and", "for", "with", "from", "that", "this", "are", "was", "you", "your", "but", "not",
    "all", "its", "into", "of", "to", "in", "on", "an", "or", "is", "it",
];

/// A unit-norm content vector per item and an inverted index over its sparse part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentIndex {
    items: IdIndex<ItemId>,
    /// Per item: `(token, weight)` sorted by token.
    sparse: Vec<Vec<(u32, f32)>>,
    /// Per item: the scaled embedding, when it has one of the index's dimension.
    dense: Vec<Option<Vec<f32>>>,
    /// Per token: `(item, weight)`.
    postings: Vec<Vec<(u32, f32)>>,
    /// The embedding dimension (0 when no item has an embedding).
    embedding_dim: usize,
}

/// The feature tokens of an item, with repetition counts.
fn tokens(item: &Item) -> HashMap<String, f32> {
    let mut counts: HashMap<String, f32> = HashMap::new();
    let category = item.category.trim_matches('/');
    if !category.is_empty() {
        let prefixes = category.match_indices('/').map(|(i, _)| &category[..i]);
        for prefix in prefixes.chain(std::iter::once(category)) {
            *counts
                .entry(format!("c:{}", prefix.to_lowercase()))
                .or_default() += 1.0;
        }
    }
    for tag in &item.tags {
        *counts
            .entry(format!("t:{}", tag.trim().to_lowercase()))
            .or_default() += 1.0;
    }
    let texts = [(item.title.as_deref(), 2.0), (item.text.as_deref(), 1.0)];
    for (text, weight) in texts {
        for word in text.unwrap_or("").split(|c: char| !c.is_alphanumeric()) {
            let word = word.to_lowercase();
            if word.chars().count() >= 2 && !STOPWORDS.contains(&word.as_str()) {
                *counts.entry(format!("w:{word}")).or_default() += weight;
            }
        }
    }
    counts
}

fn normalise(values: &mut [f32]) -> f32 {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        values.iter_mut().for_each(|v| *v /= norm);
        norm
    } else {
        values.iter_mut().for_each(|v| *v = 0.0);
        0.0
    }
}

impl ContentIndex {
    /// Builds the index. The embedding dimension is the most common among the items;
    /// embeddings of another length or with non-finite values are ignored.
    pub fn build(items: &[Item]) -> ContentIndex {
        let per_item: Vec<HashMap<String, f32>> = items.iter().map(tokens).collect();
        let mut vocabulary: HashMap<String, u32> = HashMap::new();
        let mut document_frequency: Vec<f32> = Vec::new();
        for counts in &per_item {
            for token in counts.keys() {
                let next = vocabulary.len() as u32;
                let id = *vocabulary.entry(token.clone()).or_insert(next);
                if id as usize == document_frequency.len() {
                    document_frequency.push(0.0);
                }
                document_frequency[id as usize] += 1.0;
            }
        }
        let n = items.len() as f32;
        let embedding_dim = most_common_dim(items);
        let mut sparse = Vec::with_capacity(items.len());
        let mut dense = Vec::with_capacity(items.len());
        let mut postings = vec![Vec::new(); vocabulary.len()];
        for (index, (item, counts)) in items.iter().zip(&per_item).enumerate() {
            let mut vector: Vec<(u32, f32)> = counts
                .iter()
                .map(|(token, &count)| {
                    let id = vocabulary[token];
                    let idf = ((1.0 + n) / (1.0 + document_frequency[id as usize])).ln() + 1.0;
                    (id, (1.0 + count.ln()) * idf)
                })
                .collect();
            vector.sort_unstable_by_key(|&(id, _)| id);
            let mut values: Vec<f32> = vector.iter().map(|&(_, w)| w).collect();
            let has_sparse = normalise(&mut values) > 0.0;
            let mut embedding = item
                .embedding
                .as_ref()
                .filter(|e| e.len() == embedding_dim && e.iter().all(|v| v.is_finite()))
                .cloned();
            if let Some(e) = embedding.as_mut() {
                if normalise(e) == 0.0 {
                    embedding = None;
                }
            }
            if has_sparse && embedding.is_some() {
                let half = std::f32::consts::FRAC_1_SQRT_2;
                values.iter_mut().for_each(|v| *v *= half);
                embedding.iter_mut().flatten().for_each(|v| *v *= half);
            }
            let vector: Vec<(u32, f32)> = vector
                .iter()
                .zip(values)
                .map(|(&(id, _), v)| (id, v))
                .collect();
            for &(id, weight) in &vector {
                postings[id as usize].push((index as u32, weight));
            }
            sparse.push(vector);
            dense.push(embedding);
        }
        let ids: Vec<ItemId> = items.iter().map(|item| item.id.clone()).collect();
        ContentIndex {
            items: ids.into(),
            sparse,
            dense,
            postings,
            embedding_dim,
        }
    }

    /// The number of indexed items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the per-item arrays match the item list (a damaged snapshot may not);
    /// every query on an inconsistent index returns nothing.
    pub fn is_consistent(&self) -> bool {
        self.sparse.len() == self.items.len() && self.dense.len() == self.items.len()
    }

    /// The cosine similarity of two indexed items (`None` if either is unknown).
    pub fn similarity(&self, a: &ItemId, b: &ItemId) -> Option<f32> {
        if !self.is_consistent() {
            return None;
        }
        Some(self.cosine(self.items.get(a)?, self.items.get(b)?))
    }

    fn cosine(&self, a: usize, b: usize) -> f32 {
        let (mut x, mut y, mut sum) = (
            self.sparse[a].iter().peekable(),
            self.sparse[b].iter().peekable(),
            0.0,
        );
        while let (Some(&&(ta, wa)), Some(&&(tb, wb))) = (x.peek(), y.peek()) {
            match ta.cmp(&tb) {
                std::cmp::Ordering::Less => drop(x.next()),
                std::cmp::Ordering::Greater => drop(y.next()),
                std::cmp::Ordering::Equal => {
                    sum += wa * wb;
                    x.next();
                    y.next();
                }
            }
        }
        match (&self.dense[a], &self.dense[b]) {
            (Some(da), Some(db)) => sum + dot_f32(da, db),
            _ => sum,
        }
    }

    /// Items most similar to a weighted set of items (a user's history): cosine with the
    /// weighted sum of their vectors. Unknown items are ignored; `exclude` is skipped
    /// (the query items are not removed automatically); only positive scores are kept.
    pub fn similar_to(
        &self,
        items: &[(ItemId, f32)],
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32)> {
        self.similar_with_sources(items, k, exclude)
            .into_iter()
            .map(|(id, s, _)| (id, s))
            .collect()
    }

    /// As [`Self::similar_to`], with the query item contributing most to each result.
    pub fn similar_with_sources(
        &self,
        items: &[(ItemId, f32)],
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32, Option<ItemId>)> {
        let query = self.items.history_weights(items);
        if query.is_empty() || !self.is_consistent() {
            return Vec::new();
        }
        let scores = self.profile_scores(&query);
        let mask = self.items.mask(exclude);
        TopK::of_scores(&scores, k, |j| mask[j] || scores[j] <= 1e-7)
            .into_iter()
            .map(|(j, score)| {
                let source = query
                    .iter()
                    .map(|&(i, w)| (i, w * self.cosine(i, j)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(i, _)| self.items.id(i).clone());
                (self.items.id(j).clone(), score, source)
            })
            .collect()
    }

    /// Cosine of every item with the normalised weighted profile of `query`.
    fn profile_scores(&self, query: &[(usize, f32)]) -> Vec<f32> {
        let mut profile: HashMap<u32, f32> = HashMap::new();
        let mut dense_profile = vec![0.0f32; self.embedding_dim];
        for &(i, w) in query {
            for &(token, value) in &self.sparse[i] {
                *profile.entry(token).or_default() += w * value;
            }
            if let Some(d) = &self.dense[i] {
                dense_profile
                    .iter_mut()
                    .zip(d)
                    .for_each(|(p, v)| *p += w * v);
            }
        }
        let norm = (profile.values().map(|v| v * v).sum::<f32>()
            + dot_f32(&dense_profile, &dense_profile))
        .sqrt();
        let mut scores = vec![0.0f32; self.items.len()];
        if norm <= 0.0 || !norm.is_finite() {
            return scores;
        }
        for (&token, &p) in &profile {
            for &(j, value) in self.postings.get(token as usize).into_iter().flatten() {
                if let Some(score) = scores.get_mut(j as usize) {
                    *score += p * value;
                }
            }
        }
        for (score, d) in scores.iter_mut().zip(&self.dense) {
            if let Some(d) = d {
                *score += dot_f32(&dense_profile, d);
            }
        }
        scores.iter_mut().for_each(|s| *s /= norm);
        scores
    }

    /// The `k` items most similar to `item` (itself excluded).
    pub fn similar_items(&self, item: &ItemId, k: usize) -> Vec<(ItemId, f32)> {
        self.similar_to(&[(item.clone(), 1.0)], k, &HashSet::from([item.clone()]))
    }
}

fn most_common_dim(items: &[Item]) -> usize {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for e in items.iter().filter_map(|item| item.embedding.as_ref()) {
        if !e.is_empty() {
            *counts.entry(e.len()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(dim, count)| (count, std::cmp::Reverse(dim)))
        .map_or(0, |(d, _)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, category: &str, tags: &[&str], title: &str) -> Item {
        let mut item = Item::new(ItemId::new_unchecked(id), category);
        item.tags = tags.iter().map(|t| t.to_string()).collect();
        item.title = Some(title.to_string());
        item
    }

    fn catalog() -> Vec<Item> {
        vec![
            item("dune", "books/scifi", &["space", "desert"], "Dune"),
            item(
                "foundation",
                "books/scifi",
                &["space", "empire"],
                "Foundation",
            ),
            item("hyperion", "books/scifi", &["space"], "Hyperion Cantos"),
            item("emma", "books/classics", &["romance"], "Emma"),
            item("drill", "tools/power", &["cordless"], "Cordless Drill"),
        ]
    }

    #[test]
    fn cosine_of_identical_items_is_one_and_unrelated_items_zero() {
        let index = ContentIndex::build(&catalog());
        let id = ItemId::new_unchecked;
        assert!((index.similarity(&id("dune"), &id("dune")).unwrap() - 1.0).abs() < 1e-5);
        assert_eq!(index.similarity(&id("dune"), &id("drill")), Some(0.0));
        assert!(index.similarity(&id("dune"), &id("zz")).is_none());
        let near = index.similarity(&id("dune"), &id("foundation")).unwrap();
        let far = index.similarity(&id("dune"), &id("emma")).unwrap();
        assert!(near > far && far > 0.0, "{near} vs {far}");
    }

    #[test]
    fn similar_items_rank_shared_category_and_tags_first() {
        let index = ContentIndex::build(&catalog());
        let got = index.similar_items(&ItemId::new_unchecked("dune"), 10);
        let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids[..2]
                .iter()
                .filter(|i| ["foundation", "hyperion"].contains(i))
                .count(),
            2
        );
        assert_eq!(ids[2], "emma");
        assert!(!ids.contains(&"drill") && !ids.contains(&"dune"));
        let history = [
            (ItemId::new_unchecked("drill"), 1.0),
            (ItemId::new_unchecked("emma"), 0.1),
        ];
        let exclude = HashSet::from([
            ItemId::new_unchecked("drill"),
            ItemId::new_unchecked("emma"),
        ]);
        let got = index.similar_with_sources(&history, 3, &exclude);
        assert!(got
            .iter()
            .all(|(_, _, source)| source.as_ref().map(ItemId::as_str) == Some("emma")));
    }

    #[test]
    fn embeddings_blend_with_text_and_bad_embeddings_are_ignored() {
        let mut items = vec![
            item("a", "", &[], ""),
            item("b", "", &[], ""),
            item("c", "", &[], ""),
            item("d", "", &[], ""),
        ];
        items[0].embedding = Some(vec![1.0, 0.0]);
        items[1].embedding = Some(vec![0.9, 0.1]);
        items[2].embedding = Some(vec![0.0, 1.0]);
        items[3].embedding = Some(vec![f32::NAN, 1.0]);
        let index = ContentIndex::build(&items);
        let got = index.similar_items(&ItemId::new_unchecked("a"), 5);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0.as_str(), "b");
        assert!(ContentIndex::build(&[])
            .similar_to(&[], 3, &HashSet::new())
            .is_empty());
    }
}
