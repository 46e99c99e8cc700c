//! Per-container disk quota, OpenVZ's first level (`runvz.diskspace` in 1 KiB
//! blocks, `runvz.diskinodes`), with the kernel's own mechanisms on the
//! container's existing rootfs, in place:
//!
//! - **project quota** (`project.rs`): ext4 (`-O quota,project`) or XFS mounted
//!   with `prjquota`: the container gets a project ID no other container holds
//!   (`alloc.rs`), its tree is tagged with it and the inherit flag, and the
//!   limits are set with `quotactl_fd` on PRJQUOTA;
//! - **btrfs qgroup** (`btrfs.rs`): a rootfs that is a subvolume of a btrfs with
//!   quotas enabled gets a `max_rfer` limit on its qgroup (no inode limit there).
//!
//! An engine's overlay rootfs gets its quota on the overlay's upper and work
//! directories (where its writes land). Anything else asked for a quota is one
//! clear error naming the filesystem and what to enable: never a container
//! without the quota it was promised.

mod alloc;
mod btrfs;
mod project;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The bounds, as the kernel takes them: 0 is "no limit".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// 1 KiB blocks: soft (barrier), hard (limit).
    pub space: (u64, u64),
    /// Inodes: soft, hard.
    pub inodes: (u64, u64),
}

impl Limits {
    fn wants_inodes(&self) -> bool {
        self.inodes != (0, 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    ProjectQuota,
    BtrfsQgroup,
}

/// A container's quota as recorded in its state: enough to change, read and
/// remove it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub mechanism: Mechanism,
    /// "ext4", "xfs" or "btrfs".
    pub filesystem: String,
    /// The filesystem's device, `major:minor`.
    pub device: String,
    /// The project ID, or the btrfs subvolume ID (its qgroup is 0/ID).
    pub id: u64,
    /// The trees bound: the rootfs, or an overlay's upper and work directories.
    pub paths: Vec<PathBuf>,
    /// btrfs: the qgroup's `max_rfer` before runvz set it (restored on delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_limit: Option<u64>,
}

/// What the kernel reports as used.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub space_kib: Option<u64>,
    pub inodes: Option<u64>,
}

impl Quota {
    /// A line for `beancounters` and `features`: how the bound is enforced.
    pub fn describe(&self) -> String {
        match self.mechanism {
            Mechanism::ProjectQuota => format!(
                "project quota {} on {} ({})",
                self.id, self.filesystem, self.device
            ),
            Mechanism::BtrfsQgroup => {
                format!("btrfs qgroup 0/{} max_rfer ({})", self.id, self.device)
            }
        }
    }
}

const EXT4_SUPER_MAGIC: i64 = 0xEF53;
const XFS_SUPER_MAGIC: i64 = 0x5846_5342;
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Works out how the container's rootfs can be bound and reserves what that
/// needs (a project ID under `key`); nothing on disk is changed yet. One clear
/// error when it cannot be.
pub fn plan(rootfs: &Path, key: &str, limits: &Limits) -> Result<Quota> {
    let paths = match crate::idmap::overlay_upper(rootfs) {
        Some((upper, work)) => vec![upper, work],
        None if fs_type(rootfs)? == OVERLAYFS_SUPER_MAGIC => bail!(
            "disk quota: the rootfs {} is an overlay without an upper directory (read-only): nothing to bound",
            rootfs.display()
        ),
        None => vec![rootfs.to_path_buf()],
    };
    let first = &paths[0];
    let dev = std::fs::metadata(first)
        .with_context(|| format!("disk quota: cannot stat {}", first.display()))?
        .dev();
    for other in &paths[1..] {
        if std::fs::metadata(other).map(|m| m.dev()).ok() != Some(dev) {
            bail!(
                "disk quota: the overlay's upper and work directories ({}, {}) are on different filesystems",
                first.display(),
                other.display()
            );
        }
    }
    let device = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let kind = fs_type(first)?;
    let (mechanism, filesystem, id) = match kind {
        EXT4_SUPER_MAGIC | XFS_SUPER_MAGIC => {
            let filesystem = if kind == EXT4_SUPER_MAGIC {
                "ext4"
            } else {
                "xfs"
            };
            project::check(first, filesystem, &device)?;
            let id = alloc::allocate(key, &device, |id| project::in_use(first, id))?;
            (Mechanism::ProjectQuota, filesystem, u64::from(id))
        }
        BTRFS_SUPER_MAGIC => {
            if limits.wants_inodes() {
                bail!(
                    "disk quota: {} is on btrfs, which has no inode quota: leave runvz.diskinodes unset (diskspace works)",
                    first.display()
                );
            }
            if paths.len() > 1 {
                bail!(
                    "disk quota: the overlay upper directory {} is on btrfs, where only a subvolume can be bound: use ext4 or XFS with prjquota for the engine's storage, or its btrfs driver",
                    first.display()
                );
            }
            (Mechanism::BtrfsQgroup, "btrfs", btrfs::check(first)?)
        }
        other => bail!(
            "disk quota: {} is on a filesystem without quotas runvz can use (type {other:#x}): put the rootfs on ext4 or XFS mounted with -o prjquota, or on a btrfs subvolume with quotas enabled",
            first.display()
        ),
    };
    Ok(Quota {
        mechanism,
        filesystem: filesystem.to_string(),
        device,
        id,
        paths,
        previous_limit: None,
    })
}

