//! The host's cgroups: the version detected once (libcgroups' own detection),
//! the v1 and v2 differences behind one interface (`Hierarchy`, with the
//! siblings `v1` and `v2`), and thin helpers over libcgroups for a container's
//! cgroup: its manager, its processes, freezing, signalling, removal.
//!
//! A hybrid host (v1 controllers, cgroup2 at `unified/`) is run as v1, as
//! libcgroups and runc do.

mod v1;
mod v2;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libcgroups::common::{
    AnyCgroupManager, CgroupConfig, CgroupManager, CgroupSetup, ControllerOpt, FreezerState,
};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::signal::ProcessHandle;

/// Where the host's cgroup hierarchies are mounted (the one tree on v2).
pub const ROOT: &str = libcgroups::common::DEFAULT_CGROUP_ROOT;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The cgroup files runvz reads; each version says where each one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    PidsCurrent,
    PidsMax,
    PidsPeak,
    /// Keyed: `max` counts refused forks.
    PidsEvents,
    MemoryUsage,
    MemoryPeak,
    MemoryStat,
    /// Keyed: `oom_kill`.
    OomEvents,
    KernelMemoryPeak,
    SwapPeak,
    CpusetEffective,
    Freezer,
    Procs,
    /// v2's memory.high (v1 has no such throttle).
    MemoryHigh,
    /// v1's CPU time per CPU, user and system, ns.
    CpuUserPerCpu,
    CpuSystemPerCpu,
    /// v2's cpu.stat (`user_usec`, `system_usec`).
    CpuStat,
    /// Block I/O per device: v1's bytes and operations, v2's io.stat.
    IoServiceBytes,
    IoServiced,
    IoStat,
}

/// Keys of memory.stat, named per version by the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Cache,
    Shmem,
    Unevictable,
    Kernel,
    SlabReclaimable,
    Sock,
}

/// What differs between cgroup v1 and v2, in one place per version.
pub trait Hierarchy: Send + Sync {
    fn version(&self) -> Version;
    /// The root of every mounted hierarchy (the one unified tree on v2).
    fn roots(&self) -> Vec<PathBuf>;
    /// Where `file` of the cgroup at `cgroup_path` is, if this version has it.
    fn file(&self, cgroup_path: &Path, file: File) -> Option<PathBuf>;
    /// The memory.stat key for `stat`, if this version has it.
    fn stat_key(&self, stat: Stat) -> Option<&'static str>;
    /// The cgroup (the memory hierarchy's on v1) a process is in.
    fn cgroup_of(&self, pid: i32) -> Option<PathBuf>;
    /// The memory limit in force, bytes (-1: unlimited or unreadable).
    fn memory_limit(&self, cgroup_path: &Path) -> i64;
    /// The swap limit alone, bytes (v1 limits memory+swap together).
    fn swap_limit(&self, cgroup_path: &Path) -> Option<u64>;
    /// The swap in use alone, bytes.
    fn swap_usage(&self, cgroup_path: &Path) -> Option<u64>;
    /// Kernel memory in use, bytes.
    fn kernel_memory(&self, cgroup_path: &Path) -> Option<u64>;
    /// How often a limit was hit: memory, memory+swap, kernel memory.
    fn memory_failcnt(&self, cgroup_path: &Path) -> Option<u64>;
    fn swap_failcnt(&self, cgroup_path: &Path) -> Option<u64>;
    fn kernel_memory_failcnt(&self, cgroup_path: &Path) -> Option<u64>;
    /// The CPU quota as a number of CPUs (rounded up), if there is one.
    fn cpu_quota_cpus(&self, cgroup_path: &Path) -> Option<u64>;
    /// Writes CFS period and quota itself where libcgroups' order is wrong
    /// (true: done, leave them out of what libcgroups writes).
    fn write_cfs(
        &self,
        cgroup_path: &Path,
        period: Option<u64>,
        quota: Option<i64>,
    ) -> Result<bool>;
    /// Makes what libcgroups would race on before a cgroup is created.
    fn precreate_parents(&self, cgroup_path: &Path);
    /// A relative CPU weight in OpenVZ's cpuunits (1000 = the default share).
    fn set_cpu_units(&self, resources: &mut LinuxResources, units: u64);
    /// A block-I/O weight (10…1000, 500 the default).
    fn set_io_weight(&self, resources: &mut LinuxResources, weight: u16);
    /// Protects `bytes` of memory from reclaim (`hard`: even under OOM); false
    /// when this version cannot (or only as a fallback a config's value wins over).
    fn set_memory_protection(
        &self,
        resources: &mut LinuxResources,
        bytes: i64,
        hard: bool,
    ) -> Protection;
    /// Where a block-I/O weight lands here, or why it cannot.
    fn io_weight_support(&self) -> std::result::Result<&'static str, String>;
    /// Where block-I/O throttles land here, or why they cannot.
    fn io_throttle_support(&self) -> std::result::Result<&'static str, String>;
    /// Whether `linux.resources.unified` can be applied.
    fn takes_unified(&self) -> bool;
    /// v1's named `systemd` hierarchy (where systemd keeps its tree), if mounted.
    fn named_systemd_root(&self) -> Option<PathBuf>;
    /// Whether a process exec'd into a system container must join its init's
    /// sub-cgroup (v2's "no internal processes" rule).
    fn exec_joins_init_cgroup(&self) -> bool;
}

