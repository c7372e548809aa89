//! The canary in the running engine: which users it serves, and the calls that start,
//! promote and roll it back.
//!
//! **Assignment.** The canary is a layer of its own, hashed like experiments:
//! `mmh3("canary:<version>:<user_id>") % 10000` below `round(10000 · share)` puts a
//! user in it. It **yields to experiments**: a user that any running experiment holds
//! is served by the experiment's plan and never by the canary, so an experiment's
//! arms keep serving exactly what they name (its control is the serving version, not
//! a mix). The share is therefore a share of the users outside experiments. A user's
//! version depends only on the user, the canary's version and share, and the running
//! experiments: the same across requests and restarts.
//!
//! **Persistence.** The canary lives where the served version lives, in the registry
//! (`models/CANARY` beside `CURRENT`), so a restart keeps it; the watcher re-reads it
//! with `CURRENT`. Its models are loaded once, like an experiment variant's.
//!
//! **Figures.** Every impression names the version that served it; the ledger counts
//! requests per version and their clicks once labels are final (`VersionTally`).

use std::collections::BTreeMap;
use std::sync::RwLock;

use flywheel_experiments::assign_bucket;
use flywheel_experiments::hash::DEFAULT_BUCKETS;
use flywheel_experiments::live::VersionTally;
use flywheel_registry as registry;
use flywheel_registry::Canary;
use serde::Serialize;

use crate::engine::{Engine, Inner};
use crate::error::Result;

/// The canary the engine serves, if any.
#[derive(Default)]
pub(crate) struct CanarySlot {
    current: RwLock<Option<Canary>>,
}

impl CanarySlot {
    fn get(&self) -> Option<Canary> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, canary: Option<Canary>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = canary;
    }
}

/// The canary as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryView {
    /// The version it serves.
    pub version: String,
    /// The configured share (of users outside running experiments).
    pub share: f64,
    /// The buckets `[0, buckets)` of 10,000 it holds.
    pub buckets: u32,
    /// The assignment's salt: users hash as `mmh3("<salt>:<user_id>") % 10000`.
    pub salt: String,
    /// When it started.
    pub started_at: flywheel_core::Timestamp,
    /// Who started it (or last changed its share).
    pub by: String,
}

impl CanaryView {
    fn of(canary: &Canary) -> Self {
        CanaryView {
            version: canary.version.clone(),
            share: canary.share,
            buckets: canary.buckets(),
            salt: canary.salt(),
            started_at: canary.started_at,
            by: canary.by.clone(),
        }
    }
}

/// One version's serving figures, as `GET /v1/models` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct VersionServing {
    /// Requests it served (impressions in the log).
    pub requests: u64,
    /// Requests whose labels are final.
    pub finalized_requests: u64,
    /// Clicked slots per slot shown, on finalized labels.
    pub ctr: Option<f64>,
    /// Requests with a click per finalized request.
    pub request_ctr: Option<f64>,
}

impl VersionServing {
    fn of(tally: &VersionTally) -> Self {
        VersionServing {
            requests: tally.requests,
            finalized_requests: tally.finalized_requests,
            ctr: tally.ctr(),
            request_ctr: tally.request_ctr(),
        }
    }
}

/// Whether the canary holds `user_id` (the layer step of its assignment).
pub(crate) fn holds(canary: &Canary, user_id: &str) -> bool {
    assign_bucket(user_id, &canary.salt()) < canary.buckets().min(DEFAULT_BUCKETS)
}

/// The canary's version when it serves `user_id` (a user outside every experiment).
pub(crate) fn version_for(inner: &Inner, user_id: &str) -> Option<String> {
    let slot = inner
        .canary
        .current
        .read()
        .unwrap_or_else(|e| e.into_inner());
    slot.as_ref()
        .filter(|c| holds(c, user_id))
        .map(|c| c.version.clone())
}

/// Re-reads `models/CANARY` and serves what it says. A canary whose version does not
/// load is not served (the serving version keeps its users) and the reason is logged.
pub(crate) fn reload(inner: &Inner) -> Result<()> {
    let wanted = registry::canary(&inner.config.data_dir)?;
    if wanted == inner.canary.get() {
        return Ok(());
    }
    if let Some(canary) = &wanted {
        if let Err(e) = crate::experiments::models_for(inner, Some(&canary.version)) {
            tracing::error!("not serving canary {}: {e}", canary.version);
            inner.canary.set(None);
            return Err(e);
        }
        tracing::info!(
            "canary {} serves share {} of users outside experiments",
            canary.version,
            canary.share
        );
    }
    inner.canary.set(wanted);
    Ok(())
}

impl Engine {
    /// The running canary, if any.
    pub fn canary(&self) -> Option<CanaryView> {
        self.inner.canary.get().as_ref().map(CanaryView::of)
    }

    /// Per model version, requests served and CTR on finalized labels, as of the
    /// records applied.
    pub fn version_serving(&self) -> BTreeMap<String, VersionServing> {
        self.ledger()
            .joiner
            .versions
            .iter()
            .map(|(version, tally)| (version.clone(), VersionServing::of(tally)))
            .collect()
    }

    /// Makes `version` the canary serving `share` of users (or changes the share of
    /// its running canary). The version must load completely; otherwise it is refused
    /// and the serving version keeps every user.
    pub fn start_canary(&self, version: &str, share: f64, by: &str) -> Result<CanaryView> {
        let (canary, models) = registry::start_canary(&self.config().data_dir, version, share, by)?;
        crate::experiments::keep_models(&self.inner, models);
        self.inner.canary.set(Some(canary.clone()));
        Ok(CanaryView::of(&canary))
    }

    /// Ends the canary and marks its version rolled back; returns the canary ended.
    pub fn rollback_canary(&self, by: &str) -> Result<CanaryView> {
        let canary = registry::rollback_canary(&self.config().data_dir, by)?;
        self.inner.canary.set(None);
        Ok(CanaryView::of(&canary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::Timestamp;

    fn canary(version: &str, share: f64) -> Canary {
        Canary {
            version: version.into(),
            share,
            started_at: Timestamp(0),
            by: "test".into(),
        }
    }

    #[test]
    fn a_larger_share_keeps_the_users_a_smaller_one_had() {
        let small = canary("v2", 0.1);
        let large = canary("v2", 0.3);
        let users: Vec<String> = (0..5_000).map(|i| format!("user-{i}")).collect();
        let in_small: Vec<&String> = users.iter().filter(|u| holds(&small, u)).collect();
        assert!(in_small.iter().all(|u| holds(&large, u)));
        let in_large = users.iter().filter(|u| holds(&large, u)).count();
        assert!(in_large > in_small.len());
    }

    #[test]
    fn each_version_picks_its_own_users() {
        let users: Vec<String> = (0..5_000).map(|i| format!("user-{i}")).collect();
        let a = canary("v2", 0.2);
        let b = canary("v3", 0.2);
        let both = users
            .iter()
            .filter(|u| holds(&a, u) && holds(&b, u))
            .count();
        // Independent hashes: about 0.2 · 0.2 of users are in both, not 0.2.
        assert!(both < 400, "{both}");
    }
}
