#!/bin/bash
# hack/e2e/podman.sh — Podman (through conmon) end to end with the runtime at
# $RUNTIME.
#
# Private configuration through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF:
# cgroupfs manager (no separate conmon cgroup: see cgroups = "no-conmon" below),
# overlay storage with a private graphroot/runroot/tmpdir,
# default_ulimits within root's hard limits (root here lacks CAP_SYS_RESOURCE),
# the runtime registered as `runvz` under [engine.runtimes] and listed in
# runtime_supports_json, CNI networking from a private config directory (one
# bridge network, `e2ebr`, with no firewall plugin, so the host's iptables are
# never touched). Loads the offline-built image, runs one check per line and
# removes everything it created, even on failure.
#
# env: RUNTIME (absolute path, required), IMAGE_ARCHIVE, E2E_CACHE, E2E_LOG_DIR.
set -u
set -a
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

require_runtime
require_cmds podman conmon script timeout ip busybox

suite_setup podman

T=$(mktemp -d /tmp/rvz-pm.XXXXXX)
# conmon writes an `oom` file into its working directory when the container
# is OOM-killed (t_oom): that is this scratch directory, not the caller's.
cd "$T"
BRIDGE=rvze2e$$
BRIDGE=${BRIDGE:0:15}
SUBNET_PREFIX=10.213.77
# Podman's cgroupfs parent is fixed (/libpod_parent): removed at the end when
# this suite made it.
if [ -d /sys/fs/cgroup/memory/libpod_parent ]; then CG_PARENT=""; else CG_PARENT=libpod_parent; fi
# What is on /sys/fs/cgroup's tmpfs outside the mounted hierarchies before any
# Podman call: where /sys/fs/cgroup/{hugetlb,net_cls,net_prio,perf_event} are
# plain directories Podman makes its libpod_parent trees in them too (lib.sh,
# plain_cgroup_snapshot). Cleanup removes exactly what appears there during the
# run and a check of its own says so; "cleanup left no cgroups" looks at the
# mounted hierarchies only, so the engine's plain directories (and earlier
# runs' ones) are never counted as cgroups the runtime left.
plain_cgroup_snapshot
# Fixed host paths Podman, CNI and the image library use.
track_host_path /run/netns /var/lib/cni /var/lib/containers /run/containers

CONTAINERS_CONF=$T/containers.conf
CONTAINERS_STORAGE_CONF=$T/storage.conf
# Podman's runtime calls and conmon carry no private path in their command
# line, but CONTAINERS_CONF in their environment.
E2E_ENV_MARK=CONTAINERS_CONF=$CONTAINERS_CONF
mkdir -p "$T/cni" "$T/cni-ipam" "$T/tmp"

cat >"$CONTAINERS_CONF" <<EOF
[containers]
# Podman's defaults (NOFILE 1048576, a large NPROC) are above root's hard
# limits here, and root lacks CAP_SYS_RESOURCE to raise them.
default_ulimits = ["nofile=1024:4096", "nproc=4096:4096"]
init_path = "/usr/libexec/podman/catatonit"
# No cgroup of Podman's own for conmon (the containers' cgroups, made by the
# runtime at their cgroupsPath, are unchanged). Where plain directories named
# hugetlb/net_cls/net_prio/perf_event sit on /sys/fs/cgroup's tmpfs, Podman
# takes them for v1 hierarchies and puts each conmon cgroup there too: it writes
# conmon's PID into a "tasks" that is a regular file there, can never rmdir
# that directory again, and "podman pod rm" exits 125 with "removing pod ID
# conmon cgroup: remove /sys/fs/cgroup/hugetlb/libpod_parent/ID/conmon: ...
# directory not empty" after removing everything else. Set whatever is on the
# host, so the suite runs the same before and after such directories appear.
cgroups = "no-conmon"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/tmp"
volume_path = "$T/volumes"
runtime = "runvz"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "runvz"]

[engine.runtimes]
runvz = ["$RUNTIME"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni"]
network_config_dir = "$T/cni"
default_network = "e2ebr"
EOF

cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$T/storage"
runroot = "$T/run"
EOF

cat >"$T/cni/e2ebr.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "e2ebr",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$T/cni-ipam",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "$SUBNET_PREFIX.0/24", "gateway": "$SUBNET_PREFIX.1"}]]
      }
    }
  ]
}
EOF

echo "# podman: RUNTIME=$RUNTIME, work dir $T, log $E2E_LOG"

