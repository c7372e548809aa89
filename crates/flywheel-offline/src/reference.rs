//! A trained version's monitoring reference: what its training window looked like on
//! the items it would serve, and the calibration of its served score to P(click).
//!
//! - **The served slice**: the logged impressions' slots when the log holds enough of
//!   them with final labels ([`MIN_IMPRESSION_ROWS`]: their features are recomputed as
//!   of each impression, their labels are the responses to that very list, which is
//!   what the live window later sees), otherwise the top [`SERVED_TOP`] rows of every
//!   interaction anchor by the version's own served score (what serving would show).
//! - **Numeric references**: a seeded sample of every ranking feature on that slice,
//!   and of the calibrated P(click).
//! - **Calibration**: Platt scaling of the served score (the ranker's, or the fused
//!   retrieval score when the gate kept no ranker; a probability's log-odds) to the
//!   label, fitted on the latest [`CALIBRATION_SHARE`] of the slice's groups (for the
//!   GBDT those are the groups it early-stopped on, not fitted on).
//! - **Categorical references**: event kinds, the top-level category of the item of
//!   each event, `context.device` and `context.page`, from the events of the slice's
//!   time span on; and the category mix of the served slice. Counts only.

use std::collections::{BTreeMap, HashMap};

use flywheel_core::{ItemId, LogRecord};
use flywheel_monitor::{
    Calibration, Reference, ReferenceBuilder, ScoreInput, CATEGORICAL_FEATURES,
};
use flywheel_pipeline::EngineConfig;
use flywheel_ranking::{fit_platt, Ranker, FEATURE_NAMES};

use crate::error::Result;
use crate::training::{RankerRow, Replay, RowSource};

/// The impression rows (final labels) needed to take the served slice from them.
pub const MIN_IMPRESSION_ROWS: usize = 500;
/// Rows per interaction anchor that stand for a served list.
pub const SERVED_TOP: usize = 10;
/// The latest share of the slice's groups the calibration is fitted on.
pub const CALIBRATION_SHARE: f64 = 0.2;

/// The top-level category of a category path (`books/scifi` → `books`); `None` when
/// uncategorised. Serving's live window uses the same definition.
pub fn top_level_category(path: &str) -> Option<&str> {
    path.split('/').next().filter(|c| !c.is_empty())
}

/// The version's reference, from its training rows and the log.
pub fn build_reference(
    config: &EngineConfig,
    replay: &Replay,
    rows: &[RankerRow],
    ranker: Option<&Ranker>,
    version: &str,
) -> Result<Reference> {
    let settings = &config.monitoring;
    let score = |row: &RankerRow| match ranker {
        Some(model) => model.predict(&row.features),
        None => f64::from(row.candidate.channel_score),
    };
    let (slice_name, slice) = served_slice(rows, &score);
    let input = if ranker.is_some_and(Ranker::predicts_probability) {
        ScoreInput::LogOdds
    } else {
        ScoreInput::Raw
    };
    let calibration = calibrate(&slice, &score, input);
    let mut builder = ReferenceBuilder::new(
        FEATURE_NAMES,
        settings.reference_size,
        settings.max_categories,
        config.training.seed,
    );
    let from = slice.iter().map(|r| r.moment.millis()).min();
    let categories = replay_categoricals(replay, from, &mut builder)?;
    for row in &slice {
        let p = calibration.and_then(|c| c.probability(score(row)));
        builder.row(&row.features, p);
        builder.saw_time(row.moment.millis());
        if let Some(category) = categories.get(&row.candidate.item_id) {
            builder.category(CATEGORICAL_FEATURES[4], category);
        }
    }
    Ok(builder.finish(version, slice_name, calibration))
}

