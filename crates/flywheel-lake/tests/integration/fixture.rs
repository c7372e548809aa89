//! A shop as a live log holds it: `SimConfig::small()` (seed fixed by the config), every
//! item and user upserted when created, the site's impressions (with logged features on
//! their slots) and events in time order, an experiment start, a shadow list and a
//! deletion of each kind; written to a real `EventLog` in a temp dir.

use std::path::Path;
use std::sync::OnceLock;

use flywheel_core::{ExperimentDef, Impression, LogRecord, Timestamp, UserId};
use flywheel_log::{EventLog, LogConfig};

/// The user the erasure test looks for in every byte.
pub const DISTINCT_USER: &str = "erase-me-7f3a9c1d";

fn sim() -> &'static flywheel_sim::Simulation {
    static SIM: OnceLock<flywheel_sim::Simulation> = OnceLock::new();
    SIM.get_or_init(|| flywheel_sim::simulate(&flywheel_sim::SimConfig::small()).unwrap())
}

fn with_features(mut impression: Impression) -> Impression {
    for slot in &mut impression.slots {
        slot.features = vec![slot.position as f32, 0.25, -1.5];
    }
    impression
}

/// The records, in log order.
pub fn records() -> &'static Vec<LogRecord> {
    static RECORDS: OnceLock<Vec<LogRecord>> = OnceLock::new();
    RECORDS.get_or_init(build_records)
}

fn build_records() -> Vec<LogRecord> {
    let sim = sim();
    let mut timed: Vec<(i64, u8, usize, LogRecord)> = Vec::new();
    for (i, item) in sim.world.items.iter().enumerate() {
        let at = item.created_at.map_or(0, |t| t.millis().max(0));
        timed.push((at, 0, i, LogRecord::ItemUpsert(item.clone())));
    }
    for (i, user) in sim.world.users.iter().enumerate() {
        let at = user.created_at.map_or(0, |t| t.millis().max(0));
        timed.push((at, 1, i, LogRecord::UserUpsert(user.clone())));
    }
    for (i, impression) in sim.impressions.iter().enumerate() {
        let record = LogRecord::Impression(with_features(impression.clone()));
        timed.push((impression.timestamp.millis(), 2, i, record));
    }
    for (i, event) in sim.events.iter().enumerate() {
        timed.push((
            event.timestamp.millis(),
            3,
            i,
            LogRecord::Event(event.clone()),
        ));
    }
    timed.sort_by_key(|(at, kind, index, _)| (*at, *kind, *index));
    let mut records: Vec<LogRecord> = timed.into_iter().map(|(_, _, _, r)| r).collect();
    add_distinct_user(&mut records);
    add_extras(&mut records);
    records
}

/// Gives the first user with events the distinctive id everywhere it appears.
fn add_distinct_user(records: &mut [LogRecord]) {
    let victim = sim().events[0].user_id.clone();
    let distinct = UserId::new_unchecked(DISTINCT_USER);
    for record in records.iter_mut() {
        match record {
            LogRecord::Event(e) if e.user_id == victim => e.user_id = distinct.clone(),
            LogRecord::Impression(i) if i.user_id == victim => i.user_id = distinct.clone(),
            LogRecord::UserUpsert(u) if u.id == victim => u.id = distinct.clone(),
            _ => {}
        }
    }
}

fn add_extras(records: &mut Vec<LogRecord>) {
    let middle = records.len() / 2;
    let at = Timestamp::from_millis(flywheel_sim::SimConfig::small().start.millis() + 3_600_000);
    let def = serde_json::json!({
        "id": "lake-test", "kind": "ab",
        "variants": [{"name": "control", "share": 0.5}, {"name": "treatment", "share": 0.5}]
    });
    let experiment = ExperimentDef::from_json(&def).unwrap();
    records.insert(
        middle,
        LogRecord::ExperimentStart {
            experiment,
            layer_buckets: [0, 10_000],
            at,
        },
    );
    let shadow = records.iter().find_map(|r| match r {
        LogRecord::Impression(i) => Some(i.clone()),
        _ => None,
    });
    if let Some(mut shadow) = shadow {
        shadow.model_version = "v-shadow".into();
        records.insert(middle + 1, LogRecord::ShadowImpression(shadow));
    }
    let end = Timestamp::from_millis(at.millis() + 10 * 86_400_000);
    let item = sim().world.items[0].id.clone();
    let user = sim().world.users[1].id.clone();
    records.push(LogRecord::ItemDelete { id: item, at: end });
    records.push(LogRecord::UserDelete { id: user, at: end });
}

/// Appends `records` to a log at `dir`, 500 per batch.
pub fn write_log(dir: &Path, records: &[LogRecord]) -> EventLog {
    let (log, _) = EventLog::open(LogConfig::new(dir)).unwrap();
    append(&log, records);
    log
}

/// Appends `records` to `log`, 500 per batch.
pub fn append(log: &EventLog, records: &[LogRecord]) {
    for chunk in records.chunks(500) {
        let payloads: Vec<Vec<u8>> = chunk.iter().map(|r| r.encode().unwrap()).collect();
        log.append_batch(&payloads).unwrap();
    }
}

/// The log's records with their offsets.
pub fn with_offsets(records: &[LogRecord]) -> Vec<(u64, LogRecord)> {
    records
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, r)| (i as u64, r))
        .collect()
}

/// Whether a record names `user` as its user.
pub fn is_users(record: &LogRecord, user: &str) -> bool {
    match record {
        LogRecord::Event(e) => e.user_id.as_str() == user,
        LogRecord::Impression(i) | LogRecord::ShadowImpression(i) => i.user_id.as_str() == user,
        LogRecord::UserUpsert(u) => u.id.as_str() == user,
        LogRecord::UserDelete { id, .. } => id.as_str() == user,
        _ => false,
    }
}
