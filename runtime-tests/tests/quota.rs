//! Disk quota (`runvz.diskspace`, `runvz.diskinodes`), OpenVZ's first level, on
//! the container's own rootfs:
//! - project quotas on ext4 and XFS: the cgroup v2 VM mounts one of each with
//!   `prjquota` and names them in `RUNVZ_QUOTA_DIRS` (this host's kernel has
//!   no CONFIG_QUOTA, so they cannot run here);
//! - btrfs qgroups: a loop-mounted btrfs with quotas enabled (on the host);
//! - one clear error, and nothing left behind, everywhere else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use runtime_tests::*;
use serde_json::{Value, json};

/// A copy of the test rootfs in a fresh directory under `parent`, removed on drop.
struct Tree {
    dir: PathBuf,
}

impl Tree {
    fn new(parent: &Path) -> Tree {
        let dir = parent.join(unique_id("quota-tree"));
        std::fs::create_dir(&dir).expect("create the tree's directory");
        let tree = Tree { dir };
        tree.fill(&tree.rootfs());
        tree
    }

    /// A tree whose rootfs is a btrfs subvolume.
    fn subvolume(parent: &Path) -> Tree {
        let dir = parent.join(unique_id("quota-sv"));
        std::fs::create_dir(&dir).expect("create the tree's directory");
        let tree = Tree { dir };
        sh(&format!(
            "btrfs -q subvolume create {}",
            tree.rootfs().display()
        ));
        tree.fill(&tree.rootfs());
        tree
    }

    fn fill(&self, rootfs: &Path) {
        std::fs::create_dir_all(rootfs).expect("create rootfs");
        sh(&format!(
            "cp -a {}/. {}",
            runtime_tests::rootfs().display(),
            rootfs.display()
        ));
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let rootfs = self.rootfs();
        let _ = Command::new("btrfs")
            .args(["-q", "subvolume", "delete"])
            .arg(&rootfs)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[track_caller]
fn sh(script: &str) -> String {
    let out = run_command(
        Command::new("sh").arg("-c").arg(script),
        None,
        Duration::from_secs(120),
    );
    assert!(out.success(), "{script}:\n{out}");
    out.stdout
}

/// A container running `args` on `rootfs` (writable) with `annotations`.
fn ctx_on(prefix: &str, rootfs: &Path, annotations: &[(&str, &str)], args: &[&str]) -> Ctx {
    let mut c = Ctx::new(prefix, args);
    c.bundle
        .set("/root/path", json!(rootfs))
        .set("/root/readonly", json!(false));
    for (key, value) in annotations {
        c.bundle.annotation(key, value);
    }
    c
}

/// Writes 64 KiB blocks to `/fill` until the write fails or `max_kib` is
/// written; prints dd's complaint and the bytes written.
fn fill_script(file: &str, max_kib: u64) -> String {
    format!(
        "dd if=/dev/zero of={file} bs=64k count={} 2>&1 | grep -i -o 'quota exceeded\\|no space left' | head -n 1; sync; wc -c < {file}",
        max_kib / 64
    )
}

/// (the error dd met, bytes written), from `fill_script`'s output.
fn parse_fill(out: &str) -> (String, u64) {
    let mut lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let written = lines
        .pop()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {out:?}"));
    (lines.join(" ").to_lowercase(), written)
}

/// The container's diskspace and diskinodes rows from `beancounters --format json`.
fn disk_rows(c: &Ctx) -> (Value, Value) {
    let out = c.cmd(&["beancounters", "--format", "json", &c.id]);
    out.ok();
    let all: Value = serde_json::from_str(&out.stdout).expect("beancounters JSON");
    let rows = all[0]["beancounters"].as_array().expect("rows").clone();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["resource"] == json!(name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} row in {}", out.stdout))
    };
    (row("diskspace"), row("diskinodes"))
}

const MIB: u64 = 1 << 20;

/// The error a write past a project quota meets: EDQUOT, except on XFS, which
/// answers ENOSPC for project quotas (they stand for directory-tree limits).
fn over_quota_error(dir: &Path) -> &'static str {
    if dir.to_string_lossy().contains("xfs") {
        "no space left"
    } else {
        "quota exceeded"
    }
}

