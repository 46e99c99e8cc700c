#!/bin/bash
# hack/e2e/containerd.sh — containerd (containerd-shim-runc-v2) end to end with
# the runtime at $RUNTIME, driven with `ctr`.
#
# Starts a private containerd (own config, root, state, sockets, opt dir) whose
# CRI plugin has a runtime entry named `runvz` configured as the README tells
# Kubernetes users (runtime_type io.containerd.runc.v2, options BinaryName and
# Root, pod_annotations ["runvz.*"]); every `ctr run` passes the same two
# options (--runc-binary = BinaryName, --runc-root = Root). Imports the
# offline-built image, runs one check per line, stops containerd by its PID and
# removes everything it created, even on failure.
#
# The CRI checks then drive that runtime entry as kubelet does (cri.py, a
# minimal CRI client on python3-grpcio): a pod sandbox with runtime handler
# `runvz`, a container in it, ExecSync, stop and removal.
#
# env: RUNTIME (absolute path, required), IMAGE_ARCHIVE, E2E_CACHE, E2E_LOG_DIR.
set -u
set -a
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

require_runtime
require_cmds containerd ctr containerd-shim-runc-v2 script timeout

suite_setup containerd

T=$(mktemp -d /tmp/rvz-ct.XXXXXX)
NS=rvz-e2e-$$
# ctr's containers get cgroupsPath /<namespace>/<id>.
CG_PARENT=$NS
RT_ROOT=$T/runvz-root
# CRI pods go under this cgroup parent (cgroupsPath <parent>/<id>).
CRI_CG=$NS-pod
CG_EXTRA=$CRI_CG
PAUSE_ARCHIVE=$(dirname "$IMAGE_ARCHIVE")/runvz-pause.tar
PAUSE_IMAGE=localhost/runvz-pause:latest
CONTAINERD_ADDRESS=$T/containerd.sock
CONTAINERD_NAMESPACE=$NS
# Shim sockets live in /run/containerd/s (fixed in containerd 1.6).
track_host_path /run/containerd
# CRI pod network namespaces are bind-mounted under /var/run/netns.
track_host_path /run/netns /var/lib/cni

mkdir -p "$T/cni" "$T/cni-ipam" "$T/fifo" "$T/logs"
# The CRI pod network: a private bridge (no masquerade, no firewall plugin, so
# the host's iptables are never touched), removed at the end.
BRIDGE=rvzcri$$
BRIDGE=${BRIDGE:0:15}
POD_SUBNET=10.213.78
cat >"$T/cni/10-e2e.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "e2e-pods",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "$T/cni-ipam",
              "ranges": [[{"subnet": "$POD_SUBNET.0/24", "gateway": "$POD_SUBNET.1"}]]}},
    {"type": "loopback"}
  ]
}
EOF
cat >"$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"

[grpc]
  address = "$T/containerd.sock"
[ttrpc]
  address = "$T/containerd.sock.ttrpc"
[debug]
  address = "$T/debug.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # root here lacks CAP_SYS_RESOURCE: no negative oom_score_adj.
  restrict_oom_score_adj = true
  sandbox_image = "$PAUSE_IMAGE"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$T/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runvz"
  # As the README's Kubernetes section (a RuntimeClass handler: runvz).
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runvz]
    runtime_type = "io.containerd.runc.v2"
    pod_annotations = ["runvz.*"]
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runvz.options]
      BinaryName = "$RUNTIME"
      Root = "$RT_ROOT"
EOF

echo "# containerd: RUNTIME=$RUNTIME, work dir $T, namespace $NS, log $E2E_LOG"

