//! runvz's own record of a container (`<root>/.runvz/<id>/meta.json`), written
//! atomically before libcontainer builds anything, so cleanup never depends on a
//! state file libcontainer may have left half-written.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::write_atomic;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// The bundle the caller gave (state and list report this one).
    pub bundle: PathBuf,
    /// The container's root filesystem, absolute.
    pub rootfs: PathBuf,
    /// The cgroup path handed to libcontainer.
    pub cgroup_path: PathBuf,
    /// Whether the systemd cgroup driver was asked for.
    pub systemd: bool,
    /// The init process's start time once it exists (guards against PID reuse).
    #[serde(default)]
    pub init_start_time: Option<u64>,
    /// A system container (its process is an init; see `crate::system`).
    #[serde(default)]
    pub system: bool,
    /// What `kill` sends instead of SIGTERM to a system container's init.
    #[serde(default)]
    pub halt_signal: Option<i32>,
    /// The first host ID of the container's own user-namespace range.
    #[serde(default)]
    pub userns_start: Option<u32>,
}

impl Meta {
    const FILE: &'static str = "meta.json";

    pub fn load(runvz_dir: &Path) -> Result<Option<Self>> {
        let path = runvz_dir.join(Self::FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                    format!("cannot parse {}", path.display())
                })?))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self, runvz_dir: &Path) -> Result<()> {
        write_atomic(&runvz_dir.join(Self::FILE), &serde_json::to_vec(self)?)
    }
}