/// The project-quota filesystems the VM mounted, or None (skipped).
fn project_quota_dirs() -> Option<Vec<PathBuf>> {
    if runtime_is_runc() {
        skip("runvz's disk quota (runc has none)");
        return None;
    }
    let dirs: Vec<PathBuf> = std::env::var("RUNVZ_QUOTA_DIRS")
        .unwrap_or_default()
        .split_whitespace()
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        skip(
            "no ext4/XFS mounted with prjquota here (RUNVZ_QUOTA_DIRS unset: this host's kernel has no CONFIG_QUOTA); the cgroup v2 VM runs these",
        );
        return None;
    }
    Some(dirs)
}

#[test]
fn project_quota_bounds_space_and_update_raises_it() {
    let Some(dirs) = project_quota_dirs() else {
        return;
    };
    for dir in dirs {
        let tree = Tree::new(&dir);
        let c = ctx_on(
            "pq",
            &tree.rootfs(),
            &[("runvz.diskspace", "0:10M")],
            &["sleep", "1000"],
        );
        c.run_detached();
        let (why, written) = parse_fill(&c.sh(&fill_script("/fill", 20 * 1024)));
        assert!(
            why.contains(over_quota_error(&dir)) && written < 10 * MIB && written > 5 * MIB,
            "{}: a 10 MiB hard limit stops writes near 10 MiB: {why:?}, {written} bytes",
            dir.display()
        );
        let (space, inodes) = disk_rows(&c);
        assert_eq!(space["limit"], json!(10240), "{space}");
        assert_eq!(
            space["quota"]["mechanism"],
            json!("project_quota"),
            "{space}"
        );
        let fs = space["quota"]["filesystem"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            dir.to_string_lossy().contains(&fs) && !fs.is_empty(),
            "{space}"
        );
        assert!(
            space["quota"]["id"]
                .as_u64()
                .is_some_and(|id| id >= 1 << 30),
            "{space}"
        );
        let held = space["held"].as_u64().unwrap_or(0);
        assert!(
            held >= written / 1024 && held <= 10240,
            "held counts the tree: {space}"
        );
        assert!(inodes["held"].as_u64().is_some_and(|n| n > 1), "{inodes}");

        // A live update raises the limit: the next write succeeds.
        c.cmd(&["update", "--diskspace", "0:30M", &c.id]).ok();
        let (why, more) = parse_fill(&c.sh(&fill_script("/more", 5 * 1024)));
        assert!(
            why.is_empty() && more == 5 * MIB,
            "after update the write fits: {why:?}, {more}"
        );
        assert_eq!(disk_rows(&c).0["limit"], json!(30720));

        // delete gives the ID back and lifts the limit on the tree.
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
        sh(&format!(
            "dd if=/dev/zero of={}/after bs=1M count=40 2>&1",
            tree.rootfs().display()
        ));
    }
}

#[test]
fn project_quota_bounds_inodes() {
    let Some(dirs) = project_quota_dirs() else {
        return;
    };
    for dir in dirs {
        let tree = Tree::new(&dir);
        // Files by redirection: no process per file (the VM is slow at forks);
        // with `echo`, as a failed redirection of a special builtin (`:`) would
        // end the shell.
        let c = ctx_on(
            "pqi",
            &tree.rootfs(),
            &[("runvz.diskinodes", "0:1000")],
            &[
                "sh",
                "-c",
                "mkdir /many; i=0; while [ $i -lt 2000 ] && { echo -n > /many/f$i; } 2>/dev/null; do i=$((i+1)); done; echo $i",
            ],
        );
        let out = c.run_fg(None, Duration::from_secs(120));
        out.ok();
        let made: u64 = out.stdout.trim().parse().unwrap_or(0);
        assert!(
            made > 900 && made < 1000,
            "{}: a 1000-inode limit stops file creation near 1000 (the rootfs's own files count): {made}\n{out}",
            dir.display()
        );
    }
}

#[test]
fn two_containers_on_one_filesystem_have_their_own_quota() {
    let Some(dirs) = project_quota_dirs() else {
        return;
    };
    let dir = &dirs[0];
    let (a_tree, b_tree) = (Tree::new(dir), Tree::new(dir));
    let a = ctx_on(
        "pqa",
        &a_tree.rootfs(),
        &[("runvz.diskspace", "0:8M")],
        &["sleep", "1000"],
    );
    let b = ctx_on(
        "pqb",
        &b_tree.rootfs(),
        &[("runvz.diskspace", "0:8M")],
        &["sleep", "1000"],
    );
    a.run_detached();
    b.run_detached();
    let (why, _) = parse_fill(&a.sh(&fill_script("/fill", 16 * 1024)));
    assert!(why.contains(over_quota_error(dir)), "a is full: {why:?}");
    let (why, written) = parse_fill(&b.sh(&fill_script("/fill", 4 * 1024)));
    assert!(
        why.is_empty() && written == 4 * MIB,
        "b's quota is its own: {why:?}, {written}"
    );
    let id = |c: &Ctx| disk_rows(c).0["quota"]["id"].as_u64();
    assert_ne!(id(&a), id(&b), "each container has its own project ID");
}

