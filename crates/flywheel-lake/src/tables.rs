//! The lake's tables: their names, their Arrow schemas and the row buffers that become
//! one record batch per file. `docs/lake.md` documents every column.

use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{LakeError, Result};

/// A table of the lake, one directory `<lake>/<name>/` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per user event.
    Events,
    /// One row per served (or shadow) slot.
    Impressions,
    /// One row per slot of a request whose attribution windows closed, with its clicks
    /// and purchases.
    Outcomes,
    /// Item and user upserts and deletes.
    Catalog,
    /// Experiment starts, ramps and stops.
    Experiments,
}

impl Table {
    /// Every table, in directory order.
    pub const ALL: [Table; 5] = [
        Table::Events,
        Table::Impressions,
        Table::Outcomes,
        Table::Catalog,
        Table::Experiments,
    ];

    /// The directory name of the table.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Impressions => "impressions",
            Table::Outcomes => "outcomes",
            Table::Catalog => "catalog",
            Table::Experiments => "experiments",
        }
    }

    /// The table's Arrow schema.
    pub fn schema(self) -> SchemaRef {
        let fields = match self {
            Table::Events => events_fields(),
            Table::Impressions => impressions_fields(),
            Table::Outcomes => outcomes_fields(),
            Table::Catalog => catalog_fields(),
            Table::Experiments => experiments_fields(),
        };
        Arc::new(Schema::new(fields))
    }
}

fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

fn events_fields() -> Vec<Field> {
    vec![
        field("log_offset", DataType::UInt64, false),
        field("timestamp", time_type(), false),
        field("user_id", DataType::Utf8, false),
        field("item_id", DataType::Utf8, false),
        field("action", DataType::Utf8, false),
        field("value", DataType::Float64, true),
        field("request_id", DataType::Utf8, true),
        field("position", DataType::UInt32, true),
        field("context", DataType::Utf8, true),
        field("record", DataType::Utf8, false),
    ]
}

fn features_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Float32, true)))
}

fn impressions_fields() -> Vec<Field> {
    vec![
        field("log_offset", DataType::UInt64, false),
        field("timestamp", time_type(), false),
        field("request_id", DataType::Utf8, false),
        field("user_id", DataType::Utf8, false),
        field("model_version", DataType::Utf8, false),
        field("shadow", DataType::Boolean, false),
        field("fallback", DataType::Boolean, false),
        field("features_offset", DataType::UInt64, true),
        field("latency_ms", DataType::Float64, true),
        field("slots", DataType::UInt32, false),
        field("slot", DataType::UInt32, true),
        field("position", DataType::UInt32, true),
        field("item_id", DataType::Utf8, true),
        field("score", DataType::Float64, true),
        field("propensity", DataType::Float64, true),
        field("propensity_kind", DataType::Utf8, true),
        field("channel", DataType::Utf8, true),
        field("team", DataType::Utf8, true),
        field("features", features_type(), true),
        field("header", DataType::Utf8, false),
        field("slot_record", DataType::Utf8, true),
    ]
}

fn outcomes_fields() -> Vec<Field> {
    vec![
        field("log_offset", DataType::UInt64, false),
        field("closed_at_offset", DataType::UInt64, false),
        field("timestamp", time_type(), false),
        field("request_id", DataType::Utf8, false),
        field("user_id", DataType::Utf8, false),
        field("model_version", DataType::Utf8, false),
        field("slot", DataType::UInt32, false),
        field("position", DataType::UInt32, false),
        field("item_id", DataType::Utf8, false),
        field("clicks", DataType::UInt32, false),
        field("purchases", DataType::UInt32, false),
    ]
}

fn catalog_fields() -> Vec<Field> {
    vec![
        field("log_offset", DataType::UInt64, false),
        field("timestamp", time_type(), false),
        field("kind", DataType::Utf8, false),
        field("item_id", DataType::Utf8, true),
        field("user_id", DataType::Utf8, true),
        field("category", DataType::Utf8, true),
        field("price", DataType::Float64, true),
        field("available", DataType::Boolean, true),
        field("opted_out", DataType::Boolean, true),
        field("created_at", time_type(), true),
        field("record", DataType::Utf8, false),
    ]
}

fn experiments_fields() -> Vec<Field> {
    vec![
        field("log_offset", DataType::UInt64, false),
        field("timestamp", time_type(), false),
        field("kind", DataType::Utf8, false),
        field("experiment_id", DataType::Utf8, false),
        field("record", DataType::Utf8, false),
    ]
}

/// One row of `events`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventRow {
    pub offset: u64,
    pub timestamp: i64,
    pub user_id: String,
    pub item_id: String,
    pub action: String,
    pub value: Option<f64>,
    pub request_id: Option<String>,
    pub position: Option<u32>,
    pub context: Option<String>,
    pub record: String,
}

