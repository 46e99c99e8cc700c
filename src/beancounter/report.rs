//! What `runvz beancounters` and `events` report: for each parameter the bound
//! in force (barrier, limit) and what the kernel says about use (held, maxheld,
//! failcnt), read live from the container's cgroup files and its processes.
//!
//! A value the kernel does not give is None, never a made-up number. maxheld
//! comes from the kernel's peak file where there is one; otherwise it is the
//! highest held runvz has seen (kept in `<root>/<id>/maxheld.json`, a cache of samples beside the state file, written without the container's lock), and the
//! report says which.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::params::{ALL, DISK, Disk, PAGE_SIZE, Param, TABLE_ROWS, UNLIMITED};
use super::settings::{Bound, Settings};
use crate::cgroups::{self, File, Stat};
use crate::state::{Container, write_atomic};

const MAXHELD_FILE: &str = "maxheld.json";

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub resource: &'static str,
    pub unit: &'static str,
    pub held: Option<u64>,
    pub maxheld: Option<u64>,
    /// "kernel" (a peak file) or "sampled" (the highest runvz has seen).
    pub maxheld_source: Option<&'static str>,
    pub barrier: u64,
    pub limit: u64,
    pub failcnt: Option<u64>,
    pub enforced: bool,
    /// How the bound is enforced, or why it is not.
    pub mechanism: String,
    /// Where held, maxheld and failcnt come from.
    pub measured_from: &'static str,
    /// diskspace and diskinodes: the quota that bounds them (mechanism,
    /// filesystem, device, ID, the trees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<crate::quota::Quota>,
}

/// The container's `runvz.*` annotations: config.json's, then `update`'s
/// (recorded in its state).
pub fn annotations(container: &Container) -> Result<HashMap<String, String>> {
    let config = container.state_dir.join("config.json");
    let spec: serde_json::Value = serde_json::from_slice(
        &fs::read(&config).with_context(|| format!("cannot read {}", config.display()))?,
    )?;
    let mut annotations: HashMap<String, String> = spec
        .get("annotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    if let Some(meta) = &container.meta {
        annotations.extend(meta.beancounters.clone());
    }
    Ok(annotations)
}

/// The bounds in force.
pub fn settings(container: &Container) -> Result<Settings> {
    Settings::from_annotations(&annotations(container)?, "config.json")
}

/// One row per parameter, in OpenVZ's order (swappages last).
pub fn collect(container: &Container) -> Result<Vec<Row>> {
    let settings = settings(container)?;
    let live = container
        .live_pid()
        .and_then(|pid| Live::read(pid.as_raw(), container));
    let mut seen = read_maxheld(&container.state_dir);
    let mut rows = Vec::new();
    for param in ALL {
        let bound = settings.ubc.get(&param).copied().unwrap_or(Bound {
            barrier: UNLIMITED,
            limit: UNLIMITED,
        });
        let usage = live.as_ref().map(|l| l.usage(param)).unwrap_or_default();
        let (maxheld, source) = maxheld(&mut seen, param.name(), &usage);
        let mechanism = param.mechanism();
        rows.push(Row {
            resource: param.name(),
            unit: param.unit().name(),
            held: usage.held,
            maxheld,
            maxheld_source: source,
            barrier: bound.barrier,
            limit: bound.limit,
            failcnt: usage.failcnt,
            enforced: mechanism.is_some(),
            mechanism: mechanism
                .map(str::to_string)
                .unwrap_or_else(|| "not enforced on this kernel".to_string()),
            measured_from: param.describe().measured_from,
            quota: None,
        });
    }
    // vzquota's figures, for a container that has a disk quota (the table
    // of one without stays OpenVZ's exactly).
    let quota = container.meta.as_ref().and_then(|m| m.disk_quota.as_ref());
    if quota.is_some() || !settings.disk.is_empty() {
        // One quotactl (or qgroup read) for both rows.
        let counted = quota.map(crate::quota::usage).unwrap_or_default();
        for disk in DISK {
            rows.push(disk_row(disk, &settings, quota, &counted, &mut seen));
        }
    }
    if live.is_some() {
        // Best effort: a lost update only lowers a sampled peak.
        let _ = write_atomic(
            &container.state_dir.join(MAXHELD_FILE),
            &serde_json::to_vec(&seen)?,
        );
    }
    Ok(rows)
}

