//! Ranking metrics on plain slices, for the engine's own lists and for TREC files.
//!
//! Every function takes the ranked documents (best first) and the judgments of one query
//! as a map from document id to relevance grade. A document is *relevant* when its grade
//! is at least 1 (trec_eval's default relevance level); unjudged documents have grade 0.
//! Pass `usize::MAX` as `k` for "no cutoff" (NDCG, AP and RR over the whole list).
//!
//! Definitions (reference: `shared/reference/metrics_reference.py`):
//! - `ndcg@k` — linear gain `rel`, discount `1/log2(rank+1)`, ideal ranking from all judged
//!   documents (trec_eval `ndcg_cut`, ranx `ndcg`).
//! - `ndcg_exp@k` — gain `2^rel - 1` (Burges; ranx `ndcg_burges`, LightGBM, XGBoost).
//! - `ndcg_bin@k` — binary gain, ideal over `min(k, R)` (Microsoft Recommenders `ndcg_at_k`).
//! - `map@k` — AP@k = Σ_{hits in top k} P@rank / R (trec_eval `map_cut`, ranx `map@k`).
//! - `map_minkr@k` — same numerator / `min(k, R)` (Recommenders `map_at_k`, Kaggle `apk`).
//! - `mrr@k`, `p@k` (always divided by k), `r@k`, `hit@k`.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

/// The relevance level from which a judged document counts as relevant (trec_eval default).
pub const RELEVANT_FROM: f64 = 1.0;

/// What a ranking metric needs to know about one query's judgments, computed once.
#[derive(Debug, Clone, Default)]
pub struct JudgedSummary {
    /// Positive grades, highest first (the ideal ranking's gains).
    pub ideal_grades: Vec<f64>,
    /// Number of relevant documents R (grade >= 1).
    pub n_relevant: usize,
}

impl JudgedSummary {
    /// Summarises a query's grades.
    pub fn from_grades(grades: impl Iterator<Item = f64>) -> Self {
        let mut ideal_grades: Vec<f64> = grades.filter(|g| *g > 0.0).collect();
        ideal_grades.sort_unstable_by(|a, b| b.total_cmp(a));
        let n_relevant = ideal_grades.iter().filter(|g| **g >= RELEVANT_FROM).count();
        JudgedSummary {
            ideal_grades,
            n_relevant,
        }
    }
}

/// The gain function of an NDCG variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gain {
    /// `rel` (trec_eval).
    Linear,
    /// `2^rel - 1` (Burges et al.).
    Exponential,
    /// 1 when relevant, else 0 (Microsoft Recommenders).
    Binary,
}

impl Gain {
    #[inline]
    fn apply(self, grade: f64) -> f64 {
        match self {
            Gain::Linear => grade,
            Gain::Exponential => grade.exp2() - 1.0,
            Gain::Binary => f64::from(u8::from(grade >= RELEVANT_FROM)),
        }
    }
}

#[inline]
fn discount(rank0: usize) -> f64 {
    1.0 / ((rank0 + 2) as f64).log2()
}

/// NDCG@k from the grades of the ranked list (best first) and the query summary.
pub fn ndcg_from_grades(grades: &[f64], judged: &JudgedSummary, k: usize, gain: Gain) -> f64 {
    let ideal: f64 = match gain {
        Gain::Binary => (0..judged.n_relevant.min(k)).map(discount).sum(),
        _ => judged
            .ideal_grades
            .iter()
            .take(k)
            .enumerate()
            .map(|(i, g)| gain.apply(*g) * discount(i))
            .sum(),
    };
    if ideal <= 0.0 {
        return 0.0;
    }
    let dcg: f64 = grades
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| gain.apply(*g) * discount(i))
        .sum();
    dcg / ideal
}

/// Σ over relevant documents in the top k of precision at their rank.
fn precision_sum(grades: &[f64], k: usize) -> f64 {
    let mut hits = 0usize;
    let mut total = 0.0;
    for (i, g) in grades.iter().take(k).enumerate() {
        if *g >= RELEVANT_FROM {
            hits += 1;
            total += hits as f64 / (i + 1) as f64;
        }
    }
    total
}

/// Number of relevant documents in the top k.
pub fn hits_from_grades(grades: &[f64], k: usize) -> usize {
    grades
        .iter()
        .take(k)
        .filter(|g| **g >= RELEVANT_FROM)
        .count()
}

/// AP@k with denominator R (trec_eval `map_cut`); 0 when the query has no relevant document.
pub fn ap_from_grades(grades: &[f64], judged: &JudgedSummary, k: usize) -> f64 {
    if judged.n_relevant == 0 {
        return 0.0;
    }
    precision_sum(grades, k) / judged.n_relevant as f64
}

