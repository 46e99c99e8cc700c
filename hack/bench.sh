#!/bin/bash
# bench.sh — runvz vs runc with hyperfine, both runtimes in the same hyperfine
# run for each case:
#   (a) create + start + delete --force of a `sleep 10` container
#   (b) run of /bin/true
#   (c) exec of /bin/true into a running container
#   (d) create + start + delete --force of a busybox-init container: for runvz a
#       system container with all it gets (own user-namespace range, idmapped
#       rootfs, delegated cgroup, the /proc view server), for runc a plain one
#
# Environment:
#   RUNVZ   runtime under test   (default: <repo>/target/release/runvz)
#   RUNC    reference runtime    (default: /usr/sbin/runc)
#   RUNS    timing runs per command (default: 30)
#   WARMUP  warmup runs per command (default: 3)
#
# Each runtime gets its own --root and its own bundle (busybox rootfs from
# hack/mkrootfs.sh). Everything is removed on exit, also on failure or ^C.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUNVZ=${RUNVZ:-$REPO/target/release/runvz}
RUNC=${RUNC:-/usr/sbin/runc}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}

die() { echo "bench.sh: $*" >&2; exit 1; }
command -v hyperfine >/dev/null || die "hyperfine not found (apt-get install hyperfine)"
command -v python3 >/dev/null || command -v jq >/dev/null || die "need python3 or jq"
[ -x "$RUNVZ" ] || die "runvz binary $RUNVZ not found (cargo build --release, or set RUNVZ)"
[ -x "$RUNC" ] || die "runc binary $RUNC not found (set RUNC)"
[ "$(id -u)" = 0 ] || die "must run as root"

WORK=$(mktemp -d /tmp/runvz-bench.XXXXXX)
CGPARENT="runvz-bench-$$"
NAMES=(runc runvz)
declare -A BIN=([runc]=$RUNC [runvz]=$RUNVZ)

cleanup() {
    set +e
    for n in "${NAMES[@]}"; do
        for c in a b c d; do
            "${BIN[$n]}" --root "$WORK/$n/root" delete --force "bench-$n-$c" >/dev/null 2>&1
        done
    done
    for d in /sys/fs/cgroup/*/"$CGPARENT"; do
        [ -d "$d" ] || continue
        # Anything still inside is ours: kill it, then remove the tree.
        find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r pid; do
            kill -9 "$pid" 2>/dev/null
        done
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HERE/mkrootfs.sh" "$WORK/rootfs-cache"

# config.json: runc spec's defaults, no terminal, the given args and cgroupsPath.
write_config() { # DIR ROOTFS CGPATH ARGS_JSON
    cat >"$1/config.json" <<EOF
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": $4,
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "$2", "readonly": true},
  "hostname": "bench",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "cgroupsPath": "$3",
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
EOF
}

for n in "${NAMES[@]}"; do
    mkdir -p "$WORK/$n/root"
    cp -a "$WORK/rootfs-cache" "$WORK/$n/rootfs"
    for c in a b c d; do mkdir -p "$WORK/$n/$c"; done
    write_config "$WORK/$n/a" "$WORK/$n/rootfs" "/$CGPARENT/$n-a" '["sleep", "10"]'
    write_config "$WORK/$n/b" "$WORK/$n/rootfs" "/$CGPARENT/$n-b" '["/bin/true"]'
    write_config "$WORK/$n/c" "$WORK/$n/rootfs" "/$CGPARENT/$n-c" '["sleep", "1000"]'
    # busybox's init with one service, for case (d).
    mkdir -p "$WORK/$n/rootfs/sbin"
    ln -sf /bin/busybox "$WORK/$n/rootfs/sbin/init"
    echo '::respawn:/bin/sleep 1000' >"$WORK/$n/rootfs/etc/inittab"
    write_config "$WORK/$n/d" "$WORK/$n/rootfs" "/$CGPARENT/$n-d" '["/sbin/init"]'
done

rt() { echo "${BIN[$1]} --root $WORK/$1/root"; }

# The long-running container for case (c).
for n in "${NAMES[@]}"; do
    $(rt "$n") run --detach --bundle "$WORK/$n/c" "bench-$n-c" </dev/null >/dev/null \
        || die "$n: run --detach failed"
done

median() { # JSON_FILE INDEX
    if command -v python3 >/dev/null; then
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "$2"
    else
        jq -r ".results[$2].median" "$1"
    fi
}

declare -a CASES=() RUNC_MED=() RUNVZ_MED=()
bench() { # LABEL SLUG CMD_RUNC CMD_RUNVZ PREP_RUNC PREP_RUNVZ
    local json="$WORK/$2.json"
    echo
    echo "=== $1"
    hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
        --prepare "$5" --prepare "$6" \
        -n "runc: $1" "$3" \
        -n "runvz: $1" "$4"
    CASES+=("$1")
    RUNC_MED+=("$(median "$json" 0)")
    RUNVZ_MED+=("$(median "$json" 1)")
}

cmd_a() { echo "$(rt "$1") create --bundle $WORK/$1/a bench-$1-a && $(rt "$1") start bench-$1-a && $(rt "$1") delete --force bench-$1-a"; }
prep_a() { echo "$(rt "$1") delete --force bench-$1-a >/dev/null 2>&1 || true"; }
cmd_b() { echo "$(rt "$1") run --bundle $WORK/$1/b bench-$1-b"; }
prep_b() { echo "$(rt "$1") delete --force bench-$1-b >/dev/null 2>&1 || true"; }
cmd_c() { echo "$(rt "$1") exec bench-$1-c /bin/true"; }
cmd_d() { echo "$(rt "$1") create --bundle $WORK/$1/d bench-$1-d && $(rt "$1") start bench-$1-d && $(rt "$1") delete --force bench-$1-d"; }
prep_d() { echo "$(rt "$1") delete --force bench-$1-d >/dev/null 2>&1 || true"; }

bench "create+start+delete (sleep 10)" a "$(cmd_a runc)" "$(cmd_a runvz)" "$(prep_a runc)" "$(prep_a runvz)"
bench "run /bin/true" b "$(cmd_b runc)" "$(cmd_b runvz)" "$(prep_b runc)" "$(prep_b runvz)"
bench "exec /bin/true" c "$(cmd_c runc)" "$(cmd_c runvz)" true true
bench "init: create+start+delete" d "$(cmd_d runc)" "$(cmd_d runvz)" "$(prep_d runc)" "$(prep_d runvz)"

echo
echo "runc:  $RUNC"
echo "runvz: $RUNVZ"
printf '%-34s %14s %14s %12s\n' "case" "runc median" "runvz median" "runc/runvz"
for i in "${!CASES[@]}"; do
    python3 - "${CASES[$i]}" "${RUNC_MED[$i]}" "${RUNVZ_MED[$i]}" <<'EOF' 2>/dev/null ||
import sys
name, a, b = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"{name:<34} {a*1000:11.1f} ms {b*1000:11.1f} ms {a/b:11.2f}x")
EOF
    awk -v n="${CASES[$i]}" -v a="${RUNC_MED[$i]}" -v b="${RUNVZ_MED[$i]}" \
        'BEGIN { printf "%-34s %11.1f ms %11.1f ms %11.2fx\n", n, a*1000, b*1000, a/b }'
done
