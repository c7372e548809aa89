//! Times reading a predictions CSV (`cargo run --release --example read_only -- FILE`).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: read_only FILE")?;
    let start = std::time::Instant::now();
    let p = flywheel_eval::preds::read_predictions(std::path::Path::new(&path))?;
    println!(
        "{} rows read in {:.2} s",
        p.labels.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
