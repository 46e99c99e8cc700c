//! runvz: runc's `tmpcopyup`, by file descriptors only.
//!
//! The image's directory under a tmpfs mount destination is copied into the new
//! tmpfs before it is attached. Both sides are reached only through directory
//! fds and `*at` calls with `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so a symlink in
//! the image is copied as a symlink and never followed on the host.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, fchown, fchownat, symlinkat};

/// Copies what the directory `from` holds into the root of the detached mount
/// `to` and gives that root the directory's mode, as runc does.
pub fn copy_up(from: BorrowedFd, to: BorrowedFd) -> nix::Result<()> {
    let from = open_dir(from.as_raw_fd(), c".")?;
    let to = open_dir(to.as_raw_fd(), c".")?;
    copy_tree(&from, &to)?;
    let stat = nix::sys::stat::fstat(from.as_raw_fd())?;
    fchmod(to.as_raw_fd(), permissions(&stat))
}

fn open_dir(dir: RawFd, name: &CStr) -> nix::Result<OwnedFd> {
    let fd = openat(
        Some(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn permissions(stat: &FileStat) -> Mode {
    Mode::from_bits_truncate(stat.st_mode & 0o7777)
}

fn owner(stat: &FileStat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
    )
}

fn copy_tree(from: &OwnedFd, to: &OwnedFd) -> nix::Result<()> {
    // fdopendir takes the fd it is given: hand it a duplicate.
    let mut entries = Dir::from_fd(nix::unistd::dup(from.as_raw_fd())?)?;
    for entry in entries.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        copy_entry(from, to, name)?;
    }
    Ok(())
}

fn copy_entry(from: &OwnedFd, to: &OwnedFd, name: &CStr) -> nix::Result<()> {
    let (src, dst) = (from.as_raw_fd(), to.as_raw_fd());
    let stat = fstatat(Some(src), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let (uid, gid) = owner(&stat);
    match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => {
            mkdirat(Some(dst), name, Mode::from_bits_truncate(0o700))?;
            let (sub_from, sub_to) = (open_dir(src, name)?, open_dir(dst, name)?);
            copy_tree(&sub_from, &sub_to)?;
            fchown(sub_to.as_raw_fd(), uid, gid)?;
            fchmod(sub_to.as_raw_fd(), permissions(&stat))
        }
        SFlag::S_IFREG => {
            let flags = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let input = openat(Some(src), name, OFlag::O_RDONLY | flags, Mode::empty())?;
            // SAFETY: new fds from openat, owned only here.
            let mut input = unsafe { File::from_raw_fd(input) };
            let output = openat(
                Some(dst),
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | flags,
                Mode::from_bits_truncate(0o600),
            )?;
            // SAFETY: as above.
            let mut output = unsafe { File::from_raw_fd(output) };
            std::io::copy(&mut input, &mut output)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            fchown(output.as_raw_fd(), uid, gid)?;
            fchmod(output.as_raw_fd(), permissions(&stat))
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(Some(src), name)?;
            symlinkat(target.as_os_str(), Some(dst), name)?;
            fchownat(Some(dst), name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        }
        kind @ (SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO) => {
            mknodat(Some(dst), name, kind, permissions(&stat), stat.st_rdev)?;
            fchownat(Some(dst), name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        }
        // A socket is only meaningful to the process that bound it.
        _ => Ok(()),
    }
}
