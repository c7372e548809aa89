//! `flywheel bench peers`: flywheel's retrieval beside implicit's ALS and popularity
//! on MovieLens 100K, same split, same metrics, one run.
//!
//! The protocol is `shared/research/peers-ml100k.md`: per user, a seeded random 75/25
//! split (as Microsoft Recommenders' `python_stratified_split(ratio=0.75,
//! filter_by="user")`); every rating is an implicit positive; candidates are all items
//! seen in train minus the user's own train items; top 10 for every test user. Metrics
//! are Recommenders' definitions, computed by `flywheel_eval::ranking`. The split is
//! written to `out/train.tsv` and `out/test.tsv` so that `scripts/bench_peers.py` scores
//! the peers on exactly the same pairs; its rows come back through `out/peers.json`.

use anyhow::{bail, Context, Result};
use flywheel_core::{Channel, ItemId, UserId};
use flywheel_eval::ranking;
// One line of `u.data`: user, item, rating, timestamp.
use flywheel_import::MovieLensRating as Rating;
use flywheel_import::{read_movielens_ratings, MovieLensVersion};
use flywheel_retrieval::{
    fuse_scores, AlsModel, AlsParams, AlsSolver, ChannelList, EaseModel, Interactions,
    PopularityModel,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::cpu;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The cutoff of every metric and the length of every list.
const K: usize = 10;
/// Share of each user's ratings that goes to train.
const TRAIN_RATIO: f64 = 0.75;
/// EASE's L2 penalty, chosen on the validation slice (flywheel-retrieval's crate doc).
const EASE_LAMBDA: f32 = 300.0;
/// How deep each channel's list goes into reciprocal-rank fusion.
const FUSION_DEPTH: usize = 100;
/// Thread counts every fit is timed on (the first one's models are scored for fusion).
const THREADS: [usize; 2] = [2, 1];
/// Fits per timing; the median is reported.
const REPEATS: usize = 3;
/// The factor count both sides' ALS is compared at (beside each side's tuned setting).
const COMMON_FACTORS: usize = 64;
/// Environment variable that overrides where the peers' script is looked for.
const SCRIPT_ENV: &str = "FLYWHEEL_BENCH_PEERS_SCRIPT";
/// The peers' script, relative to the repository root.
const SCRIPT_RELATIVE: &str = "scripts/bench_peers.py";

/// One system's mean metrics over the test users (the JSON shape shared with the script).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    system: String,
    ndcg: f64,
    precision: f64,
    recall: f64,
    map: f64,
    map10: f64,
    /// Median wall seconds of the fit.
    train_seconds: f64,
    /// Threads the fit ran on (0: not recorded).
    #[serde(default)]
    threads: usize,
    /// Median process CPU seconds of the fit (every thread), when measured.
    #[serde(default)]
    cpu_seconds: Option<f64>,
}

/// What the peers' script writes to `peers.json`.
#[derive(Debug, Deserialize)]
struct PeerReport {
    rows: Vec<Row>,
}

/// Runs the side-by-side benchmark.
pub fn run(ml_dir: &Path, out: &Path, seed: u64, python: Option<&Path>) -> Result<()> {
    let data = ml_dir.join("u.data.gz");
    let ratings = read_ratings(&data)?;
    let (train, test) = split_per_user(&ratings, TRAIN_RATIO, seed);
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let (train_tsv, test_tsv) = (out.join("train.tsv"), out.join("test.tsv"));
    write_tsv(&train_tsv, &train)?;
    write_tsv(&test_tsv, &test)?;
    println!(
        "bench peers: {} ratings from {}, per-user {:.0}/{:.0} split (seed {seed}): {} train, {} test; written to {}",
        ratings.len(),
        data.display(),
        TRAIN_RATIO * 100.0,
        (1.0 - TRAIN_RATIO) * 100.0,
        train.len(),
        test.len(),
        out.display()
    );
    let mut rows = flywheel_rows(&train, &test, seed)?;
    if let Some(python) = python {
        rows.extend(peer_rows(python, &train_tsv, &test_tsv, out, seed)?);
    }
    print_table(&rows);
    let results = out.join("results.json");
    std::fs::write(&results, serde_json::to_vec_pretty(&rows)?)
        .with_context(|| format!("write {}", results.display()))?;
    if python.is_none() {
        println!(
            "\nThe peers' rows (implicit's ALS, popularity in Python) need a Python with `implicit`:\n  \
             scripts/bench-peers.sh   (creates target/bench-venv, then runs this with --python target/bench-venv/bin/python)"
        );
    }
    Ok(())
}

