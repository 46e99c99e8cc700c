//! Thin helpers over libcgroups for a container's cgroup: its manager, its
//! processes, freezing, and signalling everything in it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libcgroups::common::{
    AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt, FreezerState,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

/// Where the host's cgroup hierarchies are mounted (the one tree on v2).
pub const ROOT: &str = "/sys/fs/cgroup";

/// True on a pure cgroup v2 host (cgroup2 mounted on /sys/fs/cgroup itself).
pub fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// A config's `cgroupsPath` kept inside the cgroup tree, as runc keeps it: `..`
/// is resolved lexically from the tree's root, so `/../../tmp/x` is the cgroup
/// `/tmp/x`, never a directory elsewhere on the host. A systemd path
/// (`slice:prefix:name`) may not hold `/`.
pub fn confine(path: &Path, systemd: bool) -> Result<std::path::PathBuf> {
    let text = path.to_string_lossy();
    if systemd && text.contains(':') {
        if text
            .split(':')
            .any(|part| part.contains('/') || part == "..")
        {
            anyhow::bail!(
                "cgroupsPath {text:?}: a systemd cgroups path (slice:prefix:name) cannot hold '/' or '..'"
            );
        }
        return Ok(path.to_path_buf());
    }
    let confined = crate::safepath::lexically_normal(path);
    if confined.file_name().is_none() {
        // Its teardown would signal and remove the host's whole tree.
        anyhow::bail!("cgroupsPath {text:?} names the root of the cgroup tree");
    }
    Ok(confined)
}

pub fn manager(cgroup_path: &Path, systemd: bool, id: &str) -> Result<AnyCgroupManager> {
    libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: cgroup_path.to_path_buf(),
        systemd_cgroup: systemd,
        container_name: id.to_string(),
    })
    .with_context(|| format!("cannot open cgroup {}", cgroup_path.display()))
}

/// Writes resources into the container's cgroup (no OOM-killer or freezer
/// change). On v1 cgroupfs the CFS period and quota are written first, in
/// runc's order (see `write_cfs_v1`), and left out of what libcgroups writes.
pub fn apply_resources(
    manager: &AnyCgroupManager,
    cgroup_path: &Path,
    systemd: bool,
    resources: &LinuxResources,
) -> Result<()> {
    let mut resources = resources.clone();
    if !is_v2()
        && !systemd
        && let Some(mut cpu) = resources.cpu().clone()
        && (cpu.period().is_some() || cpu.quota().is_some())
    {
        write_cfs_v1(cgroup_path, cpu.period(), cpu.quota())?;
        cpu.set_period(None).set_quota(None);
        resources.set_cpu(Some(cpu));
    }
    manager
        .apply(&ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        // libcgroups prefixes "io error: " to what went wrong.
        .map_err(|err| anyhow::anyhow!("{}", err.to_string().trim_start_matches("io error: ")))
}

/// The v1 CFS period, then the quota, as runc writes them: a new period
/// smaller than the old one can be refused (EINVAL) because the old quota over
/// the new period exceeds the parent's (a Kubernetes pod's) ratio; then the
/// quota goes first and the period after it.
fn write_cfs_v1(cgroup_path: &Path, period: Option<u64>, quota: Option<i64>) -> Result<()> {
    let dir = Path::new(ROOT)
        .join("cpu")
        .join(cgroup_path.strip_prefix("/").unwrap_or(cgroup_path));
    let write = |file: &str, value: String| {
        std::fs::write(dir.join(file), &value).map_err(|err| {
            anyhow::anyhow!(
                "failed to write {value:?}: write {}: {}",
                dir.join(file).display(),
                crate::logging::os_words(&err)
            )
        })
    };
    let mut period_pending = None;
    if let Some(period) = period.filter(|p| *p != 0) {
        match write("cpu.cfs_period_us", period.to_string()) {
            Ok(()) => {}
            Err(_) if quota.is_some_and(|q| q != 0) => period_pending = Some(period),
            Err(err) => return Err(err),
        }
    }
    if let Some(quota) = quota.filter(|q| *q != 0) {
        write("cpu.cfs_quota_us", quota.to_string())?;
        if let Some(period) = period_pending {
            write("cpu.cfs_period_us", period.to_string())?;
        }
    }
    Ok(())
}

/// Host PIDs of every process in the cgroup (and its children). A cgroup that does
/// not exist has none.
pub fn pids(manager: &AnyCgroupManager) -> Vec<Pid> {
    manager.get_all_pids().unwrap_or_default()
}

pub fn freeze(manager: &AnyCgroupManager, frozen: bool) -> Result<()> {
    let state = if frozen {
        FreezerState::Frozen
    } else {
        FreezerState::Thawed
    };
    manager.freeze(state).with_context(|| {
        if frozen {
            "cannot freeze the container's cgroup"
        } else {
            "cannot thaw the container's cgroup"
        }
    })
}

/// Sends `signal` to every process in the cgroup. The cgroup is frozen meanwhile
/// so a forking process cannot escape, then thawed (so SIGKILL can take effect).
pub fn signal_all(manager: &AnyCgroupManager, signal: Signal) -> Result<()> {
    let frozen = manager.freeze(FreezerState::Frozen).is_ok();
    for pid in pids(manager) {
        match kill(pid, signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(err) => return Err(err).with_context(|| format!("cannot signal process {pid}")),
        }
    }
    if frozen {
        let _ = manager.freeze(FreezerState::Thawed);
    }
    Ok(())
}

/// Kills everything in the cgroup and waits (bounded) until it is empty.
pub fn kill_all_and_wait(manager: &AnyCgroupManager, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if pids(manager).is_empty() {
            return Ok(());
        }
        signal_all(manager, Signal::SIGKILL)?;
        if Instant::now() > deadline {
            anyhow::bail!("processes still running in the container's cgroup after SIGKILL");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The memory limit in force for a cgroup path (-1 when unlimited or unreadable),
/// read from the v2 `memory.max` or the v1 `memory.limit_in_bytes`.
pub fn memory_limit(cgroup_path: &Path) -> i64 {
    let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let root = Path::new(libcgroups::common::DEFAULT_CGROUP_ROOT);
    let (file, unlimited_from) = if root.join("cgroup.controllers").exists() {
        (root.join(rel).join("memory.max"), i64::MAX)
    } else {
        // v1 shows "unlimited" as LONG_MAX rounded down to a page.
        (
            root.join("memory").join(rel).join("memory.limit_in_bytes"),
            i64::MAX - 4096,
        )
    };
    match std::fs::read_to_string(file).map(|s| s.trim().parse::<i64>()) {
        Ok(Ok(limit)) if limit < unlimited_from => limit,
        _ => -1,
    }
}

/// Removes the sub-cgroups a container made inside its own cgroup (systemd in
/// a system container builds init.scope, system.slice, …), in every hierarchy,
/// so the container's cgroup itself can then be removed.
pub fn remove_children(cgroup_path: &Path) -> Result<()> {
    for dir in dirs_in_every_hierarchy(cgroup_path) {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&entry.path())?;
                }
            }
        }
    }
    Ok(())
}

