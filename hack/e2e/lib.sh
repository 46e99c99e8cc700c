# hack/e2e/lib.sh — shared helpers of the engine suites (source it from bash).
#
#   check NAME CMD...   run one check under a timeout; prints `ok - NAME` or
#                       `FAIL - NAME: <reason>` (the reason is the last lines the
#                       check printed; its whole output goes to $E2E_LOG)
#   gate NAME CMD...    a check the rest depend on (the engine can run a
#                       container at all): when it fails, the suite stops there
#                       (cleanup still runs), so a broken runtime fails fast
#   skip NAME WHY       prints `skip - NAME: WHY`
#   on_exit CMD...      registers a cleanup step (run in reverse order, each with
#                       a timeout, from `finish` or from the EXIT/INT/TERM trap,
#                       so it runs even when the suite fails or is interrupted)
#   finish              runs the cleanup, then prints `N passed, N failed[, N
#                       skipped]` as the last line and exits non-zero on failure
#
# A check is usually a shell function. It runs in a fresh `bash` (under
# `timeout`, in its own process group, so a hung engine or runtime is killed
# with everything it started) with `set -eE`: the first failing command ends it
# and its text becomes the reason. Functions are exported automatically;
# suites use `set -a` so their variables reach the checks too.
#
# A suite also stops after E2E_MAX_TIMEOUTS (default 2) checks in a row time
# out: a hanging runtime costs minutes, not one timeout per check.
#
# Environment: CHECK_TIMEOUT (seconds a check may take, default 60),
# E2E_VERBOSE=1 (copy every check's output to stderr).

E2E_PASS=0
E2E_FAIL=0
E2E_SKIP=0
E2E_CLEANUP=()
E2E_FINISHED=0
E2E_TIMEOUTS_IN_A_ROW=0
E2E_MAX_TIMEOUTS=${E2E_MAX_TIMEOUTS:-2}
E2E_LAST_OK=1
CHECK_TIMEOUT=${CHECK_TIMEOUT:-60}
: "${E2E_LOG:=/dev/null}"
export CHECK_TIMEOUT

e2e_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# log MSG... — to the suite's log file only.
log() { printf '%s\n' "$*" >>"$E2E_LOG"; }

# die MSG — a fatal setup error: cleanup runs from the EXIT trap.
die() {
    echo "FAIL - setup: $*"
    E2E_FAIL=$((E2E_FAIL + 1))
    finish
}

# Runs inside each check's bash: the first failing command ends the check and
# says what failed.
e2e_check_prologue() {
    set -eE -o pipefail
    trap 'rc=$?; echo "command failed (exit $rc): $BASH_COMMAND" >&2' ERR
}

check() {
    local name=$1 out rc reason t=${CHECK_TIMEOUT}
    shift
    out=$(mktemp /tmp/e2e-check.XXXXXX)
    # Export every function so the child bash sees them.
    # shellcheck disable=SC2046
    export -f $(compgen -A function) 2>/dev/null || true
    timeout -k 5 "$t" bash -c 'e2e_check_prologue; "$@"' check "$@" </dev/null >"$out" 2>&1
    rc=$?
    {
        echo "=== check: $name (exit $rc) ==="
        cat "$out"
    } >>"$E2E_LOG"
    [ "${E2E_VERBOSE:-0}" = 1 ] && cat "$out" >&2
    if [ $rc -eq 0 ]; then
        echo "ok - $name"
        E2E_PASS=$((E2E_PASS + 1))
        E2E_TIMEOUTS_IN_A_ROW=0
        E2E_LAST_OK=1
    else
        E2E_LAST_OK=0
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            E2E_TIMEOUTS_IN_A_ROW=$((E2E_TIMEOUTS_IN_A_ROW + 1))
            reason="timed out after ${t}s"
            local tail_
            tail_=$(grep -v '^[[:space:]]*$' "$out" | tail -n 2 | tr '\n' ' ' | cut -c1-300)
            [ -n "$tail_" ] && reason="$reason; last output: $tail_"
        else
            E2E_TIMEOUTS_IN_A_ROW=0
            reason=$(grep -v '^[[:space:]]*$' "$out" | tail -n 3 | tr '\r\n' '  ' | sed 's/  */ /g' | cut -c1-600)
            [ -n "$reason" ] || reason="exit status $rc"
        fi
        echo "FAIL - $name: $reason"
        E2E_FAIL=$((E2E_FAIL + 1))
    fi
    rm -f "$out"
    if [ "$E2E_TIMEOUTS_IN_A_ROW" -ge "$E2E_MAX_TIMEOUTS" ] && [ "$E2E_FINISHED" = 0 ]; then
        echo "FAIL - stopped: $E2E_TIMEOUTS_IN_A_ROW checks in a row timed out; the remaining checks were not run"
        E2E_FAIL=$((E2E_FAIL + 1))
        finish
    fi
    return 0
}

