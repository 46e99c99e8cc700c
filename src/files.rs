//! Files runvz keeps and shares between its processes: written atomically
//! (`write_atomic`), and locked (`FileLock`: the per-container lock
//! `<root>/.locks/<id>`, the host-wide allocators' locks).
//!
//! `Registry` is a host-wide table of what each container holds, changed
//! under its lock.
//!
//! A lock is a POSIX record lock (fcntl F_SETLKW) on its file.
//!
//! Record locks belong to the process, not to the open file: the container's
//! init and intermediate processes, which libcontainer clones from runvz without
//! exec, do not inherit them. (An flock would be inherited, and an init left
//! waiting by a killed `create` would then hold the lock for ever.)
//!
//! The lock file is removed when its container is deleted, so a waiter may wake
//! up holding a lock on a file that is no longer linked; it then retries on the
//! current file (comparing inode numbers), which keeps the lock exclusive.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

pub struct FileLock {
    path: PathBuf,
    // Closing the file releases the record lock.
    _file: File,
}

impl FileLock {
    pub fn acquire(path: &Path) -> Result<Self> {
        loop {
            let file = open_lock_file(path)?;
            lock_whole_file(&file).with_context(|| format!("cannot lock {}", path.display()))?;
            let held = file.metadata()?.ino();
            match fs::metadata(path) {
                Ok(current) if current.ino() == held => {
                    return Ok(Self {
                        path: path.to_path_buf(),
                        _file: file,
                    });
                }
                // The file was removed (container deleted) while we waited: retry.
                _ => continue,
            }
        }
    }

    /// The lock if no other process holds it, without waiting (None: held).
    pub fn try_acquire(path: &Path) -> Result<Option<Self>> {
        let file = open_lock_file(path)?;
        match fcntl(
            file.as_raw_fd(),
            FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK)),
        ) {
            Ok(_) => Ok(Some(Self {
                path: path.to_path_buf(),
                _file: file,
            })),
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot lock {}", path.display())),
        }
    }

    /// The PID of the process holding the lock at `path`, if one does.
    pub fn holder(path: &Path) -> Result<Option<i32>> {
        let file = open_lock_file(path)?;
        let mut probe = whole_file(libc::F_WRLCK);
        fcntl(file.as_raw_fd(), FcntlArg::F_GETLK(&mut probe))
            .with_context(|| format!("cannot test the lock {}", path.display()))?;
        Ok((probe.l_type != libc::F_UNLCK as i16).then_some(probe.l_pid))
    }

    /// Removes the lock file while still holding the lock (on delete), so that
    /// waiters notice and retry on a fresh file.
    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create lock directory {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))
}

/// A record lock (or a probe for one) of `kind` over the whole file.
fn whole_file(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Blocks until this process holds a write lock on the whole file.
fn lock_whole_file(file: &File) -> nix::Result<()> {
    let request = whole_file(libc::F_WRLCK);
    loop {
        match fcntl(file.as_raw_fd(), FcntlArg::F_SETLKW(&request)) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Writes a file so that readers see either the old or the new content, never a mix.
/// Not synced: everything runvz writes this way lives as long as the processes it
/// describes (the state root and /run/runvz are tmpfs), and a sync on a disk costs a
/// journal commit per write; the rename is what makes it atomic. runc does the same.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// A host-wide table of what each container holds (a user-namespace range, a
/// project ID), keyed by [`crate::userns::key`]: one JSON map in `dir`,
/// changed only under the lock beside it, written atomically.
pub struct Registry {
    dir: &'static str,
    file: &'static str,
}

impl Registry {
    pub const fn new(dir: &'static str, file: &'static str) -> Self {
        Self { dir, file }
    }

    pub fn path(&self) -> PathBuf {
        Path::new(self.dir).join(self.file)
    }

    /// The table as it is now (empty when there is none yet).
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<BTreeMap<String, T>> {
        match fs::read(self.path()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is corrupt", self.path().display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", self.path().display())),
        }
    }

    /// Runs `change` on the table under its lock; the table is written back
    /// when `change` says it changed it (`.1`).
    pub fn change<T, R>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, T>) -> Result<(R, bool)>,
    ) -> Result<R>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let _lock = FileLock::acquire(&Path::new(self.dir).join("lock"))?;
        let mut table = self.read()?;
        let (result, changed) = change(&mut table)?;
        if changed {
            write_atomic(&self.path(), &serde_json::to_vec_pretty(&table)?)?;
        }
        Ok(result)
    }

    /// Takes `key` out of the table (nothing when it is not there, or there is
    /// no table yet).
    pub fn remove<T>(&self, key: &str) -> Result<()>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        if !self.path().exists() {
            return Ok(());
        }
        self.change(|table: &mut BTreeMap<String, T>| Ok(((), table.remove(key).is_some())))
    }
}
