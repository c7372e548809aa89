use flywheel_objstore::{fetch_version, publish_version};
use std::time::Instant;

use crate::test_store;

/// Upload and download rates of a model version: a folder of
/// `FLYWHEEL_S3_BENCH_MB` (default 64) MB in four files, published and fetched
/// (verified). Figures, not assertions (the machine is noisy):
/// `scripts/check-s3.sh` runs it with `--ignored --nocapture` beside a curl
/// reference.
#[test]
#[ignore = "a figure, run by scripts/check-s3.sh"]
fn transfer_figures() {
    let megabytes: usize = std::env::var("FLYWHEEL_S3_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let store = test_store("bench-transfer");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = flywheel_registry::models_dir(a.path()).join("v1");
    std::fs::create_dir_all(&dir).unwrap();
    let quarter = megabytes * (1 << 20) / 4;
    let mut x = 7u64;
    for name in ["als.bin", "als.ann", "two_tower.bin", "ranker.bin"] {
        let bytes: Vec<u8> = (0..quarter)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(dir.join("manifest.json"), b"{\"version\":\"v1\"}").unwrap();
    let started = Instant::now();
    let published = publish_version(&store, a.path(), "v1").unwrap();
    let up = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let fetched = fetch_version(&store, b.path(), "v1").unwrap();
    let down = started.elapsed().as_secs_f64();
    let mb = published.bytes as f64 / (1 << 20) as f64;
    println!(
        "objstore transfer ({}): publish {mb:.1} MB in {up:.2} s = {:.1} MB/s; \
         fetch+verify {:.1} MB in {down:.2} s = {:.1} MB/s",
        store.url(),
        mb / up,
        fetched.bytes as f64 / (1 << 20) as f64,
        fetched.bytes as f64 / (1 << 20) as f64 / down
    );
}
