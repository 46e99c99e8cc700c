//! The one table of OpenVZ's beancounter parameters and CPU/I/O knobs: for each,
//! its name, unit, what barrier and limit mean, how it is enforced (cgroup part,
//! rlimit, mount option) on v1 and v2, and where held/maxheld/failcnt come from.
//! `settings`, `spec`, `live`, `report`, `features`, `update`'s flags and the
//! README's tables all read it; adding a parameter is one entry here (and the
//! compiler then asks for its reader in `report`).

use oci_spec::runtime::PosixRlimitType;

/// What a parameter counts; fixes how values are written and converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of objects (processes, files, ptys…): no size suffixes.
    Count,
    /// Bytes; K/M/G/T suffixes are powers of 1024.
    Bytes,
    /// 4 KiB pages; a K/M/G/T suffix gives bytes, converted to pages (as vzctl).
    Pages,
    /// 1 KiB blocks (vzquota's diskspace); a K/M/G/T suffix gives bytes,
    /// converted to blocks (rounded up).
    Kblocks,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Bytes => "bytes",
            Unit::Pages => "pages",
            Unit::Kblocks => "1k-blocks",
        }
    }
}

/// The part of the cgroup resources a bound lives in: a live update rewrites
/// only the parts its changed parameters own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Pids,
    Memory,
    Cpu,
    BlockIo,
}

impl Group {
    /// The prefix of this part's files in `linux.resources.unified`.
    pub fn unified_prefix(self) -> &'static str {
        match self {
            Group::Pids => "pids.",
            Group::Memory => "memory.",
            Group::Cpu => "cpu.",
            Group::BlockIo => "io.",
        }
    }
}

/// The rlimits beancounters map to (barrier = soft, limit = hard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlimit {
    Nofile,
    Memlock,
    Sigpending,
    As,
}

impl Rlimit {
    pub fn name(self) -> &'static str {
        match self {
            Rlimit::Nofile => "RLIMIT_NOFILE",
            Rlimit::Memlock => "RLIMIT_MEMLOCK",
            Rlimit::Sigpending => "RLIMIT_SIGPENDING",
            Rlimit::As => "RLIMIT_AS",
        }
    }

    pub fn resource(self) -> libc::__rlimit_resource_t {
        match self {
            Rlimit::Nofile => libc::RLIMIT_NOFILE,
            Rlimit::Memlock => libc::RLIMIT_MEMLOCK,
            Rlimit::Sigpending => libc::RLIMIT_SIGPENDING,
            Rlimit::As => libc::RLIMIT_AS,
        }
    }

    pub fn oci(self) -> PosixRlimitType {
        match self {
            Rlimit::Nofile => PosixRlimitType::RlimitNofile,
            Rlimit::Memlock => PosixRlimitType::RlimitMemlock,
            Rlimit::Sigpending => PosixRlimitType::RlimitSigpending,
            Rlimit::As => PosixRlimitType::RlimitAs,
        }
    }
}

/// Filesystems whose size option carries a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountBound {
    /// `/dev/pts` `max=` (ptys).
    Devpts,
    /// `/dev/shm` `size=` (bytes).
    Shm,
}

impl MountBound {
    pub fn destination(self) -> &'static str {
        match self {
            MountBound::Devpts => "/dev/pts",
            MountBound::Shm => "/dev/shm",
        }
    }
}

/// How a bound reaches the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    Cgroup(Group),
    Rlimit(Rlimit),
    Mount(MountBound),
    /// Reported where the kernel gives a figure; no bound on a stock kernel.
    None,
}

/// Everything runvz knows about one beancounter parameter.
#[derive(Debug, Clone, Copy)]
pub struct Descriptor {
    pub name: &'static str,
    pub unit: Unit,
    pub enforcement: Enforcement,
    /// What barrier and limit mean for it.
    pub bounds: &'static str,
    /// How it is enforced on cgroup v1 and on v2 (None: not enforced there).
    pub v1: Option<&'static str>,
    pub v2: Option<&'static str>,
    /// Where held · maxheld · failcnt come from.
    pub measured_from: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    Kmemsize,
    Lockedpages,
    Privvmpages,
    Shmpages,
    Numproc,
    Physpages,
    Vmguarpages,
    Oomguarpages,
    Numtcpsock,
    Numflock,
    Numpty,
    Numsiginfo,
    Tcpsndbuf,
    Tcprcvbuf,
    Othersockbuf,
    Dgramrcvbuf,
    Numothersock,
    Dcachesize,
    Numfile,
    Numiptent,
    Swappages,
}

