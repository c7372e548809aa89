//! Counterfactual evaluation of a candidate model version on flywheel's own log.
//!
//! The serving policy logs, for every slot it shows, the probability it had of
//! putting that item there (`ImpressionSlot::propensity`). Only slots of kind `exact`
//! or `estimated` are random draws ([`PropensityKind::is_stochastic`]); every other
//! slot (`deterministic`, `interleaved`, `conditional`) is skipped and counted, never
//! used. The log is replayed once, in memory:
//!
//! - a [`Ledger`] (with [`Joiner::keep_closed`](flywheel_experiments::live::Joiner::keep_closed),
//!   then `close_all` at the end) joins the clicks to each request, per position, inside
//!   the engine's attribution windows;
//! - a fresh [`State`] applies the records with `State::apply`; each impression with a
//!   stochastic slot is re-ranked by the candidate from the state as of its
//!   `features_offset` (every record before it, none after — exactly what the engine
//!   read), for the logged user, count, category and timestamp.
//!
//! The candidate is deterministic, so per stochastic slot s with logged item a_s,
//! propensity p_s and reward r_s (1 when the slot was clicked), π_e = 1 when the
//! candidate's list has a_s at slot s and 0 otherwise (slot-wise, as Open Bandit
//! Pipeline's position-based IPS). The reward model of DM/DR is the item's smoothed CTR
//! (`ItemFeatures::ctr`) as of the impression: q̂ at the logged item, and the
//! direct-method term at the candidate's item. [`flywheel_eval::ope::evaluate_policy`]
//! turns the rows into IPS, SNIPS, DM, DR and SNDR with intervals, the effective sample
//! size and its warnings. The replay estimate (Li et al.) adds the mean reward over the
//! uniformly drawn ε-greedy slots whose item the candidate would have shown there.

use std::collections::{BTreeMap, HashMap};

use flywheel_core::{
    Channel, Impression, ImpressionSlot, ItemId, LogRecord, PropensityKind, RequestId,
};
use flywheel_eval::ope::{evaluate_policy, LoggedBandit, OpeOptions, OpeReport};
use flywheel_eval::stats::{mean_and_se, two_sided_z};
use flywheel_experiments::Ledger;
use flywheel_pipeline::{feature_config, recommend, EngineConfig, ModelSet, RecRequest, State};
use flywheel_retrieval::ContentIndex;
use serde::Serialize;

use crate::error::{OfflineError, Result};
use crate::training::Replay;

/// The result of `flywheel eval ope --candidate`.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateOpeReport {
    /// The candidate's model version.
    pub candidate: String,
    /// Impressions in the log.
    pub impressions: u64,
    /// Impressions with at least one stochastic slot, re-ranked by the candidate.
    pub impressions_evaluated: u64,
    /// What happened to every logged slot.
    pub slots: SlotCounts,
    /// Share of the stochastic slots where the candidate shows the logged item.
    pub agreement: f64,
    /// Mean reward of the logged (behaviour) policy on the stochastic slots.
    pub behaviour_value: f64,
    /// IPS, SNIPS, DM, DR, SNDR with intervals, weight diagnostics (ESS) and warnings.
    pub estimates: OpeReport,
    /// The replay estimate on the uniformly drawn slots.
    pub replay: ReplayEstimate,
    /// Reasons to read the figures with care, besides the estimators' own.
    pub warnings: Vec<String>,
}

/// Logged slots by what the evaluation did with them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlotCounts {
    /// Stochastic slots used (the estimators' rows).
    pub used: u64,
    /// Of which `exact` (ε-greedy) slots.
    pub exact: u64,
    /// Of which `estimated` (Thompson, Monte Carlo) slots.
    pub estimated: u64,
    /// Skipped: `deterministic` slots (no random draw).
    pub deterministic: u64,
    /// Skipped: `interleaved` slots (team draft, not a marginal propensity).
    pub interleaved: u64,
    /// Skipped: `conditional` slots (propensity conditional on earlier slots).
    pub conditional: u64,
    /// Skipped: stochastic slots whose propensity is not in (0, 1].
    pub invalid_propensity: u64,
    /// Skipped: stochastic slots of impressions whose `features_offset` lies after the
    /// impression itself (their features cannot be what was served).
    pub unplaceable: u64,
}

impl SlotCounts {
    /// Skipped slots of every kind.
    pub fn skipped(&self) -> u64 {
        self.deterministic
            + self.interleaved
            + self.conditional
            + self.invalid_propensity
            + self.unplaceable
    }