/// One row of `impressions` (a slot, or the whole list when it has none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImpressionRow {
    pub offset: u64,
    pub timestamp: i64,
    pub request_id: String,
    pub user_id: String,
    pub model_version: String,
    pub shadow: bool,
    pub fallback: bool,
    pub features_offset: Option<u64>,
    pub latency_ms: Option<f64>,
    pub slots: u32,
    pub slot: Option<SlotColumns>,
    pub header: String,
}

/// The slot columns of an impression row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlotColumns {
    pub slot: u32,
    pub position: u32,
    pub item_id: String,
    pub score: f64,
    pub propensity: f64,
    pub propensity_kind: String,
    pub channel: String,
    pub team: Option<String>,
    pub features: Vec<f32>,
    pub record: String,
}

/// One row of `outcomes`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutcomeRow {
    pub offset: u64,
    pub closed_at_offset: u64,
    pub timestamp: i64,
    pub request_id: String,
    pub user_id: String,
    pub model_version: String,
    pub slot: u32,
    pub position: u32,
    pub item_id: String,
    pub clicks: u32,
    pub purchases: u32,
}

/// One row of `catalog`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CatalogRow {
    pub offset: u64,
    pub timestamp: i64,
    pub kind: &'static str,
    pub item_id: Option<String>,
    pub user_id: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub available: Option<bool>,
    pub opted_out: Option<bool>,
    pub created_at: Option<i64>,
    pub record: String,
}

/// One row of `experiments`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExperimentRow {
    pub offset: u64,
    pub timestamp: i64,
    pub kind: &'static str,
    pub experiment_id: String,
    pub record: String,
}

/// Rows of one table waiting to be written as one file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rows {
    Events(Vec<EventRow>),
    Impressions(Vec<ImpressionRow>),
    Outcomes(Vec<OutcomeRow>),
    Catalog(Vec<CatalogRow>),
    Experiments(Vec<ExperimentRow>),
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn times(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(
        values
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC"),
    )
}

fn u64s(values: impl Iterator<Item = Option<u64>>) -> ArrayRef {
    Arc::new(values.collect::<UInt64Array>())
}

fn u32s(values: impl Iterator<Item = Option<u32>>) -> ArrayRef {
    Arc::new(values.collect::<UInt32Array>())
}

fn f64s(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(values.collect::<Float64Array>())
}

fn bools(values: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(values.collect::<BooleanArray>())
}

impl Rows {
    /// An empty buffer for `table`.
    pub(crate) fn new(table: Table) -> Rows {
        match table {
            Table::Events => Rows::Events(Vec::new()),
            Table::Impressions => Rows::Impressions(Vec::new()),
            Table::Outcomes => Rows::Outcomes(Vec::new()),
            Table::Catalog => Rows::Catalog(Vec::new()),
            Table::Experiments => Rows::Experiments(Vec::new()),
        }
    }

    /// The table the rows belong to.
    pub(crate) fn table(&self) -> Table {
        match self {
            Rows::Events(_) => Table::Events,
            Rows::Impressions(_) => Table::Impressions,
            Rows::Outcomes(_) => Table::Outcomes,
            Rows::Catalog(_) => Table::Catalog,
            Rows::Experiments(_) => Table::Experiments,
        }
    }

    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::Events(rows) => rows.len(),
            Rows::Impressions(rows) => rows.len(),
            Rows::Outcomes(rows) => rows.len(),
            Rows::Catalog(rows) => rows.len(),
            Rows::Experiments(rows) => rows.len(),
        }
    }

    /// The rows as one Arrow record batch of the table's schema.
    pub(crate) fn to_batch(&self) -> Result<RecordBatch> {
        let columns = match self {
            Rows::Events(rows) => event_columns(rows),
            Rows::Impressions(rows) => impression_columns(rows),
            Rows::Outcomes(rows) => outcome_columns(rows),
            Rows::Catalog(rows) => catalog_columns(rows),
            Rows::Experiments(rows) => experiment_columns(rows),
        };
        let table = self.table();
        RecordBatch::try_new(table.schema(), columns).map_err(|source| LakeError::Arrow {
            table: table.name(),
            source,
        })
    }
}

fn event_columns(rows: &[EventRow]) -> Vec<ArrayRef> {
    vec![
        u64s(rows.iter().map(|r| Some(r.offset))),
        times(rows.iter().map(|r| Some(r.timestamp))),
        strings(rows.iter().map(|r| Some(r.user_id.as_str()))),
        strings(rows.iter().map(|r| Some(r.item_id.as_str()))),
        strings(rows.iter().map(|r| Some(r.action.as_str()))),
        f64s(rows.iter().map(|r| r.value)),
        strings(rows.iter().map(|r| r.request_id.as_deref())),
        u32s(rows.iter().map(|r| r.position)),
        strings(rows.iter().map(|r| r.context.as_deref())),
        strings(rows.iter().map(|r| Some(r.record.as_str()))),
    ]
}

