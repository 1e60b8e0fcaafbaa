#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL (Debian's postgresql package), exported as
# TRUSTPOOL_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT/trustpool_test. The cluster
# lives in a temporary directory and is stopped and removed on every exit path.
# If TRUSTPOOL_TEST_POSTGRES is already set, the command runs against that database.
set -euo pipefail
if [ -n "${TRUSTPOOL_TEST_POSTGRES:-}" ]; then exec "$@"; fi
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$BIN/initdb" ] || { echo "with-postgres: PostgreSQL is not installed (scripts/install-deps.sh installs it)" >&2; exit 2; }
D=$(mktemp -d /tmp/trustpool-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then chown postgres "$D"; RUN_AS=(su postgres -s /bin/sh -c); else RUN_AS=(sh -c); fi
stop() {
    "${RUN_AS[@]}" "$BIN/pg_ctl -D $D/data -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$D"
}
trap stop EXIT
"${RUN_AS[@]}" "$BIN/initdb -D $D/data -A trust -U postgres >/dev/null && $BIN/pg_ctl -D $D/data -o '-k $D -p $PORT -c listen_addresses=127.0.0.1 -c fsync=off' -l $D/log -w start >/dev/null"
psql -h 127.0.0.1 -p "$PORT" -U postgres -q -c 'create database trustpool_test' >/dev/null
export TRUSTPOOL_TEST_POSTGRES="postgres://postgres@127.0.0.1:$PORT/trustpool_test"
"$@"
