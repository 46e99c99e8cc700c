//! `exec`: a new process in a created or running container (libcontainer's
//! tenant builder), with the beancounters' current rlimits, in the container's
//! cgroup or the sub-cgroup its init made (v2 system containers).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Process;
use libcontainer::syscall::syscall::SyscallType;

use super::write_pid_file;
use crate::console::{ConsoleSocket, wait_foreground};
use crate::state::{Container, Status, Store, write_atomic};

pub struct ExecOptions {
    pub process: Process,
    /// The process came from `--process` as is (no rlimits laid over it).
    pub process_given: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: i32,
    /// `--cgroup`, as `existing_sub_cgroup` checked it.
    pub sub_cgroup: Option<String>,
    pub ignore_paused: bool,
    pub pid_file: Option<PathBuf>,
}

/// Refuses a container exec cannot run in, in runc's words.
pub fn check_state(container: &Container, ignore_paused: bool) -> Result<()> {
    let mut allowed = vec![Status::Created, Status::Running];
    if ignore_paused {
        allowed.push(Status::Paused);
    }
    match container.status {
        Status::Paused if !ignore_paused => bail!(
            "cannot exec in container {}: cannot exec in a paused container (use --ignore-paused to override)",
            container.id
        ),
        Status::Stopped => bail!(
            "cannot exec in container {}: cannot exec in a stopped container",
            container.id
        ),
        _ => container.require("exec in", &allowed),
    }
}

/// Runs the process; in the foreground, waits and returns its exit status.
pub fn exec(store: &Store, container: &Container, opts: ExecOptions) -> Result<u8> {
    check_state(container, opts.ignore_paused)?;
    super::supervise(container);
    let mut process = opts.process;
    if !opts.process_given {
        // A live `update` of numfile & co. holds for processes started later.
        let current = crate::beancounter::live::current_rlimits(
            &crate::beancounter::report::settings(container)?,
        )?;
        let mut rlimits = process.rlimits().clone().unwrap_or_default();
        for limit in current {
            rlimits.retain(|r| r.typ() != limit.typ());
            rlimits.push(limit);
        }
        process.set_rlimits(Some(rlimits));
    }
    let terminal = process.terminal().unwrap_or(false);
    let process_file = container
        .state_dir
        .join(format!("exec-{}.json", std::process::id()));
    write_atomic(&process_file, &serde_json::to_vec(&process)?)?;

    let (own_console, console_path) = ConsoleSocket::for_foreground(
        terminal && !opts.detach && opts.console_socket.is_none(),
        opts.console_socket.clone(),
        &store.root().join(".tmp"),
    )?;

    let built = ContainerBuilder::new(container.id.clone(), SyscallType::default())
        .with_root_path(store.root())
        .and_then(|b| {
            b.with_console_socket(console_path.as_ref())
                .with_preserved_fds(opts.preserve_fds)
                .as_tenant()
                .with_detach(opts.detach || own_console.is_some())
                .with_process(Some(&process_file))
                // runvz decided above, from the cgroup (`check_state`): a
                // pause that lands after that check holds the new process
                // until resume, as with runc.
                .with_ignore_paused(true)
                .with_sub_cgroup(
                    opts.sub_cgroup
                        .or_else(|| crate::system::exec_sub_cgroup(container)),
                )
                .build()
        });
    let _ = std::fs::remove_file(&process_file);
    let pid = built.map_err(|err| match err {
        // The init exited after `check_state`.
        libcontainer::error::LibcontainerError::IncorrectStatus(_) => anyhow::anyhow!(
            "cannot exec in container {}: cannot exec in a stopped container",
            container.id
        ),
        err => {
            let err = anyhow::Error::from(err);
            match at_process_limit(container) {
                Some(limit) => err.context(format!(
                    "exec failed in container {}: it has reached its process limit (numproc {limit}): cannot fork",
                    container.id
                )),
                None => err.context(format!("exec failed in container {}", container.id)),
            }
        }
    })?;

    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid.as_raw())?;
    }
    if opts.detach {
        return Ok(0);
    }
    let master = own_console
        .as_ref()
        .map(|c| c.receive_master())
        .transpose()?;
    wait_foreground(pid, master)
}

/// The container's process limit when it has reached it (a refused fork).
fn at_process_limit(container: &Container) -> Option<u64> {
    use crate::cgroups::{File, read_number};
    let cgroup = container.cgroup_path()?;
    let limit = read_number(&cgroup, File::PidsMax)?;
    (read_number(&cgroup, File::PidsCurrent)? >= limit).then_some(limit)
}

/// `exec --cgroup PATH`: a sub-cgroup of the container's that exists in every
/// hierarchy, as runc requires (libcontainer would create it). Plain names
/// only, so it cannot leave the container's cgroup.
pub fn existing_sub_cgroup(container: &Container, sub: &str) -> Result<String> {
    if sub.contains(':') {
        bail!(
            "exec --cgroup {sub:?}: a CONTROLLER:PATH sub-cgroup is not supported by runvz; give PATH (every controller)"
        );
    }
    let relative = crate::safepath::plain_relative(std::path::Path::new(sub), "exec --cgroup")?;
    let own = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    for dir in crate::cgroups::dirs_in_every_hierarchy(&own) {
        let wanted = dir.join(&relative);
        if !wanted.is_dir() {
            bail!(
                "exec failed: sub-cgroup {sub:?} of container {}: {}: no such file or directory",
                container.id,
                wanted.display()
            );
        }
    }
    Ok(relative.display().to_string())
}
