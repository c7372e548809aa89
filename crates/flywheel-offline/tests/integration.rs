//! Point-in-time training, end to end on a simulated shop: the ranker rows of a log
//! do not depend on anything after their moment, and the rows built from plain
//! events carry exactly the features the serving pipeline would have computed.
//!
//! Fixtures come from `flywheel_sim::SimConfig::small()` (seed 42), so every run
//! sees the same shop. Rows are built by `training::rows`, the first stage of
//! `training::train`, so these are the rows the ranker is fitted on.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use flywheel_core::{Candidate, LogRecord, Timestamp};
use flywheel_import::{read_file, ImportKind};
use flywheel_offline::training::{self, RankerRow, RowSet, RowSource};
use flywheel_pipeline::{feature_config, retrieve_candidates, EngineConfig, RecRequest, State};
use flywheel_ranking::{featurize, RankingInput};
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

#[path = "integration/bias_study.rs"]
mod bias_study;
/// Counterfactual evaluation of a candidate on an exploring log (`eval ope --candidate`).
#[path = "integration/ope.rs"]
mod ope;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// The small shop.
fn sim() -> &'static flywheel_sim::Simulation {
    static SIM: OnceLock<flywheel_sim::Simulation> = OnceLock::new();
    SIM.get_or_init(|| flywheel_sim::simulate(&flywheel_sim::SimConfig::small()).unwrap())
}

fn start() -> Timestamp {
    flywheel_sim::SimConfig::small().start
}

/// The shop as a live log would hold it: every item and user upserted when it was
/// created (those from before the simulated period first), events at their time.
/// Returns each record with the time it entered the log.
fn live_log() -> Vec<(Timestamp, LogRecord)> {
    let sim = sim();
    let mut timed: Vec<(Timestamp, u8, usize, LogRecord)> = Vec::new();
    let origin = Timestamp::from_millis(0);
    for (i, item) in sim.world.items.iter().enumerate() {
        let at = item.created_at.unwrap_or(origin).max(origin);
        timed.push((at, 0, i, LogRecord::ItemUpsert(item.clone())));
    }
    for (i, user) in sim.world.users.iter().enumerate() {
        let at = user.created_at.unwrap_or(origin).max(origin);
        timed.push((at, 1, i, LogRecord::UserUpsert(user.clone())));
    }
    for (i, event) in sim.events.iter().enumerate() {
        timed.push((event.timestamp, 2, i, LogRecord::Event(event.clone())));
    }
    timed.sort_by_key(|(at, kind, index, _)| (*at, *kind, *index));
    timed.into_iter().map(|(at, _, _, r)| (at, r)).collect()
}

/// The shop as `flywheel import` produces it: items, then users, then events (no
/// impressions), read back from the simulator's files by the real importer.
fn imported_log() -> &'static Vec<LogRecord> {
    static LOG: OnceLock<Vec<LogRecord>> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let files = flywheel_sim::write_dataset(sim(), dir.path()).unwrap();
        let mut records = Vec::new();
        let actions = flywheel_core::ActionSet::default();
        for (path, kind) in [
            (&files.items, ImportKind::Items),
            (&files.users, ImportKind::Users),
            (&files.events, ImportKind::Events),
        ] {
            read_file(path, kind, &actions, &mut |batch| {
                records.extend(batch);
                Ok(())
            })
            .unwrap();
        }
        records
    })
}

fn rows_of(config: &EngineConfig, records: &[LogRecord]) -> RowSet {
    let replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> flywheel_offline::Result<()>| {
        for (offset, record) in records.iter().enumerate() {
            visit(offset as u64, record)?;
        }
        Ok(())
    };
    training::rows(config, &replay, &mut |_| {}).unwrap()
}

fn bits(features: &[f32]) -> Vec<u32> {
    features.iter().map(|f| f.to_bits()).collect()
}

/// A candidate as comparable bits (the fused score compared bit for bit).
fn candidate_key(c: &Candidate) -> (String, String, u32, u32, Option<String>) {
    (
        c.item_id.to_string(),
        c.channel.as_str().to_string(),
        c.channel_rank,
        c.channel_score.to_bits(),
        c.source_item.as_ref().map(|s| s.to_string()),
    )
}