gate() {
    check "$@"
    if [ "$E2E_LAST_OK" = 0 ] && [ "$E2E_FINISHED" = 0 ]; then
        echo "FAIL - stopped: the remaining checks need what '$1' checks"
        E2E_FAIL=$((E2E_FAIL + 1))
        finish
    fi
}

skip() {
    echo "skip - $1: $2"
    E2E_SKIP=$((E2E_SKIP + 1))
}

# --- assertions, for use inside checks -------------------------------------

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [ "$2" != "$3" ]; then
        echo "$1: expected '$2', got '$(printf '%s' "$3" | head -c 300)'" >&2
        return 1
    fi
}

# expect_match WHAT REGEX ACTUAL (grep -E)
expect_match() {
    if ! printf '%s\n' "$3" | grep -Eq -- "$2"; then
        echo "$1: expected to match /$2/, got '$(printf '%s' "$3" | tr '\n' ' ' | head -c 300)'" >&2
        return 1
    fi
}

# expect_nomatch WHAT REGEX ACTUAL
expect_nomatch() {
    if printf '%s\n' "$3" | grep -Eq -- "$2"; then
        echo "$1: expected no match of /$2/, got '$(printf '%s' "$3" | tr '\n' ' ' | head -c 300)'" >&2
        return 1
    fi
}

# expect_rc WHAT EXPECTED_RC CMD... — runs CMD, compares its exit status.
expect_rc() {
    local what=$1 want=$2 rc=0
    shift 2
    "$@" || rc=$?
    if [ "$rc" != "$want" ]; then
        echo "$what: expected exit status $want, got $rc" >&2
        return 1
    fi
}

# wait_for SECONDS CMD... — polls CMD every 0.2 s until it succeeds.
wait_for() {
    local secs=$1 i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge $((secs * 5)) ]; then
            echo "gave up after ${secs}s waiting for: $*" >&2
            return 1
        fi
        sleep 0.2
    done
}

# tty_run CMD-STRING — runs CMD-STRING under a pseudo-terminal (script(1)), so
# engines that insist on a terminal (`-it`, `-t`) get one; prints its output
# with carriage returns removed.
tty_run() {
    # script(1) ends when the child exits and returns its exit status. Its
    # stdin is an empty pipe held open until then: at EOF script types a NUL
    # (echoed "^@") and, racing the child, may drop the child's last output.
    local f rc=0 hfd holder
    f=$(mktemp /tmp/e2e-tty.XXXXXX)
    exec {hfd}< <(exec sleep 600)
    holder=$!
    script -qefc "$1" /dev/null <&"$hfd" >"$f" 2>&1 || rc=$?
    exec {hfd}<&-
    kill "$holder" 2>/dev/null || true
    tr -d '\r\000' <"$f" | sed 's/\^@//g'
    rm -f "$f"
    return $rc
}

# --- host-side helpers -----------------------------------------------------

# cgroup_dir_of PID CONTROLLER — /sys/fs/cgroup/<controller>/<path of PID>.
cgroup_dir_of() {
    local path
    path=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$1/cgroup")
    [ -n "$path" ] || { echo "no $2 cgroup for pid $1" >&2; return 1; }
    echo "/sys/fs/cgroup/$2$path"
}

# cgroup_value PID CONTROLLER FILE — the value of FILE in PID's cgroup.
cgroup_value() {
    local d
    d=$(cgroup_dir_of "$1" "$2") || return 1
    cat "$d/$3"
}

