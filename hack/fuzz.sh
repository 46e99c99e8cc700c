#!/usr/bin/env bash
# fuzz.sh — the cargo fuzz targets in fuzz/ (#14), each for FUZZ_SECONDS
# (default 30) from its corpus in fuzz/corpus/<target>: config.json with its
# runvz.* annotations, a beancounter value, `update --resources` JSON, and the
# CRIU images' descriptors.json. A target that panics fails, its input left in
# fuzz/artifacts/<target>/. Prints each target's executions and a closing
# "fuzz: N passed, M failed, K skipped" line (hack/test.sh counts it).
#
# cargo-fuzz comes from crates.io (installed when missing) and runs on the
# stable toolchain without a sanitizer (-s none): the targets look for
# panics, which Rust reports without one.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${FUZZ_SECONDS:-30}
TARGETS=(config_json beancounter_value update_resources criu_descriptors)

if ! cargo fuzz --version >/dev/null 2>&1 && ! cargo install --locked cargo-fuzz; then
    for t in "${TARGETS[@]}"; do echo "skip - fuzz $t: cargo-fuzz cannot be installed from crates.io"; done
    echo "fuzz: 0 passed, 0 failed, ${#TARGETS[@]} skipped"
    exit 0
fi
if ! cargo fuzz build -s none; then
    echo "fuzz: 0 passed, ${#TARGETS[@]} failed, 0 skipped (the targets do not build)"
    exit 1
fi

passed=0 failed=0
for t in "${TARGETS[@]}"; do
    # A copy of the corpus to run from: the run adds what it finds, and the
    # checkout stays as committed.
    work=$(mktemp -d)
    cp -r "corpus/$t/." "$work/"
    log=$(mktemp)
    cargo fuzz run -s none "$t" "$work" -- -max_total_time="$SECS" -rss_limit_mb=4096 >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
    if [ "$rc" = 0 ] && [ -n "$runs" ]; then
        passed=$((passed + 1))
        echo "fuzz $t: $runs executions in ${SECS} s from $(ls "corpus/$t" | wc -l) corpus entries, no crash"
    else
        failed=$((failed + 1))
        tail -n 60 "$log"
        echo "fuzz $t: FAILED (exit $rc; a crashing input is in fuzz/artifacts/$t/)"
    fi
    rm -rf "$work" "$log"
done
echo "fuzz: $passed passed, $failed failed, 0 skipped"
[ "$failed" = 0 ]
