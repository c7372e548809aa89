#!/usr/bin/env bash
# Erasure end to end, through every store `flywheel serve` can write: the data dir, Redis
# (`--redis`), the Parquet lake (`--lake`) and S3-compatible storage (`--object-store`,
# a moto server started like check-s3.sh does, or FLYWHEEL_S3_ENDPOINT).
#
# A user with a distinctive id (`erasure-canary-<random hex>`) is upserted, sends events
# and is served a list; a model is trained and promoted (published to the bucket) and a
# snapshot taken (`POST /v1/admin/snapshot`, published too). The id must then be found
# in each of the four places (so the scan can fail); after `DELETE /v1/users/{id}` and
# its job, every byte of the data dir, every key and value under the Redis prefix,
# every object in the bucket and every file of the lake is scanned, and the check FAILS
# if the id (or its URL-encoded form) is anywhere. The job's report must name what each
# target removed.
#
# Builds flywheel with `--features kafka,redis,s3,parquet` (the build check-s3.sh and
# check-lake.sh make too, so test.sh compiles the binary once). Without moto or Redis it
# prints one `SKIP` line and exits 0, unless FLYWHEEL_REQUIRE_S3=1 (then it fails).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib-services.sh
. scripts/lib-services.sh
skip() { skip_check check-erasure FLYWHEEL_REQUIRE_S3 "$1"; }
fail() { fail_check check-erasure "$1"; }

command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
work=$(mktemp -d "${TMPDIR:-/tmp}/flywheel-erasure.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "${redis_prefix:-}" ] && command -v redis-cli >/dev/null; then
    redis-cli -p "$redis_port" --scan --pattern "$redis_prefix:*" |
      xargs -r -n 500 redis-cli -p "$redis_port" DEL >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT


redis_port=${FLYWHEEL_REDIS_PORT:-6379}
./scripts/ensure-redis.sh >"$work/ensure-redis.out" 2>&1 ||
  skip "no Redis on 127.0.0.1:$redis_port ($(tail -1 "$work/ensure-redis.out"))"

start_s3
python3 -c 'import boto3' 2>/dev/null || skip "python3 has no boto3 (pip install boto3) to read the bucket"

cargo build --quiet -p flywheel --features kafka,redis,s3,parquet --locked
binary=${CARGO_TARGET_DIR:-target}/debug/flywheel

hex=$(python3 -c 'import secrets; print(secrets.token_hex(6))')
user="erasure-canary-$hex"
prefix="erasure-check-$hex"
store="s3://$bucket/$prefix"
redis_prefix="flywheel-erasure-check-$hex"
data="$work/data"
lake="$work/lake"
echo "check-erasure: user $user; Redis prefix $redis_prefix; $store; S3 at $FLYWHEEL_S3_ENDPOINT"

"$binary" simulate --out "$work/sim" --seed 5 --users 150 --items 120 --days 5 >/dev/null
for kind in items users events; do
  "$binary" import "$kind" --data-dir "$data" "$work/sim/$kind.jsonl" >/dev/null
done

port=$(free_port)
url="http://127.0.0.1:$port"
"$binary" serve --data-dir "$data" --port "$port" --controller-every 0 \
  --redis "redis://127.0.0.1:$redis_port" --redis-prefix "$redis_prefix" \
  --lake "$lake" --lake-flush-secs 1 \
  --object-store "$store" --object-store-poll-secs 1 >"$work/serve.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 1 300); do
  curl -fsS "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || fail "flywheel serve exited"
  sleep 0.2
done
curl -fsS "$url/readyz" >/dev/null 2>&1 || fail "the server never got ready"

# The canary: a catalog entry, events on popular items (so training gives them
# factors), a served list and a click on it.
python3 - "$url" "$user" "$work/sim" <<'PY' || fail "posting the canary's data failed"
import collections, json, sys, time, urllib.error, urllib.request
url, user, sim = sys.argv[1:]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path} answered {e.code}: {e.read().decode()}")
counts = collections.Counter()
with open(f"{sim}/events.jsonl") as f:
    for line in f:
        counts[json.loads(line)["item_id"]] += 1
items = [item for item, _ in counts.most_common(12)]
call("PUT", f"/v1/users/{user}", {"id": user, "attributes": {"country": "zz"}})
now = int(time.time())
for i, item in enumerate(items):
    for action in ("view", "click"):
        call("POST", "/v1/events", {"user_id": user, "item_id": item, "action": action,
                                    "timestamp": now - 3600 + 60 * i})
