//! End-to-end checks of the simulator: determinism, the wire format, time order,
//! causality, and that behaviour matches the ground truth it was drawn from.

use flywheel_core::{Action, ActionSet, Event, Impression, Item, Timestamp, User};
use flywheel_sim::{
    read_events, read_truth, simulate, simulate_to_dir, write_dataset, SimConfig, Simulation,
    TasteDrift,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[path = "integration/corruption.rs"]
mod corruption;

fn small() -> Simulation {
    simulate(&SimConfig::small()).expect("the small preset is valid")
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("write_dataset wrote the file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

#[test]
fn the_same_seed_writes_byte_identical_files_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let config = SimConfig::small();
    let files = write_dataset(&simulate(&config).unwrap(), a.path()).unwrap();
    // The streaming writer (for load tests) must write exactly the same bytes.
    let streamed = simulate_to_dir(&config, b.path()).unwrap();
    let counts = |f: &flywheel_sim::DatasetFiles| {
        (
            f.item_count,
            f.user_count,
            f.event_count,
            f.impression_count,
        )
    };
    assert_eq!(counts(&streamed), counts(&files));
    assert_eq!(streamed.events, b.path().join("events.jsonl"));
    let other = SimConfig {
        seed: config.seed + 1,
        ..config
    };
    write_dataset(&simulate(&other).unwrap(), c.path()).unwrap();
    for name in [
        "items.jsonl",
        "users.jsonl",
        "events.jsonl",
        "impressions.jsonl",
        "truth.json",
    ] {
        let first = std::fs::read(a.path().join(name)).unwrap();
        assert!(!first.is_empty(), "{name}");
        assert_eq!(
            first,
            std::fs::read(b.path().join(name)).unwrap(),
            "{name} differs for the same seed"
        );
        assert_ne!(
            first,
            std::fs::read(c.path().join(name)).unwrap(),
            "{name} equal for another seed"
        );
    }
    assert!(files.event_count > 0 && files.impression_count > 0);
}

#[test]
fn every_written_line_parses_with_the_import_validators_and_round_trips() {
    let sim = small();
    let dir = tempfile::tempdir().unwrap();
    let files = write_dataset(&sim, dir.path()).unwrap();
    let items: Vec<Item> = lines(&files.items)
        .iter()
        .map(|v| Item::from_json(v, None).unwrap())
        .collect();
    assert_eq!(items, sim.world.items);
    let users: Vec<User> = lines(&files.users)
        .iter()
        .map(|v| User::from_json(v, None).unwrap())
        .collect();
    assert_eq!(users, sim.world.users);
    let actions = ActionSet::default();
    let events: Vec<Event> = lines(&files.events)
        .iter()
        .map(|v| Event::from_json(v, &actions, Timestamp(0)).unwrap())
        .collect();
    assert_eq!(events, sim.events);
    assert_eq!(read_events(dir.path()).unwrap(), sim.events);
    let impressions: Vec<Impression> = lines(&files.impressions)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert_impressions_match(&impressions, &sim.impressions);
    assert_eq!(
        (files.item_count, files.user_count, files.event_count),
        (150, 200, sim.events.len())
    );
}

/// Impressions hold full-precision floats; serde_json without its `float_roundtrip`
/// feature may read them back one ulp off, so scores compare to 1e-15 relative.
fn assert_impressions_match(read: &[Impression], written: &[Impression]) {
    assert_eq!(read.len(), written.len());
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-15 * a.abs().max(b.abs());
    for (r, w) in read.iter().zip(written) {
        assert_eq!(
            (&r.request_id, &r.user_id, r.timestamp),
            (&w.request_id, &w.user_id, w.timestamp)
        );
        assert_eq!(r.slots.len(), w.slots.len());
        for (a, b) in r.slots.iter().zip(&w.slots) {
            assert_eq!(
                (&a.item_id, a.position, a.channel, a.channel_rank),
                (&b.item_id, b.position, b.channel, b.channel_rank)
            );
            assert!(
                close(a.score, b.score) && close(a.propensity, b.propensity),
                "{a:?} vs {b:?}"
            );
        }
    }
}

#[test]
fn the_truth_read_back_answers_like_the_original_world() {
    let sim = small();
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&sim, dir.path()).unwrap();
    let world = read_truth(dir.path()).unwrap();
    assert_eq!(world.config(), sim.world.config());
    for (user, item) in [(0, 0), (17, 99), (199, 149)] {
        let (a, b) = (
            world.true_preference(user, item),
            sim.world.true_preference(user, item),
        );
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        let (a, b) = (
            world.true_purchase_probability(user, item),
            sim.world.true_purchase_probability(user, item),
        );
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    assert_eq!(world.similar_items(5), sim.world.similar_items(5));
    // A truth file from another dataset is refused with the reason.
    let other = tempfile::tempdir().unwrap();
    write_dataset(
        &simulate(&SimConfig {
            users: 10,
            ..SimConfig::small()
        })
        .unwrap(),
        other.path(),
    )
    .unwrap();
    std::fs::copy(
        other.path().join("truth.json"),
        dir.path().join("truth.json"),
    )
    .unwrap();
    let err = read_truth(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("truth.json") && err.contains("10 users"),
        "{err}"
    );
}

#[test]
fn events_are_sorted_inside_the_period_and_purchases_follow_clicks() {
    let sim = small();
    let config = sim.world.config();
    assert!(sim
        .events
        .windows(2)
        .all(|w| w[0].timestamp <= w[1].timestamp));
    assert!(sim
        .events
        .iter()
        .all(|e| e.timestamp >= config.start && e.timestamp < config.end()));
    assert!(sim
        .impressions
        .windows(2)
        .all(|w| w[0].timestamp <= w[1].timestamp));
    let mut clicked = HashSet::new();
    let mut carted = HashSet::new();
    let mut purchases = 0;
    for e in &sim.events {
        let key = (e.user_id.clone(), e.item_id.clone());
        match e.action {
            Action::Click => {
                clicked.insert(key);
            }
            Action::AddToCart => {
                assert!(clicked.contains(&key), "cart without click: {e:?}");
                carted.insert(key);
            }
            Action::Purchase => {
                assert!(carted.contains(&key), "purchase without cart: {e:?}");
                let item = sim.world.item_index(e.item_id.as_str()).unwrap();
                assert_eq!(e.value, sim.world.items[item].price);
                purchases += 1;
            }
            _ => {}
        }
    }
    assert!(purchases > 50, "{purchases}");
}

#[test]
fn new_items_appear_during_the_run_and_get_traffic() {
    let sim = small();
    let start = sim.world.config().start;
    let created: HashMap<&str, Timestamp> = sim
        .world
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.created_at.unwrap()))
        .collect();
    let mut new_items_seen = HashSet::new();
    for e in &sim.events {
        let at = created[e.item_id.as_str()];
        assert!(e.timestamp >= at, "event before its item existed: {e:?}");
        if at >= start {
            new_items_seen.insert(e.item_id.as_str());
        }
    }
    assert!(new_items_seen.len() >= 10, "{}", new_items_seen.len());
}

