#!/usr/bin/env bash
# Makes sure a Kafka-protocol broker binary (tansu, built from crates.io source) is in the
# cache outside the clone, ~/.cache/flywheel/tansu/bin/tansu (override: FLYWHEEL_TANSU).
# The Kafka tests start their own brokers from it; scripts/start-broker.sh starts one
# for `flywheel serve --kafka-brokers`. Building it takes about 10 minutes on 2 cores,
# once; it says so loudly. Prints the binary's path on its last line.
set -euo pipefail

cache="${HOME}/.cache/flywheel/tansu"
tansu="${FLYWHEEL_TANSU:-$cache/bin/tansu}"

if [ -x "$tansu" ]; then
  echo "ensure-broker: tansu at $tansu"
  echo "$tansu"
  exit 0
fi
if [ -n "${FLYWHEEL_TANSU:-}" ]; then
  echo "ensure-broker: FLYWHEEL_TANSU=$FLYWHEEL_TANSU is not an executable" >&2
  exit 1
fi
echo "ensure-broker: no tansu at $tansu" >&2
echo "ensure-broker: BUILDING IT NOW: cargo install tansu --version 0.6.0 --locked --features libsql" >&2
echo "ensure-broker: THIS TAKES ABOUT 10 MINUTES THE FIRST TIME (cached afterwards)" >&2
mkdir -p "$cache"
# A target directory of its own, so the build neither reuses nor locks the workspace's.
# A test broker needs no optimiser: opt-level 0 without debug info or LTO builds in about
# half the time of tansu's release profile (440 CPU-s against ~1000 measured here).
CARGO_TARGET_DIR="$cache/target" \
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=false \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
  CARGO_PROFILE_RELEASE_STRIP=true \
  cargo install tansu --version 0.6.0 --locked --features libsql --root "$cache" >&2
rm -rf "$cache/target"
echo "ensure-broker: built $tansu"
echo "$tansu"
