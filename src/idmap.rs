//! Idmapped mounts: how a container with a user namespace of its own sees its
//! rootfs and bind mounts with their owners intact.
//!
//! An idmapped mount shows on-disk ID n as the host ID its user namespace maps
//! n to; with the container's own mapping (0 → its range's start), files owned
//! by root on disk are the container root's. runvz makes these mounts in the
//! host's mount namespace, in a directory of the container's own ([`dir`]), and
//! points the spec at them; libcontainer then bind-mounts them into place as
//! usual, from inside the user namespace: so that directory is not under the
//! state root (0700, as runc's), but under /run/runvz.idmap (0711), and only
//! the container's root may enter it.
//!
//! - The rootfs of a container with a runvz-made range is always idmapped.
//! - In a container with a runvz-made range every bind source is cloned there
//!   (idmapped or not), since its root may not reach the source's own path.
//! - A bind mount is idmapped when the config asks (`idmap`/`ridmap` option,
//!   with the mount's own `uidMappings` or the container's), and, in a
//!   container with a runvz-made range, when it is read-only: its files keep
//!   their owners yet cannot be written. A writable host volume is not idmapped
//!   unasked, since that would let the container's root write as host root;
//!   inside it belongs to nobody.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

/// Where every container's idmapped mounts are.
const TOP: &str = "/run/runvz.idmap";
/// Where a container with its own range gets its idmapped rootfs, in [`dir`].
pub const ROOTFS: &str = "rootfs";
/// Where its idmapped bind sources go, one entry per mount.
const BINDS: &str = "idmapped";
/// Where the idmapped layers of an overlay rootfs go.
const LAYERS: &str = "layers";
/// Where sysfs of a network namespace given by path is mounted.
const SYSFS: &str = "sys";
/// A tmpfs of device nodes owned by the container's root (`nesting`): /run
/// may be mounted nodev, this one is not.
const DEVICES: &str = "dev";

/// The directory of a container's idmapped mounts; `key` is its
/// [`crate::userns::key`]. Named by a hash, since the key can be longer than
/// a file name may be.
pub fn dir(key: &str) -> PathBuf {
    Path::new(TOP).join(crate::userns::key_name(key))
}

/// Makes [`dir`] for a container whose root is host ID `owner`: reachable by
/// it alone.
pub fn make_dir(dir: &Path, owner: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true).mode(0o711).create(TOP)?;
    builder.mode(0o700).create(dir)?;
    let id = Some(nix::unistd::Uid::from_raw(owner));
    nix::unistd::chown(dir, id, Some(nix::unistd::Gid::from_raw(owner)))
        .with_context(|| format!("cannot hand {} to the container's root", dir.display()))
}

/// A user namespace's ID maps, as written to /proc/PID/{uid,gid}_map.
pub struct IdMaps {
    uid_map: String,
    gid_map: String,
}

impl IdMaps {
    /// 0…size-1 onto start…, for both users and groups.
    pub fn range(start: u32, size: u32) -> IdMaps {
        let map = format!("0 {start} {size}\n");
        IdMaps {
            uid_map: map.clone(),
            gid_map: map,
        }
    }

    fn from_spec(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> IdMaps {
        let lines = |maps: &[LinuxIdMapping]| -> String {
            maps.iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        IdMaps {
            uid_map: lines(uids),
            gid_map: lines(gids),
        }
    }
}

/// Mounts `rootfs` at `<dir>/rootfs`, idmapped by the range at `start`. An overlayfs
/// cannot be idmapped itself, so an overlay rootfs (an engine's image) is
/// mounted anew from idmapped layers, as Podman does for its own user
/// namespaces.
pub fn rootfs(rootfs: &Path, dir: &Path, start: u32, size: u32) -> Result<()> {
    make_dir(dir, start)?;
    let own = own_root(dir)?;
    let target = own
        .mkdir_all(ROOTFS, &dir_mode())
        .map_err(|err| anyhow::anyhow!("cannot create {}/{ROOTFS}: {err}", dir.display()))?;
    let userns = mapping_namespace(&IdMaps::range(start, size))?;
    let direct = clone_mount(rootfs, &target, Some(&userns), true);
    let result = match (direct, Overlay::mounted_at(rootfs)) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(overlay)) => overlay.mount_idmapped(dir, &own, &target, &userns, start),
        (Err(err), None) => Err(err.into()),
    };
    result.with_context(|| {
        format!(
            "cannot idmap the rootfs {} (its filesystem or this kernel does not support idmapped mounts; set runvz.userns=host to run it without a user namespace of its own)",
            rootfs.display()
        )
    })
}

