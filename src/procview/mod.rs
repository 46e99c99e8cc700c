//! The container's own view of /proc (as LXCFS gives): in a system container
//! `free`, `top`, `uptime`, `nproc`-minded tools and `iostat` see its memory
//! limit and use, the CPUs it may use, its CPU and I/O times, its load and the
//! time since its init started, as an OpenVZ container's did; and its own
//! beancounters at [`BEANCOUNTERS`].
//!
//! One FUSE filesystem serves every container of the host, mounted at
//! [`MOUNT`]; each system container binds its files over its /proc (runc's
//! list of paths a bind may cover there is exactly what LXCFS binds). A file
//! is made afresh at every open for the container its reader is in, found by
//! the reader's cgroup (the container's, or one below it for a container
//! inside); a reader in no container gets the host's file. So one container
//! never reads another's numbers.
//!
//! The server ([`server`]) is started by the first `create` that needs it,
//! outlives the runvz that started it, restarts its worker when that dies and
//! binds the new files into every container again, and leaves when no
//! container has used it for a while (`--stay`, as its systemd unit runs it,
//! never leaves). Containers are known to it by a host-wide table
//! (`/run/runvz/.procview/containers.json`), one entry per container keyed
//! as the ID ranges, added by `create` and removed by `delete`.
//!
//! /proc/user_beancounters cannot be offered at its own path: a bind needs an
//! existing file to cover, and procfs has no such entry on a stock kernel.

mod cpudir;
mod load;
mod render;
mod server;
mod sysinfo;
mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use oci_spec::runtime::{MountBuilder, Spec};
use serde::{Deserialize, Serialize};

use crate::files::Registry;

pub use server::{serve, work};

/// Where the view is mounted on the host: searchable by every container's
/// root (the state root is not), and every container's files bind from here.
pub const MOUNT: &str = "/run/runvz.procview";
/// The server's own files: its lock, its table of containers.
const HOME: &str = "/run/runvz/.procview";
/// The containers served, by [`crate::userns::key`].
const CONTAINERS: Registry = Registry::new(HOME, "containers.json");

/// Where a system container finds its own beancounters table, and the
/// document that names it (README, `runvz features`).
pub const BEANCOUNTERS: &str = "/dev/.runvz/user_beancounters";

/// A file of the view: its name in the FUSE filesystem and the path inside
/// the container it is bound over.
#[derive(Debug, Clone, Copy)]
pub struct ViewFile {
    pub name: &'static str,
    pub path: &'static str,
}

/// The files served, by inode (the root directory is 1). `online` is what
/// `lscpu` and `htop` count CPUs by (`nproc` asks the scheduler, which the
/// cpuset bounds).
pub const FILES: [ViewFile; 9] = [
    ViewFile {
        name: "meminfo",
        path: "/proc/meminfo",
    },
    ViewFile {
        name: "cpuinfo",
        path: "/proc/cpuinfo",
    },
    ViewFile {
        name: "stat",
        path: "/proc/stat",
    },
    ViewFile {
        name: "uptime",
        path: "/proc/uptime",
    },
    ViewFile {
        name: "loadavg",
        path: "/proc/loadavg",
    },
    ViewFile {
        name: "swaps",
        path: "/proc/swaps",
    },
    ViewFile {
        name: "diskstats",
        path: "/proc/diskstats",
    },
    ViewFile {
        name: "online",
        path: "/sys/devices/system/cpu/online",
    },
    ViewFile {
        name: "user_beancounters",
        path: BEANCOUNTERS,
    },
];

/// The view's CPU directory (`cpudir`), bound over the container's: it holds
/// the view's `online`, which is therefore not bound by itself.
pub const CPU_DIR: ViewFile = ViewFile {
    name: "cpu",
    path: cpudir::HOST_DIR,
};

