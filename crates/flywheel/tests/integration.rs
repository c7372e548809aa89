//! End-to-end tests of the `flywheel` binary: they start the real executable on a
//! temporary data directory, talk to it over HTTP with a tiny hand-written HTTP/1.1
//! client, kill it with SIGKILL, and read the log back with `flywheel inspect`.
//!
//! What they prove:
//! - `crash_safety`: every batch acknowledged with a 200 survives a SIGKILL at exactly
//!   the offsets the acknowledgement named; every other batch is wholly present or
//!   wholly absent.
//! - `corrupt_tail`: garbage after the last batch or a torn last batch is cut off at
//!   start-up with a warning; earlier records stay and new ones append after them.
//! - `freshness`: a purchase is reflected in the buyer's next list within 1 s of its
//!   acknowledgement (the product's freshness requirement).
//! - `bad_input`: every kind of invalid request gets its 4xx and a JSON error naming
//!   the problem, nothing of a rejected batch is stored, and the server keeps serving.
//! - `recommendations_are_sensible`: cold users get non-empty, non-personal lists;
//!   every item carries the documented fields; `/metrics` exposes the key series.
//! - `registry_cli_and_a_gate_that_says_no`: `flywheel train` with a worse config refuses
//!   to promote and prints both figures; `flywheel models` works on a stopped data dir,
//!   says it needs `--server` while `serve` holds the dir, and works through it.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_flywheel");
/// How long a server may take to replay its log and answer /readyz with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The product requirement: an acknowledged event shows in recommendations within 1 s.
const FRESHNESS_LIMIT: Duration = Duration::from_secs(1);
/// Deadlines far above any debug-build stage time, so lists do not depend on speed,
/// and no impression cap, so polling a user's list cannot by itself change it.
const SERVE_CONFIG: &str = "[deadlines]\nretrieval_ms = 60000\nranking_ms = 60000\n\n[rerank]\nmax_times_shown = 1000000\n";

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client.

/// A response: status and body text.
#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    Ok(stream)
}

