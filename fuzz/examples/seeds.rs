//! Writes the seed corpora under `corpus/` (from `fuzz/`: `cargo run --release --example seeds`).

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let written = flywheel_fuzz::seeds::write_all(&root)?;
    println!("wrote {written} seeds under {}", root.display());
    Ok(())
}