/// The btrfs for the qgroup tests: a loop-mounted image with quotas on.
struct Btrfs {
    dir: TempDir,
}

impl Btrfs {
    fn new() -> Option<Btrfs> {
        if runtime_is_runc() {
            skip("runvz's disk quota (runc has none)");
            return None;
        }
        let have = |tool: &str| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have("mkfs.btrfs") || !have("btrfs") {
            skip(
                "btrfs-progs is not installed (make deps installs it; the VM's busybox has none: the host runs these)",
            );
            return None;
        }
        let dir = TempDir::new("btrfs");
        let image = dir.path().join("image");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let made = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "truncate -s 512M {img} && mkfs.btrfs -q {img} && mount -o loop {img} {mnt} && btrfs quota enable {mnt}",
                img = image.display(),
                mnt = mnt.display()
            ))
            .output()
            .expect("sh");
        if !made.status.success() {
            skip(&format!(
                "cannot loop-mount a btrfs with quotas here: {}",
                String::from_utf8_lossy(&made.stderr).trim()
            ));
            let _ = Command::new("umount").arg(&mnt).output();
            return None;
        }
        Some(Btrfs { dir })
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.mnt()).output();
    }
}

#[test]
fn btrfs_qgroup_bounds_space_and_update_raises_it() {
    let Some(fs) = Btrfs::new() else {
        return;
    };
    let tree = Tree::subvolume(&fs.mnt());
    let c = ctx_on(
        "bq",
        &tree.rootfs(),
        &[("runvz.diskspace", "0:10M")],
        &["sleep", "1000"],
    );
    c.run_detached();
    let (why, written) = parse_fill(&c.sh(&fill_script("/fill", 20 * 1024)));
    assert!(
        why.contains("quota exceeded") && written < 10 * MIB && written > 4 * MIB,
        "a 10 MiB qgroup limit stops writes near 10 MiB: {why:?}, {written}"
    );
    sh("sync");
    let (space, inodes) = disk_rows(&c);
    assert_eq!(
        space["quota"]["mechanism"],
        json!("btrfs_qgroup"),
        "{space}"
    );
    assert_eq!(space["limit"], json!(10240));
    assert!(space["enforced"] == json!(true) && inodes["enforced"] == json!(false));
    assert!(
        space["held"].as_u64().is_some_and(|h| h > 4 * 1024),
        "held is the subvolume's referenced bytes: {space}"
    );
    // OpenVZ's table gains the two rows after its own 25.
    let table = c.cmd(&["beancounters", &c.id]);
    table.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2 + 25 + 2, "{table}");
    let row: Vec<&str> = lines[27].split_whitespace().collect();
    assert_eq!(row[0], "diskspace", "{table}");
    assert_eq!(row[4], "10240", "the limit column: {table}");

    c.cmd(&["update", "--diskspace", "0:30M", &c.id]).ok();
    let (why, more) = parse_fill(&c.sh(&fill_script("/more", 5 * 1024)));
    assert!(why.is_empty() && more == 5 * MIB, "{why:?}, {more}");
    let out = c.cmd(&["update", "--diskinodes", "0:100", &c.id]);
    out.failed();
    assert!(out.stderr.contains("inode quota"), "{out}");

    // delete puts back the qgroup's earlier limit (none).
    let id = space["quota"]["id"].as_u64().unwrap();
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
    let shown = sh(&format!("btrfs qgroup show -re {}", fs.mnt().display()));
    let line = shown
        .lines()
        .find(|l| l.starts_with(&format!("0/{id} ")))
        .unwrap_or_else(|| panic!("no qgroup 0/{id}:\n{shown}"));
    assert!(line.contains("none"), "the limit is lifted: {line}");
}