/// Reads `u.data` (optionally gzipped) with flywheel-import's MovieLens reader.
fn read_ratings(path: &Path) -> Result<Vec<Rating>> {
    let ratings = read_movielens_ratings(path, MovieLensVersion::Ml100k)?
        .collect::<flywheel_import::Result<Vec<Rating>>>()?;
    if ratings.is_empty() {
        bail!(
            "{}: no ratings; is this MovieLens 100K's u.data?",
            path.display()
        );
    }
    Ok(ratings)
}

/// Per user (ascending id), the user's ratings in file order shuffled by one seeded
/// generator; the first round(ratio·n) go to train, the rest to test. Halves round to
/// even, as Python's `round` in Recommenders' `split_pandas_data_with_ratios`.
fn split_per_user(ratings: &[Rating], ratio: f64, seed: u64) -> (Vec<Rating>, Vec<Rating>) {
    let mut by_user: BTreeMap<u32, Vec<Rating>> = BTreeMap::new();
    for r in ratings {
        by_user.entry(r.user).or_default().push(*r);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (_, mut own) in by_user {
        own.shuffle(&mut rng);
        let cut = ((own.len() as f64) * ratio).round_ties_even() as usize;
        let (head, tail) = own.split_at(cut.min(own.len()));
        train.extend_from_slice(head);
        test.extend_from_slice(tail);
    }
    (train, test)
}

fn write_tsv(path: &Path, ratings: &[Rating]) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for r in ratings {
        writeln!(w, "{}\t{}\t{}\t{}", r.user, r.item, r.rating, r.timestamp)?;
    }
    w.flush()
        .with_context(|| format!("write {}", path.display()))
}

fn user_id(u: u32) -> UserId {
    UserId::new_unchecked(u.to_string())
}

fn item_id(i: u32) -> ItemId {
    ItemId::new_unchecked(i.to_string())
}

/// Each user's train items (what is excluded) and test items (what is relevant).
struct Truth {
    seen: BTreeMap<u32, HashSet<ItemId>>,
    relevant: BTreeMap<u32, HashMap<ItemId, f64>>,
}

impl Truth {
    fn new(train: &[Rating], test: &[Rating]) -> Self {
        let mut seen: BTreeMap<u32, HashSet<ItemId>> = BTreeMap::new();
        for r in train {
            seen.entry(r.user).or_default().insert(item_id(r.item));
        }
        let mut relevant: BTreeMap<u32, HashMap<ItemId, f64>> = BTreeMap::new();
        for r in test {
            relevant
                .entry(r.user)
                .or_default()
                .insert(item_id(r.item), 1.0);
        }
        Truth { seen, relevant }
    }

