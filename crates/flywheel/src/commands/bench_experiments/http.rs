//! One run through the real HTTP server: an engine over a temp data dir with a small
//! sim shop imported, an A/B experiment of the same (untrained) version twice — the
//! treatment with re-ranking and exploration overrides — simulated users requesting
//! with `now=` and their events posted back.
//!
//! Two checks. (1) The harness applies exactly what it sent and received (the imported
//! events, the start, one impression per response, the posted events, in the order
//! the server logged them) to its own [`Ledger`]; `live::metrics` on it must equal the
//! server's `/v1/experiments/:id/metrics` (latencies aside: the server measured them,
//! the response does not carry them). (2) The in-process cheap policy on the same
//! traffic (same users, times, experiment id and salt) must give the same users,
//! requests and impressions per variant. Clicks differ: the lists differ, and request
//! ids — which seed the engine's draws — are random.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use flywheel_core::{
    Channel, Event, ExperimentDef, ExperimentTag, Impression, ImpressionSlot, ItemId, LogRecord,
    PropensityKind, RequestId, Timestamp, UserId,
};
use flywheel_engine::{Engine, EngineConfig};
use flywheel_experiments::live::metrics;
use flywheel_experiments::Ledger;
use flywheel_import::ImportKind;
use flywheel_server::ServerOptions;
use flywheel_sim::{SimConfig, World};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use serde_json::{json, Value};

use super::sim::{simulate, Arm, Clock, RunSpec, Shop, LIST};
use crate::commands::{import, simulate as shop_files};
use crate::http_client::Connection;

const EXPERIMENT: &str = "http-ab";
/// The interleaving experiment of the HTTP run, in a layer of its own at half traffic:
/// its users see the two arms merged by team draft, the others the A/B variant's list.
const INTERLEAVING: &str = "http-il";

/// Per variant, the counts both paths must share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantCounts {
    /// Variant name.
    pub variant: String,
    /// Users exposed.
    pub users: u64,
    /// Requests served.
    pub requests: u64,
    /// Slots shown.
    pub impressions: u64,
    /// Attributed clicks.
    pub clicks: u64,
}

/// What the HTTP run showed.
#[derive(Debug, Clone, Serialize)]
pub struct HttpCheck {
    /// Requests sent over HTTP.
    pub requests: u64,
    /// Events posted back.
    pub events: u64,
    /// Per variant, from the server's metrics route.
    pub server: Vec<VariantCounts>,
    /// Per variant, from the in-process cheap policy on the same traffic.
    pub in_process: Vec<VariantCounts>,
    /// The server's metrics equal `live::metrics` on the harness's own ledger.
    pub metrics_identical: bool,
    /// Where they differ, if they do (both experiments).
    pub differences: Vec<String>,
    /// The interleaving experiment's outcome as the server reported it.
    pub interleaving: Value,
    /// Users, requests and impressions per variant agree with the in-process path.
    pub counts_identical: bool,
    /// Wall time of the run, seconds.
    pub seconds: f64,
}

fn shop_config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        users: 150,
        items: 120,
        categories: 5,
        days: 3,
        latent_dim: 8,
        ..SimConfig::quickstart()
    }
}

fn experiment_json(salt: &str) -> Value {
    json!({
        "id": EXPERIMENT, "kind": "ab", "salt": salt, "primary_metric": "ctr",
        "variants": [
            {"name": "control", "share": 0.5},
            {"name": "treatment", "share": 0.5,
             "rerank": {"mmr_lambda": 0.5, "max_per_category": 2},
             "exploration": {"epsilon": 0.1}},
        ],
    })
}

fn interleaving_json(salt: &str) -> Value {
    json!({
        "id": INTERLEAVING, "kind": "interleaving", "salt": format!("{salt}-il"),
        "traffic": 0.5,
        "variants": [
            {"name": "plain"},
            {"name": "diverse", "rerank": {"mmr_lambda": 0.5, "max_per_category": 2}},
        ],
    })
}

