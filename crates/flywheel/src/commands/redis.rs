//! `flywheel serve --redis URL`: the Redis feature store injected into the engine
//! through its seam (`EngineOptions::shared_features`), and the writer thread for the
//! `writer` role. Without the cargo feature `redis` the flag is refused with how to
//! build it in.

use anyhow::Result;
use flywheel_engine::{Engine, EngineOptions};
use flywheel_pipeline::EngineConfig;

use crate::commands::serve::RedisFlags;

/// The shared store to inject, if `--redis` asked for one.
pub struct Shared {
    #[cfg(feature = "redis")]
    store: Option<(flywheel_redis::RedisConfig, crate::cli::RedisRole)>,
}

/// What keeps the writer running (dropped at exit).
pub struct Running {
    #[cfg(feature = "redis")]
    _writer: Option<flywheel_redis::WriterHandle>,
}

#[cfg(feature = "redis")]
/// Reads `--redis` and its settings.
pub fn open(flags: Option<&RedisFlags>, config: &EngineConfig) -> Result<Shared> {
    let Some(flags) = flags else {
        return Ok(Shared { store: None });
    };
    if flags.read_deadline_ms == 0 {
        anyhow::bail!("--redis-read-deadline-ms must be at least 1");
    }
    let mut store = flywheel_redis::RedisConfig::new(
        flags.url.clone(),
        flywheel_pipeline::feature_config(config),
    );
    store.prefix = flags.prefix.clone();
    store.read_deadline = std::time::Duration::from_millis(flags.read_deadline_ms);
    Ok(Shared {
        store: Some((store, flags.role)),
    })
}

#[cfg(not(feature = "redis"))]
/// Refuses `--redis`: this build has no Redis support.
pub fn open(flags: Option<&RedisFlags>, _config: &EngineConfig) -> Result<Shared> {
    if let Some(flags) = flags {
        let _settings_unused_in_this_build = (&flags.role, flags.read_deadline_ms, &flags.prefix);
        anyhow::bail!(
            "--redis {}: this flywheel was built without Redis support; build it with \
             `cargo build --release --features redis`",
            flags.url
        );
    }
    Ok(Shared {})
}

impl Shared {
    /// The engine's injected parts.
    pub fn options(&self) -> EngineOptions {
        #[cfg(feature = "redis")]
        if let Some((store, _)) = &self.store {
            let reader = flywheel_redis::RedisReader::new(store.clone());
            return EngineOptions {
                shared_features: Some(std::sync::Arc::new(reader)),
                ..EngineOptions::default()
            };
        }
        EngineOptions::default()
    }

    /// The erasure target of the store (every role: the store is shared, so any
    /// replica's erasure deletes the user's keys); `None` without `--redis`.
    pub fn erasure_target(
        &self,
        pseudonyms: &flywheel_engine::Pseudonyms,
    ) -> Option<std::sync::Arc<dyn flywheel_engine::ErasureTarget>> {
        #[cfg(feature = "redis")]
        if let Some((store, _)) = &self.store {
            return Some(std::sync::Arc::new(target::RedisTarget {
                config: store.clone(),
                pseudonyms: pseudonyms.clone(),
            }));
        }
        let _ = pseudonyms;
        None
    }

    /// Starts the writer thread for the `writer` role.
    pub fn start_writer(&self, engine: &Engine) -> Result<Running> {
        #[cfg(feature = "redis")]
        if let Some((store, role)) = &self.store {
            let writer = match role {
                crate::cli::RedisRole::Writer => {
                    let handle =
                        flywheel_redis::spawn_writer(store.clone(), engine.log_handle(), 0)?;
                    eprintln!(
                        "redis: features served from {} (prefix {}), this process writes them",
                        store.display_url(),
                        store.prefix
                    );
                    Some(handle)
                }
                crate::cli::RedisRole::Reader => {
                    eprintln!(
                        "redis: features served from {} (prefix {}), read only",
                        store.display_url(),
                        store.prefix
                    );
                    None
                }
            };
            return Ok(Running { _writer: writer });
        }
        let _ = engine;
        Ok(Running {
            #[cfg(feature = "redis")]
            _writer: None,
        })
    }
}

#[cfg(feature = "redis")]
mod target {
    use flywheel_core::UserId;
    use flywheel_engine::{ErasedCounts, ErasureTarget, Pseudonyms};

    /// Erasure reaching the Redis store: the user's keys (state, bot track) deleted.
    pub struct RedisTarget {
        pub config: flywheel_redis::RedisConfig,
        pub pseudonyms: Pseudonyms,
    }

    impl ErasureTarget for RedisTarget {
        fn name(&self) -> &str {
            "redis"
        }

        fn erase(&self, pseudonym: &str, user: Option<&UserId>) -> Result<ErasedCounts, String> {
            let erased = match user {
                Some(user) => flywheel_redis::erase_user(&self.config, user),
                None => flywheel_redis::erase_users_matching(&self.config, &|id| {
                    self.pseudonyms
                        .pseudonym(id.as_str())
                        .is_ok_and(|p| p == pseudonym)
                }),
            };
            let counts = erased.map_err(|e| format!("redis {}: {e}", self.config.display_url()))?;
            Ok(ErasedCounts::from([(
                "keys_deleted".to_string(),
                counts.keys_deleted,
            )]))
        }
    }
}
