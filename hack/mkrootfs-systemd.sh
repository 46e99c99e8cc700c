#!/bin/sh
# mkrootfs-systemd.sh DIR [nesting] — a Debian bookworm rootfs that boots
# systemd, for the system-container tests; with `nesting`, also Docker and
# Podman (and what they use inside a system container), for the nesting tests.
# debootstrap takes ~30 s and ~250 MB (nesting: ~2 min, ~700 MB), so DIR is
# kept and reused while its stamp (this script's content and the variant) is
# current.
set -eu
DIR=${1:?usage: mkrootfs-systemd.sh DIR [nesting]}
VARIANT=${2:-}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=systemd,systemd-sysv,procps,dbus
case $VARIANT in
"") ;;
# netavark and aardvark-dns: Podman's network stack (debootstrap cannot pick
# a provider of the virtual package container-network-stack itself).
nesting) PACKAGES=$PACKAGES,docker.io,podman,crun,fuse-overlayfs,uidmap,slirp4netns,netavark,aardvark-dns,iptables,iproute2,curl ;;
*) echo "mkrootfs-systemd.sh: unknown variant $VARIANT (nesting or none)" >&2; exit 2 ;;
esac
STAMP="$DIR/.runvz-rootfs-stamp"
want=$( (cat "$0"; echo "$VARIANT") | md5sum | cut -d" " -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then exit 0; fi
command -v debootstrap >/dev/null || { echo "mkrootfs-systemd.sh: debootstrap is not installed" >&2; exit 1; }
tmp="$DIR.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$tmp" "$MIRROR" >"$tmp.log" 2>&1 ||
    { echo "mkrootfs-systemd.sh: debootstrap failed; its log:" >&2; tail -n 20 "$tmp.log" >&2; exit 1; }
rm -f "$tmp.log"
# The hostname is the config's (as a VPS's is what the operator set): systemd
# keeps the kernel's when /etc/hostname is empty. A container has no consoles
# to log in on; nothing else is changed.
: > "$tmp/etc/hostname"
: > "$tmp/etc/machine-id"
rm -rf "$DIR" && mv "$tmp" "$DIR"
echo "$want" > "$STAMP"
