//! Log payloads on their way to and from the broker: the user id of a flywheel log
//! record is swapped for the user's pseudonym before it leaves the process, and back
//! when it is read; the pseudonym is also the Kafka key, so a user's records share a
//! partition.
//!
//! Which field holds the user: `user_id` of events, impressions and shadow impressions;
//! `id` of user upserts and deletes. Records without a user (items, experiments) pass
//! unchanged with no key.

use serde_json::Value;

use crate::secrets::SecretStore;

/// What a record of an erased user (or an erasure tombstone) reads as: not a log record,
/// so the engine skips it and counts it, and nothing of the user comes back.
pub const ERASED_PAYLOAD: &[u8] = br#"{"type":"erased_user"}"#;

/// A payload ready for the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The user's pseudonym, when the record has a user.
    pub key: Option<String>,
    /// The record, its user id replaced by the pseudonym.
    pub value: Vec<u8>,
}

/// The name of the field that holds the record's user, by record type.
fn user_field(record_type: &str) -> Option<&'static str> {
    match record_type {
        "event" | "impression" | "shadow_impression" => Some("user_id"),
        "user_upsert" | "user_delete" => Some("id"),
        _ => None,
    }
}

/// The record as a JSON object and the name of its user field, if it has one.
fn parse(payload: &[u8]) -> Result<(Value, Option<&'static str>), String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let record_type = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or("it has no string field `type`")?;
    let field = user_field(record_type);
    Ok((value, field))
}

/// Replaces the record's user id by its pseudonym (drawing a secret for a new user).
pub fn pseudonymise(payload: &[u8], secrets: &SecretStore) -> Result<Outgoing, String> {
    let (mut value, field) = parse(payload)?;
    let Some(field) = field else {
        return Ok(Outgoing {
            key: None,
            value: payload.to_vec(),
        });
    };
    let user = value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("its user field `{field}` is not a string"))?
        .to_string();
    let pseudonym = secrets.pseudonym(&user).map_err(|e| e.to_string())?;
    value[field] = Value::String(pseudonym.clone());
    let value = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    Ok(Outgoing {
        key: Some(pseudonym),
        value,
    })
}

/// The record as the engine wrote it: its pseudonym replaced by the user id again, or
/// [`ERASED_PAYLOAD`] when the user was erased or the value is a tombstone. A value
/// that is not ours is handed on unchanged (the engine skips and counts it).
pub fn resolve(value: Option<&[u8]>, secrets: &SecretStore) -> Vec<u8> {
    let Some(payload) = value else {
        return ERASED_PAYLOAD.to_vec();
    };
    let Ok((mut record, Some(field))) = parse(payload) else {
        return payload.to_vec();
    };
    let Some(pseudonym) = record.get(field).and_then(Value::as_str) else {
        return payload.to_vec();
    };
    match secrets.resolve(pseudonym) {
        Some(user) => {
            record[field] = Value::String(user);
            serde_json::to_vec(&record).unwrap_or_else(|_| ERASED_PAYLOAD.to_vec())
        }
        None => ERASED_PAYLOAD.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SecretStore) {
        let dir = tempfile::tempdir().expect("dir");
        let store = SecretStore::open(dir.path()).expect("open");
        (dir, store)
    }

    const EVENT: &[u8] =
        br#"{"type":"event","user_id":"dana","item_id":"i1","action":"view","timestamp":5}"#;

    #[test]
    fn a_user_record_leaves_with_its_pseudonym_and_comes_back_whole() {
        let (_dir, secrets) = store();
        let out = pseudonymise(EVENT, &secrets).expect("record");
        let key = out.key.clone().expect("keyed by user");
        assert!(!String::from_utf8_lossy(&out.value).contains("dana"));
        assert!(String::from_utf8_lossy(&out.value).contains(&key));
        let back: Value =
            serde_json::from_slice(&resolve(Some(&out.value), &secrets)).expect("json");
        let original: Value = serde_json::from_slice(EVENT).expect("json");
        assert_eq!(back, original);
    }

    #[test]
    fn records_without_a_user_pass_unchanged_and_unkeyed() {
        let (_dir, secrets) = store();
        let item = br#"{"type":"item_delete","id":"i1","at":5}"#;
        let out = pseudonymise(item, &secrets).expect("record");
        assert_eq!(
            out,
            Outgoing {
                key: None,
                value: item.to_vec()
            }
        );
        assert_eq!(resolve(Some(item), &secrets), item.to_vec());
    }

    #[test]
    fn an_erased_user_and_a_tombstone_read_as_the_erased_marker() {
        let (_dir, secrets) = store();
        let out = pseudonymise(EVENT, &secrets).expect("record");
        secrets.destroy("dana").expect("destroy");
        assert_eq!(resolve(Some(&out.value), &secrets), ERASED_PAYLOAD);
        assert_eq!(resolve(None, &secrets), ERASED_PAYLOAD);
    }

    #[test]
    fn what_is_not_a_record_is_refused_with_the_reason() {
        let (_dir, secrets) = store();
        assert!(pseudonymise(b"not json", &secrets).is_err());
        let error = pseudonymise(br#"{"type":"event","user_id":7}"#, &secrets).expect_err("number");
        assert!(error.contains("user_id"), "{error}");
    }
}
