#!/usr/bin/env bash
# Test peers: Debian's docker-registry (distribution 2.8), twice, state in temp dirs:
#   - anonymous on 127.0.0.1:${REGISTRY_PORT:-5055}
#   - htpasswd Basic auth (user "puller", password "pullpass") on 127.0.0.1:${REGISTRY_AUTH_PORT:-5056}
# Also makes sure skopeo is installed (the tests use it to seed the peers).
# Idempotent: reuses servers already answering. Prints `export` lines for `eval`.
set -euo pipefail
PORT="${REGISTRY_PORT:-5055}"
AUTH_PORT="${REGISTRY_AUTH_PORT:-5056}"
USER_NAME=puller
USER_PASS=pullpass
need_apt=()
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi
# Go programs must not use the machine's AWS CA bundle override.
unset AWS_CA_BUNDLE

answers() { curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" 2>/dev/null | grep -qE '^(200|401)$'; }

start() { # port auth(0|1)
  local port="$1" auth="$2" state
  state="$(mktemp -d /tmp/workflow-docker-registry.XXXXXX)"
  mkdir -p "$state/data"
  local auth_block=""
  if [ "$auth" = 1 ]; then
    python3 -c 'import bcrypt' 2>/dev/null || python3 -m pip install --quiet bcrypt >&2
    python3 - "$USER_NAME" "$USER_PASS" >"$state/htpasswd" <<'PY'
import sys, bcrypt
print(f"{sys.argv[1]}:{bcrypt.hashpw(sys.argv[2].encode(), bcrypt.gensalt(rounds=5)).decode()}")
PY
    auth_block="auth:
  htpasswd:
    realm: workflow-test
    path: $state/htpasswd"
  fi
  cat >"$state/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$auth_block
YML
  nohup docker-registry serve "$state/config.yml" >"$state/registry.log" 2>&1 &
  for _ in $(seq 1 100); do answers "$port" && break; sleep 0.2; done
  answers "$port" || { echo "docker-registry did not start on $port; log in $state/registry.log" >&2; exit 1; }
  echo "$state" >"/tmp/workflow-docker-registry-$port.state"
}

answers "$PORT" || start "$PORT" 0
answers "$AUTH_PORT" || start "$AUTH_PORT" 1
echo "export WORKFLOW_TEST_PEER_REGISTRY=127.0.0.1:${PORT}"
echo "export WORKFLOW_TEST_PEER_REGISTRY_AUTH=127.0.0.1:${AUTH_PORT}"
echo "export WORKFLOW_TEST_PEER_REGISTRY_USER=${USER_NAME}"
echo "export WORKFLOW_TEST_PEER_REGISTRY_PASSWORD=${USER_PASS}"
