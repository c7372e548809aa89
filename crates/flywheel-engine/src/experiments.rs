//! Experiments in the engine: created and stopped through the log (so a restart or a
//! replay restores them), their model versions loaded and kept beside the serving
//! one, and their statistics read from the ledger the consumer keeps.

use std::collections::HashMap;
use std::sync::{Arc, RwLockReadGuard};
use std::time::Duration;

use flywheel_core::{CoreError, ExperimentDef, LogRecord, Timestamp};
use flywheel_experiments::live::{self, ExperimentMetrics, Running};
use flywheel_experiments::Ledger;
use flywheel_pipeline::ModelSet;
use flywheel_registry as registry;
use serde::Serialize;

use crate::engine::{Engine, Inner};
use crate::error::{EngineError, Result};

/// An experiment as the API shows it: the definition and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentView {
    /// The definition.
    #[serde(flatten)]
    pub definition: ExperimentDef,
    /// `running` or `stopped`.
    pub status: &'static str,
    /// The layer it lives in.
    pub layer_name: String,
    /// The bucket range `[start, end)` of its layer it holds.
    pub layer_buckets: [u32; 2],
    /// When it started.
    pub started: Timestamp,
    /// When it stopped.
    pub stopped: Option<Timestamp>,
}

impl ExperimentView {
    fn of(running: &Running) -> Self {
        ExperimentView {
            definition: running.def.clone(),
            status: if running.is_active() {
                "running"
            } else {
                "stopped"
            },
            layer_name: running.def.layer_name(),
            layer_buckets: running.layer_buckets,
            started: running.started,
            stopped: running.stopped,
        }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        index: None,
        source: CoreError::InvalidValue {
            field: field.into(),
            reason: reason.into(),
        },
    }
}

/// Model versions loaded for experiments, by name.
#[derive(Default)]
pub(crate) struct VariantModels {
    loaded: std::sync::Mutex<HashMap<String, Arc<ModelSet>>>,
}

