//! The per-container lock: an flock on `<root>/.locks/<id>`.
//!
//! The lock file is removed when its container is deleted, so a waiter may wake
//! up holding a lock on a file that is no longer linked; it then retries on the
//! current file (comparing inode numbers), which keeps the lock exclusive.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

pub struct ContainerLock {
    path: PathBuf,
    _flock: Flock<File>,
}

impl ContainerLock {
    pub fn acquire(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create lock directory {}", dir.display()))?;
        }
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .with_context(|| format!("cannot open lock file {}", path.display()))?;
            let flock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| errno)
                .with_context(|| format!("cannot lock {}", path.display()))?;
            let held = flock.metadata()?.ino();
            match fs::metadata(path) {
                Ok(current) if current.ino() == held => {
                    return Ok(Self {
                        path: path.to_path_buf(),
                        _flock: flock,
                    });
                }
                // The file was removed (container deleted) while we waited: retry.
                _ => continue,
            }
        }
    }

    /// Removes the lock file while still holding the lock (on delete), so that
    /// waiters notice and retry on a fresh file.
    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }
}
