//! `start`, and `run`'s life in the foreground: releasing a created init,
//! then (for `run` and a foreground `restore`) waiting for it and removing the
//! container.

use anyhow::{Context, Result};
use libcontainer::config::YoukiConfig;
use libcontainer::container::ContainerStatus;
use libcontainer::notify_socket::{NOTIFY_FILE, NotifySocket};
use nix::unistd::Pid;

use super::destroy;
use crate::console::wait_foreground;
use crate::state::{Container, Status, Store};

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

/// Waits for the container's init in the foreground (relaying the terminal
/// when runvz holds its pty `master`), then, unless `keep`, removes the
/// container; returns the init's exit status as runc does.
pub fn wait_and_remove(
    store: &Store,
    id: &str,
    init: Pid,
    master: Option<std::os::fd::OwnedFd>,
    keep: bool,
) -> Result<u8> {
    let status = wait_foreground(init, master)?;
    if !keep {
        let lock = store.lock(id)?;
        if let Ok(container) = store.load(id) {
            destroy(&container, &lock)?;
        }
    }
    Ok(status)
}
