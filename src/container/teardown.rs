//! Removing a container completely: the create steps (`steps.rs`) undone in
//! reverse. Used by `delete`, by a failed `create`, and to clear what a killed
//! `create` left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use libcgroups::common::CgroupManager;
use libcontainer::config::YoukiConfig;

use super::steps::{STEPS, Step};
use crate::cgroups;
use crate::state::{Container, ContainerLock, Meta, Store};

/// Tears the container down: the create steps undone in reverse. Every undo is
/// attempted even if an earlier one fails (the first error is returned after
/// all were tried), except that nothing is removed while an idmapped mount may
/// still show the container's files (then it stops there).
pub fn destroy(container: &Container, lock: &ContainerLock) -> Result<()> {
    let mut first_err: Option<anyhow::Error> = None;
    for step in STEPS.iter().rev() {
        if let Err(err) = undo(*step, container) {
            tracing::warn!("teardown of {}: {err:#}", container.id);
            if *step == Step::Mounts {
                lock.remove();
                return Err(err);
            }
            first_err.get_or_insert(err);
        }
    }
    lock.remove();
    match first_err {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Loads a container for `delete --force`. When its state file is corrupt
/// (so runvz's record in it is lost), what teardown needs comes from the
/// container's config.json, written before any cgroup or process existed: the
/// cgroup (a `slice:prefix:name` path is the systemd driver's), and whether a
/// system container's named systemd cgroup is there to remove.
pub fn load_for_cleanup(store: &Store, id: &str) -> Result<Container> {
    let mut container = store.load_for_cleanup(id)?;
    if container.state.is_none() {
        container.meta = salvage_meta(&container.state_dir);
    }
    Ok(container)
}

fn salvage_meta(dir: &Path) -> Option<Meta> {
    let spec = libcontainer::oci_spec::runtime::Spec::load(dir.join("config.json")).ok()?;
    let cgroup_path = spec.linux().as_ref()?.cgroups_path().clone()?;
    let rootfs = spec.root().as_ref()?.path().clone();
    Some(Meta {
        bundle: PathBuf::new(),
        rootfs,
        systemd: cgroup_path.to_string_lossy().contains(':'),
        system: crate::system::named_systemd_dir(&cgroup_path).is_some_and(|d| d.exists()),
        cgroup_path,
        init_start_time: None,
        halt_signal: None,
        userns_start: None,
        userns_size: None,
        beancounters: Default::default(),
        disk_quota: None,
        proc_view: false,
    })
}

/// The container's key in the ID-range allocator and its idmap directory (a
/// function of its state root and ID, so known without the state file).
fn range_key(container: &Container) -> Option<String> {
    container
        .state_dir
        .parent()
        .map(|root| crate::userns::key(root, &container.id))
}

/// Undoes one create step, from what is recorded; a no-op if it never ran.
fn undo(step: Step, container: &Container) -> Result<()> {
    match step {
        // The cgroup it chowned goes with Build's.
        Step::Delegate => Ok(()),
        Step::Build => undo_build(container),
        Step::ProcView => match range_key(container) {
            Some(key) => crate::procview::unregister(&key),
            None => Ok(()),
        },
        // Idmapped mounts (the rootfs, bind sources) go before any file is
        // removed: nothing may be removed through them. A restore's bind of
        // the rootfs for CRIU likewise.
        Step::Mounts => {
            if let Some(key) = range_key(container) {
                crate::idmap::remove(&crate::idmap::dir(&key))?;
            }
            unmount_criu_root(&container.state_dir)
        }
        Step::DiskQuota => match range_key(container) {
            Some(key) => crate::quota::release(
                &key,
                container.meta.as_ref().and_then(|m| m.disk_quota.as_ref()),
            ),
            None => Ok(()),
        },
        Step::IdRange => match range_key(container) {
            Some(key) => crate::userns::release(&key),
            None => Ok(()),
        },
        Step::Record => match fs::remove_dir_all(&container.state_dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(anyhow::Error::new(err)
                .context(format!("cannot remove {}", container.state_dir.display()))),
            _ => Ok(()),
        },
    }
}

/// Build's undo: every process (create leftovers, the init, the cgroup's),
/// the cgroups, then the poststop hooks (runc runs them once it is gone).
fn undo_build(container: &Container) -> Result<()> {
    let mut first_err: Option<anyhow::Error> = None;
    let mut note = |r: Result<()>| {
        if let Err(err) = r {
            first_err.get_or_insert(err);
        }
    };
    // Processes a killed `create` left (clones of runvz that had not exec'd yet)
    // may still be setting up cgroups: stop them before anything is removed. Only
    // for a create that never finished: a finished one's runvz may still be a
    // foreground `run` waiting for its container.
    let create_finished = container
        .state
        .as_ref()
        .is_some_and(|s| s.status != libcontainer::container::ContainerStatus::Creating);
    if !create_finished {
        kill_create_leftovers(container);
    }
    // The init first, directly: it may not have reached its cgroup yet.
    let init = container.init_handle();
    if let Some(handle) = &init {
        let _ = handle.send(libc::SIGKILL);
        // A killed pid-namespace init takes the namespace's processes with it
        // within a few milliseconds. Waiting (bounded) for that first spares
        // the cgroup kill below from freezing a cgroup of dying processes,
        // which stays FREEZING and costs libcgroups a 10 ms sleep, most of a
        // `delete --force`. A paused container's init only dies once thawed,
        // by that kill.
        let paused = container
            .state
            .as_ref()
            .is_some_and(|s| s.status == libcontainer::container::ContainerStatus::Paused);
        if !paused {
            handle.wait_exit(Duration::from_millis(20));
        }
    }
    if let Some(path) = container.cgroup_path() {
        match cgroups::manager(&path, container.systemd(), &container.id) {
            Ok(manager) => {
                note(cgroups::kill_all_and_wait(
                    &manager,
                    Duration::from_secs(10),
                ));
                note(cgroups::remove_children(&path));
                note(remove_cgroup(&manager));
            }
            Err(err) => note(Err(err)),
        }
    }
    if let Some(handle) = &init {
        wait_for_init_exit(container, handle);
    }
    if let Some(meta) = container.meta.as_ref().filter(|m| m.system)
        && let Some(dir) = crate::system::named_systemd_dir(&meta.cgroup_path)
    {
        note(cgroups::remove_tree(&dir));
    }
    // A failing poststop hook is a warning (runc).
    if let (Some(state), Ok(config)) = (&container.state, YoukiConfig::load(&container.state_dir))
        && let Some(hooks) = config.hooks.as_ref()
        && let Err(err) =
            libcontainer::hooks::run_hooks(hooks.poststop().as_ref(), Some(state), None, None, None)
    {
        tracing::warn!("poststop hook of {} failed: {err}", container.id);
    }
    match first_err {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Waits (bounded) until the init has really exited. A pid-namespace init leaves
/// its cgroup first and then waits in the kernel until every other process of the
/// namespace has been reaped, including `exec`'d ones whose parent is outside the
/// namespace (their reaper is the host's init, or the engine's subreaper).
fn wait_for_init_exit(container: &Container, init: &crate::signal::ProcessHandle) {
    if !init.wait_exit(Duration::from_secs(5)) {
        tracing::warn!(
            "init {} of {} is still exiting: it waits for processes of its namespace to be reaped by their parent",
            init.pid,
            container.id
        );
    }
}

/// Removes the cgroup; rmdir can fail with EBUSY for a moment after the last
/// process died, so it is retried briefly.
fn remove_cgroup(manager: &libcgroups::common::AnyCgroupManager) -> Result<()> {
    cgroups::retry_for(Duration::from_millis(500), || manager.remove())
        .map_err(|err| anyhow::anyhow!("cannot remove the container's cgroup: {err}"))
}

/// Kills the processes a killed `create` of this container left: clones of it
/// (libcontainer's intermediate and init processes, runvz's helpers) that have
/// not exec'd yet. They live on briefly, outside any lock, and can still make
/// cgroup directories. Found by the descriptor they inherited on
/// [`super::create::CREATE_MARKER`] (that file of this container, under this
/// state root), held by pidfds, and waited for.
fn kill_create_leftovers(container: &Container) {
    use std::os::unix::fs::MetadataExt;
    let Ok(marker) = fs::metadata(container.state_dir.join(super::create::CREATE_MARKER)) else {
        return;
    };
    let is_marker = |m: &fs::Metadata| (m.dev(), m.ino()) == (marker.dev(), marker.ino());
    let holds = |pid: i32| {
        fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| fs::metadata(fd.path()).is_ok_and(|m| is_marker(&m)))
        })
    };
    let me = std::process::id().to_string();
    let Ok(processes) = fs::read_dir("/proc") else {
        return;
    };
    let mut killed = Vec::new();
    for entry in processes.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| *n != me)
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // Held, then checked again: the handle is on a process that holds it.
        if let Some(handle) = crate::signal::ProcessHandle::open(pid, holds)
            && handle.send(libc::SIGKILL).is_ok()
        {
            killed.push(handle);
        }
    }
    for handle in killed {
        handle.wait_exit(Duration::from_secs(2));
    }
}

/// Unmounts `criu-root` in runvz's directory of a container (a restore that
/// was killed leaves it mounted); fails if it stays mounted.
fn unmount_criu_root(dir: &Path) -> Result<()> {
    let own = match crate::safepath::strict_root(dir) {
        Ok(own) => own,
        Err(_) => return Ok(()), // no directory: nothing mounted in it
    };
    let Ok(handle) = own.resolve_nofollow(crate::criu::CRIU_ROOT) else {
        return Ok(());
    };
    let _ = nix::mount::umount2(
        &crate::safepath::fd_path(&handle),
        nix::mount::MntFlags::MNT_DETACH,
    );
    drop(handle);
    let still = own
        .resolve_nofollow(crate::criu::CRIU_ROOT)
        .ok()
        .map(|h| crate::safepath::is_mount_root(std::os::fd::AsFd::as_fd(&h)).unwrap_or(true));
    if still == Some(true) {
        anyhow::bail!(
            "cannot unmount {}: left in place with the rootfs it shows",
            dir.join(crate::criu::CRIU_ROOT).display()
        );
    }
    Ok(())
}