/// maxheld: the kernel's peak, else the highest held runvz has seen.
fn maxheld(
    seen: &mut BTreeMap<String, u64>,
    name: &str,
    usage: &Usage,
) -> (Option<u64>, Option<&'static str>) {
    match (usage.peak, usage.held) {
        (Some(peak), _) => (Some(peak), Some("kernel")),
        (None, Some(held)) => {
            let max = seen.get(name).copied().unwrap_or(0).max(held);
            seen.insert(name.to_string(), max);
            (Some(max), Some("sampled"))
        }
        (None, None) => (seen.get(name).copied(), seen.get(name).map(|_| "sampled")),
    }
}

/// diskspace or diskinodes: the filesystem's count for the container's quota
/// (it counts whether or not the container runs).
fn disk_row(
    disk: Disk,
    settings: &Settings,
    quota: Option<&crate::quota::Quota>,
    counted: &crate::quota::Usage,
    seen: &mut BTreeMap<String, u64>,
) -> Row {
    let bound = settings.disk.get(&disk).copied().unwrap_or(Bound {
        barrier: UNLIMITED,
        limit: UNLIMITED,
    });
    let usage = Usage {
        held: match disk {
            Disk::Space => counted.space_kib,
            Disk::Inodes => counted.inodes,
        },
        ..Usage::default()
    };
    let (maxheld, source) = maxheld(seen, disk.name(), &usage);
    let enforced = quota.is_some_and(|q| {
        disk == Disk::Space || q.mechanism == crate::quota::Mechanism::ProjectQuota
    });
    Row {
        resource: disk.name(),
        unit: disk.unit().name(),
        held: usage.held,
        maxheld,
        maxheld_source: source,
        barrier: bound.barrier,
        limit: bound.limit,
        failcnt: None,
        enforced,
        mechanism: match quota {
            Some(q) if enforced => q.describe(),
            Some(q) => format!("not enforced: {} has no inode quota", q.filesystem),
            None => "no disk quota (runvz.diskspace / runvz.diskinodes at create)".to_string(),
        },
        measured_from: "the quota's usage (quotactl PRJQUOTA; btrfs qgroup referenced)",
        quota: quota.cloned(),
    }
}

