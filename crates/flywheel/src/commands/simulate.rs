//! `flywheel simulate`.

use anyhow::{Context, Result};
use flywheel_sim::{simulate, write_dataset, SimConfig};
use std::path::Path;

/// The quick-start shop, resized by the flags given.
pub fn sim_config(
    seed: u64,
    users: Option<usize>,
    items: Option<usize>,
    days: Option<u32>,
) -> SimConfig {
    let mut config = SimConfig::quickstart();
    config.seed = seed;
    config.users = users.unwrap_or(config.users);
    config.items = items.unwrap_or(config.items);
    config.days = days.unwrap_or(config.days);
    config
}

/// Simulates and writes the dataset; returns its files.
pub fn write_shop(out: &Path, config: &SimConfig) -> Result<flywheel_sim::DatasetFiles> {
    let bar = crate::progress::spinner("simulating the shop");
    let sim = simulate(config).context("simulating")?;
    bar.set_message("writing the dataset");
    let files = write_dataset(&sim, out)
        .with_context(|| format!("writing the dataset to {}", out.display()))?;
    bar.finish_and_clear();
    Ok(files)
}

/// Runs `flywheel simulate`.
pub fn run(
    out: &Path,
    seed: u64,
    users: Option<usize>,
    items: Option<usize>,
    days: Option<u32>,
) -> Result<()> {
    let config = sim_config(seed, users, items, days);
    let files = write_shop(out, &config)?;
    println!(
        "wrote {} items, {} users, {} events and {} impressions to {} (ground truth in {})",
        files.item_count,
        files.user_count,
        files.event_count,
        files.impression_count,
        out.display(),
        files.truth.display()
    );
    Ok(())
}
