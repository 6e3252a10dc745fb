#!/usr/bin/env bash
# Test peer: an S3 server (moto) on 127.0.0.1:${MOTO_PORT:-9555}, state in a temp dir.
# Idempotent: reuses a server already answering. Prints `export` lines for `eval`.
set -euo pipefail
PORT="${MOTO_PORT:-9555}"
PIDFILE="/tmp/workflow-moto-${PORT}.pid"
URL="http://127.0.0.1:${PORT}"
answers() { curl -fsS -o /dev/null "${URL}/moto-api/" 2>/dev/null || curl -sS -o /dev/null "${URL}/" 2>/dev/null; }
if ! answers; then
  # moto 5.2.1 and older 5.2.x answer CompleteMultipartUpload with a wrong XML root
  # (getmoto/moto#10055), which breaks multipart uploads: require a fixed release.
  if ! command -v moto_server >/dev/null 2>&1 \
    || ! python3 -c 'import sys, moto; v = tuple(int(x) for x in moto.__version__.split(".")[:3]); sys.exit(0 if v >= (5, 2, 5) else 1)' 2>/dev/null; then
    python3 -m pip install --quiet 'moto[server]>=5.2.5' >&2
  fi
  STATE="$(mktemp -d /tmp/workflow-moto.XXXXXX)"
  cd "$STATE"
  nohup moto_server -H 127.0.0.1 -p "$PORT" >"$STATE/moto.log" 2>&1 &
  echo $! >"$PIDFILE"
  cd - >/dev/null
  for _ in $(seq 1 100); do answers && break; sleep 0.2; done
  answers || { echo "moto did not start on ${PORT}; log in ${STATE}/moto.log" >&2; exit 1; }
fi
echo "export WORKFLOW_TEST_S3_ENDPOINT=${URL}"
echo "export WORKFLOW_TEST_S3_BUCKET=workflow-test"
echo "export WORKFLOW_TEST_S3_ACCESS_KEY=test"
echo "export WORKFLOW_TEST_S3_SECRET_KEY=test"
