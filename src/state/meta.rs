//! runvz's part of a container's one state file: `<root>/<id>/state.json` is
//! libcontainer's `State` with this record under the key `"runvz"` (kept by
//! libcontainer across its own saves, vendored patch 27). `create` writes the
//! file, with this record, before anything else of the container exists, so
//! cleanup never depends on a state libcontainer may not have written yet.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use libcontainer::container::State;
use serde::{Deserialize, Serialize};

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
    /// Its size when larger than 65536 (`runvz.userns=auto:size=N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_size: Option<u32>,
    /// Beancounters changed by `runvz update`, in annotation form
    /// (`runvz.ubc.numproc` → `"500:500"`), on top of config.json's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub beancounters: BTreeMap<String, String>,
    /// Whether its /proc view is served (system containers, where the host
    /// has FUSE).
    #[serde(default)]
    pub proc_view: bool,
    /// The disk quota (`runvz.diskspace`, `runvz.diskinodes`), once planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quota: Option<crate::quota::Quota>,
}

impl Meta {
    /// The key of runvz's record in state.json.
    const KEY: &'static str = "runvz";

    /// runvz's record in a state, if runvz made the container.
    pub fn from_state(state: &State) -> Result<Option<Self>> {
        state
            .extensions
            .get(Self::KEY)
            .map(|value| {
                Self::deserialize(value)
                    .with_context(|| format!("invalid \"{}\" record", Self::KEY))
            })
            .transpose()
    }

    /// Puts this record into a state, replacing the one there.
    pub fn put_into(&self, state: &mut State) -> Result<()> {
        state
            .extensions
            .insert(Self::KEY.to_string(), serde_json::to_value(self)?);
        Ok(())
    }
}
