//! Beancounters the OCI spec can carry, written into it before the container is
//! built: cgroup resources (numproc, physpages, swappages, cpuunits, cpulimit,
//! cpus), rlimits (numfile, lockedpages, numsiginfo, privvmpages) and mount
//! options (numpty: devpts `max=`, shmpages: /dev/shm `size=`).

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::params::{PAGE_SIZE, Param, UNLIMITED};
use super::settings::{Bound, Settings};

/// How a parameter is enforced on this kernel, for reports and `features`.
pub fn mechanism(param: Param) -> Option<&'static str> {
    Some(match param {
        Param::Numproc => "cgroup pids.max",
        Param::Physpages => "cgroup memory limit (barrier: soft limit / memory.low)",
        Param::Swappages => "cgroup memory+swap limit",
        Param::Numfile => "RLIMIT_NOFILE",
        Param::Lockedpages => "RLIMIT_MEMLOCK",
        Param::Numsiginfo => "RLIMIT_SIGPENDING",
        Param::Privvmpages => "RLIMIT_AS",
        Param::Numpty => "devpts max=",
        Param::Shmpages => "/dev/shm size= and kernel.shmall/shmmax (IPC namespace)",
        Param::Vmguarpages if crate::cgroups::is_v2() => "cgroup memory.low (barrier)",
        Param::Vmguarpages => "cgroup memory soft limit (barrier, unless physpages sets one)",
        Param::Oomguarpages if crate::cgroups::is_v2() => "cgroup memory.min (barrier)",
        _ => return None,
    })
}

