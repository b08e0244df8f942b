#!/usr/bin/env bash
# Runs the whole Caremesh test suite, on SQLite and on PostgreSQL.
#
# PostgreSQL: when TEST_POSTGRES_URL is not set, scripts/with-postgres.sh starts a throwaway
# cluster from Debian's `postgresql` package (installing the package first when run as root) and
# stops it afterwards; each test creates its own database in it. CAREMESH_SKIP_POSTGRES=1 runs the
# SQLite tests only.
#
# Then the browser tests (scripts/browser-tests.sh: the web pages in Debian's Chromium, installed
# with apt-get when run as root); CAREMESH_SKIP_BROWSER=1 leaves them out. The summary line
# counts both.
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
browser_status=0
if [ "${CAREMESH_SKIP_BROWSER:-}" = 1 ]; then
    echo "browser tests: skipped (CAREMESH_SKIP_BROWSER=1)" | tee -a "$log"
else
    set +e
    bash scripts/browser-tests.sh 2>&1 | tee -a "$log"
    browser_status=${PIPESTATUS[0]}
    set -e
fi
# One summary line over every test binary (cargo prints one `test result:` line per binary) and
# the browser tests (`browser tests: N passed, N failed`).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     /^browser tests: [0-9]+ passed, [0-9]+ failed$/ { p += $3; f += $5 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
if [ "$status" != 0 ]; then
    exit "$status"
fi
exit "$browser_status"
