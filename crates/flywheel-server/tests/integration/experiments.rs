//! The online evaluation loop end to end, through the HTTP API: two experiments over
//! two registered model versions (an A/B test and, in a layer of its own, team-draft
//! interleaving), a few hundred users served on a simulated clock, clicks and
//! purchases drawn by a seeded generator (in the window, late, on the window's edge,
//! for unknown requests, for items not in the list), a restart in the middle, and
//! every figure of `/v1/experiments/:id/metrics` checked against what this test
//! computes itself from the traffic it sent and the answers it got: the counts, the
//! rates, the delta-method CTR test (written out here), the SRM user counts, the
//! interleaving outcomes, the unattributed outcomes and the pending labels.
//!
//! The oracle does not model the joiner: it classifies each event by the documented
//! rules (unknown request, item not in the list, elapsed time beyond the 24 h window,
//! else attributed) and the traffic is laid out on the clock so that no event ever
//! reaches a request whose windows already closed (the test asserts that it does not):
//! lists are served in [T0, T0 + 2 h), in-window outcomes stay before T0 + 23 h (no
//! window closes before T0 + 24 h + the 10 min allowed lateness), then the late and
//! edge purchases go in time order, each at most 500 s past its window (under the
//! allowed lateness, so its request is still open), then one event 30 days later.
//!
//! The interleaving experiment takes 70 % of its layer, so the layer bucket decides
//! something: users outside it see the A/B variant's own model version (checked), users
//! inside see the interleaved list of v1 and v2 (labelled v1, the first team's).
//! The HTTP calls go through the real router and middleware in process
//! (`tower::ServiceExt::oneshot`), as the rest of this test binary does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use flywheel_engine::Engine;
use flywheel_experiments::{ab_from_file, murmur3_x86_32, AbOptions};
use flywheel_server::{router, ServerOptions};
use serde_json::{json, Value};

use super::{config, Reply};

/// The experiment's start, in seconds since 1970 (2025-06-15, before the wall clock,
/// so that nothing downstream mistakes simulated times for the future).
const T0: i64 = 1_750_000_000;
const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;
/// The attribution window of every action (the default, the definition names none).
const WINDOW: i64 = DAY;
/// The engine's default allowed lateness: windows close this long after event time passes them.
const LATENESS: i64 = 600;
const ITEMS: usize = 60;
/// Users with a history, and users without one (cold starts).
const WARM_USERS: usize = 300;
const COLD_USERS: usize = 20;
const LIST: usize = 6;
const Z_975: f64 = 1.959_963_984_540_054;

/// SplitMix64: a seeded generator written out here, so the traffic is the same on
/// every machine and every version of every crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low) as u64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// An engine and the real router in front of it, on a data dir that outlives it.
struct Node {
    engine: Arc<Engine>,
    app: Router,
}

impl Node {
    fn open(dir: &Path) -> Node {
        let engine = Arc::new(Engine::open(config(dir)).unwrap());
        let options = ServerOptions {
            simulated_clock: true,
            ..ServerOptions::default()
        };
        let app = router(Arc::clone(&engine), options);
        engine.catch_up();
        let started = Instant::now();
        while !engine.is_ready() {
            assert!(started.elapsed() < Duration::from_secs(30), "never ready");
            std::thread::sleep(Duration::from_millis(1));
        }
        Node { engine, app }
    }

    /// Drops the router and shuts the engine down (queued impressions are flushed).
    fn shutdown(self) {
        drop(self.app);
        let engine = Arc::try_unwrap(self.engine)
            .unwrap_or_else(|_| panic!("the engine is still shared at shutdown"));
        engine.shutdown();
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let reply = super::send_to(&self.app, request.body(body).unwrap()).await;
        assert!(
            !reply.status.is_server_error(),
            "{uri} answered {}",
            reply.status
        );
        reply
    }

    async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, &[], None).await
    }

    async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.call(Method::POST, uri, &[], Some(body)).await
    }

    async fn ok(&self, reply: Reply) -> Value {
        assert!(
            reply.status.is_success(),
            "{}: {}",
            reply.status,
            reply.text
        );
        reply.json()
    }

    async fn metrics(&self, id: &str) -> Value {
        let reply = self.get(&format!("/v1/experiments/{id}/metrics")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()
    }

    /// Posts events in one batch and waits until the engine applied them.
    async fn events(&self, events: &[Value]) {
        for chunk in events.chunks(5_000) {
            let reply = self.post("/v1/events", &Value::Array(chunk.to_vec())).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        }
        self.engine.catch_up();
    }
}

fn user_name(index: usize) -> String {
    format!("u{index:03}")
}

fn item_name(index: usize) -> String {
    format!("i{index}")
}

/// A list the API served, as the client saw it.
#[derive(Debug, Clone)]
struct Served {
    request_id: String,
    user: String,
    at: i64,
    items: Vec<String>,
    /// Per slot, the interleaving team (`None` outside the interleaving experiment).
    teams: Vec<Option<String>>,
    /// The A/B variant the response names.
    ab_variant: String,
    /// Whether the response names the interleaving experiment.
    interleaved: bool,
    forced: bool,
    model_version: String,
}

