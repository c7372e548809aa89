//! What the joiner counts per experiment: per variant and per user the exposures and
//! attributed outcomes, the serving health of each variant, interleaving outcomes and
//! shadow comparisons. The statistics are computed from these at report time.

use std::collections::{BTreeMap, HashMap, HashSet};

use flywheel_core::{Action, Event, ExperimentDef, ExperimentKind, Impression, ItemId, UserId};

use super::joiner::ServedRequest;
use crate::interleaving::{outcome, Outcome, Team};

/// One user's exposures and outcomes in one variant.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserTally {
    /// Slots shown.
    pub impressions: u64,
    /// Attributed clicks.
    pub clicks: u64,
    /// Attributed purchases.
    pub purchases: u64,
    /// Attributed revenue.
    pub revenue: f64,
}

/// One variant's counts.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct VariantTally {
    /// Per exposed user (in id order, so exports and statistics are deterministic).
    pub users: BTreeMap<UserId, UserTally>,
    /// Requests served.
    pub requests: u64,
    /// Requests a fallback served.
    pub fallbacks: u64,
    /// Request latencies in milliseconds, where the impression carried one.
    pub latencies_ms: Vec<f64>,
    /// Slots whose attribution windows are still open.
    pub pending_slots: u64,
    /// Slots of closed requests.
    pub closed_slots: u64,
    /// Purchases attributed to closed requests.
    pub closed_purchases: u64,
}

/// A shadow list attached to its live request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShadowList {
    /// The experiment.
    pub experiment: String,
    /// The shadow variant's index.
    pub variant: usize,
    /// The items it ranked, best first.
    pub items: Vec<ItemId>,
}

/// A shadow variant's comparison with the live list.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ShadowTally {
    /// Requests shadowed (including those it missed the deadline for).
    pub requests: u64,
    /// Requests the shadow did not answer within its deadline.
    pub timeouts: u64,
    /// Shadow lists a fallback produced.
    pub fallbacks: u64,
    /// The shadow's latencies in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Σ overlap@k with the live list (k = the live list's length).
    pub overlap_sum: f64,
    /// Engaged (clicked) items of closed requests.
    pub engaged: u64,
    /// Of those, how many the shadow list held.
    pub engaged_in_shadow: u64,
    /// Σ reciprocal rank of engaged items in the shadow list (0 when absent).
    pub shadow_reciprocal_rank: f64,
    /// Σ reciprocal rank of engaged items in the live list.
    pub live_reciprocal_rank: f64,
}

/// Everything counted for one experiment.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExperimentTally {
    /// Per variant, in definition order.
    pub variants: Vec<VariantTally>,
    /// Requests with a forced variant: served, not counted.
    pub forced_requests: u64,
    /// Interleaving: closed requests won by the first variant, lost, tied.
    pub interleaving: [u64; 3],
    /// Shadow comparisons per variant (index 0, the live one, stays empty).
    pub shadows: Vec<ShadowTally>,
    /// Per user, events applied since the experiment started (for CUPED's pre-period).
    #[serde(with = "flywheel_core::canonical::sorted_map")]
    pub activity_since_start: HashMap<UserId, u64>,
}

impl ExperimentTally {
    /// An empty tally shaped like the definition.
    pub fn new(def: &ExperimentDef) -> Self {
        ExperimentTally {
            variants: vec![VariantTally::default(); def.variants.len()],
            shadows: vec![ShadowTally::default(); def.variants.len()],
            ..ExperimentTally::default()
        }
    }

    /// Counts a served list. In an interleaving experiment each slot counts for the
    /// team that contributed it, and the user is exposed to both teams.
    pub(crate) fn expose(
        &mut self,
        impression: &Impression,
        variant: usize,
        teams: &[Option<usize>],
        kind: ExperimentKind,
    ) {
        let slots = impression.slots.len() as u64;
        let tally = &mut self.variants[variant];
        tally.requests += 1;
        tally.fallbacks += u64::from(impression.fallback);
        if let Some(ms) = impression.latency_ms {
            tally.latencies_ms.push(ms);
        }
        if kind != ExperimentKind::Interleaving {
            tally.pending_slots += slots;
            let user = tally.users.entry(impression.user_id.clone()).or_default();
            user.impressions += slots;
            return;
        }
        for (index, tally) in self.variants.iter_mut().enumerate() {
            let contributed = teams.iter().filter(|t| **t == Some(index)).count() as u64;
            tally.pending_slots += contributed;
            let user = tally.users.entry(impression.user_id.clone()).or_default();
            user.impressions += contributed;
        }
    }

