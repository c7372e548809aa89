//! Counterfactual evaluation on a log built by code: a shop whose items have known
//! click-through rates, and impressions served by the pipeline then randomised by the
//! ε-greedy logging policy of `flywheel_experiments::explore`, with its propensities.
//! Every request is ranked from the state as of its features offset, exactly as the
//! engine does, so the logging policy's deterministic list is known for every request
//! and so is its true value under the click model.

use flywheel_core::{
    Action, Channel, Event, Impression, ImpressionSlot, Item, ItemId, LogRecord, PropensityKind,
    RequestId, Timestamp, User, UserId,
};
use flywheel_eval::ope::OpeOptions;
use flywheel_experiments::{explore, ExplorationPolicy, PoolItem, SlotKind};
use flywheel_offline::evaluation::{evaluate_candidate, CandidateOpeReport};
use flywheel_pipeline::{feature_config, recommend, EngineConfig, ModelSet, RecRequest, State};
use flywheel_retrieval::ContentIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ITEMS: usize = 200;
const USERS: usize = 100;
const REQUESTS: usize = 500;
const SLOTS: usize = 5;
const EPSILON: f64 = 0.3;
const T0: i64 = 1_700_000_000_000;

/// The click model: item k is clicked with probability 0.05 + 0.5·exp(−k/20) wherever
/// it shows (the background views favour the low numbers, so popular items click more).
fn true_ctr(item: &ItemId) -> f64 {
    let k: f64 = item.as_str()[1..].parse().unwrap();
    0.05 + 0.5 * (-k / 20.0).exp()
}

fn item_id(k: usize) -> ItemId {
    ItemId::new_unchecked(format!("i{k}"))
}

fn event(user: UserId, item: ItemId, action: Action, at: i64) -> Event {
    Event {
        user_id: user,
        item_id: item,
        action,
        value: None,
        timestamp: Timestamp::from_millis(at),
        request_id: None,
        position: None,
        context: Default::default(),
    }
}

/// How a request's slots are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Logging {
    /// ε-greedy exploration with exact propensities.
    Explore,
    /// The pipeline's list as is: deterministic slots.
    Plain,
    /// The list labelled with a kind no estimator may use (propensity 0.5).
    Labelled(PropensityKind),
}

/// The log being written, with the state the engine would hold at its end.
struct Shop {
    records: Vec<LogRecord>,
    state: State,
    content: Option<ContentIndex>,
    config: EngineConfig,
    rng: StdRng,
    /// Over the explored requests' slots: Σ true CTR of the deterministic list's item.
    true_value_sum: f64,
    /// Explored slots that kept the list's item.
    kept: usize,
    /// Explored slots, and slots of each other kind.
    explored_requests: usize,
    plain_requests: usize,
    labelled_requests: usize,
}

impl Shop {
    fn new(seed: u64) -> Shop {
        let config = EngineConfig::default();
        let mut shop = Shop {
            records: Vec::new(),
            state: State::new(feature_config(&config)),
            content: None,
            config,
            rng: StdRng::seed_from_u64(seed),
            true_value_sum: 0.0,
            kept: 0,
            explored_requests: 0,
            plain_requests: 0,
            labelled_requests: 0,
        };
        for k in 0..ITEMS {
            shop.push(LogRecord::ItemUpsert(Item::new(
                item_id(k),
                ["books", "games"][k % 2],
            )));
        }
        for u in 0..USERS {
            shop.push(LogRecord::UserUpsert(User::new(user_id(u))));
        }
        shop
    }

    fn push(&mut self, record: LogRecord) {
        if matches!(
            record,
            LogRecord::ItemUpsert(_) | LogRecord::ItemDelete { .. }
        ) {
            self.content = None;
        }
        self.state.apply(&record);
        self.records.push(record);
    }