fn describe(row: &RankerRow) -> String {
    format!(
        "{:?} row of {} at {} (offset {}), candidate {}",
        row.source, row.user_id, row.moment, row.offset, row.candidate.item_id
    )
}

/// Truncation invariance: with the cuts fixed in absolute time, the rows built from
/// the whole log and from the log as it stood at a moment t agree, bit for bit, on
/// every row anchored before t (which rows exist, their candidates and features),
/// and on every label whose window closed before t.
#[test]
fn rows_anchored_before_a_truncation_do_not_depend_on_the_rest_of_the_log() {
    let start = start();
    let mut config = EngineConfig::default();
    config.training.fusion_cut = Some(start.plus_millis(2 * DAY));
    config.training.row_cut = Some(start.plus_millis(3 * DAY));
    config.training.gate_cut = Some(start.plus_millis(5 * DAY));
    config.training.label_window_hours = 12.0;
    let window = 12 * HOUR;
    let t = start.plus_millis(4 * DAY + 12 * HOUR);

    let timeline = live_log();
    let full: Vec<LogRecord> = timeline.iter().map(|(_, r)| r.clone()).collect();
    let cut = timeline.partition_point(|(at, _)| *at < t);
    let truncated = &full[..cut];
    // The fixture exercises what the test is about: items arrive while rows are
    // being built, and the whole log's catalog holds items created after t.
    let created_between = timeline
        .iter()
        .filter(|(at, r)| {
            matches!(r, LogRecord::ItemUpsert(_))
                && *at >= config.training.row_cut.unwrap()
                && *at < t
        })
        .count();
    let created_after = full[cut..]
        .iter()
        .filter(|r| matches!(r, LogRecord::ItemUpsert(_)))
        .count();
    assert!(
        created_between > 0,
        "no item is created between the row cut and t"
    );
    assert!(created_after > 0, "no item is created after t");

    let whole = rows_of(&config, &full);
    let prefix = rows_of(&config, truncated);
    assert_eq!(
        whole.cuts, prefix.cuts,
        "the cuts are fixed in absolute time"
    );
    assert_eq!(
        whole.fusion_weights, prefix.fusion_weights,
        "fusion weights learned before the row cut"
    );
    assert!(
        !whole.fusion_weights.is_empty(),
        "the fusion weights were learned"
    );

    let before = |set: &RowSet| -> Vec<RankerRow> {
        set.rows.iter().filter(|r| r.moment < t).cloned().collect()
    };
    let (a, b) = (before(&whole), before(&prefix));
    assert!(a.len() >= 1000, "only {} rows anchored before t", a.len());
    assert!(
        whole.rows.len() > a.len(),
        "the whole log has rows after t too"
    );
    assert_eq!(
        a.len(),
        b.len(),
        "the rows anchored before t differ in number: {} from the whole log, {} from the log truncated at {t}",
        a.len(),
        b.len()
    );
    let (mut labels_compared, mut positives, mut open_labels_differ) = (0, 0, false);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (&x.source, x.offset, &x.user_id, x.moment),
            (&y.source, y.offset, &y.user_id, y.moment),
            "a different row anchored before t: {} vs {}",
            describe(x),
            describe(y)
        );
        assert_eq!(
            candidate_key(&x.candidate),
            candidate_key(&y.candidate),
            "candidate of the {} differs from the truncated log's {}",
            describe(x),
            describe(y)
        );
        assert_eq!(
            bits(&x.features),
            bits(&y.features),
            "features of the {} differ:\nwhole log {:?}\ntruncated {:?}",
            describe(x),
            x.features,
            y.features
        );
        assert_eq!(x.label_closes, x.moment.plus_millis(window));
        if x.label_closes <= t {
            assert_eq!(
                x.label,
                y.label,
                "label of the {} (window closed at {}) differs",
                describe(x),
                x.label_closes
            );
            assert!(y.label_closed, "the truncated log reaches the window's end");
            labels_compared += 1;
            positives += usize::from(x.label > 0.5);
        } else {
            open_labels_differ |= x.label != y.label;
        }
        // No candidate was created after the row's moment.
        let created = sim()
            .world
            .items
            .iter()
            .find(|i| i.id == x.candidate.item_id)
            .and_then(|i| i.created_at);
        assert!(
            created.is_none_or(|c| c <= x.moment),
            "the {} proposes an item created at {created:?}",
            describe(x)
        );
    }
    assert!(
        labels_compared >= 500,
        "only {labels_compared} labels compared"
    );
    assert!(positives > 0, "no positive label among those compared");
    // Control: the truncation hides engagements, so a window still open at t must
    // show it somewhere; otherwise the label comparison proves nothing.
    assert!(
        open_labels_differ,
        "no label of a window still open at t changed: the label check cannot fail"
    );
}

