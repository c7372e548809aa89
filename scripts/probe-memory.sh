#!/usr/bin/env bash
# Measures the server's memory under hostile request bodies, on the release binary
# over real HTTP: peak RSS growth (VmHWM, reset before each case through
# /proc/PID/clear_refs) and the RSS left afterwards, per case.
#
#   scripts/probe-memory.sh            # builds target/release/flywheel if needed
#   FLYWHEEL_BIN=path/to/flywheel scripts/probe-memory.sh
#
# Linux only (reads /proc). Needs python3 (standard library only). Run it as the
# user that owns the server process. Figures depend on the allocator: glibc keeps
# some freed memory (per-thread arenas, its dynamic mmap threshold); try
# MALLOC_ARENA_MAX=2 or MALLOC_MMAP_THRESHOLD_=131072 in the environment to compare.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${FLYWHEEL_BIN:-target/release/flywheel}
if [[ -z ${FLYWHEEL_BIN:-} ]]; then
    cargo build --release --locked -p flywheel >&2
fi
DATA=$(mktemp -d)
PORT=${PORT:-18080}
cleanup() {
    if [[ -n ${SERVER:-} ]]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$DATA"
}
trap cleanup EXIT

printf '[log]\nfsync = false\n' >"$DATA/flywheel.toml"
"$BIN" serve --data-dir "$DATA/data" --config "$DATA/flywheel.toml" --port "$PORT" >"$DATA/server.log" 2>&1 &
SERVER=$!

python3 - "$SERVER" "$PORT" <<'EOF'
import http.client, json, sys, threading, time

pid, port = int(sys.argv[1]), int(sys.argv[2])
MIB = 1 << 20

def status_kib(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise SystemExit(f"no {field} for process {pid}")

def request(method, path, body=b"", content_type="application/json"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": content_type})
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered (e.g. 413) and closed before the whole body was sent
    try:
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return "reset", b""
    finally:
        conn.close()

for _ in range(300):
    try:
        if request("GET", "/readyz")[0] == 200:
            break
    except OSError:
        pass
    time.sleep(0.1)
else:
    raise SystemExit("the server never became ready")

def batch_of(event, size):
    one = json.dumps(event, separators=(",", ":")).encode()
    n = size // (len(one) + 1) - 1
    return b"[" + b",".join([one] * n) + b"]", n

tiny, tiny_n = batch_of({"user_id": "u1", "item_id": "i1", "action": "view"}, 16 * MIB)
tiny_quarter, _ = batch_of({"user_id": "u1", "item_id": "i1", "action": "view"}, 4 * MIB)
padded_event = {"user_id": "user-00042", "item_id": "item-000123", "action": "click",
                "timestamp": "2026-01-05T10:00:00Z", "context": {"page": "home", "device": "x"}}
padded_event["context"]["device"] = "d" * (168 - len(json.dumps(padded_event, separators=(",", ":"))))
padded, padded_n = batch_of(padded_event, 16 * MIB)
empties = b"[" + b",".join([b"{}"] * 100_000) + b"]"
huge_event = (b'{"user_id":"u","item_id":"i","action":"view","context":{"k":"v"'
              + b"".join(b',"k%d":"v"' % i for i in range(1_000_000)) + b"}}")
big_item = json.dumps({"category": "c", "text": "t" * (16 * MIB - 100)}).encode()

cases = [
    ("100k {} (400)", [("POST", "/v1/events", empties)]),
    (f"16 MiB, {tiny_n} tiny events (400: > max_batch_events)", [("POST", "/v1/events", tiny)]),
    (f"{tiny_n // 4} tiny events", [("POST", "/v1/events", tiny_quarter)]),
    ("one event with a 1M-entry context (400)", [("POST", "/v1/events", huge_event)]),
    (f"16 MiB, {padded_n} events (200)", [("POST", "/v1/events", padded)]),
    ("16 MiB item (413)", [("PUT", "/v1/items/big", big_item)]),
    ("4 x 16 MiB events at once", [("POST", "/v1/events", padded)] * 4),
]

baseline = status_kib("VmRSS:")
print(f"baseline RSS {baseline / 1024:.1f} MiB")
print(f"{'case':<58} {'statuses':<16} {'peak growth':>12} {'x bodies':>8} {'RSS after':>10}")
for name, requests in cases:
    time.sleep(1.0)
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    before = status_kib("VmRSS:")
    statuses = [None] * len(requests)
    def run(i, req):
        statuses[i] = request(*req)[0]
    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1.0)  # let the consumer apply what was accepted
    peak = status_kib("VmHWM:")
    after = status_kib("VmRSS:")
    bodies = sum(len(r[2]) for r in requests)
    growth = (peak - before) * 1024
    print(f"{name:<58} {','.join(map(str, statuses)):<16} {growth / MIB:>8.1f} MiB"
          f" {growth / bodies:>7.1f}x {after / 1024:>6.1f} MiB")
EOF