cleanup_engine() {
    local pid
    kill_runtime_calls
    timeout 15 podman pod rm -af -t 0 >/dev/null 2>&1 || true
    timeout 15 podman rm -af -t 0 >/dev/null 2>&1 || true
    timeout 15 podman volume rm -af >/dev/null 2>&1 || true
    timeout 15 podman rmi -af >/dev/null 2>&1 || true
    # conmon, runtime calls and anything they still hold: by this suite's
    # private paths, or CONTAINERS_CONF in their environment.
    kill_runtime_calls
    for pid in $(pids_matching "$T/"); do kill_tree KILL "$pid"; done
    sleep 0.5
    umount_under "$T"
    ip link del "$BRIDGE" 2>/dev/null || true
    [ -n "$CG_PARENT" ] && rm_cgroup_tree "$CG_PARENT"
    # Podman's libpod_parent trees in the plain (non-hierarchy) directories:
    # only what this run made, see plain_cgroup_snapshot above.
    rm_plain_cgroup_new
    rm -rf "$T"
    cleanup_host_paths
    return 0
}
on_exit cleanup_engine

e2e_no_bridge() { ! ip link show "$BRIDGE" >/dev/null 2>&1 || { echo "bridge $BRIDGE still exists" >&2; return 1; }; }
after_cleanup() {
    leftover_checks podman
    check "podman: cleanup removed the bridge $BRIDGE" e2e_no_bridge
}

if ! out=$(timeout 60 podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}} {{.Host.CgroupManager}} {{.Store.GraphRoot}}' 2>&1); then
    die "podman info failed: $out"
fi
log "podman info: $out"
if ! timeout 120 podman load -q -i "$IMAGE_ARCHIVE" >>"$E2E_LOG" 2>&1; then
    die "podman load -i $IMAGE_ARCHIVE failed (see $E2E_LOG)"
fi

# ---------------------------------------------------------------------------
N="--network none"
LOOP='trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 0.2; done'

ppid_of() { podman inspect -f '{{.State.Pid}}' "$1"; }
pstatus() { podman inspect -f '{{.State.Status}}' "$1"; }
pexit() { podman inspect -f '{{.State.ExitCode}}' "$1"; }
pid_of_id() { podman inspect -f '{{.Id}}' "$1"; }
plogs_have() { podman logs "$1" 2>&1 | grep -q -- "$2"; }
# The runtime's own view: Podman passes no --root, so its default state dir.
rt_state() { "$RUNTIME" state "$1"; }
capeff() { awk '/^CapEff/ {print $2}'; }

t_info() {
    out=$(podman info --format '{{.Host.OCIRuntime.Name}}|{{.Host.OCIRuntime.Path}}|{{.Host.CgroupManager}}')
    expect_eq "podman info" "runvz|$RUNTIME|cgroupfs" "$out"
    out=$(podman version --format '{{.Server.Version}}' 2>/dev/null || podman version)
    [ -n "$out" ]
}
check "podman: uses runvz (from [engine.runtimes]) with the cgroupfs manager" t_info

t_run_output() {
    out=$(podman run --rm $N "$IMAGE" echo hello from runvz)
    expect_eq "output" "hello from runvz" "$out"
    expect_eq "containers left after --rm" "" "$(podman ps -aq)"
}
gate "podman: run --rm prints the output and removes the container" t_run_output

t_exit_codes() {
    expect_rc "exit 0" 0 podman run --rm $N "$IMAGE" true
    expect_rc "exit 42" 42 podman run --rm $N "$IMAGE" sh -c 'exit 42'
    out=$(podman run --rm $N "$IMAGE" /no/such/binary 2>&1) && rc=0 || rc=$?
    expect_eq "missing binary exit status" 127 "$rc"
    # The message comes from the runtime's JSON log (runtime_supports_json).
    expect_match "runtime's error reaches podman" "/no/such/binary" "$out"
}
check "podman: run exit codes (0, 42, 127 with the runtime's error message)" t_exit_codes

t_net_none() {
    out=$(podman run --rm --network none "$IMAGE" sh -c 'ls /sys/class/net; ip -o link show lo; readlink /proc/self/ns/net')
    expect_eq "interfaces" "lo" "$(echo "$out" | head -n 1)"
    # as runc does for a new network namespace, lo is up (127.0.0.1 works)
    expect_match "lo is up" "^1: lo: <[^>]*,UP[,>]" "$(echo "$out" | sed -n 2p)"
    ns=$(echo "$out" | tail -n 1)
    [ "$ns" != "$(readlink /proc/self/ns/net)" ] || { echo "container shares the host's network namespace" >&2; return 1; }
}
check "podman: --network none gives a namespace with only lo, up" t_net_none

