//! Beancounters the OCI spec can carry: `plan` works out, from the settings and
//! the parameter table, the cgroup resources, rlimits, mount options and
//! sysctls they ask for; `apply` writes that plan into a container's spec before
//! it is built, and `live` applies the same plan to a running container.

use std::collections::HashMap;

use anyhow::{Result, bail};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNamespaceType, LinuxPids, LinuxResources,
    LinuxThrottleDevice, LinuxThrottleDeviceBuilder, Mount, PosixRlimit, PosixRlimitBuilder, Spec,
};

use super::params::{
    ALL, Enforcement, Knob, MountBound, PAGE_SIZE, Param, Rlimit, UNLIMITED, Unit,
};
use super::settings::{Bound, Settings};
use crate::cgroups::Protection;

/// What the settings ask of the kernel, in the OCI spec's terms. Only what the
/// settings set is in it, so it can be laid over a spec or a running container.
#[derive(Debug, Default)]
pub struct Plan {
    pub resources: LinuxResources,
    /// memory.reservation came from vmguarpages on v1: a config's own wins.
    reservation_is_fallback: bool,
    /// (parameter, rlimit, soft, hard), u64::MAX for unlimited.
    pub rlimits: Vec<(Param, Rlimit, u64, u64)>,
    /// A bounded filesystem and its bound (devpts: ptys, shm: bytes).
    pub mounts: Vec<(MountBound, u64)>,
    /// Per-IPC-namespace sysctls (applied only where the container has its own).
    pub ipc_sysctls: Vec<(&'static str, String)>,
}

/// Works out the plan; `where_` names the file (or `update`) for errors.
pub fn plan(settings: &Settings, where_: &str) -> Result<Plan> {
    let mut plan = Plan::default();
    for param in ALL {
        if let Some(bound) = settings.ubc.get(&param) {
            plan_param(&mut plan, settings, param, *bound, where_)?;
        }
    }
    plan_knobs(&mut plan, settings);
    Ok(plan)
}

fn limited(b: &Bound) -> bool {
    b.limit != UNLIMITED
}

/// Pages (or bytes) as the byte count a cgroup file takes.
fn cgroup_bytes(value: u64, param: Param, where_: &str) -> Result<i64> {
    let bytes = match param.unit() {
        Unit::Pages => value.checked_mul(PAGE_SIZE),
        _ => Some(value),
    };
    match bytes.and_then(|b| i64::try_from(b).ok()) {
        Some(b) => Ok(b),
        None => bail!(
            "{where_}: {}: {value} is too large for a cgroup limit",
            param.annotation()
        ),
    }
}

fn plan_param(
    plan: &mut Plan,
    settings: &Settings,
    param: Param,
    b: Bound,
    where_: &str,
) -> Result<()> {
    let bytes = |v: u64| cgroup_bytes(v, param, where_);
    match param.describe().enforcement {
        Enforcement::Rlimit(rlimit) => {
            let (soft, hard) = match param.unit() {
                Unit::Pages => (
                    b.barrier.saturating_mul(PAGE_SIZE),
                    b.limit.saturating_mul(PAGE_SIZE),
                ),
                _ => (b.barrier, b.limit),
            };
            let (soft, hard) = (rlimit_value(soft), rlimit_value(hard));
            check_rlimit(rlimit, hard, param, where_)?;
            plan.rlimits.push((param, rlimit, soft, hard));
        }
        Enforcement::Mount(mount) if limited(&b) => {
            let value = match mount {
                MountBound::Devpts => b.limit,
                MountBound::Shm => bytes(b.limit)? as u64,
            };
            plan.mounts.push((mount, value));
            if mount == MountBound::Shm {
                // System V shared memory too (per IPC namespace).
                plan.ipc_sysctls
                    .push(("kernel.shmall", b.limit.to_string()));
                plan.ipc_sysctls.push(("kernel.shmmax", value.to_string()));
            }
        }
        Enforcement::Mount(_) | Enforcement::None => {}
        Enforcement::Cgroup(_) => plan_cgroup_param(plan, settings, param, b, where_)?,
    }
    Ok(())
}

/// The cgroup-backed parameters: pids and the memory controller.
fn plan_cgroup_param(
    plan: &mut Plan,
    settings: &Settings,
    param: Param,
    b: Bound,
    where_: &str,
) -> Result<()> {
    let bytes = |v: u64| cgroup_bytes(v, param, where_);
    let cgroups = crate::cgroups::host();
    let r = &mut plan.resources;
    match param {
        Param::Numproc if limited(&b) => {
            let mut pids = LinuxPids::default();
            pids.set_limit(b.limit as i64);
            r.set_pids(Some(pids));
        }
        Param::Physpages => {
            if limited(&b) {
                memory(r).set_limit(Some(bytes(b.limit)?));
            }
            if b.barrier > 0 && b.barrier < b.limit {
                memory(r).set_reservation(Some(bytes(b.barrier)?));
            }
        }
        // Guarantees: vmguarpages is protected from reclaim, oomguarpages even
        // from the OOM killer's reclaim (memory.min exists on v2 only).
        // Only the barrier counts (OpenVZ leaves their limit unused, usually
        // "unlimited").
        Param::Vmguarpages | Param::Oomguarpages if b.barrier > 0 && b.barrier != UNLIMITED => {
            let hard = param == Param::Oomguarpages;
            if cgroups.set_memory_protection(r, bytes(b.barrier)?, hard) == Protection::Fallback {
                plan.reservation_is_fallback = true;
            }
        }
        Param::Swappages if limited(&b) => {
            // OCI's memory.swap is memory + swap, so it needs a memory limit.
            let Some(phys) = settings.ubc.get(&Param::Physpages).filter(|p| limited(p)) else {
                bail!("{where_}: runvz.ubc.swappages: needs runvz.ubc.physpages with a limit");
            };
            let total = bytes(phys.limit.saturating_add(b.limit))?;
            memory(r).set_swap(Some(total));
        }
        _ => {}
    }
    Ok(())
}

/// The CPU and I/O knobs.
fn plan_knobs(plan: &mut Plan, settings: &Settings) {
    let r = &mut plan.resources;
    let cgroups = crate::cgroups::host();
    if let Some(units) = settings.knob(Knob::Cpuunits) {
        cgroups.set_cpu_units(r, units);
    }
    if let Some(percent) = settings.knob(Knob::Cpulimit).filter(|p| *p > 0) {
        cpu(r).set_period(Some(100_000));
        cpu(r).set_quota(Some(percent as i64 * 1000));
    }
    if let Some(prio) = settings.knob(Knob::Ioprio)
        && super::io::weight_support().is_ok()
    {
        cgroups.set_io_weight(r, super::io::IOPRIO_WEIGHTS[prio as usize]);
    }
    let throttle = |rate: u64| -> Vec<LinuxThrottleDevice> {
        super::io::disks()
            .into_iter()
            .map(|(major, minor, _)| {
                LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(rate)
                    .build()
                    .expect("every field is set")
            })
            .collect()
    };
    let rate = |knob| settings.knob(knob).filter(|r| *r > 0 && *r != UNLIMITED);
    if let Some(devices) = rate(Knob::Iolimit).map(throttle).filter(|d| !d.is_empty()) {
        block_io(r).set_throttle_read_bps_device(Some(devices.clone()));
        block_io(r).set_throttle_write_bps_device(Some(devices));
    }
    if let Some(devices) = rate(Knob::Iopslimit)
        .map(throttle)
        .filter(|d| !d.is_empty())
    {
        block_io(r).set_throttle_read_iops_device(Some(devices.clone()));
        block_io(r).set_throttle_write_iops_device(Some(devices));
    }
    if let Some(cpus) = settings.knob(Knob::Cpus) {
        let online = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let n = cpus.min(online);
        cpu(r).set_cpus(Some(if n == 1 {
            "0".to_string()
        } else {
            format!("0-{}", n - 1)
        }));
    }
}

fn unified(r: &mut LinuxResources) -> &mut HashMap<String, String> {
    r.unified_mut().get_or_insert_with(HashMap::new)
}

fn memory(r: &mut LinuxResources) -> &mut LinuxMemory {
    r.memory_mut().get_or_insert_with(LinuxMemory::default)
}

fn cpu(r: &mut LinuxResources) -> &mut LinuxCpu {
    r.cpu_mut().get_or_insert_with(LinuxCpu::default)
}

fn block_io(r: &mut LinuxResources) -> &mut LinuxBlockIo {
    r.block_io_mut().get_or_insert_with(LinuxBlockIo::default)
}

/// OpenVZ's unlimited is the kernel's RLIM_INFINITY.
fn rlimit_value(v: u64) -> u64 {
    if v == UNLIMITED { u64::MAX } else { v }
}

/// Writes the settings into the spec (a config without them is left as is).
pub fn apply(settings: &Settings, spec: &mut Spec, where_: &str) -> Result<()> {
    let plan = plan(settings, where_)?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources = linux.resources().clone().unwrap_or_default();
    overlay(&mut resources, &plan);
    linux.set_resources(Some(resources));
    let own_ipc = linux.namespaces().as_ref().is_some_and(|ns| {
        ns.iter()
            .any(|n| n.typ() == LinuxNamespaceType::Ipc && n.path().is_none())
    });
    if own_ipc && !plan.ipc_sysctls.is_empty() {
        let sysctl = linux.sysctl_mut().get_or_insert_with(HashMap::new);
        for (key, value) in &plan.ipc_sysctls {
            sysctl.insert(key.to_string(), value.clone());
        }
    }
    spec.set_linux(Some(linux));

    if !plan.rlimits.is_empty() {
        let mut process = spec.process().clone().unwrap_or_default();
        let mut rlimits = process.rlimits().clone().unwrap_or_default();
        for (_, rlimit, soft, hard) in &plan.rlimits {
            rlimits.retain(|r| r.typ() != rlimit.oci());
            rlimits.push(rlimit_entry(*rlimit, *soft, *hard));
        }
        process.set_rlimits(Some(rlimits));
        spec.set_process(Some(process));
    }
    for (mount, value) in &plan.mounts {
        set_mount_option(spec, *mount, *value);
    }
    Ok(())
}

/// An rlimit as the spec's `process.rlimits` carries it.
pub fn rlimit_entry(rlimit: Rlimit, soft: u64, hard: u64) -> PosixRlimit {
    PosixRlimitBuilder::default()
        .typ(rlimit.oci())
        .soft(soft)
        .hard(hard)
        .build()
        .expect("every field is set")
}

/// Lays the plan's resources over a config's: each value the plan sets
/// replaces the config's, everything else stays.
fn overlay(base: &mut LinuxResources, plan: &Plan) {
    let top = &plan.resources;
    if top.pids().is_some() {
        base.set_pids(*top.pids());
    }
    if let Some(m) = top.memory() {
        let memory = memory(base);
        if m.limit().is_some() {
            memory.set_limit(m.limit());
        }
        if m.reservation().is_some()
            && !(plan.reservation_is_fallback && memory.reservation().is_some())
        {
            memory.set_reservation(m.reservation());
        }
        if m.swap().is_some() {
            memory.set_swap(m.swap());
        }
    }
    if let Some(c) = top.cpu() {
        let cpu = cpu(base);
        if c.shares().is_some() {
            cpu.set_shares(c.shares());
        }
        if c.period().is_some() {
            cpu.set_period(c.period());
        }
        if c.quota().is_some() {
            cpu.set_quota(c.quota());
        }
        if c.cpus().is_some() {
            cpu.set_cpus(c.cpus().clone());
        }
    }
    if let Some(io) = top.block_io() {
        let block = block_io(base);
        if io.weight().is_some() {
            block.set_weight(io.weight());
        }
        for (get, set) in THROTTLES {
            if get(io).is_some() {
                set(block, get(io).clone());
            }
        }
    }
    if let Some(u) = top.unified() {
        unified(base).extend(u.clone());
    }
}

type ThrottleGet = fn(&LinuxBlockIo) -> &Option<Vec<LinuxThrottleDevice>>;
type ThrottleSet = fn(&mut LinuxBlockIo, Option<Vec<LinuxThrottleDevice>>) -> &mut LinuxBlockIo;
const THROTTLES: [(ThrottleGet, ThrottleSet); 4] = [
    (
        LinuxBlockIo::throttle_read_bps_device,
        LinuxBlockIo::set_throttle_read_bps_device,
    ),
    (
        LinuxBlockIo::throttle_write_bps_device,
        LinuxBlockIo::set_throttle_write_bps_device,
    ),
    (
        LinuxBlockIo::throttle_read_iops_device,
        LinuxBlockIo::set_throttle_read_iops_device,
    ),
    (
        LinuxBlockIo::throttle_write_iops_device,
        LinuxBlockIo::set_throttle_write_iops_device,
    ),
];

/// The mount option that carries a filesystem's bound.
pub fn mount_option(mount: MountBound, value: u64) -> String {
    match mount {
        MountBound::Devpts => format!("max={value}"),
        MountBound::Shm => format!("size={value}"),
    }
}

/// Sets the bound's option on its mount; /dev/shm is added when the spec has
/// none (a config without /dev/pts has no ptys to bound).
fn set_mount_option(spec: &mut Spec, bound: MountBound, value: u64) {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let destination = std::path::Path::new(bound.destination());
    let index = match mounts.iter().position(|m| m.destination() == destination) {
        Some(i) => i,
        None if bound == MountBound::Shm => {
            let mut shm = Mount::default();
            shm.set_destination(destination.into())
                .set_typ(Some("tmpfs".into()))
                .set_source(Some("shm".into()))
                .set_options(Some(
                    ["nosuid", "noexec", "nodev", "mode=1777"]
                        .map(String::from)
                        .to_vec(),
                ));
            mounts.push(shm);
            mounts.len() - 1
        }
        None => return,
    };
    let option = mount_option(bound, value);
    let key = option.split('=').next().unwrap_or_default().to_string() + "=";
    let mut options = mounts[index].options().clone().unwrap_or_default();
    options.retain(|o| !o.starts_with(&key));
    options.push(option);
    mounts[index].set_options(Some(options));
    spec.set_mounts(Some(mounts));
}

/// An rlimit the container's processes get. Root here may lack CAP_SYS_RESOURCE,
/// so a hard limit above runvz's own is refused now, with the reason, rather than
/// by a failing setrlimit deep inside the container's init.
fn check_rlimit(rlimit: Rlimit, hard: u64, param: Param, where_: &str) -> Result<()> {
    let shown = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    if rlimit == Rlimit::Nofile
        && let Some(nr_open) = nr_open()
        && hard > nr_open
    {
        bail!(
            "{where_}: {}: limit {} is above the kernel's largest RLIMIT_NOFILE (fs.nr_open = {nr_open})",
            param.annotation(),
            shown(hard),
        );
    }
    let host_hard = host_hard_limit(rlimit);
    if hard > host_hard && !has_cap_sys_resource() {
        bail!(
            "{where_}: {}: limit {} is above this host's hard {} of {} and runvz may not raise it (no CAP_SYS_RESOURCE)",
            param.annotation(),
            shown(hard),
            rlimit.name(),
            shown(host_hard)
        );
    }
    Ok(())
}

fn host_hard_limit(rlimit: Rlimit) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(rlimit.resource(), &mut rl) } != 0 {
        return u64::MAX;
    }
    rl.rlim_max
}