cleanup_engine() {
    local pid t c
    kill_runtime_calls
    if [ -S "$T/containerd.sock" ]; then
        for t in $(timeout 30 ctr task ls -q 2>/dev/null); do
            timeout 15 ctr task kill -a -s SIGKILL "$t" >/dev/null 2>&1 || true
        done
        sleep 0.5
        for t in $(timeout 30 ctr task ls -q 2>/dev/null); do
            timeout 15 ctr task delete -f "$t" >/dev/null 2>&1 || true
        done
        for c in $(timeout 30 ctr container ls -q 2>/dev/null); do
            timeout 15 ctr container delete "$c" >/dev/null 2>&1 || true
        done
        timeout 30 ctr image rm "$IMAGE" >/dev/null 2>&1 || true
        for c in $(timeout 30 ctr snapshot ls 2>/dev/null | awk 'NR > 1 {print $1}'); do
            timeout 15 ctr snapshot rm "$c" >/dev/null 2>&1 || true
        done
        timeout 15 ctr namespace rm "$NS" >/dev/null 2>&1 || true
        # CRI pods first through CRI, then whatever is left in k8s.io.
        for c in $(cat "$T/cri-pods" 2>/dev/null); do
            timeout 60 /usr/bin/python3 "$here/cri.py" "$T/containerd.sock" stopp "$c" >/dev/null 2>&1 || true
            timeout 60 /usr/bin/python3 "$here/cri.py" "$T/containerd.sock" rmp "$c" >/dev/null 2>&1 || true
        done
        for t in $(timeout 30 ctr -n k8s.io task ls -q 2>/dev/null); do
            timeout 15 ctr -n k8s.io task kill -a -s SIGKILL "$t" >/dev/null 2>&1 || true
            timeout 15 ctr -n k8s.io task delete -f "$t" >/dev/null 2>&1 || true
        done
        for c in $(timeout 30 ctr -n k8s.io container ls -q 2>/dev/null); do
            timeout 15 ctr -n k8s.io container delete "$c" >/dev/null 2>&1 || true
        done
        for c in $(timeout 30 ctr -n k8s.io image ls -q 2>/dev/null); do
            timeout 15 ctr -n k8s.io image rm "$c" >/dev/null 2>&1 || true
        done
    fi
    pid=$(cat "$T/containerd.mypid" 2>/dev/null || true)
    [ -n "$pid" ] && stop_pid "$pid" 20
    # Shims (named by the private socket) and anything left in containers.
    for pid in $(pids_matching "$T/"); do kill_tree KILL "$pid"; done
    sleep 0.5
    umount_under "$T"
    rm_cgroup_tree "$CG_PARENT"
    rm_cgroup_tree "$CRI_CG"
    ip link del "$BRIDGE" 2>/dev/null || true
    rm -rf "$T"
    cleanup_host_paths
    return 0
}
on_exit cleanup_engine

e2e_no_bridge() { ! ip link show "$BRIDGE" >/dev/null 2>&1 || { echo "bridge $BRIDGE still exists" >&2; return 1; }; }
after_cleanup() {
    leftover_checks containerd
    check "containerd: cleanup removed the bridge $BRIDGE" e2e_no_bridge
}

containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 </dev/null &
echo $! >"$T/containerd.mypid"
if ! wait_for 60 ctr version 2>>"$E2E_LOG"; then
    cat "$T/containerd.log" >>"$E2E_LOG"
    die "containerd did not answer on $T/containerd.sock within 60s: $(tail -n 3 "$T/containerd.log" | tr '\n' ' ')"
fi
if ! timeout 120 ctr image import "$IMAGE_ARCHIVE" >>"$E2E_LOG" 2>&1; then
    die "ctr image import $IMAGE_ARCHIVE failed (see $E2E_LOG)"
fi
# The CRI plugin's images live in the k8s.io namespace.
if ! { timeout 120 ctr -n k8s.io image import "$IMAGE_ARCHIVE" && timeout 120 ctr -n k8s.io image import "$PAUSE_ARCHIVE"; } >>"$E2E_LOG" 2>&1; then
    die "ctr -n k8s.io image import failed (see $E2E_LOG)"
fi

# ---------------------------------------------------------------------------
F="--fifo-dir $T/fifo"
# What every ctr run passes: the runtime options BinaryName and Root.
RR="--runc-binary $RUNTIME --runc-root $RT_ROOT $F"
# A long-running task main with no short-lived children: exits 0 on TERM.
LOOP='trap "echo got TERM; kill \$!; exit 0" TERM; echo started; sleep 100000 & wait'

tpid() { ctr task ls | awk -v id="$1" '$1 == id {print $2}'; }
tstatus() { ctr task ls | awk -v id="$1" '$1 == id {print $3}'; }
# run_d ID [ctr run options...] -- CMD... : a detached task logging to $T/logs/ID.
run_d() {
    local id=$1
    shift
    local opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    ctr run -d $RR --log-uri "file://$T/logs/$id" "${opts[@]}" "$IMAGE" "$id" "$@"
    wait_for 10 sh -c "[ \"\$(ctr task ls | awk '\$1 == \"$id\" {print \$3}')\" = RUNNING ]"
}
tlog_has() { grep -q -- "$2" "$T/logs/$1" 2>/dev/null; }
# The runtime's own view: the shim passes --root <Root>/<namespace>.
rt_state() { "$RUNTIME" --root "$RT_ROOT/$NS" state "$1"; }
capeff() { awk '/^CapEff/ {print $2}'; }
# rm_task ID — kill (KILL), delete the task and the container.
rm_task() {
    ctr task kill -a -s SIGKILL "$1" >/dev/null 2>&1 || true
    wait_for 10 sh -c "[ \"\$(ctr task ls | awk '\$1 == \"$1\" {print \$3}')\" != RUNNING ]" || true
    ctr task delete "$1" >/dev/null 2>&1 || ctr task delete -f "$1" >/dev/null 2>&1 || true
    ctr container delete "$1" >/dev/null 2>&1 || true
}

