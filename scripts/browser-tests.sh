#!/usr/bin/env bash
# Runs the browser tests (tests/browser) against a real `caremesh` node in Debian's Chromium.
#
# Needs /usr/bin/chromium, fonts-noto-cjk (so screenshots show Chinese) and the npm packages in
# tests/browser. As root, missing pieces are installed (apt-get, `npm ci`). Without Chromium and
# without root the tests are skipped with a message, except in CI (CI=true), where that fails.
# A skip is recorded like a skipped Rust test: one line `name<TAB>reason` appended to the file
# named by CAREMESH_SKIP_LOG (when set), for every test the node runner skipped too.
# Prints one line `browser tests: N passed, N failed, N skipped` for scripts/test.sh to count.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caremesh/target}"
export DEBIAN_FRONTEND=noninteractive

# Records a skipped test (name, reason) where scripts/test.sh counts them, and says so.
record_skip() {
    echo "SKIPPED $1: $2" >&2
    if [ -n "${CAREMESH_SKIP_LOG:-}" ]; then
        printf '%s\t%s\n' "$1" "$2" >>"$CAREMESH_SKIP_LOG"
    fi
}

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "== installing ${need_apt[*]}"
        apt-get update -qq
        apt-get install -y -qq "${need_apt[@]}" >/dev/null
    elif [ ! -x /usr/bin/chromium ]; then
        if [ "${CI:-}" = true ]; then
            echo "browser tests: /usr/bin/chromium is missing (install Debian's chromium)" >&2
            echo "browser tests: 0 passed, 1 failed, 0 skipped"
            exit 1
        fi
        record_skip "tests/browser (all browser tests)" \
            "/usr/bin/chromium is missing and not running as root to install it"
        echo "browser tests: 0 passed, 0 failed, 1 skipped"
        exit 0
    fi
fi
if ! command -v node >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "browser tests: node is missing" >&2
        echo "browser tests: 0 passed, 1 failed, 0 skipped"
        exit 1
    fi
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
    echo "== npm ci (tests/browser)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== building the caremesh binary"
cargo build -p caremesh-server --locked

echo "== browser tests (Chromium, JavaScript disabled)"
log=$(mktemp /tmp/caremesh-browser-log.XXXXXX)
tap=$(mktemp /tmp/caremesh-browser-tap.XXXXXX)
trap 'rm -f "$log" "$tap"' EXIT
set +e
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" tests/browser/ 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The spec reporter ends with `ℹ pass N`, `ℹ fail N` and `ℹ skipped N`; the TAP copy names each
# skipped test (`ok 3 - name # SKIP reason`).
pass=$(awk '/^ℹ pass / { print $3 }' "$log" | tail -1)
fail=$(awk '/^ℹ fail / { print $3 }' "$log" | tail -1)
skipped=$(awk '/^ℹ skipped / { print $3 }' "$log" | tail -1)
if [ -z "$pass" ]; then pass=0; fi
if [ -z "$fail" ]; then fail=1; fi
if [ -z "$skipped" ]; then skipped=0; fi
if [ "$status" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
{ grep -aE '^[[:space:]]*ok [0-9]+ - .* # SKIP' "$tap" || true; } |
    sed -E 's/^[[:space:]]*ok [0-9]+ - //' | while IFS= read -r line; do
        record_skip "tests/browser: ${line%% # SKIP*}" "$(echo "${line#* # SKIP}" | sed 's/^ *//')"
    done
echo "screenshots: artifacts/screenshots/"
echo "browser tests: $pass passed, $fail failed, $skipped skipped"
exit "$status"
