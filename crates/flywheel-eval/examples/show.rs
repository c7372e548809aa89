//! Prints the text reports for the reference inputs and writes an HTML report:
//! `cargo run -p flywheel-eval --example show -- OUT.html`
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/reference");
    let ex = reference.join("metrics_example");
    let metrics = flywheel_eval::metrics_from_files(
        Some(&ex.join("qrels.txt")),
        Some(&ex.join("run.txt")),
        Some(&ex.join("preds.csv")),
        &[1, 3, 5, 10],
    )?;
    println!("{}", metrics.render_text());
    let ope = flywheel_eval::ope_from_file(
        &reference.join("obd_sample/random_all.csv"),
        &flywheel_eval::OpeOptions::default(),
    )?;
    println!("{}", ope.render_text());
    if let Some(out) = std::env::args().nth(1) {
        std::fs::write(
            out,
            flywheel_eval::html_report("flywheel evaluation", Some(&metrics), Some(&ope)),
        )?;
    }
    Ok(())
}