t_cri_config() {
    ctr plugins ls | grep -Eq '^io\.containerd\.grpc\.v1 +cri +[^ ]+ +ok' || { ctr plugins ls | grep cri; echo "CRI plugin not ok" >&2; return 1; }
    dump=$(containerd --config "$T/config.toml" config dump)
    sect=$(echo "$dump" | awk '/^ *\[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runvz\]/ {on = 1; next} on && /^ *\[/ && !/runtimes.runvz.options\]/ {on = 0} on')
    expect_match "runtime_type" 'runtime_type = "io.containerd.runc.v2"' "$sect"
    expect_match "pod_annotations" 'pod_annotations = \["runvz\.\*"\]' "$sect"
    expect_match "BinaryName" "BinaryName = \"$RUNTIME\"" "$sect"
    expect_match "Root" "Root = \"$RT_ROOT\"" "$sect"
}
check "containerd: CRI plugin loads the runvz runtime entry (BinaryName, Root, pod_annotations)" t_cri_config

t_run_output() {
    out=$(ctr run --rm $RR "$IMAGE" e2e-out echo hello from runvz)
    expect_eq "output" "hello from runvz" "$out"
    expect_eq "containers left after --rm" "" "$(ctr container ls -q)"
}
gate "containerd: ctr run --rm --runc-binary prints the output and removes the container" t_run_output

t_exit_codes() {
    expect_rc "exit 0" 0 ctr run --rm $RR "$IMAGE" e2e-rc0 true
    expect_rc "exit 42" 42 ctr run --rm $RR "$IMAGE" e2e-rc42 sh -c 'exit 42'
    out=$(ctr run --rm $RR "$IMAGE" e2e-rcmiss /no/such/binary 2>&1) && rc=0 || rc=$?
    [ "$rc" != 0 ] || { echo "a missing binary ran" >&2; return 1; }
    # The shim reports the runtime's last error from log.json.
    expect_match "runtime's error reaches ctr" "OCI runtime create failed.*/no/such/binary" "$out"
    ctr container delete e2e-rcmiss >/dev/null 2>&1 || true
}
check "containerd: ctr run exit codes (0, 42; a create failure carries the runtime's error)" t_exit_codes

t_tty() {
    out=$(tty_run "ctr run --rm -t $RR $IMAGE e2e-tty sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; exit 3'") && rc=0 || rc=$?
    expect_match "tty" "/dev/pts/[0-9]+" "$out"
    expect_match "stdin and stdout are the terminal" "both-tty" "$out"
    expect_eq "exit status" 3 "$rc"
}
check "containerd: ctr run -t gives a terminal" t_tty

t_read_only() {
    out=$(ctr run --rm --read-only $RR "$IMAGE" e2e-ro sh -c 'touch /x 2>&1; echo rc=$?; grep " / " /proc/mounts')
    expect_match "write to /" "Read-only file system" "$out"
    expect_match "root mount" " / [^ ]+ ro[, ]" "$out"
}
check "containerd: --read-only makes the root filesystem read-only" t_read_only

t_mounts() {
    mkdir -p "$T/m"
    echo from-host >"$T/m/in"
    out=$(ctr run --rm --mount "type=bind,src=$T/m,dst=/m,options=rbind:rw" $RR "$IMAGE" e2e-mnt sh -c 'cat /m/in; echo from-container >/m/out')
    expect_eq "bind read" from-host "$out"
    expect_eq "bind write" from-container "$(cat "$T/m/out")"
    out=$(ctr run --rm --mount "type=bind,src=$T/m,dst=/m,options=rbind:ro" $RR "$IMAGE" e2e-mntro sh -c 'touch /m/y 2>&1; echo rc=$?')
    expect_match "read-only bind" "Read-only file system" "$out"
    out=$(ctr run --rm --mount "type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m" $RR "$IMAGE" e2e-tmpfs grep " /scratch " /proc/mounts)
    expect_match "tmpfs mount" "^tmpfs /scratch tmpfs .*size=1024k" "$out"
}
check "containerd: --mount (bind rw, bind ro, tmpfs)" t_mounts

