//! Schemas of the JSON the API reads and writes where the value comes from a lower
//! crate (items, users, jobs, versions, experiments): these structs exist only to be
//! described, so the engine crates stay free of utoipa. Each mirrors what the engine
//! type serializes to; fields that may be absent are `Option`s (never required), and
//! every object admits fields beyond those listed, so a field added below is not a
//! breach of the document.

// Never built: they are the document's description of values built elsewhere.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// The body of every error: `{"error": {"code", "message"}}`.
#[derive(ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong.
    error: ErrorDetail,
}

/// The error itself.
#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable machine-readable code, e.g. `invalid_event`, `not_found`, `unauthorized`.
    code: String,
    /// What was wrong, in words, naming the field.
    message: String,
    /// A rejected batch: the first 100 problems, each with `index`, `field`, `message`.
    details: Option<Vec<BTreeMap<String, Value>>>,
    /// Problems of a rejected batch left out of `details`.
    details_omitted: Option<u64>,
    /// A 409: the job already running.
    job_id: Option<String>,
}

/// One event, as `POST /v1/events` reads it.
#[derive(ToSchema)]
#[schema(as = Event, example = json!({"user_id": "u00001", "item_id": "i00002", "action": "click", "timestamp": "2026-11-23T10:00:00Z", "context": {"device": "ios"}}))]
#[serde(deny_unknown_fields)]
pub(crate) struct EventIn {
    /// Who acted.
    user_id: String,
    /// On what.
    item_id: String,
    /// `view`, `click`, `add_to_cart`, `purchase`, `rating` or a configured action.
    action: String,
    /// The rating, or the revenue of a purchase.
    value: Option<f64>,
    /// When (RFC 3339 or seconds since 1970); the time of arrival when absent.
    timestamp: Option<EventTime>,
    /// The `request_id` of the recommendation list the item was shown in.
    request_id: Option<String>,
    /// Its 0-based position in that list.
    position: Option<u32>,
    /// Free-form scalar context (device, page…).
    context: Option<BTreeMap<String, Value>>,
}

/// When an event happened.
#[derive(ToSchema)]
#[serde(untagged)]
pub(crate) enum EventTime {
    /// RFC 3339, e.g. `2026-11-23T10:00:00Z`.
    Text(String),
    /// Seconds since 1970.
    Seconds(f64),
}

/// A body of events: one event or an array of them.
#[derive(ToSchema)]
#[schema(as = Events)]
#[serde(untagged)]
pub(crate) enum EventsIn {
    /// One event.
    One(EventIn),
    /// A batch, all or nothing.
    Many(Vec<EventIn>),
}

/// The answer to stored events.
#[derive(ToSchema)]
pub(crate) struct Accepted {
    /// How many events were stored (durably).
    accepted: u64,
    /// The log offset of the first.
    first_offset: u64,
    /// The log offset of the last.
    last_offset: u64,
}

/// An item of the catalog.
#[derive(ToSchema)]
#[schema(example = json!({"category": "books/scifi", "tags": ["space"], "price": 12.5, "title": "A book", "available": true, "attributes": {"brand": "Corvo"}}))]
#[serde(deny_unknown_fields)]
pub(crate) struct Item {
    /// Its id (the path's id when absent from a body).
    id: Option<String>,
    /// A category, may be a path like `books/scifi`.
    category: Option<String>,
    /// Free tags.
    tags: Option<Vec<String>>,
    /// Price.
    price: Option<f64>,
    /// Title.
    title: Option<String>,
    /// Longer text.
    text: Option<String>,
    /// A content vector computed elsewhere.
    embedding: Option<Vec<f32>>,
    /// When it entered the catalog (RFC 3339).
    created_at: Option<String>,
    /// Whether it can be recommended (default true).
    available: Option<bool>,
    /// Free-form scalar attributes.
    attributes: Option<BTreeMap<String, Value>>,
}

/// A user.
#[derive(ToSchema)]
#[schema(example = json!({"attributes": {"country": "FR"}, "created_at": "2026-01-05T10:00:00Z"}))]
#[serde(deny_unknown_fields)]
pub(crate) struct User {
    /// Their id (the path's id when absent from a body).
    id: Option<String>,
    /// Free-form scalar attributes.
    attributes: Option<BTreeMap<String, Value>>,
    /// When they signed up (RFC 3339).
    created_at: Option<String>,
    /// Whether they refused personalisation.
    opted_out: Option<bool>,
}

/// The model registry.
#[derive(ToSchema)]
pub(crate) struct Models {
    /// The version serving, if any.
    serving: Option<String>,
    /// The canary, when one runs.
    canary: Option<Canary>,
    /// Every registered version, oldest first.
    versions: Vec<Version>,
    /// Serving figures of versions no longer registered (`none`: the untrained fallback).
    served_by_other_versions: Option<BTreeMap<String, Value>>,
}

/// A canary: a version serving a share of the users outside experiments.
#[derive(ToSchema)]
pub(crate) struct Canary {
    /// The version on canary.
    version: String,
    /// The share of users outside experiments it serves, in (0, 1).
    share: f64,
    /// When it started (RFC 3339).
    started_at: String,
    /// Who started it (`key:NAME`, `api`, `cli`).
    by: String,
}

