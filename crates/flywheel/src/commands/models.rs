//! `flywheel models`: the registry from the command line, on a stopped data dir or
//! through a running server (`--server URL`) while `flywheel serve` holds the dir.
//! On a stopped dir the history records the change as made by `cli`; through a server
//! by the API key (`FLYWHEEL_API_KEY`).

use anyhow::{bail, Result};
use flywheel_registry as registry;
use serde_json::{json, Value};

use crate::cli::{DataArgs, ModelsCommand};
use crate::commands::{ensure_not_served, resolve_config};
use crate::http_client::{call_json, error_message};

/// Who a change on a stopped data dir is recorded as made by.
const CLI: &str = "cli";

/// Runs a `models` subcommand.
pub fn run(what: ModelsCommand) -> Result<()> {
    match what {
        ModelsCommand::List { data, server, json } => {
            let listing = match server {
                Some(server) => remote(&server, "GET", "/v1/models", None)?,
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
            check_name(&version)?;
            let serving = match server {
                Some(server) => {
                    let path = format!("/v1/models/{version}/promote");
                    text(&remote(&server, "POST", &path, None)?["serving"])
                }
                None => {
                    let dir = writable_data_dir(&data)?;
                    registry::promote_by(&dir, &version, CLI)?;
                    version
                }
            };
            println!("now serving {serving}");
            Ok(())
        }
        ModelsCommand::Rollback { data, server } => rollback(&data, server.as_deref()),
        ModelsCommand::Canary {
            data,
            version,
            share,
            server,
        } => {
            check_name(&version)?;
            let canary = match server {
                Some(server) => {
                    let path = format!("/v1/models/{version}/canary");
                    let body = json!({ "share": share });
                    remote(&server, "POST", &path, Some(&body))?["canary"].clone()
                }
                None => {
                    let dir = writable_data_dir(&data)?;
                    let (canary, _) = registry::start_canary(&dir, &version, share, CLI)?;
                    json!({"version": canary.version, "share": canary.share})
                }
            };
            println!(
                "canary {} serves share {} of users outside experiments",
                text(&canary["version"]),
                canary["share"]
            );
            Ok(())
        }
    }
}

fn check_name(version: &str) -> Result<()> {
    if !registry::is_valid_version_name(version) {
        bail!("`{version}` is not a model version: versions are names like v3 (see `flywheel models list`)");
    }
    Ok(())
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Ends the canary when one runs (one call), else rolls the serving version back.
fn rollback(data: &DataArgs, server: Option<&str>) -> Result<()> {
    if let Some(server) = server {
        let listing = remote(server, "GET", "/v1/models", None)?;
        if listing["canary"].is_object() {
            let reply = remote(server, "POST", "/v1/models/canary/rollback", None)?;
            println!(
                "canary {} rolled back; serving {}",
                text(&reply["rolled_back"]),
                text(&reply["serving"])
            );
        } else {
            let reply = remote(server, "POST", "/v1/models/rollback", None)?;
            println!("rolled back; now serving {}", text(&reply["serving"]));
        }
        return Ok(());
    }
    let dir = writable_data_dir(data)?;
    if registry::canary(&dir)?.is_some() {
        let ended = registry::rollback_canary(&dir, CLI)?;
        let serving = registry::current_version(&dir)?.unwrap_or_else(|| "none".into());
        println!("canary {} rolled back; serving {serving}", ended.version);
    } else {
        let (serving, _) = registry::rollback_by(&dir, CLI)?;
        println!("rolled back; now serving {serving}");
    }
    Ok(())
}

/// The data dir, when no server holds it (a running server must make the change so
/// that it swaps the models it serves).
fn writable_data_dir(data: &DataArgs) -> Result<std::path::PathBuf> {
    let dir = resolve_config(data, "flywheel-data")?.data_dir;
    ensure_not_served(&dir)?;
    Ok(dir)
}

/// The shape of `GET /v1/models`, without the serving figures (they come from the
/// log, which only a running engine has replayed).
fn local_listing(data: &DataArgs) -> Result<Value> {
    let dir = resolve_config(data, "flywheel-data")?.data_dir;
    let versions = registry::list(&dir)?;
    let serving = registry::current_version(&dir)?;
    let canary = registry::canary(&dir)?;
    Ok(json!({
        "serving": serving.unwrap_or_else(|| "none".into()),
        "canary": canary,
        "versions": versions,
    }))
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

fn figure(value: &Value, digits: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// The training window as `offsets 0..N, events until T`.
fn window(version: &Value) -> String {
    let window = &version["window"];
    let end = window["end_offset"]
        .as_u64()
        .map_or_else(|| "?".to_string(), |n| n.to_string());
    let until = window["last_event_at"].as_str().unwrap_or("-");
    format!(
        "{}..{end} until {until}",
        window["start_offset"].as_u64().unwrap_or(0)
    )
}

fn render(listing: &Value) -> String {
    let mut out = format!(
        "{:<8} {:<11} {:>6} {:<7} {:<10} {:<16} {:>9} {:>10} {:>9} {:>8} {:>7}  {}\n",
        "version",
        "status",
        "share",
        "parent",
        "origin",
        "config",
        "ndcg@10",
        "recall@20",
        "rank-gate",
        "served",
        "ctr",
        "window"
    );
    for version in listing["versions"].as_array().into_iter().flatten() {
        let lineage = &version["lineage"];
        out.push_str(&format!(
            "{:<8} {:<11} {:>6} {:<7} {:<10} {:<16} {:>9} {:>10} {:>9} {:>8} {:>7}  {}\n",
            version["version"].as_str().unwrap_or("?"),
            version["status"].as_str().unwrap_or("?"),
            figure(&version["canary_share"], 3),
            lineage["parent"].as_str().unwrap_or("-"),
            lineage["origin"].as_str().unwrap_or("-"),
            version["config_hash"].as_str().unwrap_or("-"),
            figure(&version["metrics"]["ndcg@10"], 4),
            figure(&version["metrics"]["recall@20"], 4),
            figure(&version["holdout"]["ranker_gate.ranker_ndcg@10"], 4),
            version["served"]["requests"]
                .as_u64()
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            figure(&version["served"]["ctr"], 4),
            window(version),
        ));
        if let Some(reason) = version["gate"]["reason"].as_str() {
            out.push_str(&format!("         gate: {reason}\n"));
        }
        if let Some(last) = lineage["history"].as_array().and_then(|h| h.last()) {
            out.push_str(&format!(
                "         last: {} by {} at {}\n",
                last["action"].as_str().unwrap_or("?"),
                last["by"].as_str().unwrap_or("?"),
                last["at"].as_str().unwrap_or("?"),
            ));
        }
    }
    out.push_str(&format!(
        "serving: {}\n",
        listing["serving"].as_str().unwrap_or("none")
    ));
    if let Some(canary) = listing["canary"].as_object() {
        out.push_str(&format!(
            "canary: {} at share {} (started by {})\n",
            canary["version"].as_str().unwrap_or("?"),
            canary["share"],
            canary["by"].as_str().unwrap_or("?"),
        ));
    }
    out
}