t_env_cwd() {
    out=$(ctr run --rm --env FOO=bar --env "SPACED=a b" --cwd /tmp $RR "$IMAGE" e2e-env sh -c 'echo "$FOO|$SPACED|$PATH|$(pwd)"')
    expect_eq "env and cwd" "bar|a b|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/tmp" "$out"
}
check "containerd: --env and --cwd" t_env_cwd

t_privileged() {
    out=$(ctr run --rm --privileged $RR "$IMAGE" e2e-priv sh -c 'grep CapEff /proc/self/status; ls /dev/loop-control; grep " /sys " /proc/mounts')
    # ctr's --privileged grants the capabilities the caller has.
    expect_eq "CapEff = the host root's" "$(capeff </proc/self/status)" "$(echo "$out" | capeff)"
    expect_match "host devices" "^/dev/loop-control$" "$out"
    expect_match "/sys read-write" " /sys sysfs rw" "$out"
}
check "containerd: --privileged (root's capabilities, host devices, rw /sys)" t_privileged

t_cap_add() {
    out=$(ctr run --rm $RR "$IMAGE" e2e-nocap sh -c '{ ip link set lo down && ip link set lo up; } 2>&1; echo rc=$?')
    expect_match "without NET_ADMIN" "rc=[1-9]" "$out"
    out=$(ctr run --rm --cap-add CAP_NET_ADMIN $RR "$IMAGE" e2e-cap sh -c 'ip link set lo up && ip link set lo down && ip link show lo; grep CapEff /proc/self/status')
    expect_nomatch "with NET_ADMIN lo went down" "[<,]UP[,>]" "$out"
    eff=$(echo "$out" | capeff)
    [ $(( 0x$eff & (1 << 12) )) -ne 0 ] || { echo "CAP_NET_ADMIN not in CapEff $eff" >&2; return 1; }
    out=$(ctr run --rm --cap-drop CAP_CHOWN $RR "$IMAGE" e2e-capdrop sh -c 'touch /tmp/f; chown 1000 /tmp/f 2>&1; echo rc=$?')
    expect_match "chown without CAP_CHOWN" "rc=1" "$out"
}
check "containerd: --cap-add/--cap-drop" t_cap_add

t_net_host() {
    out=$(ctr run --rm --net-host $RR "$IMAGE" e2e-nethost sh -c 'readlink /proc/self/ns/net; ls /sys/class/net')
    expect_eq "host network namespace" "$(readlink /proc/self/ns/net)" "$(echo "$out" | head -n 1)"
    for i in $(ls /sys/class/net); do expect_match "host interface $i" "^$i$" "$out"; done
}
check "containerd: --net-host joins the host's network namespace" t_net_host

t_own_netns() {
    out=$(ctr run --rm $RR "$IMAGE" e2e-netns sh -c 'readlink /proc/self/ns/net; ls /sys/class/net; ip -o link show lo')
    [ "$(echo "$out" | head -n 1)" != "$(readlink /proc/self/ns/net)" ] || { echo "default run shares the host netns" >&2; return 1; }
    expect_eq "own namespace has lo only" lo "$(echo "$out" | sed -n 2p)"
    # as runc does for a new network namespace, lo is up (127.0.0.1 works)
    expect_match "lo is up" "^1: lo: <[^>]*,UP[,>]" "$(echo "$out" | sed -n 3p)"
}
check "containerd: without --net-host a new network namespace with lo, up" t_own_netns

t_limits() {
    run_d e2e-lim --memory-limit 67108864 --cpus 0.5 -- sh -c "$LOOP"
    pid=$(tpid e2e-lim)
    expect_eq "cgroupsPath /<ns>/<id>" "/sys/fs/cgroup/memory/$NS/e2e-lim" "$(cgroup_dir_of "$pid" memory)"
    for c in cpu cpuacct pids freezer devices; do
        expect_eq "$c cgroup" "/sys/fs/cgroup/$c/$NS/e2e-lim" "$(cgroup_dir_of "$pid" $c)"
    done
    expect_eq "memory.limit_in_bytes" 67108864 "$(cgroup_value "$pid" memory memory.limit_in_bytes)"
    expect_eq "cpu.cfs_quota_us" 50000 "$(cgroup_value "$pid" cpu cpu.cfs_quota_us)"
    expect_eq "cpu.cfs_period_us" 100000 "$(cgroup_value "$pid" cpu cpu.cfs_period_us)"
    st=$(rt_state e2e-lim)
    expect_match "runtime state" '"status": *"running"' "$st"
    expect_match "runtime state pid" "\"pid\": *$pid[,}]" "$st"
}
check "containerd: --memory-limit/--cpus land in the task's cgroup (/<ns>/<id>)" t_limits

