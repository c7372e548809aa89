#!/usr/bin/env bash
# What the ranker's training rows do to the ranker gate on the quick-start shop: one
# `flywheel train` per setting on the same log, each printing the gate's NDCG@10 with
# the ranker against the fused retrieval order (500 gate users, so ±0.01 is noise).
#
#   scripts/bench-ranker-rows.sh [WORK_DIR]      # default target/bench-ranker-rows
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="${1:-$ROOT/target/bench-ranker-rows}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/flywheel"
cargo build --release -p flywheel
rm -rf "$WORK" && mkdir -p "$WORK"
"$BIN" simulate --out "$WORK/shop" --seed 7 >/dev/null
"$BIN" import items "$WORK/shop/items.jsonl" --data-dir "$WORK/base" >/dev/null
"$BIN" import users "$WORK/shop/users.jsonl" --data-dir "$WORK/base" >/dev/null
"$BIN" import events "$WORK/shop/events.jsonl" --data-dir "$WORK/base" >/dev/null

run() {
  local name=$1 settings=$2
  local dir="$WORK/$name"
  mkdir -p "$dir" && cp -r "$WORK/base/log" "$dir/"
  printf '%b' "$settings" >"$dir/config.toml"
  local gate
  gate=$("$BIN" train --data-dir "$dir" --config "$dir/config.toml" |
    sed -n 's/.*with ranker ndcg@10 \([0-9.]*\) vs retrieval order \([0-9.]*\) -> \(ranker [a-z]*\).*/\1 \2 \3/p')
  printf '%-44s %s\n' "$name" "$gate"
}

printf '%-44s %s\n' "rows" "gate: ranker, fused order, verdict"
run logistic-60-rows-per-anchor '[training]\nranker = "logistic"\nranker_rows_per_anchor = 60\n'
run logistic-200-rows-per-anchor '[training]\nranker = "logistic"\n'
run gbdt-60-rows-per-anchor '[training]\nranker_rows_per_anchor = 60\n'
run gbdt-200-rows-per-anchor-default ''
run gbdt-60-rows-12000-anchors '[training]\nranker_rows_per_anchor = 60\nranker_anchor_events = 12000\n'
run gbdt-prior-fused-score '[training.gbdt]\nprior_feature = "channel_score_squashed"\n'
