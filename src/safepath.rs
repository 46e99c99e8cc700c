//! Host-side path operations on trees the container controls (DESIGN.md,
//! "Trust boundaries"): its rootfs, its cgroup directories (which a delegated
//! container fills with sub-cgroups of its own) and its host-side directory
//! ([`crate::idmap::dir`], owned by its root). A path in such a tree is never
//! handed to a host syscall as a string: it is resolved inside the tree with
//! `pathrs` (openat2 `RESOLVE_IN_ROOT`, optionally `RESOLVE_NO_SYMLINKS`) and
//! the syscall acts on the file descriptor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Result, bail};
use pathrs::Root;
use pathrs::error::ErrorKind;
use pathrs::flags::ResolverFlags;

/// `path` (a rootfs, say) as a root: every path resolved in it stays in it,
/// `..` and symlinks (absolute ones too) included, as they would inside the
/// container.
pub fn root(path: &Path) -> Result<Root> {
    Root::open(path).map_err(|err| anyhow::anyhow!("cannot open {}: {err}", path.display()))
}

/// `path` as a root in which no symlink is followed at all: runvz's own
/// directories (nothing there is a symlink unless planted) and cgroup trees
/// (cgroupfs has none).
pub fn strict_root(path: &Path) -> Result<Root> {
    Ok(root(path)?.with_resolver_flags(ResolverFlags::NO_SYMLINKS))
}

/// Whether a pathrs error is "no such file or directory".
pub fn is_not_found(err: &pathrs::error::Error) -> bool {
    matches!(err.kind(), ErrorKind::OsError(Some(libc::ENOENT)))
}

/// A path made of plain names only (a leading `/` is dropped), for a path that
/// must stay below where it is joined: a cgroupsPath, a sub-cgroup. `..`, `.`
/// and empty paths are refused.
pub fn plain_relative(path: &Path, what: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => out.push(name),
            _ => bail!("{what} {}: only plain names are allowed", path.display()),
        }
    }
    Ok(out)
}

/// `path` with `.` and `..` resolved by name only; `..` never climbs above
/// the start (`/../x` is `/x`, `../x` is `x`).
pub fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The path that reaches an open file through /proc, for syscalls that only
/// take a path (mount, umount): as runc does, the target is pinned by the fd.
pub fn fd_path(fd: impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Whether the open file is the root of a mount (statx STATX_ATTR_MOUNT_ROOT).
pub fn is_mount_root(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: statx writes into `stx`, whose size is the kernel's struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH and our own fd.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            0,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let flag = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if stx.stx_attributes_mask & flag == 0 {
        return Err(io::Error::other(
            "this kernel does not tell mount roots (statx)",
        ));
    }
    Ok(stx.stx_attributes & flag != 0)
}

/// The file type of an open file (`libc::S_IFDIR`, `S_IFREG`, `S_IFLNK` …).
pub fn file_type(fd: BorrowedFd<'_>) -> io::Result<libc::mode_t> {
    let stat = nix::sys::stat::fstat(fd.as_raw_fd())?;
    Ok(stat.st_mode & libc::S_IFMT)
}

/// chown of the open file itself (never what a path names).
pub fn fchown(fd: impl AsFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: fchownat on our fd with an empty path and AT_EMPTY_PATH.
    let rc = unsafe {
        libc::fchownat(
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// openat2(2): `path` resolved from `dirfd` with `resolve` (RESOLVE_*).
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    resolve: u64,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: open_how is plain data; zeroed then filled.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: openat2 reads the path and `how` (of the size passed).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat2 returned a new fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Removes the directory `path` and everything below it without ever
/// deleting through a mount: a mount point found on the way (one the
/// directory's owner moved out of sight, say) is detached first, and the
/// removal fails if it stays. Nothing is followed (symlinks are removed as
/// links). `path` itself must be a trusted host path.
pub fn remove_dir_all_here(path: &Path) -> Result<()> {
    let dir = match nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => {
            use std::os::fd::FromRawFd;
            // SAFETY: open just returned this fd; nothing else owns it.
            unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
        }
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(err) => bail!("cannot open {}: {err}", path.display()),
    };
    empty_dir(dir.as_fd(), path)?;
    std::fs::remove_dir(path)
        .map_err(|err| anyhow::anyhow!("cannot remove {}: {err}", path.display()))
}

const BENEATH_ONLY: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

fn empty_dir(dir: BorrowedFd<'_>, shown: &Path) -> Result<()> {
    let names: Vec<std::ffi::OsString> = std::fs::read_dir(fd_path(dir))
        .map_err(|err| anyhow::anyhow!("cannot list {}: {err}", shown.display()))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    for name in names {
        let path = shown.join(&name);
        let name = Path::new(&name);
        // EXDEV with RESOLVE_NO_XDEV: the entry is a mount point.
        let probe = |xdev: u64| {
            openat2(
                dir,
                name,
                libc::O_PATH | libc::O_NOFOLLOW,
                BENEATH_ONLY | xdev,
            )
        };
        match probe(libc::RESOLVE_NO_XDEV) {
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::EXDEV) => {
                if let Ok(mounted) = probe(0) {
                    let _ =
                        nix::mount::umount2(&fd_path(&mounted), nix::mount::MntFlags::MNT_DETACH);
                }
                if probe(libc::RESOLVE_NO_XDEV)
                    .is_err_and(|err| err.raw_os_error() == Some(libc::EXDEV))
                {
                    bail!(
                        "cannot unmount {}: left in place with what it shows",
                        path.display()
                    );
                }
            }
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(err) => bail!("cannot open {}: {err}", path.display()),
        }
        let entry = probe(libc::RESOLVE_NO_XDEV)
            .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", path.display()))?;
        let is_dir = file_type(entry.as_fd())? == libc::S_IFDIR;
        if is_dir {
            let child = openat2(
                dir,
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                BENEATH_ONLY | libc::RESOLVE_NO_XDEV,
            )
            .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", path.display()))?;
            empty_dir(child.as_fd(), &path)?;
        }
        let flags = if is_dir {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, flags)
            .map_err(|err| anyhow::anyhow!("cannot remove {}: {err}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexically_normal_never_climbs_above_the_start() {
        for (given, want) in [
            ("/../../tmp/x/y", "/tmp/x/y"),
            ("/a/./b/../c", "/a/c"),
            ("../x", "x"),
            ("a/../../x", "x"),
            ("/..", "/"),
        ] {
            assert_eq!(
                lexically_normal(Path::new(given)),
                Path::new(want),
                "{given}"
            );
        }
    }

    #[test]
    fn plain_relative_refuses_dot_dot() {
        assert_eq!(
            plain_relative(Path::new("/runvz/a"), "x").unwrap(),
            PathBuf::from("runvz/a")
        );
        assert!(plain_relative(Path::new("/runvz/../../etc"), "x").is_err());
        assert!(plain_relative(Path::new("a/./b"), "x").is_ok()); // "." is dropped by components()
    }

    #[test]
    fn symlinks_stay_inside_a_root() {
        let dir = std::env::temp_dir().join(format!("runvz-safepath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::os::unix::fs::symlink("/", dir.join("etc/escape")).unwrap();
        let root = root(&dir).unwrap();
        // "/" inside the root is the root itself, not the host's /.
        let handle = root.resolve("etc/escape/etc").unwrap();
        let inside = std::fs::metadata(dir.join("etc")).unwrap();
        let got = nix::sys::stat::fstat(handle.as_fd().as_raw_fd()).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(got.st_ino, inside.ino());
        assert!(strict_root(&dir).unwrap().resolve("etc/escape").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
