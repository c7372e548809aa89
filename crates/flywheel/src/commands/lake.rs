//! `flywheel lake export|erase`, `serve --lake DIR` and `train --from-lake DIR`: the
//! Parquet event lake of flywheel-lake, compiled in only with the `parquet` feature.
//! Without it every entry point is a clear error saying how to rebuild.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use clap::Subcommand;
use flywheel_engine::Engine;

use crate::cli::DataArgs;

/// `flywheel lake ...`.
#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Export the log of a stopped data dir to the lake, from where the lake's position
    /// says (once; `serve --lake DIR` exports continuously).
    Export {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// The lake's root directory.
        #[arg(long)]
        lake: PathBuf,
        /// At most this many log records per batch (one file per table and partition).
        #[arg(long, default_value_t = 100_000)]
        max_rows_per_file: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove every row of a user from the lake (files rewritten atomically).
    Erase {
        /// The lake's root directory.
        #[arg(long)]
        lake: PathBuf,
        /// The user to erase.
        #[arg(long)]
        user: String,
    },
}

/// How `serve` exports continuously (read only by the `parquet` build).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub struct LakeFlags {
    /// `--lake DIR`.
    pub dir: PathBuf,
    /// `--lake-flush-secs`.
    pub flush_secs: u64,
    /// `--lake-max-rows-per-file`.
    pub max_rows_per_file: usize,
}

#[cfg(not(feature = "parquet"))]
fn missing_feature(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} needs the Parquet lake, which this binary was built without: rebuild with \
         `cargo build --release -p flywheel --features parquet`"
    )
}

/// Runs `flywheel lake ...`.
pub fn run(what: LakeCommand) -> Result<()> {
    imp::run(what)
}

/// The continuous exporter of `serve --lake`: stops (after a last flush) when dropped
/// or [`LakeExport::finish`]ed.
pub struct LakeExport {
    #[cfg(feature = "parquet")]
    inner: imp::Running,
}

impl LakeExport {
    /// Stops the exporter after it has flushed what the log holds.
    pub fn finish(self) {
        #[cfg(feature = "parquet")]
        self.inner.finish();
    }
}

/// Starts exporting the engine's log to the lake off the request path.
pub fn start_export(engine: &Arc<Engine>, flags: &LakeFlags) -> Result<LakeExport> {
    imp::start_export(engine, flags)
}

/// The erasure target of `serve --lake DIR`: the user's rows rewritten out of the
/// lake's files (`None` in a build without the `parquet` feature, which refuses
/// `--lake` anyway).
pub fn erasure_target(
    flags: &LakeFlags,
    pseudonyms: &flywheel_engine::Pseudonyms,
) -> Option<Arc<dyn flywheel_engine::ErasureTarget>> {
    imp::erasure_target(flags, pseudonyms)
}

/// The lake's records in log order, as training's replay source.
pub fn lake_records(dir: &Path) -> Result<Vec<(u64, flywheel_core::LogRecord)>> {
    imp::lake_records(dir)
}

#[cfg(not(feature = "parquet"))]
mod imp {
    use super::*;

    pub fn run(_: LakeCommand) -> Result<()> {
        Err(missing_feature("`flywheel lake`"))
    }

    pub fn start_export(_: &Arc<Engine>, _: &LakeFlags) -> Result<LakeExport> {
        Err(missing_feature("`serve --lake`"))
    }

    pub fn lake_records(_: &Path) -> Result<Vec<(u64, flywheel_core::LogRecord)>> {
        Err(missing_feature("`train --from-lake`"))
    }

    pub fn erasure_target(
        _: &LakeFlags,
        _: &flywheel_engine::Pseudonyms,
    ) -> Option<Arc<dyn flywheel_engine::ErasureTarget>> {
        None
    }
}

#[cfg(feature = "parquet")]
mod imp {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use anyhow::Context;
    use flywheel_lake::{ExportConfig, Exporter};
    use flywheel_log::{EventLog, LogConfig};

    use super::*;
    use crate::commands::{ensure_not_served, resolve_config};

    pub fn run(what: LakeCommand) -> Result<()> {
        match what {
            LakeCommand::Export {
                data,
                lake,
                max_rows_per_file,
                json,
            } => export_once(&data, lake, max_rows_per_file, json),
            LakeCommand::Erase { lake, user } => {
                let counts = flywheel_lake::erase_user(&lake, &user)
                    .with_context(|| format!("erasing user {user} from {}", lake.display()))?;
                println!("{}", serde_json::to_string_pretty(&counts)?);
                Ok(())
            }
        }
    }

    fn export_config(
        engine_config: &flywheel_engine::EngineConfig,
        lake: PathBuf,
        rows: usize,
    ) -> ExportConfig {
        ExportConfig {
            lake_dir: lake,
            max_rows_per_file: rows,
            allowed_lateness_ms: engine_config.experiments.allowed_lateness_secs as i64 * 1000,
        }
    }

