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
if cargo nextest --version >/dev/null 2>&1; then
    RUNTIME=$RUNVZ cargo nextest run --locked --workspace --no-fail-fast --profile ci 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    # "Summary [ 18.1s] 87 tests run: 87 passed, 0 skipped" (failures add "N failed")
    host_line=$(grep -a 'tests run:' "$log" | tail -n1)
    host_passed=$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$host_line")
    host_failed=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$host_line")
else
    RUNTIME=$RUNVZ cargo test --locked --workspace --no-fail-fast -- --test-threads=2 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    host_passed=$(grep -a '^test result:' "$log" | sed -n 's/.* \([0-9]*\) passed.*/\1/p' | paste -sd+ | bc)
    host_failed=$(grep -a '^test result:' "$log" | sed -n 's/.* \([0-9]*\) failed.*/\1/p' | paste -sd+ | bc)
fi
host_passed=${host_passed:-0}; host_failed=${host_failed:-0}
[ -n "$host_line$host_passed" ] || host_failed=1

: >"$log"
RUNVZ=$RUNVZ bash hack/vm/run-tests.sh 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
vm_line=$(grep -a '^cgroup v2:' "$log" | tail -n1)
vm_passed=$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$vm_line")
vm_failed=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$vm_line")
vm_passed=${vm_passed:-0}; vm_failed=${vm_failed:-1}

: >"$log"
RUNTIME=$RUNVZ bash hack/e2e/run-all.sh 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
e2e_line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
e2e_passed=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$e2e_line")
e2e_failed=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$e2e_line")
e2e_passed=${e2e_passed:-0}; e2e_failed=${e2e_failed:-1}

echo
echo "host (cgroup v1):          $host_passed passed, $host_failed failed"
echo "VM (cgroup v2):            $vm_passed passed, $vm_failed failed"
echo "engines (docker/podman/containerd): $e2e_passed passed, $e2e_failed failed"
echo "$((host_passed + vm_passed + e2e_passed)) passed, $((host_failed + vm_failed + e2e_failed)) failed"
exit $status
