#!/usr/bin/env bash
# Starts a Kafka-protocol broker (tansu) on loopback for flywheel's Kafka tests and
# `flywheel serve --kafka-brokers`. The broker is built once and cached outside the
# clone, in ~/.cache/flywheel/tansu (override: FLYWHEEL_TANSU=/path/to/tansu).
#
#   scripts/start-broker.sh [PORT]      (default 19092)
#
# Prints the address, the storage directory and how to stop it. Then, e.g.:
#   FLYWHEEL_KAFKA_BROKERS=127.0.0.1:19092 FLYWHEEL_KAFKA_STORAGE=<dir> \
#     cargo test -p flywheel-kafka
# (without FLYWHEEL_KAFKA_BROKERS the tests start their own broker from the cache).
set -euo pipefail

port="${1:-19092}"
tansu="$("$(dirname "$0")/ensure-broker.sh" | tail -1)"

answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

if answers; then
  echo "start-broker: something already answers on 127.0.0.1:$port; not starting another" >&2
  exit 1
fi

data="$(mktemp -d "${TMPDIR:-/tmp}/flywheel-broker.XXXXXX")"
url="tcp://127.0.0.1:$port"
# tansu reads sqlite://a/b.db as a path relative to its working directory (an absolute
# path would lose its leading slash), so it runs inside $data with a relative path.
mkdir -p "$data/store"
(cd "$data" && exec nohup "$tansu" broker --listener-url "$url" --advertised-listener-url "$url" \
  --storage-engine "sqlite://store/tansu.db" >"$data/tansu.log" 2>&1) &
pid=$!
echo "$pid" >"$data/tansu.pid"

for _ in $(seq 1 600); do
  if answers; then
    echo "broker: 127.0.0.1:$port (tansu pid $pid)"
    echo "storage: $data (log: $data/tansu.log)"
    echo "use:   FLYWHEEL_KAFKA_BROKERS=127.0.0.1:$port FLYWHEEL_KAFKA_STORAGE=$data"
    echo "stop:  kill $pid && rm -rf $data"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start-broker: tansu exited; its log:" >&2
    cat "$data/tansu.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "start-broker: tansu did not answer on 127.0.0.1:$port within 60 s (pid $pid, log $data/tansu.log)" >&2
exit 1
