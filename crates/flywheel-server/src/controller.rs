//! The controller routes (scope `admin`): `GET /v1/controller` shows the
//! self-healing controller's mode, the breaker, the breach periods and its recent
//! decisions; `POST /v1/controller/step` runs one step now (operators and tests; with
//! `--simulated-clock` at the `now` parameter).
//!
//! A decision on the wire is flat, as the dashboard renders it: `at`, `rule`,
//! `action` (its kind), `detail` (the action in words), `outcome` (`taken` or why it
//! was held back), `evidence` (figure name → value), `thresholds` (figure name → the
//! comparison that held), and `result` / `error` of carrying it out.

use axum::extract::{RawQuery, State};
use axum::Json;
use flywheel_engine::{action_name, outcome_name, ControllerView, DecisionRecord, Engine};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::experiments::request_now;
use crate::openapi::ErrorBody;
use crate::routes::{blocking, AppState};

/// `GET /v1/controller` (and `POST /v1/controller/step`, which adds `step`).
#[derive(ToSchema)]
#[allow(dead_code)] // the document's shape; the handlers build the JSON
pub(crate) struct ControllerDoc {
    /// `dry_run` or `active`.
    mode: String,
    /// Whether the circuit breaker pauses training.
    paused: bool,
    /// `dry_run`, `breaker_open`, `breaker_opened_at`, `quality_clear_since`,
    /// `breaker_closes_at`, `drift_active`, `actions_last_hour`, `last_observation`.
    status: BTreeMap<String, Value>,
    /// The recorded breach periods: `from`, `until` (null while it lasts).
    breaches: Vec<BTreeMap<String, Value>>,
    /// The most recent decisions, oldest first.
    decisions: Vec<DecisionDoc>,
    /// Decisions since start: `action`, `outcome`, `count`.
    counts: Vec<BTreeMap<String, Value>>,
    /// The decisions of the step just run (`POST /v1/controller/step` only).
    step: Option<Vec<DecisionDoc>>,
}

/// One decision of the controller.
#[derive(ToSchema)]
#[schema(as = ControllerDecision)]
#[allow(dead_code)] // the document's shape; `wire_decision` builds the JSON
pub(crate) struct DecisionDoc {
    /// When (RFC 3339).
    at: String,
    /// `data_quality_breach`, `data_quality_recovered` or `drift`.
    rule: String,
    /// `pause_training`, `resume_training`, `rollback` or `retrain`.
    action: String,
    /// The action in words (e.g. `roll back v2 → v1`).
    detail: String,
    /// `taken`, or why not: `cooldown`, `cap`, `dry_run`, `training_paused`,
    /// `training_running`, `no_rollback_target`.
    outcome: String,
    /// The outcome as recorded: `status`, and `reason`, `until`, `limit`.
    outcome_detail: BTreeMap<String, Value>,
    /// Each figure behind the decision and its value.
    evidence: BTreeMap<String, f64>,
    /// Each figure's comparison that held (e.g. `> 0.050`).
    thresholds: BTreeMap<String, String>,
    /// What carrying it out did (e.g. `serving v1`).
    result: Option<String>,
    /// Why carrying it out failed.
    error: Option<String>,
}

/// One decision as the API shows it.
pub(crate) fn wire_decision(record: &DecisionRecord) -> Value {
    let decision = &record.decision;
    let mut evidence = Map::new();
    let mut thresholds = Map::new();
    for figure in &decision.evidence {
        evidence.insert(figure.signal.clone(), json!(figure.value));
        thresholds.insert(figure.signal.clone(), json!(figure.threshold.to_string()));
    }
    json!({
        "at": decision.at.to_string(),
        "rule": decision.rule,
        "action": action_name(decision.action.kind()),
        "detail": decision.action.to_string(),
        "outcome": outcome_name(&decision.outcome),
        "outcome_detail": decision.outcome,
        "evidence": evidence,
        "thresholds": thresholds,
        "result": record.result,
        "error": record.error,
    })
}

fn wire_view(view: &ControllerView) -> Value {
    json!({
        "mode": view.mode,
        "paused": view.paused,
        "status": view.status,
        "breaches": view.breaches.iter().map(|b| json!({
            "from": b.from.to_string(),
            "until": b.until.map(|t| t.to_string()),
        })).collect::<Vec<_>>(),
        "decisions": view.decisions.iter().map(wire_decision).collect::<Vec<_>>(),
        "counts": view.counts,
    })
}

/// `GET /v1/controller`.
#[utoipa::path(
    get,
    path = "/v1/controller",
    tag = "operations",
    summary = "The self-healing controller: mode, circuit breaker, breach periods and its recent decisions with their evidence",
    responses((status = 200, description = "The controller's state", body = ControllerDoc))
)]
pub(crate) async fn show(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let view = blocking(move || Ok(engine.controller_view())).await?;
    Ok(Json(wire_view(&view)))
}

/// `POST /v1/controller/step[?now=T]`: one step now; answers the step's decisions and
/// the controller's state after it.
#[utoipa::path(
    post,
    path = "/v1/controller/step",
    tag = "operations",
    summary = "Run one step of the controller now (observe, decide, act); `now` only with --simulated-clock",
    params(("now" = Option<String>, Query, description = "The step's time (RFC 3339 or seconds since 1970); only with --simulated-clock")),
    responses(
        (status = 200, description = "The step's decisions (`step`) and the controller's state", body = ControllerDoc),
        (status = 400, description = "A bad or out-of-order `now`, or an unknown parameter", body = ErrorBody)
    )
)]
pub(crate) async fn step(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let now = request_now(&app, query.as_deref())?;
    let engine: Arc<Engine> = Arc::clone(&app.engine);
    let (records, view) = blocking(move || {
        let records = engine.control_step(now).map_err(ApiError::from)?;
        Ok((records, engine.controller_view()))
    })
    .await?;
    let mut body = wire_view(&view);
    body["step"] = Value::Array(records.iter().map(wire_decision).collect());
    Ok(Json(body))
}

/// The controller's lines of `/metrics`: decisions by action and outcome (both
/// bounded sets) and whether training is paused.
pub(crate) fn render_metrics(out: &mut String, engine: &Engine) {
    let view = engine.controller_view();
    let name = "flywheel_controller_decisions_total";
    let _ = writeln!(
        out,
        "# HELP {name} Controller decisions since start, by action and outcome."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    for count in &view.counts {
        let _ = writeln!(
            out,
            "{name}{{action=\"{}\",outcome=\"{}\"}} {}",
            count.action, count.outcome, count.count
        );
    }
    let name = "flywheel_controller_training_paused";
    let _ = writeln!(
        out,
        "# HELP {name} 1 while the controller's circuit breaker pauses training."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {}", u8::from(view.paused));
}
