//! Per-system metrics over the users' lists, and the same metrics by slice.
//!
//! Accuracy metrics come from `flywheel_eval::ranking` (binary relevance: a test item
//! the user engaged with and had not met in training). Beyond accuracy:
//! - **coverage**: share of the catalog appearing in some top-10 list;
//! - **intra-list diversity**: per top-10 list of at least two items,
//!   1 − (share of item pairs with the same top-level category), averaged over lists;
//! - **novelty**: mean over recommended top-10 items seen in training of
//!   −log2(share of training users who interacted with the item), as Microsoft
//!   Recommenders' `novelty` (items never seen in training are left out).
//!
//! Slices restrict the *relevant items* (head or tail items, one category) or the
//! *users* (new: the third with the shortest training history; power: the longest);
//! the ranked list is never filtered, and users with no relevant item in the slice
//! are skipped.

use flywheel_core::{ItemId, UserId};
use flywheel_eval::ranking;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Cut-offs of the NDCG@k curve.
pub const CURVE_KS: [usize; 5] = [1, 3, 5, 10, 20];

/// The metrics of one system (a channel alone, or the blend).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SystemMetrics {
    /// NDCG@10 with binary gain.
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    /// Recall@20.
    #[serde(rename = "recall@20")]
    pub recall_at_20: f64,
    /// Precision@10 (hits in the top 10 over 10).
    #[serde(rename = "p@10")]
    pub precision_at_10: f64,
    /// MAP@10 (AP@10 with denominator R, trec_eval `map_cut`).
    #[serde(rename = "map@10")]
    pub map_at_10: f64,
    /// Hit rate@10.
    #[serde(rename = "hit@10")]
    pub hit_at_10: f64,
    /// Share of the catalog recommended in some top-10 list.
    pub coverage: f64,
    /// Mean intra-list diversity of the top-10 lists (by top-level category).
    pub intra_list_diversity: f64,
    /// Mean −log2 training popularity of the recommended items.
    pub novelty: f64,
    /// Mean NDCG@k for k in [`CURVE_KS`].
    pub ndcg_by_k: BTreeMap<usize, f64>,
    /// Users for whom the system returned at least one item.
    pub users_served: usize,
}

impl SystemMetrics {
    /// The headline columns, in display order, for tables (text and HTML alike).
    pub fn columns(&self) -> [(&'static str, f64); 8] {
        [
            ("ndcg@10", self.ndcg_at_10),
            ("recall@20", self.recall_at_20),
            ("p@10", self.precision_at_10),
            ("map@10", self.map_at_10),
            ("hit@10", self.hit_at_10),
            ("coverage", self.coverage),
            ("diversity", self.intra_list_diversity),
            ("novelty", self.novelty),
        ]
    }
}

/// Accuracy on one slice.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SliceMetrics {
    /// Users with at least one relevant item in the slice.
    pub users: usize,
    /// NDCG@10 against the slice's relevant items.
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    /// Recall@20 against the slice's relevant items.
    #[serde(rename = "recall@20")]
    pub recall_at_20: f64,
    /// Hit rate@10 against the slice's relevant items.
    #[serde(rename = "hit@10")]
    pub hit_at_10: f64,
}

/// One user's list and what was relevant.
pub(crate) struct UserList<'a> {
    pub user: &'a UserId,
    pub ranked: Vec<ItemId>,
    pub relevant: &'a HashSet<ItemId>,
}

/// What the training part says about items and users, for beyond-accuracy metrics and slices.
#[derive(Debug, Default)]
pub(crate) struct TrainStats {
    /// Training events per item.
    pub item_events: HashMap<ItemId, u64>,
    /// Distinct training users per item.
    pub item_users: HashMap<ItemId, u64>,
    /// Users with at least one training event.
    pub train_users: u64,
    /// Top-level category of every known item.
    pub category: HashMap<ItemId, String>,
    /// Catalog size.
    pub catalog_items: usize,
}

fn ids(ranked: &[ItemId]) -> Vec<&str> {
    ranked.iter().map(ItemId::as_str).collect()
}

fn relevance<'a>(relevant: impl Iterator<Item = &'a ItemId>) -> HashMap<&'a str, f64> {
    relevant.map(|i| (i.as_str(), 1.0)).collect()
}

/// Mean of `f` over the lists (0 when there are none).
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// 1 − share of same-category pairs in a list; `None` below two items.
pub(crate) fn list_diversity(ranked: &[ItemId], category: &HashMap<ItemId, String>) -> Option<f64> {
    if ranked.len() < 2 {
        return None;
    }
    let cats: Vec<&str> = ranked
        .iter()
        .map(|i| category.get(i).map_or("", String::as_str))
        .collect();
    let (mut same, mut pairs) = (0usize, 0usize);
    for a in 0..cats.len() {
        for b in a + 1..cats.len() {
            pairs += 1;
            same += usize::from(cats[a] == cats[b]);
        }
    }
    Some(1.0 - same as f64 / pairs as f64)
}

