#!/usr/bin/env bash
# Two API replicas serving one shop over real services on loopback (issue 12):
# a Kafka-protocol broker (tansu, scripts/start-broker.sh), Redis (scripts/ensure-redis.sh,
# keys under a prefix of this run's own) and an S3 server (moto, as scripts/check-s3.sh
# starts it). Replica A (`--redis-role writer`) and replica B (`reader`) share the log
# topic (`--kafka-log`), the secrets directory (`--kafka-secrets`), Redis and the bucket
# (`--object-store`); each has its own data dir. The shop is bootstrapped through A's API
# and trained by A (B fetches the version from the bucket). Then:
#
# 1. propagation: N single events (FLYWHEEL_CLUSTER_EVENTS, default 200), alternating the
#    replica they are sent to, each for a user whose list on the *other* replica holds
#    the item; that list is polled until the item has left it. p50/p99 and how many
#    within 1 s; FAIL if any takes over 10 s.
# 2. throughput and p99 of recommendations (`flywheel bench http`, open loop, the
#    servers' CPU from their own /proc counters): one embedded `flywheel serve` over the
#    same shop (its own log, no services) beside the pair, both replicas loaded at once.
# 3. SIGKILL under load: two loaders post event batches to A and record every
#    acknowledged event (distinctive user ids); A is killed with `kill -9` mid-load while
#    B answers recommendations (FAIL on any non-2xx from B); afterwards every acknowledged
#    event must be in the topic (`flywheel inspect --kafka-log`) and applied by B; A,
#    restarted over the same topic, catches up and serves.
#
# The binary is the debug build with --features kafka,redis,s3 (scripts/check-s3.sh
# builds the same one, so scripts/test.sh compiles it once). Prints PASS/FAIL lines and
# exits non-zero on a failure. When a service cannot be had (no broker binary, no Redis,
# no moto) it prints one `SKIP` line and exits 0, unless FLYWHEEL_REQUIRE_CLUSTER=1.
set -euo pipefail
cd "$(dirname "$0")/.."

events=${FLYWHEEL_CLUSTER_EVENTS:-200}
rate=${FLYWHEEL_CLUSTER_RATE:-100}
seconds=${FLYWHEEL_CLUSTER_SECONDS:-10}

# shellcheck source=scripts/lib-services.sh
. scripts/lib-services.sh
skip() { skip_check cluster FLYWHEEL_REQUIRE_CLUSTER "$1"; }
fail() {
  echo "FAIL scripts/cluster: $1" >&2
  for log in "$work"/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; grep -Ev '"GET /|^ *[0-9]+: |^ +at /' "$log" | tail -20 >&2; }
  done
  exit 1
}
pass() { echo "PASS cluster: $1"; }

