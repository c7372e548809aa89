//! The closed loop on a simulated clock: simulated users of a [`World`] arrive, a cheap
//! policy serves them inside the running experiment (assignment by the ledger's book,
//! team draft, ε-greedy exploration — the engine's own algorithms), the served list is
//! logged as an `Impression` record, the user reacts ([`World::respond`]: position bias,
//! true preferences, purchases hours later) and every event is applied to the
//! [`Ledger`] in event-time order, exactly as the engine's consumer would apply the log.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};

use flywheel_core::{
    Action, Channel, Event, ExperimentDef, ExperimentKind, ExperimentTag, Impression,
    ImpressionSlot, ItemId, LogRecord, PropensityKind, RequestId, Timestamp,
};
use flywheel_experiments::{
    explore, team_draft, ExplorationPolicy, Ledger, PoolItem, SlotKind, Team,
};
use flywheel_sim::World;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Slots per served list.
pub const LIST: usize = 10;
/// Candidates each request ranks (the list, then the exploration pool).
pub const CANDIDATES: usize = 20;
/// The engine's default allowed lateness of attribution windows.
pub const ALLOWED_LATENESS_MS: i64 = 600_000;
/// The model version the impressions of the cheap policy name.
pub const POLICY_VERSION: &str = "sim-noisy-preference";

/// How one variant ranks and how its users react.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm {
    /// σ of the Gaussian noise added to the logit of the true preference before ranking.
    pub noise: f64,
    /// Probability that a click the world produced is kept (its cart and purchase with
    /// it): the arm's true click probability is the world's times `keep`.
    pub keep: f64,
    /// ε of ε-greedy exploration over the candidates below the list, if it explores.
    pub epsilon: Option<f64>,
}

impl Arm {
    /// A plain arm: ranking noise `noise`, every click kept, no exploration.
    pub fn ranker(noise: f64) -> Arm {
        Arm {
            noise,
            keep: 1.0,
            epsilon: None,
        }
    }
}

/// The world and the traffic every run replays.
pub struct Shop {
    /// The simulated shop with its truth.
    pub world: World,
    /// Request times and users, in order.
    pub arrivals: Vec<(Timestamp, usize)>,
    /// When the experiment starts.
    pub start: Timestamp,
    /// Days it runs.
    pub days: u32,
}

impl Shop {
    /// The world's own sessions, shifted `offset_days` later (after an imported history).
    pub fn new(world: World, offset_days: u32) -> Shop {
        let offset = i64::from(offset_days) * Timestamp::DAY;
        let arrivals = world
            .arrivals()
            .into_iter()
            .map(|(t, u)| (t.plus_millis(offset), u))
            .collect();
        let start = world.config().start.plus_millis(offset);
        let days = world.config().days;
        Shop {
            world,
            arrivals,
            start,
            days,
        }
    }
}

/// One run: the experiment, each variant's arm (by index), the seed.
pub struct RunSpec<'a> {
    /// The experiment the traffic runs in.
    pub def: &'a ExperimentDef,
    /// Per variant, how it ranks and how its users react.
    pub arms: &'a [Arm],
    /// Seeds request ids, noise, draws and reactions.
    pub seed: u64,
    /// Keep every served request (interleaving and off-policy studies need them).
    pub keep_served: bool,
}

/// A served request, as the harness knows it.
#[derive(Debug, Clone)]
pub struct Served {
    /// The id the events carry back.
    pub request_id: RequestId,
    /// The user (index into the world).
    pub user: usize,
    /// The variant the user was assigned.
    pub variant: usize,
    /// Items shown, slot 0 first.
    pub shown: Vec<usize>,
    /// Per slot, the contributing team (interleaving).
    pub teams: Vec<Option<usize>>,
    /// Per slot, the logged propensity.
    pub propensities: Vec<f64>,
    /// The ranked list before exploration.
    pub base: Vec<usize>,
    /// The candidates below it (the exploration pool).
    pub pool: Vec<usize>,
}

