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
    println!(
        "cuts: fusion {}, rows {}, gate {}; label window {} h; {} rows with a still-open window not fitted on",
        report.cuts.fusion_cut,
        report.cuts.row_cut,
        report.cuts.gate_cut,
        report.cuts.label_window_ms as f64 / 3_600_000.0,
        report.open_label_rows
    );
    print_gate(&report);
    if !report.fusion_weights.is_empty() {
        let weights: Vec<String> = report
            .fusion_weights
            .iter()
            .map(|(c, w)| format!("{c} {w:.3}"))
            .collect();
        println!(
            "fusion weights (each channel's ndcg@10 on the training holdout): {}",
            weights.join(", ")
        );
    }
    for (stage, secs) in &report.seconds {
        println!("  {stage:<12} {secs:>7.2} s");
    }
    println!("{} is now serving.", report.version);
    engine.shutdown();
    Ok(())
}

/// Prints the ranker gate's verdict.
pub fn print_gate(report: &flywheel_offline::training::TrainReport) {
    match &report.ranker_gate {
        Some(gate) => println!(
            "ranker gate at {} on {} users (a ranker fitted on {} rows labelled before it): with ranker ndcg@10 {:.4} vs retrieval order {:.4} -> {}",
            gate.cut,
            gate.users,
            gate.fit_rows,
            gate.ranker_ndcg_at_10,
            gate.retrieval_ndcg_at_10,
            if gate.accepted { "ranker shipped" } else { "ranker rejected; the fused retrieval order serves" }
        ),
        None => println!(
            "no ranker (no gate users after the gate cut, or no fitted rows with both outcomes before it)"
        ),
    }
}

/// Trains with a spinner showing the stage.
pub fn train_with_progress(
    engine: &flywheel_engine::Engine,
) -> Result<flywheel_offline::training::TrainReport> {
    let bar = crate::progress::spinner("training");
    let report = engine.train(&mut |stage| bar.set_message(stage.to_string()));
    bar.finish_and_clear();
    Ok(report?)
}
