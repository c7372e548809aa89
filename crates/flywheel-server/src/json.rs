//! Strict JSON reading for request bodies.
//!
//! `serde_json::Value` silently keeps the last of duplicate keys; here a duplicate key
//! anywhere in a body is an error naming it. Event batches are read element by
//! element: only one event's JSON tree exists at a time, never the whole batch's.
//! And a tree has at most a budget of values ([`EVENT_VALUES`], [`ENTITY_VALUES`]),
//! so that one huge element cannot become a tree many times its size either.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

use crate::error::{clip, ApiError};

/// The longest key a duplicate-key message quotes, in bytes.
const QUOTED_KEY_BYTES: usize = 64;

/// The most JSON values (objects, arrays and scalars) in one event: a valid one holds
/// fewer than 50 (8 fields and a context of at most 32 entries).
pub(crate) const EVENT_VALUES: usize = 1024;
/// The most JSON values in one item or user: a valid item holds at most ~4,300 (64
/// tags, 4,096 embedding numbers, 64 attributes).
pub(crate) const ENTITY_VALUES: usize = 8192;

/// How many more values a tree may hold.
struct Budget {
    left: std::cell::Cell<usize>,
    limit: usize,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Budget {
            left: std::cell::Cell::new(limit),
            limit,
        }
    }

    fn reset(&self) {
        self.left.set(self.limit);
    }

    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get() {
            0 => Err(E::custom(format_args!(
                "{TOO_MANY} {} values (objects, arrays, numbers, strings…)",
                self.limit
            ))),
            left => {
                self.left.set(left - 1);
                Ok(())
            }
        }
    }
}

/// How the budget error starts, to tell it from a duplicate key.
const TOO_MANY: &str = "holds more than";

/// Where a value sits: the chain of object keys leading to it.
#[derive(Clone, Copy)]
struct KeyPath<'a> {
    key: &'a str,
    parent: Option<&'a KeyPath<'a>>,
}

impl fmt::Display for KeyPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}.")?;
        }
        f.write_str(&clip(self.key, QUOTED_KEY_BYTES))
    }
}

/// Deserializes any JSON value, refusing duplicate keys in every object and more
/// values than the budget.
#[derive(Clone, Copy)]
struct Strict<'a> {
    parent: Option<&'a KeyPath<'a>>,
    budget: &'a Budget,
}

impl<'a> Strict<'a> {
    fn top(budget: &'a Budget) -> Self {
        Strict {
            parent: None,
            budget,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.budget.spend()?;
        deserializer.deserialize_any(self)
    }
}

/// Reads one object's entries, refusing a key seen before in it.
fn strict_map<'de, A: MapAccess<'de>>(
    mut access: A,
    parent: Option<&KeyPath<'_>>,
    budget: &Budget,
) -> Result<Map<String, Value>, A::Error> {
    let mut map = Map::new();
    while let Some(key) = access.next_key::<String>()? {
        if map.contains_key(&key) {
            let path = KeyPath { key: &key, parent };
            return Err(de::Error::custom(format_args!("duplicate key `{path}`")));
        }
        let path = KeyPath { key: &key, parent };
        let value = access.next_value_seed(Strict {
            parent: Some(&path),
            budget,
        })?;
        map.insert(key, value);
    }
    Ok(map)
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = access.next_element_seed(self)? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Value, A::Error> {
        strict_map(access, self.parent, self.budget).map(Value::Object)
    }
}

/// The 400 for a body that is not valid JSON, holds a duplicate key, or too many
/// values (`code` names what the body is, e.g. `invalid_item`).
fn parse_error(context: &str, error: &serde_json::Error, code: &'static str) -> ApiError {
    // A `Strict` read raises data errors of its own only; the rest is syntax.
    if error.classify() != serde_json::error::Category::Data {
        return ApiError::bad_request(
            "malformed_json",
            format!("{context}body is not valid JSON: {error}"),
        );
    }
    if error.to_string().starts_with(TOO_MANY) {
        ApiError::bad_request(code, format!("{context}{error}"))
    } else {
        ApiError::bad_request("duplicate_key", format!("{context}{error}"))
    }
}

/// Parses one JSON document (an item or a user, `code` saying which), refusing
/// duplicate keys and more than [`ENTITY_VALUES`] values.
pub(crate) fn parse(bytes: &[u8], code: &'static str) -> Result<Value, ApiError> {
    let budget = Budget::new(ENTITY_VALUES);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    Strict::top(&budget)
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| parse_error("", &e, code))
}

/// What a visit of one element decided.
pub(crate) type Visit<'f> = dyn FnMut(Value) -> Result<(), ApiError> + 'f;

/// Visits a JSON body element by element: an object is one element, an array is
/// streamed element by element. A visit error stops the reading and is returned.
struct Elements<'v, 'f> {
    visit: &'v mut Visit<'f>,
    count: usize,
    failure: Option<ApiError>,
    budget: Budget,
}

impl Elements<'_, '_> {
    fn fail<E: de::Error>(&mut self, error: ApiError) -> E {
        self.failure = Some(error);
        E::custom("stopped")
    }

    fn not_events<E: de::Error>(&mut self) -> Result<(), E> {
        Err(self.fail(ApiError::bad_request(
            "invalid_event",
            "expected an event object, an array of events, or NDJSON",
        )))
    }
}