    /// Counts an attributed outcome on `slot` of `request`. In an interleaving
    /// experiment it goes to the team that contributed the slot; in any other it goes
    /// to the request's variant (the teams of a request belong to the interleaving
    /// experiment that shares it, not to this one).
    pub(crate) fn outcome(
        &mut self,
        request: &ServedRequest,
        variant: usize,
        slot: usize,
        event: &Event,
        kind: ExperimentKind,
    ) {
        let team = match kind {
            ExperimentKind::Interleaving => request.teams.get(slot).copied().flatten(),
            ExperimentKind::Ab | ExperimentKind::Shadow => None,
        };
        let credited = team.unwrap_or(variant);
        let Some(user) = self.variants[credited].users.get_mut(&request.user) else {
            return;
        };
        match event.action {
            Action::Click => user.clicks += 1,
            Action::Purchase => {
                user.purchases += 1;
                user.revenue += event.value.unwrap_or(0.0);
            }
            _ => {}
        }
    }

    /// A shadow list for a live request of this experiment.
    pub(crate) fn shadowed(&mut self, shadow: &Impression, list: &ShadowList, live: &[ItemId]) {
        let tally = &mut self.shadows[list.variant];
        tally.requests += 1;
        if shadow.slots.is_empty() && shadow.fallback {
            tally.timeouts += 1;
            return;
        }
        tally.fallbacks += u64::from(shadow.fallback);
        if let Some(ms) = shadow.latency_ms {
            tally.latencies_ms.push(ms);
        }
        tally.overlap_sum += overlap_at_k(live, &list.items);
    }

    /// A request's windows closed: its labels are final.
    pub(crate) fn close(
        &mut self,
        request: &ServedRequest,
        variant: usize,
        kind: Option<ExperimentKind>,
    ) {
        match kind {
            Some(ExperimentKind::Interleaving) => {
                for (index, tally) in self.variants.iter_mut().enumerate() {
                    let contributed = request.teams.iter().filter(|t| **t == Some(index)).count();
                    tally.pending_slots = tally.pending_slots.saturating_sub(contributed as u64);
                    tally.closed_slots += contributed as u64;
                    tally.closed_purchases += request
                        .purchases
                        .iter()
                        .filter(|(p, _)| request.teams.get(*p) == Some(&Some(index)))
                        .count() as u64;
                }
                self.close_interleaved(request);
            }
            _ => {
                let tally = &mut self.variants[variant];
                let slots = request.items.len() as u64;
                tally.pending_slots = tally.pending_slots.saturating_sub(slots);
                tally.closed_slots += slots;
                tally.closed_purchases += request.purchases.len() as u64;
                self.close_shadows(request);
            }
        }
    }

    fn close_interleaved(&mut self, request: &ServedRequest) {
        let teams: Vec<Team> = request
            .teams
            .iter()
            .map(|t| if *t == Some(0) { Team::A } else { Team::B })
            .collect();
        let (a, b) = crate::interleaving::credit(&teams, &request.clicked);
        let index = match outcome(a, b) {
            Outcome::Win => 0,
            Outcome::Loss => 1,
            Outcome::Tie => 2,
        };
        self.interleaving[index] += 1;
    }

    fn close_shadows(&mut self, request: &ServedRequest) {
        let engaged: Vec<&ItemId> = {
            let mut seen = HashSet::new();
            request
                .clicked
                .iter()
                .map(|&p| &request.items[p])
                .filter(|item| seen.insert(*item))
                .collect()
        };
        for shadow in &request.shadows {
            let tally = &mut self.shadows[shadow.variant];
            for item in &engaged {
                tally.engaged += 1;
                tally.live_reciprocal_rank += reciprocal_rank(&request.items, item);
                let rr = reciprocal_rank(&shadow.items, item);
                tally.shadow_reciprocal_rank += rr;
                tally.engaged_in_shadow += u64::from(rr > 0.0);
            }
        }
    }
}

/// |live ∩ shadow[..k]| / k with k the live list's length (0 for an empty live list).
pub fn overlap_at_k(live: &[ItemId], shadow: &[ItemId]) -> f64 {
    if live.is_empty() {
        return 0.0;
    }
    let k = live.len();
    let top: HashSet<&ItemId> = shadow.iter().take(k).collect();
    live.iter().filter(|i| top.contains(i)).count() as f64 / k as f64
}

fn reciprocal_rank(list: &[ItemId], item: &ItemId) -> f64 {
    list.iter()
        .position(|i| i == item)
        .map_or(0.0, |p| 1.0 / (p as f64 + 1.0))
}
