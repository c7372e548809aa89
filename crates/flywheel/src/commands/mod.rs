//! The subcommands. Each turns validated arguments into engine calls.

mod bench;
pub(crate) mod bench_ann;
mod bench_experiments;
pub(crate) mod bench_http;
pub(crate) mod bench_ranker_bias;
pub(crate) mod bench_self_healing;
pub(crate) mod bench_startup;
mod cpu;
mod eval;
mod experiment;
mod import;
mod inspect;
mod kafka;
mod keys;
pub(crate) mod lake;
mod models;
pub(crate) mod monitor;
pub mod object_store;
mod peers;
mod quickstart;
pub mod ranker;
mod redis;
mod serve;
pub(crate) mod simulate;
pub(crate) mod snapshot;
mod train;
pub(crate) mod users;

use anyhow::{Context, Result};
use flywheel_engine::{Engine, EngineConfig};
use std::path::Path;

use crate::cli::{Cli, Command, DataArgs};

/// Runs one command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Quickstart {
            data,
            port,
            no_serve,
            seed,
        } => quickstart::run(&data, port, no_serve, seed),
        Command::Serve {
            data,
            port,
            host,
            simulated_clock,
            allow_open,
            rate_per_key,
            rate_per_user,
            controller_every,
            lake,
            lake_flush_secs,
            lake_max_rows_per_file,
            redis,
            redis_role,
            redis_read_deadline_ms,
            redis_prefix,
            kafka,
            object_store,
        } => serve::run(
            &data,
            &host,
            port,
            &serve::ServeFlags {
                simulated_clock,
                allow_open,
                rate_per_key,
                rate_per_user,
                controller_every,
                lake: lake.map(|dir| lake::LakeFlags {
                    dir,
                    flush_secs: lake_flush_secs,
                    max_rows_per_file: lake_max_rows_per_file,
                }),
                redis: redis.map(|url| serve::RedisFlags {
                    url,
                    role: redis_role,
                    read_deadline_ms: redis_read_deadline_ms,
                    prefix: redis_prefix,
                }),
                kafka,
                object_store,
            },
        ),
        Command::Keys { what } => keys::run(what),
        Command::Import { what } => import::run(what),
        Command::Train {
            data,
            force,
            server,
            json,
            from_lake,
        } => match from_lake {
            Some(lake) => train::run_from_lake(&data, force, &lake, json),
            None => train::run(&data, force, server.as_deref(), json),
        },
        Command::Lake { what } => lake::run(what),
        Command::Models { what } => models::run(what),
        Command::Users { what } => users::run(what),
        Command::Monitor { what } => monitor::run(what),
        Command::Ranker { what } => ranker::run(what),
        Command::Experiment { what } => experiment::run(what),
        Command::Eval(args) => eval::run(args),
        Command::Simulate {
            out,
            seed,
            users,
            items,
            days,
            inject,
        } => simulate::run(&out, seed, users, items, days, &inject),
        Command::Inspect {
            data,
            segment,
            records,
            kafka,
        } => {
            if kafka.kafka_log.is_some() {
                let config = resolve_config(&data, "flywheel-data")?;
                kafka::inspect_log(&kafka, &config.data_dir, records)
            } else {
                kafka::check_args(&kafka)?;
                inspect::run(&data, segment.as_deref(), records)
            }
        }
        Command::Snapshot { what } => snapshot::run(what),
        Command::Bench { what } => bench::run(what),
    }
}

/// Resolves the configuration: defaults < file < environment < flags.
pub fn resolve_config(data: &DataArgs, default_dir: &str) -> Result<EngineConfig> {
    let mut config = match &data.config {
        Some(path) => EngineConfig::from_toml_file(path)?,
        None => EngineConfig {
            data_dir: default_dir.into(),
            ..EngineConfig::default()
        },
    };
    if let Ok(dir) = std::env::var("FLYWHEEL_DATA_DIR") {
        if !dir.is_empty() {
            config.data_dir = dir.into();
        }
    }
    if let Some(dir) = &data.data_dir {
        config.data_dir = dir.clone();
    }
    config.validate()?;
    Ok(config)
}

/// Refuses to change a data dir that a running flywheel process holds, and says how
/// to act through it instead.
pub fn ensure_not_served(dir: &Path) -> Result<()> {
    if flywheel_engine::data_dir_in_use(dir)? {
        anyhow::bail!(
            "the data dir {} is held by a running flywheel process (is `flywheel serve` running?): \
             pass --server http://HOST:PORT to act through it, or stop it first",
            dir.display()
        );
    }
    Ok(())
}

/// Opens the engine and waits until its state has replayed the log.
pub fn open_engine(config: EngineConfig) -> Result<Engine> {
    let dir = config.data_dir.clone();
    let engine = Engine::open(config)
        .with_context(|| format!("opening data directory {}", dir.display()))?;
    report_recovery(&engine, &dir);
    let bar = crate::progress::spinner("replaying the log");
    engine.catch_up();
    bar.finish_and_clear();
    Ok(engine)
}

/// Tells the operator when recovery truncated a torn or corrupt log tail.
pub fn report_recovery(engine: &Engine, dir: &Path) {
    let recovery = engine.recovery();
    if let Some(truncation) = &recovery.truncated {
        eprintln!(
            "warning: the log in {} had a torn or corrupt tail: {} ({} bytes dropped from {}; {} valid bytes kept). Unacknowledged writes only.",
            dir.display(),
            truncation.reason,
            truncation.dropped_bytes,
            truncation.segment.display(),
            truncation.valid_bytes
        );
    }
}