# Sends SIG to PID and every descendant (found through /proc), children first
# in the listing, deepest first in the kill.
kill_tree() {
    local sig=$1 pid=$2 child
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        kill_tree "$sig" "$child"
    done
    kill "-$sig" "$pid" 2>/dev/null || true
}

# e2e_ancestors — this shell and its ancestors (never treated as leftovers).
e2e_ancestors() {
    local p=$BASHPID
    while [ -n "$p" ] && [ "$p" -gt 1 ]; do
        echo "$p"
        p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)
    done
}

# pids_matching STRING — PIDs whose command line contains STRING (exact
# substring), or whose environment holds $E2E_ENV_MARK when a suite sets it
# (Podman's runtime calls are named only by CONTAINERS_CONF in theirs). Used
# to find what this suite started: STRING is its private work directory.
pids_matching() {
    local p cmd mine
    mine=" $(e2e_ancestors | tr '\n' ' ') "
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        case "$mine" in *" $p "*) continue ;; esac
        cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
        [ -n "$cmd" ] || continue
        case "$cmd" in *"$1"*) echo "$p"; continue ;; esac
        if [ -n "${E2E_ENV_MARK:-}" ] && tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF -- "$E2E_ENV_MARK"; then
            echo "$p"
        fi
    done
}

# kill_runtime_calls — KILLs calls of $RUNTIME still running on this suite's
# files (a hung create/exec/kill): at cleanup time none should be, and a hung
# one would hold up every engine operation that follows.
kill_runtime_calls() {
    local p a0 a1
    for p in $(pids_matching "$T/"); do
        { IFS= read -r -d '' a0 && IFS= read -r -d '' a1; } <"/proc/$p/cmdline" 2>/dev/null || continue
        if [ "$a0" = "$RUNTIME" ] || [ "$a1" = "$RUNTIME" ]; then
            log "killing a runtime call left running: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
            kill_tree KILL "$p"
        fi
    done
    return 0
}

# stop_pid PID [SECS] — TERM, wait up to SECS (default 15), then KILL.
stop_pid() {
    local pid=$1 secs=${2:-15} i=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -ge $((secs * 5)) ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}

