//! Writes a simulated shop to a directory without holding its history in memory:
//! `cargo run --release -p flywheel-sim --example simulate_to_dir -- DIR [users items days]`.

use flywheel_sim::{simulate_to_dir, SimConfig};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        return Err("usage: simulate_to_dir DIR [users items days]".into());
    };
    let mut config = SimConfig::quickstart();
    if let [_, users, items, days] = args.as_slice() {
        config.users = users.parse()?;
        config.items = items.parse()?;
        config.days = days.parse()?;
    }
    let started = Instant::now();
    let files = simulate_to_dir(&config, &dir)?;
    println!(
        "{} users, {} items, {} events, {} impressions written to {} in {:.2} s",
        files.user_count,
        files.item_count,
        files.event_count,
        files.impression_count,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