/// Clicks per list position against the truth: the expected number of clicks at
/// position p is Σ over shown lists of examination(p) · preference(user, item).
#[test]
fn clicks_per_position_match_the_examination_model() {
    let sim = simulate(&SimConfig {
        users: 600,
        ..SimConfig::small()
    })
    .unwrap();
    let world = &sim.world;
    let mut expected = [0.0f64; 10];
    let mut variance = [0.0f64; 10];
    let mut shown = [0usize; 10];
    for imp in &sim.impressions {
        let user = world.user_index(imp.user_id.as_str()).unwrap();
        for slot in &imp.slots {
            let item = world.item_index(slot.item_id.as_str()).unwrap();
            let p = world.click_probability(user, item, slot.position);
            let k = slot.position as usize;
            expected[k] += p;
            variance[k] += p * (1.0 - p);
            shown[k] += 1;
            assert!(slot.propensity > 0.0 && slot.propensity <= 1.0);
        }
    }
    let mut observed = [0usize; 10];
    for e in sim.events.iter().filter(|e| e.action == Action::Click) {
        if let Some(p) = e.position {
            observed[p as usize] += 1;
        }
    }
    for k in 0..10 {
        let z = (observed[k] as f64 - expected[k]) / variance[k].sqrt();
        assert!(
            z.abs() < 4.0,
            "position {k}: observed {} expected {:.1}",
            observed[k],
            expected[k]
        );
    }
    let ctr = |k: usize| observed[k] as f64 / shown[k] as f64;
    assert!(ctr(0) > 1.5 * ctr(5), "{} vs {}", ctr(0), ctr(5));
}