command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
work=$(mktemp -d "${TMPDIR:-/tmp}/flywheel-cluster.XXXXXX")
pids=()
broker_dir=""
redis_prefix="flywheel-cluster-$$-$(date +%s)"
redis_port=${FLYWHEEL_REDIS_PORT:-6379}
stop_pid() { # pid: SIGTERM, then SIGKILL after 10 s (a replica whose broker is gone
  # may not finish shutting down)
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  # Newest first: the replicas before the services they use.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${pids[i]}"
  done
  if command -v redis-cli >/dev/null; then
    redis-cli -p "$redis_port" --scan --pattern "$redis_prefix:*" 2>/dev/null |
      xargs -r redis-cli -p "$redis_port" del >/dev/null 2>&1 || true
  fi
  [ -n "$broker_dir" ] && rm -rf "$broker_dir"
  if [ "${FLYWHEEL_CLUSTER_KEEP:-}" = 1 ]; then
    echo "cluster: kept $work (FLYWHEEL_CLUSTER_KEEP=1)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT


echo "== build (debug, --features kafka,redis,s3,parquet)"
cargo build --quiet -p flywheel --features kafka,redis,s3,parquet --locked
# A copy, so that another build into the same target dir cannot swap it mid-run.
cp "${CARGO_TARGET_DIR:-target}/debug/flywheel" "$work/flywheel"
binary="$work/flywheel"
checks=scripts/cluster_checks.py

echo "== services"
if [ -n "${FLYWHEEL_KAFKA_BROKERS:-}" ]; then
  brokers=$FLYWHEEL_KAFKA_BROKERS
else
  port=$(free_port)
  out=$(scripts/start-broker.sh "$port" 2>"$work/broker-start.log") ||
    skip "no Kafka-protocol broker: $(tail -1 "$work/broker-start.log")"
  pids+=("$(sed -n 's/.*(tansu pid \([0-9]*\)).*/\1/p' <<<"$out")")
  broker_dir=$(sed -n 's/^storage: \([^ ]*\).*/\1/p' <<<"$out")
  brokers="127.0.0.1:$port"
fi
scripts/ensure-redis.sh >"$work/redis-start.log" 2>&1 ||
  skip "no Redis: $(tail -1 "$work/redis-start.log")"
redis_url="redis://127.0.0.1:$redis_port"

start_s3
run_id="cluster-$$-$(date +%s)"
topic="$run_id"
store="s3://$bucket/$run_id"
secrets="$work/secrets"
echo "cluster: broker $brokers (log topic $topic), Redis $redis_url (prefix $redis_prefix), S3 $store at $FLYWHEEL_S3_ENDPOINT"

serve() { # name port [flags...] -> sets $serve_pid
  local name=$1 port=$2
  shift 2
  "$binary" serve --data-dir "$work/$name" --port "$port" --controller-every 0 "$@" \
    >>"$work/$name.log" 2>&1 &
  serve_pid=$!
  pids+=("$serve_pid")
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$serve_pid" 2>/dev/null || fail "replica $name exited"
    sleep 0.2
  done
  fail "replica $name did not start"
}
replica() { # name role port -> sets $serve_pid
  serve "$1" "$3" --kafka-brokers "$brokers" --kafka-log "$topic" --kafka-secrets "$secrets" \
    --redis "$redis_url" --redis-role "$2" --redis-prefix "$redis_prefix" \
    --object-store "$store" --object-store-poll-secs 1
}
metric() { # url name -> value
  curl -fsS "$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}
serving() { curl -fsS "$1/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["serving"])'; }
caught_up() { # url what: waits until ready and no consumer lag
  for _ in $(seq 1 600); do
    if curl -fsS "$1/readyz" >/dev/null 2>&1 && [ "$(metric "$1" flywheel_consumer_lag_records)" = 0 ]; then
      return 0
    fi
    sleep 0.2
  done
  fail "$2 did not catch up with the log"
}
wait_serving() { # url version what
  for _ in $(seq 1 300); do
    [ "$(serving "$1" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.2
  done
  fail "$3: serving $(serving "$1"), not $2"
}

echo "== the shop, two replicas"
"$binary" simulate --out "$work/sim" --seed 11 --users 300 --items 200 --days 7 >/dev/null
python3 -c 'import json,sys; print("\n".join(sorted({json.loads(l)["user_id"] for l in open(sys.argv[1]) if l.strip()})))' \
  "$work/sim/events.jsonl" >"$work/users.txt"
port_a=$(free_port)
port_b=$(free_port)
url_a="http://127.0.0.1:$port_a"
url_b="http://127.0.0.1:$port_b"
replica a writer "$port_a"
pid_a=$serve_pid
replica b reader "$port_b"
pid_b=$serve_pid
python3 "$checks" bootstrap "$url_a" "$work/sim" || fail "bootstrap through replica A"
"$binary" train --server "$url_a" --force >"$work/train.log" 2>&1 || fail "training on replica A"
wait_serving "$url_a" v1 "replica A after training"
wait_serving "$url_b" v1 "replica B (from the bucket)"
caught_up "$url_a" "replica A"
caught_up "$url_b" "replica B"
[ "$(metric "$url_a" flywheel_log_end_offset)" = "$(metric "$url_b" flywheel_log_end_offset)" ] ||
  fail "the replicas see different log ends"
pass "replicas A and B serve v1 over one topic ($(metric "$url_b" flywheel_log_end_offset) records), B's version fetched from the bucket"

echo "== 1. propagation between the replicas"
python3 "$checks" propagation "$url_a" "$url_b" "$work/users.txt" "$events" 10 | tee "$work/propagation.out" ||
  fail "propagation"
pass "propagation ($(grep -o 'p50.*' "$work/propagation.out" | head -1))"

echo "== 2. recommendations: one embedded process beside the pair"
for kind in items users events; do
  "$binary" import "$kind" --data-dir "$work/single" "$work/sim/$kind.jsonl" >/dev/null
done
"$binary" train --data-dir "$work/single" --force >/dev/null
port_s=$(free_port)
serve single "$port_s"
pid_s=$serve_pid
caught_up "http://127.0.0.1:$port_s" "the single process"
bench() { # label rate targets... (pids from $bench_pids)
  local label=$1 rate=$2
  shift 2
  local args=()
  for target in "$@"; do args+=(--target "$target"); done
  for pid in $bench_pids; do args+=(--server-pid "$pid"); done
  "$binary" bench http --users "$work/users.txt" --rate "$rate" --seconds "$seconds" \
    --label "$label" "${args[@]}" | tee -a "$work/bench.out" | grep -v '^json:' || fail "bench $label"
}
bench_pids="$pid_s" bench single "$rate" "127.0.0.1:$port_s"
stop_pid "$pid_s"
bench_pids="$pid_a $pid_b" bench "pair, same total rate" "$rate" "127.0.0.1:$port_a" "127.0.0.1:$port_b"
bench_pids="$pid_a $pid_b" bench "pair, each at the rate" "$((2 * rate))" "127.0.0.1:$port_a" "127.0.0.1:$port_b"
python3 - "$work/bench.out" <<'PY' || fail "the recommendation load had errors"
import json, sys
rows = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("json: ")]
print(f"{'setup':<28} {'rate':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11} {'non-200':>8}")
for r in rows:
    cpu = r["server_cpu_ms_per_request"]
    print(f"{r['label']:<28} {r['rate']:>6} {r['throughput']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
          f"{(f'{cpu:.3f}' if cpu is not None else '-'):>11} {r['errors']:>8}")
sys.exit(1 if any(r["errors"] for r in rows) else 0)
PY
pass "recommendation load on the single process and on the pair, no errors"

echo "== 3. SIGKILL of replica A under load"
item=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["id"])' "$work/sim/items.jsonl")
python3 "$checks" kill-load "$url_a" "$url_b" "$work/users.txt" "$item" 4 4 "$work/acked.txt" "$pid_a" ||
  fail "SIGKILL under load"
wait "$pid_a" 2>/dev/null || true
pass "replica B kept serving through the SIGKILL of A (0 non-2xx)"
end=""
for _ in $(seq 1 300); do
  end=$(metric "$url_b" flywheel_log_end_offset)
  [ "$(metric "$url_b" flywheel_consumer_lag_records)" = 0 ] && break
  sleep 0.2
done
"$binary" inspect --data-dir "$work/inspect" --kafka-brokers "$brokers" --kafka-log "$topic" \
  --kafka-secrets "$secrets" --records 100000000 >"$work/dump.txt" 2>"$work/inspect.log" ||
  fail "reading the topic back"
python3 "$checks" verify "$work/acked.txt" "$work/dump.txt" || fail "acknowledged events lost"
topic_end=$(sed -n 's/^partition 0: offsets 0\.\.\([0-9]*\)$/\1/p' "$work/dump.txt")
[ "$end" -ge "$topic_end" ] 2>/dev/null || fail "replica B's log end $end is behind the topic's $topic_end"
pass "every event A acknowledged before the kill is in the topic; B applied the topic to its end ($end)"
serve a "$port_a" --kafka-brokers "$brokers" --kafka-log "$topic" --kafka-secrets "$secrets" \
  --redis "$redis_url" --redis-role writer --redis-prefix "$redis_prefix" \
  --object-store "$store" --object-store-poll-secs 1
caught_up "$url_a" "replica A after its restart"
curl -fsS "$url_a/v1/recommendations?user_id=$(head -1 "$work/users.txt")&count=10" >/dev/null ||
  fail "replica A does not serve after its restart"
pass "replica A restarted over the topic, caught up and serves"

echo "== 4. erasure in the cluster: DELETE on replica A reaches the topic, Redis and the bucket"
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet boto3 >/dev/null 2>&1 ||
  skip "python3 has no boto3 and pip could not install it (needed to scan the bucket)"
canary="erasure-canary-$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
python3 - "$url_a" "$canary" "$item" <<'PY' || fail "posting the canary's events through replica A"
import json, sys, urllib.request
url, user, item = sys.argv[1:]
body = json.dumps([{"user_id": user, "item_id": item, "action": a} for a in ("view", "click", "purchase")]).encode()
req = urllib.request.Request(f"{url}/v1/events:batch", data=body, headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=30).read()
PY
caught_up "$url_a" "replica A after the canary's events"
curl -fsS -X POST "$url_a/v1/admin/snapshot" >/dev/null || fail "POST /v1/admin/snapshot on replica A"
places=("data-dir-a=$work/a" "secrets=$secrets")
[ -n "${broker_dir:-}" ] && places+=("broker=$broker_dir")
cluster_scan() {
  python3 scripts/erasure_scan.py "$canary" "$redis_port" "$redis_prefix" "$bucket" "$run_id" "${places[@]}"
}
for _ in $(seq 1 100); do
  cluster_scan >"$work/erase-before.txt" 2>/dev/null || true
  grep -q '^redis ' "$work/erase-before.txt" && grep -q '^secrets ' "$work/erase-before.txt" && break
  sleep 0.2
done
grep -q '^secrets ' "$work/erase-before.txt" || fail "before the erasure the secrets directory does not hold the canary"
grep -q '^redis ' "$work/erase-before.txt" || fail "before the erasure Redis does not hold the canary"
if grep -q '^broker ' "$work/erase-before.txt"; then
  fail "the broker's storage holds the canary's plain id: $(grep '^broker ' "$work/erase-before.txt" | head -3 | tr '\n' ' ')"
fi
echo "ok: before the erasure the id is in $(wc -l <"$work/erase-before.txt") places ($(cut -d' ' -f1 "$work/erase-before.txt" | sort | uniq -c | tr -s ' \n' ' ')), never in the broker's storage"
job=$(curl -fsS -X DELETE "$url_a/v1/users/$canary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
  fail "DELETE /v1/users/$canary on replica A"
state=""
for _ in $(seq 1 600); do
  curl -fsS "$url_a/v1/jobs/$job" >"$work/erase-job.json" || fail "GET /v1/jobs/$job"
  state=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$work/erase-job.json")
  case "$state" in succeeded | failed) break ;; esac
  sleep 0.2
done
[ "$state" = succeeded ] || fail "the erasure job ended $state: $(cat "$work/erase-job.json")"
sleep 3
cluster_scan >"$work/erase-after.txt" 2>"$work/erase-counts.txt" || fail "the scan after the erasure: $(cat "$work/erase-counts.txt")"
[ -s "$work/erase-after.txt" ] && fail "after the erasure the id is still in: $(tr '\n' ' ' <"$work/erase-after.txt")"
python3 - "$work/erase-job.json" <<'PY' || fail "the erasure report: $(cat "$work/erase-job.json")"
import json, sys
targets = json.load(open(sys.argv[1]))["erasure"]["targets"]
print("erasure report targets:", json.dumps(targets, sort_keys=True))
assert targets.get("kafka", {}).get("secrets_destroyed") == 1, "the Kafka secret was not destroyed"
assert targets["kafka"].get("tombstones") == 1, "no tombstone on the topic"
assert targets.get("redis", {}).get("keys_deleted", 0) > 0, "Redis deleted no key"
PY
pass "erasure on replica A: the secret destroyed, a tombstone on the topic, no byte of A's data dir, the secrets, the broker's storage, $(grep redis-keys "$work/erase-counts.txt" | cut -d' ' -f3) Redis keys or $(grep bucket-objects "$work/erase-counts.txt" | cut -d' ' -f3) objects holds the id"
echo "cluster: PASS"
