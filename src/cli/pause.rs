//! `runvz pause` / `runvz resume`: freeze and thaw the container's cgroup.

use anyhow::{Context, Result, bail};
use clap::Args;
use libcontainer::container::ContainerStatus;

use crate::cgroups;
use crate::state::{Status, Store, init_started};

#[derive(Args, Debug)]
pub struct PauseArgs {
    /// the container's ID
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// the container's ID
    pub id: String,
}

pub fn pause(store: &Store, args: PauseArgs) -> Result<()> {
    set_frozen(store, &args.id, true)
}

pub fn resume(store: &Store, args: ResumeArgs) -> Result<()> {
    set_frozen(store, &args.id, false)
}

/// As runc: a created or running container can be paused (a created one goes
/// back to created on resume); anything else is "container not running", and
/// resuming what is not paused is "container not paused".
fn set_frozen(store: &Store, id: &str, frozen: bool) -> Result<()> {
    let (mut container, _lock) = store.load_locked(id)?;
    let to = if frozen {
        if !matches!(container.status, Status::Running | Status::Created) {
            bail!("cannot pause container {id}: container not running");
        }
        ContainerStatus::Paused
    } else {
        if container.status != Status::Paused {
            bail!("cannot resume container {id}: container not paused");
        }
        match container.live_pid() {
            Some(pid) if !init_started(pid.as_raw()) => ContainerStatus::Created,
            _ => ContainerStatus::Running,
        }
    };
    let path = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    let manager = cgroups::manager(&path, container.systemd(), id)?;
    cgroups::freeze(&manager, frozen)?;
    container.set_status(to)
}
