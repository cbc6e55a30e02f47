#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster for the tests.
#   eval "$(scripts/pg-throwaway.sh start)"   -> exports WORKBENCH_TEST_POSTGRES_URL and PG_THROWAWAY_DIR
#   scripts/pg-throwaway.sh stop "$PG_THROWAWAY_DIR"
# initdb refuses to run as root, so as root the cluster runs as the 'postgres' system user.
set -euo pipefail
action="${1:-start}"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$action" = "stop" ]; then
  dir="${2:-${PG_THROWAWAY_DIR:-}}"
  [ -n "$dir" ] && [ -d "$dir" ] || exit 0
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "echo 'PostgreSQL server binaries not found: PostgreSQL tests will be skipped' >&2"
  exit 0
fi
dir="$(mktemp -d /tmp/workbench-pg.XXXXXX)"
chmod 755 "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
echo "export PG_THROWAWAY_DIR=$dir"
echo "export WORKBENCH_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/postgres"
