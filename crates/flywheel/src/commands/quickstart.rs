//! `flywheel quickstart`: simulate → import → train → evaluate → serve.

use anyhow::Result;
use flywheel_import::ImportKind;
use std::sync::Arc;

use crate::cli::DataArgs;
use crate::commands::{eval, import, open_engine, resolve_config, serve, simulate, train};

/// Runs the quick start.
pub fn run(data: &DataArgs, port: u16, no_serve: bool, seed: u64) -> Result<()> {
    let config = resolve_config(data, "flywheel-quickstart")?;
    let dataset_dir = config.data_dir.join("dataset");
    let engine = open_engine(config)?;
    if engine.log_end_offset() == 0 {
        println!(
            "1/4 simulating a shop (seed {seed}) into {}",
            dataset_dir.display()
        );
        let files =
            simulate::write_shop(&dataset_dir, &simulate::sim_config(seed, None, None, None))?;
        println!(
            "    {} items, {} users, {} events",
            files.item_count, files.user_count, files.event_count
        );
        println!("2/4 importing it");
        import::import_file(&engine, &files.items, ImportKind::Items)?;
        import::import_file(&engine, &files.users, ImportKind::Users)?;
        import::import_file(&engine, &files.events, ImportKind::Events)?;
        engine.catch_up();
    } else {
        println!(
            "1/4 {} already holds {} log records; reusing them",
            engine.config().data_dir.display(),
            engine.log_end_offset()
        );
        println!("2/4 (nothing to import)");
    }
    println!("3/4 training");
    match train::train_with_progress(&engine, false) {
        Ok(outcome) => {
            println!(
                "    {} trained on {} interactions; {} ranker rows; {}: {}",
                outcome.version,
                outcome.report.interactions,
                outcome.report.impression_rows + outcome.report.interaction_rows,
                if outcome.promoted {
                    "serving"
                } else {
                    "not promoted"
                },
                outcome.reason
            );
            print!("    {}", train::gate_line(&outcome.report));
        }
        // A reused data dir whose served version already saw every event: keep it.
        Err(e) if engine.models().manifest.is_some() => {
            println!("    keeping {}: {e:#}", engine.models().version())
        }
        Err(e) => return Err(e),
    }
    println!("4/4 evaluating on a temporal holdout");
    let evaluation = eval::holdout(
        &engine,
        &flywheel_offline::evaluation::EvalOptions {
            holdout: 0.1,
            max_users: Some(1000),
        },
    )?;
    print!("{}", eval::render_holdout(&evaluation));
    if no_serve {
        engine.shutdown();
        return Ok(());
    }
    let (user, item) = example_ids(&engine);
    let base = format!("http://127.0.0.1:{port}");
    let banner = format!(
        "\nTry:\n  curl '{base}/v1/recommendations?user_id={user}&count=10'\n  curl -X POST {base}/v1/events -H 'Content-Type: application/json' -d '{{\"user_id\":\"{user}\",\"item_id\":\"{item}\",\"action\":\"click\"}}'\n  curl {base}/metrics\nPress Ctrl-C to stop."
    );
    serve::serve_engine(
        Arc::new(engine),
        "127.0.0.1",
        port,
        Some(banner),
        flywheel_server::ServerOptions::default(),
    )
}

/// A user and an item to put in the printed examples: the smallest ids.
fn example_ids(engine: &flywheel_engine::Engine) -> (String, String) {
    let state = engine.state();
    let user = state
        .catalog
        .users()
        .map(|u| u.id.to_string())
        .min()
        .unwrap_or_else(|| "u1".into());
    let item = state
        .catalog
        .items()
        .map(|i| i.id.to_string())
        .min()
        .unwrap_or_else(|| "i1".into());
    (user, item)
}
