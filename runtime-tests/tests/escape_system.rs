//! Escapes a system container could try through runvz's own host-side work
//! (DESIGN.md, "Trust boundaries"): its image's paths, its host-side
//! directory (which belongs to its root), its mounts that `update` remounts.
//! Each test plants what a hostile image or a hostile container root would
//! and checks that a host victim (a tmpfs or a directory of the test's) is
//! left exactly as it was.

use runtime_tests::*;
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn skip_for_runc() -> bool {
    if runtime_is_runc() {
        skip("system containers are runvz's own mode");
        return true;
    }
    false
}

/// A busybox-init system container whose init only keeps a sleeper alive.
fn busybox_system(prefix: &str) -> Ctx {
    let c = Ctx::new(prefix, &["/sbin/init"]);
    let rootfs = c.bundle.rootfs_path();
    link_busybox_init(&rootfs, Some("::respawn:/bin/sleep 1000\n"));
    c
}

/// The mountinfo line of a mount point of the test's own namespace.
fn mountinfo_line(path: &Path) -> Option<String> {
    let path = fs::canonicalize(path).ok()?;
    fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find(|l| l.split_whitespace().nth(4) == path.to_str())
        .map(str::to_string)
}

/// A host tmpfs (the victim): a marker file in it, unmounted on drop.
struct HostTmpfs {
    dir: TempDir,
}

impl HostTmpfs {
    fn new(size: &str) -> HostTmpfs {
        let dir = TempDir::new("victim");
        let out = run_command(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0777")])
                .arg("victim-tmpfs")
                .arg(dir.path()),
            None,
            Duration::from_secs(10),
        );
        assert!(out.success(), "cannot mount the victim tmpfs:\n{out}");
        fs::write(dir.path().join("marker"), "host data\n").unwrap();
        HostTmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Still mounted, with `size` and its marker.
    #[track_caller]
    fn assert_untouched(&self, size: &str) {
        let line = mountinfo_line(self.path()).unwrap_or_else(|| {
            panic!(
                "the host's tmpfs at {} was unmounted",
                self.path().display()
            )
        });
        assert!(
            line.contains(&format!("size={size}")),
            "the host's tmpfs was reconfigured: {line}"
        );
        assert_eq!(
            fs::read_to_string(self.path().join("marker")).unwrap_or_default(),
            "host data\n",
            "the host's tmpfs lost its marker"
        );
    }
}

impl Drop for HostTmpfs {
    fn drop(&mut self) {
        while mountinfo_line(self.path()).is_some() {
            if !Command::new("umount")
                .arg("-l")
                .arg(self.path())
                .status()
                .is_ok_and(|s| s.success())
            {
                break;
            }
        }
    }
}

/// The name of a container's directory in /run/runvz.idmap (runvz's
/// `idmap::dir`: FNV-1a of "<state root>/<id>").
fn idmap_dir_name(c: &Ctx) -> String {
    let root = fs::canonicalize(c.rt.root_str()).unwrap();
    let key = format!("{}/{}", root.display(), c.id);
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The container's root owns its host-side directory under /run/runvz.idmap.
/// Given a way there (a bind of the host's /run/runvz.idmap, as a bind of
/// /run would give), it plants symlinks to a host mount where runvz unmounts
/// its own mounts on delete. Delete must unmount nothing of the host's.
#[test]
fn symlinks_planted_in_the_host_side_directory_unmount_nothing_of_the_host() {
    if skip_for_runc() {
        return;
    }
    let victim = HostTmpfs::new("2m");
    let victim_parent = TempDir::new("victim-parent");
    let inner = victim_parent.path().join("inner");
    fs::create_dir_all(&inner).unwrap();
    let inner_tmpfs = run_command(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "inner-victim"])
            .arg(&inner),
        None,
        Duration::from_secs(10),
    );
    assert!(inner_tmpfs.success(), "{inner_tmpfs}");

    let mut c = busybox_system("escidm");
    c.bundle.add_mount(json!({
        "destination": "/hostidmap", "type": "bind",
        "source": "/run/runvz.idmap", "options": ["bind", "rw"]
    }));
    c.bundle.save();
    c.run_detached();
    c.wait_status("running");
    // As the container's root, in its own directory: the bind clones moved
    // aside (one of them shows the host's /run/runvz.idmap) and symlinks to
    // host mounts where runvz looks for its own.
    // /run/runvz.idmap cannot be listed (0711), but its directory's name is a
    // hash of what the container may well know (the state root and its ID).
    let own = idmap_dir_name(&c);
    let plant = format!(
        "n=0; for d in /hostidmap/{own}; do \
           if [ -w \"$d\" ] && [ -d \"$d/idmapped\" ]; then \
             mv \"$d/idmapped\" \"$d/moved\" && mkdir \"$d/idmapped\" && \
             ln -s {victim} \"$d/idmapped/99\" && ln -s {victim} \"$d/sys\" && \
             ln -s {parent} \"$d/layers\" && n=$((n+1)); \
           fi; \
         done; echo planted $n",
        victim = victim.path().display(),
        parent = victim_parent.path().display(),
    );
    let planted = c.cmd(&["exec", &c.id, "sh", "-c", &plant]);
    planted.ok();
    assert_eq!(
        planted.stdout.trim(),
        "planted 1",
        "the container could not reach its own directory: {planted}"
    );

    c.cmd(&["delete", "--force", &c.id]).ok();
    victim.assert_untouched("2048k");
    assert!(
        Path::new("/run/runvz.idmap").is_dir(),
        "delete removed /run/runvz.idmap through the moved bind clone"
    );
    let inner_line = mountinfo_line(&inner);
    let _ = Command::new("umount").arg("-l").arg(&inner).status();
    assert!(
        inner_line.is_some(),
        "a host mount below the planted `layers` symlink was unmounted"
    );
    c.assert_no_leak();
}