/// Writes the settings into the spec (as JSON, the form config.json has).
pub fn apply(settings: &Settings, spec: &mut Value, where_: &str) -> Result<()> {
    let ubc = &settings.ubc;
    let bytes = |pages: u64| pages.saturating_mul(PAGE_SIZE);
    let limited = |b: &Bound| b.limit != UNLIMITED;

    if let Some(b) = ubc.get(&Param::Numproc).filter(|b| limited(b)) {
        resources(spec)["pids"] = json!({"limit": b.limit});
    }
    if let Some(b) = ubc.get(&Param::Physpages) {
        let memory = &mut resources(spec)["memory"];
        if limited(b) {
            memory["limit"] = json!(bytes(b.limit));
        }
        if b.barrier > 0 && b.barrier < b.limit {
            memory["reservation"] = json!(bytes(b.barrier));
        }
    }
    // Guarantees: vmguarpages is protected from reclaim, oomguarpages even
    // from the OOM killer's reclaim (memory.min exists on v2 only).
    if let Some(b) = ubc
        .get(&Param::Vmguarpages)
        .filter(|b| b.barrier > 0 && limited(b))
    {
        if crate::cgroups::is_v2() {
            unified(spec)["memory.low"] = json!(bytes(b.barrier).to_string());
        } else if resources(spec)["memory"]["reservation"].is_null() {
            resources(spec)["memory"]["reservation"] = json!(bytes(b.barrier));
        }
    }
    if let Some(b) = ubc
        .get(&Param::Oomguarpages)
        .filter(|b| b.barrier > 0 && limited(b))
        && crate::cgroups::is_v2()
    {
        unified(spec)["memory.min"] = json!(bytes(b.barrier).to_string());
    }
    if let Some(b) = ubc.get(&Param::Swappages).filter(|b| limited(b)) {
        // OCI's memory.swap is memory + swap, so it needs a memory limit.
        let Some(phys) = ubc.get(&Param::Physpages).filter(|p| limited(p)) else {
            bail!("{where_}: runvz.ubc.swappages: needs runvz.ubc.physpages with a limit");
        };
        resources(spec)["memory"]["swap"] = json!(bytes(phys.limit.saturating_add(b.limit)));
    }
    for (param, resource) in [
        (Param::Numfile, "RLIMIT_NOFILE"),
        (Param::Lockedpages, "RLIMIT_MEMLOCK"),
        (Param::Numsiginfo, "RLIMIT_SIGPENDING"),
        (Param::Privvmpages, "RLIMIT_AS"),
    ] {
        if let Some(b) = ubc.get(&param) {
            let (soft, hard) = match param {
                Param::Lockedpages | Param::Privvmpages => (bytes(b.barrier), bytes(b.limit)),
                _ => (b.barrier, b.limit),
            };
            set_rlimit(spec, resource, soft, hard, param, where_)?;
        }
    }
    if let Some(b) = ubc.get(&Param::Numpty).filter(|b| limited(b)) {
        set_mount_option(spec, "/dev/pts", "max", &b.limit.to_string(), None);
    }
    if let Some(b) = ubc.get(&Param::Shmpages).filter(|b| limited(b)) {
        let shm = json!({
            "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777"]
        });
        set_mount_option(
            spec,
            "/dev/shm",
            "size",
            &bytes(b.limit).to_string(),
            Some(shm),
        );
        // System V shared memory too, where the container has its own IPC
        // namespace (the sysctls are per namespace there).
        if has_own_ipc_namespace(spec) {
            let sysctl = &mut spec["linux"]["sysctl"];
            if !sysctl.is_object() {
                *sysctl = json!({});
            }
            sysctl["kernel.shmall"] = json!(b.limit.to_string());
            sysctl["kernel.shmmax"] = json!(bytes(b.limit).to_string());
        }
    }

    if let Some(units) = settings.cpuunits {
        if crate::cgroups::is_v2() {
            // OpenVZ's v2 mapping keeps the ratios of cpuunits exactly (1000 →
            // 100); the shares→weight conversion libcgroups applies would not.
            unified(spec)["cpu.weight"] = json!((units / 10).clamp(1, 10_000).to_string());
        } else {
            resources(spec)["cpu"]["shares"] = json!(units * 1024 / 1000);
        }
    }
    if let Some(percent) = settings.cpulimit.filter(|p| *p > 0) {
        resources(spec)["cpu"]["period"] = json!(100_000);
        resources(spec)["cpu"]["quota"] = json!(percent * 1000);
    }
    if let Some(prio) = settings.ioprio
        && super::io::weight_support().is_ok()
    {
        let weight = super::io::IOPRIO_WEIGHTS[prio as usize];
        if crate::cgroups::is_v2() {
            // Written as is (io.weight takes 1…10000): libcgroups 0.7 converts a
            // blockIO weight for io.weight in u16 arithmetic, which overflows.
            unified(spec)["io.weight"] = json!(format!("default {weight}"));
        } else {
            resources(spec)["blockIO"]["weight"] = json!(weight);
        }
    }
    for (value, read, write) in [
        (
            settings.iolimit,
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
        ),
        (
            settings.iopslimit,
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ),
    ] {
        let Some(rate) = value.filter(|r| *r > 0 && *r != UNLIMITED) else {
            continue;
        };
        let devices: Vec<Value> = super::io::disks()
            .into_iter()
            .map(|(major, minor, _)| json!({"major": major, "minor": minor, "rate": rate}))
            .collect();
        if !devices.is_empty() {
            resources(spec)["blockIO"][read] = json!(devices);
            resources(spec)["blockIO"][write] = json!(devices);
        }
    }
    if let Some(cpus) = settings.cpus {
        let online = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let n = cpus.min(online);
        resources(spec)["cpu"]["cpus"] = json!(if n == 1 {
            "0".to_string()
        } else {
            format!("0-{}", n - 1)
        });
    }
    Ok(())
}

fn has_own_ipc_namespace(spec: &Value) -> bool {
    spec["linux"]["namespaces"]
        .as_array()
        .is_some_and(|ns| ns.iter().any(|n| n["type"] == "ipc" && n["path"].is_null()))
}