/// The directories of a cgroupfs path in every mounted hierarchy (the one
/// unified tree on v2) that exist.
pub fn dirs_in_every_hierarchy(cgroup_path: &Path) -> Vec<std::path::PathBuf> {
    let relative = cgroup_path.to_string_lossy();
    let relative = relative.trim_start_matches('/');
    hierarchy_roots()
        .into_iter()
        .map(|root| root.join(relative))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// The root of every mounted hierarchy (the one unified tree on v2).
pub fn hierarchy_roots() -> Vec<std::path::PathBuf> {
    if is_v2() {
        vec![Path::new(ROOT).to_path_buf()]
    } else {
        std::fs::read_dir(ROOT)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// A file of the container's cgroup: `v2_file` in its unified directory, or
/// `v1_file` in its directory of the v1 `controller` hierarchy. The
/// container's own directory, not its init's: systemd moves itself into
/// init.scope below it.
pub fn read_file(
    cgroup_path: &Path,
    v1_controller: &str,
    v1_file: &str,
    v2_file: &str,
) -> Option<String> {
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let root = Path::new(ROOT);
    let file = if is_v2() {
        root.join(relative).join(v2_file)
    } else {
        root.join(v1_controller).join(relative).join(v1_file)
    };
    std::fs::read_to_string(file).ok()
}

/// The value of `key` in a flat keyed cgroup file (memory.stat, *.events).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next()? == key).then(|| words.next()?.parse().ok())?
    })
}

/// Removes a cgroup directory and the cgroups below it, deepest first (cgroup
/// directories go with rmdir only); retries while exiting processes leave.
pub fn remove_tree(dir: &Path) -> Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path())?;
            }
        }
    }
    let mut last = None;
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => last = Some(err),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!(
        "cannot remove cgroup {}: {}",
        dir.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    )
}

/// runc's checks of a cgroup that exists before create: a frozen one is
/// refused (the init would hang in it, unkillable, in D state), a non-empty
/// one gets a warning. (A systemd unit's directory is made by systemd at
/// start, so there is nothing to check.)
pub fn check_existing(cgroup_path: &Path, systemd: bool) -> Result<()> {
    if systemd {
        return Ok(());
    }
    let freezer = read_file(cgroup_path, "freezer", "freezer.state", "cgroup.freeze");
    if let Some(state) = freezer
        && matches!(state.trim(), "1" | "FROZEN" | "FREEZING")
    {
        anyhow::bail!(
            "container's cgroup {} unexpectedly frozen",
            cgroup_path.display()
        );
    }
    // runc looks in one hierarchy on v1 (devices); so does this.
    let procs = read_file(cgroup_path, "devices", "cgroup.procs", "cgroup.procs");
    let count = procs.map_or(0, |p| p.lines().filter(|l| !l.is_empty()).count());
    if count > 0 {
        tracing::warn!("container's cgroup is not empty: {count} process(es) found");
    }
    Ok(())
}

/// Creates the parents of a v2 cgroupfs path beforehand: libcgroups creates
/// each missing level with a plain mkdir after checking it is absent, so two
/// containers made at once under a new parent race and one fails with EEXIST.
pub fn precreate_parents(cgroup_path: &Path, systemd: bool) {
    if systemd || !is_v2() {
        return;
    }
    let relative = cgroup_path.to_string_lossy();
    if let Some(parent) = Path::new(relative.trim_start_matches('/')).parent()
        && !parent.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(Path::new(ROOT).join(parent));
    }
}