fn features_column(rows: &[ImpressionRow]) -> ArrayRef {
    let mut builder = ListBuilder::new(Float32Builder::new());
    for row in rows {
        match &row.slot {
            Some(slot) if !slot.features.is_empty() => {
                builder.values().append_slice(&slot.features);
                builder.append(true);
            }
            _ => builder.append(false),
        }
    }
    Arc::new(builder.finish())
}

fn slot(row: &ImpressionRow) -> Option<&SlotColumns> {
    row.slot.as_ref()
}

fn impression_columns(rows: &[ImpressionRow]) -> Vec<ArrayRef> {
    vec![
        u64s(rows.iter().map(|r| Some(r.offset))),
        times(rows.iter().map(|r| Some(r.timestamp))),
        strings(rows.iter().map(|r| Some(r.request_id.as_str()))),
        strings(rows.iter().map(|r| Some(r.user_id.as_str()))),
        strings(rows.iter().map(|r| Some(r.model_version.as_str()))),
        bools(rows.iter().map(|r| Some(r.shadow))),
        bools(rows.iter().map(|r| Some(r.fallback))),
        u64s(rows.iter().map(|r| r.features_offset)),
        f64s(rows.iter().map(|r| r.latency_ms)),
        u32s(rows.iter().map(|r| Some(r.slots))),
        u32s(rows.iter().map(|r| slot(r).map(|s| s.slot))),
        u32s(rows.iter().map(|r| slot(r).map(|s| s.position))),
        strings(rows.iter().map(|r| slot(r).map(|s| s.item_id.as_str()))),
        f64s(rows.iter().map(|r| slot(r).map(|s| s.score))),
        f64s(rows.iter().map(|r| slot(r).map(|s| s.propensity))),
        strings(
            rows.iter()
                .map(|r| slot(r).map(|s| s.propensity_kind.as_str())),
        ),
        strings(rows.iter().map(|r| slot(r).map(|s| s.channel.as_str()))),
        strings(rows.iter().map(|r| slot(r).and_then(|s| s.team.as_deref()))),
        features_column(rows),
        strings(rows.iter().map(|r| Some(r.header.as_str()))),
        strings(rows.iter().map(|r| slot(r).map(|s| s.record.as_str()))),
    ]
}

fn outcome_columns(rows: &[OutcomeRow]) -> Vec<ArrayRef> {
    vec![
        u64s(rows.iter().map(|r| Some(r.offset))),
        u64s(rows.iter().map(|r| Some(r.closed_at_offset))),
        times(rows.iter().map(|r| Some(r.timestamp))),
        strings(rows.iter().map(|r| Some(r.request_id.as_str()))),
        strings(rows.iter().map(|r| Some(r.user_id.as_str()))),
        strings(rows.iter().map(|r| Some(r.model_version.as_str()))),
        u32s(rows.iter().map(|r| Some(r.slot))),
        u32s(rows.iter().map(|r| Some(r.position))),
        strings(rows.iter().map(|r| Some(r.item_id.as_str()))),
        u32s(rows.iter().map(|r| Some(r.clicks))),
        u32s(rows.iter().map(|r| Some(r.purchases))),
    ]
}

fn catalog_columns(rows: &[CatalogRow]) -> Vec<ArrayRef> {
    vec![
        u64s(rows.iter().map(|r| Some(r.offset))),
        times(rows.iter().map(|r| Some(r.timestamp))),
        strings(rows.iter().map(|r| Some(r.kind))),
        strings(rows.iter().map(|r| r.item_id.as_deref())),
        strings(rows.iter().map(|r| r.user_id.as_deref())),
        strings(rows.iter().map(|r| r.category.as_deref())),
        f64s(rows.iter().map(|r| r.price)),
        bools(rows.iter().map(|r| r.available)),
        bools(rows.iter().map(|r| r.opted_out)),
        times(rows.iter().map(|r| r.created_at)),
        strings(rows.iter().map(|r| Some(r.record.as_str()))),
    ]
}

fn experiment_columns(rows: &[ExperimentRow]) -> Vec<ArrayRef> {
    vec![
        u64s(rows.iter().map(|r| Some(r.offset))),
        times(rows.iter().map(|r| Some(r.timestamp))),
        strings(rows.iter().map(|r| Some(r.kind))),
        strings(rows.iter().map(|r| Some(r.experiment_id.as_str()))),
        strings(rows.iter().map(|r| Some(r.record.as_str()))),
    ]
}
