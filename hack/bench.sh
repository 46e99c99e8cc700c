#!/bin/bash
# bench.sh — runvz vs runc with hyperfine, both runtimes in the same hyperfine
# run for each case:
#   (a) create + start + delete --force of a `sleep 10` container
#   (b) run of /bin/true
#   (c) exec of /bin/true into a running container
#   (d) create + start + delete --force of a busybox-init container: for runvz a
#       system container with all it gets (own user-namespace range, idmapped
#       rootfs, delegated cgroup, the /proc view server), for runc a plain one
#   (e) delete --force of a running container
#   (k) run of /bin/true with 5,000 more mounts on the host
#   (f) 100 sequential `run -d` (per container), then `list` with those 100
#       running
#   (h) the host memory each of 100 running containers holds: what
#       /proc/meminfo counts that no reclaim gives back (anonymous and shared
#       memory, unreclaimable slab, kernel stacks, page tables, per-CPU
#       memory), before and after, divided by 100 (free memory itself moves by
#       more than that with the page cache); each runtime alone, in the order
#       runc, runvz, runvz, runc, and the mean of its two (the kernel's slab
#       caches make whichever runs second cheaper or dearer by up to a third)
#   (j) the kernel's part of (h), made with no runtime: an empty memory
#       cgroup, the container's program as a plain process, and its network
#       namespace (100 of each, measured as in h)
#   (g) peak RSS of `run` (/bin/true): the largest process of the run
#   (i) 1,000 containers: started by 8 parallel `run -d` workers, `list`
#       with all of them running, deleted by 8 workers; the host memory they
#       hold (as in h)
#
# Environment:
#   RUNVZ   runtime under test   (default: <repo>/target/release/runvz)
#   RUNC    reference runtime    (default: /usr/sbin/runc)
#   RUNS    timing runs per command (default: 30)
#   WARMUP  warmup runs per command (default: 3)
#   THOUSAND  containers in case (i) (default: 1000; 0 skips it)
#   GAP     seconds of quiet before each timed run (default: 0.3): a start
#           that follows another within ~10 ms shares its RCU grace period on
#           cgroup v1 (see vendor/libcontainer/RUNVZ.md, patch 28), which
#           back-to-back runs would hide; GAP=0 times them back to back
#
# Each runtime gets its own --root (on a tmpfs, as /run is) and its own bundle
# (busybox rootfs from hack/mkrootfs.sh). Everything is removed on exit, also on failure or ^C.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUNVZ=${RUNVZ:-$REPO/target/release/runvz}
RUNC=${RUNC:-/usr/sbin/runc}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
GAP=${GAP:-0.3}

die() { echo "bench.sh: $*" >&2; exit 1; }
command -v hyperfine >/dev/null || die "hyperfine not found (apt-get install hyperfine)"
command -v python3 >/dev/null || command -v jq >/dev/null || die "need python3 or jq"
[ -x /usr/bin/time ] || die "GNU time not found (apt-get install time)"
[ -x "$RUNVZ" ] || die "runvz binary $RUNVZ not found (cargo build --release, or set RUNVZ)"
[ -x "$RUNC" ] || die "runc binary $RUNC not found (set RUNC)"
[ "$(id -u)" = 0 ] || die "must run as root"

WORK=$(mktemp -d /tmp/runvz-bench.XXXXXX)
# The runtimes' state roots on a tmpfs of their own, as on every host engines
# run on (/run/runc, /run/containerd/runc, /run/runvz): on a disk each state
# file written is a journal's work, which a real start does not pay.
STATE=$WORK/state
CGPARENT="runvz-bench-$$"
NAMES=(runc runvz)
declare -A BIN=([runc]=$RUNC [runvz]=$RUNVZ)

