//! User events: what a user did to an item, and when.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{CoreError, Result};
use crate::ids::{ItemId, RequestId, UserId};
use crate::json::{quoted, ObjectReader};
use crate::limits::MAX_CONTEXT_ENTRIES;
use crate::time::Timestamp;

/// What a user did. Built-in actions have a fixed meaning to features and labels;
/// custom actions must be configured (see [`ActionSet`]) and count as engagement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The item was shown to or opened by the user.
    View,
    /// The user clicked the item.
    Click,
    /// The user put the item in a cart.
    AddToCart,
    /// The user bought the item; `value` carries the revenue.
    Purchase,
    /// Explicit positive feedback.
    Like,
    /// Explicit negative feedback.
    Dislike,
    /// A configured custom action.
    Custom(String),
}

impl Action {
    /// The built-in actions, in their wire spelling.
    pub const BUILT_IN: [&'static str; 6] = [
        "view",
        "click",
        "add_to_cart",
        "purchase",
        "like",
        "dislike",
    ];

    /// The wire spelling of the action.
    pub fn as_str(&self) -> &str {
        match self {
            Action::View => "view",
            Action::Click => "click",
            Action::AddToCart => "add_to_cart",
            Action::Purchase => "purchase",
            Action::Like => "like",
            Action::Dislike => "dislike",
            Action::Custom(name) => name,
        }
    }

    /// Parses a built-in action; custom actions need an [`ActionSet`].
    pub fn built_in(name: &str) -> Option<Action> {
        Some(match name {
            "view" => Action::View,
            "click" => Action::Click,
            "add_to_cart" => Action::AddToCart,
            "purchase" => Action::Purchase,
            "like" => Action::Like,
            "dislike" => Action::Dislike,
            _ => return None,
        })
    }

    /// How strongly the action says "the user wants this item", used as implicit
    /// feedback confidence by training (views weakest, purchases strongest,
    /// dislikes zero).
    pub fn implicit_weight(&self) -> f32 {
        match self {
            Action::View => 1.0,
            Action::Click => 2.0,
            Action::Like => 3.0,
            Action::AddToCart => 4.0,
            Action::Purchase => 6.0,
            Action::Dislike => 0.0,
            Action::Custom(_) => 1.0,
        }
    }

    /// Whether the action is positive engagement (anything but a view or a dislike).
    pub fn is_engagement(&self) -> bool {
        !matches!(self, Action::View | Action::Dislike)
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(Action::built_in(&name).unwrap_or(Action::Custom(name)))
    }
}

/// The actions an installation accepts: the built-in ones plus configured custom ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionSet {
    custom: Vec<String>,
}

impl ActionSet {
    /// Accepts the built-in actions plus the given custom action names.
    pub fn with_custom(custom: impl IntoIterator<Item = String>) -> Self {
        Self {
            custom: custom.into_iter().collect(),
        }
    }

    /// Parses an action name, naming the allowed ones when it is unknown.
    pub fn parse(&self, field: &str, name: &str) -> Result<Action> {
        if let Some(action) = Action::built_in(name) {
            return Ok(action);
        }
        if self.custom.iter().any(|c| c == name) {
            return Ok(Action::Custom(name.to_string()));
        }
        let mut allowed: Vec<&str> = Action::BUILT_IN.to_vec();
        allowed.extend(self.custom.iter().map(String::as_str));
        Err(CoreError::InvalidValue {
            field: field.to_string(),
            reason: format!(
                "unknown action `{}`; expected one of {}",
                quoted(name),
                allowed.join(", ")
            ),
        })
    }
}

/// One thing a user did to an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Who acted.
    pub user_id: UserId,
    /// On what.
    pub item_id: ItemId,
    /// What they did.
    pub action: Action,
    /// Revenue or another value of the action (e.g. a rating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When it happened.
    pub timestamp: Timestamp,
    /// The recommendation list the item came from, if it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// The slot (0-based) of the item in that list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Free-form context: device, page, session…
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

