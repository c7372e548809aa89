//! Seeded synthetic event streams checked against from-scratch oracles: every
//! incremental feature equals a recomputation over the event list, replay "as of" t
//! equals what the live store held just before t, and checkpoints round-trip.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flywheel_core::{
    Action, Channel, Event, Impression, ImpressionSlot, Item, ItemId, LogRecord, RequestId,
    Timestamp, UserId,
};
use flywheel_features::{replay_as_of, FeatureConfig, FeatureStore, HALF_LIVES_MS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ITEMS: usize = 80;
const USERS: usize = 30;
const START: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

fn item_id(i: usize) -> ItemId {
    ItemId::new_unchecked(format!("item-{i:03}"))
}

fn category_of(i: usize) -> String {
    format!("cat{}/sub{}", i % 5, i % 3)
}

fn random_action(rng: &mut StdRng) -> Action {
    match rng.gen_range(0..100) {
        0..=59 => Action::View,
        60..=79 => Action::Click,
        80..=84 => Action::AddToCart,
        85..=89 => Action::Purchase,
        90..=93 => Action::Like,
        94..=96 => Action::Dislike,
        _ => Action::Custom("share".into()),
    }
}

/// A skewed item draw: low indices are popular.
fn random_item(rng: &mut StdRng) -> usize {
    let u: f64 = rng.gen();
    ((u * u) * ITEMS as f64) as usize % ITEMS
}

fn event(user: usize, item: usize, action: Action, at: i64) -> Event {
    Event {
        user_id: UserId::new_unchecked(format!("user-{user}")),
        item_id: item_id(item),
        action,
        value: None,
        timestamp: Timestamp(at),
        request_id: None,
        position: None,
        context: BTreeMap::new(),
    }
}

fn impression(rng: &mut StdRng, serial: usize, at: i64) -> Impression {
    let slots = (0..5)
        .map(|position| ImpressionSlot {
            item_id: item_id(random_item(rng)),
            position,
            score: 1.0,
            propensity: 0.5,
            propensity_kind: Default::default(),
            team: None,
            channel: Channel::Popularity,
            channel_rank: position,
            channel_score: 1.0,
            source_item: None,
            features: Vec::new(),
        })
        .collect();
    Impression {
        context: Default::default(),
        request_id: RequestId::new_unchecked(format!("req-{serial}")),
        user_id: UserId::new_unchecked(format!("user-{}", rng.gen_range(0..USERS))),
        timestamp: Timestamp(at),
        experiments: Vec::new(),
        forced: false,
        category: None,
        count: None,
        model_version: "v1".into(),
        fallback: false,
        features_offset: None,
        latency_ms: None,
        slots,
    }
}

/// Item upserts for the catalog, then `n` events and impressions with strictly
/// increasing times: gaps of 1 s..3 min, and now and then a 1..3 h pause (new session).
fn stream(seed: u64, n: usize) -> Vec<LogRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut records: Vec<LogRecord> = (0..ITEMS)
        .map(|i| LogRecord::ItemUpsert(Item::new(item_id(i), category_of(i))))
        .collect();
    let mut at = START;
    for serial in 0..n {
        at += if rng.gen_bool(0.05) {
            rng.gen_range(60 * MINUTE..180 * MINUTE)
        } else {
            rng.gen_range(1_000..3 * MINUTE)
        };
        if rng.gen_bool(0.1) {
            records.push(LogRecord::Impression(impression(&mut rng, serial, at)));
        } else {
            let user = rng.gen_range(0..USERS);
            let action = random_action(&mut rng);
            records.push(LogRecord::Event(event(
                user,
                random_item(&mut rng),
                action,
                at,
            )));
        }
    }
    records
}

