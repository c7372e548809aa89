#!/usr/bin/env bash
# Runs every fuzz target for RUNS iterations (default 1,000,000), two at a time at
# most, from seed corpora made by code, and prints one line of figures per target.
# Needs the nightly toolchain and cargo-fuzz; never part of the normal test suite.
#
#   fuzz/run-all.sh [RUNS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
runs="${1:-1000000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(event_body import_files log_recovery eval_files)
if ! cargo +nightly --version >/dev/null 2>&1 || ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "SKIP fuzzing: needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz --locked)"
  exit 0
fi
# No sanitizer: flywheel forbids unsafe code, and the targets run about twice as fast.
cargo +nightly fuzz build -s none
bin=target/x86_64-unknown-linux-gnu/release
cargo +nightly run --release --example seeds
mkdir -p logs
run_one() {
  local target="$1"
  mkdir -p "artifacts/$target"
  local start=$SECONDS status=0
  "$bin/$target" "corpus/$target" -runs="$runs" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -max_total_time=3600 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"logs/$target.log" 2>&1 || status=$?
  local done_line
  done_line=$(grep -E '^Done [0-9]+ runs' "logs/$target.log" | tail -1 || true)
  printf '%s: %s (wall %ss, exit %s), corpus %s files, artifacts %s\n' \
    "$target" "${done_line:-no Done line}" "$((SECONDS - start))" "$status" \
    "$(ls "corpus/$target" | wc -l)" "$(ls "artifacts/$target" | wc -l)"
}
running=0
for target in "${targets[@]}"; do
  run_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge 2 ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
