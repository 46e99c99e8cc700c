//! Project quotas on ext4 and XFS: the tree tagged with a project ID and the
//! inherit flag (`FS_IOC_FSSETXATTR`), the limits set and read with
//! `quotactl_fd(2)` on PRJQUOTA (any descriptor on the filesystem names it; no
//! block device path needed). XFS takes the generic quota calls too.
//!
//! Only the init user namespace may change a file's project ID, so a container
//! with its own user namespace cannot move files out of its quota.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{Limits, Usage, open_dir};

const PRJQUOTA: u32 = 2;
/// XQM_CMD(5): the quota state, with the project flags (generic on ext4 too).
const Q_XGETQSTAT: u32 = 0x5805;
const FS_QUOTA_PDQ_ACCT: u16 = 0x10;
const FS_QUOTA_PDQ_ENFD: u16 = 0x20;
const FS_IOC_FSGETXATTR: libc::Ioctl = 0x801c_581f;
const FS_IOC_FSSETXATTR: libc::Ioctl = 0x401c_5820;
const FS_XFLAG_PROJINHERIT: u32 = 0x200;
/// Directory levels a tagged tree may have (one descriptor open per level).
const MAX_DEPTH: usize = 256;

#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}
const _: () = assert!(std::mem::size_of::<FsXattr>() == 28);

#[repr(C)]
#[derive(Default)]
struct FsQfilestat {
    ino: u64,
    nblks: u64,
    nextents: u32,
}

#[repr(C)]
#[derive(Default)]
struct FsQuotaStat {
    version: i8,
    flags: u16,
    pad: i8,
    u: FsQfilestat,
    g: FsQfilestat,
    incoredqs: u32,
    btimelimit: i32,
    itimelimit: i32,
    rtbtimelimit: i32,
    bwarn: u16,
    iwarn: u16,
}
const _: () = assert!(std::mem::size_of::<FsQuotaStat>() == 80);

fn qcmd(cmd: u32, kind: u32) -> u32 {
    (cmd << 8) | (kind & 0xff)
}

