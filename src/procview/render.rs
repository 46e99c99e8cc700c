//! The view's files for one container, from its cgroup (and its init, for
//! its uptime). CPUs are numbered from 0, as many as it may use, in every
//! file that lists them (cpuinfo, stat), as LXCFS numbers them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::load::Load;
use crate::cgroups::{self, File, Stat};
use crate::state::Container;

/// The file `name` of the view for `container`, or None when it cannot be
/// read (the caller shows the host's file).
pub fn render(name: &str, container: &Container, load: Option<Load>) -> Option<String> {
    let cgroup = cgroup_of(container)?;
    let load = load.unwrap_or_else(|| super::load::unsampled(&cgroup));
    match name {
        "meminfo" => Some(meminfo(&cgroup)),
        "cpuinfo" => Some(cpuinfo(&cgroup)),
        "stat" => Some(stat(
            &cgroup,
            &load,
            container.live_pid().map(|p| p.as_raw()),
        )),
        "uptime" => uptime(container.live_pid()?.as_raw()),
        "loadavg" => Some(load.render()),
        "swaps" => Some(swaps(&cgroup)),
        "diskstats" => Some(diskstats(&cgroup)),
        "online" => Some(cpus_online(&cgroup)),
        "user_beancounters" => beancounters(container),
        _ => None,
    }
}

/// The container's own cgroup: the recorded one, or under the systemd
/// driver its init's (above `init.scope`, where systemd inside moves itself).
pub fn cgroup_of(container: &Container) -> Option<PathBuf> {
    if !container.systemd() {
        return container.cgroup_path();
    }
    let own = container.own_cgroup(container.live_pid()?.as_raw())?;
    Some(match own.file_name() {
        Some(name) if name == "init.scope" => own.parent()?.to_path_buf(),
        _ => own,
    })
}

/// The container's memory in kB, when it has a limit below the host's.
pub struct Memory {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub cached: u64,
    pub shmem: u64,
    /// Reclaimable kernel memory (v2's slab_reclaimable; v1 has no count: 0).
    pub slab_reclaimable: u64,
    pub swap_total: u64,
    pub swap_used: u64,
}

