//! The FUSE filesystem: a directory per container served (named by its
//! key, [`super::dir_name`]) holding the files of [`FILES`], each made at
//! open from that container's cgroup. A file belongs to one container: the
//! kernel keeps one size and one page cache per file, and `sendfile` (busybox
//! `cat`) reads through both, so files shared by containers would show one
//! container's numbers to another. A reader in another container is refused;
//! the host may read any.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use fuser::{
    FileAttr, FileType, Filesystem, MountOption, Notifier, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, Request,
};

use super::cpudir;
use super::load::{Loads, loads_path};
use super::{CONTAINERS, CPU_DIR, Entry, FILES, Stamp, Stamped, dir_name, stamp_of};
use crate::state::Container;

/// Mounts the view at `mountpoint` and serves it until unmounted.
pub fn mount(mountpoint: &Path) -> Result<()> {
    // fuser mounts by path: refuse one a symlink would lead elsewhere.
    let resolved = std::fs::canonicalize(mountpoint)
        .with_context(|| format!("cannot resolve {}", mountpoint.display()))?;
    if resolved != mountpoint {
        bail!(
            "the /proc view's mount point {} leads to {}: refused",
            mountpoint.display(),
            resolved.display()
        );
    }
    let notifier = Arc::new(OnceLock::new());
    let view = View {
        containers: Containers::default(),
        loads: Stamped::new(loads_path()),
        snapshots: HashMap::new(),
        next_handle: 1,
        sizes: HashMap::new(),
        notifier: Arc::clone(&notifier),
        recent: HashMap::new(),
        loaded: HashMap::new(),
        cpu_entries: cpudir::Entries::default(),
    };
    let mut session = fuser::Session::new(
        view,
        mountpoint,
        &[
            MountOption::FSName("runvz-procview".into()),
            MountOption::RO,
            // The containers' processes are other users (their own ranges).
            MountOption::AllowOther,
        ],
    )
    .with_context(|| format!("cannot mount the /proc view at {}", mountpoint.display()))?;
    let _ = notifier.set(session.notifier());
    session
        .run()
        .with_context(|| format!("the /proc view at {} failed", mountpoint.display()))
}

struct View {
    containers: Containers,
    loads: Stamped<Loads>,
    /// Each open file's contents as they were at open, by file handle, so a
    /// reader that reads in pieces gets one consistent file.
    snapshots: HashMap<u64, Vec<u8>>,
    next_handle: u64,
    /// The size the kernel holds for each file, as far as the server knows.
    sizes: HashMap<u64, u64>,
    notifier: Arc<OnceLock<Notifier>>,
    /// Each file as last made for its size (a lookup or stat) and the
    /// process it was made for, which that process's open right after takes
    /// instead of making it again.
    recent: HashMap<u64, (Instant, u32, String)>,
    /// Each container's state as last read, by key, with its file's stamp.
    loaded: HashMap<String, (Stamp, Container)>,
    /// The CPU directories' passed-through entries.
    cpu_entries: cpudir::Entries,
}

/// How long a file made for its size serves the open that follows.
const RECENT: Duration = Duration::from_millis(50);

/// Inodes: the root is 1; container `slot` has its directory at
/// `SLOT_BASE + slot * SLOT_SIZE`, its files right after it and its CPU
/// directory after them; passed-through entries from [`cpudir::INO_BASE`].
const SLOT_BASE: u64 = 16;
const SLOT_SIZE: u64 = 16;
const _: () = assert!(FILES.len() + 1 < SLOT_SIZE as usize);
const CPU_DIR_OFFSET: u64 = FILES.len() as u64 + 1;

/// What an inode is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Root,
    Dir(u64),
    File(u64, usize),
    CpuDir(u64),
    /// An entry of the host's CPU directory, passed through.
    Passed(u64),
}

