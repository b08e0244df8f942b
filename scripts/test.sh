#!/usr/bin/env bash
# Runs the whole Caremesh test suite, on SQLite and on PostgreSQL.
#
# PostgreSQL: when TEST_POSTGRES_URL is not set, scripts/with-postgres.sh starts a throwaway
# cluster from Debian's `postgresql` package (installing the package first when run as root) and
# stops it afterwards; each test creates its own database in it. CAREMESH_SKIP_POSTGRES=1 runs the
# SQLite tests only.
#
# Extra arguments are passed to `cargo test`, e.g. `scripts/test.sh -p caremesh-e2e`.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caremesh/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log=$(mktemp /tmp/caremesh-test-log.XXXXXX)
trap 'rm -f "$log"' EXIT
set +e
bash scripts/with-postgres.sh bash -c \
    'echo "== cargo test --workspace (PostgreSQL: ${TEST_POSTGRES_URL:-skipped})"; cargo test --workspace --all-targets --locked "$@"' \
    cargo-test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One summary line over every test binary (cargo prints one `test result:` line per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
