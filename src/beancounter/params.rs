//! OpenVZ's beancounter parameters: their names, units and order, as
//! `/proc/user_beancounters` (Version 2.5) listed them.

/// What a parameter counts; fixes how values are written and converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of objects (processes, files, ptys…): no size suffixes.
    Count,
    /// Bytes; K/M/G/T suffixes are powers of 1024.
    Bytes,
    /// 4 KiB pages; a K/M/G/T suffix gives bytes, converted to pages (as vzctl).
    Pages,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Bytes => "bytes",
            Unit::Pages => "pages",
        }
    }
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

impl Param {
    pub fn name(self) -> &'static str {
        match self {
            Param::Kmemsize => "kmemsize",
            Param::Lockedpages => "lockedpages",
            Param::Privvmpages => "privvmpages",
            Param::Shmpages => "shmpages",
            Param::Numproc => "numproc",
            Param::Physpages => "physpages",
            Param::Vmguarpages => "vmguarpages",
            Param::Oomguarpages => "oomguarpages",
            Param::Numtcpsock => "numtcpsock",
            Param::Numflock => "numflock",
            Param::Numpty => "numpty",
            Param::Numsiginfo => "numsiginfo",
            Param::Tcpsndbuf => "tcpsndbuf",
            Param::Tcprcvbuf => "tcprcvbuf",
            Param::Othersockbuf => "othersockbuf",
            Param::Dgramrcvbuf => "dgramrcvbuf",
            Param::Numothersock => "numothersock",
            Param::Dcachesize => "dcachesize",
            Param::Numfile => "numfile",
            Param::Numiptent => "numiptent",
            Param::Swappages => "swappages",
        }
    }

    pub fn from_name(name: &str) -> Option<Param> {
        ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn unit(self) -> Unit {
        match self {
            Param::Kmemsize
            | Param::Tcpsndbuf
            | Param::Tcprcvbuf
            | Param::Othersockbuf
            | Param::Dgramrcvbuf
            | Param::Dcachesize => Unit::Bytes,
            Param::Lockedpages
            | Param::Privvmpages
            | Param::Shmpages
            | Param::Physpages
            | Param::Vmguarpages
            | Param::Oomguarpages
            | Param::Swappages => Unit::Pages,
            Param::Numproc
            | Param::Numtcpsock
            | Param::Numflock
            | Param::Numpty
            | Param::Numsiginfo
            | Param::Numothersock
            | Param::Numfile
            | Param::Numiptent => Unit::Count,
        }
    }
}

/// OpenVZ's "unlimited": LONG_MAX.
pub const UNLIMITED: u64 = i64::MAX as u64;

/// The page size beancounters count in.
pub const PAGE_SIZE: u64 = 4096;
