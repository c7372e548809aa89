//! Two studies on the simulator, whose click model is known, of what the ranker learns
//! from logged impressions:
//!
//! - **position bias**: an old logging policy orders each list by a score of its own
//!   (logged as the slots' channel score) that is independent of the items' true
//!   appeal, and users click with the simulator's biased model — examination
//!   `1/(1+p)^0.7` times the true `P(click | examined)`. A ranker fitted without the
//!   correction learns that a high old score gets clicks (it put the item on top); one
//!   fitted with the logged position as a training-only feature, held at the top slot
//!   when serving, attributes those clicks to the slot;
//! - **context**: the same log in a world where the device changes what appeals (cheap
//!   items on a phone, dear ones on a desktop: the click model's `device_price_weight`),
//!   logged with the request's device or without it.
//!
//! Each arm goes through the real path: log records → [`training::rows`] (point-in-time
//! rows recomputed from the impressions) → [`training::fit_ranker`]. Arms are scored on
//! fresh requests (random users, devices and candidates, random old scores) against the
//! truth: NDCG@10 with the true preference as the gain, and Kendall's τ between the
//! ranker's scores and the true preferences. `flywheel bench ranker-bias` prints them.

use flywheel_core::{
    Action, Candidate, Channel, Event, Impression, ImpressionSlot, LogRecord, PropensityKind,
    RequestContext, RequestId, Timestamp,
};
use flywheel_pipeline::{EngineConfig, PositionBias, State};
use flywheel_ranking::{featurize, Ranker, RankingInput};
use flywheel_sim::{SimConfig, World};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::error::{OfflineError, Result};
use crate::training;

/// The devices requests come from in the studies.
const DEVICES: [&str; 2] = ["mobile", "desktop"];
/// The cut-off of the NDCG the arms are compared on.
const NDCG_AT: usize = 10;
/// How many of a ranker's most important features a score names.
const TOP_FEATURES: usize = 3;

/// The size of a study.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StudySettings {
    /// Seed of the world, the log and the evaluation requests.
    pub seed: u64,
    /// Simulated users.
    pub users: usize,
    /// Items in the catalog.
    pub items: usize,
    /// Logged requests (impressions) the rankers learn from.
    pub requests: usize,
    /// Slots per logged list.
    pub list_length: usize,
    /// Evaluation requests.
    pub eval_requests: usize,
    /// Candidates per evaluation request.
    pub eval_candidates: usize,
    /// The click model's `device_price_weight` in the context study.
    pub device_price_weight: f64,
}

impl Default for StudySettings {
    fn default() -> Self {
        StudySettings {
            seed: 7,
            users: 300,
            items: 200,
            requests: 12_000,
            list_length: 10,
            eval_requests: 400,
            eval_candidates: 30,
            device_price_weight: 2.0,
        }
    }
}

/// How one arm's ranker orders fresh requests, against the truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmScore {
    /// What the arm is.
    pub arm: String,
    /// Mean NDCG@10, the true `P(click | examined)` as the gain.
    pub ndcg_at_10: f64,
    /// Mean Kendall τ-a between the ranker's scores and the true preferences.
    pub kendall_tau: f64,
    /// Training rows the ranker was fitted on.
    pub rows: usize,
    /// The ranker's most important features (by split gain), most important first.
    pub top_features: Vec<String>,
}

/// What both studies found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyReport {
    /// The settings.
    pub settings: StudySettings,
    /// Position bias: without the correction, then with it.
    pub position: [ArmScore; 2],
    /// Context: without context features (nothing logged), then with them.
    pub context: [ArmScore; 2],
    /// For reference: ordering by the old policy's score, and by the true preference
    /// (the ceiling) on the position study's evaluation requests.
    pub references: [ArmScore; 2],
}

/// Runs both studies.
pub fn run(settings: &StudySettings) -> Result<StudyReport> {
    let position = position_study(settings)?;
    let context = context_study(settings)?;
    let world = study_world(settings, 0.0)?;
    let requests = eval_requests(&world, settings);
    Ok(StudyReport {
        settings: *settings,
        position,
        context,
        references: [
            score_requests(&requests, "old policy's score", 0, |r, i| {
                f64::from(r.old_scores[i])
            }),
            score_requests(&requests, "true preference (ceiling)", 0, |r, i| r.gains[i]),
        ],
    })
}

