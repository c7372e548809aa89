#!/usr/bin/env bash
# Makes sure a Redis answers on 127.0.0.1:6379 (or $FLYWHEEL_REDIS_PORT) for the Redis
# feature store and its tests. Says loudly what it did or could not do.
# - something answers `redis-cli ping` there: nothing to do;
# - otherwise starts `redis-server` on loopback, keeping nothing on disk (no RDB, no AOF),
#   daemonized, and waits until it answers;
# - installs redis-server with apt-get first when the binary is missing (needs root).
set -uo pipefail
port="${FLYWHEEL_REDIS_PORT:-6379}"

answers() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]
  else
    # No client: speak the protocol by hand.
    exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    read -r -t 2 reply <&3 || reply=""
    exec 3>&-
    [ "${reply%$'\r'}" = "+PONG" ]
  fi
}

if answers; then
  echo "ensure-redis: Redis already answers on 127.0.0.1:$port"
  exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "ensure-redis: no redis-server binary; installing it with apt-get" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get install -y redis-server >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 && apt-get install -y redis-server >/dev/null 2>&1; }
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get install -y redis-server >/dev/null 2>&1 ||
      { sudo apt-get update >/dev/null 2>&1 && sudo apt-get install -y redis-server >/dev/null 2>&1; }
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "ensure-redis: FAILED: could not install redis-server (apt-get install -y redis-server); the Redis tests will be SKIPPED" >&2
    exit 1
  fi
  echo "ensure-redis: installed $(redis-server --version | head -1)"
fi

echo "ensure-redis: starting redis-server on 127.0.0.1:$port (nothing kept on disk)"
redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
  --logfile "${TMPDIR:-/tmp}/flywheel-redis-$port.log" >/dev/null
for _ in $(seq 1 50); do
  if answers; then
    echo "ensure-redis: Redis answers on 127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "ensure-redis: FAILED: redis-server started but does not answer on 127.0.0.1:$port (see ${TMPDIR:-/tmp}/flywheel-redis-$port.log)" >&2
exit 1
