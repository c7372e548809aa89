//! End-to-end tests of the engine over a simulated shop: the serving/training
//! feature parity the spec requires, point-in-time training, restart, hot reload,
//! fallbacks, import errors, and the canary (`integration/canary.rs`).
//!
//! Fixtures come from `flywheel_sim::SimConfig::small()` (seed 42), so every run
//! sees the same shop.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use flywheel_core::{Channel, Event, Impression, Item, ItemId, LogRecord, Timestamp, User, UserId};
use flywheel_engine::{feature_config, Engine, EngineConfig, State};
use flywheel_import::{read_file, ImportError, ImportKind};
use flywheel_offline::evaluation::GateMethod;
use flywheel_offline::training::{self, impression_features};
use flywheel_offline::OfflineError;
use flywheel_registry as models;
use flywheel_registry::RegistryError;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Live monitoring on the simulated shop: drift, O/E, unknown ids, no reference.
#[path = "integration/monitoring.rs"]
mod monitoring;

/// The small simulated shop, written once per test binary.
struct Shop {
    _dir: tempfile::TempDir,
    files: flywheel_sim::DatasetFiles,
    /// items, then users, then events, as the import reads them.
    records: Vec<LogRecord>,
}

fn shop() -> &'static Shop {
    static SHOP: OnceLock<Shop> = OnceLock::new();
    SHOP.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let sim = flywheel_sim::simulate(&flywheel_sim::SimConfig::small()).unwrap();
        let files = flywheel_sim::write_dataset(&sim, dir.path()).unwrap();
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
        Shop {
            _dir: dir,
            files,
            records,
        }
    })
}

/// A test configuration: no fsync (throwaway data), and deadlines far beyond any
/// machine's speed so a slow debug build never changes what is served.
fn config(dir: &Path) -> EngineConfig {
    let mut config = EngineConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    config.log.fsync = false;
    config.deadlines.retrieval_ms = 600_000;
    config.deadlines.ranking_ms = 600_000;
    config
}

fn open_with_shop(dir: &Path) -> Engine {
    let engine = Engine::open(config(dir)).unwrap();
    let shop = shop();
    for (path, kind) in [
        (&shop.files.items, ImportKind::Items),
        (&shop.files.users, ImportKind::Users),
        (&shop.files.events, ImportKind::Events),
    ] {
        read_file(path, kind, engine.actions(), &mut |batch| {
            engine
                .append_records(&batch)
                .map(|_| ())
                .map_err(|e| ImportError::Sink(Box::new(e)))
        })
        .unwrap();
    }
    engine.catch_up();
    engine
}

/// Users of the shop with the most events, most active first (ties by id).
fn active_users(count: usize) -> Vec<UserId> {
    let mut per_user = std::collections::HashMap::<UserId, usize>::new();
    for record in &shop().records {
        if let LogRecord::Event(event) = record {
            *per_user.entry(event.user_id.clone()).or_default() += 1;
        }
    }
    let mut users: Vec<_> = per_user.into_iter().collect();
    users.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    users.into_iter().take(count).map(|(u, _)| u).collect()
}

