#!/usr/bin/env bash
# The dependency rules of ARCHITECTURE.md, checked:
# 1. the domain crates (everything below the server) pull in no async runtime and no
#    HTTP stack (tokio, axum, hyper, tower) — only the server crate speaks HTTP;
# 2. every workspace dependency runs from a higher layer to a lower one, never back.
# Backend adapter crates (Kafka, Redis, object store) may own a private runtime behind
# a synchronous seam; list them in ADAPTERS when they exist.
set -euo pipefail
cd "$(dirname "$0")/.."

# crate:layer, bottom first. A crate may depend only on crates of a lower layer.
LAYERS="
flywheel-core:0 flywheel-log:0 flywheel-eval:0 flywheel-monitor:0 flywheel-ann:0
flywheel-experiments:1 flywheel-features:1 flywheel-retrieval:1 flywheel-ranking:1 flywheel-import:1 flywheel-sim:1 flywheel-controller:1 flywheel-kafka:1
flywheel-pipeline:2 flywheel-lake:2 flywheel-redis:2
flywheel-registry:3 flywheel-offline:3
flywheel-engine:4
flywheel-server:5 flywheel-objstore:5
flywheel:6
"
HTTP_CRATES="flywheel-server flywheel"
ADAPTERS="flywheel-redis flywheel-kafka flywheel-objstore"

declare -A layer
for entry in $LAYERS; do
  layer[${entry%%:*}]=${entry##*:}
done

failed=0
for dir in crates/*/; do
  name=$(basename "$dir")
  if [ -z "${layer[$name]:-}" ]; then
    echo "check-deps: crate $name has no layer in scripts/check-deps.sh" >&2
    failed=1
    continue
  fi
  tree=$(cargo tree -p "$name" -e normal --prefix none --locked)
  direct=$(cargo tree -p "$name" -e normal --depth 1 --prefix none --locked)
  for dep in $(echo "$direct" | awk 'NR > 1 && /^flywheel/ { print $1 }' | sort -u); do
    if [ "${layer[$dep]:-99}" -ge "${layer[$name]}" ]; then
      echo "check-deps: $name (layer ${layer[$name]}) depends on $dep (layer ${layer[$dep]:-?})" >&2
      failed=1
    fi
  done
  case " $HTTP_CRATES $ADAPTERS " in
    *" $name "*) continue ;;
  esac
  async=$(echo "$tree" | awk '{ print $1 }' | grep -xE 'tokio|axum|hyper|tower|tower-http' |
    sort -u | tr '\n' ' ' || true)
  if [ -n "$async" ]; then
    echo "check-deps: domain crate $name pulls in $async" >&2
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "check-deps: FAILED" >&2
  exit 1
fi
echo "check-deps: ${#layer[@]} crates, layers respected, no async or HTTP below the server"
