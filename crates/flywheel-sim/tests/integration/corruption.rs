//! The corrupted stream: how much of it is damaged, where, and that the truth finds
//! the damage again; and the drift-aware measures of a list's quality.

use flywheel_core::{Action, ActionSet, Event, RequestId, Timestamp};
use flywheel_sim::{simulate, write_dataset, SimConfig, StreamCorruption, TasteDrift, World};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn corrupted_config() -> SimConfig {
    SimConfig {
        corruption: Some(StreamCorruption {
            day: 3,
            until_day: Some(5),
            unknown_item_share: 0.2,
            missing_field_share: 0.1,
        }),
        ..SimConfig::small()
    }
}

/// (events, unknown item share, missing field share) of the events `keep` selects.
fn shares(world: &World, events: &[Event], keep: impl Fn(&Event) -> bool) -> (f64, f64, f64) {
    let kept: Vec<&Event> = events.iter().filter(|e| keep(e)).collect();
    let n = kept.len() as f64;
    let unknown = kept
        .iter()
        .filter(|e| world.damage_of(e).unknown_item)
        .count() as f64;
    let missing = kept
        .iter()
        .filter(|e| world.damage_of(e).missing_fields)
        .count() as f64;
    (n, unknown / n, missing / n)
}

/// Within five standard errors of a share `p` over `n` draws.
fn assert_share(measured: f64, p: f64, n: f64, what: &str) {
    let tolerance = 5.0 * (p * (1.0 - p) / n).sqrt();
    assert!(
        (measured - p).abs() < tolerance,
        "{what}: {measured} vs {p} ± {tolerance} over {n} events"
    );
}

#[test]
fn the_configured_share_of_events_is_damaged_inside_the_period_only() {
    let sim = simulate(&corrupted_config()).unwrap();
    let world = &sim.world;
    let (n, unknown, missing) = shares(world, &sim.events, |e| world.is_corrupted_at(e.timestamp));
    assert!(n > 2_000.0, "{n} events in the damaged period");
    assert_share(unknown, 0.2, n, "unknown item ids");
    assert_share(missing, 0.1, n, "missing fields");
    let (outside, unknown, missing) =
        shares(world, &sim.events, |e| !world.is_corrupted_at(e.timestamp));
    assert!(outside > 2_000.0);
    assert_eq!((unknown, missing), (0.0, 0.0));
}

#[test]
fn without_corruption_every_event_is_clean_and_corruption_changes_nothing_else() {
    let clean = simulate(&SimConfig::small()).unwrap();
    assert!(clean
        .events
        .iter()
        .all(|e| clean.world.damage_of(e).is_clean()));
    assert!(!clean.world.is_corrupted_at(clean.world.config().start));
    let damaged = simulate(&corrupted_config()).unwrap();
    assert_eq!(clean.events.len(), damaged.events.len());
    assert_eq!(clean.impressions, damaged.impressions);
    for (a, b) in clean.events.iter().zip(&damaged.events) {
        // Same behaviour: who did what and when never changes…
        assert_eq!(
            (
                &a.user_id,
                &a.action,
                a.timestamp,
                &a.request_id,
                a.position
            ),
            (
                &b.user_id,
                &b.action,
                b.timestamp,
                &b.request_id,
                b.position
            )
        );
        // …and outside the period, nothing changes at all.
        if !damaged.world.is_corrupted_at(b.timestamp) {
            assert_eq!(a, b);
        }
        // The damage the truth finds is exactly what differs.
        let damage = damaged.world.damage_of(b);
        assert_eq!(damage.unknown_item, a.item_id != b.item_id);
        assert_eq!(damage.missing_fields, a.context != b.context);
    }
}

#[test]
fn damaged_events_still_parse_and_the_same_seed_damages_the_same_events() {
    let config = corrupted_config();
    let (a, b) = (simulate(&config).unwrap(), simulate(&config).unwrap());
    assert_eq!(a.events, b.events);
    let dir = tempfile::tempdir().unwrap();
    let files = write_dataset(&a, dir.path()).unwrap();
    let text = std::fs::read_to_string(&files.events).unwrap();
    let actions = ActionSet::default();
    let now = Timestamp::from_secs(0);
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        Event::from_json(&value, &actions, now).unwrap();
    }
    let purchases_without_value = a
        .events
        .iter()
        .filter(|e| e.action == Action::Purchase && e.value.is_none())
        .count();
    assert!(purchases_without_value > 0);
    let truth = flywheel_sim::read_truth(dir.path()).unwrap();
    assert_eq!(truth.config().corruption, config.corruption);
}

#[test]
fn responses_in_the_damaged_period_are_damaged_too() {
    let world = World::generate(&corrupted_config()).unwrap();
    let start = world.config().start;
    let request = RequestId::new_unchecked("r");
    let list: Vec<usize> = (0..10).collect();
    let mut rng = StdRng::seed_from_u64(9);
    let mut respond_at = |day: i64| {
        let at = start.plus_millis(day * Timestamp::DAY + Timestamp::HOUR);
        (0..400)
            .flat_map(|u| world.respond(u % 200, &list, at, Some(&request), &mut rng))
            .collect::<Vec<Event>>()
    };
    let (during, before) = (respond_at(3), respond_at(1));
    let (n, unknown, missing) = shares(&world, &during, |_| true);
    assert_share(unknown, 0.2, n, "unknown item ids in responses");
    assert_share(missing, 0.1, n, "missing fields in responses");
    assert!(before.iter().all(|e| world.damage_of(e).is_clean()));
}

#[test]
fn list_quality_is_measured_with_the_tastes_of_the_moment() {
    let config = SimConfig {
        drift: Some(TasteDrift {
            day: 3,
            strength: 1.0,
        }),
        ..SimConfig::small()
    };
    let world = World::generate(&config).unwrap();
    let before = config.start.plus_millis(Timestamp::DAY);
    let after = config.start.plus_millis(4 * Timestamp::DAY);
    let user = 7;
    let old_best = world.ideal_list_at(user, 10, before);
    let new_best = world.ideal_list_at(user, 10, after);
    assert_eq!(old_best.len(), 10);
    // Before the drift, the measure is the classic one.
    let classic = world.expected_clicks(user, &old_best);
    assert!((world.expected_clicks_at(user, &old_best, before) - classic).abs() < 1e-12);
    // After it, yesterday's ideal list is worth less than today's.
    let stale = world.expected_clicks_at(user, &old_best, after);
    let fresh = world.expected_clicks_at(user, &new_best, after);
    assert!(fresh > stale * 1.1, "fresh {fresh}, stale {stale}");
    // The ideal is a ceiling: no other list of the available items beats it.
    let mut reversed = new_best.clone();
    reversed.reverse();
    assert!(world.expected_clicks_at(user, &reversed, after) <= fresh);
    let others: Vec<usize> = (0..10).collect();
    assert!(world.expected_clicks_at(user, &others, after) <= fresh);
}
