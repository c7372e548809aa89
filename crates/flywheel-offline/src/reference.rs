//! A trained version's monitoring reference: what its training window looked like on
//! the items it would serve, and the calibration of its served score to P(click).
//!
//! - **The served slice**: rows anchored from the row cut on (the recent part of the
//!   training window, as for interaction rows): the logged impressions' slots when the log holds enough of
//!   them with final labels ([`MIN_IMPRESSION_ROWS`]: their features are recomputed as
//!   of each impression, their labels are the responses to that very list, which is
//!   what the live window later sees), otherwise the top [`SERVED_TOP`] rows of every
//!   interaction anchor by the version's own served score (what serving would show).
//! - **Numeric references**: a seeded sample of every ranking feature on that slice,
//!   and of the calibrated P(click).
//! - **Calibration**: a logistic P(click) model of the slice's ranking features
//!   ([`flywheel_monitor::CtrModel`]; why features and not the served score is said
//!   there), fitted on the slice but its latest [`CALIBRATION_SHARE`] of groups, which
//!   are held out to measure it.
//! - **Categorical references**: event kinds, the top-level category of the item of
//!   each event and of each engagement, `context.device` and `context.page`, and per
//!   engagement the user's affinity to its category just before it (a replay of the
//!   state, as the consumer sees it), from the events of the slice's
//!   time span on; and the category mix of the served slice. Counts only.

use std::collections::{BTreeMap, HashMap};

use flywheel_core::{ItemId, LogRecord};
use flywheel_monitor::{Calibration, CtrModel, Reference, ReferenceBuilder};
use flywheel_pipeline::{EngineConfig, State};
use flywheel_ranking::{Ranker, FEATURE_NAMES};

use crate::error::Result;
use crate::training::{RankerRow, Replay, RowSource, TrainingCuts};

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
    cuts: &TrainingCuts,
    ranker: Option<&Ranker>,
    version: &str,
) -> Result<Reference> {
    let settings = &config.monitoring;
    let score = |row: &RankerRow| match ranker {
        Some(model) => model.predict(&row.features),
        None => f64::from(row.candidate.channel_score),
    };
    let (slice_name, slice) = served_slice(rows, cuts, &score);
    let calibration = calibrate(&slice);
    let mut builder = ReferenceBuilder::new(
        FEATURE_NAMES,
        settings.reference_size,
        settings.max_categories,
        config.training.seed,
    );
    let from = slice.iter().map(|r| r.moment.millis()).min();
    let categories = replay_events(config, replay, from, &mut builder)?;
    for row in &slice {
        let p = calibration
            .as_ref()
            .and_then(|c| c.probability(&row.features));
        builder.row(&row.features, p);
        builder.saw_time(row.moment.millis());
        if let Some(category) = categories.get(&row.candidate.item_id) {
            builder.category("served_item_category", category);
        }
    }
    Ok(builder.finish(version, slice_name, calibration))
}

