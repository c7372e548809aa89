//! [`RemoteStore`]: an object store under a key prefix, with a synchronous API over a
//! private tokio runtime.

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ObjectStoreError, Result};

/// How to reach the store beyond its URL. Every field left `None` comes from the usual
/// AWS environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, …).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// The region (S3-compatible servers accept any; `us-east-1` when none is set).
    pub region: Option<String>,
    /// Allow plain HTTP (a local server).
    pub allow_http: Option<bool>,
}

/// One object: its key below the store's prefix and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key below the prefix, `/`-separated (e.g. `models/v3/als.bin`).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An object store seen through a key prefix: every key flywheel uses is below it.
pub struct RemoteStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    runtime: tokio::runtime::Runtime,
    /// Puts still allowed before every put fails (fault injection; `u64::MAX`: no limit).
    put_budget: AtomicU64,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("url", &self.url)
            .finish()
    }
}

/// Requests fail after a few quick retries, so a store that is down stalls a poll for
/// seconds, not minutes.
fn client_settings() -> (ClientOptions, RetryConfig) {
    let options = ClientOptions::new()
        .with_timeout(Duration::from_secs(60))
        .with_connect_timeout(Duration::from_secs(5));
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    };
    (options, retry)
}

/// Splits `s3://bucket/some/prefix` into the bucket and the prefix (no slashes at its ends).
fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let invalid = |reason: &str| ObjectStoreError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| invalid("expected s3://BUCKET[/PREFIX]"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(invalid("the bucket name is empty"));
    }
    Ok((bucket.to_string(), clean_prefix(url, prefix)?))
}

fn clean_prefix(url: &str, prefix: &str) -> Result<String> {
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
        return Err(ObjectStoreError::InvalidUrl {
            url: url.to_string(),
            reason: "the prefix may not hold empty, `.` or `..` parts".into(),
        });
    }
    Ok(prefix.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("flywheel-objstore")
        .build()
        .map_err(|e| ObjectStoreError::Config(format!("starting its runtime: {e}")))
}

impl RemoteStore {
    /// Opens `s3://bucket[/prefix]` (endpoint, region and credentials from `connection`,
    /// then the AWS environment), or `memory://[prefix]` (an in-process store, for
    /// tests). Nothing is sent until the first request.
    pub fn open(url: &str, connection: &Connection) -> Result<RemoteStore> {
        if let Some(prefix) = url.strip_prefix("memory://") {
            return Self::with_store(Arc::new(InMemory::new()), url, clean_prefix(url, prefix)?);
        }
        let (bucket, prefix) = parse_s3_url(url)?;
        let (options, retry) = client_settings();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(endpoint) = &connection.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        // After `with_client_options`, which replaces what `from_env` read.
        let allow_http = connection.allow_http.unwrap_or_else(|| {
            std::env::var("AWS_ALLOW_HTTP")
                .is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
        });
        builder = builder.with_allow_http(allow_http);
        builder = match &connection.region {
            Some(region) => builder.with_region(region),
            None if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none() =>
            {
                builder.with_region("us-east-1")
            }
            None => builder,
        };
        let store = builder
            .build()
            .map_err(|e| ObjectStoreError::Config(e.to_string()))?;
        Self::with_store(Arc::new(store), url, prefix)
    }

    fn with_store(store: Arc<dyn ObjectStore>, url: &str, prefix: String) -> Result<RemoteStore> {
        Ok(RemoteStore {
            store,
            prefix,
            url: url.to_string(),
            runtime: runtime()?,
            put_budget: AtomicU64::new(u64::MAX),
        })
    }