fn unified(spec: &mut Value) -> &mut Value {
    let resources = resources(spec);
    if !resources["unified"].is_object() {
        resources["unified"] = json!({});
    }
    &mut resources["unified"]
}

fn resources(spec: &mut Value) -> &mut Value {
    let linux = &mut spec["linux"];
    if !linux["resources"].is_object() {
        linux["resources"] = json!({});
    }
    &mut linux["resources"]
}

/// An rlimit the container's processes get. Root here may lack CAP_SYS_RESOURCE,
/// so a hard limit above runvz's own is refused now, with the reason, rather than
/// by a failing setrlimit deep inside the container's init.
fn set_rlimit(
    spec: &mut Value,
    resource: &str,
    soft: u64,
    hard: u64,
    param: Param,
    where_: &str,
) -> Result<()> {
    let host_hard = host_hard_limit(resource);
    let capped = |v: u64| {
        if v == UNLIMITED || v == u64::MAX {
            u64::MAX
        } else {
            v
        }
    };
    let (soft, hard) = (capped(soft), capped(hard));
    let shown = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    if resource == "RLIMIT_NOFILE"
        && let Some(nr_open) = nr_open()
        && hard > nr_open
    {
        bail!(
            "{where_}: runvz.ubc.{}: limit {} is above the kernel's largest RLIMIT_NOFILE (fs.nr_open = {nr_open})",
            param.name(),
            shown(hard),
        );
    }
    if hard > host_hard && !has_cap_sys_resource() {
        bail!(
            "{where_}: runvz.ubc.{}: limit {} is above this host's hard {resource} of {} and runvz may not raise it (no CAP_SYS_RESOURCE)",
            param.name(),
            shown(hard),
            shown(host_hard)
        );
    }
    let process = &mut spec["process"];
    if !process["rlimits"].is_array() {
        process["rlimits"] = json!([]);
    }
    let rlimits = process["rlimits"].as_array_mut().expect("array");
    rlimits.retain(|r| r["type"] != resource);
    rlimits.push(json!({"type": resource, "soft": soft, "hard": hard}));
    Ok(())
}

fn host_hard_limit(resource: &str) -> u64 {
    let which = match resource {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        _ => libc::RLIMIT_AS,
    };
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(which, &mut rl) } != 0 {
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

/// Sets `key=value` on the mount at `destination` (adding `default` when the spec
/// has no such mount).
fn set_mount_option(
    spec: &mut Value,
    destination: &str,
    key: &str,
    value: &str,
    default: Option<Value>,
) {
    if !spec["mounts"].is_array() {
        spec["mounts"] = json!([]);
    }
    let mounts = spec["mounts"].as_array_mut().expect("array");
    let index = match mounts.iter().position(|m| m["destination"] == destination) {
        Some(i) => i,
        None => match default {
            Some(mount) => {
                mounts.push(mount);
                mounts.len() - 1
            }
            None => return,
        },
    };
    let mount = &mut mounts[index];
    if !mount["options"].is_array() {
        mount["options"] = json!([]);
    }
    let options = mount["options"].as_array_mut().expect("array");
    let prefix = format!("{key}=");
    options.retain(|o| !o.as_str().is_some_and(|s| s.starts_with(&prefix)));
    options.push(json!(format!("{key}={value}")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn applied(pairs: &[(&str, &str)]) -> Result<Value> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let settings = Settings::from_annotations(&map, "config.json")?;
        let mut spec = json!({
            "process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]},
            "mounts": [{"destination": "/dev/pts", "type": "devpts", "options": ["newinstance", "ptmxmode=0666"]}],
            "linux": {}
        });
        apply(&settings, &mut spec, "config.json")?;
        Ok(spec)
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
        assert_eq!(r["cpu"]["shares"], 2048);
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
    fn swap_needs_a_memory_limit() {
        let err = applied(&[("runvz.ubc.swappages", "100")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs runvz.ubc.physpages"), "{err}");
    }
}