    /// Mean metrics over the test users of `recommend(user, their train items)`.
    fn score(
        &self,
        system: &str,
        fit: Fit,
        recommend: impl Fn(u32, &HashSet<ItemId>) -> Vec<ItemId>,
    ) -> Row {
        let empty = HashSet::new();
        let mut sums = [0.0f64; 5];
        for (user, relevance) in &self.relevant {
            let list = recommend(*user, self.seen.get(user).unwrap_or(&empty));
            let ranked: Vec<&str> = list.iter().map(ItemId::as_str).collect();
            let values = [
                ranking::ndcg_binary_at_k(&ranked, relevance, K),
                ranking::precision_at_k(&ranked, relevance, K),
                ranking::recall_at_k(&ranked, relevance, K),
                ranking::average_precision_at_k(&ranked, relevance, K),
                ranking::average_precision_min_kr_at_k(&ranked, relevance, K),
            ];
            for (sum, value) in sums.iter_mut().zip(values) {
                *sum += value;
            }
        }
        let users = self.relevant.len().max(1) as f64;
        Row {
            system: system.to_string(),
            ndcg: sums[0] / users,
            precision: sums[1] / users,
            recall: sums[2] / users,
            map: sums[3] / users,
            map10: sums[4] / users,
            train_seconds: fit.wall,
            threads: fit.threads,
            cpu_seconds: fit.cpu,
        }
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

/// How long a fit took: median wall and process-CPU seconds, and its thread count.
#[derive(Debug, Clone, Copy, Default)]
struct Fit {
    wall: f64,
    cpu: Option<f64>,
    threads: usize,
}

/// CPU seconds this process has used so far: the live threads' scheduler runtime
/// (nanoseconds), else utime + stime (clock ticks); `None` off Linux.
fn process_cpu_seconds() -> Option<f64> {
    cpu::live_threads_cpu_seconds()
        .or_else(|_| cpu::process_cpu_seconds())
        .ok()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `train` [`REPEATS`] times on a rayon pool of `threads` threads; the last result
/// and the median wall and CPU seconds. The pool lives across the measurements, so its
/// threads' CPU time is counted.
fn timed<T: Send>(threads: usize, train: impl Fn() -> T + Sync) -> Result<(T, Fit)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("build the rayon pool")?;
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..REPEATS {
        let cpu = process_cpu_seconds();
        let start = Instant::now();
        let value = pool.install(&train);
        walls.push(start.elapsed().as_secs_f64());
        if let (Some(before), Some(after)) = (cpu, process_cpu_seconds()) {
            cpus.push(after - before);
        }
        last = Some(value);
    }
    let fit = Fit {
        wall: median(&mut walls),
        cpu: (cpus.len() == REPEATS).then(|| median(&mut cpus)),
        threads,
    };
    Ok((last.context("at least one fit")?, fit))
}

/// The trained models of one thread count and their rows.
struct Trained {
    ease: EaseModel,
    als: AlsModel,
    ease_fit: Fit,
    als_fit: Fit,
    rows: Vec<Row>,
}

fn als_name(params: &AlsParams, solver: &str) -> String {
    format!(
        "flywheel ALS ({} f, {} it, reg {}, α {}{solver})",
        params.factors, params.iterations, params.regularization, params.alpha
    )
}

/// EASE, ALS at the common and at the tuned setting on `threads` threads.
fn train_on(data: &Interactions, truth: &Truth, seed: u64, threads: usize) -> Result<Trained> {
    let tuned = AlsParams {
        seed,
        ..AlsParams::default()
    };
    let common = AlsParams {
        factors: COMMON_FACTORS,
        ..tuned.clone()
    };
    let (ease, ease_fit) = timed(threads, || EaseModel::train(data, EASE_LAMBDA))?;
    let ease = ease.context("train EASE")?;
    let (als_common, common_fit) = timed(threads, || AlsModel::train(data, &common))?;
    let als_common = als_common.context("train ALS")?;
    let (als, als_fit) = timed(threads, || AlsModel::train(data, &tuned))?;
    let als = als.context("train ALS")?;
    let als_rows = |model: &AlsModel, name: String, fit| {
        truth.score(&name, fit, |u, seen| {
            ids(model.recommend_for_user(&user_id(u), K, seen))
        })
    };
    let rows = vec![
        truth.score(
            &format!("flywheel EASE (λ {EASE_LAMBDA})"),
            ease_fit,
            |_, seen| ids(ease.recommend_for_history(&history(seen), K, seen)),
        ),
        als_rows(&als_common, als_name(&common, ""), common_fit),
        als_rows(&als, als_name(&tuned, ""), als_fit),
    ];
    Ok(Trained {
        ease,
        als,
        ease_fit,
        als_fit,
        rows,
    })
}

/// Trains and scores flywheel's EASE and ALS on every thread count, the exact
/// (Cholesky) ALS once for reference, popularity, and the rank fusion of EASE and ALS.
fn flywheel_rows(train: &[Rating], test: &[Rating], seed: u64) -> Result<Vec<Row>> {
    let truth = Truth::new(train, test);
    let data = Interactions::from_triples(
        train
            .iter()
            .map(|r| (user_id(r.user), item_id(r.item), 1.0)),
    );
    let mut rows = Vec::new();
    let mut first: Option<Trained> = None;
    for threads in THREADS {
        let mut trained = train_on(&data, &truth, seed, threads)?;
        rows.append(&mut trained.rows);
        first.get_or_insert(trained);
    }
    let trained = first.context("at least one thread count")?;
    let exact_params = AlsParams {
        factors: COMMON_FACTORS,
        seed,
        ..AlsParams::default()
    };
    let (exact, exact_fit) = timed(THREADS[0], || {
        AlsModel::train_with_solver(&data, &exact_params, AlsSolver::Cholesky)
    })?;
    let exact = exact.context("train exact ALS")?;
    rows.push(
        truth.score(&als_name(&exact_params, ", exact"), exact_fit, |u, seen| {
            ids(exact.recommend_for_user(&user_id(u), K, seen))
        }),
    );
    let (popularity, popularity_fit) = timed(1, || PopularityModel::train(&data, &[]))?;
    rows.push(
        truth.score("flywheel popularity", popularity_fit, |_, seen| {
            ids(popularity.recommend(K, seen))
        }),
    );
    rows.push(fusion_row(&truth, &trained));
    Ok(rows)
}

/// EASE and the tuned ALS (first thread count's models) fused 1:1 by reciprocal rank.
fn fusion_row(truth: &Truth, trained: &Trained) -> Row {
    let (ease, als) = (&trained.ease, &trained.als);
    let ease_top = |seen: &HashSet<ItemId>, k| ease.recommend_for_history(&history(seen), k, seen);
    let als_top = |u, seen: &HashSet<ItemId>, k| als.recommend_for_user(&user_id(u), k, seen);
    let weights: BTreeMap<Channel, f64> = [(Channel::Ease, 1.0), (Channel::Als, 1.0)].into();
    let fused = |u, seen: &HashSet<ItemId>| {
        let lists = [
            ChannelList::from_scored(Channel::Ease, ease_top(seen, FUSION_DEPTH)),
            ChannelList::from_scored(Channel::Als, als_top(u, seen, FUSION_DEPTH)),
        ];
        let mut scored: Vec<(ItemId, f32)> = fuse_scores(&lists, &weights).into_iter().collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.truncate(K);
        ids(scored)
    };
    let fit = Fit {
        wall: trained.ease_fit.wall + trained.als_fit.wall,
        cpu: trained
            .ease_fit
            .cpu
            .zip(trained.als_fit.cpu)
            .map(|(a, b)| a + b),
        threads: trained.ease_fit.threads,
    };
    truth.score("flywheel EASE+ALS (rank fusion 1:1)", fit, fused)
}

/// Where the peers' script is: `$FLYWHEEL_BENCH_PEERS_SCRIPT`, else `scripts/bench_peers.py`
/// under the current directory, else beside the repository of the running binary.
fn peer_script() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(SCRIPT_ENV) {
        return Ok(PathBuf::from(path));
    }
    let mut tried = vec![PathBuf::from(SCRIPT_RELATIVE)];
    if let Ok(exe) = std::env::current_exe() {
        // target/release/flywheel → the repository root is three levels up.
        if let Some(root) = exe.ancestors().nth(3) {
            tried.push(root.join(SCRIPT_RELATIVE));
        }
    }
    match tried.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => bail!(
            "cannot find the peers' script (tried {}); run from the repository root or set {SCRIPT_ENV}",
            tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Runs `python bench_peers.py` on the written split and reads its `peers.json`.
fn peer_rows(python: &Path, train: &Path, test: &Path, out: &Path, seed: u64) -> Result<Vec<Row>> {
    let script = peer_script()?;
    let json = out.join("peers.json");
    let _ = std::fs::remove_file(&json);
    println!(
        "running the peers: {} {}",
        python.display(),
        script.display()
    );
    let status = Command::new(python)
        .arg(&script)
        .arg("--train")
        .arg(train)
        .arg("--test")
        .arg(test)
        .arg("--json")
        .arg(&json)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--threads")
        .arg(THREADS.map(|t| t.to_string()).join(","))
        .arg("--repeats")
        .arg(REPEATS.to_string())
        .arg("--ease-lambda")
        .arg(EASE_LAMBDA.to_string())
        .status()
        .with_context(|| format!("start {} (is it a Python interpreter?)", python.display()))?;
    if !status.success() {
        bail!(
            "{} {} failed ({status}); is `implicit` installed in that environment? scripts/bench-peers.sh sets one up",
            python.display(),
            script.display()
        );
    }
    let text =
        std::fs::read_to_string(&json).with_context(|| format!("read {}", json.display()))?;
    let report: PeerReport = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected {{\"rows\": [{{\"system\", \"ndcg\", …}}]}}",
            json.display()
        )
    })?;
    Ok(report.rows)
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<50} {:>3} {:>8} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8}",
        "system", "thr", "NDCG@10", "P@10", "R@10", "MAP", "MAP@10", "fit s", "CPU s"
    );
    for r in rows {
        let cpu = r
            .cpu_seconds
            .map_or_else(|| "-".to_string(), |c| format!("{c:.3}"));
        println!(
            "{:<50} {:>3} {:>8.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>8.3} {:>8}",
            r.system,
            r.threads,
            r.ndcg,
            r.precision,
            r.recall,
            r.map,
            r.map10,
            r.train_seconds,
            cpu
        );
    }
    print_speed_ratios(rows);
}