    /// Counts one slot of the impression; returns whether the estimators can use it.
    fn count(&mut self, slot: &ImpressionSlot, placeable: bool) -> bool {
        match slot.propensity_kind {
            PropensityKind::Deterministic => self.deterministic += 1,
            PropensityKind::Interleaved => self.interleaved += 1,
            PropensityKind::Conditional => self.conditional += 1,
            _ if !placeable => self.unplaceable += 1,
            _ if !valid_propensity(slot.propensity) => self.invalid_propensity += 1,
            PropensityKind::Estimated => self.estimated += 1,
            PropensityKind::Exact => self.exact += 1,
        }
        placeable && usable(slot)
    }
}

/// The replay estimate: on the slots the logging policy filled with a uniform ε-greedy
/// draw, the mean reward of those where the candidate's item equals the logged one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayEstimate {
    /// Uniformly drawn (ε-greedy explored) slots in the log.
    pub explored_slots: u64,
    /// Of which the candidate shows the logged item at that slot.
    pub matched: u64,
    /// Mean reward over the matched slots (`None` without a match).
    pub mean_reward: Option<f64>,
    /// Its standard error.
    pub se: Option<f64>,
    /// Normal interval at the options' confidence, `[low, high]`.
    pub ci: Option<[f64; 2]>,
}

/// One stochastic slot: the estimators' row, and whether the replay estimate uses it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SlotRow {
    reward: f64,
    pscore: f64,
    pi_e: f64,
    q_hat: f64,
    dm_term: f64,
    explored: bool,
}

/// Scores `candidate` on the logged impressions of the serving policy (see the module
/// docs). `config` is the engine's configuration (feature settings, re-ranking,
/// attribution lateness). Refuses a log without stochastic slots.
pub fn evaluate_candidate(
    config: &EngineConfig,
    replay: &Replay,
    candidate: &ModelSet,
    options: &OpeOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<CandidateOpeReport> {
    progress("reading the log");
    let records = read_log(replay)?;
    progress("joining clicks to impressions");
    let lateness_ms = (config.experiments.allowed_lateness_secs as i64).saturating_mul(1000);
    let clicks = clicks_per_request(&records, lateness_ms);
    let (plan, mut slots) = plan_impressions(&records);
    if slots.used == 0 {
        return Err(no_stochastic_slots(&slots));
    }
    progress("re-ranking each impression as of its features");
    let scorer = Scorer {
        config,
        models: candidate,
        clicks: &clicks,
    };
    let rows = replay_rows(&records, &plan, &scorer);
    slots.used = rows.len() as u64;
    progress("estimating");
    report(candidate, &records, &plan, slots, &rows, options)
}

/// Every record of the log, with its offset.
fn read_log(replay: &Replay) -> Result<Vec<(u64, LogRecord)>> {
    let mut records = Vec::new();
    replay(&mut |offset, record| {
        records.push((offset, record.clone()));
        Ok(())
    })?;
    Ok(records)
}

/// Clicks per position of every request, from the ledger's joiner with every window
/// closed at the end of the log.
fn clicks_per_request(
    records: &[(u64, LogRecord)],
    lateness_ms: i64,
) -> HashMap<RequestId, Vec<u32>> {
    let mut ledger = Ledger::new(lateness_ms);
    ledger.joiner.keep_closed();
    for (_, record) in records {
        ledger.apply(record);
    }
    ledger.joiner.close_all(&ledger.book);
    ledger
        .joiner
        .take_closed()
        .into_iter()
        .map(|closed| (closed.request_id, closed.clicks))
        .collect()
}

/// The impressions to re-rank: by the offset their features were read at, the indices
/// (into the records) of those with a usable stochastic slot. Counts every slot.
type Plan = BTreeMap<u64, Vec<usize>>;

fn plan_impressions(records: &[(u64, LogRecord)]) -> (Plan, SlotCounts) {
    let mut plan = Plan::new();
    let mut slots = SlotCounts::default();
    for (index, (offset, record)) in records.iter().enumerate() {
        let LogRecord::Impression(impression) = record else {
            continue;
        };
        let at = impression.features_offset.unwrap_or(*offset);
        let placeable = at <= *offset;
        let mut used = 0;
        for slot in &impression.slots {
            used += u64::from(slots.count(slot, placeable));
        }
        if used > 0 {
            slots.used += used;
            plan.entry(at).or_default().push(index);
        }
    }
    (plan, slots)
}

/// Whether a propensity can be divided by: in (0, 1].
fn valid_propensity(p: f64) -> bool {
    p > 0.0 && p <= 1.0
}

/// Whether the estimators use the slot: a random draw with a valid propensity.
fn usable(slot: &ImpressionSlot) -> bool {
    slot.propensity_kind.is_stochastic() && valid_propensity(slot.propensity)
}

fn no_stochastic_slots(slots: &SlotCounts) -> OfflineError {
    OfflineError::NotEnoughData(format!(
        "the log has no stochastic slots: enable exploration (variants[].exploration) in an experiment so that served lists carry exact or estimated propensities; skipped {} deterministic, {} interleaved and {} conditional slots, {} with an invalid propensity, {} read after their impression",
        slots.deterministic, slots.interleaved, slots.conditional, slots.invalid_propensity, slots.unplaceable
    ))
}

/// What re-ranks one impression.
struct Scorer<'a> {
    config: &'a EngineConfig,
    models: &'a ModelSet,
    clicks: &'a HashMap<RequestId, Vec<u32>>,
}

