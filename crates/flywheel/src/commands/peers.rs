//! `flywheel bench peers`: flywheel's retrieval beside implicit's ALS and popularity
//! on MovieLens 100K, same split, same metrics, one run.

use anyhow::{bail, Result};
use std::path::Path;

/// Runs the side-by-side benchmark.
pub fn run(_ml_dir: &Path, _out: &Path, _seed: u64, _python: Option<&Path>) -> Result<()> {
    bail!("not implemented yet")
}