fn request_head(method: &str, path: &str, content_type: Option<&str>, body_len: usize) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if method != "GET" || body_len > 0 {
        head.push_str(&format!("Content-Length: {body_len}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends one request on a fresh connection and reads the whole response.
fn try_request(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = connect(port)?;
    let mut bytes = request_head(method, path, content_type, body.len()).into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(format!("no header end in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = &raw[split + 4..];
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line `{status_line}`")))?;
    let chunked = lines.any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

fn dechunk(mut rest: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size".into()))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| invalid(format!("bad chunk size `{size_text}`: {e}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err(invalid("truncated chunk".into()));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn get(port: u16, path: &str) -> Response {
    try_request(port, "GET", path, None, b"").unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
}

fn post_json(port: u16, path: &str, body: &Value) -> Response {
    post_raw(port, path, "application/json", body.to_string().as_bytes())
}

fn post_raw(port: u16, path: &str, content_type: &str, body: &[u8]) -> Response {
    try_request(port, "POST", path, Some(content_type), body)
        .unwrap_or_else(|e| panic!("POST {path} failed: {e}"))
}

fn put_json(port: u16, path: &str, body: &Value) -> Response {
    try_request(
        port,
        "PUT",
        path,
        Some("application/json"),
        body.to_string().as_bytes(),
    )
    .unwrap_or_else(|e| panic!("PUT {path} failed: {e}"))
}

/// One sample of a Prometheus metric without labels.
fn metric(port: u16, name: &str) -> f64 {
    let response = get(port, "/metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    response
        .body
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse::<f64>().ok())?
        })
        .unwrap_or_else(|| panic!("metric {name} missing from /metrics:\n{}", response.body))
}

// ---------------------------------------------------------------------------
// The server process.

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    listener.local_addr().expect("a bound address").port()
}

/// A running `flywheel serve`; killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    port: u16,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts `serve` on `data_dir` and waits until /readyz answers 200.
    fn start(data_dir: &Path, config: Option<&Path>) -> Server {
        let logs = data_dir.parent().expect("data dirs live inside a temp dir");
        for attempt in 0..3 {
            let port = free_port();
            let stdout_path = logs.join(format!("serve-{port}.out"));
            let stderr_path = logs.join(format!("serve-{port}.err"));
            let mut command = Command::new(BIN);
            command
                .arg("serve")
                .arg("--data-dir")
                .arg(data_dir)
                .arg("--port")
                .arg(port.to_string())
                .env_remove("FLYWHEEL_DATA_DIR")
                .env_remove("FLYWHEEL_PORT")
                .stdin(Stdio::null())
                .stdout(File::create(&stdout_path).expect("creating the stdout file"))
                .stderr(File::create(&stderr_path).expect("creating the stderr file"));
            if let Some(config) = config {
                command.arg("--config").arg(config);
            }
            let child = command.spawn().expect("spawning flywheel serve");
            let mut server = Server {
                child,
                port,
                stderr_path,
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(stderr) if stderr.contains("in use") && attempt < 2 => continue,
                Err(stderr) => panic!("flywheel serve did not become ready:\n{stderr}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.stderr()));
            }
            if let Ok(response) = try_request(self.port, "GET", "/readyz", None, b"") {
                if response.status == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "not ready within {READY_TIMEOUT:?}: {}",
            self.stderr()
        ))
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A fresh temp dir with an empty data dir inside it.
fn temp_data_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("creating a temp dir");
    let data = temp.path().join("data");
    (temp, data)
}

fn flywheel_output(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("FLYWHEEL_DATA_DIR")
        .output()
        .expect("running flywheel")
}

fn run_flywheel(args: &[&str]) -> String {
    let output = flywheel_output(args);
    assert!(
        output.status.success(),
        "flywheel {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Every record of the log, by offset, as `flywheel inspect --records` prints it.
fn inspect_records(data_dir: &Path) -> BTreeMap<u64, Value> {
    let dir = data_dir.to_str().expect("temp paths are UTF-8");
    let output = run_flywheel(&["inspect", "--data-dir", dir, "--records", "100000000"]);
    assert!(
        !output.contains("CORRUPT TAIL"),
        "the log still has a corrupt tail after recovery:\n{output}"
    );
    let mut records = BTreeMap::new();
    for line in output.lines() {
        let Some((offset, payload)) = line.trim_start().split_once(": ") else {
            continue;
        };
        let Ok(offset) = offset.parse::<u64>() else {
            continue;
        };
        let record: Value = serde_json::from_str(payload)
            .unwrap_or_else(|e| panic!("record {offset} is not JSON ({e}): {payload}"));
        assert!(
            records.insert(offset, record).is_none(),
            "offset {offset} printed twice"
        );
    }
    records
}

/// item_id → offset of every event record; panics on a duplicate item id.
fn events_by_item(records: &BTreeMap<u64, Value>) -> HashMap<String, u64> {
    let mut by_item = HashMap::new();
    for (offset, record) in records {
        assert_eq!(
            record["type"], "event",
            "record {offset} is not an event: {record}"
        );
        let item = record["item_id"]
            .as_str()
            .unwrap_or_else(|| panic!("record {offset} has no item_id: {record}"))
            .to_string();
        if let Some(previous) = by_item.insert(item.clone(), *offset) {
            panic!("event {item} stored twice, at offsets {previous} and {offset}");
        }
    }
    by_item
}

fn event(user: &str, item: &str, action: &str) -> Value {
    json!({"user_id": user, "item_id": item, "action": action})
}

// ---------------------------------------------------------------------------
// 1. Crash safety.

/// What a client learnt about one batch it sent.
#[derive(Debug, Clone)]
enum Outcome {
    /// 200 with these offsets.
    Acknowledged { first: u64, last: u64 },
    /// Sent, but no 200 came back (the server died mid-request).
    Unknown,
}

const CLIENTS: usize = 4;
const BATCHES_PER_CLIENT: usize = 500;
/// The kill comes once this many batches are acknowledged: well before all 2,000 are sent.
const KILL_AFTER_ACKS: usize = 600;

fn batch_size(client: usize, batch: usize) -> usize {
    1 + (client * 7919 + batch * 104_729) % 20
}

fn batch_item(client: usize, batch: usize, index: usize) -> String {
    format!("c{client}-b{batch}-e{index}")
}

fn send_batches(
    port: u16,
    client: usize,
    stop: &AtomicBool,
    acks: &AtomicUsize,
) -> Vec<(usize, Outcome)> {
    let mut outcomes = Vec::new();
    for batch in 0..BATCHES_PER_CLIENT {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let events: Vec<Value> = (0..batch_size(client, batch))
            .map(|i| {
                event(
                    &format!("crash-u{client}"),
                    &batch_item(client, batch, i),
                    "view",
                )
            })
            .collect();
        let body = Value::Array(events).to_string();
        let result = try_request(
            port,
            "POST",
            "/v1/events",
            Some("application/json"),
            body.as_bytes(),
        );
        match result {
            Ok(response) if response.status == 200 => {
                let reply = response.json();
                let first = reply["first_offset"].as_u64().expect("first_offset");
                let last = reply["last_offset"].as_u64().expect("last_offset");
                assert_eq!(
                    reply["accepted"].as_u64(),
                    Some(batch_size(client, batch) as u64)
                );
                outcomes.push((batch, Outcome::Acknowledged { first, last }));
                acks.fetch_add(1, Ordering::AcqRel);
            }
            Ok(response) => {
                // A valid batch must never be refused by a live server.
                assert!(
                    stop.load(Ordering::Acquire),
                    "batch {batch} of client {client} refused: {} {}",
                    response.status,
                    response.body
                );
                outcomes.push((batch, Outcome::Unknown));
                break;
            }
            Err(_) => {
                outcomes.push((batch, Outcome::Unknown));
                break;
            }
        }
    }
    outcomes
}

#[test]
fn crash_safety() {
    let (_temp, data) = temp_data_dir();
    let mut server = Server::start(&data, None);
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (stop, acks) = (Arc::clone(&stop), Arc::clone(&acks));
            std::thread::spawn(move || send_batches(port, client, &stop, &acks))
        })
        .collect();
    let started = Instant::now();
    while acks.load(Ordering::Acquire) < KILL_AFTER_ACKS
        && clients.iter().any(|c| !c.is_finished())
        && started.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Release);
    server.kill9();
    let outcomes: Vec<Vec<(usize, Outcome)>> = clients
        .into_iter()
        .map(|c| c.join().expect("a client thread panicked"))
        .collect();
    let acknowledged: usize = outcomes
        .iter()
        .flatten()
        .filter(|(_, o)| matches!(o, Outcome::Acknowledged { .. }))
        .count();
    let sent: usize = outcomes.iter().map(Vec::len).sum();
    assert!(
        acknowledged >= KILL_AFTER_ACKS,
        "only {acknowledged} batches were acknowledged before the kill"
    );
    assert!(
        sent < CLIENTS * BATCHES_PER_CLIENT,
        "the kill came after every batch was sent; it proves nothing"
    );

    eprintln!("crash_safety: {acknowledged} of {sent} sent batches acknowledged before SIGKILL");
    // Restart: recovery must keep every acknowledged batch.
    let restarted = Server::start(&data, None);
    let end_offset = metric(restarted.port, "flywheel_log_end_offset");
    drop(restarted);
    let records = inspect_records(&data);
    assert_eq!(
        records.len() as f64,
        end_offset,
        "inspect and the server disagree"
    );
    let stored = events_by_item(&records);

    let mut expected_records = 0usize;
    for (client, batches) in outcomes.iter().enumerate() {
        for (batch, outcome) in batches {
            let size = batch_size(client, *batch);
            let offsets: Vec<Option<u64>> = (0..size)
                .map(|i| stored.get(&batch_item(client, *batch, i)).copied())
                .collect();
            match outcome {
                Outcome::Acknowledged { first, last } => {
                    assert_eq!(
                        *last + 1 - *first,
                        size as u64,
                        "ack of a {size}-event batch"
                    );
                    for (i, offset) in offsets.iter().enumerate() {
                        assert_eq!(
                            *offset,
                            Some(first + i as u64),
                            "event {} of acknowledged batch {batch} (client {client}) lost or moved",
                            i
                        );
                    }
                    expected_records += size;
                }
                Outcome::Unknown => {
                    let present = offsets.iter().filter(|o| o.is_some()).count();
                    assert!(
                        present == 0 || present == size,
                        "unacknowledged batch {batch} of client {client} is torn: {present} of {size} events stored"
                    );
                    if present == size {
                        let first = offsets[0].expect("present");
                        for (i, offset) in offsets.iter().enumerate() {
                            assert_eq!(
                                *offset,
                                Some(first + i as u64),
                                "batch {batch} not contiguous"
                            );
                        }
                    }
                    expected_records += present;
                }
            }
        }
    }
    assert_eq!(
        stored.len(),
        expected_records,
        "the log holds events no client sent"
    );
    assert_eq!(
        records.keys().copied().collect::<Vec<_>>(),
        (0..records.len() as u64).collect::<Vec<_>>(),
        "offsets must be dense from 0"
    );
}

// ---------------------------------------------------------------------------
// 2. A corrupt or torn tail.

fn last_segment(data: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data.join("log"))
        .expect("the log directory exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    segments.pop().expect("at least one segment")
}

fn post_acknowledged(port: u16, events: Vec<Value>) -> (u64, u64) {
    let count = events.len() as u64;
    let response = post_json(port, "/v1/events", &Value::Array(events));
    assert_eq!(response.status, 200, "{}", response.body);
    let reply = response.json();
    assert_eq!(reply["accepted"].as_u64(), Some(count), "{reply}");
    (
        reply["first_offset"].as_u64().expect("first_offset"),
        reply["last_offset"].as_u64().expect("last_offset"),
    )
}

fn assert_items_at(records: &BTreeMap<u64, Value>, expected: &[(u64, String)]) {
    for (offset, item) in expected {
        let record = records
            .get(offset)
            .unwrap_or_else(|| panic!("acknowledged record {offset} ({item}) is gone"));
        assert_eq!(record["item_id"], item.as_str(), "record {offset}");
    }
}

#[test]
fn corrupt_tail() {
    let (_temp, data) = temp_data_dir();
    let mut server = Server::start(&data, None);
    let mut expected = Vec::new();
    for batch in 0..30u64 {
        let items: Vec<String> = (0..3).map(|i| format!("tail-b{batch}-e{i}")).collect();
        let events = items
            .iter()
            .map(|i| event("tail-user", i, "click"))
            .collect();
        let (first, last) = post_acknowledged(server.port, events);
        assert_eq!(
            (first, last),
            (batch * 3, batch * 3 + 2),
            "offsets are dense"
        );
        expected.extend(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| (first + i as u64, item)),
        );
    }
    server.kill9();

    // Case 1: garbage after the last complete batch.
    let segment = last_segment(&data);
    let valid_len = std::fs::metadata(&segment).expect("segment metadata").len();
    let garbage = [0xABu8; 100];
    File::options()
        .append(true)
        .open(&segment)
        .and_then(|mut f| f.write_all(&garbage))
        .expect("appending garbage");
    let mut server = Server::start(&data, None);
    let stderr = server.stderr();
    assert!(
        stderr.contains("torn or corrupt tail") && stderr.contains("100 bytes dropped"),
        "no warning about the 100 garbage bytes on stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{valid_len} valid bytes kept")),
        "{stderr}"
    );
    assert_eq!(metric(server.port, "flywheel_log_end_offset"), 90.0);
    let (first, last) = post_acknowledged(
        server.port,
        vec![
            event("tail-user", "after-garbage-0", "click"),
            event("tail-user", "after-garbage-1", "click"),
        ],
    );
    assert_eq!(
        (first, last),
        (90, 91),
        "new events append right after the kept ones"
    );
    expected.push((90, "after-garbage-0".into()));
    expected.push((91, "after-garbage-1".into()));
    server.kill9();
    assert!(std::fs::metadata(&segment).expect("metadata").len() > valid_len);

    // Case 2: the last batch torn mid-record (its last 5 bytes never reached the disk).
    let before_torn = {
        let records = inspect_records(&data);
        assert_eq!(records.len(), 92);
        assert_items_at(&records, &expected);
        valid_len
    };
    let full_len = std::fs::metadata(&segment).expect("metadata").len();
    File::options()
        .write(true)
        .open(&segment)
        .and_then(|f| f.set_len(full_len - 5))
        .expect("truncating the segment");
    let server = Server::start(&data, None);
    let stderr = server.stderr();
    let dropped = full_len - 5 - before_torn;
    assert!(
        stderr.contains("torn or corrupt tail")
            && stderr.contains(&format!("{dropped} bytes dropped")),
        "no warning about the torn {dropped}-byte batch on stderr:\n{stderr}"
    );
    assert_eq!(metric(server.port, "flywheel_log_end_offset"), 90.0);
    expected.truncate(90);
    let (first, _) = post_acknowledged(server.port, vec![event("tail-user", "after-torn", "view")]);
    assert_eq!(first, 90);
    expected.push((90, "after-torn".into()));
    drop(server);
    let records = inspect_records(&data);
    assert_eq!(records.len(), 91);
    assert_items_at(&records, &expected);
}

// ---------------------------------------------------------------------------
// 4. Bad input.

/// Asserts a 4xx JSON error with `code` whose message (or details) mentions `needle`.
fn assert_error(response: &Response, status: u16, code: &str, needle: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.body);
    let body = response.json();
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: empty message: {body}");
    let text = format!("{message} {}", body["error"]["details"]);
    assert!(
        text.contains(needle),
        "{what}: the error does not name `{needle}`: {body}"
    );
}