/// Every parameter in OpenVZ's row order (the `dummy` rows omitted; swappages,
/// which OpenVZ showed only per container, last).
pub const ALL: [Param; 21] = [
    Param::Kmemsize,
    Param::Lockedpages,
    Param::Privvmpages,
    Param::Shmpages,
    Param::Numproc,
    Param::Physpages,
    Param::Vmguarpages,
    Param::Oomguarpages,
    Param::Numtcpsock,
    Param::Numflock,
    Param::Numpty,
    Param::Numsiginfo,
    Param::Tcpsndbuf,
    Param::Tcprcvbuf,
    Param::Othersockbuf,
    Param::Dgramrcvbuf,
    Param::Numothersock,
    Param::Dcachesize,
    Param::Numfile,
    Param::Numiptent,
    Param::Swappages,
];

/// `/proc/user_beancounters`' rows: OpenVZ's order with its `dummy` rows (None).
pub const TABLE_ROWS: [Option<Param>; 25] = [
    Some(Param::Kmemsize),
    Some(Param::Lockedpages),
    Some(Param::Privvmpages),
    Some(Param::Shmpages),
    None,
    Some(Param::Numproc),
    Some(Param::Physpages),
    Some(Param::Vmguarpages),
    Some(Param::Oomguarpages),
    Some(Param::Numtcpsock),
    Some(Param::Numflock),
    Some(Param::Numpty),
    Some(Param::Numsiginfo),
    Some(Param::Tcpsndbuf),
    Some(Param::Tcprcvbuf),
    Some(Param::Othersockbuf),
    Some(Param::Dgramrcvbuf),
    Some(Param::Numothersock),
    Some(Param::Dcachesize),
    Some(Param::Numfile),
    None,
    None,
    None,
    Some(Param::Numiptent),
    Some(Param::Swappages),
];

const REPORTED: &str = "recorded and reported";
const NOT_MEASURED: &str = "not measured (shown as `-`)";