/// The models of `version` (the serving ones when `None` or when it serves), loaded
/// once and kept.
pub(crate) fn models_for(inner: &Inner, version: Option<&str>) -> Result<Arc<ModelSet>> {
    let serving = crate::engine::served_models(inner);
    let Some(version) = version.filter(|v| *v != serving.version()) else {
        return Ok(serving);
    };
    let cache = &inner.variant_models.loaded;
    if let Some(set) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(version) {
        return Ok(Arc::clone(set));
    }
    let set = Arc::new(registry::load(&inner.config.data_dir, version)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(version.to_string(), Arc::clone(&set));
    Ok(set)
}

/// Keeps an already loaded version beside the serving one (e.g. a canary's).
pub(crate) fn keep_models(inner: &Inner, set: ModelSet) {
    let version = set.version().to_string();
    inner
        .variant_models
        .loaded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(version, Arc::new(set));
}

impl Engine {
    /// The experiments and their outcomes, as of the records applied.
    pub fn ledger(&self) -> RwLockReadGuard<'_, Ledger> {
        self.inner.ledger.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The models of `version` (the serving ones when `None` or when it serves),
    /// loaded once and kept.
    pub fn models_for(&self, version: Option<&str>) -> Result<Arc<ModelSet>> {
        models_for(&self.inner, version)
    }

    /// Starts an experiment at `at`: every variant's model version must be registered
    /// (any status: testing online what the offline gate doubts is the point), and
    /// its layer must have room. Returns once the start is durable and applied.
    pub fn create_experiment(&self, def: ExperimentDef, at: Timestamp) -> Result<ExperimentView> {
        for (index, variant) in def.variants.iter().enumerate() {
            if let Some(version) = &variant.model_version {
                self.models_for(Some(version)).map_err(|e| {
                    invalid(
                        format!("variants[{index}].model_version"),
                        format!("`{version}` cannot be served: {e}"),
                    )
                })?;
            }
        }
        // One administrator at a time, so two starts never take the same buckets.
        let _admin = self
            .inner
            .experiment_admin
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let layer_buckets = self.ledger().book.place(&def).map_err(|e| {
            let field = match e {
                live::BookError::AlreadyRunning(_) | live::BookError::NotRunning(_) => "id",
                live::BookError::LayerFull { .. } => "traffic",
            };
            invalid(field, e.to_string())
        })?;
        let id = def.id.clone();
        self.append_and_wait(LogRecord::ExperimentStart {
            experiment: def,
            layer_buckets,
            at,
        })?;
        self.experiment(&id)
            .ok_or_else(|| EngineError::NotFound(format!("experiment {id}")))
    }

    /// Changes a running experiment's traffic at `at`. Its bucket range keeps its
    /// start, so users already in stay in the same variant; growing stops at the next
    /// experiment of the layer.
    pub fn ramp_experiment(&self, id: &str, traffic: f64, at: Timestamp) -> Result<ExperimentView> {
        if !(traffic > 0.0 && traffic <= 1.0) {
            return Err(invalid("traffic", "must be in (0, 1]"));
        }
        let _admin = self
            .inner
            .experiment_admin
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let layer_buckets = match self.ledger().book.place_ramp(id, traffic) {
            Ok(range) => range,
            Err(live::BookError::NotRunning(_)) => {
                return Err(EngineError::NotFound(format!("running experiment {id}")))
            }
            Err(e) => return Err(invalid("traffic", e.to_string())),
        };
        self.append_and_wait(LogRecord::ExperimentRamp {
            id: id.to_string(),
            traffic,
            layer_buckets,
            at,
        })?;
        self.experiment(id)
            .ok_or_else(|| EngineError::NotFound(format!("experiment {id}")))
    }

    /// Stops a running experiment at `at`; its statistics stay readable.
    pub fn stop_experiment(&self, id: &str, at: Timestamp) -> Result<ExperimentView> {
        let _admin = self
            .inner
            .experiment_admin
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match self.ledger().book.get(id) {
            None => return Err(EngineError::NotFound(format!("experiment {id}"))),
            Some(running) if !running.is_active() => return Ok(ExperimentView::of(running)),
            Some(_) => {}
        }
        self.append_and_wait(LogRecord::ExperimentStop {
            id: id.to_string(),
            at,
        })?;
        self.experiment(id)
            .ok_or_else(|| EngineError::NotFound(format!("experiment {id}")))
    }

    fn append_and_wait(&self, record: LogRecord) -> Result<()> {
        let range = self.append_records(&[record])?;
        if !self.wait_applied(range.end, Duration::from_secs(30)) {
            return Err(EngineError::Encode(
                "the experiment record is durable but was not applied within 30 s".into(),
            ));
        }
        Ok(())
    }

    /// Every experiment the log started, by id.
    pub fn experiments(&self) -> Vec<ExperimentView> {
        self.ledger().book.all().map(ExperimentView::of).collect()
    }

    /// One experiment.
    pub fn experiment(&self, id: &str) -> Option<ExperimentView> {
        self.ledger().book.get(id).map(ExperimentView::of)
    }

    /// The statistics of one experiment, as of the records applied.
    pub fn experiment_metrics(&self, id: &str) -> Result<ExperimentMetrics> {
        live::metrics(&self.ledger(), id)
            .ok_or_else(|| EngineError::NotFound(format!("experiment {id}")))
    }

    /// Writes the per-user CSV of an experiment (what `flywheel eval ab --users` reads).
    pub fn export_experiment_users(&self, id: &str, out: &mut dyn std::io::Write) -> Result<u64> {
        let ledger = self.ledger();
        if ledger.book.get(id).is_none() {
            return Err(EngineError::NotFound(format!("experiment {id}")));
        }
        live::export_users(&ledger, id, out)
            .map_err(|e| EngineError::Encode(format!("exporting {id}: {e}")))
    }
}
