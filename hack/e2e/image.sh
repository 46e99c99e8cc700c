#!/bin/bash
# hack/e2e/image.sh CACHE_DIR — builds the suites' test image offline and
# prints the path of the docker-archive it wrote.
#
# busybox-static rootfs (hack/mkrootfs.sh) → umoci init/new/unpack/repack/config
# → skopeo copy oci:… docker-archive:CACHE_DIR/runvz-test.tar:localhost/runvz-test:latest
#
# The image has busybox applets on PATH, a user `e2e` (1000:1000), and `sh` as
# its default command. Beside it, CACHE_DIR/runvz-pause.tar holds the same
# rootfs as localhost/runvz-pause:latest whose command sleeps for ever: the
# containerd suite's CRI sandbox ("pause") image. The archives are cached: when
# they exist and were built from the same busybox binary, nothing is rebuilt.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 CACHE_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mkdir -p "$1"
cache=$(cd "$1" && pwd)
ARCHIVE=$cache/runvz-test.tar
IMAGE_REF=localhost/runvz-test:latest
BUSYBOX=${BUSYBOX:-/usr/bin/busybox}
STAMP=$cache/runvz-test.stamp
PAUSE_ARCHIVE=$cache/runvz-pause.tar
PAUSE_REF=localhost/runvz-pause:latest

for c in umoci skopeo; do
    command -v "$c" >/dev/null || { echo "image.sh: $c missing (apt-get install $c)" >&2; exit 1; }
done
[ -x "$BUSYBOX" ] || { echo "image.sh: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

want="$(sha256sum "$BUSYBOX" | cut -d' ' -f1) $IMAGE_REF $PAUSE_REF v3"
if [ -s "$ARCHIVE" ] && [ -s "$PAUSE_ARCHIVE" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "$ARCHIVE"
    exit 0
fi

work=$(mktemp -d "$cache/build.XXXXXX")
# skopeo keeps a blob-info cache in /var/lib/containers/cache (fixed for root):
# remove it afterwards when it was not there before.
if [ -e /var/lib/containers ]; then made_varlib=""; else made_varlib=/var/lib/containers; fi
trap 'rm -rf "$work" $made_varlib' EXIT

# 1. the root filesystem
sh "$repo/hack/mkrootfs.sh" "$work/rootfs" >&2
echo 'e2e:x:1000:1000:e2e:/home/e2e:/bin/sh' >>"$work/rootfs/etc/passwd"
echo 'e2e:x:1000:' >>"$work/rootfs/etc/group"
mkdir -p "$work/rootfs/home/e2e"
chown 1000:1000 "$work/rootfs/home/e2e"
rm -f "$work/rootfs/.mkrootfs-done"

# 2. an OCI image layout holding it as one layer
layout=$work/oci
umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --image "$layout:latest" "$work/bundle" >&2
cp -a "$work/rootfs/." "$work/bundle/rootfs/"
umoci repack --image "$layout:latest" "$work/bundle" >&2
umoci config --image "$layout:latest" \
    --config.cmd sh \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.workingdir / \
    --author runvz-e2e >&2
umoci config --image "$layout:latest" --tag pause \
    --config.cmd sleep --config.cmd 2147483647 >&2
umoci gc --layout "$layout"

# 3. a docker-archive every engine loads (docker load, podman load, ctr import)
rm -f "$ARCHIVE.tmp"
skopeo copy --quiet "oci:$layout:latest" "docker-archive:$ARCHIVE.tmp:$IMAGE_REF" >&2
mv -f "$ARCHIVE.tmp" "$ARCHIVE"
rm -f "$PAUSE_ARCHIVE.tmp"
skopeo copy --quiet "oci:$layout:pause" "docker-archive:$PAUSE_ARCHIVE.tmp:$PAUSE_REF" >&2
mv -f "$PAUSE_ARCHIVE.tmp" "$PAUSE_ARCHIVE"
echo "$want" >"$STAMP"
echo "$ARCHIVE"
