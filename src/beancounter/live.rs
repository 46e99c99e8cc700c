//! Changing a running container's beancounters (`runvz update --numproc …`):
//! cgroup-backed bounds through the cgroup, rlimit-backed ones with prlimit on
//! every process of the container, and mount-backed ones (numpty, shmpages) by
//! remounting inside the container's mount namespace.

use anyhow::{Context, Result, bail};
use libcontainer::oci_spec::runtime::LinuxResources;
use nix::mount::MsFlags;

use super::params::{Enforcement, Group, MountBound};
use super::settings::Settings;
use super::spec::{self, mount_option};
use crate::signal::ProcessHandle;

/// What applying new settings takes: cgroup resources, rlimits, remounts.
pub struct Changes {
    /// Only the parts of the resources the changed parameters own, so an
    /// update of numproc does not also reset a memory limit set with
    /// `update --memory`.
    pub resources: LinuxResources,
    /// (RLIMIT_*, soft, hard)
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    /// (filesystem, options)
    pub remounts: Vec<(MountBound, String)>,
}

/// Works out the changes for the parameters set in `changed`, with `settings`
/// the complete settings after the change.
pub fn plan(settings: &Settings, changed: &Settings, where_: &str) -> Result<Changes> {
    // The same plan as at create.
    let plan = spec::plan(settings, where_)?;
    let mut groups: Vec<Group> = changed.knobs.keys().map(|k| k.describe().group).collect();
    let mut rlimits = Vec::new();
    let mut remounts = Vec::new();
    for param in changed.ubc.keys() {
        match param.describe().enforcement {
            Enforcement::Cgroup(group) => groups.push(group),
            Enforcement::Rlimit(rlimit) => {
                if let Some((_, _, soft, hard)) = plan.rlimits.iter().find(|r| r.0 == *param) {
                    rlimits.push((rlimit.resource(), *soft, *hard));
                }
            }
            Enforcement::Mount(mount) => {
                let value = plan.mounts.iter().find(|m| m.0 == mount).map(|m| m.1);
                let options = match (mount, value) {
                    (_, Some(value)) => mount_option(mount, value),
                    (MountBound::Devpts, None) => {
                        bail!("{where_}: numpty cannot be made unlimited on a running container")
                    }
                    // Unlimited: tmpfs takes 0 as "no limit".
                    (MountBound::Shm, None) => mount_option(mount, 0),
                };
                remounts.push((mount, options));
            }
            Enforcement::None => {}
        }
    }
    Ok(Changes {
        resources: only(&plan.resources, &groups),
        rlimits,
        remounts,
    })
}

/// The parts of `all` in the given groups.
fn only(all: &LinuxResources, groups: &[Group]) -> LinuxResources {
    let mut out = LinuxResources::default();
    for group in groups {
        match group {
            Group::Pids => out.set_pids(*all.pids()),
            Group::Memory => out.set_memory(*all.memory()),
            Group::Cpu => out.set_cpu(all.cpu().clone()),
            Group::BlockIo => out.set_block_io(all.block_io().clone()),
        };
    }
    let kept: std::collections::HashMap<String, String> = all
        .unified()
        .iter()
        .flatten()
        .filter(|(k, _)| groups.iter().any(|g| k.starts_with(g.unified_prefix())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !kept.is_empty() {
        out.set_unified(Some(kept));
    }
    out
}

/// The rlimits the beancounters give a process now (after any live update):
/// what a process exec'd into the container later starts with.
pub fn current_rlimits(settings: &Settings) -> Result<Vec<oci_spec::runtime::PosixRlimit>> {
    let plan = spec::plan(settings, "exec")?;
    Ok(plan
        .rlimits
        .iter()
        .map(|(_, rlimit, soft, hard)| spec::rlimit_entry(*rlimit, *soft, *hard))
        .collect())
}

/// Sets the rlimits on every process of the container (held by pidfds).
pub fn set_rlimits(
    processes: &[ProcessHandle],
    rlimits: &[(libc::__rlimit_resource_t, u64, u64)],
) -> Result<()> {
    for process in processes {
        let pid = process.pid;
        for &(resource, soft, hard) in rlimits {
            match process.set_rlimit(resource, soft, hard) {
                Ok(()) => {}
                Err(err) if err.raw_os_error() == Some(libc::ESRCH) => break, // exited meanwhile
                Err(err) if err.raw_os_error() == Some(libc::EPERM) => bail!(
                    "cannot raise the hard limit of process {pid} from {} to {hard}: that needs CAP_SYS_RESOURCE, which runvz does not have here",
                    current_hard(pid, resource).map_or("?".to_string(), |h| h.to_string())
                ),
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("cannot set the rlimit of process {pid}"));
                }
            }
        }
    }
    Ok(())
}