t_exec() {
    out=$(ctr task exec $F --exec-id x1 e2e-lim sh -c 'echo exec-out; tr "\0" " " </proc/1/cmdline')
    expect_match "exec output" "^exec-out$" "$out"
    expect_match "exec sees the task's PID 1" "^sh -c trap" "$out"
    expect_rc "exec exit status" 5 ctr task exec $F --exec-id x2 e2e-lim sh -c 'exit 5'
}
check "containerd: task exec (output, exit status)" t_exec

t_exec_tty() {
    out=$(tty_run "ctr task exec $F -t --exec-id x3 e2e-lim sh -c 'tty; exit 4'") && rc=0 || rc=$?
    expect_match "exec -t" "/dev/pts/[0-9]+" "$out"
    expect_eq "exit status" 4 "$rc"
}
check "containerd: task exec -t gives a terminal" t_exec_tty

t_exec_stdin() {
    out=$(echo piped | ctr task exec $F --exec-id x4 e2e-lim sh -c 'read l; echo "got $l"')
    expect_eq "stdin" "got piped" "$out"
}
check "containerd: task exec passes stdin" t_exec_stdin

t_exec_user() {
    expect_eq "--user 1000" "uid=1000(e2e) gid=1000(e2e) groups=1000(e2e)" "$(ctr task exec $F --user 1000 --exec-id x5 e2e-lim id)"
    expect_eq "--user nobody" 65534 "$(ctr task exec $F --user nobody --exec-id x6 e2e-lim id -u)"
    expect_eq "--cwd" /etc "$(ctr task exec $F --cwd /etc --exec-id x7 e2e-lim pwd)"
}
check "containerd: task exec --user (and --cwd)" t_exec_user

t_ps() {
    pid=$(tpid e2e-lim)
    ctr task exec $F -d --exec-id x8 e2e-lim sleep 1000 >/dev/null
    wait_for 10 sh -c "ctr task ps e2e-lim | awk 'NR > 1' | wc -l | grep -qx 3"
    out=$(ctr task ps e2e-lim)
    expect_match "init pid" "^$pid " "$out"
    for p in $(echo "$out" | awk 'NR > 1 {print $1}'); do
        [ -e "/proc/$p/cgroup" ] || { echo "task ps lists $p, not a live process" >&2; return 1; }
        expect_match "pid $p's cgroup" ":memory:/$NS/e2e-lim$" "$(cat /proc/$p/cgroup)"
    done
    ctr task kill --exec-id x8 -s SIGKILL e2e-lim >/dev/null
}
check "containerd: task ps lists the task's host PIDs (all in its cgroup)" t_ps

t_metrics() {
    out=$(ctr task metrics e2e-lim)
    expect_match "memory limit" "^memory\.limit_in_bytes +67108864" "$out"
    usage=$(echo "$out" | awk '$1 == "memory.usage_in_bytes" {print $2}')
    [ -n "$usage" ] && [ "$usage" -gt 0 ] || { echo "memory.usage_in_bytes is '$usage'" >&2; return 1; }
    pids=$(echo "$out" | awk '$1 == "pids.current" {print $2}')
    [ -n "$pids" ] && [ "$pids" -ge 1 ] || { echo "pids.current is '$pids'" >&2; return 1; }
    expect_eq "usage matches the cgroup's order of magnitude" \
        "${#usage}" "$(cgroup_value "$(tpid e2e-lim)" memory memory.usage_in_bytes | tr -d '\n' | wc -c)"
}
check "containerd: task metrics reads the task's cgroup" t_metrics

t_pause() {
    pid=$(tpid e2e-lim)
    ctr task pause e2e-lim
    expect_eq "status" PAUSED "$(tstatus e2e-lim)"
    expect_eq "freezer.state" FROZEN "$(cgroup_value "$pid" freezer freezer.state)"
    expect_match "runtime state" '"status": *"paused"' "$(rt_state e2e-lim)"
    ctr task resume e2e-lim
    expect_eq "status" RUNNING "$(tstatus e2e-lim)"
    expect_eq "freezer.state" THAWED "$(cgroup_value "$pid" freezer freezer.state)"
    expect_eq "exec after resume" ok "$(ctr task exec $F --exec-id x9 e2e-lim echo ok)"
}
check "containerd: task pause/resume freezes and thaws the cgroup" t_pause

