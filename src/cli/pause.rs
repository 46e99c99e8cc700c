//! `runvz pause` / `runvz resume`: freeze and thaw the container's cgroup.

use anyhow::{Context, Result};
use clap::Args;
use libcontainer::container::ContainerStatus;

use crate::cgroups;
use crate::container::{Status, Store};

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

fn set_frozen(store: &Store, id: &str, frozen: bool) -> Result<()> {
    let (mut container, _lock) = store.load_locked(id)?;
    let (what, from, to) = if frozen {
        ("pause", Status::Running, ContainerStatus::Paused)
    } else {
        ("resume", Status::Paused, ContainerStatus::Running)
    };
    container.require(what, &[from])?;
    let path = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    let manager = cgroups::manager(&path, container.systemd(), id)?;
    cgroups::freeze(&manager, frozen)?;
    container.set_status(to)
}
