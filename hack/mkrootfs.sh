#!/bin/sh
# mkrootfs.sh DIR — build a minimal busybox-static root filesystem in DIR.
#
# Idempotent: when DIR/bin/busybox is identical to /usr/bin/busybox and the
# completion stamp exists, it exits at once. Installs nothing: on CI the
# Makefile installs busybox-static first.
set -eu

BUSYBOX=${BUSYBOX:-/usr/bin/busybox}

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
DIR=$1

if [ ! -x "$BUSYBOX" ]; then
    echo "mkrootfs.sh: $BUSYBOX not found (apt-get install busybox-static)" >&2
    exit 1
fi

STAMP="$DIR/.mkrootfs-done"
if [ -f "$STAMP" ] && [ -x "$DIR/bin/busybox" ] && cmp -s "$BUSYBOX" "$DIR/bin/busybox"; then
    exit 0
fi

rm -f "$STAMP"
mkdir -p "$DIR"
for d in bin sbin usr/bin usr/sbin proc sys dev tmp etc root run var/run var/tmp home; do
    mkdir -p "$DIR/$d"
done
chmod 1777 "$DIR/tmp" "$DIR/var/tmp"
chmod 0700 "$DIR/root"

# Copy through a temporary name so a half-written binary is never current.
cp "$BUSYBOX" "$DIR/bin/.busybox.tmp"
chmod 0755 "$DIR/bin/.busybox.tmp"
mv -f "$DIR/bin/.busybox.tmp" "$DIR/bin/busybox"

for applet in $("$DIR/bin/busybox" --list); do
    case "$applet" in
        busybox | */*) continue ;;
    esac
    ln -sfn busybox "$DIR/bin/$applet"
done

cat >"$DIR/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$DIR/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo "rootfs" >"$DIR/etc/hostname"
: >"$DIR/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n' >"$DIR/etc/hosts"

date -u +%s >"$STAMP"
