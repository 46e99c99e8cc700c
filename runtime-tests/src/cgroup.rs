//! Which cgroup version the tests run on, and where each setting lives.
//!
//! The same tests run on this host (cgroup v1 "hybrid": one hierarchy per
//! controller under /sys/fs/cgroup) and in a VM whose kernel mounts cgroup2 on
//! /sys/fs/cgroup with every controller enabled. A test states a *logical*
//! setting ([`Setting`], e.g. "memory limit 100M" or "frozen") and
//! [`Cgroup::assert`] reads the file(s) that hold it on the running version and
//! compares them with the exact contents that version must show:
//!
//! | setting            | cgroup v1 (`/sys/fs/cgroup/<ctrl>/<path>/…`) | cgroup v2 (`/sys/fs/cgroup/<path>/…`) |
//! |--------------------|------------------------------------------|--------------------------------------|
//! | memory limit       | `memory.limit_in_bytes`                  | `memory.max` (`max` = none)          |
//! | memory + swap      | `memory.memsw.limit_in_bytes` (total)    | `memory.swap.max` (swap only: total − memory) |
//! | memory reservation | `memory.soft_limit_in_bytes`             | `memory.low`                         |
//! | pids limit         | `pids/…/pids.max`                        | `pids.max`                           |
//! | cpu quota/period   | `cpu.cfs_quota_us` + `cpu.cfs_period_us` | `cpu.max` = `"<quota\|max> <period>"`  |
//! | cpu shares         | `cpu.shares`                             | `cpu.weight` ([`runc_shares_to_weight`]) |
//! | frozen             | `freezer.state` = `FROZEN`/`THAWED`      | `cgroup.freeze` = `1`/`0`, `cgroup.events` `frozen 1`/`frozen 0` |
//! | processes          | `cgroup.procs` in each hierarchy         | the one `cgroup.procs`               |

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{CGROUP_ROOT, wait_until};

/// The cgroup version of the host the tests run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy or hybrid: one hierarchy per controller under /sys/fs/cgroup
    /// (a hybrid host's /sys/fs/cgroup/unified, with no controllers that
    /// matter here, does not make it v2).
    V1,
    /// Unified: cgroup2 mounted on /sys/fs/cgroup itself.
    V2,
}

impl CgroupVersion {
    /// V2 when /sys/fs/cgroup/cgroup.controllers exists (cgroup2 is mounted
    /// on /sys/fs/cgroup itself), else V1.
    pub fn detect() -> CgroupVersion {
        if Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }

    /// [`CgroupVersion::detect`], once per test process.
    pub fn current() -> CgroupVersion {
        static V: OnceLock<CgroupVersion> = OnceLock::new();
        *V.get_or_init(CgroupVersion::detect)
    }

    pub fn is_v1(self) -> bool {
        self == CgroupVersion::V1
    }

    pub fn is_v2(self) -> bool {
        self == CgroupVersion::V2
    }
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "cgroup v1",
            CgroupVersion::V2 => "cgroup v2",
        })
    }
}

/// The version of this host ([`CgroupVersion::current`]).
pub fn cgroup_version() -> CgroupVersion {
    CgroupVersion::current()
}

/// True on a cgroup v1 (or hybrid) host like the development machine.
pub fn cgroup_v1() -> bool {
    cgroup_version().is_v1()
}

/// True on a pure cgroup v2 host.
pub fn cgroup_v2() -> bool {
    cgroup_version().is_v2()
}

/// For a test of a v1-only feature: returns true (after printing the skip
/// line) when the host is not cgroup v1.
pub fn skip_unless_cgroup_v1() -> bool {
    if cgroup_v1() {
        return false;
    }
    crate::skip("needs cgroup v1 hierarchies under /sys/fs/cgroup");
    true
}

/// For a test of a v2-only feature: returns true (after printing the skip
/// line) when the host is not cgroup v2.
pub fn skip_unless_cgroup_v2() -> bool {
    if cgroup_v2() {
        return false;
    }
    crate::skip("needs cgroup v2 (cgroup2 mounted on /sys/fs/cgroup)");
    true
}