/// What is bound into a container, in order: the view's files the CPU
/// directory does not hold, then that directory.
pub fn binds() -> impl Iterator<Item = &'static ViewFile> {
    FILES
        .iter()
        .filter(|file| Path::new(file.path).parent() != Some(Path::new(CPU_DIR.path)))
        .chain(std::iter::once(&CPU_DIR))
}

/// The directory of the container of `key` in the view.
pub fn dir_name(key: &str) -> String {
    crate::userns::key_name(key)
}

/// Where the view's file `name` of the container of `key` is on the host.
fn file_path(key: &str, name: &str) -> PathBuf {
    Path::new(MOUNT).join(dir_name(key)).join(name)
}

/// A container the server serves: where its state is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    root: PathBuf,
    id: String,
}

impl Entry {
    /// Whether the container still exists (its state file; an entry left
    /// by a crash is dropped once it is gone).
    fn exists(&self) -> bool {
        self.state_file().exists()
    }

    fn state_file(&self) -> PathBuf {
        crate::state::state_file(&self.root.join(&self.id))
    }

    fn load(&self) -> Option<crate::state::Container> {
        // Not Store::new: it would make a state root that is gone again.
        crate::state::Store::existing(&self.root)?
            .load(&self.id)
            .ok()
    }
}

/// What tells a file's versions apart: every write of the files read here
/// is a rename (a new inode) or changes the modification time.
pub(super) type Stamp = (u64, i64, i64);

pub(super) fn stamp_of(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec()))
}

/// A JSON file as last read, read again only once it was replaced (every
/// write of it is a rename: a new inode).
pub(super) struct Stamped<T> {
    path: PathBuf,
    stamp: Option<Stamp>,
    pub(super) value: T,
}

impl<T: serde::de::DeserializeOwned + Default> Stamped<T> {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            stamp: None,
            value: T::default(),
        }
    }

    /// True when it was read again.
    pub(super) fn refresh(&mut self) -> bool {
        let stamp = stamp_of(&self.path);
        if stamp.is_some() && stamp == self.stamp {
            return false;
        }
        self.value = std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        self.stamp = stamp;
        true
    }
}

/// create's step for a system container: registers it with the server,
/// starts the server if none runs, and binds the view's files over the
/// container's in the spec; with `sysinfo`, its sysinfo(2) is answered by the
/// server too. False (with a warning) where the host has no FUSE: the
/// container sees the kernel's files.
pub fn start(spec: &mut Spec, store_root: &Path, id: &str, sysinfo: bool) -> Result<bool> {
    if !Path::new("/dev/fuse").exists() {
        tracing::warn!("no /dev/fuse: container {id} sees the host's /proc files");
        return Ok(false);
    }
    let entry = Entry {
        root: store_root.to_path_buf(),
        id: id.to_string(),
    };
    let key = crate::userns::key(store_root, id);
    CONTAINERS.change(|table: &mut BTreeMap<String, Entry>| {
        let changed = table.get(&key) != Some(&entry);
        table.insert(key.clone(), entry.clone());
        Ok(((), changed))
    })?;
    server::ensure_running()?;
    if sysinfo {
        sysinfo::intercept(spec, &key)?;
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for file in binds() {
        mounts.push(
            MountBuilder::default()
                .destination(file.path)
                .typ("bind")
                .source(file_path(&key, file.name))
                .options(vec!["bind".to_string(), "ro".to_string()])
                .build()?,
        );
    }
    spec.set_mounts(Some(mounts));
    Ok(true)
}

/// delete's step: the container is no longer served (nothing when it never
/// was).
pub fn unregister(key: &str) -> Result<()> {
    CONTAINERS.remove::<Entry>(key)
}

/// `state` and `exec` of a container with a view: a server that is gone
/// (killed with its supervisor) is started again, which binds its files into
/// every container again, before the caller's command goes on (an `exec`
/// then reads the view). A server that runs costs a lock test and a statfs.
pub fn supervise() {
    if let Err(err) = server::ensure_running() {
        tracing::warn!("cannot restart the /proc view server: {err:#}");
    }
}
