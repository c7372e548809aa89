//! A broker for one test: started from the cached tansu build, or named by the
//! environment, or none (the test is skipped loudly).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_kafka::Broker;

/// A running broker; a broker this test started is killed when dropped.
pub struct TestBroker {
    /// `HOST:PORT`.
    pub addr: String,
    /// The broker's storage directory, when known.
    pub storage: Option<PathBuf>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestBroker {
    /// A connected client.
    pub fn connect(&self) -> Arc<Broker> {
        Arc::new(Broker::connect(&self.addr).unwrap())
    }
}

fn required() -> bool {
    std::env::var("FLYWHEEL_REQUIRE_KAFKA").is_ok_and(|v| v == "1")
}

fn skip(test: &str, because: &str) -> Option<TestBroker> {
    assert!(
        !required(),
        "FLYWHEEL_REQUIRE_KAFKA=1 but {test} has no broker: {because}"
    );
    crate::skip::skip(
        test,
        &format!("SKIPPED because {because} (run scripts/start-broker.sh once to build it)"),
    );
    None
}

fn tansu_path() -> PathBuf {
    if let Ok(path) = std::env::var("FLYWHEEL_TANSU") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Path::new(&home).join(".cache/flywheel/tansu/bin/tansu")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn answers(addr: &str) -> bool {
    addr.parse()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_millis(200)).ok())
        .is_some()
}

/// The broker for `test`, or `None` after printing why the test is skipped.
pub fn broker(test: &str) -> Option<TestBroker> {
    if let Ok(addr) = std::env::var("FLYWHEEL_KAFKA_BROKERS") {
        if !answers(&addr) {
            return skip(
                test,
                &format!("no broker answers at FLYWHEEL_KAFKA_BROKERS={addr}"),
            );
        }
        let storage = std::env::var("FLYWHEEL_KAFKA_STORAGE")
            .ok()
            .map(PathBuf::from);
        return Some(TestBroker {
            addr,
            storage,
            child: None,
            _dir: None,
        });
    }
    let tansu = tansu_path();
    if !tansu.exists() {
        return skip(test, &format!("no tansu build at {}", tansu.display()));
    }
    start_tansu(test, &tansu)
}

fn start_tansu(test: &str, tansu: &Path) -> Option<TestBroker> {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("tcp://{addr}");
    // tansu reads `sqlite://a/b.db` as the path `a/b.db` relative to its working
    // directory (an absolute path loses its leading slash), so it runs inside the
    // temporary directory and is given a relative path.
    std::fs::create_dir(dir.path().join("store")).unwrap();
    let storage = "sqlite://store/tansu.db".to_string();
    let log = std::fs::File::create(dir.path().join("tansu.log")).unwrap();
    let child = Command::new(tansu)
        .current_dir(dir.path())
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", &storage])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut broker = TestBroker {
        addr: addr.clone(),
        storage: Some(dir.path().to_path_buf()),
        child: Some(child),
        _dir: None,
    };
    let started = Instant::now();
    while !answers(&addr) {
        if started.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(dir.path().join("tansu.log")).unwrap_or_default();
            return skip(
                test,
                &format!("tansu did not answer at {addr} within 60 s: {log}"),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    broker._dir = Some(dir);
    Some(broker)
}

/// A topic name no other test uses.
pub fn topic(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{name}-{nanos:x}")
}

/// Every file under `dir` that holds `needle`.
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}