/// The kernel's ceiling for RLIMIT_NOFILE, which even CAP_SYS_RESOURCE cannot pass.
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn has_cap_sys_resource() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::HashMap;

    fn applied(pairs: &[(&str, &str)]) -> Result<Value> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let settings = Settings::from_annotations(&map, "config.json")?;
        let mut spec: Spec = serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
                        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]},
            "mounts": [{"destination": "/dev/pts", "type": "devpts", "options": ["newinstance", "ptmxmode=0666"]}],
            "linux": {}
        }))?;
        apply(&settings, &mut spec, "config.json")?;
        Ok(serde_json::to_value(&spec)?)
    }

    #[test]
    fn maps_onto_resources_rlimits_and_mounts() {
        let spec = applied(&[
            ("runvz.ubc.numproc", "100"),
            ("runvz.ubc.physpages", "0:256M"),
            ("runvz.ubc.swappages", "0:128M"),
            ("runvz.ubc.numfile", "512:600"),
            ("runvz.ubc.numpty", "4"),
            ("runvz.ubc.shmpages", "1M"),
            ("runvz.cpuunits", "2000"),
            ("runvz.cpulimit", "50"),
        ])
        .unwrap();
        let r = &spec["linux"]["resources"];
        assert_eq!(r["pids"]["limit"], 100);
        assert_eq!(r["memory"]["limit"], 256 << 20);
        assert_eq!(r["memory"]["swap"], (256 + 128) << 20);
        if crate::cgroups::version() == crate::cgroups::Version::V2 {
            assert_eq!(r["unified"]["cpu.weight"], "200");
        } else {
            assert_eq!(r["cpu"]["shares"], 2048);
        }
        assert_eq!(r["cpu"]["quota"], 50_000);
        let rl = spec["process"]["rlimits"].as_array().unwrap();
        assert_eq!(rl.len(), 1);
        assert_eq!(
            rl[0],
            json!({"type": "RLIMIT_NOFILE", "soft": 512, "hard": 600})
        );
        let pts = &spec["mounts"][0]["options"];
        assert!(pts.as_array().unwrap().contains(&json!("max=4")));
        let shm = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert!(
            shm["options"]
                .as_array()
                .unwrap()
                .contains(&json!("size=1048576"))
        );
    }

    #[test]
    fn a_configs_own_resources_stay_unless_a_beancounter_sets_them() {
        let map: HashMap<String, String> = [("runvz.ubc.numproc".into(), "50".into())].into();
        let settings = Settings::from_annotations(&map, "config.json").unwrap();
        let mut spec: Spec = serde_json::from_value(json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "linux": {"resources": {"memory": {"limit": 1048576}, "pids": {"limit": 10}}}
        }))
        .unwrap();
        apply(&settings, &mut spec, "config.json").unwrap();
        let r = serde_json::to_value(spec.linux().as_ref().unwrap().resources()).unwrap();
        assert_eq!(r["memory"]["limit"], 1048576);
        assert_eq!(r["pids"]["limit"], 50);
    }

    #[test]
    fn guarantees_take_their_barrier_whatever_the_limit() {
        let spec = applied(&[("runvz.ubc.vmguarpages", "256:unlimited")]).unwrap();
        let r = &spec["linux"]["resources"];
        match crate::cgroups::version() {
            crate::cgroups::Version::V1 => assert_eq!(r["memory"]["reservation"], 256 * 4096),
            crate::cgroups::Version::V2 => assert_eq!(r["unified"]["memory.low"], "1048576"),
        }
    }

    #[test]
    fn swap_needs_a_memory_limit() {
        let err = applied(&[("runvz.ubc.swappages", "100")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs runvz.ubc.physpages"), "{err}");
    }
}