/// AP@k with denominator min(k, R) (Microsoft Recommenders `map_at_k`).
pub fn ap_min_kr_from_grades(grades: &[f64], judged: &JudgedSummary, k: usize) -> f64 {
    if judged.n_relevant == 0 || k == 0 {
        return 0.0;
    }
    precision_sum(grades, k) / judged.n_relevant.min(k) as f64
}

/// Reciprocal rank of the first relevant document in the top k, else 0.
pub fn rr_from_grades(grades: &[f64], k: usize) -> f64 {
    grades
        .iter()
        .take(k)
        .position(|g| *g >= RELEVANT_FROM)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// Looks up the grades of a ranked list (unjudged documents get 0).
pub fn grades_of<K, S>(ranked: &[&str], relevance: &HashMap<K, f64, S>) -> Vec<f64>
where
    K: Borrow<str> + Hash + Eq,
    S: BuildHasher,
{
    ranked
        .iter()
        .map(|d| relevance.get(*d).copied().unwrap_or(0.0))
        .collect()
}

fn summary<K, S: BuildHasher>(relevance: &HashMap<K, f64, S>) -> JudgedSummary {
    JudgedSummary::from_grades(relevance.values().copied())
}

macro_rules! slice_metric {
    ($(#[$doc:meta])* $name:ident, |$g:ident, $j:ident, $k:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name<K, S>(ranked: &[&str], relevance: &HashMap<K, f64, S>, k: usize) -> f64
        where
            K: Borrow<str> + Hash + Eq,
            S: BuildHasher,
        {
            let top = &ranked[..ranked.len().min(k)];
            let $g = grades_of(top, relevance);
            let $j = summary(relevance);
            let $k = k;
            $body
        }
    };
}

slice_metric!(
    /// NDCG@k with linear gain, as trec_eval `ndcg_cut.k` (metric name `ndcg@k`).
    ndcg_at_k, |g, j, k| ndcg_from_grades(&g, &j, k, Gain::Linear));
slice_metric!(
    /// NDCG@k with gain `2^rel - 1` (metric name `ndcg_exp@k`; ranx `ndcg_burges`).
    ndcg_exp_at_k, |g, j, k| ndcg_from_grades(&g, &j, k, Gain::Exponential));
slice_metric!(
    /// NDCG@k with binary gain and IDCG over min(k, R): Microsoft Recommenders `ndcg_at_k`
    /// (metric name `ndcg_bin@k`).
    ndcg_binary_at_k, |g, j, k| ndcg_from_grades(&g, &j, k, Gain::Binary));
slice_metric!(
    /// AP@k with denominator R, as trec_eval `map_cut.k` (metric name `map@k`; mean = MAP@k).
    average_precision_at_k, |g, j, k| ap_from_grades(&g, &j, k));
slice_metric!(
    /// AP@k with denominator min(k, R): Microsoft Recommenders `map_at_k` (name `map_minkr@k`).
    average_precision_min_kr_at_k, |g, j, k| ap_min_kr_from_grades(&g, &j, k));
slice_metric!(
    /// Reciprocal rank of the first relevant document within the top k (`mrr@k`).
    reciprocal_rank_at_k, |g, _j, k| rr_from_grades(&g, k));
slice_metric!(
    /// Precision@k: hits in the top k divided by k, even when fewer than k were ranked (`p@k`).
    precision_at_k, |g, _j, k| if k == 0 { 0.0 } else { hits_from_grades(&g, k) as f64 / k as f64 });
slice_metric!(
    /// Recall@k: hits in the top k divided by R; 0 when the query has no relevant document (`r@k`).
    recall_at_k, |g, j, k| if j.n_relevant == 0 { 0.0 } else { hits_from_grades(&g, k) as f64 / j.n_relevant as f64 });
slice_metric!(
    /// Hit rate@k: 1 when any relevant document is in the top k, else 0 (`hit@k`).
    hit_at_k, |g, _j, k| f64::from(u8::from(hits_from_grades(&g, k) > 0)));

/// scikit-learn `ndcg_score` (default `ignore_ties=False`): gains of documents with tied
/// scores are averaged (McSherry & Najork 2008). Judged documents missing from `scored`
/// form one tied group below every scored document, as in the reference's candidate row.
/// An empty `scored` gives 0. Linear gain; metric name `ndcg_sklearn@k`.
pub fn ndcg_tie_averaged_at_k<K, S>(
    scored: &[(&str, f64)],
    relevance: &HashMap<K, f64, S>,
    k: usize,
) -> f64
where
    K: Borrow<str> + Hash + Eq,
    S: BuildHasher,
{
    let judged = summary(relevance);
    let ideal: f64 = judged
        .ideal_grades
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g * discount(i))
        .sum();
    if scored.is_empty() || ideal <= 0.0 {
        return 0.0;
    }
    let mut order: Vec<(f64, f64)> = scored
        .iter()
        .map(|(d, s)| (*s, relevance.get(*d).copied().unwrap_or(0.0)))
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut groups: Vec<(usize, f64)> = Vec::new(); // (size, gain sum)
    for (i, (score, grade)) in order.iter().enumerate() {
        match groups.last_mut() {
            Some(last) if i > 0 && order[i - 1].0 == *score => {
                last.0 += 1;
                last.1 += grade;
            }
            _ => groups.push((1, *grade)),
        }
    }
    let retrieved: HashSet<&str> = scored.iter().map(|(d, _)| *d).collect();
    let (missing, missing_gain) = relevance
        .iter()
        .filter(|(d, _)| !retrieved.contains((*d).borrow()))
        .fold((0usize, 0.0), |(n, s), (_, g)| (n + 1, s + g));
    if missing > 0 {
        groups.push((missing, missing_gain));
    }
    let mut dcg = 0.0;
    let mut start = 0usize;
    for (size, gain_sum) in groups {
        let discounts: f64 = (start..(start + size).min(k)).map(discount).sum();
        dcg += gain_sum / size as f64 * discounts;
        start += size;
    }
    dcg / ideal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judgments() -> HashMap<&'static str, f64> {
        HashMap::from([("a", 3.0), ("b", 2.0), ("c", 0.0), ("d", 1.0)])
    }

    #[test]
    fn ndcg_by_hand() {
        // ranked c,a,x: DCG = 0 + 3/log2(3); IDCG@3 = 3 + 2/log2(3) + 1/2
        let rel = judgments();
        let want = (3.0 / 3f64.log2()) / (3.0 + 2.0 / 3f64.log2() + 0.5);
        assert!((ndcg_at_k(&["c", "a", "x"], &rel, 3) - want).abs() < 1e-15);
        // exponential: gains 7, 3, 1
        let want = (7.0 / 3f64.log2()) / (7.0 + 3.0 / 3f64.log2() + 0.5);
        assert!((ndcg_exp_at_k(&["c", "a", "x"], &rel, 3) - want).abs() < 1e-15);
        // binary, R = 3, k = 2: DCG = 1/log2(3), IDCG = 1 + 1/log2(3)
        let want = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg_binary_at_k(&["c", "a", "x"], &rel, 2) - want).abs() < 1e-15);
    }

    #[test]
    fn ap_variants_by_hand() {
        let rel = judgments(); // R = 3
        let ranked = ["a", "c", "d"]; // hits at 1 and 3: 1 + 2/3
        assert!((average_precision_at_k(&ranked, &rel, 3) - (5.0 / 3.0) / 3.0).abs() < 1e-15);
        assert!((average_precision_min_kr_at_k(&ranked, &rel, 2) - 1.0 / 2.0).abs() < 1e-15);
        assert_eq!(reciprocal_rank_at_k(&["c", "x", "d"], &rel, 3), 1.0 / 3.0);
        assert_eq!(reciprocal_rank_at_k(&["c", "x", "d"], &rel, 2), 0.0);
        assert_eq!(precision_at_k(&["a"], &rel, 5), 0.2);
        assert_eq!(recall_at_k(&["a", "b"], &rel, 5), 2.0 / 3.0);
        assert_eq!(hit_at_k(&["c", "a"], &rel, 1), 0.0);
        assert_eq!(hit_at_k(&["c", "a"], &rel, 2), 1.0);
    }

    #[test]
    fn no_relevant_document_scores_zero_not_nan() {
        let rel: HashMap<String, f64> = HashMap::from([("a".to_string(), 0.0)]);
        for v in [
            ndcg_at_k(&["a"], &rel, 5),
            average_precision_at_k(&["a"], &rel, 5),
            recall_at_k(&["a"], &rel, 5),
            ndcg_tie_averaged_at_k(&[("a", 1.0)], &rel, 5),
        ] {
            assert_eq!(v, 0.0);
        }
    }

    #[test]
    fn tie_averaging_splits_gain_across_tied_positions() {
        // a (3) and c (0) tie at the top: each position gets gain 1.5.
        let rel = HashMap::from([("a", 3.0), ("c", 0.0)]);
        let got = ndcg_tie_averaged_at_k(&[("a", 0.5), ("c", 0.5)], &rel, 2);
        let want = (1.5 + 1.5 / 3f64.log2()) / 3.0;
        assert!((got - want).abs() < 1e-15);
    }
}