    /// Views skewed to the low item numbers (the least of four uniform draws).
    fn background_view(&mut self, at: i64) {
        let u = self.rng.gen_range(0..USERS);
        let k = (0..4).map(|_| self.rng.gen_range(0..ITEMS)).min().unwrap();
        let e = event(user_id(u), item_id(k), Action::View, at);
        self.push(LogRecord::Event(e));
    }

    fn warm_up(&mut self) {
        for i in 0..600 {
            self.background_view(T0 + i * 1000);
        }
    }

    /// Serves one request as the engine would: rank from the current state, randomise,
    /// log the impression (after another record landed), then the clicks.
    fn serve(&mut self, r: usize, logging: Logging) {
        let now = T0 + 3_600_000 + r as i64 * 60_000;
        let user = user_id(self.rng.gen_range(0..USERS));
        let category = r.is_multiple_of(3).then(|| "books".to_string());
        let request = RecRequest {
            user_id: user.clone(),
            count: SLOTS,
            category: category.clone(),
            now: Timestamp::from_millis(now),
            keep_features: false,
            only_channel: None,
            exclude: Default::default(),
            use_ranker: true,
            enforce_deadlines: false,
            alternatives: self.config.experiments.exploration_pool,
            context: Default::default(),
        };
        let features_offset = self.state.applied;
        let content = self
            .content
            .get_or_insert_with(|| self.state.catalog.content_index());
        let rec = recommend(
            &self.state,
            &ModelSet::default(),
            Some(content),
            &self.config,
            &request,
        );
        let list: Vec<ItemId> = rec.items.iter().map(|i| i.item_id.clone()).collect();
        assert_eq!(list.len(), SLOTS, "request {r}: a full list");
        let slots = self.fill(&rec, &list, logging, now);
        // Another record reaches the log between the read and the impression.
        self.background_view(now + 1);
        let impression = Impression {
            context: Default::default(),
            request_id: RequestId::new_unchecked(format!("r{r}")),
            user_id: user.clone(),
            timestamp: Timestamp::from_millis(now),
            experiments: Vec::new(),
            forced: false,
            category,
            count: Some(SLOTS as u32),
            model_version: "v1".into(),
            fallback: false,
            features_offset: Some(features_offset),
            latency_ms: None,
            slots: slots.clone(),
        };
        self.push(LogRecord::Impression(impression));
        self.click(r, &user, &slots, now);
    }

    /// The slots of a request under `logging`, tallying the truth for explored ones.
    fn fill(
        &mut self,
        rec: &flywheel_pipeline::Recommendation,
        list: &[ItemId],
        logging: Logging,
        now: i64,
    ) -> Vec<ImpressionSlot> {
        let labelled = |kind: PropensityKind, propensity: f64| {
            list.iter()
                .map(|item| slot(item, kind, propensity, channel_of(rec, item)))
                .collect()
        };
        match logging {
            Logging::Plain => {
                self.plain_requests += 1;
                labelled(PropensityKind::Deterministic, 1.0)
            }
            Logging::Labelled(kind) => {
                self.labelled_requests += 1;
                labelled(kind, 0.5)
            }
            Logging::Explore => {
                self.explored_requests += 1;
                self.explored(rec, list, now)
            }
        }
    }

    fn explored(
        &mut self,
        rec: &flywheel_pipeline::Recommendation,
        list: &[ItemId],
        now: i64,
    ) -> Vec<ImpressionSlot> {
        let ids: Vec<&ItemId> = rec.alternatives.iter().map(|i| &i.item_id).collect();
        let features = self
            .state
            .feature_reader()
            .item_features_many(&ids, Timestamp::from_millis(now));
        let pool: Vec<PoolItem<ItemId>> = ids
            .into_iter()
            .zip(features)
            .map(|(id, f)| PoolItem {
                item: id.clone(),
                impressions: f.impressions[2],
                clicks: f.clicks[2],
            })
            .collect();
        let policy = ExplorationPolicy {
            epsilon: EPSILON,
            thompson: None,
        };
        let shown = explore(list, &pool, &policy, &mut self.rng);
        let mut slots = Vec::new();
        for (s, drawn) in shown.iter().enumerate() {
            assert_eq!(
                drawn.kind,
                SlotKind::EpsilonGreedy,
                "the pool is large enough"
            );
            self.true_value_sum += true_ctr(&list[s]);
            self.kept += usize::from(drawn.item == list[s]);
            let channel = if list.contains(&drawn.item) {
                channel_of(rec, &drawn.item)
            } else {
                Channel::Exploration
            };
            slots.push(slot(
                &drawn.item,
                PropensityKind::Exact,
                drawn.propensity,
                channel,
            ));
        }
        slots
    }

