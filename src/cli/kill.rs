//! `runvz kill ID [SIGNAL]`: signal the init, or with `--all` every process of the
//! container.

use anyhow::{Context, Result, bail};
use clap::Args;
use nix::sys::signal::Signal;

use crate::cgroups;
use crate::signal;
use crate::state::{Status, Store};

#[derive(Args, Debug)]
pub struct KillArgs {
    /// send the specified signal to all processes inside the container
    #[arg(short = 'a', long)]
    pub all: bool,
    /// the container's ID
    pub id: String,
    /// the signal (name or number)
    #[arg(default_value = "SIGTERM", allow_hyphen_values = true)]
    pub signal: String,
}

/// The signals that end runc's waiting init (Go's default handling).
const ENDS_RUNCS_INIT: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGQUIT,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGSTKFLT,
    libc::SIGSYS,
];

pub fn run(store: &Store, args: KillArgs) -> Result<()> {
    let sig = signal::parse(&args.signal)?;
    let (container, _lock) = store.load_locked(&args.id)?;
    // containerd's shim and Podman match runc's words for a container whose
    // processes are gone ("already finished", not "unknown error after kill").
    // With --all, runc signals whatever is left in the cgroup and says nothing.
    if container.status == Status::Stopped && !args.all {
        bail!("container not running");
    }

    if args.all {
        let path = container
            .cgroup_path()
            .context("container has no cgroup recorded")?;
        let manager = cgroups::manager(&path, container.systemd(), &container.id)?;
        if sig == 0 {
            // Signal 0 only asks whether the processes are there (runc allows it).
            return Ok(());
        }
        let sig = Signal::try_from(sig)
            .with_context(|| format!("signal {sig} cannot be sent with --all"))?;
        return cgroups::signal_all(&manager, sig);
    }

    container.require("kill", &[Status::Created, Status::Running, Status::Paused])?;
    let init = container.init_handle().context("container not running")?;
    // A system container stops like a server: SIGTERM becomes its init's halt signal.
    let sig = match container.meta.as_ref().and_then(|m| m.halt_signal) {
        Some(halt) if sig == libc::SIGTERM => halt,
        _ => sig,
    };
    // Before start the init is the runtime's own process, PID 1 of its PID
    // namespace, which ignores signals it has no handler for. runc's init (Go)
    // exits on these, so a created container is gone after `kill` under runc;
    // callers (containerd's shim, Podman) rely on that.
    let sig = if container.status == Status::Created && ENDS_RUNCS_INIT.contains(&sig) {
        libc::SIGKILL
    } else {
        sig
    };
    match init.send(sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(err) => {
            return Err(err).with_context(|| format!("cannot send signal {sig} to {}", init.pid));
        }
    }
    // A frozen (v1) process cannot act on SIGKILL until thawed.
    if container.status == Status::Paused
        && sig == libc::SIGKILL
        && let Some(path) = container.cgroup_path()
    {
        let manager = cgroups::manager(&path, container.systemd(), &container.id)?;
        cgroups::freeze(&manager, false)?;
    }
    Ok(())
}