/// flywheel's fit time over the peer's, per thread count, for ALS at the common factor
/// count and for EASE (a ratio ≤ 1 means flywheel is at least as fast).
fn print_speed_ratios(rows: &[Row]) {
    let pairs = [
        (
            format!("flywheel ALS ({COMMON_FACTORS} f"),
            format!("implicit ALS ({COMMON_FACTORS} f"),
        ),
        ("flywheel EASE".to_string(), "numpy EASE".to_string()),
    ];
    println!("\nfit time, flywheel / peer (same run; wall, CPU; ≤ 1 = flywheel faster):");
    for (ours, theirs) in &pairs {
        for threads in THREADS {
            let find = |prefix: &str| {
                rows.iter()
                    .find(|r| r.threads == threads && r.system.starts_with(prefix))
            };
            if let (Some(a), Some(b)) = (find(ours), find(theirs)) {
                let cpu = a
                    .cpu_seconds
                    .zip(b.cpu_seconds)
                    .map_or_else(|| "-".to_string(), |(x, y)| format!("{:.2}", x / y));
                println!(
                    "  {} vs {}, {threads} thr: wall {:.2}, CPU {cpu}; NDCG@10 {:.4} vs {:.4}",
                    a.system,
                    b.system,
                    a.train_seconds / b.train_seconds,
                    a.ndcg,
                    b.ndcg
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings(per_user: &[(u32, u32)]) -> Vec<Rating> {
        per_user
            .iter()
            .flat_map(|&(user, n)| {
                (0..n).map(move |item| Rating {
                    user,
                    item,
                    rating: 3.0,
                    timestamp: 0,
                })
            })
            .collect()
    }

    #[test]
    fn split_puts_round_three_quarters_of_each_user_in_train() {
        // Python: round(0.75*4) = 3, round(3.75) = 4, round(4.5) = 4, round(7.5) = 8 (ties to even).
        let all = ratings(&[(1, 4), (2, 5), (3, 6), (4, 10)]);
        let (train, test) = split_per_user(&all, 0.75, 42);
        let count = |set: &[Rating], u| set.iter().filter(|r| r.user == u).count();
        let train_counts: Vec<usize> = (1..=4).map(|u| count(&train, u)).collect();
        let test_counts: Vec<usize> = (1..=4).map(|u| count(&test, u)).collect();
        assert_eq!(train_counts, [3, 4, 4, 8]);
        assert_eq!(test_counts, [1, 1, 2, 2]);
        let again = split_per_user(&all, 0.75, 42);
        let items = |set: &[Rating]| set.iter().map(|r| (r.user, r.item)).collect::<Vec<_>>();
        assert_eq!(items(&again.0), items(&train), "same seed, same split");
    }

    #[test]
    fn truth_scores_a_perfect_and_an_empty_list() {
        let train = ratings(&[(1, 2)]);
        let test = [Rating {
            user: 1,
            item: 7,
            rating: 5.0,
            timestamp: 0,
        }];
        let truth = Truth::new(&train, &test);
        let perfect = truth.score("perfect", Fit::default(), |_, _| vec![item_id(7)]);
        // One relevant item at rank 1: NDCG 1, P@10 = 1/10, R@10 = 1, AP = 1.
        assert_eq!(
            (perfect.ndcg, perfect.precision, perfect.recall),
            (1.0, 0.1, 1.0)
        );
        assert_eq!((perfect.map, perfect.map10), (1.0, 1.0));
        let empty = truth.score("empty", Fit::default(), |_, _| Vec::new());
        assert_eq!((empty.ndcg, empty.recall, empty.map), (0.0, 0.0, 0.0));
    }

    #[test]
    fn map_and_map_at_10_differ_when_more_than_ten_items_are_relevant() {
        // 12 relevant items (100..112), hits at ranks 1 and 3: AP numerator 1/1 + 2/3 = 5/3.
        // Recommenders (peers-ml100k.md): MAP divides by |rel| = 12, MAP@10 by min(10, 12).
        let train = ratings(&[(1, 2)]);
        let test: Vec<Rating> = (100..112)
            .map(|item| Rating {
                user: 1,
                item,
                rating: 4.0,
                timestamp: 0,
            })
            .collect();
        let truth = Truth::new(&train, &test);
        let row = truth.score("two hits", Fit::default(), |_, _| {
            vec![item_id(100), item_id(5), item_id(101)]
        });
        let idcg: f64 = (0..10).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
        assert!((row.map - (5.0 / 3.0) / 12.0).abs() < 1e-12);
        assert!((row.map10 - (5.0 / 3.0) / 10.0).abs() < 1e-12);
        assert!((row.ndcg - (1.0 + 0.5) / idcg).abs() < 1e-12);
        assert!((row.precision - 0.2).abs() < 1e-12);
        assert!((row.recall - 2.0 / 12.0).abs() < 1e-12);
    }
}
