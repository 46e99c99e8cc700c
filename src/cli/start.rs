//! `runvz start`: let a created container's init run the user process.

use anyhow::{Context, Result};
use clap::Args;
use libcontainer::config::YoukiConfig;
use libcontainer::container::ContainerStatus;
use libcontainer::notify_socket::{NOTIFY_FILE, NotifySocket};

use crate::state::{Container, Status, Store};

#[derive(Args, Debug)]
pub struct StartArgs {
    /// the container's ID
    pub id: String,
}

pub fn run(store: &Store, args: StartArgs) -> Result<()> {
    let (mut container, _lock) = store.load_locked(&args.id)?;
    start(&mut container)
}

/// Releases the init (it waits on the notify socket), records `running`, then runs
/// the poststart hooks as runc does.
pub fn start(container: &mut Container) -> Result<()> {
    match container.status {
        Status::Created => {}
        Status::Stopped => anyhow::bail!("cannot start a container that has stopped"),
        other => anyhow::bail!("cannot start an already {other} container"),
    }
    let mut notify = NotifySocket::new(container.state_dir.join(NOTIFY_FILE));
    notify
        .notify_container_start()
        .with_context(|| format!("cannot start container {}", container.id))?;
    container.set_status(ContainerStatus::Running)?;

    let config = YoukiConfig::load(&container.state_dir)?;
    if let (Some(hooks), Some(state)) = (config.hooks.as_ref(), container.state.as_ref()) {
        libcontainer::hooks::run_hooks(
            hooks.poststart().as_ref(),
            Some(state),
            Some(&container.state_dir),
            None,
            None,
        )
        .context("poststart hook failed")?;
    }
    Ok(())
}