    /// Clicks drawn from the click model, each naming its request and position.
    fn click(&mut self, r: usize, user: &UserId, slots: &[ImpressionSlot], now: i64) {
        for (s, shown) in slots.iter().enumerate() {
            if self.rng.gen::<f64>() < true_ctr(&shown.item_id) {
                let mut e = event(
                    user.clone(),
                    shown.item_id.clone(),
                    Action::Click,
                    now + 5_000,
                );
                e.request_id = Some(RequestId::new_unchecked(format!("r{r}")));
                e.position = Some(s as u32);
                self.push(LogRecord::Event(e));
            }
        }
    }

    /// The true value of the logging policy's deterministic list, per explored slot.
    fn true_value(&self) -> f64 {
        self.true_value_sum / (self.explored_requests * SLOTS) as f64
    }
}

fn user_id(u: usize) -> UserId {
    UserId::new_unchecked(format!("u{u}"))
}

fn channel_of(rec: &flywheel_pipeline::Recommendation, item: &ItemId) -> Channel {
    rec.items
        .iter()
        .find(|i| &i.item_id == item)
        .map_or(Channel::Popularity, |i| i.channel)
}

fn slot(item: &ItemId, kind: PropensityKind, propensity: f64, channel: Channel) -> ImpressionSlot {
    ImpressionSlot {
        item_id: item.clone(),
        position: 0,
        score: 0.0,
        propensity,
        propensity_kind: kind,
        team: None,
        channel,
        channel_rank: 0,
        channel_score: 0.0,
        source_item: None,
        features: Vec::new(),
    }
}

/// A shop whose requests are logged by `logging(r)`.
fn shop(seed: u64, logging: impl Fn(usize) -> Logging) -> Shop {
    let mut shop = Shop::new(seed);
    shop.warm_up();
    for r in 0..REQUESTS {
        shop.serve(r, logging(r));
    }
    shop
}

/// Mostly explored, every 4th request plain, and a few labelled interleaved or conditional.
fn mixed(r: usize) -> Logging {
    match r % 20 {
        3 | 7 | 11 | 15 | 19 => Logging::Plain,
        5 => Logging::Labelled(PropensityKind::Interleaved),
        9 => Logging::Labelled(PropensityKind::Conditional),
        _ => Logging::Explore,
    }
}

fn evaluate(
    records: &[LogRecord],
    config: &EngineConfig,
) -> flywheel_offline::Result<CandidateOpeReport> {
    let replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> flywheel_offline::Result<()>| {
        for (offset, record) in records.iter().enumerate() {
            visit(offset as u64, record)?;
        }
        Ok(())
    };
    let options = OpeOptions {
        confidence: 0.99,
        ..OpeOptions::default()
    };
    evaluate_candidate(config, &replay, &ModelSet::default(), &options, &mut |_| {})
}