impl Param {
    /// The parameter's entry in the table.
    pub fn describe(self) -> Descriptor {
        use Enforcement as E;
        let d = |name, unit, enforcement, bounds, v1, v2, measured_from| Descriptor {
            name,
            unit,
            enforcement,
            bounds,
            v1,
            v2,
            measured_from,
        };
        let both = |m: &'static str| (Some(m), Some(m));
        let rlimit = |r: Rlimit| match r {
            Rlimit::Nofile => both("RLIMIT_NOFILE"),
            Rlimit::Memlock => both("RLIMIT_MEMLOCK"),
            Rlimit::Sigpending => both("RLIMIT_SIGPENDING"),
            Rlimit::As => both("RLIMIT_AS"),
        };
        let none = (None, None);
        let (name, unit, enforcement, bounds, (v1, v2), measured) = match self {
            Param::Numproc => (
                "numproc",
                Unit::Count,
                E::Cgroup(Group::Pids),
                "limit = pids.max (barrier unused)",
                both("cgroup pids.max"),
                "pids.current · pids.peak (v2) or sampled · pids.events `max`",
            ),
            Param::Physpages => (
                "physpages",
                Unit::Pages,
                E::Cgroup(Group::Memory),
                "limit = memory limit, barrier = reservation",
                both("cgroup memory limit (barrier: soft limit / memory.low)"),
                "memory usage · max_usage / memory.peak · memory.failcnt / memory.events `max`",
            ),
            Param::Swappages => (
                "swappages",
                Unit::Pages,
                E::Cgroup(Group::Memory),
                "limit (+ physpages limit) = memory+swap limit",
                both("cgroup memory+swap limit"),
                "memsw−mem / memory.swap.current · sampled / memory.swap.peak · memsw.failcnt / swap.events `max`",
            ),
            Param::Vmguarpages => (
                "vmguarpages",
                Unit::Pages,
                E::Cgroup(Group::Memory),
                "barrier = reclaim protection",
                (
                    Some("cgroup memory soft limit (barrier, unless physpages sets one)"),
                    Some("cgroup memory.low (barrier)"),
                ),
                "private VM of the processes (VmData+VmStk) · sampled · —",
            ),
            Param::Oomguarpages => (
                "oomguarpages",
                Unit::Pages,
                E::Cgroup(Group::Memory),
                "barrier = reclaim protection",
                (None, Some("cgroup memory.min (barrier)")),
                "memory usage · sampled · memory.oom_control / memory.events `oom_kill`",
            ),
            Param::Numfile => (
                "numfile",
                Unit::Count,
                E::Rlimit(Rlimit::Nofile),
                "barrier = soft, limit = hard",
                rlimit(Rlimit::Nofile),
                "open fds of the processes · sampled · —",
            ),
            Param::Lockedpages => (
                "lockedpages",
                Unit::Pages,
                E::Rlimit(Rlimit::Memlock),
                "barrier = soft, limit = hard",
                rlimit(Rlimit::Memlock),
                "memory.stat unevictable · sampled · —",
            ),
            Param::Numsiginfo => (
                "numsiginfo",
                Unit::Count,
                E::Rlimit(Rlimit::Sigpending),
                "barrier = soft, limit = hard",
                rlimit(Rlimit::Sigpending),
                "queued signals (SigQ) per user · sampled · —",
            ),
            Param::Privvmpages => (
                "privvmpages",
                Unit::Pages,
                E::Rlimit(Rlimit::As),
                "barrier = soft, limit = hard",
                rlimit(Rlimit::As),
                "private VM of the processes (VmData+VmStk) · sampled · —",
            ),
            Param::Numpty => (
                "numpty",
                Unit::Count,
                E::Mount(MountBound::Devpts),
                "limit = ptys (barrier unused)",
                both("devpts max="),
                "ptys in the container's devpts · sampled · —",
            ),
            Param::Shmpages => (
                "shmpages",
                Unit::Pages,
                E::Mount(MountBound::Shm),
                "limit = size (barrier unused)",
                both("/dev/shm size= and kernel.shmall/shmmax (IPC namespace)"),
                "memory.stat shmem · sampled · —",
            ),
            Param::Kmemsize => (
                "kmemsize",
                Unit::Bytes,
                E::None,
                REPORTED,
                none,
                "memory.kmem usage (v1) / memory.stat kernel (v2) · kmem peak (v1) or sampled · kmem failcnt (v1)",
            ),
            Param::Dcachesize => (
                "dcachesize",
                Unit::Bytes,
                E::None,
                REPORTED,
                none,
                "memory.stat slab_reclaimable (v2) · sampled · —",
            ),
            Param::Numflock => (
                "numflock",
                Unit::Count,
                E::None,
                REPORTED,
                none,
                "/proc/locks of the processes · sampled · —",
            ),
            Param::Numtcpsock => (
                "numtcpsock",
                Unit::Count,
                E::None,
                REPORTED,
                none,
                "the netns's sockstat TCP inuse · sampled · —",
            ),
            Param::Numothersock => (
                "numothersock",
                Unit::Count,
                E::None,
                REPORTED,
                none,
                "the netns's sockstat UDP/RAW/FRAG inuse and unix sockets · sampled · —",
            ),
            Param::Othersockbuf => (
                "othersockbuf",
                Unit::Bytes,
                E::None,
                REPORTED,
                none,
                "memory.stat sock (v2, all socket buffers) · sampled · —",
            ),
            Param::Tcpsndbuf => (
                "tcpsndbuf",
                Unit::Bytes,
                E::None,
                REPORTED,
                none,
                NOT_MEASURED,
            ),
            Param::Tcprcvbuf => (
                "tcprcvbuf",
                Unit::Bytes,
                E::None,
                REPORTED,
                none,
                NOT_MEASURED,
            ),
            Param::Dgramrcvbuf => (
                "dgramrcvbuf",
                Unit::Bytes,
                E::None,
                REPORTED,
                none,
                NOT_MEASURED,
            ),
            Param::Numiptent => (
                "numiptent",
                Unit::Count,
                E::None,
                REPORTED,
                none,
                NOT_MEASURED,
            ),
        };
        d(name, unit, enforcement, bounds, v1, v2, measured)
    }

    pub fn name(self) -> &'static str {
        self.describe().name
    }

    pub fn unit(self) -> Unit {
        self.describe().unit
    }

    /// The `runvz.ubc.<name>` annotation (and `update --<name>` flag) it is set by.
    pub fn annotation(self) -> String {
        format!("{}{}", super::settings::UBC_PREFIX, self.name())
    }

    pub fn from_name(name: &str) -> Option<Param> {
        ALL.into_iter().find(|p| p.name() == name)
    }

    /// How it is enforced on this host's cgroup version, or None.
    pub fn mechanism(self) -> Option<&'static str> {
        let d = self.describe();
        match crate::cgroups::version() {
            crate::cgroups::Version::V1 => d.v1,
            crate::cgroups::Version::V2 => d.v2,
        }
    }
}