/// What cgroup v1 shows for "no limit" in `memory.limit_in_bytes`,
/// `memory.memsw.limit_in_bytes` and `memory.soft_limit_in_bytes`: LONG_MAX
/// rounded down to the page size (9223372036854771712 with 4 KiB pages).
pub fn v1_memory_unlimited() -> String {
    // SAFETY: sysconf(3) has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = if page > 0 { page as i64 } else { 4096 };
    ((i64::MAX / page) * page).to_string()
}

/// The cgroup v2 `cpu.weight` the runtime under test writes for OCI
/// `cpu.shares`. runc 1.1.5 maps linearly, `1 + ((shares - 2) * 9999) / 262142`,
/// which sends the default 1024 to 39 instead of the default weight 100; runvz
/// (with libcgroups 0.7, crun and runc ≥ 1.3.2) uses the fit that keeps
/// 2 → 1, 1024 → 100 and 262144 → 10000. 0 means nothing is written.
pub fn runc_shares_to_weight(shares: u64) -> u64 {
    if crate::runtime_is_runc() {
        linear_shares_to_weight(shares)
    } else {
        fitted_shares_to_weight(shares)
    }
}

/// runc 1.1.5's conversion.
pub fn linear_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// The conversion of runc ≥ 1.3.2, crun and libcgroups 0.7:
/// `10^((l² + 125·l) / 612 − 7/34)` with `l = log2(shares)`, rounded up.
pub fn fitted_shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262144.. => 10000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// How a file's content is compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// The whole file, trimmed, equals this.
    Exact(String),
    /// One line of the file, trimmed, equals this (for keyed files such as
    /// `cgroup.events`).
    Line(String),
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Exact(s) => write!(f, "{s:?}"),
            Want::Line(s) => write!(f, "a line {s:?}"),
        }
    }
}

/// One file a [`Setting`] lives in on one cgroup version, and what it must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The v1 hierarchy (controller) directory; unused on v2.
    pub controller: &'static str,
    /// The file name in the container's cgroup directory.
    pub file: &'static str,
    pub want: Want,
}

impl Expect {
    fn exact(controller: &'static str, file: &'static str, want: impl ToString) -> Expect {
        Expect {
            controller,
            file,
            want: Want::Exact(want.to_string()),
        }
    }

    fn line(controller: &'static str, file: &'static str, want: impl ToString) -> Expect {
        Expect {
            controller,
            file,
            want: Want::Line(want.to_string()),
        }
    }
}

/// A logical resource setting as the OCI spec (or `update`) states it. Its
/// files and exact contents per version come from [`Setting::expected`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `memory.limit` / `update --memory`, in bytes; None = unlimited (-1).
    MemoryLimit(Option<u64>),
    /// `memory.swap` / `update --memory-swap`: OCI (and v1) count memory *plus*
    /// swap; v2's `memory.swap.max` counts swap alone, so runc writes
    /// `swap - memory` there. `memory` is the memory limit in force; `swap`
    /// None = unlimited (-1).
    MemorySwap { memory: u64, swap: Option<u64> },
    /// `memory.reservation` / `update --memory-reservation`, in bytes.
    MemoryReservation(u64),
    /// `pids.limit` / `update --pids-limit`; None = unlimited (-1 or 0).
    PidsLimit(Option<u64>),
    /// `cpu.quota` and `cpu.period` / `update --cpu-quota --cpu-period`;
    /// `quota` None = unlimited (-1).
    CpuMax { quota: Option<u64>, period: u64 },
    /// `cpu.shares` / `update --cpu-share`; None = never set, the kernel's
    /// default (v1 shares 1024, v2 weight 100; *not* the conversion of 1024).
    CpuShares(Option<u64>),
    /// Paused (`pause`) or not (`resume`, or never paused).
    Frozen(bool),
}

