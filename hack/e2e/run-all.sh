#!/bin/bash
# hack/e2e/run-all.sh — the engine suites (Docker, Podman, containerd) against
# the runtime at $RUNTIME (default: ./target/release/runvz).
#
# Installs the Debian packages they need when missing, builds the test image
# once (cached in $E2E_CACHE), runs the three suites one after another and ends
# with the combined line `N passed, N failed[, N skipped]`; exits non-zero when
# any check failed or a suite could not run.
#
#   RUNTIME=/usr/sbin/runc hack/e2e/run-all.sh          # the reference runtime
#   hack/e2e/run-all.sh docker podman                   # a subset
#
# env: RUNTIME, E2E_CACHE (image cache, default /var/tmp/runvz-e2e-cache),
# E2E_LOG_DIR (per-suite logs, default /tmp/runvz-e2e-logs), CHECK_TIMEOUT
# (seconds per check, default 60), SUITE_TIMEOUT (seconds per suite, default 600).
set -u

here=$(cd "$(dirname "$0")" && pwd)
RUNTIME=${RUNTIME:-$(pwd)/target/release/runvz}
case "$RUNTIME" in /*) ;; *) RUNTIME=$(pwd)/$RUNTIME ;; esac
export RUNTIME
export E2E_CACHE=${E2E_CACHE:-/var/tmp/runvz-e2e-cache}
export E2E_LOG_DIR=${E2E_LOG_DIR:-/tmp/runvz-e2e-logs}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-600}

if [ "$(id -u)" != 0 ]; then
    echo "run-all.sh: the engine suites need root" >&2
    exit 2
fi
if [ ! -x "$RUNTIME" ]; then
    echo "run-all.sh: RUNTIME $RUNTIME is not an executable (build it, or set RUNTIME=/usr/sbin/runc)" >&2
    exit 2
fi

# --- packages ----------------------------------------------------------------
# tini: docker-init for `docker run --init`; catatonit: `podman run --init` and
# Podman's pod infra image; iptables/iproute2: dockerd and the CNI bridge;
# util-linux: script(1) for terminals; runc: the --privileged comparison;
# python3-grpcio: cri.py, the CRI client of the containerd suite.
PACKAGES="docker.io containerd podman conmon catatonit containernetworking-plugins umoci skopeo
busybox-static uidmap tini iptables iproute2 util-linux procps runc python3-grpcio"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "# installing:$missing"
    # No init system here: keep package scripts from starting dockerd/containerd
    # (a policy-rc.d that already exists is left as it is).
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } \
        >/tmp/runvz-e2e-apt.log 2>&1 || rc=$?
    [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
    if [ $rc -ne 0 ]; then
        tail -n 20 /tmp/runvz-e2e-apt.log >&2
        echo "run-all.sh: apt-get install failed" >&2
        exit 1
    fi
fi

# --- the image -----------------------------------------------------------------
mkdir -p "$E2E_LOG_DIR"
if ! IMAGE_ARCHIVE=$(bash "$here/image.sh" "$E2E_CACHE" 2>"$E2E_LOG_DIR/image.log"); then
    cat "$E2E_LOG_DIR/image.log" >&2
    echo "run-all.sh: building the test image failed" >&2
    exit 1
fi
export IMAGE_ARCHIVE

# --- the suites ----------------------------------------------------------------
suites=${*:-docker podman containerd}
total_pass=0
total_fail=0
total_skip=0
echo "# RUNTIME=$RUNTIME ($("$RUNTIME" --version 2>/dev/null | head -n 1))"
for s in $suites; do
    out=$E2E_LOG_DIR/$s.out
    start=$(date +%s)
    # The suite bounds each of its steps; this bounds the whole suite too.
    timeout -k 30 "$SUITE_TIMEOUT" bash "$here/$s.sh" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    last=$(tail -n 1 "$out")
    if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
        total_pass=$((total_pass + BASH_REMATCH[1]))
        total_fail=$((total_fail + BASH_REMATCH[2]))
        total_skip=$((total_skip + ${BASH_REMATCH[4]:-0}))
        if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" = 0 ]; then
            echo "FAIL - $s: suite exited $rc"
            total_fail=$((total_fail + 1))
        fi
    else
        why="exit $rc"
        [ "$rc" = 124 ] && why="timed out after ${SUITE_TIMEOUT}s"
        echo "FAIL - $s: suite did not finish ($why)"
        total_fail=$((total_fail + 1))
    fi
    echo "# $s: $(($(date +%s) - start))s"
done

line="$total_pass passed, $total_fail failed"
[ "$total_skip" -gt 0 ] && line="$line, $total_skip skipped"
echo "$line"
[ "$total_fail" -eq 0 ]
