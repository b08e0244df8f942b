#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time: scripts/fuzz.sh [seconds-per-target] [target…]
#
# The targets are libFuzzer programs (the libfuzzer-sys crate) built with the machine's stable
# toolchain: coverage comes from LLVM's sanitizer-coverage pass (-C passes=sancov-module), which
# needs neither nightly nor cargo-fuzz; no sanitizer is linked (Caremesh forbids unsafe code), but
# debug assertions and overflow checks are on. Each target starts from its seed corpus in
# fuzz/corpus/TARGET (kept in the repository) plus what earlier runs here found (kept under the
# target directory), and runs for the given seconds (default 20).
#
# Prints the executions per target and whether anything was found. A crash, a failed assertion,
# an input that takes over 30 s or more than 2 GiB is kept in fuzz/artifacts/TARGET/ (ignored by
# git) and the script exits non-zero; replay it with `TARGET_BINARY fuzz/artifacts/TARGET/crash-…`
# (the path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caremesh/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
fuzz_target_dir="$CARGO_TARGET_DIR/fuzz"
triple=$(rustc -vV | sed -n 's/^host: //p')

# What cargo-fuzz passes, less the sanitizer (which needs nightly). With an explicit --target these
# flags reach only the target's crates, not build scripts or proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"

echo "== building the fuzz targets"
# Not --locked: fuzz/Cargo.lock keeps the versions it has, and takes in what a change to the
# crates' own dependencies adds, rather than failing CI until someone refreshes it by hand.
cargo build --manifest-path fuzz/Cargo.toml --release --bins --target "$triple" \
    --target-dir "$fuzz_target_dir"
bin_dir="$fuzz_target_dir/$triple/release"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^caremesh-fuzz$')
fi

failed=0
summary=()
for target in "${targets[@]}"; do
    seeds="fuzz/corpus/$target"
    corpus="$fuzz_target_dir/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    log=$(mktemp "/tmp/caremesh-fuzz-$target.XXXXXX")
    echo "== fuzzing $target for ${seconds}s"
    status=0
    "$bin_dir/$target" "$corpus" "$seeds" -max_total_time="$seconds" -timeout=30 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    if [ "$status" = 0 ]; then
        summary+=("$(printf '%-18s %10s runs  cov %-6s nothing found' "$target" "${runs:-?}" "${cov:-?}")")
    else
        failed=$((failed + 1))
        found=$(grep -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/Test unit written to //')
        tail -n 40 "$log"
        summary+=("$(printf '%-18s %10s runs  FOUND (exit %s): %s' "$target" "${runs:-?}" "$status" "${found:-see log above}")")
    fi
    rm -f "$log"
done

echo "== fuzzing summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" != 0 ]; then
    echo "fuzz: $((${#targets[@]} - failed)) passed, $failed failed"
    exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