/// Binds the trees: tags them with the project (existing files then count) or
/// limits the subvolume's qgroup.
pub fn apply(quota: &mut Quota, limits: &Limits) -> Result<()> {
    match quota.mechanism {
        Mechanism::ProjectQuota => {
            for path in &quota.paths {
                project::tag_tree(path, quota.id as u32)?;
            }
        }
        Mechanism::BtrfsQgroup => {
            quota.previous_limit = btrfs::limit(&quota.paths[0], quota.id)?;
        }
    }
    set_limits(quota, limits)
}

/// Sets (or changes, for `update`) the limits.
pub fn set_limits(quota: &Quota, limits: &Limits) -> Result<()> {
    let path = &quota.paths[0];
    match quota.mechanism {
        Mechanism::ProjectQuota => project::set_limits(path, quota.id as u32, limits),
        Mechanism::BtrfsQgroup => {
            if limits.wants_inodes() {
                bail!("disk quota: btrfs has no inode quota: runvz.diskinodes cannot be set here");
            }
            // The hard limit: a qgroup has no soft one.
            let bytes = match limits.space.1 {
                0 => None,
                kib => Some(kib.saturating_mul(1024)),
            };
            btrfs::set_limit(path, quota.id, bytes)
        }
    }
}

/// What the kernel counts against the quota (None where it does not say).
pub fn usage(quota: &Quota) -> Usage {
    let path = &quota.paths[0];
    match quota.mechanism {
        Mechanism::ProjectQuota => project::usage(path, quota.id as u32).unwrap_or_default(),
        Mechanism::BtrfsQgroup => Usage {
            space_kib: btrfs::referenced(path, quota.id).map(|b| b.div_ceil(1024)),
            inodes: None,
        },
    }
}

/// Removes the limits (a btrfs qgroup gets back the one it had) and gives the
/// project ID back. Trees stay tagged: they may be large, and a later
/// container's allocation skips an ID that still has usage.
pub fn release(key: &str, quota: Option<&Quota>) -> Result<()> {
    let mut result = Ok(());
    if let Some(quota) = quota
        && quota.paths[0].exists()
    {
        result = match quota.mechanism {
            Mechanism::ProjectQuota => {
                project::set_limits(&quota.paths[0], quota.id as u32, &Limits::default())
            }
            Mechanism::BtrfsQgroup => {
                btrfs::set_limit(&quota.paths[0], quota.id, quota.previous_limit)
            }
        };
    }
    alloc::release(key)?;
    result
}

/// The filesystem type (statfs f_type) of `path`.
fn fs_type(path: &Path) -> Result<i64> {
    let dir = open_dir(path)?;
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs fills the statfs we own from an fd we hold.
    if unsafe { libc::fstatfs(dir.as_raw_fd(), &mut buf) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("disk quota: cannot statfs {}", path.display()));
    }
    Ok(buf.f_type)
}

/// Opens a directory runvz was given (the rootfs, or an overlay layer the
/// engine named) without following a symlink in its last component.
fn open_dir(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("disk quota: cannot open directory {}", path.display()))
}
