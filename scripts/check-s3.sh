#!/usr/bin/env bash
# Model versions and snapshots through S3-compatible storage (the `s3` feature),
# against a real S3 server: FLYWHEEL_S3_ENDPOINT when set (with AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY and a bucket FLYWHEEL_S3_BUCKET that exists), otherwise a
# moto server (PyPI `moto[server]`, pip-installed when missing) started on a free
# loopback port, its bucket created over HTTP.
#
# 1. flywheel-objstore's tests against that server (publish, fetch, hot-swap between
#    two engines, truncated and half-published versions refused, erasure byte scan);
# 2. end to end with the binary: replica A trains v1 and serves with --object-store
#    (it publishes v1); replica B, over another data dir, serves with --object-store
#    and picks v1 up; A trains v2 while B is down; one object of v2 is truncated in
#    the bucket; B restarted refuses it and keeps serving v1; repaired, B swaps to v2.
#
# Without moto (no pip, no network) it prints one `SKIP` line and exits 0, unless
# FLYWHEEL_REQUIRE_S3=1 (then it fails).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib-services.sh
. scripts/lib-services.sh
skip() { skip_check check-s3 FLYWHEEL_REQUIRE_S3 "$1"; }
fail() { fail_check check-s3 "$1"; }

command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
work=$(mktemp -d "${TMPDIR:-/tmp}/flywheel-s3.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT


start_s3
echo "check-s3: S3 at $FLYWHEEL_S3_ENDPOINT, bucket $bucket"

echo "== flywheel-objstore tests against $FLYWHEEL_S3_ENDPOINT"
FLYWHEEL_REQUIRE_S3=1 cargo test --quiet -p flywheel-objstore --locked

echo "== transfer figures (a ${FLYWHEEL_S3_BENCH_MB:-64} MB model version in 4 files; boto3 on one such file as the reference)"
cargo test --quiet -p flywheel-objstore --locked --test integration -- --ignored --nocapture transfer_figures 2>&1 |
  grep '^objstore transfer' || fail "the transfer figures did not print"
file_mb=$(( ${FLYWHEEL_S3_BENCH_MB:-64} / 4 ))
head -c "$(( file_mb * 1048576 ))" /dev/urandom >"$work/blob"
python3 - "$work/blob" "$bucket" "$file_mb" <<'PY' || fail "the boto3 reference failed"
import sys, time, os, boto3
path, bucket, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
s3 = boto3.client("s3", endpoint_url=os.environ["FLYWHEEL_S3_ENDPOINT"], region_name=os.environ["AWS_REGION"])
data = open(path, "rb").read()
t = time.perf_counter(); s3.put_object(Bucket=bucket, Key="boto3-reference", Body=data); up = time.perf_counter() - t
t = time.perf_counter(); got = s3.get_object(Bucket=bucket, Key="boto3-reference")["Body"].read(); down = time.perf_counter() - t
assert got == data
s3.delete_object(Bucket=bucket, Key="boto3-reference")
print(f"boto3 reference (one {mb} MB object, no checksum of ours): PUT {up:.2f} s = {mb/up:.1f} MB/s; GET {down:.2f} s = {mb/down:.1f} MB/s")
PY
rm -f "$work/blob"

echo "== two replicas through the bucket"
# The build check-lake.sh, check-erasure.sh and cluster.sh make too: test.sh compiles it once.
cargo build --quiet -p flywheel --features kafka,redis,s3,parquet --locked
binary="${CARGO_TARGET_DIR:-target}/debug/flywheel"
prefix="e2e-$$-$(date +%s)"
store="s3://$bucket/$prefix"

"$binary" simulate --out "$work/sim" --seed 11 --users 200 --items 150 --days 7 >/dev/null
for replica in a b; do
  for kind in items users events; do
    "$binary" import "$kind" --data-dir "$work/$replica" "$work/sim/$kind.jsonl" >/dev/null
  done
done
"$binary" train --data-dir "$work/a" --force >/dev/null

serve() { # replica -> sets $serve_pid and $serve_url
  local port
  port=$(free_port)
  "$binary" serve --data-dir "$work/$1" --port "$port" --object-store "$store" \
    --object-store-poll-secs 1 >>"$work/$1.log" 2>&1 &
  serve_pid=$!
  pids+=("$serve_pid")
  serve_url="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    curl -fsS "$serve_url/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$serve_pid" 2>/dev/null || fail "replica $1 exited"
    sleep 0.2
  done
  fail "replica $1 did not start"
}
serving() { curl -fsS "$1/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["serving"])'; }
wait_serving() { # url version what
  for _ in $(seq 1 300); do
    [ "$(serving "$1")" = "$2" ] && return 0
    sleep 0.2
  done
  fail "$3: still serving $(serving "$1"), not $2"
}
s3get() { # key -> stdout (moto refuses unsigned GETs of objects)
  python3 -c 'import os,sys,boto3; sys.stdout.buffer.write(boto3.client("s3", endpoint_url=os.environ["FLYWHEEL_S3_ENDPOINT"], region_name=os.environ["AWS_REGION"]).get_object(Bucket=sys.argv[1], Key=sys.argv[2])["Body"].read())' "$bucket" "$prefix/$1"
}
remote_current() { s3get models/CURRENT 2>/dev/null || true; }
s3put() { # key file
  python3 -c 'import os,sys,boto3; boto3.client("s3", endpoint_url=os.environ["FLYWHEEL_S3_ENDPOINT"], region_name=os.environ["AWS_REGION"]).put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=open(sys.argv[3],"rb").read())' "$bucket" "$prefix/$1" "$2"
}

serve a
url_a=$serve_url
for _ in $(seq 1 300); do [ "$(remote_current)" = v1 ] && break; sleep 0.2; done
[ "$(remote_current)" = v1 ] || fail "replica a did not publish v1"
serve b
pid_b=$serve_pid
url_b=$serve_url
wait_serving "$url_b" v1 "replica b over its own data dir"
echo "ok: replica b serves v1, published by replica a"

kill "$pid_b"
wait "$pid_b" 2>/dev/null || true
"$binary" train --server "$url_a" --force >/dev/null
for _ in $(seq 1 300); do [ "$(remote_current)" = v2 ] && break; sleep 0.2; done
[ "$(remote_current)" = v2 ] || fail "replica a did not publish v2"
biggest=$(s3get models/v2/files.json |
  python3 -c 'import json,sys; print(max(json.load(sys.stdin)["files"], key=lambda f: f["size"])["name"])')
s3get "models/v2/$biggest" >"$work/good"
head -c 100 "$work/good" >"$work/truncated"
s3put "models/v2/$biggest" "$work/truncated"

serve b
url_b=$serve_url
for _ in $(seq 1 300); do grep -q "damaged download" "$work/b.log" && break; sleep 0.2; done
grep -q "damaged download of $prefix/models/v2/$biggest\|damaged download of models/v2/$biggest" "$work/b.log" ||
  fail "replica b did not report the truncated models/v2/$biggest"
[ "$(serving "$url_b")" = v1 ] || fail "replica b swapped to a truncated version"
[ ! -e "$work/b/models/v2" ] || fail "the truncated version was installed in b's registry"
echo "ok: the truncated models/v2/$biggest is refused, replica b keeps serving v1"

s3put "models/v2/$biggest" "$work/good"
wait_serving "$url_b" v2 "replica b after the repair"
echo "ok: repaired, replica b swaps to v2"
echo "check-s3: PASS"