/// Parity for rows from plain events (an import, no impressions): each interaction
/// row's candidate and features equal what the serving pipeline computes for that
/// user at that moment from a state replayed independently through `State::apply`
/// to just before the row's engagement.
#[test]
fn interaction_rows_carry_the_features_serving_would_have_computed() {
    let config = EngineConfig::default();
    let records = imported_log();
    let set = rows_of(&config, records);
    let mut anchors: BTreeMap<u64, Vec<&RankerRow>> = BTreeMap::new();
    for row in &set.rows {
        assert_eq!(
            row.source,
            RowSource::Interaction,
            "an import has no impressions"
        );
        anchors.entry(row.offset).or_default().push(row);
    }
    assert!(anchors.len() >= 200, "only {} anchors", anchors.len());
    // Every 7th anchor, so the check spans the whole row range.
    let checked: Vec<(&u64, &Vec<&RankerRow>)> = anchors.iter().step_by(7).collect();
    let mut state = State::new(feature_config(&config));
    let (mut rows_checked, mut control_differs) = (0, false);
    for (&offset, rows) in checked {
        while state.applied < offset {
            state.apply(&records[state.applied as usize]);
        }
        let LogRecord::Event(event) = &records[offset as usize] else {
            panic!("row anchored at offset {offset}, which is no event");
        };
        let now = event.timestamp;
        assert!(rows
            .iter()
            .all(|r| r.moment == now && r.user_id == event.user_id));
        // The request the engine makes for this user (the candidates do not depend
        // on the count); the index is the catalog's as of now.
        let request = RecRequest {
            user_id: event.user_id.clone(),
            count: 10,
            category: None,
            now,
            keep_features: true,
            only_channel: None,
            exclude: HashSet::new(),
            use_ranker: true,
            enforce_deadlines: false,
            alternatives: 0,
            context: flywheel_core::RequestContext::from_event_context(&event.context),
        };
        let content = state.catalog.content_index();
        let served: Vec<Candidate> =
            retrieve_candidates(&state, set.row_models(), Some(&content), &config, &request)
                .into_iter()
                .take(config.training.ranker_rows_per_anchor)
                .filter(|c| state.catalog.item(&c.item_id).is_some())
                .collect();
        assert_eq!(
            served.iter().map(candidate_key).collect::<Vec<_>>(),
            rows.iter()
                .map(|r| candidate_key(&r.candidate))
                .collect::<Vec<_>>(),
            "candidates of the rows at offset {offset} ({} at {now})",
            event.user_id
        );
        let mut ahead = state.clone();
        ahead.apply(&records[offset as usize]);
        for row in rows {
            let featurized = |state: &State| {
                let item = state.catalog.item(&row.candidate.item_id).unwrap();
                featurize(&RankingInput {
                    user: &state.features.user_features(&row.user_id, now),
                    item,
                    item_features: &state.features.item_features(&row.candidate.item_id, now),
                    candidate: &row.candidate,
                    now,
                    context: &request.context,
                })
            };
            let expected = featurized(&state);
            assert_eq!(
                bits(&row.features),
                bits(&expected),
                "features of the {}:\nrow      {:?}\nreplayed {:?}",
                describe(row),
                row.features,
                expected
            );
            // Negative control: the row's own engagement, applied, must show.
            control_differs |= bits(&featurized(&ahead)) != bits(&row.features);
            rows_checked += 1;
        }
    }
    assert!(rows_checked >= 1000, "only {rows_checked} rows checked");
    assert!(
        control_differs,
        "applying the row's own engagement changed no feature: the check cannot fail"
    );
}