/// (a) Only the random draws are used: every other slot is counted by kind and left
/// out, and a log without any random draw is refused.
#[test]
fn only_stochastic_slots_are_used_and_a_deterministic_log_is_refused() {
    let shop = shop(7, mixed);
    let report = evaluate(&shop.records, &shop.config).unwrap();
    let slots = &report.slots;
    assert_eq!(slots.used as usize, shop.explored_requests * SLOTS);
    assert_eq!(slots.exact, slots.used);
    assert_eq!(report.estimates.n, slots.used);
    assert_eq!(slots.deterministic as usize, shop.plain_requests * SLOTS);
    assert_eq!(slots.interleaved as usize, SLOTS * REQUESTS / 20);
    assert_eq!(slots.conditional as usize, SLOTS * REQUESTS / 20);
    assert_eq!(report.impressions as usize, REQUESTS);
    assert_eq!(
        report.impressions_evaluated as usize,
        shop.explored_requests
    );
    assert!(report.warnings.iter().any(|w| w.contains("were skipped")));

    let plain = self::shop(7, |r| match r % 3 {
        0 => Logging::Plain,
        1 => Logging::Labelled(PropensityKind::Interleaved),
        _ => Logging::Labelled(PropensityKind::Conditional),
    });
    let error = evaluate(&plain.records, &plain.config).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("the log has no stochastic slots"),
        "{message}"
    );
    assert!(message.contains("variants[].exploration"), "{message}");
    assert!(error.is_user_error());
}

/// (b) A candidate whose list is the logging policy's deterministic list: it agrees
/// with every kept slot and no explored one, and IPS/SNIPS find the true value of that
/// list under the click model, which the logged mean reward misses.
#[test]
fn ips_finds_the_true_value_of_the_logging_policys_list() {
    let shop = shop(11, mixed);
    let report = evaluate(&shop.records, &shop.config).unwrap();
    let used = report.slots.used as f64;
    assert_eq!(
        (report.agreement * used).round() as usize,
        shop.kept,
        "π_e = 1 exactly on the slots that kept the list's item"
    );
    let truth = shop.true_value();
    for name in ["ips", "snips", "dr", "sndr"] {
        let e = report.estimates.estimator(name).unwrap();
        assert!(
            e.ci_low <= truth && truth <= e.ci_high,
            "{name}: {} [{}, {}] vs true value {truth}",
            e.estimate,
            e.ci_low,
            e.ci_high
        );
    }
    let ips = report.estimates.estimator("ips").unwrap();
    assert!(
        report.behaviour_value < ips.ci_low,
        "exploration lowers the logged reward below IPS's interval: {} vs {} [{}, {}]",
        report.behaviour_value,
        ips.estimate,
        ips.ci_low,
        ips.ci_high
    );
    // Every explored item is outside the list: the replay estimate has no match.
    assert!(report.replay.explored_slots > 0);
    assert_eq!(report.replay.matched, 0);
    assert_eq!(report.replay.mean_reward, None);
    let ess = report.estimates.weights.effective_sample_size;
    assert!(ess > 0.5 * used && ess < used, "ESS {ess} of {used}");
}

/// (c) The candidate re-ranks from the state as of each impression: records appended
/// after the last impression change today's popular items, not the result.
#[test]
fn records_after_an_impression_do_not_change_its_evaluation() {
    let mut shop = shop(13, mixed);
    let before = evaluate(&shop.records, &shop.config).unwrap();
    let end = T0 + 3_600_000 + REQUESTS as i64 * 60_000;
    let now = Timestamp::from_millis(end + 600_000);
    let state_before = shop.state.clone();
    for i in 0..400 {
        let item = item_id(ITEMS - 1 - i % 4);
        let e = event(
            user_id(i % USERS),
            item,
            Action::Purchase,
            end + i as i64 * 1000,
        );
        shop.push(LogRecord::Event(e));
    }
    assert_ne!(
        state_before.features.popular(None, now, SLOTS),
        shop.state.features.popular(None, now, SLOTS),
        "the appended records change today's state"
    );
    let after = evaluate(&shop.records, &shop.config).unwrap();
    assert_eq!(
        serde_json::to_value(&before).unwrap(),
        serde_json::to_value(&after).unwrap()
    );
    assert!(before.agreement > 0.5);
}
