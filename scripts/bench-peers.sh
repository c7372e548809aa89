#!/usr/bin/env bash
# flywheel beside the libraries a user would pick instead (implicit's ALS, popularity),
# on MovieLens 100K, same per-user 75/25 split, same metrics, in one run.
#
#   scripts/bench-peers.sh [extra `flywheel bench peers` flags, e.g. --seed 7]
#
# Creates a Python venv at target/bench-venv with implicit, numpy and scipy from PyPI
# (once), builds the release binary, and runs
#   target/release/flywheel bench peers --python target/bench-venv/bin/python
# Results: the table on stdout; target/bench-peers/{train,test}.tsv, peers.json, results.json.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$ROOT/target/bench-venv"
PYTHON="$VENV/bin/python"

if ! "$PYTHON" -c "import implicit, numpy, scipy, threadpoolctl" 2>/dev/null; then
    echo "bench-peers: setting up $VENV (python3 -m venv; pip install implicit numpy scipy threadpoolctl)" >&2
    python3 -m venv "$VENV" || { echo "bench-peers: python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
    "$PYTHON" -m pip install --quiet --upgrade pip || true
    if ! "$PYTHON" -m pip install --quiet implicit numpy scipy threadpoolctl; then
        echo "bench-peers: FAILED to install implicit from PyPI into $VENV; the peers' rows cannot be produced." >&2
        echo "bench-peers: flywheel's own rows alone: target/release/flywheel bench peers" >&2
        exit 1
    fi
    if ! "$PYTHON" -c "import implicit" ; then
        echo "bench-peers: FAILED: implicit installed but does not import (see the error above)." >&2
        exit 1
    fi
fi

cargo build --release -p flywheel
FLYWHEEL_BENCH_PEERS_SCRIPT="$ROOT/scripts/bench_peers.py" \
    "$TARGET/release/flywheel" bench peers --python "$PYTHON" "$@"
