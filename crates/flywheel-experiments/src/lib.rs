//! Experiment assignment (MurmurHash3 bucketing) and A/B statistics.
//!
//! The story of an experiment, in the order this crate serves it:
//!
//! 1. **Assignment** ([`hash`]): a user lands in bucket
//!    `murmur3_x86_32("<salt>:<user_id>", seed 0) % 10000` and the bucket picks the
//!    variant by cumulative weights — stable per user, independent across experiments.
//!    The hash is checked against `mmh3` vectors.
//! 2. **Trust** ([`classic::srm_test`]): a sample-ratio-mismatch chi-square on user
//!    counts says whether the assignment worked before any effect is read.
//! 3. **Effects**, the user being the unit: two proportions ([`classic`]), Welch's t for
//!    means, the delta method for ratio metrics such as CTR ([`ratio`]), CUPED with a
//!    pre-period covariate ([`cuped`]), GrowthBook's engine including the sequential
//!    always-valid interval that makes peeking safe ([`gbstats`]). Every test returns a
//!    [`Comparison`]: effect, relative lift, interval and p-value.
//! 4. **Planning** ([`power`]): power, minimum detectable effect, sample size.
//! 5. **Reporting** ([`report`]): [`ab_from_file`] reads a per-user CSV and returns an
//!    [`AbReport`] (JSON via serde, text via [`AbReport::render_text`]).
//!
//! Every number is pinned to `shared/reference` values from scipy, statsmodels, gbstats
//! and mmh3 by `tests/integration.rs`.

pub mod classic;
pub mod comparison;
pub mod cuped;
pub mod dist;
pub mod error;
pub mod exploration;
pub mod gbstats;
pub mod hash;
pub mod interleaving;
pub mod live;
pub mod power;
pub mod ratio;
pub mod report;
pub mod users_csv;

pub use classic::{srm_test, two_proportion_test, welch_test, SrmResult};
pub use comparison::{ArmMoments, Comparison};
pub use cuped::{cuped_test, CupedArm, CupedResult};
pub use error::{ExperimentError, Result};
pub use exploration::{
    explore, propensity_of, thompson_probabilities, ExplorationPolicy, ExploredSlot, PoolItem,
    SlotKind, ThompsonSettings,
};
pub use gbstats::{DifferenceType, GbArm, SequentialConfig};
pub use hash::{assign_bucket, assign_variant, murmur3_x86_32, VariantSplit};
pub use interleaving::{
    credit, outcome, preference_test, team_draft, Outcome, PreferenceResult, Team,
};
pub use live::Ledger;
pub use ratio::{delta_ratio_test, RatioArm, RatioComparison};
pub use report::{ab_from_file, AbOptions, AbReport};
pub use users_csv::{read_users, UserTable};