/// What a run leaves: the ledger, the requests if kept, and the truth per variant.
pub struct Run {
    /// The ledger after every record was applied.
    pub ledger: Ledger,
    /// The served requests (when kept).
    pub served: Vec<Served>,
    /// Per variant, Σ true expected clicks and Σ slots of the lists it served.
    pub truth: Vec<[f64; 2]>,
}

impl Run {
    /// The true CTR of a variant's served lists (the world's click model).
    pub fn true_ctr(&self, variant: usize) -> f64 {
        let [clicks, slots] = self.truth[variant];
        if slots > 0.0 {
            clicks / slots
        } else {
            0.0
        }
    }
}

/// An event waiting for its time.
struct Pending {
    at: Timestamp,
    seq: u64,
    event: Event,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Events in event-time order (ties in the order they were produced).
#[derive(Default)]
pub struct Clock {
    queue: BinaryHeap<Reverse<Pending>>,
    seq: u64,
}

impl Clock {
    /// Schedules an event at its timestamp.
    pub fn push(&mut self, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Pending {
            at: event.timestamp,
            seq: self.seq,
            event,
        }));
    }

    /// Takes every event before `until` (all when `None`), in time order.
    pub fn due(&mut self, until: Option<Timestamp>) -> Vec<Event> {
        let mut due = Vec::new();
        while let Some(Reverse(next)) = self.queue.peek() {
            if until.is_some_and(|t| next.at >= t) {
                break;
            }
            if let Some(Reverse(pending)) = self.queue.pop() {
                due.push(pending.event);
            }
        }
        due
    }

    /// Applies every event before `until` (all when `None`).
    fn flush(&mut self, ledger: &mut Ledger, until: Option<Timestamp>) {
        for event in self.due(until) {
            ledger.apply(&LogRecord::Event(event));
        }
    }
}