/// An overlayfs mount, from its line in /proc/self/mountinfo.
/// The upper and work directories of the overlay mounted at `path` (where
/// a container's writes land), if it is an overlay with an upper layer. The
/// paths come from the mount table (the engine's mount call), not from the
/// container.
pub fn overlay_upper(path: &Path) -> Option<(PathBuf, PathBuf)> {
    Overlay::mounted_at(path)?.upper
}

struct Overlay {
    lower: Vec<PathBuf>,
    upper: Option<(PathBuf, PathBuf)>,
    /// Options that change how the layers' contents read (kept as they were).
    features: Vec<String>,
}

impl Overlay {
    fn mounted_at(path: &Path) -> Option<Overlay> {
        let path = fs::canonicalize(path).ok()?;
        let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let line = info.lines().rev().find(|l| {
            l.split_whitespace().nth(4).map(unescape) == Some(path.to_string_lossy().into_owned())
        })?;
        let (_, fs_part) = line.split_once(" - ")?;
        let mut fields = fs_part.split_whitespace();
        if fields.next()? != "overlay" {
            return None;
        }
        let options = fields.nth(1)?;
        let (mut lower, mut upper, mut work, mut features) = (vec![], None, None, vec![]);
        for option in options.split(',') {
            match option.split_once('=') {
                Some(("lowerdir", dirs)) => {
                    lower = dirs
                        .split(':')
                        .map(|d| PathBuf::from(unescape(d)))
                        .collect()
                }
                Some(("upperdir", dir)) => upper = Some(PathBuf::from(unescape(dir))),
                Some(("workdir", dir)) => work = Some(PathBuf::from(unescape(dir))),
                Some(("redirect_dir" | "metacopy" | "uuid", _)) => features.push(option.into()),
                None if option == "userxattr" => features.push(option.into()),
                _ => {}
            }
        }
        Some(Overlay {
            lower,
            upper: upper.zip(work),
            features,
        })
    }

    /// Mounts the same overlay at `target` with every layer idmapped by
    /// `userns` (clones under `layers`). index=off: the upper layer is also
    /// the engine's mount's, which overlayfs allows only without an index.
    fn mount_idmapped(
        &self,
        dir: &Path,
        own: &pathrs::Root,
        target: &pathrs::Handle,
        userns: &OwnedFd,
        root_id: u32,
    ) -> Result<()> {
        // The layers' clones are mount points runvz has just made in the
        // container's own directory; overlayfs takes them by path (its options
        // show in mountinfo), the target by fd.
        let layers = dir.join(LAYERS);
        let mut options = vec![];
        let mut lowers = vec![];
        for (n, lower) in self.lower.iter().enumerate() {
            if !lower.is_absolute() || lower.as_os_str().is_empty() {
                bail!("its overlay's layer {lower:?} is not an absolute path runvz can idmap");
            }
            let name = Path::new(LAYERS).join(format!("lower{n}"));
            let clone = layers.join(format!("lower{n}"));
            let handle = place_target(lower, own, &name)?;
            clone_mount(lower, &handle, Some(userns), false)
                .with_context(|| format!("cannot idmap its layer {}", lower.display()))?;
            lowers.push(clone.display().to_string());
        }
        options.push(format!("lowerdir={}", lowers.join(":")));
        if let Some((upper, work)) = &self.upper {
            // upperdir and workdir must be on one mount: clone their parent.
            let parent = upper.parent().filter(|p| Some(*p) == work.parent());
            let (Some(parent), Some(upper_name), Some(work_name)) =
                (parent, upper.file_name(), work.file_name())
            else {
                bail!("its overlay's upperdir and workdir are not side by side");
            };
            let name = Path::new(LAYERS).join("upper");
            let clone = layers.join("upper");
            let handle = place_target(parent, own, &name)?;
            clone_mount(parent, &handle, Some(userns), false)
                .with_context(|| format!("cannot idmap its layer {}", upper.display()))?;
            options.push(format!("upperdir={}", clone.join(upper_name).display()));
            options.push(format!("workdir={}", clone.join(work_name).display()));
            options.push("index=off".into());
        }
        options.extend(self.features.iter().cloned());
        let options = options.join(",");
        let target = crate::safepath::fd_path(target);
        mount_as(root_id, || {
            nix::mount::mount(
                Some("overlay"),
                &target,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(options.as_str()),
            )
        })
        .context("cannot mount the overlay of idmapped layers")
    }
}

