#!/usr/bin/env bash
# The dashboard at `/`, in a real headless browser: Debian's Chromium driven by
# playwright-core (npm, pinned, cached under ~/.cache/flywheel/browser).
#
# A small simulated shop is imported into a fresh data dir and a first version is
# trained (seconds, not the quick-start's minutes); an admin key is created; the
# server starts on a free loopback port; a few recommendation requests and events
# are sent and an A/B experiment starts; then scripts/dashboard_browser.mjs keeps
# traffic flowing, loads `/`, types the key when the page asks for it, waits for the
# panels to show the request count and the serving version, checks the count grows
# with the live refreshes, and fails on any console error or uncaught exception. The screenshot goes
# to target/dashboard.png (FLYWHEEL_DASHBOARD_PNG=docs/dashboard.png refreshes the README's copy).
#
# Without Chromium (and no apt-get to install it), Node or npm, it prints one `SKIP`
# line and exits 0 (scripts/test.sh counts skips; CI=true makes a skip fail).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
binary=${1:-target/debug/flywheel}
playwright_version=1.65.1
cache=${FLYWHEEL_CACHE:-$HOME/.cache/flywheel}/browser
screenshot=${FLYWHEEL_DASHBOARD_PNG:-$root/target/dashboard.png}
requests=25

skip() {
  echo "SKIP scripts/check-dashboard: $1"
  if [ -n "${FLYWHEEL_SKIP_LOG:-}" ]; then
    echo "SKIP scripts/check-dashboard: $1" >>"$FLYWHEEL_SKIP_LOG"
  fi
  exit 0
}

chromium=${FLYWHEEL_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 ||
      skip "apt-get could not install chromium"
  fi
  [ -x "$chromium" ] || skip "no Chromium at $chromium (apt-get install chromium)"
fi
command -v node >/dev/null || skip "node is not installed (apt-get install nodejs npm)"
command -v npm >/dev/null || skip "npm is not installed (apt-get install npm)"
command -v curl >/dev/null || skip "curl is not installed"
installed=$(node -p "require('$cache/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$playwright_version" ]; then
  mkdir -p "$cache"
  (cd "$cache" && npm install --no-audit --no-fund --silent "playwright-core@$playwright_version" >/dev/null 2>&1) ||
    skip "npm could not install playwright-core@$playwright_version"
fi
[ -x "$binary" ] || cargo build --quiet -p flywheel

work=$(mktemp -d "${TMPDIR:-/tmp}/flywheel-dashboard.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

data="$work/data"
"$binary" simulate --out "$work/sim" --seed 11 --users 200 --items 150 --days 7 >/dev/null
for kind in items users events; do
  "$binary" import "$kind" --data-dir "$data" "$work/sim/$kind.jsonl" >/dev/null
done
"$binary" train --data-dir "$data" --force >/dev/null
version=$(cat "$data/models/CURRENT")
key=$("$binary" keys create --data-dir "$data" --scopes admin --name dashboard --json |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$binary" serve --data-dir "$data" --port "$port" >"$work/serve.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; echo "FAIL dashboard: the server exited" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { cat "$work/serve.log" >&2; echo "FAIL dashboard: the server is not ready" >&2; exit 1; }

auth="Authorization: Bearer $key"
for n in $(seq 1 "$requests"); do
  curl -fsS -H "$auth" "$base/v1/recommendations?user_id=$(printf 'u%05d' "$n")&count=10" >/dev/null
done
curl -fsS -H "$auth" -H 'Content-Type: application/json' -X POST "$base/v1/experiments" \
  -d '{"id":"dashboard-ab","kind":"ab","salt":"dashboard-ab","variants":[{"name":"control","share":0.5},{"name":"treatment","share":0.5}]}' >/dev/null
curl -fsS -H "$auth" -H 'Content-Type: application/json' -X POST "$base/v1/events" \
  -d '[{"user_id":"u00001","item_id":"i00001","action":"view"},{"user_id":"u00002","item_id":"i00002","action":"click"}]' >/dev/null

mkdir -p "$(dirname "$screenshot")"
FLYWHEEL_NODE_MODULES="$cache/node_modules" FLYWHEEL_CHROMIUM="$chromium" \
  node "$root/scripts/dashboard_browser.mjs" "$base/" "$key" "$requests" "$version" "$screenshot"
echo "dashboard: screenshot in ${screenshot#"$root"/}"
