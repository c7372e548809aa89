//! Prints, day by day, the share of damaged events the corrupted stream produced, as
//! the truth finds them (`World::damage_of`):
//! `cargo run --release -p flywheel-sim --example corruption_stats [day until unknown missing]`
//! (default: the quickstart shop damaged from day 7 to day 9, 30% unknown item ids,
//! 10% missing fields).

use flywheel_sim::{simulate, SimConfig, StreamCorruption};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut corruption = StreamCorruption {
        day: 7,
        until_day: Some(9),
        unknown_item_share: 0.3,
        missing_field_share: 0.1,
    };
    if let [day, until, unknown, missing] = args.as_slice() {
        corruption = StreamCorruption {
            day: day.parse()?,
            until_day: Some(until.parse()?),
            unknown_item_share: unknown.parse()?,
            missing_field_share: missing.parse()?,
        };
    }
    let config = SimConfig {
        corruption: Some(corruption),
        ..SimConfig::quickstart()
    };
    let sim = simulate(&config)?;
    let day_of = |e: &flywheel_core::Event| {
        (e.timestamp.millis() - config.start.millis()) / flywheel_core::Timestamp::DAY
    };
    println!("day  events  unknown_item_share  missing_field_share");
    for day in 0..i64::from(config.days) {
        let events: Vec<_> = sim.events.iter().filter(|e| day_of(e) == day).collect();
        let n = events.len().max(1) as f64;
        let unknown = events
            .iter()
            .filter(|e| sim.world.damage_of(e).unknown_item)
            .count() as f64;
        let missing = events
            .iter()
            .filter(|e| sim.world.damage_of(e).missing_fields)
            .count() as f64;
        println!(
            "{day:>3} {:>7} {:>19.4} {:>20.4}",
            events.len(),
            unknown / n,
            missing / n
        );
    }
    Ok(())
}