#[test]
fn what_btrfs_cannot_bound_is_refused() {
    let Some(fs) = Btrfs::new() else {
        return;
    };
    let plain = Tree::new(&fs.mnt());
    let subvolume = Tree::subvolume(&fs.mnt());
    for (tree, annotations, words) in [
        (&plain, ("runvz.diskspace", "10M"), "not a subvolume"),
        (&subvolume, ("runvz.diskinodes", "0:1000"), "no inode quota"),
    ] {
        let c = ctx_on("bqr", &tree.rootfs(), &[annotations], &["true"]);
        let out = c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id]);
        out.failed();
        assert!(
            out.stderr.contains("error") && out.stderr.contains(words),
            "{annotations:?}: {out}"
        );
        c.assert_no_leak();
    }
    sh(&format!("btrfs quota disable {}", fs.mnt().display()));
    let c = ctx_on(
        "bqoff",
        &subvolume.rootfs(),
        &[("runvz.diskspace", "10M")],
        &["true"],
    );
    let out = c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id]);
    out.failed();
    assert!(out.stderr.contains("btrfs quota enable"), "{out}");
    c.assert_no_leak();
}

/// A rootfs where no quota can be had (ext4 without project quotas, tmpfs):
/// create fails with one error naming the filesystem and what to enable, and
/// leaves nothing (state, cgroup, project ID).
#[test]
fn a_rootfs_without_quota_support_is_refused_clearly() {
    if runtime_is_runc() {
        skip("runvz's disk quota (runc has none)");
        return;
    }
    let tmp = std::env::temp_dir();
    let shm = PathBuf::from("/dev/shm");
    for parent in [tmp, shm] {
        if !parent.is_dir() {
            continue;
        }
        let tree = Tree::new(&parent);
        let c = ctx_on(
            "noq",
            &tree.rootfs(),
            &[("runvz.diskspace", "0:10M")],
            &["true"],
        );
        let out = c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id]);
        out.failed();
        let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(lines.len(), 1, "one error line: {out}");
        assert!(
            lines[0].contains("disk quota") && lines[0].contains("prjquota"),
            "{}: the error names what to enable: {out}",
            parent.display()
        );
        c.assert_no_leak();
    }
}

/// An engine's rootfs is an overlay (Podman, containerd and Docker mount one
/// and hand runvz the merged directory): the quota goes on its upper and work
/// directories, where the container's writes land, not on the image below.
#[test]
fn an_overlay_rootfs_is_bounded_on_its_upper_directory() {
    let Some(dirs) = project_quota_dirs() else {
        return;
    };
    for dir in dirs {
        let layers = Tree::new(&dir);
        let base = layers.dir.clone();
        let (upper, work, merged) = (base.join("upper"), base.join("work"), base.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d).unwrap();
        }
        sh(&format!(
            "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {}",
            layers.rootfs().display(),
            upper.display(),
            work.display(),
            merged.display()
        ));
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = Command::new("umount").arg(&self.0).output();
            }
        }
        let _mounted = Unmount(merged.clone());
        let c = ctx_on(
            "pqo",
            &merged,
            &[("runvz.diskspace", "0:6M")],
            &["sleep", "1000"],
        );
        c.run_detached();
        // A copy-up (a file of the image changed) and new writes both land in
        // the upper directory and count.
        c.sh("echo changed >> /etc/passwd");
        let (why, written) = parse_fill(&c.sh(&fill_script("/fill", 12 * 1024)));
        assert!(
            why.contains(over_quota_error(&dir)) && written < 6 * MIB && written > 5 * MIB,
            "{}: only the container's own writes count against 6 MiB: {why:?}, {written}",
            dir.display()
        );
        let (space, _) = disk_rows(&c);
        assert_eq!(
            space["quota"]["paths"],
            json!([upper, work]),
            "the quota is on the overlay's upper and work directories: {space}"
        );
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

