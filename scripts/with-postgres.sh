#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster: starts one from Debian's `postgresql`
# package on a free loopback port (installing the package first when run as root on a Debian-like
# system), exports TEST_POSTGRES_URL and TEST_REQUIRE_POSTGRES=1, runs the command, and stops and
# removes the cluster afterwards. With TEST_POSTGRES_URL already set, or CAREMESH_SKIP_POSTGRES=1,
# it just runs the command (without a URL the PostgreSQL tests record themselves as skipped, see
# caremesh_store::skip).
#
#   scripts/with-postgres.sh cargo test --workspace
set -euo pipefail

pg_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ -n "${TEST_POSTGRES_URL:-}" ] || [ "${CAREMESH_SKIP_POSTGRES:-0}" = 1 ]; then
    exec "$@"
fi

bindir=$(pg_bindir)
if [ -z "$bindir" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing PostgreSQL from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    bindir=$(pg_bindir)
fi
if [ -z "$bindir" ]; then
    echo "error: PostgreSQL is not installed; install Debian's 'postgresql' package," >&2
    echo "       set TEST_POSTGRES_URL, or set CAREMESH_SKIP_POSTGRES=1 to use SQLite only" >&2
    exit 1
fi

pgdir=$(mktemp -d /tmp/caremesh-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run_as=()
if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: use the account the Debian package creates.
    chown postgres:postgres "$pgdir"
    run_as=(runuser -u postgres --)
fi
stop() {
    "${run_as[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pgdir"
}
trap stop EXIT

echo "== starting a throwaway PostgreSQL cluster on 127.0.0.1:$port" >&2
"${run_as[@]}" "$bindir/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
"${run_as[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -o \
    "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null

export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
export TEST_REQUIRE_POSTGRES=1
set +e
"$@"
status=$?
set -e
exit "$status"
