//! Log records become lake rows here, and served lists become joined outcomes through
//! the experiments crate's outcome joiner (the ledger the engine runs online), so the
//! lake's clicks per slot are the ones the experiment metrics count.

use std::collections::{BTreeMap, HashMap};

use flywheel_core::{Event, Impression, LogRecord, RequestId, Timestamp};
use flywheel_experiments::live::{ClosedRequest, Ledger};

use crate::tables::{
    CatalogRow, EventRow, ExperimentRow, ImpressionRow, OutcomeRow, Rows, SlotColumns, Table,
};

/// The partition directory of a moment: `dt=YYYY-MM-DD/hour=HH` (UTC).
pub fn partition_of(millis: i64) -> String {
    let text = Timestamp::from_millis(millis).to_rfc3339();
    let date = text.get(0..10).unwrap_or("1970-01-01");
    let hour = text.get(11..13).unwrap_or("00");
    format!("dt={date}/hour={hour}")
}

/// Rows of one export batch, per table and partition.
pub(crate) type BatchRows = BTreeMap<(Table, String), Rows>;

fn push_row(out: &mut BatchRows, table: Table, millis: i64, add: impl FnOnce(&mut Rows)) {
    let rows = out
        .entry((table, partition_of(millis)))
        .or_insert_with(|| Rows::new(table));
    add(rows);
}

/// A served list the joiner still waits for, with what its outcome rows repeat.
#[derive(Debug, Clone)]
struct PendingRequest {
    offset: u64,
    timestamp: i64,
    user_id: String,
    model_version: String,
    /// Per slot: its logged position and item.
    slots: Vec<(u32, String)>,
}

/// Turns log records, in log order, into rows; keeps the outcome joiner and the log's
/// clock (the largest record time seen, the time of records that carry none).
pub(crate) struct Converter {
    ledger: Ledger,
    pending: HashMap<RequestId, PendingRequest>,
    clock: Option<i64>,
}

impl Converter {
    /// A converter at the start of the log; windows close `allowed_lateness_ms` after
    /// event time passes them, as `experiments.allowed_lateness_secs` says online.
    pub(crate) fn new(allowed_lateness_ms: i64) -> Converter {
        let mut ledger = Ledger::new(allowed_lateness_ms);
        ledger.joiner.keep_closed();
        Converter {
            ledger,
            pending: HashMap::new(),
            clock: None,
        }
    }

    /// Applies the record at `offset` (its log bytes are `payload`); with `out`, its rows
    /// and the outcome rows of the requests it closed are added there (without, the
    /// state only advances: the warm-up replay of a resumed export).
    pub(crate) fn apply(
        &mut self,
        offset: u64,
        payload: &[u8],
        record: &LogRecord,
        out: Option<&mut BatchRows>,
    ) {
        let own_time = record_time(record);
        if let Some(t) = own_time {
            self.clock = Some(self.clock.map_or(t, |c| c.max(t)));
        }
        if let LogRecord::Impression(impression) = record {
            self.pending
                .insert(impression.request_id.clone(), pending(offset, impression));
        }
        self.ledger.apply(record);
        let closed = self.ledger.joiner.take_closed();
        let finished: Vec<(PendingRequest, ClosedRequest)> = closed
            .into_iter()
            .filter_map(|c| self.pending.remove(&c.request_id).map(|p| (p, c)))
            .collect();
        let Some(out) = out else {
            return;
        };
        let time = own_time
            .or(self.clock)
            .unwrap_or_else(|| fallback_time(record));
        add_record_rows(out, offset, payload, record, time);
        for (request, outcome) in finished {
            add_outcome_rows(out, offset, &request, &outcome);
        }
    }
}

fn pending(offset: u64, impression: &Impression) -> PendingRequest {
    PendingRequest {
        offset,
        timestamp: impression.timestamp.millis(),
        user_id: impression.user_id.to_string(),
        model_version: impression.model_version.clone(),
        slots: impression
            .slots
            .iter()
            .map(|s| (s.position, s.item_id.to_string()))
            .collect(),
    }
}

/// The time a record carries itself, if any (upserts carry none: they happen when the
/// log says, not when the item was created).
fn record_time(record: &LogRecord) -> Option<i64> {
    match record {
        LogRecord::Event(event) => Some(event.timestamp.millis()),
        LogRecord::Impression(i) | LogRecord::ShadowImpression(i) => Some(i.timestamp.millis()),
        LogRecord::ItemDelete { at, .. }
        | LogRecord::UserDelete { at, .. }
        | LogRecord::ExperimentStart { at, .. }
        | LogRecord::ExperimentRamp { at, .. }
        | LogRecord::ExperimentStop { at, .. }
        | LogRecord::UserErase { at, .. } => Some(at.millis()),
        LogRecord::ItemUpsert(_) | LogRecord::UserUpsert(_) | LogRecord::Erased { .. } => None,
    }
}

/// The time of an upsert before any record with a time (a bulk-imported catalog):
/// the epoch, so such a catalog is a few files of `dt=1970-01-01/hour=00` rather than one
/// per hour of its items' creation history.
fn fallback_time(_record: &LogRecord) -> i64 {
    0
}