#[test]
fn bad_input() {
    let (_temp, data) = temp_data_dir();
    let server = Server::start(&data, None);
    let port = server.port;
    let (first, _) = post_acknowledged(port, vec![event("bad-u", "bad-i0", "view")]);
    assert_eq!(first, 0);

    let valid = event("bad-u", "bad-i", "view");
    let with = |key: &str, value: Value| {
        let mut e = valid.clone();
        e[key] = value;
        e
    };
    let without = |key: &str| {
        let mut e = valid.clone();
        e.as_object_mut().expect("an object").remove(key);
        e
    };
    let event_cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "malformed JSON",
            br#"{"user_id": "u", "item_id""#.to_vec(),
            "malformed_json",
            "JSON",
        ),
        (
            "unknown field",
            with("colour", json!("red")).to_string().into_bytes(),
            "invalid_event",
            "colour",
        ),
        (
            "unknown action",
            with("action", json!("teleport")).to_string().into_bytes(),
            "invalid_event",
            "action",
        ),
        (
            "missing user_id",
            without("user_id").to_string().into_bytes(),
            "invalid_event",
            "user_id",
        ),
        (
            "non-RFC3339 timestamp",
            with("timestamp", json!("yesterday at noon"))
                .to_string()
                .into_bytes(),
            "invalid_event",
            "timestamp",
        ),
        (
            "wrong-type value",
            with("value", json!("ten")).to_string().into_bytes(),
            "invalid_event",
            "value",
        ),
        ("empty array", b"[]".to_vec(), "invalid_event", "no events"),
        ("a scalar body", b"42".to_vec(), "invalid_event", "event"),
        (
            "one bad event in a batch",
            json!([valid, with("action", json!("teleport")), valid])
                .to_string()
                .into_bytes(),
            "invalid_event",
            "none were stored",
        ),
    ];
    for (what, body, code, needle) in &event_cases {
        let response = post_raw(port, "/v1/events", "application/json", body);
        assert_error(&response, 400, code, needle, what);
        assert_eq!(
            get(port, "/healthz").status,
            200,
            "server died after {what}"
        );
    }
    let batch = post_json(
        port,
        "/v1/events",
        &json!([
            valid,
            valid,
            with("position", json!(-1)),
            with("user_id", json!(""))
        ]),
    );
    let details = batch.json()["error"]["details"].clone();
    let indexes: Vec<u64> = details
        .as_array()
        .unwrap_or_else(|| panic!("a rejected batch lists its bad events: {}", batch.body))
        .iter()
        .map(|d| d["index"].as_u64().expect("an index"))
        .collect();
    assert_eq!(indexes, vec![2, 3], "every bad event by index: {details}");

    let ndjson = format!("{valid}\nnot json\n{valid}\n");
    let response = post_raw(
        port,
        "/v1/events",
        "application/x-ndjson",
        ndjson.as_bytes(),
    );
    assert_error(
        &response,
        400,
        "malformed_json",
        "line 2",
        "NDJSON with a bad line",
    );

    let huge = oversized_body_status(port);
    assert_eq!(huge.0, 413, "a body over 16 MiB: {}", huge.1);
    let body: Value = serde_json::from_str(&huge.1).expect("a JSON error for 413");
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");

    let query_cases = [
        (
            "unknown parameter",
            "/v1/recommendations?user_id=u&colour=red",
            "colour",
        ),
        ("count=0", "/v1/recommendations?user_id=u&count=0", "count"),
        (
            "count too large",
            "/v1/recommendations?user_id=u&count=100000",
            "count",
        ),
        (
            "count not a number",
            "/v1/recommendations?user_id=u&count=ten",
            "count",
        ),
        ("missing user_id", "/v1/recommendations?count=5", "user_id"),
    ];
    for (what, path, needle) in query_cases {
        assert_error(&get(port, path), 400, "invalid_parameter", needle, what);
    }
    assert_eq!(get(port, "/v1/nowhere").status, 404);
    assert_eq!(
        try_request(port, "DELETE", "/v1/events", None, b"")
            .expect("DELETE")
            .status,
        405
    );

    // Nothing of any rejected request was stored.
    assert_eq!(metric(port, "flywheel_log_end_offset"), 1.0);
    assert_eq!(metric(port, "flywheel_events_ingested_total"), 1.0);
    assert!(metric(port, "flywheel_events_rejected_total") >= 9.0);
    // And the server still takes valid events, right after the first one.
    let (first, last) = post_acknowledged(port, vec![event("bad-u", "bad-i1", "view")]);
    assert_eq!((first, last), (1, 1));
    let ndjson = format!(
        "{}\n{}\n",
        event("bad-u", "bad-i2", "view"),
        event("bad-u", "bad-i3", "click")
    );
    let response = post_raw(
        port,
        "/v1/events",
        "application/x-ndjson",
        ndjson.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["first_offset"], 2);
    let list = get(port, "/v1/recommendations?user_id=bad-u&count=3");
    assert_eq!(list.status, 200, "{}", list.body);
    drop(server);
    let records = inspect_records(&data);
    let items: Vec<&str> = records
        .values()
        .filter(|r| r["type"] == "event")
        .map(|r| r["item_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(items, vec!["bad-i0", "bad-i1", "bad-i2", "bad-i3"]);
}

/// POSTs a 16 MiB + 1 KiB body; the answer is read while the body is still being
/// written, because the server may answer (and close) before reading it all.
fn oversized_body_status(port: u16) -> (u16, String) {
    let len = (16 << 20) + 1024;
    let mut stream = connect(port).expect("connecting");
    let head = request_head("POST", "/v1/events", Some("application/json"), len);
    stream.write_all(head.as_bytes()).expect("writing the head");
    let mut writer = stream.try_clone().expect("cloning the stream");
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 << 10];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if writer.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("reading the 413 answer: {e}"),
        }
        if let Ok(response) = parse_response(&raw) {
            if serde_json::from_str::<Value>(&response.body).is_ok() {
                break;
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    let response = parse_response(&raw).expect("an HTTP answer");
    (response.status, response.body)
}

// ---------------------------------------------------------------------------
// 3 and 5. The quick-start shop.

/// The quick-start shop, built once per test run (`quickstart --no-serve`), in the
/// target's temp dir; each test serves its own copy.
fn quickstart_shop() -> &'static Path {
    static SHOP: OnceLock<PathBuf> = OnceLock::new();
    SHOP.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flywheel-quickstart-shop");
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.to_str().expect("UTF-8 path");
        run_flywheel(&["quickstart", "--data-dir", path, "--no-serve"]);
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the copy");
    for entry in std::fs::read_dir(from).expect("reading the shop") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_name() == "dataset" {
            continue; // the simulated input files; serving reads the log
        }
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "flywheel.lock" {
            std::fs::copy(entry.path(), &target).expect("copying a file");
        }
    }
}

