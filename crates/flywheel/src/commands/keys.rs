//! `flywheel keys`: API keys in the data dir's key store (a running server picks up
//! changes at once).

use anyhow::Result;
use flywheel_core::Timestamp;
use flywheel_server::keys::{key_file, parse_scopes, KeyStore};
use serde_json::json;

use crate::cli::KeysCommand;
use crate::commands::resolve_config;

/// Runs a `keys` subcommand.
pub fn run(what: KeysCommand) -> Result<()> {
    match what {
        KeysCommand::Create {
            data,
            scopes,
            name,
            json,
        } => {
            let path = key_file(&resolve_config(&data, "flywheel-data")?.data_dir);
            let mut store = KeyStore::load(&path)?;
            let scopes = parse_scopes(&scopes)?;
            let name = name.unwrap_or_else(|| format!("key-{}", store.keys.len() + 1));
            let created_at = serde_json::to_value(Timestamp::now())?
                .as_str()
                .unwrap_or_default()
                .to_string();
            let key = store.create(&name, scopes.clone(), created_at)?;
            store.save(&path)?;
            let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            if json {
                println!("{}", json!({ "name": name, "key": key, "scopes": scopes }));
            } else {
                println!("{key}");
                eprintln!(
                    "key `{name}` ({}) created; it is shown only now, store it safely",
                    scopes.join(",")
                );
            }
            Ok(())
        }
        KeysCommand::List { data, json } => {
            let store =
                KeyStore::load(&key_file(&resolve_config(&data, "flywheel-data")?.data_dir))?;
            if json {
                let keys: Vec<_> = store
                    .keys
                    .iter()
                    .map(
                        |k| json!({"name": k.name, "scopes": k.scopes, "created_at": k.created_at}),
                    )
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "keys": keys }))?
                );
                return Ok(());
            }
            println!("{:<24} {:<20} created", "name", "scopes");
            for k in &store.keys {
                let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                println!("{:<24} {:<20} {}", k.name, scopes.join(","), k.created_at);
            }
            Ok(())
        }
        KeysCommand::Revoke { data, name } => {
            let path = key_file(&resolve_config(&data, "flywheel-data")?.data_dir);
            let mut store = KeyStore::load(&path)?;
            store.revoke(&name)?;
            store.save(&path)?;
            println!("revoked key `{name}`");
            Ok(())
        }
    }
}
