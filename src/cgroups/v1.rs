//! cgroup v1: one hierarchy per controller under /sys/fs/cgroup (plus the
//! named `systemd` one), memory+swap limited together, CFS files of their own.

use std::path::{Path, PathBuf};

use anyhow::Result;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{File, Hierarchy, Protection, ROOT, Stat, Version};

pub struct V1;

/// The directory of `cgroup_path` in `controller`'s hierarchy.
fn dir(controller: &str, cgroup_path: &Path) -> PathBuf {
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    Path::new(ROOT).join(controller).join(relative)
}

fn number(path: PathBuf) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn memory(cgroup_path: &Path, file: &str) -> Option<u64> {
    number(dir("memory", cgroup_path).join(file))
}

impl Hierarchy for V1 {
    fn version(&self) -> Version {
        Version::V1
    }

    fn roots(&self) -> Vec<PathBuf> {
        std::fs::read_dir(ROOT)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    fn file(&self, cgroup_path: &Path, file: File) -> Option<PathBuf> {
        let (controller, name) = match file {
            File::PidsCurrent => ("pids", "pids.current"),
            File::PidsMax => ("pids", "pids.max"),
            File::PidsEvents => ("pids", "pids.events"),
            File::MemoryUsage => ("memory", "memory.usage_in_bytes"),
            File::MemoryPeak => ("memory", "memory.max_usage_in_bytes"),
            File::MemoryStat => ("memory", "memory.stat"),
            File::OomEvents => ("memory", "memory.oom_control"),
            File::KernelMemoryPeak => ("memory", "memory.kmem.max_usage_in_bytes"),
            File::CpusetEffective => ("cpuset", "cpuset.effective_cpus"),
            File::Freezer => ("freezer", "freezer.state"),
            // runc looks in one hierarchy (devices); so does runvz.
            File::Procs => ("devices", "cgroup.procs"),
            File::CpuUserPerCpu => ("cpuacct", "cpuacct.usage_percpu_user"),
            File::CpuSystemPerCpu => ("cpuacct", "cpuacct.usage_percpu_sys"),
            File::IoServiceBytes => ("blkio", "blkio.throttle.io_service_bytes"),
            File::IoServiced => ("blkio", "blkio.throttle.io_serviced"),
            File::MemoryHigh | File::CpuStat | File::IoStat => return None,
            File::PidsPeak | File::SwapPeak => return None,
        };
        Some(dir(controller, cgroup_path).join(name))
    }

    fn stat_key(&self, stat: Stat) -> Option<&'static str> {
        match stat {
            Stat::Cache => Some("total_cache"),
            Stat::Shmem => Some("total_shmem"),
            Stat::Unevictable => Some("total_unevictable"),
            Stat::Kernel | Stat::SlabReclaimable | Stat::Sock => None,
        }
    }

    fn cgroup_of(&self, pid: i32) -> Option<PathBuf> {
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        own.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| PathBuf::from(path))
        })
    }

    fn memory_limit(&self, cgroup_path: &Path) -> i64 {
        // v1 shows "unlimited" as LONG_MAX rounded down to a page.
        match memory(cgroup_path, "memory.limit_in_bytes") {
            Some(limit) if limit < (i64::MAX - 4096) as u64 => limit as i64,
            _ => -1,
        }
    }

    fn swap_limit(&self, cgroup_path: &Path) -> Option<u64> {
        let memsw = memory(cgroup_path, "memory.memsw.limit_in_bytes")?;
        let memory = u64::try_from(self.memory_limit(cgroup_path)).ok()?;
        Some(memsw.saturating_sub(memory))
    }

    fn swap_usage(&self, cgroup_path: &Path) -> Option<u64> {
        let memsw = memory(cgroup_path, "memory.memsw.usage_in_bytes")?;
        let memory = memory(cgroup_path, "memory.usage_in_bytes")?;
        Some(memsw.saturating_sub(memory))
    }

    fn kernel_memory(&self, cgroup_path: &Path) -> Option<u64> {
        memory(cgroup_path, "memory.kmem.usage_in_bytes")
    }

    fn memory_failcnt(&self, cgroup_path: &Path) -> Option<u64> {
        memory(cgroup_path, "memory.failcnt")
    }

    fn swap_failcnt(&self, cgroup_path: &Path) -> Option<u64> {
        memory(cgroup_path, "memory.memsw.failcnt")
    }

    fn kernel_memory_failcnt(&self, cgroup_path: &Path) -> Option<u64> {
        memory(cgroup_path, "memory.kmem.failcnt")
    }

    fn cpu_quota_cpus(&self, cgroup_path: &Path) -> Option<u64> {
        let cpu = dir("cpu", cgroup_path);
        let quota = std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
            .ok()?
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|&q| q > 0)?;
        let period = number(cpu.join("cpu.cfs_period_us"))?;
        Some((quota as u64).div_ceil(period))
    }

    /// The CFS period, then the quota, as runc writes them: a new period
    /// smaller than the old one can be refused (EINVAL) because the old quota
    /// over the new period exceeds the parent's (a Kubernetes pod's) ratio;
    /// then the quota goes first and the period after it.
    fn write_cfs(
        &self,
        cgroup_path: &Path,
        period: Option<u64>,
        quota: Option<i64>,
    ) -> Result<bool> {
        let dir = dir("cpu", cgroup_path);
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
        Ok(true)
    }

    fn precreate_parents(&self, _cgroup_path: &Path) {}

    fn set_cpu_units(&self, resources: &mut LinuxResources, units: u64) {
        let cpu = resources.cpu_mut().get_or_insert_with(LinuxCpu::default);
        cpu.set_shares(Some(units * 1024 / 1000));
    }

    fn set_io_weight(&self, resources: &mut LinuxResources, weight: u16) {
        let io = resources
            .block_io_mut()
            .get_or_insert_with(LinuxBlockIo::default);
        io.set_weight(Some(weight));
    }

    fn set_memory_protection(
        &self,
        resources: &mut LinuxResources,
        bytes: i64,
        hard: bool,
    ) -> Protection {
        // v1 has no memory.min; the soft limit protects from reclaim, unless
        // one is set already.
        if hard || resources.memory().and_then(|m| m.reservation()).is_some() {
            return Protection::Unsupported;
        }
        let memory = resources
            .memory_mut()
            .get_or_insert_with(LinuxMemory::default);
        memory.set_reservation(Some(bytes));
        Protection::Fallback
    }

    fn io_weight_support(&self) -> std::result::Result<&'static str, String> {
        let blkio = Path::new(ROOT).join("blkio");
        if blkio.join("blkio.weight").exists() {
            Ok("cgroup blkio.weight")
        } else if blkio.join("blkio.bfq.weight").exists() {
            Ok("cgroup blkio.bfq.weight")
        } else if blkio.exists() {
            Err(
                "the disks' I/O schedulers take no blkio weight (neither CFQ nor BFQ is in use)"
                    .to_string(),
            )
        } else {
            Err("the blkio controller is not mounted".to_string())
        }
    }

    fn io_throttle_support(&self) -> std::result::Result<&'static str, String> {
        if Path::new(ROOT)
            .join("blkio/blkio.throttle.read_bps_device")
            .exists()
        {
            Ok("cgroup blkio.throttle")
        } else {
            Err("the blkio controller has no throttling".to_string())
        }
    }

    fn takes_unified(&self) -> bool {
        false
    }

    fn named_systemd_root(&self) -> Option<PathBuf> {
        let root = Path::new(ROOT).join("systemd");
        root.join("cgroup.procs").exists().then_some(root)
    }

    fn exec_joins_init_cgroup(&self) -> bool {
        false
    }
}