/// One event the test sends.
#[derive(Debug, Clone)]
struct Sent {
    user: String,
    item: String,
    action: &'static str,
    at: i64,
    request_id: Option<String>,
    position: Option<usize>,
    value: Option<f64>,
}

impl Sent {
    fn json(&self) -> Value {
        let mut event = json!({"user_id": self.user, "item_id": self.item,
            "action": self.action, "timestamp": self.at});
        if let Some(id) = &self.request_id {
            event["request_id"] = json!(id);
        }
        if let Some(position) = self.position {
            event["position"] = json!(position);
        }
        if let Some(value) = self.value {
            event["value"] = json!(value);
        }
        event
    }
}

/// How the test expects an event to be classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Attributed,
    Late,
    UnknownRequest,
    NotInList,
}

/// Everything the test sent and was answered, and what it makes of it.
#[derive(Default)]
struct Oracle {
    served: Vec<Served>,
    by_id: HashMap<String, usize>,
    /// Per request, the slots of attributed clicks (repeats kept) and purchases.
    clicks: Vec<Vec<usize>>,
    purchases: Vec<Vec<(usize, f64)>>,
    unattributed: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// The largest event or impression time the engine has been sent, in seconds.
    latest: i64,
}

/// One user's sums in one variant.
#[derive(Debug, Clone, Default, PartialEq)]
struct UserSums {
    impressions: u64,
    clicks: u64,
    purchases: u64,
    revenue: f64,
}

impl Oracle {
    fn serve(&mut self, served: Served) {
        self.latest = self.latest.max(served.at);
        self.by_id
            .insert(served.request_id.clone(), self.served.len());
        self.served.push(served);
        self.clicks.push(Vec::new());
        self.purchases.push(Vec::new());
    }

    fn is_closed(&self, request: &Served) -> bool {
        request.at + WINDOW <= self.latest - LATENESS
    }

    /// Classifies an event by the documented rules and records it.
    fn send(&mut self, event: &Sent) -> Fate {
        self.latest = self.latest.max(event.at);
        let fate = self.fate(event);
        let bucket = match fate {
            Fate::Attributed => {
                let index = self.by_id[event.request_id.as_deref().unwrap()];
                let request = &self.served[index];
                let slot = slot_of(request, event).unwrap();
                match event.action {
                    "click" => self.clicks[index].push(slot),
                    "purchase" => self.purchases[index].push((slot, event.value.unwrap_or(0.0))),
                    other => panic!("unexpected action {other}"),
                }
                return fate;
            }
            Fate::Late => "late",
            Fate::UnknownRequest => "unknown_request",
            Fate::NotInList => "item_not_in_list",
        };
        *self
            .unattributed
            .entry(bucket)
            .or_default()
            .entry(event.action.to_string())
            .or_insert(0) += 1;
        fate
    }

    fn fate(&self, event: &Sent) -> Fate {
        let Some(&index) = event.request_id.as_ref().and_then(|id| self.by_id.get(id)) else {
            return Fate::UnknownRequest;
        };
        let request = &self.served[index];
        // The traffic is laid out so that no outcome meets a closed request (which the
        // joiner no longer knows); a broken layout must fail here, not in a count.
        assert!(
            !self.is_closed(request),
            "test layout: an event at {} for a request at {} whose windows closed",
            event.at,
            request.at
        );
        if slot_of(request, event).is_none() {
            return Fate::NotInList;
        }
        if event.at - request.at > WINDOW {
            Fate::Late
        } else {
            Fate::Attributed
        }
    }

    fn counted(&self) -> impl Iterator<Item = (usize, &Served)> {
        self.served.iter().enumerate().filter(|(_, s)| !s.forced)
    }

    /// Per A/B variant, per user, the sums of counted requests.
    fn ab_users(&self) -> BTreeMap<String, BTreeMap<String, UserSums>> {
        let mut out: BTreeMap<String, BTreeMap<String, UserSums>> = BTreeMap::new();
        for (index, request) in self.counted() {
            let user = out
                .entry(request.ab_variant.clone())
                .or_default()
                .entry(request.user.clone())
                .or_default();
            user.impressions += request.items.len() as u64;
            user.clicks += self.clicks[index].len() as u64;
            user.purchases += self.purchases[index].len() as u64;
            user.revenue += self.purchases[index].iter().map(|p| p.1).sum::<f64>();
        }
        out
    }