fn quotactl_fd(fd: RawFd, cmd: u32, id: u32, addr: *mut libc::c_void) -> std::io::Result<()> {
    // SAFETY: quotactl_fd reads or fills the structure `addr` points at, whose
    // type the command fixes and every caller passes.
    let r = unsafe { libc::syscall(libc::SYS_quotactl_fd, fd, cmd, id, addr) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Fails with what to enable unless project quotas are accounted and enforced
/// on the filesystem of `path`.
pub fn check(path: &Path, filesystem: &str, device: &str) -> Result<()> {
    let dir = open_dir(path)?;
    let mut stat = FsQuotaStat {
        version: 1,
        ..Default::default()
    };
    let result = quotactl_fd(
        dir.as_raw_fd(),
        qcmd(Q_XGETQSTAT, PRJQUOTA),
        0,
        (&raw mut stat).cast(),
    );
    let enable = match filesystem {
        "xfs" => "mount it with -o prjquota (XFS turns quotas on at mount time only)",
        _ => {
            "make it with mkfs.ext4 -O quota,project (or tune2fs -O quota,project while unmounted) and mount it with -o prjquota"
        }
    };
    let why = match result {
        Ok(()) if stat.flags & FS_QUOTA_PDQ_ENFD != 0 && stat.flags & FS_QUOTA_PDQ_ACCT != 0 => {
            return Ok(());
        }
        Ok(()) => "project quotas are not enforced".to_string(),
        Err(err) if err.raw_os_error() == Some(libc::ENOSYS) => {
            "project quotas are off, or the kernel lacks quota support for it (CONFIG_QUOTA, CONFIG_XFS_QUOTA) or quotactl_fd (Linux 5.14+)".to_string()
        }
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
            "the filesystem has no project quota".to_string()
        }
        Err(err) => format!(
            "cannot read its quota state: {}",
            crate::logging::os_words(&err)
        ),
    };
    bail!(
        "disk quota: {filesystem} filesystem {device} holding {}: {why}; {enable}",
        path.display()
    )
}

/// Sets the project's limits (0: none).
pub fn set_limits(path: &Path, id: u32, limits: &Limits) -> Result<()> {
    let dir = open_dir(path)?;
    // SAFETY: dqblk is plain integers.
    let mut blk: libc::dqblk = unsafe { std::mem::zeroed() };
    (blk.dqb_bsoftlimit, blk.dqb_bhardlimit) = limits.space;
    (blk.dqb_isoftlimit, blk.dqb_ihardlimit) = limits.inodes;
    blk.dqb_valid = libc::QIF_LIMITS;
    quotactl_fd(
        dir.as_raw_fd(),
        qcmd(libc::Q_SETQUOTA as u32, PRJQUOTA),
        id,
        (&raw mut blk).cast(),
    )
    .map_err(|err| {
        anyhow::anyhow!(
            "disk quota: cannot set the limits of project {id} on {}: {}",
            path.display(),
            crate::logging::os_words(&err)
        )
    })
}

/// The project's usage.
pub fn usage(path: &Path, id: u32) -> Result<Usage> {
    let dir = open_dir(path)?;
    // SAFETY: dqblk is plain integers.
    let mut blk: libc::dqblk = unsafe { std::mem::zeroed() };
    match quotactl_fd(
        dir.as_raw_fd(),
        qcmd(libc::Q_GETQUOTA as u32, PRJQUOTA),
        id,
        (&raw mut blk).cast(),
    ) {
        Ok(()) => Ok(Usage {
            space_kib: Some(blk.dqb_curspace.div_ceil(1024)),
            inodes: Some(blk.dqb_curinodes),
        }),
        // XFS: no quota record for the ID yet, so nothing used.
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(Usage {
            space_kib: Some(0),
            inodes: Some(0),
        }),
        Err(err) => Err(err).context("disk quota: cannot read the project's usage"),
    }
}

/// Whether the filesystem still counts usage for `id` (a tree tagged before).
pub fn in_use(path: &Path, id: u32) -> bool {
    usage(path, id).is_ok_and(|u| u.space_kib != Some(0) || u.inodes != Some(0))
}

/// Tags every directory and regular file under `root` (on its filesystem)
/// with the project, directories also with the inherit flag, so what is there
/// counts and what is made later inherits. The tree is the container's: it is
/// walked by descriptor, never following a symlink; symlinks and device nodes
/// cannot be opened safely and stay untagged (only their inodes go uncounted).
pub fn tag_tree(root: &Path, id: u32) -> Result<()> {
    let top = open_dir(root)?;
    let dev = fstat(top.as_raw_fd())?.st_dev;
    tag(&top, id, true).with_context(|| format!("disk quota: cannot tag {}", root.display()))?;
    let mut stack = vec![(top, names(root)?, 0usize)];
    let mut skipped = 0u64;
    while let Some((dir, entries, next)) = stack.last_mut() {
        let Some(name) = entries.get(*next).cloned() else {
            stack.pop();
            continue;
        };
        *next += 1;
        let dir_fd = dir.as_raw_fd();
        let Some(child) = open_child(dir_fd, &name)? else {
            continue;
        };
        let st = fstat(child.as_raw_fd())?;
        if st.st_dev != dev {
            continue; // a mount point: another filesystem
        }
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if let Err(err) = tag(&child, id, is_dir) {
            if err.raw_os_error() == Some(libc::EPERM) {
                skipped += 1; // immutable or append-only
                continue;
            }
            return Err(err).with_context(|| {
                format!(
                    "disk quota: cannot tag {}",
                    root.join(Path::new(&name)).display()
                )
            });
        }
        if is_dir {
            if stack.len() >= MAX_DEPTH {
                bail!(
                    "disk quota: the tree under {} is deeper than {MAX_DEPTH} directories",
                    root.display()
                );
            }
            let entries = names_of(&child)?;
            stack.push((child, entries, 0));
        }
    }
    if skipped > 0 {
        tracing::warn!(
            "disk quota: {skipped} immutable or append-only files under {} keep their project and are not counted",
            root.display()
        );
    }
    Ok(())
}

/// Opens a directory or regular file in `dir` without following a symlink or
/// blocking on a FIFO; None for anything else.
fn open_child(dir: RawFd, name: &OsString) -> Result<Option<File>> {
    let cname = std::ffi::CString::new(name.as_bytes())?;
    // SAFETY: fstatat fills a stat we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dir, cname.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Ok(None); // gone meanwhile
    }
    let flags = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => libc::O_RDONLY | libc::O_DIRECTORY,
        libc::S_IFREG => libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        _ => return Ok(None),
    };
    // SAFETY: openat with a name we own; the descriptor is owned below.
    let fd = unsafe {
        libc::openat(
            dir,
            cname.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Ok(None); // replaced by a symlink or removed meanwhile
    }
    // SAFETY: fd was just opened and is owned here.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let kind = fstat(file.as_raw_fd())?.st_mode & libc::S_IFMT;
    Ok(matches!(kind, libc::S_IFDIR | libc::S_IFREG).then_some(file))
}

fn tag(file: &File, id: u32, inherit: bool) -> std::io::Result<()> {
    let mut attr = FsXattr::default();
    // SAFETY: the ioctls read and fill an fsxattr we own.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSGETXATTR, &raw mut attr) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = if inherit {
        attr.xflags | FS_XFLAG_PROJINHERIT
    } else {
        attr.xflags
    };
    if attr.projid == id && attr.xflags == flags {
        return Ok(());
    }
    attr.projid = id;
    attr.xflags = flags;
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSSETXATTR, &raw const attr) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn fstat(fd: RawFd) -> Result<libc::stat> {
    // SAFETY: fstat fills a stat we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(std::io::Error::last_os_error()).context("disk quota: fstat");
    }
    Ok(st)
}

fn names(path: &Path) -> Result<Vec<OsString>> {
    names_of(&open_dir(path)?)
}

/// The entries of a directory, read through a duplicate of its descriptor
/// (reading to the end first, so the walk holds one descriptor per level).
fn names_of(dir: &File) -> Result<Vec<OsString>> {
    let dup = dir.try_clone().context("disk quota: dup")?;
    let mut stream = nix::dir::Dir::from(dup)
        .map_err(|err| anyhow::anyhow!("disk quota: cannot read a directory: {err}"))?;
    let mut names = Vec::new();
    for entry in stream.iter() {
        let entry =
            entry.map_err(|err| anyhow::anyhow!("disk quota: cannot read a directory: {err}"))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from(std::ffi::OsStr::from_bytes(name)));
        }
    }
    Ok(names)
}
