//! Train/test splits of the log's events.
//!
//! A split marks which log records are held out. Records that are not events (items,
//! users, deletions) always stay in the training part; impressions follow their time
//! in the temporal split and stay in training otherwise.
//!
//! - **temporal**: every event at or after a time cut (the latest `holdout` share of
//!   events) is test, so no test event precedes a training event;
//! - **leave-last-out**: each user's last positive event (implicit weight > 0; ties on
//!   time go to the later record) is test;
//! - **user-random**: each user's events are shuffled with a seed and the first
//!   `round(ratio · n)` (round half to even, as Python's `round`) train, the rest test —
//!   the per-user stratified split of Microsoft Recommenders' `python_stratified_split`.

use flywheel_core::{LogRecord, Timestamp, UserId};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::str::FromStr;

use crate::error::{OfflineError, Result};

/// Which records are held out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// The latest events after a time cut.
    #[default]
    Temporal,
    /// Each user's last positive event.
    LeaveLastOut,
    /// A seeded per-user random share of each user's events.
    UserRandom,
}

impl FromStr for Split {
    type Err = OfflineError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "temporal" => Ok(Split::Temporal),
            "leave-last-out" => Ok(Split::LeaveLastOut),
            "user-random" => Ok(Split::UserRandom),
            other => Err(OfflineError::Config(format!(
                "unknown split `{other}`: use temporal, leave-last-out or user-random"
            ))),
        }
    }
}

/// How the log is split.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    /// The split.
    pub split: Split,
    /// Seed of the user-random split.
    pub seed: u64,
    /// Share of each user's events that train in the user-random split.
    pub train_ratio: f64,
    /// The temporal cut is never earlier than this (e.g. just after a model's training
    /// window, so that its holdout is data it never saw).
    pub not_before: Option<Timestamp>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            split: Split::Temporal,
            seed: 42,
            train_ratio: 0.75,
            not_before: None,
        }
    }
}

/// A split log: which records are test, and the time recommendations are made at.
#[derive(Debug, Clone)]
pub struct Marked {
    /// One flag per record, true when held out.
    pub is_test: Vec<bool>,
    /// Recommendations are made as of this time: the temporal cut, or the last
    /// training event's time.
    pub now: Timestamp,
    /// A one-line description of the protocol.
    pub description: String,
}

/// The time of an event or impression.
pub(crate) fn event_time(record: &LogRecord) -> Option<Timestamp> {
    match record {
        LogRecord::Event(e) => Some(e.timestamp),
        LogRecord::Impression(i) => Some(i.timestamp),
        _ => None,
    }
}

/// Marks the test records of `records` under `protocol`; `holdout` is the temporal
/// split's test share.
pub fn mark(records: &[LogRecord], protocol: &Protocol, holdout: f64) -> Result<Marked> {
    let events = records
        .iter()
        .filter(|r| matches!(r, LogRecord::Event(_)))
        .count();
    if events < 10 {
        return Err(OfflineError::NotEnoughData(format!(
            "evaluation needs at least 10 events, the log has {events}"
        )));
    }
    let (is_test, description, cut) = match protocol.split {
        Split::Temporal => {
            let holdout = holdout.clamp(0.01, 0.9);
            let cut = temporal_cut(records, holdout)
                .max(protocol.not_before.unwrap_or(Timestamp(i64::MIN)));
            let is_test = records
                .iter()
                .map(|r| event_time(r).is_some_and(|t| t >= cut))
                .collect();
            let text = match protocol.not_before {
                Some(_) => format!(
                    "temporal holdout: the events from {cut} on (after the training windows)"
                ),
                None => format!(
                    "temporal holdout: the last {:.0}% of events",
                    holdout * 100.0
                ),
            };
            (is_test, text, Some(cut))
        }
        Split::LeaveLastOut => (
            leave_last_out(records),
            "leave-last-out: each user's last positive event".to_string(),
            None,
        ),
        Split::UserRandom => {
            let ratio = protocol.train_ratio.clamp(0.05, 0.95);
            let text = format!(
                "user-random: per user, a seeded {:.0}/{:.0} split (seed {})",
                ratio * 100.0,
                (1.0 - ratio) * 100.0,
                protocol.seed
            );
            (user_random(records, ratio, protocol.seed), text, None)
        }
    };
    let now = match cut {
        Some(cut) => cut,
        None => last_train_time(records, &is_test),
    };
    Ok(Marked {
        is_test,
        now,
        description,
    })
}