/// Runs `mount` in a child whose filesystem IDs are `id` but which keeps all
/// of root's capabilities. overlayfs works on its layers with its mounter's
/// credentials, and an idmapped layer refuses IDs outside its mapping (host
/// root's 0 is not in the container's range; its root, `id`, is).
fn mount_as(id: u32, mount: impl FnOnce() -> nix::Result<()>) -> std::io::Result<()> {
    in_child(|| {
        nix::unistd::setfsuid(nix::unistd::Uid::from_raw(id));
        nix::unistd::setfsgid(nix::unistd::Gid::from_raw(id));
        // Leaving fsuid 0 drops the file capabilities from the effective set.
        caps::read(None, caps::CapSet::Permitted)
            .and_then(|all| caps::set(None, caps::CapSet::Effective, &all))
            .map_err(|_| nix::errno::Errno::EPERM)?;
        mount()
    })
}

/// Runs `work` in a forked child (so what it changes of its own credentials
/// or namespaces stays there); its mounts land in runvz's mount namespace.
fn in_child(work: impl FnOnce() -> nix::Result<()>) -> std::io::Result<()> {
    // SAFETY: the child makes syscalls and exits.
    match unsafe { crate::fork::fork_single_threaded() }? {
        nix::unistd::ForkResult::Child => {
            let errno = match work() {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: _exit ends the child without the parent's cleanup.
            unsafe { libc::_exit(errno) }
        }
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None)? {
            nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
            nix::sys::wait::WaitStatus::Exited(_, errno) => {
                Err(std::io::Error::from_raw_os_error(errno))
            }
            other => Err(std::io::Error::other(format!("helper ended: {other:?}"))),
        },
    }
}

