//! `flywheel snapshot create|list|verify` on a stopped data directory: take a snapshot
//! of the derived state, list the snapshot files, check each as start-up would.

use anyhow::Result;
use clap::Subcommand;
use flywheel_engine::snapshot::{list_snapshots, verify_snapshots, SnapshotFile};

use crate::cli::DataArgs;
use crate::commands::{ensure_not_served, open_engine, resolve_config};

/// `flywheel snapshot`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Replay the log (from the newest valid snapshot) and snapshot the state now.
    Create {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Print the snapshot as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The snapshot files, newest first (not checked; see `verify`).
    List {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check every snapshot as start-up would (checksums, format version, the
    /// configuration's fingerprint, the log's end, the payload); exit 1 if any fails.
    Verify {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `snapshot` subcommand.
pub fn run(what: SnapshotCommand) -> Result<()> {
    match what {
        SnapshotCommand::Create { data, json } => {
            let config = resolve_config(&data, "flywheel-data")?;
            ensure_not_served(&config.data_dir)?;
            let engine = open_engine(config)?;
            let info = engine.snapshot_now()?;
            engine.shutdown();
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!(
                    "snapshot at offset {} written: {} ({} bytes; state locked {:.0} ms, written in {:.0} ms)",
                    info.offset,
                    info.path.display(),
                    info.bytes,
                    info.encode_ms,
                    info.write_ms
                );
            }
            Ok(())
        }
        SnapshotCommand::List { data, json } => {
            let config = resolve_config(&data, "flywheel-data")?;
            print_files(&list_snapshots(&config.data_dir)?, json, false)
        }
        SnapshotCommand::Verify { data, json } => {
            let config = resolve_config(&data, "flywheel-data")?;
            ensure_not_served(&config.data_dir)?;
            let files = verify_snapshots(&config)?;
            print_files(&files, json, true)?;
            if files.iter().any(|f| f.rejected.is_some()) {
                anyhow::bail!("some snapshots would not be loaded (start-up skips them)");
            }
            Ok(())
        }
    }
}

fn print_files(files: &[SnapshotFile], json: bool, checked: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(files)?);
        return Ok(());
    }
    if files.is_empty() {
        println!("no snapshots (start-up replays the whole log)");
    }
    for file in files {
        let verdict = match (&file.rejected, checked) {
            (Some(rejected), _) => format!("REJECTED ({}): {}", rejected.kind, rejected.reason),
            (None, true) => "valid".to_string(),
            (None, false) => String::new(),
        };
        println!(
            "{:>14}  {:>14} bytes  {}  {verdict}",
            file.offset,
            file.bytes,
            file.path.display()
        );
    }
    Ok(())
}
