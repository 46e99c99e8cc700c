#!/usr/bin/env bash
# run-tests.sh — run runvz's integration tests on a pure cgroup v2 kernel.
#
# Boots Debian's kernel (linux-image-amd64, unpacked with dpkg -x) under
# qemu-system-x86_64 with TCG, from an initramfs holding busybox, the runvz
# binary, the compiled integration-test executables (with the shared libraries
# ldd lists), the test rootfs and an init (vm-init.sh) that mounts cgroup2 with
# every controller enabled, runs the tests and powers off. The serial console
# comes back here; this script shows it, and fails when a test failed or the VM
# did not finish in time.
#
# Usage: hack/vm/run-tests.sh [TEST-NAME ...]   (default: the v2 set below)
# Env:   RUNVZ (default target/release/runvz), VM_TIMEOUT (seconds, default 1500),
#        VM_MEM (MiB, default 3072), VM_CACHE (default target/vm),
#        VM_SCRIPT (a shell script to run in the VM instead of the tests)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../.." && pwd)
RUNVZ=$(realpath "${RUNVZ:-$WS/target/release/runvz}")
CACHE=${VM_CACHE:-$WS/target/vm}
TIMEOUT=${VM_TIMEOUT:-1500}
MEM=${VM_MEM:-3072}
# The integration tests the v2 run covers (runtime-tests/tests/<name>.rs).
DEFAULT_TESTS="quota beancounters checkpoint system example_config cgroups lifecycle exec run kill_delete update events errors cli robustness concurrency runc_parity runc_edges runc_cli differential stress escape escape_system faults races load"
TESTS=${*:-$DEFAULT_TESTS}

need() { command -v "$1" >/dev/null || { echo "run-tests.sh: $1 not found (make deps-vm installs it)" >&2; exit 1; }; }
need qemu-system-x86_64; need cpio; need dpkg; need ldd; need mkfs.ext4; need mkfs.xfs

mkdir -p "$CACHE"

