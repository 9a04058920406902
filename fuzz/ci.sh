#!/usr/bin/env bash
# A short bounded fuzz pass, built unoptimised with debug assertions: each target replays
# the committed corpus and then fuzzes until FUZZ_SECONDS (30) seconds are up, on a copy of
# the committed corpus (fuzz/corpus/<target>/, with the regression seeds). Fails on a crash,
# a leak, an out-of-memory or a timeout, and prints the executions of each target.
# Needs the nightly toolchain; installs cargo-fuzz if it is missing.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-30}"
targets=(desired_state rapi_responses webhook)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    nice -n 19 cargo install cargo-fuzz --locked --debug
fi
# Unoptimised (--dev): it builds in about a third of the CPU time of a release build,
# and still replays the whole committed corpus before the time limit ends each target.
nice -n 19 cargo +nightly fuzz build --dev

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
total=0
for target in "${targets[@]}"; do
    # New inputs go to the scratch directory; the committed corpus is only read.
    mkdir -p "$work/$target"
    log="$work/$target.log"
    status=0
    nice -n 19 cargo +nightly fuzz run --dev "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    runs="${runs:-0}"
    total=$((total + runs))
    if [[ "$status" -ne 0 ]]; then
        failures=$((failures + 1))
        echo "fuzz: $target FAILED after $runs executions (exit $status):"
        grep -E -A40 '^==[0-9]+==|panicked|deadly signal|SUMMARY' "$log" | head -n 80 || tail -n 60 "$log"
        echo "fuzz: the input is in fuzz/artifacts/$target/; reproduce with"
        echo "      cargo +nightly fuzz run $target fuzz/artifacts/$target/<file>"
    else
        echo "fuzz: $target ok, $runs executions in ${seconds}s"
    fi
done
echo "fuzz: ${#targets[@]} targets, $total executions, $failures failing"
echo "fuzz: $((${#targets[@]} - failures)) passed, $failures failed"
[[ "$failures" -eq 0 ]]