t_kill_signals() {
    run_d e2e-sig -- sh -c 'trap "echo got USR1" USR1; trap "echo got HUP" HUP; echo started; while :; do sleep 0.1; done'
    wait_for 10 tlog_has e2e-sig started
    ctr task kill -s SIGUSR1 e2e-sig
    wait_for 10 tlog_has e2e-sig "got USR1"
    ctr task kill -s SIGHUP e2e-sig
    wait_for 10 tlog_has e2e-sig "got HUP"
    expect_eq "running after trapped signals" RUNNING "$(tstatus e2e-sig)"
    ctr task kill -s SIGTERM e2e-sig
    # sh as PID 1 has no TERM handler: the kernel ignores it.
    sleep 0.5
    expect_eq "PID 1 ignores an untrapped TERM" RUNNING "$(tstatus e2e-sig)"
    ctr task kill -s SIGKILL e2e-sig
    wait_for 10 sh -c '[ "$(ctr task ls | awk "\$1 == \"e2e-sig\" {print \$3}")" = STOPPED ]'
    out=$(ctr task delete e2e-sig 2>&1)
    expect_match "exit status 137" "exit code 137" "$out"
    ctr container delete e2e-sig
}
check "containerd: task kill delivers USR1/HUP to traps, KILL stops (137)" t_kill_signals

t_kill_all() {
    run_d e2e-all -- sh -c 'sleep 1001 & sleep 1002 & echo started; wait'
    wait_for 10 tlog_has e2e-all started
    wait_for 10 sh -c "ctr task ps e2e-all | awk 'NR > 1' | wc -l | grep -qx 3"
    pids=$(ctr task ps e2e-all | awk 'NR > 1 {print $1}')
    ctr task kill -a -s SIGKILL e2e-all
    for p in $pids; do
        wait_for 10 sh -c "! kill -0 $p 2>/dev/null" || { echo "process $p survived kill --all" >&2; return 1; }
    done
    wait_for 10 sh -c '[ "$(ctr task ls | awk "\$1 == \"e2e-all\" {print \$3}")" = STOPPED ]'
    ctr task delete e2e-all >/dev/null 2>&1
    ctr container delete e2e-all
}
check "containerd: task kill --all signals every process of the task" t_kill_all

t_with_ns() {
    pid=$(tpid e2e-lim)
    out=$(ctr run --rm --with-ns "network:/proc/$pid/ns/net" --with-ns "pid:/proc/$pid/ns/pid" --with-ns "ipc:/proc/$pid/ns/ipc" $RR "$IMAGE" e2e-joined sh -c 'for n in net pid ipc; do readlink /proc/self/ns/$n; done; tr "\0" " " </proc/1/cmdline; echo')
    expect_eq "network namespace" "$(readlink /proc/$pid/ns/net)" "$(echo "$out" | sed -n 1p)"
    expect_eq "pid namespace" "$(readlink /proc/$pid/ns/pid)" "$(echo "$out" | sed -n 2p)"
    expect_eq "ipc namespace" "$(readlink /proc/$pid/ns/ipc)" "$(echo "$out" | sed -n 3p)"
    expect_match "sees the other task's PID 1" "^sh -c trap" "$(echo "$out" | sed -n 4p)"
}
check "containerd: --with-ns joins another task's network, pid and ipc namespaces" t_with_ns