/// Among examined items (views), users click in proportion to the true preference.
#[test]
fn users_click_what_they_truly_like() {
    let sim = small();
    let world = &sim.world;
    let mut examined: Vec<(f64, bool)> = Vec::new();
    let clicks: HashSet<(String, String, u32)> = sim
        .events
        .iter()
        .filter(|e| e.action == Action::Click && e.request_id.is_some())
        .map(|e| {
            (
                e.request_id.as_ref().unwrap().to_string(),
                e.item_id.to_string(),
                e.position.unwrap(),
            )
        })
        .collect();
    for e in sim
        .events
        .iter()
        .filter(|e| e.action == Action::View && e.request_id.is_some())
    {
        let (user, item) = (
            world.user_index(e.user_id.as_str()).unwrap(),
            world.item_index(e.item_id.as_str()).unwrap(),
        );
        let key = (
            e.request_id.as_ref().unwrap().to_string(),
            e.item_id.to_string(),
            e.position.unwrap(),
        );
        examined.push((world.true_preference(user, item), clicks.contains(&key)));
    }
    let expected: f64 = examined.iter().map(|(p, _)| p).sum();
    let sd: f64 = examined
        .iter()
        .map(|(p, _)| p * (1.0 - p))
        .sum::<f64>()
        .sqrt();
    let observed = examined.iter().filter(|(_, c)| *c).count() as f64;
    assert!(
        (observed - expected).abs() < 4.0 * sd,
        "observed {observed} expected {expected:.1}"
    );
    examined.sort_by(|a, b| a.0.total_cmp(&b.0));
    let quarter = examined.len() / 4;
    let rate =
        |part: &[(f64, bool)]| part.iter().filter(|(_, c)| *c).count() as f64 / part.len() as f64;
    let (low, high) = (
        rate(&examined[..quarter]),
        rate(&examined[examined.len() - quarter..]),
    );
    assert!(high > 3.0 * low, "top quartile {high} vs bottom {low}");
}

/// The logged propensities are exact: inverse propensity scoring on the first slot
/// recovers the true click rate of a policy the site never ran (a uniformly random
/// first item), computed from the truth.
#[test]
fn ips_with_the_logged_propensities_recovers_the_true_value_of_another_policy() {
    let sim = simulate(&SimConfig {
        users: 600,
        ..SimConfig::small()
    })
    .unwrap();
    let world = &sim.world;
    let first_clicks: HashSet<&str> = sim
        .events
        .iter()
        .filter(|e| e.action == Action::Click && e.position == Some(0))
        .filter_map(|e| e.request_id.as_ref().map(|r| r.as_str()))
        .collect();
    let (mut truth, mut ips, mut ips_sq) = (0.0, 0.0, 0.0);
    for imp in &sim.impressions {
        let user = world.user_index(imp.user_id.as_str()).unwrap();
        let available: Vec<usize> = (0..world.items.len())
            .filter(|i| world.items[*i].created_at.unwrap() <= imp.timestamp)
            .collect();
        let target = 1.0 / available.len() as f64;
        truth += available
            .iter()
            .map(|i| world.click_probability(user, *i, 0))
            .sum::<f64>()
            * target;
        let reward = if first_clicks.contains(imp.request_id.as_str()) {
            1.0
        } else {
            0.0
        };
        let term = target / imp.slots[0].propensity * reward;
        ips += term;
        ips_sq += term * term;
    }
    let n = sim.impressions.len() as f64;
    let (truth, ips) = (truth / n, ips / n);
    let se = ((ips_sq / n - ips * ips) / (n - 1.0)).sqrt();
    assert!(n > 5_000.0, "{n}");
    assert!(
        (ips - truth).abs() < 4.0 * se,
        "IPS {ips:.4} ± {se:.4}, truth {truth:.4}"
    );
    // The logging policy's own first slot does better than random: it is not a trivial check.
    let logged = first_clicks.len() as f64 / n;
    assert!(
        logged > truth + 4.0 * se,
        "logged {logged:.4} vs random {truth:.4}"
    );
}