impl Event {
    const FIELDS: [&'static str; 8] = [
        "user_id",
        "item_id",
        "action",
        "value",
        "timestamp",
        "request_id",
        "position",
        "context",
    ];

    /// Parses and validates an event from JSON. A missing timestamp takes `now`.
    /// Every error names the offending field.
    pub fn from_json(
        value: &serde_json::Value,
        actions: &ActionSet,
        now: Timestamp,
    ) -> Result<Self> {
        let r = ObjectReader::new(value, &Self::FIELDS, "")?;
        let user_id = UserId::parse("user_id", &r.required("user_id", ObjectReader::id_text)?)?;
        let item_id = ItemId::parse("item_id", &r.required("item_id", ObjectReader::id_text)?)?;
        let action = actions.parse("action", &r.required("action", ObjectReader::string)?)?;
        let request_id = match r.string("request_id")? {
            Some(text) => Some(RequestId::parse("request_id", &text)?),
            None => None,
        };
        Ok(Event {
            user_id,
            item_id,
            action,
            value: r.number("value")?,
            timestamp: r.timestamp("timestamp")?.unwrap_or(now),
            request_id,
            position: r.unsigned("position")?,
            context: r.string_map("context", MAX_CONTEXT_ENTRIES)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Event> {
        Event::from_json(&v, &ActionSet::default(), Timestamp(1))
    }

    #[test]
    fn a_full_event_parses_and_round_trips() {
        let e = parse(
            json!({"user_id": "u1", "item_id": 7, "action": "purchase", "value": 9.5,
            "timestamp": "2026-11-23T10:00:00Z", "request_id": "r1", "position": 3,
            "context": {"device": "ios"}}),
        )
        .unwrap();
        assert_eq!(e.item_id.as_str(), "7");
        assert_eq!(e.action, Action::Purchase);
        let back = parse(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"user_id": "u", "item_id": "i", "action": "teleport"}),
                "action",
            ),
            (
                json!({"user_id": "", "item_id": "i", "action": "view"}),
                "user_id",
            ),
            (json!({"item_id": "i", "action": "view"}), "user_id"),
            (
                json!({"user_id": "u", "item_id": "i", "action": "view", "timestamp": "soon"}),
                "timestamp",
            ),
            (
                json!({"user_id": "u", "item_id": "i", "action": "view", "value": "ten"}),
                "value",
            ),
            (
                json!({"user_id": "u", "item_id": "i", "action": "view", "colour": 1}),
                "colour",
            ),
            (
                json!({"user_id": "u", "item_id": "i", "action": "view", "position": -1}),
                "position",
            ),
        ];
        let many: serde_json::Map<String, serde_json::Value> =
            (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
        let cases = cases.into_iter().chain([
            (
                json!({"user_id": "u", "item_id": "i", "action": "view", "context": many}),
                "context",
            ),
            (
                json!({"user_id": "u", "item_id": "i", "action": "view",
                    "context": {"page": "p".repeat(1025)}}),
                "context.page",
            ),
        ]);
        for (input, field) in cases {
            let err = parse(input.clone()).unwrap_err();
            assert_eq!(err.field(), Some(field), "{input} -> {err}");
            assert!(err.to_string().contains(field), "{err}");
        }
        assert!(matches!(
            parse(json!([1])),
            Err(CoreError::NotAnObject { .. })
        ));
    }

    #[test]
    fn custom_actions_must_be_configured() {
        let v = json!({"user_id": "u", "item_id": "i", "action": "share"});
        assert!(parse(v.clone()).is_err());
        let actions = ActionSet::with_custom(["share".to_string()]);
        let e = Event::from_json(&v, &actions, Timestamp(5)).unwrap();
        assert_eq!(e.action, Action::Custom("share".into()));
        assert_eq!(e.timestamp, Timestamp(5));
    }
}
