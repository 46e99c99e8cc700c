//! cgroup v2: one unified tree, swap limited on its own, limits hit counted in
//! `*.events`, weights and protections as unified files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use oci_spec::runtime::LinuxResources;

use super::{File, Hierarchy, Protection, ROOT, Stat, Version, read_keyed};

pub struct V2;

fn dir(cgroup_path: &Path) -> PathBuf {
    Path::new(ROOT).join(cgroup_path.strip_prefix("/").unwrap_or(cgroup_path))
}

fn read(cgroup_path: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir(cgroup_path).join(name)).ok()
}

fn unified(resources: &mut LinuxResources) -> &mut HashMap<String, String> {
    resources.unified_mut().get_or_insert_with(HashMap::new)
}

/// Whether the root offers the io controller.
fn io_controller() -> bool {
    std::fs::read_to_string(Path::new(ROOT).join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"))
}

impl Hierarchy for V2 {
    fn version(&self) -> Version {
        Version::V2
    }

    fn roots(&self) -> Vec<PathBuf> {
        vec![PathBuf::from(ROOT)]
    }

    fn file(&self, cgroup_path: &Path, file: File) -> Option<PathBuf> {
        let name = match file {
            File::PidsCurrent => "pids.current",
            File::PidsMax => "pids.max",
            File::PidsPeak => "pids.peak",
            File::PidsEvents => "pids.events",
            File::MemoryUsage => "memory.current",
            File::MemoryPeak => "memory.peak",
            File::MemoryStat => "memory.stat",
            File::OomEvents => "memory.events",
            File::SwapPeak => "memory.swap.peak",
            File::CpusetEffective => "cpuset.cpus.effective",
            File::Freezer => "cgroup.freeze",
            File::Procs => "cgroup.procs",
            File::MemoryHigh => "memory.high",
            File::CpuStat => "cpu.stat",
            File::IoStat => "io.stat",
            File::KernelMemoryPeak
            | File::CpuUserPerCpu
            | File::CpuSystemPerCpu
            | File::IoServiceBytes
            | File::IoServiced => return None,
        };
        Some(dir(cgroup_path).join(name))
    }

    fn stat_key(&self, stat: Stat) -> Option<&'static str> {
        Some(match stat {
            Stat::Cache => "file",
            Stat::Shmem => "shmem",
            Stat::Unevictable => "unevictable",
            Stat::Kernel => "kernel",
            Stat::SlabReclaimable => "slab_reclaimable",
            Stat::Sock => "sock",
        })
    }

    fn cgroup_of(&self, pid: i32) -> Option<PathBuf> {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(PathBuf::from))
    }

    fn memory_limit(&self, cgroup_path: &Path) -> i64 {
        // "max" does not parse: unlimited.
        read(cgroup_path, "memory.max")
            .and_then(|m| m.trim().parse::<i64>().ok())
            .unwrap_or(-1)
    }

    fn swap_limit(&self, cgroup_path: &Path) -> Option<u64> {
        read(cgroup_path, "memory.swap.max")?.trim().parse().ok()
    }

    fn swap_usage(&self, cgroup_path: &Path) -> Option<u64> {
        read(cgroup_path, "memory.swap.current")?
            .trim()
            .parse()
            .ok()
    }

    fn kernel_memory(&self, cgroup_path: &Path) -> Option<u64> {
        super::memory_stat(cgroup_path, Stat::Kernel)
    }

    fn memory_failcnt(&self, cgroup_path: &Path) -> Option<u64> {
        read_keyed(cgroup_path, File::OomEvents, "max")
    }

    fn swap_failcnt(&self, cgroup_path: &Path) -> Option<u64> {
        super::keyed_value(&read(cgroup_path, "memory.swap.events")?, "max")
    }

    fn kernel_memory_failcnt(&self, _cgroup_path: &Path) -> Option<u64> {
        None
    }

    fn cpu_quota_cpus(&self, cgroup_path: &Path) -> Option<u64> {
        let max = read(cgroup_path, "cpu.max")?;
        let mut fields = max.split_whitespace();
        let quota: u64 = fields.next()?.parse().ok()?;
        let period: u64 = fields.next()?.parse().ok()?;
        Some(quota.div_ceil(period))
    }

    fn write_cfs(
        &self,
        _cgroup_path: &Path,
        _period: Option<u64>,
        _quota: Option<i64>,
    ) -> Result<bool> {
        // cpu.max takes both at once: libcgroups writes it.
        Ok(false)
    }

    /// libcgroups creates each missing level with a plain mkdir after checking
    /// it is absent, so two containers made at once under a new parent race and
    /// one fails with EEXIST: the parents are made beforehand.
    fn precreate_parents(&self, cgroup_path: &Path) {
        let relative = cgroup_path.to_string_lossy();
        if let Some(parent) = Path::new(relative.trim_start_matches('/')).parent()
            && !parent.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(Path::new(ROOT).join(parent));
        }
    }

    fn set_cpu_units(&self, resources: &mut LinuxResources, units: u64) {
        // OpenVZ's v2 mapping keeps the ratios of cpuunits exactly (1000 →
        // 100); the shares→weight conversion libcgroups applies would not.
        unified(resources).insert(
            "cpu.weight".into(),
            (units / 10).clamp(1, 10_000).to_string(),
        );
    }

    fn set_io_weight(&self, resources: &mut LinuxResources, weight: u16) {
        // Written as is (io.weight takes 1…10000): libcgroups 0.7 converts a
        // blockIO weight for io.weight in u16 arithmetic, which overflows.
        unified(resources).insert("io.weight".into(), format!("default {weight}"));
    }

    fn set_memory_protection(
        &self,
        resources: &mut LinuxResources,
        bytes: i64,
        hard: bool,
    ) -> Protection {
        let file = if hard { "memory.min" } else { "memory.low" };
        unified(resources).insert(file.into(), bytes.to_string());
        Protection::Set
    }

    fn io_weight_support(&self) -> std::result::Result<&'static str, String> {
        if io_controller() {
            Ok("cgroup io.weight")
        } else {
            Err("the io controller is not available".to_string())
        }
    }

    fn io_throttle_support(&self) -> std::result::Result<&'static str, String> {
        if io_controller() {
            Ok("cgroup io.max")
        } else {
            Err("the io controller is not available".to_string())
        }
    }

    fn takes_unified(&self) -> bool {
        true
    }

    fn named_systemd_root(&self) -> Option<PathBuf> {
        None
    }

    fn exec_joins_init_cgroup(&self) -> bool {
        true
    }
}
