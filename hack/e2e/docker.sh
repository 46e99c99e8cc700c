#!/bin/bash
# hack/e2e/docker.sh — Docker Engine end to end with the runtime at $RUNTIME.
#
# Starts a private dockerd (own daemon.json, data-root, exec-root, pidfile,
# unix socket, cgroup parent; "bridge": "none", "iptables": false) with
#   "runtimes": {"runvz": {"path": "$RUNTIME"}}, "default-runtime": "runvz"
# loads the offline-built image, runs one check per line, stops dockerd by its
# PID and removes everything it created, even on failure.
#
# env: RUNTIME (absolute path, required), IMAGE_ARCHIVE (docker-archive from
# image.sh; built into $E2E_CACHE when unset), REF_RUNTIME (reference runtime
# for the --privileged comparison, default /usr/sbin/runc), E2E_LOG_DIR.
set -u
set -a
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

require_runtime
require_cmds dockerd docker containerd containerd-shim-runc-v2 script timeout

suite_setup docker
REF_RUNTIME=${REF_RUNTIME:-/usr/sbin/runc}

# Short path: unix socket paths below it must stay under 108 bytes.
T=$(mktemp -d /tmp/rvz-dk.XXXXXX)
CG_PARENT=rvz-e2e-docker-$$
DOCKER_HOST=unix://$T/docker.sock
DOCKER_CONFIG=$T/cli
# Directories dockerd and its shims create outside their configured paths
# (fixed in docker and containerd); removed at the end when this suite made them.
track_host_path /run/docker /run/containerd

echo "# docker: RUNTIME=$RUNTIME, work dir $T, log $E2E_LOG"

# ---------------------------------------------------------------------------
# engine lifecycle

cleanup_engine() {
    local pid c
    kill_runtime_calls
    if [ -S "$T/docker.sock" ]; then
        timeout 60 docker ps -aq 2>/dev/null | while read -r c; do
            timeout 15 docker rm -f "$c" >/dev/null 2>&1 || true
        done
        timeout 30 docker volume prune -f >/dev/null 2>&1 || true
        timeout 30 docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
    fi
    pid=$(cat "$T/dockerd.pid" 2>/dev/null || cat "$T/dockerd.mypid" 2>/dev/null || true)
    [ -n "$pid" ] && stop_pid "$pid" 20
    # Its containerd, shims and anything left in the containers (all named by
    # this suite's private paths).
    for pid in $(pids_matching "$T/"); do kill_tree KILL "$pid"; done
    sleep 0.5
    umount_under "$T"
    rm_cgroup_tree "$CG_PARENT"
    rm -rf "$T"
    cleanup_host_paths
    return 0
}
on_exit cleanup_engine

after_cleanup() { leftover_checks docker; }

cat >"$T/daemon.json" <<EOF
{
  "data-root": "$T/data",
  "exec-root": "$T/exec",
  "pidfile": "$T/dockerd.pid",
  "deprecated-key-path": "$T/key.json",
  "hosts": ["unix://$T/docker.sock"],
  "bridge": "none",
  "iptables": false,
  "ip6tables": false,
  "ip-forward": false,
  "ip-masq": false,
  "storage-driver": "overlay2",
  "cgroup-parent": "/$CG_PARENT",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "runtimes": {
    "runvz": {"path": "$RUNTIME"},
    "runc-ref": {"path": "$REF_RUNTIME"}
  },
  "default-runtime": "runvz"
}
EOF

dockerd --config-file "$T/daemon.json" >"$T/dockerd.log" 2>&1 </dev/null &
echo $! >"$T/dockerd.mypid"
if ! wait_for 60 docker version 2>>"$E2E_LOG"; then
    cat "$T/dockerd.log" >>"$E2E_LOG"
    die "dockerd did not answer on $T/docker.sock within 60s: $(tail -n 3 "$T/dockerd.log" | tr '\n' ' ')"
fi
if ! timeout 120 docker load -i "$IMAGE_ARCHIVE" >>"$E2E_LOG" 2>&1; then
    die "docker load -i $IMAGE_ARCHIVE failed (see $E2E_LOG)"
fi

# ---------------------------------------------------------------------------
# helpers for the checks

R="--runtime runvz --network none"
# A long-running container main: exits 0 on TERM.
LOOP='trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 0.2; done'