/// The position study: one log, a ranker fitted with `position_bias = "none"` and one
/// with `"feature"`, both scored on the same fresh requests.
pub fn position_study(settings: &StudySettings) -> Result<[ArmScore; 2]> {
    let world = study_world(settings, 0.0)?;
    let log = simulated_log(&world, settings, true);
    let requests = eval_requests(&world, settings);
    let arm = |bias: PositionBias, name: &str| -> Result<ArmScore> {
        Ok(score_ranker(
            &world,
            &log,
            &requests,
            &fit(&log, bias)?,
            name,
        ))
    };
    Ok([
        arm(PositionBias::None, "no position correction")?,
        arm(PositionBias::Feature, "position as a training-only feature")?,
    ])
}

/// The context study: a world where the device changes what appeals; one log whose
/// impressions carry the request's device and the same log without it, both fitted
/// with the position correction.
pub fn context_study(settings: &StudySettings) -> Result<[ArmScore; 2]> {
    let world = study_world(settings, settings.device_price_weight)?;
    let requests = eval_requests(&world, settings);
    let arm = |logged: bool, name: &str| -> Result<ArmScore> {
        let log = simulated_log(&world, settings, logged);
        Ok(score_ranker(
            &world,
            &log,
            &requests,
            &fit(&log, PositionBias::Feature)?,
            name,
        ))
    };
    Ok([
        arm(false, "no context logged")?,
        arm(true, "device logged (context features)")?,
    ])
}

fn study_world(settings: &StudySettings, device_price_weight: f64) -> Result<World> {
    let config = SimConfig {
        seed: settings.seed,
        users: settings.users,
        items: settings.items,
        ..SimConfig::small()
    };
    let mut world =
        World::generate(&config).map_err(|e| OfflineError::Config(format!("simulator: {e}")))?;
    world.truth.model.device_price_weight = device_price_weight;
    Ok(world)
}

/// A simulated log and when it ends.
struct SimulatedLog {
    records: Vec<LogRecord>,
    end: Timestamp,
}

/// The moment the study's requests start: after the world's catalog is complete.
fn study_start(world: &World) -> Timestamp {
    let config = world.config();
    config
        .start
        .plus_millis(i64::from(config.days) * Timestamp::DAY)
}

/// The catalog, the users, then `settings.requests` logged lists, each followed by
/// the views of the slots the user examined and the clicks. The old policy orders
/// each list by a uniform random score of its own; `log_context` says whether the
/// impression carries the request's device.
fn simulated_log(world: &World, settings: &StudySettings, log_context: bool) -> SimulatedLog {
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x005e_ed0f_1065);
    let mut records: Vec<LogRecord> = world
        .items
        .iter()
        .cloned()
        .map(LogRecord::ItemUpsert)
        .chain(world.users.iter().cloned().map(LogRecord::UserUpsert))
        .collect();
    let start = study_start(world);
    let step = 40_000;
    let all: Vec<usize> = (0..world.items.len()).collect();
    let mut at = start;
    for request in 0..settings.requests {
        at = start.plus_millis(step * request as i64);
        let user = rng.gen_range(0..world.users.len());
        let device = DEVICES[rng.gen_range(0..DEVICES.len())];
        let mut scored: Vec<(usize, f32)> = all
            .choose_multiple(&mut rng, settings.list_length)
            .map(|&item| (item, rng.gen::<f32>()))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let request_id = RequestId::new_unchecked(format!("study-{request}"));
        let context = if log_context {
            RequestContext {
                device: Some(device.to_string()),
                ..RequestContext::default()
            }
        } else {
            RequestContext::default()
        };
        let features_offset = records.len() as u64;
        records.push(LogRecord::Impression(logged_list(
            world,
            &request_id,
            user,
            at,
            &scored,
            context,
            features_offset,
        )));
        for (position, (item, _)) in (0u32..).zip(&scored) {
            if rng.gen::<f64>() >= world.examination_probability(position) {
                continue;
            }
            let seen = at.plus_millis(1_000 + i64::from(position) * 100);
            let event = |action, timestamp| {
                LogRecord::Event(Event {
                    user_id: world.users[user].id.clone(),
                    item_id: world.items[*item].id.clone(),
                    action,
                    value: None,
                    timestamp,
                    request_id: Some(request_id.clone()),
                    position: Some(position),
                    context: BTreeMap::from([("device".to_string(), device.to_string())]),
                })
            };
            records.push(event(Action::View, seen));
            if rng.gen::<f64>() < world.true_preference_on(user, *item, seen, device) {
                records.push(event(Action::Click, seen.plus_millis(2_000)));
            }
        }
    }
    SimulatedLog {
        records,
        end: at.plus_millis(step),
    }
}

