//! Feature snapshots: the values the online feature store hands to ranking, and that
//! offline replay recomputes "as of" a past moment. Plain data, no behaviour.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::event::Action;
use crate::ids::ItemId;
use crate::time::Timestamp;

/// What the feature store knows about a user at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserFeatures {
    /// The user's last N actions, most recent first.
    pub recent: Vec<(ItemId, Action, Timestamp)>,
    /// Share of the user's (weighted) engagement per top-level category; sums to 1
    /// when the user has any history.
    pub category_affinity: BTreeMap<String, f64>,
    /// Number of events the user has produced.
    pub event_count: u64,
    /// Items the user bought.
    pub purchased: BTreeSet<ItemId>,
    /// How many times each item was shown to the user in served lists (recent window).
    pub shown: BTreeMap<ItemId, u32>,
    /// The user's last event time.
    pub last_seen: Option<Timestamp>,
}

/// What the feature store knows about an item at one moment. Counters are
/// exponentially decayed with half-lives of one hour, one day and one week.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemFeatures {
    /// Decayed views at the 1 h, 24 h and 7 d horizons.
    pub views: [f64; 3],
    /// Decayed clicks at the three horizons.
    pub clicks: [f64; 3],
    /// Decayed purchases at the three horizons.
    pub purchases: [f64; 3],
    /// Decayed impressions (slots of served lists) at the three horizons.
    #[serde(default)]
    pub impressions: [f64; 3],
    /// Smoothed click-through rate (clicks over exposures with a Beta prior).
    pub ctr: f64,
    /// Trending score: short-horizon engagement relative to the long-horizon rate.
    pub trending: f64,
    /// The item's last event time.
    pub last_event: Option<Timestamp>,
}
