//! `flywheel eval`: the holdout evaluation on a data dir (temporal, leave-last-out or
//! user-random split), the promotion gate between two model versions, or the
//! file-based tools.

use anyhow::{bail, Context, Result};
use flywheel_engine::Engine;
use flywheel_offline::evaluation::{
    compare_registered, evaluate_candidate, evaluate_with, render_html, CandidateOpeReport,
    Comparison, EvalOptions, EvalReport, GateOptions, PromotionRule, Protocol,
};
use flywheel_registry as models;
use std::path::Path;

use crate::cli::{DataArgs, EvalArgs, EvalTool};
use crate::commands::{open_engine, resolve_config};

/// Runs `flywheel eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    match args.tool {
        Some(EvalTool::Metrics {
            qrels,
            run,
            preds,
            k,
            html,
        }) => {
            if qrels.is_none() && run.is_none() && preds.is_none() {
                bail!(
                    "give --qrels and --run (ranking metrics) and/or --preds (pointwise metrics)"
                );
            }
            let report = flywheel_eval::metrics_from_files(
                qrels.as_deref(),
                run.as_deref(),
                preds.as_deref(),
                &k,
            )?;
            if let Some(path) = html {
                write_html(
                    &path,
                    &flywheel_eval::html_report("flywheel metrics", Some(&report), None),
                )?;
            }
            print_report(args.json, &report, || report.render_text())
        }
        Some(EvalTool::Ope {
            log,
            candidate,
            data,
            clip,
            bootstrap,
            seed,
            html,
        }) => {
            let options = flywheel_eval::OpeOptions {
                clip_weights: clip,
                bootstrap: (bootstrap > 0).then_some(flywheel_eval::ope::BootstrapOptions {
                    resamples: bootstrap,
                    seed,
                }),
                ..flywheel_eval::OpeOptions::default()
            };
            let (estimates, out) = match (log, candidate) {
                (Some(log), None) => {
                    let report = flywheel_eval::ope_from_file(&log, &options)?;
                    let out = rendered(args.json, &report, || report.render_text())?;
                    (report, out)
                }
                (None, Some(version)) => {
                    let data = DataArgs {
                        data_dir: data.data_dir.or(args.data.data_dir),
                        config: data.config.or(args.data.config),
                    };
                    let scored = ope_candidate(&data, &version, &options)?;
                    let out = rendered(args.json, &scored, || scored.render_text())?;
                    (scored.estimates, out)
                }
                _ => bail!("give exactly one of --log FILE or --candidate VERSION"),
            };
            if let Some(path) = html {
                write_html(
                    &path,
                    &flywheel_eval::html_report(
                        "flywheel off-policy evaluation",
                        None,
                        Some(&estimates),
                    ),
                )?;
            }
            print!("{out}");
            Ok(())
        }
        Some(EvalTool::Ab {
            users,
            control,
            treatment,
            treatment_share,
        }) => {
            let options = flywheel_experiments::AbOptions {
                control,
                treatment,
                treatment_share,
                ..flywheel_experiments::AbOptions::default()
            };
            let report = flywheel_experiments::ab_from_file(&users, &options)?;
            print_report(args.json, &report, || report.render_text())
        }
        None => {
            let engine = open_engine(resolve_config(&args.data, "flywheel-data")?)?;
            let result = on_data_dir(&engine, &args);
            engine.shutdown();
            result
        }
    }
}

/// The holdout evaluation, or the promotion gate when `--compare` is given.
fn on_data_dir(engine: &Engine, args: &EvalArgs) -> Result<()> {
    let options = EvalOptions {
        holdout: args.holdout,
        max_users: args.max_users,
    };
    let protocol = Protocol {
        split: args.split,
        seed: args.seed,
        ..Protocol::default()
    };
    if let Some(candidate) = args.compare.first() {
        let comparison = gate(engine, &options, &protocol, candidate, args)?;
        if let Some(path) = &args.html {
            let report = holdout_with(engine, &options, &protocol)?;
            write_html(path, &render_html(&report, Some(&comparison)))?;
        }
        return print_report(args.json, &comparison, || render_comparison(&comparison));
    }
    let report = holdout_with(engine, &options, &protocol)?;
    if let Some(path) = &args.html {
        write_html(path, &render_html(&report, None))?;
    }
    print_report(args.json, &report, || render_holdout(&report))
}

