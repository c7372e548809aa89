//! Redis down or slow: reads fail within their deadline, requests are still served
//! (with the in-process catalog, cached popular lists) and report the fallback; the
//! writer keeps its position and catches up when Redis returns.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_core::{LogRecord, UserId};
use flywheel_engine::{Engine, EngineConfig, EngineOptions, ServeRequest};
use flywheel_features::FeatureReader;
use flywheel_redis::{spawn_writer, RedisConfig, RedisReader};

use super::common::*;

/// A TCP relay to Redis that can be told to stop answering (it then swallows what
/// clients send, like a server that hangs).
struct Relay {
    port: u16,
    silent: Arc<AtomicBool>,
}

impl Relay {
    fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = Arc::new(AtomicBool::new(false));
        let target = target.to_string();
        let flag = Arc::clone(&silent);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = Arc::clone(&flag);
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 {
                                break;
                            }
                            if !flag.load(Ordering::Acquire) && to.write_all(&buffer[..n]).is_err()
                            {
                                break;
                            }
                        }
                    });
                }
            }
        });
        Relay { port, silent }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Release);
    }
}

fn target(config: &RedisConfig) -> String {
    config
        .url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string()
}

#[test]
fn a_closed_port_gives_empty_features_and_says_why() {
    let Some(mut config) = redis_for("closed") else {
        return;
    };
    config.url = "redis://127.0.0.1:1".into();
    let reader = RedisReader::new(config);
    let started = Instant::now();
    let user = reader.user_features(
        &UserId::new_unchecked("u1"),
        flywheel_core::Timestamp::from_secs(0),
    );
    assert!(user.recent.is_empty());
    assert!(reader.unavailable().is_some(), "the failure is reported");
    assert!(reader
        .popular(None, flywheel_core::Timestamp::from_secs(0), 10)
        .is_empty());
    // Within the breaker's window the next reads do not wait for Redis at all.
    let _ = reader.item_features_many(&[], flywheel_core::Timestamp::from_secs(0));
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_silent_redis_degrades_requests_and_the_writer_catches_up() {
    let Some(direct) = redis_for("silent") else {
        return;
    };
    let relay = Relay::start(&target(&direct));
    let mut config = direct.clone();
    config.url = relay.url();
    config.retry_after = Duration::from_millis(200);
    let dir = tempfile::tempdir().unwrap();
    let mut engine_config = EngineConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    engine_config.log.fsync = false;
    let reader = Arc::new(RedisReader::new(config.clone()));
    let engine = Engine::open_with(
        engine_config,
        EngineOptions {
            shared_features: Some(reader.clone()),
            ..EngineOptions::default()
        },
    )
    .unwrap();
    let writer = spawn_writer(config.clone(), engine.log_handle(), 0).unwrap();
    let records = &shop_log()[..2_000];
    engine.append_records(records).unwrap();
    engine.catch_up();
    assert!(
        writer.wait_applied(2_000, Duration::from_secs(120)),
        "{:?}",
        writer.status()
    );
    let now = after_last_event(records, 0);
    let user = match &records[1_999] {
        LogRecord::Event(e) => e.user_id.clone(),
        _ => ids(records).0[0].clone(),
    };
    let request = ServeRequest {
        user_id: user.clone(),
        count: 10,
        category: None,
        now: Some(now),
        forced: Vec::new(),
        context: Default::default(),
    };
    let healthy = engine.serve(&request).unwrap();
    assert!(!healthy.recommendation.items.is_empty());
    assert!(
        !healthy
            .recommendation
            .fallback_reasons
            .iter()
            .any(|r| r.contains("feature store unavailable")),
        "{:?}",
        healthy.recommendation.fallback_reasons
    );

    relay.set_silent(true);
    let more = &shop_log()[2_000..3_000];
    engine.append_records(more).unwrap();
    let degraded = engine.serve(&request).unwrap();
    assert_eq!(degraded.recommendation.items.len(), 10, "still a full list");
    assert!(
        degraded
            .recommendation
            .fallback_reasons
            .iter()
            .any(|r| r.contains("feature store unavailable")),
        "{:?}",
        degraded.recommendation.fallback_reasons
    );
    let kinds = engine.stats().fallback_kinds.snapshot();
    assert!(
        kinds
            .iter()
            .any(|(kind, n)| *kind == "feature_store_unavailable" && *n >= 1),
        "{kinds:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while writer.status().last_error.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stuck = writer.status();
    assert!(
        stuck.applied < 3_000 && stuck.last_error.is_some(),
        "the writer cannot apply while Redis is silent: {stuck:?}"
    );

    relay.set_silent(false);
    // Served lists are logged too: everything in the log, impressions included.
    let end = engine.log_end_offset();
    assert!(end > 3_000);
    assert!(
        writer.wait_applied(end, Duration::from_secs(120)),
        "{:?}",
        writer.status()
    );
    let all: Vec<LogRecord> = engine
        .log()
        .read_from(flywheel_log::LogPosition {
            partition: 0,
            offset: 0,
        })
        .unwrap()
        .take(end as usize)
        .map(|entry| LogRecord::decode(&entry.unwrap().1).unwrap())
        .collect();
    let found = differences(
        &in_process(&all),
        &RedisReader::new(direct),
        &all,
        after_last_event(&all, 0),
    );
    assert!(found.is_empty(), "{:#?}", &found[..found.len().min(5)]);
    drop(writer);
    engine.shutdown();
}