rec = call("GET", f"/v1/recommendations?user_id={user}&count=5")
if rec["items"]:
    call("POST", "/v1/events", {"user_id": user, "item_id": rec["items"][0]["item_id"],
                                "action": "click", "timestamp": now,
                                "request_id": rec["request_id"], "position": 0})
print(f"canary: {2 * len(items)} events, a list of {len(rec['items'])}")
PY

"$binary" train --server "$url" --force >"$work/train.out" 2>&1 || fail "training failed: $(tail -3 "$work/train.out")"
curl -fsS -X POST "$url/v1/admin/snapshot" >/dev/null || fail "POST /v1/admin/snapshot failed"

# Where the id is, one line per place it was found ("<place> <what>").
scan() {
  python3 scripts/erasure_scan.py "$user" "$redis_port" "$redis_prefix" "$bucket" "$prefix" \
    "data-dir=$data" "lake=$lake"
}

# Before: the id must be in each place (the exporter, the Redis writer and the sync
# thread work in the background: wait for them).
for _ in $(seq 1 150); do
  scan >"$work/before.txt" 2>/dev/null || true
  missing=""
  for place in data-dir lake redis bucket; do
    grep -q "^$place " "$work/before.txt" || missing="$missing $place"
  done
  if [ -z "$missing" ] && grep -q '^bucket .*/models/' "$work/before.txt" &&
    grep -q '^bucket .*/snapshots/' "$work/before.txt"; then
    break
  fi
  sleep 0.2
done
[ -z "$missing" ] || fail "before the erasure the id was not found in:$missing ($(tr '\n' ' ' <"$work/before.txt"))"
grep -q '^bucket .*/models/' "$work/before.txt" || fail "no published model version holds the id before the erasure"
grep -q '^bucket .*/snapshots/' "$work/before.txt" || fail "no published snapshot holds the id before the erasure"
echo "ok: before the erasure the id is in $(wc -l <"$work/before.txt") places: $(cut -d' ' -f1 "$work/before.txt" | sort | uniq -c | tr -s ' \n' ' ')"

job=$(curl -fsS -X DELETE "$url/v1/users/$user" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
  fail "DELETE /v1/users/$user failed"
state=""
for _ in $(seq 1 600); do
  curl -fsS "$url/v1/jobs/$job" >"$work/job.json" || fail "GET /v1/jobs/$job failed"
  state=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$work/job.json")
  case "$state" in succeeded | failed) break ;; esac
  sleep 0.2
done
[ "$state" = succeeded ] || fail "the erasure job ended $state: $(cat "$work/job.json")"
# Background threads (the exporter, the sync) must not bring the id back either.
sleep 3
scan >"$work/after.txt" 2>"$work/after-counts.txt" || fail "the scan after the erasure failed: $(cat "$work/after-counts.txt")"
if [ -s "$work/after.txt" ]; then
  fail "after the erasure the id is still in: $(tr '\n' ' ' <"$work/after.txt")"
fi
echo "ok: after the erasure no byte of the data dir, the lake, $(grep redis-keys "$work/after-counts.txt" | cut -d' ' -f3) Redis keys or $(grep bucket-objects "$work/after-counts.txt" | cut -d' ' -f3) objects holds the id"
# What each target says it removed (after the scan, which is the proof).
python3 - "$work/job.json" <<'PY' || fail "the erasure report does not say what each target removed: $(cat "$work/job.json")"
import json, sys
report = json.load(open(sys.argv[1]))["erasure"]
targets = report["targets"]
print("erasure report targets:", json.dumps(targets, sort_keys=True))
for name in ("redis", "lake", "object_store"):
    assert name in targets, f"no {name} in the report"
assert targets["redis"].get("keys_deleted", 0) > 0, "redis deleted no key"
assert sum(v for k, v in targets["lake"].items() if k.startswith("rows_")) > 0, "the lake lost no row"
assert targets["object_store"].get("versions_replaced", 0) > 0, "no published version replaced"
PY

curl -fsS "$url/v1/recommendations?user_id=other-user&count=3" >/dev/null || fail "serving failed after the erasure"
echo "check-erasure: PASS"