/// How a memory protection was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Set,
    /// Set as the soft limit, which a config's own reservation overrides.
    Fallback,
    Unsupported,
}

/// This host's cgroups, detected once.
pub fn host() -> &'static dyn Hierarchy {
    static HOST: OnceLock<Box<dyn Hierarchy>> = OnceLock::new();
    HOST.get_or_init(|| match libcgroups::common::get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => Box::new(v2::V2),
        // Legacy, hybrid, or no cgroup tree at all (its errors come later,
        // from the operation that needs it).
        _ => Box::new(v1::V1),
    })
    .as_ref()
}

/// The cgroup version of this host.
pub fn version() -> Version {
    host().version()
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
    if !systemd
        && let Some(mut cpu) = resources.cpu().clone()
        && (cpu.period().is_some() || cpu.quota().is_some())
        && host().write_cfs(cgroup_path, cpu.period(), cpu.quota())?
    {
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

/// Host PIDs of every process in the cgroup and its children, from their
/// cgroup.procs files (on v1 in the hierarchy runc reads). No libcgroups
/// manager: making one parses the host's mount table, which grows with every
/// system container, so `beancounters` over N containers went quadratic.
pub fn procs(cgroup_path: &Path) -> Vec<i32> {
    fn walk(dir: &Path, pids: &mut Vec<i32>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), pids);
            }
        }
    }
    let mut pids = Vec::new();
    if let Some(dir) = host()
        .file(cgroup_path, File::Procs)
        .as_deref()
        .and_then(Path::parent)
    {
        walk(dir, &mut pids);
    }
    pids
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

/// A handle (pidfd) on every process in the cgroup, each kept only if it is
/// still listed there once held: a PID recycled outside the cgroup is never
/// among them.
pub fn members(manager: &AnyCgroupManager) -> Vec<ProcessHandle> {
    let handles: Vec<ProcessHandle> = pids(manager)
        .iter()
        .filter_map(|pid| ProcessHandle::open(pid.as_raw(), |_| true))
        .collect();
    let still_listed: std::collections::HashSet<Pid> = pids(manager).into_iter().collect();
    handles
        .into_iter()
        .filter(|h| still_listed.contains(&Pid::from_raw(h.pid)))
        .collect()
}

/// Sends `signal` to every process in the cgroup. The cgroup is frozen meanwhile
/// so a forking process cannot escape, then thawed (so SIGKILL can take effect).
/// Each process is held by a pidfd ([`members`]).
pub fn signal_all(manager: &AnyCgroupManager, signal: Signal) -> Result<()> {
    let frozen = manager.freeze(FreezerState::Frozen).is_ok();
    for handle in members(manager) {
        match handle.send(signal as i32) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot signal process {}", handle.pid));
            }
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
    let mut backoff = Backoff::new();
    loop {
        if pids(manager).is_empty() {
            return Ok(());
        }
        signal_all(manager, Signal::SIGKILL)?;
        if Instant::now() > deadline {
            anyhow::bail!("processes still running in the container's cgroup after SIGKILL");
        }
        backoff.sleep();
    }
}

/// The pause between checks for what the kernel finishes soon after a kill (a
/// process's exit, a cgroup becoming removable): 0.5 ms at first, doubling up
/// to 10 ms, so that a wait of a millisecond is not a 10 ms sleep (it was most
/// of a `delete --force`).
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_micros(500))
    }

    fn sleep(&mut self) {
        std::thread::sleep(self.0);
        self.0 = (self.0 * 2).min(Duration::from_millis(10));
    }
}