t_delete() {
    pid=$(tpid e2e-lim)
    memcg=$(cgroup_dir_of "$pid" memory)
    if ctr container delete e2e-lim >/dev/null 2>&1; then echo "deleted a container whose task runs" >&2; return 1; fi
    ctr task kill -s SIGTERM e2e-lim
    wait_for 10 sh -c '[ "$(ctr task ls | awk "\$1 == \"e2e-lim\" {print \$3}")" = STOPPED ]'
    grep -q "got TERM" "$T/logs/e2e-lim" || { echo "the task never saw TERM" >&2; return 1; }
    ctr task delete e2e-lim
    expect_eq "task gone" "" "$(ctr task ls -q | grep -x e2e-lim || true)"
    if rt_state e2e-lim >/dev/null 2>&1; then echo "runtime still has state for e2e-lim" >&2; return 1; fi
    wait_for 10 test ! -d "$memcg"
    ctr container delete e2e-lim
    expect_eq "container gone" "" "$(ctr container ls -q | grep -x e2e-lim || true)"
    expect_eq "its snapshot gone" "" "$(ctr snapshot ls | awk '$1 == "e2e-lim"')"
    # A running task deleted with --force.
    run_d e2e-force -- sh -c "$LOOP"
    fpid=$(tpid e2e-force)
    ctr task delete -f e2e-force >/dev/null
    wait_for 10 sh -c "! kill -0 $fpid 2>/dev/null"
    ctr container delete e2e-force
    expect_eq "containers left" "" "$(ctr container ls -q)"
}
check "containerd: deleting tasks (stopped, and running with --force) and containers" t_delete

# A system container under the shim: the Debian rootfs with systemd the host
# tests made (hack/mkrootfs-systemd.sh), through an overlay so it stays as it is.
# `ctr task kill` (SIGTERM) is the shim's Kill, what a Kubernetes pod deletion
# sends: systemd must halt on its own.
SYSTEMD_ROOTFS=$(cd "$here/../.." && pwd)/target/systemd-rootfs
t_systemd() {
    local o=$T/sd
    mkdir -p "$o/upper" "$o/work" "$o/merged"
    mount -t overlay overlay -o "lowerdir=$SYSTEMD_ROOTFS,upperdir=$o/upper,workdir=$o/work" "$o/merged"
    trap 'rm_task e2e-sd; umount "$o/merged" 2>/dev/null || true' EXIT
    # No image, so no environment: commands by absolute path.
    ctr run --rm $RR --rootfs "$o/merged" e2e-sd /sbin/init </dev/null >"$T/logs/e2e-sd" 2>&1 &
    local run=$!
    state=""
    for _ in $(seq 60); do
        state=$(ctr task exec --exec-id st e2e-sd /bin/systemctl is-system-running 2>/dev/null) || true
        [ "$state" = running ] || [ "$state" = degraded ] && break
        sleep 0.5
    done
    [ "$state" = running ] || {
        ctr task exec --exec-id failed e2e-sd /bin/systemctl --failed --no-pager >&2 || true
        echo "systemd is '$state'; its output:" >&2
        tail -n 20 "$T/logs/e2e-sd" >&2 || true
        return 1
    }
    read -r inside outside size < "/proc/$(tpid e2e-sd)/uid_map"
    expect_eq "systemd's uid_map (inside, size)" "0 65536" "$inside $size"
    [ "$outside" -ge 1073741824 ] || { echo "systemd runs as host UID $outside" >&2; return 1; }
    start=$(date +%s%N)
    ctr task kill e2e-sd
    local code=0
    wait "$run" || code=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "ctr task kill (SIGTERM): systemd halted in ${ms} ms, exit status $code"
    expect_eq "init's exit status (not 137: no SIGKILL)" 0 "$code"
    # The runtime let go of the rootfs: it unmounts.
    umount "$o/merged" || { grep -F "$o" /proc/self/mountinfo >&2; return 1; }
}
if [ -d "$SYSTEMD_ROOTFS" ]; then
    check "containerd: systemd boots to running and task kill (SIGTERM) halts it cleanly" t_systemd
else
    skip "containerd: systemd system container" "no $SYSTEMD_ROOTFS (test.sh makes it with debootstrap)"
fi


# ---------------------------------------------------------------------------
# CRI: what kubelet does with a RuntimeClass whose handler is runvz.
cri() { /usr/bin/python3 "$here/cri.py" "$T/containerd.sock" "$@"; }
CRI_RT_ROOT=$RT_ROOT/k8s.io
CRI_BUNDLES=$T/state/io.containerd.runtime.v2.task/k8s.io