#[test]
fn items_carry_noisy_content_embeddings_of_their_latent_vectors() {
    let sim = small();
    let world = &sim.world;
    let cosine = |a: &[f32], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
        dot / b.iter().map(|y| y * y).sum::<f64>().sqrt()
    };
    let mut own = 0.0;
    let mut other = 0.0;
    for (i, item) in world.items.iter().enumerate() {
        let e = item.embedding.as_ref().unwrap();
        assert_eq!(e.len(), world.config().latent_dim);
        own += cosine(e, &world.truth.items[i].latent);
        other += cosine(e, &world.truth.items[(i + 1) % world.items.len()].latent).abs();
    }
    let n = world.items.len() as f64;
    assert!(
        own / n > 0.6 && own / n > 2.0 * other / n,
        "{} vs {}",
        own / n,
        other / n
    );
}

#[test]
fn browse_chains_move_to_similar_items_of_the_same_leaf() {
    let sim = small();
    let world = &sim.world;
    let chained: Vec<&Event> = sim
        .events
        .iter()
        .filter(|e| e.context.get("page").map(String::as_str) == Some("item"))
        .collect();
    assert!(chained.len() > 100, "{}", chained.len());
    for e in chained {
        let from = world.item_index(&e.context["from_item"]).unwrap();
        let to = world.item_index(e.item_id.as_str()).unwrap();
        assert!(world.similar_items(from).contains(&to));
        assert_eq!(world.items[from].category, world.items[to].category);
        assert!(e.request_id.is_none() && e.position.is_none());
    }
}

#[test]
fn taste_drift_changes_what_users_click_after_the_drift_day_only() {
    let base = SimConfig {
        users: 400,
        ..SimConfig::small()
    };
    let drifted = SimConfig {
        drift: Some(TasteDrift {
            day: 3,
            strength: 1.0,
        }),
        ..base.clone()
    };
    let (a, b) = (simulate(&base).unwrap(), simulate(&drifted).unwrap());
    let boundary = base.start.plus_millis(3 * Timestamp::DAY);
    // Sessions that start an hour before the drift draw exactly as without drift.
    let before = |s: &Simulation| -> Vec<Event> {
        s.events
            .iter()
            .filter(|e| e.timestamp < boundary.plus_millis(-Timestamp::HOUR))
            .cloned()
            .collect()
    };
    assert_eq!(before(&a), before(&b));
    // After the drift, clicks lean towards the new tastes.
    let world = &b.world;
    let lean = |from: Timestamp, to: Timestamp| {
        let (mut sum, mut n) = (0.0, 0.0);
        for e in b
            .events
            .iter()
            .filter(|e| e.action == Action::Click && e.timestamp >= from && e.timestamp < to)
        {
            let user = world.user_index(e.user_id.as_str()).unwrap();
            let item = world.item_index(e.item_id.as_str()).unwrap();
            let shifted = world.truth.users[user]
                .drifted_category_preference
                .as_ref()
                .unwrap();
            sum += shifted[world.truth.items[item].category];
            n += 1.0;
        }
        sum / n
    };
    let (old, new) = (lean(base.start, boundary), lean(boundary, base.end()));
    assert!(new > old + 0.05, "before {old}, after {new}");
    assert!(world.true_preference_at(0, 0, boundary) != world.true_preference(0, 0));
}

#[test]
fn the_quickstart_world_has_the_promised_size() {
    let config = SimConfig::quickstart();
    assert_eq!(
        (config.users, config.items, config.categories, config.days),
        (2_000, 1_000, 12, 14)
    );
    let sim = simulate(&config).unwrap();
    let n = sim.events.len();
    assert!((200_000..=500_000).contains(&n), "{n} events");
    let categories: HashSet<&str> = sim.world.items.iter().map(|i| i.top_category()).collect();
    assert_eq!(categories.len(), 12);
    let purchases = sim
        .events
        .iter()
        .filter(|e| e.action == Action::Purchase)
        .count();
    assert!(purchases > 2_000, "{purchases}");
}

#[test]
fn invalid_configs_are_refused_naming_the_field() {
    let err = simulate(&SimConfig {
        list_length: 0,
        ..SimConfig::small()
    })
    .unwrap_err();
    assert!(err.to_string().contains("list_length"), "{err}");
}