/// Runs `attempt` until it succeeds or `budget` has passed (the last error
/// then), with [`Backoff`] between tries: for what fails only while exiting
/// processes leave, such as a cgroup's rmdir (EBUSY).
pub fn retry_for<T, E>(
    budget: Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + budget;
    let mut backoff = Backoff::new();
    loop {
        match attempt() {
            Err(_) if Instant::now() < deadline => backoff.sleep(),
            done => return done,
        }
    }
}

/// The memory limit in force for a cgroup path (-1 when unlimited or unreadable).
pub fn memory_limit(cgroup_path: &Path) -> i64 {
    host().memory_limit(cgroup_path)
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
    host()
        .roots()
        .into_iter()
        .map(|root| root.join(relative))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// A file of the container's cgroup (its own directory, not its init's:
/// systemd moves itself into init.scope below it).
pub fn read_file(cgroup_path: &Path, file: File) -> Option<String> {
    std::fs::read_to_string(host().file(cgroup_path, file)?).ok()
}

/// Whether the cgroup is frozen or being frozen: what a `pause` asked for,
/// even when the `pause` (or a `kill --all`) was killed before it recorded
/// anything. runc, too, takes "paused" from the cgroup, not its state file.
pub fn is_frozen(cgroup_path: &Path) -> bool {
    read_file(cgroup_path, File::Freezer)
        .is_some_and(|state| matches!(state.trim(), "1" | "FROZEN" | "FREEZING"))
}

/// A number in a one-value cgroup file.
pub fn read_number(cgroup_path: &Path, file: File) -> Option<u64> {
    read_file(cgroup_path, file)?.trim().parse().ok()
}

/// `key` of a flat keyed cgroup file (*.events, oom_control).
pub fn read_keyed(cgroup_path: &Path, file: File, key: &str) -> Option<u64> {
    keyed_value(&read_file(cgroup_path, file)?, key)
}

/// A memory.stat value, bytes (None where this version has no such key).
pub fn memory_stat(cgroup_path: &Path, stat: Stat) -> Option<u64> {
    let key = host().stat_key(stat)?;
    read_keyed(cgroup_path, File::MemoryStat, key)
}

/// Several memory.stat values from one read of the file (it is long on v1,
/// and the kernel adds it up at every read).
pub fn memory_stats<const N: usize>(cgroup_path: &Path, stats: [Stat; N]) -> [Option<u64>; N] {
    let text = read_file(cgroup_path, File::MemoryStat).unwrap_or_default();
    stats.map(|stat| keyed_value(&text, host().stat_key(stat)?))
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
    retry_for(Duration::from_secs(1), || match std::fs::remove_dir(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        done => done,
    })
    .map_err(|err| anyhow::anyhow!("cannot remove cgroup {}: {err}", dir.display()))
}

/// runc's checks of a cgroup that exists before create: a frozen one is
/// refused (the init would hang in it, unkillable, in D state), a non-empty
/// one gets a warning. (A systemd unit's directory is made by systemd at
/// start, so there is nothing to check.)
pub fn check_existing(cgroup_path: &Path, systemd: bool) -> Result<()> {
    if systemd {
        return Ok(());
    }
    if is_frozen(cgroup_path) {
        anyhow::bail!(
            "container's cgroup {} unexpectedly frozen",
            cgroup_path.display()
        );
    }
    // runc looks in one hierarchy on v1 (devices); so does this.
    let procs = read_file(cgroup_path, File::Procs);
    let count = procs.map_or(0, |p| p.lines().filter(|l| !l.is_empty()).count());
    if count > 0 {
        tracing::warn!("container's cgroup is not empty: {count} process(es) found");
    }
    Ok(())
}

/// Creates what libcgroups would race on before a cgroup is created.
pub fn precreate_parents(cgroup_path: &Path, systemd: bool) {
    if !systemd {
        host().precreate_parents(cgroup_path);
    }
}

/// Moves this process into cgroup `/name` of every hierarchy it can (a
/// helper that outlives the caller leaves the caller's cgroup: an engine
/// stops a container's scope, killing what is in it, when the container
/// ends). Best effort: a hierarchy refused keeps the process where it was.
pub fn join_own_cgroup(name: &str) {
    let pid = std::process::id().to_string();
    for root in host().roots() {
        let dir = root.join(name);
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        // v1's cpuset refuses members until it has CPUs and memory nodes.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = dir.join(file);
            if own.exists()
                && std::fs::read_to_string(&own).is_ok_and(|v| v.trim().is_empty())
                && let Ok(parent) = std::fs::read_to_string(root.join(file))
            {
                let _ = std::fs::write(&own, parent.trim());
            }
        }
        let _ = std::fs::write(dir.join("cgroup.procs"), &pid);
    }
}