t_bridge() {
    out=$(podman run --rm --network e2ebr "$IMAGE" sh -c 'ip -4 -o addr show eth0; ip route')
    expect_match "eth0 address" "inet $SUBNET_PREFIX\.[0-9]+/24" "$out"
    expect_match "default route" "default via $SUBNET_PREFIX\.1" "$out"
    trap 'podman rm -f -t 0 e2e-web >/dev/null 2>&1' EXIT
    podman run -d --name e2e-web --network e2ebr "$IMAGE" sh -c 'mkdir /www; echo hello-bridge >/www/index.html; exec httpd -f -p 8080 -h /www' >/dev/null
    ip=$(podman inspect -f '{{.NetworkSettings.Networks.e2ebr.IPAddress}}' e2e-web)
    expect_match "container IP" "^$SUBNET_PREFIX\." "$ip"
    # (busybox wget's -T crashes in this busybox: `timeout` bounds it instead)
    wait_for 10 timeout 5 busybox wget -q -O /dev/null "http://$ip:8080/"
    expect_eq "served to the host over the bridge" hello-bridge "$(timeout 5 busybox wget -q -O - "http://$ip:8080/")"
    out=$(podman run --rm --network e2ebr "$IMAGE" timeout 5 wget -q -O - "http://$ip:8080/")
    expect_eq "container to container" hello-bridge "$out"
    podman rm -f -t 0 e2e-web >/dev/null
}
check "podman: a CNI bridge network (address, route, host and container reach a server)" t_bridge

t_stdin() {
    out=$(printf 'one\ntwo\nthree\n' | podman run --rm -i $N "$IMAGE" sh -c 'wc -l; echo done')
    expect_eq "stdin" "3 done" "$(echo $out)"
}
check "podman: run -i passes stdin and closes it on EOF" t_stdin

t_tty() {
    out=$(tty_run "podman run --rm -it $N $IMAGE sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; exit 3'") && rc=0 || rc=$?
    expect_match "tty" "/dev/pts/[0-9]+" "$out"
    expect_match "stdin and stdout are the terminal" "both-tty" "$out"
    expect_eq "exit status through the tty" 3 "$rc"
}
check "podman: run -it gives a terminal" t_tty

t_detach_exec() {
    podman run -d --name e2e-exec $N "$IMAGE" sh -c "$LOOP" >/dev/null
    expect_eq "status" running "$(pstatus e2e-exec)"
    st=$(rt_state "$(pid_of_id e2e-exec)")
    expect_match "runtime state (default root)" '"status": *"running"' "$st"
    expect_match "runtime state pid" "\"pid\": *$(ppid_of e2e-exec)[,}]" "$st"
    out=$(podman exec e2e-exec sh -c 'echo exec-out; tr "\0" " " </proc/1/cmdline')
    expect_match "exec output" "^exec-out$" "$out"
    expect_match "exec sees the container's PID 1" "^sh -c trap" "$out"
    expect_rc "exec exit status" 7 podman exec e2e-exec sh -c 'exit 7'
    out=$(echo piped | podman exec -i e2e-exec sh -c 'read l; echo "got $l"')
    expect_eq "exec -i" "got piped" "$out"
    out=$(tty_run "podman exec -it e2e-exec sh -c 'tty; exit 4'") && rc=0 || rc=$?
    expect_match "exec -it" "/dev/pts/[0-9]+" "$out"
    expect_eq "exec -it exit status" 4 "$rc"
    out=$(podman exec -u 1000 -w /tmp -e X=y e2e-exec sh -c 'echo $(id -u) $(pwd) $X')
    expect_eq "exec -u -w -e" "1000 /tmp y" "$out"
}
check "podman: run -d then exec (plain, exit codes, -i, -it, -u/-w/-e)" t_detach_exec

t_top() {
    out=$(podman top e2e-exec pid args)
    expect_match "top" "sh -c trap" "$out"
    out=$(podman top e2e-exec hpid args)
    expect_match "top hpid" "^$(ppid_of e2e-exec) " "$out"
}
check "podman: top lists the container's processes" t_top