/// The metrics of one system's lists.
pub(crate) fn system_metrics(lists: &[UserList], stats: &TrainStats) -> SystemMetrics {
    let mut covered = HashSet::new();
    let mut ndcg_by_k: BTreeMap<usize, f64> = CURVE_KS.iter().map(|k| (*k, 0.0)).collect();
    let (mut recall, mut precision, mut map, mut hit) = (0.0, 0.0, 0.0, 0.0);
    let (mut novelty_sum, mut novelty_n) = (0.0, 0usize);
    let mut diversity = Vec::new();
    for list in lists {
        let ranked = ids(&list.ranked);
        let rel = relevance(list.relevant.iter());
        for (k, total) in ndcg_by_k.iter_mut() {
            *total += ranking::ndcg_at_k(&ranked, &rel, *k);
        }
        recall += ranking::recall_at_k(&ranked, &rel, 20);
        precision += ranking::precision_at_k(&ranked, &rel, 10);
        map += ranking::average_precision_at_k(&ranked, &rel, 10);
        hit += ranking::hit_at_k(&ranked, &rel, 10);
        let top = &list.ranked[..list.ranked.len().min(10)];
        covered.extend(top.iter().cloned());
        diversity.extend(list_diversity(top, &stats.category));
        for item in top {
            if let Some(&users) = stats.item_users.get(item).filter(|u| **u > 0) {
                novelty_sum -= (users as f64 / stats.train_users.max(1) as f64).log2();
                novelty_n += 1;
            }
        }
    }
    let n = lists.len().max(1) as f64;
    ndcg_by_k.values_mut().for_each(|v| *v /= n);
    SystemMetrics {
        ndcg_at_10: ndcg_by_k[&10],
        recall_at_20: recall / n,
        precision_at_10: precision / n,
        map_at_10: map / n,
        hit_at_10: hit / n,
        coverage: covered.len() as f64 / stats.catalog_items.max(1) as f64,
        intra_list_diversity: mean(diversity.into_iter()),
        novelty: if novelty_n == 0 {
            0.0
        } else {
            novelty_sum / novelty_n as f64
        },
        ndcg_by_k,
        users_served: lists.iter().filter(|l| !l.ranked.is_empty()).count(),
    }
}

/// Who and what each slice holds.
#[derive(Debug, Default)]
pub(crate) struct Slicing {
    /// The most popular items making 80% of training interactions.
    pub head: HashSet<ItemId>,
    /// The third of the evaluated users with the shortest training history.
    pub new_users: HashSet<UserId>,
    /// The third with the longest.
    pub power_users: HashSet<UserId>,
}

/// Head items: by training events, most first (ties by id), until 80% of all events.
pub(crate) fn head_items(item_events: &HashMap<ItemId, u64>) -> HashSet<ItemId> {
    let mut items: Vec<(&ItemId, u64)> = item_events.iter().map(|(i, n)| (i, *n)).collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let total: u64 = items.iter().map(|(_, n)| n).sum();
    let mut head = HashSet::new();
    let mut so_far = 0u64;
    for (item, n) in items {
        if (so_far as f64) >= 0.8 * total as f64 {
            break;
        }
        so_far += n;
        head.insert(item.clone());
    }
    head
}

/// New and power users: the bottom and top thirds by training history length
/// (ties by user id).
pub(crate) fn user_thirds(
    users: &[UserId],
    history_len: &HashMap<UserId, u64>,
) -> (HashSet<UserId>, HashSet<UserId>) {
    let mut sorted: Vec<(u64, &UserId)> = users
        .iter()
        .map(|u| (history_len.get(u).copied().unwrap_or(0), u))
        .collect();
    sorted.sort();
    let third = sorted.len() / 3;
    let new = sorted[..third].iter().map(|(_, u)| (*u).clone()).collect();
    let power = sorted[sorted.len() - third..]
        .iter()
        .map(|(_, u)| (*u).clone())
        .collect();
    (new, power)
}

/// Accuracy over the users `keep_user` accepts, against the relevant items `keep_item` accepts.
fn slice_of(
    lists: &[UserList],
    keep_user: impl Fn(&UserId) -> bool,
    keep_item: impl Fn(&ItemId) -> bool,
) -> SliceMetrics {
    let (mut users, mut ndcg, mut recall, mut hit) = (0usize, 0.0, 0.0, 0.0);
    for list in lists.iter().filter(|l| keep_user(l.user)) {
        let rel = relevance(list.relevant.iter().filter(|i| keep_item(i)));
        if rel.is_empty() {
            continue;
        }
        let ranked = ids(&list.ranked);
        users += 1;
        ndcg += ranking::ndcg_at_k(&ranked, &rel, 10);
        recall += ranking::recall_at_k(&ranked, &rel, 20);
        hit += ranking::hit_at_k(&ranked, &rel, 10);
    }
    let n = users.max(1) as f64;
    SliceMetrics {
        users,
        ndcg_at_10: ndcg / n,
        recall_at_20: recall / n,
        hit_at_10: hit / n,
    }
}

