//! Project IDs: one per container that no other container holds, from an
//! allocator for the whole host (`/run/runvz/.quota/projects.json`, changed
//! under its `lock`, as the user-namespace ranges), released on delete.
//!
//! IDs start far above the small numbers of `/etc/projid` and the engines' own
//! schemes. /run is emptied by a reboot while trees keep their tags, so an ID
//! the filesystem still counts usage for is skipped too.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::files::Registry;

const BASE: u32 = 1 << 30;
const SLOTS: u32 = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    id: u32,
    device: String,
}

const PROJECTS: Registry = Registry::new("/run/runvz/.quota", "projects.json");

/// The container's project ID on `device`, allocating one if it has none;
/// `in_use` says whether the filesystem still counts usage for an ID.
pub fn allocate(key: &str, device: &str, in_use: impl Fn(u32) -> bool) -> Result<u32> {
    PROJECTS.change(|held: &mut BTreeMap<String, Held>| {
        if let Some(h) = held.get(key)
            && h.device == device
        {
            return Ok((h.id, false));
        }
        let taken: std::collections::HashSet<u32> = held.values().map(|h| h.id).collect();
        let id = (BASE..BASE + SLOTS)
            .find(|id| !taken.contains(id) && !in_use(*id))
            .context("disk quota: every project ID is taken")?;
        let device = device.to_string();
        held.insert(key.to_string(), Held { id, device });
        Ok((id, true))
    })
}

/// Gives the container's ID back (nothing when it had none).
pub fn release(key: &str) -> Result<()> {
    PROJECTS.remove::<Held>(key)
}