/// Polls the log until it holds `end` records. Impressions are written by a
/// background thread, so there is no call to block on; the bound only keeps a
/// broken writer from hanging the test.
fn wait_for_log(engine: &Engine, end: u64) {
    let started = Instant::now();
    while engine.log_end_offset() < end {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the log holds {} records; {end} expected after the impressions",
            engine.log_end_offset()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn all_records(engine: &Engine) -> Vec<LogRecord> {
    let mut records = Vec::new();
    engine
        .replay(&mut |offset, record| {
            assert_eq!(offset, records.len() as u64, "offsets are dense");
            records.push(record.clone());
            Ok(())
        })
        .unwrap();
    records
}

fn bits(features: &[f32]) -> Vec<u32> {
    features.iter().map(|f| f.to_bits()).collect()
}

/// The spec's parity check: the features logged with every served slot equal the
/// features recomputed offline from the log prefix before `features_offset`,
/// bit for bit.
#[test]
fn served_features_equal_features_replayed_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    engine.train(false, &mut |_| {}).unwrap();
    assert_eq!(engine.models().version(), "v1");
    let users = active_users(6);
    let unknown = [UserId::new_unchecked("never-seen-user")];
    let mut served = 0u64;
    let start = engine.log_end_offset();

    // Round 1: several users, no wait in between (several share a features_offset).
    for user in users.iter().chain(&unknown) {
        engine.recommend(user.clone(), 10, None);
        served += 1;
    }
    wait_for_log(&engine, start + served);
    engine.catch_up();
    // New events in between, so round 2 sees different state and later offsets.
    let item = match &shop().records[0] {
        LogRecord::ItemUpsert(item) => item.id.clone(),
        other => panic!("the shop starts with items, got {}", other.kind()),
    };
    let clicks: Vec<Event> = users
        .iter()
        .map(|u| {
            Event::from_json(
                &serde_json::json!({"user_id": u.as_str(), "item_id": item.as_str(), "action": "click"}),
                engine.actions(),
                Timestamp::now(),
            )
            .unwrap()
        })
        .collect();
    engine.ingest(clicks).unwrap();
    engine.catch_up();
    // Round 2: one at a time, each after the previous impression was applied.
    for user in users.iter().take(3) {
        let end = engine.log_end_offset();
        engine.recommend(user.clone(), 20, None);
        wait_for_log(&engine, end + 1);
        engine.catch_up();
        served += 1;
    }
    let category = engine
        .get_item(&item)
        .map(|i| i.top_category().to_string())
        .unwrap();
    let end = engine.log_end_offset();
    engine.recommend(users[0].clone(), 5, Some(category));
    served += 1;
    wait_for_log(&engine, end + 1);
    // A list longer than retrieval can fill (the shop has 150 items): the tail is
    // topped up with popular items, whose logged features must replay too.
    let end = engine.log_end_offset();
    let long = engine.recommend(users[1].clone(), 150, None);
    served += 1;
    let top_ups: usize = long
        .recommendation
        .fallback_reasons
        .iter()
        .find_map(|r| r.strip_suffix(" slots filled with popular items"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        top_ups > 0,
        "the long list was not topped up: {:?}",
        long.recommendation.fallback_reasons
    );
    let top_up_request = long.request_id.clone();
    wait_for_log(&engine, end + 1);
    // A request with its context (device, page, hour): logged, and replayed alike.
    let end = engine.log_end_offset();
    let context =
        flywheel_core::RequestContext::new(Some("mobile"), Some("cart"), Some(21)).unwrap();
    let with_context = engine
        .serve(&flywheel_engine::ServeRequest {
            user_id: users[2].clone(),
            count: 10,
            category: None,
            now: None,
            forced: Vec::new(),
            context: context.clone(),
        })
        .unwrap();
    served += 1;
    wait_for_log(&engine, end + 1);

    let records = all_records(&engine);
    let impressions: Vec<&Impression> = records[start as usize..]
        .iter()
        .filter_map(|r| match r {
            LogRecord::Impression(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(
        impressions.len() as u64,
        served,
        "every served list is logged once"
    );
    let logged = impressions
        .iter()
        .find(|i| i.request_id == with_context.request_id)
        .unwrap();
    assert_eq!(logged.context, context, "the request's context is logged");
    let mobile = flywheel_ranking::FEATURE_NAMES
        .iter()
        .position(|n| *n == "context_device_mobile")
        .unwrap();
    assert!(logged.slots.iter().all(|s| s.features[mobile] == 1.0));

    // Walk the log once; at each offset, check the impressions computed there.
    let mut by_offset: Vec<&Impression> = impressions.clone();
    by_offset.sort_by_key(|i| i.features_offset);
    let mut state = State::new(feature_config(engine.config()));
    let mut slots_checked = 0;
    let mut control_differs = false;
    let mut later_time_differs = false;
    let mut distinct_offsets = BTreeSet::new();
    let mut top_up_slots_checked = 0;
    for impression in by_offset {
        let offset = impression
            .features_offset
            .expect("the engine logs features_offset");
        distinct_offsets.insert(offset);
        assert!(offset as usize <= records.len());
        while state.applied < offset {
            state.apply(&records[state.applied as usize]);
        }
        assert!(!impression.slots.is_empty(), "a served list is never empty");
        let recomputed = impression_features(&state, impression);
        assert_eq!(recomputed.len(), impression.slots.len());
        let top_up_from = if impression.request_id == top_up_request {
            impression.slots.len() - top_ups
        } else {
            usize::MAX
        };
        for (index, (slot, features)) in impression.slots.iter().zip(&recomputed).enumerate() {
            assert!(
                !slot.features.is_empty(),
                "slot {} at position {} logged no features{}",
                slot.item_id,
                slot.position,
                if index >= top_up_from {
                    " (a top-up slot)"
                } else {
                    ""
                }
            );
            if index >= top_up_from {
                assert_eq!(slot.channel, Channel::Popularity, "top-up slots come last");
                top_up_slots_checked += 1;
            }
            assert_eq!(
                bits(&slot.features),
                bits(features),
                "features of {} at position {} for {} (offset {offset}) differ:\nserved   {:?}\nreplayed {:?}",
                slot.item_id,
                slot.position,
                impression.user_id,
                slot.features,
                features
            );
            slots_checked += 1;
        }
        // Negative controls: one record too many, or a later clock, must show.
        let mut ahead = state.clone();
        ahead.apply(&records[offset as usize]);
        control_differs |= impression_features(&ahead, impression)
            .iter()
            .zip(&impression.slots)
            .any(|(f, slot)| bits(f) != bits(&slot.features));
        let mut later = impression.clone();
        later.timestamp = impression.timestamp.plus_millis(6 * 3_600_000);
        later_time_differs |= impression_features(&state, &later)
            .iter()
            .zip(&impression.slots)
            .any(|(f, slot)| bits(f) != bits(&slot.features));
    }
    assert!(slots_checked >= 50, "only {slots_checked} slots checked");
    assert_eq!(
        top_up_slots_checked, top_ups,
        "every top-up slot was checked"
    );
    assert!(distinct_offsets.len() >= 4, "offsets {distinct_offsets:?}");
    assert!(
        control_differs,
        "applying one more record changed no feature: the check cannot fail"
    );
    assert!(
        later_time_differs,
        "a later timestamp changed no feature: the check cannot fail"
    );
}

/// Training replays the log point-in-time and produces every model on the small shop,
/// with and without logged impressions.
#[test]
fn training_on_a_replay_produces_every_model() {
    let shop = shop();
    let config = config(Path::new("unused"));
    let records = &shop.records;
    let replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> flywheel_offline::Result<()>| {
        for (offset, record) in records.iter().enumerate() {
            visit(offset as u64, record)?;
        }
        Ok(())
    };
    let mut stages = Vec::new();
    let (set, report) = training::train(&config, &replay, "v7".into(), &mut |s| {
        stages.push(s.to_string())
    })
    .unwrap();
    assert!(set.als().is_some() && set.retrieval_for(flywheel_core::Channel::Ease).is_some());
    assert_eq!(set.version(), "v7");
    assert_eq!(report.log_records, records.len() as u64);
    assert!(report.interactions > 0 && report.users > 0 && report.items > 0);
    assert_eq!(report.impression_rows, 0, "the import holds no impressions");
    assert!(report.interaction_rows > 0);
    assert!(report.positive_rate > 0.0 && report.positive_rate < 1.0);
    let cuts = report.cuts;
    assert!(
        cuts.fusion_cut < cuts.row_cut && cuts.row_cut < cuts.gate_cut,
        "{cuts:?}"
    );
    assert!(
        report.open_label_rows > 0,
        "the latest rows' windows are still open"
    );
    let gate = report.ranker_gate.as_ref().expect("the ranker gate ran");
    assert_eq!(gate.cut, cuts.gate_cut);
    assert!(gate.fit_rows > 0 && (gate.fit_rows as u64) < report.interaction_rows);
    assert!(gate.users > 0);
    assert!(gate.ranker_ndcg_at_10.is_finite() && gate.retrieval_ndcg_at_10.is_finite());
    assert_eq!(set.ranker.is_some(), gate.accepted);
    assert!(!stages.is_empty());

    // The simulator's logged impressions interleaved by time: each slot becomes a row.
    let sim = flywheel_sim::simulate(&flywheel_sim::SimConfig::small()).unwrap();
    let catalog: Vec<LogRecord> = records
        .iter()
        .filter(|r| !matches!(r, LogRecord::Event(_)))
        .cloned()
        .collect();
    let mut timed: Vec<(Timestamp, u8, LogRecord)> = Vec::new();
    timed.extend(
        sim.impressions
            .iter()
            .map(|i| (i.timestamp, 0, LogRecord::Impression(i.clone()))),
    );
    timed.extend(
        sim.events
            .iter()
            .map(|e| (e.timestamp, 1, LogRecord::Event(e.clone()))),
    );
    timed.sort_by_key(|(t, order, _)| (*t, *order));
    let with_impressions: Vec<LogRecord> = catalog
        .into_iter()
        .chain(timed.into_iter().map(|t| t.2))
        .collect();
    let replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> flywheel_offline::Result<()>| {
        for (offset, record) in with_impressions.iter().enumerate() {
            visit(offset as u64, record)?;
        }
        Ok(())
    };
    let (set, report) = training::train(&config, &replay, "v8".into(), &mut |_| {}).unwrap();
    let slots: usize = sim.impressions.iter().map(|i| i.slots.len()).sum();
    assert!(set.als().is_some() && set.retrieval_for(flywheel_core::Channel::Ease).is_some());
    assert!(report.impression_rows > 0 && report.impression_rows <= slots as u64);
    assert!(report.ranker_gate.is_some());

    // No events: a clear error rather than empty models.
    let catalog_only: Vec<LogRecord> = records
        .iter()
        .filter(|r| !matches!(r, LogRecord::Event(_)))
        .cloned()
        .collect();
    let replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> flywheel_offline::Result<()>| {
        for (offset, record) in catalog_only.iter().enumerate() {
            visit(offset as u64, record)?;
        }
        Ok(())
    };
    let error = training::train(&config, &replay, "v9".into(), &mut |_| {}).unwrap_err();
    assert!(matches!(error, OfflineError::NotEnoughData(_)), "{error}");
}

/// Everything the state holds comes back after a restart, from the durable log.
#[test]
fn restart_restores_catalog_and_features() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.log.fsync = true;
    let user = active_users(1).remove(0);
    let at = Timestamp::now();
    let (item_ids, before_items, before_user, before_user_features, before_item_features, end);
    {
        let engine = Engine::open(config.clone()).unwrap();
        engine.append_records(&shop().records).unwrap();
        let mut extra = Item::new(ItemId::new_unchecked("added-by-put"), "garden/tools");
        extra.price = Some(12.5);
        engine.put_item(extra).unwrap();
        let mut opted = User::new(UserId::new_unchecked("private-user"));
        opted.opted_out = true;
        engine.put_user(opted).unwrap();
        engine.catch_up();
        let state = engine.state();
        item_ids = state
            .catalog
            .items()
            .map(|i| i.id.clone())
            .collect::<BTreeSet<_>>();
        before_items = item_ids
            .iter()
            .map(|id| engine_item(&state, id))
            .collect::<Vec<_>>();
        before_user = state.catalog.user(&user).cloned();
        before_user_features = state.features.user_features(&user, at);
        before_item_features = item_ids
            .iter()
            .map(|id| state.features.item_features(id, at))
            .collect::<Vec<_>>();
        end = engine.log_end_offset();
        drop(state);
        engine.shutdown();
    }
    let engine = Engine::open(config).unwrap();
    assert_eq!(engine.log_end_offset(), end);
    engine.catch_up();
    assert_eq!(engine.applied(), end);
    // `catch_up` returns when `applied` is published, which the consumer does just
    // before it raises the ready flag (engine.rs `publish_applied`), so readiness
    // may trail by an instant: poll for it.
    let started = Instant::now();
    while !engine.is_ready() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "caught up but never ready"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let state = engine.state();
    assert_eq!(state.catalog.item_count(), item_ids.len());
    let after_items: Vec<_> = item_ids.iter().map(|id| engine_item(&state, id)).collect();
    assert_eq!(after_items, before_items);
    assert!(before_user.is_some());
    assert_eq!(state.catalog.user(&user).cloned(), before_user);
    assert!(before_user_features.event_count > 0);
    assert_eq!(
        state.features.user_features(&user, at),
        before_user_features
    );
    let after_item_features: Vec<_> = item_ids
        .iter()
        .map(|id| state.features.item_features(id, at))
        .collect();
    assert_eq!(after_item_features, before_item_features);
    drop(state);
    let added = engine
        .get_item(&ItemId::new_unchecked("added-by-put"))
        .unwrap();
    assert_eq!(added.price, Some(12.5));
    assert!(
        engine
            .get_user(&UserId::new_unchecked("private-user"))
            .unwrap()
            .opted_out
    );
}

fn engine_item(state: &State, id: &ItemId) -> Item {
    Item::clone(state.catalog.item(id).unwrap())
}

/// Promoting a version rewrites `CURRENT`; the running engine swaps to it.
#[test]
fn promoting_a_version_hot_swaps_the_served_models() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    assert_eq!(engine.models().version(), "none");
    assert!(!engine.reload_models().unwrap(), "nothing to load yet");
    let first = engine.train(false, &mut |_| {}).unwrap();
    assert_eq!(first.version, "v1");
    assert_eq!(engine.models().version(), "v1");
    // Nothing new since v1: the gate cannot compare, so only --force promotes.
    let error = engine.train(false, &mut |_| {}).unwrap_err();
    assert!(error.to_string().contains("no events after"), "{error}");
    let second = engine.train(true, &mut |_| {}).unwrap();
    assert_eq!(second.version, "v2");
    assert!(second.promoted && second.forced, "{}", second.reason);
    assert_eq!(engine.models().version(), "v2");
    assert_eq!(
        models::current_version(dir.path()).unwrap().as_deref(),
        Some("v2")
    );
    let listed: Vec<String> = models::list(dir.path())
        .unwrap()
        .into_iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(listed, ["v1", "v2"]);

    // Roll back by rewriting CURRENT, as another process would.
    models::promote(dir.path(), "v1").unwrap();
    // The watcher may swap first; either way the engine must now serve v1.
    engine.reload_models().unwrap();
    assert_eq!(engine.models().version(), "v1");
    assert!(!engine.reload_models().unwrap(), "already serving v1");
    let served = engine.recommend(active_users(1).remove(0), 5, None);
    assert_eq!(served.model_version, "v1");
    assert!(engine.models().als().is_some());

    let error = models::promote(dir.path(), "v99").unwrap_err();
    assert!(matches!(error, RegistryError::NotFound(_)), "{error}");
    assert_eq!(engine.models().version(), "v1");

    // A reopened engine serves CURRENT.
    drop(engine);
    let engine = Engine::open(config(dir.path())).unwrap();
    assert_eq!(engine.models().version(), "v1");
}

/// Without models, or for users the engine knows nothing about, lists are still
/// full; an opted-out user's list is not personalised.
#[test]
fn fallbacks_fill_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    // Wait for the content index so the untrained list uses every channel it can.
    let started = Instant::now();
    while engine.content_index().is_none() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let user = active_users(1).remove(0);
    let served = engine.recommend(user.clone(), 10, None);
    let list = &served.recommendation;
    assert_eq!(served.model_version, "none");
    assert_eq!(list.items.len(), 10);
    assert!(list.fallback);
    let reasons = list.fallback_reasons.join("; ");
    assert!(reasons.contains("ranker"), "{reasons}");
    assert!(
        reasons.contains("ease") && reasons.contains("als"),
        "{reasons}"
    );
    assert_positions(&list.items);
    let personal = list
        .items
        .iter()
        .any(|i| matches!(i.channel, Channel::CoVisitation | Channel::Content));
    assert!(personal, "a known user's list uses history-driven channels");

    let unknown = engine.recommend(UserId::new_unchecked("a-stranger"), 10, None);
    assert_eq!(unknown.recommendation.items.len(), 10);
    assert_positions(&unknown.recommendation.items);

    // The same user, opted out: no history-driven channel may contribute.
    let mut record = User::clone(&engine.get_user(&user).unwrap());
    record.opted_out = true;
    engine.put_user(record).unwrap();
    let opted = engine.recommend(user.clone(), 10, None);
    assert_eq!(opted.recommendation.items.len(), 10);
    for item in &opted.recommendation.items {
        assert!(
            matches!(item.channel, Channel::Trending | Channel::Popularity),
            "opted-out user got {} from {:?}",
            item.item_id,
            item.channel
        );
        assert!(item.source_item.is_none());
    }

    // Trained models take the fallback flag off for a known user.
    engine.train(false, &mut |_| {}).unwrap();
    let trained = engine.recommend(active_users(2).remove(1), 10, None);
    assert_eq!(trained.recommendation.items.len(), 10);
    assert_eq!(trained.model_version, "v1");
    assert!(
        trained
            .recommendation
            .fallback_reasons
            .iter()
            .all(|r| !r.contains("ease") && !r.contains("als")),
        "{:?}",
        trained.recommendation.fallback_reasons
    );
    // Whether or not the gate kept the ranker, a trained model set does not fall back.
    assert!(
        !trained.recommendation.fallback,
        "{:?}",
        trained.recommendation.fallback_reasons
    );
}

fn assert_positions(items: &[flywheel_pipeline::RecItem]) {
    let ids: BTreeSet<_> = items.iter().map(|i| &i.item_id).collect();
    assert_eq!(ids.len(), items.len(), "no item twice");
    for (index, item) in items.iter().enumerate() {
        assert_eq!(item.position as usize, index);
        assert!(item.score.is_finite());
        assert!(!item.explanation.text.is_empty());
    }
}

/// A bad line stops the import with the file, the line and the field, and nothing
/// of the file reaches the sink.
#[test]
fn bad_import_lines_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let actions = flywheel_core::ActionSet::default();
    let cases = [
        (
            "items.jsonl",
            ImportKind::Items,
            "{\"id\":\"a\",\"category\":\"books\"}\n{\"id\":\"b\",\"category\":\"books\"}\n\n{\"id\":\"c\",\"price\":\"cheap\"}\n",
            4,
            "price",
        ),
        (
            "events.jsonl",
            ImportKind::Events,
            "{\"user_id\":\"u\",\"item_id\":\"i\",\"action\":\"view\"}\n{\"user_id\":\"u\",\"item_id\":\"i\",\"action\":\"teleport\"}\n",
            2,
            "action",
        ),
        (
            "users.jsonl",
            ImportKind::Users,
            "{\"id\":\"u1\"}\n{\"id\":\"u2\",\"favourite\":1}\n",
            2,
            "favourite",
        ),
        (
            "broken.jsonl",
            ImportKind::Events,
            "{\"user_id\":\"u\",\"item_id\":\"i\",\"action\":\"view\"}\n{\"user_id\": \n",
            2,
            "JSON",
        ),
    ];
    for (name, kind, text, line, field) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut sunk = 0;
        let error = read_file(&path, kind, &actions, &mut |batch| {
            sunk += batch.len();
            Ok(())
        })
        .unwrap_err();
        let message = error.to_string();
        match &error {
            ImportError::BadFile {
                path: p, line: l, ..
            } => {
                assert_eq!(p, &path);
                assert_eq!(*l, line, "{message}");
            }
            other => panic!("expected BadFile, got {other:?}"),
        }
        assert!(message.contains(&format!("{name}:{line}")), "{message}");
        assert!(message.contains(field), "{message}");
        assert!(error.is_user_error());
        assert_eq!(sunk, 0, "{name}: records before the bad line were imported");
    }
}