/// The body of `POST /v1/models/{version}/canary`.
#[derive(ToSchema)]
#[schema(example = json!({"share": 0.1}))]
#[serde(deny_unknown_fields)]
pub(crate) struct CanaryIn {
    /// The share of users outside experiments the version serves, in (0, 1).
    share: f64,
}

/// A canary started (or its share changed).
#[derive(ToSchema)]
pub(crate) struct CanaryStarted {
    /// The version serving everyone else.
    serving: Option<String>,
    /// The canary now running.
    canary: Canary,
}

/// A canary ended.
#[derive(ToSchema)]
pub(crate) struct CanaryEnded {
    /// The version serving everyone again.
    serving: Option<String>,
    /// The version that was on canary, now `rolled_back`.
    rolled_back: String,
    /// Always null: no canary runs.
    canary: Option<Canary>,
}

/// One registered version.
#[derive(ToSchema)]
pub(crate) struct Version {
    /// Its name, e.g. `v3`.
    version: String,
    /// `serving`, `candidate`, `rejected`, `retired`…
    status: String,
    /// Evaluation figures.
    metrics: BTreeMap<String, f64>,
    /// The promotion gate's decision.
    gate: Option<BTreeMap<String, Value>>,
    /// How it was made (config, training window, timings).
    manifest: BTreeMap<String, Value>,
}

/// Which version serves after a promotion or a rollback.
#[derive(ToSchema)]
pub(crate) struct Serving {
    /// The version now serving.
    serving: String,
}

/// A background job (training, or the second phase of an erasure).
#[derive(ToSchema)]
pub(crate) struct Job {
    /// Its id: poll `GET /v1/jobs/{id}`.
    id: String,
    /// `training` or `erasure`.
    kind: String,
    /// Where it is.
    state: JobState,
    /// The stage it is in, in words.
    progress: String,
    /// When it was accepted (RFC 3339).
    created_at: String,
    /// When it finished.
    finished_at: Option<String>,
    /// What a training job produced, once it succeeded.
    result: Option<BTreeMap<String, Value>>,
    /// What an erasure job removed, once it succeeded (absent for training jobs).
    erasure: Option<ErasureReport>,
    /// Why it failed.
    error: Option<String>,
}

/// What an erasure removed (`DELETE /v1/users/{id}`, then `GET /v1/jobs/{id}`). The
/// user is named by pseudonym only: the id is in no marker, list or report.
#[derive(ToSchema)]
pub(crate) struct ErasureReport {
    /// Hex HMAC-SHA256 of the user id under the data directory's secret.
    pseudonym: String,
    /// The log offset of the erasure's marker; the user's records below it are erased.
    marker_offset: u64,
    /// Whether this run resumed an erasure a restart interrupted.
    resumed: bool,
    /// Log records replaced by id-free placeholders (same offsets), by kind: `event`,
    /// `impression`, `shadow_impression`, `user_upsert`, `user_delete`.
    log_records_erased: BTreeMap<String, u64>,
    /// Sealed log segments read.
    segments_scanned: u64,
    /// Log segments rewritten (atomically).
    segments_rewritten: u64,
    /// Whether the catalog held the user.
    catalog_user_removed: bool,
    /// Whether the online features held the user.
    features_dropped: bool,
    /// Per-user entries dropped from the experiments ledger.
    experiment_entries_dropped: u64,
    /// Model versions looked at.
    model_versions_scanned: u64,
    /// Model versions rewritten.
    model_versions_rewritten: u64,
    /// Model files rewritten.
    model_files_rewritten: u64,
    /// Per-user model entries dropped (ALS factors, once per version).
    model_user_entries_dropped: u64,
    /// What each external store (Redis, lake, Kafka, object store) removed, by name.
    targets: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Where a job is.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum JobState {
    /// Accepted, not started.
    Queued,
    /// Working.
    Running,
    /// Done.
    Succeeded,
    /// Stopped on an error.
    Failed,
}

/// An experiment's definition, the body of `POST /v1/experiments`.
#[derive(ToSchema)]
#[schema(example = json!({"id": "exp-1", "kind": "ab", "traffic": 0.5, "variants": [{"name": "control", "model_version": "v1", "share": 0.5}, {"name": "treatment", "model_version": "v1", "share": 0.5, "rerank": {"mmr_lambda": 0.5}}]}))]
#[serde(deny_unknown_fields)]
pub(crate) struct ExperimentDefinition {
    /// Its id (letters, digits, `-`, `_`, `.`; at most 64 bytes).
    id: String,
    /// `ab`, `interleaving` or `shadow`.
    kind: String,
    /// The assignment salt (default: the id).
    salt: Option<String>,
    /// The layer: experiments of one layer never share a user.
    layer: Option<String>,
    /// The share of the layer's users it takes, in (0, 1].
    traffic: Option<f64>,
    /// The variants; the first is the control.
    variants: Vec<VariantDefinition>,
    /// `ctr`, `cvr` or `rpm`.
    primary_metric: Option<String>,
    /// Guardrail limits.
    guardrails: Option<BTreeMap<String, Value>>,
    /// Per action, the attribution window in hours.
    attribution_hours: Option<BTreeMap<String, f64>>,
    /// Significance level.
    alpha: Option<f64>,
    /// Free text.
    description: Option<String>,
}

/// One variant of a definition.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VariantDefinition {
    /// Its name, unique in the experiment.
    name: String,
    /// The registered version it serves (default: whichever serves).
    model_version: Option<String>,
    /// Its share of the users (A/B only).
    share: Option<f64>,
    /// Exploration settings.
    exploration: Option<BTreeMap<String, Value>>,
    /// Re-ranking overrides.
    rerank: Option<BTreeMap<String, Value>>,
}

