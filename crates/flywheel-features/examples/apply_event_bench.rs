//! Measures the cost of the feature store's hot paths on a seeded synthetic stream.
//! Run with `cargo run --release -p flywheel-features --example apply_event_bench [sessions|dense]`
//! (`COVIS_WINDOW=n` in the environment overrides the co-visitation window).
//! A measurement, not a test: it prints figures and asserts nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use flywheel_core::{Action, Event, ItemId, Timestamp, UserId};
use flywheel_features::{FeatureConfig, FeatureStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: usize = 100_000;
const ITEMS: usize = 20_000;
const EVENTS: usize = 2_000_000;

/// CPU time of this thread in ns (Linux `schedstat`), so that figures are not inflated
/// by other processes competing for the cores; `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `work` and prints wall and CPU time per operation.
fn measure(label: &str, operations: usize, work: impl FnOnce()) {
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    work();
    let wall = start.elapsed().as_nanos() as f64 / operations as f64;
    let cpu = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => format!("{:.0} ns CPU", (b - a) as f64 / operations as f64),
        _ => "CPU time unavailable".to_string(),
    };
    println!("{label}: {wall:.0} ns wall, {cpu} per operation ({operations} operations)");
}

fn random_action(rng: &mut StdRng) -> Action {
    match rng.gen_range(0..100) {
        0..=69 => Action::View,
        70..=89 => Action::Click,
        90..=94 => Action::AddToCart,
        _ => Action::Purchase,
    }
}

/// A skewed item draw (cube of a uniform): a few items get most of the traffic.
fn random_item(rng: &mut StdRng) -> usize {
    let u: f64 = rng.gen();
    ((u * u * u) * ITEMS as f64) as usize % ITEMS
}

/// "sessions": sessions of geometric length (mean 6 events, 10 s..2 min apart) that
/// start at random over a week, interleaved in time.
/// "dense": 2 000 users each acting every ~40 s, so every event has a full
/// co-visitation window of 10 partners (the worst case).
fn generate(scenario: &str, rng: &mut StdRng) -> Vec<(i64, usize, usize, Action)> {
    let start = 1_700_000_000_000i64;
    let mut events = Vec::with_capacity(EVENTS);
    if scenario == "dense" {
        let mut at = start;
        for _ in 0..EVENTS {
            at += rng.gen_range(0..40);
            let user = if rng.gen_bool(0.9) {
                rng.gen_range(0..2_000)
            } else {
                rng.gen_range(0..USERS)
            };
            events.push((at, user, random_item(rng), random_action(rng)));
        }
        return events;
    }
    while events.len() < EVENTS {
        let user = rng.gen_range(0..USERS);
        let mut at = start + rng.gen_range(0..7 * 86_400_000);
        loop {
            events.push((at, user, random_item(rng), random_action(rng)));
            at += rng.gen_range(10_000..120_000);
            if rng.gen_bool(1.0 / 6.0) || events.len() == EVENTS {
                break;
            }
        }
    }
    events.sort_by_key(|e| e.0);
    events
}

fn main() {
    let scenario = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sessions".to_string());
    let mut rng = StdRng::seed_from_u64(1);
    let users: Vec<UserId> = (0..USERS)
        .map(|u| UserId::new_unchecked(format!("user-{u}")))
        .collect();
    let items: Vec<ItemId> = (0..ITEMS)
        .map(|i| ItemId::new_unchecked(format!("item-{i}")))
        .collect();
    let categories: Vec<String> = (0..ITEMS)
        .map(|i| format!("cat{}/sub{}", i % 40, i % 7))
        .collect();
    let events: Vec<(Event, usize)> = generate(&scenario, &mut rng)
        .into_iter()
        .map(|(at, user, item, action)| {
            let event = Event {
                user_id: users[user].clone(),
                item_id: items[item].clone(),
                action,
                value: None,
                timestamp: Timestamp(at),
                request_id: None,
                position: None,
                context: BTreeMap::new(),
            };
            (event, item)
        })
        .collect();
    println!("scenario = {scenario}");

    // `COVIS_WINDOW=n` overrides the co-visitation window (0 disables co-visitation).
    let mut config = FeatureConfig::default();
    if let Some(window) = std::env::var("COVIS_WINDOW")
        .ok()
        .and_then(|w| w.parse().ok())
    {
        config.covis_window = window;
    }
    println!("covis_window = {}", config.covis_window);
    let mut store = FeatureStore::new(config);
    measure(
        &format!("apply_event ({USERS} users, {ITEMS} items)"),
        EVENTS,
        || {
            for (event, item) in &events {
                store.apply_event(event, Some(&categories[*item]));
            }
        },
    );
    let now = store.last_event_time().unwrap_or_default();
    let mut sink = 0usize;
    measure("user_features", 10_000, || {
        for u in users.iter().take(10_000) {
            sink += store.user_features(u, now).recent.len();
        }
    });
    measure("item_features", 10_000, || {
        for i in items.iter().take(10_000) {
            sink += usize::from(store.item_features(i, now).last_event.is_some());
        }
    });
    measure("co_visited(k=20)", 10_000, || {
        for i in items.iter().take(10_000) {
            sink += store.co_visited(i, 20).len();
        }
    });
    measure("popular, cache refresh (one full scan)", 1, || {
        sink += store.popular(None, now, 50).len();
    });
    measure(
        "popular(category)+trending(global) from cache, k=50",
        10_000,
        || {
            for n in 0..10_000 {
                sink += store
                    .popular(Some("cat3"), now.plus_millis(n % 900), 50)
                    .len();
                sink += store.trending(None, now.plus_millis(n % 900), 50).len();
            }
        },
    );
    println!("(checksum {sink})");
}