fn temporal_cut(records: &[LogRecord], holdout: f64) -> Timestamp {
    let mut times: Vec<Timestamp> = records
        .iter()
        .filter_map(|r| match r {
            LogRecord::Event(e) => Some(e.timestamp),
            _ => None,
        })
        .collect();
    times.sort_unstable();
    let at = ((times.len() as f64) * (1.0 - holdout)) as usize;
    times[at.min(times.len() - 1)]
}

fn last_train_time(records: &[LogRecord], is_test: &[bool]) -> Timestamp {
    records
        .iter()
        .zip(is_test)
        .filter_map(|(r, test)| match r {
            LogRecord::Event(e) if !test => Some(e.timestamp),
            _ => None,
        })
        .max()
        .unwrap_or(Timestamp(0))
}

/// Record indices of each user's events, users in id order, events in log order.
fn events_by_user(records: &[LogRecord]) -> BTreeMap<&UserId, Vec<usize>> {
    let mut by_user: BTreeMap<&UserId, Vec<usize>> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        if let LogRecord::Event(e) = record {
            by_user.entry(&e.user_id).or_default().push(index);
        }
    }
    by_user
}

fn leave_last_out(records: &[LogRecord]) -> Vec<bool> {
    let mut is_test = vec![false; records.len()];
    for indices in events_by_user(records).values() {
        let last = indices
            .iter()
            .filter_map(|&i| match &records[i] {
                LogRecord::Event(e) if e.action.implicit_weight() > 0.0 => Some((e.timestamp, i)),
                _ => None,
            })
            .max();
        if let Some((_, i)) = last {
            is_test[i] = true;
        }
    }
    is_test
}

/// Python's `round` (half to even) of a non-negative value.
fn round_half_even(value: f64) -> usize {
    let floor = value.floor();
    let rounded = match (value - floor).partial_cmp(&0.5) {
        Some(std::cmp::Ordering::Less) => floor,
        Some(std::cmp::Ordering::Greater) => floor + 1.0,
        _ if floor % 2.0 == 0.0 => floor,
        _ => floor + 1.0,
    };
    rounded.max(0.0) as usize
}

