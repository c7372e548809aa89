//! `flywheel experiment`: online experiments from the command line, on a stopped data
//! dir (the engine replays the log, so the ledger is the one serving would have) or
//! through a running server (`--server URL`).

use anyhow::{bail, Context, Result};
use flywheel_core::{ExperimentDef, Timestamp};
use flywheel_engine::Engine;
use serde_json::Value;
use std::path::Path;

use crate::cli::{ExperimentCommand, ExperimentTarget};
use crate::commands::{ensure_not_served, open_engine, resolve_config};
use crate::http_client::{call_json, call_raw, error_message};

/// Runs an `experiment` subcommand.
pub fn run(what: ExperimentCommand) -> Result<()> {
    match what {
        ExperimentCommand::Create { target, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let created = match &target.server {
                Some(server) => remote(server, "POST", "/v1/experiments", Some(&body))?,
                None => with_engine(&target, true, |engine| {
                    let def = ExperimentDef::from_json(&body)
                        .with_context(|| format!("{}: invalid experiment", file.display()))?;
                    Ok(serde_json::to_value(
                        engine.create_experiment(def, Timestamp::now())?,
                    )?)
                })?,
            };
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(())
        }
        ExperimentCommand::List { target, json } => {
            let listing = fetch(&target, "/v1/experiments", |engine| {
                Ok(serde_json::json!({ "experiments": engine.experiments() }))
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                print!("{}", render_list(&listing));
            }
            Ok(())
        }
        ExperimentCommand::Show { target, id } => {
            let shown = fetch(&target, &format!("/v1/experiments/{id}"), |engine| {
                let view = engine.experiment(&id).with_context(|| {
                    format!("no experiment `{id}` (see `flywheel experiment list`)")
                })?;
                Ok(serde_json::to_value(view)?)
            })?;
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(())
        }
        ExperimentCommand::Ramp {
            target,
            id,
            traffic,
        } => {
            let path = format!("/v1/experiments/{id}/ramp");
            let body = serde_json::json!({ "traffic": traffic });
            let ramped = match &target.server {
                Some(server) => remote(server, "POST", &path, Some(&body))?,
                None => with_engine(&target, true, |engine| {
                    let view = engine.ramp_experiment(&id, traffic, Timestamp::now())?;
                    Ok(serde_json::to_value(view)?)
                })?,
            };
            println!(
                "experiment {id} now takes {} of layer {} (buckets {})",
                ramped["traffic"], ramped["layer_name"], ramped["layer_buckets"]
            );
            Ok(())
        }
        ExperimentCommand::Stop { target, id } => {
            let path = format!("/v1/experiments/{id}/stop");
            let stopped = match &target.server {
                Some(server) => remote(server, "POST", &path, None)?,
                None => with_engine(&target, true, |engine| {
                    Ok(serde_json::to_value(
                        engine.stop_experiment(&id, Timestamp::now())?,
                    )?)
                })?,
            };
            println!(
                "experiment {id} is {}",
                stopped["status"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        ExperimentCommand::Report {
            target,
            id,
            json,
            html,
        } => {
            let metrics = fetch(
                &target,
                &format!("/v1/experiments/{id}/metrics"),
                |engine| Ok(serde_json::to_value(engine.experiment_metrics(&id)?)?),
            )?;
            if let Some(path) = &html {
                std::fs::write(path, render_html(&metrics))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&metrics)?);
            } else {
                print!("{}", render_report(&metrics));
            }
            Ok(())
        }
        ExperimentCommand::Export { target, id, users } => export(&target, &id, &users),
        ExperimentCommand::Assign { file, users } => assign(&file, &users),
    }
}

/// Prints each user's layer bucket, variant bucket and variant under `file`'s
/// definition, placed alone in its layer (the first `round(10000 · traffic)` buckets).
fn assign(file: &Path, users: &[String]) -> Result<()> {
    use flywheel_experiments::live::{buckets_for, Book};
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let body: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let def = ExperimentDef::from_json(&body)
        .with_context(|| format!("{}: invalid experiment", file.display()))?;
    let mut book = Book::default();
    let id = def.id.clone();
    book.start(def, [0, buckets_for(1.0)], Timestamp(0));
    let running = book.get(&id).context("the experiment just started")?;
    let traffic_end = buckets_for(running.def.traffic);
    for user in users {
        let layer_bucket = running.layer_bucket(user);
        let included = layer_bucket < traffic_end;
        let variant = running.def.variants[running.variant_of(user)].name.clone();
        let line = serde_json::json!({
            "user_id": user,
            "layer_bucket": layer_bucket,
            "variant_bucket": flywheel_experiments::assign_bucket(user, &running.def.salt),
            "in_experiment": included,
            "variant": if included { Some(variant) } else { None },
        });
        println!("{line}");
    }
    Ok(())
}

fn export(target: &ExperimentTarget, id: &str, users: &Path) -> Result<()> {
    let bytes = match &target.server {
        Some(server) => {
            let path = format!("/v1/experiments/{id}/users");
            let (status, bytes) = call_raw(server, "GET", &path)?;
            if !(200..300).contains(&status) {
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                bail!("{server}{path} answered {status}: {}", error_message(&body));
            }
            bytes
        }
        None => with_engine(target, false, |engine| {
            let mut out = Vec::new();
            engine.export_experiment_users(id, &mut out)?;
            Ok(out)
        })?,
    };
    std::fs::write(users, &bytes).with_context(|| format!("writing {}", users.display()))?;
    let rows = bytes
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        .saturating_sub(1);
    println!("wrote {rows} users to {}", users.display());
    Ok(())
}

/// Reads through the server when one is named, else from the data dir.
fn fetch(
    target: &ExperimentTarget,
    path: &str,
    local: impl FnOnce(&Engine) -> Result<Value>,
) -> Result<Value> {
    match &target.server {
        Some(server) => remote(server, "GET", path, None),
        None => with_engine(target, false, local),
    }
}

/// Opens the data dir's engine (replaying the log), runs `work`, shuts it down.
fn with_engine<T>(
    target: &ExperimentTarget,
    writes: bool,
    work: impl FnOnce(&Engine) -> Result<T>,
) -> Result<T> {
    let config = resolve_config(&target.data, "flywheel-data")?;
    if writes || config.data_dir.join("flywheel.lock").exists() {
        ensure_not_served(&config.data_dir)?;
    }
    let engine = open_engine(config)?;
    let result = work(&engine);
    engine.shutdown();
    result
}

fn remote(server: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let (status, reply) = call_json(server, method, path, body)?;
    if !(200..300).contains(&status) {
        bail!(
            "{server}{path} answered {status}: {}",
            error_message(&reply)
        );
    }
    Ok(reply)
}

fn render_list(listing: &Value) -> String {
    let mut out = format!(
        "{:<20} {:<13} {:<8} {:<24} {}\n",
        "id", "kind", "status", "layer", "variants"
    );
    for e in listing["experiments"].as_array().into_iter().flatten() {
        let variants: Vec<String> = e["variants"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let version = v["model_version"].as_str().unwrap_or("serving");
                format!("{}={version}", v["name"].as_str().unwrap_or("?"))
            })
            .collect();
        out.push_str(&format!(
            "{:<20} {:<13} {:<8} {:<24} {}\n",
            e["id"].as_str().unwrap_or("?"),
            e["kind"].as_str().unwrap_or("?"),
            e["status"].as_str().unwrap_or("?"),
            e["layer_name"].as_str().unwrap_or("?"),
            variants.join(" ")
        ));
    }
    out
}

fn figure(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

/// The rows of the per-variant table: (name, users, impressions, clicks, purchases,
/// revenue, ctr, cvr, rpm, pending).
fn variant_rows(metrics: &Value) -> Vec<[String; 10]> {
    metrics["variants"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, v)| {
            [
                name.clone(),
                v["users"].to_string(),
                v["impressions"].to_string(),
                v["clicks"].to_string(),
                v["purchases"].to_string(),
                figure(&v["revenue"], 2),
                figure(&v["ctr"], 5),
                figure(&v["cvr"], 4),
                figure(&v["rpm"], 2),
                v["pending_labels"].to_string(),
            ]
        })
        .collect()
}

const VARIANT_HEADER: [&str; 10] = [
    "variant",
    "users",
    "impressions",
    "clicks",
    "purchases",
    "revenue",
    "ctr",
    "cvr",
    "rpm",
    "pending",
];

/// The comparison lines: (treatment, metric, effect, lift, CI, p, CUPED, sequential).
fn comparison_lines(metrics: &Value) -> Vec<String> {
    metrics["comparisons"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, c)| {
            format!(
                "{name} vs control on {}: effect {} (lift {}), 95% CI [{}, {}], p {}; CUPED {} [{}, {}]; always-valid [{}, {}]",
                c["metric"].as_str().unwrap_or("?"),
                figure(&c["effect"], 5),
                figure(&c["relative_lift"], 4),
                figure(&c["ci_low"], 5),
                figure(&c["ci_high"], 5),
                figure(&c["p_value"], 4),
                figure(&c["cuped"]["effect"], 5),
                figure(&c["cuped"]["ci_low"], 5),
                figure(&c["cuped"]["ci_high"], 5),
                figure(&c["sequential"]["ci_low"], 5),
                figure(&c["sequential"]["ci_high"], 5),
            )
        })
        .collect()
}

