//! MovieLens 100K quality of the trained channels, under the protocol of
//! `shared/research/peers-ml100k.md`: per-user random 75/25 split (seeded), every rating
//! a positive, candidates = all train items minus the user's own train items, and the
//! Microsoft Recommenders metrics at k = 10 (binary-gain NDCG with IDCG over
//! min(10, |relevant|), precision, recall, MAP@10 with denominator min(10, |relevant|)).
//!
//! The peers' figures on this protocol (same file): popularity 0.2497, iALS (implicit,
//! 32 f, reg 30, α 10) 0.4396, EASE (λ 500) 0.4799 NDCG@10. Our split draws different
//! random halves, so figures differ from theirs by sampling noise (about ±0.01).
//!
//! The data is `ml-100k/u.data.gz` under `$FLYWHEEL_DATASETS`, else under `../shared/data`
//! beside the workspace; without it the MovieLens tests report `SKIP …` and return
//! (`tests/support/skip.rs`; `scripts/test.sh` counts them).

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use flywheel_core::{ItemId, UserId};
use flywheel_retrieval::{AlsModel, AlsParams, EaseModel, Interactions, PopularityModel};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const K: usize = 10;

#[path = "../../../tests/support/skip.rs"]
mod skip;

/// `(user, item)` pairs of MovieLens 100K's `u.data.gz` (tab-separated user, item, rating,
/// timestamp), found under `$FLYWHEEL_DATASETS` or `../shared/data`; `None` (the test
/// named `test` reported as skipped) when neither has it. MovieLens may not be
/// redistributed, so the repository does not carry it.
fn load_ml100k(test: &str) -> Option<Vec<(u32, u32)>> {
    let path = skip::dataset(test, "ml-100k/u.data.gz")?;
    let file =
        std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("gunzip u.data.gz");
    let pairs = text
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let mut fields = line.split('\t').map(|f| f.parse::<u32>());
            match (fields.next(), fields.next()) {
                (Some(Ok(u)), Some(Ok(i))) => (u, i),
                _ => panic!(
                    "{}:{}: expected user<TAB>item<TAB>…, got {line:?}",
                    path.display(),
                    n + 1
                ),
            }
        })
        .collect();
    Some(pairs)
}

type Split = (Vec<(u32, u32)>, Vec<(u32, u32)>);

/// Per user (ascending id), items shuffled with one seeded generator; the first
/// round(ratio·n) go to train, the rest to test.
fn split_per_user(pairs: &[(u32, u32)], ratio: f64, seed: u64) -> Split {
    let mut by_user: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for &(u, i) in pairs {
        by_user.entry(u).or_default().push(i);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (u, mut items) in by_user {
        items.sort_unstable();
        items.shuffle(&mut rng);
        let cut = ((items.len() as f64) * ratio).round() as usize;
        train.extend(items[..cut].iter().map(|&i| (u, i)));
        test.extend(items[cut..].iter().map(|&i| (u, i)));
    }
    (train, test)
}

fn user_id(u: u32) -> UserId {
    UserId::new_unchecked(format!("u{u}"))
}

fn item_id(i: u32) -> ItemId {
    ItemId::new_unchecked(format!("i{i}"))
}

fn interactions(pairs: &[(u32, u32)]) -> Interactions {
    Interactions::from_triples(pairs.iter().map(|&(u, i)| (user_id(u), item_id(i), 1.0)))
}

fn group(pairs: &[(u32, u32)]) -> BTreeMap<u32, HashSet<ItemId>> {
    let mut out: BTreeMap<u32, HashSet<ItemId>> = BTreeMap::new();
    for &(u, i) in pairs {
        out.entry(u).or_default().insert(item_id(i));
    }
    out
}

/// Mean metrics over test users.
#[derive(Debug, Clone, Copy, Default)]
struct Metrics {
    ndcg: f64,
    precision: f64,
    recall: f64,
    map: f64,
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NDCG@10 {:.4}  P@10 {:.4}  R@10 {:.4}  MAP@10 {:.4}",
            self.ndcg, self.precision, self.recall, self.map
        )
    }
}

