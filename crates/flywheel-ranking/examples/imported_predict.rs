//! Evaluator speed for an imported model, on CPU time (no CSV parsing in the figure):
//!
//! ```text
//! cargo run --release -p flywheel-ranking --example imported_predict -- MODEL lightgbm|xgboost ROWS.csv
//! ```
//!
//! ROWS.csv is a file written by `scripts/imported_models.py` (header = feature names,
//! empty = missing, plain numbers). It scores every row five times and prints the CPU
//! time per pass, read from the thread's own counter (`/proc/thread-self/schedstat`).

use std::path::Path;

use flywheel_ranking::{ImportedBooster, ModelFormat};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: imported_predict MODEL lightgbm|xgboost ROWS.csv".into());
    }
    let format: ModelFormat = args[2].parse()?;
    let model = ImportedBooster::load(Path::new(&args[1]), format)?;
    let rows = read_rows(&model, &std::fs::read_to_string(&args[3])?)?;
    let mut checksum = 0.0;
    let mut passes = Vec::new();
    for _ in 0..5 {
        let start = cpu_nanos()?;
        for row in &rows {
            checksum += model.predict(row);
        }
        passes.push((cpu_nanos()? - start) as f64 / 1e9);
    }
    passes.sort_by(f64::total_cmp);
    let median = passes[passes.len() / 2];
    println!(
        "{}: {} trees, {} rows, median pass {:.3} s CPU = {:.2} µs/row ({:.0} rows/s); checksum {checksum:.6}",
        args[1],
        model.tree_count(),
        rows.len(),
        median,
        median * 1e6 / rows.len() as f64,
        rows.len() as f64 / median
    );
    Ok(())
}

fn read_rows(
    model: &ImportedBooster,
    csv: &str,
) -> Result<Vec<Vec<f64>>, Box<dyn std::error::Error>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().ok_or("empty rows file")?.split(',').collect();
    let columns = model
        .feature_names()
        .iter()
        .map(|name| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or(format!("no column `{name}`"))
        })
        .collect::<Result<Vec<usize>, String>>()?;
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            columns
                .iter()
                .map(|&c| match fields.get(c).copied().unwrap_or("") {
                    "" => Ok(f64::NAN),
                    text => text.parse::<f64>().map_err(Into::into),
                })
                .collect()
        })
        .collect()
}

/// Nanoseconds this thread has run on a CPU (the first field of its schedstat).
fn cpu_nanos() -> Result<u64, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    Ok(text
        .split_whitespace()
        .next()
        .ok_or("empty schedstat")?
        .parse()?)
}