/// Every slice of one system: `items:head`, `items:tail`, `users:new`, `users:power`,
/// and `category:<name>` per top-level category of the relevant items.
pub(crate) fn slices(
    lists: &[UserList],
    slicing: &Slicing,
    stats: &TrainStats,
) -> BTreeMap<String, SliceMetrics> {
    let category_of = |i: &ItemId| stats.category.get(i).map_or("", String::as_str);
    let mut out = BTreeMap::new();
    out.insert(
        "items:head".into(),
        slice_of(lists, |_| true, |i| slicing.head.contains(i)),
    );
    out.insert(
        "items:tail".into(),
        slice_of(lists, |_| true, |i| !slicing.head.contains(i)),
    );
    out.insert(
        "users:new".into(),
        slice_of(lists, |u| slicing.new_users.contains(u), |_| true),
    );
    out.insert(
        "users:power".into(),
        slice_of(lists, |u| slicing.power_users.contains(u), |_| true),
    );
    let categories: HashSet<&str> = lists
        .iter()
        .flat_map(|l| l.relevant.iter().map(category_of))
        .collect();
    for category in categories {
        let name = if category.is_empty() {
            "(none)"
        } else {
            category
        };
        out.insert(
            format!("category:{name}"),
            slice_of(lists, |_| true, |i| category_of(i) == category),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> ItemId {
        ItemId::new_unchecked(id)
    }

    fn user(id: &str) -> UserId {
        UserId::new_unchecked(id)
    }

    #[test]
    fn head_is_the_popular_items_up_to_80_percent() {
        // counts 5, 3, 1, 1 of 10: 5 (50%) < 80% → add 3 (80%) → stop.
        let counts = HashMap::from([
            (item("a"), 5),
            (item("b"), 3),
            (item("c"), 1),
            (item("d"), 1),
        ]);
        let head = head_items(&counts);
        assert_eq!(head, HashSet::from([item("a"), item("b")]));
    }

    #[test]
    fn user_thirds_by_history_length() {
        let users: Vec<UserId> = ["u1", "u2", "u3", "u4", "u5", "u6", "u7"]
            .iter()
            .map(|u| user(u))
            .collect();
        let lengths: HashMap<UserId, u64> = users
            .iter()
            .zip([9, 1, 5, 2, 7, 3, 2])
            .map(|(u, n)| (u.clone(), n))
            .collect();
        let (new, power) = user_thirds(&users, &lengths);
        // sorted: u2(1) u4(2) u7(2) u6(3) u3(5) u5(7) u1(9); third = 2
        assert_eq!(new, HashSet::from([user("u2"), user("u4")]));
        assert_eq!(power, HashSet::from([user("u5"), user("u1")]));
    }

    #[test]
    fn diversity_and_slices_by_hand() {
        let category: HashMap<ItemId, String> = [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")]
            .iter()
            .map(|(i, c)| (item(i), c.to_string()))
            .collect();
        // pairs of [a, b, c]: ab same, ac, bc differ → 1 − 1/3
        let d = list_diversity(&[item("a"), item("b"), item("c")], &category);
        assert!((d.expect("3 items") - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(list_diversity(&[item("a")], &category), None);

        let (u1, u2) = (user("u1"), user("u2"));
        let rel1 = HashSet::from([item("a"), item("c")]);
        let rel2 = HashSet::from([item("d")]);
        let lists = vec![
            UserList {
                user: &u1,
                ranked: vec![item("a"), item("b")],
                relevant: &rel1,
            },
            UserList {
                user: &u2,
                ranked: vec![item("b"), item("d")],
                relevant: &rel2,
            },
        ];
        let stats = TrainStats {
            category,
            catalog_items: 4,
            ..TrainStats::default()
        };
        let slicing = Slicing {
            head: HashSet::from([item("a")]),
            ..Slicing::default()
        };
        let by_slice = slices(&lists, &slicing, &stats);
        // head: only u1 has a relevant head item (a), ranked first → NDCG 1.
        assert_eq!(by_slice["items:head"].users, 1);
        assert_eq!(by_slice["items:head"].ndcg_at_10, 1.0);
        // tail: u1 relevant {c} (missed), u2 {d} at rank 2 → NDCG (0 + 1/log2 3)/2.
        assert_eq!(by_slice["items:tail"].users, 2);
        let want = (1.0 / 3f64.log2()) / 2.0;
        assert!((by_slice["items:tail"].ndcg_at_10 - want).abs() < 1e-15);
        // category y: u1 {c}, u2 {d}; category x: u1 {a}.
        assert_eq!(by_slice["category:y"].users, 2);
        assert_eq!(by_slice["category:x"].hit_at_10, 1.0);
        let m = system_metrics(&lists, &stats);
        assert_eq!(m.coverage, 3.0 / 4.0);
        assert_eq!(m.hit_at_10, 1.0);
        assert_eq!(m.precision_at_10, 2.0 / 20.0);
    }
}
