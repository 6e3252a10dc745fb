#!/usr/bin/env bash
# Test peer: a throwaway PostgreSQL server on 127.0.0.1.
# Installs Debian's postgresql if needed, starts a cluster under $WF_PEERS_DIR,
# and prints the `export` lines the tests read. Idempotent.
set -euo pipefail

PORT="${WF_PG_PORT:-55432}"
DIR="${WF_PEERS_DIR:-/tmp/wf-peers}/postgres"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(bindir)" ]; then
  echo "installing postgresql..." >&2
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
fi
BIN="$(bindir)"

# initdb refuses to run as root: the cluster belongs to the postgres user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -t 60 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >&2
fi
echo "export WORKFLOW_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