fn node(ino: u64) -> Option<Node> {
    match ino {
        1 => Some(Node::Root),
        _ if ino >= cpudir::INO_BASE => Some(Node::Passed(ino)),
        _ if ino >= SLOT_BASE => {
            let (slot, offset) = ((ino - SLOT_BASE) / SLOT_SIZE, (ino - SLOT_BASE) % SLOT_SIZE);
            match offset {
                0 => Some(Node::Dir(slot)),
                CPU_DIR_OFFSET => Some(Node::CpuDir(slot)),
                n if (n as usize) <= FILES.len() => Some(Node::File(slot, n as usize - 1)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn file_ino(slot: u64, index: usize) -> u64 {
    dir_ino(slot) + 1 + index as u64
}

fn cpu_dir_ino(slot: u64) -> u64 {
    dir_ino(slot) + CPU_DIR_OFFSET
}

/// The view's own file the CPU directory holds under `name` (`online`).
fn cpu_dir_file(name: &OsStr) -> Option<usize> {
    FILES.iter().position(|f| {
        let path = Path::new(f.path);
        path.parent() == Some(Path::new(CPU_DIR.path)) && path.file_name() == Some(name)
    })
}

fn dir_ino(slot: u64) -> u64 {
    SLOT_BASE + slot * SLOT_SIZE
}

/// The table of containers as last read: a slot (inode range) for each one
/// seen, kept for the worker's life, and the cgroup each one is in.
struct Containers {
    table: Stamped<BTreeMap<String, Entry>>,
    slots: HashMap<String, u64>,
    keys: Vec<String>,
    /// Container cgroup → key, for the containers whose cgroup is known.
    by_cgroup: HashMap<PathBuf, String>,
    /// When the table was last checked.
    checked: Option<Instant>,
}

impl Default for Containers {
    fn default() -> Self {
        Self {
            table: Stamped::new(CONTAINERS.path()),
            slots: HashMap::new(),
            keys: Vec::new(),
            by_cgroup: HashMap::new(),
            checked: None,
        }
    }
}

impl Containers {
    /// Reads the table again if it changed, at most every [`RECENT`] (a
    /// lookup that misses reads it at once: a container just registered).
    fn refresh(&mut self) {
        if self.checked.is_some_and(|at| at.elapsed() < RECENT) {
            return;
        }
        self.force_refresh();
    }

    fn force_refresh(&mut self) {
        self.checked = Some(Instant::now());
        if self.table.refresh() {
            self.by_cgroup.clear();
            for key in self.table.value.keys() {
                if !self.slots.contains_key(key) {
                    self.slots.insert(key.clone(), self.keys.len() as u64);
                    self.keys.push(key.clone());
                }
            }
        }
    }

    /// The container served in `slot`, if it still is.
    fn at(&mut self, slot: u64) -> Option<(String, Entry)> {
        self.refresh();
        let key = self.keys.get(slot as usize)?;
        Some((key.clone(), self.table.value.get(key)?.clone()))
    }

    /// The slot of the container whose directory is `name`.
    fn named(&mut self, name: &OsStr) -> Option<u64> {
        self.refresh();
        let find = |containers: &Self| {
            let key = containers
                .table
                .value
                .keys()
                .find(|key| OsStr::new(&dir_name(key)) == name)?;
            containers.slots.get(key).copied()
        };
        find(self).or_else(|| {
            self.force_refresh();
            find(self)
        })
    }

    /// The served containers' slots and directory names.
    fn listing(&mut self) -> Vec<(u64, String)> {
        self.refresh();
        self.table
            .value
            .keys()
            .filter_map(|key| Some((*self.slots.get(key)?, dir_name(key))))
            .collect()
    }

    /// The container process `pid` is in (or in one inside it).
    fn of_reader(&mut self, pid: u32) -> Option<String> {
        let reader = crate::cgroups::host().cgroup_of(pid as i32)?;
        self.refresh();
        if self.by_cgroup.len() < self.table.value.len() {
            let known: std::collections::HashSet<&String> = self.by_cgroup.values().collect();
            let found: Vec<(PathBuf, String)> = self
                .table
                .value
                .iter()
                .filter(|(key, _)| !known.contains(key))
                .filter_map(|(key, entry)| {
                    Some((super::render::cgroup_of(&entry.load()?)?, key.clone()))
                })
                .collect();
            self.by_cgroup.extend(found);
        }
        reader
            .ancestors()
            .find_map(|cgroup| self.by_cgroup.get(cgroup))
            .cloned()
    }
}

fn attr(ino: u64, kind: FileType, size: u64) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino,
        size,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind,
        perm: if kind == FileType::Directory {
            0o555
        } else {
            0o444
        },
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// No caching of attributes: the size changes as the contents do.
const TTL: Duration = Duration::ZERO;
/// Reads go to the server every time, not to the page cache.
const FOPEN_DIRECT_IO: u32 = 1;

impl Filesystem for View {
    fn lookup(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let ino = match node(parent) {
            Some(Node::Root) => self.containers.named(name).map(dir_ino),
            Some(Node::Dir(slot)) if name == CPU_DIR.name => Some(cpu_dir_ino(slot)),
            Some(Node::Dir(slot)) => FILES
                .iter()
                .position(|f| OsStr::new(f.name) == name)
                .map(|index| file_ino(slot, index)),
            Some(Node::CpuDir(slot)) => match cpu_dir_file(name) {
                Some(index) => Some(file_ino(slot, index)),
                None if cpudir::shown(name, &self.visible_cpus(slot)) => {
                    self.passed_ino(Path::new(""), name)
                }
                None => None,
            },
            Some(Node::Passed(ino)) => match self.cpu_entries.at(ino) {
                Some(rel) => {
                    let rel = rel.to_path_buf();
                    self.passed_ino(&rel, name)
                }
                None => None,
            },
            _ => None,
        };
        match ino.and_then(|ino| self.attributes(ino, req.pid())) {
            Some(attr) => reply.entry(&TTL, &attr, 0),
            None => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.attributes(ino, req.pid()) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn open(&mut self, req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        let contents = match node(ino) {
            Some(Node::File(slot, index)) => {
                self.check_reader(slot, req.pid())
                    .and_then(|()| match self.recent.remove(&ino) {
                        Some((at, pid, text)) if at.elapsed() < RECENT && pid == req.pid() => {
                            Ok(text.into_bytes())
                        }
                        _ => self.contents(slot, index).map(String::into_bytes),
                    })
            }
            Some(Node::Passed(ino)) => self.passed_contents(ino),
            _ => Err(libc::EISDIR),
        };
        match contents {
            Ok(bytes) => {
                self.grow(ino, &bytes);
                let handle = self.next_handle;
                self.next_handle += 1;
                self.snapshots.insert(handle, bytes);
                reply.opened(handle, FOPEN_DIRECT_IO);
            }
            Err(errno) => reply.error(errno),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        let target = self
            .cpu_entries
            .at(ino)
            .and_then(|rel| cpudir::host_path(rel, None))
            .and_then(|(host, _)| std::fs::read_link(host).ok());
        match target {
            Some(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            None => reply.error(libc::EINVAL),
        }
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.snapshots.remove(&fh);
        reply.ok();
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Some(bytes) = self.snapshots.get(&fh) else {
            reply.error(libc::EBADF);
            return;
        };
        let start = (offset.max(0) as usize).min(bytes.len());
        let end = (start + size as usize).min(bytes.len());
        if end < start + size as usize {
            // A short read: the kernel takes the end of the file for its size.
            self.sizes.insert(ino, end as u64);
        }
        reply.data(&bytes[start..end]);
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let mut entries = vec![
            (ino, FileType::Directory, ".".to_string()),
            (1, FileType::Directory, "..".to_string()),
        ];
        match node(ino) {
            Some(Node::Root) => entries.extend(
                self.containers
                    .listing()
                    .into_iter()
                    .map(|(slot, name)| (dir_ino(slot), FileType::Directory, name)),
            ),
            Some(Node::Dir(slot)) if self.containers.at(slot).is_some() => {
                entries.extend(
                    FILES.iter().enumerate().map(|(i, f)| {
                        (file_ino(slot, i), FileType::RegularFile, f.name.to_string())
                    }),
                );
                entries.push((cpu_dir_ino(slot), FileType::Directory, CPU_DIR.name.into()));
            }
            Some(Node::CpuDir(slot)) if self.containers.at(slot).is_some() => {
                let visible = self.visible_cpus(slot);
                for (name, kind) in cpudir::listing(Path::new(CPU_DIR.path)).unwrap_or_default() {
                    let ino = match cpu_dir_file(&name) {
                        Some(index) => file_ino(slot, index),
                        None if cpudir::shown(&name, &visible) => {
                            self.cpu_entries.ino(PathBuf::from(&name))
                        }
                        None => continue,
                    };
                    entries.push((ino, kind, name.to_string_lossy().into_owned()));
                }
            }
            Some(Node::Passed(ino)) => {
                let Some(rel) = self.cpu_entries.at(ino).map(Path::to_path_buf) else {
                    reply.error(libc::ENOENT);
                    return;
                };
                let listing =
                    cpudir::host_path(&rel, None).and_then(|(host, _)| cpudir::listing(&host));
                let Some(listing) = listing else {
                    reply.error(libc::ENOTDIR);
                    return;
                };
                for (name, kind) in listing {
                    let ino = self.cpu_entries.ino(rel.join(&name));
                    entries.push((ino, kind, name.to_string_lossy().into_owned()));
                }
            }
            _ => {
                reply.error(libc::ENOTDIR);
                return;
            }
        }
        for (index, (ino, kind, name)) in
            entries.into_iter().enumerate().skip(offset.max(0) as usize)
        {
            if reply.add(ino, index as i64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

impl View {
    /// The attributes of `ino` (a file's size as it reads now), if it exists.
    fn attributes(&mut self, ino: u64, pid: u32) -> Option<FileAttr> {
        match node(ino)? {
            Node::Root => Some(attr(ino, FileType::Directory, 0)),
            Node::Dir(slot) | Node::CpuDir(slot) => {
                self.containers.at(slot)?;
                Some(attr(ino, FileType::Directory, 0))
            }
            Node::Passed(ino) => {
                let rel = self.cpu_entries.at(ino)?;
                cpudir::attributes(&cpudir::host_path(rel, None)?.0, ino)
            }
            Node::File(slot, index) => {
                // A stat right after a lookup (an open's fstat) takes the
                // file just made.
                let text = match self.recent.remove(&ino) {
                    Some((at, by, text)) if at.elapsed() < RECENT && by == pid => text,
                    _ => self.contents(slot, index).ok()?,
                };
                let size = text.len() as u64;
                self.sizes.insert(ino, size);
                self.recent.insert(ino, (Instant::now(), pid, text));
                Some(attr(ino, FileType::RegularFile, size))
            }
        }
    }

    /// File `index` of the container in `slot` as it reads now.
    fn contents(&mut self, slot: u64, index: usize) -> Result<String, i32> {
        let file = FILES.get(index).ok_or(libc::ENOENT)?;
        let (key, entry) = self.containers.at(slot).ok_or(libc::ENOENT)?;
        self.loads.refresh();
        let load = self.loads.value.get(&key).copied();
        let container = self.container(&key, &entry).ok_or(libc::ENOENT)?;
        // What the container cannot be read for: the kernel's file, as without a view.
        Ok(super::render::render(file.name, container, load)
            .unwrap_or_else(|| std::fs::read_to_string(file.path).unwrap_or_default()))
    }

    /// The host CPUs the container in `slot` may use (all, when its cgroup
    /// is unknown).
    fn visible_cpus(&mut self, slot: u64) -> Vec<usize> {
        let cgroup = self
            .containers
            .at(slot)
            .and_then(|(key, entry)| super::render::cgroup_of(self.container(&key, &entry)?));
        match cgroup {
            Some(cgroup) => super::render::visible_cpus(&cgroup),
            None => (0..super::render::host_cpus()).collect(),
        }
    }

    /// The inode of `name` in the passed-through directory `rel`, if the
    /// host has such an entry.
    fn passed_ino(&mut self, rel: &Path, name: &OsStr) -> Option<u64> {
        let (host, rel) = cpudir::host_path(rel, Some(name))?;
        std::fs::symlink_metadata(&host).ok()?;
        Some(self.cpu_entries.ino(rel))
    }

    /// A passed-through file's contents, read now (the host's sysfs, the
    /// same for every reader: no container's own numbers are in it).
    fn passed_contents(&mut self, ino: u64) -> Result<Vec<u8>, i32> {
        let rel = self.cpu_entries.at(ino).ok_or(libc::ENOENT)?;
        let (host, _) = cpudir::host_path(rel, None).ok_or(libc::ENOENT)?;
        std::fs::read(host).map_err(|err| err.raw_os_error().unwrap_or(libc::EIO))
    }

    /// EACCES for a reader in a container other than the one in `slot` (at
    /// open: a stat tells another container no more than a size).
    fn check_reader(&mut self, slot: u64, pid: u32) -> Result<(), i32> {
        let (key, _) = self.containers.at(slot).ok_or(libc::ENOENT)?;
        match self.containers.of_reader(pid) {
            Some(reader) if pid != 0 && reader != key => Err(libc::EACCES),
            _ => Ok(()),
        }
    }

    /// The container's state, read again only when its state file changed.
    fn container(&mut self, key: &str, entry: &Entry) -> Option<&Container> {
        let stamp = stamp_of(&entry.state_file())?;
        if self.loaded.len() > 2 * self.containers.table.value.len() + 16 {
            let served = &self.containers.table.value;
            self.loaded.retain(|key, _| served.contains_key(key));
        }
        if self
            .loaded
            .get(key)
            .is_none_or(|(known, _)| *known != stamp)
        {
            let container = entry.load()?;
            self.loaded.insert(key.to_string(), (stamp, container));
        }
        self.loaded.get(key).map(|(_, container)| container)
    }

    /// A file about to be read longer than the size the kernel holds for it:
    /// `sendfile` (busybox `cat`) would stop at that size, so the new
    /// contents go to the kernel first, which makes the size theirs. (A
    /// shorter file needs nothing: the short read sets the size.)
    fn grow(&mut self, ino: u64, bytes: &[u8]) {
        let len = bytes.len() as u64;
        if self.sizes.get(&ino).is_some_and(|&known| known >= len) {
            return;
        }
        if let Some(notifier) = self.notifier.get()
            && notifier.store(ino, 0, bytes).is_ok()
        {
            self.sizes.insert(ino, len);
        }
    }
}
