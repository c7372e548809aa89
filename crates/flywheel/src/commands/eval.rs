//! `flywheel eval`: the temporal holdout on a data dir, or the file-based tools.

use anyhow::{bail, Context, Result};
use flywheel_engine::evaluation::{evaluate, EvalOptions, EvalReport};
use flywheel_engine::Engine;
use std::path::Path;

use crate::cli::{EvalArgs, EvalTool};
use crate::commands::{open_engine, resolve_config};

/// Runs `flywheel eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    match args.tool {
        Some(EvalTool::Metrics { qrels, run, preds, k, html }) => {
            if qrels.is_none() && run.is_none() && preds.is_none() {
                bail!("give --qrels and --run (ranking metrics) and/or --preds (pointwise metrics)");
            }
            let report = flywheel_eval::metrics_from_files(qrels.as_deref(), run.as_deref(), preds.as_deref(), &k)?;
            if let Some(path) = html {
                write_html(&path, &flywheel_eval::html_report("flywheel metrics", Some(&report), None))?;
            }
            print_report(args.json, &report, || report.render_text())
        }
        Some(EvalTool::Ope { log, clip, bootstrap, seed, html }) => {
            let options = flywheel_eval::OpeOptions {
                clip_weights: clip,
                bootstrap: (bootstrap > 0).then_some(flywheel_eval::ope::BootstrapOptions { resamples: bootstrap, seed }),
                ..flywheel_eval::OpeOptions::default()
            };
            let report = flywheel_eval::ope_from_file(&log, &options)?;
            if let Some(path) = html {
                write_html(&path, &flywheel_eval::html_report("flywheel off-policy evaluation", None, Some(&report)))?;
            }
            print_report(args.json, &report, || report.render_text())
        }
        Some(EvalTool::Ab { users }) => {
            let report = flywheel_experiments::ab_from_file(&users, &flywheel_experiments::AbOptions::default())?;
            print_report(args.json, &report, || report.render_text())
        }
        None => {
            let engine = open_engine(resolve_config(&args.data, "flywheel-data")?)?;
            let options = EvalOptions {
                holdout: args.holdout,
                max_users: args.max_users,
            };
            let report = holdout(&engine, &options)?;
            engine.shutdown();
            print_report(args.json, &report, || render_holdout(&report))
        }
    }
}

fn write_html(path: &Path, html: &str) -> Result<()> {
    std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn print_report<T: serde::Serialize>(json: bool, report: &T, text: impl Fn() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

/// Runs the temporal holdout with a spinner.
pub fn holdout(engine: &Engine, options: &EvalOptions) -> Result<EvalReport> {
    let bar = crate::progress::spinner("evaluating");
    let replay = |visit: &mut dyn FnMut(u64, &flywheel_core::LogRecord) -> flywheel_engine::Result<()>| engine.replay(visit);
    let report = evaluate(engine.config(), &replay, options, &mut |stage| bar.set_message(stage.to_string()));
    bar.finish_and_clear();
    Ok(report?)
}

/// A table of the holdout metrics.
pub fn render_holdout(report: &EvalReport) -> String {
    let mut out = format!(
        "{}; cut at {}\n{} train events, {} test events, {} test users ({} with no history), {} items\n\n",
        report.protocol, report.cut, report.train_events, report.test_events, report.test_users, report.cold_users, report.catalog_items
    );
    let mut table = |title: &str, systems: &std::collections::BTreeMap<String, flywheel_engine::evaluation::SystemMetrics>| {
        if systems.is_empty() {
            return;
        }
        out.push_str(&format!("{title}\n{:<16} {:>9} {:>10} {:>9} {:>7}\n", "system", "ndcg@10", "recall@20", "coverage", "served"));
        for (name, m) in systems {
            out.push_str(&format!("{name:<16} {:>9.4} {:>10.4} {:>9.4} {:>7}\n", m.ndcg_at_10, m.recall_at_20, m.coverage, m.users_served));
        }
        out.push('\n');
    };
    table("users with history before the cut:", &report.systems);
    table("users with no history (cold start):", &report.cold_start);
    out
}
