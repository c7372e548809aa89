#!/usr/bin/env bash
# The Parquet event lake end to end, read by DuckDB: a simulated shop is imported into
# a data dir; `flywheel serve --lake` exports continuously while recommendations are
# served and clicked (so impressions and joined outcomes exist); `flywheel lake export`
# then exports the same log once to a second lake. DuckDB (PyPI `duckdb`, in a cached
# venv target/pyenv-lake) must find, in both lakes, the log's own counts (`flywheel
# inspect --records`): rows per table, events per action, distinct users, slots served,
# and every click sent with a request id joined to its slot in `outcomes`.
# Without Python or PyPI the check is skipped LOUDLY (a skip fails CI).
# Builds flywheel with `--features kafka,redis,s3,parquet` (target/debug/flywheel); an argument names
# another flywheel binary built with the feature.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  echo "SKIP scripts/check-lake: $1"
  if [ -n "${FLYWHEEL_SKIP_LOG:-}" ]; then
    echo "SKIP scripts/check-lake: $1" >>"$FLYWHEEL_SKIP_LOG"
  fi
  exit 0
}

command -v python3 >/dev/null || skip "python3 is not installed"
command -v curl >/dev/null || skip "curl is not installed"
venv=target/pyenv-lake
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 cannot create a venv (apt install python3-venv)"
fi
if ! "$venv/bin/python" -c "import duckdb" 2>/dev/null; then
  "$venv/bin/pip" install --quiet duckdb >/dev/null 2>&1 || skip "pip could not install duckdb from PyPI"
fi

bin=${1:-}
if [ -z "$bin" ]; then
  # The features check-s3.sh and check-erasure.sh build too: test.sh compiles it once.
  cargo build --quiet -p flywheel --features kafka,redis,s3,parquet --locked
  bin=${CARGO_TARGET_DIR:-target}/debug/flywheel
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/flywheel-lake.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" simulate --out "$work/sim" --seed 11 --users 300 --items 200 --days 5 >/dev/null
for kind in items users events; do
  "$bin" import "$kind" --data-dir "$work/data" "$work/sim/$kind".* >/dev/null
done

port=$((20000 + RANDOM % 20000))
"$bin" serve --data-dir "$work/data" --port "$port" --controller-every 0 \
  --lake "$work/lake-live" --lake-flush-secs 1 --lake-max-rows-per-file 3000 \
  >"$work/serve.log" 2>&1 &
server=$!
url="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  if curl -sf "$url/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -sf "$url/readyz" >/dev/null || { cat "$work/serve.log"; echo "the server never got ready" >&2; exit 1; }

# Recommendations for 40 users, a click on the second slot of each list, then one view
# two days later so that the attribution windows of these requests close.
"$venv/bin/python" - "$url" "$work/sim" <<'PY'
import json, sys, time, urllib.error, urllib.request
url, sim = sys.argv[1], sys.argv[2]
users = []
with open(f"{sim}/users.jsonl") as f:
    for line in f:
        users.append(json.loads(line)["id"])
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path} answered {e.code}: {e.read().decode()}")
now = int(time.time())
clicks = 0
for user in users[:40]:
    rec = call("GET", f"/v1/recommendations?user_id={user}&count=5")
    if len(rec["items"]) < 2:
        continue
    item = rec["items"][1]
    call("POST", "/v1/events", {"user_id": user, "item_id": item["item_id"], "action": "click",
                                "timestamp": now, "request_id": rec["request_id"], "position": 1})
    clicks += 1
item = rec["items"][0]["item_id"]
call("POST", "/v1/events", {"user_id": users[0], "item_id": item, "action": "view",
                            "timestamp": now + 2 * 86400})
print(f"served 40 lists, sent {clicks} clicks with their request ids")
PY
sleep 2
kill -TERM "$server"
wait "$server" || true
server=""

"$bin" lake export --data-dir "$work/data" --lake "$work/lake" --max-rows-per-file 5000
"$bin" inspect --data-dir "$work/data" --records 100000000 >"$work/log.txt"

"$venv/bin/python" - "$work/log.txt" "$work/lake" "$work/lake-live" <<'PY'
import collections, json, re, sys
import duckdb

log_path, lakes = sys.argv[1], sys.argv[2:]
kinds = collections.Counter()
actions = collections.Counter()
users = set()
slots = 0
clicks_with_request = collections.Counter()
served = {}
for line in open(log_path):
    m = re.match(r"^  (\d+): (\{.*\})$", line.rstrip("\n"))
    if not m:
        continue
    record = json.loads(m.group(2))
    kind = record["type"]
    kinds[kind] += 1
    if kind == "event":
        actions[record["action"]] += 1
        users.add(record["user_id"])
        # The joiner counts a click on a list it has seen: the impression writer logs
        # lists off the request path, so a fast click can precede its impression.
        if record["action"] == "click" and record.get("request_id") in served:
            clicks_with_request[(record["request_id"], record.get("position"))] += 1
    elif kind in ("impression", "shadow_impression"):
        slots += max(1, len(record["slots"]))
        if kind == "impression":
            served[record["request_id"]] = len(record["slots"])
catalog = sum(kinds[k] for k in ("item_upsert", "item_delete", "user_upsert", "user_delete"))
joinable = sum(clicks_with_request.values())
print(f"log: {dict(kinds)}; {len(users)} distinct users; {slots} slots; {joinable} clicks on served lists")
assert kinds["impression"] > 0 and joinable > 0, "the live part made no impressions or clicks"

failed = False
def check(what, ours, expected):
    global failed
    ok = ours == expected
    failed |= not ok
    print(f"  {'ok  ' if ok else 'FAIL'} {what}: lake {ours}, log {expected}")

for lake in lakes:
    print(f"{lake}:")
    con = duckdb.connect()
    def q(sql):
        return con.execute(sql).fetchall()
    def table(name):
        return f"read_parquet('{lake}/{name}/*/*/*.parquet', hive_partitioning = true)"
    check("events rows", q(f"SELECT count(*) FROM {table('events')}")[0][0], kinds["event"])
    check("catalog rows", q(f"SELECT count(*) FROM {table('catalog')}")[0][0], catalog)
    check("impression rows (slots)", q(f"SELECT count(*) FROM {table('impressions')}")[0][0], slots)
    check("impressions", q(f"SELECT count(DISTINCT log_offset) FROM {table('impressions')} WHERE NOT shadow")[0][0],
          kinds["impression"])
    check("events per action", dict(q(f"SELECT action, count(*) FROM {table('events')} GROUP BY action")),
          dict(actions))
    check("distinct users", q(f"SELECT count(DISTINCT user_id) FROM {table('events')}")[0][0], len(users))
    check("distinct offsets = rows",
          q(f"SELECT count(DISTINCT log_offset) FROM {table('events')}")[0][0], kinds["event"])
    check("clicks joined in outcomes", int(q(f"SELECT coalesce(sum(clicks), 0) FROM {table('outcomes')}")[0][0]),
          joinable)
    check("partition = timestamp hour",
          q(f"SELECT count(*) FROM {table('events')} WHERE dt <> strftime(timestamp AT TIME ZONE 'UTC', '%Y-%m-%d') "
            f"OR CAST(hour AS INTEGER) <> hour(timestamp AT TIME ZONE 'UTC')")[0][0], 0)
if failed:
    sys.exit("check-lake: the lake disagrees with the log")
print("check-lake: both lakes agree with the log")
PY