fn logged_list(
    world: &World,
    request_id: &RequestId,
    user: usize,
    at: Timestamp,
    scored: &[(usize, f32)],
    context: RequestContext,
    features_offset: u64,
) -> Impression {
    let slots = (0u32..)
        .zip(scored)
        .map(|(position, (item, score))| ImpressionSlot {
            item_id: world.items[*item].id.clone(),
            position,
            score: f64::from(*score),
            propensity: 1.0,
            propensity_kind: PropensityKind::Deterministic,
            team: None,
            channel: Channel::Popularity,
            channel_rank: 0,
            channel_score: *score,
            source_item: None,
            features: Vec::new(),
        })
        .collect();
    Impression {
        request_id: request_id.clone(),
        user_id: world.users[user].id.clone(),
        timestamp: at,
        experiments: Vec::new(),
        forced: false,
        category: None,
        count: u32::try_from(scored.len()).ok(),
        context,
        model_version: "old-policy".into(),
        fallback: false,
        features_offset: Some(features_offset),
        latency_ms: None,
        slots,
    }
}

/// A fitted arm.
struct Fitted {
    ranker: Ranker,
    rows: usize,
    top_features: Vec<String>,
}

/// The ranker of `[training]` (LambdaMART GBDT) fitted on the log's rows whose label
/// window closed, with the given position-bias setting.
fn fit(log: &SimulatedLog, bias: PositionBias) -> Result<Fitted> {
    let mut config = EngineConfig::default();
    config.training.position_bias = bias;
    // Clicks come seconds after their list: an hour closes almost every label.
    config.training.label_window_hours = 1.0;
    let replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> Result<()>| -> Result<()> {
        for (offset, record) in (0u64..).zip(&log.records) {
            visit(offset, record)?;
        }
        Ok(())
    };
    let set = training::rows(&config, &replay, &mut |_| {})?;
    let closed: Vec<&training::RankerRow> = set.rows.iter().filter(|r| r.label_closed).collect();
    let (ranker, fit) = training::fit_ranker(&config, &closed)?.ok_or_else(|| {
        OfflineError::NotEnoughData("the simulated log holds no clicks to learn from".into())
    })?;
    let top = fit
        .importances
        .iter()
        .filter(|f| f.gain > 0.0)
        .take(TOP_FEATURES)
        .map(|f| f.name.clone())
        .collect();
    Ok(Fitted {
        ranker,
        rows: fit.rows,
        top_features: top,
    })
}

/// One evaluation request: a user, a device, candidates with the old policy's random
/// scores, and the truth.
struct EvalRequest {
    user: usize,
    device: &'static str,
    items: Vec<usize>,
    old_scores: Vec<f32>,
    gains: Vec<f64>,
}

fn eval_requests(world: &World, settings: &StudySettings) -> Vec<EvalRequest> {
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0xe7a1);
    let all: Vec<usize> = (0..world.items.len()).collect();
    let at = study_start(world);
    (0..settings.eval_requests)
        .map(|_| {
            let user = rng.gen_range(0..world.users.len());
            let device = DEVICES[rng.gen_range(0..DEVICES.len())];
            let items: Vec<usize> = all
                .choose_multiple(&mut rng, settings.eval_candidates.min(all.len()))
                .copied()
                .collect();
            let old_scores = items.iter().map(|_| rng.gen::<f32>()).collect();
            let gains = items
                .iter()
                .map(|&item| world.true_preference_on(user, item, at, device))
                .collect();
            EvalRequest {
                user,
                device,
                items,
                old_scores,
                gains,
            }
        })
        .collect()
}