    fn export_once(data: &DataArgs, lake: PathBuf, rows: usize, json: bool) -> Result<()> {
        let config = resolve_config(data, "flywheel-data")?;
        ensure_not_served(&config.data_dir)?;
        let log_dir = config.data_dir.join("log");
        if !log_dir.is_dir() {
            anyhow::bail!(
                "{} holds no log (expected {})",
                config.data_dir.display(),
                log_dir.display()
            );
        }
        let (log, _) = EventLog::open(LogConfig::new(&log_dir))
            .with_context(|| format!("opening the log {}", log_dir.display()))?;
        let started = std::time::Instant::now();
        let cpu = crate::commands::cpu::process_cpu_seconds()?;
        let mut exporter = Exporter::open(export_config(&config, lake.clone(), rows), &log)
            .with_context(|| format!("opening the lake {}", lake.display()))?;
        let report = exporter.export_available(&log)?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = crate::commands::cpu::process_cpu_seconds()? - cpu;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            let rows: u64 = report.rows.values().sum();
            println!(
                "exported {} log records ({} rows, {} files, {} skipped) to {} in {seconds:.2} s ({cpu:.2} CPU s); position {}",
                report.records, rows, report.files, report.skipped, lake.display(), report.next_offset
            );
            for (table, n) in &report.rows {
                println!("  {table:<12} {n:>10} rows");
            }
        }
        Ok(())
    }

    pub struct Running {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Running {
        pub fn finish(mut self) {
            self.stop_and_join();
        }

        fn stop_and_join(&mut self) {
            self.stop.store(true, Ordering::Release);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop_and_join();
        }
    }

    pub fn start_export(engine: &Arc<Engine>, flags: &LakeFlags) -> Result<LakeExport> {
        let config = export_config(engine.config(), flags.dir.clone(), flags.max_rows_per_file);
        let mut exporter = Exporter::open(config, engine.log())
            .with_context(|| format!("opening the lake {}", flags.dir.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flush = Duration::from_secs(flags.flush_secs.max(1));
        let thread = {
            let engine = Arc::clone(engine);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("lake-export".into())
                .spawn(move || {
                    exporter.run(engine.log(), flush, &stop, &mut |e| {
                        tracing::error!("lake export failed (retried at the next flush): {e}");
                    })
                })
                .context("starting the lake exporter")?
        };
        eprintln!(
            "lake: exporting the log to {} every {} s",
            flags.dir.display(),
            flush.as_secs()
        );
        Ok(LakeExport {
            inner: Running {
                stop,
                thread: Some(thread),
            },
        })
    }

    pub fn erasure_target(
        flags: &LakeFlags,
        pseudonyms: &flywheel_engine::Pseudonyms,
    ) -> Option<Arc<dyn flywheel_engine::ErasureTarget>> {
        Some(Arc::new(LakeTarget {
            dir: flags.dir.clone(),
            pseudonyms: pseudonyms.clone(),
        }))
    }

    /// Erasure reaching the lake: every file holding the user's rows rewritten.
    struct LakeTarget {
        dir: PathBuf,
        pseudonyms: flywheel_engine::Pseudonyms,
    }

    impl flywheel_engine::ErasureTarget for LakeTarget {
        fn name(&self) -> &str {
            "lake"
        }

        fn erase(
            &self,
            pseudonym: &str,
            user: Option<&flywheel_core::UserId>,
        ) -> std::result::Result<flywheel_engine::ErasedCounts, String> {
            let users = match user {
                Some(user) => vec![user.as_str().to_string()],
                None => self.users_by_pseudonym(pseudonym)?,
            };
            let mut counts = flywheel_engine::ErasedCounts::new();
            for user in users {
                let erased = flywheel_lake::erase_user(&self.dir, &user)
                    .map_err(|e| format!("lake {}: {e}", self.dir.display()))?;
                for (table, rows) in erased.rows {
                    *counts.entry(format!("rows_{table}")).or_default() += rows;
                }
                *counts.entry("files_rewritten".into()).or_default() += erased.files_rewritten;
                *counts.entry("files_removed".into()).or_default() += erased.files_removed;
            }
            Ok(counts)
        }
    }

    impl LakeTarget {
        /// The lake's user ids whose pseudonym is `pseudonym` (a resumed erasure).
        fn users_by_pseudonym(&self, pseudonym: &str) -> std::result::Result<Vec<String>, String> {
            let ids = flywheel_lake::user_ids(&self.dir)
                .map_err(|e| format!("lake {}: {e}", self.dir.display()))?;
            let mut found = Vec::new();
            for id in ids {
                if self.pseudonyms.pseudonym(&id).map_err(|e| e.to_string())? == pseudonym {
                    found.push(id);
                }
            }
            Ok(found)
        }
    }

    pub fn lake_records(dir: &Path) -> Result<Vec<(u64, flywheel_core::LogRecord)>> {
        if !dir.is_dir() {
            anyhow::bail!("--from-lake {}: no such directory", dir.display());
        }
        flywheel_lake::read_records(dir)
            .with_context(|| format!("reading the lake {}", dir.display()))
    }
}
