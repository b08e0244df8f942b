#!/usr/bin/env bash
# Runs the whole Caremesh test suite, on SQLite and on PostgreSQL.
#
# PostgreSQL: when TEST_POSTGRES_URL is not set, this script starts a throwaway cluster from
# Debian's `postgresql` package on a free loopback port (installing the package first when run as
# root on a Debian-like system) and stops it afterwards. Each test creates its own database in it.
# Set CAREMESH_SKIP_POSTGRES=1 to run the SQLite tests only.
#
# Extra arguments are passed to `cargo test`, e.g. `scripts/test.sh -p caremesh-e2e`.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caremesh/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

pg_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

cleanup=()
on_exit() {
    local status=$?
    for cmd in "${cleanup[@]}"; do eval "$cmd" || true; done
    exit "$status"
}
trap on_exit EXIT

if [ -z "${TEST_POSTGRES_URL:-}" ] && [ "${CAREMESH_SKIP_POSTGRES:-0}" != 1 ]; then
    bindir=$(pg_bindir)
    if [ -z "$bindir" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing PostgreSQL from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
        bindir=$(pg_bindir)
    fi
    if [ -z "$bindir" ]; then
        echo "error: PostgreSQL is not installed; install Debian's 'postgresql' package," >&2
        echo "       set TEST_POSTGRES_URL, or set CAREMESH_SKIP_POSTGRES=1 to test SQLite only" >&2
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
    echo "== starting a throwaway PostgreSQL cluster on 127.0.0.1:$port"
    "${run_as[@]}" "$bindir/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    "${run_as[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -o \
        "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null
    cleanup+=("${run_as[*]} $bindir/pg_ctl -D $pgdir/data -m immediate stop >/dev/null; rm -rf $pgdir")
    export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export TEST_REQUIRE_POSTGRES=1
fi

echo "== cargo test --workspace (PostgreSQL: ${TEST_POSTGRES_URL:-skipped})"
log=$(mktemp /tmp/caremesh-test-log.XXXXXX)
cleanup+=("rm -f $log")
set +e
cargo test --workspace --all-targets --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One summary line over every test binary (cargo prints one `test result:` line per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