    /// Per interleaving team, per user, the sums credited to that team's slots.
    fn il_users(&self) -> BTreeMap<String, BTreeMap<String, UserSums>> {
        let mut out: BTreeMap<String, BTreeMap<String, UserSums>> = BTreeMap::new();
        for (index, request) in self.counted().filter(|(_, s)| s.interleaved) {
            // The user is exposed to both teams, whatever each contributed.
            for team in IL_TEAMS {
                out.entry(team.to_string())
                    .or_default()
                    .entry(request.user.clone())
                    .or_default();
            }
            let team_of = |slot: usize| request.teams[slot].clone().unwrap();
            for slot in 0..request.items.len() {
                out.get_mut(&team_of(slot))
                    .unwrap()
                    .get_mut(&request.user)
                    .unwrap()
                    .impressions += 1;
            }
            for &slot in &self.clicks[index] {
                out.get_mut(&team_of(slot))
                    .unwrap()
                    .get_mut(&request.user)
                    .unwrap()
                    .clicks += 1;
            }
            for &(slot, value) in &self.purchases[index] {
                let user = out
                    .get_mut(&team_of(slot))
                    .unwrap()
                    .get_mut(&request.user)
                    .unwrap();
                user.purchases += 1;
                user.revenue += value;
            }
        }
        out
    }

    /// Wins, losses and ties of the first team over the closed interleaved requests:
    /// each distinct clicked slot credits its team; more credited clicks wins.
    fn il_outcomes(&self) -> [u64; 3] {
        let mut outcomes = [0; 3];
        for (index, request) in self.counted().filter(|(_, s)| s.interleaved) {
            if !self.is_closed(request) {
                continue;
            }
            let distinct: BTreeSet<usize> = self.clicks[index].iter().copied().collect();
            let first = distinct
                .iter()
                .filter(|&&s| request.teams[s].as_deref() == Some(IL_TEAMS[0]))
                .count();
            let second = distinct.len() - first;
            outcomes[match first.cmp(&second) {
                std::cmp::Ordering::Greater => 0,
                std::cmp::Ordering::Less => 1,
                std::cmp::Ordering::Equal => 2,
            }] += 1;
        }
        outcomes
    }

    /// Slots of counted requests in `experiment`'s tallies whose windows are open.
    fn pending(&self, interleaved_only: bool) -> u64 {
        self.counted()
            .filter(|(_, s)| !interleaved_only || s.interleaved)
            .filter(|(_, s)| !self.is_closed(s))
            .map(|(_, s)| s.items.len() as u64)
            .sum()
    }
}

const IL_TEAMS: [&str; 2] = ["incumbent", "challenger"];

/// The slot an event lands on: its position when the item is there, else wherever the
/// item is in the list.
fn slot_of(request: &Served, event: &Sent) -> Option<usize> {
    event
        .position
        .filter(|&p| request.items.get(p) == Some(&event.item))
        .or_else(|| request.items.iter().position(|i| *i == event.item))
}

/// The variant bucket and the layer bucket, computed here from the documented formula.
fn bucket(key: &str) -> u32 {
    murmur3_x86_32(key.as_bytes(), 0) % 10_000
}

fn expected_ab_variant(user: &str) -> &'static str {
    // Layer `experiment:exp-1` (no layer named), traffic 1: every layer bucket is in.
    assert!(bucket(&format!("experiment:exp-1:{user}")) < 10_000);
    if bucket(&format!("exp-1:{user}")) < 5_000 {
        "control"
    } else {
        "treatment"
    }
}

/// Whether a user is in the interleaving experiment: its layer bucket range is [0, 7000).
fn expected_interleaved(user: &str) -> bool {
    bucket(&format!("experiment:exp-il:{user}")) < 7_000
}

/// erfc(x) for x ≥ 0: the series of erf (all terms positive) below 3, the continued
/// fraction above, both to about 1e-15 relative.
fn erfc(x: f64) -> f64 {
    assert!(x >= 0.0);
    if x < 3.0 {
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term > 1e-18 * sum {
            n += 1.0;
            term *= 2.0 * x * x / (2.0 * n + 1.0);
            sum += term;
        }
        1.0 - 2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
    } else {
        let mut f = x;
        for k in (1..=200).rev() {
            f = x + (f64::from(k) / 2.0) / f;
        }
        (-x * x).exp() / (std::f64::consts::PI.sqrt() * f)
    }
}

/// The delta-method variance of one arm's ratio Σc/Σn, users the unit, ddof-1 moments.
fn ratio_and_variance(users: &BTreeMap<String, UserSums>) -> (f64, f64) {
    let c: Vec<f64> = users.values().map(|u| u.clicks as f64).collect();
    let n: Vec<f64> = users.values().map(|u| u.impressions as f64).collect();
    let count = c.len() as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / count;
    let (mc, mn) = (mean(&c), mean(&n));
    let cov = |a: &[f64], ma: f64, b: &[f64], mb: f64| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>()
            / (count - 1.0)
    };
    let ratio = c.iter().sum::<f64>() / n.iter().sum::<f64>();
    let var_c = cov(&c, mc, &c, mc);
    let var_n = cov(&n, mn, &n, mn);
    let cov_cn = cov(&c, mc, &n, mn);
    let variance = (var_c - 2.0 * ratio * cov_cn + ratio * ratio * var_n) / (count * mn * mn);
    (ratio, variance)
}

/// `a` and `b` agree to `tol` relative to `scale` (the larger magnitude when 0).
fn close(what: &str, a: f64, b: f64, tol: f64, scale: f64) {
    let scale = scale.max(a.abs()).max(b.abs());
    assert!(
        (a - b).abs() <= tol * scale,
        "{what}: {a:e} (server) vs {b:e} (test), {} relative",
        (a - b).abs() / scale
    );
}

