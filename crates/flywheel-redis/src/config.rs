//! Where the store lives and how long a read may take.

use std::time::Duration;

use flywheel_features::FeatureConfig;

/// How to reach the store.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// Every key starts with `PREFIX:` (several shops, or tests, share one server).
    pub prefix: String,
    /// A read (one round trip) that takes longer fails, and the request falls back.
    pub read_deadline: Duration,
    /// After a failed read, reads fail fast for this long before Redis is tried again.
    pub retry_after: Duration,
    /// The feature definitions (the same as the in-process store's).
    pub features: FeatureConfig,
}

impl RedisConfig {
    /// Defaults: prefix `flywheel`, 50 ms read deadline, 1 s before retrying.
    pub fn new(url: impl Into<String>, features: FeatureConfig) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "flywheel".into(),
            read_deadline: Duration::from_millis(50),
            retry_after: Duration::from_secs(1),
            features,
        }
    }

    /// The URL without a password, for messages.
    pub fn display_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}