impl Scorer<'_> {
    /// The rows of one impression's stochastic slots, from the state as of its features.
    fn rows(&self, state: &State, content: &ContentIndex, impression: &Impression) -> Vec<SlotRow> {
        let ranked = self.candidate_list(state, content, impression);
        let now = impression.timestamp;
        let logged: Vec<&ItemId> = impression.slots.iter().map(|s| &s.item_id).collect();
        let q_logged = state.feature_reader().item_features_many(&logged, now);
        let shown: Vec<&ItemId> = ranked.iter().collect();
        let q_shown = state.feature_reader().item_features_many(&shown, now);
        let clicks = self.clicks.get(&impression.request_id);
        impression
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| usable(slot))
            .map(|(s, slot)| SlotRow {
                reward: clicked(clicks, s),
                pscore: slot.propensity,
                pi_e: if ranked.get(s) == Some(&slot.item_id) {
                    1.0
                } else {
                    0.0
                },
                q_hat: q_logged.get(s).map_or(0.0, |f| f.ctr),
                dm_term: q_shown.get(s).map_or(0.0, |f| f.ctr),
                explored: slot.propensity_kind == PropensityKind::Exact
                    && slot.channel == Channel::Exploration,
            })
            .collect()
    }

    /// The candidate's list for the logged request, as serving would build it.
    fn candidate_list(
        &self,
        state: &State,
        content: &ContentIndex,
        impression: &Impression,
    ) -> Vec<ItemId> {
        let count = impression
            .count
            .map_or(impression.slots.len(), |c| c as usize);
        let request = RecRequest {
            user_id: impression.user_id.clone(),
            count,
            category: impression.category.clone(),
            now: impression.timestamp,
            keep_features: false,
            only_channel: None,
            exclude: Default::default(),
            use_ranker: true,
            enforce_deadlines: false,
            alternatives: 0,
            context: impression.context.clone(),
        };
        recommend(state, self.models, Some(content), self.config, &request)
            .items
            .into_iter()
            .map(|item| item.item_id)
            .collect()
    }
}

/// 1 when position `s` of the request was clicked at least once, else 0.
fn clicked(clicks: Option<&Vec<u32>>, s: usize) -> f64 {
    match clicks.and_then(|c| c.get(s)) {
        Some(&n) if n > 0 => 1.0,
        _ => 0.0,
    }
}

/// Replays the records into a fresh state; every planned impression is scored just
/// before the record at its features offset is applied (or after the last record).
fn replay_rows(records: &[(u64, LogRecord)], plan: &Plan, scorer: &Scorer) -> Vec<SlotRow> {
    let mut state = State::new(feature_config(scorer.config));
    // The content index of the catalog as of the current record, rebuilt after the
    // catalog changed when an impression needs it (as the engine's watcher does).
    let mut content: Option<ContentIndex> = None;
    let mut pending = plan.iter().peekable();
    let mut rows = Vec::new();
    let mut score_until = |limit: Option<u64>,
                           state: &State,
                           content: &mut Option<ContentIndex>| {
        while let Some((_, indices)) = pending.next_if(|(at, _)| limit.is_none_or(|l| **at <= l)) {
            let index = content.get_or_insert_with(|| state.catalog.content_index());
            for &i in indices {
                if let (_, LogRecord::Impression(impression)) = &records[i] {
                    rows.extend(scorer.rows(state, index, impression));
                }
            }
        }
    };
    for (offset, record) in records {
        score_until(Some(*offset), &state, &mut content);
        if matches!(
            record,
            LogRecord::ItemUpsert(_) | LogRecord::ItemDelete { .. }
        ) {
            content = None;
        }
        state.apply(record);
    }
    score_until(None, &state, &mut content);
    rows
}

