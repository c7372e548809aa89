//! The command-line grammar. Raw arguments are parsed here; `commands` turns them
//! into a validated engine configuration (defaults < config file < environment < flags).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// flywheel: a recommendation engine with its evaluation built in.
#[derive(Debug, Parser)]
#[command(name = "flywheel", version, about, long_about = None)]
pub struct Cli {
    /// Log progress details to stderr.
    #[arg(long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the data lives and how the engine is configured.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// The data directory (default: $FLYWHEEL_DATA_DIR, the config file's, or ./flywheel-data).
    #[arg(long, visible_alias = "data")]
    pub data_dir: Option<PathBuf>,
    /// A TOML config file (see flywheel.example.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a shop, import it, train, evaluate, and serve it.
    Quickstart {
        /// Data settings (default data dir: ./flywheel-quickstart).
        #[command(flatten)]
        data: DataArgs,
        /// Port to serve on, on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Stop after evaluating instead of serving.
        #[arg(long)]
        no_serve: bool,
        /// Seed of the simulated shop.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Serve the HTTP API.
    Serve {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Port to listen on.
        #[arg(long, env = "FLYWHEEL_PORT", default_value_t = 8080)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Take each request's time from its `now` parameter (simulations; loopback only).
        #[arg(long)]
        simulated_clock: bool,
        /// Serve a non-loopback address without API keys (anyone who can reach it may
        /// write, delete and promote).
        #[arg(long)]
        allow_open: bool,
        /// Per-key rate limit: requests per second[,burst] (default: none).
        #[arg(long, value_name = "RATE[,BURST]")]
        rate_per_key: Option<String>,
        /// Per-user rate limit of recommendation requests: requests per second[,burst].
        #[arg(long, value_name = "RATE[,BURST]")]
        rate_per_user: Option<String>,
        /// Seconds between two steps of the self-healing controller (default: the
        /// monitoring window, `monitoring.window_secs`; 0 turns the thread off).
        #[arg(long, value_name = "SECS")]
        controller_every: Option<u64>,
        /// Export the log continuously to this Parquet lake (needs `--features parquet`).
        #[arg(long, value_name = "DIR")]
        lake: Option<PathBuf>,
        /// Seconds between two lake flushes (each writes what the log gained).
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        lake_flush_secs: u64,
        /// At most this many log records per lake batch (one file per table and partition).
        #[arg(long, value_name = "ROWS", default_value_t = 100_000)]
        lake_max_rows_per_file: usize,
        /// Serve the online features from Redis, shared by replicas, e.g.
        /// redis://127.0.0.1:6379 (needs a build with `--features redis`).
        #[arg(long, env = "FLYWHEEL_REDIS", value_name = "URL")]
        redis: Option<String>,
        /// With --redis: `writer` applies the log to Redis (one per log partition),
        /// `reader` only reads it.
        #[arg(long, value_enum, default_value_t = RedisRole::Writer)]
        redis_role: RedisRole,
        /// With --redis: a feature read slower than this (ms) fails and the request
        /// falls back to cached popular lists (`feature_store_unavailable`).
        #[arg(long, default_value_t = 50, value_name = "MS")]
        redis_read_deadline_ms: u64,
        /// With --redis: every key starts with this prefix (several shops on one Redis).
        #[arg(long, default_value = "flywheel", value_name = "PREFIX")]
        redis_prefix: String,
        /// Ingestion from a Kafka topic (builds with `--features kafka`).
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Object storage (`--object-store s3://bucket/prefix`; the `s3` feature).
        #[command(flatten)]
        object_store: crate::commands::object_store::ObjectStoreArgs,
    },
    /// Import items, users or events (CSV or JSON lines, optionally .gz), or MovieLens.
    Import {
        /// What to import.
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Train a candidate version from the log; the promotion gate decides whether it serves.
    Train {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Promote the candidate whatever the gate says (the registry records that it was forced).
        #[arg(long)]
        force: bool,
        /// Train through a running server (`flywheel serve` holds the data dir), e.g. http://127.0.0.1:8080.
        #[arg(long)]
        server: Option<String>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        /// Train from a Parquet lake's records (`flywheel lake export`) instead of the
        /// log; the version is registered in the data dir (needs `--features parquet`).
        #[arg(long, value_name = "DIR", conflicts_with = "server")]
        from_lake: Option<PathBuf>,
    },
    /// The Parquet event lake: export the log, erase a user (needs `--features parquet`).
    Lake {
        /// What to do.
        #[command(subcommand)]
        what: crate::commands::lake::LakeCommand,
    },
    /// Users: `users erase ID` removes a user from every store (GDPR).
    Users {
        /// What to do.
        #[command(subcommand)]
        what: crate::commands::users::UsersCommand,
    },
    /// The model registry: list versions, promote one, roll back.
    Models {
        /// What to do.
        #[command(subcommand)]
        what: ModelsCommand,
    },
    /// Live monitoring: `monitor report` (drift, O/E, data quality, freshness).
    Monitor {
        /// What to do.
        #[command(subcommand)]
        what: crate::commands::monitor::MonitorCommand,
    },
    /// Imported rankers: score CSV rows with a LightGBM or XGBoost model file.
    Ranker {
        /// What to do.
        #[command(subcommand)]
        what: crate::commands::ranker::RankerCommand,
    },
    /// API keys: create (printed once), list, revoke.
    Keys {
        /// What to do.
        #[command(subcommand)]
        what: KeysCommand,
    },
    /// Online experiments (A/B, interleaving, shadow): create, list, show, stop, report, export.
    Experiment {
        /// What to do.
        #[command(subcommand)]
        what: ExperimentCommand,
    },
    /// Evaluate: temporal holdout on a data dir, or metrics/ope/ab on files.
    Eval(EvalArgs),
    /// Write a deterministic synthetic shop (items, users, events, ground truth).
    Simulate {
        /// Output folder.
        #[arg(long, default_value = "flywheel-sim")]
        out: PathBuf,
        /// Seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Number of users (default: the quickstart shop's).
        #[arg(long)]
        users: Option<usize>,
        /// Number of items.
        #[arg(long)]
        items: Option<usize>,
        /// Days simulated.
        #[arg(long)]
        days: Option<u32>,
        /// Injected drift and corruption.
        #[command(flatten)]
        inject: crate::commands::simulate::InjectArgs,
    },
    /// Print what the log (or one segment file) holds.
    Inspect {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// A segment file to inspect instead of the data dir's log.
        #[arg(long)]
        segment: Option<PathBuf>,
        /// Print the records themselves (at most this many).
        #[arg(long, default_value_t = 0)]
        records: usize,
        /// Inspect the log on Kafka instead (`--kafka-brokers`, `--kafka-log`,
        /// `--kafka-secrets`, as given to `serve`; needs `--features kafka`).
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Snapshots of the derived state on a stopped data dir: create, list, verify.
    Snapshot {
        /// What to do.
        #[command(subcommand)]
        what: crate::commands::snapshot::SnapshotCommand,
    },
    /// Benchmarks that print our figures beside their targets.
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        what: BenchCommand,
    },
}

/// `flywheel models`: on a stopped data dir, or through a server with `--server URL`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every version with its status, figures and gate decision.
    List {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Ask a running server instead of reading the data dir.
        #[arg(long)]
        server: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve a registered version from now on (no gate: an operator's decision).
    Promote {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// The version, e.g. v3.
        version: String,
        /// Act through a running server.
        #[arg(long)]
        server: Option<String>,
    },
    /// Serve the version that served before the current one; while a canary runs,
    /// end the canary instead (its version is marked rolled back).
    Rollback {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Act through a running server.
        #[arg(long)]
        server: Option<String>,
    },
    /// Serve a registered version to a share of users (outside experiments) beside
    /// the serving one; again with another share to ramp it.
    Canary {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// The version, e.g. v4.
        version: String,
        /// The share of users, in (0, 1), e.g. 0.1.
        #[arg(long)]
        share: f64,
        /// Act through a running server.
        #[arg(long)]
        server: Option<String>,
    },
}

/// `flywheel keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once (only its hash is stored).
    Create {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Scopes: read, events, admin (comma separated).
        #[arg(long)]
        scopes: String,
        /// Its name (default: key-N).
        #[arg(long)]
        name: Option<String>,
        /// Print `{"name", "key", "scopes"}`.
        #[arg(long)]
        json: bool,
    },
    /// Every key's name, scopes and creation time.
    List {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name (a running server stops accepting it at once).
    Revoke {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// The key's name.
        name: String,
    },
}

/// Where an experiment command acts: a stopped data dir, or a running server.
#[derive(Debug, Args)]
pub struct ExperimentTarget {
    /// Data settings.
    #[command(flatten)]
    pub data: DataArgs,
    /// Act through a running server (http://HOST:PORT) instead of the data dir.
    #[arg(long)]
    pub server: Option<String>,
}

/// `flywheel experiment`.
#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Start an experiment from a JSON definition (the body of POST /v1/experiments).
    Create {
        /// Where.
        #[command(flatten)]
        target: ExperimentTarget,
        /// The definition file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Every experiment with its status.
    List {
        /// Where.
        #[command(flatten)]
        target: ExperimentTarget,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One experiment's definition and state.
    Show {
        /// Where.
        #[command(flatten)]
        target: ExperimentTarget,
        /// The experiment id.
        id: String,
    },
    /// Change a running experiment's share of its layer (users already in stay in).
    Ramp {
        /// Where.
        #[command(flatten)]
        target: ExperimentTarget,
        /// The experiment id.
        id: String,
        /// The new share of the layer's users, in (0, 1].
        #[arg(long)]
        traffic: f64,
    },
    /// Stop assigning users; the statistics stay readable.
    Stop {
        /// Where.
        #[command(flatten)]
        target: ExperimentTarget,
        /// The experiment id.
        id: String,
    },
    /// Per-variant figures and the statistics of the comparison.
    Report {
        /// Where.
        #[command(flatten)]
        target: ExperimentTarget,
        /// The experiment id.
        id: String,
        /// Print JSON (the body of GET /v1/experiments/:id/metrics).
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Which variant each user gets under a definition (alone in its layer): one JSON
    /// line per user with both buckets, for checking assignment against other tools.
    Assign {
        /// The definition file.
        #[arg(long)]
        file: PathBuf,
        /// The users.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Write the per-user CSV that `flywheel eval ab --users` reads.
    Export {
        /// Where.
        #[command(flatten)]
        target: ExperimentTarget,
        /// The experiment id.
        id: String,
        /// The CSV to write.
        #[arg(long)]
        users: PathBuf,
    },
}

/// What `import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Items: JSON lines or CSV (columns id, category, tags as a|b, price, title, text, created_at, available; others become attributes).
    Items {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Files to read.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Users: JSON lines or CSV (id, created_at, opted_out; others become attributes).
    Users {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Files to read.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Events: JSON lines or CSV (user_id, item_id, action, value, timestamp, request_id, position; others become context).
    Events {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// Files to read.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// A MovieLens 100K or 1M folder (u.data/u.item/u.user or ratings.dat/movies.dat/users.dat).
    Movielens {
        /// Data settings.
        #[command(flatten)]
        data: DataArgs,
        /// The MovieLens folder.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// `flywheel eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Data settings (for the holdout evaluation).
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Share of the latest events held out.
    #[arg(long, default_value_t = 0.1)]
    pub holdout: f64,
    /// Evaluate at most this many test users.
    #[arg(long)]
    pub max_users: Option<usize>,
    /// How the log is split into train and test: temporal, leave-last-out or user-random.
    #[arg(long, default_value = "temporal")]
    pub split: flywheel_offline::evaluation::Split,
    /// Seed of the user-random split and of the gate's bootstrap.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Promotion gate: `--compare CANDIDATE [SERVING]` scores two saved model versions
    /// (SERVING defaults to the served one, never the candidate itself) on the same
    /// holdout users, on data neither was trained on, with a paired bootstrap CI of the
    /// NDCG@10 difference; the rule is the config's `[gate]` (non-inferiority by default).
    #[arg(long, num_args = 1..=2, value_names = ["CANDIDATE", "SERVING"])]
    pub compare: Vec<String>,
    /// Gate rule: promote when the mean NDCG@10 difference exceeds this, instead of the config's rule.
    #[arg(long, requires = "compare", allow_hyphen_values = true)]
    pub min_lift: Option<f64>,
    /// Promote the candidate when the gate says so.
    #[arg(long, requires = "compare")]
    pub promote: bool,
    /// File-based evaluations.
    #[command(subcommand)]
    pub tool: Option<EvalTool>,
}

/// File-based evaluation tools.
#[derive(Debug, Subcommand)]
pub enum EvalTool {
    /// Ranking metrics from TREC qrels + run, and/or pointwise metrics from a predictions CSV.
    Metrics {
        /// TREC qrels file.
        #[arg(long)]
        qrels: Option<PathBuf>,
        /// TREC run file.
        #[arg(long)]
        run: Option<PathBuf>,
        /// Predictions CSV (user_id, label, score, optional slice columns).
        #[arg(long)]
        preds: Option<PathBuf>,
        /// Cut-offs, e.g. 1,3,5,10.
        #[arg(long, value_delimiter = ',', default_value = "1,3,5,10")]
        k: Vec<usize>,
        /// Also write a self-contained HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Off-policy estimates (IPS, SNIPS, DM, DR, SNDR): from a logged-bandit CSV
    /// (`--log`), or of a registered model version on the data dir's own log
    /// (`--candidate`: its lists scored on the serving policy's logged propensities).
    #[command(group(clap::ArgGroup::new("source").required(true).args(["log", "candidate"])))]
    Ope {
        /// The logged-bandit CSV.
        #[arg(long)]
        log: Option<PathBuf>,
        /// A registered model version (e.g. v3) to score on the stochastic slots of the
        /// impressions the data dir's log holds.
        #[arg(long)]
        candidate: Option<String>,
        /// Data settings (with --candidate; also accepted before `ope`).
        #[command(flatten)]
        data: Box<DataArgs>,
        /// Clip importance weights at this value.
        #[arg(long)]
        clip: Option<f64>,
        /// Bootstrap resamples for CIs (0: none).
        #[arg(long, default_value_t = 0)]
        bootstrap: usize,
        /// Bootstrap seed.
        #[arg(long, default_value_t = 12345)]
        seed: u64,
        /// Also write a self-contained HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// A/B statistics from a per-user CSV.
    Ab {
        /// The per-user CSV.
        #[arg(long)]
        users: PathBuf,
        /// The control variant's name in the CSV.
        #[arg(long, default_value = "control")]
        control: String,
        /// The treatment variant's name in the CSV.
        #[arg(long, default_value = "treatment")]
        treatment: String,
        /// The configured share of users in treatment (for the SRM check).
        #[arg(long, default_value_t = 0.5)]
        treatment_share: f64,
    },
}

/// `flywheel bench`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Durable ingestion through POST /v1/events:batch on a real server.
    Ingest {
        /// Events to send.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Events per batch request.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Concurrent client connections.
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// Recommendation latency and throughput on the quick-start shop.
    Recommend {
        /// Target request rate (requests per second, open loop).
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// Seconds to run.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Concurrent client connections.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Measure twice: idle, then while a training job runs (its p99 beside idle's).
        #[arg(long)]
        during_training: bool,
    },
    /// Side by side with the peers (implicit's ALS, popularity) on MovieLens 100K,
    /// per-user random 75/25 split, in one run on the same split.
    Peers {
        /// The MovieLens 100K folder.
        #[arg(long, default_value = "../shared/data/ml-100k")]
        ml_dir: PathBuf,
        /// Where the split and the peer results are written.
        #[arg(long, default_value = "target/bench-peers")]
        out: PathBuf,
        /// Split seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Python interpreter with `implicit` installed (the script scripts/bench-peers.sh sets it up); skip the peers when absent.
        #[arg(long)]
        python: Option<PathBuf>,
    },
    /// Whether the experiment statistics are right, over many simulated experiments
    /// (A/A false positives, A/B power, interleaving vs A/B, off-policy coverage) and
    /// one run through the real HTTP server.
    Experiments {
        /// A/A runs; the other studies run proportionally fewer.
        #[arg(long, default_value_t = 500)]
        runs: usize,
        /// Seed of the world and of every run.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// flywheel-ann's HNSW on the ANN anchor vectors (`ann_anchor.py gen`): build time,
    /// memory, and recall@10 / single-thread queries per second / CPU per query by ef,
    /// in f32 and int8 (scripts/bench-ann.sh runs hnswlib beside it).
    Ann(crate::commands::bench_ann::AnnArgs),
    /// The self-healing controller on the simulator, on simulated time, through the
    /// real engine: a corrupted stream (pause, rollback, resume) and a taste drift
    /// (retrain through the gate), with quality against the simulator's truth.
    SelfHealing(crate::commands::bench_self_healing::SelfHealingArgs),
    /// Time to ready over a log of N events (default 10M), with a snapshot and with a
    /// full replay, side by side.
    Startup(crate::commands::bench_startup::StartupArgs),
    /// The ranker's position-bias correction and context features on the simulator,
    /// against its true preferences (NDCG@10 and Kendall tau, with and without each).
    RankerBias(crate::commands::bench_ranker_bias::RankerBiasArgs),
    /// Recommendation latency, throughput and server CPU against running servers
    /// (`flywheel serve` replicas), the load spread over them (scripts/cluster.sh).
    Http(crate::commands::bench_http::HttpArgs),
}

/// What a replica does with the Redis feature store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisRole {
    /// Applies the log to Redis (one writer per log partition) and reads it.
    Writer,
    /// Only reads it.
    Reader,
}

/// `flywheel serve --kafka-brokers HOST:PORT` with `--kafka-topic T` (every record of
/// topic `T`, the JSON body of `POST /v1/events`, is applied as if posted) and/or
/// `--kafka-log L` (the engine's own log is topic `L`: replicas over one topic share it).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaArgs {
    /// Kafka brokers, `HOST:PORT[,HOST:PORT...]`, for `--kafka-topic` and/or
    /// `--kafka-log` (needs a binary built with `--features kafka`).
    #[arg(long, value_name = "HOST:PORT")]
    pub kafka_brokers: Option<String>,
    /// The topic the shop's producers write events to (ingested into the engine's log).
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub kafka_topic: Option<String>,
    /// The engine's log on this topic instead of the data dir's `log/`: every replica
    /// given the same topic (and the same `--kafka-secrets`) applies every record, and
    /// an event is acknowledged once the broker has it (acks=all).
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub kafka_log: Option<String>,
    /// With --kafka-log: the directory of the per-user secrets that pseudonymise user
    /// ids on the topic (default `<data_dir>/kafka/secrets`). Replicas must share it
    /// (one directory; across machines, shared storage).
    #[arg(long, value_name = "DIR", requires = "kafka_log")]
    pub kafka_secrets: Option<PathBuf>,
}
