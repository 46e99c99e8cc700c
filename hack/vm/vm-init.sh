#!/bin/sh
# init of the cgroup v2 test VM (see run-tests.sh). pivot_root cannot leave an
# initramfs, so the first pass copies everything into a tmpfs and switch_roots
# there; the second pass sets up a cgroup v2 host and runs the tests.
export PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin

if [ ! -e /.in-tmpfs ]; then
    mount -t proc proc /proc
    mkdir -p /newroot
    mount -t tmpfs -o size=90% tmpfs /newroot
    for d in /*; do
        case "$d" in /proc|/sys|/dev|/newroot) mkdir -p "/newroot$d" ;; *) cp -a "$d" /newroot/ ;; esac
    done
    touch /newroot/.in-tmpfs
    umount /proc
    exec switch_root /newroot /init
fi

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# /tmp stays the root tmpfs's own directory: the workspace the tests were built
# in (and so look for) may live under it.
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Every controller, for the containers' cgroups below the root.
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || echo "vm: cannot enable $c"
done
hostname runvz-vm
ip link set lo up
# Kernel modules (run-tests.sh put them here in dependency order).
for m in $(cat /lib/modules/load-order 2>/dev/null); do
    insmod "/lib/modules/$m.ko" 2>/dev/null || echo "vm: cannot load module $m"
done
if command -v criu >/dev/null; then
    criu check >/tmp/criu-check.out 2>&1 && echo "vm: criu check: ok" || { echo "vm: criu check failed:"; cat /tmp/criu-check.out; }
fi
# The scratch disk: temporary files, and the systemd rootfs where the tests look.
mkdir -p /scratch
if mount -t ext4 /dev/vda /scratch; then
    # The tests make their bundles in $TMPDIR.
    export TMPDIR=/scratch/tmp
    if [ -d /scratch/systemd-rootfs ]; then
        ln -s /scratch/systemd-rootfs "$(cat /tests/WS)/target/systemd-rootfs"
    fi
else
    echo "vm: no scratch disk: temporary files stay on tmpfs"
fi
# The disk quota tests' filesystems, with project quotas enforced.
quota_dirs=""
mkdir -p /quota/ext4 /quota/xfs
if mount -t ext4 -o prjquota,usrquota /dev/vdb /quota/ext4; then quota_dirs="/quota/ext4"; else echo "vm: cannot mount the ext4 quota disk"; fi
if mount -t xfs -o prjquota /dev/vdc /quota/xfs; then quota_dirs="$quota_dirs /quota/xfs"; else echo "vm: cannot mount the XFS quota disk"; fi
export RUNVZ_QUOTA_DIRS="${quota_dirs# }"
if [ -f /tests/script ]; then
    echo "vm: running VM_SCRIPT"
    sh /tests/script
    echo "VM-SUMMARY: script exit $?, 0 failed"
    sync; poweroff -f
fi
echo "vm: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

passed=0; failed=0
# Tests that skip themselves say so here (runtime-tests' skip()).
export RUNVZ_SKIP_LOG=/tmp/skips
: > "$RUNVZ_SKIP_LOG"
for t in $(cat /tests/LIST); do
    echo "vm: === $t"
    out=/tmp/$t.out
    RUNTIME=/usr/local/bin/runvz RUNVZ_TEST_LIGHT=1 RUST_BACKTRACE=1 /tests/$t --test-threads=2 > "$out" 2>&1
    cat "$out"
    res=$(grep -a '^test result:' "$out" | tail -n1)
    p=$(echo "$res" | sed -n 's/.* \([0-9]*\) passed.*/\1/p'); f=$(echo "$res" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    if [ -z "$res" ]; then f=1; p=0; echo "vm: $t did not finish"; fi
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
# What the VM does not run, and why (the host run covers them on v1).
echo "skipped: engine suites (Docker, Podman, containerd) — they need the engines' Debian packages and a full userland, which this initramfs does not carry"
echo "skipped: systemd --systemd-cgroup tests — no systemd runs in this VM"
skipped=$(cut -f1 "$RUNVZ_SKIP_LOG" | sort -u | wc -l)
sort -u "$RUNVZ_SKIP_LOG" | sed 's/^/VM-SKIP: /'
echo "VM-SUMMARY: $((passed - skipped)) passed, $failed failed, $skipped skipped"
sync
poweroff -f
