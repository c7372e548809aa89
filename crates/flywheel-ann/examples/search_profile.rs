//! A profiling target: builds an index over seeded clustered vectors and runs queries
//! against it (`perf record cargo run --release -p flywheel-ann --example search_profile`).
//! Prints recall@10 against the exact index and the query loop's CPU time per query
//! (this thread's /proc/thread-self/schedstat).

use flywheel_ann::fixtures::clustered;
use flywheel_ann::{recall_at_k, FlatIndex, HnswIndex, HnswParams, Metric};

fn main() -> flywheel_ann::Result<()> {
    let (rows, dimension, queries) = (30_000, 64, 500);
    let all = clustered(rows + queries, dimension, 30, 3);
    let (base, queries) = all.split_at(rows * dimension);
    let ids: Vec<u32> = (0..rows as u32).collect();
    let mut index = HnswIndex::new(Metric::L2, dimension, HnswParams::default())?;
    index.add_batch(&ids, base)?;
    let mut flat = FlatIndex::new(Metric::L2, dimension)?;
    flat.add_batch(&ids, base)?;
    let truth: Vec<Vec<u32>> = queries
        .chunks_exact(dimension)
        .map(|q| {
            flat.search(q, 10)
                .map(|r| r.into_iter().map(|x| x.0).collect())
        })
        .collect::<flywheel_ann::Result<_>>()?;
    let mut found = Vec::new();
    let before = thread_cpu_ns();
    for _ in 0..20 {
        found = queries
            .chunks_exact(dimension)
            .map(|q| {
                index
                    .search(q, 10, 80)
                    .map(|r| r.into_iter().map(|x| x.0).collect())
            })
            .collect::<flywheel_ann::Result<Vec<Vec<u32>>>>()?;
    }
    let per_query = (thread_cpu_ns() - before) as f64 / 1000.0 / (20 * found.len()) as f64;
    println!(
        "recall@10 at ef 80: {:.4}, {per_query:.1} µs CPU per query",
        recall_at_k(&found, &truth, 10)
    );
    Ok(())
}

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}