cleanup() {
    set +e
    for n in "${NAMES[@]}"; do
        "${BIN[$n]}" --root "$STATE/$n" list -q 2>/dev/null | xargs -r -P 8 -I{} \
            "${BIN[$n]}" --root "$STATE/$n" delete --force {} >/dev/null 2>&1
    done
    [ -f "$WORK/sleep-pids" ] && xargs -r kill -9 <"$WORK/sleep-pids" 2>/dev/null
    for d in /sys/fs/cgroup/*/"$CGPARENT" /sys/fs/cgroup/"$CGPARENT"; do
        [ -d "$d" ] || continue
        # Anything still inside is ours: kill it, then remove the tree.
        find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r pid; do
            kill -9 "$pid" 2>/dev/null
        done
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    mountpoint -q "$STATE" && umount -l "$STATE"
    mountpoint -q "$WORK/mounts" && umount -R -l "$WORK/mounts"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$STATE" && mount -t tmpfs -o mode=0700 runvz-bench-state "$STATE" || die "cannot mount a tmpfs at $STATE"
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
    mkdir -p "$STATE/$n" "$WORK/$n"
    cp -a "$WORK/rootfs-cache" "$WORK/$n/rootfs"
    for c in a b c d e f; do mkdir -p "$WORK/$n/$c"; done
    write_config "$WORK/$n/a" "$WORK/$n/rootfs" "/$CGPARENT/$n-a" '["sleep", "10"]'
    write_config "$WORK/$n/b" "$WORK/$n/rootfs" "/$CGPARENT/$n-b" '["/bin/true"]'
    write_config "$WORK/$n/c" "$WORK/$n/rootfs" "/$CGPARENT/$n-c" '["sleep", "1000"]'
    # busybox's init with one service, for case (d).
    mkdir -p "$WORK/$n/rootfs/sbin"
    ln -sf /bin/busybox "$WORK/$n/rootfs/sbin/init"
    echo '::respawn:/bin/sleep 1000' >"$WORK/$n/rootfs/etc/inittab"
    write_config "$WORK/$n/d" "$WORK/$n/rootfs" "/$CGPARENT/$n-d" '["/sbin/init"]'
    write_config "$WORK/$n/e" "$WORK/$n/rootfs" "/$CGPARENT/$n-e" '["sleep", "1000"]'
    # Case (f): no cgroupsPath, so each container gets the runtime's default.
    write_config "$WORK/$n/f" "$WORK/$n/rootfs" "" '["sleep", "1000"]'
    sed -i '/"cgroupsPath": ""/d' "$WORK/$n/f/config.json"
done

rt() { echo "${BIN[$1]} --root $STATE/$1"; }

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
        --prepare "$5; sleep $GAP" --prepare "$6; sleep $GAP" \
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
cmd_e() { echo "$(rt "$1") delete --force bench-$1-e"; }
prep_e() { echo "$(rt "$1") delete --force bench-$1-e >/dev/null 2>&1; $(rt "$1") run --detach --bundle $WORK/$1/e bench-$1-e </dev/null >/dev/null"; }
cmd_d() { echo "$(rt "$1") create --bundle $WORK/$1/d bench-$1-d && $(rt "$1") start bench-$1-d && $(rt "$1") delete --force bench-$1-d"; }
prep_d() { echo "$(rt "$1") delete --force bench-$1-d >/dev/null 2>&1 || true"; }

bench "create+start+delete (sleep 10)" a "$(cmd_a runc)" "$(cmd_a runvz)" "$(prep_a runc)" "$(prep_a runvz)"
bench "run /bin/true" b "$(cmd_b runc)" "$(cmd_b runvz)" "$(prep_b runc)" "$(prep_b runvz)"
bench "exec /bin/true" c "$(cmd_c runc)" "$(cmd_c runvz)" true true
bench "init: create+start+delete" d "$(cmd_d runc)" "$(cmd_d runvz)" "$(prep_d runc)" "$(prep_d runvz)"
bench "delete --force (running)" e "$(cmd_e runc)" "$(cmd_e runvz)" "$(prep_e runc)" "$(prep_e runvz)"

# (k) run of /bin/true with 5,000 more mounts on the host, as a busy
# Kubernetes node has (each pod's volumes) and each system container adds:
# bind mounts of empty directories under a private mount of $WORK/mounts,
# which make no new superblock (see "host memory" in the README).
MOUNTS=$WORK/mounts
mkdir -p "$MOUNTS" && mount --bind "$MOUNTS" "$MOUNTS" && mount --make-private "$MOUNTS" ||
    die "cannot make a private mount at $MOUNTS"
for i in $(seq 1 5000); do
    mkdir "$MOUNTS/$i" && mount --bind "$MOUNTS/$i" "$MOUNTS/$i" || die "cannot bind-mount $MOUNTS/$i"
done
bench "run /bin/true, 5,000 host mounts" k "$(cmd_b runc)" "$(cmd_b runvz)" "$(prep_b runc)" "$(prep_b runvz)"
umount -R "$MOUNTS"

# (f) 100 containers, one after another, each runtime in turn; then `list`.
held_kib() {
    awk '/^(AnonPages|Shmem|SUnreclaim|KernelStack|PageTables|Percpu):/ { sum += $2 } END { print sum }' /proc/meminfo
}
# Drops the page cache and waits until held_kib stops moving (under 256 KiB in
# a second, at most 20 s): the memory cgroups of deleted containers are freed
# by the kernel some time after their rmdir.
settle() {
    local last now
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    last=$(held_kib)
    for _ in $(seq 1 20); do
        sleep 1
        now=$(held_kib)
        [ $(( now > last ? now - last : last - now )) -lt 256 ] && return
        last=$now
    done
}
declare -A SEQ_MS=() MEM_KIB=([runc]=0 [runvz]=0)
for n in runc runvz runvz runc; do
    settle
    before=$(held_kib)
    for i in $(seq 1 100); do
        $(rt "$n") run --detach --bundle "$WORK/$n/f" "bench-$n-f$i" </dev/null >/dev/null || die "$n: run -d $i failed"
    done
    sleep 1
    MEM_KIB[$n]=$(( MEM_KIB[$n] + ($(held_kib) - before) / 200 ))
    for i in $(seq 1 100); do $(rt "$n") delete --force "bench-$n-f$i" >/dev/null 2>&1; done
done
for n in "${NAMES[@]}"; do
    start=$(date +%s%N)
    for i in $(seq 1 100); do
        $(rt "$n") run --detach --bundle "$WORK/$n/f" "bench-$n-f$i" </dev/null >/dev/null || die "$n: run -d $i failed"
    done
    SEQ_MS[$n]=$(( ($(date +%s%N) - start) / 10000000 ))  # per container, in 1/10 ms
done
bench "list (100 running)" f "$(rt runc) list" "$(rt runvz) list" true true
for n in "${NAMES[@]}"; do
    for i in $(seq 1 100); do $(rt "$n") delete --force "bench-$n-f$i" >/dev/null 2>&1; done
done

# (j) The kernel's part of (h), with no runtime: 100 each of an empty memory
# cgroup (every container gets one, for its limits and its beancounters'
# accounting), the container's program (busybox sleep) as a plain process,
# and the same in a network namespace of its own, measured as (h) is.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    MEMCG=/sys/fs/cgroup/$CGPARENT
    mkdir -p "$MEMCG" && echo +memory >"$MEMCG/cgroup.subtree_control" || die "cannot enable the memory controller in $MEMCG"
else
    MEMCG=/sys/fs/cgroup/memory/$CGPARENT
    mkdir -p "$MEMCG"
fi
settle; before=$(held_kib)
for i in $(seq 1 100); do mkdir "$MEMCG/k$i"; done
sleep 1
KERNEL_MEMCG_KIB=$(( ($(held_kib) - before) / 100 ))
for i in $(seq 1 100); do rmdir "$MEMCG/k$i"; done
# held_kib's delta for 100 busybox sleeps started by PREFIX (nothing or unshare -n).
sleeps_kib() {
    local pids=() before after
    settle; before=$(held_kib)
    for _ in $(seq 1 100); do
        "$@" "$WORK/rootfs-cache/bin/busybox" sleep 1000 </dev/null >/dev/null 2>&1 &
        pids+=($!)
        echo $! >>"$WORK/sleep-pids"
    done
    sleep 1
    after=$(held_kib)
    kill -9 "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
    echo $(( (after - before) / 100 ))
}
KERNEL_PROC_KIB=$(sleeps_kib env)
KERNEL_NETNS_KIB=$(( $(sleeps_kib unshare -n) - KERNEL_PROC_KIB ))

# (i) 1,000 containers at once, as a host full of tenants: started by 8
# parallel workers, `list` with all running, deleted by 8 workers; wall
# times and the host memory they hold (N=1000; THOUSAND=0 skips it).
THOUSAND=${THOUSAND:-1000}
declare -A UP_S=() DOWN_S=() LIST_MS=() MEM1K_KIB=()
if [ "$THOUSAND" -gt 0 ]; then
    for n in "${NAMES[@]}"; do
        settle
        before=$(held_kib)
        start=$(date +%s%N)
        seq 1 "$THOUSAND" | xargs -P 8 -I{} sh -c "$(rt "$n") run --detach --bundle $WORK/$n/f bench-$n-k{} </dev/null >/dev/null" \
            || die "$n: starting $THOUSAND containers failed"
        UP_S[$n]=$(( ($(date +%s%N) - start) / 10000000 ))  # 1/100 s
        sleep 1
        MEM1K_KIB[$n]=$(( ($(held_kib) - before) / THOUSAND ))
        [ "$($(rt "$n") list -q | grep -c "^bench-$n-k")" = "$THOUSAND" ] || die "$n: list does not show $THOUSAND containers"
        hyperfine --style none --warmup 2 --runs 10 --export-json "$WORK/list1k-$n.json" "$(rt "$n") list" >/dev/null
        LIST_MS[$n]=$(median "$WORK/list1k-$n.json" 0)
        start=$(date +%s%N)
        seq 1 "$THOUSAND" | xargs -P 8 -I{} sh -c "$(rt "$n") delete --force bench-$n-k{} >/dev/null 2>&1"
        DOWN_S[$n]=$(( ($(date +%s%N) - start) / 10000000 ))
    done
fi

# (g) Peak RSS of `run`: GNU time's maximum resident set size of the runtime
# and what it waited for (the smallest of five runs).
peak_rss_kib() { # RUNTIME ARGS...
    /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1
}
declare -A RSS_KIB=()
for n in "${NAMES[@]}"; do
    best=
    for _ in 1 2 3 4 5; do
        $(rt "$n") delete --force "bench-$n-b" >/dev/null 2>&1 || true
        kib=$(peak_rss_kib ${BIN[$n]} --root "$STATE/$n" run --bundle "$WORK/$n/b" "bench-$n-b")
        if [ -z "$best" ] || [ "$kib" -lt "$best" ]; then best=$kib; fi
    done
    RSS_KIB[$n]=$best
done

echo
echo "runc:  $RUNC"
echo "runvz: $RUNVZ"
# The issue's ratio: runvz's figure over runc's (below 1: runvz is faster or leaner).
row() { awk -v n="$1" -v a="$2" -v b="$3" -v u="$4" \
    'BEGIN { printf "| %s | %.1f %s | %.1f %s | %.2f |\n", n, a, u, b, u, b/a }'; }
echo "| case | runc | runvz | runvz/runc |"
echo "|---|---|---|---|"
for i in "${!CASES[@]}"; do
    row "${CASES[$i]}" "$(awk -v s="${RUNC_MED[$i]}" 'BEGIN{print s*1000}')" \
        "$(awk -v s="${RUNVZ_MED[$i]}" 'BEGIN{print s*1000}')" ms
done
row "100 sequential run -d (per container)" "$(awk -v t="${SEQ_MS[runc]}" 'BEGIN{print t/10}')" \
    "$(awk -v t="${SEQ_MS[runvz]}" 'BEGIN{print t/10}')" ms
row "host memory per running container" "${MEM_KIB[runc]}" "${MEM_KIB[runvz]}" KiB
row "peak RSS of run" "$(awk -v k="${RSS_KIB[runc]}" 'BEGIN{print k/1024}')" \
    "$(awk -v k="${RSS_KIB[runvz]}" 'BEGIN{print k/1024}')" MiB
if [ "$THOUSAND" -gt 0 ]; then
    row "$THOUSAND containers: start all (8 workers)" "$(awk -v t="${UP_S[runc]}" 'BEGIN{print t/100}')" \
        "$(awk -v t="${UP_S[runvz]}" 'BEGIN{print t/100}')" s
    row "list with $THOUSAND running" "$(awk -v s="${LIST_MS[runc]}" 'BEGIN{print s*1000}')" \
        "$(awk -v s="${LIST_MS[runvz]}" 'BEGIN{print s*1000}')" ms
    row "$THOUSAND containers: delete all (8 workers)" "$(awk -v t="${DOWN_S[runc]}" 'BEGIN{print t/100}')" \
        "$(awk -v t="${DOWN_S[runvz]}" 'BEGIN{print t/100}')" s
    row "host memory per container, $THOUSAND running" "${MEM1K_KIB[runc]}" "${MEM1K_KIB[runvz]}" KiB
fi
echo
KERNEL_KIB=$(( KERNEL_MEMCG_KIB + KERNEL_PROC_KIB + KERNEL_NETNS_KIB ))
echo "The kernel's part of host memory per container, no runtime (100 of each, as in the table):"
echo "an empty memory cgroup $KERNEL_MEMCG_KIB KiB, the program as a plain process $KERNEL_PROC_KIB KiB,"
echo "its network namespace $KERNEL_NETNS_KIB KiB: $KERNEL_KIB KiB together," \
    "$(awk -v k="$KERNEL_KIB" -v r="${MEM_KIB[runc]}" 'BEGIN { printf "%.2f", k/r }') of runc's per-container figure."