fn add_record_rows(out: &mut BatchRows, offset: u64, payload: &[u8], record: &LogRecord, t: i64) {
    let text = String::from_utf8_lossy(payload).into_owned();
    match record {
        LogRecord::Event(event) => push_row(out, Table::Events, t, |rows| {
            if let Rows::Events(rows) = rows {
                rows.push(event_row(offset, event, text));
            }
        }),
        LogRecord::Impression(impression) => add_impression_rows(out, offset, impression, false),
        LogRecord::ShadowImpression(shadow) => add_impression_rows(out, offset, shadow, true),
        LogRecord::ExperimentStart { .. }
        | LogRecord::ExperimentRamp { .. }
        | LogRecord::ExperimentStop { .. } => push_row(out, Table::Experiments, t, |rows| {
            if let Rows::Experiments(rows) = rows {
                rows.push(experiment_row(offset, t, record, text));
            }
        }),
        LogRecord::ItemUpsert(_)
        | LogRecord::ItemDelete { .. }
        | LogRecord::UserUpsert(_)
        | LogRecord::UserDelete { .. } => push_row(out, Table::Catalog, t, |rows| {
            if let Rows::Catalog(rows) = rows {
                rows.push(catalog_row(offset, t, record, text));
            }
        }),
        // An erasure's marker and the placeholders compaction leaves carry no user data:
        // the lake's own rows of the user are removed by `erase_user`.
        LogRecord::UserErase { .. } | LogRecord::Erased { .. } => {}
    }
}

fn event_row(offset: u64, event: &Event, record: String) -> EventRow {
    EventRow {
        offset,
        timestamp: event.timestamp.millis(),
        user_id: event.user_id.to_string(),
        item_id: event.item_id.to_string(),
        action: event.action.as_str().to_string(),
        value: event.value,
        request_id: event.request_id.as_ref().map(|r| r.to_string()),
        position: event.position,
        context: (!event.context.is_empty())
            .then(|| serde_json::to_string(&event.context).unwrap_or_default()),
        record,
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The wire spelling of a serde unit enum (e.g. a propensity kind).
fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

fn add_impression_rows(out: &mut BatchRows, offset: u64, impression: &Impression, shadow: bool) {
    let header = Impression {
        slots: Vec::new(),
        ..impression.clone()
    };
    let base = ImpressionRow {
        offset,
        timestamp: impression.timestamp.millis(),
        request_id: impression.request_id.to_string(),
        user_id: impression.user_id.to_string(),
        model_version: impression.model_version.clone(),
        shadow,
        fallback: impression.fallback,
        features_offset: impression.features_offset,
        latency_ms: impression.latency_ms,
        slots: impression.slots.len() as u32,
        slot: None,
        header: json_text(&header),
    };
    let mut rows: Vec<ImpressionRow> = impression
        .slots
        .iter()
        .enumerate()
        .map(|(index, slot)| ImpressionRow {
            slot: Some(SlotColumns {
                slot: index as u32,
                position: slot.position,
                item_id: slot.item_id.to_string(),
                score: slot.score,
                propensity: slot.propensity,
                propensity_kind: wire_name(&slot.propensity_kind),
                channel: slot.channel.as_str().to_string(),
                team: slot.team.clone(),
                features: slot.features.clone(),
                record: json_text(slot),
            }),
            ..base.clone()
        })
        .collect();
    if rows.is_empty() {
        rows.push(base);
    }
    push_row(
        out,
        Table::Impressions,
        impression.timestamp.millis(),
        |table| {
            if let Rows::Impressions(table) = table {
                table.extend(rows);
            }
        },
    );
}

fn experiment_row(offset: u64, t: i64, record: &LogRecord, text: String) -> ExperimentRow {
    let (kind, id) = match record {
        LogRecord::ExperimentStart { experiment, .. } => ("start", experiment.id.clone()),
        LogRecord::ExperimentRamp { id, .. } => ("ramp", id.clone()),
        LogRecord::ExperimentStop { id, .. } => ("stop", id.clone()),
        _ => ("other", String::new()),
    };
    ExperimentRow {
        offset,
        timestamp: t,
        kind,
        experiment_id: id,
        record: text,
    }
}

fn catalog_row(offset: u64, t: i64, record: &LogRecord, text: String) -> CatalogRow {
    let mut row = CatalogRow {
        offset,
        timestamp: t,
        kind: record.kind(),
        item_id: None,
        user_id: None,
        category: None,
        price: None,
        available: None,
        opted_out: None,
        created_at: None,
        record: text,
    };
    match record {
        LogRecord::ItemUpsert(item) => {
            row.item_id = Some(item.id.to_string());
            row.category = Some(item.category.clone());
            row.price = item.price;
            row.available = Some(item.available);
            row.created_at = item.created_at.map(Timestamp::millis);
        }
        LogRecord::ItemDelete { id, .. } => row.item_id = Some(id.to_string()),
        LogRecord::UserUpsert(user) => {
            row.user_id = Some(user.id.to_string());
            row.opted_out = Some(user.opted_out);
            row.created_at = user.created_at.map(Timestamp::millis);
        }
        LogRecord::UserDelete { id, .. } => row.user_id = Some(id.to_string()),
        _ => {}
    }
    row
}

fn add_outcome_rows(out: &mut BatchRows, offset: u64, request: &PendingRequest, c: &ClosedRequest) {
    let rows: Vec<OutcomeRow> = request
        .slots
        .iter()
        .enumerate()
        .map(|(index, (position, item))| OutcomeRow {
            offset: request.offset,
            closed_at_offset: offset,
            timestamp: request.timestamp,
            request_id: c.request_id.to_string(),
            user_id: request.user_id.clone(),
            model_version: request.model_version.clone(),
            slot: index as u32,
            position: *position,
            item_id: item.clone(),
            clicks: c.clicks.get(index).copied().unwrap_or(0),
            purchases: c.purchases.get(index).copied().unwrap_or(0),
        })
        .collect();
    push_row(out, Table::Outcomes, request.timestamp, |table| {
        if let Rows::Outcomes(table) = table {
            table.extend(rows);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_utc_date_and_hour() {
        assert_eq!(partition_of(0), "dt=1970-01-01/hour=00");
        // 2026-12-01T21:30:00Z
        assert_eq!(partition_of(1_796_160_600_000), "dt=2026-12-01/hour=21");
    }
}
