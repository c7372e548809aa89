//! `flywheel models`: the registry from the command line, on a stopped data dir or
//! through a running server (`--server URL`) while `flywheel serve` holds the dir.

use anyhow::{bail, Result};
use flywheel_registry as registry;
use serde_json::{json, Value};

use crate::cli::{DataArgs, ModelsCommand};
use crate::commands::{ensure_not_served, resolve_config};
use crate::http_client::{call_json, error_message};

/// Runs a `models` subcommand.
pub fn run(what: ModelsCommand) -> Result<()> {
    match what {
        ModelsCommand::List { data, server, json } => {
            let listing = match server {
                Some(server) => remote(&server, "GET", "/v1/models")?,
                None => local_listing(&data)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                print!("{}", render(&listing));
            }
            Ok(())
        }
        ModelsCommand::Promote {
            data,
            version,
            server,
        } => {
            if !registry::is_valid_version_name(&version) {
                bail!("`{version}` is not a model version: versions are names like v3 (see `flywheel models list`)");
            }
            let serving = match server {
                Some(server) => {
                    let path = format!("/v1/models/{version}/promote");
                    remote(&server, "POST", &path)?["serving"].to_string()
                }
                None => {
                    let dir = writable_data_dir(&data)?;
                    registry::promote(&dir, &version)?;
                    version
                }
            };
            println!("now serving {}", serving.trim_matches('"'));
            Ok(())
        }
        ModelsCommand::Rollback { data, server } => {
            let serving = match server {
                Some(server) => {
                    remote(&server, "POST", "/v1/models/rollback")?["serving"].to_string()
                }
                None => registry::rollback(&writable_data_dir(&data)?)?.0,
            };
            println!("rolled back; now serving {}", serving.trim_matches('"'));
            Ok(())
        }
    }
}

/// The data dir, when no server holds it (a running server must make the change so
/// that it swaps the models it serves).
fn writable_data_dir(data: &DataArgs) -> Result<std::path::PathBuf> {
    let dir = resolve_config(data, "flywheel-data")?.data_dir;
    ensure_not_served(&dir)?;
    Ok(dir)
}

/// The same shape as `GET /v1/models`.
fn local_listing(data: &DataArgs) -> Result<Value> {
    let dir = resolve_config(data, "flywheel-data")?.data_dir;
    let versions = registry::list(&dir)?;
    let serving = registry::current_version(&dir)?;
    Ok(json!({ "serving": serving.unwrap_or_else(|| "none".into()), "versions": versions }))
}

fn remote(server: &str, method: &str, path: &str) -> Result<Value> {
    let (status, body) = call_json(server, method, path, None)?;
    if !(200..300).contains(&status) {
        bail!("{server}{path} answered {status}: {}", error_message(&body));
    }
    Ok(body)
}

fn render(listing: &Value) -> String {
    let mut out = format!(
        "{:<8} {:<10} {:>9} {:>10}  {}\n",
        "version", "status", "ndcg@10", "recall@20", "gate"
    );
    for version in listing["versions"].as_array().into_iter().flatten() {
        let figure = |name: &str| {
            version["metrics"][name]
                .as_f64()
                .map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
        };
        out.push_str(&format!(
            "{:<8} {:<10} {:>9} {:>10}  {}\n",
            version["version"].as_str().unwrap_or("?"),
            version["status"].as_str().unwrap_or("?"),
            figure("ndcg@10"),
            figure("recall@20"),
            version["gate"]["reason"].as_str().unwrap_or("-"),
        ));
    }
    out.push_str(&format!(
        "serving: {}\n",
        listing["serving"].as_str().unwrap_or("none")
    ));
    out
}
