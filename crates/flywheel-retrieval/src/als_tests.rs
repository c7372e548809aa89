//! Unit tests of implicit ALS: the exact per-row solve, fold-in and similarity.

use super::*;
use rand::seq::SliceRandom;
use std::collections::HashMap;

/// Three taste clusters of 20 items; each of 90 users picks 8 items of their cluster
/// and one random item anywhere.
pub(crate) fn clustered() -> Interactions {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut triples = Vec::new();
    for u in 0..90 {
        let cluster = u % 3;
        let mut own: Vec<usize> = (cluster * 20..cluster * 20 + 20).collect();
        own.shuffle(&mut rng);
        own.truncate(8);
        own.push(rng.gen_range(0..60));
        for i in own {
            let weight = if i % 4 == 0 { 2.0 } else { 1.0 };
            triples.push((
                UserId::new_unchecked(format!("u{u}")),
                ItemId::new_unchecked(format!("i{i}")),
                weight,
            ));
        }
    }
    Interactions::from_triples(triples)
}

fn params(factors: usize, regularization: f32, alpha: f32) -> AlsParams {
    AlsParams {
        factors,
        regularization,
        alpha,
        iterations: 15,
        seed: 1,
    }
}

#[test]
fn one_row_solve_matches_hand_computation() {
    // k = 1, one item with y = 2, weight 1, α = 1, λ = 1:
    // A = YᵀY + λ + (c − 1)·y² = 4 + 1 + 4 = 9, b = c·y = 2·2 = 4, x = 4/9.
    let p = params(1, 1.0, 1.0);
    let x = solve_row(&[(0, 1.0)], &[2.0], &gram_matrix(&[2.0], 1), &p);
    assert!((x[0] - 4.0 / 9.0).abs() < 1e-6, "{x:?}");
    // k = 2, Y = I, one observed item 0 with weight 1, α = 2, λ = 1:
    // A = I + I + 2·e₀e₀ᵀ = diag(4, 2), b = 3·e₀, x = (0.75, 0).
    let y = [1.0, 0.0, 0.0, 1.0];
    let x = solve_row(&[(0, 1.0)], &y, &gram_matrix(&y, 2), &params(2, 1.0, 2.0));
    assert!((x[0] - 0.75).abs() < 1e-6 && x[1].abs() < 1e-6, "{x:?}");
}

#[test]
fn fold_in_of_a_trained_users_history_reproduces_their_recommendations() {
    let data = clustered();
    let model = AlsModel::train(&data, &params(8, 1.0, 5.0)).unwrap();
    for u in [0usize, 1, 2, 17, 44] {
        let user = &data.user_ids()[u];
        let history: Vec<(ItemId, f32)> = data
            .by_user()
            .row(u)
            .iter()
            .map(|&(i, w)| (data.item_ids()[i as usize].clone(), w))
            .collect();
        let trained = model.user_vector(user).unwrap();
        let folded = model.fold_in(&history).unwrap();
        let cosine = dot_f32(trained, &folded)
            / (dot_f32(trained, trained) * dot_f32(&folded, &folded)).sqrt();
        assert!(cosine > 0.99, "user {u}: cosine {cosine}");
        let seen: HashSet<ItemId> = history.iter().map(|(i, _)| i.clone()).collect();
        let a: Vec<ItemId> = model
            .recommend_for_user(user, 10, &seen)
            .into_iter()
            .map(|x| x.0)
            .collect();
        let b: Vec<ItemId> = model
            .recommend_for_history(&history, 10, &seen)
            .into_iter()
            .map(|x| x.0)
            .collect();
        let overlap = a.iter().filter(|i| b.contains(i)).count();
        assert!(overlap >= 9, "user {u}: {a:?} vs {b:?}");
        assert!(a.iter().all(|i| !seen.contains(i)));
    }
}

#[test]
fn recommends_and_relates_within_the_taste_cluster() {
    let data = clustered();
    let model = AlsModel::train(&data, &params(8, 1.0, 5.0)).unwrap();
    let cluster_of = |id: &ItemId| id.as_str()[1..].parse::<usize>().unwrap() / 20;
    let similar = model.similar_items(&ItemId::new_unchecked("i3"), 10);
    assert_eq!(similar.len(), 10);
    assert!(similar
        .iter()
        .all(|(id, s)| id.as_str() != "i3" && *s <= 1.0 + 1e-5));
    let same = similar.iter().filter(|(id, _)| cluster_of(id) == 0).count();
    assert!(same >= 7, "{similar:?}");
    let cold = [
        (ItemId::new_unchecked("i41"), 1.0),
        (ItemId::new_unchecked("i45"), 1.0),
    ];
    // A cold history in cluster 2: at least 7 of 10 from it (chance level: 3.3).
    let recs = model.recommend_for_history(&cold, 10, &HashSet::new());
    assert!(
        recs.iter().filter(|(id, _)| cluster_of(id) == 2).count() >= 7,
        "{recs:?}"
    );
}

