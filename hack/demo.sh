#!/usr/bin/env bash
# demo.sh RUNVZ — the product's main job on one screen: a *system* container
# (config.json.example: OpenVZ's beancounters, its own user-namespace range,
# an init) booted from a busybox-init rootfs, what `free`, `nproc`, `uptime` and
# its beancounters say inside next to the host's view of the same container,
# then update, pause/resume and a clean halt.
set -euo pipefail
RUNVZ=$(realpath "${1:-target/release/runvz}")
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/runvz-demo.XXXXXX)
ROOT="$WORK/state"
ID=demo-$$
cleanup() { "$RUNVZ" --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
rv() { step "$RUNVZ" --root "$ROOT" "$@"; }
inside() { step "$RUNVZ" --root "$ROOT" exec "$ID" sh -c "$1"; }
note() { printf '\n\033[2m# %s\033[0m\n' "$*"; }

sh "$HERE/hack/mkrootfs.sh" "$HERE/target/demo-rootfs"
mkdir -p "$WORK/bundle" && cp -a "$HERE/target/demo-rootfs" "$WORK/bundle/rootfs"
# busybox's init boots it: a getty-less server with one service.
ln -sf /bin/busybox "$WORK/bundle/rootfs/sbin/init"
printf '::respawn:/bin/sh -c "while :; do sleep 60; done"\n' > "$WORK/bundle/rootfs/etc/inittab"
cp "$HERE/config.json.example" "$WORK/bundle/config.json"
cd "$WORK/bundle"
note "config.json.example: a system container with OpenVZ's beancounters (physpages 512M, numproc 240, cpus 1, ...)"
step grep -E '"runvz\.(system|ubc.physpages|ubc.numproc|cpus|cpulimit)"' config.json
rv run -d --bundle "$WORK/bundle" "$ID"
rv list
note "inside, the container is a server of its own: 512 MiB, 1 CPU, up a moment, its own load"
inside 'free; nproc; uptime; head -n 3 /proc/meminfo; cat /proc/loadavg'
note "...and its own root, in a user-namespace range of its own on the host"
inside 'id; cat /proc/self/uid_map'
note "the host, for comparison"
step sh -c "free | head -n 2; nproc; uptime"
note "its beancounters, inside (/dev/.runvz/user_beancounters) and from the host"
inside 'head -n 8 /dev/.runvz/user_beancounters'
step sh -c "'$RUNVZ' --root '$ROOT' beancounters '$ID' | head -n 8"
rv update --numproc 480 "$ID"
inside 'grep -E "resource|numproc" /dev/.runvz/user_beancounters'
rv ps "$ID"
rv pause "$ID"
status() { step sh -c "'$RUNVZ' --root '$ROOT' state '$ID' | grep '\"status\"'"; }
status
rv resume "$ID"
note "kill sends SIGTERM, which runvz turns into busybox init's halt signal: a clean shutdown"
rv kill "$ID"
for _ in $(seq 100); do
  "$RUNVZ" --root "$ROOT" state "$ID" | grep -q '"stopped"' && break
  sleep 0.1
done
status
rv delete "$ID"
step ls "$ROOT"
echo; echo "demo finished: system container $ID booted, seen from inside and out, updated, paused, halted and deleted."
