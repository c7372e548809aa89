//! `flywheel train`: a candidate version, judged by the promotion gate; on the data dir
//! or through a running server (`--server URL`), as a job whose progress is printed.

use anyhow::{bail, Result};
use flywheel_engine::{Engine, TrainOutcome};
use serde_json::Value;
use std::time::Duration;

use crate::cli::DataArgs;
use crate::commands::{ensure_not_served, open_engine, resolve_config};
use crate::http_client::{call_json, error_message};

/// Trains a candidate; the gate (or `--force`) decides whether it serves.
pub fn run(data: &DataArgs, force: bool, server: Option<&str>, json: bool) -> Result<()> {
    if let Some(server) = server {
        return through_server(server, force, json);
    }
    let config = resolve_config(data, "flywheel-data")?;
    ensure_not_served(&config.data_dir)?;
    let engine = open_engine(config)?;
    let outcome = train_with_progress(&engine, force);
    let serving = engine.models().version().to_string();
    engine.shutdown();
    let outcome = outcome?;
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", render(&outcome, &serving));
    }
    Ok(())
}

/// `train --from-lake DIR`: the same training, gate and registration, on the records of
/// a Parquet lake (in log order, converted back to the log's records) instead of the
/// data dir's log; the version goes to the data dir's registry.
pub fn run_from_lake(
    data: &DataArgs,
    force: bool,
    lake: &std::path::Path,
    json: bool,
) -> Result<()> {
    let records = crate::commands::lake::lake_records(lake)?;
    let config = resolve_config(data, "flywheel-data")?;
    ensure_not_served(&config.data_dir)?;
    let engine = open_engine(config)?;
    let replay =
        |visit: &mut dyn FnMut(u64, &flywheel_core::LogRecord) -> flywheel_offline::Result<()>| {
            records
                .iter()
                .try_for_each(|(offset, record)| visit(*offset, record))
        };
    eprintln!(
        "training from {} records of the lake {}",
        records.len(),
        lake.display()
    );
    let bar = crate::progress::spinner("training");
    let outcome = engine.train_from(&replay, force, &mut |stage| {
        bar.set_message(stage.to_string())
    });
    bar.finish_and_clear();
    let serving = engine.models().version().to_string();
    engine.shutdown();
    let outcome = outcome?;
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", render(&outcome, &serving));
    }
    Ok(())
}

/// Trains with a spinner showing the stage.
pub fn train_with_progress(engine: &Engine, force: bool) -> Result<TrainOutcome> {
    let bar = crate::progress::spinner("training");
    let outcome = engine.train(force, &mut |stage| bar.set_message(stage.to_string()));
    bar.finish_and_clear();
    Ok(outcome?)
}

/// What training did and what the gate decided, in words.
pub fn render(outcome: &TrainOutcome, serving: &str) -> String {
    let report = &outcome.report;
    let mut out = format!(
        "trained {}: {} interactions ({} users x {} items), {} ranker rows ({} from impressions), positive rate {:.3}\n",
        report.version,
        report.interactions,
        report.users,
        report.items,
        report.impression_rows + report.interaction_rows,
        report.impression_rows,
        report.positive_rate
    );
    out.push_str(&format!(
        "cuts: fusion {}, rows {}, gate {}; label window {} h; {} rows with a still-open window not fitted on\n",
        report.cuts.fusion_cut,
        report.cuts.row_cut,
        report.cuts.gate_cut,
        report.cuts.label_window_ms as f64 / 3_600_000.0,
        report.open_label_rows
    ));
    out.push_str(&gate_line(report));
    out.push_str(&ranker_fit_lines(report));
    if !report.fusion_weights.is_empty() {
        let weights: Vec<String> = report
            .fusion_weights
            .iter()
            .map(|(c, w)| format!("{c} {w:.3}"))
            .collect();
        out.push_str(&format!(
            "fusion weights (each channel's ndcg@10 on the training holdout): {}\n",
            weights.join(", ")
        ));
    }
    for (stage, secs) in &report.seconds {
        out.push_str(&format!("  {stage:<16} {secs:>7.2} s\n"));
    }
    if let Some(c) = &outcome.comparison {
        out.push_str(&format!(
            "promotion gate ({}): {}\n  candidate {} ndcg@10 {:.4}, serving {} ndcg@10 {:.4}, difference {:+.4}, {:.0}% CI [{:+.4}, {:+.4}] on {} users\n",
            c.method.describe(),
            c.protocol,
            c.candidate_version,
            c.candidate.ndcg_at_10,
            c.serving_version,
            c.serving.ndcg_at_10,
            c.mean_difference,
            c.confidence * 100.0,
            c.ci_low,
            c.ci_high,
            c.users
        ));
    }
    let verdict = match (outcome.promoted, outcome.forced) {
        (true, true) => "PROMOTED BY --force",
        (true, false) => "promoted",
        (false, _) => "NOT promoted",
    };
    out.push_str(&format!(
        "{} {verdict}: {}\nserving: {serving}\n",
        outcome.version, outcome.reason
    ));
    out
}

