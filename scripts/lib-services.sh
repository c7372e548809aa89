# Sourced by the check scripts that need loopback services (check-s3.sh,
# check-erasure.sh, cluster.sh). The caller defines `skip MESSAGE`, `fail MESSAGE`, the
# array `pids` (killed by its cleanup) and `$work` (its scratch directory); the two
# helpers below are what their `skip` and `fail` call.

# Skips check NAME loudly (a SKIP line, also in $FLYWHEEL_SKIP_LOG), or fails it when
# the environment variable REQUIRE is 1.
skip_check() { # NAME REQUIRE MESSAGE
  if [ "${!2:-}" = 1 ]; then
    echo "FAIL scripts/$1: $3 ($2=1)" >&2
    exit 1
  fi
  echo "SKIP scripts/$1: $3"
  if [ -n "${FLYWHEEL_SKIP_LOG:-}" ]; then
    echo "SKIP scripts/$1: $3" >>"$FLYWHEEL_SKIP_LOG"
  fi
  exit 0
}

# Fails check NAME with MESSAGE and the tail of every log in $work.
fail_check() { # NAME MESSAGE
  echo "FAIL scripts/$1: $2" >&2
  for log in "$work"/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -30 "$log" >&2; }
  done
  exit 1
}

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# An S3-compatible endpoint with bucket $bucket (FLYWHEEL_S3_BUCKET, default
# flywheel-test): FLYWHEEL_S3_ENDPOINT when set, else a moto server started on a free port
# (pip-installing moto[server] when missing). Sets FLYWHEEL_S3_ENDPOINT, `bucket` and the
# AWS_* variables the object store reads, all exported.
start_s3() {
  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
  export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
  export AWS_REGION=${AWS_REGION:-us-east-1}
  export AWS_ALLOW_HTTP=true
  bucket=${FLYWHEEL_S3_BUCKET:-flywheel-test}
  if [ -z "${FLYWHEEL_S3_ENDPOINT:-}" ]; then
    if ! command -v moto_server >/dev/null; then
      echo "installing moto[server] with pip"
      python3 -m pip install --quiet 'moto[server]' >/dev/null 2>&1 ||
        skip "moto_server is missing and pip could not install moto[server]"
      hash -r
      command -v moto_server >/dev/null || skip "moto[server] installed but moto_server is not on PATH"
    fi
    local port
    port=$(free_port)
    moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
    pids+=($!)
    FLYWHEEL_S3_ENDPOINT="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
      curl -fsS "$FLYWHEEL_S3_ENDPOINT/" >/dev/null 2>&1 && break
      sleep 0.2
    done
    curl -fsS "$FLYWHEEL_S3_ENDPOINT/" >/dev/null 2>&1 || fail "moto_server did not start"
    curl -fsS -X PUT "$FLYWHEEL_S3_ENDPOINT/$bucket" >/dev/null || fail "could not create bucket $bucket"
  fi
  export FLYWHEEL_S3_ENDPOINT FLYWHEEL_S3_BUCKET=$bucket AWS_ENDPOINT_URL=$FLYWHEEL_S3_ENDPOINT
}
