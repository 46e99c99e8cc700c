#!/usr/bin/env bash
# demo.sh RUNVZ — a container's life under runvz, one printed step at a time:
# spec → create (with beancounters) → state → start → exec → ps → beancounters →
# update → pause/resume → kill → delete.
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

sh "$HERE/hack/mkrootfs.sh" "$HERE/target/demo-rootfs"
mkdir -p "$WORK/bundle" && cp -a "$HERE/target/demo-rootfs" "$WORK/bundle/rootfs"
cd "$WORK/bundle"
rv spec
# A long-running init with no terminal, so the demo can talk to it.
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "trap 'echo init: got TERM; exit 0' TERM; while :; do sleep 1; done"]
c["root"]["readonly"] = False
# OpenVZ-style limits: 64 processes, 256 MiB of RAM, 1024/2048 open files, half a CPU.
c["annotations"] = {
    "runvz.ubc.numproc": "64",
    "runvz.ubc.physpages": "0:256M",
    "runvz.ubc.numfile": "1024:2048",
    "runvz.cpuunits": "1000",
    "runvz.cpulimit": "50",
}
json.dump(c, open("config.json", "w"), indent=2)
PY
rv create --bundle "$WORK/bundle" "$ID"
rv state "$ID"
rv start "$ID"
rv list
rv exec "$ID" sh -c 'echo "hello from $(hostname): pid $$, uid $(id -u)"; cat /proc/1/cmdline | tr "\0" " "; echo'
rv ps "$ID"
rv beancounters "$ID"
rv update --numproc 128 "$ID"
step sh -c "'$RUNVZ' --root '$ROOT' beancounters '$ID' | grep -E 'resource|numproc'"
rv pause "$ID"
rv state "$ID"
rv resume "$ID"
rv kill "$ID" TERM
for _ in $(seq 50); do
  "$RUNVZ" --root "$ROOT" state "$ID" | grep -q '"stopped"' && break
  sleep 0.1
done
rv state "$ID"
rv delete "$ID"
step ls "$ROOT"
echo; echo "demo finished: container $ID created, run, paused, stopped and deleted."
