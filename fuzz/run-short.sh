#!/usr/bin/env bash
# The bounded fuzz run for CI: builds every target with cargo-fuzz on the
# stable toolchain (no sanitizer: `-s none`) and runs each for a bounded
# time. Exits non-zero on any crash, panic, failed assertion, timeout or
# out-of-memory; the input that caused it is left in fuzz/artifacts/<target>/.
#
#   bash fuzz/run-short.sh                     # 10 s per target
#   FUZZ_SECONDS_PER_TARGET=300 bash fuzz/run-short.sh
#   FUZZ_BUILD=dev bash fuzz/run-short.sh      # unoptimised (CI)
#
# CI builds unoptimised: a run of a few seconds per target is a smoke test
# that needs the coverage instrumentation, not speed, and an optimised,
# instrumented build of the service stack the config targets link costs
# minutes more. The `engines` harness's scripted cases are not here: they
# are `mpay_sim::schedule`'s tests, run with the workspace's.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS_PER_TARGET:-10}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

build=(-s none)
case "${FUZZ_BUILD:-release}" in
    release) ;;
    dev) build+=(--dev) ;;
    *) echo "FUZZ_BUILD is release or dev, not ${FUZZ_BUILD}" >&2; exit 2 ;;
esac

cargo fuzz build "${build[@]}"

log_dir="$(mktemp -d)"
targets=$(cargo fuzz list)
for target in $targets; do
    log="$log_dir/$target.log"
    # -timeout: one input taking over 10 s is a finding (a hang).
    if ! cargo fuzz run "${build[@]}" "$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    echo "fuzz $target: ${seconds}s, $runs executions, no finding"
done
echo "fuzz: every target ran ${seconds}s without a finding"