/// Runs the HTTP check in a fresh temp data dir (removed afterwards).
pub fn http_check(seed: u64) -> Result<HttpCheck> {
    let started = Instant::now();
    let dir =
        std::env::temp_dir().join(format!("flywheel-bench-experiments-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&dir, seed);
    let _ = std::fs::remove_dir_all(&dir);
    let mut check = result?;
    check.seconds = started.elapsed().as_secs_f64();
    Ok(check)
}

fn run_in(dir: &std::path::Path, seed: u64) -> Result<HttpCheck> {
    let config = shop_config(seed);
    let files = shop_files::write_shop(&dir.join("dataset"), &config)?;
    let engine = Arc::new(Engine::open(EngineConfig {
        data_dir: dir.to_path_buf(),
        ..EngineConfig::default()
    })?);
    import::import_file(&engine, &files.items, ImportKind::Items)?;
    import::import_file(&engine, &files.users, ImportKind::Users)?;
    import::import_file(&engine, &files.events, ImportKind::Events)?;
    engine.catch_up();
    let lateness = (engine.config().experiments.allowed_lateness_secs as i64).saturating_mul(1000);
    let mut ledger = Ledger::new(lateness);
    for event in flywheel_sim::read_events(&dir.join("dataset"))? {
        ledger.apply(&LogRecord::Event(event));
    }
    let shop = Shop::new(World::generate(&config)?, config.days);
    let salt = format!("http-{seed}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut driver = Driver {
        engine: Arc::clone(&engine),
        shop: &shop,
        ledger,
        requests: 0,
        events: 0,
    };
    let server_metrics = runtime.block_on(driver.run(&salt, seed))?;
    let mut differences = Vec::new();
    for (id, served) in &server_metrics {
        // Through JSON text as the server's figures came, so both went through one parser.
        let local = metrics(&driver.ledger, id).context("no local metrics")?;
        let local: Value = serde_json::from_str(&serde_json::to_string(&local)?)?;
        differences.extend(
            self::differences(&strip_latency(served.clone()), &strip_latency(local))
                .into_iter()
                .map(|d| format!("{id}: {d}")),
        );
    }
    let interleaving = server_metrics
        .iter()
        .find(|(id, _)| id == INTERLEAVING)
        .map(|(_, m)| m["interleaving"].clone())
        .unwrap_or(Value::Null);
    let server_metrics = server_metrics
        .into_iter()
        .find(|(id, _)| id == EXPERIMENT)
        .map(|(_, m)| m)
        .context("no A/B metrics")?;
    let in_process = in_process_counts(&shop, &salt, seed)?;
    let server = counts_of(&server_metrics);
    let same = |a: &VariantCounts, b: &VariantCounts| {
        (&a.variant, a.users, a.requests, a.impressions)
            == (&b.variant, b.users, b.requests, b.impressions)
    };
    let counts_identical =
        server.len() == in_process.len() && server.iter().zip(&in_process).all(|(a, b)| same(a, b));
    drop(runtime);
    Ok(HttpCheck {
        requests: driver.requests,
        events: driver.events,
        server,
        in_process,
        metrics_identical: differences.is_empty(),
        differences,
        interleaving,
        counts_identical,
        seconds: 0.0,
    })
}

/// The same traffic served in process by the cheap policy.
fn in_process_counts(shop: &Shop, salt: &str, seed: u64) -> Result<Vec<VariantCounts>> {
    let def = ExperimentDef::from_json(&experiment_json(salt))?;
    let arms = [Arm::ranker(1.0), Arm::ranker(1.0)];
    let spec = RunSpec {
        def: &def,
        arms: &arms,
        seed,
        keep_served: false,
    };
    let run = simulate(shop, &spec, |_, _| {});
    let m = metrics(&run.ledger, EXPERIMENT).context("no in-process metrics")?;
    Ok(counts_of(&serde_json::to_value(m)?))
}

fn counts_of(metrics: &Value) -> Vec<VariantCounts> {
    let Some(variants) = metrics["variants"].as_object() else {
        return Vec::new();
    };
    let number = |v: &Value, key: &str| v[key].as_u64().unwrap_or(0);
    variants
        .iter()
        .map(|(name, v)| VariantCounts {
            variant: name.clone(),
            users: number(v, "users"),
            requests: number(v, "requests"),
            impressions: number(v, "impressions"),
            clicks: number(v, "clicks"),
        })
        .collect()
}

/// Removes the latency fields (the server measured them; responses do not carry them).
fn strip_latency(mut value: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("p99_latency_ms");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

/// The JSON paths where two values differ (at most 10).
fn differences(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff(a, b, String::new(), &mut out);
    out.truncate(10);
    out
}

fn diff(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                diff(va, vb, format!("{path}/{key}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(va, vb, format!("{path}/{i}"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: server {a} vs in-process {b}")),
    }
}

/// Drives the simulated users against the server and mirrors the log in `ledger`.
struct Driver<'a> {
    engine: Arc<Engine>,
    shop: &'a Shop,
    ledger: Ledger,
    requests: u64,
    events: u64,
}

impl Driver<'_> {
    /// Serves the traffic and returns each experiment's metrics as the server gives them.
    async fn run(&mut self, salt: &str, seed: u64) -> Result<Vec<(String, Value)>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = ServerOptions {
            simulated_clock: true,
            ..ServerOptions::default()
        };
        tokio::spawn(flywheel_server::serve_on(
            Arc::clone(&self.engine),
            options,
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        let mut connection = Connection::open(&addr).await?;
        self.start(&mut connection, &experiment_json(salt)).await?;
        self.start(&mut connection, &interleaving_json(salt))
            .await?;
        self.traffic(&mut connection, seed).await?;
        let mut all = Vec::new();
        for id in [EXPERIMENT, INTERLEAVING] {
            let (status, body) = connection
                .request(
                    "GET",
                    &format!("/v1/experiments/{id}/metrics"),
                    "application/json",
                    b"",
                )
                .await?;
            if status != 200 {
                bail!(
                    "metrics of {id}: status {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            all.push((id.to_string(), serde_json::from_slice(&body)?));
        }
        let _ = stop.send(());
        Ok(all)
    }

    async fn start(&mut self, connection: &mut Connection, definition: &Value) -> Result<()> {
        let body = serde_json::to_vec(definition)?;
        let path = format!("/v1/experiments?now={}", secs(self.shop.start));
        let (status, reply) = connection
            .request("POST", &path, "application/json", &body)
            .await?;
        if status != 201 {
            bail!(
                "creating the experiment: status {status}: {}",
                String::from_utf8_lossy(&reply)
            );
        }
        let view: Value = serde_json::from_slice(&reply)?;
        let layer_buckets: [u32; 2] = serde_json::from_value(view["layer_buckets"].clone())?;
        let at: Timestamp = serde_json::from_value(view["started"].clone())?;
        self.ledger.apply(&LogRecord::ExperimentStart {
            experiment: ExperimentDef::from_json(definition)?,
            layer_buckets,
            at,
        });
        Ok(())
    }

    async fn traffic(&mut self, connection: &mut Connection, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut clock = Clock::default();
        let shop = self.shop;
        for &(at, user) in &shop.arrivals {
            self.post(connection, clock.due(Some(at))).await?;
            let impression = self.recommend(connection, at, user).await?;
            let list: Vec<usize> = impression
                .slots
                .iter()
                .filter_map(|s| shop.world.item_index(s.item_id.as_str()))
                .collect();
            let id = impression.request_id.clone();
            self.ledger.apply(&LogRecord::Impression(impression));
            for event in shop.world.respond(user, &list, at, Some(&id), &mut rng) {
                clock.push(event);
            }
        }
        self.post(connection, clock.due(None)).await?;
        if !self
            .engine
            .wait_applied(self.engine.log_end_offset(), Duration::from_secs(30))
        {
            bail!("the server did not apply its log within 30 s");
        }
        Ok(())
    }

    async fn post(&mut self, connection: &mut Connection, events: Vec<Event>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(&events)?;
        let (status, reply) = connection
            .request("POST", "/v1/events", "application/json", &body)
            .await?;
        if status != 200 {
            bail!(
                "posting events: status {status}: {}",
                String::from_utf8_lossy(&reply)
            );
        }
        self.events += events.len() as u64;
        for event in events {
            self.ledger.apply(&LogRecord::Event(event));
        }
        Ok(())
    }

    /// One request; returns the impression the server logged for it, once applied.
    async fn recommend(
        &mut self,
        connection: &mut Connection,
        at: Timestamp,
        user: usize,
    ) -> Result<Impression> {
        let user_id = self.shop.world.users[user].id.clone();
        let path = format!(
            "/v1/recommendations?user_id={}&count={LIST}&now={}",
            user_id.as_str(),
            secs(at)
        );
        let (status, body) = connection
            .request("GET", &path, "application/json", b"")
            .await?;
        if status != 200 {
            bail!(
                "recommendations: status {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        self.requests += 1;
        let impression = impression_of(&serde_json::from_slice(&body)?, user_id, at)?;
        self.wait_logged().await?;
        Ok(impression)
    }

    /// Waits until the server's ledger counted every request sent, so the events
    /// posted next follow their impression in the log.
    async fn wait_logged(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let counted: u64 = self
                .engine
                .ledger()
                .tally(EXPERIMENT)
                .map_or(0, |t| t.variants.iter().map(|v| v.requests).sum());
            if counted >= self.requests {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the impression of request {} was not logged within 30 s",
                    self.requests
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Seconds since 1970 with millisecond precision, for `now=`.
fn secs(at: Timestamp) -> String {
    let ms = at.millis();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// The impression a recommendations response stands for.
fn impression_of(body: &Value, user_id: UserId, at: Timestamp) -> Result<Impression> {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    let experiments: Vec<ExperimentTag> = serde_json::from_value(body["experiments"].clone())?;
    let mut slots = Vec::new();
    for item in body["items"]
        .as_array()
        .context("no items in the response")?
    {
        slots.push(ImpressionSlot {
            item_id: ItemId::new_unchecked(text(item, "item_id")),
            position: item["position"].as_u64().unwrap_or(0) as u32,
            score: item["score"].as_f64().unwrap_or(0.0),
            propensity: item["propensity"].as_f64().unwrap_or(1.0),
            propensity_kind: serde_json::from_value::<PropensityKind>(
                item["propensity_kind"].clone(),
            )?,
            team: item["team"].as_str().map(str::to_string),
            channel: Channel::Popularity,
            channel_rank: 0,
            channel_score: 0.0,
            source_item: None,
            features: Vec::new(),
        });
    }
    Ok(Impression {
        context: Default::default(),
        request_id: RequestId::new_unchecked(text(body, "request_id")),
        user_id,
        timestamp: at,
        experiments,
        forced: body["forced"].as_bool().unwrap_or(false),
        category: None,
        count: Some(LIST as u32),
        model_version: text(body, "model_version"),
        fallback: body["fallback"].as_bool().unwrap_or(false),
        features_offset: None,
        latency_ms: None,
        slots,
    })
}
