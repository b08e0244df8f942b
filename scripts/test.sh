#!/usr/bin/env bash
# Runs the whole Caremesh test suite, on SQLite and on PostgreSQL.
#
# PostgreSQL: when TEST_POSTGRES_URL is not set, scripts/with-postgres.sh starts a throwaway
# cluster from Debian's `postgresql` package (installing the package first when run as root) and
# stops it afterwards; each test creates its own database in it. CAREMESH_SKIP_POSTGRES=1 runs the
# SQLite tests only.
#
# Then the browser tests (scripts/browser-tests.sh: the web pages in Debian's Chromium, installed
# with apt-get when run as root); CAREMESH_SKIP_BROWSER=1 leaves them out.
#
# A test that cannot run here (no PostgreSQL, not root, no Chromium) records itself in the file
# named by CAREMESH_SKIP_LOG (caremesh_store::skip, and the browser script), which this script
# points at temporary files. The summary line counts every test binary and the browser tests:
# `tests: N passed, N failed, N skipped`, where skipped tests are not counted as passed. When the
# caller sets CAREMESH_SKIP_LOG itself (as .ci/run does), the skipped tests are appended to it.
#
# Extra arguments are passed to `cargo test`, e.g. `scripts/test.sh -p caremesh-e2e`.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caremesh/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

caller_skips=${CAREMESH_SKIP_LOG:-}
log=$(mktemp /tmp/caremesh-test-log.XXXXXX)
cargo_skips=$(mktemp /tmp/caremesh-test-skips.XXXXXX)
browser_skips=$(mktemp /tmp/caremesh-test-browser-skips.XXXXXX)
trap 'rm -f "$log" "$cargo_skips" "$browser_skips"' EXIT
set +e
CAREMESH_SKIP_LOG=$cargo_skips bash scripts/with-postgres.sh bash -c \
    'echo "== cargo test --workspace (PostgreSQL: ${TEST_POSTGRES_URL:-skipped})"; cargo test --workspace --all-targets --locked "$@"' \
    cargo-test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
browser_status=0
if [ "${CAREMESH_SKIP_BROWSER:-}" = 1 ]; then
    printf '%s\t%s\n' "tests/browser (all browser tests)" "CAREMESH_SKIP_BROWSER=1" >>"$browser_skips"
    echo "browser tests: 0 passed, 0 failed, 1 skipped (CAREMESH_SKIP_BROWSER=1)" | tee -a "$log"
else
    set +e
    CAREMESH_SKIP_LOG=$browser_skips bash scripts/browser-tests.sh 2>&1 | tee -a "$log"
    browser_status=${PIPESTATUS[0]}
    set -e
fi
# A skipped Rust test returns early, so cargo counts it among the passed (`test result:` lines, one
# per binary); the browser script counts its skips apart (`browser tests: N passed, N failed, N
# skipped`). Each test is named once in the skip logs.
cargo_skipped=$(cut -f1 "$cargo_skips" | sort -u | wc -l)
skipped_by_reason=$(cat "$cargo_skips" "$browser_skips" | sort -u -t "$(printf '\t')" -k1,1 | cut -f2 | sort | uniq -c | sort -rn)
if [ -n "$skipped_by_reason" ]; then
    echo "skipped, by reason:"
    echo "$skipped_by_reason"
fi
if [ -n "$caller_skips" ]; then
    cat "$cargo_skips" "$browser_skips" >>"$caller_skips"
fi
awk -v cargo_skipped="$cargo_skipped" '
     /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     /^browser tests: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped/ { p += $3; f += $5; s += $7 }
     END { p -= cargo_skipped; if (p < 0) p = 0; printf "tests: %d passed, %d failed, %d skipped\n", p, f, s + cargo_skipped }' "$log"
if [ "$status" != 0 ]; then
    exit "$status"
fi
exit "$browser_status"
