#!/usr/bin/env bash
# flywheel-ann's HNSW side by side with hnswlib (PyPI) in one run, on the 200K×64 anchor
# vectors of ../shared/research/ann_anchor.py: both build with M = 16,
# ef_construction = 200 on every core and search with ONE thread, k = 10.
#
#   scripts/bench-ann.sh [--anchor PATH_TO_ann_anchor.py]
#
# Makes target/bench-venv-ann (numpy + hnswlib), generates the vectors once into
# target/ann-anchor, runs hnswlib's bench, then `flywheel bench ann`, and prints both
# tables side by side (QPS at recall@10 >= 0.90 / 0.95 / 0.99, build s, memory).
set -euo pipefail
cd "$(dirname "$0")/.."

ANCHOR=../shared/research/ann_anchor.py
if [ "${1:-}" = "--anchor" ]; then ANCHOR=$2; fi
[ -f "$ANCHOR" ] || { echo "bench-ann: $ANCHOR not found (pass --anchor PATH)" >&2; exit 1; }
VENV=target/bench-venv-ann
DATA=target/ann-anchor

if ! "$VENV/bin/python" -c "import numpy, hnswlib" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet numpy hnswlib
fi
if [ ! -f "$DATA/manifest.json" ] || [ ! -f "$DATA/gt10.ivecs" ]; then
  "$VENV/bin/python" "$ANCHOR" gen --out "$DATA"
fi
cargo build --release --locked -p flywheel
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== hnswlib"
"$VENV/bin/python" "$ANCHOR" bench --data "$DATA" --lib hnswlib --json "$DATA/hnswlib.json" \
  --save "$DATA/hnswlib.index" > /dev/null
# hnswlib's CPU time per query at the efs where it reached each recall (same passes).
EFS=$("$VENV/bin/python" -c "import json,sys; a=json.load(open(sys.argv[1]))['anchors']; print(','.join(str(r['ef']) for r in a.values() if r))" "$DATA/hnswlib.json")
"$VENV/bin/python" scripts/bench_ann_cpu.py --anchor "$ANCHOR" --data "$DATA" --index "$DATA/hnswlib.index" \
  --efs "$EFS" --json "$DATA/hnswlib-cpu.json" > /dev/null
echo "== flywheel-ann"
target/release/flywheel bench ann --data "$DATA" --json "$DATA/flywheel.json"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

"$VENV/bin/python" - "$DATA/hnswlib.json" "$DATA/flywheel.json" "$DATA/hnswlib-cpu.json" <<'PY'
import json, sys
peer, ours, peer_cpu = (json.load(open(p)) for p in sys.argv[1:4])
cpu_by_ef = {r["ef"]: r["cpu_us_per_query"] for r in peer_cpu["rows"]}
for row in peer["anchors"].values():
    if row and row["ef"] in cpu_by_ef:
        row["cpu_us_per_query"] = cpu_by_ef[row["ef"]]

def cell(row):
    if not row:
        return "not reached"
    cpu = f", {row['cpu_us_per_query']:.0f} µs CPU" if "cpu_us_per_query" in row else ""
    return f"{row['qps'] / 1000:.2f}k (ef {row['ef']}{cpu})"

print()
print("| index | build s | memory MiB | QPS @ recall@10 ≥ 0.90 | ≥ 0.95 | ≥ 0.99 |")
print("|---|---|---|---|---|---|")
print(f"| hnswlib {peer['version']} | {peer['build_s']:.1f} | {peer['rss_growth_mib']:.0f} (RSS growth) | "
      + " | ".join(cell(peer["anchors"][t]) for t in ("0.90", "0.95", "0.99")) + " |")
for run in ours["runs"]:
    print(f"| flywheel-ann {run['storage']} | {ours['build_s']:.1f} ({ours['build_cpu_s']:.0f} CPU s) | "
          f"{run['index_mib']:.0f} held, {ours['rss_growth_mib']:.0f} RSS growth | "
          + " | ".join(cell(run["anchors"][t]) for t in ("0.90", "0.95", "0.99")) + " |")
p95, o95 = peer["anchors"]["0.95"], ours["runs"][0]["anchors"]["0.95"]
if p95 and o95:
    print(f"\nat recall@10 >= 0.95, flywheel-ann f32 / hnswlib: single-thread QPS {o95['qps'] / p95['qps']:.2f}x"
          + (f", CPU per query {o95['cpu_us_per_query'] / p95['cpu_us_per_query']:.2f}x" if "cpu_us_per_query" in p95 else ""))
PY