/// A line of /proc/meminfo's (kB).
fn kb_of(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

pub fn memory(cgroup: &Path, host: &str) -> Option<Memory> {
    let limit = cgroups::memory_limit(cgroup);
    // memory.high (v2's physpages barrier) throttles below the limit.
    let high = cgroups::read_number(cgroup, File::MemoryHigh);
    let limit = match (limit > 0, high) {
        (true, Some(high)) => (limit as u64).min(high),
        (true, None) => limit as u64,
        (false, Some(high)) => high,
        (false, None) => return None,
    };
    let total = limit / 1024;
    if total >= kb_of(host, "MemTotal:") {
        return None;
    }
    let [cached, shmem, slab_reclaimable] =
        cgroups::memory_stats(cgroup, [Stat::Cache, Stat::Shmem, Stat::SlabReclaimable])
            .map(|kb| kb.unwrap_or(0) / 1024);
    let used = cgroups::read_number(cgroup, File::MemoryUsage).unwrap_or(0) / 1024;
    let free = total.saturating_sub(used);
    let host_swap = kb_of(host, "SwapTotal:");
    let swap_total = cgroups::host()
        .swap_limit(cgroup)
        .map_or(host_swap, |l| (l / 1024).min(host_swap));
    Some(Memory {
        total,
        free,
        available: (free + cached.saturating_sub(shmem)).min(total),
        cached,
        shmem,
        slab_reclaimable,
        swap_total,
        swap_used: (cgroups::host().swap_usage(cgroup).unwrap_or(0) / 1024).min(swap_total),
    })
}

/// The host's /proc/meminfo and the container's memory figures from it
/// and its cgroup (None without a limit below the host's).
pub fn read_memory(cgroup: &Path) -> (String, Option<Memory>) {
    let host = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = memory(cgroup, &host);
    (host, memory)
}

/// The host's meminfo with the totals, free, cache and swap lines of the
/// container's memory cgroup (kB), when it has a limit below the host's.
fn meminfo(cgroup: &Path) -> String {
    let (host, memory) = read_memory(cgroup);
    let Some(memory) = memory else {
        return host;
    };
    host.lines()
        .map(|line| {
            let key = line.split_whitespace().next().unwrap_or("");
            let value = match key {
                "MemTotal:" => Some(memory.total),
                "MemFree:" => Some(memory.free),
                "MemAvailable:" => Some(memory.available),
                "Buffers:" => Some(0),
                "Cached:" => Some(memory.cached),
                "Shmem:" => Some(memory.shmem),
                // `free` counts it as cache: the host's would exceed the total.
                "SReclaimable:" => Some(memory.slab_reclaimable),
                "SwapTotal:" => Some(memory.swap_total),
                "SwapFree:" => Some(memory.swap_total - memory.swap_used),
                "SwapCached:" => Some(0),
                _ => None,
            };
            match value {
                Some(kb) => format!("{key:<16}{kb:>8} kB\n"),
                None => format!("{line}\n"),
            }
        })
        .collect()
}

/// /proc/swaps: the container's swap as one virtual device, as LXCFS shows
/// it (the header alone when it may not swap).
fn swaps(cgroup: &Path) -> String {
    let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
    match read_memory(cgroup).1 {
        Some(m) if m.swap_total > 0 => format!(
            "{header}none\t\t\t\t\tvirtual\t\t{}\t\t{}\t\t0\n",
            m.swap_total, m.swap_used
        ),
        Some(_) => header.to_string(),
        None => fs::read_to_string("/proc/swaps").unwrap_or_else(|_| header.to_string()),
    }
}

/// The host CPUs the container may use: its cpuset's, the first as many as
/// its CPU quota allows.
pub fn visible_cpus(cgroup: &Path) -> Vec<usize> {
    let cpuset = cgroups::read_file(cgroup, File::CpusetEffective)
        .map(|list| cpu_list(list.trim()))
        .filter(|cpus| !cpus.is_empty())
        .unwrap_or_else(|| (0..host_cpus()).collect());
    let count = match cgroups::host().cpu_quota_cpus(cgroup) {
        Some(q) if q > 0 => cpuset.len().min(q as usize),
        _ => cpuset.len(),
    };
    cpuset.into_iter().take(count).collect()
}

/// How many CPUs the host has online (the server's own affinity, which is
/// the host's: it runs in no container).
pub fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// /sys/devices/system/cpu/online: the visible CPUs as a list (`0-1`).
fn cpus_online(cgroup: &Path) -> String {
    format_cpu_list(&visible_cpus(cgroup)) + "\n"
}

/// The host's cpuinfo, its first CPUs only, as many as the container may use.
fn cpuinfo(cgroup: &Path) -> String {
    let host = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let count = visible_cpus(cgroup).len();
    let mut out = String::new();
    for block in host
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .take(count)
    {
        out.push_str(block.trim_end_matches('\n'));
        out.push_str("\n\n");
    }
    out
}

/// Clock ticks (USER_HZ) per second, as /proc/stat counts.
fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64
}

/// The container's CPU time, ns, (user, system) for each visible CPU: v1's
/// per-CPU counts where every CPU of its cpuset is visible, otherwise its
/// total spread evenly over the visible ones.
fn cpu_times(cgroup: &Path, cpus: &[usize]) -> Vec<(u64, u64)> {
    let per_cpu = |file| -> Option<Vec<u64>> {
        let text = cgroups::read_file(cgroup, file)?;
        Some(
            text.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect(),
        )
    };
    let cpuset_len =
        cgroups::read_file(cgroup, File::CpusetEffective).map_or(0, |l| cpu_list(l.trim()).len());
    let (user, system) = match (per_cpu(File::CpuUserPerCpu), per_cpu(File::CpuSystemPerCpu)) {
        (Some(user), Some(system)) => {
            if cpus.len() == cpuset_len {
                let at = |v: &[u64], cpu: usize| v.get(cpu).copied().unwrap_or(0);
                return cpus
                    .iter()
                    .map(|&cpu| (at(&user, cpu), at(&system, cpu)))
                    .collect();
            }
            (user.iter().sum(), system.iter().sum())
        }
        _ => {
            let stat = cgroups::read_file(cgroup, File::CpuStat).unwrap_or_default();
            let usec = |key| cgroups::keyed_value(&stat, key).unwrap_or(0) * 1000;
            (usec("user_usec"), usec("system_usec"))
        }
    };
    let n = cpus.len().max(1) as u64;
    vec![(user / n, system / n); cpus.len()]
}