# 1. The kernel: the package linux-image-amd64 depends on, unpacked once.
kernel_dir="$CACHE/kernel"
if ! ls "$kernel_dir"/boot/vmlinuz-* >/dev/null 2>&1; then
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || { echo "run-tests.sh: cannot find the kernel package (apt-get update?)" >&2; exit 1; }
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1) || { echo "run-tests.sh: apt-get download $pkg failed" >&2; rm -rf "$tmp"; exit 1; }
    rm -rf "$kernel_dir.tmp" && dpkg -x "$tmp"/*.deb "$kernel_dir.tmp" && rm -rf "$tmp"
    rm -rf "$kernel_dir" && mv "$kernel_dir.tmp" "$kernel_dir"
fi
vmlinuz=$(ls "$kernel_dir"/boot/vmlinuz-* | head -n1)

# 2. The test executables, as cargo built them (no rebuild when up to date).
build_log="$CACHE/build.log"
mapfile -t exes < <(cd "$WS" && cargo test --locked -p runtime-tests --no-run --message-format=json 2>"$build_log" |
    python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"] + " " + m["executable"])
')
[ ${#exes[@]} -gt 0 ] || { echo "run-tests.sh: no test executables; cargo said:" >&2; tail -n 30 "$build_log" >&2; exit 1; }

# 3. The initramfs tree.
stage=$(mktemp -d /tmp/runvz-vm.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,run,etc,root,usr/bin,usr/sbin,lib64,tests}
cp /usr/bin/busybox "$stage/bin/busybox"
for a in $("$stage/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$stage/bin/$a"; done
mkdir -p "$stage/usr/bin" && cp /usr/bin/busybox "$stage/usr/bin/busybox"   # mkrootfs.sh's default
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$stage/etc/group"

# copy_with_libs SRC DEST: a binary and the shared libraries it needs.
copy_with_libs() {
    mkdir -p "$stage$(dirname "$2")"
    cp -L "$1" "$stage$2"
    ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
        [ -e "$stage$lib" ] || { mkdir -p "$stage$(dirname "$lib")"; cp -L "$lib" "$stage$lib"; }
    done
}
copy_with_libs "$RUNVZ" /usr/local/bin/runvz
# runc, when installed, lets the differential tests compare the two on v2 too.
if [ -x /usr/sbin/runc ]; then copy_with_libs /usr/sbin/runc /usr/sbin/runc; fi
# CRIU, for checkpoint/restore (it cannot work on the host kernel; it does here),
# with what it runs: GNU tar (busybox tar cannot save tmpfs contents), iproute2's
# ip and the iptables save/restore tools for network namespaces, and the kernel
# modules its checks and socket/netns dumps need (loaded by vm-init.sh in order).
if [ -x /usr/sbin/criu ]; then
    copy_with_libs /usr/sbin/criu /usr/local/sbin/criu
    copy_with_libs "$(command -v tar)" /usr/local/bin/tar
    copy_with_libs "$(readlink -f "$(command -v ip)")" /usr/local/bin/ip
    for multi in xtables-nft-multi xtables-legacy-multi; do
        [ -x "/usr/sbin/$multi" ] || continue
        copy_with_libs "/usr/sbin/$multi" "/usr/local/sbin/$multi"
    done
    # iptables loads its matches (criu's network lock uses -m mark) as plugins.
    xt_plugins=$(ls -d /usr/lib/*/xtables 2>/dev/null | head -n1)
    if [ -n "$xt_plugins" ]; then mkdir -p "$stage$xt_plugins" && cp -a "$xt_plugins/." "$stage$xt_plugins/"; fi
    for tool in iptables ip6tables; do
        for verb in "" -save -restore; do
            ln -sf xtables-nft-multi "$stage/usr/local/sbin/$tool$verb"
            ln -sf xtables-legacy-multi "$stage/usr/local/sbin/$tool-legacy$verb"
        done
    done
    criu_modules="crc32c_generic libcrc32c nfnetlink nf_tables inet_diag tcp_diag udp_diag raw_diag \
        unix_diag netlink_diag af_packet_diag x_tables nft_compat xt_mark nf_defrag_ipv4 \
        nf_defrag_ipv6 nf_conntrack nf_conntrack_netlink overlay"