t_stats() {
    out=$(podman stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' e2e-exec)
    expect_nomatch "memory usage" "^0B" "${out%%|*}"
    expect_match "pids" "^[1-9][0-9]*$" "${out##*|}"
}
check "podman: stats --no-stream reads the container's cgroup" t_stats

t_pause() {
    pid=$(ppid_of e2e-exec)
    podman pause e2e-exec >/dev/null
    expect_eq "status" paused "$(pstatus e2e-exec)"
    expect_eq "freezer.state" FROZEN "$(cgroup_value "$pid" freezer freezer.state)"
    expect_match "runtime state" '"status": *"paused"' "$(rt_state "$(pid_of_id e2e-exec)")"
    podman unpause e2e-exec >/dev/null
    expect_eq "status" running "$(pstatus e2e-exec)"
    expect_eq "freezer.state" THAWED "$(cgroup_value "$pid" freezer freezer.state)"
    expect_eq "exec after unpause" ok "$(podman exec e2e-exec echo ok)"
}
check "podman: pause/unpause freezes and thaws the cgroup" t_pause

t_update() {
    pid=$(ppid_of e2e-exec)
    podman update --memory 96m --memory-swap 96m --cpus 0.25 --cpu-shares 256 e2e-exec >/dev/null
    expect_eq "memory.limit_in_bytes" 100663296 "$(cgroup_value "$pid" memory memory.limit_in_bytes)"
    expect_eq "cpu.cfs_quota_us" 25000 "$(cgroup_value "$pid" cpu cpu.cfs_quota_us)"
    expect_eq "cpu.shares" 256 "$(cgroup_value "$pid" cpu cpu.shares)"
}
check "podman: update changes memory and CPU limits in the cgroup" t_update

t_stop_term() {
    start=$(date +%s)
    podman stop -t 20 e2e-exec >/dev/null
    took=$(($(date +%s) - start))
    expect_eq "status" exited "$(pstatus e2e-exec)"
    expect_eq "exit code" 0 "$(pexit e2e-exec)"
    plogs_have e2e-exec "got TERM" || { echo "the container never saw TERM" >&2; return 1; }
    [ "$took" -lt 10 ] || { echo "stop took ${took}s" >&2; return 1; }
}
check "podman: stop sends TERM (the trap runs, exit 0)" t_stop_term

t_start_again() {
    podman start e2e-exec >/dev/null
    expect_eq "status" running "$(pstatus e2e-exec)"
    wait_for 10 sh -c '[ "$(podman logs e2e-exec 2>&1 | grep -c started)" = 2 ]'
    expect_eq "exec in the restarted container" ok "$(podman exec e2e-exec echo ok)"
}
check "podman: start runs a stopped container again" t_start_again

t_stop_kill() {
    podman run -d --name e2e-stubborn $N "$IMAGE" sh -c 'trap "" TERM; echo started; while :; do sleep 0.2; done' >/dev/null
    wait_for 10 plogs_have e2e-stubborn started
    start=$(date +%s)
    podman stop -t 2 e2e-stubborn >/dev/null 2>&1
    took=$(($(date +%s) - start))
    expect_eq "exit code" 137 "$(pexit e2e-stubborn)"
    [ "$took" -ge 2 ] && [ "$took" -lt 15 ] || { echo "stop took ${took}s (want 2 to 15)" >&2; return 1; }
    podman rm e2e-stubborn >/dev/null
}
check "podman: stop -t 2 sends KILL when TERM is ignored (exit 137)" t_stop_kill

t_kill_signals() {
    podman run -d --name e2e-sig $N "$IMAGE" sh -c 'trap "echo got USR1" USR1; trap "echo got HUP" HUP; echo started; while :; do sleep 0.1; done' >/dev/null
    wait_for 10 plogs_have e2e-sig started
    podman kill -s USR1 e2e-sig >/dev/null
    wait_for 10 plogs_have e2e-sig "got USR1"
    podman kill -s 1 e2e-sig >/dev/null
    wait_for 10 plogs_have e2e-sig "got HUP"
    expect_eq "running after trapped signals" running "$(pstatus e2e-sig)"
    podman kill e2e-sig >/dev/null
    wait_for 10 sh -c '[ "$(podman inspect -f {{.State.Status}} e2e-sig)" = exited ]'
    expect_eq "exit code after KILL" 137 "$(pexit e2e-sig)"
}
check "podman: kill delivers USR1/HUP to traps, then KILL (137)" t_kill_signals

t_rm() {
    pid=$(ppid_of e2e-exec)
    memcg=$(cgroup_dir_of "$pid" memory)
    id=$(pid_of_id e2e-exec)
    podman rm -f -t 0 e2e-exec >/dev/null
    podman rm e2e-sig >/dev/null
    expect_eq "containers left" "" "$(podman ps -aq --filter name=e2e-exec --filter name=e2e-sig)"
    wait_for 10 sh -c "! kill -0 $pid"
    wait_for 10 test ! -d "$memcg"
    if rt_state "$id" >/dev/null 2>&1; then echo "runtime still has state for $id" >&2; return 1; fi
}
check "podman: rm (and rm -f of a running container) removes process, cgroup and runtime state" t_rm

t_read_only() {
    out=$(podman run --rm --read-only $N "$IMAGE" sh -c 'touch /x 2>&1; echo rc=$?; touch /tmp/ok && echo tmp-ok; grep " / " /proc/mounts')
    expect_match "write to /" "Read-only file system" "$out"
    expect_match "/tmp stays writable (read_only_tmpfs)" "^tmp-ok$" "$out"
    expect_match "root mount" " / [^ ]+ ro[, ]" "$out"
}
check "podman: --read-only makes the root filesystem read-only" t_read_only

t_volumes() {
    mkdir -p "$T/vol"
    echo from-host >"$T/vol/in"
    out=$(podman run --rm -v "$T/vol:/data" $N "$IMAGE" sh -c 'cat /data/in; echo from-container >/data/out')
    expect_eq "bind read" from-host "$out"
    expect_eq "bind write" from-container "$(cat "$T/vol/out")"
    out=$(podman run --rm -v "$T/vol:/data:ro" $N "$IMAGE" sh -c 'touch /data/y 2>&1; echo rc=$?')
    expect_match "read-only bind" "Read-only file system" "$out"
    podman volume create e2e-vol >/dev/null
    podman run --rm -v e2e-vol:/v $N "$IMAGE" sh -c 'echo kept >/v/f'
    expect_eq "named volume" kept "$(podman run --rm -v e2e-vol:/v $N "$IMAGE" cat /v/f)"
    podman volume rm e2e-vol >/dev/null
}
check "podman: volumes (bind rw, bind ro, named volume persists)" t_volumes

t_user() {
    expect_eq "--user 1000:1000" "uid=1000(e2e) gid=1000(e2e) groups=1000(e2e)" "$(podman run --rm --user 1000:1000 $N "$IMAGE" id)"
    expect_eq "--user nobody" 65534 "$(podman run --rm --user nobody $N "$IMAGE" id -u)"
    mkdir -p "$T/uvol" && chmod 777 "$T/uvol"
    podman run --rm --user 1000:1000 -v "$T/uvol:/u" $N "$IMAGE" touch /u/f
    expect_eq "owner on the host" "1000:1000" "$(stat -c %u:%g "$T/uvol/f")"
}
check "podman: --user sets uid/gid" t_user

t_env() {
    out=$(podman run --rm -e FOO=bar -e "SPACED=a b" $N "$IMAGE" sh -c 'echo "$FOO|$SPACED|$PATH|$container"')
    expect_eq "env" "bar|a b|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|podman" "$out"
}
check "podman: --env and the image's PATH reach the process" t_env

t_workdir() {
    # (Podman, unlike Docker, refuses a --workdir missing from the image.)
    expect_eq "-w" /home/e2e "$(podman run --rm -w /home/e2e $N "$IMAGE" pwd)"
    expect_eq "relative paths resolve there" /home/e2e/x "$(podman run --rm -w /home/e2e $N "$IMAGE" sh -c 'touch x; realpath x')"
}
check "podman: --workdir sets the working directory" t_workdir

t_caps() {
    # Toggling lo changes its state whichever state it is in.
    out=$(podman run --rm $N "$IMAGE" sh -c '{ ip link set lo down && ip link set lo up; } 2>&1; echo rc=$?')
    expect_match "without NET_ADMIN" "rc=[1-9]" "$out"
    out=$(podman run --rm --cap-add NET_ADMIN $N "$IMAGE" sh -c 'ip link set lo up && ip link set lo down && ip link show lo')
    expect_nomatch "with NET_ADMIN lo went down" "[<,]UP[,>]" "$out"
    out=$(podman run --rm --cap-drop CHOWN $N "$IMAGE" sh -c 'touch /tmp/f; chown 1000 /tmp/f 2>&1; echo rc=$?')
    expect_match "chown without CAP_CHOWN" "rc=1" "$out"
    expect_eq "--cap-drop ALL" 0000000000000000 "$(podman run --rm --cap-drop ALL $N "$IMAGE" cat /proc/self/status | capeff)"
}
check "podman: --cap-add/--cap-drop change what the process may do" t_caps

t_privileged() {
    out=$(podman run --rm --privileged $N "$IMAGE" sh -c 'grep CapEff /proc/self/status; ls /dev/loop-control; grep " /sys " /proc/mounts; ip link set lo up && echo net-admin')
    # Podman's --privileged asks for the capabilities root has (all but
    # CAP_SYS_RESOURCE here), every host device and a writable /sys.
    host=$(capeff </proc/self/status)
    expect_eq "CapEff = the host root's" "$host" "$(echo "$out" | capeff)"
    expect_match "host devices" "^/dev/loop-control$" "$out"
    expect_match "/sys read-write" " /sys sysfs rw" "$out"
    expect_match "network admin" "^net-admin$" "$out"
}
check "podman: --privileged (all of root's capabilities, host devices, rw /sys)" t_privileged

t_init() {
    out=$(podman run --rm --init $N "$IMAGE" sh -c 'tr "\0" " " </proc/1/cmdline; echo')
    expect_match "pid 1" "^/run/podman-init -- sh -c" "$out"
}
check "podman: --init runs catatonit as PID 1" t_init

t_uidmap() {
    mkdir -p "$T/mapvol" && chmod 777 "$T/mapvol"
    out=$(podman run --rm --uidmap 0:100000:65536 --gidmap 0:100000:65536 -v "$T/mapvol:/m" $N "$IMAGE" sh -c 'cat /proc/self/uid_map; id -u; touch /m/f; ls -ln /bin/busybox')
    expect_match "uid_map" "^ +0 +100000 +65536$" "$out"
    expect_match "root inside" "^0$" "$out"
    expect_eq "owner on the host" "100000:100000" "$(stat -c %u:%g "$T/mapvol/f")"
    expect_match "image files owned by mapped root" " 0 +0 " "$(echo "$out" | tail -n 1)"
}
check "podman: --uidmap/--gidmap run in a user namespace (host sees uid 100000)" t_uidmap

t_cgroupns() {
    out=$(podman run --rm --cgroupns private $N "$IMAGE" cat /proc/self/cgroup)
    expect_match "private: memory at /" "^[0-9]+:memory:/$" "$out"
    out=$(podman run --rm --cgroupns host $N "$IMAGE" sh -c 'cat /proc/self/cgroup; readlink /proc/self/ns/cgroup')
    expect_match "host: memory at its cgroupsPath" "^[0-9]+:memory:/libpod_parent/libpod-[0-9a-f]{64}$" "$out"
    expect_eq "host cgroup namespace" "$(readlink /proc/self/ns/cgroup)" "$(echo "$out" | tail -n 1)"
}
check "podman: --cgroupns private/host" t_cgroupns

t_tmpfs_shm() {
    out=$(podman run --rm --tmpfs /scratch:size=1m --shm-size 16m $N "$IMAGE" sh -c 'grep -E " /scratch | /dev/shm " /proc/mounts; dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>&1; echo rc=$?')
    expect_match "tmpfs" "^tmpfs /scratch tmpfs rw.*size=1024k" "$out"
    expect_match "shm" " /dev/shm tmpfs .*size=16384k" "$out"
    expect_match "tmpfs size enforced" "No space left on device" "$out"
}
check "podman: --tmpfs (size enforced) and --shm-size" t_tmpfs_shm

t_device() {
    out=$(podman run --rm --device /dev/zero:/dev/e2ezero --device /dev/fuse $N "$IMAGE" sh -c 'stat -c "%F %t:%T" /dev/e2ezero /dev/fuse; head -c 5 /dev/e2ezero | wc -c; cat /dev/fuse 2>&1 | head -n 1')
    expect_match "/dev/e2ezero" "^character special file 1:5$" "$out"
    expect_match "/dev/fuse" "^character special file a:e5$" "$out"
    expect_match "readable (devices cgroup allows it)" "^5$" "$out"
    out=$(podman run --rm --cap-add MKNOD $N "$IMAGE" sh -c 'ls /dev/fuse 2>&1; mknod /dev/f2 c 10 229 && cat /dev/f2 2>&1; true')
    expect_match "without --device" "No such file" "$out"
    expect_match "mknod'd device denied by the devices cgroup" "Operation not permitted" "$out"
}
check "podman: --device passes a host device (and only it)" t_device

t_limits() {
    podman run -d --name e2e-limits --memory 64m --memory-swap 64m --pids-limit 20 --cpus 0.5 $N "$IMAGE" sh -c "$LOOP" >/dev/null
    pid=$(ppid_of e2e-limits)
    id=$(pid_of_id e2e-limits)
    expect_eq "cgroupsPath" "/sys/fs/cgroup/memory/libpod_parent/libpod-$id" "$(cgroup_dir_of "$pid" memory)"
    expect_eq "memory.limit_in_bytes" 67108864 "$(cgroup_value "$pid" memory memory.limit_in_bytes)"
    expect_eq "pids.max" 20 "$(cgroup_value "$pid" pids pids.max)"
    expect_eq "cpu.cfs_quota_us" 50000 "$(cgroup_value "$pid" cpu cpu.cfs_quota_us)"
    expect_eq "cpu.cfs_period_us" 100000 "$(cgroup_value "$pid" cpu cpu.cfs_period_us)"
    podman rm -f -t 0 e2e-limits >/dev/null
    out=$(podman run --rm --pids-limit 10 $N "$IMAGE" sh -c 'for i in $(seq 20); do sleep 5 & done; echo all-forked' 2>&1) || true
    expect_match "fork refused at the pids limit" "can't fork" "$out"
}
check "podman: --memory/--pids-limit/--cpus land in the container's cgroup" t_limits

t_oom() {
    # The main process is OOM-killed: podman run exits 137. (conmon 2.1 does
    # not report OOMKilled on this hybrid-cgroup host for any runtime, so the
    # kill is read from the container's memory cgroup instead.)
    expect_rc "main process OOM-killed" 137 podman run --rm --memory 32m --memory-swap 32m $N "$IMAGE" tail /dev/zero
    out=$(podman run --rm --memory 32m --memory-swap 32m $N "$IMAGE" sh -c 'tail /dev/zero; echo rc=$?; cat /sys/fs/cgroup/memory/memory.oom_control' 2>&1)
    expect_match "child killed" "^rc=137$" "$out"
    expect_match "the kernel's OOM killer did it" "^oom_kill [1-9]" "$out"
}
check "podman: an allocation over --memory is OOM-killed (exit 137, oom_kill counted)" t_oom

t_pid_host() {
    out=$(podman run --rm --pid host $N "$IMAGE" sh -c 'tr "\0" " " </proc/1/cmdline; echo')
    expect_eq "PID 1 is the host's" "$(tr '\0' ' ' </proc/1/cmdline)" "$out"
    # stop with --pid host is `kill --all`: every process of the container goes.
    podman run -d --name e2e-pidhost --pid host $N "$IMAGE" sh -c 'sleep 1001 & sleep 1002 & echo started; wait' >/dev/null
    wait_for 10 plogs_have e2e-pidhost started
    pid=$(ppid_of e2e-pidhost)
    kids=$(ps -o pid= --ppid "$pid" | tr '\n' ' ')
    [ -n "$kids" ] || { echo "no children of $pid" >&2; return 1; }
    podman stop -t 1 e2e-pidhost >/dev/null 2>&1
    for k in $kids $pid; do
        wait_for 10 sh -c "! kill -0 $k 2>/dev/null" || { echo "process $k survived stop" >&2; return 1; }
    done
    podman rm e2e-pidhost >/dev/null
}
check "podman: --pid host (host's PID 1 visible; stop kills every process)" t_pid_host

t_create_init_start() {
    podman create --name e2e-cis $N "$IMAGE" sh -c 'echo ran; exit 5' >/dev/null
    expect_eq "after create" created "$(pstatus e2e-cis)"
    id=$(pid_of_id e2e-cis)
    if rt_state "$id" >/dev/null 2>&1; then echo "runtime has a container before init" >&2; return 1; fi
    podman init e2e-cis >/dev/null
    expect_eq "after init" initialized "$(pstatus e2e-cis)"
    st=$(rt_state "$id")
    expect_match "runtime state after init" '"status": *"created"' "$st"
    pid=$(ppid_of e2e-cis)
    [ "$pid" -gt 0 ] && kill -0 "$pid" || { echo "no init process after init" >&2; return 1; }
    out=$(podman start -a e2e-cis) && rc=0 || rc=$?
    expect_eq "output" ran "$out"
    expect_eq "exit status" 5 "$rc"
    expect_eq "after start" exited "$(pstatus e2e-cis)"
    podman rm e2e-cis >/dev/null
}
check "podman: create, then init (runtime state created), then start" t_create_init_start

t_pod() {
    trap 'podman pod rm -f -t 0 e2e-pod >/dev/null 2>&1' EXIT
    podman pod create --name e2e-pod --network none >/dev/null
    podman run -d --pod e2e-pod --name e2e-pod-web "$IMAGE" sh -c 'mkdir /www; echo pod-shared >/www/i; exec httpd -f -p 127.0.0.1:8080 -h /www' >/dev/null
    out=$(podman run --rm --pod e2e-pod "$IMAGE" sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do timeout 5 wget -q -O - http://127.0.0.1:8080/i && break; sleep 0.3; done')
    expect_eq "localhost of the other container" pod-shared "$out"
    web=$(readlink "/proc/$(ppid_of e2e-pod-web)/ns/net")
    infra=$(podman pod inspect -f '{{.InfraContainerID}}' e2e-pod)
    expect_eq "same netns as the infra container" "$(readlink "/proc/$(ppid_of "$infra")/ns/net")" "$web"
    expect_eq "pod status" Running "$(podman pod inspect -f '{{.State}}' e2e-pod)"
    podman pod rm -f -t 0 e2e-pod >/dev/null
    expect_eq "pod containers left" "" "$(podman ps -aq --filter pod=e2e-pod)"
}
check "podman: a pod's containers share a network namespace" t_pod

# A system container: the Debian rootfs with systemd the host tests made
# (runtime-tests/tests/system.rs, hack/mkrootfs-systemd.sh), as an image.
SYSTEMD_ROOTFS=$(cd "$here/../.." && pwd)/target/systemd-rootfs
t_systemd() {
    trap 'podman rm -f -t 0 e2e-systemd >/dev/null 2>&1' EXIT
    tar -C "$SYSTEMD_ROOTFS" -c . | podman import -q - localhost/rvz-systemd:e2e >/dev/null
    podman run -d --name e2e-systemd $N --memory 512m localhost/rvz-systemd:e2e /sbin/init >/dev/null
    state=""
    for _ in $(seq 60); do
        state=$(podman exec e2e-systemd systemctl is-system-running 2>/dev/null) || true
        [ "$state" = running ] || [ "$state" = degraded ] && break
        sleep 0.5
    done
    [ "$state" = running ] || { podman exec e2e-systemd systemctl --failed --no-pager >&2; echo "systemd is '$state'" >&2; return 1; }
    # In a user namespace of its own (runvz's default for a system container),
    # on its overlay rootfs mounted from idmapped layers: root inside owns it.
    read -r inside outside size < "/proc/$(ppid_of e2e-systemd)/uid_map"
    expect_eq "systemd's uid_map (inside, size)" "0 65536" "$inside $size"
    [ "$outside" -ge 1073741824 ] || { echo "systemd runs as host UID $outside" >&2; return 1; }
    expect_eq "owner of /etc/os-release inside" 0 "$(podman exec e2e-systemd stat -c %u /etc/os-release)"
    # Its /proc view: --memory is its MemTotal.
    expect_eq "MemTotal inside" "MemTotal: 524288 kB" "$(podman exec e2e-systemd grep MemTotal /proc/meminfo | tr -s ' ')"
    # procps free reads /proc/meminfo; sysinfo(2) (asked here by perl's
    # syscall, x86_64 number 99: totalram × mem_unit) is answered by runvz's
    # server through Podman's own seccomp profile: both the container's 512 MiB.
    expect_eq "free's total inside" "524288" "$(podman exec e2e-systemd free -k | awk '/^Mem:/ {print $2}')"
    expect_eq "sysinfo's total inside (KiB)" "524288" "$(podman exec e2e-systemd perl -e '$b = "\0" x 112; syscall(99, $b) == 0 or die "sysinfo: $!"; my ($t) = unpack("Q", substr($b, 32, 8)); my ($u) = unpack("L", substr($b, 104, 4)); print $t * $u / 1024')"
    # Its own beancounters, from inside (Podman's seccomp profile gained the
    # sysinfo rule and kept the rest).
    expect_eq "beancounters inside" "Version: 2.5" "$(podman exec e2e-systemd head -n1 /dev/.runvz/user_beancounters)"
    start=$(date +%s%N)
    podman stop -t 10 e2e-systemd >/dev/null
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "podman stop took ${ms} ms"
    code=$(podman inspect -f '{{.State.ExitCode}}' e2e-systemd)
    expect_eq "exit code (not 137: no SIGKILL)" 0 "$code"
    [ "$ms" -lt 10000 ] || { echo "podman stop took ${ms} ms: it fell back to SIGKILL" >&2; return 1; }
    podman rm e2e-systemd >/dev/null
    podman rmi localhost/rvz-systemd:e2e >/dev/null
}
if [ -d "$SYSTEMD_ROOTFS" ]; then
    check "podman: systemd boots to running and podman stop halts it cleanly" t_systemd
else
    skip "podman: systemd system container" "no $SYSTEMD_ROOTFS (the host tests make it with debootstrap)"
fi

# Disk quota (runvz.diskspace) under Podman. Its overlay storage here sits on a
# filesystem without project quotas: a container asking for a quota is refused
# with runvz's error, never run without it.
t_quota_refused() {
    out=$(podman run --rm $N --annotation runvz.diskspace=0:20M "$IMAGE" true 2>&1) && rc=0 || rc=$?
    [ "$rc" != 0 ] || { echo "a container asking for a disk quota ran without one" >&2; return 1; }
    expect_match "runvz's error reaches podman" "disk quota: .*prjquota" "$out"
    expect_eq "containers left" "" "$(podman ps -aq)"
}
check "podman: a disk quota on storage without quotas is refused with runvz's error" t_quota_refused

# With Podman's btrfs storage driver (each container's rootfs a subvolume) on a
# btrfs with quotas on, the quota is a qgroup limit: writes stop at it.
QB=$T/btrfs
PB="podman --root $QB/mnt/storage --runroot $QB/run --storage-driver btrfs"
t_quota_btrfs() {
    out=$($PB run --rm $N --annotation runvz.diskspace=0:20M "$IMAGE" \
        sh -c 'dd if=/dev/zero of=/fill bs=1M count=40 2>&1 | grep -o "Disk quota exceeded" | head -n 1; wc -c < /fill')
    expect_match "dd inside met the quota" "Disk quota exceeded" "$out"
    written=$(echo "$out" | tail -n 1)
    [ "$written" -gt $((10 << 20)) ] && [ "$written" -lt $((20 << 20)) ] ||
        { echo "wrote $written bytes under a 20 MiB quota" >&2; return 1; }
    id=$($PB run -d $N --annotation runvz.diskspace=0:20M "$IMAGE" sleep 100)
    rows=$("$RUNTIME" beancounters --format json "$id")
    expect_match "beancounters names the qgroup" '"mechanism": "btrfs_qgroup"' "$rows"
    $PB rm -f -t 0 "$id" >/dev/null
}
if command -v mkfs.btrfs >/dev/null && mkdir -p "$QB/mnt" && truncate -s 1G "$QB/img" &&
    mkfs.btrfs -q "$QB/img" >/dev/null 2>&1 && mount -o loop "$QB/img" "$QB/mnt" &&
    btrfs quota enable "$QB/mnt" && timeout 120 $PB load -q -i "$IMAGE_ARCHIVE" >>"$E2E_LOG" 2>&1; then
    check "podman: a disk quota on btrfs storage stops writes at its qgroup limit" t_quota_btrfs
    timeout 30 $PB rm -af -t 0 >/dev/null 2>&1 || true
    timeout 30 $PB rmi -af >/dev/null 2>&1 || true
    umount "$QB/mnt" 2>/dev/null || true
else
    umount "$QB/mnt" 2>/dev/null || true
    skip "podman: disk quota on btrfs storage" "cannot loop-mount a btrfs with quotas here (btrfs-progs, loop devices)"
fi

finish