/// OpenVZ's CPU and I/O knobs (`runvz.<name>`, `update --<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Knob {
    Cpuunits,
    Cpulimit,
    Cpus,
    Ioprio,
    Iolimit,
    Iopslimit,
}

/// The annotation of every parameter, knob and disk quota.
pub fn annotation_keys() -> impl Iterator<Item = String> {
    ALL.iter()
        .map(|p| p.annotation())
        .chain(KNOBS.iter().map(|k| k.annotation()))
        .chain(DISK.iter().map(|d| d.annotation()))
}

/// OpenVZ's first-level disk quota (vzquota): `runvz.diskspace` and
/// `runvz.diskinodes`, `barrier:limit` each, enforced with the filesystem's
/// own quota on the container's rootfs (`crate::quota`): barrier = soft limit
/// (with the filesystem's grace period), limit = hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Disk {
    Space,
    Inodes,
}

pub const DISK: [Disk; 2] = [Disk::Space, Disk::Inodes];

impl Disk {
    pub fn name(self) -> &'static str {
        match self {
            Disk::Space => "diskspace",
            Disk::Inodes => "diskinodes",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Disk::Space => Unit::Kblocks,
            Disk::Inodes => Unit::Count,
        }
    }

    /// Its annotation (not under `runvz.ubc.`: vzctl set them apart too).
    pub fn annotation(self) -> String {
        format!("runvz.{}", self.name())
    }

    pub fn from_annotation(key: &str) -> Option<Self> {
        DISK.into_iter().find(|d| d.annotation() == key)
    }

    /// What barrier and limit mean, for `update --help` and `features`.
    pub fn about(self) -> &'static str {
        match self {
            Disk::Space => {
                "disk space in 1 KiB blocks (K/M/G/T suffixes): barrier = soft limit, limit = hard limit; project quota (ext4, XFS) or btrfs qgroup"
            }
            Disk::Inodes => {
                "files and directories: barrier = soft limit, limit = hard limit; project quota (ext4, XFS); btrfs has none"
            }
        }
    }
}

pub const KNOBS: [Knob; 6] = [
    Knob::Cpuunits,
    Knob::Cpulimit,
    Knob::Cpus,
    Knob::Ioprio,
    Knob::Iolimit,
    Knob::Iopslimit,
];

/// What a knob's value may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnobValue {
    /// A plain number in min…max.
    Range(u64, u64),
    /// An amount in a unit (suffixes, `unlimited`).
    Amount(Unit),
}

#[derive(Debug, Clone, Copy)]
pub struct KnobDescriptor {
    pub name: &'static str,
    pub value: KnobValue,
    pub group: Group,
    /// What it means, for `update --help`.
    pub about: &'static str,
    /// How it is enforced (README); `support` says whether it is on this host.
    #[cfg_attr(not(test), allow(dead_code))] // read by the README check
    pub enforced_by: &'static str,
}

impl Knob {
    pub fn describe(self) -> KnobDescriptor {
        let (name, value, group, about, enforced_by) = match self {
            Knob::Cpuunits => (
                "cpuunits",
                KnobValue::Range(8, 500_000),
                Group::Cpu,
                "fair CPU share, 8…500000 (OpenVZ default 1000)",
                "v1 `cpu.shares = units × 1024 / 1000`; v2 `cpu.weight = units / 10`",
            ),
            Knob::Cpulimit => (
                "cpulimit",
                KnobValue::Range(0, 100 * 4096),
                Group::Cpu,
                "CPU time in percent of one CPU (200 = two CPUs; 0: no limit)",
                "CFS quota (percent of one CPU, 100 ms period)",
            ),
            Knob::Cpus => (
                "cpus",
                KnobValue::Range(1, 4096),
                Group::Cpu,
                "number of CPUs the container may use",
                "cpuset CPUs 0…N-1",
            ),
            Knob::Ioprio => (
                "ioprio",
                KnobValue::Range(0, 7),
                Group::BlockIo,
                "I/O priority 0…7 (default 4)",
                "block-I/O weight 320…640 (`blkio.weight`, `io.weight`); not enforced where the disks' scheduler takes no weight",
            ),
            Knob::Iolimit => (
                "iolimit",
                KnobValue::Amount(Unit::Bytes),
                Group::BlockIo,
                "disk bandwidth, bytes per second (K/M/G suffixes; 0: unlimited)",
                "read and write throttles on every disk of the host (`blkio.throttle.*`, `io.max`)",
            ),
            Knob::Iopslimit => (
                "iopslimit",
                KnobValue::Amount(Unit::Count),
                Group::BlockIo,
                "disk operations per second (0: unlimited)",
                "read and write throttles on every disk of the host (`blkio.throttle.*`, `io.max`)",
            ),
        };
        KnobDescriptor {
            name,
            value,
            group,
            about,
            enforced_by,
        }
    }

