#!/usr/bin/env bash
# test.sh — everything `make test` runs, with one closing count:
#   1. the unit and integration tests on this host (cgroup v1 here) under nextest,
#   2. the integration tests again inside a cgroup v2 VM (hack/vm/run-tests.sh),
#   3. the engine suites: Docker, Podman, containerd/CRI (hack/e2e/run-all.sh).
# All always run; the script fails if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNVZ=${RUNVZ:-$PWD/target/release/runvz}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
# count WORD LINE: the number before WORD ("passed"/"failed") in LINE, or empty.
count() { sed -n "s/.*\\b\\([0-9][0-9]*\\) $1.*/\\1/p" <<<"$2"; }
# run_part PATTERN CMD...: runs CMD (output shown), then sets passed/failed from
# the last output line matching PATTERN; a part that printed no count failed.
run_part() {
    local pattern=$1 line
    shift
    "$@" 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    line=$(grep -aE "$pattern" "$log" | tail -n1)
    passed=$(count passed "$line"); failed=$(count failed "$line")
    passed=${passed:-0}
    if [ -z "$line" ]; then failed=1; else failed=${failed:-0}; fi
}

# The Debian rootfs with systemd the system-container tests boot (debootstrap,
# cached in target/): made up front so no test spends its time limit on it. If it
# cannot be made here, those tests say so and skip.
sh hack/mkrootfs-systemd.sh target/systemd-rootfs || echo "test.sh: no systemd rootfs; the systemd boot tests will skip"

# nextest gives every test a time limit (.config/nextest.toml); the machines come
# with it, and crates.io has it where they do not.
cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest
# "Summary [ 18.1s] 87 tests run: 87 passed, 0 skipped" (failures add "N failed")
run_part 'tests run:' env RUNTIME="$RUNVZ" cargo nextest run --locked --workspace --no-fail-fast --profile ci
host_passed=$passed host_failed=$failed

run_part '^cgroup v2:' env RUNVZ="$RUNVZ" bash hack/vm/run-tests.sh
vm_passed=$passed vm_failed=$failed

run_part '^[0-9]+ passed, [0-9]+ failed' env RUNTIME="$RUNVZ" bash hack/e2e/run-all.sh
e2e_passed=$passed e2e_failed=$failed

echo
echo "host (cgroup v1):                   $host_passed passed, $host_failed failed"
echo "VM (cgroup v2):                     $vm_passed passed, $vm_failed failed"
echo "engines (docker/podman/containerd): $e2e_passed passed, $e2e_failed failed"
echo "$((host_passed + vm_passed + e2e_passed)) passed, $((host_failed + vm_failed + e2e_failed)) failed"
exit $status