/// A system container (busybox init, its own user-namespace range, idmapped
/// rootfs) is bounded the same way: its writes through the idmapped mount land
/// in the tagged tree. (In its own user namespace its root cannot change a
/// file's project ID: the kernel allows that only in the initial one.)
#[test]
fn a_system_container_in_its_own_user_namespace_is_bounded_too() {
    let Some(dirs) = project_quota_dirs() else {
        return;
    };
    for dir in dirs {
        let tree = Tree::new(&dir);
        let rootfs = tree.rootfs();
        link_busybox_init(&rootfs, Some("::respawn:/bin/sleep 1000\n"));
        let c = ctx_on(
            "pqs",
            &rootfs,
            &[("runvz.diskspace", "0:8M")],
            &["/sbin/init"],
        );
        c.run_detached();
        let uid_map = c.sh("cat /proc/self/uid_map");
        assert!(
            !uid_map.split_whitespace().take(2).eq(["0", "0"]),
            "a user namespace of its own: {uid_map}"
        );
        let (why, written) = parse_fill(&c.sh(&fill_script("/fill", 16 * 1024)));
        assert!(
            why.contains(over_quota_error(&dir)) && written < 8 * MIB && written > 4 * MIB,
            "{}: {why:?}, {written}",
            dir.display()
        );
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

/// A quota cannot be added to a running container (its tree cannot be tagged
/// safely while it writes): `update --diskspace` of one made without a quota
/// is refused clearly and changes nothing.
#[test]
fn update_cannot_add_a_quota_to_a_container_made_without_one() {
    if runtime_is_runc() {
        skip("runvz's disk quota (runc has none)");
        return;
    }
    let c = Ctx::new("noqu", &["sleep", "1000"]);
    c.run_detached();
    let out = c.cmd(&["update", "--diskspace", "0:10M", &c.id]);
    out.failed();
    assert!(
        out.stderr.contains("created without one") && out.stderr.contains("runvz.diskspace"),
        "{out}"
    );
    let shown = c.cmd(&["beancounters", "--format", "json", &c.id]);
    shown.ok();
    assert!(
        !shown.stdout.contains("diskspace"),
        "no quota appeared: {}",
        shown.stdout
    );
    assert_eq!(c.status().as_deref(), Some("running"));
}

/// OpenVZ's second level, per-user quotas of a container's users: what works
/// is setting them from the host. A system container's rootfs is idmapped, so
/// its user 1000 writes files the filesystem owns as uid 1000 (the image's
/// IDs): the host's user quota for uid 1000 on that filesystem bounds it (and
/// is shared with every idmapped container there: the README says so).
/// Inside, `quotactl` needs CAP_SYS_ADMIN in the initial user namespace.
#[test]
fn user_quotas_inside_are_set_from_the_host() {
    let Some(dirs) = project_quota_dirs() else {
        return;
    };
    // The VM mounts its ext4 disk with usrquota as well.
    let Some(dir) = dirs.iter().find(|d| d.to_string_lossy().contains("ext4")) else {
        skip("no ext4 with usrquota here");
        return;
    };
    let tree = Tree::new(dir);
    let rootfs = tree.rootfs();
    link_busybox_init(&rootfs, Some("::respawn:/bin/sleep 1000\n"));
    // The user's home, owned on disk by uid 1000 (the idmapped rootfs shows
    // it inside as the container's user 1000).
    std::fs::create_dir_all(rootfs.join("home/u")).unwrap();
    std::os::unix::fs::chown(rootfs.join("home/u"), Some(1000), Some(1000)).unwrap();
    let c = ctx_on("uq", &rootfs, &[], &["/sbin/init"]);
    c.run_detached();
    let _limit = UserQuota::set(&rootfs, 1000, 2048);
    let out = c.rt.cmd_timeout(
        &[
            "exec",
            "--user",
            "1000:1000",
            &c.id,
            "sh",
            "-c",
            &fill_script("/home/u/fill", 8 * 1024),
        ],
        Duration::from_secs(60),
    );
    out.ok();
    let (why, written) = parse_fill(&out.stdout);
    assert!(
        why.contains("quota exceeded") && written <= 2 * MIB && written > MIB,
        "user 1000 stops at its 2 MiB user quota: {why:?}, {written}"
    );
    // Root inside has no user quota set: its write goes through.
    let (why, written) = parse_fill(&c.sh(&fill_script("/root/fill", 4 * 1024)));
    assert!(why.is_empty() && written == 4 * MIB, "{why:?}, {written}");
}

/// A user quota set with quotactl on the filesystem of `path`, lifted on drop.
struct UserQuota {
    path: PathBuf,
    uid: u32,
}

impl UserQuota {
    fn set(path: &Path, uid: u32, hard_kib: u64) -> UserQuota {
        user_quota(path, uid, hard_kib).expect("set a user quota from the host");
        UserQuota {
            path: path.to_path_buf(),
            uid,
        }
    }
}

impl Drop for UserQuota {
    fn drop(&mut self) {
        let _ = user_quota(&self.path, self.uid, 0);
    }
}

fn user_quota(path: &Path, uid: u32, hard_kib: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path)?;
    // SAFETY: dqblk is plain integers; quotactl_fd reads it.
    let mut blk: libc::dqblk = unsafe { std::mem::zeroed() };
    blk.dqb_bhardlimit = hard_kib;
    blk.dqb_valid = libc::QIF_BLIMITS;
    let cmd = ((libc::Q_SETQUOTA as u32) << 8) | libc::USRQUOTA as u32;
    let r = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            dir.as_raw_fd(),
            cmd,
            uid,
            &raw mut blk,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