    pub fn name(self) -> &'static str {
        self.describe().name
    }

    /// The `runvz.<name>` annotation it is set by.
    pub fn annotation(self) -> String {
        format!("{}{}", super::settings::PREFIX, self.name())
    }

    pub fn from_name(name: &str) -> Option<Knob> {
        KNOBS.into_iter().find(|k| k.name() == name)
    }

    /// How it is enforced on this host, or why it is not.
    pub fn support(self) -> Result<String, String> {
        use super::io;
        match self {
            Knob::Cpuunits => Ok(match crate::cgroups::version() {
                crate::cgroups::Version::V1 => "cgroup cpu.shares = cpuunits × 1024 / 1000",
                crate::cgroups::Version::V2 => "cgroup cpu.weight = cpuunits / 10",
            }
            .to_string()),
            Knob::Cpulimit => Ok("CFS quota (percent of one CPU, 100 ms period)".to_string()),
            Knob::Cpus => Ok("cpuset (CPUs 0…N-1)".to_string()),
            Knob::Ioprio => io::weight_support().map(|file| format!("{file} (weights 320…640)")),
            Knob::Iolimit => {
                io::throttle_support().map(|t| format!("{t} (read and write bytes/s)"))
            }
            Knob::Iopslimit => {
                io::throttle_support().map(|t| format!("{t} (read and write ops/s)"))
            }
        }
    }
}

/// OpenVZ's "unlimited": LONG_MAX.
pub const UNLIMITED: u64 = i64::MAX as u64;

/// The page size beancounters count in.
pub const PAGE_SIZE: u64 = 4096;

/// The README's three tables, as the descriptors give them (a test keeps the
/// README equal to this).
#[cfg(test)]
fn readme_tables() -> String {
    let mut out = String::from(
        "| parameter | unit | barrier, limit | enforced by (v1 / v2) | held · maxheld · failcnt from |\n|---|---|---|---|---|\n",
    );
    for param in ALL {
        let d = param.describe();
        let enforced = match (d.v1, d.v2) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a} / {b}"),
            (None, Some(b)) => format!("v2 only: {b}"),
            (Some(a), None) => format!("v1 only: {a}"),
            (None, None) => "not enforced on a stock kernel".to_string(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            d.name,
            d.unit.name(),
            d.bounds,
            enforced,
            d.measured_from
        ));
    }
    out.push_str("\n| knob | value | enforced by |\n|---|---|---|\n");
    for knob in KNOBS {
        let d = knob.describe();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            d.name, d.about, d.enforced_by
        ));
    }
    out.push_str("\n| disk quota | unit | barrier, limit and mechanism |\n|---|---|---|\n");
    for disk in DISK {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            disk.name(),
            disk.unit().name(),
            disk.about()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for param in ALL {
            assert_eq!(Param::from_name(param.name()), Some(param));
        }
        for knob in KNOBS {
            assert_eq!(Knob::from_name(knob.name()), Some(knob));
        }
        let rows: Vec<Param> = TABLE_ROWS.iter().flatten().copied().collect();
        assert_eq!(
            rows, ALL,
            "TABLE_ROWS lists every parameter once, in ALL's order"
        );
    }

    #[test]
    fn enforced_parameters_name_their_mechanism() {
        for param in ALL {
            let d = param.describe();
            let enforced = d.v1.is_some() || d.v2.is_some();
            assert_eq!(
                enforced,
                d.enforcement != Enforcement::None,
                "{}: mechanism text and enforcement disagree",
                d.name
            );
        }
    }

    /// The README's tables are the descriptors'; on a change, paste what this prints.
    #[test]
    fn readme_tables_match_the_descriptors() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let want = readme_tables();
        assert!(
            readme.contains(&want),
            "README.md's beancounter tables are out of date; they should read:\n\n{want}"
        );
    }
}