/// An experiment: its definition and where it stands.
#[derive(ToSchema)]
pub(crate) struct Experiment {
    /// Its id.
    id: String,
    /// `ab`, `interleaving` or `shadow`.
    kind: String,
    /// `running` or `stopped`.
    status: String,
    /// The variants.
    variants: Vec<VariantDefinition>,
    /// The share of its layer's users it takes.
    traffic: f64,
    /// The layer it lives in.
    layer_name: String,
    /// The bucket range `[start, end)` of its layer it holds.
    layer_buckets: Vec<u32>,
    /// When it started (RFC 3339).
    started: String,
    /// When it stopped.
    stopped: Option<String>,
}

/// Every experiment.
#[derive(ToSchema)]
pub(crate) struct Experiments {
    /// Running and stopped.
    experiments: Vec<Experiment>,
}

/// The body of a ramp.
#[derive(ToSchema)]
#[schema(example = json!({"traffic": 0.8}))]
#[serde(deny_unknown_fields)]
pub(crate) struct Ramp {
    /// The new share of the layer's users, in (0, 1].
    traffic: f64,
}

/// An experiment's live figures.
#[derive(ToSchema)]
pub(crate) struct ExperimentMetrics {
    /// The experiment.
    id: String,
    /// Its kind.
    kind: String,
    /// `running` or `stopped`.
    status: String,
    /// Per variant: exposures, outcomes, rates.
    variants: BTreeMap<String, Value>,
    /// A/B: each treatment against the control, with a confidence interval.
    comparisons: Option<BTreeMap<String, Value>>,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: String,
}

/// `GET /readyz`: ready, and what can still go wrong while serving.
#[derive(ToSchema)]
pub(crate) struct Ready {
    /// `ready`.
    status: String,
    /// Log records not yet applied to the state.
    consumer_lag: u64,
    /// Records skipped as undecodable.
    skipped_records: u64,
    /// Why the consumer cannot read the log, if it cannot.
    consumer_error: Option<String>,
    /// Why the log refuses writes, if it does.
    write_error: Option<String>,
    /// Snapshots: `loaded` (the one start-up loaded: `path`, `offset`, `bytes`,
    /// `load_ms`; null after a full replay), `rejected` (each refused one: `path`,
    /// `kind`, `reason`), `last_offset` and `last_error` of the ones taken since.
    snapshot: BTreeMap<String, Value>,
}

/// `GET /v1/monitoring`: the live window against the serving version's reference.
#[derive(ToSchema)]
pub(crate) struct Monitoring {
    /// The window: `from`, `to` (RFC 3339), `length_secs`, `events`, `impressions`,
    /// `served_items`.
    window: BTreeMap<String, Value>,
    /// The version whose reference the window is compared with.
    reference_version: Option<String>,
    /// `ok`, or why there is no comparison (e.g. `no reference: …`).
    reference_status: String,
    /// Drift per monitored feature.
    features: Vec<FeatureDriftDoc>,
    /// Mean predicted P(click) of served items against the observed CTR on final labels:
    /// `calibrated`, `mean_predicted_ctr`, `observed_ctr`, `observed_over_expected`,
    /// `band` `[low, high]`, `finalized_impressions`, `judged`, `outside_band`.
    prediction: BTreeMap<String, Value>,
    /// Missing fields, unknown item ids, duplicates, refused events by reason, event-time
    /// skew, bot-like users, and the thresholds crossed (`breaches`).
    data_quality: BTreeMap<String, Value>,
    /// The newest applied event, its age, the consumer's lag.
    freshness: BTreeMap<String, Value>,
    /// Latency per serving stage (`retrieval`, `ranking`, `rerank`, `total`,
    /// `feature_update`): `stage`, `count`, `p50_ms`, `p99_ms`.
    latency: Vec<BTreeMap<String, Value>>,
}

/// One feature's drift.
#[derive(ToSchema)]
#[schema(as = FeatureDrift)]
pub(crate) struct FeatureDriftDoc {
    /// The feature's name (from the fixed feature list).
    name: String,
    /// `numeric` or `categorical`.
    kind: String,
    /// `ks` or `psi`.
    statistic: String,
    /// The statistic (null when either side has no samples).
    value: Option<f64>,
    /// Its threshold.
    threshold: f64,
    /// Whether it crossed the threshold.
    drifted: bool,
    /// Whether the controller watches it.
    watched: Option<bool>,
    /// The KS test's p-value.
    p_value: Option<f64>,
}
