//! The request-body parsers as plain functions of bytes, with no engine and no HTTP:
//! what `POST /v1/events` and `PUT /v1/items|users/:id` do with a body once it is
//! read. The routes call them; so do the fuzz targets (`fuzz/` at the repository root).

use flywheel_core::{ActionSet, Event, Item, Timestamp, User};
use flywheel_engine::EventBatch;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::error::{ApiError, MAX_DETAILS};
use crate::json;

/// The problems of a rejected batch: the first [`MAX_DETAILS`] in full, the rest counted.
#[derive(Default)]
struct Problems {
    details: Vec<Value>,
    total: usize,
    /// Refused events per reason, for monitoring.
    reasons: BTreeMap<&'static str, u64>,
}

/// What a rejected batch held, for the engine's statistics and monitoring.
#[derive(Debug, Default)]
pub(crate) struct Rejected {
    /// Events the batch held once they were validated (0 when the body was refused
    /// before that).
    pub(crate) events: usize,
    /// The invalid ones per reason (bounded names, never a client's field name).
    pub(crate) reasons: BTreeMap<&'static str, u64>,
    /// How many were invalid.
    pub(crate) invalid: usize,
}

impl Problems {
    fn add(&mut self, index: usize, error: &flywheel_core::CoreError) {
        self.total += 1;
        *self
            .reasons
            .entry(crate::monitoring::rejection_reason(error))
            .or_insert(0) += 1;
        if self.details.len() < MAX_DETAILS {
            self.details.push(
                json!({"index": index, "field": error.field(), "message": error.to_string()}),
            );
        }
    }

