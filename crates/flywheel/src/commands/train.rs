//! `flywheel train`.

use anyhow::Result;

use crate::cli::DataArgs;
use crate::commands::{open_engine, resolve_config};

/// Trains and promotes a new model version.
pub fn run(data: &DataArgs) -> Result<()> {
    let engine = open_engine(resolve_config(data, "flywheel-data")?)?;
    let report = train_with_progress(&engine)?;
    println!(
        "trained {}: {} interactions ({} users x {} items), {} ranker rows ({} from impressions), positive rate {:.3}",
        report.version,
        report.interactions,
        report.users,
        report.items,
        report.impression_rows + report.interaction_rows,
        report.impression_rows,
        report.positive_rate
    );
    for (stage, secs) in &report.seconds {
        println!("  {stage:<12} {secs:>7.2} s");
    }
    println!("{} is now serving.", report.version);
    engine.shutdown();
    Ok(())
}

/// Trains with a spinner showing the stage.
pub fn train_with_progress(engine: &flywheel_engine::Engine) -> Result<flywheel_engine::training::TrainReport> {
    let bar = crate::progress::spinner("training");
    let report = engine.train(&mut |stage| bar.set_message(stage.to_string()));
    bar.finish_and_clear();
    Ok(report?)
}