/// Starts a training job on the server and follows it until it ends.
fn through_server(server: &str, force: bool, json: bool) -> Result<()> {
    let path = format!("/v1/models/train?force={force}");
    let (status, job) = call_json(server, "POST", &path, None)?;
    if status != 202 {
        bail!("{server}{path} answered {status}: {}", error_message(&job));
    }
    let id = job["id"].as_str().unwrap_or_default().to_string();
    eprintln!("training job {id} started on {server}");
    let mut last_progress = String::new();
    let finished = loop {
        std::thread::sleep(Duration::from_millis(500));
        let (status, job) = call_json(server, "GET", &format!("/v1/jobs/{id}"), None)?;
        if status != 200 {
            bail!(
                "{server}/v1/jobs/{id} answered {status}: {}",
                error_message(&job)
            );
        }
        let progress = job["progress"].as_str().unwrap_or_default().to_string();
        if progress != last_progress {
            eprintln!("  {progress}");
            last_progress = progress;
        }
        if matches!(job["state"].as_str(), Some("succeeded" | "failed")) {
            break job;
        }
    };
    print_job(&finished, json)
}

fn print_job(job: &Value, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(job)?);
    } else if let Some(error) = job["error"].as_str() {
        bail!("training failed: {error}");
    } else {
        let result = &job["result"];
        println!(
            "{} {}: {}",
            result["version"].as_str().unwrap_or("?"),
            if result["promoted"].as_bool() == Some(true) {
                "promoted"
            } else {
                "NOT promoted"
            },
            result["reason"].as_str().unwrap_or("")
        );
    }
    if job["state"].as_str() == Some("failed") {
        bail!("training job failed");
    }
    Ok(())
}

/// The ranker gate's verdict, one line.
pub fn gate_line(report: &flywheel_offline::training::TrainReport) -> String {
    match &report.ranker_gate {
        Some(gate) => format!(
            "ranker gate at {} on {} users (a ranker fitted on {} rows labelled before it): with ranker ndcg@10 {:.4} vs retrieval order {:.4} -> {}\n",
            gate.cut,
            gate.users,
            gate.fit_rows,
            gate.ranker_ndcg_at_10,
            gate.retrieval_ndcg_at_10,
            if gate.accepted { "ranker shipped" } else { "ranker rejected; the fused retrieval order serves" }
        ),
        None => "no ranker (no gate users after the gate cut, or no fitted rows with both outcomes before it)\n".to_string(),
    }
}

/// How the shipped ranker was fitted and, for a GBDT, what it learned from.
pub fn ranker_fit_lines(report: &flywheel_offline::training::TrainReport) -> String {
    let Some(fit) = &report.ranker_fit else {
        return String::new();
    };
    let mut out = format!("shipped ranker: {} fitted on {} rows", fit.kind, fit.rows);
    if let Some(gbdt) = &fit.gbdt {
        out.push_str(&format!(
            "; {} trees kept of {} grown (early stopping on {} validation groups: {} {:.4} -> {:.4})",
            gbdt.trees_kept,
            gbdt.rounds_run,
            gbdt.validation_groups,
            gbdt.metric,
            gbdt.metric_at_start,
            gbdt.metric_best
        ));
    }
    out.push('\n');
    if !fit.importances.is_empty() {
        let total: f64 = fit.importances.iter().map(|f| f.gain).sum();
        out.push_str(
            "feature importance (share of split gain, splits):
",
        );
        for feature in fit.importances.iter().filter(|f| f.splits > 0) {
            out.push_str(&format!(
                "  {:<44} {:>5.1}% {:>5}\n",
                feature.name,
                100.0 * feature.gain / total.max(f64::MIN_POSITIVE),
                feature.splits
            ));
        }
    }
    out
}