impl Setting {
    /// The files holding this setting on version `v`, with their exact contents.
    pub fn expected(&self, v: CgroupVersion) -> Vec<Expect> {
        use CgroupVersion::{V1, V2};
        let v1_mem = |n: Option<u64>| n.map_or_else(v1_memory_unlimited, |n| n.to_string());
        let v2_max = |n: Option<u64>| n.map_or_else(|| "max".to_string(), |n| n.to_string());
        match (self, v) {
            (Setting::MemoryLimit(n), V1) => {
                vec![Expect::exact("memory", "memory.limit_in_bytes", v1_mem(*n))]
            }
            (Setting::MemoryLimit(n), V2) => {
                vec![Expect::exact("memory", "memory.max", v2_max(*n))]
            }
            (Setting::MemorySwap { swap, .. }, V1) => vec![Expect::exact(
                "memory",
                "memory.memsw.limit_in_bytes",
                v1_mem(*swap),
            )],
            (Setting::MemorySwap { memory, swap }, V2) => vec![Expect::exact(
                "memory",
                "memory.swap.max",
                v2_max(swap.map(|s| s.saturating_sub(*memory))),
            )],
            (Setting::MemoryReservation(n), V1) => {
                vec![Expect::exact("memory", "memory.soft_limit_in_bytes", n)]
            }
            (Setting::MemoryReservation(n), V2) => vec![Expect::exact("memory", "memory.low", n)],
            (Setting::PidsLimit(n), _) => vec![Expect::exact("pids", "pids.max", v2_max(*n))],
            (Setting::CpuMax { quota, period }, V1) => vec![
                Expect::exact(
                    "cpu",
                    "cpu.cfs_quota_us",
                    quota.map_or_else(|| "-1".to_string(), |q| q.to_string()),
                ),
                Expect::exact("cpu", "cpu.cfs_period_us", period),
            ],
            (Setting::CpuMax { quota, period }, V2) => vec![Expect::exact(
                "cpu",
                "cpu.max",
                format!("{} {period}", v2_max(*quota)),
            )],
            (Setting::CpuShares(s), V1) => {
                vec![Expect::exact("cpu", "cpu.shares", s.unwrap_or(1024))]
            }
            (Setting::CpuShares(s), V2) => vec![Expect::exact(
                "cpu",
                "cpu.weight",
                s.map_or(100, runc_shares_to_weight),
            )],
            (Setting::Frozen(f), V1) => vec![Expect::exact(
                "freezer",
                "freezer.state",
                if *f { "FROZEN" } else { "THAWED" },
            )],
            (Setting::Frozen(f), V2) => vec![
                Expect::exact("", "cgroup.freeze", u8::from(*f)),
                Expect::line("", "cgroup.events", format!("frozen {}", u8::from(*f))),
            ],
        }
    }
}

/// The v1 hierarchies whose `cgroup.procs` must list every process of a
/// container (the controllers the tests rely on).
const V1_PROCS_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "freezer"];

/// The controllers a container's v2 cgroup must have enabled (runc enables
/// every available controller down the cgroupsPath).
const V2_REQUIRED_CONTROLLERS: [&str; 4] = ["cpu", "io", "memory", "pids"];

/// A container's cgroup (its `cgroupsPath`) on the running cgroup version.
#[derive(Clone, Debug)]
pub struct Cgroup {
    path: String,
    version: CgroupVersion,
}

