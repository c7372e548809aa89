//! `flywheel monitor report`: the monitoring report (drift per feature, prediction
//! drift, data quality, freshness) through a running server (`--server URL`), or on a
//! stopped data dir, where the engine replays the log and its consumer rebuilds the
//! same live window (event-time skew is measured only on live arrivals, so a replay
//! reports none).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::Value;

use crate::cli::DataArgs;
use crate::commands::{ensure_not_served, open_engine, resolve_config};
use crate::http_client::{call_json, error_message};

/// `flywheel monitor`.
#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// The live window against the served version's reference.
    Report {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Ask a running server instead of replaying the data dir.
        #[arg(long)]
        server: Option<String>,
        /// Print the report as JSON (the shape of `GET /v1/monitoring`).
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML page of the report.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
    },
}

/// Runs a `monitor` subcommand.
pub fn run(what: MonitorCommand) -> Result<()> {
    let MonitorCommand::Report {
        data,
        server,
        json,
        html,
    } = what;
    let report = match server {
        Some(server) => remote(&server)?,
        None => local(&data)?,
    };
    if let Some(path) = html {
        write_html(&path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_text(&report));
    }
    Ok(())
}

fn remote(server: &str) -> Result<Value> {
    let (status, body) = call_json(server, "GET", "/v1/monitoring", None)?;
    if !(200..300).contains(&status) {
        bail!(
            "{server}/v1/monitoring answered {status}: {}",
            error_message(&body)
        );
    }
    Ok(body)
}

fn local(data: &DataArgs) -> Result<Value> {
    let config = resolve_config(data, "flywheel-data")?;
    ensure_not_served(&config.data_dir)?;
    let engine = open_engine(config)?;
    let report = engine.monitoring_report();
    engine.shutdown();
    Ok(serde_json::to_value(report)?)
}

fn number(value: &Value, digits: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// The report as text: a header, one line per feature, then the other sections.
pub fn render_text(report: &Value) -> String {
    let mut out = String::new();
    let window = &report["window"];
    let _ = writeln!(
        out,
        "window {} .. {} ({} events, {} served lists)",
        window["from"].as_str().unwrap_or("-"),
        window["to"].as_str().unwrap_or("-"),
        window["events"],
        window["impressions"]
    );
    let _ = writeln!(
        out,
        "reference: {} ({})",
        report["reference_version"].as_str().unwrap_or("none"),
        report["reference_status"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        out,
        "{:<42} {:<11} {:<4} {:>9} {:>9}  drifted",
        "feature", "kind", "stat", "value", "threshold"
    );
    for f in report["features"].as_array().into_iter().flatten() {
        let mark = match (f["drifted"].as_bool(), f["watched"].as_bool()) {
            (Some(true), Some(false)) => "yes (not watched)",
            (Some(true), _) => "YES",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{:<42} {:<11} {:<4} {:>9} {:>9}  {mark}",
            f["name"].as_str().unwrap_or("?"),
            f["kind"].as_str().unwrap_or("?"),
            f["statistic"].as_str().unwrap_or("?"),
            number(&f["value"], 4),
            number(&f["threshold"], 3),
        );
    }
    let p = &report["prediction"];
    let _ = writeln!(
        out,
        "prediction: mean P(click) {} observed CTR {} O/E {} band [{}, {}] on {} finalized served items{}",
        number(&p["mean_predicted_ctr"], 4),
        number(&p["observed_ctr"], 4),
        number(&p["observed_over_expected"], 3),
        number(&p["band"][0], 2),
        number(&p["band"][1], 2),
        p["finalized_impressions"],
        if p["outside_band"].as_bool() == Some(true) { " — OUTSIDE THE BAND" } else { "" }
    );
    let q = &report["data_quality"];
    let _ = writeln!(
        out,
        "data quality: unknown items {} ({}), duplicates {}, rejected {}, bot-like users {}, served without features {}, skipped records {}",
        q["unknown_item_events"],
        number(&q["unknown_item_share"], 4),
        number(&q["duplicate_share"], 4),
        number(&q["rejected_share"], 4),
        q["bot_like_users"],
        number(&q["missing_features_share"], 4),
        q["skipped_records"],
    );
    let bots = &q["bot_filter"];
    let _ = writeln!(
        out,
        "bot rules: dropped {} of {} events ({}) from {} users, by reason {}",
        bots["dropped"]
            .as_object()
            .map_or(0, |d| d.values().filter_map(Value::as_u64).sum::<u64>()),
        bots["judged"],
        number(&bots["dropped_share"], 4),
        bots["flagged_users"],
        bots["dropped"],
    );
    if let Some(breaches) = q["breaches"].as_array().filter(|b| !b.is_empty()) {
        let names: Vec<&str> = breaches.iter().filter_map(Value::as_str).collect();
        let _ = writeln!(out, "BREACHES: {}", names.join(", "));
    }
    let f = &report["freshness"];
    let _ = writeln!(
        out,
        "freshness: newest event {} (age {} s), consumer lag {} records",
        f["newest_event_time"].as_str().unwrap_or("-"),
        number(&f["newest_event_age_seconds"], 1),
        f["consumer_lag_records"]
    );
    for stage in report["latency"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "latency {}: p50 {} ms, p99 {} ms ({} observations)",
            stage["stage"].as_str().unwrap_or("-"),
            number(&stage["p50_ms"], 2),
            number(&stage["p99_ms"], 2),
            stage["count"]
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained page: the text summary and the JSON (no scripts, fonts or CDNs).
fn write_html(path: &Path, report: &Value) -> Result<()> {
    let mut rows = String::new();
    for f in report["features"].as_array().into_iter().flatten() {
        let drifted = f["drifted"].as_bool() == Some(true);
        let _ = writeln!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if drifted { "drift" } else { "" },
            escape(f["name"].as_str().unwrap_or("?")),
            escape(f["kind"].as_str().unwrap_or("?")),
            escape(f["statistic"].as_str().unwrap_or("?")),
            number(&f["value"], 4),
            number(&f["threshold"], 3),
            if drifted { "yes" } else { "" }
        );
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>flywheel monitoring</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:left}}\
         tr.drift{{background:#fdd}}pre{{background:#f6f6f6;padding:1em}}</style></head><body>\
         <h1>flywheel monitoring</h1><pre>{}</pre><table><tr><th>feature</th><th>kind</th>\
         <th>statistic</th><th>value</th><th>threshold</th><th>drifted</th></tr>{rows}</table>\
         <h2>JSON</h2><pre>{}</pre></body></html>\n",
        escape(&render_text(report)),
        escape(&serde_json::to_string_pretty(report)?)
    );
    std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))
}