/// The estimators on the rows, and the report around them.
fn report(
    candidate: &ModelSet,
    records: &[(u64, LogRecord)],
    plan: &Plan,
    slots: SlotCounts,
    rows: &[SlotRow],
    options: &OpeOptions,
) -> Result<CandidateOpeReport> {
    if rows.len() < 2 {
        return Err(OfflineError::NotEnoughData(format!(
            "off-policy evaluation needs at least 2 stochastic slots, the log has {}",
            rows.len()
        )));
    }
    let estimates = evaluate_policy(&logged_bandit(records, rows), options)
        .map_err(|e| OfflineError::Config(format!("off-policy evaluation: {e}")))?;
    let agreement = rows.iter().filter(|r| r.pi_e > 0.0).count() as f64 / rows.len() as f64;
    let replay = replay_estimate(rows, options.confidence);
    let warnings = own_warnings(&slots, &replay);
    Ok(CandidateOpeReport {
        candidate: candidate.version().to_string(),
        impressions: records
            .iter()
            .filter(|(_, r)| matches!(r, LogRecord::Impression(_)))
            .count() as u64,
        impressions_evaluated: plan.values().map(Vec::len).sum::<usize>() as u64,
        slots,
        agreement,
        behaviour_value: estimates.behavior_value,
        estimates,
        replay,
        warnings,
    })
}

/// The rows in the evaluator's columns; positions are the slots of the longest list.
fn logged_bandit(records: &[(u64, LogRecord)], rows: &[SlotRow]) -> LoggedBandit {
    let n_positions = records
        .iter()
        .filter_map(|(_, r)| match r {
            LogRecord::Impression(i) => Some(i.slots.len()),
            _ => None,
        })
        .max()
        .unwrap_or(1)
        .max(1);
    LoggedBandit {
        reward: rows.iter().map(|r| r.reward).collect(),
        pscore: rows.iter().map(|r| r.pscore).collect(),
        pi_e: rows.iter().map(|r| r.pi_e).collect(),
        q_hat: Some(rows.iter().map(|r| r.q_hat).collect()),
        dm_term: Some(rows.iter().map(|r| r.dm_term).collect()),
        n_positions,
    }
}

/// Mean reward over the explored slots where the candidate shows the logged item.
fn replay_estimate(rows: &[SlotRow], confidence: f64) -> ReplayEstimate {
    let explored: Vec<&SlotRow> = rows.iter().filter(|r| r.explored).collect();
    let matched: Vec<f64> = explored
        .iter()
        .filter(|r| r.pi_e > 0.0)
        .map(|r| r.reward)
        .collect();
    let (mean, se) = mean_and_se(matched.iter().copied());
    let z = two_sided_z(confidence);
    let found = !matched.is_empty();
    ReplayEstimate {
        explored_slots: explored.len() as u64,
        matched: matched.len() as u64,
        mean_reward: found.then_some(mean),
        se: found.then_some(se),
        ci: found.then_some([mean - z * se, mean + z * se]),
    }
}

fn own_warnings(slots: &SlotCounts, replay: &ReplayEstimate) -> Vec<String> {
    let mut out = Vec::new();
    if slots.skipped() > 0 {
        out.push(format!(
            "{} logged slots were skipped as no random draw ({} deterministic, {} interleaved, {} conditional, {} invalid propensity, {} read after their impression)",
            slots.skipped(), slots.deterministic, slots.interleaved, slots.conditional, slots.invalid_propensity, slots.unplaceable
        ));
    }
    if slots.estimated > 0 {
        out.push(format!(
            "{} Thompson slots carry Monte Carlo propensities: their weights are estimates",
            slots.estimated
        ));
    }
    if replay.matched == 0 {
        out.push(format!(
            "replay estimate undefined: the candidate shows none of the {} uniformly explored items at their slot",
            replay.explored_slots
        ));
    } else if replay.matched < 100 {
        out.push(format!(
            "replay estimate rests on {} matched slots only",
            replay.matched
        ));
    }
    out
}

impl CandidateOpeReport {
    /// A human-readable summary: slots, estimators, replay estimate, warnings.
    pub fn render_text(&self) -> String {
        let s = &self.slots;
        let mut out = format!(
            "Candidate {} on {} logged impressions ({} with stochastic slots)\n\
             slots used: {} ({} exact, {} estimated); skipped: {} deterministic, {} interleaved, {} conditional, {} invalid propensity, {} read after their impression\n\
             behaviour policy mean reward {:.6}; candidate agrees with the logged item on {:.2}% of the used slots\n",
            self.candidate,
            self.impressions,
            self.impressions_evaluated,
            s.used,
            s.exact,
            s.estimated,
            s.deterministic,
            s.interleaved,
            s.conditional,
            s.invalid_propensity,
            s.unplaceable,
            self.behaviour_value,
            100.0 * self.agreement
        );
        out.push_str(&self.estimates.render_text());
        let r = &self.replay;
        out.push_str(&match (r.mean_reward, r.ci) {
            (Some(mean), Some([low, high])) => format!(
                "replay on uniformly explored slots: {mean:.6} [{low:.6}, {high:.6}] over {} of {} slots\n",
                r.matched, r.explored_slots
            ),
            _ => format!(
                "replay on uniformly explored slots: no match among {} slots\n",
                r.explored_slots
            ),
        });
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        out
    }
}