impl Cgroup {
    /// The cgroup at `cgroups_path` (e.g. `/runvz-test/<id>`) on this host.
    pub fn new(cgroups_path: &str) -> Cgroup {
        Cgroup {
            path: cgroups_path.to_string(),
            version: cgroup_version(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The cgroup's directory: v1 `/sys/fs/cgroup/<controller>/<path>`, v2
    /// `/sys/fs/cgroup/<path>` (the controller is ignored).
    pub fn dir(&self, v1_controller: &str) -> PathBuf {
        let rel = self.path.trim_start_matches('/');
        match self.version {
            CgroupVersion::V1 => Path::new(CGROUP_ROOT).join(v1_controller).join(rel),
            CgroupVersion::V2 => Path::new(CGROUP_ROOT).join(rel),
        }
    }

    /// A file of the cgroup ([`Cgroup::dir`] + `file`).
    pub fn file(&self, v1_controller: &str, file: &str) -> PathBuf {
        self.dir(v1_controller).join(file)
    }

    /// A file's content, trimmed; None when it cannot be read.
    pub fn read(&self, v1_controller: &str, file: &str) -> Option<String> {
        fs::read_to_string(self.file(v1_controller, file))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// CPU time the cgroup has used, in microseconds (v1 cpuacct.usage, v2
    /// cpu.stat usage_usec).
    pub fn cpu_usage_usec(&self) -> u64 {
        if self.version == CgroupVersion::V2 {
            self.read("cpu", "cpu.stat")
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("usage_usec "))
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or_else(|| panic!("no usage_usec in {}'s cpu.stat", self.path))
        } else {
            self.read("cpuacct", "cpuacct.usage")
                .and_then(|v| v.parse::<u64>().ok())
                .map(|ns| ns / 1000)
                .unwrap_or_else(|| panic!("no cpuacct.usage for {}", self.path))
        }
    }

    /// Where `setting` differs from what this version must show: one message
    /// per wrong or unreadable file (empty when all match).
    pub fn check(&self, setting: &Setting) -> Vec<String> {
        let mut bad = Vec::new();
        for e in setting.expected(self.version) {
            let path = self.file(e.controller, e.file);
            let got = match fs::read_to_string(&path) {
                Ok(s) => s,
                Err(err) => {
                    bad.push(format!(
                        "{setting:?}: cannot read {} ({}): {err}",
                        path.display(),
                        self.version
                    ));
                    continue;
                }
            };
            let ok = match &e.want {
                Want::Exact(w) => got.trim() == w,
                Want::Line(w) => got.lines().any(|l| l.trim() == w),
            };
            if !ok {
                bad.push(format!(
                    "{setting:?}: {} ({}) holds {:?}, want {}",
                    path.display(),
                    self.version,
                    got.trim(),
                    e.want
                ));
            }
        }
        bad
    }

    /// Assert that the cgroup shows `setting`, in the files of this version.
    #[track_caller]
    pub fn assert(&self, setting: &Setting) {
        self.assert_all(std::slice::from_ref(setting));
    }

    /// Assert several settings at once; a failure lists every mismatch.
    #[track_caller]
    pub fn assert_all(&self, settings: &[Setting]) {
        let bad: Vec<String> = settings.iter().flat_map(|s| self.check(s)).collect();
        if !bad.is_empty() {
            panic!(
                "cgroup {} does not hold the expected values:\n  {}",
                self.path,
                bad.join("\n  ")
            );
        }
    }

    /// Like [`Cgroup::assert`], polling up to `timeout` first (for states the
    /// kernel reaches asynchronously).
    #[track_caller]
    pub fn assert_within(&self, setting: &Setting, timeout: Duration) {
        wait_until(timeout, || self.check(setting).is_empty());
        self.assert(setting);
    }

    /// `pids.current` (v1 in the pids hierarchy); panics when unreadable.
    #[track_caller]
    pub fn pids_current(&self) -> u64 {
        let path = self.file("pids", "pids.current");
        let s = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {} ({}): {e}", path.display(), self.version));
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{} holds {s:?}, not a number", path.display()))
    }

    /// The `cgroup.procs` files that must each list every process of the
    /// container: v1 one per hierarchy the tests rely on (memory, pids, cpu,
    /// freezer), v2 the single one.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        match self.version {
            CgroupVersion::V1 => V1_PROCS_CONTROLLERS
                .iter()
                .map(|c| self.file(c, "cgroup.procs"))
                .collect(),
            CgroupVersion::V2 => vec![self.file("", "cgroup.procs")],
        }
    }

    /// The pids listed in one `cgroup.procs` file (empty when unreadable).
    pub fn procs_in(file: &Path) -> Vec<i32> {
        fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Assert that `pid` is in the container's cgroup: in every
    /// [`Cgroup::procs_files`] file.
    #[track_caller]
    pub fn assert_holds_pid(&self, pid: i32) {
        for f in self.procs_files() {
            let procs = Self::procs_in(&f);
            assert!(
                procs.contains(&pid),
                "{} ({}) does not list pid {pid}: {procs:?}",
                f.display(),
                self.version
            );
        }
    }

    /// What is missing for the controllers the tests rely on: v1 the
    /// cgroup's directory in the memory, pids, cpu and freezer hierarchies;
    /// v2 cpu, io, memory and pids in the cgroup's `cgroup.controllers`
    /// (enabled down the path through each parent's `cgroup.subtree_control`)
    /// and the core `cgroup.freeze` file. Empty when all is there.
    pub fn missing_controllers(&self) -> Vec<String> {
        let mut missing = Vec::new();
        match self.version {
            CgroupVersion::V1 => {
                for c in V1_PROCS_CONTROLLERS {
                    let d = self.dir(c);
                    if !d.is_dir() {
                        missing.push(format!("no directory {}", d.display()));
                    }
                }
            }
            CgroupVersion::V2 => {
                let f = self.file("", "cgroup.controllers");
                let have = fs::read_to_string(&f).unwrap_or_default();
                let have: Vec<&str> = have.split_whitespace().collect();
                for c in V2_REQUIRED_CONTROLLERS {
                    if !have.contains(&c) {
                        missing.push(format!(
                            "controller {c} not enabled: {} holds {have:?}",
                            f.display()
                        ));
                    }
                }
                let fz = self.file("", "cgroup.freeze");
                if !fz.exists() {
                    missing.push(format!("no {}", fz.display()));
                }
            }
        }
        missing
    }

    /// The hierarchy directories in which this cgroup exists (v2: at most one).
    pub fn dirs_present(&self) -> Vec<PathBuf> {
        cgroup_dirs_present(&self.path)
    }

    /// True when the cgroup exists in any hierarchy.
    pub fn exists(&self) -> bool {
        !self.dirs_present().is_empty()
    }
}

/// Every hierarchy directory under /sys/fs/cgroup: v1 each controller's (and a
/// hybrid host's `unified`), v2 /sys/fs/cgroup itself.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    if cgroup_v2() {
        return vec![PathBuf::from(CGROUP_ROOT)];
    }
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(CGROUP_ROOT) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && p.join("cgroup.procs").exists() {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// A container's cgroup file on this host: v1
/// `/sys/fs/cgroup/<controller>/<cgroups_path>/<file>`, v2
/// `/sys/fs/cgroup/<cgroups_path>/<file>` (the controller is ignored).
pub fn cgroup_file(controller: &str, cgroups_path: &str, file: &str) -> PathBuf {
    Cgroup::new(cgroups_path).file(controller, file)
}

/// Read (trimmed) [`cgroup_file`], or None when missing.
pub fn read_cgroup(controller: &str, cgroups_path: &str, file: &str) -> Option<String> {
    Cgroup::new(cgroups_path).read(controller, file)
}

/// Hierarchy directories in which `cgroups_path` exists (v2: at most one,
/// `/sys/fs/cgroup/<cgroups_path>`).
pub fn cgroup_dirs_present(cgroups_path: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(cgroups_path.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect()
}

/// SIGKILL every process in `cgroups_path` (any hierarchy, any sub-cgroup),
/// thawing it first (v1 `freezer.state`, v2 `cgroup.freeze`) and, on v2, also
/// through `cgroup.kill` where the kernel has it.
pub fn kill_cgroup(cgroups_path: &str) {
    for dir in cgroup_dirs_present(cgroups_path) {
        // Thaw first, or frozen processes never die.
        for (file, thawed) in [("freezer.state", "THAWED"), ("cgroup.freeze", "0")] {
            let f = dir.join(file);
            if f.exists() {
                let _ = fs::write(&f, thawed);
            }
        }
        let k = dir.join("cgroup.kill");
        if k.exists() {
            let _ = fs::write(&k, "1");
        }
        for pid in pids_in_cgroup_tree(&dir) {
            // SAFETY: kill(2).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn pids_in_cgroup_tree(dir: &Path) -> Vec<i32> {
    let mut v = Cgroup::procs_in(&dir.join("cgroup.procs"));
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                v.extend(pids_in_cgroup_tree(&e.path()));
            }
        }
    }
    v
}

/// rmdir `cgroups_path` (depth first) in every hierarchy, retrying briefly
/// while dying processes leave.
pub fn remove_cgroup(cgroups_path: &str) {
    fn rm_tree(dir: &Path) -> bool {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    rm_tree(&e.path());
                }
            }
        }
        fs::remove_dir(dir).is_ok() || !dir.exists()
    }
    wait_until(Duration::from_secs(5), || {
        let mut all = true;
        for dir in cgroup_dirs_present(cgroups_path) {
            all &= rm_tree(&dir);
        }
        all
    });
}