/// `update --shmpages` remounts /dev/shm inside the container. A container
/// root with CAP_SYS_ADMIN in its user namespace can put something else
/// there: a symlink to a host tmpfs it was given, or a bind of it. Neither may
/// get the host's tmpfs reconfigured (the container itself could not).
#[test]
fn update_does_not_remount_what_the_container_put_at_dev_shm() {
    if skip_for_runc() {
        return;
    }
    let victim = HostTmpfs::new("2m");
    let mut c = busybox_system("escshm");
    c.bundle.annotation("runvz.ubc.shmpages", "256");
    for set in ["bounding", "effective", "permitted"] {
        c.bundle.patch(|spec| {
            spec["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        });
    }
    c.bundle.add_mount(json!({
        "destination": "/victim", "type": "bind",
        "source": victim.path().to_str().unwrap(), "options": ["bind", "rw"]
    }));
    c.bundle.save();
    c.run_detached();
    c.wait_status("running");
    let shm_options = |c: &Ctx| {
        let mounts = c.cmd(&["exec", &c.id, "cat", "/proc/mounts"]);
        mounts.ok();
        mounts
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("/dev/shm"))
            .map(str::to_string)
            .unwrap_or_default()
    };

    // The container's own /dev/shm is remounted, as before.
    c.cmd(&["update", "--shmpages", "3M", &c.id]).ok();
    let shm = shm_options(&c);
    assert!(shm.contains("size=3072k"), "/dev/shm not remounted: {shm}");

    // A symlink in its place: refused, the host's tmpfs keeps its size.
    c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "umount /dev/shm && rmdir /dev/shm && ln -s /victim /dev/shm",
    ])
    .ok();
    c.cmd(&["update", "--shmpages", "1M", &c.id]).failed();
    victim.assert_untouched("2048k");

    // A bind of the host's tmpfs in its place: not the container's to resize.
    c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "rm /dev/shm && mkdir /dev/shm && mount --bind /victim /dev/shm",
    ])
    .ok();
    c.cmd(&["update", "--shmpages", "1M", &c.id]).failed();
    victim.assert_untouched("2048k");

    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// An image whose /etc/machine-id is a FIFO (or a device) must not hang or
/// flood `create`, which reads it to decide whether to provide one.
#[test]
fn a_fifo_as_machine_id_does_not_hang_create() {
    if skip_for_runc() {
        return;
    }
    let mut c = busybox_system("escfifo");
    let machine_id = c.bundle.rootfs_path().join("etc/machine-id");
    let _ = fs::remove_file(&machine_id);
    nix_mkfifo(&machine_id);
    c.bundle.readonly(true);
    c.bundle.save();
    let out = c.rt.cmd_timeout(
        &["run", "--detach", "--bundle", c.bundle.path_str(), &c.id],
        Duration::from_secs(30),
    );
    assert!(
        !out.timed_out,
        "create hung on a FIFO at /etc/machine-id:\n{out}"
    );
    out.ok();
    // It got runvz's machine ID over the FIFO.
    let id = c.cmd(&["exec", &c.id, "cat", "/etc/machine-id"]);
    id.ok();
    assert_eq!(id.stdout.trim().len(), 32, "{id}");
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

fn nix_mkfifo(path: &Path) {
    let out = run_command(
        Command::new("mkfifo").arg(path),
        None,
        Duration::from_secs(5),
    );
    assert!(out.success(), "{out}");
}

/// An image whose /run, /etc/machine-id and init are symlinks climbing out to
/// a host directory: runvz (its system-mode detection, its tmpfs on /run) must
/// resolve them inside the rootfs. The host directory gets no mount and no file.
#[test]
fn image_symlinks_out_of_the_rootfs_touch_nothing_on_the_host() {
    if skip_for_runc() {
        return;
    }
    let victim = TempDir::new("victim-dir");
    fs::write(
        victim.path().join("machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let c = busybox_system("escimg");
    let rootfs = c.bundle.rootfs_path();
    let climb: PathBuf = std::iter::repeat_n("..", 32)
        .collect::<PathBuf>()
        .join(victim.path().strip_prefix("/").unwrap());
    let _ = fs::remove_dir_all(rootfs.join("run"));
    std::os::unix::fs::symlink(&climb, rootfs.join("run")).unwrap();
    let _ = fs::remove_file(rootfs.join("etc/machine-id"));
    std::os::unix::fs::symlink(climb.join("machine-id"), rootfs.join("etc/machine-id")).unwrap();
    c.bundle.save();
    let before: Vec<_> = fs::read_dir(victim.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    // Whether runvz runs it (with /run inside the rootfs) or refuses it, the
    // host directory is left alone.
    let out = c.rt.cmd_timeout(
        &["run", "--detach", "--bundle", c.bundle.path_str(), &c.id],
        Duration::from_secs(30),
    );
    report(&format!("run with /run -> host: exit {}", out.code));
    assert!(
        mountinfo_line(victim.path()).is_none(),
        "runvz mounted over the host directory the image's /run points at"
    );
    let after: Vec<_> = fs::read_dir(victim.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "files appeared in the host directory");
    assert_eq!(
        fs::read_to_string(victim.path().join("machine-id")).unwrap(),
        "0123456789abcdef0123456789abcdef\n"
    );
    let _ = c.cmd(&["delete", "--force", &c.id]);
    assert!(mountinfo_line(victim.path()).is_none());
    c.assert_no_leak();
}
