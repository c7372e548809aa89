//! `flywheel bench ann`: flywheel-ann's HNSW on the ANN anchor vectors, measured the way
//! `ann_anchor.py bench` measures hnswlib (M = 16, ef_construction = 200, build on every
//! core; ONE query thread, k = 10, each ef timed 3 times over ≥ 0.5 s of 1,000-query
//! passes, the median kept), plus CPU time per query from the thread's own counter
//! (`/proc/thread-self/schedstat`, nanoseconds on CPU), in f32 and in int8.

use anyhow::{bail, Context, Result};
use clap::Args;
use flywheel_ann::vecs::{read_fvecs, read_ivecs};
use flywheel_ann::{recall_at_k, HnswIndex, HnswParams, Metric, Quantization};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

use super::cpu::{process_cpu_seconds, rss_mib, thread_cpu_ns};

const K: usize = 10;
const EF_SWEEP: [usize; 26] = [
    10, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 288, 320, 384, 448, 512,
    640, 768, 1024, 1536, 2048,
];
const TARGETS: [f64; 3] = [0.90, 0.95, 0.99];

/// Arguments of `flywheel bench ann`.
#[derive(Debug, Args)]
pub struct AnnArgs {
    /// Folder with base.fvecs, queries.fvecs and gt10.ivecs (`ann_anchor.py gen --out DIR`).
    #[arg(long, default_value = "target/ann-anchor")]
    pub data: PathBuf,
    /// Neighbours per node (layer 0 keeps twice as many).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// Candidates per insertion.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Comma-separated ef values to sweep instead of the anchor script's list (which
    /// stops at the first ef reaching recall 0.99).
    #[arg(long)]
    pub efs: Option<String>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Row {
    ef: usize,
    recall10: f64,
    qps: f64,
    cpu_us_per_query: f64,
}

#[derive(Debug, Serialize)]
struct Sweep {
    storage: &'static str,
    index_mib: f64,
    sweep: Vec<Row>,
    anchors: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct Report {
    lib: &'static str,
    build_threads: usize,
    build_s: f64,
    build_cpu_s: f64,
    rss_growth_mib: f64,
    vectors_mib: f64,
    runs: Vec<Sweep>,
}

/// Runs the benchmark and prints the tables.
pub fn run(args: &AnnArgs) -> Result<()> {
    let base_path = args.data.join("base.fvecs");
    if !base_path.exists() {
        bail!(
            "{} not found: run `ann_anchor.py gen --out DIR` first (scripts/bench-ann.sh does)",
            base_path.display()
        );
    }
    let base = read_fvecs(&base_path)?;
    let queries = read_fvecs(&args.data.join("queries.fvecs"))?;
    let truth = read_ivecs(&args.data.join("gt10.ivecs"))?;
    if queries.dimension != base.dimension || truth.rows() != queries.rows() {
        bail!(
            "queries, ground truth and base vectors do not match in {}",
            args.data.display()
        );
    }
    let truth: Vec<Vec<u32>> = (0..truth.rows())
        .map(|r| truth.row(r).iter().map(|&i| i as u32).collect())
        .collect();
    let efs = match &args.efs {
        Some(list) => list
            .split(',')
            .map(|e| {
                e.trim()
                    .parse::<usize>()
                    .with_context(|| format!("bad ef {e:?}"))
            })
            .collect::<Result<Vec<_>>>()?,
        None => EF_SWEEP.to_vec(),
    };
    let threads = rayon::current_num_threads();
    println!("bench ann: {} base × {} queries, dimension {}, M {}, ef_construction {}, build on {threads} threads", base.rows(), queries.rows(), base.dimension, args.m, args.ef_construction);
    let params = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ..HnswParams::default()
    };
    let mut index = HnswIndex::new(Metric::L2, base.dimension, params)?;
    let ids: Vec<u32> = (0..base.rows() as u32).collect();
    let (rss_before, cpu_before, started) = (rss_mib()?, process_cpu_seconds()?, Instant::now());
    index.add_batch(&ids, &base.values)?;
    let build_s = started.elapsed().as_secs_f64();
    let build_cpu_s = process_cpu_seconds()? - cpu_before;
    let rss_growth_mib = rss_mib()? - rss_before;
    println!(
        "build {build_s:.1} s wall, {build_cpu_s:.1} s CPU; RSS growth {rss_growth_mib:.0} MiB"
    );
    let mut runs = Vec::new();
    for (storage, quantization) in [("f32", Quantization::None), ("int8", Quantization::Int8)] {
        index.set_quantization(quantization);
        runs.push(sweep(
            &index,
            storage,
            &queries.values,
            base.dimension,
            &truth,
            &efs,
            args.efs.is_none(),
        )?);
    }
    let report = Report {
        lib: "flywheel-ann",
        build_threads: threads,
        build_s,
        build_cpu_s,
        rss_growth_mib,
        vectors_mib: (base.values.len() * 4) as f64 / 1048576.0,
        runs,
    };
    print_report(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn sweep(
    index: &HnswIndex,
    storage: &'static str,
    queries: &[f32],
    dimension: usize,
    truth: &[Vec<u32>],
    efs: &[usize],
    stop_at_top: bool,
) -> Result<Sweep> {
    let mut rows = Vec::new();
    for &ef in efs {
        let row = time_ef(index, queries, dimension, truth, ef)?;
        println!(
            "  {storage:>4} ef {ef:>5}: recall@10 {:.4}  {:>9.0} q/s  {:>7.1} µs CPU/query",
            row.recall10, row.qps, row.cpu_us_per_query
        );
        let done = row.recall10 >= TARGETS[2];
        rows.push(row);
        if done && stop_at_top {
            break;
        }
    }
    let mut anchors = serde_json::Map::new();
    for target in TARGETS {
        let hit = rows.iter().find(|r| r.recall10 >= target);
        anchors.insert(format!("{target:.2}"), serde_json::to_value(hit)?);
    }
    Ok(Sweep {
        storage,
        index_mib: index.memory_bytes() as f64 / 1048576.0,
        sweep: rows,
        anchors,
    })
}

/// Recall, the median of 3 rates (each over ≥ 0.5 s of whole passes) and the CPU time per
/// query over the same passes, on the calling thread only.
fn time_ef(
    index: &HnswIndex,
    queries: &[f32],
    dimension: usize,
    truth: &[Vec<u32>],
    ef: usize,
) -> Result<Row> {
    let mut rates = Vec::new();
    let mut found: Vec<Vec<u32>> = Vec::new();
    let (cpu_before, mut searched) = (thread_cpu_ns()?, 0usize);
    for _ in 0..3 {
        let (started, mut passes) = (Instant::now(), 0usize);
        loop {
            found = queries
                .chunks_exact(dimension)
                .map(|q| {
                    index
                        .search(q, K, ef)
                        .map(|r| r.into_iter().map(|(id, _)| id).collect())
                })
                .collect::<flywheel_ann::Result<_>>()?;
            passes += 1;
            if started.elapsed().as_secs_f64() >= 0.5 {
                break;
            }
        }
        searched += passes * found.len();
        rates.push((passes * found.len()) as f64 / started.elapsed().as_secs_f64());
    }
    let cpu_us_per_query = (thread_cpu_ns()? - cpu_before) as f64 / 1000.0 / searched as f64;
    rates.sort_by(f64::total_cmp);
    Ok(Row {
        ef,
        recall10: recall_at_k(&found, truth, K),
        qps: rates[1],
        cpu_us_per_query,
    })
}

fn print_report(report: &Report) {
    println!();
    println!("| storage | build s (wall / CPU) | index MiB | RSS growth MiB | QPS @ recall ≥ 0.90 | ≥ 0.95 | ≥ 0.99 |");
    println!("|---|---|---|---|---|---|---|");
    for run in &report.runs {
        let cell = |target: &str| match run.anchors.get(target) {
            Some(serde_json::Value::Object(row)) => format!(
                "{:.1}k (ef {}, {:.0} µs CPU)",
                row.get("qps").and_then(|v| v.as_f64()).unwrap_or(0.0) / 1000.0,
                row.get("ef").and_then(|v| v.as_u64()).unwrap_or(0),
                row.get("cpu_us_per_query")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0)
            ),
            _ => "not reached".into(),
        };
        println!(
            "| {} | {:.1} / {:.1} | {:.0} | {:.0} | {} | {} | {} |",
            run.storage,
            report.build_s,
            report.build_cpu_s,
            run.index_mib,
            report.rss_growth_mib,
            cell("0.90"),
            cell("0.95"),
            cell("0.99")
        );
    }
}
