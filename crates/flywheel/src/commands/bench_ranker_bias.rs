//! `flywheel bench ranker-bias`: the position-bias correction and the context features
//! measured on the simulator against its true preferences
//! (`flywheel_offline::bias_study`): an old policy's lists ordered by a score
//! independent of true appeal, clicks from the position-biased click model, rankers
//! fitted through the real training rows with and without the correction, and with
//! and without the request's device in a world where the device changes what appeals.

use anyhow::{Context, Result};
use clap::Args;
use flywheel_offline::bias_study::{self, ArmScore, StudySettings};

/// `flywheel bench ranker-bias`.
#[derive(Debug, Args)]
pub struct RankerBiasArgs {
    /// Seed of the world, the log and the evaluation requests.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Logged requests the rankers learn from.
    #[arg(long, default_value_t = 12_000)]
    requests: usize,
    /// Evaluation requests (30 candidates each).
    #[arg(long, default_value_t = 400)]
    eval_requests: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs both studies and prints one line per arm.
pub fn run(args: &RankerBiasArgs) -> Result<()> {
    let settings = StudySettings {
        seed: args.seed,
        requests: args.requests,
        eval_requests: args.eval_requests,
        ..StudySettings::default()
    };
    let report = bias_study::run(&settings).context("running the ranker-bias study")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "ranker-bias study: {} users, {} items, {} logged lists of {}, {} evaluation requests of {} candidates (seed {})",
        settings.users,
        settings.items,
        settings.requests,
        settings.list_length,
        settings.eval_requests,
        settings.eval_candidates,
        settings.seed
    );
    print_block(
        "position bias (old policy's order independent of appeal)",
        &report.position,
    );
    print_block(
        &format!(
            "context (device_price_weight {}: cheap items appeal on mobile, dear ones on desktop)",
            settings.device_price_weight
        ),
        &report.context,
    );
    print_block("references", &report.references);
    Ok(())
}

fn print_block(title: &str, arms: &[ArmScore]) {
    println!("\n{title}");
    println!(
        "  {:<42} {:>10} {:>12} {:>8}  top features",
        "arm", "NDCG@10", "Kendall tau", "rows"
    );
    for arm in arms {
        println!(
            "  {:<42} {:>10.4} {:>12.4} {:>8}  {}",
            arm.arm,
            arm.ndcg_at_10,
            arm.kendall_tau,
            arm.rows,
            arm.top_features.join(", ")
        );
    }
}