/// Scores every evaluation request with the ranker on the state at the log's end, the
/// request's device in its context, and the candidate's old score as its channel score.
fn score_ranker(
    world: &World,
    log: &SimulatedLog,
    requests: &[EvalRequest],
    fitted: &Fitted,
    arm: &str,
) -> ArmScore {
    let mut state = State::new(flywheel_pipeline::feature_config(&EngineConfig::default()));
    for record in &log.records {
        state.apply(record);
    }
    let now = log.end;
    let mut score = score_requests(requests, arm, fitted.rows, |request, index| {
        let item_id = &world.items[request.items[index]].id;
        let Some(item) = state.catalog.item(item_id) else {
            return f64::NEG_INFINITY;
        };
        let context = RequestContext {
            device: Some(request.device.to_string()),
            ..RequestContext::default()
        };
        let candidate = Candidate {
            item_id: item_id.clone(),
            channel: Channel::Popularity,
            channel_score: request.old_scores[index],
            channel_rank: 0,
            source_item: None,
        };
        let user = state
            .features
            .user_features(&world.users[request.user].id, now);
        let features = featurize(&RankingInput {
            user: &user,
            item,
            item_features: &state.features.item_features(item_id, now),
            candidate: &candidate,
            now,
            context: &context,
        });
        fitted.ranker.predict(&features)
    });
    score.top_features = fitted.top_features.clone();
    score
}

fn score_requests(
    requests: &[EvalRequest],
    arm: &str,
    rows: usize,
    score: impl Fn(&EvalRequest, usize) -> f64,
) -> ArmScore {
    let (mut ndcg, mut tau) = (0.0, 0.0);
    for request in requests {
        let scores: Vec<f64> = (0..request.items.len())
            .map(|i| score(request, i))
            .collect();
        ndcg += ndcg_at(&scores, &request.gains, NDCG_AT);
        tau += kendall_tau(&scores, &request.gains);
    }
    let n = requests.len().max(1) as f64;
    ArmScore {
        arm: arm.to_string(),
        ndcg_at_10: ndcg / n,
        kendall_tau: tau / n,
        rows,
        top_features: Vec::new(),
    }
}

/// NDCG@k of the order of `scores` (ties broken by index) with graded `gains`.
fn ndcg_at(scores: &[f64], gains: &[f64], k: usize) -> f64 {
    let dcg = |order: &[usize]| -> f64 {
        order
            .iter()
            .take(k)
            .zip(0..)
            .map(|(&i, rank)| gains[i] / f64::from(rank + 2).log2())
            .sum()
    };
    let mut by_score: Vec<usize> = (0..scores.len()).collect();
    by_score.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut ideal: Vec<usize> = (0..gains.len()).collect();
    ideal.sort_by(|&a, &b| gains[b].total_cmp(&gains[a]));
    let best = dcg(&ideal);
    if best > 0.0 {
        dcg(&by_score) / best
    } else {
        0.0
    }
}

/// Kendall's τ-a: (concordant − discordant pairs) / all pairs.
fn kendall_tau(scores: &[f64], gains: &[f64]) -> f64 {
    let n = scores.len();
    let mut sum = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let product = (scores[i] - scores[j]) * (gains[i] - gains[j]);
            sum += product.signum() * f64::from(u8::from(product != 0.0));
        }
    }
    let pairs = (n * n.saturating_sub(1) / 2).max(1) as f64;
    sum / pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_and_tau_are_one_for_the_true_order_and_fall_for_its_reverse() {
        let gains = [0.9, 0.5, 0.1, 0.3];
        assert!((ndcg_at(&gains, &gains, 10) - 1.0).abs() < 1e-12);
        assert!((kendall_tau(&gains, &gains) - 1.0).abs() < 1e-12);
        let reverse: Vec<f64> = gains.iter().map(|g| -g).collect();
        assert!((kendall_tau(&reverse, &gains) + 1.0).abs() < 1e-12);
        assert!(ndcg_at(&reverse, &gains, 10) < 0.8);
    }
}