# umount_under DIR — lazily unmounts every mount point at or below DIR.
umount_under() {
    local m
    for m in $(awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
}

# mounts_under DIR — prints the mount points at or below DIR.
mounts_under() {
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts
}

# cgroup_roots — the cgroup hierarchies mounted at or below /sys/fs/cgroup
# (each v1 controller, name=systemd, cgroup2), one a line, ending in "/".
# Only these hold cgroups: on this hybrid host /sys/fs/cgroup is a tmpfs, and
# /sys/fs/cgroup/{hugetlb,net_cls,net_prio,perf_event} can be plain directories
# on it (see plain_cgroup_snapshot), which no runtime ever puts a cgroup in.
cgroup_roots() {
    awk '($3 == "cgroup" || $3 == "cgroup2") && ($2 == "/sys/fs/cgroup" || index($2, "/sys/fs/cgroup/") == 1) { print $2 "/" }' /proc/self/mounts | sort -u
}

# rm_cgroup_tree NAME — removes NAME (depth first) in every mounted cgroup
# hierarchy; NAME is a relative path the suite owns.
rm_cgroup_tree() {
    local h
    [ -n "$1" ] || return 0
    for h in $(cgroup_roots); do
        [ -d "$h$1" ] || continue
        find "$h$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

# cgroups_left NAME — prints <hierarchy>/NAME that still exist, in the
# mounted cgroup hierarchies only (what a runtime creates and must remove).
cgroups_left() {
    local h
    for h in $(cgroup_roots); do
        [ -d "$h$1" ] && echo "$h$1"
    done
    return 0
}

# Plain directories under /sys/fs/cgroup. Podman 4.3 (containers/common) takes
# every controller the kernel lists in /proc/cgroups whose /sys/fs/cgroup/NAME
# exists for a v1 hierarchy without checking that a cgroup is mounted there: on
# this host hugetlb, net_cls, net_prio and perf_event are in no v1 hierarchy, so
# when plain directories of those names are on the tmpfs it mkdirs its cgroups
# in them and writes conmon's PID into `tasks`, which there is a regular file,
# and then its own rmdir fails (ENOTEMPTY). These are the engine's, never the
# runtime's (libcontainer uses mounted hierarchies only), so the suites tell
# them apart: a snapshot of what was there before, and cleanup removes exactly
# what appeared during the run, leaving earlier runs' and others' files alone.
#
# plain_cgroup_entries — every file and directory on /sys/fs/cgroup's own tmpfs
# below its first level (-xdev: nothing inside a mounted hierarchy), sorted;
# nothing when /sys/fs/cgroup is not a tmpfs (a cgroup2-only host).
plain_cgroup_entries() {
    [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] || return 0
    find /sys/fs/cgroup -xdev -mindepth 2 2>/dev/null | LC_ALL=C sort
}
# plain_cgroup_snapshot — records the entries there now (in E2E_PLAIN_CG,
# exported so cleanup steps and checks see it).
plain_cgroup_snapshot() {
    E2E_PLAIN_CG=$(plain_cgroup_entries)
    E2E_PLAIN_CG_TAKEN=1
    export E2E_PLAIN_CG E2E_PLAIN_CG_TAKEN
}
# plain_cgroup_new — entries there now that the snapshot does not list.
plain_cgroup_new() {
    [ -n "${E2E_PLAIN_CG_TAKEN:-}" ] || return 0
    plain_cgroup_entries | LC_ALL=C comm -13 <(printf '%s\n' "$E2E_PLAIN_CG") -
}
# rm_plain_cgroup_new — removes them, deepest first (they are plain tmpfs
# files and directories, not cgroups; anything not on a tmpfs is left alone).
rm_plain_cgroup_new() {
    local p
    plain_cgroup_new | LC_ALL=C sort -r | while IFS= read -r p; do
        [ "$(stat -f -c %T "$p" 2>/dev/null)" = tmpfs ] || continue
        if [ -d "$p" ] && [ ! -L "$p" ]; then rmdir "$p" 2>/dev/null || true; else rm -f "$p"; fi
    done
    return 0
}

# track_host_path PATH... — fixed host paths an engine creates outside its
# configured directories (/run/netns, /var/lib/cni, …): those missing now are
# removed (unmounted first) by cleanup_host_paths.
E2E_HOST_PATHS=""
track_host_path() {
    local p
    for p in "$@"; do
        [ -e "$p" ] || E2E_HOST_PATHS="$E2E_HOST_PATHS $p"
    done
}
cleanup_host_paths() {
    local p
    for p in $E2E_HOST_PATHS; do
        [ -e "$p" ] || continue
        umount_under "$p"
        rm -rf "$p" 2>/dev/null || true
    done
}
e2e_no_host_paths() {
    local p left=""
    for p in $E2E_HOST_PATHS; do [ -e "$p" ] && left="$left $p"; done
    [ -z "$left" ] || { echo "left on the host:$left" >&2; return 1; }
}

# leftover_checks PREFIX — after cleanup: nothing named by the suite's work
# directory $T is running or mounted, its cgroup parent $CG_PARENT is gone from
# every mounted hierarchy, $T is removed, and (when the suite took a
# plain_cgroup_snapshot) nothing the engine made in the plain directories under
# /sys/fs/cgroup is left. (The checks read $T and $CG_PARENT from the
# environment, so their own command lines never match.)
e2e_no_procs() {
    local p left=""
    for p in $(pids_matching "$T/"); do
        left="$left $p($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80))"
    done
    [ -z "$left" ] || { echo "still running:$left" >&2; return 1; }
}
e2e_no_mounts() {
    local m
    m=$(mounts_under "$T")
    [ -z "$m" ] || { echo "still mounted: $(echo $m)" >&2; return 1; }
}
e2e_no_cgroups() {
    local c
    c=$(for n in ${CG_PARENT:-} ${CG_EXTRA:-}; do cgroups_left "$n"; done)
    [ -z "$c" ] || { echo "cgroups left: $(echo $c)" >&2; return 1; }
}
# (the engine's plain directories, not cgroups: reported apart from them)
e2e_no_plain_cgroups() {
    local c
    c=$(plain_cgroup_new)
    [ -z "$c" ] || { echo "the engine's plain directories/files left under non-hierarchy /sys/fs/cgroup dirs: $(echo $c | cut -c1-400)" >&2; return 1; }
}
e2e_no_files() { [ ! -e "$T" ] || { echo "$T still exists" >&2; return 1; }; }
leftover_checks() {
    check "$1: cleanup left no processes" e2e_no_procs
    check "$1: cleanup left no mounts" e2e_no_mounts
    check "$1: cleanup left no cgroups" e2e_no_cgroups
    [ -z "${E2E_PLAIN_CG_TAKEN:-}" ] || check "$1: cleanup removed what the engine made in the plain (non-cgroup) dirs under /sys/fs/cgroup" e2e_no_plain_cgroups
    check "$1: cleanup left no files" e2e_no_files
    [ -z "$E2E_HOST_PATHS" ] || check "$1: cleanup removed the host paths it created" e2e_no_host_paths
}

# --- cleanup and the closing line -------------------------------------------

on_exit() {
    E2E_CLEANUP+=("$*")
}

e2e_run_cleanup() {
    local i
    for ((i = ${#E2E_CLEANUP[@]} - 1; i >= 0; i--)); do
        log "cleanup: ${E2E_CLEANUP[$i]}"
        # Each step bounded; functions are exported for the child bash.
        # shellcheck disable=SC2046
        export -f $(compgen -A function) 2>/dev/null || true
        timeout -k 5 "${CLEANUP_TIMEOUT:-120}" bash -c "${E2E_CLEANUP[$i]}" >>"$E2E_LOG" 2>&1 </dev/null ||
            log "cleanup step failed: ${E2E_CLEANUP[$i]}"
    done
    E2E_CLEANUP=()
}

finish() {
    local line
    trap - EXIT INT TERM
    if [ "$E2E_FINISHED" = 0 ]; then
        E2E_FINISHED=1
        e2e_run_cleanup
        if declare -F after_cleanup >/dev/null; then
            after_cleanup
        fi
    fi
    line="$E2E_PASS passed, $E2E_FAIL failed"
    [ "$E2E_SKIP" -gt 0 ] && line="$line, $E2E_SKIP skipped"
    echo "$line"
    [ "$E2E_FAIL" -eq 0 ]
    exit
}

e2e_on_signal() {
    echo "FAIL - interrupted: signal $1"
    E2E_FAIL=$((E2E_FAIL + 1))
    finish
}

trap 'finish' EXIT
trap 'e2e_on_signal INT' INT
trap 'e2e_on_signal TERM' TERM

# require_runtime — RUNTIME must be an absolute path to an executable.
require_runtime() {
    case "${RUNTIME:-}" in
        /*) ;;
        *) echo "RUNTIME must be an absolute path (got '${RUNTIME:-}')" >&2; trap - EXIT; exit 2 ;;
    esac
    [ -x "$RUNTIME" ] || { echo "RUNTIME $RUNTIME is not executable" >&2; trap - EXIT; exit 2; }
}

# require_cmds CMD... — exits 2 (before any check) when a tool is missing.
require_cmds() {
    local c missing=""
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
    done
    if [ -n "$missing" ]; then
        echo "missing commands:$missing (hack/e2e/run-all.sh installs them)" >&2
        trap - EXIT
        exit 2
    fi
}

# suite_setup NAME: the log file, the image name and the offline-built image
# archive every suite uses (sets E2E_CACHE, E2E_LOG_DIR, E2E_LOG, IMAGE,
# IMAGE_ARCHIVE; image.sh runs only when run-all.sh did not build it already).
suite_setup() {
    E2E_CACHE=${E2E_CACHE:-/var/tmp/runvz-e2e-cache}
    E2E_LOG_DIR=${E2E_LOG_DIR:-/tmp/runvz-e2e-logs}
    mkdir -p "$E2E_LOG_DIR"
    E2E_LOG=$E2E_LOG_DIR/$1.log
    : >"$E2E_LOG"
    IMAGE=localhost/runvz-test:latest
    if [ -z "${IMAGE_ARCHIVE:-}" ]; then
        IMAGE_ARCHIVE=$(bash "$here/image.sh" "$E2E_CACHE" 2>>"$E2E_LOG") || { echo "image.sh failed (see $E2E_LOG)" >&2; exit 1; }
    fi
}