/// The served slice (see the module doc), in log order.
fn served_slice<'a>(
    rows: &'a [RankerRow],
    score: &dyn Fn(&RankerRow) -> f64,
) -> (&'static str, Vec<&'a RankerRow>) {
    let closed = rows.iter().filter(|r| r.label_closed);
    let impressions: Vec<&RankerRow> = closed
        .clone()
        .filter(|r| matches!(r.source, RowSource::Impression(_)))
        .collect();
    if impressions.len() >= MIN_IMPRESSION_ROWS {
        return ("impressions", impressions);
    }
    let mut slice = Vec::new();
    let mut group: Vec<&RankerRow> = Vec::new();
    let flush = |group: &mut Vec<&'a RankerRow>, slice: &mut Vec<&'a RankerRow>| {
        group.sort_by(|a, b| score(b).total_cmp(&score(a)));
        slice.extend(group.drain(..).take(SERVED_TOP));
    };
    for row in closed.filter(|r| r.source == RowSource::Interaction) {
        if group.last().is_some_and(|last| last.offset != row.offset) {
            flush(&mut group, &mut slice);
        }
        group.push(row);
    }
    flush(&mut group, &mut slice);
    ("top_10_of_interactions", slice)
}

/// Platt scaling on the latest groups of the slice; `None` when they hold one outcome.
fn calibrate(
    slice: &[&RankerRow],
    score: &dyn Fn(&RankerRow) -> f64,
    input: ScoreInput,
) -> Option<Calibration> {
    if slice.is_empty() {
        return None;
    }
    let starts: Vec<usize> = (0..slice.len())
        .filter(|&i| i == 0 || slice[i - 1].offset != slice[i].offset)
        .collect();
    let held = (((starts.len() as f64) * CALIBRATION_SHARE).ceil() as usize).max(1);
    let start = starts[starts.len().saturating_sub(held)];
    let held_out = &slice[start..];
    let x = |row: &RankerRow| match input {
        ScoreInput::Raw => score(row),
        ScoreInput::LogOdds => {
            let p = score(row).clamp(1e-9, 1.0 - 1e-9);
            (p / (1.0 - p)).ln()
        }
    };
    let margins: Vec<f64> = held_out.iter().map(|r| x(r)).collect();
    let labels: Vec<f64> = held_out.iter().map(|r| f64::from(r.label)).collect();
    let weights = vec![1.0; held_out.len()];
    let platt = fit_platt(&margins, &labels, &weights).ok()?;
    let mut calibration = Calibration {
        a: platt.a,
        b: platt.b,
        input,
        rows: held_out.len() as u64,
        positives: labels.iter().filter(|y| **y > 0.5).count() as u64,
        mean_predicted: 0.0,
    };
    let total: f64 = held_out
        .iter()
        .filter_map(|r| calibration.probability(score(r)))
        .sum();
    calibration.mean_predicted = total / held_out.len().max(1) as f64;
    Some(calibration)
}

/// Counts the event categoricals of the events from `from` on; returns every item's
/// top-level category as of the end of the log.
fn replay_categoricals(
    replay: &Replay,
    from: Option<i64>,
    builder: &mut ReferenceBuilder,
) -> Result<HashMap<ItemId, String>> {
    let mut categories: HashMap<ItemId, String> = HashMap::new();
    let mut counts: BTreeMap<(usize, String), u64> = BTreeMap::new();
    let mut count = |feature: usize, value: &str| {
        *counts.entry((feature, value.to_string())).or_insert(0) += 1;
    };
    replay(&mut |_, record| {
        match record {
            LogRecord::ItemUpsert(item) => {
                match top_level_category(&item.category) {
                    Some(top) => categories.insert(item.id.clone(), top.to_string()),
                    None => categories.remove(&item.id),
                };
            }
            LogRecord::Event(event) if from.is_none_or(|f| event.timestamp.millis() >= f) => {
                count(0, event.action.as_str());
                if let Some(category) = categories.get(&event.item_id) {
                    count(1, category);
                }
                for (feature, field) in [(2, "device"), (3, "page")] {
                    if let Some(value) = event.context.get(field) {
                        count(feature, value);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    // Counted first, then added most frequent first, so the category cap keeps the
    // most common categories by name.
    let mut sorted: Vec<((usize, String), u64)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for ((feature, value), n) in sorted {
        builder.category_n(CATEGORICAL_FEATURES[feature], &value, n);
    }
    Ok(categories)
}
