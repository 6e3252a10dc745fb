#!/usr/bin/env bash
# Controller REST throughput: authenticated GET /v2/apps/<app>/ against `workflow up`,
# with GET /healthz on the same server as the same-run baseline (same HTTP stack,
# no auth, no store). Prints requests/s and the ratio; asserts nothing.
#
#   bash benches/controller-rest.sh [seconds]     (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p workflow-cli
WORK="$(mktemp -d)"
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
./target/release/workflow up --random-ports --data-dir "$WORK/wf" >"$WORK/up.log" 2>&1 &
PID=$!
for _ in $(seq 200); do [ -f "$WORK/wf/endpoints.json" ] && break; sleep 0.1; done
URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["controller"])' "$WORK/wf/endpoints.json")"
export HOME="$WORK/home"
./target/release/deis register "$URL" --username bench --password bench >/dev/null
./target/release/deis create bench --no-remote >/dev/null
TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$HOME/.deis/client.json")"

rps() { wrk -t2 -c64 -d"${SECS}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
echo "warming up..."; rps -H "Authorization: token $TOKEN" "$URL/v2/apps/bench/" >/dev/null
APP="$(rps -H "Authorization: token $TOKEN" "$URL/v2/apps/bench/")"
BASE="$(rps "$URL/healthz")"
python3 - "$APP" "$BASE" <<'PY'
import sys
app, base = float(sys.argv[1]), float(sys.argv[2])
print(f"authenticated GET /v2/apps/<app>/: {app:,.0f} req/s (target >= 5,000: {'met' if app >= 5000 else 'MISSED'})")
print(f"baseline GET /healthz (same server): {base:,.0f} req/s")
print(f"ratio app/baseline: {app / base:.2f}")
PY