    /// Another handle on the same store (the same objects, even in memory), for a
    /// second replica in one process.
    pub fn handle(&self) -> Result<RemoteStore> {
        let mut other = Self::with_store(Arc::clone(&self.store), &self.url, self.prefix.clone())?;
        other.put_budget = AtomicU64::new(u64::MAX);
        Ok(other)
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn location(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn key_of(&self, location: &ObjectPath) -> String {
        let full = location.as_ref();
        if self.prefix.is_empty() {
            return full.to_string();
        }
        full.strip_prefix(&self.prefix)
            .map(|rest| rest.trim_start_matches('/'))
            .unwrap_or(full)
            .to_string()
    }

    /// Fault injection for tests of interrupted uploads: after `puts` more puts, every
    /// put fails as a store that went away would (`None`: no limit again).
    pub fn fail_puts_after(&self, puts: Option<u64>) {
        self.put_budget
            .store(puts.unwrap_or(u64::MAX), Ordering::Release);
    }

    fn take_put(&self, key: &str) -> Result<()> {
        let taken = self
            .put_budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| match left {
                u64::MAX => Some(u64::MAX),
                0 => None,
                n => Some(n - 1),
            });
        taken
            .map(|_| ())
            .map_err(|_| ObjectStoreError::backend("put", key, "refused by fail_puts_after"))
    }

    /// Writes one object (atomically: a reader sees the old bytes or the new ones).
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.take_put(key)?;
        let location = self.location(key);
        self.runtime
            .block_on(self.store.put(&location, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| ObjectStoreError::backend("put", key, e))
    }

    /// Reads one object; `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let location = self.location(key);
        let read = async {
            let result = self.store.get(&location).await?;
            result.bytes().await
        };
        match self.runtime.block_on(read) {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ObjectStoreError::backend("get", key, e)),
        }
    }

    /// Every object whose key starts with `under` (a folder, e.g. `models/v3`; empty:
    /// everything below the prefix), sorted by key.
    pub fn list(&self, under: &str) -> Result<Vec<ObjectInfo>> {
        let under = under.trim_matches('/');
        let location = match (self.prefix.is_empty(), under.is_empty()) {
            (true, true) => None,
            (false, true) => Some(ObjectPath::from(self.prefix.as_str())),
            _ => Some(self.location(under)),
        };
        let listed: Vec<_> = self
            .runtime
            .block_on(async { self.store.list(location.as_ref()).collect::<Vec<_>>().await });
        let mut objects = Vec::with_capacity(listed.len());
        for meta in listed {
            let meta = meta.map_err(|e| ObjectStoreError::backend("list", under, e))?;
            objects.push(ObjectInfo {
                key: self.key_of(&meta.location),
                size: meta.size,
            });
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes one object (deleting one that is not there is not an error).
    pub fn delete(&self, key: &str) -> Result<()> {
        let location = self.location(key);
        match self.runtime.block_on(self.store.delete(&location)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(ObjectStoreError::backend("delete", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_clean_prefix() {
        assert_eq!(
            parse_s3_url("s3://shop/prod/eu/").ok(),
            Some(("shop".to_string(), "prod/eu".to_string()))
        );
        assert_eq!(
            parse_s3_url("s3://shop").ok(),
            Some(("shop".into(), "".into()))
        );
        for bad in [
            "http://shop/x",
            "s3:///x",
            "s3://shop/a/../b",
            "s3://shop/a//b",
        ] {
            assert!(parse_s3_url(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn keys_live_below_the_prefix_and_list_strips_it() -> Result<()> {
        let store = RemoteStore::open("memory://team/a", &Connection::default())?;
        store.put("models/v1/x.bin", b"abc".to_vec())?;
        store.put("models/CURRENT", b"v1".to_vec())?;
        assert_eq!(store.get("models/v1/x.bin")?, Some(b"abc".to_vec()));
        assert_eq!(store.get("models/v2/x.bin")?, None);
        let keys: Vec<_> = store.list("models")?.into_iter().map(|o| o.key).collect();
        assert_eq!(keys, vec!["models/CURRENT", "models/v1/x.bin"]);
        store.delete("models/v1/x.bin")?;
        store.delete("models/v1/x.bin")?;
        assert_eq!(store.list("models/v1")?, vec![]);
        Ok(())
    }
}
