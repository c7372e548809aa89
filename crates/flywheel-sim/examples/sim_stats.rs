//! Prints the size and shape of the quickstart simulation:
//! `cargo run --release -p flywheel-sim --example sim_stats [seed [users items days]]`.

use flywheel_core::Action;
use flywheel_sim::{simulate, SimConfig};
use std::collections::BTreeMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = SimConfig::quickstart();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(seed) = args.first() {
        config.seed = seed.parse()?;
    }
    if let [_, users, items, days] = args.as_slice() {
        config.users = users.parse()?;
        config.items = items.parse()?;
        config.days = days.parse()?;
    }
    let started = Instant::now();
    let sim = simulate(&config)?;
    let elapsed = started.elapsed();
    let mut by_action: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &sim.events {
        *by_action.entry(event.action.as_str()).or_default() += 1;
    }
    println!(
        "seed {} simulated in {:.3} s",
        config.seed,
        elapsed.as_secs_f64()
    );
    println!(
        "events {} impressions {}",
        sim.events.len(),
        sim.impressions.len()
    );
    for (action, count) in &by_action {
        println!("  {action:12} {count}");
    }
    let views = by_action.get("view").copied().unwrap_or(0) as f64;
    let clicks = by_action.get("click").copied().unwrap_or(0) as f64;
    let purchases = by_action.get("purchase").copied().unwrap_or(0) as f64;
    println!(
        "clicks/views {:.4} purchases/clicks {:.4}",
        clicks / views,
        purchases / clicks
    );
    let mut per_item = vec![0usize; sim.world.items.len()];
    for event in sim.events.iter().filter(|e| e.action == Action::Click) {
        if let Some(i) = sim.world.item_index(event.item_id.as_str()) {
            per_item[i] += 1;
        }
    }
    per_item.sort_unstable_by(|a, b| b.cmp(a));
    let total: usize = per_item.iter().sum();
    let top = per_item.iter().take(per_item.len() / 10).sum::<usize>();
    println!(
        "top 10% of items take {:.1}% of clicks; items never clicked {}",
        100.0 * top as f64 / total.max(1) as f64,
        per_item.iter().filter(|c| **c == 0).count()
    );
    let mut shown = [0usize; 10];
    let mut clicked = [0usize; 10];
    for imp in &sim.impressions {
        for slot in imp.slots.iter().take(10) {
            shown[slot.position as usize] += 1;
        }
    }
    for event in sim.events.iter().filter(|e| e.action == Action::Click) {
        if let Some(p) = event.position.filter(|p| *p < 10) {
            clicked[p as usize] += 1;
        }
    }
    let ctr: Vec<String> = (0..10)
        .map(|p| format!("{:.4}", clicked[p] as f64 / shown[p].max(1) as f64))
        .collect();
    println!("CTR by position {}", ctr.join(" "));
    Ok(())
}