dpid() { docker inspect -f '{{.State.Pid}}' "$1"; }
dstatus() { docker inspect -f '{{.State.Status}}' "$1"; }
dexit() { docker inspect -f '{{.State.ExitCode}}' "$1"; }
drun_d() { docker run -d $R "$@" >/dev/null; }
logs_have() { docker logs "$1" 2>&1 | grep -q -- "$2"; }

# The runtime's own view (docker gives every runtime --root <exec-root>/runtime-runc/moby).
rt_state() { "$RUNTIME" --root "$T/exec/runtime-runc/moby" state "$1"; }

# ---------------------------------------------------------------------------
# checks

t_info() {
    out=$(docker info --format '{{.DefaultRuntime}} {{range $k, $v := .Runtimes}}{{$k}}={{$v.Path}} {{end}}')
    expect_match "docker info" "^runvz " "$out"
    expect_match "docker info runtimes" "runvz=$RUNTIME( |$)" "$out"
}
check "docker: daemon.json registers runvz as default-runtime" t_info

t_run_output() {
    out=$(docker run --rm $R "$IMAGE" echo hello from runvz)
    expect_eq "output" "hello from runvz" "$out"
    expect_eq "containers left after --rm" "" "$(docker ps -aq)"
}
gate "docker: run --rm prints the output and removes the container" t_run_output

t_default_runtime() {
    docker run -d --name e2e-default --network none "$IMAGE" sh -c "$LOOP" >/dev/null
    expect_eq "HostConfig.Runtime" "runvz" "$(docker inspect -f '{{.HostConfig.Runtime}}' e2e-default)"
    pid=$(dpid e2e-default)
    st=$(rt_state "$(docker inspect -f '{{.Id}}' e2e-default)")
    expect_match "runtime state status" '"status": *"running"' "$st"
    expect_match "runtime state pid" "\"pid\": *$pid[,}]" "$st"
    docker rm -f e2e-default >/dev/null
}
check "docker: run without --runtime uses default-runtime runvz (runtime state agrees)" t_default_runtime

t_exit_codes() {
    expect_rc "exit 42" 42 docker run --rm $R "$IMAGE" sh -c 'exit 42'
    expect_rc "exit 0" 0 docker run --rm $R "$IMAGE" true
    expect_rc "exit 255" 255 docker run --rm $R "$IMAGE" sh -c 'exit 255'
}
check "docker: run exit codes (0, 42, 255)" t_exit_codes

t_missing_binary() {
    # dockerd maps the runtime's create error to 127 by its wording
    # ("executable file not found" / "no such file or directory").
    out=$(docker run --rm $R "$IMAGE" /no/such/binary 2>&1) && rc=0 || rc=$?
    echo "$out"
    expect_eq "exit status" 127 "$rc"
}
check "docker: run of a missing binary exits 127" t_missing_binary

t_stdin() {
    out=$(printf 'one\ntwo\nthree\n' | docker run --rm -i $R "$IMAGE" sh -c 'wc -l; echo done')
    expect_eq "stdin lines counted" "3 done" "$(echo $out)"
}
check "docker: run -i passes stdin and closes it on EOF" t_stdin

t_tty() {
    out=$(tty_run "docker run --rm -it $R $IMAGE sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; exit 3'") && rc=0 || rc=$?
    expect_match "tty" "^/dev/pts/[0-9]+" "$out"
    expect_match "stdin and stdout are the terminal" "^both-tty$" "$out"
    expect_eq "exit status through the tty" 3 "$rc"
}
check "docker: run -it gives a terminal" t_tty

t_init() {
    out=$(docker run --rm --init $R "$IMAGE" sh -c 'cat /proc/1/cmdline | tr "\0" " "; echo; sleep 1 & wait; echo ok')
    expect_match "pid 1" "^/sbin/docker-init -- " "$out"
    expect_match "child ran" "^ok$" "$out"
}
check "docker: run --init runs docker-init as PID 1" t_init

