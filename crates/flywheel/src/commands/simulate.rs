//! `flywheel simulate`.

use anyhow::{Context, Result};
use flywheel_sim::{simulate, write_dataset, SimConfig, StreamCorruption, TasteDrift};
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

/// `flywheel simulate`'s injected drift and corruption (the simulator's own checks
/// name a bad value).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InjectArgs {
    /// Shift every user's category tastes from this day on (0-based).
    #[arg(long, value_name = "DAY")]
    pub drift_day: Option<u32>,
    /// How far tastes move at --drift-day, in [0, 1].
    #[arg(long, value_name = "X", default_value_t = 1.0, requires = "drift_day")]
    pub drift_strength: f64,
    /// Damage the event stream from this day on (0-based).
    #[arg(long, value_name = "DAY")]
    pub corruption_day: Option<u32>,
    /// The first clean day again (default: damaged to the end).
    #[arg(long, value_name = "DAY", requires = "corruption_day")]
    pub corruption_until_day: Option<u32>,
    /// Share of damaged-period events naming an unknown item.
    #[arg(
        long,
        value_name = "X",
        default_value_t = 0.0,
        requires = "corruption_day"
    )]
    pub unknown_item_share: f64,
    /// Share of damaged-period events losing their context (and a purchase its value).
    #[arg(
        long,
        value_name = "X",
        default_value_t = 0.0,
        requires = "corruption_day"
    )]
    pub missing_field_share: f64,
}

impl InjectArgs {
    /// Adds the drift and the corruption asked for to `config`.
    pub fn apply(&self, config: &mut SimConfig) {
        if let Some(day) = self.drift_day {
            config.drift = Some(TasteDrift {
                day,
                strength: self.drift_strength,
            });
        }
        if let Some(day) = self.corruption_day {
            config.corruption = Some(StreamCorruption {
                day,
                until_day: self.corruption_until_day,
                unknown_item_share: self.unknown_item_share,
                missing_field_share: self.missing_field_share,
            });
        }
    }
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
    inject: &InjectArgs,
) -> Result<()> {
    let mut config = sim_config(seed, users, items, days);
    inject.apply(&mut config);
    config.validate().context("the simulated shop")?;
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