fi
# Kernel modules, loaded by vm-init.sh in this order: the scratch disk's (virtio,
# ext4), the disk quota tests' (crc32c first: the crypto API cannot load it on
# demand here; quota_v2 before an ext4 with the quota feature is mounted; XFS),
# FUSE for the system containers' /proc view and, with CRIU, its checks' and
# socket/netns dumps'.
moddir=$(ls -d "$kernel_dir"/lib/modules/*)
mkdir -p "$stage/lib/modules"
: > "$stage/lib/modules/load-order"
# add_module NAME: the module's dependencies first (from its depends= tag), then itself.
add_module() {
    grep -qx "$1" "$stage/lib/modules/load-order" && return 0
    local ko deps
    ko=$(find "$moddir/kernel" -name "$1.ko" | head -n1)
    [ -n "$ko" ] || { echo "vm: kernel module $1 not found (built in?)"; return 0; }
    deps=$(tr '\0' '\n' < "$ko" | sed -n 's/^depends=//p' | tr ',' ' ')
    for dep in $deps; do add_module "$dep"; done
    cp "$ko" "$stage/lib/modules/"
    echo "$1" >> "$stage/lib/modules/load-order"
}
for m in virtio_pci virtio_blk crc32c_generic ext4 quota_tree quota_v2 xfs fuse ${criu_modules:-}; do add_module "$m"; done
# The tests find the workspace by the path they were built in.
mkdir -p "$stage$WS/hack" "$stage$WS/target"
cp "$WS/hack/mkrootfs.sh" "$WS/hack/mkrootfs-systemd.sh" "$stage$WS/hack/"
if [ -d "$WS/target/test-rootfs" ]; then cp -a "$WS/target/test-rootfs" "$stage$WS/target/"; fi
echo "$WS" > "$stage/tests/WS"
# A scratch ext4 disk, mounted at /scratch: the tests' temporary files live there,
# as on a real host's disk (system containers' rootfs are idmapped, which this
# kernel cannot do on tmpfs), and so does the Debian rootfs with systemd (made on
# the host by test.sh), so systemd boots on cgroup v2 too.
disk="$CACHE/scratch.img" diskroot="$CACHE/scratch"
rm -rf "$diskroot" "$disk"
mkdir -p "$diskroot/tmp" && chmod 1777 "$diskroot/tmp"
if [ -d "$WS/target/systemd-rootfs" ] && case " $TESTS " in *" system "* | *" example_config "*) true ;; *) false ;; esac; then
    cp -a "$WS/target/systemd-rootfs" "$diskroot/systemd-rootfs"
fi
truncate -s 4G "$disk"
mkfs.ext4 -q -F -d "$diskroot" "$disk"
rm -rf "$diskroot"
# Two disks with project quotas for the disk quota tests (vm-init.sh mounts them
# with prjquota): ext4 with the quota and project features, and XFS (whose
# tools refuse less than 300 MB).
quota_ext4="$CACHE/quota-ext4.img" quota_xfs="$CACHE/quota-xfs.img"
rm -f "$quota_ext4" "$quota_xfs"
truncate -s 1G "$quota_ext4" && mkfs.ext4 -q -F -O quota,project "$quota_ext4"
truncate -s 512M "$quota_xfs" && mkfs.xfs -q -f "$quota_xfs"

selected=""
for entry in "${exes[@]}"; do
    name=${entry%% *}; exe=${entry#* }
    case " $TESTS " in *" $name "*) ;; *) continue ;; esac
    copy_with_libs "$exe" "/tests/$name"
    strip --strip-debug "$stage/tests/$name" 2>/dev/null || true
    selected="$selected $name"
done
[ -n "$selected" ] || { echo "run-tests.sh: none of the tests [$TESTS] was built" >&2; exit 1; }
echo "$selected" > "$stage/tests/LIST"
# VM_SCRIPT: a shell script the VM runs instead of the tests (for exploring).
if [ -n "${VM_SCRIPT:-}" ]; then cp "$VM_SCRIPT" "$stage/tests/script"; fi
cp "$HERE/vm-init.sh" "$stage/init" && chmod +x "$stage/init"

initrd="$CACHE/initramfs.cpio"
(cd "$stage" && find . | cpio -o -H newc --quiet > "$initrd")
echo "vm: kernel $(basename "$vmlinuz"), initramfs $(du -h "$initrd" | cut -f1), tests:$selected"

# 4. Boot. The init prints one line per test and a closing VM-SUMMARY line.
log="$CACHE/console.log"
start=$(date +%s)
set +e
timeout --foreground "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m "$MEM" \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -drive file="$disk",format=raw,if=virtio,cache=unsafe \
    -drive file="$quota_ext4",format=raw,if=virtio,cache=unsafe \
    -drive file="$quota_xfs",format=raw,if=virtio,cache=unsafe \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 systemd.unified_cgroup_hierarchy=1" \
    -nographic -no-reboot -nic none 2>&1 | tr -d '\r' | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
took=$(( $(date +%s) - start ))
echo "vm: finished in ${took}s (qemu exit $qemu_status)"

summary=$(grep -a '^VM-SUMMARY:' "$log" | tail -n1 || true)
if [ -z "$summary" ]; then
    [ "$qemu_status" = 124 ] && echo "vm: FAILED: no result within ${TIMEOUT}s" || echo "vm: FAILED: the VM stopped without a result"
    exit 1
fi
# The closing line in the form test runners are read by.
echo "cgroup v2: ${summary#VM-SUMMARY: }"
case "$summary" in *" 0 failed"*) exit 0 ;; *) exit 1 ;; esac
