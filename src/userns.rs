//! User-namespace isolation for system containers (`runvz.userns=auto`, the
//! default for a system container whose config has no user namespace).
//!
//! Each such container gets its own range of 65536 host IDs that no other
//! container holds, from an allocator under the default state root
//! (`/run/runvz/.userns/ranges.json`, changed under its `lock`; one for the whole
//! host, whatever `--root` each engine uses, so ranges never overlap), released
//! on delete. Its root is an unprivileged host ID; its rootfs is made usable
//! through an idmapped mount (files owned by root on disk are root's inside),
//! and its cgroup is delegated to its root, as systemd delegates to a unit.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::container::{ContainerLock, write_atomic};

/// IDs per container, as OpenVZ and LXC give.
pub const RANGE: u32 = 65536;
/// Ranges start here, far above the host's users and their /etc/subuid ranges.
const BASE: u32 = 1 << 30;
const SLOTS: u32 = 16383;

fn dir() -> PathBuf {
    PathBuf::from("/run/runvz/.userns")
}

fn read_ranges() -> Result<BTreeMap<String, u32>> {
    match fs::read(dir().join("ranges.json")) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).context("ranges.json is corrupt")?),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(err) => Err(err.into()),
    }
}

fn lock() -> Result<ContainerLock> {
    fs::create_dir_all(dir())?;
    ContainerLock::acquire(&dir().join("lock"))
}

/// The key a container's range is held under: its state root and ID, as the
/// same ID may exist under several roots.
pub fn key(store_root: &Path, id: &str) -> String {
    format!("{}/{id}", store_root.display())
}

/// The first host ID of the container's range, allocating one if it has none.
pub fn allocate(key: &str) -> Result<u32> {
    let _lock = lock()?;
    let mut ranges = read_ranges()?;
    if let Some(&start) = ranges.get(key) {
        return Ok(start);
    }
    let taken: std::collections::HashSet<u32> = ranges.values().copied().collect();
    let start = (0..SLOTS)
        .map(|slot| BASE + slot * RANGE)
        .find(|start| !taken.contains(start))
        .context("every user-namespace range is taken")?;
    ranges.insert(key.to_string(), start);
    write_atomic(
        &dir().join("ranges.json"),
        &serde_json::to_vec_pretty(&ranges)?,
    )?;
    Ok(start)
}

/// Gives the container's range back (nothing when it had none).
pub fn release(key: &str) -> Result<()> {
    if !dir().join("ranges.json").exists() {
        return Ok(());
    }
    let _lock = lock()?;
    let mut ranges = read_ranges()?;
    if ranges.remove(key).is_some() {
        write_atomic(
            &dir().join("ranges.json"),
            &serde_json::to_vec_pretty(&ranges)?,
        )?;
    }
    Ok(())
}

/// Whether `runvz.userns` asks for a range of the container's own: `auto`
/// (opt-in for now) when the config has no user namespace; `host` (the default)
/// runs it without one.
pub fn wanted(spec: &oci_spec::runtime::Spec, where_: &str) -> Result<bool> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let has_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    match annotations.get("runvz.userns").map(|v| v.trim()) {
        None | Some("host") => Ok(false),
        Some("auto") if has_userns => Ok(false),
        Some("auto") if crate::cgroups::is_v2() => bail!(
            "{where_}: runvz.userns=auto is not available on cgroup v2 yet (libcontainer 0.7 drives the cgroups of a user-namespaced container through systemd); use runvz.userns=host"
        ),
        Some("auto") => Ok(true),
        Some(other) => bail!("{where_}: runvz.userns: {other:?} is not auto or host"),
    }
}

/// A user namespace mapping 0…65535 onto `start`…, in the spec.
pub fn apply_to_spec(spec: &mut Value, start: u32) {
    let linux = &mut spec["linux"];
    if !linux["namespaces"].is_array() {
        linux["namespaces"] = json!([]);
    }
    linux["namespaces"]
        .as_array_mut()
        .expect("array")
        .push(json!({"type": "user"}));
    let mapping = json!([{"containerID": 0, "hostID": start, "size": RANGE}]);
    linux["uidMappings"] = mapping.clone();
    linux["gidMappings"] = mapping;
}