t_detach_exec() {
    drun_d --name e2e-exec "$IMAGE" sh -c "$LOOP"
    expect_eq "status" running "$(dstatus e2e-exec)"
    out=$(docker exec e2e-exec sh -c 'echo exec-out; cat /proc/1/cmdline | tr "\0" " "')
    expect_match "exec output" "^exec-out$" "$out"
    expect_match "exec sees the container's PID 1" "^sh -c trap" "$out"
    expect_rc "exec exit status" 7 docker exec e2e-exec sh -c 'exit 7'
    expect_rc "exec of a missing binary" 126 docker exec e2e-exec /no/such/binary
    out=$(echo piped | docker exec -i e2e-exec sh -c 'read l; echo "got $l"')
    expect_eq "exec -i" "got piped" "$out"
    out=$(tty_run "docker exec -it e2e-exec sh -c 'tty; exit 4'") && rc=0 || rc=$?
    expect_match "exec -it tty" "^/dev/pts/[0-9]+" "$out"
    expect_eq "exec -it exit status" 4 "$rc"
    out=$(docker exec -u 1000 -w /tmp -e X=y e2e-exec sh -c 'echo $(id -u) $(pwd) $X')
    expect_eq "exec -u -w -e" "1000 /tmp y" "$out"
}
check "docker: run -d then exec (plain, exit codes, -i, -it, -u/-w/-e)" t_detach_exec

t_top() {
    out=$(docker top e2e-exec)
    expect_match "top lists the main process" "sh -c trap" "$out"
    pid=$(dpid e2e-exec)
    expect_match "top shows host PIDs" "^[^ ]+ +$pid " "$out"
}
check "docker: top lists the container's processes" t_top