fn summary_lines(metrics: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    if !metrics["srm"].is_null() {
        lines.push(format!(
            "SRM: chi2 {} p {}{}",
            figure(&metrics["srm"]["chi2"], 3),
            figure(&metrics["srm"]["p_value"], 4),
            if metrics["srm"]["mismatch"].as_bool() == Some(true) {
                "  << SAMPLE RATIO MISMATCH: do not trust the effects"
            } else {
                ""
            }
        ));
    }
    let i = &metrics["interleaving"];
    if !i.is_null() {
        lines.push(format!(
            "interleaving: {} wins, {} losses, {} ties, preference {} [{}, {}] p {}; {} requests pending",
            i["wins"], i["losses"], i["ties"],
            figure(&i["preference"], 4),
            figure(&i["ci_low"], 4),
            figure(&i["ci_high"], 4),
            figure(&i["p_value"], 4),
            i["pending_requests"]
        ));
    }
    for (name, s) in metrics["shadow"].as_object().into_iter().flatten() {
        lines.push(format!(
            "shadow {name}: {} requests, overlap@k {}, timeouts {}, fallbacks {}, p99 {} ms, engaged recall {}, MRR {} (live {})",
            s["requests"],
            figure(&s["overlap_at_k"], 3),
            figure(&s["timeout_rate"], 3),
            figure(&s["fallback_rate"], 3),
            figure(&s["p99_latency_ms"], 1),
            figure(&s["engaged_recall"], 3),
            figure(&s["shadow_mrr"], 3),
            figure(&s["live_mrr"], 3),
        ));
    }
    let u = &metrics["unattributed"];
    lines.push(format!(
        "labels pending: {}; forced requests (not counted): {}; unknown request ids: {}; late outcomes: {}; items not in their list: {}",
        metrics["pending_labels"], metrics["forced_requests"], u["unknown_request"], u["late"], u["item_not_in_list"]
    ));
    for warning in metrics["warnings"].as_array().into_iter().flatten() {
        lines.push(format!("warning: {}", warning.as_str().unwrap_or("?")));
    }
    lines
}

fn render_report(metrics: &Value) -> String {
    let mut out = format!(
        "experiment {} ({}, {})\n",
        metrics["id"].as_str().unwrap_or("?"),
        metrics["kind"].as_str().unwrap_or("?"),
        metrics["status"].as_str().unwrap_or("?")
    );
    out.push_str(&VARIANT_HEADER.join("\t"));
    out.push('\n');
    for row in variant_rows(metrics) {
        out.push_str(&row.join("\t"));
        out.push('\n');
    }
    for line in comparison_lines(metrics)
        .into_iter()
        .chain(summary_lines(metrics))
    {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn render_html(metrics: &Value) -> String {
    use flywheel_eval::report_html::{Page, Table};
    let id = metrics["id"].as_str().unwrap_or("?");
    let mut page = Page::new(&format!("flywheel experiment {id}"));
    page.h2("Variants");
    let mut table = Table::new(VARIANT_HEADER);
    for row in variant_rows(metrics) {
        table.row(row);
    }
    page.table(&table);
    page.h2("Statistics");
    for line in comparison_lines(metrics)
        .into_iter()
        .chain(summary_lines(metrics))
    {
        page.paragraph(&line);
    }
    page.finish()
}
