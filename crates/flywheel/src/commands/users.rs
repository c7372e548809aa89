//! `flywheel users erase ID`: a user erased from every store (GDPR), on a stopped data
//! dir (both phases run here, then the report is printed) or through a running server
//! (`--server URL`: `DELETE /v1/users/{id}`, then the erasure job is polled until it
//! ends and its report printed).

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use flywheel_core::UserId;
use serde_json::Value;
use std::time::Duration;

use crate::cli::DataArgs;
use crate::commands::{ensure_not_served, open_engine, resolve_config};
use crate::http_client::{call_json, error_message};

/// `flywheel users`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Erase a user from the log (segments compacted), the catalog, the features, the
    /// experiments and every model version; works for users known only from events.
    Erase {
        /// The user's id.
        id: String,
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Act through a running server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        server: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `users` subcommand.
pub fn run(what: UsersCommand) -> Result<()> {
    match what {
        UsersCommand::Erase {
            id,
            data,
            server,
            json,
        } => {
            let user = UserId::parse("id", &id)?;
            let report = match server {
                Some(server) => erase_remote(&server, &user)?,
                None => erase_local(&data, &user)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render(&report));
            }
            Ok(())
        }
    }
}

fn erase_local(data: &DataArgs, user: &UserId) -> Result<Value> {
    let config = resolve_config(data, "flywheel-data")?;
    ensure_not_served(&config.data_dir)?;
    let engine = open_engine(config)?;
    let report = engine
        .erase_user(user)
        .with_context(|| format!("erasing user {user}"))?;
    Ok(serde_json::to_value(report)?)
}

fn erase_remote(server: &str, user: &UserId) -> Result<Value> {
    let path = format!("/v1/users/{}", percent_encode(user.as_str()));
    let (status, job) = call_json(server, "DELETE", &path, None)?;
    if status != 202 {
        bail!("{server}{path} answered {status}: {}", error_message(&job));
    }
    let id = job["id"].as_str().unwrap_or_default().to_string();
    loop {
        let (status, job) = call_json(server, "GET", &format!("/v1/jobs/{id}"), None)?;
        if status != 200 {
            bail!("job {id}: {status}: {}", error_message(&job));
        }
        match job["state"].as_str() {
            Some("succeeded") => return Ok(job["erasure"].clone()),
            Some("failed") => bail!(
                "erasure job {id} failed (it resumes when the server restarts): {}",
                job["error"].as_str().unwrap_or("?")
            ),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Escapes everything but unreserved characters, so any valid id is one path segment.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn render(report: &Value) -> String {
    let count = |key: &str| report[key].as_u64().unwrap_or(0);
    let mut out = format!(
        "erased user (pseudonym {}), marker at log offset {}\n",
        report["pseudonym"].as_str().unwrap_or("?"),
        count("marker_offset")
    );
    let records = report["log_records_erased"].as_object();
    let listed: Vec<String> = records
        .into_iter()
        .flatten()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    out += &format!(
        "  log: {} records replaced ({}), {} of {} segments rewritten\n",
        records
            .into_iter()
            .flatten()
            .filter_map(|(_, n)| n.as_u64())
            .sum::<u64>(),
        if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join(", ")
        },
        count("segments_rewritten"),
        count("segments_scanned"),
    );
    out += &format!(
        "  catalog: {}, features: {}, experiment entries: {}\n",
        if report["catalog_user_removed"] == true {
            "removed"
        } else {
            "absent"
        },
        if report["features_dropped"] == true {
            "dropped"
        } else {
            "absent"
        },
        count("experiment_entries_dropped"),
    );
    out += &format!(
        "  models: {} user entries dropped, {} files in {} of {} versions rewritten\n",
        count("model_user_entries_dropped"),
        count("model_files_rewritten"),
        count("model_versions_rewritten"),
        count("model_versions_scanned"),
    );
    if let Some(targets) = report["targets"].as_object() {
        for (name, counts) in targets {
            out += &format!("  {name}: {counts}\n");
        }
    }
    out
}