/// A standard normal draw (Box–Muller).
pub fn gaussian(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `ln(p / (1 − p))`, clamped away from 0 and 1.
fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

/// The candidates of a request: distinct items drawn uniformly from those available.
fn candidates(world: &World, at: Timestamp, rng: &mut StdRng) -> Vec<usize> {
    let available = world.items_available_at(at).max(1);
    rand::seq::index::sample(rng, available, CANDIDATES.min(available)).into_vec()
}

/// The candidates ordered by noisy true preference, best first.
fn rank(
    world: &World,
    user: usize,
    candidates: &[usize],
    noise: f64,
    rng: &mut StdRng,
) -> Vec<usize> {
    let mut scored: Vec<(f64, usize)> = candidates
        .iter()
        .map(|&i| {
            (
                logit(world.true_preference(user, i)) + noise * gaussian(rng),
                i,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Runs the experiment over the shop's traffic. `on_day(ledger, day)` is called at the
/// end of every simulated day (1-based) with the events up to then applied.
pub fn simulate(shop: &Shop, spec: &RunSpec<'_>, mut on_day: impl FnMut(&Ledger, u32)) -> Run {
    let mut ledger = Ledger::new(ALLOWED_LATENESS_MS);
    ledger.joiner.keep_closed();
    start(&mut ledger, spec.def, shop.start);
    let mut run = Run {
        ledger: Ledger::default(),
        served: Vec::new(),
        truth: vec![[0.0; 2]; spec.def.variants.len()],
    };
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut clock = Clock::default();
    let mut day = 1;
    for (n, &(at, user)) in shop.arrivals.iter().enumerate() {
        while day <= shop.days && at >= day_end(shop, day) {
            clock.flush(&mut ledger, Some(day_end(shop, day)));
            on_day(&ledger, day);
            day += 1;
        }
        clock.flush(&mut ledger, Some(at));
        let request_id = RequestId::new_unchecked(format!("{:x}-{n}", spec.seed));
        let (served, impression) = serve(shop, spec, &ledger, request_id, at, user, &mut rng);
        ledger.apply(&LogRecord::Impression(impression));
        respond(shop, spec, &served, at, &mut run, &mut clock, &mut rng);
        if spec.keep_served {
            run.served.push(served);
        }
    }
    while day <= shop.days {
        clock.flush(&mut ledger, Some(day_end(shop, day)));
        on_day(&ledger, day);
        day += 1;
    }
    clock.flush(&mut ledger, None);
    run.ledger = ledger;
    run
}

fn day_end(shop: &Shop, day: u32) -> Timestamp {
    shop.start.plus_millis(i64::from(day) * Timestamp::DAY)
}

/// Starts the experiment in the ledger where the engine would place it.
pub fn start(ledger: &mut Ledger, def: &ExperimentDef, at: Timestamp) {
    let layer_buckets = ledger.book.place(def).unwrap_or([0, 10_000]);
    ledger.apply(&LogRecord::ExperimentStart {
        experiment: def.clone(),
        layer_buckets,
        at,
    });
}

/// The user's reaction: events into the clock (thinned by the arm), truth into the run.
fn respond(
    shop: &Shop,
    spec: &RunSpec<'_>,
    served: &Served,
    at: Timestamp,
    run: &mut Run,
    clock: &mut Clock,
    rng: &mut StdRng,
) {
    let arm = spec.arms[served.variant];
    let world = &shop.world;
    if spec.def.kind == ExperimentKind::Interleaving {
        for (slot, &item) in served.shown.iter().enumerate() {
            let team = served.teams[slot].unwrap_or(0);
            let clicks = world.click_probability(served.user, item, slot as u32);
            run.truth[team][0] += clicks;
            run.truth[team][1] += 1.0;
        }
    } else {
        let expected = world.expected_clicks(served.user, &served.shown);
        run.truth[served.variant][0] += expected * arm.keep;
        run.truth[served.variant][1] += served.shown.len() as f64;
    }
    let events = world.respond(
        served.user,
        &served.shown,
        at,
        Some(&served.request_id),
        rng,
    );
    let dropped = thinned_items(&events, arm.keep, rng);
    // Views carry no outcome for any statistic here; leaving them out of the ledger
    // halves a run's cost (the HTTP run posts and applies them all).
    for event in events {
        if event.action != Action::View && !dropped.contains(&event.item_id) {
            clock.push(event);
        }
    }
}

/// The items whose click (and what followed it) the arm's thinning removes.
fn thinned_items(events: &[Event], keep: f64, rng: &mut StdRng) -> HashSet<ItemId> {
    if keep >= 1.0 {
        return HashSet::new();
    }
    events
        .iter()
        .filter(|e| e.action == Action::Click && rng.gen::<f64>() >= keep)
        .map(|e| e.item_id.clone())
        .collect()
}

/// Plans and ranks one request the way the engine does, with the cheap policy.
fn serve(
    shop: &Shop,
    spec: &RunSpec<'_>,
    ledger: &Ledger,
    request_id: RequestId,
    at: Timestamp,
    user: usize,
    rng: &mut StdRng,
) -> (Served, Impression) {
    let world = &shop.world;
    let user_id = world.users[user].id.clone();
    let assigned = ledger.book.assign(user_id.as_str());
    let (variant, tags) = match assigned.first() {
        Some((running, index)) => {
            let shown_as = if running.def.kind == ExperimentKind::Interleaving {
                0
            } else {
                *index
            };
            (
                *index,
                vec![ExperimentTag {
                    id: running.def.id.clone(),
                    variant: running.def.variants[shown_as].name.clone(),
                }],
            )
        }
        None => (0, Vec::new()),
    };
    let candidates = candidates(world, at, rng);
    let served = if spec.def.kind == ExperimentKind::Interleaving && !tags.is_empty() {
        interleave(world, spec, user, &candidates, rng)
    } else {
        single(world, spec.arms[variant], user, &candidates, rng)
    };
    let served = Served {
        request_id,
        user,
        variant,
        ..served
    };
    let impression = impression(world, spec.def, &served, tags, at);
    (served, impression)
}

/// One arm's list, explored when the arm explores.
fn single(world: &World, arm: Arm, user: usize, candidates: &[usize], rng: &mut StdRng) -> Served {
    let ranked = rank(world, user, candidates, arm.noise, rng);
    let cut = LIST.min(ranked.len());
    let (base, pool) = (ranked[..cut].to_vec(), ranked[cut..].to_vec());
    let (shown, propensities) = match arm.epsilon {
        Some(epsilon) => explored(&base, &pool, epsilon, rng),
        None => (base.clone(), vec![1.0; base.len()]),
    };
    Served {
        request_id: RequestId::new_unchecked(""),
        user,
        variant: 0,
        teams: vec![None; shown.len()],
        shown,
        propensities,
        base,
        pool,
    }
}

/// ε-greedy over the pool with the engine's `explore`; returns items and propensities.
fn explored(
    base: &[usize],
    pool: &[usize],
    epsilon: f64,
    rng: &mut StdRng,
) -> (Vec<usize>, Vec<f64>) {
    let pool: Vec<PoolItem<usize>> = pool
        .iter()
        .map(|&item| PoolItem {
            item,
            impressions: 0.0,
            clicks: 0.0,
        })
        .collect();
    let policy = ExplorationPolicy {
        epsilon,
        thompson: None,
    };
    explore(base, &pool, &policy, rng)
        .into_iter()
        .map(|slot| {
            let p = if slot.kind == SlotKind::Deterministic {
                1.0
            } else {
                slot.propensity
            };
            (slot.item, p)
        })
        .unzip()
}

/// Both arms rank the same candidates; team draft merges them.
fn interleave(
    world: &World,
    spec: &RunSpec<'_>,
    user: usize,
    candidates: &[usize],
    rng: &mut StdRng,
) -> Served {
    let a = rank(world, user, candidates, spec.arms[0].noise, rng);
    let b = rank(world, user, candidates, spec.arms[1].noise, rng);
    let merged = team_draft(&a[..LIST.min(a.len())], &b[..LIST.min(b.len())], LIST, rng);
    let shown: Vec<usize> = merged.iter().map(|(i, _)| *i).collect();
    let teams = merged
        .iter()
        .map(|(_, t)| Some(usize::from(*t == Team::B)))
        .collect();
    Served {
        request_id: RequestId::new_unchecked(""),
        user,
        variant: 0,
        propensities: vec![1.0; shown.len()],
        teams,
        base: shown.clone(),
        pool: Vec::new(),
        shown,
    }
}

/// The impression record the engine would log for this request.
fn impression(
    world: &World,
    def: &ExperimentDef,
    served: &Served,
    experiments: Vec<ExperimentTag>,
    at: Timestamp,
) -> Impression {
    let interleaved = def.kind == ExperimentKind::Interleaving && !experiments.is_empty();
    let slots = served
        .shown
        .iter()
        .enumerate()
        .map(|(position, &item)| {
            let propensity = served.propensities[position];
            ImpressionSlot {
                item_id: world.items[item].id.clone(),
                position: position as u32,
                score: 0.0,
                propensity,
                propensity_kind: propensity_kind(interleaved, propensity),
                team: served.teams[position]
                    .filter(|_| interleaved)
                    .map(|t| def.variants[t].name.clone()),
                channel: Channel::Popularity,
                channel_rank: 0,
                channel_score: 0.0,
                source_item: None,
                features: Vec::new(),
            }
        })
        .collect();
    Impression {
        context: Default::default(),
        request_id: served.request_id.clone(),
        user_id: world.users[served.user].id.clone(),
        timestamp: at,
        experiments,
        forced: false,
        category: None,
        count: Some(LIST as u32),
        model_version: POLICY_VERSION.to_string(),
        fallback: false,
        features_offset: None,
        latency_ms: None,
        slots,
    }
}

fn propensity_kind(interleaved: bool, propensity: f64) -> PropensityKind {
    if interleaved {
        PropensityKind::Interleaved
    } else if propensity < 1.0 {
        PropensityKind::Exact
    } else {
        PropensityKind::Deterministic
    }
}

/// Runs `f(0..n)` on every core; results in index order.
pub fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, n.max(1));
    let mut parts: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                scope.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, f(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    parts.sort_by_key(|(i, _)| *i);
    parts.into_iter().map(|(_, t)| t).collect()
}
