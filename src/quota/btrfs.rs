//! btrfs: a rootfs that is a subvolume gets a limit on its level-0 qgroup
//! (`BTRFS_IOC_QGROUP_LIMIT`, `max_rfer`: everything the subvolume refers to,
//! as Docker's btrfs driver bounds it); usage from sysfs. runvz never turns
//! quotas on itself (a filesystem-wide cost): it asks the operator to.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::open_dir;

const BTRFS_IOC_QGROUP_LIMIT: libc::Ioctl = 0x8030_942b;
const BTRFS_IOC_INO_LOOKUP: libc::Ioctl = 0xd000_9412;
const BTRFS_IOC_FS_INFO: libc::Ioctl = 0x8400_941f;
const BTRFS_QGROUP_LIMIT_MAX_RFER: u64 = 1;
/// The inode number of every subvolume's root directory.
const BTRFS_FIRST_FREE_OBJECTID: u64 = 256;
/// The top-level subvolume: bounding it bounds the whole filesystem.
const BTRFS_FS_TREE_OBJECTID: u64 = 5;

#[repr(C)]
struct QgroupLimitArgs {
    qgroupid: u64,
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}
const _: () = assert!(std::mem::size_of::<QgroupLimitArgs>() == 48);

#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}
const _: () = assert!(std::mem::size_of::<InoLookupArgs>() == 4096);

/// The subvolume ID of `path`, which must be a subvolume's root on a btrfs
/// with quotas enabled.
pub fn check(path: &Path) -> Result<u64> {
    let dir = open_dir(path)?;
    if dir.metadata()?.ino() != BTRFS_FIRST_FREE_OBJECTID {
        bail!(
            "disk quota: {} is a directory on btrfs, not a subvolume: only a subvolume can be bound (make the rootfs one with `btrfs subvolume create`)",
            path.display()
        );
    }
    let id = subvolume_id(&dir)?;
    if id == BTRFS_FS_TREE_OBJECTID {
        bail!(
            "disk quota: {} is the btrfs top-level subvolume: bounding it would bound the whole filesystem",
            path.display()
        );
    }
    if !qgroups_dir(&dir)?.is_dir() {
        bail!(
            "disk quota: btrfs holding {} has quotas off: turn them on with `btrfs quota enable <mount point>`",
            path.display()
        );
    }
    Ok(id)
}

/// The qgroup's current `max_rfer` limit, if any, for restoring it on delete.
pub fn limit(path: &Path, id: u64) -> Result<Option<u64>> {
    let group = qgroups_dir(&open_dir(path)?)?.join(format!("0_{id}"));
    let flags = read_number(&group.join("limit_flags")).unwrap_or(0);
    Ok((flags & BTRFS_QGROUP_LIMIT_MAX_RFER != 0)
        .then(|| read_number(&group.join("max_referenced")))
        .flatten())
}

/// Sets the qgroup's `max_rfer` (None: no limit).
pub fn set_limit(path: &Path, id: u64, bytes: Option<u64>) -> Result<()> {
    let mut args = QgroupLimitArgs {
        qgroupid: id,
        flags: BTRFS_QGROUP_LIMIT_MAX_RFER,
        max_rfer: bytes.unwrap_or(u64::MAX),
        max_excl: 0,
        rsv_rfer: 0,
        rsv_excl: 0,
    };
    let dir = open_dir(path)?;
    let mut result = qgroup_limit(&dir, &mut args);
    // The ioctl's transaction is charged to the descriptor's subvolume: one far
    // over its limit refuses even a new limit, so it goes through the parent.
    if result
        .as_ref()
        .is_err_and(|e| e.raw_os_error() == Some(libc::EDQUOT))
        && let Some(parent) = path.parent()
    {
        result = qgroup_limit(&open_dir(parent)?, &mut args);
    }
    result.map_err(|err| {
        let why = match err.raw_os_error() {
            Some(libc::ENOTCONN) => {
                "quotas are off on this btrfs (`btrfs quota enable`)".to_string()
            }
            _ => crate::logging::os_words(&err),
        };
        anyhow::anyhow!(
            "disk quota: cannot set the limit of btrfs qgroup 0/{id} ({}): {why}",
            path.display()
        )
    })
}

/// The bytes the subvolume refers to (updated by btrfs at each commit).
pub fn referenced(path: &Path, id: u64) -> Option<u64> {
    let group = qgroups_dir(&open_dir(path).ok()?)
        .ok()?
        .join(format!("0_{id}"));
    read_number(&group.join("referenced"))
}

fn qgroup_limit(dir: &File, args: &mut QgroupLimitArgs) -> std::io::Result<()> {
    // SAFETY: the ioctl reads a QgroupLimitArgs we own.
    if unsafe { libc::ioctl(dir.as_raw_fd(), BTRFS_IOC_QGROUP_LIMIT, args as *mut _) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn subvolume_id(dir: &File) -> Result<u64> {
    let mut args = InoLookupArgs {
        treeid: 0,
        objectid: BTRFS_FIRST_FREE_OBJECTID,
        name: [0; 4080],
    };
    // SAFETY: the ioctl fills an InoLookupArgs we own.
    if unsafe { libc::ioctl(dir.as_raw_fd(), BTRFS_IOC_INO_LOOKUP, &raw mut args) } != 0 {
        return Err(std::io::Error::last_os_error())
            .map_err(|e| anyhow::anyhow!("disk quota: cannot look up the btrfs subvolume: {e}"));
    }
    Ok(args.treeid)
}

/// `/sys/fs/btrfs/<fsid>/qgroups`, present only while quotas are on.
fn qgroups_dir(dir: &File) -> Result<PathBuf> {
    let mut info = [0u8; 1024];
    // SAFETY: the ioctl fills the 1024-byte btrfs_ioctl_fs_info_args we own.
    if unsafe { libc::ioctl(dir.as_raw_fd(), BTRFS_IOC_FS_INFO, info.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).map_err(|e| {
            anyhow::anyhow!("disk quota: cannot read the btrfs filesystem's ID: {e}")
        });
    }
    let hex: String = info[16..32].iter().map(|b| format!("{b:02x}")).collect();
    let fsid = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    Ok(PathBuf::from("/sys/fs/btrfs").join(fsid).join("qgroups"))
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