fn number(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

/// Checks one variant's figures against the user sums the test computed.
fn check_variant(name: &str, metrics: &Value, users: &BTreeMap<String, UserSums>) {
    let sum = |f: fn(&UserSums) -> u64| users.values().map(f).sum::<u64>();
    let (impressions, clicks, purchases) = (
        sum(|u| u.impressions),
        sum(|u| u.clicks),
        sum(|u| u.purchases),
    );
    let revenue: f64 = users.values().map(|u| u.revenue).sum();
    assert_eq!(
        metrics["users"],
        json!(users.len()),
        "{name} users: {metrics}"
    );
    assert_eq!(
        metrics["impressions"],
        json!(impressions),
        "{name}: {metrics}"
    );
    assert_eq!(metrics["clicks"], json!(clicks), "{name}: {metrics}");
    assert_eq!(metrics["purchases"], json!(purchases), "{name}: {metrics}");
    let rate = |x: f64, y: u64| if y > 0 { x / y as f64 } else { 0.0 };
    for (field, expected) in [
        ("revenue", revenue),
        ("ctr", rate(clicks as f64, impressions)),
        ("cvr", rate(purchases as f64, clicks)),
        ("rpm", 1000.0 * rate(revenue, impressions)),
    ] {
        close(
            &format!("{name}.{field}"),
            number(&metrics[field], field),
            expected,
            1e-12,
            0.0,
        );
    }
}

/// The A/B experiment's figures against the test's own.
fn check_ab(metrics: &Value, oracle: &Oracle, forced: u64) {
    let users = oracle.ab_users();
    let empty = BTreeMap::new();
    let arm = |name: &str| users.get(name).unwrap_or(&empty);
    for name in ["control", "treatment"] {
        let variant = &metrics["variants"][name];
        check_variant(name, variant, arm(name));
        let requests = oracle
            .counted()
            .filter(|(_, s)| s.ab_variant == name)
            .count();
        assert_eq!(variant["requests"], json!(requests), "{name}: {variant}");
        let pending: u64 = oracle
            .counted()
            .filter(|(_, s)| s.ab_variant == name && !oracle.is_closed(s))
            .map(|(_, s)| s.items.len() as u64)
            .sum();
        assert_eq!(
            variant["pending_labels"],
            json!(pending),
            "{name}: {variant}"
        );
    }
    assert_eq!(metrics["pending_labels"], json!(oracle.pending(false)));
    assert_eq!(metrics["forced_requests"], json!(forced));
    assert_eq!(
        metrics["srm"]["users"],
        json!([arm("control").len(), arm("treatment").len()]),
        "{}",
        metrics["srm"]
    );
    assert_eq!(metrics["unattributed"], unattributed(oracle));

    // The delta-method CTR test, computed here.
    let (rc, vc) = ratio_and_variance(arm("control"));
    let (rt, vt) = ratio_and_variance(arm("treatment"));
    let effect = rt - rc;
    let se = (vt + vc).sqrt();
    let p_value = erfc((effect / se).abs() / std::f64::consts::SQRT_2).min(1.0);
    let comparison = &metrics["comparisons"]["treatment"];
    assert_eq!(comparison["metric"], "ctr", "{comparison}");
    let scale = effect.abs() + Z_975 * se;
    close(
        "control ctr",
        number(&comparison["control"], "control"),
        rc,
        1e-9,
        0.0,
    );
    close(
        "treatment ctr",
        number(&comparison["treatment"], "treatment"),
        rt,
        1e-9,
        0.0,
    );
    close(
        "effect",
        number(&comparison["effect"], "effect"),
        effect,
        1e-9,
        0.0,
    );
    close(
        "ci_low",
        number(&comparison["ci_low"], "ci_low"),
        effect - Z_975 * se,
        1e-9,
        scale,
    );
    close(
        "ci_high",
        number(&comparison["ci_high"], "ci_high"),
        effect + Z_975 * se,
        1e-9,
        scale,
    );
    close(
        "p_value",
        number(&comparison["p_value"], "p_value"),
        p_value,
        1e-9,
        0.0,
    );
}

fn unattributed(oracle: &Oracle) -> Value {
    let part = |name: &str| json!(oracle.unattributed.get(name).cloned().unwrap_or_default());
    json!({
        "unknown_request": part("unknown_request"),
        "late": part("late"),
        "item_not_in_list": part("item_not_in_list"),
        "orphan_shadows": 0,
    })
}

/// The interleaving experiment's figures against the test's own.
fn check_il(metrics: &Value, oracle: &Oracle, forced: u64) {
    let users = oracle.il_users();
    let empty = BTreeMap::new();
    for name in IL_TEAMS {
        check_variant(
            name,
            &metrics["variants"][name],
            users.get(name).unwrap_or(&empty),
        );
    }
    let requests = oracle.counted().filter(|(_, s)| s.interleaved).count() as u64;
    assert_eq!(
        metrics["variants"][IL_TEAMS[0]]["requests"],
        json!(requests)
    );
    assert_eq!(metrics["pending_labels"], json!(oracle.pending(true)));
    assert_eq!(metrics["forced_requests"], json!(forced));
    let [wins, losses, ties] = oracle.il_outcomes();
    let il = &metrics["interleaving"];
    assert_eq!(
        [&il["wins"], &il["losses"], &il["ties"]],
        [&json!(wins), &json!(losses), &json!(ties)],
        "{il}"
    );
    let closed = wins + losses + ties;
    assert_eq!(il["pending_requests"], json!(requests - closed), "{il}");
    if closed >= 2 {
        let preference = (wins as f64 - losses as f64) / closed as f64;
        close(
            "preference",
            number(&il["preference"], "preference"),
            preference,
            1e-12,
            0.0,
        );
    }
    assert_eq!(metrics["unattributed"], unattributed(oracle));
}

/// Waits until the engine has applied every impression served so far.
async fn settle(node: &Node, oracle: &Oracle, forced: u64) {
    let ab = oracle.counted().count() as u64;
    let il = oracle.counted().filter(|(_, s)| s.interleaved).count() as u64;
    let started = Instant::now();
    loop {
        node.engine.catch_up();
        let exp = node.metrics("exp-1").await;
        let served: u64 = ["control", "treatment"]
            .iter()
            .map(|v| exp["variants"][v]["requests"].as_u64().unwrap())
            .sum();
        let il_served = node.metrics("exp-il").await["variants"][IL_TEAMS[0]]["requests"]
            .as_u64()
            .unwrap();
        if served == ab && il_served == il && exp["forced_requests"] == json!(forced) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "impressions not applied: {served}/{ab}, {il_served}/{il}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        flywheel_engine::EngineStats::get(&node.engine.stats().impressions_dropped),
        0
    );
}

/// One recommendation request as a client sends it.
async fn recommend(node: &Node, user: &str, at: i64, forced: Option<&str>) -> Served {
    let uri = format!("/v1/recommendations?user_id={user}&count={LIST}&now={at}");
    let headers: Vec<(&str, &str)> = forced
        .map(|f| ("X-Flywheel-Variant", f))
        .into_iter()
        .collect();
    let reply = node.call(Method::GET, &uri, &headers, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), LIST, "{body}");
    let tags = body["experiments"].as_array().unwrap();
    let variant_of = |id: &str| {
        tags.iter()
            .find(|t| t["id"] == id)
            .map(|t| t["variant"].as_str().unwrap().to_string())
    };
    let ab_variant = variant_of("exp-1").unwrap_or_else(|| panic!("no exp-1 tag: {body}"));
    let interleaved = variant_of("exp-il").is_some();
    let teams: Vec<Option<String>> = items
        .iter()
        .map(|i| i["team"].as_str().map(str::to_string))
        .collect();
    for (position, item) in items.iter().enumerate() {
        assert_eq!(item["position"], json!(position), "{body}");
        if interleaved {
            let team = item["team"]
                .as_str()
                .unwrap_or_else(|| panic!("no team: {body}"));
            assert!(IL_TEAMS.contains(&team), "{body}");
            assert_eq!(item["propensity_kind"], "interleaved", "{body}");
        } else {
            assert!(item.get("team").is_none(), "{body}");
        }
    }
    Served {
        request_id: body["request_id"].as_str().unwrap().to_string(),
        user: user.to_string(),
        at,
        items: items
            .iter()
            .map(|i| i["item_id"].as_str().unwrap().to_string())
            .collect(),
        teams,
        ab_variant,
        interleaved,
        forced: body.get("forced") == Some(&json!(true)),
        model_version: body["model_version"].as_str().unwrap().to_string(),
    }
}

