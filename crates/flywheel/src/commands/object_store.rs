//! `flywheel serve --object-store s3://bucket/prefix`: model versions and snapshots
//! shared through S3-compatible storage (the `s3` cargo feature; without it the flag
//! is a clear error).

use anyhow::Result;
use flywheel_engine::Engine;
use std::path::Path;
use std::sync::Arc;

/// The object store flags of `flywheel serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ObjectStoreArgs {
    /// Share model versions and snapshots through S3-compatible storage, e.g.
    /// s3://bucket/prefix: a version promoted here is published, a version another
    /// replica publishes is fetched (verified) and served. Credentials from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Needs a build with `--features s3`.
    #[arg(long, env = "FLYWHEEL_OBJECT_STORE", value_name = "URL")]
    pub object_store: Option<String>,
    /// The S3 endpoint (default: AWS_ENDPOINT_URL, else AWS itself).
    #[arg(long, value_name = "URL", requires = "object_store")]
    pub object_store_endpoint: Option<String>,
    /// The S3 region (default: AWS_REGION, else us-east-1).
    #[arg(long, value_name = "REGION", requires = "object_store")]
    pub object_store_region: Option<String>,
    /// Allow plain HTTP to the endpoint (a local server; default: AWS_ALLOW_HTTP).
    #[arg(long, requires = "object_store")]
    pub object_store_allow_http: bool,
    /// Seconds between two polls of the store's `models/CURRENT`.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 2,
        requires = "object_store"
    )]
    pub object_store_poll_secs: u64,
}

/// The running sync with the store (never made in a build without the `s3` feature).
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub struct Running {
    #[cfg(feature = "s3")]
    thread: flywheel_objstore::SyncThread,
}

impl Running {
    /// Stops polling.
    pub fn stop(self) {
        #[cfg(feature = "s3")]
        self.thread.stop();
    }
}

/// Before the engine opens: refuses the flag in a build without the `s3` feature,
/// and fetches the store's snapshots into an empty local snapshots folder.
pub fn before_open(args: &ObjectStoreArgs, data_dir: &Path) -> Result<()> {
    let Some(url) = args.object_store.as_deref() else {
        return Ok(());
    };
    imp::before_open(args, url, data_dir)
}

/// The erasure target of `--object-store`: published versions and snapshots replaced
/// by the data directory's erased copies (`None` without the flag).
pub fn erasure_target(
    args: &ObjectStoreArgs,
    data_dir: &Path,
) -> Result<Option<Arc<dyn flywheel_engine::ErasureTarget>>> {
    let Some(url) = args.object_store.as_deref() else {
        return Ok(None);
    };
    imp::erasure_target(args, url, data_dir).map(Some)
}

/// After the engine opened: starts the thread that polls the store.
pub fn start(args: &ObjectStoreArgs, engine: &Arc<Engine>) -> Result<Option<Running>> {
    let Some(url) = args.object_store.as_deref() else {
        return Ok(None);
    };
    imp::start(args, url, engine).map(Some)
}

#[cfg(not(feature = "s3"))]
mod imp {
    use super::*;

    fn unavailable<T>(url: &str) -> Result<T> {
        anyhow::bail!(
            "--object-store {url}: this flywheel was built without object storage; \
             rebuild it with `cargo build --release --features s3`"
        )
    }

    pub fn before_open(_: &ObjectStoreArgs, url: &str, _: &Path) -> Result<()> {
        unavailable(url)
    }

    pub fn start(_: &ObjectStoreArgs, url: &str, _: &Arc<Engine>) -> Result<Running> {
        unavailable(url)
    }

    pub fn erasure_target(
        _: &ObjectStoreArgs,
        url: &str,
        _: &Path,
    ) -> Result<Arc<dyn flywheel_engine::ErasureTarget>> {
        unavailable(url)
    }
}

#[cfg(feature = "s3")]
mod imp {
    use super::*;
    use anyhow::Context;
    use flywheel_objstore::{fetch_snapshots, snapshots_dir, Connection, RemoteStore, ReplicaSync};
    use std::time::Duration;

    fn open(args: &ObjectStoreArgs, url: &str) -> Result<RemoteStore> {
        let connection = Connection {
            endpoint: args.object_store_endpoint.clone(),
            region: args.object_store_region.clone(),
            allow_http: args.object_store_allow_http.then_some(true),
        };
        RemoteStore::open(url, &connection).with_context(|| format!("--object-store {url}"))
    }

    pub fn before_open(args: &ObjectStoreArgs, url: &str, data_dir: &Path) -> Result<()> {
        let store = open(args, url)?;
        let local = snapshots_dir(data_dir);
        let empty = std::fs::read_dir(&local).map_or(true, |mut d| d.next().is_none());
        if empty {
            let moved = fetch_snapshots(&store, data_dir)
                .with_context(|| format!("fetching the snapshots of {url}"))?;
            if moved.files > 0 {
                eprintln!(
                    "object store: fetched {} snapshot files ({} bytes) from {url}",
                    moved.files, moved.bytes
                );
            }
        }
        Ok(())
    }

    pub fn erasure_target(
        args: &ObjectStoreArgs,
        url: &str,
        data_dir: &Path,
    ) -> Result<Arc<dyn flywheel_engine::ErasureTarget>> {
        Ok(Arc::new(ObjectStoreTarget {
            store: open(args, url)?,
            data_dir: data_dir.to_path_buf(),
        }))
    }

    /// Erasure reaching the object store: after the engine rewrote its model versions
    /// and snapshots, the published copies that differ are replaced by them, objects
    /// they no longer have deleted (`erase_with_local_copies`).
    struct ObjectStoreTarget {
        store: RemoteStore,
        data_dir: std::path::PathBuf,
    }

    impl flywheel_engine::ErasureTarget for ObjectStoreTarget {
        fn name(&self) -> &str {
            "object_store"
        }

        fn erase(
            &self,
            _pseudonym: &str,
            user: Option<&flywheel_core::UserId>,
        ) -> std::result::Result<flywheel_engine::ErasedCounts, String> {
            let needle = user.map(|u| u.as_str().as_bytes());
            let done =
                flywheel_objstore::erase_with_local_copies(&self.store, &self.data_dir, needle)
                    .map_err(|e| format!("object store {}: {e}", self.store.url()))?;
            Ok(flywheel_engine::ErasedCounts::from([
                ("versions_replaced".into(), done.versions_replaced as u64),
                (
                    "version_objects_deleted".into(),
                    done.version_objects_deleted as u64,
                ),
                (
                    "foreign_versions_deleted".into(),
                    done.foreign_versions_deleted as u64,
                ),
                (
                    "snapshot_files_uploaded".into(),
                    done.snapshot_files_uploaded as u64,
                ),
                (
                    "snapshot_objects_deleted".into(),
                    done.snapshot_objects_deleted as u64,
                ),
            ]))
        }
    }

    pub fn start(args: &ObjectStoreArgs, url: &str, engine: &Arc<Engine>) -> Result<Running> {
        let store = open(args, url)?;
        let every = Duration::from_secs(args.object_store_poll_secs.max(1));
        let thread = flywheel_objstore::spawn(engine, ReplicaSync::new(store), every)
            .context("starting the object store sync")?;
        eprintln!(
            "object store: {url} (models/CURRENT polled every {} s; versions promoted \
             here are published)",
            every.as_secs()
        );
        Ok(Running { thread })
    }
}