/// The served slice (see the module doc), in log order.
fn served_slice<'a>(
    rows: &'a [RankerRow],
    cuts: &TrainingCuts,
    score: &dyn Fn(&RankerRow) -> f64,
) -> (&'static str, Vec<&'a RankerRow>) {
    let recent = rows
        .iter()
        .filter(|r| r.label_closed && r.moment >= cuts.row_cut);
    let impressions: Vec<&RankerRow> = recent
        .clone()
        .filter(|r| matches!(r.source, RowSource::Impression(_)))
        .collect();
    if impressions.len() >= MIN_IMPRESSION_ROWS {
        return ("impressions", impressions);
    }
    let mut slice = Vec::new();
    let mut group: Vec<&RankerRow> = Vec::new();
    // Each row scored once (a GBDT prediction is not cheap enough to redo per comparison).
    let flush = |group: &mut Vec<&'a RankerRow>, slice: &mut Vec<&'a RankerRow>| {
        let mut scored: Vec<(f64, &'a RankerRow)> =
            group.drain(..).map(|row| (score(row), row)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        slice.extend(scored.into_iter().take(SERVED_TOP).map(|(_, row)| row));
    };
    for row in recent.filter(|r| r.source == RowSource::Interaction) {
        if group.last().is_some_and(|last| last.offset != row.offset) {
            flush(&mut group, &mut slice);
        }
        group.push(row);
    }
    flush(&mut group, &mut slice);
    ("top_10_of_interactions", slice)
}

/// The P(click) model, fitted on the slice but its latest groups, which measure it;
/// `None` when the fitted part holds one outcome.
fn calibrate(slice: &[&RankerRow]) -> Option<Calibration> {
    if slice.is_empty() {
        return None;
    }
    let starts: Vec<usize> = (0..slice.len())
        .filter(|&i| i == 0 || slice[i - 1].offset != slice[i].offset)
        .collect();
    let held = (((starts.len() as f64) * CALIBRATION_SHARE).ceil() as usize).max(1);
    let split = starts[starts.len().saturating_sub(held)];
    let (fit, held_out) = slice.split_at(split);
    let labelled = |rows: &[&'_ RankerRow]| -> Vec<(Vec<f32>, bool)> {
        rows.iter()
            .map(|r| (r.features.clone(), r.label > 0.5))
            .collect()
    };
    let fit_rows = labelled(fit);
    let view: Vec<(&[f32], bool)> = fit_rows.iter().map(|(f, y)| (&f[..], *y)).collect();
    let model = CtrModel::fit(&view)?;
    let predicted: Vec<f64> = held_out
        .iter()
        .filter_map(|r| model.probability(&r.features))
        .collect();
    let held_positives = held_out.iter().filter(|r| r.label > 0.5).count();
    Some(Calibration {
        rows: fit.len() as u64,
        positives: view.iter().filter(|r| r.1).count() as u64,
        holdout_rows: held_out.len() as u64,
        holdout_positive_rate: held_positives as f64 / held_out.len().max(1) as f64,
        holdout_mean_predicted: predicted.iter().sum::<f64>() / predicted.len().max(1) as f64,
        model,
    })
}

/// Counts the event categoricals of the events from `from` on, and samples each
/// engagement's category affinity (replaying the state, as the consumer has it);
/// returns every item's top-level category as of the end of the log.
fn replay_events(
    config: &EngineConfig,
    replay: &Replay,
    from: Option<i64>,
    builder: &mut ReferenceBuilder,
) -> Result<HashMap<ItemId, String>> {
    let mut state = State::new(flywheel_pipeline::feature_config(config));
    let mut counts: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
    let mut count = |feature: &'static str, value: &str| {
        *counts.entry((feature, value.to_string())).or_insert(0) += 1;
    };
    replay(&mut |_, record| {
        if let LogRecord::Event(event) = record {
            if from.is_none_or(|f| event.timestamp.millis() >= f) {
                count("event_action", event.action.as_str());
                let category = state
                    .catalog
                    .item(&event.item_id)
                    .and_then(|i| top_level_category(&i.category));
                if let Some(category) = category {
                    count("event_item_category", category);
                    if event.action.is_engagement() {
                        count("engaged_item_category", category);
                        builder.engaged_affinity(engaged_affinity(&state, event, category));
                    }
                }
                for (feature, field) in [("event_device", "device"), ("event_page", "page")] {
                    if let Some(value) = event.context.get(field) {
                        count(feature, value);
                    }
                }
            }
        }
        state.apply(record);
        Ok(())
    })?;
    // Counted first, then added most frequent first, so the category cap keeps the
    // most common categories by name.
    let mut sorted: Vec<((&str, String), u64)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for ((feature, value), n) in sorted {
        builder.category_n(feature, &value, n);
    }
    Ok(state
        .catalog
        .items()
        .filter_map(|item| {
            top_level_category(&item.category).map(|c| (item.id.clone(), c.to_string()))
        })
        .collect())
}

/// The user's share of engagement in `category` just before `event` (0 without history).
pub fn engaged_affinity(state: &State, event: &flywheel_core::Event, category: &str) -> f64 {
    state
        .features
        .user_features(&event.user_id, event.timestamp)
        .category_affinity
        .get(category)
        .copied()
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::{Candidate, Channel, RequestId, Timestamp, UserId};

    fn row(source: RowSource, offset: u64, at: i64, score: f32, label: f32) -> RankerRow {
        RankerRow {
            source,
            offset,
            user_id: UserId::new_unchecked("u"),
            moment: Timestamp(at),
            candidate: Candidate {
                item_id: ItemId::new_unchecked(format!("i{offset}-{score}")),
                channel: Channel::Popularity,
                channel_score: score,
                channel_rank: 0,
                source_item: None,
            },
            features: vec![score, 1.0],
            context: Default::default(),
            position: None,
            label,
            label_closes: Timestamp(at + 1),
            label_closed: true,
        }
    }

    fn cuts(row_cut: i64) -> TrainingCuts {
        TrainingCuts {
            fusion_cut: Timestamp(0),
            row_cut: Timestamp(row_cut),
            gate_cut: Timestamp(row_cut),
            label_window_ms: 1,
        }
    }

    #[test]
    fn the_served_slice_is_the_top_ten_of_each_anchor_from_the_row_cut_on() {
        let mut rows = Vec::new();
        for anchor in 0..3u64 {
            for i in 0..30 {
                rows.push(row(
                    RowSource::Interaction,
                    anchor,
                    anchor as i64 * 100,
                    i as f32,
                    0.0,
                ));
            }
        }
        let score = |r: &RankerRow| f64::from(r.candidate.channel_score);
        let (name, slice) = served_slice(&rows, &cuts(100), &score);
        assert_eq!(name, "top_10_of_interactions");
        // Anchor 0 is before the row cut; the others give their 10 best rows.
        assert_eq!(slice.len(), 20);
        assert!(slice
            .iter()
            .all(|r| r.offset > 0 && r.candidate.channel_score >= 20.0));
    }

    #[test]
    fn enough_impression_rows_are_the_served_slice_and_calibrate() {
        let rows: Vec<RankerRow> = (0..600u64)
            .map(|i| {
                let request =
                    RowSource::Impression(RequestId::new_unchecked(format!("r{}", i / 10)));
                let score = (i % 10) as f32;
                row(
                    request,
                    i / 10,
                    10,
                    score,
                    f32::from(u8::from(i % 10 == 0 || i % 7 == 0)),
                )
            })
            .collect();
        let score = |r: &RankerRow| f64::from(r.candidate.channel_score);
        let (name, slice) = served_slice(&rows, &cuts(0), &score);
        assert_eq!((name, slice.len()), ("impressions", 600));
        let calibration = calibrate(&slice).unwrap();
        // The latest 20% of the 60 lists are held out.
        assert_eq!((calibration.rows, calibration.holdout_rows), (480, 120));
        let rate = calibration.holdout_positive_rate;
        assert!(
            (calibration.holdout_mean_predicted - rate).abs() < 0.05,
            "{calibration:?}"
        );
        let single: Vec<RankerRow> = rows
            .iter()
            .cloned()
            .map(|r| RankerRow { label: 0.0, ..r })
            .collect();
        let refs: Vec<&RankerRow> = single.iter().collect();
        assert!(calibrate(&refs).is_none());
        assert_eq!(top_level_category("books/scifi"), Some("books"));
        assert_eq!(top_level_category(""), None);
    }
}
