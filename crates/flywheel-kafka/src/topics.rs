//! The topics of one flywheel deployment on Kafka and the erasure of a user from them.
//!
//! For a base name `T`: `T.events` (the log the engine reads and appends: events,
//! catalog changes, experiments), `T.impressions` (served lists) and `T.outcomes`
//! (joined outcomes). `T` itself is the input topic the shop's own producers write
//! (see [`crate::ingest`]); flywheel never writes to it.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::client::Broker;
use crate::error::Result;
use crate::log::KafkaLog;
use crate::secrets::SecretStore;

/// Where the secret store lives inside a data directory.
pub fn secrets_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("kafka").join("secrets")
}

/// What [`KafkaTopics::erase_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ErasureCounts {
    /// Secrets destroyed (0 or 1): once destroyed, no record on the broker can be linked
    /// to the user.
    pub secrets_destroyed: u32,
    /// Tombstones (null values keyed by the former pseudonym) produced, one per topic.
    pub tombstones: u32,
}

/// The three topics of a deployment, sharing one broker connection and secret store.
#[derive(Debug)]
pub struct KafkaTopics {
    /// `T.events`.
    pub events: KafkaLog,
    /// `T.impressions`.
    pub impressions: KafkaLog,
    /// `T.outcomes`.
    pub outcomes: KafkaLog,
}

impl KafkaTopics {
    /// Opens (creating when missing) the topics of base name `base`, each with
    /// `partitions` partitions, with the secrets in `secrets_dir`.
    pub fn open(
        brokers: &str,
        base: &str,
        partitions: u32,
        secrets_dir: &Path,
    ) -> Result<KafkaTopics> {
        let broker = Arc::new(Broker::connect(brokers)?);
        let secrets = Arc::new(SecretStore::open(secrets_dir)?);
        let open = |suffix: &str| {
            let topic = format!("{base}.{suffix}");
            KafkaLog::open(
                Arc::clone(&broker),
                Arc::clone(&secrets),
                &topic,
                partitions,
            )
        };
        Ok(KafkaTopics {
            events: open("events")?,
            impressions: open("impressions")?,
            outcomes: open("outcomes")?,
        })
    }

    /// The three logs, events first.
    pub fn all(&self) -> [&KafkaLog; 3] {
        [&self.events, &self.impressions, &self.outcomes]
    }

    /// Crypto-shreds `user_id`: destroys their secret (durably) and then produces, to
    /// each topic, a tombstone whose key is only the former pseudonym. A user without a
    /// secret has nothing on the broker to unlink: the counts are zero. If producing a
    /// tombstone fails the secret is already gone (the erasure itself holds); calling
    /// again is then a no-op, so the error says which topic lacks its marker.
    pub fn erase_user(&self, user_id: &str) -> Result<ErasureCounts> {
        let Some(pseudonym) = self.events.secrets().destroy(user_id)? else {
            return Ok(ErasureCounts::default());
        };
        let mut counts = ErasureCounts {
            secrets_destroyed: 1,
            tombstones: 0,
        };
        for log in self.all() {
            log.produce_tombstone(&pseudonym)?;
            counts.tombstones += 1;
        }
        Ok(counts)
    }
}