#[test]
fn degenerate_inputs_give_errors_or_empty_lists_never_nan() {
    let empty = Interactions::from_triples(Vec::new());
    let err = AlsModel::train(&empty, &AlsParams::default()).unwrap_err();
    assert!(
        matches!(err, RetrievalError::EmptyInteractions { model: "ALS" }),
        "{err}"
    );
    let data = clustered();
    for bad in [
        AlsParams {
            factors: 0,
            ..AlsParams::default()
        },
        AlsParams {
            regularization: 0.0,
            ..AlsParams::default()
        },
        AlsParams {
            alpha: f32::NAN,
            ..AlsParams::default()
        },
        AlsParams {
            iterations: 0,
            ..AlsParams::default()
        },
    ] {
        assert!(matches!(
            AlsModel::train(&data, &bad),
            Err(RetrievalError::InvalidParameter { .. })
        ));
    }
    let model = AlsModel::train(&data, &params(4, 1.0, 1e6)).unwrap();
    assert!(model
        .user_factors
        .iter()
        .chain(&model.item_factors)
        .all(|v| v.is_finite()));
    let none = HashSet::new();
    assert!(model
        .recommend_for_user(&UserId::new_unchecked("nobody"), 5, &none)
        .is_empty());
    assert!(model
        .recommend_for_history(&[(ItemId::new_unchecked("zz"), 1.0)], 5, &none)
        .is_empty());
    assert!(model.recommend_for_vector(&[1.0], 5, &none).is_empty());
    assert!(model
        .similar_items(&ItemId::new_unchecked("zz"), 5)
        .is_empty());
}

#[test]
fn a_damaged_snapshot_answers_nothing_instead_of_panicking() {
    let mut model = AlsModel::train(&clustered(), &params(4, 1.0, 1.0)).unwrap();
    model.item_factors.truncate(7);
    assert!(!model.is_consistent());
    let none = HashSet::new();
    let history = [(ItemId::new_unchecked("i3"), 1.0)];
    assert!(model
        .recommend_for_user(&UserId::new_unchecked("u0"), 5, &none)
        .is_empty());
    assert!(model.recommend_for_history(&history, 5, &none).is_empty());
    assert!(model
        .similar_items(&ItemId::new_unchecked("i3"), 5)
        .is_empty());
    assert!(model.item_vector(&ItemId::new_unchecked("i3")).is_none());
}

/// Four taste clusters of 25 items; each of 160 users keeps 10 items of their cluster
/// and 2 random ones for training and 3 more of their cluster for the test.
fn clustered_with_holdout() -> (Interactions, Vec<(UserId, HashSet<ItemId>)>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let (mut triples, mut held_out) = (Vec::new(), Vec::new());
    for u in 0..160 {
        let user = UserId::new_unchecked(format!("u{u}"));
        let cluster = u % 4;
        let mut own: Vec<usize> = (cluster * 25..cluster * 25 + 25).collect();
        own.shuffle(&mut rng);
        let mut train: Vec<usize> = own[..10].to_vec();
        train.extend((0..2).map(|_| rng.gen_range(0..100)));
        let test: HashSet<ItemId> = own[10..13]
            .iter()
            .filter(|i| !train.contains(i))
            .map(|i| ItemId::new_unchecked(format!("i{i}")))
            .collect();
        for i in train {
            triples.push((user.clone(), ItemId::new_unchecked(format!("i{i}")), 1.0));
        }
        held_out.push((user, test));
    }
    (Interactions::from_triples(triples), held_out)
}

/// Mean binary-gain NDCG@10 of the model's lists (train items excluded) on the held-out items.
fn holdout_ndcg(
    model: &AlsModel,
    data: &Interactions,
    held_out: &[(UserId, HashSet<ItemId>)],
) -> f64 {
    let mut total = 0.0;
    for (user, relevant) in held_out {
        let u = data.user_ids().iter().position(|x| x == user).unwrap();
        let seen: HashSet<ItemId> = data
            .by_user()
            .row(u)
            .iter()
            .map(|&(i, _)| data.item_ids()[i as usize].clone())
            .collect();
        let list = model.recommend_for_user(user, 10, &seen);
        let dcg: f64 = list
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| relevant.contains(id))
            .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
            .sum();
        let ideal: f64 = (0..relevant.len().min(10))
            .map(|r| 1.0 / ((r + 2) as f64).log2())
            .sum();
        total += dcg / ideal;
    }
    total / held_out.len() as f64
}