/// A configuration that leaves only the trending channel: valid, and worse.
fn trending_only(dir: &Path) -> EngineConfig {
    let mut config = config(dir);
    for (channel, share) in config.retrieval.quotas.iter_mut() {
        *share = if channel == "trending" { 1.0 } else { 0.0 };
    }
    config
}

fn serving_version(dir: &Path) -> Option<String> {
    models::current_version(dir).unwrap()
}

/// The promotion gate must say no to a worse configuration (both retrained on the
/// same split), keep the old version serving, and record the rejection.
#[test]
fn the_gate_rejects_a_worse_candidate_and_keeps_the_old_version_serving() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    let first = engine.train(false, &mut |_| {}).unwrap();
    assert!(first.promoted && !first.forced, "{}", first.reason);
    drop(engine);

    let engine = Engine::open(trending_only(dir.path())).unwrap();
    engine.catch_up();
    let worse = engine.train(false, &mut |_| {}).unwrap();
    assert!(!worse.promoted, "{}", worse.reason);
    let comparison = worse.comparison.as_ref().expect("compared");
    assert_eq!(comparison.method, GateMethod::Retrained);
    assert!(
        comparison.ci_high < -engine.config().gate.margin,
        "the CI lies wholly below -margin: {comparison:?}"
    );
    assert!(comparison.candidate.ndcg_at_10 < comparison.serving.ndcg_at_10);
    assert_eq!(serving_version(dir.path()), Some(first.version.clone()));
    assert_eq!(engine.models().version(), first.version);
    let listed = models::list(dir.path()).unwrap();
    let rejected = listed.iter().find(|v| v.version == worse.version).unwrap();
    assert_eq!(rejected.status, models::Status::Rejected);
    let gate = rejected.gate.as_ref().unwrap();
    assert!(!gate.promoted && gate.ci_high.unwrap() < 0.0, "{gate:?}");
    assert!(rejected.metrics.contains_key("ndcg@10"));
    assert!(
        rejected.manifest.config.is_some(),
        "the full config is stored"
    );

    // --force promotes it anyway, and says so.
    let forced = engine.train(true, &mut |_| {}).unwrap();
    assert!(forced.promoted && forced.forced, "{}", forced.reason);
    assert!(forced.reason.contains("FORCED"), "{}", forced.reason);
    assert_eq!(engine.models().version(), forced.version);
}