/// Scores `candidate` against the serving (or the given) version on data neither was
/// trained on; promotes it when `--promote` is given and the gate says so. When the
/// two versions' configurations differ both are retrained on the split's training
/// part; otherwise their models are compared as trained, after both training windows.
fn gate(
    engine: &Engine,
    options: &EvalOptions,
    protocol: &Protocol,
    candidate: &str,
    args: &EvalArgs,
) -> Result<Comparison> {
    let data_dir = &engine.config().data_dir;
    let serving_version = match args.compare.get(1) {
        Some(version) => version.clone(),
        None => models::current_version(data_dir)?.with_context(|| {
            format!(
                "no model version is served in {}; give --compare CANDIDATE SERVING",
                data_dir.display()
            )
        })?,
    };
    if serving_version == candidate {
        bail!(
            "{candidate} is the serving version: comparing it with itself says nothing; give another candidate, or --compare CANDIDATE SERVING"
        );
    }
    let serving = models::load(data_dir, &serving_version)
        .with_context(|| format!("loading the serving version {serving_version}"))?;
    let challenger = models::load(data_dir, candidate)
        .with_context(|| format!("loading the candidate version {candidate}"))?;
    let mut gate_options = GateOptions::from_settings(&engine.config().gate);
    gate_options.seed = args.seed;
    if let Some(lift) = args.min_lift {
        gate_options.rule = PromotionRule::MeanLiftAbove { lift };
    }
    let bar = crate::progress::spinner("comparing");
    let replay =
        |visit: &mut dyn FnMut(u64, &flywheel_core::LogRecord) -> flywheel_offline::Result<()>| {
            engine.replay(visit)
        };
    let comparison = compare_registered(
        engine.config(),
        &replay,
        options,
        protocol,
        &serving,
        &challenger,
        &gate_options,
        &mut |stage| bar.set_message(stage.to_string()),
    );
    bar.finish_and_clear();
    let comparison = comparison?;
    if args.promote && comparison.promote {
        engine.promote(candidate)?;
        eprintln!("promoted {candidate}");
    } else if args.promote {
        eprintln!("{candidate} not promoted: the gate's rule is not met");
    }
    Ok(comparison)
}

/// `eval ope --candidate`: scores a registered version on the data dir's logged
/// impressions, with the serving policy's propensities.
fn ope_candidate(
    data: &DataArgs,
    version: &str,
    options: &flywheel_eval::OpeOptions,
) -> Result<CandidateOpeReport> {
    if !models::is_valid_version_name(version) {
        bail!("invalid model version `{version}`: versions are names like v3 (see `flywheel models list`)");
    }
    let engine = open_engine(resolve_config(data, "flywheel-data")?)?;
    let result = score_candidate(&engine, version, options);
    engine.shutdown();
    result
}

fn score_candidate(
    engine: &Engine,
    version: &str,
    options: &flywheel_eval::OpeOptions,
) -> Result<CandidateOpeReport> {
    let data_dir = &engine.config().data_dir;
    let known = models::list(data_dir)?;
    if !known.iter().any(|v| v.version == version) {
        let names: Vec<&str> = known.iter().map(|v| v.version.as_str()).collect();
        bail!(
            "unknown model version {version} in {}: registered versions are [{}] (see `flywheel models list`)",
            data_dir.display(),
            names.join(", ")
        );
    }
    let candidate = models::load(data_dir, version)
        .with_context(|| format!("loading the candidate version {version}"))?;
    let bar = crate::progress::spinner("off-policy evaluation");
    let replay =
        |visit: &mut dyn FnMut(u64, &flywheel_core::LogRecord) -> flywheel_offline::Result<()>| {
            engine.replay(visit)
        };
    let report = evaluate_candidate(
        engine.config(),
        &replay,
        &candidate,
        options,
        &mut |stage| bar.set_message(stage.to_string()),
    );
    bar.finish_and_clear();
    Ok(report?)
}