#[test]
fn conjugate_gradient_reaches_the_exact_row_solution() {
    // A user of the clustered fixture against random item factors: k CG steps from zero
    // solve the k×k system exactly (up to f32 rounding).
    let data = clustered();
    let k = 8;
    let p = params(k, 2.0, 4.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let items: Vec<f32> = (0..data.num_items() * k)
        .map(|_| rng.gen_range(-0.5..0.5))
        .collect();
    let exact_gram = gram_matrix(&items, k);
    let cg_gram = crate::als_cg::gram_with_ridge(&items, k, p.regularization);
    for u in [0usize, 7, 50] {
        let row = data.by_user().row(u);
        let exact = solve_row(row, &items, &exact_gram, &p);
        let system = crate::als_cg::RowSystem {
            row,
            other: &items,
            gram: &cg_gram,
            alpha: p.alpha,
            k,
        };
        let mut x = vec![0.0f32; k];
        system.solve(&mut x, 2 * k, &mut crate::als_cg::Work::new(k));
        let error: f32 = x.iter().zip(&exact).map(|(a, b)| (a - b).powi(2)).sum();
        let norm: f32 = exact.iter().map(|v| v * v).sum();
        assert!(
            error.sqrt() <= 1e-3 * norm.sqrt(),
            "user {u}: {x:?} vs {exact:?}"
        );
        // Three steps already get most of the way (the property ALS relies on).
        let mut three = vec![0.0f32; k];
        system.solve(&mut three, 3, &mut crate::als_cg::Work::new(k));
        let error3: f32 = three.iter().zip(&exact).map(|(a, b)| (a - b).powi(2)).sum();
        assert!(
            error3.sqrt() <= 0.5 * norm.sqrt(),
            "user {u}: {three:?} vs {exact:?}"
        );
    }
}

#[test]
fn conjugate_gradient_training_ranks_as_well_as_the_exact_solver() {
    let (data, held_out) = clustered_with_holdout();
    let p = params(16, 5.0, 5.0);
    let cg = AlsModel::train(&data, &p).unwrap();
    let exact = AlsModel::train_with_solver(&data, &p, AlsSolver::Cholesky).unwrap();
    let (cg_ndcg, exact_ndcg) = (
        holdout_ndcg(&cg, &data, &held_out),
        holdout_ndcg(&exact, &data, &held_out),
    );
    assert!(exact_ndcg > 0.3, "exact {exact_ndcg}");
    assert!(
        (cg_ndcg - exact_ndcg).abs() < 0.02,
        "CG {cg_ndcg} vs exact {exact_ndcg}"
    );
    // The factors themselves agree closely: the warm-started CG tracks the exact sweeps.
    let cosine = |a: &[f32], b: &[f32]| dot_f32(a, b) / (dot_f32(a, a) * dot_f32(b, b)).sqrt();
    let item = ItemId::new_unchecked("i3");
    let c = cosine(
        cg.item_vector(&item).unwrap(),
        exact.item_vector(&item).unwrap(),
    );
    assert!(c > 0.95, "item factor cosine {c}");
}

#[test]
fn a_cg_step_count_out_of_range_is_refused_by_name() {
    let err = AlsModel::train_with_solver(
        &clustered(),
        &AlsParams::default(),
        AlsSolver::ConjugateGradient { steps: 0 },
    )
    .unwrap_err();
    assert!(err.to_string().contains("cg_steps"), "{err}");
}

/// 4,000 items in 40 taste clusters; 1,500 users each take 12 items of their cluster.
fn large_catalog() -> Interactions {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut triples = Vec::new();
    for u in 0..1500 {
        let cluster = u % 40;
        for _ in 0..12 {
            let i = cluster * 100 + rng.gen_range(0..100);
            triples.push((
                UserId::new_unchecked(format!("u{u}")),
                ItemId::new_unchecked(format!("i{i}")),
                1.0,
            ));
        }
    }
    Interactions::from_triples(triples)
}

#[test]
fn the_item_index_serves_what_the_exact_scan_finds() {
    let data = large_catalog();
    let mut model = AlsModel::train(&data, &params(32, 0.1, 10.0)).unwrap();
    let settings = AnnSettings {
        min_items: 1000,
        ..AnnSettings::default()
    };
    assert!(model.build_index(&settings).unwrap());
    let (mut hits, mut total) = (0usize, 0usize);
    for u in (0..1500).step_by(15) {
        let user = UserId::new_unchecked(format!("u{u}"));
        let vector = model.user_vector(&user).unwrap().to_vec();
        // Exclude what the user has (as serving does), so the filter is exercised.
        let seen: HashSet<ItemId> = data
            .by_user()
            .row(data.user_ids().iter().position(|x| *x == user).unwrap())
            .iter()
            .map(|(i, _)| data.item_ids()[*i as usize].clone())
            .collect();
        let exact = model.recommend_exactly(&vector, 10, &seen);
        let served = model.recommend_for_vector(&vector, 10, &seen);
        assert_eq!(served.len(), 10);
        assert!(served.iter().all(|(id, _)| !seen.contains(id)));
        hits += served
            .iter()
            .filter(|s| exact.iter().any(|e| e.0 == s.0))
            .count();
        total += exact.len();
    }
    let recall = hits as f64 / total as f64;
    assert!(
        recall >= 0.95,
        "recall@10 of the index against the exact scan: {recall}"
    );
}

#[test]
fn small_catalogs_keep_the_exact_scan_and_a_misfit_index_is_refused() {
    let data = clustered();
    let mut model = AlsModel::train(&data, &params(8, 1.0, 5.0)).unwrap();
    assert!(!model.build_index(&AnnSettings::default()).unwrap());
    assert!(model.index().is_none());
    let other = ItemIndex::build(&vec![0.5; 8 * 10], 8, &AnnSettings::default()).unwrap();
    assert!(model.attach_index(other).is_err());
}

/// The implicit-ALS objective: Σ c·(p − xᵀy)² over every user-item cell plus λ times
/// the squared norms of all factors.
fn objective(model: &AlsModel, data: &Interactions) -> f64 {
    let k = model.params.factors;
    let (alpha, lambda) = (
        model.params.alpha as f64,
        model.params.regularization as f64,
    );
    let mut total = 0.0;
    for u in 0..data.num_users() {
        let observed: HashMap<u32, f32> = data.by_user().row(u).iter().copied().collect();
        let x = &model.user_factors[u * k..(u + 1) * k];
        for i in 0..data.num_items() {
            let y = &model.item_factors[i * k..(i + 1) * k];
            let predicted = dot_f32(x, y) as f64;
            let (confidence, preference) = match observed.get(&(i as u32)) {
                Some(&w) => (1.0 + alpha * w as f64, 1.0),
                None => (1.0, 0.0),
            };
            total += confidence * (preference - predicted).powi(2);
        }
    }
    let norms: f64 = model
        .user_factors
        .iter()
        .chain(&model.item_factors)
        .map(|v| (*v as f64).powi(2))
        .sum();
    total + lambda * norms
}

#[test]
fn a_warm_start_reaches_in_two_sweeps_what_a_cold_start_needs_fifteen_for() {
    let (data, _) = clustered_with_holdout();
    // The previous version saw the first 120 users and not every item.
    let earlier = Interactions::from_triples(data.user_ids()[..120].iter().flat_map(|user| {
        let u = data.user_ids().iter().position(|x| x == user).unwrap();
        data.by_user()
            .row(u)
            .iter()
            .filter(|&&(i, _)| i % 10 != 0)
            .map(|&(i, w)| (user.clone(), data.item_ids()[i as usize].clone(), w))
            .collect::<Vec<_>>()
    }));
    let full = params(16, 5.0, 5.0);
    let previous = AlsModel::train(&earlier, &full).unwrap();
    let few = AlsParams {
        iterations: 2,
        ..full.clone()
    };
    assert!(previous.warm_start_coverage(&few, &data) * 10 >= data.num_items() * 8);
    let warm = AlsModel::train_warm(&data, &few, &previous).unwrap();
    let cold_few = AlsModel::train(&data, &few).unwrap();
    let cold_full = AlsModel::train(&data, &full).unwrap();
    let (warm, cold_few, cold_full) = (
        objective(&warm, &data),
        objective(&cold_few, &data),
        objective(&cold_full, &data),
    );
    assert!(warm < cold_few, "warm {warm} vs cold (2 sweeps) {cold_few}");
    assert!(
        warm <= cold_full * 1.03,
        "warm (2 sweeps) {warm} vs cold (15 sweeps) {cold_full}"
    );
    // A previous model of another dimension is no warm start.
    let other = AlsModel::train(&earlier, &params(8, 5.0, 5.0)).unwrap();
    assert_eq!(other.warm_start_coverage(&few, &data), 0);
}