/// Mounts `rootfs` at `target` idmapped by the container's range (on-disk ID
/// n is host ID start+n, so root's files are the container root's).
pub fn idmapped_rootfs(rootfs: &Path, target: &Path, start: u32) -> Result<()> {
    let userns = mapping_namespace(start)?;
    fs::create_dir_all(target)?;
    let source = std::ffi::CString::new(rootfs.as_os_str().as_encoded_bytes())?;
    // SAFETY: open_tree takes a NUL-terminated path we own and plain flags.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | AT_RECURSIVE,
        )
    };
    if tree < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot clone the mount of {}", rootfs.display()));
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: mount_setattr reads `attr` (of the size passed) and the empty path.
    if unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as u32 | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    } != 0
    {
        let err = std::io::Error::last_os_error();
        bail!(
            "cannot idmap the rootfs {}: {err} (its filesystem or this kernel does not support idmapped mounts; set runvz.userns=host to run it without a user namespace of its own)",
            rootfs.display()
        );
    }
    let target_c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?;
    // SAFETY: move_mount takes the tree fd, an empty path and a NUL-terminated target.
    if unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot mount the idmapped rootfs at {}", target.display()));
    }
    Ok(())
}

/// Unmounts an idmapped rootfs made by [`idmapped_rootfs`] (if mounted).
pub fn unmount_rootfs(target: &Path) {
    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
}

/// Whether `path` is a mount point, from /proc/self/mountinfo (a bind mount of
/// the same filesystem has its parent's device number, so that cannot tell).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(path) = fs::canonicalize(path) else {
        return false;
    };
    let wanted = path.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/self/mountinfo")
        .map(|info| {
            info.lines()
                .any(|l| l.split_whitespace().nth(4) == Some(wanted.as_str()))
        })
        // Unknown: say mounted, so nothing is removed through it.
        .unwrap_or(true)
}

const OPEN_TREE_CLONE: u32 = 1;
const AT_RECURSIVE: u32 = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A user namespace with the container's mapping, for the idmapped mount: a
/// child enters a new one and waits; runvz writes its maps and keeps a handle.
fn mapping_namespace(start: u32) -> Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe()?;
    let (done_r, done_w) = nix::unistd::pipe()?;
    // SAFETY: runvz is single-threaded here; the child only makes syscalls.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            drop(done_w);
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&ready_w, if ok { b"y" } else { b"n" });
            let mut buf = [0u8; 1];
            let _ = nix::unistd::read(done_r.as_raw_fd(), &mut buf);
            // SAFETY: _exit ends the child without the parent's cleanup.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(ready_w);
            drop(done_r);
            let mut buf = [0u8; 1];
            let result = (|| -> Result<OwnedFd> {
                nix::unistd::read(ready_r.as_raw_fd(), &mut buf)?;
                if buf[0] != b'y' {
                    bail!("cannot create a user namespace for the idmapped rootfs");
                }
                let map = format!("0 {start} {RANGE}\n");
                fs::write(format!("/proc/{child}/uid_map"), &map)?;
                fs::write(format!("/proc/{child}/gid_map"), &map)?;
                Ok(OwnedFd::from(fs::File::open(format!(
                    "/proc/{child}/ns/user"
                ))?))
            })();
            drop(done_w);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

/// Hands the container's cgroup to its root (host ID `start`): the directory
/// and the files a delegate writes, in every hierarchy, as systemd does for a
/// delegated unit. systemd inside then builds its own tree there.
pub fn delegate_cgroup(cgroup_path: &Path, start: u32) -> Result<()> {
    let owner = Some(nix::unistd::Uid::from_raw(start));
    let group = Some(nix::unistd::Gid::from_raw(start));
    for dir in crate::cgroups::dirs_in_every_hierarchy(cgroup_path) {
        nix::unistd::chown(&dir, owner, group)
            .with_context(|| format!("cannot delegate {}", dir.display()))?;
        for file in [
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
            "tasks",
        ] {
            let path = dir.join(file);
            if path.exists() {
                nix::unistd::chown(&path, owner, group)
                    .with_context(|| format!("cannot delegate {}", path.display()))?;
            }
        }
    }
    Ok(())
}
