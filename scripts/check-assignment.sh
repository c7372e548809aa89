#!/usr/bin/env bash
# Experiment assignment, checked against Python's `mmh3` (PyPI), the reference
# MurmurHash3 implementation: for a definition with a named layer, partial traffic and
# three uneven shares, `flywheel experiment assign` must give every user the layer
# bucket, variant bucket and variant that mmh3 and the documented formula give:
#   layer bucket   = mmh3("<layer>:<user>", seed 0, unsigned) % 10000, in the
#                    experiment iff < round(10000 · traffic);
#   variant bucket = mmh3("<salt>:<user>", seed 0, unsigned) % 10000, variant i iff
#                    below round(10000 · cumulative share of variants 0..=i).
# mmh3 is installed into a cached venv (target/pyenv); without Python or PyPI the check
# is skipped and says so (a skip fails CI).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/flywheel}

skip() {
  echo "SKIP scripts/check-assignment: $1"
  if [ -n "${FLYWHEEL_SKIP_LOG:-}" ]; then
    echo "SKIP scripts/check-assignment: $1" >>"$FLYWHEEL_SKIP_LOG"
  fi
  exit 0
}

command -v python3 >/dev/null || skip "python3 is not installed"
venv=target/pyenv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 cannot create a venv (apt install python3-venv)"
fi
if ! "$venv/bin/python" -c "import mmh3" 2>/dev/null; then
  "$venv/bin/pip" install --quiet mmh3 >/dev/null 2>&1 || skip "pip could not install mmh3 from PyPI"
fi
[ -x "$binary" ] || cargo build --quiet -p flywheel

work=$(mktemp -d "${TMPDIR:-/tmp}/flywheel-assign.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/def.json" <<'JSON'
{"id": "check", "kind": "ab", "salt": "s-1", "layer": "home", "traffic": 0.37,
 "variants": [{"name": "a", "share": 0.2}, {"name": "b", "share": 0.3}, {"name": "c", "share": 0.5}]}
JSON
"$venv/bin/python" - "$work" <<'PY' >"$work/users.txt"
import sys
for i in range(3000):
    print(f"user-{i}")
for i in range(200):
    print(f"ü-{i}-名前")
PY
mapfile -t users <"$work/users.txt"
"$binary" experiment assign --file "$work/def.json" "${users[@]}" >"$work/ours.jsonl"
"$venv/bin/python" - "$work" <<'PY'
import json, sys, mmh3
work = sys.argv[1]
definition = json.load(open(f"{work}/def.json"))
shares = [v["share"] for v in definition["variants"]]
bounds, total = [], 0.0
for share in shares:
    total += share
    bounds.append(round(10000 * total))
bounds[-1] = 10000
traffic_end = round(10000 * definition["traffic"])
checked = 0
for line in open(f"{work}/ours.jsonl", encoding="utf-8"):
    ours = json.loads(line)
    user = ours["user_id"]
    layer = mmh3.hash(f"{definition['layer']}:{user}".encode(), 0, signed=False) % 10000
    bucket = mmh3.hash(f"{definition['salt']}:{user}".encode(), 0, signed=False) % 10000
    inside = layer < traffic_end
    variant = next(v["name"] for v, b in zip(definition["variants"], bounds) if bucket < b)
    expected = (layer, bucket, inside, variant if inside else None)
    got = (ours["layer_bucket"], ours["variant_bucket"], ours["in_experiment"], ours["variant"])
    if expected != got:
        sys.exit(f"assignment of {user!r}: mmh3 says {expected}, flywheel says {got}")
    checked += 1
if checked != 3200:
    sys.exit(f"expected 3200 users, flywheel printed {checked}")
print(f"assignment: {checked} users match Python mmh3 (layer and variant buckets, variants)")
PY
