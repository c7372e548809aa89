//! Background jobs: training runs off the request path, one at a time, in a
//! low-priority pool of one thread, and reports its progress and the gate's decision.
//! Erasures (`kind: erasure`) are jobs too; they do not take training's slot (one
//! erasure runs at a time, behind the erasure lock) and report an [`ErasureReport`].
//!
//! A job is `queued → running → succeeded | failed`. Its id is returned at once (the
//! server answers 202); `GET /v1/jobs/:id` reads its status. A second training while
//! one runs is refused with the running job's id (the server answers 409). Statuses
//! live in memory: a restart forgets finished jobs (their versions stay registered).

use flywheel_core::Timestamp;
use flywheel_registry::Origin;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::engine::Engine;
use crate::erasure::ErasureReport;
use crate::error::{EngineError, Result};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, not started.
    Queued,
    /// Running.
    Running,
    /// Finished without error.
    Succeeded,
    /// Finished with an error.
    Failed,
}

/// What a finished training job produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobResult {
    /// The version it registered.
    pub version: String,
    /// Whether the version now serves.
    pub promoted: bool,
    /// The gate's decision in words.
    pub reason: String,
    /// How the version was made: `trained` or `warm_start`.
    pub origin: &'static str,
    /// What a warm start reused (`None`: the served ALS started cold).
    pub warm_start: Option<flywheel_offline::training::WarmStartReport>,
}

/// A job as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    /// The job's id.
    pub id: String,
    /// What kind of job (`training`).
    pub kind: &'static str,
    /// Where it is.
    pub state: JobState,
    /// The stage it is in, in words.
    pub progress: String,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// What it produced, when a training job succeeded.
    pub result: Option<JobResult>,
    /// What was erased, when an erasure job succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erasure: Option<ErasureReport>,
    /// Why it failed, when it failed.
    pub error: Option<String>,
}

/// The engine's jobs.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    statuses: Mutex<BTreeMap<String, JobStatus>>,
    running: Mutex<Option<String>>,
    counter: Mutex<u64>,
}

/// How many finished jobs are remembered.
const KEPT_JOBS: usize = 100;

impl Jobs {
    pub(crate) fn update(&self, id: &str, change: impl FnOnce(&mut JobStatus)) {
        let mut statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = statuses.get_mut(id) {
            change(status);
        }
    }

    fn admit(&self, kind: &'static str) -> Result<String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = running.as_ref() {
            return Err(EngineError::Busy {
                kind,
                id: id.clone(),
            });
        }
        let id = self.register(kind);
        *running = Some(id.clone());
        Ok(id)
    }

    /// Registers a job that does not take the training slot (an erasure).
    pub(crate) fn admit_erasure(&self) -> String {
        self.register("erasure")
    }

    /// Ends an erasure job with its report or its error.
    pub(crate) fn finish_erasure(
        &self,
        id: &str,
        outcome: std::result::Result<ErasureReport, String>,
    ) {
        self.update(id, |status| {
            status.finished_at = Some(Timestamp::now());
            match outcome {
                Ok(report) => {
                    status.state = JobState::Succeeded;
                    status.progress = "done".into();
                    status.erasure = Some(report);
                }
                Err(error) => {
                    status.state = JobState::Failed;
                    status.progress = "failed".into();
                    status.error = Some(error);
                }
            }
        });
    }

    fn register(&self, kind: &'static str) -> String {
        let id = {
            let mut counter = self.counter.lock().unwrap_or_else(|e| e.into_inner());
            *counter += 1;
            format!("{kind}-{}-{}", Timestamp::now().millis(), *counter)
        };
        let mut statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
        while statuses.len() >= KEPT_JOBS {
            let Some(oldest) = statuses.keys().next().cloned() else {
                break;
            };
            statuses.remove(&oldest);
        }
        statuses.insert(
            id.clone(),
            JobStatus {
                id: id.clone(),
                kind,
                state: JobState::Queued,
                progress: "queued".into(),
                created_at: Timestamp::now(),
                finished_at: None,
                result: None,
                erasure: None,
                error: None,
            },
        );
        id
    }

    fn finish(&self, id: &str, outcome: std::result::Result<JobResult, String>) {
        self.update(id, |status| {
            status.finished_at = Some(Timestamp::now());
            match outcome {
                Ok(result) => {
                    status.state = JobState::Succeeded;
                    status.progress = "done".into();
                    status.result = Some(result);
                }
                Err(error) => {
                    status.state = JobState::Failed;
                    status.progress = "failed".into();
                    status.error = Some(error);
                }
            }
        });
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The running job's id, if one runs.
    pub(crate) fn running(&self) -> Option<String> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn get(&self, id: &str) -> Option<JobStatus> {
        let statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
        statuses.get(id).cloned()
    }
}