/// Serves every user once (some twice) from `start`, ten seconds apart, and checks
/// each answer against the assignment formulas.
async fn serve_everyone(node: &Node, oracle: &mut Oracle, rng: &mut Rng, start: i64) {
    for index in 0..WARM_USERS + COLD_USERS {
        let user = user_name(index);
        let times = if rng.chance(0.3) { 2 } else { 1 };
        for k in 0..times {
            let served = recommend(node, &user, start + 10 * index as i64 + 5 * k, None).await;
            assert_eq!(served.ab_variant, expected_ab_variant(&user), "{user}");
            assert_eq!(served.interleaved, expected_interleaved(&user), "{user}");
            assert!(!served.forced);
            let version = match (served.interleaved, served.ab_variant.as_str()) {
                // An interleaved list is labelled with the first team's version.
                (true, _) | (false, "control") => "v1",
                (false, _) => "v2",
            };
            assert_eq!(served.model_version, version, "{user}: {served:?}");
            oracle.serve(served);
        }
    }
}

/// The outcomes of requests `from..to` that fall in their windows (clicks, some repeated
/// or with a stale position, purchases after a click), plus events for unknown requests
/// and for items not in the list; and the late ones (and some on the window's very
/// edge), returned apart to be sent once every in-window event is in.
fn outcomes(oracle: &Oracle, rng: &mut Rng, from: usize, to: usize) -> (Vec<Sent>, Vec<Sent>) {
    let mut now = Vec::new();
    let mut later = Vec::new();
    for request in &oracle.served[from..to] {
        let on = |slot: usize, action: &'static str, at: i64, value: Option<f64>| Sent {
            user: request.user.clone(),
            item: request.items[slot].clone(),
            action,
            at,
            request_id: Some(request.request_id.clone()),
            position: Some(slot),
            value,
        };
        for slot in 0..request.items.len() {
            if rng.chance(0.22) {
                let mut click = on(slot, "click", request.at + rng.range(1, 20 * HOUR), None);
                if rng.chance(0.1) {
                    // A stale position: the joiner finds the item where it is.
                    click.position = Some((slot + 1 + rng.below(LIST as u64 - 1) as usize) % LIST);
                }
                if rng.chance(0.08) {
                    now.push(on(slot, "click", click.at + 1, None));
                }
                now.push(click);
                if rng.chance(0.3) {
                    let value = 0.25 * rng.range(4, 400) as f64;
                    now.push(on(
                        slot,
                        "purchase",
                        request.at + rng.range(1, 21 * HOUR),
                        Some(value),
                    ));
                }
            }
            if rng.chance(0.03) {
                let value = 0.25 * rng.range(4, 400) as f64;
                // Late by 1 s to 500 s (under the allowed lateness, so the request is open).
                later.push(on(
                    slot,
                    "purchase",
                    request.at + WINDOW + rng.range(1, 500),
                    Some(value),
                ));
            }
            if rng.chance(0.01) {
                // Exactly on the edge: still in the window.
                later.push(on(slot, "purchase", request.at + WINDOW, Some(2.5)));
            }
        }
        if rng.chance(0.05) {
            let mut unknown = on(
                0,
                if rng.chance(0.5) { "click" } else { "purchase" },
                request.at + 60,
                None,
            );
            unknown.request_id = Some(format!("{:016x}{:016x}", rng.next(), rng.next()));
            if unknown.action == "purchase" {
                unknown.value = Some(10.0);
            }
            now.push(unknown);
        }
        if rng.chance(0.05) {
            let missing = loop {
                let item = item_name(rng.below(ITEMS as u64) as usize);
                if !request.items.contains(&item) {
                    break item;
                }
            };
            let mut stray = on(0, "click", request.at + 90, None);
            stray.item = missing;
            now.push(stray);
        }
    }
    later.sort_by_key(|e| e.at);
    (now, later)
}

