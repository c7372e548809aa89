//! Experiments inside the engine: the [`Ledger`] is everything the log says about
//! them — the [`Book`] of definitions and the [`Joiner`] of outcomes — and
//! [`metrics`] turns it into the statistics a team acts on.
//!
//! The ledger changes only through [`Ledger::apply`], record by record in log order,
//! online (the engine's consumer) and offline (a replay) alike.

mod book;
mod joiner;
mod metrics;
mod tally;

pub use book::{buckets_for, Book, BookError, Running};
pub use joiner::{ClosedRequest, Joiner, Unattributed};
pub use metrics::{
    export_users, metrics, ComparisonMetrics, CupedSummary, DelayedFeedback, ExperimentMetrics,
    GuardrailCheck, InterleavingMetrics, SequentialSummary, ShadowMetrics, SrmSummary, UserColumns,
    VariantMetrics,
};
pub use tally::{overlap_at_k, ExperimentTally, ShadowList, ShadowTally, UserTally, VariantTally};

use flywheel_core::LogRecord;

/// The experiments and their outcomes, as of the records applied.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The definitions.
    pub book: Book,
    /// The outcomes.
    pub joiner: Joiner,
}

impl Ledger {
    /// An empty ledger whose attribution windows close `allowed_lateness_ms` after
    /// event time passes them.
    pub fn new(allowed_lateness_ms: i64) -> Self {
        Ledger {
            book: Book::default(),
            joiner: Joiner::new(allowed_lateness_ms),
        }
    }

    /// Applies one record of the log.
    pub fn apply(&mut self, record: &LogRecord) {
        match record {
            LogRecord::ExperimentStart {
                experiment,
                layer_buckets,
                at,
            } => {
                self.joiner
                    .tallies
                    .insert(experiment.id.clone(), ExperimentTally::new(experiment));
                self.book.start(experiment.clone(), *layer_buckets, *at);
            }
            LogRecord::ExperimentStop { id, at } => self.book.stop(id, *at),
            LogRecord::Impression(impression) => self.joiner.impression(impression, &self.book),
            LogRecord::ShadowImpression(shadow) => self.joiner.shadow(shadow, &self.book),
            LogRecord::Event(event) => self.joiner.event(event, &self.book),
            LogRecord::ItemUpsert(_)
            | LogRecord::ItemDelete { .. }
            | LogRecord::UserUpsert(_)
            | LogRecord::UserDelete { .. } => {}
        }
    }

    /// The tally of an experiment.
    pub fn tally(&self, id: &str) -> Option<&ExperimentTally> {
        self.joiner.tallies.get(id)
    }
}
