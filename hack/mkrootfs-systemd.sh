#!/bin/sh
# mkrootfs-systemd.sh DIR — a Debian bookworm rootfs that boots systemd, for the
# system-container tests. debootstrap takes ~30 s and ~250 MB, so DIR is kept
# and reused while its stamp (this script's content) is current.
set -eu
DIR=${1:?usage: mkrootfs-systemd.sh DIR}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STAMP="$DIR/.runvz-rootfs-stamp"
want=$(md5sum < "$0" | cut -d" " -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then exit 0; fi
command -v debootstrap >/dev/null || { echo "mkrootfs-systemd.sh: debootstrap is not installed" >&2; exit 1; }
tmp="$DIR.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
debootstrap --variant=minbase --include=systemd,systemd-sysv,procps,dbus bookworm "$tmp" "$MIRROR" >"$tmp.log" 2>&1 ||
    { echo "mkrootfs-systemd.sh: debootstrap failed; its log:" >&2; tail -n 20 "$tmp.log" >&2; exit 1; }
rm -f "$tmp.log"
# A container has no consoles to log in on; nothing else is changed.
echo runvz-system > "$tmp/etc/hostname"
: > "$tmp/etc/machine-id"
rm -rf "$DIR" && mv "$tmp" "$DIR"
echo "$want" > "$STAMP"