fn current_hard(pid: i32, resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit with a NULL new limit only writes the old one into `old`.
    (unsafe { libc::prlimit(pid, resource, std::ptr::null(), &mut old) } == 0)
        .then_some(old.rlim_max)
}

/// Remounts inside the container's mount namespace, from a forked child (a
/// multi-threaded or already-placed process cannot switch namespaces safely).
///
/// The mount points are the container's to change (it can unmount its /dev/pts
/// and leave a symlink, or bind another filesystem there): the child joins the
/// container's user namespace too (if it has one, so the remount has only the
/// container root's power over what it finds), resolves each mount point inside
/// the container's root without following any symlink, checks that it is a
/// filesystem of the expected type and remounts it through its fd.
pub fn remount_in_container(init: &ProcessHandle, remounts: &[(MountBound, String)]) -> Result<()> {
    if remounts.is_empty() {
        return Ok(());
    }
    let ns = init
        .open_namespace("mnt")
        .context("cannot open the container's mount namespace")?;
    let userns = container_userns(init)?;
    // SAFETY: the child only makes syscalls and exits.
    match unsafe { crate::fork::fork_single_threaded() }? {
        nix::unistd::ForkResult::Child => {
            let joined = userns.as_ref().is_none_or(|userns| {
                nix::sched::setns(userns, nix::sched::CloneFlags::CLONE_NEWUSER).is_ok()
            }) && nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS).is_ok();
            let ok = joined
                && remounts
                    .iter()
                    .all(|(mount, data)| remount_here(*mount, data).is_ok());
            // SAFETY: _exit ends the child without running the parent's cleanup.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None)? {
            nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
            _ => bail!(
                "cannot remount {} inside the container",
                remounts
                    .iter()
                    .map(|r| r.0.destination())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        },
    }
}

/// The init's user namespace, when it is not runvz's own.
fn container_userns(init: &ProcessHandle) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/user")?;
    let theirs = init
        .open_namespace("user")
        .context("cannot open the container's user namespace")?;
    let meta = theirs.metadata()?;
    Ok((meta.ino() != own.ino() || meta.dev() != own.dev()).then_some(theirs))
}

/// In the container's mount namespace (whose root is now the child's root):
/// remounts the mount at `target` (absolute in the container), found without
/// following symlinks, if it is the filesystem a beancounter remount is for.
fn remount_here(mount: MountBound, data: &str) -> nix::Result<()> {
    use std::os::fd::{AsFd, AsRawFd};
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: open just returned this fd; nothing else owns it.
    let root = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(root) };
    let relative = std::path::Path::new(mount.destination().trim_start_matches('/'));
    let fd = crate::safepath::openat2(
        root.as_fd(),
        relative,
        libc::O_PATH | libc::O_DIRECTORY,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|err| nix::errno::Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)))?;
    let (expected, flags) = match mount {
        MountBound::Devpts => (
            nix::sys::statfs::DEVPTS_SUPER_MAGIC,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        ),
        MountBound::Shm => (
            nix::sys::statfs::TMPFS_MAGIC,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        ),
    };
    if nix::sys::statfs::fstatfs(&fd)?.filesystem_type() != expected {
        return Err(nix::errno::Errno::EINVAL);
    }
    // "." is the mount point itself: mount(2) takes no fd, and a path through
    // /proc would be the container's procfs here.
    nix::unistd::fchdir(fd.as_raw_fd())?;
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_REMOUNT | flags,
        Some(data),
    )
}