t_cri_pod() {
    mkdir -p "$T/podlogs"
    # (containerd matches pod_annotations with path.Match: "runvz.*" takes keys
    # without a "/". runvz.ubc.numproc=unlimited is one runvz knows, setting no
    # limit, and that other runtimes ignore.)
    cat >"$T/pod.json" <<EOF2
{"name": "e2e-pod", "uid": "e2e-uid-$$", "namespace": "default", "handler": "runvz",
 "cgroup_parent": "/$CRI_CG", "log_directory": "$T/podlogs",
 "annotations": {"runvz.ubc.numproc": "unlimited", "other.e2e/ignored": "no"}}
EOF2
    expect_match "CRI version" "^containerd " "$(cri version)"
    sid=$(cri runp "$T/pod.json")
    echo "$sid" >>"$T/cri-pods"
    echo "$sid" >"$T/cri-sandbox"
    expect_eq "sandbox state" READY "$(cri podstatus "$sid")"
    # The sandbox (pause) container was made by $RUNTIME with Root = $RT_ROOT.
    st=$("$RUNTIME" --root "$CRI_RT_ROOT" state "$sid")
    expect_match "runtime state" '"status": *"running"' "$st"
    pid=$(echo "$st" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n 1)
    expect_eq "pause process" "sleep 2147483647 " "$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    expect_eq "cgroupsPath <cgroup_parent>/<id>" "/sys/fs/cgroup/memory/$CRI_CG/$sid" "$(cgroup_dir_of "$pid" memory)"
    ann=$(tr -d ' \n' <"$CRI_BUNDLES/$sid/config.json")
    expect_match "pod annotation matching pod_annotations reaches config.json" '"runvz.ubc.numproc":"unlimited"' "$ann"
    expect_nomatch "other pod annotations do not" 'other.e2e/ignored' "$ann"
    expect_match "runtime state shows the annotation" '"runvz.ubc.numproc": *"unlimited"' "$st"
}

t_cri_container() {
    sid=$(cat "$T/cri-sandbox")
    cat >"$T/ctr.json" <<EOF2
{"name": "app", "image": "$IMAGE", "command": ["sh", "-c", $(printf '%s' "$LOOP" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')],
 "log_path": "app.log", "annotations": {"e2e": "app"}}
EOF2
    cid=$(cri create "$sid" "$T/pod.json" "$T/ctr.json")
    echo "$cid" >"$T/cri-container"
    expect_eq "state after create" "CREATED 0" "$(cri status "$cid")"
    cri start "$cid"
    expect_eq "state after start" "RUNNING 0" "$(cri status "$cid")"
    st=$("$RUNTIME" --root "$CRI_RT_ROOT" state "$cid")
    pid=$(echo "$st" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n 1)
    spid=$("$RUNTIME" --root "$CRI_RT_ROOT" state "$sid" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n 1)
    for n in net ipc uts; do
        expect_eq "joins the sandbox's $n namespace" "$(readlink /proc/$spid/ns/$n)" "$(readlink /proc/$pid/ns/$n)"
    done
    expect_eq "cgroupsPath" "/sys/fs/cgroup/memory/$CRI_CG/$cid" "$(cgroup_dir_of "$pid" memory)"
    out=$(cri exec "$cid" sh -c 'echo exec-out; hostname; exit 3') && rc=0 || rc=$?
    expect_match "ExecSync output" "^exec-out$" "$out"
    expect_match "pod address on the bridge" "inet $POD_SUBNET\.[0-9]+/24" "$(cri exec "$cid" ip -4 -o addr show eth0)"
    expect_match "pod hostname" "^e2e-pod$" "$out"
    expect_eq "ExecSync exit status" 3 "$rc"
    wait_for 10 grep -q started "$T/podlogs/app.log"
}

t_cri_teardown() {
    sid=$(cat "$T/cri-sandbox")
    cid=$(cat "$T/cri-container")
    cri stop "$cid" 10
    expect_eq "stopped by TERM (trap: exit 0)" "EXITED 0" "$(cri status "$cid")"
    grep -q "got TERM" "$T/podlogs/app.log" || { echo "the container never saw TERM" >&2; return 1; }
    cri rm "$cid"
    cri stopp "$sid"
    cri rmp "$sid"
    for id in "$cid" "$sid"; do
        if "$RUNTIME" --root "$CRI_RT_ROOT" state "$id" >/dev/null 2>&1; then echo "runtime still has $id" >&2; return 1; fi
        wait_for 10 test ! -d "/sys/fs/cgroup/memory/$CRI_CG/$id"
    done
    expect_eq "k8s.io containers left" "" "$(ctr -n k8s.io container ls -q)"
}

if /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
    check "containerd: CRI RunPodSandbox, handler runvz: sandbox by \$RUNTIME (Root, cgroup_parent, pod_annotations)" t_cri_pod
    check "containerd: CRI container in the pod (joins its namespaces, ExecSync, log)" t_cri_container
    check "containerd: CRI stop/remove container and sandbox" t_cri_teardown
else
    skip "containerd: CRI pod through the runvz handler" "python3-grpcio is not installed"
fi

finish