/// A mountinfo field with its octal escapes (space, tab, newline, backslash) undone.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Idmaps the bind mounts that should be (see the module's notes) and points
/// the spec at them. `own_range`: the container's range is runvz's.
pub fn bind_mounts(spec: &mut Spec, dir: &Path, own_range: bool) -> Result<()> {
    let linux = spec.linux().clone().unwrap_or_default();
    let container_uids = linux.uid_mappings().clone().unwrap_or_default();
    let container_gids = linux.gid_mappings().clone().unwrap_or_default();
    let Some(mut mounts) = spec.mounts().clone() else {
        return Ok(());
    };
    let mut container_ns: Option<OwnedFd> = None;
    for (index, mount) in mounts.iter_mut().enumerate() {
        let options = mount.options().clone().unwrap_or_default();
        let has = |name: &str| options.iter().any(|o| o == name);
        let is_bind = mount.typ().as_deref() == Some("bind") || has("bind") || has("rbind");
        let asked = has("idmap") || has("ridmap") || mount.uid_mappings().is_some();
        let idmapped = asked || (own_range && has("ro"));
        // In a runvz range every bind source is cloned here: libcontainer
        // mounts it from inside the user namespace, whose root may not reach
        // the source's path (an engine's 0700 run directory), as runc opens
        // bind sources before entering it.
        if !is_bind || !(idmapped || own_range) {
            continue;
        }
        let Some(source) = mount.source().clone() else {
            continue;
        };
        let what = format!("mount {}", mount.destination().display());
        if asked && container_uids.is_empty() {
            bail!("{what}: idmap needs the container to have a user namespace");
        }
        let name = Path::new(BINDS).join(index.to_string());
        let target = dir.join(&name);
        let root = container_uids
            .iter()
            .find(|m| m.container_id() == 0)
            .map_or(0, |m| m.host_id());
        make_dir(dir, root)?;
        let own = own_root(dir)?;
        let own_maps;
        let userns = match (idmapped, mount.uid_mappings(), mount.gid_mappings()) {
            (false, _, _) => None,
            (true, Some(uids), gids) => {
                own_maps =
                    mapping_namespace(&IdMaps::from_spec(uids, gids.as_deref().unwrap_or(uids)))?;
                Some(&own_maps)
            }
            (true, None, _) => {
                if container_ns.is_none() {
                    container_ns = Some(mapping_namespace(&IdMaps::from_spec(
                        &container_uids,
                        &container_gids,
                    ))?);
                }
                container_ns.as_ref()
            }
        };
        let recursive = has("rbind") || has("ridmap");
        let placed = place_target(&source, &own, &name)?;
        let mut made = clone_mount(&source, &placed, userns, recursive);
        if let Err(err) = &made
            && idmapped
            && !asked
        {
            // Read-only and unasked: it still works, as nobody's files.
            tracing::info!("{what}: left without an idmap ({err}); its files show as nobody's");
            made = clone_mount(&source, &placed, None, recursive);
        }
        made.with_context(|| match userns {
            Some(_) => format!(
                "{what}: cannot idmap {} (its filesystem or this kernel does not support idmapped mounts)",
                source.display()
            ),
            None => format!("{what}: cannot bind {}", source.display()),
        })?;
        rewrite(mount, &target);
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// sysfs shows the network devices of the network namespace it is mounted
/// from, and may be mounted in a user namespace only when that user namespace
/// owns the network namespace. One given by path (an engine's, a person's) is
/// not the container's: runvz mounts sysfs from within it on the host side, in
/// [`dir`], and the spec binds that in (runc falls back to the host's /sys).
pub fn sysfs_of_joined_netns(spec: &mut Spec, dir: &Path, root: u32) -> Result<()> {
    let netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .find(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        .and_then(|ns| ns.path().clone());
    let (Some(netns), Some(mut mounts)) = (netns, spec.mounts().clone()) else {
        return Ok(());
    };
    let is_sysfs = |m: &oci_spec::runtime::Mount| m.typ().as_deref() == Some("sysfs");
    if !mounts.iter().any(is_sysfs) {
        return Ok(());
    }
    // One sysfs of that namespace, bound at every sysfs mount (nesting adds
    // a second one).
    make_dir(dir, root)?;
    let target = dir.join(SYSFS);
    let handle = own_root(dir)?
        .mkdir_all(SYSFS, &dir_mode())
        .map_err(|err| anyhow::anyhow!("cannot create {}: {err}", target.display()))?;
    let target_fd = crate::safepath::fd_path(&handle);
    let netns_file = fs::File::open(&netns)
        .with_context(|| format!("network namespace {}: cannot open", netns.display()))?;
    in_child(|| {
        nix::sched::setns(&netns_file, nix::sched::CloneFlags::CLONE_NEWNET)?;
        nix::mount::mount(
            Some("sysfs"),
            &target_fd,
            Some("sysfs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NOEXEC
                | nix::mount::MsFlags::MS_NODEV,
            None::<&str>,
        )
    })
    .with_context(|| {
        format!(
            "cannot mount sysfs of network namespace {}",
            netns.display()
        )
    })?;
    for mount in mounts.iter_mut().filter(|m| is_sysfs(m)) {
        let mut options = mount.options().clone().unwrap_or_default();
        options.push("rbind".into());
        mount
            .set_typ(Some("bind".into()))
            .set_source(Some(target.clone()))
            .set_options(Some(options));
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Character-device nodes `(name, rdev)` owned by the container's root
/// (`root`, a host ID), mode 0666, on a tmpfs of their own in the container's
/// directory (made before any of its processes exists; acted on by fd).
/// Returns their host paths, in order.
pub fn device_nodes(dir: &Path, root: u32, nodes: &[(String, u64)]) -> Result<Vec<PathBuf>> {
    use std::os::fd::AsRawFd;
    make_dir(dir, root)?;
    let target = dir.join(DEVICES);
    let handle = own_root(dir)?
        .mkdir_all(DEVICES, &dir_mode())
        .map_err(|err| anyhow::anyhow!("cannot create {}: {err}", target.display()))?;
    nix::mount::mount(
        Some("tmpfs"),
        &crate::safepath::fd_path(&handle),
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NOEXEC,
        Some("mode=755,size=64k"),
    )
    .with_context(|| format!("cannot mount a tmpfs at {}", target.display()))?;
    // The tmpfs now, not the directory under it.
    let mounted = own_root(dir)?
        .resolve_nofollow(DEVICES)
        .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", target.display()))?;
    let fd = std::os::fd::AsFd::as_fd(&mounted).as_raw_fd();
    let mut paths = Vec::new();
    for (name, rdev) in nodes {
        let c_name = std::ffi::CString::new(name.as_str())?;
        // SAFETY: mknodat, fchmodat and fchownat take a directory fd we hold
        // and a NUL-terminated name; no memory of ours is written.
        let made = unsafe {
            libc::mknodat(fd, c_name.as_ptr(), libc::S_IFCHR | 0o666, *rdev) == 0
                && libc::fchmodat(fd, c_name.as_ptr(), 0o666, 0) == 0
                && libc::fchownat(fd, c_name.as_ptr(), root, root, libc::AT_SYMLINK_NOFOLLOW) == 0
        };
        if !made {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot make {}", target.join(name).display()));
        }
        paths.push(target.join(name));
    }
    Ok(paths)
}

/// The idmapped mount's source now, without the options libcontainer does not know.
fn rewrite(mount: &mut Mount, target: &Path) {
    let options: Vec<String> = mount
        .options()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| o != "idmap" && o != "ridmap")
        .collect();
    mount
        .set_source(Some(target.to_path_buf()))
        .set_options(Some(options))
        .set_uid_mappings(None)
        .set_gid_mappings(None);
}

/// The container's directory ([`dir`]) as a root in which nothing is
/// followed: it belongs to the container's root, so what is in it is treated
/// as the container's.
fn own_root(dir: &Path) -> Result<pathrs::Root> {
    crate::safepath::strict_root(dir)
}

/// What fs::create_dir_all gives (before the umask).
fn dir_mode() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o777)
}

/// An empty file or directory at `name` in the container's directory for a
/// bind of `source` to land on, and a handle on it to mount onto.
fn place_target(source: &Path, own: &pathrs::Root, name: &Path) -> Result<pathrs::Handle> {
    let made = (|| -> std::result::Result<pathrs::Handle, pathrs::error::Error> {
        if let Some(parent) = name.parent().filter(|p| !p.as_os_str().is_empty()) {
            own.mkdir_all(parent, &dir_mode())?;
        }
        if fs::metadata(source).is_ok_and(|m| m.is_dir()) {
            own.mkdir_all(name, &dir_mode())
        } else {
            use std::os::unix::fs::PermissionsExt;
            own.create_file(
                name,
                pathrs::flags::OpenFlags::O_WRONLY,
                &fs::Permissions::from_mode(0o666),
            )?;
            own.resolve(name)
        }
    })();
    made.map_err(|err| anyhow::anyhow!("cannot make {} to mount on: {err}", name.display()))
}

/// Unmounts every idmapped mount runvz made for the container and removes
/// [`dir`]. Fails when one is still mounted, so nothing removes files through it.
/// The container's root owns [`dir`]: each entry is resolved in it without
/// following symlinks and unmounted by fd, so a planted symlink cannot turn
/// this into an unmount of a host mount.
pub fn remove(dir: &Path) -> Result<()> {
    // Most containers have no idmapped mounts: nothing to open.
    if !dir.exists() {
        return Ok(());
    }
    let own = match own_root(dir) {
        Ok(own) => own,
        Err(_) if !dir.exists() => return Ok(()),
        Err(err) => return Err(err),
    };
    // The rootfs first: an overlay of idmapped layers holds them busy.
    let mut targets = vec![
        PathBuf::from(DEVICES),
        PathBuf::from(ROOTFS),
        PathBuf::from(SYSFS),
    ];
    for sub in [BINDS, LAYERS] {
        let Ok(listing) = own.resolve(sub).and_then(|h| {
            h.reopen(pathrs::flags::OpenFlags::O_RDONLY | pathrs::flags::OpenFlags::O_DIRECTORY)
        }) else {
            continue;
        };
        if let Ok(entries) = fs::read_dir(crate::safepath::fd_path(&listing)) {
            targets.extend(
                entries
                    .flatten()
                    .map(|e| Path::new(sub).join(e.file_name())),
            );
        }
    }
    for target in targets {
        let Ok(handle) = own.resolve_nofollow(&target) else {
            continue; // gone, or not runvz's
        };
        if crate::safepath::file_type(handle.as_fd()).is_ok_and(|t| t == libc::S_IFLNK) {
            continue; // a symlink is no mount of runvz's; removed with the rest
        }
        let _ = nix::mount::umount2(
            &crate::safepath::fd_path(&handle),
            nix::mount::MntFlags::MNT_DETACH,
        );
        drop(handle);
        if mounted(&own, &target) {
            bail!(
                "cannot unmount {}: left in place with what it shows",
                dir.join(&target).display()
            );
        }
    }
    // The container's root may have moved runvz's mounts elsewhere in the
    // directory: nothing is removed through a mount.
    crate::safepath::remove_dir_all_here(dir)
}

/// Whether `name` in `own` is a mount point (resolved without following
/// anything). Unknown: say mounted, so nothing is removed through it.
fn mounted(own: &pathrs::Root, name: &Path) -> bool {
    match own.resolve_nofollow(name) {
        Ok(handle) => crate::safepath::is_mount_root(handle.as_fd()).unwrap_or(true),
        Err(err) => !crate::safepath::is_not_found(&err),
    }
}

const OPEN_TREE_CLONE: u32 = 1;
const AT_RECURSIVE: u32 = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Clones the mount at `source` (with its submounts when `recursive`), idmaps
/// the clone by `userns` (if given) and mounts it on the file `target` holds.
fn clone_mount(
    source: &Path,
    target: &pathrs::Handle,
    userns: Option<&OwnedFd>,
    recursive: bool,
) -> std::io::Result<()> {
    let recursive_flag = if recursive { AT_RECURSIVE } else { 0 };
    let source = std::ffi::CString::new(source.as_os_str().as_encoded_bytes())?;
    let tree = clone_tree(libc::AT_FDCWD, &source, recursive_flag)?;
    let empty = c"";
    if let Some(userns) = userns {
        set_idmap(&tree, userns, recursive_flag)?;
    }
    // SAFETY: move_mount takes the tree fd and the target's fd, both with empty paths.
    if unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_fd().as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A detached clone of the mount at `path` from `dirfd` (open_tree with
/// OPEN_TREE_CLONE; `extra` adds AT_RECURSIVE or AT_EMPTY_PATH).
pub fn clone_tree(
    dirfd: std::os::fd::RawFd,
    path: &std::ffi::CStr,
    extra: u32,
) -> std::io::Result<OwnedFd> {
    // SAFETY: open_tree takes a NUL-terminated path and plain flags.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | extra,
        )
    };
    if tree < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(tree as i32) })
}

/// Marks a detached mount tree idmapped by `userns`.
fn set_idmap(tree: &OwnedFd, userns: &OwnedFd, recursive_flag: u32) -> std::io::Result<()> {
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
            libc::AT_EMPTY_PATH as u32 | recursive_flag,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A user namespace with `maps`, for an idmapped mount: a child enters a new
/// one and waits; runvz writes its maps and keeps a handle.
fn mapping_namespace(maps: &IdMaps) -> Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe()?;
    let (done_r, done_w) = nix::unistd::pipe()?;
    // SAFETY: the child only makes syscalls.
    match unsafe { crate::fork::fork_single_threaded() }? {
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
                    bail!("cannot create a user namespace for an idmapped mount");
                }
                fs::write(format!("/proc/{child}/uid_map"), &maps.uid_map)
                    .context("cannot write the idmapped mount's uid_map")?;
                fs::write(format!("/proc/{child}/gid_map"), &maps.gid_map)
                    .context("cannot write the idmapped mount's gid_map")?;
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