t_stats() {
    out=$(docker stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' e2e-exec)
    mem=${out%%|*}
    pids=${out##*|}
    expect_nomatch "memory usage" "^0B" "$mem"
    expect_match "pids" "^[1-9][0-9]*$" "$pids"
}
check "docker: stats --no-stream reads the container's cgroup" t_stats

t_pause() {
    pid=$(dpid e2e-exec)
    docker pause e2e-exec >/dev/null
    expect_eq "status" paused "$(dstatus e2e-exec)"
    expect_eq "freezer.state" FROZEN "$(cgroup_value "$pid" freezer freezer.state)"
    expect_match "process state" "^State:[[:space:]]+D" "$(grep State /proc/$pid/status)"
    docker unpause e2e-exec >/dev/null
    expect_eq "status" running "$(dstatus e2e-exec)"
    expect_eq "freezer.state" THAWED "$(cgroup_value "$pid" freezer freezer.state)"
    expect_eq "exec after unpause" ok "$(docker exec e2e-exec echo ok)"
}
check "docker: pause/unpause freezes and thaws the cgroup" t_pause

t_update() {
    pid=$(dpid e2e-exec)
    docker update --memory 96m --memory-swap 96m --pids-limit 40 --cpus 0.25 e2e-exec >/dev/null
    expect_eq "memory.limit_in_bytes" 100663296 "$(cgroup_value "$pid" memory memory.limit_in_bytes)"
    expect_eq "pids.max" 40 "$(cgroup_value "$pid" pids pids.max)"
    expect_eq "cpu.cfs_quota_us" 25000 "$(cgroup_value "$pid" cpu cpu.cfs_quota_us)"
}
check "docker: update changes memory, pids and CPU limits in the cgroup" t_update

t_stop_term() {
    start=$(date +%s)
    docker stop -t 20 e2e-exec >/dev/null
    took=$(($(date +%s) - start))
    expect_eq "status" exited "$(dstatus e2e-exec)"
    expect_eq "exit code (trapped TERM, exit 0)" 0 "$(dexit e2e-exec)"
    logs_have e2e-exec "got TERM" || { echo "the container never saw TERM" >&2; return 1; }
    [ "$took" -lt 10 ] || { echo "stop took ${took}s: TERM was not delivered" >&2; return 1; }
}
check "docker: stop sends TERM (the trap runs, exit 0)" t_stop_term

t_start_again() {
    docker start e2e-exec >/dev/null
    expect_eq "status" running "$(dstatus e2e-exec)"
    wait_for 10 sh -c '[ "$(docker logs e2e-exec 2>&1 | grep -c started)" = 2 ]'
}
check "docker: start runs a stopped container again" t_start_again

t_stop_kill() {
    drun_d --name e2e-stubborn "$IMAGE" sh -c 'trap "" TERM; echo started; while :; do sleep 0.2; done'
    wait_for 10 logs_have e2e-stubborn started
    start=$(date +%s)
    docker stop -t 2 e2e-stubborn >/dev/null
    took=$(($(date +%s) - start))
    expect_eq "exit code" 137 "$(dexit e2e-stubborn)"
    [ "$took" -ge 2 ] || { echo "stopped after ${took}s, before the -t 2 timeout" >&2; return 1; }
    [ "$took" -lt 15 ] || { echo "stop took ${took}s" >&2; return 1; }
    docker rm e2e-stubborn >/dev/null
}
check "docker: stop -t 2 sends KILL when TERM is ignored (exit 137)" t_stop_kill

t_restart() {
    old=$(dpid e2e-exec)
    started=$(docker inspect -f '{{.State.StartedAt}}' e2e-exec)
    docker restart -t 10 e2e-exec >/dev/null
    new=$(dpid e2e-exec)
    expect_eq "status" running "$(dstatus e2e-exec)"
    [ "$new" != "$old" ] && [ "$new" -gt 0 ] || { echo "pid did not change ($old -> $new)" >&2; return 1; }
    [ "$(docker inspect -f '{{.State.StartedAt}}' e2e-exec)" != "$started" ] || { echo "StartedAt unchanged" >&2; return 1; }
    ! kill -0 "$old" 2>/dev/null || { echo "old process $old still alive" >&2; return 1; }
    wait_for 10 sh -c '[ "$(docker logs e2e-exec 2>&1 | grep -c "got TERM")" = 2 ]'
}
check "docker: restart stops (TERM) and starts a new process" t_restart

t_kill_signals() {
    drun_d --name e2e-sig "$IMAGE" sh -c 'trap "echo got USR1" USR1; trap "echo got HUP" HUP; echo started; while :; do sleep 0.1; done'
    wait_for 10 logs_have e2e-sig started
    docker kill -s USR1 e2e-sig >/dev/null
    wait_for 10 logs_have e2e-sig "got USR1"
    docker kill -s SIGHUP e2e-sig >/dev/null
    wait_for 10 logs_have e2e-sig "got HUP"
    expect_eq "still running after trapped signals" running "$(dstatus e2e-sig)"
    docker kill -s 10 e2e-sig >/dev/null
    wait_for 10 sh -c '[ "$(docker logs e2e-sig 2>&1 | grep -c "got USR1")" = 2 ]'
    docker kill e2e-sig >/dev/null
    wait_for 10 sh -c '[ "$(docker inspect -f {{.State.Status}} e2e-sig)" = exited ]'
    expect_eq "exit code after kill (KILL)" 137 "$(dexit e2e-sig)"
}
check "docker: kill delivers USR1/HUP/10 to traps, then KILL (137)" t_kill_signals

t_rm_f() {
    pid=$(dpid e2e-exec)
    memcg=$(cgroup_dir_of "$pid" memory)
    id=$(docker inspect -f '{{.Id}}' e2e-exec)
    docker rm -f e2e-exec e2e-sig >/dev/null
    expect_eq "containers left" "" "$(docker ps -aq --filter name=e2e-exec --filter name=e2e-sig)"
    wait_for 10 sh -c "! kill -0 $pid"
    wait_for 10 test ! -d "$memcg"
    if rt_state "$id" >/dev/null 2>&1; then echo "runtime still has state for $id" >&2; return 1; fi
}
check "docker: rm -f kills and removes a running container (process, cgroup, runtime state gone)" t_rm_f

t_read_only() {
    out=$(docker run --rm --read-only $R "$IMAGE" sh -c 'touch /x 2>&1; echo rc=$?; grep " / " /proc/mounts')
    expect_match "write to /" "Read-only file system" "$out"
    expect_match "write status" "^rc=1$" "$out"
    expect_match "root mount" " / [^ ]+ ro[, ]" "$out"
}
check "docker: --read-only makes the root filesystem read-only" t_read_only

t_volumes() {
    mkdir -p "$T/vol"
    echo from-host >"$T/vol/in"
    out=$(docker run --rm -v "$T/vol:/data" $R "$IMAGE" sh -c 'cat /data/in; echo from-container >/data/out')
    expect_eq "bind read" from-host "$out"
    expect_eq "bind write" from-container "$(cat "$T/vol/out")"
    out=$(docker run --rm -v "$T/vol:/data:ro" $R "$IMAGE" sh -c 'touch /data/y 2>&1; echo rc=$?')
    expect_match "read-only bind" "Read-only file system" "$out"
    [ ! -e "$T/vol/y" ] || { echo "wrote through a :ro volume" >&2; return 1; }
    docker volume create e2e-vol >/dev/null
    docker run --rm -v e2e-vol:/v $R "$IMAGE" sh -c 'echo kept >/v/f'
    expect_eq "named volume" kept "$(docker run --rm -v e2e-vol:/v $R "$IMAGE" cat /v/f)"
    docker volume rm e2e-vol >/dev/null
}
check "docker: volumes (bind rw, bind ro, named volume persists)" t_volumes

t_user() {
    expect_eq "--user 1000:1000" "uid=1000(e2e) gid=1000(e2e) groups=1000(e2e)" "$(docker run --rm --user 1000:1000 $R "$IMAGE" id)"
    expect_eq "--user nobody" 65534 "$(docker run --rm --user nobody $R "$IMAGE" id -u)"
    mkdir -p "$T/uvol" && chmod 777 "$T/uvol"
    docker run --rm --user 1000:1000 -v "$T/uvol:/u" $R "$IMAGE" touch /u/f
    expect_eq "owner of a file it wrote" "1000:1000" "$(stat -c %u:%g "$T/uvol/f")"
    out=$(docker run --rm --user 1000 $R "$IMAGE" sh -c 'cat /proc/self/status' | awk '/^CapEff/ {print $2}')
    expect_eq "non-root CapEff" 0000000000000000 "$out"
}
check "docker: --user sets uid/gid (files on the host owned by them)" t_user

t_env() {
    printf 'FROMFILE=yes\n' >"$T/envfile"
    out=$(docker run --rm -e FOO=bar -e "SPACED=a b" --env-file "$T/envfile" $R "$IMAGE" sh -c 'echo "$FOO|$SPACED|$FROMFILE|$PATH|$HOSTNAME"')
    expect_match "env" "^bar\|a b\|yes\|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\|[0-9a-f]{12}$" "$out"
}
check "docker: --env/--env-file and the image's PATH reach the process" t_env

t_workdir() {
    expect_eq "-w" /work/dir "$(docker run --rm -w /work/dir $R "$IMAGE" pwd)"
    expect_eq "default" / "$(docker run --rm $R "$IMAGE" pwd)"
}
check "docker: --workdir sets (and creates) the working directory" t_workdir

capeff() { awk '/^CapEff/ {print $2}'; }

t_cap_add() {
    # Toggling lo changes its state whichever state it is in.
    out=$(docker run --rm $R "$IMAGE" sh -c '{ ip link set lo down && ip link set lo up; } 2>&1; echo rc=$?')
    expect_match "without NET_ADMIN" "rc=[1-9]" "$out"
    out=$(docker run --rm --cap-add NET_ADMIN $R "$IMAGE" sh -c 'ip link set lo up && ip link show lo')
    expect_match "with NET_ADMIN lo is up" "UP" "$out"
    eff=$(docker run --rm --cap-add NET_ADMIN $R "$IMAGE" cat /proc/self/status | capeff)
    [ $(( 0x$eff & (1 << 12) )) -ne 0 ] || { echo "CAP_NET_ADMIN not in CapEff $eff" >&2; return 1; }
}
check "docker: --cap-add NET_ADMIN grants it (ip link works)" t_cap_add

t_cap_drop() {
    out=$(docker run --rm --cap-drop CHOWN $R "$IMAGE" sh -c 'touch /tmp/f; chown 1000 /tmp/f 2>&1; echo rc=$?')
    expect_match "chown without CAP_CHOWN" "rc=1" "$out"
    expect_eq "chown with default caps" "1000" "$(docker run --rm $R "$IMAGE" sh -c 'touch /tmp/f; chown 1000 /tmp/f; stat -c %u /tmp/f')"
    expect_eq "--cap-drop ALL" 0000000000000000 "$(docker run --rm --cap-drop ALL $R "$IMAGE" cat /proc/self/status | capeff)"
    expect_eq "default set" 00000000a80425fb "$(docker run --rm $R "$IMAGE" cat /proc/self/status | capeff)"
}
check "docker: --cap-drop removes capabilities (chown fails; ALL gives 0)" t_cap_drop

t_privileged() {
    ref=$(docker run --rm --privileged --runtime runc-ref --network none "$IMAGE" sh -c 'ls /dev/loop-control && grep CapEff /proc/self/status' 2>&1) && ref_rc=0 || ref_rc=$?
    out=$(docker run --rm --privileged $R "$IMAGE" sh -c 'ls /dev/loop-control && grep CapEff /proc/self/status' 2>&1) && rc=0 || rc=$?
    echo "reference ($REF_RUNTIME): rc=$ref_rc: $ref"
    echo "runtime: rc=$rc: $out"
    expect_eq "exit status like $REF_RUNTIME" "$ref_rc" "$rc"
    if [ "$rc" = 0 ]; then
        expect_match "host devices" "^/dev/loop-control$" "$out"
    else
        # Both refuse: root here lacks CAP_SYS_RESOURCE, which --privileged asks for.
        expect_match "refused at create" "OCI runtime create failed" "$out"
        expect_eq "containers left" "" "$(docker ps -aq --filter status=running)"
    fi
}
if [ -x "$REF_RUNTIME" ]; then
    check "docker: --privileged behaves as $REF_RUNTIME does (root here lacks CAP_SYS_RESOURCE)" t_privileged
else
    skip "docker: --privileged" "no reference runtime at $REF_RUNTIME to compare with"
fi

t_limits() {
    drun_d --name e2e-limits --memory 64m --memory-swap 64m --pids-limit 20 --cpus 0.5 --cpu-shares 512 "$IMAGE" sh -c "$LOOP"
    pid=$(dpid e2e-limits)
    id=$(docker inspect -f '{{.Id}}' e2e-limits)
    expect_eq "memory cgroup path" "/sys/fs/cgroup/memory/$CG_PARENT/$id" "$(cgroup_dir_of "$pid" memory)"
    expect_eq "memory.limit_in_bytes" 67108864 "$(cgroup_value "$pid" memory memory.limit_in_bytes)"
    expect_eq "pids.max" 20 "$(cgroup_value "$pid" pids pids.max)"
    expect_eq "cpu.cfs_period_us" 100000 "$(cgroup_value "$pid" cpu cpu.cfs_period_us)"
    expect_eq "cpu.cfs_quota_us" 50000 "$(cgroup_value "$pid" cpu cpu.cfs_quota_us)"
    expect_eq "cpu.shares" 512 "$(cgroup_value "$pid" cpu cpu.shares)"
    expect_eq "seen from inside" 67108864 "$(docker exec e2e-limits cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
    docker rm -f e2e-limits >/dev/null
}
check "docker: --memory/--pids-limit/--cpus/--cpu-shares land in the container's cgroup" t_limits

t_pids_effect() {
    # The shell gives up at its first failed fork (exit 2).
    out=$(docker run --rm --pids-limit 10 $R "$IMAGE" sh -c 'for i in $(seq 20); do sleep 5 & done; echo all-forked' 2>&1) && rc=0 || rc=$?
    expect_match "fork refused" "can't fork" "$out"
    expect_nomatch "20 forks" "all-forked" "$out"
    expect_eq "exit status of the shell" 2 "$rc"
    out=$(docker run --rm --pids-limit 30 $R "$IMAGE" sh -c 'for i in $(seq 20); do sleep 1 & done; echo all-forked' 2>&1)
    expect_match "20 forks under a limit of 30" "all-forked" "$out"
}
check "docker: --pids-limit 10 stops forks beyond 10" t_pids_effect

t_oom() {
    # tail keeps the whole newline-free /dev/zero "line" in memory.
    docker run --name e2e-oom --memory 32m --memory-swap 32m $R "$IMAGE" tail /dev/zero >"$T/oom.out" 2>&1 && rc=0 || rc=$?
    expect_eq "exit status" 137 "$rc"
    expect_eq "State.OOMKilled" true "$(docker inspect -f '{{.State.OOMKilled}}' e2e-oom)"
    docker rm e2e-oom >/dev/null
}
check "docker: an allocation over --memory is OOM-killed (exit 137, OOMKilled)" t_oom

finish
