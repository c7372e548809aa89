//! `event_body`: the bodies of `POST /v1/events` (a JSON object, an array, or NDJSON)
//! and of `PUT /v1/items/:id` / `PUT /v1/users/:id`, through the server's own parsers.
//!
//! Input: a mode byte, then the body. Mode bit 0 = NDJSON, bits 1–2 = events, item or
//! user. Properties:
//! - a refusal is a 400 (`ApiError::BadRequest`) with a message, never a panic;
//! - an accepted batch holds 1..=`MAX_EVENTS` events, and each encoded record decodes
//!   back to an event (nothing is accepted that the log could not replay);
//! - the accepted events, written back as a JSON array and as NDJSON, parse again to
//!   the same events (the parser reads what flywheel writes);
//! - an accepted item or user encodes as a log record that decodes to itself, and its
//!   JSON reply parses back to the same entity.

use flywheel_core::{ActionSet, Event, LogRecord, Timestamp};
use flywheel_server::{parse_event_body, parse_item_body, parse_user_body, ApiError};

/// The batch limit the target uses (small, so that the limit is reached).
pub const MAX_EVENTS: usize = 64;
/// The clock of every parse (a missing timestamp takes it).
pub const NOW: Timestamp = Timestamp(1_700_000_000_000);

/// The actions the target accepts: the built-in ones and one custom action.
pub fn actions() -> ActionSet {
    ActionSet::with_custom(["rate".to_string()])
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    match (mode >> 1) % 3 {
        0 => check_events(body, mode & 1 == 1),
        1 => check_item(body),
        _ => check_user(body),
    }
}

fn assert_bad_request(error: &ApiError, body: &[u8]) {
    match error {
        ApiError::BadRequest { message, .. } if !message.is_empty() => {}
        other => panic!("body {body:?} refused with {other:?}, not a 400 with a message"),
    }
}

fn check_events(body: &[u8], ndjson: bool) {
    let actions = actions();
    let batch = match parse_event_body(body, ndjson, MAX_EVENTS, &actions, NOW) {
        Ok(batch) => batch,
        Err(error) => return assert_bad_request(&error, body),
    };
    assert!(
        (1..=MAX_EVENTS).contains(&batch.len()),
        "{} events",
        batch.len()
    );
    let events = decode_events(batch.payloads());
    assert_eq!(events.len(), batch.len());
    let array = serde_json::to_vec(&events).expect("events serialize");
    let mut lines = Vec::new();
    for event in &events {
        serde_json::to_writer(&mut lines, event).expect("an event serializes");
        lines.push(b'\n');
    }
    for (again, ndjson) in [(array, false), (lines, true)] {
        let reparsed = parse_event_body(&again, ndjson, MAX_EVENTS, &actions, NOW)
            .unwrap_or_else(|e| panic!("accepted events written back are refused: {e:?}"));
        assert_eq!(
            decode_events(reparsed.payloads()),
            events,
            "round trip changed events"
        );
    }
}

/// Decodes encoded event records; panics on anything else.
pub fn decode_events<'a>(payloads: impl Iterator<Item = &'a [u8]>) -> Vec<Event> {
    payloads
        .map(|payload| match LogRecord::decode(payload) {
            Ok(LogRecord::Event(event)) => event,
            other => panic!("an accepted event does not decode: {other:?}"),
        })
        .collect()
}

fn round_trip_record(record: LogRecord) {
    let bytes = record
        .encode()
        .unwrap_or_else(|e| panic!("an accepted {record:?} does not encode: {e}"));
    let decoded = LogRecord::decode(&bytes).expect("an encoded record decodes");
    assert_eq!(decoded, record);
}

fn check_item(body: &[u8]) {
    let item = match parse_item_body(body, "i1") {
        Ok(item) => item,
        Err(error) => return assert_bad_request(&error, body),
    };
    let reply = serde_json::to_vec(&item).expect("an item serializes");
    let again = parse_item_body(&reply, "i1")
        .unwrap_or_else(|e| panic!("the reply to an accepted item is refused: {e:?}"));
    assert_eq!(again, item);
    round_trip_record(LogRecord::ItemUpsert(item));
}

fn check_user(body: &[u8]) {
    let user = match parse_user_body(body, "u1") {
        Ok(user) => user,
        Err(error) => return assert_bad_request(&error, body),
    };
    let reply = serde_json::to_vec(&user).expect("a user serializes");
    let again = parse_user_body(&reply, "u1")
        .unwrap_or_else(|e| panic!("the reply to an accepted user is refused: {e:?}"));
    assert_eq!(again, user);
    round_trip_record(LogRecord::UserUpsert(user));
}