#[cfg(test)]
mod tests {
    use super::CgroupVersion::{V1, V2};
    use super::*;

    fn files(s: Setting, v: CgroupVersion) -> Vec<(&'static str, Want)> {
        s.expected(v)
            .into_iter()
            .map(|e| (e.file, e.want))
            .collect()
    }

    fn exact(s: &str) -> Want {
        Want::Exact(s.to_string())
    }

    #[test]
    fn memory_files_per_version() {
        let m = Setting::MemoryLimit(Some(104857600));
        assert_eq!(
            files(m.clone(), V1),
            [("memory.limit_in_bytes", exact("104857600"))]
        );
        assert_eq!(files(m, V2), [("memory.max", exact("104857600"))]);
        assert_eq!(
            files(Setting::MemoryLimit(None), V2),
            [("memory.max", exact("max"))]
        );
        let s = Setting::MemorySwap {
            memory: 100,
            swap: Some(300),
        };
        assert_eq!(
            files(s.clone(), V1),
            [("memory.memsw.limit_in_bytes", exact("300"))]
        );
        assert_eq!(files(s, V2), [("memory.swap.max", exact("200"))]);
    }

    #[test]
    fn pids_and_cpu_files_per_version() {
        for v in [V1, V2] {
            assert_eq!(
                files(Setting::PidsLimit(None), v),
                [("pids.max", exact("max"))]
            );
        }
        let q = Setting::CpuMax {
            quota: Some(50000),
            period: 100000,
        };
        assert_eq!(files(q.clone(), V2), [("cpu.max", exact("50000 100000"))]);
        assert_eq!(
            files(q, V1),
            [
                ("cpu.cfs_quota_us", exact("50000")),
                ("cpu.cfs_period_us", exact("100000"))
            ]
        );
        assert_eq!(
            files(Setting::CpuShares(Some(512)), V2),
            [("cpu.weight", exact(&runc_shares_to_weight(512).to_string()))]
        );
        assert_eq!(
            files(Setting::CpuShares(None), V2),
            [("cpu.weight", exact("100"))]
        );
        // Both conversions at their ends, and the fit's default.
        for convert in [linear_shares_to_weight, fitted_shares_to_weight] {
            assert_eq!(convert(2), 1);
            assert_eq!(convert(262144), 10000);
            assert_eq!(convert(0), 0);
        }
        assert_eq!(fitted_shares_to_weight(1024), 100);
        assert_eq!(fitted_shares_to_weight(512), 59);
    }

    #[test]
    fn freezer_files_per_version() {
        assert_eq!(
            files(Setting::Frozen(true), V1),
            [("freezer.state", exact("FROZEN"))]
        );
        assert_eq!(
            files(Setting::Frozen(true), V2),
            [
                ("cgroup.freeze", exact("1")),
                ("cgroup.events", Want::Line("frozen 1".to_string()))
            ]
        );
    }

    #[test]
    fn paths_per_version() {
        let v1 = Cgroup {
            path: "/runvz-test/x".to_string(),
            version: V1,
        };
        let v2 = Cgroup {
            version: V2,
            ..v1.clone()
        };
        assert_eq!(
            v1.file("pids", "pids.max"),
            Path::new("/sys/fs/cgroup/pids/runvz-test/x/pids.max")
        );
        assert_eq!(
            v2.file("pids", "pids.max"),
            Path::new("/sys/fs/cgroup/runvz-test/x/pids.max")
        );
        assert_eq!(v1.procs_files().len(), 4);
        assert_eq!(
            v2.procs_files(),
            [Path::new("/sys/fs/cgroup/runvz-test/x/cgroup.procs")]
        );
    }
}
