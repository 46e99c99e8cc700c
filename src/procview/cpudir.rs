//! The view's CPU directory: the host's `/sys/devices/system/cpu` as the
//! container may see it. Bound over that directory inside, it passes the
//! host's entries through, except the `cpuN` directories of CPUs its cpuset
//! and CPU quota leave out (glibc's `get_nprocs_conf`, `lscpu` and `htop`
//! count CPUs by those) and `online`, which is the view's own file. As LXCFS
//! does; what is passed through is the kernel's sysfs, never a path the
//! container names (each entry is one name looked up in a directory already
//! seen).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{FileAttr, FileType};

/// The host directory shown.
pub const HOST_DIR: &str = "/sys/devices/system/cpu";

/// Inodes of passed-through entries start here (the containers' slots are
/// below).
pub const INO_BASE: u64 = 1 << 40;

/// An entry directly in the CPU directory: whether the container sees it.
/// `cpuN` is seen when CPU N is one of `visible`; anything else is.
pub fn shown(name: &OsStr, visible: &[usize]) -> bool {
    match cpu_number(name) {
        Some(n) => visible.contains(&n),
        None => true,
    }
}

/// N of a `cpuN` entry (not `cpufreq`, `cpuidle`).
fn cpu_number(name: &OsStr) -> Option<usize> {
    let digits = name.as_bytes().strip_prefix(b"cpu")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The passed-through entries seen so far: an inode for each path under
/// [`HOST_DIR`], kept for the worker's life and shared by every container
/// (below the top level, where each container's CPUs are chosen, the tree is
/// the host's for all: a few hundred entries per CPU, touched only when read).
#[derive(Default)]
pub struct Entries {
    paths: Vec<PathBuf>,
    inos: HashMap<PathBuf, u64>,
}

impl Entries {
    /// The inode of `rel` (under [`HOST_DIR`]).
    pub fn ino(&mut self, rel: PathBuf) -> u64 {
        if let Some(&ino) = self.inos.get(&rel) {
            return ino;
        }
        let ino = INO_BASE + self.paths.len() as u64;
        self.paths.push(rel.clone());
        self.inos.insert(rel, ino);
        ino
    }

    /// The path under [`HOST_DIR`] of a passed-through inode.
    pub fn at(&self, ino: u64) -> Option<&Path> {
        self.paths
            .get(ino.checked_sub(INO_BASE)? as usize)
            .map(PathBuf::as_path)
    }
}

/// The host path of `rel`; `name` a single component when given (what a
/// lookup asks for: never `..`, never a path).
pub fn host_path(rel: &Path, name: Option<&OsStr>) -> Option<(PathBuf, PathBuf)> {
    let rel = match name {
        Some(name) if name.is_empty() || name == "." || name == ".." => return None,
        Some(name) if name.as_bytes().contains(&b'/') => return None,
        Some(name) => rel.join(name),
        None => rel.to_path_buf(),
    };
    Some((Path::new(HOST_DIR).join(&rel), rel))
}

/// The attributes of a host entry (not followed when a symlink), under `ino`.
pub fn attributes(host: &Path, ino: u64) -> Option<FileAttr> {
    let meta = std::fs::symlink_metadata(host).ok()?;
    let kind = kind_of(&meta.file_type());
    let time = |secs: i64, nsecs: i64| {
        UNIX_EPOCH + Duration::new(secs.max(0) as u64, nsecs.clamp(0, 999_999_999) as u32)
    };
    Some(FileAttr {
        ino,
        size: meta.size(),
        blocks: 0,
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: time(meta.ctime(), meta.ctime_nsec()),
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    })
}

pub fn kind_of(file_type: &std::fs::FileType) -> FileType {
    if file_type.is_dir() {
        FileType::Directory
    } else if file_type.is_symlink() {
        FileType::Symlink
    } else {
        // sysfs has no device nodes; nothing passes through as one.
        FileType::RegularFile
    }
}

/// The entries of a host directory: (name, kind), in the kernel's order.
pub fn listing(host: &Path) -> Option<Vec<(std::ffi::OsString, FileType)>> {
    let entries = std::fs::read_dir(host).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| Some((e.file_name(), kind_of(&e.file_type().ok()?))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_visible_cpus_are_shown() {
        let visible = [0, 2];
        for (name, want) in [
            ("cpu0", true),
            ("cpu1", false),
            ("cpu2", true),
            ("cpu10", false),
            ("cpufreq", true),
            ("cpuidle", true),
            ("cpu", true),
            ("online", true),
            ("possible", true),
        ] {
            assert_eq!(shown(OsStr::new(name), &visible), want, "{name}");
        }
    }

    #[test]
    fn a_lookup_names_one_entry() {
        for bad in ["..", ".", "", "a/b"] {
            assert!(host_path(Path::new("cpu0"), Some(OsStr::new(bad))).is_none());
        }
        let (host, rel) = host_path(Path::new("cpu0"), Some(OsStr::new("topology"))).unwrap();
        assert_eq!(host, Path::new("/sys/devices/system/cpu/cpu0/topology"));
        assert_eq!(rel, Path::new("cpu0/topology"));
    }

    #[test]
    fn an_inode_per_path() {
        let mut entries = Entries::default();
        let a = entries.ino(PathBuf::from("cpu0"));
        let b = entries.ino(PathBuf::from("cpu0/topology"));
        assert_ne!(a, b);
        assert_eq!(entries.ino(PathBuf::from("cpu0")), a);
        assert_eq!(entries.at(b), Some(Path::new("cpu0/topology")));
        assert_eq!(entries.at(INO_BASE - 1), None);
    }
}
