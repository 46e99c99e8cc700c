#!/usr/bin/env bash
# test.sh — everything `make test` runs, with one closing count:
#   1. the unit and integration tests on this host (cgroup v1 here) under nextest,
#   2. the integration tests again inside a cgroup v2 VM (hack/vm/run-tests.sh),
#   3. the engine suites: Docker, Podman, containerd/CRI (hack/e2e/run-all.sh),
#   4. the fuzz targets, each for a bounded time (hack/fuzz.sh).
# All always run; the script fails if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNVZ=${RUNVZ:-$PWD/target/release/runvz}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
# count WORD LINE: the number before WORD ("passed"/"failed"/"skipped") in LINE, or empty.
count() { sed -n "s/.*\\b\\([0-9][0-9]*\\) $1.*/\\1/p" <<<"$2"; }
# run_part PATTERN CMD...: runs CMD (output shown), then sets passed/failed from
# the last output line matching PATTERN; a part that printed no count failed.
run_part() {
    local pattern=$1 line
    shift
    "$@" 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    line=$(grep -aE "$pattern" "$log" | tail -n1)
    passed=$(count passed "$line"); failed=$(count failed "$line"); skipped=$(count skipped "$line")
    passed=${passed:-0}; skipped=${skipped:-0}
    if [ -z "$line" ]; then failed=1; else failed=${failed:-0}; fi
}

# The Debian rootfs with systemd the system-container tests boot, and one with
# Docker and Podman for the nesting test (debootstrap, cached in target/): made
# up front so no test spends its time limit on it. If one cannot be made here,
# its tests say so and skip.
sh hack/mkrootfs-systemd.sh target/systemd-rootfs || echo "test.sh: no systemd rootfs; the systemd boot tests will skip"
sh hack/mkrootfs-systemd.sh target/nesting-rootfs nesting || echo "test.sh: no nesting rootfs; the Docker/Podman-inside test will skip"

# nextest gives every test a time limit (.config/nextest.toml); the machines come
# with it, and crates.io has it where they do not.
cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest
# "Summary [ 18.1s] 87 tests run: 87 passed, 0 skipped" (failures add "N failed")
# A test that cannot run here calls skip(), which records it in RUNVZ_SKIP_LOG:
# nextest counts it as passed, this script counts it as skipped.
skip_log=$(mktemp)
run_part 'tests run:' env RUNTIME="$RUNVZ" RUNVZ_SKIP_LOG="$skip_log" cargo nextest run --locked --workspace --no-fail-fast --profile ci
host_skipped=$(cut -f1 "$skip_log" | sort -u | wc -l)
host_passed=$((passed - host_skipped)) host_failed=$failed
host_skips=$(sort -u "$skip_log"); rm -f "$skip_log"

run_part '^cgroup v2:' env RUNVZ="$RUNVZ" bash hack/vm/run-tests.sh
vm_passed=$passed vm_failed=$failed vm_skipped=$skipped
vm_skips=$(grep -a '^VM-SKIP: ' "$log" | sed 's/^VM-SKIP: //' | sort -u)

run_part '^[0-9]+ passed, [0-9]+ failed' env RUNTIME="$RUNVZ" bash hack/e2e/run-all.sh
e2e_passed=$passed e2e_failed=$failed e2e_skipped=$skipped
e2e_skips=$(grep -a '^skip - ' "$log" | sed 's/^skip - //' | sort -u)

# The fuzz targets, each for a bounded time (hack/fuzz.sh).
run_part '^fuzz: [0-9]+ passed' bash hack/fuzz.sh
fuzz_passed=$passed fuzz_failed=$failed fuzz_skipped=$skipped
fuzz_skips=$(grep -a '^skip - ' "$log" | sed 's/^skip - //' | sort -u)

echo
# What did not run, and why: never counted as passed.
for part in "host:$host_skips" "VM:$vm_skips" "engines:$e2e_skips" "fuzz:$fuzz_skips"; do
    name=${part%%:*} lines=${part#*:}
    [ -n "$lines" ] && while IFS= read -r l; do echo "skipped ($name): $l"; done <<<"$lines"
done
echo "host (cgroup v1):                   $host_passed passed, $host_failed failed, $host_skipped skipped"
echo "VM (cgroup v2):                     $vm_passed passed, $vm_failed failed, $vm_skipped skipped"
echo "engines (docker/podman/containerd): $e2e_passed passed, $e2e_failed failed, $e2e_skipped skipped"
echo "fuzz targets:                       $fuzz_passed passed, $fuzz_failed failed, $fuzz_skipped skipped"
echo "$((host_passed + vm_passed + e2e_passed + fuzz_passed)) passed, $((host_failed + vm_failed + e2e_failed + fuzz_failed)) failed, $((host_skipped + vm_skipped + e2e_skipped + fuzz_skipped)) skipped"
exit $status