fn read_maxheld(dir: &Path) -> BTreeMap<String, u64> {
    fs::read(dir.join(MAXHELD_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// `/proc/user_beancounters`' `Version: 2.5` table. A value the kernel does not
/// give is printed as `-` (the columns stay whitespace-separated).
pub fn format_table(containers: &[(String, Vec<Row>)]) -> String {
    let mut out = String::from("Version: 2.5\n");
    out.push_str(&row_line(
        "uid", "resource", "held", "maxheld", "barrier", "limit", "failcnt",
    ));
    let show = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    let line = |label: &str, r: &Row| {
        row_line(
            label,
            r.resource,
            &show(r.held),
            &show(r.maxheld),
            &r.barrier.to_string(),
            &r.limit.to_string(),
            &show(r.failcnt),
        )
    };
    for (id, rows) in containers {
        let by_name: HashMap<&str, &Row> = rows.iter().map(|r| (r.resource, r)).collect();
        for (i, param) in TABLE_ROWS.iter().enumerate() {
            let label = if i == 0 {
                format!("{id}:")
            } else {
                String::new()
            };
            out.push_str(&match param.and_then(|p| by_name.get(p.name())) {
                Some(r) => line(&label, r),
                None => row_line(&label, "dummy", "0", "0", "0", "0", "0"),
            });
        }
        // vzquota's two figures, after OpenVZ's rows.
        for disk in DISK {
            if let Some(r) = by_name.get(disk.name()) {
                out.push_str(&line("", r));
            }
        }
    }
    out
}

/// One line of the table, in OpenVZ's column widths.
fn row_line(
    label: &str,
    resource: &str,
    held: &str,
    maxheld: &str,
    barrier: &str,
    limit: &str,
    failcnt: &str,
) -> String {
    format!(
        "{label:>10}  {resource:<12} {held:>20} {maxheld:>20} {barrier:>20} {limit:>20} {failcnt:>20}\n"
    )
}

#[derive(Debug, Default)]
struct Usage {
    held: Option<u64>,
    peak: Option<u64>,
    failcnt: Option<u64>,
}

/// A running container's counters: its cgroup and processes.
struct Live {
    init: i32,
    cgroup: PathBuf,
    pids: Vec<i32>,
}

impl Live {
    fn read(init: i32, container: &Container) -> Option<Live> {
        // The container's own cgroup, not its init's (systemd moves itself
        // into init.scope).
        let cgroup = container.own_cgroup(init)?;
        let pids = cgroups::procs(&cgroup);
        Some(Live { init, cgroup, pids })
    }

    fn number(&self, file: File) -> Option<u64> {
        cgroups::read_number(&self.cgroup, file)
    }

    fn keyed(&self, file: File, key: &str) -> Option<u64> {
        cgroups::read_keyed(&self.cgroup, file, key)
    }

    fn memory_stat(&self, stat: Stat) -> Option<u64> {
        cgroups::memory_stat(&self.cgroup, stat)
    }

    /// Descriptors open in the container's processes.
    fn open_files(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|p| fs::read_dir(format!("/proc/{p}/fd")).ok())
            .map(|d| d.count() as u64)
            .sum()
    }

    /// Pseudo-terminals of the container's devpts.
    fn ptys(&self) -> Option<u64> {
        fs::read_dir(format!("/proc/{}/root/dev/pts", self.init))
            .ok()
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count() as u64
            })
    }

    /// Sockets other than TCP in the container's network namespace.
    fn other_sockets(&self) -> Option<u64> {
        ["UDP:", "UDPLITE:", "RAW:", "FRAG:"]
            .iter()
            .map(|proto| self.sockstat(proto, "inuse"))
            .sum::<Option<u64>>()
            .zip(self.unix_sockets())
            .map(|(inet, unix)| inet + unix)
    }

    fn usage(&self, param: Param) -> Usage {
        let pages = |bytes: Option<u64>| bytes.map(|b| b.div_ceil(PAGE_SIZE));
        let host = cgroups::host();
        match param {
            Param::Numproc => Usage {
                held: self.number(File::PidsCurrent),
                peak: self.number(File::PidsPeak),
                failcnt: self.keyed(File::PidsEvents, "max"),
            },
            Param::Physpages => Usage {
                held: pages(self.number(File::MemoryUsage)),
                peak: pages(self.number(File::MemoryPeak)),
                failcnt: host.memory_failcnt(&self.cgroup),
            },
            Param::Swappages => Usage {
                held: pages(host.swap_usage(&self.cgroup)),
                peak: pages(self.number(File::SwapPeak)),
                failcnt: host.swap_failcnt(&self.cgroup),
            },
            Param::Oomguarpages => Usage {
                held: pages(self.number(File::MemoryUsage)),
                peak: None,
                failcnt: self.keyed(File::OomEvents, "oom_kill"),
            },
            Param::Vmguarpages => Usage {
                held: self.private_vm_pages(),
                ..Usage::default()
            },
            Param::Kmemsize => Usage {
                held: host.kernel_memory(&self.cgroup),
                peak: self.number(File::KernelMemoryPeak),
                failcnt: host.kernel_memory_failcnt(&self.cgroup),
            },
            Param::Lockedpages => Usage {
                held: pages(self.memory_stat(Stat::Unevictable)),
                ..Usage::default()
            },
            Param::Shmpages => Usage {
                held: pages(self.memory_stat(Stat::Shmem)),
                ..Usage::default()
            },
            Param::Dcachesize => Usage {
                held: self.memory_stat(Stat::SlabReclaimable),
                ..Usage::default()
            },
            Param::Privvmpages => Usage {
                held: self.private_vm_pages(),
                ..Usage::default()
            },
            Param::Numfile => Usage {
                held: Some(self.open_files()),
                ..Usage::default()
            },
            Param::Numflock => Usage {
                held: self.file_locks(),
                ..Usage::default()
            },
            Param::Numsiginfo => Usage {
                held: self.queued_signals(),
                ..Usage::default()
            },
            Param::Numpty => Usage {
                held: self.ptys(),
                ..Usage::default()
            },
            Param::Numtcpsock => Usage {
                held: self.sockstat("TCP:", "inuse"),
                ..Usage::default()
            },
            Param::Numothersock => Usage {
                held: self.other_sockets(),
                ..Usage::default()
            },
            // The kernel does not split socket buffer memory by kind; on v2 the
            // cgroup's total (memory.stat sock) is reported as othersockbuf. The
            // sockstat `mem` figures are host-wide, so they are not used.
            Param::Othersockbuf => Usage {
                held: self.memory_stat(Stat::Sock),
                ..Usage::default()
            },
            Param::Tcpsndbuf | Param::Tcprcvbuf | Param::Dgramrcvbuf | Param::Numiptent => {
                Usage::default()
            }
        }
    }

    /// Private writable memory of the container's processes (VmData + VmStk), pages.
    fn private_vm_pages(&self) -> Option<u64> {
        let mut kib = 0;
        for pid in &self.pids {
            let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            for line in status.lines() {
                if let Some(v) = line
                    .strip_prefix("VmData:")
                    .or_else(|| line.strip_prefix("VmStk:"))
                {
                    kib += v
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap_or(0);
                }
            }
        }
        Some(kib * 1024 / PAGE_SIZE)
    }

    /// POSIX and flock locks held by the container's processes (/proc/locks).
    fn file_locks(&self) -> Option<u64> {
        let ours: HashSet<String> = self.pids.iter().map(|p| p.to_string()).collect();
        let locks = fs::read_to_string("/proc/locks").ok()?;
        Some(
            locks
                .lines()
                .filter(|l| !l.contains("->"))
                .filter(|l| {
                    l.split_whitespace()
                        .nth(4)
                        .is_some_and(|p| ours.contains(p))
                })
                .count() as u64,
        )
    }

    /// Signals queued for the container's users: SigQ is counted per real UID,
    /// so each UID is counted once.
    fn queued_signals(&self) -> Option<u64> {
        let mut per_uid: HashMap<String, u64> = HashMap::new();
        for pid in &self.pids {
            let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().next())
                .unwrap_or("")
                .to_string();
            let queued = status
                .lines()
                .find_map(|l| l.strip_prefix("SigQ:"))
                .and_then(|q| q.trim().split('/').next()?.parse().ok())
                .unwrap_or(0);
            per_uid.insert(uid, queued);
        }
        Some(per_uid.values().sum())
    }

    /// A field of the container network namespace's /proc/net/sockstat.
    fn sockstat(&self, proto: &str, field: &str) -> Option<u64> {
        let text = fs::read_to_string(format!("/proc/{}/net/sockstat", self.init)).ok()?;
        let line = text.lines().find(|l| l.starts_with(proto))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == field)
            .and_then(|i| words.get(i + 1)?.parse().ok())
    }

    fn unix_sockets(&self) -> Option<u64> {
        let text = fs::read_to_string(format!("/proc/{}/net/unix", self.init)).ok()?;
        Some(text.lines().skip(1).count() as u64)
    }
}
