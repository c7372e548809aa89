#!/usr/bin/env bash
# Imported rankers, checked against the Python libraries themselves: LightGBM and
# XGBoost (PyPI `lightgbm`, `xgboost-cpu`, with numpy and pandas) train four seeded
# models with missing values and categorical splits (scripts/imported_models.py):
# LightGBM binary (sigmoid 0.7) and lambdarank (zero_as_missing), XGBoost
# binary:logistic and rank:ndcg (hist, enable_categorical). For each,
# `flywheel ranker predict --json` on the model's rows must equal the library's own
# `predict` to max(1e-6 absolute, 1e-6 relative); the worst error per model is printed.
# The packages go into a cached venv (target/pyenv-imported); without Python or PyPI
# the check is skipped and says so (a skip fails CI). An argument names another
# flywheel binary to check (default: target/debug/flywheel, built first).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-}

skip() {
  echo "SKIP scripts/check-imported-models: $1"
  if [ -n "${FLYWHEEL_SKIP_LOG:-}" ]; then
    echo "SKIP scripts/check-imported-models: $1" >>"$FLYWHEEL_SKIP_LOG"
  fi
  exit 0
}

command -v python3 >/dev/null || skip "python3 is not installed"
venv=target/pyenv-imported
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 cannot create a venv (apt install python3-venv)"
fi
if ! "$venv/bin/python" -c "import lightgbm, xgboost, numpy, pandas" 2>/dev/null; then
  "$venv/bin/pip" install --quiet lightgbm xgboost-cpu numpy pandas >/dev/null 2>&1 ||
    skip "pip could not install lightgbm, xgboost-cpu, numpy and pandas from PyPI"
fi
if [ -z "$binary" ]; then
  # A no-op when the binary is fresh; never score with a stale build.
  cargo build --quiet -p flywheel
  binary=target/debug/flywheel
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/flywheel-imported.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" scripts/imported_models.py "$work"

for model in lgb_binary.txt lgb_rank.txt xgb_binary.json xgb_rank.json; do
  case "$model" in
    *.txt) format=lightgbm ;;
    *) format=xgboost ;;
  esac
  "$binary" ranker predict --model "$work/$model" --format "$format" \
    --rows "$work/$model.rows.csv" --json >"$work/$model.flywheel.json"
done

"$venv/bin/python" - "$work" <<'PY'
import json, math, sys
work = sys.argv[1]
failed = False
for model in ["lgb_binary.txt", "lgb_rank.txt", "xgb_binary.json", "xgb_rank.json"]:
    expected = json.load(open(f"{work}/{model}.expected.json"))
    ours = json.load(open(f"{work}/{model}.flywheel.json"))
    if len(ours) != len(expected):
        print(f"{model}: flywheel printed {len(ours)} predictions for {len(expected)} rows")
        failed = True
        continue
    worst, worst_row, mismatches = 0.0, 0, 0
    for row, (want, got) in enumerate(zip(expected, ours)):
        error = abs(got - want) if got is not None else math.inf
        if error > max(1e-6, 1e-6 * abs(want)):
            mismatches += 1
            if mismatches <= 5:
                print(f"{model} row {row}: library {want!r}, flywheel {got!r}")
        if error > worst:
            worst, worst_row = error, row
    status = "ok" if mismatches == 0 else f"{mismatches} MISMATCHES"
    print(f"{model}: {len(ours)} rows, worst |error| {worst:.3g} (row {worst_row}): {status}")
    failed |= mismatches > 0
versions = json.load(open(f"{work}/versions.json"))
print(f"imported models: lightgbm {versions['lightgbm']}, xgboost {versions['xgboost']}")
sys.exit(1 if failed else 0)
PY