/// Lowers the calling thread's CPU priority to the lowest (nice 19), so training
/// never competes with serving for a core. Linux lets `renice` act on one thread id;
/// where that is not possible the job runs at normal priority and says so in the log.
fn lower_this_threads_priority() {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name().map(|n| n.to_string_lossy().to_string()));
    let Some(tid) = tid else {
        tracing::warn!("training runs at normal priority: /proc/thread-self is not readable");
        return;
    };
    let lowered = std::process::Command::new("renice")
        .args(["-n", "19", "-p", &tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !lowered {
        tracing::warn!("training runs at normal priority: `renice` is not available");
    }
}

/// A pool of one low-priority thread for a training job.
fn training_pool() -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "flywheel-train".into())
        .start_handler(|_| lower_this_threads_priority())
        .build()
        .map_err(|e| EngineError::Io {
            path: "training thread pool".into(),
            source: std::io::Error::other(e.to_string()),
        })
}

impl Engine {
    /// Starts a training job in the background and returns its status (queued). While
    /// one runs, another is refused with [`EngineError::Busy`] naming it; while the
    /// controller's breaker is open, with [`EngineError::TrainingPaused`].
    pub fn start_training(self: &Arc<Self>, force: bool) -> Result<JobStatus> {
        self.start_training_as(force, Origin::Trained)
    }

    /// [`Engine::start_training`], with how the version is made: a
    /// [`Origin::WarmStart`] begins the served ALS from the serving version's factors
    /// (see [`Engine::train_as`]).
    pub fn start_training_as(self: &Arc<Self>, force: bool, origin: Origin) -> Result<JobStatus> {
        self.check_training_allowed()?;
        let id = self.jobs().admit("training")?;
        let pool = match training_pool() {
            Ok(pool) => pool,
            Err(e) => {
                self.jobs().finish(&id, Err(e.to_string()));
                return Err(e);
            }
        };
        let engine = Arc::clone(self);
        let job = id.clone();
        let spawned = std::thread::Builder::new()
            .name("flywheel-job".into())
            .spawn(move || engine.run_training_job(&pool, &job, force, origin));
        if let Err(e) = spawned {
            self.jobs().finish(&id, Err(e.to_string()));
            return Err(EngineError::io("training job thread", e));
        }
        self.job(&id)
            .ok_or_else(|| EngineError::NotFound(format!("job {id}")))
    }

    fn run_training_job(&self, pool: &rayon::ThreadPool, id: &str, force: bool, origin: Origin) {
        self.jobs().update(id, |s| s.state = JobState::Running);
        let outcome = pool.install(|| {
            self.train_as(force, origin, &mut |stage| {
                self.jobs().update(id, |s| s.progress = stage.to_string())
            })
        });
        let result = outcome
            .map(|o| JobResult {
                version: o.version,
                promoted: o.promoted,
                reason: o.reason,
                origin: origin.as_str(),
                warm_start: o.report.warm_start,
            })
            .map_err(|e| e.to_string());
        if let Err(error) = &result {
            tracing::error!("training job {id} failed: {error}");
        }
        self.jobs().finish(id, result);
    }

    /// A job's status, if the engine knows the id.
    pub fn job(&self, id: &str) -> Option<JobStatus> {
        self.jobs().get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_job_is_refused_while_one_runs_and_admitted_after() {
        let jobs = Jobs::default();
        let first = jobs.admit("training").unwrap();
        match jobs.admit("training") {
            Err(EngineError::Busy { id, .. }) => assert_eq!(id, first),
            other => panic!("expected Busy, got {other:?}"),
        }
        jobs.finish(
            &first,
            Ok(JobResult {
                version: "v1".into(),
                promoted: true,
                reason: "first".into(),
                origin: "trained",
                warm_start: None,
            }),
        );
        assert_eq!(jobs.get(&first).unwrap().state, JobState::Succeeded);
        let second = jobs.admit("training").unwrap();
        assert_ne!(first, second);
        jobs.finish(&second, Err("boom".into()));
        let failed = jobs.get(&second).unwrap();
        assert_eq!(
            (failed.state, failed.error.as_deref()),
            (JobState::Failed, Some("boom"))
        );
    }
}