/// Sends events, checking each is classified as the test meant.
async fn send(node: &Node, oracle: &mut Oracle, events: &[Sent], meant: &[Fate]) {
    for event in events {
        let fate = oracle.send(event);
        assert!(meant.contains(&fate), "{event:?} is {fate:?}");
    }
    let json: Vec<Value> = events.iter().map(Sent::json).collect();
    node.events(&json).await;
}

/// A catalog of 60 items in four categories, and a history for 300 users.
async fn shop(node: &Node, rng: &mut Rng) {
    for i in 0..ITEMS {
        let item = json!({"category": format!("shop/c{}", i % 4), "title": format!("Item {i}"),
            "tags": [format!("t{}", i % 5)]});
        let reply = node
            .call(
                Method::PUT,
                &format!("/v1/items/{}", item_name(i)),
                &[],
                Some(&item),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    node.events(&history(rng, T0 - 20 * DAY, T0 - 10 * DAY, 6))
        .await;
}

/// `per_user` events per warm user between `from` and `to`, mostly in the user's category.
fn history(rng: &mut Rng, from: i64, to: i64, per_user: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for u in 0..WARM_USERS {
        for _ in 0..per_user {
            let item = if rng.chance(0.7) {
                (u % 4) + 4 * rng.below((ITEMS / 4) as u64) as usize
            } else {
                rng.below(ITEMS as u64) as usize
            };
            let action = match rng.below(10) {
                0 => "purchase",
                1..=4 => "click",
                _ => "view",
            };
            events.push(json!({"user_id": user_name(u), "item_id": item_name(item),
                "action": action, "timestamp": rng.range(from, to)}));
        }
    }
    events
}

fn ab_definition() -> Value {
    json!({"id": "exp-1", "kind": "ab", "salt": "exp-1", "variants": [
        {"name": "control", "model_version": "v1", "share": 0.5},
        {"name": "treatment", "model_version": "v2", "share": 0.5}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_online_evaluation_loop_agrees_with_the_test_s_own_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_f1e7_0001);
    let mut node = Node::open(dir.path());

    // Two model versions, v2 trained on more history than v1.
    shop(&node, &mut rng).await;
    let v1 = node.engine.train(false, &mut |_| {}).unwrap();
    assert_eq!(v1.version, "v1");
    node.events(&history(&mut rng, T0 - 10 * DAY, T0 - DAY, 3))
        .await;
    let v2 = node.engine.train(true, &mut |_| {}).unwrap();
    assert_eq!(v2.version, "v2");

    // The experiments: A/B over the versions, interleaving in a layer of its own.
    let created = node
        .post(&format!("/v1/experiments?now={T0}"), &ab_definition())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let created = created.json();
    assert_eq!(created["layer_name"], "experiment:exp-1", "{created}");
    assert_eq!(created["layer_buckets"], json!([0, 10_000]), "{created}");
    let interleaving = json!({"id": "exp-il", "kind": "interleaving", "traffic": 0.7,
        "variants": [{"name": IL_TEAMS[0], "model_version": "v1"},
                     {"name": IL_TEAMS[1], "model_version": "v2"}]});
    let created = node
        .post(&format!("/v1/experiments?now={T0}"), &interleaving)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json()["layer_buckets"], json!([0, 7_000]));
    let listed = node.ok(node.get("/v1/experiments").await).await;
    assert_eq!(
        listed["experiments"].as_array().unwrap().len(),
        2,
        "{listed}"
    );

    // Phase 1: everyone is served in the first hour; a forced request is served apart.
    let mut oracle = Oracle::default();
    serve_everyone(&node, &mut oracle, &mut rng, T0).await;
    let forced_user = (0..WARM_USERS)
        .map(user_name)
        .find(|u| expected_ab_variant(u) == "control" && !expected_interleaved(u))
        .unwrap();
    let forced = recommend(&node, &forced_user, T0 + 3_300, Some("exp-1=treatment")).await;
    assert!(forced.forced);
    assert_eq!(forced.ab_variant, "treatment");
    assert_eq!(
        forced.model_version, "v2",
        "the forced variant serves its version"
    );
    let forced_click = Sent {
        user: forced_user.clone(),
        item: forced.items[0].clone(),
        action: "click",
        at: T0 + 3_400,
        request_id: Some(forced.request_id.clone()),
        position: Some(0),
        value: None,
    };
    oracle.serve(forced);
    let phase_one = oracle.served.len();
    settle(&node, &oracle, 1).await;

    let (now, mut late) = outcomes(&oracle, &mut rng, 0, phase_one - 1);
    send(
        &node,
        &mut oracle,
        &now,
        &[Fate::Attributed, Fate::UnknownRequest, Fate::NotInList],
    )
    .await;
    send(&node, &mut oracle, &[forced_click], &[Fate::Attributed]).await;
    let ab = node.metrics("exp-1").await;
    let il = node.metrics("exp-il").await;
    assert!(ab["pending_labels"].as_u64().unwrap() > 0, "{ab}");
    check_ab(&ab, &oracle, 1);
    check_il(&il, &oracle, 0);

    // Restart mid-experiment: nothing is lost, nobody changes variant.
    node.shutdown();
    node = Node::open(dir.path());
    assert_eq!(node.metrics("exp-1").await, ab, "exp-1 after the restart");
    assert_eq!(node.metrics("exp-il").await, il, "exp-il after the restart");
    let before: HashMap<String, (String, bool)> = oracle
        .counted()
        .map(|(_, s)| (s.user.clone(), (s.ab_variant.clone(), s.interleaved)))
        .collect();
    serve_everyone(&node, &mut oracle, &mut rng, T0 + HOUR).await;
    for request in &oracle.served[phase_one..] {
        assert_eq!(
            before[&request.user],
            (request.ab_variant.clone(), request.interleaved),
            "{} changed variant across the restart",
            request.user
        );
    }
    settle(&node, &oracle, 1).await;

    // Phase 2 outcomes, then the late ones (in time order), then an event far later.
    let (now, later) = outcomes(&oracle, &mut rng, phase_one, oracle.served.len());
    late.extend(later);
    late.sort_by_key(|e| e.at);
    send(
        &node,
        &mut oracle,
        &now,
        &[Fate::Attributed, Fate::UnknownRequest, Fate::NotInList],
    )
    .await;
    check_ab(&node.metrics("exp-1").await, &oracle, 1);
    assert_eq!(oracle.il_outcomes(), [0, 0, 0], "nothing closed yet");
    assert!(
        late.iter().any(|e| e.at > late[0].at + LATENESS),
        "some requests close"
    );
    send(&node, &mut oracle, &late, &[Fate::Attributed, Fate::Late]).await;
    let ab = node.metrics("exp-1").await;
    check_ab(&ab, &oracle, 1);
    check_il(&node.metrics("exp-il").await, &oracle, 0);
    assert!(oracle.pending(false) > 0 && ab["pending_labels"].as_u64().unwrap() > 0);
    let far = json!({"user_id": user_name(0), "item_id": item_name(0), "action": "view",
        "timestamp": T0 + 30 * DAY});
    oracle.latest = T0 + 30 * DAY;
    node.events(&[far]).await;

    let ab = node.metrics("exp-1").await;
    let il = node.metrics("exp-il").await;
    assert_eq!(ab["pending_labels"], 0, "{ab}");
    assert_eq!(il["pending_labels"], 0, "{il}");
    check_ab(&ab, &oracle, 1);
    check_il(&il, &oracle, 0);
    let sent_late = oracle
        .unattributed
        .get("late")
        .map_or(0, |m| m.values().sum::<u64>());
    let unknown = oracle
        .unattributed
        .get("unknown_request")
        .map_or(0, |m| m.values().sum::<u64>());
    let stray = oracle
        .unattributed
        .get("item_not_in_list")
        .map_or(0, |m| m.values().sum::<u64>());
    assert!(
        sent_late > 0 && unknown > 0 && stray > 0,
        "{:?}",
        oracle.unattributed
    );
    let [wins, losses, _] = oracle.il_outcomes();
    assert!(wins > 0 && losses > 0, "{:?}", oracle.il_outcomes());

    // The per-user export gives the same CTR test as the metrics.
    let csv = node.get("/v1/experiments/exp-1/users").await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    check_export(&csv.text, &oracle);
    let path = dir.path().join("exp-1-users.csv");
    std::fs::write(&path, &csv.text).unwrap();
    let report = ab_from_file(&path, &AbOptions::default()).unwrap();
    let ctr = report.ctr.unwrap().absolute;
    let comparison = &ab["comparisons"]["treatment"];
    for (field, value) in [
        ("effect", ctr.effect),
        ("ci_low", ctr.ci_low),
        ("ci_high", ctr.ci_high),
    ] {
        close(field, number(&comparison[field], field), value, 1e-12, 0.0);
    }

    bad_input(&node, &ab).await;
    node.shutdown();
}

/// The export holds one row per exposed user with the sums the test computed.
fn check_export(csv: &str, oracle: &Oracle) {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("user_id,variant,exposures,clicks,conversions,revenue,pre_period_metric")
    );
    let users = oracle.ab_users();
    let mut rows = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let sums = &users[fields[1]][fields[0]];
        assert_eq!(fields[2], sums.impressions.to_string(), "{line}");
        assert_eq!(fields[3], sums.clicks.to_string(), "{line}");
        assert_eq!(fields[4], sums.purchases.to_string(), "{line}");
        assert_eq!(fields[5].parse::<f64>().unwrap(), sums.revenue, "{line}");
        rows += 1;
    }
    assert_eq!(rows, users.values().map(BTreeMap::len).sum::<usize>());
}

/// Malformed definitions, a missing variant, a forced variant and unknown experiments:
/// 400s that name the field, 404s, never a 5xx; the metrics do not move.
async fn bad_input(node: &Node, metrics: &Value) {
    let expect_400 = |reply: Reply, field: &str| {
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            reply.text
        );
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(field), "`{field}` not named: {message}");
    };
    let ab = |id: &str, shares: [f64; 2], versions: [&str; 2]| {
        json!({"id": id, "kind": "ab", "variants": [
            {"name": "a", "model_version": versions[0], "share": shares[0]},
            {"name": "b", "model_version": versions[1], "share": shares[1]}]})
    };
    expect_400(
        node.post("/v1/experiments", &ab("bad-1", [0.6, 0.6], ["v1", "v2"]))
            .await,
        "field `variants` ",
    );
    expect_400(
        node.post("/v1/experiments", &ab("bad-2", [0.5, 0.5], ["v1", "v99"]))
            .await,
        "field `variants[1].model_version`",
    );
    expect_400(
        node.post("/v1/experiments", &ab_definition()).await,
        "field `id`",
    );
    let mut home = ab("home-1", [0.5, 0.5], ["v1", "v2"]);
    // Variants that change nothing: an experiment of another layer that decided the
    // list would (rightly) add an overlap warning to exp-1's metrics.
    for variant in home["variants"].as_array_mut().unwrap() {
        variant.as_object_mut().unwrap().remove("model_version");
    }
    home["layer"] = json!("home");
    home["traffic"] = json!(0.6);
    let reply = node.post("/v1/experiments", &home).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    home["id"] = json!("home-2");
    home["traffic"] = json!(0.5);
    expect_400(node.post("/v1/experiments", &home).await, "field `traffic`");
    node.ok(node.post("/v1/experiments/home-1/stop", &json!({})).await)
        .await;
    let reply = node.post("/v1/experiments", &home).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "a stopped experiment frees its buckets: {}",
        reply.text
    );
    node.ok(node.post("/v1/experiments/home-2/stop", &json!({})).await)
        .await;

    let uri = format!(
        "/v1/recommendations?user_id=u001&count={LIST}&now={}",
        T0 + 30 * DAY
    );
    let reply = node
        .call(
            Method::GET,
            &uri,
            &[("X-Flywheel-Variant", "exp-1=nope")],
            None,
        )
        .await;
    expect_400(reply, "X-Flywheel-Variant");
    for missing in [
        "/v1/experiments/nope/metrics",
        "/v1/experiments/nope/users",
        "/v1/experiments/nope",
    ] {
        let reply = node.get(missing).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{missing}: {}",
            reply.text
        );
    }
    node.engine.catch_up();
    assert_eq!(
        &node.metrics("exp-1").await,
        metrics,
        "bad input moved the metrics"
    );
}