fn user_random(records: &[LogRecord], ratio: f64, seed: u64) -> Vec<bool> {
    let mut is_test = vec![false; records.len()];
    let mut rng = StdRng::seed_from_u64(seed);
    for indices in events_by_user(records).values() {
        let mut shuffled = indices.clone();
        shuffled.shuffle(&mut rng);
        let train = round_half_even(ratio * shuffled.len() as f64);
        for &i in &shuffled[train.min(shuffled.len())..] {
            is_test[i] = true;
        }
    }
    is_test
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flywheel_core::{Action, Event, Item, ItemId};

    pub(crate) fn event(user: &str, item: &str, action: Action, secs: i64) -> LogRecord {
        LogRecord::Event(Event {
            user_id: UserId::new_unchecked(user),
            item_id: ItemId::new_unchecked(item),
            action,
            value: None,
            timestamp: Timestamp::from_secs(secs),
            request_id: None,
            position: None,
            context: Default::default(),
        })
    }

    /// Two users, twelve events, one item record in the middle.
    pub(crate) fn tiny_log() -> Vec<LogRecord> {
        let mut log = vec![
            event("a", "i1", Action::Click, 1),
            event("a", "i2", Action::Click, 2),
            event("b", "i1", Action::View, 3),
            event("a", "i3", Action::Purchase, 4),
            event("b", "i2", Action::Click, 5),
            LogRecord::ItemUpsert(Item::new(ItemId::new_unchecked("i9"), "books")),
            event("b", "i3", Action::Click, 6),
            event("a", "i4", Action::Click, 7),
            event("b", "i4", Action::Click, 8),
            event("a", "i5", Action::Click, 9),
            event("b", "i5", Action::Click, 10),
            event("a", "i6", Action::Click, 11),
            // b's last event is a dislike: not a positive, so not left out.
            event("b", "i6", Action::Dislike, 12),
        ];
        log.push(event("a", "i7", Action::Click, 13));
        log
    }

    fn test_indices(marked: &Marked) -> Vec<usize> {
        (0..marked.is_test.len())
            .filter(|i| marked.is_test[*i])
            .collect()
    }

    #[test]
    fn temporal_split_holds_out_the_latest_events() {
        let log = tiny_log();
        let marked = mark(&log, &Protocol::default(), 0.25).expect("13 events");
        // 13 events: cut at the event of rank floor(13 · 0.75) = 9 (0-based) → t = 10.
        assert_eq!(marked.now, Timestamp::from_secs(10));
        assert_eq!(test_indices(&marked), vec![10, 11, 12, 13]);
        let last_train = log
            .iter()
            .zip(&marked.is_test)
            .filter(|(_, t)| !**t)
            .filter_map(|(r, _)| event_time(r))
            .max();
        let first_test = log
            .iter()
            .zip(&marked.is_test)
            .filter(|(_, t)| **t)
            .filter_map(|(r, _)| event_time(r))
            .min();
        assert!(
            last_train < first_test,
            "a test event precedes a train event"
        );
    }

    #[test]
    fn temporal_split_never_puts_test_before_train_with_ties() {
        // Many events share timestamps: the cut keeps every tie on one side.
        let log: Vec<LogRecord> = (0..40)
            .map(|i| {
                event(
                    &format!("u{}", i % 3),
                    &format!("i{i}"),
                    Action::Click,
                    i / 4,
                )
            })
            .collect();
        for holdout in [0.05, 0.1, 0.33, 0.5] {
            let marked = mark(&log, &Protocol::default(), holdout).expect("40 events");
            let train_max = log
                .iter()
                .zip(&marked.is_test)
                .filter(|(_, t)| !**t)
                .filter_map(|(r, _)| event_time(r))
                .max();
            let test_min = log
                .iter()
                .zip(&marked.is_test)
                .filter(|(_, t)| **t)
                .filter_map(|(r, _)| event_time(r))
                .min();
            assert!(train_max < test_min, "holdout {holdout}");
        }
    }

    #[test]
    fn leave_last_out_takes_each_users_last_positive_event() {
        let log = tiny_log();
        let protocol = Protocol {
            split: Split::LeaveLastOut,
            ..Protocol::default()
        };
        let marked = mark(&log, &protocol, 0.1).expect("13 events");
        // a: i7 at t=13 (index 13); b: i5 at t=10 (index 10), its later dislike stays in train.
        assert_eq!(test_indices(&marked), vec![10, 13]);
        assert_eq!(marked.now, Timestamp::from_secs(12));
    }

    #[test]
    fn user_random_is_seeded_and_stratified() {
        let log = tiny_log();
        let protocol = Protocol {
            split: Split::UserRandom,
            seed: 7,
            train_ratio: 0.75,
            not_before: None,
        };
        let marked = mark(&log, &protocol, 0.1).expect("13 events");
        let again = mark(&log, &protocol, 0.1).expect("13 events");
        assert_eq!(marked.is_test, again.is_test, "same seed, same split");
        // a has 7 events: round(5.25) = 5 train, 2 test; b has 6: round(4.5) = 4 (half to even), 2 test.
        let test_of = |user: &str| {
            log.iter()
                .zip(&marked.is_test)
                .filter(|(r, t)| {
                    **t && matches!(r, LogRecord::Event(e) if e.user_id.as_str() == user)
                })
                .count()
        };
        assert_eq!((test_of("a"), test_of("b")), (2, 2));
        assert!(!marked.is_test[5], "the item record always trains");
        let other = Protocol {
            seed: 8,
            ..protocol
        };
        let different = (0..50).any(|s| {
            mark(
                &log,
                &Protocol {
                    seed: s,
                    ..other.clone()
                },
                0.1,
            )
            .expect("13 events")
            .is_test
                != marked.is_test
        });
        assert!(different, "the seed changes the split");
    }

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(4.5), 4);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(5.25), 5);
        assert_eq!(round_half_even(2.75), 3);
    }

    #[test]
    fn parses_split_names() {
        assert_eq!(
            "leave-last-out".parse::<Split>().ok(),
            Some(Split::LeaveLastOut)
        );
        assert!("random".parse::<Split>().is_err());
    }
}