/// The report as pretty JSON (with a final newline) or as its text.
fn rendered<T: serde::Serialize>(
    json: bool,
    report: &T,
    text: impl Fn() -> String,
) -> Result<String> {
    Ok(if json {
        serde_json::to_string_pretty(report)? + "\n"
    } else {
        text()
    })
}

fn write_html(path: &Path, html: &str) -> Result<()> {
    std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn print_report<T: serde::Serialize>(
    json: bool,
    report: &T,
    text: impl Fn() -> String,
) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

/// Runs the temporal holdout with a spinner.
pub fn holdout(engine: &Engine, options: &EvalOptions) -> Result<EvalReport> {
    holdout_with(engine, options, &Protocol::default())
}

/// Runs the holdout evaluation under any protocol, with a spinner.
pub fn holdout_with(
    engine: &Engine,
    options: &EvalOptions,
    protocol: &Protocol,
) -> Result<EvalReport> {
    let bar = crate::progress::spinner("evaluating");
    let replay =
        |visit: &mut dyn FnMut(u64, &flywheel_core::LogRecord) -> flywheel_offline::Result<()>| {
            engine.replay(visit)
        };
    let report = evaluate_with(engine.config(), &replay, options, protocol, &mut |stage| {
        bar.set_message(stage.to_string())
    });
    bar.finish_and_clear();
    Ok(report?)
}

/// A table of the holdout metrics.
pub fn render_holdout(report: &EvalReport) -> String {
    let mut out = format!(
        "{}; recommending as of {}\n{} train events, {} test events, {} test users ({} with no history), {} items\n\n",
        report.protocol, report.cut, report.train_events, report.test_events, report.test_users, report.cold_users, report.catalog_items
    );
    let mut table = |title: &str,
                     systems: &std::collections::BTreeMap<
        String,
        flywheel_offline::evaluation::SystemMetrics,
    >| {
        if systems.is_empty() {
            return;
        }
        out.push_str(&format!("{title}\n{:<16}", "system"));
        let header = systems
            .values()
            .next()
            .map(|m| m.columns())
            .unwrap_or_default();
        for (name, _) in header {
            out.push_str(&format!(" {name:>9}"));
        }
        out.push_str("    served\n");
        for (name, m) in systems {
            out.push_str(&format!("{name:<16}"));
            for (_, value) in m.columns() {
                out.push_str(&format!(" {value:>9.4}"));
            }
            out.push_str(&format!(" {:>9}\n", m.users_served));
        }
        out.push('\n');
    };
    table("users with training history:", &report.systems);
    table("users with no history (cold start):", &report.cold_start);
    if let Some(blend) = report.slices.get("blend") {
        out.push_str(&format!(
            "blend by slice:\n{:<28} {:>8} {:>9} {:>7} {:>6}\n",
            "slice", "ndcg@10", "recall@20", "hit@10", "users"
        ));
        for (name, m) in blend {
            out.push_str(&format!(
                "{name:<28} {:>8.4} {:>9.4} {:>7.4} {:>6}\n",
                m.ndcg_at_10, m.recall_at_20, m.hit_at_10, m.users
            ));
        }
        out.push('\n');
    }
    if let Some(c) = &report.calibration {
        out.push_str(&format!(
            "ranker calibration on {} holdout candidates ({} positive): AUC {}, log-loss {:.4}, ECE {:.4}, MCE {:.4}\n",
            c.rows,
            c.positives,
            c.auc.map_or_else(|| "-".to_string(), |a| format!("{a:.4}")),
            c.log_loss,
            c.ece,
            c.mce
        ));
    }
    out
}

/// The gate's verdict in words.
pub fn render_comparison(c: &Comparison) -> String {
    format!(
        "{}\n{}\n{}\n{}\n",
        c.protocol,
        c.method.describe(),
        c.figures(),
        c.verdict()
    )
}
