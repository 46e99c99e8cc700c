//! Project IDs: one per container that no other container holds, from an
//! allocator for the whole host (`/run/runvz/.quota/projects.json`, changed
//! under its `lock`, as the user-namespace ranges), released on delete.
//!
//! IDs start far above the small numbers of `/etc/projid` and the engines' own
//! schemes. /run is emptied by a reboot while trees keep their tags, so an ID
//! the filesystem still counts usage for is skipped too.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::files::{FileLock, write_atomic};

const BASE: u32 = 1 << 30;
const SLOTS: u32 = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    id: u32,
    device: String,
}

fn dir() -> PathBuf {
    PathBuf::from("/run/runvz/.quota")
}

fn read() -> Result<BTreeMap<String, Held>> {
    match fs::read(dir().join("projects.json")) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).context("projects.json is corrupt")?),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(err) => Err(err.into()),
    }
}

fn write(held: &BTreeMap<String, Held>) -> Result<()> {
    write_atomic(
        &dir().join("projects.json"),
        &serde_json::to_vec_pretty(held)?,
    )
}

fn lock() -> Result<FileLock> {
    fs::create_dir_all(dir())?;
    FileLock::acquire(&dir().join("lock"))
}

/// The container's project ID on `device`, allocating one if it has none;
/// `in_use` says whether the filesystem still counts usage for an ID.
pub fn allocate(key: &str, device: &str, in_use: impl Fn(u32) -> bool) -> Result<u32> {
    let _lock = lock()?;
    let mut held = read()?;
    if let Some(h) = held.get(key)
        && h.device == device
    {
        return Ok(h.id);
    }
    let taken: std::collections::HashSet<u32> = held.values().map(|h| h.id).collect();
    let id = (BASE..BASE + SLOTS)
        .find(|id| !taken.contains(id) && !in_use(*id))
        .context("disk quota: every project ID is taken")?;
    held.insert(
        key.to_string(),
        Held {
            id,
            device: device.to_string(),
        },
    );
    write(&held)?;
    Ok(id)
}

/// Gives the container's ID back (nothing when it had none).
pub fn release(key: &str) -> Result<()> {
    if !dir().join("projects.json").exists() {
        return Ok(());
    }
    let _lock = lock()?;
    let mut held = read()?;
    if held.remove(key).is_some() {
        write(&held)?;
    }
    Ok(())
}