    fn into_error(self, events: usize) -> ApiError {
        let first = self.details[0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let message = if events == 1 {
            first
        } else {
            format!(
                "{} of {events} events are invalid, so none were stored; first: event {}: {first}",
                self.total, self.details[0]["index"]
            )
        };
        ApiError::BadRequest {
            code: "invalid_event",
            omitted: self.total - self.details.len(),
            details: self.details,
            message,
        }
    }
}

/// Parses and validates an events body (one JSON object, an array of them, or NDJSON
/// when `ndjson`) into an encoded batch, exactly as `POST /v1/events` does: strict JSON
/// (no duplicate keys, a value budget per event), at most `max_events` events, each
/// validated with `actions` (a missing timestamp takes `now`). Any invalid event
/// rejects the whole batch with a 400 listing the bad events by index.
pub fn parse_event_body(
    bytes: &[u8],
    ndjson: bool,
    max_events: usize,
    actions: &ActionSet,
    now: Timestamp,
) -> Result<EventBatch, ApiError> {
    parse_counted(bytes, ndjson, max_events, actions, now).map_err(|(error, _)| error)
}

/// [`parse_event_body`], with the error saying what the rejected batch held.
pub(crate) fn parse_counted(
    bytes: &[u8],
    ndjson: bool,
    max_events: usize,
    actions: &ActionSet,
    now: Timestamp,
) -> Result<EventBatch, (ApiError, Rejected)> {
    // Encoded events take about as many bytes as their JSON, up to twice for tiny ones.
    let mut batch = EventBatch::with_capacity(bytes.len().saturating_mul(2));
    let mut problems = Problems::default();
    let mut events = 0;
    let mut visit = |value: Value| -> Result<(), ApiError> {
        if events == max_events {
            return Err(ApiError::bad_request(
                "batch_too_large",
                format!("a batch may hold at most {max_events} events"),
            ));
        }
        let parsed = Event::from_json(&value, actions, now).and_then(|event| {
            match problems.total {
                // Once the batch is rejected, its events need not be kept.
                0 => batch.push(event),
                _ => Ok(()),
            }
        });
        if let Err(error) = parsed {
            if problems.total == 0 {
                batch = EventBatch::new();
            }
            problems.add(events, &error);
        }
        events += 1;
        Ok(())
    };
    let read = if ndjson {
        json::for_each_line(bytes, &mut visit)
    } else {
        json::for_each_element(bytes, &mut visit)
    };
    read.map_err(|error| (error, Rejected::default()))?;
    if events == 0 {
        let error = ApiError::bad_request("invalid_event", "the batch holds no events");
        return Err((error, Rejected::default()));
    }
    if problems.total > 0 {
        let rejected = Rejected {
            events,
            reasons: std::mem::take(&mut problems.reasons),
            invalid: problems.total,
        };
        return Err((problems.into_error(events), rejected));
    }
    Ok(batch)
}

/// Parses an item body as `PUT /v1/items/:id` does: strict JSON within the entity
/// value budget, then validation with the id taken from the path.
pub fn parse_item_body(bytes: &[u8], id: &str) -> Result<Item, ApiError> {
    let value = json::parse(bytes, "invalid_item")?;
    Item::from_json(&value, Some(id))
        .map_err(|e| ApiError::bad_request("invalid_item", e.to_string()))
}

/// Parses a user body as `PUT /v1/users/:id` does.
pub fn parse_user_body(bytes: &[u8], id: &str) -> Result<User, ApiError> {
    let value = json::parse(bytes, "invalid_user")?;
    User::from_json(&value, Some(id))
        .map_err(|e| ApiError::bad_request("invalid_user", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::LogRecord;
    use proptest::prelude::*;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn decode(batch: &EventBatch) -> Vec<Event> {
        batch
            .payloads()
            .map(|payload| match LogRecord::decode(payload) {
                Ok(LogRecord::Event(event)) => event,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Valid events as a client sends them (epoch-second timestamps, ids that look
    /// numeric or not, optional fields present or absent).
    fn wire_event() -> impl Strategy<Value = Value> {
        (
            "[a-z0-9_]{1,12}",
            prop_oneof![
                "[a-z]{1,8}".prop_map(Value::from),
                (0u32..100_000).prop_map(Value::from)
            ],
            prop::sample::select(vec!["view", "click", "purchase", "like", "add_to_cart"]),
            prop::option::of(-1e6f64..1e6),
            prop::option::of(0i64..4_000_000_000),
            prop::option::of(0u32..200),
            prop::collection::btree_map("[a-z]{1,6}", "[ -~]{0,10}", 0..4),
        )
            .prop_map(
                |(user, item, action, value, timestamp, position, context)| {
                    let mut event = json!({"user_id": user, "item_id": item, "action": action});
                    let object = event.as_object_mut().expect("an object");
                    if let Some(value) = value {
                        object.insert("value".into(), json!(value));
                    }
                    if let Some(timestamp) = timestamp {
                        object.insert("timestamp".into(), json!(timestamp));
                    }
                    if let Some(position) = position {
                        object.insert("position".into(), json!(position));
                    }
                    if !context.is_empty() {
                        object.insert("context".into(), json!(context));
                    }
                    event
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn valid_events_parse_alike_as_array_and_ndjson_and_round_trip(
            events in prop::collection::vec(wire_event(), 1..20)
        ) {
            let actions = ActionSet::default();
            let array = serde_json::to_vec(&events).expect("serializes");
            let lines: Vec<String> = events.iter().map(Value::to_string).collect();
            let from_array = parse_event_body(&array, false, 64, &actions, NOW).expect("an array parses");
            let from_lines = parse_event_body(lines.join("\n").as_bytes(), true, 64, &actions, NOW)
                .expect("NDJSON parses");
            let parsed = decode(&from_array);
            prop_assert_eq!(parsed.len(), events.len());
            prop_assert_eq!(&decode(&from_lines), &parsed);
            // What flywheel writes (an event's serde form) parses to the same event.
            let written = serde_json::to_vec(&parsed).expect("serializes");
            let again = parse_event_body(&written, false, 64, &actions, NOW).expect("parses again");
            prop_assert_eq!(decode(&again), parsed);
        }

        #[test]
        fn arbitrary_bodies_are_refused_with_a_400_or_parsed(
            bytes in prop::collection::vec(any::<u8>(), 0..256), ndjson in any::<bool>()
        ) {
            let actions = ActionSet::default();
            for result in [
                parse_event_body(&bytes, ndjson, 64, &actions, NOW).map(|_| ()),
                parse_item_body(&bytes, "i1").map(|_| ()),
                parse_user_body(&bytes, "u1").map(|_| ()),
            ] {
                if let Err(error) = result {
                    prop_assert!(matches!(error, ApiError::BadRequest { .. }), "{error:?}");
                }
            }
        }

        #[test]
        fn json_shaped_noise_never_panics(
            body in prop::collection::vec(prop::sample::select(vec![
                "{", "}", "[", "]", ",", ":", "\"user_id\"", "\"item_id\"", "\"action\"",
                "\"view\"", "\"context\"", "\"a\"", "1", "-0.5e3", "null", "true", "\n", " ",
                "\"\\u0000\"", "1e999",
            ]), 0..40),
            ndjson in any::<bool>()
        ) {
            let bytes = body.concat();
            let _ = parse_event_body(bytes.as_bytes(), ndjson, 64, &ActionSet::default(), NOW);
            let _ = parse_item_body(bytes.as_bytes(), "i1");
        }
    }

    #[test]
    fn the_batch_limit_and_an_empty_batch_are_400s() {
        let actions = ActionSet::default();
        let event = r#"{"user_id":"u","item_id":"i","action":"view"}"#;
        let three = format!("[{event},{event},{event}]");
        let error = parse_event_body(three.as_bytes(), false, 2, &actions, NOW).unwrap_err();
        assert!(matches!(
            error,
            ApiError::BadRequest {
                code: "batch_too_large",
                ..
            }
        ));
        let error = parse_event_body(b"[]", false, 2, &actions, NOW).unwrap_err();
        assert!(matches!(
            error,
            ApiError::BadRequest {
                code: "invalid_event",
                ..
            }
        ));
        let (_, rejected) =
            parse_counted(br#"[{"user_id":"u"},{}]"#, false, 9, &actions, NOW).unwrap_err();
        assert_eq!(
            rejected.events, 2,
            "both events of the rejected batch are counted"
        );
    }
}
