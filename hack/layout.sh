#!/bin/bash
# layout.sh — regenerate hack/hot-functions.txt, the functions runvz runs for
# what engines ask of it. build.rs hands the list to the linker, which places
# those functions first and together. A short-lived runvz is mostly its
# binary's pages: the kernel maps 64 KiB around every page a process touches
# ("fault-around"), so code that runs interleaved with code that does not
# makes nearly all of .text resident; packed together, only the packed part is.
#
# How the list is found, exactly and without sampling:
#   1. a build of the same runvz in which every function starts on a page of
#      its own (LLVM's -align-all-functions=12), with the linker's map
#      (cargo rustc: only the runvz crate is rebuilt, so every other crate's
#      symbol names are those of the release build);
#   2. that binary on a loop-mounted ext4 whose read-ahead is 0, so a page
#      enters the page cache only when a process touches it;
#   3. for each step of the workload: evict the binary's pages, run the step,
#      and ask mincore(2) which pages came back: the union over every process
#      of the step (runvz, its intermediate and init processes, the /proc
#      view server);
#   4. every function on a page that came back is hot: those of `run` first
#      (the whole start path), then the rest by how many steps run them, so
#      what most commands share comes before what fewer commands need.
#
# A stale list costs memory, not correctness: the linker skips names it does
# not find and places new functions with the rest. Rerun after changing what
# a start runs, and commit the list. Needs root, a loop device and python3.
# Leaves target/release/runvz as the release build.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=$HERE/hot-functions.txt
die() { echo "layout.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (loop mount, containers)"
command -v python3 >/dev/null || die "python3 not found"

WORK=$(mktemp -d /tmp/runvz-layout.XXXXXX)
FS=$WORK/fs
LOOP=
cleanup() {
    set +e
    if [ -x "$FS/runvz" ]; then
        for c in run c1 c2 sys; do "$FS/runvz" --root "$WORK/root" delete --force "$c" >/dev/null 2>&1; done
    fi
    pkill -f "$FS/runvz internal-procview" 2>/dev/null
    sleep 0.2
    for d in /sys/fs/cgroup/*/runvz-layout /sys/fs/cgroup/runvz-layout; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    mountpoint -q "$FS" && umount "$FS"
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The page-per-function build and its map.
cd "$REPO"
cargo rustc --release --locked -p runvz --bin runvz -- \
    -C llvm-args=-align-all-functions=12 -C "link-arg=-Wl,-Map=$WORK/runvz.map"

# 2. A file system that reads only what is touched.
truncate -s 256M "$WORK/fs.img"
mkfs.ext4 -q "$WORK/fs.img"
mkdir -p "$FS"
LOOP=$(losetup --find --show "$WORK/fs.img")
echo 0 >"/sys/block/$(basename "$LOOP")/queue/read_ahead_kb"
mount "$LOOP" "$FS"
cp target/release/runvz "$FS/runvz"
sync

# mincore(2) and eviction; then the ordering from the pages and the map.
cat >"$WORK/pages.py" <<'EOF'
import bisect, ctypes, os, re, subprocess, sys
from collections import Counter

def evict(path):
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)

def resident(path):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                          ctypes.c_int, ctypes.c_int, ctypes.c_long]
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
    pages = (size + 4095) // 4096
    vec = (ctypes.c_ubyte * pages)()
    if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) != 0:
        sys.exit("mincore failed: %s" % os.strerror(ctypes.get_errno()))
    for i in range(pages):
        if vec[i] & 1:
            print(i)

def order(binary, mapfile, profiles):
    # The executable segment: file offset -> address.
    seg = None
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[-2]:
            seg = (int(f[1], 16), int(f[2], 16), int(f[4], 16))
    # Each function is its own input section .text[.prefix].SYMBOL.
    sect = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S+:\(\.text(?:\.(?:unlikely|hot|startup|exit))?\.([^)]+)\)$")
    funcs = []  # (first page, last page + 1, symbol): one function per page
    for line in open(mapfile):
        m = sect.match(line)
        if m and int(m.group(2), 16):
            start, size = int(m.group(1), 16), int(m.group(2), 16)
            funcs.append((start >> 12, (start + size + 4095) >> 12, m.group(3)))
    funcs.sort()
    starts = [f[0] for f in funcs]
    count, first, runs = Counter(), {}, []
    for prof in profiles:
        hot = set()
        for line in open(prof):
            off = int(line) * 4096
            if not (seg[0] <= off < seg[0] + seg[2]):
                continue
            page = (off - seg[0] + seg[1]) >> 12
            i = bisect.bisect_right(starts, page) - 1
            if i >= 0 and page < funcs[i][1]:
                hot.add(funcs[i][2])
                first.setdefault(funcs[i][2], funcs[i][0])
        count.update(hot)
        runs.append(hot)
    # The first step's functions (a whole `run`) first, then by how many
    # steps run them: each command's path is then a short stretch of .text.
    for name in sorted(count, key=lambda n: (n not in runs[0], -count[n], first[n])):
        print(name)
    print("%d functions hot in %d steps" % (len(count), len(profiles)), file=sys.stderr)

cmd = sys.argv[1]
if cmd == "evict":
    evict(sys.argv[2])
elif cmd == "resident":
    resident(sys.argv[2])
else:
    order(sys.argv[2], sys.argv[3], sys.argv[4:])
EOF

# 3. The workload: what Docker, containerd, Podman and a person ask for.
"$HERE/mkrootfs.sh" "$WORK/rootfs" >/dev/null
mkdir -p "$WORK/rootfs/sbin" "$WORK/root"
ln -sf /bin/busybox "$WORK/rootfs/sbin/init"
echo '::respawn:/bin/sleep 1000' >"$WORK/rootfs/etc/inittab"
# Bundles as engines write them: runc spec's defaults, a cgroups path and
# limits; one with a read-only root (make bench's, Kubernetes' readOnlyRootFilesystem).
bundle() { # NAME ARGS_JSON READONLY
    mkdir -p "$WORK/$1"
    (cd "$WORK/$1" && "$FS/runvz" spec)
    python3 - "$WORK/$1/config.json" "$WORK/rootfs" "$2" "$3" "$1" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"] = {"path": sys.argv[2], "readonly": sys.argv[4] == "ro"}
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(sys.argv[3])
c["linux"]["cgroupsPath"] = "/runvz-layout/" + sys.argv[5]
c["linux"]["resources"] = dict(c["linux"].get("resources", {}),
    memory={"limit": 268435456}, pids={"limit": 1024}, cpu={"shares": 512})
json.dump(c, open(sys.argv[1], "w"))
EOF
}
bundle true '["/bin/true"]' rw
bundle true-ro '["/bin/true"]' ro
bundle sleep '["sleep", "1000"]' rw
bundle init '["/sbin/init"]' rw

RT=("$FS/runvz" --root "$WORK/root")
steps=()
step() { # NAME ARGS...
    local name=$1; shift
    python3 "$WORK/pages.py" evict "$FS/runvz"
    "${RT[@]}" "$@" </dev/null >/dev/null 2>"$WORK/err" || die "step $name: $(cat "$WORK/err")"
    python3 "$WORK/pages.py" resident "$FS/runvz" >"$WORK/$name.pages"
    steps+=("$WORK/$name.pages")
    echo "$name: $(wc -l <"$WORK/$name.pages") pages"
}
step run run --bundle "$WORK/true" run
step run-ro run --bundle "$WORK/true-ro" run
step create create --bundle "$WORK/sleep" c1
step start start c1
step state state c1
step exec exec c1 /bin/true
step ps ps c1
step list list
step update update --pids-limit 200 c1
step pause pause c1
step resume resume c1
step events events --stats c1
step beancounters beancounters c1
step kill kill c1 KILL
sleep 0.2
step delete delete c1
step run-d run --detach --bundle "$WORK/sleep" c2
step delete-force delete --force c2
# Last: the system container's /proc view server keeps its pages mapped.
step system-create create --bundle "$WORK/init" sys
step system-start start sys
step system-delete delete --force sys

# 4. The list.
{
    echo "# Written by hack/layout.sh: the functions runvz runs, most-used first."
    echo "# build.rs passes this file to the linker (--symbol-ordering-file), and the"
    echo "# names with a ThinLTO .llvm.<hash> suffix, without it, in a linker script."
    python3 "$WORK/pages.py" order "$FS/runvz" "$WORK/runvz.map" "${steps[@]}"
} >"$OUT.new"
mv "$OUT.new" "$OUT"
echo "wrote $OUT"

# The release build again, now laid out by the new list.
cargo build --release --locked -p runvz
