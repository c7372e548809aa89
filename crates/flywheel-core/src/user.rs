//! Users.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::error::Result;
use crate::ids::UserId;
use crate::json::ObjectReader;
use crate::limits::MAX_ATTRIBUTES;
use crate::time::Timestamp;

/// A user and what we know about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Scalar attributes: country, device, cohort…
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    /// When the user signed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Whether the user refused personalisation: they get non-personalised lists.
    #[serde(default)]
    pub opted_out: bool,
}

impl User {
    const FIELDS: [&'static str; 4] = ["id", "attributes", "created_at", "opted_out"];

    /// A user with no attributes.
    pub fn new(id: UserId) -> Self {
        User {
            id,
            attributes: BTreeMap::new(),
            created_at: None,
            opted_out: false,
        }
    }

    /// Parses and validates a user from JSON; `id_from_path` as for [`crate::Item::from_json`].
    pub fn from_json(value: &Value, id_from_path: Option<&str>) -> Result<Self> {
        let r = ObjectReader::new(value, &Self::FIELDS, "")?;
        let id = r.id_with_path(id_from_path)?;
        Ok(User {
            id: UserId::parse("id", &id)?,
            attributes: r.attributes("attributes", MAX_ATTRIBUTES)?,
            created_at: r.timestamp("created_at")?,
            opted_out: r.boolean("opted_out")?.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_round_trips_and_rejects_bad_fields() {
        let u = User::from_json(
            &json!({"id": "u1", "attributes": {"country": "DE"}, "opted_out": true}),
            None,
        )
        .unwrap();
        assert!(u.opted_out);
        assert_eq!(
            User::from_json(&serde_json::to_value(&u).unwrap(), None).unwrap(),
            u
        );
        let err = User::from_json(&json!({"id": "u1", "created_at": "later"}), None).unwrap_err();
        assert_eq!(err.field(), Some("created_at"));
    }
}