fn user_metrics(ranked: &[ItemId], relevant: &HashSet<ItemId>) -> Metrics {
    let (mut dcg, mut hits, mut ap) = (0.0, 0.0, 0.0);
    for (r, item) in ranked.iter().take(K).enumerate() {
        if relevant.contains(item) {
            hits += 1.0;
            dcg += 1.0 / ((r + 2) as f64).log2();
            ap += hits / (r + 1) as f64;
        }
    }
    let ideal = relevant.len().min(K);
    let idcg: f64 = (0..ideal).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    Metrics {
        ndcg: dcg / idcg,
        precision: hits / K as f64,
        recall: hits / relevant.len() as f64,
        map: ap / ideal as f64,
    }
}

/// Scores a recommender `(user, their train items) → top items` on the test pairs.
fn evaluate(
    train: &[(u32, u32)],
    test: &[(u32, u32)],
    recommend: impl Fn(u32, &HashSet<ItemId>) -> Vec<ItemId>,
) -> Metrics {
    let seen = group(train);
    let truth = group(test);
    let empty = HashSet::new();
    let mut sum = Metrics::default();
    for (u, relevant) in &truth {
        let ranked = recommend(*u, seen.get(u).unwrap_or(&empty));
        let m = user_metrics(&ranked, relevant);
        sum.ndcg += m.ndcg;
        sum.precision += m.precision;
        sum.recall += m.recall;
        sum.map += m.map;
    }
    let n = truth.len() as f64;
    Metrics {
        ndcg: sum.ndcg / n,
        precision: sum.precision / n,
        recall: sum.recall / n,
        map: sum.map / n,
    }
}

fn history(items: &HashSet<ItemId>) -> Vec<(ItemId, f32)> {
    let mut h: Vec<(ItemId, f32)> = items.iter().map(|i| (i.clone(), 1.0)).collect();
    h.sort_by(|a, b| a.0.cmp(&b.0));
    h
}

fn ids(scored: Vec<(ItemId, f32)>) -> Vec<ItemId> {
    scored.into_iter().map(|(i, _)| i).collect()
}

fn eval_popularity(train: &[(u32, u32)], test: &[(u32, u32)]) -> Metrics {
    let model = PopularityModel::train(&interactions(train), &[]);
    evaluate(train, test, |_, seen| ids(model.recommend(K, seen)))
}

fn eval_ease(train: &[(u32, u32)], test: &[(u32, u32)], lambda: f32) -> Metrics {
    let model = EaseModel::train(&interactions(train), lambda).expect("EASE trains");
    evaluate(train, test, |_, seen| {
        ids(model.recommend_for_history(&history(seen), K, seen))
    })
}

fn eval_als(train: &[(u32, u32)], test: &[(u32, u32)], params: &AlsParams) -> Metrics {
    let model = AlsModel::train(&interactions(train), params).expect("ALS trains");
    evaluate(train, test, |u, seen| {
        ids(model.recommend_for_user(&user_id(u), K, seen))
    })
}

#[test]
fn movielens_split_follows_the_protocol() {
    let Some(pairs) = load_ml100k("movielens_split_follows_the_protocol") else {
        return;
    };
    assert_eq!(
        pairs.len(),
        100_000,
        "MovieLens 100K has 100,000 ratings (its README)"
    );
    let (train, test) = split_per_user(&pairs, 0.75, 42);
    assert_eq!(train.len() + test.len(), pairs.len());
    let (train_users, test_users) = (group(&train), group(&test));
    assert_eq!(
        test_users.len(),
        943,
        "every one of the 943 users has a test rating"
    );
    for (u, items) in &test_users {
        let seen = &train_users[u];
        assert!(items.is_disjoint(seen));
        let expected = 0.75 * (seen.len() + items.len()) as f64;
        assert!(
            (seen.len() as f64 - expected).abs() <= 0.5,
            "user {u}: {} train items",
            seen.len()
        );
    }
}