/// /proc/stat: the container's CPU times (its user and system time; idle
/// the rest of each CPU's time, so a `top` inside sees its own share), its
/// runnable and blocked threads; the host's other lines.
fn stat(cgroup: &Path, load: &Load, init: Option<i32>) -> String {
    let host = fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpus = visible_cpus(cgroup);
    let ns_per_tick = 1_000_000_000 / ticks_per_second();
    let host_cpu: HashMap<&str, u64> = host
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let name = fields.next()?;
            Some((name, fields.filter_map(|f| f.parse::<u64>().ok()).sum()))
        })
        .collect();
    let mut lines = Vec::new();
    let mut sum = [0u64; 3];
    for (i, (&cpu, (user, system))) in cpus.iter().zip(cpu_times(cgroup, &cpus)).enumerate() {
        let (user, system) = (user / ns_per_tick, system / ns_per_tick);
        let total = host_cpu
            .get(format!("cpu{cpu}").as_str())
            .copied()
            .unwrap_or(0);
        let idle = total.saturating_sub(user + system);
        sum = [sum[0] + user, sum[1] + system, sum[2] + idle];
        lines.push(format!("cpu{i} {user} 0 {system} {idle} 0 0 0 0 0 0"));
    }
    let mut out = format!("cpu  {} 0 {} {} 0 0 0 0 0 0\n", sum[0], sum[1], sum[2]);
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    for line in host.lines().filter(|l| !l.starts_with("cpu")) {
        let key = line.split_whitespace().next().unwrap_or("");
        match key {
            // The reader itself runs.
            "procs_running" => out.push_str(&format!("procs_running {}\n", load.running.max(1))),
            "procs_blocked" => out.push_str(&format!("procs_blocked {}\n", load.blocked)),
            // Its boot, where it has a clock of its own: what `ps` adds its
            // processes' start times (counted from that boot) to.
            "btime" => match (
                init.and_then(boot_clock_offset),
                line.split_whitespace().nth(1).map(str::parse::<i64>),
            ) {
                (Some(offset), Some(Ok(host))) => {
                    out.push_str(&format!("btime {}\n", host - offset.floor() as i64))
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            },
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The container's block I/O by device (`major:minor`): reads, bytes read,
/// writes, bytes written.
fn io_by_device(cgroup: &Path) -> HashMap<String, [u64; 4]> {
    let mut devices: HashMap<String, [u64; 4]> = HashMap::new();
    if let Some(stat) = cgroups::read_file(cgroup, File::IoStat) {
        // v2: `8:0 rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…`
        for line in stat.lines() {
            let mut fields = line.split_whitespace();
            let Some(device) = fields.next() else {
                continue;
            };
            let counts = devices.entry(device.to_string()).or_default();
            for field in fields {
                let Some((key, value)) = field.split_once('=') else {
                    continue;
                };
                let value = value.parse().unwrap_or(0);
                match key {
                    "rios" => counts[0] = value,
                    "rbytes" => counts[1] = value,
                    "wios" => counts[2] = value,
                    "wbytes" => counts[3] = value,
                    _ => {}
                }
            }
        }
        return devices;
    }
    // v1: `8:0 Read 4096` lines, one file for operations, one for bytes.
    for (file, read_at, write_at) in [(File::IoServiced, 0, 2), (File::IoServiceBytes, 1, 3)] {
        for line in cgroups::read_file(cgroup, file).unwrap_or_default().lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [device, kind, value] = fields[..] else {
                continue;
            };
            let at = match kind {
                "Read" => read_at,
                "Write" => write_at,
                _ => continue,
            };
            devices.entry(device.to_string()).or_default()[at] = value.parse().unwrap_or(0);
        }
    }
    devices
}

/// /proc/diskstats: the devices the container did I/O on, with its reads and
/// writes (operations and 512-byte sectors; the other counters 0).
fn diskstats(cgroup: &Path) -> String {
    let io = io_by_device(cgroup);
    let host = fs::read_to_string("/proc/diskstats").unwrap_or_default();
    let mut out = String::new();
    for line in host.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [major, minor, name, counters @ ..] = &fields[..] else {
            continue;
        };
        let Some([rios, rbytes, wios, wbytes]) = io.get(&format!("{major}:{minor}")) else {
            continue;
        };
        let mut values = vec![0u64; counters.len().max(11)];
        values[0] = *rios;
        values[2] = rbytes / 512;
        values[4] = *wios;
        values[6] = wbytes / 512;
        let values: Vec<String> = values.iter().map(u64::to_string).collect();
        out.push_str(&format!(
            "{major:>4} {minor:>7} {name} {}\n",
            values.join(" ")
        ));
    }
    out
}

/// The container's own `Version: 2.5` table, as `runvz beancounters ID`.
fn beancounters(container: &Container) -> Option<String> {
    let rows = crate::beancounter::report::collect(container).ok()?;
    Some(crate::beancounter::report::format_table(&[(
        container.id.clone(),
        rows,
    )]))
}

/// /proc/uptime: seconds since the container's init started (and, as the
/// kernel's second field, the idle time, which a container has no count of:
/// 0).
fn uptime(init: i32) -> Option<String> {
    Some(format!("{:.2} 0.00\n", seconds_up(init)?))
}

/// The container's uptime: its own boot clock where it has one (a time
/// namespace, [`crate::system::own_clock`]: what its kernel's /proc/uptime
/// and its processes' start times count from), else the seconds since its
/// init started.
pub fn seconds_up(init: i32) -> Option<f64> {
    let host: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    if let Some(offset) = boot_clock_offset(init) {
        return Some((host + offset).max(0.0));
    }
    let stat = fs::read_to_string(format!("/proc/{init}/stat")).ok()?;
    // The fields after the command's closing parenthesis; starttime is field 22.
    let after = stat.rsplit_once(')')?.1;
    let start_ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    Some((host - start_ticks as f64 / ticks_per_second() as f64).max(0.0))
}

/// The boot clock offset (seconds, negative) of the time namespace process
/// `init` is in, when it is not the host's.
fn boot_clock_offset(init: i32) -> Option<f64> {
    let offsets = fs::read_to_string(format!("/proc/{init}/timens_offsets")).ok()?;
    let line = offsets.lines().find(|l| l.starts_with("boottime"))?;
    let mut fields = line.split_whitespace().skip(1);
    let secs: i64 = fields.next()?.parse().ok()?;
    let nanos: u32 = fields.next()?.parse().ok()?;
    let offset = secs as f64 + f64::from(nanos) / 1e9;
    (offset != 0.0).then_some(offset)
}

/// The CPUs of a list such as `0-3,6`.
fn cpu_list(list: &str) -> Vec<usize> {
    list.split(',')
        .filter(|part| !part.is_empty())
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                // Bounded: a corrupt range must not become a huge list.
                (Ok(a), Ok(b)) if b >= a && b < 1 << 16 => (a..=b).collect(),
                _ => Vec::new(),
            },
            None => part.parse::<usize>().into_iter().collect(),
        })
        .collect()
}

/// `[0, 1, 2, 5]` as `0-2,5`.
fn format_cpu_list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        parts.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::{cpu_list, format_cpu_list};

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(cpu_list("0-2,5"), vec![0, 1, 2, 5]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 5]), "0-2,5");
        assert_eq!(format_cpu_list(&[3]), "3");
        assert_eq!(cpu_list("4-2,x"), Vec::<usize>::new());
        assert_eq!(cpu_list("0-3,6").len(), 5);
        assert_eq!(cpu_list("").len(), 0);
    }
}
