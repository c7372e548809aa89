#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests.
# Needs only a Rust toolchain; installs nothing else for the default build.
#
# Tests that need a dataset the repository may not carry (MovieLens 100K: set
# FLYWHEEL_DATASETS to a folder holding ml-100k/, else ../shared/data is used) or the
# shared reference folder (../shared/reference) skip without it, and say so: each skip is
# one `SKIP <test>: <reason>` line, counted and listed after cargo test's own summary.
# With CI=true any skip fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== rustc version"
# The workspace's rust-version, from the [workspace.package] table of Cargo.toml.
required=$(awk '
  /^\[/ { in_pkg = ($0 == "[workspace.package]") }
  in_pkg && /^rust-version[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); print; exit }
' Cargo.toml)
found=$(rustc --version | awk '{ print $2 }')
if [ -z "$required" ]; then
  echo "no rust-version in Cargo.toml's [workspace.package]" >&2
  exit 1
fi
# a.b[.c] -> a number that orders like the version (pre-release suffixes ignored)
version_key() {
  local IFS=.
  local -a v
  read -r -a v <<<"${1%%-*}"
  echo $((${v[0]:-0} * 1000000 + ${v[1]:-0} * 1000 + ${v[2]:-0}))
}
if [ "$(version_key "$found")" -lt "$(version_key "$required")" ]; then
  echo "rustc $found is older than the workspace's rust-version $required" >&2
  exit 1
fi
echo "rustc $found >= rust-version $required: ok"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== dependency rules"
./scripts/check-deps.sh

echo "== services the adapter tests need (Redis; a Kafka-protocol broker binary)"
# Each prints loudly what it installs, builds or cannot get; a test whose service is
# missing skips with a SKIP line (a failure under CI=true).
./scripts/ensure-redis.sh || echo "test.sh: NO REDIS: the Redis tests will skip" >&2
./scripts/ensure-broker.sh >/dev/null || echo "test.sh: NO BROKER: the Kafka tests will skip" >&2

echo "== cargo test"
skip_log=$(mktemp "${TMPDIR:-/tmp}/flywheel-test-skips.XXXXXX")
trap 'rm -f "$skip_log"' EXIT
export FLYWHEEL_SKIP_LOG="$skip_log"
status=0
cargo test --workspace --locked --no-fail-fast || status=$?

echo "== experiment assignment against Python mmh3"
./scripts/check-assignment.sh || status=$?

echo "== the API against its OpenAPI document (schemathesis)" && ./scripts/check-openapi.sh || status=$?

echo "== imported LightGBM/XGBoost models against the Python libraries"
./scripts/check-imported-models.sh || status=$?

echo "== model versions and snapshots through S3 (moto)"
./scripts/check-s3.sh || status=$?

echo "== two replicas over Kafka, Redis and S3 (propagation, SIGKILL, throughput)"
./scripts/cluster.sh || status=$?

echo "== the dashboard in headless Chromium"
./scripts/check-dashboard.sh || status=$?

echo "== the Parquet lake read by DuckDB (the one kafka,redis,s3,parquet build)"
./scripts/check-lake.sh || status=$?

echo "== erasure through Redis, the lake and S3 (moto): no byte of the id left anywhere"
./scripts/check-erasure.sh || status=$?

echo "== skipped tests"
skipped=$(grep -c '^SKIP ' "$skip_log" || true)
echo "skipped: $skipped"
if [ "$skipped" -gt 0 ]; then
  sort "$skip_log"
fi
if [ "$status" -ne 0 ]; then
  echo "cargo test failed (exit $status)" >&2
  exit "$status"
fi
case "${CI:-}" in
  true | 1)
    if [ "$skipped" -gt 0 ]; then
      echo "CI=$CI: a test that skips is a failure here (CI has ../shared beside the clone)" >&2
      exit 1
    fi
    ;;
esac