/// The headline test: EASE and ALS beat popularity by a wide margin and reach the
/// peers' level. Hyper-parameters are the ones chosen on validation (`tune_on_validation`,
/// release build, 2 cores): EASE λ = 300 (validation NDCG@10 0.1797; λ 500: 0.1783) and
/// ALS 48 factors, reg 30, α 3, 15 iterations (0.1853; best of 60 settings over
/// factors 32/48/64/96, reg 5/10/20/30/50, α 1/3/10).
#[test]
fn movielens_ease_and_als_beat_popularity_and_the_floors() {
    let Some(pairs) = load_ml100k("movielens_ease_and_als_beat_popularity_and_the_floors") else {
        return;
    };
    let (train, test) = split_per_user(&pairs, 0.75, 42);
    let popularity = eval_popularity(&train, &test);
    let ease = eval_ease(&train, &test, 300.0);
    let als = eval_als(&train, &test, &AlsParams::default());
    println!("popularity  {popularity}\nEASE λ=300  {ease}\nALS default {als}");
    // Peers (research/peers-ml100k.md): popularity 0.2497, iALS 0.4396, EASE 0.4799.
    assert!(
        (0.22..0.28).contains(&popularity.ndcg),
        "popularity {popularity}"
    );
    // Measured here: EASE 0.4816, ALS 0.4842; floors leave about twice the sampling noise.
    assert!(ease.ndcg > 0.46, "EASE {ease}");
    assert!(als.ndcg > 0.45, "ALS {als}");
    assert!(ease.ndcg > popularity.ndcg + 0.1 && als.ndcg > popularity.ndcg + 0.1);
    assert!(ease.precision > 0.38 && als.precision > 0.35);
}

/// Honest tuning: a 90/10 validation split of train (seed 7), grid search on
/// validation NDCG@10. Run with
/// `cargo test --release -p flywheel-retrieval --test integration -- --ignored --nocapture`.
#[test]
#[ignore = "tuning grid: minutes in debug; run on purpose"]
fn tune_on_validation() {
    let Some(pairs) = load_ml100k("tune_on_validation") else {
        return;
    };
    let (train, _) = split_per_user(&pairs, 0.75, 42);
    let (fit, valid) = split_per_user(&train, 0.9, 7);
    for lambda in [100.0, 200.0, 300.0, 500.0, 800.0, 1200.0] {
        println!("EASE λ={lambda:<6} {}", eval_ease(&fit, &valid, lambda));
    }
    for factors in [32, 48, 64, 96] {
        for regularization in [5.0, 10.0, 20.0, 30.0, 50.0] {
            for alpha in [1.0, 3.0, 10.0] {
                let params = AlsParams {
                    factors,
                    regularization,
                    alpha,
                    iterations: 15,
                    seed: 42,
                };
                let m = eval_als(&fit, &valid, &params);
                println!("ALS f={factors} reg={regularization} α={alpha}  {m}");
            }
        }
    }
}

#[test]
fn trained_models_round_trip_through_bincode() {
    // Any interactions do: 60 users with 5 to 40 of 200 items each, seeded, so the test
    // runs without the dataset.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let all: Vec<u32> = (1..=200).collect();
    let pairs: Vec<(u32, u32)> = (1..=60)
        .flat_map(|u| {
            let n = rng.gen_range(5..=40);
            let items: Vec<u32> = all.choose_multiple(&mut rng, n).copied().collect();
            items.into_iter().map(move |i| (u, i))
        })
        .collect();
    let data = interactions(&pairs);
    let ease = EaseModel::train(&data, 50.0).unwrap();
    let back: EaseModel = bincode::deserialize(&bincode::serialize(&ease).unwrap()).unwrap();
    assert_eq!(back, ease);
    let params = AlsParams {
        factors: 8,
        iterations: 3,
        ..AlsParams::default()
    };
    let als = AlsModel::train(&data, &params).unwrap();
    let back: AlsModel = bincode::deserialize(&bincode::serialize(&als).unwrap()).unwrap();
    let none = HashSet::new();
    assert_eq!(
        back.recommend_for_user(&user_id(1), 5, &none),
        als.recommend_for_user(&user_id(1), 5, &none)
    );
}
