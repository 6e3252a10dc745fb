#!/usr/bin/env bash
# Measures a large `git push` over SSH against the same push over smart HTTP (the baseline),
# each into a fresh `workflow up`: wall time and the growth of the workflow process's peak RSS
# while the pack streams through. The push goes to a non-deploy branch, so only the transport
# is measured (no build). Not part of the test suite.
#   cargo build -p workflow-cli && bash scripts/git-push-rss.sh [MiB, default 100]
set -euo pipefail
MIB="${1:-100}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${WF_BIN_DIR:-$ROOT/target/debug}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

measure() { # transport -> prints "seconds peak_growth_kB"
  local t="$1" dir="$WORK/$1"
  mkdir -p "$dir/home"
  export HOME="$dir/home"
  "$BIN/workflow" up --random-ports --data-dir "$dir/wf" >"$dir/up.log" 2>&1 &
  local wp=$!
  for _ in $(seq 1 300); do [ -f "$dir/wf/endpoints.json" ] && break; sleep 0.1; done
  local eps="$dir/wf/endpoints.json"
  local ctl; ctl=$(python3 -c "import json;print(json.load(open('$eps'))['controller'])")
  "$BIN/deis" register "$ctl" --username alice --password s3cret >/dev/null
  ssh-keygen -q -t ed25519 -N "" -f "$dir/key"
  "$BIN/deis" keys:add "$dir/key.pub" >/dev/null
  mkdir "$dir/src"; cd "$dir/src"; git init -q -b main
  cp "$WORK/big.bin" .; echo "web: sleep 1000" > Procfile
  git add -A; git -c user.name=t -c user.email=t@e commit -qm big
  "$BIN/deis" create big >/dev/null 2>&1
  local before; before=$(awk '/VmHWM/{print $2}' /proc/$wp/status)
  local url
  if [ "$t" = http ]; then
    local gh tok
    gh=$(python3 -c "import json;print(json.load(open('$eps'))['git_http'])")
    tok=$(python3 -c "import json;print(json.load(open('$HOME/.deis/client.json'))['token'])")
    url="${gh/http:\/\//http://alice:$tok@}/big.git"
  else
    url=deis
  fi
  local start end
  start=$(date +%s.%N)
  GIT_SSH_COMMAND="ssh -i $dir/key -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" \
    git push -q "$url" main:measured >"$dir/push.log" 2>&1
  end=$(date +%s.%N)
  local after; after=$(awk '/VmHWM/{print $2}' /proc/$wp/status)
  kill "$wp"; wait "$wp" 2>/dev/null || true
  cd "$ROOT"
  python3 -c "print(f'{$end-$start:.2f} {$after-$before}')"
}

head -c $((MIB * 1024 * 1024)) /dev/urandom > "$WORK/big.bin"
read -r ht hg < <(measure http)
read -r st sg < <(measure ssh)
echo "push of ${MIB} MiB   http (baseline): ${ht}s, peak RSS +${hg} kB"
echo "                     ssh:             ${st}s, peak RSS +${sg} kB"
python3 -c "print(f'ssh/http time ratio: {$st/$ht:.2f}')"
