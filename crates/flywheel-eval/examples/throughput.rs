//! Measures how long metrics take on large generated inputs (not a test: timings vary).
//! `cargo run --release -p flywheel-eval --example throughput -- [rows] [rounds]`

use std::io::Write;
use std::time::Instant;

use rand::{rngs::StdRng, Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rows = args.first().copied().unwrap_or(10_000_000);
    let rounds = args.get(1).copied().unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(42);

    let preds = dir.path().join("preds.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&preds)?);
    writeln!(out, "user_id,label,score")?;
    for _ in 0..rows {
        let p: f64 = rng.gen_range(0.0..1.0);
        writeln!(
            out,
            "u{},{},{:.4}",
            rng.gen_range(0..100_000),
            u8::from(rng.gen_bool(p * 0.5)),
            p
        )?;
    }
    drop(out);
    let start = Instant::now();
    let loaded = flywheel_eval::preds::read_predictions(&preds)?;
    println!("  read: {:.2} s", start.elapsed().as_secs_f64());
    let t = Instant::now();
    let _ = flywheel_eval::pointwise::roc_auc(&loaded.labels, &loaded.scores);
    println!("  auc: {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let _ = flywheel_eval::pointwise::group_auc(
        &loaded.users,
        loaded.user_names.len(),
        &loaded.labels,
        &loaded.scores,
    );
    println!("  gauc: {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let _ = flywheel_eval::pointwise::calibration(&loaded.labels, &loaded.scores, 10);
    let _ = flywheel_eval::pointwise::log_loss(&loaded.labels, &loaded.scores);
    println!(
        "  calibration + log-loss: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let report = flywheel_eval::metrics_from_files(None, None, Some(&preds), &[])?;
    println!(
        "{rows} prediction rows: {:.2} s (auc {:?})",
        start.elapsed().as_secs_f64(),
        report.mean.get("auc")
    );

    let log = dir.path().join("log.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&log)?);
    writeln!(out, "action,position,reward,pscore,pi_e,q_hat,dm_term")?;
    for _ in 0..rounds {
        writeln!(
            out,
            "{},{},{},{},{},{},{}",
            rng.gen_range(0..80),
            rng.gen_range(0..3),
            u8::from(rng.gen_bool(0.01)),
            0.0125,
            rng.gen_range(0.0..0.03),
            0.01,
            0.01
        )?;
    }
    drop(out);
    let start = Instant::now();
    let ope = flywheel_eval::ope_from_file(&log, &flywheel_eval::OpeOptions::default())?;
    println!(
        "{rounds} logged rounds: {:.2} s (ips {:?})",
        start.elapsed().as_secs_f64(),
        ope.estimator("ips").map(|e| e.estimate)
    );
    Ok(())
}
