//! A batch of events encoded for the log as they are parsed.
//!
//! A large batch (a 16 MiB request body holds ~300k events) must not live as a
//! `Vec<Event>` of small allocations: the records are encoded back to back into one
//! buffer, so a batch costs about its encoded size plus one offset per record.

use flywheel_core::{CoreError, Event, LogRecord};

/// Events encoded as log records, back to back in one buffer.
#[derive(Debug, Default)]
pub struct EventBatch {
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl EventBatch {
    /// An empty batch.
    pub fn new() -> Self {
        EventBatch::default()
    }

    /// An empty batch with room for `bytes` of encoded records (untouched room costs
    /// address space, not memory).
    pub fn with_capacity(bytes: usize) -> Self {
        EventBatch {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::new(),
        }
    }

    /// Encodes one event and appends it; refuses (and leaves the batch unchanged) an
    /// event that could not be decoded again.
    pub fn push(&mut self, event: Event) -> Result<(), CoreError> {
        LogRecord::Event(event).encode_into(&mut self.bytes)?;
        self.ends.push(self.bytes.len());
        Ok(())
    }

    /// How many events the batch holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The encoded records, in order, as the log will store them (the batch keeps
    /// them): what a caller checks before handing the batch to `Engine::ingest_batch`.
    pub fn payloads(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.bytes[start..end])
    }

    /// The encoded records, in order; the record boundaries are freed (the batch is
    /// empty afterwards), so that only the records and these slices stay in memory.
    pub(crate) fn take_payloads(&mut self) -> Vec<&[u8]> {
        let ends = std::mem::take(&mut self.ends);
        let mut start = 0;
        ends.iter()
            .map(|&end| {
                let payload = &self.bytes[start..end];
                start = end;
                payload
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::{Action, ItemId, Timestamp, UserId};

    fn event(item: &str, value: Option<f64>) -> Event {
        Event {
            user_id: UserId::new_unchecked("u"),
            item_id: ItemId::new_unchecked(item),
            action: Action::Purchase,
            value,
            timestamp: Timestamp(1_000),
            request_id: None,
            position: None,
            context: Default::default(),
        }
    }

    #[test]
    fn payloads_decode_to_the_pushed_events_and_a_bad_event_changes_nothing() {
        let mut batch = EventBatch::new();
        batch.push(event("a", Some(2.0))).unwrap();
        assert!(batch.push(event("bad", Some(f64::INFINITY))).is_err());
        batch.push(event("b", None)).unwrap();
        assert_eq!(batch.len(), 2);
        let kept: Vec<Vec<u8>> = batch.payloads().map(<[u8]>::to_vec).collect();
        assert_eq!(kept.len(), 2);
        let decoded: Vec<LogRecord> = batch
            .take_payloads()
            .iter()
            .map(|p| LogRecord::decode(p).unwrap())
            .collect();
        assert_eq!(
            decoded,
            vec![
                LogRecord::Event(event("a", Some(2.0))),
                LogRecord::Event(event("b", None))
            ]
        );
        let again: Vec<LogRecord> = kept.iter().map(|p| LogRecord::decode(p).unwrap()).collect();
        assert_eq!(again, decoded);
    }
}