/// The gate must say yes to a better configuration, under superiority too.
#[test]
fn the_gate_accepts_a_better_candidate_even_under_superiority() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    drop(engine);
    let engine = Engine::open(trending_only(dir.path())).unwrap();
    engine.catch_up();
    let weak = engine.train(false, &mut |_| {}).unwrap();
    assert!(weak.promoted, "the first version serves: {}", weak.reason);
    drop(engine);

    let mut better = config(dir.path());
    better.gate.rule = flywheel_pipeline::GateRuleKind::Superiority;
    let engine = Engine::open(better).unwrap();
    engine.catch_up();
    let outcome = engine.train(false, &mut |_| {}).unwrap();
    let comparison = outcome.comparison.as_ref().expect("compared");
    assert!(outcome.promoted, "{}", outcome.reason);
    assert!(comparison.ci_low > 0.0, "{comparison:?}");
    assert_eq!(serving_version(dir.path()), Some(outcome.version.clone()));
    assert_eq!(engine.models().version(), outcome.version);
}

/// An undecodable record in the middle of a batch longer than the consumer's chunk is
/// skipped once, and every other record is applied exactly once (the consumer used to
/// retry from the chunk's start for ever, re-applying what came before it).
#[test]
fn an_undecodable_record_is_skipped_and_nothing_is_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    let events = 1500usize;
    let mut payloads: Vec<Vec<u8>> = (0..events)
        .map(|i| {
            let event = Event {
                user_id: UserId::new_unchecked(format!("u{}", i % 7)),
                item_id: ItemId::new_unchecked(format!("i{}", i % 11)),
                action: flywheel_core::Action::View,
                value: None,
                timestamp: Timestamp::from_secs(1_700_000_000 + i as i64),
                request_id: None,
                position: None,
                context: Default::default(),
            };
            LogRecord::Event(event).encode().unwrap()
        })
        .collect();
    // After the first chunk of 512: a record written by something that is not flywheel.
    payloads.insert(700, b"{\"type\":\"event\",\"user_id\":null}".to_vec());
    let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    engine.log().append_batch(0, &slices).unwrap();
    engine.catch_up();
    let state = engine.state();
    assert_eq!(
        state.applied,
        events as u64 + 1,
        "the skipped record counts as passed"
    );
    assert_eq!(
        state.features.events_applied(),
        events as u64,
        "each decodable event applied exactly once"
    );
    drop(state);
    let skipped = engine.skipped_records();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].offset, 700);
    // The offline replay skips exactly the records the consumer skips.
    let mut replayed = 0u64;
    engine
        .replay(&mut |offset, _| {
            assert_ne!(offset, 700);
            replayed += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(replayed, events as u64);
}

/// An exploring variant's impressions carry, for every slot, the probability the policy
/// had of putting that item there: over many requests with the same deterministic list
/// (new users, no models, no events in between), each (slot, item)'s frequency matches
/// its logged propensity, and every logged propensity of a pair is the same.
#[test]
fn exploration_logs_the_policy_probability_of_every_slot() {
    use flywheel_core::PropensityKind;
    use flywheel_engine::ServeRequest;
    use std::collections::HashMap;

    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    let definition = flywheel_core::ExperimentDef::from_json(&serde_json::json!({
        "id": "explore", "kind": "ab", "variants": [
            {"name": "a", "share": 0.5, "exploration": {"epsilon": 0.3}},
            {"name": "b", "share": 0.5, "exploration": {"epsilon": 0.3}}]}))
    .unwrap();
    engine.create_experiment(definition, Timestamp(0)).unwrap();
    let now = Some(Timestamp(1_900_000_000_000));
    let requests = 4000;
    let mut seen: HashMap<(u32, ItemId), (u64, f64, PropensityKind)> = HashMap::new();
    for i in 0..requests {
        let served = engine
            .serve(&ServeRequest {
                user_id: UserId::new_unchecked(format!("newcomer-{i}")),
                count: 5,
                category: None,
                now,
                forced: Vec::new(),
                context: Default::default(),
            })
            .unwrap();
        assert_eq!(served.experiments.len(), 1);
        for (item, slot) in served.recommendation.items.iter().zip(&served.slots) {
            let entry = seen
                .entry((item.position, item.item_id.clone()))
                .or_insert((0, slot.propensity, slot.propensity_kind));
            entry.0 += 1;
            assert_eq!(entry.1, slot.propensity, "one propensity per (slot, item)");
            assert_eq!(entry.2, slot.propensity_kind);
        }
    }
    let mut per_slot = [0.0f64; 5];
    for ((position, item), (count, propensity, kind)) in &seen {
        assert_eq!(*kind, PropensityKind::Exact, "{item} at {position}");
        assert!(*propensity < 1.0);
        per_slot[*position as usize] += propensity;
        let n = f64::from(requests);
        let frequency = *count as f64 / n;
        let se = (propensity * (1.0 - propensity) / n).sqrt();
        assert!(
            (frequency - propensity).abs() < 4.0 * se + 1e-9,
            "{item} at slot {position}: shown {frequency:.4}, logged propensity {propensity:.4}"
        );
    }
    for (position, total) in per_slot.iter().enumerate() {
        // A slot's items exhaust its probability (each pool item is drawn with
        // probability ε/M ≈ 1.5% per request, so all of them appear in 4000 requests).
        assert!((total - 1.0).abs() < 1e-9, "slot {position}: {total}");
    }
    // Every request's impression reaches the log with its propensities.
    let logged_propensities = |engine: &Engine| {
        all_records(engine)
            .into_iter()
            .filter_map(|r| match r {
                LogRecord::Impression(i) if !i.experiments.is_empty() => Some(i),
                _ => None,
            })
            .flat_map(|i| i.slots)
            .filter(|s| s.propensity_kind == PropensityKind::Exact && s.propensity < 1.0)
            .count()
    };
    let started = Instant::now();
    while logged_propensities(&engine) < 5 * requests as usize {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "impressions missing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[path = "integration/canary.rs"]
mod canary;

/// The bot rules: the same drops in the features and in training, reported.
#[path = "integration/bots.rs"]
mod bots;

/// Erasure: the byte scan of the data directory, a restart, a resumed erasure.
#[path = "integration/erasure.rs"]
mod erasure;

/// Snapshots: snapshot + tail equals a full replay; damaged ones are refused.
#[path = "integration/snapshots.rs"]
mod snapshots;