fn events_of(records: &[LogRecord]) -> Vec<&Event> {
    records
        .iter()
        .filter_map(|r| match r {
            LogRecord::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn impressions_of(records: &[LogRecord]) -> Vec<&Impression> {
    records
        .iter()
        .filter_map(|r| match r {
            LogRecord::Impression(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn live(records: &[LogRecord], config: &FeatureConfig) -> FeatureStore {
    let mut store = FeatureStore::new(config.clone());
    for record in records {
        store.apply_record(record);
    }
    store
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-9 * expected.abs().max(1e-12);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: incremental {actual} vs recomputed {expected}"
    );
}

/// The exact definition: Σ w · 2^(−(now − t)/half_life) over contributions.
fn decayed(contributions: impl Iterator<Item = (i64, f64)> + Clone, now: i64) -> [f64; 3] {
    [0, 1, 2].map(|h| {
        contributions
            .clone()
            .map(|(t, w)| w * 0.5f64.powf((now - t) as f64 / HALF_LIVES_MS[h] as f64))
            .sum()
    })
}

fn action_counter<'a>(
    events: &'a [&Event],
    item: &'a ItemId,
    action: Action,
) -> impl Iterator<Item = (i64, f64)> + Clone + 'a {
    events
        .iter()
        .filter(move |e| &e.item_id == item && e.action == action)
        .map(|e| (e.timestamp.0, 1.0))
}

/// Moves a fifth of the events up to two hours back in time, keeping arrival order.
fn make_late(records: &mut [LogRecord], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for record in records.iter_mut() {
        if let LogRecord::Event(e) = record {
            if rng.gen_bool(0.2) {
                e.timestamp = Timestamp(e.timestamp.0 - rng.gen_range(0..120 * MINUTE));
            }
        }
    }
}

#[test]
fn item_counters_equal_a_recomputation_even_with_late_events() {
    let config = FeatureConfig::default();
    let mut records = stream(7, 3_000);
    make_late(&mut records, 8);
    let store = live(&records, &config);
    let events = events_of(&records);
    let impressions = impressions_of(&records);
    let now = events.iter().map(|e| e.timestamp.0).max().expect("events") + 30 * MINUTE;
    for i in 0..ITEMS {
        let id = item_id(i);
        let f = store.item_features(&id, Timestamp(now));
        let views = decayed(action_counter(&events, &id, Action::View), now);
        let clicks = decayed(action_counter(&events, &id, Action::Click), now);
        let purchases = decayed(action_counter(&events, &id, Action::Purchase), now);
        for h in 0..3 {
            assert_close(f.views[h], views[h], &format!("{id} views[{h}]"));
            assert_close(f.clicks[h], clicks[h], &format!("{id} clicks[{h}]"));
            assert_close(
                f.purchases[h],
                purchases[h],
                &format!("{id} purchases[{h}]"),
            );
        }
        let slots = impressions.iter().flat_map(|imp| {
            imp.slots
                .iter()
                .filter(|s| s.item_id == id)
                .map(|_| (imp.timestamp.0, 1.0))
        });
        let exposures = views[2] + decayed(slots, now)[2];
        let ctr = ((clicks[2] + 1.0) / (exposures + 20.0)).min(1.0);
        assert_close(f.ctr, ctr, &format!("{id} ctr"));
        let engagement = decayed(
            events
                .iter()
                .filter(|e| e.item_id == id)
                .map(|e| (e.timestamp.0, f64::from(e.action.implicit_weight()))),
            now,
        );
        let expected = engagement[2] / 168.0;
        let trending = (engagement[0] - expected) / (expected + 1.0).sqrt();
        assert_close(f.trending, trending, &format!("{id} trending"));
    }
}

#[test]
fn user_features_equal_a_recomputation_even_with_late_events() {
    let config = FeatureConfig {
        recent_actions: 20,
        shown_window_ms: 6 * 60 * MINUTE,
        ..FeatureConfig::default()
    };
    let mut records = stream(11, 3_000);
    make_late(&mut records, 12);
    let store = live(&records, &config);
    let events = events_of(&records);
    let now = Timestamp(events.iter().map(|e| e.timestamp.0).max().expect("events") + MINUTE);
    let mut checked_shown = 0;
    for u in 0..USERS {
        let user = UserId::new_unchecked(format!("user-{u}"));
        let f = store.user_features(&user, now);
        // Arrival order, then a stable sort by time descending: later arrivals first on ties.
        let mut mine: Vec<&&Event> = events.iter().filter(|e| e.user_id == user).collect();
        mine.reverse();
        mine.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
        let recent: Vec<(ItemId, Action, Timestamp)> = mine
            .iter()
            .take(20)
            .map(|e| (e.item_id.clone(), e.action.clone(), e.timestamp))
            .collect();
        assert_eq!(f.recent, recent, "{user}");
        assert_eq!(f.event_count, mine.len() as u64);
        let purchased: BTreeSet<ItemId> = mine
            .iter()
            .filter(|e| e.action == Action::Purchase)
            .map(|e| e.item_id.clone())
            .collect();
        assert_eq!(f.purchased, purchased);
        assert_eq!(f.last_seen, mine.first().map(|e| e.timestamp));

        let mut weights: BTreeMap<String, f64> = BTreeMap::new();
        for e in events.iter().filter(|e| e.user_id == user) {
            let index: usize = e.item_id.as_str()[5..].parse().expect("item-NNN");
            let top = category_of(index)
                .split('/')
                .next()
                .expect("path")
                .to_string();
            *weights.entry(top).or_default() += f64::from(e.action.implicit_weight());
        }
        weights.retain(|_, w| *w > 0.0);
        let total: f64 = weights.values().sum();
        assert_eq!(f.category_affinity.len(), weights.len(), "{user}");
        for (category, w) in &weights {
            assert_close(f.category_affinity[category], w / total, category);
        }
        if !f.category_affinity.is_empty() {
            assert_close(f.category_affinity.values().sum(), 1.0, "affinity sum");
        }

        let mut shown: BTreeMap<ItemId, u32> = BTreeMap::new();
        for imp in impressions_of(&records)
            .iter()
            .filter(|i| i.user_id == user)
        {
            if now.0 - imp.timestamp.0 < config.shown_window_ms {
                for slot in &imp.slots {
                    *shown.entry(slot.item_id.clone()).or_default() += 1;
                }
            }
        }
        checked_shown += shown.len();
        assert_eq!(f.shown, shown, "{user}");
    }
    assert!(
        checked_shown > 0,
        "the stream must exercise the shown window"
    );
}

/// The co-visitation definition, from scratch over an in-order event list.
fn co_visitation_oracle(
    events: &[&Event],
    config: &FeatureConfig,
) -> HashMap<(ItemId, ItemId), f64> {
    let mut pairs: HashMap<(ItemId, ItemId), f64> = HashMap::new();
    let mut history: HashMap<&UserId, Vec<&Event>> = HashMap::new();
    for e in events {
        let past = history.entry(&e.user_id).or_default();
        let mut partners: Vec<(&ItemId, f64)> = Vec::new();
        for p in past.iter().rev().take(config.covis_window) {
            if e.timestamp.0 - p.timestamp.0 > config.session_gap_ms {
                break;
            }
            if p.item_id != e.item_id && !partners.iter().any(|(j, _)| *j == &p.item_id) {
                partners.push((&p.item_id, f64::from(p.action.implicit_weight())));
            }
        }
        for (partner, w) in partners {
            let weight = (f64::from(e.action.implicit_weight()) * w).sqrt();
            if weight > 0.0 {
                *pairs
                    .entry((e.item_id.clone(), partner.clone()))
                    .or_default() += weight;
                *pairs
                    .entry((partner.clone(), e.item_id.clone()))
                    .or_default() += weight;
            }
        }
        past.push(e);
    }
    pairs
}

#[test]
fn co_visitation_equals_a_recomputation_and_is_symmetric() {
    let config = FeatureConfig {
        covis_max_neighbors: 1_000,
        ..FeatureConfig::default()
    };
    let records = stream(21, 4_000);
    let store = live(&records, &config);
    let oracle = co_visitation_oracle(&events_of(&records), &config);
    let mut found = 0;
    for i in 0..ITEMS {
        let id = item_id(i);
        let neighbours = store.co_visited(&id, usize::MAX);
        let expected: usize = oracle.keys().filter(|(a, _)| *a == id).count();
        assert_eq!(neighbours.len(), expected, "{id}");
        for pair in neighbours.windows(2) {
            assert!(pair[0].1 >= pair[1].1, "sorted strongest first");
        }
        for (other, weight) in neighbours {
            let exact = oracle[&(id.clone(), other.clone())];
            assert!(
                (f64::from(weight) - exact).abs() <= 1e-6 * exact,
                "{id}-{other}"
            );
            let back = store.co_visited(&other, usize::MAX);
            assert!(
                back.iter().any(|(j, w)| *j == id && *w == weight),
                "symmetric"
            );
            found += 1;
        }
    }
    assert!(
        found > 100,
        "the stream must produce co-visits, got {found}"
    );
}

#[test]
fn replay_as_of_t_equals_the_live_store_just_before_t() {
    let config = FeatureConfig::default();
    let records = stream(31, 2_500);
    let mut online = FeatureStore::new(config.clone());
    let mut compared = 0;
    for (position, record) in records.iter().enumerate() {
        let probe = match record {
            LogRecord::Impression(imp) => Some((
                imp.timestamp,
                imp.user_id.clone(),
                imp.slots
                    .iter()
                    .map(|s| s.item_id.clone())
                    .collect::<Vec<_>>(),
            )),
            LogRecord::Event(e) if position % 97 == 0 => {
                Some((e.timestamp, e.user_id.clone(), vec![e.item_id.clone()]))
            }
            _ => None,
        };
        if let Some((t, user, items)) = probe.filter(|_| position % 3 == 0) {
            let offline = replay_as_of(&records, t, config.clone());
            assert_eq!(offline.events_applied(), online.events_applied());
            assert_eq!(
                offline.user_features(&user, t),
                online.user_features(&user, t),
                "{user} at {t}"
            );
            for item in &items {
                assert_eq!(
                    offline.item_features(item, t),
                    online.item_features(item, t),
                    "{item} at {t}"
                );
                assert_eq!(offline.co_visited(item, 20), online.co_visited(item, 20));
            }
            assert_eq!(offline.popular(None, t, 10), online.popular(None, t, 10));
            compared += 1;
        }
        online.apply_record(record);
    }
    assert!(compared > 50, "compared {compared} moments");
}

fn all_features(store: &FeatureStore, now: Timestamp) -> String {
    let mut out = String::new();
    for u in 0..USERS {
        let user = UserId::new_unchecked(format!("user-{u}"));
        out += &format!("{:?}\n", store.user_features(&user, now));
    }
    for i in 0..ITEMS {
        let id = item_id(i);
        out += &format!(
            "{:?} {:?}\n",
            store.item_features(&id, now),
            store.co_visited(&id, 10)
        );
    }
    out += &format!(
        "{:?} {:?}",
        store.popular(Some("cat1"), now, 5),
        store.trending(None, now, 5)
    );
    out
}

#[test]
fn a_serde_round_trip_gives_identical_features() {
    let records = stream(41, 2_000);
    let store = live(&records, &FeatureConfig::default());
    let now = store.last_event_time().expect("events").plus_millis(MINUTE);
    let expected = all_features(&store, now);

    let bytes = bincode::serialize(&store).expect("bincode");
    let back: FeatureStore = bincode::deserialize(&bytes).expect("bincode back");
    assert!(
        all_features(&back, now) == expected,
        "bincode round trip changed a feature"
    );
    assert_eq!(back.events_applied(), store.events_applied());

    let json = serde_json::to_string(&store).expect("json");
    let back: FeatureStore = serde_json::from_str(&json).expect("json back");
    // Exact only because serde_json's `float_roundtrip` feature is on (see Cargo.toml);
    // without it, parsing may be one ulp off.
    assert!(
        all_features(&back, now) == expected,
        "JSON round trip changed a feature"
    );
}

#[test]
fn forget_user_removes_every_trace_of_the_user_from_user_state() {
    let records = stream(51, 1_500);
    let mut store = live(&records, &FeatureConfig::default());
    let now = store.last_event_time().expect("events");
    let victim = UserId::new_unchecked("user-7");
    let other = UserId::new_unchecked("user-8");
    assert!(store.user_features(&victim, now).event_count > 0);
    let other_before = store.user_features(&other, now);
    store.forget_user(&victim);
    assert_eq!(store.user_features(&victim, now), Default::default());
    assert_eq!(store.user_features(&other, now), other_before);
    let json = serde_json::to_string(&store).expect("json");
    assert!(
        !json.contains("\"user-7\""),
        "the checkpoint must not mention the user"
    );
    // A deletion in the log does the same during replay.
    let mut with_delete = records.clone();
    with_delete.push(LogRecord::UserDelete {
        id: victim.clone(),
        at: now,
    });
    let replayed = live(&with_delete, &FeatureConfig::default());
    assert_eq!(replayed.user_features(&victim, now), Default::default());
}

/// From-scratch popular/trending: score every item, keep positive scores, best first.
fn ranking_oracle(
    events: &[&Event],
    category: Option<&str>,
    now: i64,
    trending: bool,
) -> Vec<(ItemId, f64)> {
    let mut scored: Vec<(ItemId, f64)> = (0..ITEMS)
        .filter(|i| category.is_none_or(|c| category_of(*i).starts_with(&format!("{c}/"))))
        .map(|i| {
            let id = item_id(i);
            let contributions = events
                .iter()
                .filter(|e| e.item_id == id)
                .map(|e| (e.timestamp.0, f64::from(e.action.implicit_weight())));
            let e = decayed(contributions, now);
            let expected = e[2] / 168.0;
            let score = if trending {
                (e[0] - expected) / (expected + 1.0).sqrt()
            } else {
                e[2]
            };
            (id, score)
        })
        .filter(|(_, s)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

#[test]
fn popular_and_trending_equal_a_full_scan_when_the_cache_is_fresh() {
    let config = FeatureConfig {
        ranking_refresh_ms: 0,
        ranking_cache_depth: 15,
        ..FeatureConfig::default()
    };
    let records = stream(61, 3_000);
    let store = live(&records, &config);
    let events = events_of(&records);
    let last = store.last_event_time().expect("events").0;
    for now in [last, last + 20 * MINUTE, last + 3 * 60 * MINUTE] {
        for category in [None, Some("cat2"), Some("cat4/sub1")] {
            for trending in [false, true] {
                let top = category.map(|c| c.split('/').next().expect("top"));
                let expected = ranking_oracle(&events, top, now, trending);
                for k in [5, 40] {
                    let got = if trending {
                        store.trending(category, Timestamp(now), k)
                    } else {
                        store.popular(category, Timestamp(now), k)
                    };
                    let want: Vec<&(ItemId, f64)> = expected.iter().take(k).collect();
                    assert_eq!(
                        got.len(),
                        want.len(),
                        "{category:?} trending={trending} k={k}"
                    );
                    for ((id, score), (want_id, want_score)) in got.iter().zip(want) {
                        assert_eq!(id, want_id);
                        assert!((f64::from(*score) - want_score).abs() <= 1e-6 * want_score.abs());
                    }
                }
            }
        }
    }
    assert!(store
        .popular(Some("no-such-category"), Timestamp(last), 5)
        .is_empty());
}

#[test]
fn a_cached_list_is_stale_for_at_most_the_refresh_interval() {
    let config = FeatureConfig::default();
    let mut store = live(&stream(71, 1_000), &config);
    let t = store.last_event_time().expect("events").plus_millis(1);
    let before = store.popular(None, t, 5);
    for n in 0..200 {
        store.apply_event(&event(0, 999, Action::Purchase, t.0 + n), Some("cat0"));
    }
    let hot = item_id(999);
    // Within 1 s of event time and 10 000 events: the cached candidates are reused.
    let stale = store.popular(None, t.plus_millis(500), 5);
    assert!(!stale.iter().any(|(id, _)| *id == hot));
    assert_eq!(
        stale.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        before.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    // One refresh interval later the new item leads.
    let fresh = store.popular(None, t.plus_millis(1_000), 5);
    assert_eq!(fresh[0].0, hot);
}

#[test]
fn co_visitation_stays_within_a_session() {
    let mut store = FeatureStore::new(FeatureConfig::default());
    let t0 = START;
    store.apply_event(&event(1, 1, Action::View, t0), None);
    store.apply_event(&event(1, 2, Action::Purchase, t0 + 10 * MINUTE), None);
    // 31 minutes after the purchase: a new session.
    store.apply_event(&event(1, 3, Action::View, t0 + 41 * MINUTE), None);
    // Another user's events never pair with user 1's.
    store.apply_event(&event(2, 4, Action::View, t0 + 41 * MINUTE), None);
    let one = store.co_visited(&item_id(1), 10);
    // Weight sqrt(1 · 6) for a view and a purchase.
    assert_eq!(one, vec![(item_id(2), 6f32.sqrt())]);
    assert_eq!(
        store.co_visited(&item_id(2), 10),
        vec![(item_id(1), 6f32.sqrt())]
    );
    assert!(store.co_visited(&item_id(3), 10).is_empty());
    assert!(store.co_visited(&item_id(4), 10).is_empty());
}

#[test]
fn item_counters_halve_after_each_half_life() {
    let mut store = FeatureStore::new(FeatureConfig::default());
    store.apply_event(&event(1, 1, Action::Click, START), Some("books/scifi"));
    let hour = Timestamp(START + 60 * MINUTE);
    let f = store.item_features(&item_id(1), hour);
    assert_eq!(f.clicks[0], 0.5);
    assert_eq!(
        store
            .item_features(&item_id(1), Timestamp(START + 24 * 60 * MINUTE))
            .clicks[1],
        0.5
    );
    assert_eq!(
        store
            .item_features(&item_id(1), Timestamp(START + 168 * 60 * MINUTE))
            .clicks[2],
        0.5
    );
    // CTR: (1 click + 1) / (0 exposures + 20) at t0.
    assert_eq!(store.item_features(&item_id(1), Timestamp(START)).ctr, 0.1);
    assert_eq!(
        store
            .user_features(&UserId::new_unchecked("user-1"), hour)
            .category_affinity["books"],
        1.0
    );
    assert_eq!(store.events_applied(), 1);
    assert_eq!(store.last_event_time(), Some(Timestamp(START)));
}

#[test]
fn replaying_the_prefix_before_an_impression_reproduces_its_features_despite_late_events() {
    let config = FeatureConfig::default();
    let mut records = stream(81, 2_000);
    make_late(&mut records, 82);
    let mut online = FeatureStore::new(config.clone());
    let mut compared = 0;
    for (offset, record) in records.iter().enumerate() {
        if let LogRecord::Impression(imp) = record {
            if offset % 2 == 0 {
                let offline = flywheel_features::replay(&records[..offset], config.clone());
                let t = imp.timestamp;
                assert_eq!(
                    offline.user_features(&imp.user_id, t),
                    online.user_features(&imp.user_id, t)
                );
                for slot in &imp.slots {
                    let item = &slot.item_id;
                    assert_eq!(
                        offline.item_features(item, t),
                        online.item_features(item, t)
                    );
                    assert_eq!(offline.co_visited(item, 10), online.co_visited(item, 10));
                }
                compared += 1;
            }
        }
        online.apply_record(record);
    }
    assert!(compared > 50, "compared {compared} impressions");
}

#[test]
fn unknown_ids_get_priors_and_empty_lists() {
    let store = FeatureStore::new(FeatureConfig::default());
    let now = Timestamp(START);
    let item = store.item_features(&item_id(1), now);
    assert_eq!(item.ctr, 0.05, "prior 1 / 20");
    assert_eq!(item.trending, 0.0);
    assert_eq!(
        store.user_features(&UserId::new_unchecked("nobody"), now),
        Default::default()
    );
    assert!(store.co_visited(&item_id(1), 5).is_empty());
    assert!(store.popular(None, now, 5).is_empty());
    assert!(store.trending(Some("books"), now, 5).is_empty());
    assert_eq!(store.last_event_time(), None);
    let bad = FeatureConfig {
        ctr_prior_exposures: 0.0,
        ..FeatureConfig::default()
    };
    assert!(FeatureStore::try_new(bad).is_err());
}

#[test]
fn categories_are_reduced_to_their_top_level() {
    let mut store = FeatureStore::new(FeatureConfig::default());
    store.apply_event(&event(1, 1, Action::View, START), Some("/books/scifi/"));
    store.apply_event(&event(1, 2, Action::Purchase, START + 1), Some("music"));
    store.apply_event(&event(1, 3, Action::Click, START + 2), Some(""));
    let f = store.user_features(&UserId::new_unchecked("user-1"), Timestamp(START + 2));
    // Weights 1 (books) and 6 (music); the uncategorised click counts in no category.
    assert_eq!(f.category_affinity.len(), 2);
    assert_eq!(f.category_affinity["books"], 1.0 / 7.0);
    assert_eq!(f.category_affinity["music"], 6.0 / 7.0);
    let books = store.popular(Some("books/fantasy"), Timestamp(START + 2), 5);
    assert_eq!(
        books.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        vec![item_id(1)]
    );
}

#[test]
fn the_store_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<FeatureStore>();
    // A clone starts with an empty ranking cache but the same features.
    let store = live(&stream(91, 500), &FeatureConfig::default());
    let now = store.last_event_time().expect("events");
    assert_eq!(
        store.clone().popular(None, now, 5),
        store.popular(None, now, 5)
    );
}

/// A click loop (one user clicking one item every 100 ms for a minute) moves the item's
/// counters and the popular list only as far as the bot rules let it, and every dropped
/// event is counted by reason; a store without the rules sees them all.
#[test]
fn a_click_loop_is_dropped_by_the_bot_rules_before_any_feature() {
    let honest: Vec<LogRecord> = (0..200)
        .map(|n| {
            LogRecord::Event(event(
                n % 20,
                n % 5,
                Action::Click,
                START + n as i64 * 9_000,
            ))
        })
        .collect();
    let flood: Vec<LogRecord> = (0..600)
        .map(|n| LogRecord::Event(event(29, 70, Action::Click, START + 30 * MINUTE + n * 100)))
        .collect();
    let mut filtered = FeatureStore::new(FeatureConfig::default());
    let mut unfiltered = FeatureStore::new(FeatureConfig {
        bots: flywheel_core::BotRules {
            enabled: false,
            ..Default::default()
        },
        ..FeatureConfig::default()
    });
    for record in honest.iter().chain(&flood) {
        filtered.apply_record(record);
        unfiltered.apply_record(record);
    }
    let now = Timestamp::from_millis(START + 32 * MINUTE);
    let clicks = |store: &FeatureStore| store.item_features(&item_id(70), now).clicks[0];
    // The default repeat rule lets 20 identical clicks a minute through.
    assert!(clicks(&filtered) <= 21.0, "{}", clicks(&filtered));
    assert!(clicks(&unfiltered) > 500.0, "{}", clicks(&unfiltered));
    let top = |store: &FeatureStore| store.popular(None, now, 1)[0].0.clone();
    assert_eq!(top(&unfiltered), item_id(70));
    assert_ne!(top(&filtered), item_id(70));
    let counts = filtered.bot_counts();
    assert_eq!(counts.judged, 800);
    assert_eq!(counts.dropped[&flywheel_core::BotReason::Repeat], 580);
    assert_eq!(counts.flagged_users, 1);
    assert_eq!(unfiltered.bot_counts().judged, 0);
}