/// A private copy of the quick-start shop served with generous deadlines.
fn serve_shop() -> (tempfile::TempDir, Server) {
    let shop = quickstart_shop();
    let (temp, data) = temp_data_dir();
    copy_dir(shop, &data);
    let config = temp.path().join("flywheel.toml");
    std::fs::write(&config, SERVE_CONFIG).expect("writing the config");
    let server = Server::start(&data, Some(&config));
    (temp, server)
}

/// The simulated shop's most active user (most events in its `events.jsonl`).
fn a_user_with_history() -> String {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        let path = quickstart_shop().join("dataset").join("events.jsonl");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let event: Value = serde_json::from_str(line).expect("events.jsonl holds JSON lines");
            let user = event["user_id"].as_str().expect("a user_id").to_string();
            *counts.entry(user).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(user, _)| user)
            .expect("the shop has events")
    })
    .clone()
}

fn recommendations(port: u16, user: &str, count: usize) -> Value {
    let response = get(
        port,
        &format!("/v1/recommendations?user_id={user}&count={count}"),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

fn item_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|i| {
            i["item_id"]
                .as_str()
                .expect("item_id is a string")
                .to_string()
        })
        .collect()
}

#[test]
fn freshness() {
    let (_temp, server) = serve_shop();
    let port = server.port;
    let user = a_user_with_history();
    // Impressions feed the items' CTR and the clock moves, so a list may shift a little
    // from one request to the next; buy an item that every one of three lists holds.
    let before = recommendations(port, &user, 10);
    let mut stable = item_ids(&before);
    for _ in 0..2 {
        let again = item_ids(&recommendations(port, &user, 10));
        stable.retain(|item| again.contains(item));
    }
    let bought = stable
        .first()
        .unwrap_or_else(|| panic!("no item stays in {user}'s list without events: {before}"))
        .clone();

    let purchase = json!({"user_id": user, "item_id": bought, "action": "purchase", "value": 12.5});
    let response = post_json(port, "/v1/events", &purchase);
    assert_eq!(response.status, 200, "{}", response.body);
    let acknowledged = Instant::now();
    let mut polls = 0;
    loop {
        let list = recommendations(port, &user, 10);
        polls += 1;
        let still_there = item_ids(&list).contains(&bought);
        if !still_there {
            assert!(!item_ids(&list).is_empty(), "the list went empty: {list}");
            break;
        }
        assert!(
            acknowledged.elapsed() <= FRESHNESS_LIMIT,
            "{bought}, bought by {user}, is still recommended {:?} after the acknowledgement ({polls} polls): {list}",
            acknowledged.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "freshness: purchase of {bought} reflected {:?} after its acknowledgement ({polls} polls)",
        acknowledged.elapsed()
    );
    // Once reflected, it stays reflected: it left because it was bought.
    for _ in 0..5 {
        let later = recommendations(port, &user, 10);
        assert!(
            !item_ids(&later).contains(&bought),
            "{bought} came back: {later}"
        );
    }
}

fn assert_sensible(list: &Value, user: &str, count: usize, port: u16) {
    assert_eq!(list["user_id"], user, "{list}");
    assert!(
        list["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{list}"
    );
    assert!(
        list["model_version"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{list}"
    );
    assert!(list["fallback"].is_boolean(), "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), count, "a full list for {user}: {list}");
    let mut seen = HashSet::new();
    for (position, item) in items.iter().enumerate() {
        let id = item["item_id"].as_str().expect("item_id");
        assert!(seen.insert(id.to_string()), "{id} listed twice: {list}");
        assert!(item["score"].as_f64().is_some_and(f64::is_finite), "{item}");
        assert_eq!(item["position"].as_u64(), Some(position as u64), "{item}");
        assert!(
            item["channel"].as_str().is_some_and(|s| !s.is_empty()),
            "{item}"
        );
        assert!(
            item["explanation"].as_str().is_some_and(|s| !s.is_empty()),
            "{item}"
        );
        assert!(!item["reason"].is_null(), "{item}");
        assert_eq!(
            get(port, &format!("/v1/items/{id}")).status,
            200,
            "{id} is not in the catalog"
        );
    }
}

/// The fallback reasons of a list (absent when there are none).
fn fallback_reasons(list: &Value) -> Vec<&str> {
    match &list["fallback_reasons"] {
        Value::Null => Vec::new(),
        reasons => reasons
            .as_array()
            .expect("fallback_reasons is an array")
            .iter()
            .map(|r| r.as_str().expect("a reason is text"))
            .collect(),
    }
}

#[test]
fn recommendations_are_sensible() {
    let (_temp, server) = serve_shop();
    let port = server.port;
    let personal = ["ease", "als", "co_visitation", "content"];

    let unknown = recommendations(port, "never-seen-user", 10);
    assert_sensible(&unknown, "never-seen-user", 10, port);
    let newcomer = put_json(port, "/v1/users/newcomer", &json!({}));
    assert_eq!(newcomer.status, 200, "{}", newcomer.body);
    let fresh = recommendations(port, "newcomer", 10);
    assert_sensible(&fresh, "newcomer", 10, port);
    for list in [&unknown, &fresh] {
        for item in list["items"].as_array().expect("items") {
            let channel = item["channel"].as_str().unwrap_or_default();
            assert!(
                !personal.contains(&channel),
                "a cold user got a personal item: {item}"
            );
        }
    }

    let user = a_user_with_history();
    let known = recommendations(port, &user, 10);
    assert_sensible(&known, &user, 10, port);
    assert!(
        known["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| personal.contains(&i["channel"].as_str().unwrap_or_default())),
        "{user}, the most active user, got no personal item: {known}"
    );

    // With generous deadlines and ALS + EASE trained, no list falls back: a ranker the
    // promotion gate did not keep is a decision, not a degradation.
    for list in [&unknown, &fresh, &known] {
        assert!(fallback_reasons(list).is_empty(), "{list}");
        assert_eq!(list["fallback"], false, "{list}");
    }

    let metrics = get(port, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("flywheel_events_ingested_total"),
        "{}",
        metrics.body
    );
    let total_count = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("flywheel_stage_duration_seconds_count{stage=\"total\"} "))
        .unwrap_or_else(|| panic!("no stage histogram in /metrics:\n{}", metrics.body));
    assert!(
        total_count.trim().parse::<u64>().is_ok_and(|n| n >= 3),
        "{total_count}"
    );
}

// ---------------------------------------------------------------------------
// 6. The registry from the command line, and the gate saying no.

/// Runs flywheel expecting failure; returns its stderr.
fn run_flywheel_failing(args: &[&str]) -> String {
    let output = flywheel_output(args);
    assert!(
        !output.status.success(),
        "flywheel {args:?} should have failed:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn versions(listing: &Value) -> Vec<(String, String)> {
    listing["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or("?").to_string(),
                v["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Valid and worse: only the trending channel, re-ranked for diversity alone.
const WORSE_CONFIG: &str = "[retrieval.quotas]\nals = 0.0\nco_visitation = 0.0\ncontent = 0.0\nease = 0.0\npopularity = 0.0\ntrending = 1.0\n\n[rerank]\nmmr_lambda = 0.0\n";

#[test]
fn registry_cli_and_a_gate_that_says_no() {
    let (temp, data) = temp_data_dir();
    let dir = data.to_str().expect("UTF-8 path");
    let shop = temp.path().join("shop");
    let shop_dir = shop.to_str().expect("UTF-8 path");
    run_flywheel(&[
        "simulate", "--out", shop_dir, "--users", "400", "--items", "300", "--days", "14",
    ]);
    for (kind, file) in [
        ("items", "items.jsonl"),
        ("users", "users.jsonl"),
        ("events", "events.jsonl"),
    ] {
        let path = shop.join(file);
        run_flywheel(&[
            "import",
            kind,
            "--data-dir",
            dir,
            path.to_str().expect("UTF-8"),
        ]);
    }
    let first: Value = serde_json::from_str(&run_flywheel(&["train", "--data-dir", dir, "--json"]))
        .expect("train --json prints JSON");
    assert_eq!(
        (first["version"].as_str(), first["promoted"].as_bool()),
        (Some("v1"), Some(true))
    );

    // A valid but worse config: the gate refuses it and prints both figures and the CI.
    let trending = temp.path().join("trending.toml");
    std::fs::write(&trending, WORSE_CONFIG).expect("writing the config");
    let trending = trending.to_str().expect("UTF-8 path");
    let worse = run_flywheel(&["train", "--data-dir", dir, "--config", trending]);
    assert!(worse.contains("v2 NOT promoted"), "{worse}");
    assert!(
        worse.contains("(v2, candidate) vs") && worse.contains("(v1, serving)"),
        "{worse}"
    );
    let listing: Value = serde_json::from_str(&run_flywheel(&[
        "models",
        "list",
        "--data-dir",
        dir,
        "--json",
    ]))
    .expect("models list --json prints JSON");
    assert_eq!(listing["serving"], "v1", "{listing}");
    assert_eq!(
        versions(&listing),
        [
            ("v1".to_string(), "serving".to_string()),
            ("v2".into(), "rejected".into())
        ]
    );
    let gate = &listing["versions"][1]["gate"];
    assert!(gate["ci_high"].as_f64().expect("a CI") < 0.0, "{gate}");
    assert!(gate["candidate_ndcg_at_10"].as_f64() < gate["serving_ndcg_at_10"].as_f64());

    // While serve holds the data dir, changes go through it and the CLI says so.
    let server = Server::start(&data, None);
    let url = format!("http://127.0.0.1:{}", server.port);
    let refused = run_flywheel_failing(&["models", "promote", "v2", "--data-dir", dir]);
    assert!(refused.contains("--server"), "{refused}");
    let refused = run_flywheel_failing(&["train", "--data-dir", dir]);
    assert!(refused.contains("--server"), "{refused}");
    let promoted = run_flywheel(&["models", "promote", "v2", "--server", &url]);
    assert!(promoted.contains("now serving v2"), "{promoted}");
    assert_eq!(get(server.port, "/v1/models").json()["serving"], "v2");
    let rolled = run_flywheel(&["models", "rollback", "--server", &url]);
    assert!(rolled.contains("now serving v1"), "{rolled}");
    let listing: Value = serde_json::from_str(&run_flywheel(&[
        "models", "list", "--server", &url, "--json",
    ]))
    .expect("models list --json prints JSON");
    assert_eq!(listing["serving"], "v1", "{listing}");
    // A canary through the server: started, listed, ended by `rollback` in one call.
    let canary = run_flywheel(&["models", "canary", "v2", "--share", "0.2", "--server", &url]);
    assert!(canary.contains("canary v2 serves share 0.2"), "{canary}");
    let listing = get(server.port, "/v1/models").json();
    assert_eq!(listing["canary"]["version"], "v2", "{listing}");
    let table = run_flywheel(&["models", "list", "--server", &url]);
    assert!(table.contains("canary: v2 at share 0.2"), "{table}");
    let rolled = run_flywheel(&["models", "rollback", "--server", &url]);
    assert!(
        rolled.contains("canary v2 rolled back; serving v1"),
        "{rolled}"
    );
    assert_eq!(
        get(server.port, "/v1/models").json()["versions"][1]["status"],
        "rolled_back"
    );
    // Versions are names, never paths.
    let bad = run_flywheel_failing(&["models", "promote", "../../etc", "--server", &url]);
    assert!(bad.contains("not a model version"), "{bad}");
    drop(server);
}

/// `bench experiments --json` with a tiny run count: the shape of the report (the
/// statistical targets need many runs), and the HTTP run's two identities, which do
/// not depend on the run count.
#[test]
fn bench_experiments_reports_its_figures_as_json() {
    let output = run_flywheel(&[
        "bench",
        "experiments",
        "--runs",
        "2",
        "--seed",
        "3",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&output).expect("--json prints JSON");
    assert_eq!(report["runs"], 2, "{report}");
    assert!(report["command"]
        .as_str()
        .is_some_and(|c| c.contains("--runs 2")));
    let figures = report["figures"].as_array().expect("figures");
    for study in ["A/A", "A/B known lift", "interleaving vs A/B", "OPE"] {
        assert!(
            figures
                .iter()
                .any(|f| f["study"].as_str().is_some_and(|s| s.starts_with(study))),
            "no {study} figures"
        );
    }
    for figure in figures {
        assert!(
            figure["name"].is_string() && figure["target"].is_string(),
            "{figure}"
        );
        assert!(
            figure["value"].is_number() || figure["value"].is_null(),
            "{figure}"
        );
        assert!(
            figure["pass"].is_boolean() || figure["pass"].is_null(),
            "{figure}"
        );
    }
    let http = &report["http"];
    assert_eq!(http["server"].as_array().map(Vec::len), Some(2), "{http}");
    assert_eq!(
        http["in_process"].as_array().map(Vec::len),
        Some(2),
        "{http}"
    );
    assert!(http["requests"].as_u64().is_some_and(|n| n > 0), "{http}");
    assert_eq!(http["metrics_identical"], true, "{http}");
    let interleaving = &http["interleaving"];
    let outcomes: u64 = ["wins", "losses", "ties"]
        .iter()
        .map(|k| interleaving[*k].as_u64().unwrap_or(0))
        .sum();
    assert!(
        outcomes > 0,
        "the HTTP run interleaved no closed request: {http}"
    );
    assert_eq!(http["counts_identical"], true, "{http}");
}

#[path = "integration/ranker.rs"]
mod ranker;

/// Writes `rows` of `values` as an ANN-benchmarks `.fvecs`/`.ivecs` file.
fn write_vecs(path: &std::path::Path, dimension: usize, words: impl Iterator<Item = [u8; 4]>) {
    let mut bytes = Vec::new();
    for (i, word) in words.enumerate() {
        if i % dimension == 0 {
            bytes.extend_from_slice(&(dimension as i32).to_le_bytes());
        }
        bytes.extend_from_slice(&word);
    }
    std::fs::write(path, bytes).expect("writing a vecs file");
}

/// `bench ann` on a tiny seeded data set in the anchor's file layout: it reads the files,
/// reports recall against the given truth for f32 and int8, and refuses a truncated file
/// with a message naming it.
#[test]
fn bench_ann_reads_vecs_files_and_reports_recall() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, queries, dimension) = (2_000usize, 50usize, 8usize);
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let base: Vec<f32> = (0..rows * dimension).map(|_| next()).collect();
    let query: Vec<f32> = (0..queries * dimension).map(|_| next()).collect();
    let truth: Vec<i32> = query
        .chunks(dimension)
        .flat_map(|q| {
            let mut scored: Vec<(f32, i32)> = base
                .chunks(dimension)
                .enumerate()
                .map(|(i, b)| {
                    (
                        b.iter().zip(q).map(|(x, y)| (x - y) * (x - y)).sum(),
                        i as i32,
                    )
                })
                .collect();
            scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            scored.into_iter().take(10).map(|s| s.1).collect::<Vec<_>>()
        })
        .collect();
    write_vecs(
        &dir.path().join("base.fvecs"),
        dimension,
        base.iter().map(|v| v.to_le_bytes()),
    );
    write_vecs(
        &dir.path().join("queries.fvecs"),
        dimension,
        query.iter().map(|v| v.to_le_bytes()),
    );
    write_vecs(
        &dir.path().join("gt10.ivecs"),
        10,
        truth.iter().map(|v| v.to_le_bytes()),
    );
    let json = dir.path().join("report.json");
    let data = dir.path().to_str().unwrap();
    run_flywheel(&[
        "bench",
        "ann",
        "--data",
        data,
        "--efs",
        "10,64",
        "--json",
        json.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{report}");
    for run in runs {
        let last = &run["sweep"][1];
        assert_eq!(last["ef"], 64, "{run}");
        assert!(last["recall10"].as_f64().unwrap() >= 0.95, "{run}");
        assert!(last["cpu_us_per_query"].as_f64().unwrap() > 0.0, "{run}");
    }
    let base_bytes = std::fs::read(dir.path().join("base.fvecs")).unwrap();
    std::fs::write(
        dir.path().join("base.fvecs"),
        &base_bytes[..base_bytes.len() - 8],
    )
    .unwrap();
    let error = run_flywheel_failing(&["bench", "ann", "--data", data, "--efs", "10"]);
    assert!(
        error.contains("base.fvecs") && error.contains("whole rows"),
        "{error}"
    );
}

/// The self-healing controller end to end: `flywheel bench self-healing --json`.
#[path = "integration/self_healing.rs"]
mod self_healing;