impl<'de> Visitor<'de> for &mut Elements<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object or an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        loop {
            self.budget.reset();
            let Some(value) = access.next_element_seed(Strict::top(&self.budget))? else {
                return Ok(());
            };
            self.count += 1;
            if let Err(error) = (self.visit)(value) {
                return Err(self.fail(error));
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<(), A::Error> {
        self.budget.spend()?;
        let value = Value::Object(strict_map(access, None, &self.budget)?);
        self.count += 1;
        match (self.visit)(value) {
            Ok(()) => Ok(()),
            Err(error) => Err(self.fail(error)),
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_events()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_events()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_events()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_events()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_events()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_events()
    }
}

/// Visits each event of a JSON body (one object or an array of objects), in order.
pub(crate) fn for_each_element(bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), ApiError> {
    let mut elements = Elements {
        visit,
        count: 0,
        failure: None,
        budget: Budget::new(EVENT_VALUES),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let read = deserializer
        .deserialize_any(&mut elements)
        .and_then(|()| deserializer.end());
    match (read, elements.failure) {
        (_, Some(failure)) => Err(failure),
        (Ok(()), None) => Ok(()),
        (Err(e), None) if e.classify() == serde_json::error::Category::Data => Err(parse_error(
            &format!("event {}: ", elements.count),
            &e,
            "invalid_event",
        )),
        (Err(e), None) => Err(parse_error("", &e, "invalid_event")),
    }
}

/// Visits each non-blank line of an NDJSON body as one JSON value, in order.
pub(crate) fn for_each_line(bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("malformed_json", "body is not UTF-8"))?;
    let budget = Budget::new(EVENT_VALUES);
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        budget.reset();
        let mut deserializer = serde_json::Deserializer::from_str(line);
        let value = Strict::top(&budget)
            .deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|e| {
                let context = format!("line {}: ", number + 1);
                if e.classify() == serde_json::error::Category::Data {
                    parse_error(&context, &e, "invalid_event")
                } else {
                    ApiError::bad_request("malformed_json", format!("{context}not valid JSON: {e}"))
                }
            })?;
        visit(value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(error: ApiError) -> (String, String) {
        match error {
            ApiError::BadRequest { code, message, .. } => (code.to_string(), message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let parse = |bytes: &[u8]| super::parse(bytes, "invalid_item");
        let (code, text) = message(parse(br#"{"a":{"b":1,"b":2}}"#).unwrap_err());
        assert_eq!(code, "duplicate_key");
        assert!(text.contains("`a.b`"), "{text}");
        let (code, _) = message(parse(br#"[{"x":1},{"x":1,"x":1}]"#).unwrap_err());
        assert_eq!(code, "duplicate_key");
        assert_eq!(
            parse(br#"{"a":[1,{"b":null}],"c":"d","e":-1.5}"#).unwrap(),
            serde_json::json!({"a":[1,{"b":null}],"c":"d","e":-1.5})
        );
        let (code, _) = message(parse(b"{} x").unwrap_err());
        assert_eq!(code, "malformed_json");
    }

    #[test]
    fn a_tree_holds_at_most_its_budget_of_values() {
        let within = format!("[{}]", vec!["0"; ENTITY_VALUES - 1].join(","));
        assert!(parse(within.as_bytes(), "invalid_item").is_ok());
        let over = format!("[{}]", vec!["0"; ENTITY_VALUES].join(","));
        let (code, text) = message(parse(over.as_bytes(), "invalid_item").unwrap_err());
        assert_eq!(code, "invalid_item");
        assert!(text.contains("8192"), "{text}");
        // Per event: a batch of many small events is fine, one huge event is not.
        let small = format!("[{}]", vec![r#"{"a":[1,2,3]}"#; 2 * EVENT_VALUES].join(","));
        assert!(for_each_element(small.as_bytes(), &mut |_| Ok(())).is_ok());
        let huge = format!("{{\"a\":[{}]}}", vec!["0"; EVENT_VALUES].join(","));
        let (code, _) = message(for_each_element(huge.as_bytes(), &mut |_| Ok(())).unwrap_err());
        assert_eq!(code, "invalid_event");
        let (code, _) = message(for_each_line(huge.as_bytes(), &mut |_| Ok(())).unwrap_err());
        assert_eq!(code, "invalid_event");
    }

    #[test]
    fn elements_are_visited_one_at_a_time_and_a_visit_error_stops_the_read() {
        let mut seen = Vec::new();
        for_each_element(br#"[{"a":1},{"a":2}]"#, &mut |v| {
            seen.push(v);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        let mut visits = 0;
        let error = for_each_element(b"[1,2,3]", &mut |_| {
            visits += 1;
            Err(ApiError::bad_request("stop", "stop"))
        })
        .unwrap_err();
        assert_eq!(visits, 1);
        assert_eq!(message(error).0, "stop");
        let (code, text) =
            message(for_each_element(br#"[{},{"k":1,"k":2}]"#, &mut |_| Ok(())).unwrap_err());
        assert_eq!(code, "duplicate_key");
        assert!(text.starts_with("event 1: "), "{text}");
        assert_eq!(
            message(for_each_element(b"42", &mut |_| Ok(())).unwrap_err()).0,
            "invalid_event"
        );
    }
}
